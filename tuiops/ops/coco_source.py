"""The COCO record of an imported set or run, as the COCO exports give it back.

A label set or run imported from COCO keeps its file's categories (``info``,
``licenses``) in ``label_sets.meta`` / ``runs.meta`` and each image's entry in
``set_images.meta`` / ``run_images.meta``; an export with ``ids="source"`` writes them
back with their own ids. A run from other files (YOLO txt) borrows the record of the
label set imported from COCO that shares the most images with it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store


def source_meta(store: Store, kind: str, name: str) -> dict[str, Any]:
    """The COCO record of the file a set or run was imported from (categories, info, licenses), or {}."""
    table = "label_sets" if kind == "labels" else "runs"
    text = store.one(f"SELECT meta FROM {table} WHERE name = ?", (name,))
    try:
        meta = json.loads(text) if text else {}
    except ValueError:
        return {}
    coco = meta.get("coco") if isinstance(meta, dict) else None
    return coco if isinstance(coco, dict) else {}


def borrow_coco_ids(store: Store, run: str, images: pl.DataFrame) -> tuple[dict[str, Any], pl.DataFrame]:
    """For a run not imported from COCO: the COCO record and image ids of the label set imported
    from COCO that shares the most images with it (the newest on a tie), so its export pairs
    with that set's file; ``({}, images)`` when there is none."""
    import polars as pl

    donor = store.one(
        "SELECT s.id FROM label_sets s JOIN set_images si ON si.set_id = s.id "
        "JOIN run_images ri ON ri.item_id = si.item_id AND ri.run_id = ? "
        "WHERE s.meta IS NOT NULL AND json_valid(s.meta) AND json_type(s.meta, '$.coco') = 'object' "
        "GROUP BY s.id ORDER BY count(*) DESC, s.id DESC LIMIT 1",
        (store.run_id(run),),
    )
    if donor is None:
        return {}, images
    name = store.one("SELECT name FROM label_sets WHERE id = ?", (donor,))
    ids = store.read_frame(
        "SELECT item_id, json_quote(json_extract(meta, '$.coco.id')) AS sid FROM set_images "
        "WHERE set_id = ? AND meta IS NOT NULL AND json_valid(meta) "
        "AND json_type(meta, '$.coco.id') IN ('integer', 'text')",
        (donor,),
        {"item_id": pl.Int64, "sid": pl.String},
    )
    meta = pl.col("meta").str.strip_chars()
    own = meta.str.json_path_match("$.coco.id").is_not_null().fill_null(False)
    coco = pl.lit('"coco":{"id":') + pl.col("sid") + pl.lit("}")
    merged = (
        pl.when(own | pl.col("sid").is_null())
        .then(pl.col("meta"))
        .when(meta.is_null() | (meta == "{}") | ~meta.str.ends_with("}"))
        .then(pl.lit("{") + coco + pl.lit("}"))
        .otherwise(meta.str.strip_suffix("}") + pl.lit(",") + coco + pl.lit("}"))
    )
    out = (
        images.join(ids, on="item_id", how="left", maintain_order="left")
        .with_columns(merged.alias("meta"))
        .drop("sid")
    )
    return source_meta(store, "labels", name), out
