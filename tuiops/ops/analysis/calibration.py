"""Confidence calibration: does a score of 0.8 mean right 80 % of the time? Equal to hotcoco's ``calibration``.

The detections counted at IoU 0.5 (area range ``all``, 100 per image and class; those
matched to a crowd region are not counted) are binned by score into ``bins`` equal
bins of [0, 1] (a score of 1 in the last); in each bin the mean score (confidence) and
the share of true positives (accuracy). ECE is the mean gap |accuracy − confidence|
weighted by the bins' counts, MCE the largest gap; both overall and per class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuiops.errors import UsageError
from tuiops.ops.analysis.cells import Cells


@dataclass
class CalibrationResult:
    """The reliability table (``lower, upper, confidence, accuracy, count`` per bin) and the errors."""

    ece: float
    mce: float
    bins: list[dict[str, float]]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    iou: float = 0.5
    n_dets: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ece": self.ece,
            "mce": self.mce,
            "bins": self.bins,
            "per_class": self.per_class,
            "iou": self.iou,
            "dets": self.n_dets,
        }


def reliability(
    score: np.ndarray, correct: np.ndarray, n_bins: int
) -> tuple[list[dict[str, float]], float, float]:
    """The reliability table of ``score``/``correct`` in ``n_bins`` equal bins, its ECE and MCE."""
    idx = np.minimum((score * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    conf = np.bincount(idx, weights=score, minlength=n_bins)
    acc = np.bincount(idx, weights=correct.astype(np.float64), minlength=n_bins)
    has = count > 0
    conf = np.where(has, conf / np.maximum(count, 1), 0.0)
    acc = np.where(has, acc / np.maximum(count, 1), 0.0)
    gap = np.abs(acc - conf)
    total = int(count.sum())
    ece = float((count[has] / total * gap[has]).sum()) if total else 0.0
    mce = float(gap[has].max()) if total else 0.0
    rows = [
        {
            "lower": i / n_bins,
            "upper": (i + 1) / n_bins,
            "confidence": float(conf[i]),
            "accuracy": float(acc[i]),
            "count": int(count[i]),
        }
        for i in range(n_bins)
    ]
    return rows, ece, mce


def calibration(cells: Cells, bins: int = 10, class_names: list[str] | None = None) -> CalibrationResult:
    """The calibration of the detections' scores (outcomes from :func:`~tuiops.ops.analysis.coco_cells`)."""
    if bins < 1:
        raise UsageError(f"--bins {bins}: needs at least one bin", hint="e.g. --bins 10")
    keep = ~cells.d_ignored
    score, correct, cls = cells.d_score[keep], cells.d_matched[keep], cells.d_cls[keep]
    if len(score) and (score.min() < 0 or score.max() > 1):
        raise UsageError(
            f"scores from {score.min():g} to {score.max():g}: calibration needs confidences in [0, 1]",
            hint="calibrate a run whose scores are probabilities",
        )
    table, ece, mce = reliability(score, correct, bins)
    names = class_names or [str(c) for c in cells.cats.tolist()]
    per_class: dict[str, dict[str, float]] = {}
    for k in np.unique(cls).tolist():
        sel = cls == k
        _, c_ece, c_mce = reliability(score[sel], correct[sel], bins)
        per_class[names[k]] = {"ece": c_ece, "mce": c_mce, "dets": int(sel.sum())}
    return CalibrationResult(ece, mce, table, per_class, cells.threshold, len(score))
