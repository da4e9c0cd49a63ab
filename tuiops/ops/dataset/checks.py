"""The box checks of a dataset build and the YOLO lines of the boxes it writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tuiops.ops.dataset.model import EXAMPLES, CheckReport

if TYPE_CHECKING:
    import polars as pl


# -- box checks -------------------------------------------------------------------------------------
def check_boxes(
    labels: pl.DataFrame,
    sizes: pl.DataFrame,
    *,
    fix: Sequence[str],
    dup_iou: float = 0.9,
    tol: float = 1.0,
) -> tuple[pl.DataFrame, dict[str, CheckReport]]:
    """Find duplicate and outside boxes; returns the boxes to write and the two reports.

    ``labels``: id, item_id, class_id, x1, y1, x2, y2. ``sizes``: item_id, w, h, key.
    Boxes within ``tol`` pixels of the image are clipped silently.
    """
    import polars as pl

    from tuiops import geometry as geo
    from tuiops.ops.nms import nms_frame

    reports: dict[str, CheckReport] = {}
    boxes = labels.join(sizes.select("item_id", "key", "w", "h"), on="item_id", how="inner")
    if boxes.height:
        res = nms_frame(boxes.with_columns(pl.lit(0.0).alias("_score")), dup_iou, score="_score")
        dup = res.filter(~pl.col("keep"))
    else:
        res = boxes.with_columns(pl.lit(True).alias("keep"))
        dup = res.head(0)
    rep = CheckReport(
        found=dup.height,
        images=dup["item_id"].n_unique() if dup.height else 0,
        fixed="duplicates" in fix and dup.height > 0,
    )
    rep.examples = [
        {
            "key": r["key"],
            "label_id": r["id"],
            "repeats": r["suppressed_by"],
            "iou": round(r["suppressed_iou"], 3),
        }
        for r in dup.head(EXAMPLES).iter_rows(named=True)
    ]
    reports["duplicates"] = rep
    if "duplicates" in fix:
        boxes = res.filter(pl.col("keep"))
    boxes = boxes.select("id", "item_id", "key", "class_id", "x1", "y1", "x2", "y2", "w", "h").with_columns(
        pl.col("w").cast(pl.Float64).alias("img_w"), pl.col("h").cast(pl.Float64).alias("img_h")
    )
    boxes = boxes.with_columns(geo.inside_image(tol, img_w="img_w", img_h="img_h").alias("_in"))
    bad = boxes.filter(~pl.col("_in"))
    rep = CheckReport(
        found=bad.height,
        images=bad["item_id"].n_unique() if bad.height else 0,
        fixed="outside" in fix and bad.height > 0,
    )
    rep.examples = [
        {
            "key": r["key"],
            "label_id": r["id"],
            "box": [r["x1"], r["y1"], r["x2"], r["y2"]],
            "image": [r["w"], r["h"]],
        }
        for r in bad.head(EXAMPLES).iter_rows(named=True)
    ]
    reports["outside"] = rep
    clip_to = pl.col("_in") | pl.lit("outside" in fix)
    boxes = boxes.with_columns(
        pl.when(clip_to).then(pl.col(c).clip(0.0, pl.col(lim))).otherwise(pl.col(c)).alias(c)
        for c, lim in (("x1", "img_w"), ("y1", "img_h"), ("x2", "img_w"), ("y2", "img_h"))
    )
    if "outside" in fix:
        boxes = boxes.filter((pl.col("x2") - pl.col("x1") >= 0.5) & (pl.col("y2") - pl.col("y1") >= 0.5))
    boxes = boxes.drop("_in")
    return boxes.drop("img_w", "img_h"), reports


def yolo_lines(boxes: pl.DataFrame) -> pl.DataFrame:
    """``item_id`` → the text of its YOLO label file (normalised cx cy w h, 6 decimals)."""
    import polars as pl

    from tuiops.formats.yolo import xyxy_line

    line = xyxy_line(pl.col("w"), pl.col("h"))
    return (
        boxes.sort("item_id", "id")
        .with_columns(line.alias("line"))
        .group_by("item_id", maintain_order=True)
        .agg(pl.col("line").str.join("\n").alias("text"))
        .with_columns(pl.col("text") + "\n")
    )
