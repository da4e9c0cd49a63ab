"""Greedy COCO-style matching of detections to labels, vectorised over every image at once.

The rule is pycocotools' ``COCOeval.evaluateImg``: inside a *group* (one image and
class for COCO; one image for cross-class matching) the detections are taken in
descending score — a stable order, so equal scores keep their input order; a
detection's place in that order is its *rank* — and each one takes, among the labels it
may still take (not matched yet, or a crowd region) whose IoU with it is at least the
threshold (``min(t, 1 − 1e-10)``), the one with the highest IoU. Labels that are not
ignored are preferred to ignored ones (a detection falls back to an ignored label only
when no other one qualifies); among equal IoUs the label that comes *last* in the
group's input order wins, as pycocotools' ``if ious[d, g] < iou: continue`` lets a later
equal IoU replace the earlier one.

Instead of a loop per image, :func:`greedy_assign` runs *rounds*. Pairs whose detection
and label have no other candidate (single-edge components of the candidate graph, the
common case) are decided at once, without rounds. The other detections take turns: round
``k`` lets the ``k``-th of them (by rank) in every group choose at once — one detection
per group per round, so nothing contends inside a round; the number of rounds is the
largest number of contested detections in one group. Many configurations — IoU thresholds
× ignore-flag sets (COCO's area ranges) — are matched side by side in the same rounds.

Everything here works on numpy arrays indexed by detection (``di``) and label (``gi``)
position; the callers build them from polars frames.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: pycocotools caps a threshold just below 1 so that a threshold of 1.0 can still match.
IOU_CAP = 1.0 - 1e-10

#: Candidate pairs are scored in blocks of about this many (their temporaries stay in cache).
PAIR_BLOCK = 1 << 16


def effective_thresholds(thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """The thresholds as the matching compares them: ``min(t, 1 − 1e-10)``."""
    return np.minimum(np.asarray(thresholds, dtype=np.float64), IOU_CAP)


def member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Whether each value is in ``sorted_set`` (sorted, unique)."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), bool)
    if sorted_set[-1] - sorted_set[0] + 1 == len(sorted_set):  # a contiguous range of ids
        return (values >= sorted_set[0]) & (values <= sorted_set[-1])
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[at] == values


# -- ordering ----------------------------------------------------------------------------------


def score_order(group: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order detections by group, then descending score, ties in input order; and their ranks.

    Returns ``(order, rank)``: ``order`` lists detection indices sorted by (group, −score,
    input position); ``rank[i]`` is detection ``i``'s 0-based place in its group.
    """
    import polars as pl

    n = len(group)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    frame = pl.DataFrame({"g": group, "s": score})
    order = (
        frame.select(pl.arg_sort_by(["g", "s"], descending=[False, True], maintain_order=True))
        .to_series()
        .to_numpy()
        .astype(np.int64)
    )
    rank = np.empty(n, np.int32)
    rank[order] = run_positions(np.asarray(group)[order])
    return order, rank


def run_positions(sorted_key: np.ndarray) -> np.ndarray:
    """Position of each element inside its run of equal values (``sorted_key`` sorted), int32."""
    n = len(sorted_key)
    if n == 0:
        return np.zeros(0, np.int32)
    idx = np.arange(n, dtype=np.int64)
    new = np.empty(n, bool)
    new[0] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=new[1:])
    start = np.maximum.accumulate(np.where(new, idx, 0))
    return (idx - start).astype(np.int32)


def descending_score_order(score: np.ndarray, cls: np.ndarray | None = None) -> np.ndarray:
    """Indices sorted by (class, descending score), ties in input order (a stable sort)."""
    import polars as pl

    score = np.asarray(score, dtype=np.float64)
    if len(score) == 0:
        return np.zeros(0, np.int64)
    # −score as an integer with the same order (IEEE-754 bits, negatives flipped): one
    # stable integer sort, then a stable radix sort by class.
    bits = (-score + 0.0).view(np.int64)  # + 0.0 turns −0.0 into 0.0: they are equal
    key = np.where(bits < 0, ~bits ^ np.int64(-(2**63)), bits)
    order = pl.DataFrame({"k": key}).select(pl.arg_sort_by("k", maintain_order=True)).to_series().to_numpy()
    order = order.astype(np.int64)
    if cls is not None:
        c = np.asarray(cls)[order]
        small = c.astype(np.int16) if c.min() >= 0 and c.max() < 32768 else c
        order = order[np.argsort(small, kind="stable")]
    return order


# -- candidate pairs ----------------------------------------------------------------------------


@dataclass
class Boxes:
    """Box columns in pycocotools' terms, precomputed once per box."""

    x1: np.ndarray
    y1: np.ndarray
    xr: np.ndarray  # x1 + width, as COCO's [x, y, w, h] gives the right edge
    yb: np.ndarray
    area: np.ndarray  # width × height, unclipped

    @classmethod
    def from_xyxy(cls, x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray) -> Boxes:
        w = x2 - x1
        h = y2 - y1
        return cls(x1, y1, w + x1, h + y1, w * h)


def group_pairs(
    d_key: np.ndarray,
    g_key: np.ndarray,
    dets: Boxes,
    gts: Boxes,
    *,
    min_iou: float,
    g_crowd: np.ndarray | None = None,
    d_order: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detection/label pairs that share a group key and overlap with IoU ≥ ``min_iou`` (and > 0).

    A sort-merge join on the keys (``d_order``: the detections' order by key, if known);
    the IoU is computed with pycocotools' floating-point steps (``maskApi.c:bbIou``; with
    ``g_crowd`` the union of a crowd label is the detection's area). Returns
    ``(di, gi, iou)``, grouped by key.
    """
    d_key = np.asarray(d_key, dtype=np.int64)
    g_key = np.asarray(g_key, dtype=np.int64)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    if len(d_key) == 0 or len(g_key) == 0:
        return empty
    d_ord = _key_order(d_key) if d_order is None else np.asarray(d_order, dtype=np.int64)
    g_ord = _key_order(g_key)
    dk = d_key if d_ord is None else d_key[d_ord]
    gk = g_key if g_ord is None else g_key[g_ord]
    lo, cnt = _runs_of(gk, dk)
    d_idx = np.arange(len(dk), dtype=np.int64) if d_ord is None else d_ord
    ends = np.cumsum(cnt)
    if int(ends[-1]) == 0:
        return empty
    # Blocks of about PAIR_BLOCK candidate pairs, so that the temporaries stay in cache.
    cuts = np.searchsorted(ends, np.arange(PAIR_BLOCK, int(ends[-1]), PAIR_BLOCK), side="left")
    bounds = [0, *np.unique(cuts + 1).tolist()]
    if bounds[-1] != len(dk):
        bounds.append(len(dk))
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for a, b in itertools.pairwise(bounds):
        c = cnt[a:b]
        total = int(c.sum())
        if total == 0:
            continue
        di = np.repeat(d_idx[a:b], c)
        gi = np.repeat(lo[a:b] - (np.cumsum(c) - c), c) + np.arange(total, dtype=np.int64)
        if g_ord is not None:
            gi = g_ord[gi]
        # Overlap in x first (most pairs of an image do not), then in y for the rest.
        iw = np.minimum(dets.xr[di], gts.xr[gi]) - np.maximum(dets.x1[di], gts.x1[gi])
        keep = np.flatnonzero(iw > 0)
        di, gi, iw = di[keep], gi[keep], iw[keep]
        ih = np.minimum(dets.yb[di], gts.yb[gi]) - np.maximum(dets.y1[di], gts.y1[gi])
        keep = np.flatnonzero(ih > 0)
        di, gi = di[keep], gi[keep]
        iou = _iou_from_overlap(
            iw[keep], ih[keep], dets.area[di], gts.area[gi], None if g_crowd is None else g_crowd[gi]
        )
        keep = np.flatnonzero(iou >= min_iou)
        out.append((di[keep], gi[keep], iou[keep]))
    if not out:
        return empty
    d_all, g_all, iou_all = (np.concatenate(parts) for parts in zip(*out, strict=True))
    return d_all, g_all, iou_all


def _runs_of(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the start and length of its run of equal keys in ``sorted_keys``.

    Dense key ranges (item ids × classes usually are) use a counting table instead of
    two binary searches per query.
    """
    k_min = int(min(sorted_keys[0], queries.min()))
    span = int(max(sorted_keys[-1], queries.max())) - k_min + 1
    if span <= 4 * (len(sorted_keys) + len(queries)) + 1024:
        counts = np.bincount(sorted_keys - k_min, minlength=span)
        starts = np.cumsum(counts) - counts
        q = queries - k_min
        return starts[q], counts[q]
    lo = np.searchsorted(sorted_keys, queries, side="left")
    return lo, np.searchsorted(sorted_keys, queries, side="right") - lo


def _key_order(key: np.ndarray) -> np.ndarray | None:
    """A stable sort order of ``key``, or None when it is sorted already."""
    if len(key) < 2 or not (key[1:] < key[:-1]).any():
        return None
    return np.argsort(key, kind="stable")


def pair_iou(dets: Boxes, gts: Boxes, di: np.ndarray, gi: np.ndarray) -> np.ndarray:
    """COCO IoU of the given detection/label pairs (the same floating-point steps as :func:`group_pairs`)."""
    iw = np.minimum(dets.xr[di], gts.xr[gi]) - np.maximum(dets.x1[di], gts.x1[gi])
    ih = np.minimum(dets.yb[di], gts.yb[gi]) - np.maximum(dets.y1[di], gts.y1[gi])
    ok = (iw > 0) & (ih > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = _iou_from_overlap(iw, ih, dets.area[di], gts.area[gi], None)
    return np.where(ok, iou, 0.0)


def _iou_from_overlap(
    iw: np.ndarray, ih: np.ndarray, da: np.ndarray, ga: np.ndarray, crowd: np.ndarray | None
) -> np.ndarray:
    inter = iw * ih
    union = da + ga - inter
    if crowd is not None:
        union = np.where(crowd, da, union)
    return inter / union


# -- greedy assignment --------------------------------------------------------------------------


@dataclass
class Assignment:
    """Which label each detection took, per configuration ``c = t_index * n_sets + set_index``.

    Stored compactly: *lone* pairs (a detection and a label that have no other
    candidate) match in every configuration whose threshold their IoU reaches; the
    *contested* detections ``cont_det`` have their label (−1: none) and IoU per
    configuration in ``cont_gt`` / ``cont_iou`` (configurations × contested detections).
    """

    n_det: int
    thresholds: np.ndarray
    n_sets: int
    lone_det: np.ndarray
    lone_gt: np.ndarray
    lone_iou: np.ndarray
    cont_det: np.ndarray
    cont_gt: np.ndarray
    cont_iou: np.ndarray | None

    def __post_init__(self) -> None:
        # Lone pairs matched at threshold t are a prefix once sorted by how many thresholds
        # their IoU reaches (with one threshold, every lone pair reaches it).
        ordered = np.sort(self.thresholds)
        level = np.searchsorted(ordered, self.lone_iou, side="right").astype(np.int16)
        if len(self.thresholds) > 1:
            order = np.argsort(-level, kind="stable")
            self.lone_det, self.lone_gt, self.lone_iou = (
                self.lone_det[order],
                self.lone_gt[order],
                self.lone_iou[order],
            )
        reach = np.bincount(level, minlength=len(ordered) + 1)[::-1].cumsum()[::-1]
        self._lone_n = reach[np.searchsorted(ordered, self.thresholds, side="left") + 1]

    @property
    def n_configs(self) -> int:
        return len(self.thresholds) * self.n_sets

    def parts(self, c: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The matches under configuration ``c`` as ``(det, gt)`` index-array pairs."""
        k = int(self._lone_n[c // self.n_sets])
        hit = self.cont_gt[c] >= 0
        return [(self.lone_det[:k], self.lone_gt[:k]), (self.cont_det[hit], self.cont_gt[c][hit])]

    def matches(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """``(det, gt)`` index arrays of the matches under configuration ``c``."""
        (d1, g1), (d2, g2) = self.parts(c)
        return np.concatenate((d1, d2)), np.concatenate((g1, g2))

    def dense(self, c: int = 0) -> np.ndarray:
        """The label index each detection took under configuration ``c``, −1 for none (int64)."""
        out = np.full(self.n_det, -1, dtype=np.int64)
        k = int(self._lone_n[c // self.n_sets])
        out[self.lone_det[:k]] = self.lone_gt[:k]
        out[self.cont_det] = self.cont_gt[c]
        return out

    def dense_iou(self, c: int = 0) -> np.ndarray:
        """The IoU of each detection with the label it took under configuration ``c``, NaN for none."""
        if self.cont_iou is None:
            raise ValueError("this assignment keeps no IoU (with_iou=False)")
        out = np.full(self.n_det, np.nan)
        k = int(self._lone_n[c // self.n_sets])
        out[self.lone_det[:k]] = self.lone_iou[:k]
        out[self.cont_det] = self.cont_iou[c]
        return out


def greedy_assign(
    det: np.ndarray,
    gt: np.ndarray,
    iou: np.ndarray,
    det_group: np.ndarray,
    det_order: np.ndarray,
    n_det: int,
    thresholds: Sequence[float] | np.ndarray,
    *,
    gt_ignore: np.ndarray | None = None,
    gt_crowd: np.ndarray | None = None,
    with_iou: bool = True,
    check: Callable[[], None] | None = None,
) -> Assignment:
    """Match detections to labels greedily, for every threshold × ignore set at once.

    ``det``, ``gt``, ``iou``: the candidate pairs (detection index, label index, IoU),
    pairs inside one group only; pairs below the lowest threshold are dropped. Label
    indices must grow with the labels' input order inside a group (the tie rule picks the
    last). ``det_group``, ``det_order``: each detection's group and a number that orders
    the detections of one group as they take their turns (distinct within a group: e.g.
    the position in a stable descending-score order). ``gt_ignore``: optional
    ``(n_gt, A)`` boolean ignore flags, one column per ignore set (COCO: crowd, or area
    outside the range); ``gt_crowd``: labels any number of detections may match.
    ``with_iou=False`` keeps no IoU per match (:meth:`Assignment.dense_iou` is then
    unavailable). ``check`` is called before each round (cancellation).
    """
    thr = effective_thresholds(thresholds)
    n_thr = len(thr)
    n_sets = 1 if gt_ignore is None else int(gt_ignore.shape[1])
    n_cfg = n_thr * n_sets
    det = np.asarray(det, dtype=np.int64)
    gt = np.asarray(gt, dtype=np.int64)
    iou = np.asarray(iou, dtype=np.float64)
    if len(iou) and iou.min() < thr.min():
        keep = np.flatnonzero(iou >= thr.min())
        det, gt, iou = det[keep], gt[keep], iou[keep]
    no_int = np.zeros(0, np.int64)
    if len(det) == 0:
        return Assignment(
            n_det,
            thr,
            n_sets,
            no_int,
            no_int,
            np.zeros(0),
            no_int,
            np.zeros((n_cfg, 0), np.int64),
            np.zeros((n_cfg, 0)),
        )

    n_gt = int(gt.max()) + 1
    lone = (np.bincount(det, minlength=n_det)[det] == 1) & (np.bincount(gt, minlength=n_gt)[gt] == 1)
    lone_det, lone_gt, lone_iou = det[lone], gt[lone], iou[lone]
    contested = ~lone
    det, gt, iou = det[contested], gt[contested], iou[contested]
    cont_det, det_local = np.unique(det, return_inverse=True)
    cont_gt = np.full((n_cfg, len(cont_det)), -1, dtype=np.int64)
    cont_iou = np.full((n_cfg, len(cont_det)), np.nan) if with_iou else None
    if len(det):
        # A contested detection's turn among the contested ones of its group: its round.
        group = np.asarray(det_group)[cont_det]
        by_turn = np.lexsort((np.asarray(det_order)[cont_det], group))
        turn = np.empty(len(cont_det), np.int32)
        turn[by_turn] = run_positions(group[by_turn])
        rank = turn[det_local]
        crowd = None if gt_crowd is None else np.asarray(gt_crowd, bool)
        if gt_ignore is None:
            _rounds(det_local, gt, iou, rank, thr, None, crowd, cont_gt, cont_iou, check)
        else:
            # Where every contested label of a group has the same ignore flags, the flags
            # decide nothing: match those groups once per threshold and copy the result to
            # every ignore set; only groups with mixed flags need all configurations.
            ignore = np.asarray(gt_ignore, bool)
            bits = (ignore[gt] * (1 << np.arange(n_sets))).sum(axis=1)
            g = group[det_local]
            by_group = np.argsort(g, kind="stable")
            starts = np.flatnonzero(np.concatenate(([True], g[by_group][1:] != g[by_group][:-1])))
            lo = np.minimum.reduceat(bits[by_group], starts)
            hi = np.maximum.reduceat(bits[by_group], starts)
            mixed_group = np.repeat(lo != hi, np.diff(np.concatenate((starts, [len(g)]))))
            mixed = np.empty(len(g), bool)
            mixed[by_group] = mixed_group
            uni = ~mixed
            if uni.any():
                u_gt = np.full((n_thr, len(cont_det)), -1, dtype=np.int64)
                u_iou = np.full((n_thr, len(cont_det)), np.nan) if with_iou else None
                _rounds(det_local[uni], gt[uni], iou[uni], rank[uni], thr, None, crowd, u_gt, u_iou, check)
                cont_gt[:] = np.repeat(u_gt, n_sets, axis=0)
                if cont_iou is not None and u_iou is not None:
                    cont_iou[:] = np.repeat(u_iou, n_sets, axis=0)
            if mixed.any():
                prio = np.tile(2 - ignore.astype(np.int8), (1, n_thr))
                _rounds(
                    det_local[mixed],
                    gt[mixed],
                    iou[mixed],
                    rank[mixed],
                    np.repeat(thr, n_sets),
                    prio,
                    crowd,
                    cont_gt,
                    cont_iou,
                    check,
                )
    return Assignment(n_det, thr, n_sets, lone_det, lone_gt, lone_iou, cont_det, cont_gt, cont_iou)


def _rounds(
    det: np.ndarray,
    gt: np.ndarray,
    iou: np.ndarray,
    rank: np.ndarray,
    cfg_thr: np.ndarray,
    prio_gt: np.ndarray | None,
    crowd: np.ndarray | None,
    out_gt: np.ndarray,
    out_iou: np.ndarray | None,
    check: Callable[[], None] | None,
) -> None:
    """The greedy rounds over contested pairs; writes ``out_gt``/``out_iou`` (configs × detections).

    ``det`` indexes the columns of the outputs; ``cfg_thr`` holds each configuration's
    threshold; ``prio_gt`` (labels × configurations) 2 for a label that is not ignored,
    1 for an ignored one (None: all 2).
    """
    order = np.lexsort((gt, det, rank))
    det, gt, iou, rank = det[order], gt[order], iou[order], rank[order]
    gts, gt_local = np.unique(gt, return_inverse=True)
    n_cfg = len(cfg_thr)
    matched = np.zeros((len(gts), n_cfg), dtype=bool)
    crowd_l = None if crowd is None else crowd[gts]
    prio_l = None if prio_gt is None else prio_gt[gts]
    bounds = np.flatnonzero(np.diff(rank)) + 1
    starts = np.concatenate(([0], bounds)).tolist()
    ends = np.concatenate((bounds, [len(rank)])).tolist()
    for s, e in zip(starts, ends, strict=True):
        if check is not None:
            check()
        d, gl, v = det[s:e], gt_local[s:e], iou[s:e]
        n = e - s
        seg_new = np.empty(n, bool)
        seg_new[0] = True
        np.not_equal(d[1:], d[:-1], out=seg_new[1:])
        seg_start = np.flatnonzero(seg_new)
        seg_id = np.cumsum(seg_new) - 1
        free = ~matched[gl]
        if crowd_l is not None:
            free |= crowd_l[gl][:, None]
        valid = (v[:, None] >= cfg_thr[None, :]) & free
        prio = valid.astype(np.int8) if prio_l is None else np.where(valid, prio_l[gl], np.int8(0))
        best = np.maximum.reduceat(prio, seg_start, axis=0)
        cand = (prio == best[seg_id]) & (prio > 0)
        vv = np.where(cand, v[:, None], -np.inf)
        best_v = np.maximum.reduceat(vv, seg_start, axis=0)
        cand &= vv == best_v[seg_id]
        last = np.where(cand, np.arange(n)[:, None], -1)
        pick = np.maximum.reduceat(last, seg_start, axis=0)
        seg, cfg = np.nonzero(pick >= 0)
        if len(seg) == 0:
            continue
        rows = pick[seg, cfg]
        matched[gl[rows], cfg] = True
        out_gt[cfg, d[rows]] = gts[gl[rows]]
        if out_iou is not None:
            out_iou[cfg, d[rows]] = v[rows]
