"""`eval`: COCO mAP of a detection run against a label set, equal to pycocotools' COCOeval.

What is computed is exactly ``COCOeval(gt, dt, "bbox")`` → ``evaluate()`` →
``accumulate()`` → ``summarize()`` with the default parameters: IoU thresholds
.50:.05:.95, 101 recall points, maxDets 1/10/100, area ranges all / small (≤ 32²) /
medium (32²–96²) / large (≥ 96²) in square pixels, both borders inclusive as in
pycocotools. The numbers agree with pycocotools to within 1e-6 (the tests compare them on
random and adversarial data).

How the store maps onto COCO:

- Images: the label set's images (``set_images``, also those without boxes) that the run
  processed are COCO's ``imgIds`` (``images="processed"``, the default, as `match`
  compares); with ``images="all"`` every image of the set, and the labels of those the run
  never processed are misses (the result says how many either way). Detections on
  images outside the set are left out, as pycocotools leaves out results on images that
  are not in the ground truth.
- Categories: the workspace classes; a class without labels has AP −1 and is left out of
  the means (pycocotools: ``precision == -1``).
- A label's area is its COCO ``area`` when it came from a COCO file (``extra.area``),
  else its box width × height; ``extra.iscrowd`` marks a crowd region. A detection's area
  is its box's, as ``loadRes`` computes it.
- Within an image and class, detections with equal scores keep their store order (the
  order of the source file), labels likewise.
- Across images, detections with equal scores are taken in pycocotools' order: by
  image in ascending COCO image id (``imgIds`` is sorted; ``accumulate()``
  concatenates the images in that order and sorts by score with a stable sort). For a
  label set imported from COCO the image ids are the file's (kept in
  ``set_images.meta``), so ``eval`` equals pycocotools on the user's own files, ties
  included. Images without a COCO id (sets from YOLO or VOC) tie in item id order,
  which is the image id ``labels export --format coco`` writes for them; in a set that
  has both, the images with an integer COCO id come first (by id), then those with a
  string id (by id), then the rest (by item id).

The computation is vectorised: candidate pairs come from one sort-merge join on
(image, class), over the detections in (image, class, score) order so that an image's
boxes lie together in memory; :func:`tuiops.ops.matching.greedy_assign` matches all 10
thresholds × 4 area ranges in rounds over detection rank, and the accumulation is a
handful of whole-array numpy passes per threshold × area range over the detections in
COCOeval's (class, score) order; one score sort serves both orders. Classes are
independent: with enough boxes, groups of classes run in parallel threads, and large
evaluations use groups of at most about :data:`GROUP_BOXES` boxes, which keeps the
arrays small enough to be reused by the allocator instead of mapped afresh (what made
1M images cost more than five times 200k).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.frames import num_max
from tuiops.ops.base import CancelToken, ProgressFn, Reporter
from tuiops.ops.matching import member

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace

#: COCOeval's default parameters for bounding boxes.
IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RANGES = ((0.0**2, 1e5**2), (0.0**2, 32.0**2), (32.0**2, 96.0**2), (96.0**2, 1e5**2))
AREA_LABELS = ("all", "small", "medium", "large")

#: From this many boxes (labels + detections) on, groups of classes are evaluated in parallel threads.
PARALLEL_BOXES = 50_000

#: Classes are evaluated in groups of about this many boxes at most (a class is never split):
#: the arrays of a group then stay small enough for the allocator to reuse their memory
#: (glibc maps every block over 32 MiB afresh, and touching new pages costs more than the
#: arithmetic on them) and mostly in cache.
GROUP_BOXES = 1_500_000

#: Names of the 12 summary numbers, in pycocotools' ``stats`` order.
STAT_KEYS = (
    "map",
    "map50",
    "map75",
    "map_small",
    "map_medium",
    "map_large",
    "ar1",
    "ar10",
    "ar100",
    "ar_small",
    "ar_medium",
    "ar_large",
)


@dataclass
class CocoResult:
    """COCO metrics of one evaluation (−1 where pycocotools gives −1: nothing to measure).

    ``stats`` holds the 12 summary numbers in pycocotools' order (see :data:`STAT_KEYS`);
    ``class_ids``/``per_class_ap`` the AP@[.5:.95] of each class (all areas, 100
    detections); ``precision`` is pycocotools' ``eval['precision'][..., 2]`` (T×R×K×A at
    maxDets 100) and ``recall`` its ``eval['recall']`` (T×K×A×M).
    """

    stats: np.ndarray
    class_ids: np.ndarray
    per_class_ap: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    n_images: int = 0
    n_labels: int = 0
    n_dets: int = 0
    n_dets_skipped: int = 0
    seconds: float = 0.0

    def stat(self, key: str) -> float:
        return float(self.stats[STAT_KEYS.index(key)])


@dataclass
class EvalResult:
    """The `eval` op's answer: the 12 COCO numbers, AP per class and what was counted."""

    set_name: str
    run_name: str
    stats: dict[str, float]
    per_class: dict[str, float]
    images: int
    labels: int
    dets: int
    images_not_in_run: int
    dets_outside_set: int
    seconds: dict[str, float] = field(default_factory=dict)
    coco: CocoResult | None = None
    #: Which images of the set were evaluated: ``processed`` (by the run) or ``all``.
    images_from: str = "processed"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.stats,
            "per_class": self.per_class,
            "set": self.set_name,
            "run": self.run_name,
            "images": self.images,
            "labels": self.labels,
            "dets": self.dets,
            "images_not_in_run": self.images_not_in_run,
            "images_from": self.images_from,
            "dets_outside_set": self.dets_outside_set,
        }


def coco_evaluate(
    labels: pl.DataFrame,
    dets: pl.DataFrame,
    *,
    image_ids: Any = None,
    class_ids: Any = None,
    image_order: Any = None,
    check: Callable[[], None] | None = None,
) -> CocoResult:
    """COCO bbox evaluation of in-memory frames, equal to pycocotools' COCOeval.

    ``labels``: ``item_id, class_id, x1, y1, x2, y2`` and optionally ``area`` (COCO's
    annotation area; null → box area) and ``iscrowd``. ``dets``: ``item_id, class_id,
    x1, y1, x2, y2, score``. Within one image and class, rows keep their frame order for
    ties. ``image_ids``: COCO's imgIds (default: the images that have labels); detections
    on other images are left out. ``class_ids``: COCO's catIds (default: the classes that
    have labels); detections of other classes are left out. ``image_order``: one sort
    key per image of ``image_ids`` (e.g. its COCO image id): detections with equal
    scores in different images are taken in this order, as pycocotools takes them in
    ascending image id (default: the image ids' order). ``check`` is called between
    matching rounds (cancellation).

    Classes are independent in COCO's evaluation; with enough boxes they are split into
    groups evaluated side by side in threads (numpy and polars release the GIL).
    """
    t0 = time.perf_counter()
    imgs = np.asarray(labels["item_id"] if image_ids is None else image_ids, dtype=np.int64)
    img_key = None if image_order is None or image_ids is None else np.asarray(image_order)
    if len(imgs) > 1 and not (np.diff(imgs) > 0).all():
        imgs, first = np.unique(imgs, return_index=True)
        img_key = None if img_key is None else img_key[first]
    cats = np.unique(np.asarray(labels["class_id"] if class_ids is None else class_ids, dtype=np.int64))
    n_cat = len(cats)

    # Labels, in frame order (which keeps each image's and class's input order).
    lab = _columns(labels, ("item_id", "class_id"), ("x1", "y1", "x2", "y2"))
    lab["area"] = (lab["x2"] - lab["x1"]) * (lab["y2"] - lab["y1"])
    if "area" in labels.columns:
        given = labels["area"].cast(float).to_numpy()
        lab["area"] = np.where(np.isnan(given), lab["area"], given)
    lab["crowd"] = (
        labels["iscrowd"].fill_null(0).cast(int).to_numpy() != 0
        if "iscrowd" in labels.columns
        else np.zeros(labels.height, bool)
    )
    lab = _subset(lab, member(lab["item_id"], imgs) & member(lab["class_id"], cats))
    lab["cls"] = np.searchsorted(cats, lab["class_id"])

    det = _columns(dets, ("item_id", "class_id"), ("x1", "y1", "x2", "y2", "score"))
    n_all_dets = len(det["score"])
    det = _subset(det, member(det["item_id"], imgs) & member(det["class_id"], cats))
    if img_key is not None and len(det["item_id"]):
        rank = np.empty(len(imgs), np.int64)
        rank[np.argsort(img_key, kind="stable")] = np.arange(len(imgs))
        det = _subset(det, np.argsort(rank[np.searchsorted(imgs, det["item_id"])], kind="stable"))
    elif len(det["item_id"]) and (np.diff(det["item_id"]) < 0).any():
        det = _subset(det, np.argsort(det["item_id"], kind="stable"))
    det["cls"] = np.searchsorted(cats, det["class_id"])

    n_thr, n_rec, n_area, n_max = len(IOU_THRS), len(REC_THRS), len(AREA_RANGES), len(MAX_DETS)
    precision = -np.ones((n_thr, n_rec, n_cat, n_area))
    recall = -np.ones((n_thr, n_cat, n_area, n_max))
    n_boxes = len(lab["cls"]) + len(det["cls"])
    workers = min(os.cpu_count() or 1, n_cat) if n_boxes >= PARALLEL_BOXES else 1
    groups = _class_groups(
        np.bincount(lab["cls"], minlength=n_cat) + np.bincount(det["cls"], minlength=n_cat),
        min(n_cat, max(workers, -(-n_boxes // GROUP_BOXES))),
    )

    def run(codes: np.ndarray) -> int:
        want = np.zeros(n_cat, bool)
        want[codes] = True
        sub_l = _subset(lab, want[lab["cls"]])
        sub_d = _subset(det, want[det["cls"]])
        local = np.full(n_cat, -1)
        local[codes] = np.arange(len(codes))
        sub_l["cls"], sub_d["cls"] = local[sub_l["cls"]], local[sub_d["cls"]]
        prec, rec, n_det = _evaluate_classes(sub_l, sub_d, len(codes), check)
        precision[:, :, codes, :] = prec
        recall[:, codes, :, :] = rec
        return n_det

    if workers > 1 and len(groups) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(groups))) as pool:
            n_det = sum(pool.map(run, groups))
    else:
        n_det = sum(run(g) for g in groups)
    stats = _summarize(precision, recall)
    per_class = np.array([_mean(precision[:, :, k, 0]) for k in range(n_cat)])
    return CocoResult(
        stats=stats,
        class_ids=cats,
        per_class_ap=per_class,
        precision=precision,
        recall=recall,
        n_images=len(imgs),
        n_labels=len(lab["cls"]),
        n_dets=n_det,
        n_dets_skipped=n_all_dets - n_det,
        seconds=time.perf_counter() - t0,
    )


def _class_groups(sizes: np.ndarray, parts: int) -> list[np.ndarray]:
    """Split class codes into at most ``parts`` groups of about equal box counts (largest first)."""
    if parts <= 1 or len(sizes) <= 1:
        return [np.arange(len(sizes))]
    load = np.zeros(parts)
    members: list[list[int]] = [[] for _ in range(parts)]
    for k in np.argsort(-sizes, kind="stable").tolist():
        w = int(np.argmin(load))
        members[w].append(k)
        load[w] += sizes[k]
    return [np.sort(np.array(m, dtype=np.int64)) for m in members if m]


def _subset(arrays: dict[str, np.ndarray], sel: np.ndarray) -> dict[str, np.ndarray]:
    """The rows ``sel`` (a mask or indices) of column arrays; the same dict when a mask keeps all."""
    if sel.dtype == bool and sel.all():
        return dict(arrays)
    idx = np.flatnonzero(sel) if sel.dtype == bool else sel
    return {k: v[idx] for k, v in arrays.items()}


def _evaluate_classes(
    lab: dict[str, np.ndarray], det: dict[str, np.ndarray], n_cat: int, check: Callable[[], None] | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """evaluate + accumulate for labels and detections of classes ``0..n_cat-1`` (``cls``)."""
    from tuiops.ops.matching import Boxes, greedy_assign, group_pairs

    n_area = len(AREA_RANGES)
    lo = np.array([a[0] for a in AREA_RANGES])
    hi = np.array([a[1] for a in AREA_RANGES])
    g_cls = lab["cls"]
    g_key = lab["item_id"] * n_cat + g_cls
    g_crowd = lab["crowd"]
    g_ignore = g_crowd[:, None] | (lab["area"][:, None] < lo) | (lab["area"][:, None] > hi)

    # Detections: the top 100 per image and class. Matching runs in key order (image, class,
    # score descending), where an image's boxes and pairs lie side by side in memory; the
    # accumulation runs in one global order — class, score descending, image, rank — as
    # COCOeval concatenates them, and the matches are carried over to it at the end.
    d_cls = det["cls"]
    d_key = det["item_id"] * n_cat + d_cls
    kt, order, d_rank = _orders(d_key, det["score"], d_cls, MAX_DETS[-1])
    n_det = len(order)
    position = np.empty(len(det["score"]), dtype=np.int64)
    position[order] = np.arange(n_det)
    to_global = position[kt]
    k_boxes = Boxes.from_xyxy(*(det[c][kt] for c in ("x1", "y1", "x2", "y2")))
    d_area = np.empty(n_det)
    d_area[to_global] = k_boxes.area
    d_out = (d_area[:, None] < lo) | (d_area[:, None] > hi)
    d_cls, d_rank = d_cls[order], d_rank[order]

    any_crowd = bool(g_crowd.any())
    k_key = d_key[kt]
    di, gi, iou = group_pairs(
        k_key,
        g_key,
        k_boxes,
        Boxes.from_xyxy(lab["x1"], lab["y1"], lab["x2"], lab["y2"]),
        min_iou=float(min(IOU_THRS.min(), 1 - 1e-10)),
        g_crowd=g_crowd if any_crowd else None,
    )
    asg = greedy_assign(
        di,
        gi,
        iou,
        k_key,
        np.arange(n_det),
        n_det,
        IOU_THRS,
        gt_ignore=g_ignore,
        gt_crowd=g_crowd if any_crowd else None,
        with_iou=False,
        check=check,
    )
    asg.lone_det = to_global[asg.lone_det]
    asg.cont_det = to_global[asg.cont_det]
    npig = np.stack([np.bincount(g_cls[~g_ignore[:, a]], minlength=n_cat) for a in range(n_area)], axis=1)
    precision, recall = _accumulate(asg, d_cls, d_rank, d_out, g_ignore, npig)
    return precision, recall, n_det


def _orders(
    key: np.ndarray, score: np.ndarray, cls: np.ndarray, top_n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two orders of the detections that count (the ``top_n`` best of each key), from one score sort.

    Returns ``(by_key, order, rank)``: ``by_key`` lists them by key, score descending,
    input position; ``order`` by class, score descending, input position (COCOeval's
    concatenation); ``rank`` is every detection's place in its key, score descending.
    The detections are sorted once by score; the key order is then a stable sort of the
    keys combined with the score's dense rank (the detections of one key lie close
    together in the input, so that sort runs over nearly sorted data).
    """
    from tuiops.ops.matching import descending_score_order, run_positions, score_order

    n = len(key)
    by_score = descending_score_order(score)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.int32)
    s_sorted = score[by_score]
    s_rank = np.empty(n, np.int64)
    new = np.empty(n, np.int64)
    new[0] = 0
    np.not_equal(s_sorted[1:], s_sorted[:-1], out=new[1:])
    s_rank[by_score] = np.cumsum(new)
    k_lo, k_hi = int(key.min()), int(key.max())
    if (k_hi - k_lo + 1) * (int(s_rank[by_score[-1]]) + 1) < 2**62:
        by_key = np.argsort((key - k_lo) * (int(s_rank[by_score[-1]]) + 1) + s_rank, kind="stable")
        rank = np.empty(n, np.int32)
        rank[by_key] = run_positions(key[by_key])
    else:
        by_key, rank = score_order(key, score)
    counted = rank < top_n
    by_key = by_key[counted[by_key]]
    in_top = by_score[counted[by_score]]
    c = cls[in_top]
    small = c.astype(np.int16) if c.min() >= 0 and c.max() < 32768 else c
    order = in_top[np.argsort(small, kind="stable")]
    return by_key, order, rank


def _columns(frame: pl.DataFrame, ints: tuple[str, ...], floats: tuple[str, ...]) -> dict[str, np.ndarray]:
    out = {c: frame[c].cast(int).to_numpy() for c in ints}
    out.update({c: frame[c].cast(float).to_numpy() for c in floats})
    return out


def _accumulate(
    asg: Any,
    d_cls: np.ndarray,
    d_rank: np.ndarray,
    d_out: np.ndarray,
    g_ignore: np.ndarray,
    npig: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' ``accumulate()``: precision (T×R×K×A, maxDets 100) and recall (T×K×A×M).

    Per threshold × area range, the counted detections (not matched to an ignored
    label, not an unmatched detection outside the area range) of each class, in the
    global order, give recall = tp/npig and precision = tp/(tp+fp). The precision
    envelope (its suffix maximum) peaks at true positives, so it is read from the true
    positives alone: at recall point r it is the best precision of the true positives
    from the one that first reaches r on.
    """
    n_thr, n_rec, n_max = len(IOU_THRS), len(REC_THRS), len(MAX_DETS)
    n_cat, n_area = npig.shape
    n = len(d_cls)
    precision = -np.ones((n_thr, n_rec, n_cat, n_area))
    recall = -np.ones((n_thr, n_cat, n_area, n_max))
    cls_count = np.bincount(d_cls, minlength=n_cat)
    cls_start = np.cumsum(cls_count) - cls_count
    eps = np.spacing(1)
    cum_type = np.int32 if n < 2**31 else np.int64
    # A lone pair (a detection and a label with no other candidate) matches at every
    # threshold its IoU reaches: at threshold ``ti`` when its level exceeds ``thr_pos[ti]``.
    thr = np.asarray(asg.thresholds)
    ascending = np.sort(thr)
    lone_level = np.zeros(n, np.int8)
    lone_level[asg.lone_det] = np.searchsorted(ascending, asg.lone_iou, side="right")
    thr_pos = np.searchsorted(ascending, thr, side="left")

    def area(a: int) -> None:
        has_gt = npig[:, a] > 0
        npf = np.where(has_gt, npig[:, a], 1).astype(np.float64)
        need = _tp_needed(npf)
        g_in = ~g_ignore[:, a]
        d_in = ~d_out[:, a]
        lone_in = np.zeros(n, bool)
        lone_in[asg.lone_det] = g_in[asg.lone_gt]
        for ti in range(n_thr):
            c_gt = asg.cont_gt[ti * n_area + a]
            hit = c_gt >= 0
            c_det, c_gt = asg.cont_det[hit], c_gt[hit]
            c_in = g_in[c_gt]
            lone = lone_level > thr_pos[ti]
            # A detection counts (is not ignored) when it is inside the area range, unless it
            # is matched: then it counts when its label does. A true positive's place among the
            # counted detections is the running count up to it.
            tp_mask = lone & lone_in
            counted = d_in & ~lone
            counted |= tp_mask
            counted[c_det] = c_in
            cum = np.cumsum(counted, dtype=cum_type)
            tp_mask[c_det[c_in]] = True
            tp_idx = np.flatnonzero(tp_mask)
            t_cls = d_cls[tp_idx]
            t_count = np.bincount(t_cls, minlength=n_cat)
            t_end = np.cumsum(t_count)
            t_start = t_end - t_count
            seen = cum[tp_idx]
            before = np.where(cls_start > 0, cum[np.maximum(cls_start - 1, 0)], 0) if n else cls_start
            j = np.arange(1, len(tp_idx) + 1, dtype=np.float64) - np.repeat(t_start, t_count)
            seen = (seen - np.repeat(before, t_count)).astype(np.float64)
            q = _envelope_at(j / (seen + eps), t_start, t_end, need)
            q[~has_gt] = -1.0
            precision[ti, :, :, a] = q.T
            rank_tp = d_rank[tp_idx]
            for mi, m in enumerate(MAX_DETS):
                found = t_count if m >= MAX_DETS[-1] else np.bincount(t_cls[rank_tp < m], minlength=n_cat)
                recall[ti, :, a, mi] = np.where(has_gt, found / npf, -1.0)

    for a in range(n_area):
        area(a)
    return precision, recall


def _tp_needed(npf: np.ndarray) -> np.ndarray:
    """(K, R): the fewest true positives whose recall ``tp / npig`` (in floating point) reaches each point."""
    thr = REC_THRS[None, :]
    n = npf[:, None]
    need = np.ceil(thr * n)
    need = np.where((need - 1) / n >= thr, need - 1, need)
    need = np.where(need / n < thr, need + 1, need)
    return need.astype(np.int64)


def _envelope_at(pr: np.ndarray, t_start: np.ndarray, t_end: np.ndarray, need: np.ndarray) -> np.ndarray:
    """(K, R): max of ``pr`` over each class's true positives from number ``need`` on; 0 past the last.

    ``need`` 0 (recall 0) reads the best precision of the class (0 without true positives).
    """
    n_cat, n_rec = need.shape
    have = (t_end - t_start)[:, None]
    inside = need <= have
    bins = np.empty((n_cat, n_rec + 1), dtype=np.int64)
    bins[:, :n_rec] = np.minimum(t_start[:, None] + np.maximum(need - 1, 0), t_end[:, None])
    bins[:, n_rec] = t_end
    flat = bins.ravel()
    ext = np.concatenate((pr, [-np.inf]))
    bin_max = np.maximum.reduceat(ext, flat)
    nxt = np.concatenate((flat[1:], [len(ext)]))
    bin_max[nxt == flat] = -np.inf
    bin_max = bin_max.reshape(n_cat, n_rec + 1)[:, :n_rec]
    env = np.maximum.accumulate(bin_max[:, ::-1], axis=1)[:, ::-1]
    return np.where(inside & np.isfinite(env), env, 0.0)


def _mean(s: np.ndarray) -> float:
    v = s[s > -1]
    return -1.0 if v.size == 0 else float(np.mean(v))


def _summarize(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """pycocotools' ``summarize()`` for boxes: the 12 numbers."""
    t50 = np.where(IOU_THRS == 0.5)[0]
    t75 = np.where(IOU_THRS == 0.75)[0]
    m100 = len(MAX_DETS) - 1
    return np.array(
        [
            _mean(precision[:, :, :, 0]),
            _mean(precision[t50][:, :, :, 0]),
            _mean(precision[t75][:, :, :, 0]),
            _mean(precision[:, :, :, 1]),
            _mean(precision[:, :, :, 2]),
            _mean(precision[:, :, :, 3]),
            _mean(recall[:, :, 0, 0]),
            _mean(recall[:, :, 0, 1]),
            _mean(recall[:, :, 0, m100]),
            _mean(recall[:, :, 1, m100]),
            _mean(recall[:, :, 2, m100]),
            _mean(recall[:, :, 3, m100]),
        ]
    )


def source_image_order(store: Store, set_id: int, items: np.ndarray) -> np.ndarray | None:
    """A tie-order key per image of ``items`` (sorted item ids of the set): pycocotools' order.

    Images with an integer COCO id (``set_images.meta``) come first, by id; then those with
    a string id, by id; then the others, by item id. None when no image has a COCO id.
    """
    import polars as pl

    frame = store.read_frame(
        "SELECT item_id, "
        "CASE WHEN json_valid(meta) AND json_type(meta, '$.coco.id') = 'integer' "
        "THEN json_extract(meta, '$.coco.id') END AS sid_int, "
        "CASE WHEN json_valid(meta) AND json_type(meta, '$.coco.id') = 'text' "
        "THEN json_extract(meta, '$.coco.id') END AS sid_text "
        "FROM set_images WHERE set_id = ? AND meta IS NOT NULL",
        (set_id,),
        {"item_id": pl.Int64, "sid_int": pl.Int64, "sid_text": pl.String},
    ).filter(pl.col("sid_int").is_not_null() | pl.col("sid_text").is_not_null())
    if frame.height == 0:
        return None
    base = pl.DataFrame({"item_id": items}, schema={"item_id": pl.Int64})
    ranked = (
        base.join(frame, on="item_id", how="left", maintain_order="left")
        .with_row_index("pos")
        .sort(
            pl.col("sid_int").is_null(),
            "sid_int",
            pl.col("sid_text").is_null(),
            "sid_text",
            "item_id",
            nulls_last=True,
            maintain_order=True,
        )
    )
    key = np.empty(len(items), np.int64)
    key[ranked["pos"].to_numpy()] = np.arange(len(items))
    return key


def evaluate(
    ws: Workspace,
    set_name: str,
    run_name: str,
    *,
    items: Any = None,
    images: str = "processed",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> EvalResult:
    """COCO mAP of run ``run_name`` against label set ``set_name`` (see the module doc).

    ``items``: optional item ids to evaluate on (e.g. the validation split); by default
    every image of the set. ``images``: ``processed`` keeps to those the run processed
    (as `match` compares), ``all`` keeps every one (their labels are misses).
    """
    from tuiops.ops.match import check_images_choice, item_ids, read_boxes

    check_images_choice(images)

    store = ws.store
    rep = Reporter("eval", progress, cancel, total=3)
    set_id = store.label_set_id(set_name)
    run_id = store.run_id(run_name)
    t0 = time.perf_counter()
    set_items = item_ids(store, "set", set_id)
    run_items = item_ids(store, "run", run_id)
    if items is not None:
        set_items = set_items[member(set_items, np.unique(np.asarray(items, dtype=np.int64)))]
    processed = member(set_items, run_items)
    not_in_run = int((~processed).sum())
    if images == "processed":
        set_items = set_items[processed]
    labels, dets = read_boxes(store, set_id, run_id, coco_extra=True)
    rep.update(1, "read", force=True)
    t1 = time.perf_counter()
    n_dets_outside = int((~member(dets["item_id"].to_numpy(), set_items)).sum())
    classes = ws.classes
    n_cls = int(num_max(labels["class_id"]) or 0) + 1 if labels.height else 0
    class_ids = np.arange(max(len(classes), n_cls))
    res = coco_evaluate(
        labels,
        dets,
        image_ids=set_items,
        class_ids=class_ids,
        image_order=source_image_order(store, set_id, set_items),
        check=rep.check,
    )
    rep.update(3, "done", force=True)
    t2 = time.perf_counter()
    names = {i: (classes[i] if i < len(classes) else str(i)) for i in res.class_ids.tolist()}
    return EvalResult(
        set_name=set_name,
        run_name=run_name,
        stats={k: float(v) for k, v in zip(STAT_KEYS, res.stats, strict=True)},
        per_class={names[int(k)]: float(ap) for k, ap in zip(res.class_ids, res.per_class_ap, strict=True)},
        images=res.n_images,
        labels=res.n_labels,
        dets=res.n_dets,
        images_not_in_run=not_in_run,
        dets_outside_set=n_dets_outside,
        seconds={"read": t1 - t0, "evaluate": t2 - t1},
        coco=res,
        images_from=images,
    )
