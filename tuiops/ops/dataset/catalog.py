"""The datasets the store knows: one by name or folder, all of them, their images, their boxes now."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import NotFoundError
from tuiops.fsutil import disk_error
from tuiops.ops.dataset.checks import check_boxes
from tuiops.ops.dataset.model import MANIFEST, SPLITS, DatasetInfo
from tuiops.store.frames import BOX_COLUMNS

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace


# -- reading ---------------------------------------------------------------------------------------
def dataset_info(store: Store, name: str) -> DatasetInfo:
    """The dataset called ``name``; NotFoundError naming the known ones otherwise."""
    row = store.execute(
        "SELECT id, name, root, label_set, params, built FROM datasets WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        known = [r[0] for r in store.execute("SELECT name FROM datasets ORDER BY name")]
        raise NotFoundError(
            f"no dataset named {name!r}",
            hint=f"known datasets: {', '.join(known) or 'none'}; build one with `tuiops dataset build`",
        )
    return DatasetInfo(int(row[0]), row[1], Path(row[2]), row[3], json.loads(row[4] or "{}"), row[5])


def find_dataset(store: Store, data: str | os.PathLike[str]) -> DatasetInfo | None:
    """The tuiops dataset a data.yaml (or its folder) belongs to, or None for a foreign one."""
    p = Path(data).expanduser().resolve()
    folder = p if p.is_dir() else p.parent
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    try:
        name = json.loads(manifest.read_text(encoding="utf-8"))["dataset"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        info = dataset_info(store, name)
    except NotFoundError:
        return None
    return info if info.root.resolve() == folder else None


def list_datasets(ws: Workspace) -> list[dict[str, Any]]:
    """Every dataset with its label set, folder, build time and split counts."""
    rows = ws.store.execute(
        "SELECT d.name, d.label_set, d.root, d.built, "
        "SUM(di.split = 'train' AND di.name IS NOT NULL), SUM(di.split = 'val' AND di.name IS NOT NULL), "
        "SUM(di.split = 'excluded') "
        "FROM datasets d LEFT JOIN dataset_images di ON di.dataset_id = d.id GROUP BY d.id ORDER BY d.name"
    ).fetchall()
    return [
        {
            "name": r[0],
            "label_set": r[1],
            "root": r[2],
            "built": r[3],
            "train": int(r[4] or 0),
            "val": int(r[5] or 0),
            "excluded": int(r[6] or 0),
        }
        for r in rows
    ]


def dataset_images(store: Store, name: str, splits: Sequence[str] = SPLITS) -> pl.DataFrame:
    """The images written into a dataset: item_id, key, split, path (absolute), width, height."""
    import polars as pl

    info = dataset_info(store, name)
    frame = store.read_frame(
        "SELECT di.item_id, i.key, di.split, di.name, i.width, i.height FROM dataset_images di "
        "JOIN items i ON i.id = di.item_id WHERE di.dataset_id = ? AND di.name IS NOT NULL ORDER BY di.item_id",
        (info.id,),
        {
            "item_id": pl.Int64,
            "key": pl.String,
            "split": pl.String,
            "name": pl.String,
            "width": pl.Int64,
            "height": pl.Int64,
        },
    )
    root = str(info.root)
    return frame.filter(pl.col("split").is_in(list(splits))).select(
        "item_id",
        "key",
        "split",
        (pl.lit(root + os.sep) + pl.col("name")).alias("path"),
        "width",
        "height",
    )


def effective_labels(ws: Workspace, name: str) -> pl.DataFrame:
    """The boxes a dataset's label files hold now, recomputed from the store with its fixes.

    Columns: id, item_id, class_id, x1, y1, x2, y2 (pixels in the item's frame), for the
    dataset's written images.
    """
    import polars as pl

    info = dataset_info(ws.store, name)
    imgs = dataset_images(ws.store, name).select(
        "item_id", "key", pl.col("width").alias("w"), pl.col("height").alias("h")
    )
    labels = ws.store.read_labels(info.label_set).join(imgs.select("item_id"), on="item_id", how="semi")
    params = info.params
    boxes, _ = check_boxes(
        labels,
        imgs,
        fix=params.get("fix", []),
        dup_iou=params.get("dup_iou", 0.9),
        tol=params.get("tol", 1.0),
    )
    return boxes.select("id", *BOX_COLUMNS)


def delete_label_caches(root: str | os.PathLike[str]) -> list[Path]:
    """Delete ultralytics' label caches (``*.cache``) under a dataset folder; returns those removed."""
    removed = []
    for p in Path(root).rglob("*.cache"):
        if p.is_file():
            try:
                p.unlink()
            except OSError as exc:
                raise disk_error(p, exc, "delete") from exc
            removed.append(p)
    return removed
