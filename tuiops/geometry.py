"""Polars expression builders for box geometry.

Boxes are absolute pixel coordinates in columns ``x1, y1, x2, y2``; a *suffix*
selects another set of columns (``x1_d, y1_d, …`` after a join, say). Every
builder returns a :class:`polars.Expr`; nothing loops per box.

Conventions (as pycocotools for bounding boxes): width = x2 − x1, no +1; an empty
or inverted box has area 0; IoU of two empty boxes is 0.
"""

from __future__ import annotations

import polars as pl


def _c(name: str, suffix: str) -> pl.Expr:
    return pl.col(f"{name}{suffix}")


def width(suffix: str = "") -> pl.Expr:
    """Box width ``x2 − x1`` (clipped at 0)."""
    return (_c("x2", suffix) - _c("x1", suffix)).clip(lower_bound=0.0)


def height(suffix: str = "") -> pl.Expr:
    """Box height ``y2 − y1`` (clipped at 0)."""
    return (_c("y2", suffix) - _c("y1", suffix)).clip(lower_bound=0.0)


def area(suffix: str = "") -> pl.Expr:
    """Box area in square pixels."""
    return width(suffix) * height(suffix)


def center_x(suffix: str = "") -> pl.Expr:
    return (_c("x1", suffix) + _c("x2", suffix)) / 2.0


def center_y(suffix: str = "") -> pl.Expr:
    return (_c("y1", suffix) + _c("y2", suffix)) / 2.0


def intersection(a: str = "", b: str = "_right") -> pl.Expr:
    """Intersection area of box ``a`` and box ``b`` in the same row."""
    iw = pl.min_horizontal(_c("x2", a), _c("x2", b)) - pl.max_horizontal(_c("x1", a), _c("x1", b))
    ih = pl.min_horizontal(_c("y2", a), _c("y2", b)) - pl.max_horizontal(_c("y1", a), _c("y1", b))
    return iw.clip(lower_bound=0.0) * ih.clip(lower_bound=0.0)


def iou(a: str = "", b: str = "_right") -> pl.Expr:
    """Intersection over union of box ``a`` and box ``b`` in the same row (0 when the union is 0)."""
    inter = intersection(a, b)
    union = area(a) + area(b) - inter
    return pl.when(union > 0).then(inter / union).otherwise(0.0)


def aspect(suffix: str = "") -> pl.Expr:
    """Aspect ratio width / height (null for a box of zero height)."""
    h = height(suffix)
    return pl.when(h > 0).then(width(suffix) / h).otherwise(None)


def area_pct(suffix: str = "", img_w: str = "img_w", img_h: str = "img_h") -> pl.Expr:
    """Box area as a percentage of the image area (null when the image size is unknown)."""
    img_area = pl.col(img_w).cast(pl.Float64) * pl.col(img_h).cast(pl.Float64)
    return pl.when(img_area > 0).then(100.0 * area(suffix) / img_area).otherwise(None)


def edge_distances(suffix: str = "", img_w: str = "img_w", img_h: str = "img_h") -> list[pl.Expr]:
    """Distances of the box to the left, top, right and bottom image edges, as four named expressions."""
    return [
        _c("x1", suffix).alias("dist_left"),
        _c("y1", suffix).alias("dist_top"),
        (pl.col(img_w) - _c("x2", suffix)).alias("dist_right"),
        (pl.col(img_h) - _c("y2", suffix)).alias("dist_bottom"),
    ]


def border_contact(tol: float = 2.0, suffix: str = "", img_w: str = "img_w", img_h: str = "img_h") -> pl.Expr:
    """Bitmask of the edges the box is within ``tol`` pixels of: 1 left, 2 top, 4 right, 8 bottom."""
    left = (_c("x1", suffix) <= tol).cast(pl.Int8)
    top = (_c("y1", suffix) <= tol).cast(pl.Int8)
    right = ((pl.col(img_w) - _c("x2", suffix)) <= tol).cast(pl.Int8)
    bottom = ((pl.col(img_h) - _c("y2", suffix)) <= tol).cast(pl.Int8)
    return left + 2 * top + 4 * right + 8 * bottom


def inside_image(tol: float = 0.0, suffix: str = "", img_w: str = "img_w", img_h: str = "img_h") -> pl.Expr:
    """True when the box lies inside the image, allowing ``tol`` pixels outside each edge."""
    return (
        (_c("x1", suffix) >= -tol)
        & (_c("y1", suffix) >= -tol)
        & (_c("x2", suffix) <= pl.col(img_w) + tol)
        & (_c("y2", suffix) <= pl.col(img_h) + tol)
        & (_c("x2", suffix) > _c("x1", suffix))
        & (_c("y2", suffix) > _c("y1", suffix))
    )


def pairs(
    left: pl.LazyFrame,
    right: pl.LazyFrame,
    *,
    on: str | list[str] = "item_id",
    suffix: str = "_right",
    min_iou: float | None = None,
) -> pl.LazyFrame:
    """All box pairs of ``left`` × ``right`` that share ``on`` (same image), with an ``iou`` column.

    With ``min_iou`` only pairs whose IoU is at least that value are kept (pairs with
    IoU 0 are dropped whenever ``min_iou`` > 0).
    """
    joined = left.join(right, on=on, how="inner", suffix=suffix).with_columns(iou("", suffix).alias("iou"))
    if min_iou is not None:
        joined = joined.filter(pl.col("iou") >= min_iou) if min_iou > 0 else joined
    return joined


def coco_iou(dt: str = "", gt: str = "_right", crowd: pl.Expr | None = None) -> pl.Expr:
    """IoU of a detection ``dt`` and a label ``gt`` computed exactly as pycocotools does for boxes.

    The same floating-point steps as ``maskApi.c:bbIou``: widths are ``x2 − x1`` (the
    right edge is ``x1 + width``), an overlap of zero or less in either axis is IoU 0, and
    the union is ``(area_dt + area_gt) − inter``. Where ``crowd`` (a boolean expression
    about the label) is true the union is the detection's area alone, as COCO scores a
    detection inside a crowd region.
    """
    dw = _c("x2", dt) - _c("x1", dt)
    dh = _c("y2", dt) - _c("y1", dt)
    gw = _c("x2", gt) - _c("x1", gt)
    gh = _c("y2", gt) - _c("y1", gt)
    right = pl.min_horizontal(dw + _c("x1", dt), gw + _c("x1", gt))
    bottom = pl.min_horizontal(dh + _c("y1", dt), gh + _c("y1", gt))
    iw = right - pl.max_horizontal(_c("x1", dt), _c("x1", gt))
    ih = bottom - pl.max_horizontal(_c("y1", dt), _c("y1", gt))
    inter = iw * ih
    da = dw * dh
    union = da + gw * gh - inter
    if crowd is not None:
        union = pl.when(crowd).then(da).otherwise(union)
    return pl.when((iw > 0) & (ih > 0)).then(inter / union).otherwise(0.0)
