"""The error analysis of one run against a label set: TIDE, calibration and slices (`eval`'s extra answers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuiops.ops.analysis.calibration import CalibrationResult, calibration
from tuiops.ops.analysis.cells import coco_cells
from tuiops.ops.analysis.inputs import load_inputs, pitstop_splits
from tuiops.ops.analysis.slices import SliceResult, slice_names, sliced_eval
from tuiops.ops.analysis.tide import TideResult, tide_errors
from tuiops.ops.base import CancelToken, ProgressFn, Reporter

if TYPE_CHECKING:
    import polars as pl

    from tuiops.workspace import Workspace


@dataclass
class AnalysisResult:
    """What was asked of :func:`analyse`: None where it was not."""

    set_name: str
    run_name: str
    images: int
    tide: TideResult | None = None
    calibration: CalibrationResult | None = None
    by: str | None = None
    slices: list[SliceResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.tide is not None:
            out["tide"] = self.tide.to_dict()
        if self.calibration is not None:
            out["calibration"] = self.calibration.to_dict()
        if self.by is not None:
            out["by"] = self.by
            out["slices"] = [s.to_dict() for s in self.slices]
        return out


def analyse(
    ws: Workspace,
    set_name: str,
    run_name: str,
    *,
    items: Any = None,
    images: str = "processed",
    tide: bool = False,
    bins: int | None = None,
    by: str | None = None,
    splits: pl.DataFrame | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> AnalysisResult:
    """TIDE (``tide``), calibration (``bins`` bins) and slices (``by``) of ``run_name`` against ``set_name``.

    ``items``/``images`` choose the images as `eval` does. ``splits`` (``item_id,
    split``) are the images' splits for ``by="split"``; by default, a pitstop's run is
    sliced by the splits of its dataset. Nothing asked (and not a pitstop's run): nothing is read.
    """
    if splits is None and by in (None, "split"):
        splits = pitstop_splits(ws.store, run_name)
        if splits is not None and by is None:
            by = "split"
    if not tide and bins is None and by is None:
        return AnalysisResult(set_name, run_name, images=0)
    rep = Reporter("analyse", progress, cancel, total=3)
    inp = load_inputs(ws, set_name, run_name, items=items, images=images)
    rep.update(1, "read", force=True)
    res = AnalysisResult(set_name, run_name, images=len(inp.items))
    if tide or bins is not None:
        cells = coco_cells(
            inp.labels, inp.dets, image_ids=inp.items, class_ids=inp.class_ids, image_order=inp.image_order
        )
        rep.check()
        if tide:
            res.tide = tide_errors(cells, class_names=inp.class_names)
        if bins is not None:
            res.calibration = calibration(cells, bins, class_names=inp.class_names)
    rep.update(2, "analysed", force=True)
    if by is not None:
        res.by = by
        res.slices = sliced_eval(inp, slice_names(ws, inp, by, splits))
    rep.update(3, "done", force=True)
    return res
