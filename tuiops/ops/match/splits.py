"""The split of each image: read from a file or a folder of lists, resolved against the compared images."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import InputError, UsageError

if TYPE_CHECKING:
    import polars as pl

    from tuiops.workspace import Workspace


# -- splits -------------------------------------------------------------------------------------
def splits_from_file(ws: Workspace, path: str | os.PathLike[str], split: str = "train") -> pl.DataFrame:
    """Read a split list: one image per line, ``KEY`` or a file path, optionally followed by a split name.

    Lines without a split name get ``split``. Empty lines and lines starting with ``#`` are
    skipped; fields are separated by whitespace, a comma or a tab. Returns ``key, split``.
    """
    import re

    import polars as pl

    from tuiops.fsutil import display_path

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"split file {display_path(p)} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"split file {display_path(p)} is not UTF-8 text") from exc
    except OSError as exc:
        raise InputError(f"cannot read split file {display_path(p)}: {exc.strerror}") from exc
    keys: list[str] = []
    names: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f for f in re.split(r"[,\t]|\s+", line) if f]
        if len(fields) > 2:
            raise InputError(
                f"{display_path(p)}:{lineno}: expected KEY [SPLIT], got {line!r}",
                hint="one image per line: a key or file name, optionally followed by train/val/test",
            )
        keys.append(ws.parse_key(fields[0]).key)
        names.append(fields[1] if len(fields) == 2 else split)
    return pl.DataFrame({"key": keys, "split": names}, schema={"key": pl.String, "split": pl.String})


def splits_from_dir(ws: Workspace, path: str | os.PathLike[str]) -> pl.DataFrame:
    """The split of each image of an ultralytics dataset folder, from where its image file lies.

    Accepts ``DIR/images/<split>/…`` and ``DIR/<split>/images/…``; the split is the folder
    name (``train``, ``val``, ``test`` …). Returns ``key, split``.
    """
    import polars as pl

    from tuiops.fsutil import display_path

    root = Path(path)
    if not root.is_dir():
        raise InputError(
            f"{display_path(root)} is not a folder", hint="give the dataset folder (with images/train …)"
        )
    found: list[tuple[str, Path]] = []
    images = root / "images"
    if images.is_dir():
        found += [(d.name, d) for d in sorted(images.iterdir()) if d.is_dir()]
    found += [
        (d.name, d / "images") for d in sorted(root.iterdir()) if d.is_dir() and (d / "images").is_dir()
    ]
    if not found:
        raise InputError(
            f"{display_path(root)} has neither images/<split>/ nor <split>/images/ folders",
            hint="point --split-from at an ultralytics dataset folder",
        )
    suffixes = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
    keys: list[str] = []
    names: list[str] = []
    for split, folder in found:
        for f in _walk_files(folder):
            if os.path.splitext(f)[1].lower() in suffixes:
                keys.append(ws.parse_key(f).key)
                names.append(split)
    return pl.DataFrame({"key": keys, "split": names}, schema={"key": pl.String, "split": pl.String})


def _walk_files(folder: Path) -> Iterator[str]:
    stack = [str(folder)]
    while stack:
        top = stack.pop()
        try:
            with os.scandir(top) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.is_file():
                        yield e.name
        except OSError:
            continue


def resolve_splits(
    ws: Workspace, items: np.ndarray, splits: pl.DataFrame | Mapping[Any, str] | None
) -> tuple[np.ndarray, list[str], int]:
    """Split code per item (−1 = none), the split names, and how many images were in two splits."""
    import polars as pl

    codes = np.full(len(items), -1, dtype=np.int64)
    if splits is None:
        return codes, [], 0
    if isinstance(splits, Mapping):
        ks = list(splits)
        col = "item_id" if ks and all(isinstance(k, int | np.integer) for k in ks) else "key"
        dtype = pl.Int64 if col == "item_id" else pl.String
        frame = pl.DataFrame(
            {
                col: [k if col == "item_id" else str(k) for k in ks],
                "split": [str(v) for v in splits.values()],
            },
            schema={col: dtype, "split": pl.String},
        )
    else:
        frame = splits
    if "split" not in frame.columns or not ({"item_id", "key"} & set(frame.columns)):
        raise UsageError("splits need a 'split' column and an 'item_id' or 'key' column")
    if "item_id" not in frame.columns:
        from tuiops.ops.labels import lookup_items

        found = lookup_items(ws.store, frame["key"].unique().to_list())
        frame = frame.join(found.select("key", "item_id"), on="key", how="inner")
    frame = frame.select(pl.col("item_id").cast(pl.Int64), pl.col("split").cast(pl.String)).drop_nulls()
    per_item = frame.unique().group_by("item_id").agg(pl.col("split").sort())
    overlap = int((per_item["split"].list.len() > 1).sum())
    chosen = per_item.select(
        "item_id",
        pl.when(pl.col("split").list.contains("train"))
        .then(pl.lit("train"))
        .otherwise(pl.col("split").list.first())
        .alias("split"),
    )
    names = sorted(chosen["split"].unique().to_list())
    mapped = chosen.with_columns(
        pl.col("split").replace_strict(names, list(range(len(names))), return_dtype=pl.Int64)
    )
    pos = np.searchsorted(items, mapped["item_id"].to_numpy())
    pos_ok = pos < len(items)
    hit = np.zeros(len(pos), bool)
    hit[pos_ok] = items[pos[pos_ok]] == mapped["item_id"].to_numpy()[pos_ok]
    codes[pos[hit]] = mapped["split"].to_numpy()[hit]
    return codes, names, overlap
