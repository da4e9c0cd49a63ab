"""The columns and dtypes of the frames the store reads and writes: boxes of label sets and
detection runs, items and the images of a set or run.

A box is four corners in pixels of its item's frame (``x1, y1`` top left, ``x2, y2``
bottom right); a stored box also has its ``id`` (its owner, item and order, see
``schema.py``), a detection its ``score``, and either may carry ``extra`` (JSON of what
its source said beyond the box). polars is imported when a schema is asked for, so that
importing the store stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

#: A box's corners, in the order every frame and table holds them.
BOX = ("x1", "y1", "x2", "y2")
#: Columns of a box frame, in store order (detections add ``score``).
BOX_COLUMNS = ("item_id", "class_id", *BOX)
#: Optional label columns: a COCO annotation's ``area`` and ``iscrowd`` as numbers (they
#: are in the label's ``extra`` as written too; null here means: read ``extra``).
COCO_LABEL_COLUMNS: dict[str, str] = {"coco_area": "Float64", "coco_iscrowd": "Int64"}


def box_schema(*, stored: bool = True, score: bool = False, extra: bool = False) -> dict[str, pl.DataType]:
    """The dtypes of a box frame: ``id`` (``stored``), ``item_id``, ``class_id``, the corners,
    then ``score`` and ``extra`` when asked for.

    A stored box (as the store reads it) has an ``Int32`` class id; a box about to be
    stored (a new run's, a detector's) an ``Int64`` one.
    """
    import polars as pl

    schema: dict[str, pl.DataType] = {"id": pl.Int64()} if stored else {}
    schema |= {"item_id": pl.Int64(), "class_id": pl.Int32() if stored else pl.Int64()}
    schema |= dict.fromkeys(BOX, pl.Float64())
    if score:
        schema["score"] = pl.Float64()
    if extra:
        schema["extra"] = pl.String()
    return schema


def image_size_schema() -> dict[str, pl.DataType]:
    """The dtypes of the images of a label set or run: ``item_id``, ``key``, ``width``, ``height``."""
    import polars as pl

    return {"item_id": pl.Int64(), "key": pl.String(), "width": pl.Int64(), "height": pl.Int64()}


def item_schema() -> dict[str, pl.DataType]:
    """The dtypes of the items: ``id``, ``key``, ``booru``, ``fid``, ``width``, ``height``."""
    import polars as pl

    return {
        "id": pl.Int64(),
        "key": pl.String(),
        "booru": pl.String(),
        "fid": pl.Int64(),
        "width": pl.Int64(),
        "height": pl.Int64(),
    }


def file_schema(*columns: str) -> dict[str, pl.DataType]:
    """The dtypes of ``columns`` of the ``files`` table (all of them when none is named), in the order named."""
    import polars as pl

    dtypes: dict[str, pl.DataType] = {
        "id": pl.Int64(),
        "pool_id": pl.Int64(),
        "relpath": pl.String(),
        "relpath_raw": pl.Binary(),
        "item_id": pl.Int64(),
        "keyed": pl.Int64(),
        "size": pl.Int64(),
        "mtime_ns": pl.Int64(),
        "width": pl.Int64(),
        "height": pl.Int64(),
        "format": pl.String(),
        "mode": pl.String(),
        "phash": pl.Int64(),
        "exif": pl.String(),
        "status": pl.String(),
        "error": pl.String(),
        "checks": pl.Int64(),
        "scanned": pl.String(),
    }
    return {c: dtypes[c] for c in columns} if columns else dtypes
