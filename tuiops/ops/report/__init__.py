"""`report`: pictures of a label set against a detection run — PNG charts and one HTML page.

What a report holds (:class:`ReportData`, computed from the store without loading any
image):

- the 12 COCO numbers and AP@[.5:.95], AP50 and AP75 per class, from
  :func:`tuiops.ops.evaluate.evaluate` — the same numbers as ``tuiops eval``;
- precision–recall curves: pycocotools' interpolated precision at its 101 recall points,
  read from the very accumulation that gives the mAP (``CocoResult.precision``): one
  curve per class at IoU 0.5 (its mean is the class's AP50), the mean over the 10 IoU
  thresholds (its mean is AP@[.5:.95]) and the all-class means of both (mAP50, mAP);
- a confusion matrix of the objects of a match (:mod:`tuiops.ops.match`): rows are the
  label classes plus ``dup`` (second detections of an object) and ``extra`` (fp:
  detections with no label), columns the detected classes plus ``loc`` (found with IoU in
  [low, t): badly placed) and ``missed`` (fn). tp rows lie on the diagonal, cls rows (a
  label found as another class) off it; a label class's row adds up to its labels;
- histograms of the scores of tp and fp detections and of the IoU of matched pairs (tp,
  loc, cls);
- the worst images in the match's order (``f1`` ascending, then ``cost`` descending).

The match is the stored one named ``SET__RUN`` when it compares these very set and run
with the asked IoU threshold and confidence; otherwise a fresh one is computed in memory
(chunk by chunk, nothing stored). Splits (``train``/``val`` …) come from the stored
match: ``split`` keeps one of them (its images also restrict the COCO evaluation);
without it a stored match's worst images are listed per split.

:func:`write_report` draws the charts with matplotlib (Agg, DejaVu Sans, no pyplot state)
and only then reads and paints the worst images (:func:`tuiops.imaging.render`). Files
are made in a staging folder inside the target and moved into place; ``index.html``
comes last, written atomically, so a crash never leaves a half page.
"""

from tuiops.ops.report.charts import chart_ap, chart_confusion, chart_iou, chart_pr, chart_scores
from tuiops.ops.report.data import report_data
from tuiops.ops.report.model import (
    BINS,
    CHARTS,
    GENERATOR,
    REPORT_NAMES,
    WORST_SIDE,
    ReportData,
    ReportResult,
)
from tuiops.ops.report.page import render_html
from tuiops.ops.report.write import check_target, is_report, report, write_report

__all__ = [
    "BINS",
    "CHARTS",
    "GENERATOR",
    "REPORT_NAMES",
    "WORST_SIDE",
    "ReportData",
    "ReportResult",
    "chart_ap",
    "chart_confusion",
    "chart_iou",
    "chart_pr",
    "chart_scores",
    "check_target",
    "is_report",
    "render_html",
    "report",
    "report_data",
    "write_report",
]
