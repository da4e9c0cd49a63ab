"""Every detection's and label's outcome at one IoU threshold, as COCOeval's ``evaluate()`` leaves it.

The error analyses (TIDE, calibration, slices, run-vs-run comparison) read COCO's
per-image results at one threshold, area range ``all`` and 100 detections per image and
class: which detections are true positives, which are ignored (matched to a crowd
region or an ignored label), which labels were found. :func:`coco_cells` computes them
with the same matching as :func:`tuiops.ops.evaluate.coco_evaluate` (the greedy
assignment of :mod:`tuiops.ops.matching`) and keeps the detections in the order COCO's
``accumulate()`` ranks them: by class, descending score, image (in the given image
order), then rank in the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.ops.matching import Boxes, member

if TYPE_CHECKING:
    import polars as pl

#: COCOeval's 101 recall points.
REC_POINTS = np.linspace(0.0, 1.00, 101, endpoint=True)
#: COCOeval's largest number of detections per image and class.
MAX_DET = 100
#: COCOeval's area range ``all``.
AREA_ALL = (0.0, 1e5**2)


@dataclass
class Cells:
    """Outcomes at one threshold. Detections (``d_*``) in COCO's ranking order, labels (``g_*``) in input order.

    ``cats``/``imgs``: the class and image ids (sorted); ``d_cls``/``g_cls`` index ``cats``;
    ``d_src``: each detection's row in the input frame.
    ``d_gt``: the label each detection matched (−1: none). ``d_ignored``: matched to an
    ignored label, or unmatched and outside the area range. ``g_ignored``: a crowd region or
    a label outside the area range (not counted). ``g_matched``: found by some detection.
    """

    cats: np.ndarray
    imgs: np.ndarray
    threshold: float
    d_item: np.ndarray
    d_cls: np.ndarray
    d_score: np.ndarray
    d_rank: np.ndarray
    d_src: np.ndarray
    d_boxes: Boxes
    d_gt: np.ndarray
    d_matched: np.ndarray
    d_ignored: np.ndarray
    g_item: np.ndarray
    g_cls: np.ndarray
    g_boxes: Boxes
    g_crowd: np.ndarray
    g_ignored: np.ndarray
    g_matched: np.ndarray
    n_dets_skipped: int = 0

    @property
    def d_fp(self) -> np.ndarray:
        """Counted detections that are not true positives."""
        return ~self.d_matched & ~self.d_ignored

    @property
    def d_tp(self) -> np.ndarray:
        return self.d_matched & ~self.d_ignored

    @property
    def g_counted(self) -> np.ndarray:
        return ~self.g_ignored


def _array(frame: pl.DataFrame, col: str, dtype: Any) -> np.ndarray:
    return frame[col].cast(float).to_numpy().astype(dtype) if frame.height else np.zeros(0, dtype)


def coco_cells(
    labels: pl.DataFrame,
    dets: pl.DataFrame,
    *,
    image_ids: Any = None,
    class_ids: Any = None,
    image_order: Any = None,
    threshold: float = 0.5,
) -> Cells:
    """The outcomes at ``threshold`` of the boxes (frames and arguments as :func:`~tuiops.ops.evaluate.coco_evaluate`)."""
    from tuiops.ops.matching import descending_score_order, greedy_assign, group_pairs, score_order

    imgs = np.asarray(labels["item_id"] if image_ids is None else image_ids, dtype=np.int64)
    key = None if image_order is None or image_ids is None else np.asarray(image_order)
    if len(imgs) > 1 and not (np.diff(imgs) > 0).all():
        imgs, first = np.unique(imgs, return_index=True)
        key = None if key is None else key[first]
    cats = np.unique(np.asarray(labels["class_id"] if class_ids is None else class_ids, dtype=np.int64))
    n_cat = max(len(cats), 1)

    g_item = _array(labels, "item_id", np.int64)
    g_cid = _array(labels, "class_id", np.int64)
    keep_g = np.flatnonzero(member(g_item, imgs) & member(g_cid, cats))
    g_item, g_cid = g_item[keep_g], g_cid[keep_g]
    g_boxes = Boxes.from_xyxy(*(_array(labels, c, np.float64)[keep_g] for c in ("x1", "y1", "x2", "y2")))
    g_area = g_boxes.area.copy()
    if "area" in labels.columns and labels.height:
        given = labels["area"].cast(float).to_numpy()[keep_g]
        g_area = np.where(np.isnan(given), g_area, given)
    g_crowd = (
        labels["iscrowd"].fill_null(0).cast(int).to_numpy()[keep_g] != 0
        if "iscrowd" in labels.columns and labels.height
        else np.zeros(len(keep_g), bool)
    )
    g_cls = np.searchsorted(cats, g_cid)
    g_ignored = g_crowd | (g_area < AREA_ALL[0]) | (g_area > AREA_ALL[1])

    d_item = _array(dets, "item_id", np.int64)
    d_cid = _array(dets, "class_id", np.int64)
    n_all = len(d_item)
    sel = np.flatnonzero(member(d_item, imgs) & member(d_cid, cats))
    if key is not None and len(sel):
        rank_of_img = np.empty(len(imgs), np.int64)
        rank_of_img[np.argsort(key, kind="stable")] = np.arange(len(imgs))
        sel = sel[np.argsort(rank_of_img[np.searchsorted(imgs, d_item[sel])], kind="stable")]
    elif len(sel) and (np.diff(d_item[sel]) < 0).any():
        sel = sel[np.argsort(d_item[sel], kind="stable")]
    score = _array(dets, "score", np.float64)[sel]
    d_item, d_cls = d_item[sel], np.searchsorted(cats, d_cid[sel])
    coords = [_array(dets, c, np.float64)[sel] for c in ("x1", "y1", "x2", "y2")]
    # The top 100 of each image and class, then COCO's ranking order.
    _, d_rank = score_order(d_item * n_cat + d_cls, score)
    top = np.flatnonzero(d_rank < MAX_DET)
    order = top[descending_score_order(score[top], d_cls[top])]
    d_item, d_cls, score, d_rank = d_item[order], d_cls[order], score[order], d_rank[order]
    d_boxes = Boxes.from_xyxy(*(c[order] for c in coords))
    d_out = (d_boxes.area < AREA_ALL[0]) | (d_boxes.area > AREA_ALL[1])

    n_det = len(order)
    d_key = d_item * n_cat + d_cls
    di, gi, iou = group_pairs(
        d_key,
        g_item * n_cat + g_cls,
        d_boxes,
        g_boxes,
        min_iou=float(min(threshold, 1 - 1e-10)),
        g_crowd=g_crowd if g_crowd.any() else None,
    )
    asg = greedy_assign(
        di,
        gi,
        iou,
        d_key,
        d_rank,
        n_det,
        [threshold],
        gt_ignore=g_ignored[:, None],
        gt_crowd=g_crowd if g_crowd.any() else None,
        with_iou=False,
    )
    d_gt = asg.dense(0)
    d_matched = d_gt >= 0
    d_ignored = np.where(d_matched, g_ignored[np.maximum(d_gt, 0)] if len(g_ignored) else False, d_out)
    g_matched = np.zeros(len(g_item), bool)
    g_matched[d_gt[d_matched]] = True
    return Cells(
        cats=cats,
        imgs=imgs,
        threshold=threshold,
        d_item=d_item,
        d_cls=d_cls,
        d_score=score,
        d_rank=d_rank,
        d_src=sel[order],
        d_boxes=d_boxes,
        d_gt=d_gt,
        d_matched=d_matched,
        d_ignored=np.asarray(d_ignored, bool),
        g_item=g_item,
        g_cls=g_cls,
        g_boxes=g_boxes,
        g_crowd=g_crowd,
        g_ignored=g_ignored,
        g_matched=g_matched,
        n_dets_skipped=n_all - n_det,
    )


def average_precision(matched: np.ndarray, ignored: np.ndarray, n_gt: int) -> float:
    """COCO's 101-point AP of detections already in descending score order (0 without labels or detections)."""
    n = len(matched)
    if n == 0 or n_gt <= 0:
        return 0.0
    tp = np.cumsum(matched & ~ignored, dtype=np.float64)
    fp = np.cumsum(~matched & ~ignored, dtype=np.float64)
    rc = tp / n_gt
    pr = tp / (tp + fp + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1]
    at = np.searchsorted(rc, REC_POINTS, side="left")
    q = np.where(at < n, pr[np.minimum(at, n - 1)], 0.0)
    return float(q.sum() / len(REC_POINTS))
