"""Writing a match into the store: its rows, its counts, the ranks of its worst images and objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import StoreError
from tuiops.ops.match.model import CATEGORIES, OBJ_ITEM_SHIFT, OBJ_MATCH_SHIFT, TOP_RANKED
from tuiops.ops.match.queries import match_id

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import BulkTx
    from tuiops.workspace import Workspace


# -- writing ------------------------------------------------------------------------------------
def replace_match(
    tx: BulkTx,
    name: str,
    set_name: str,
    run_name: str,
    set_id: int,
    run_id: int,
    iou: float,
    low: float,
    conf: float,
) -> int:
    from tuiops.store.db import utcnow

    old = tx.one("SELECT id FROM matches WHERE name = ?", (name,))
    if old is not None:
        _delete_match(tx, int(old))
    match_id = int(
        tx.one(
            "INSERT INTO matches(name, set_id, run_id, set_name, run_name, iou, low, conf, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (name, set_id, run_id, set_name, run_name, iou, low, conf, utcnow()),
        )
    )
    if match_id >= 1 << (63 - OBJ_MATCH_SHIFT):
        raise StoreError(f"the store has used up its match ids ({match_id})", hint="drop old matches")
    return match_id


def _delete_match(tx: BulkTx, match_id: int) -> None:
    lo = match_id << OBJ_MATCH_SHIFT
    tx.execute("DELETE FROM match_objects WHERE id BETWEEN ? AND ?", (lo, lo + (1 << OBJ_MATCH_SHIFT) - 1))
    tx.execute("DELETE FROM match_images WHERE match_id = ?", (match_id,))
    tx.execute("DELETE FROM matches WHERE id = ?", (match_id,))


def drop_match(ws: Workspace, name: str) -> None:
    """Delete a stored match (its objects and images) in one transaction."""
    mid = match_id(ws.store, name)
    with ws.store.bulk() as tx:
        _delete_match(tx, mid)


def object_rows(match_id: int, objects: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    oid = (
        (pl.lit(match_id, pl.Int64) * (1 << OBJ_MATCH_SHIFT))
        + pl.col("item_id") * (1 << OBJ_ITEM_SHIFT)
        + pl.col("ord")
    ).alias("id")
    code = pl.col("category").cast(pl.Int64).alias("code")
    return objects.select(oid, "label_id", "det_id", "class_id", "det_class_id", code, "iou", "score", "cost")


def image_rows(match_id: int, images: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    return images.select(
        pl.lit(match_id, pl.Int64).alias("match_id"),
        "item_id",
        "split",
        "n_labels",
        "n_dets",
        *CATEGORIES,
        "precision",
        "recall",
        "f1",
        "cost",
        "worst_cost",
    )


def top_objects(
    rows: pl.DataFrame, objects: pl.DataFrame, codes: np.ndarray, items: np.ndarray
) -> pl.DataFrame:
    """The candidates for the worst ranks of this chunk: per split and category, the top rows."""
    import polars as pl

    split = codes[np.searchsorted(items, objects["item_id"].to_numpy())]
    group = split * len(CATEGORIES) + objects["category"].to_numpy().astype(np.int64)
    keep = _top_by_group(group, -rows["cost"].to_numpy(), rows["id"].to_numpy())
    return pl.DataFrame(
        {"id": rows["id"].to_numpy()[keep], "group": group[keep], "cost": rows["cost"].to_numpy()[keep]}
    )


def top_images(images: pl.DataFrame, codes: np.ndarray) -> pl.DataFrame:
    import polars as pl

    f1 = images["f1"].to_numpy()
    cost = images["cost"].to_numpy()
    item = images["item_id"].to_numpy()
    keep = _top_by_group(codes, f1, -cost, item)
    return pl.DataFrame({"item_id": item[keep], "group": codes[keep], "f1": f1[keep], "cost": cost[keep]})


def _top_by_group(group: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Indices of the first :data:`TOP_RANKED` rows of each group in ascending ``keys`` order."""
    out: list[np.ndarray] = []
    for g in np.unique(group).tolist():
        idx = np.flatnonzero(group == g)
        if len(idx) > TOP_RANKED:
            first = keys[0][idx]
            cut = np.partition(first, TOP_RANKED - 1)[TOP_RANKED - 1]
            idx = idx[first <= cut]
        order = np.lexsort(tuple(k[idx] for k in reversed(keys)))
        out.append(idx[order[:TOP_RANKED]])
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def store_ranks(
    tx: BulkTx, match_id: int, obj_cands: list[pl.DataFrame], img_cands: list[pl.DataFrame]
) -> None:
    import polars as pl

    objs = (
        pl.concat(obj_cands)
        if obj_cands
        else pl.DataFrame(schema={"id": pl.Int64, "group": pl.Int64, "cost": pl.Float64})
    )
    if objs.height:
        objs = objs.sort(["group", "cost", "id"], descending=[False, True, False])
        objs = objs.with_columns(rank=pl.int_range(1, pl.len() + 1).over("group")).filter(
            pl.col("rank") <= TOP_RANKED
        )
        tx.ingest("_tuiops_obj_rank", objs.select("id", "rank"), temporary=True, mode="replace")
        tx.execute(
            "UPDATE match_objects SET worst_rank = r.rank FROM temp._tuiops_obj_rank r WHERE match_objects.id = r.id"
        )
        tx.execute("DROP TABLE temp._tuiops_obj_rank")
    imgs = pl.concat(img_cands) if img_cands else pl.DataFrame()
    if imgs.height:
        imgs = imgs.sort(["group", "f1", "cost", "item_id"], descending=[False, False, True, False])
        imgs = imgs.with_columns(rank=pl.int_range(1, pl.len() + 1).over("group")).filter(
            pl.col("rank") <= TOP_RANKED
        )
        tx.ingest(
            "_tuiops_img_rank",
            imgs.select("item_id", "rank").with_columns(pl.lit(match_id, pl.Int64).alias("match_id")),
            temporary=True,
            mode="replace",
        )
        tx.execute(
            "UPDATE match_images SET worst_rank = r.rank FROM temp._tuiops_img_rank r "
            "WHERE match_images.match_id = r.match_id AND match_images.item_id = r.item_id"
        )
        tx.execute("DROP TABLE temp._tuiops_img_rank")


def add_totals(totals: np.ndarray, images: pl.DataFrame, codes: np.ndarray) -> None:
    """Add a chunk's per-split sums: images, labels, confident detections and each category."""
    idx = np.where(codes < 0, totals.shape[0] - 1, codes)
    n = totals.shape[0]
    totals[:, 0] += np.bincount(idx, minlength=n)
    for j, col in enumerate(("n_labels", "n_dets", *CATEGORIES), start=1):
        totals[:, j] += np.bincount(idx, weights=images[col].to_numpy(), minlength=n).astype(np.int64)


def counts_json(totals: np.ndarray, names: list[str]) -> dict[str, dict[str, Any]]:
    labels = [*names, "none"]
    out: dict[str, dict[str, Any]] = {}
    order = [len(names), *range(len(names))] if names else [0]
    for i in order:
        row = totals[i]
        if names and i == len(names) and row[0] == 0:
            continue
        out[labels[i] if names else "all"] = _metrics(row)
    if names:
        out["all"] = _metrics(totals.sum(axis=0))
    return out


def _metrics(row: np.ndarray) -> dict[str, Any]:
    images, n_labels, n_dets = (int(x) for x in row[:3])
    counts = {c: int(row[3 + i]) for i, c in enumerate(CATEGORIES)}
    tp = counts["tp"]
    return {
        "images": images,
        "labels": n_labels,
        "dets": n_dets,
        **counts,
        "precision": tp / n_dets if n_dets else None,  # no confident detection: nothing to be precise about
        "recall": tp / n_labels if n_labels else 1.0,
        "f1": 2 * tp / (n_labels + n_dets) if n_labels + n_dets else 1.0,
    }
