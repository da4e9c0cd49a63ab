"""Error analysis beyond mAP: TIDE, calibration, slices and run-vs-run comparison."""

from tuiops.ops.analysis.calibration import CalibrationResult, calibration, reliability
from tuiops.ops.analysis.cells import Cells, average_precision, coco_cells
from tuiops.ops.analysis.tide import ERROR_TYPES, ORACLES, TideResult, tide_errors

__all__ = [
    "ERROR_TYPES",
    "ORACLES",
    "CalibrationResult",
    "Cells",
    "TideResult",
    "average_precision",
    "calibration",
    "coco_cells",
    "reliability",
    "tide_errors",
]
