"""Error analysis beyond mAP: TIDE, calibration, slices and run-vs-run comparison."""

from tuiops.ops.analysis.calibration import CalibrationResult, calibration, reliability
from tuiops.ops.analysis.cells import Cells, average_precision, coco_cells
from tuiops.ops.analysis.compare import (
    CompareResult,
    bootstrap,
    compare_markdown,
    compare_runs,
    split_comparison,
)
from tuiops.ops.analysis.inputs import EvalInputs, load_inputs, pitstop_splits, previous_pitstop_run
from tuiops.ops.analysis.run import AnalysisResult, analyse
from tuiops.ops.analysis.slices import SLICE_KINDS, SliceResult, slice_names, sliced_eval
from tuiops.ops.analysis.tide import ERROR_TYPES, ORACLES, TideResult, tide_errors

__all__ = [
    "ERROR_TYPES",
    "ORACLES",
    "SLICE_KINDS",
    "AnalysisResult",
    "CalibrationResult",
    "Cells",
    "CompareResult",
    "EvalInputs",
    "SliceResult",
    "TideResult",
    "analyse",
    "average_precision",
    "bootstrap",
    "calibration",
    "coco_cells",
    "compare_markdown",
    "compare_runs",
    "load_inputs",
    "pitstop_splits",
    "previous_pitstop_run",
    "reliability",
    "slice_names",
    "sliced_eval",
    "split_comparison",
    "tide_errors",
]
