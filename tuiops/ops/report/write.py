"""The `report` op: the target checked, the data computed and the files written into place together."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import ConflictError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job
from tuiops.ops.report.analysis import COMPARE_CHART, chart_compare, chart_reliability, chart_tide
from tuiops.ops.report.charts import CHART_FUNCS
from tuiops.ops.report.data import report_data
from tuiops.ops.report.model import CHARTS, GENERATOR, STAGING_PREFIX, ReportData, ReportResult
from tuiops.ops.report.page import render_html
from tuiops.ops.report.worst import paint_worst

if TYPE_CHECKING:
    from tuiops.workspace import Workspace


def report(
    ws: Workspace,
    set_name: str,
    run_name: str,
    to: str | os.PathLike[str],
    *,
    iou: float = 0.5,
    conf: float = 0.25,
    top: int = 24,
    split: str | None = None,
    force: bool = False,
    compare_with: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ReportResult:
    """Write the report of run ``run_name`` against label set ``set_name`` into folder ``to``.

    ``to`` must be new, empty or a previous report (then it is replaced), unless ``force``
    (then the report's files are written beside what is there). ``compare_with``: an
    earlier run the report compares this one with. Recorded as a job.
    """
    folder = check_target(to, force=force)
    params = {"set": set_name, "run": run_name, "to": str(folder), "iou": iou, "conf": conf, "top": top}
    if split is not None:
        params["split"] = split
    if compare_with is not None:
        params["compare"] = compare_with
    t0 = time.perf_counter()
    with job(ws.store, "report", params) as handle:
        data = report_data(
            ws,
            set_name,
            run_name,
            iou=iou,
            conf=conf,
            top=top,
            split=split,
            compare_with=compare_with,
            progress=progress,
            cancel=cancel,
        )
        t1 = time.perf_counter()
        res = write_report(ws, data, folder, force=force, progress=progress, cancel=cancel)
        res.seconds = {**data.seconds, "write": time.perf_counter() - t1, "total": time.perf_counter() - t0}
        handle.result = {"folder": str(folder), "files": len(res.files), "map": data.stats.get("map")}
    return res


def check_target(to: str | os.PathLike[str], *, force: bool = False) -> Path:
    """The report folder ``to`` (absolute), if a report may be written there (module doc)."""
    from tuiops.fsutil import display_path

    folder = Path(to).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise ConflictError(
            f"{display_path(folder)} is a file, not a folder", hint="give a folder for the report"
        )
    if not folder.is_dir() or force:
        return folder
    try:
        names = [n for n in os.listdir(folder) if not n.startswith(STAGING_PREFIX)]
    except OSError as exc:
        from tuiops.fsutil import disk_error

        raise disk_error(folder, exc, "read") from exc
    if names and not is_report(folder):
        raise ConflictError(
            f"{display_path(folder)} is not empty and holds no earlier report",
            hint="choose a new or empty folder, or pass --force to write the report beside what is there",
        )
    return folder


def is_report(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds a report written by tuiops (its index.html or report.json says so)."""
    folder = Path(folder)
    with contextlib.suppress(OSError, ValueError):
        head = (folder / "index.html").read_bytes()[:4096].decode("utf-8", "replace")
        if f'<meta name="generator" content="{GENERATOR}">' in head:
            return True
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        return isinstance(meta, dict) and meta.get("generator") == GENERATOR
    return False


def write_report(
    ws: Workspace,
    data: ReportData,
    to: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ReportResult:
    """Draw the charts, paint the worst images and write ``index.html`` (last) into ``to``."""
    from tuiops.fsutil import atomic_write_text, disk_error

    folder = check_target(to, force=force)
    if (folder / "worst").exists() and not is_report(folder):
        from tuiops.fsutil import display_path

        raise ConflictError(
            f"{display_path(folder / 'worst')} exists and belongs to no earlier report",
            hint="move it away or choose another folder; the report keeps its worst images there",
        )
    rep = Reporter("report", progress, cancel, total=len(CHARTS) + data.worst.height + 1)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(old, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
    except OSError as exc:
        raise disk_error(folder, exc, "write into") from exc
    try:
        try:
            charts = list(CHARTS)
            for name, draw in zip(CHARTS, (*CHART_FUNCS, chart_tide, chart_reliability), strict=True):
                rep.check()
                (staging / name).write_bytes(draw(data))
                rep.advance(message=name)
            if data.compare is not None:
                (staging / COMPARE_CHART).write_bytes(chart_compare(data))
                charts.append(COMPARE_CHART)
            (staging / "worst").mkdir()
            worst = paint_worst(ws, data, staging / "worst", rep)
            meta = {"generator": GENERATOR, **data.to_dict(), "files": charts, "worst": worst}
            (staging / "report.json").write_text(
                json.dumps(meta, indent=2, default=_json_default), encoding="utf-8"
            )
            page = render_html(data, worst)
            rep.check()
            for name in (*charts, "report.json"):
                os.replace(staging / name, folder / name)
            if data.compare is None and (folder / COMPARE_CHART).is_file():
                (folder / COMPARE_CHART).unlink()
            if (folder / "worst").is_dir() and not (folder / "worst").is_symlink():
                os.replace(folder / "worst", staging / "worst.old")
            os.replace(staging / "worst", folder / "worst")
        except OSError as exc:
            raise disk_error(getattr(exc, "filename", None) or folder, exc) from exc
        atomic_write_text(folder / "index.html", page)
        rep.advance(message="index.html", force=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = [*charts, *(w["file"] for w in worst), "report.json", "index.html"]
    return ReportResult(folder=folder, files=files, worst=worst, data=data)


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)
