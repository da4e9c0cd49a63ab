"""TIDE: how much AP each kind of error costs (Bolya et al., 2020), equal to hotcoco's ``tide_errors``.

Every false positive at the foreground IoU (0.5) — a counted detection that matched no
label, in COCO's area range ``all`` with 100 detections per image and class — gets one
error type, in this priority:

- ``loc``: its best IoU with a label of its class is in [background, foreground];
- ``cls``: its best IoU with a label of another class (crowd regions aside) is ≥ foreground;
- ``dupe``: a label of its class at IoU ≥ foreground was already found by a better detection;
- ``bkg``: its best IoU with a label of another class is ≤ background (0.1);
- ``both``: otherwise (another class, poorly placed).

A label nobody found (not a crowd region) is a ``miss`` unless a ``loc`` or ``cls``
detection points at it (its best label). Each error's dAP is what the AP@50 of a class
gains when that error is fixed, averaged over the classes with labels: ``loc``/``cls``
detections become true positives; ``dupe``/``bkg``/``both`` detections are dropped; each
missed label gets a true positive above every detection. ``fp`` drops every false
positive, ``fn`` takes every unfound label out of the denominator (TIDE's oracles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuiops.ops.analysis.cells import Cells, average_precision

#: The error types, in report order.
ERROR_TYPES = ("cls", "loc", "both", "dupe", "bkg", "miss")
#: TIDE's two oracles (all false positives, all false negatives).
ORACLES = ("fp", "fn")
_FP_TYPES = ("cls", "loc", "both", "dupe", "bkg")
_CODE = {name: k for k, name in enumerate(_FP_TYPES)}


@dataclass
class TideResult:
    """dAP (AP@fg points, 0–1) and count of each error type; ``ap`` the AP@fg they are measured from."""

    delta_ap: dict[str, float]
    counts: dict[str, int]
    ap: float
    fg: float = 0.5
    bg: float = 0.1
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "delta_ap": self.delta_ap,
            "counts": self.counts,
            "ap50": self.ap,
            "fg_iou": self.fg,
            "bg_iou": self.bg,
        }


def _best_per_det(n_det: int, di: np.ndarray, gi: np.ndarray, iou: np.ndarray, tie: np.ndarray) -> tuple:
    """Per detection: the highest IoU among its pairs (0 without one) and its label (−1), ties by ``tie`` then label."""
    best = np.zeros(n_det)
    arg = np.full(n_det, -1, np.int64)
    if len(di):
        order = np.lexsort((gi, tie, -iou, di))
        first = order[np.concatenate(([True], di[order][1:] != di[order][:-1]))]
        best[di[first]] = iou[first]
        arg[di[first]] = gi[first]
    return best, arg


def classify_false_positives(cells: Cells, fg: float = 0.5, bg: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Each detection's error code (index into the five false-positive types; −1: none) and its fix target.

    The target is the label a ``loc`` (best label of its class) or ``cls`` (best label
    of another class) error would become a true positive for, when that label is still
    unfound and counted; −1 otherwise.
    """
    from tuiops.ops.matching import group_pairs

    n_det = len(cells.d_cls)
    fp = cells.d_fp
    n_cat = max(len(cells.cats), 1)
    codes = np.full(n_det, -1, np.int64)
    target = np.full(n_det, -1, np.int64)
    if not fp.any() or len(cells.g_cls) == 0:
        codes[fp] = _CODE["bkg"]
        return codes, target
    # Same class: every overlapping label of the image and class, crowd regions included.
    di, gi, iou = group_pairs(
        cells.d_item * n_cat + cells.d_cls,
        cells.g_item * n_cat + cells.g_cls,
        cells.d_boxes,
        cells.g_boxes,
        min_iou=0.0,
        g_crowd=cells.g_crowd if cells.g_crowd.any() else None,
    )
    same, same_arg = _best_per_det(n_det, di, gi, iou, cells.g_ignored[gi].astype(np.int8))
    dupe = np.zeros(n_det, bool)
    hit = (iou >= fg) & cells.g_matched[gi]
    dupe[di[hit]] = True
    # Other classes: every overlapping label of the image that is not a crowd region.
    plain = np.flatnonzero(~cells.g_crowd)
    di, gj, iou = group_pairs(
        cells.d_item,
        cells.g_item[plain],
        cells.d_boxes,
        _take(cells.g_boxes, plain),
        min_iou=0.0,
    )
    gi = plain[gj]
    other = cells.g_cls[gi] != cells.d_cls[di]
    di, gi, iou = di[other], gi[other], iou[other]
    cross, cross_arg = _best_per_det(n_det, di, gi, iou, np.zeros(len(gi), np.int8))

    loc = fp & (same >= bg) & (same <= fg)
    cls = fp & ~loc & (cross >= fg)
    dup = fp & ~loc & ~cls & dupe
    bkg = fp & ~loc & ~cls & ~dup & (cross <= bg)
    both = fp & ~loc & ~cls & ~dup & ~bkg
    for name, mask in (("loc", loc), ("cls", cls), ("dupe", dup), ("bkg", bkg), ("both", both)):
        codes[mask] = _CODE[name]
    target[loc] = same_arg[loc]
    target[cls] = cross_arg[cls]
    usable = cells.g_counted & ~cells.g_matched
    aimed = target >= 0
    aimed[aimed] = usable[target[aimed]]
    target[~aimed] = -1
    return codes, target


def _winners(cells: Cells, target: np.ndarray) -> np.ndarray:
    """Of the errors aimed at one label, the one a fix turns into its true positive: best score, then first in the input."""
    won = np.zeros(len(target), bool)
    aimed = np.flatnonzero(target >= 0)
    if len(aimed):
        order = aimed[np.lexsort((cells.d_src[aimed], -cells.d_score[aimed], target[aimed]))]
        first = np.concatenate(([True], target[order][1:] != target[order][:-1]))
        won[order[first]] = True
    return won


def _with_extra_tps(
    score: np.ndarray, matched: np.ndarray, ignored: np.ndarray, extra: np.ndarray, n_gt: int
) -> float:
    """AP with true positives at the scores ``extra`` (descending) merged in; on equal scores after the class's own."""
    if len(extra) == 0:
        return average_precision(matched, ignored, n_gt)
    at = np.searchsorted(-score, -extra, side="right")
    return average_precision(np.insert(matched, at, True), np.insert(ignored, at, False), n_gt)


def _take(b: Any, idx: np.ndarray) -> Any:
    from tuiops.ops.matching import Boxes

    return Boxes(b.x1[idx], b.y1[idx], b.xr[idx], b.yb[idx], b.area[idx])


def tide_errors(
    cells: Cells, fg: float = 0.5, bg: float = 0.1, class_names: list[str] | None = None
) -> TideResult:
    """The TIDE breakdown of outcomes computed at ``fg`` (see the module doc)."""
    if abs(cells.threshold - fg) > 1e-12:
        raise ValueError(f"the outcomes were computed at IoU {cells.threshold}, not {fg}")
    codes, target = classify_false_positives(cells, fg, bg)
    won = _winners(cells, target)
    covered = np.zeros(len(cells.g_cls), bool)
    covered[target[target >= 0]] = True
    counted = cells.g_counted
    unfound = counted & ~cells.g_matched
    n_cat = len(cells.cats)
    n_gt = np.bincount(cells.g_cls[counted], minlength=n_cat)
    n_fn = np.bincount(cells.g_cls[unfound], minlength=n_cat)
    n_miss = np.bincount(cells.g_cls[unfound & ~covered], minlength=n_cat)
    starts = np.searchsorted(cells.d_cls, np.arange(n_cat + 1))
    # A fixed class error is a true positive of its label's class, at its own score.
    gained = np.flatnonzero(won & (codes == _CODE["cls"]))
    gained_cls = cells.g_cls[target[gained]]
    names = class_names or [str(c) for c in cells.cats.tolist()]
    per_class: dict[str, dict[str, float]] = {}
    for k in np.flatnonzero(n_gt > 0).tolist():
        s = slice(starts[k], starts[k + 1])
        matched, ignored, code, n = cells.d_matched[s], cells.d_ignored[s], codes[s], int(n_gt[k])
        base = average_precision(matched, ignored, n)
        row = {"ap": base}
        for name in _FP_TYPES:
            hit = code == _CODE[name]
            if name == "loc":
                row[name] = average_precision(matched | (hit & won[s]), ignored | (hit & ~won[s]), n) - base
            elif name == "cls":
                extra = np.sort(cells.d_score[gained[gained_cls == k]])[::-1]
                row[name] = _with_extra_tps(cells.d_score[s], matched, ignored | hit, extra, n) - base
            else:
                row[name] = average_precision(matched, ignored | hit, n) - base
        row["fp"] = average_precision(matched, ignored | (code >= 0), n) - base
        row["fn"] = average_precision(matched, ignored, n - int(n_fn[k])) - base
        row["miss"] = average_precision(matched, ignored, n - int(n_miss[k])) - base
        per_class[names[k]] = row
    rows = list(per_class.values())

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rows])) if rows else 0.0

    fp_counts = np.bincount(codes[codes >= 0], minlength=len(_FP_TYPES))
    counts = {name: int(fp_counts[_CODE[name]]) for name in _FP_TYPES}
    counts["miss"] = int((unfound & ~covered).sum())
    return TideResult(
        delta_ap={name: mean(name) for name in (*ERROR_TYPES, *ORACLES)},
        counts={name: counts[name] for name in ERROR_TYPES},
        ap=mean("ap"),
        fg=fg,
        bg=bg,
        per_class=per_class,
    )
