"""What a report knows and answers: its charts and file names, its limits, the data it shows, what it wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl

    from tuiops.ops.evaluate import EvalResult


#: The chart files of a report, in page order.
MATCH_CHARTS = ("ap_per_class.png", "pr_curves.png", "confusion.png", "scores.png", "iou.png")
#: The error-analysis charts: TIDE's bars and the reliability diagram.
ANALYSIS_CHARTS = ("tide.png", "reliability.png")
CHARTS = (*MATCH_CHARTS, *ANALYSIS_CHARTS)
#: Names a report folder may hold besides the charts (compare.png: with a comparison).
REPORT_NAMES = frozenset({*CHARTS, "compare.png", "index.html", "report.json", "worst"})
GENERATOR = "tuiops report"
STAGING_PREFIX = ".tuiops-report-"
#: Histogram bins over [0, 1].
BINS = 20
#: Worst images are drawn at most this many pixels on their long side.
WORST_SIDE = 1024
CATEGORIES = ("tp", "loc", "cls", "dup", "fp", "fn")


# -- data -----------------------------------------------------------------------------------------
@dataclass
class ReportData:
    """Everything a report shows, computed from the store (no image is read)."""

    set_name: str
    run_name: str
    split: str | None
    class_names: list[str]
    eval: EvalResult
    recall_points: np.ndarray
    pr50: np.ndarray
    pr_mean: np.ndarray
    per_class: pl.DataFrame
    match_source: str
    match_name: str | None
    iou: float
    low: float
    conf: float
    compared_images: int
    confusion: np.ndarray
    score_edges: np.ndarray
    score_tp: np.ndarray
    score_fp: np.ndarray
    iou_edges: np.ndarray
    iou_counts: dict[str, np.ndarray]
    totals: dict[str, int]
    splits: dict[str, dict[str, Any]]
    worst: pl.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    #: TIDE's breakdown (:class:`tuiops.ops.analysis.TideResult`), None when not computed.
    tide: Any = None
    #: The calibration of the scores (:class:`tuiops.ops.analysis.CalibrationResult`), None when not computed.
    calibration: Any = None
    #: The comparison with an earlier run (:class:`tuiops.ops.analysis.CompareResult`), None without one.
    compare: Any = None
    analysis_notes: list[str] = field(default_factory=list)

    @property
    def stats(self) -> dict[str, float]:
        return self.eval.stats

    @property
    def confusion_rows(self) -> list[str]:
        """Row names of :attr:`confusion`: label classes, ``dup``, ``extra``."""
        return [*self.class_names, "dup", "extra"]

    @property
    def confusion_cols(self) -> list[str]:
        """Column names of :attr:`confusion`: detected classes, ``loc``, ``missed``."""
        return [*self.class_names, "loc", "missed"]

    def confusion_view(self) -> tuple[list[str], list[str], np.ndarray]:
        """The confusion matrix without the classes that have no count at all (rows, cols, counts)."""
        k = len(self.class_names)
        m = self.confusion
        used = (m[:k, :].sum(axis=1) + m[:, :k].sum(axis=0)) > 0
        if not used.any():
            used[:] = True
        keep = np.concatenate((np.flatnonzero(used), [k, k + 1]))
        rows = [self.confusion_rows[i] for i in keep]
        cols = [self.confusion_cols[i] for i in keep]
        return rows, cols, m[np.ix_(keep, keep)]

    def pr_classes(self) -> list[int]:
        """Class ids that have a precision–recall curve (they have labels)."""
        return [int(k) for k in np.flatnonzero(self.pr50[:, 0] > -1)]

    def headline(self) -> dict[str, Any]:
        """The numbers of the page's head: the 12 COCO numbers and what was counted."""
        e = self.eval
        return {
            **self.stats,
            "images": e.images,
            "labels": e.labels,
            "dets": e.dets,
            "images_not_in_run": e.images_not_in_run,
            "dets_outside_set": e.dets_outside_set,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "set": self.set_name,
            "run": self.run_name,
            "split": self.split,
            **self.headline(),
            "per_class": {r["class"]: r["ap"] for r in self.per_class.iter_rows(named=True)},
            "match": {
                "source": self.match_source,
                "name": self.match_name,
                "iou": self.iou,
                "low": self.low,
                "conf": self.conf,
                "images": self.compared_images,
                **self.totals,
            },
            "splits": self.splits,
            "tide": None if self.tide is None else self.tide.to_dict(),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "compare": None if self.compare is None else self.compare.to_dict(),
        }


# -- writing ---------------------------------------------------------------------------------------
@dataclass
class ReportResult:
    """What `report` wrote: the folder, its files and the numbers of its head."""

    folder: Path
    files: list[str]
    worst: list[dict[str, Any]]
    data: ReportData
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def index(self) -> Path:
        return self.folder / "index.html"

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "index": str(self.index),
            "files": self.files,
            **self.data.to_dict(),
            "worst": self.worst,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }
