"""The operations: plan and run in one call."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tuiops.ops.base import CancelToken, ProgressFn
from tuiops.ops.fileops.jobs import run_job
from tuiops.ops.fileops.journal import acts_from_journal
from tuiops.ops.fileops.model import WORKERS, ConvertOptions, PlanResult, RunResult
from tuiops.ops.fileops.planning import plan
from tuiops.ops.select import Selection, SelectionSpec

if TYPE_CHECKING:
    import polars as pl

    from tuiops.workspace import Workspace


def run_op(
    ws: Workspace,
    op: str,
    selection: SelectionSpec | Selection,
    *,
    dry_run: bool = False,
    workers: int = WORKERS,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    **plan_kwargs: Any,
) -> tuple[PlanResult, RunResult | None]:
    """Plan ``op`` and, unless ``dry_run``, run it. See :func:`plan` for the options."""
    kept: list[pl.DataFrame] = []
    p = plan(ws, op, selection, dry_run=dry_run, progress=progress, cancel=cancel, _keep=kept, **plan_kwargs)
    if dry_run or p.status != "planned":
        return p, None
    acts = acts_from_journal(kept.pop()) if kept else None
    return p, run_job(ws, p.job_id, workers=workers, progress=progress, cancel=cancel, _planned=acts)


def copy_files(
    ws: Workspace, selection: SelectionSpec | Selection, to: str | os.PathLike[str], **kw: Any
) -> tuple[PlanResult, RunResult | None]:
    """Copy the files of a selection (and their label files) into ``to``."""
    return run_op(ws, "copy", selection, to=to, **kw)


def move_files(
    ws: Workspace, selection: SelectionSpec | Selection, to: str | os.PathLike[str], **kw: Any
) -> tuple[PlanResult, RunResult | None]:
    """Move the files of a selection (and their label files) into ``to``; the store follows."""
    return run_op(ws, "move", selection, to=to, **kw)


def rename_files(
    ws: Workspace, selection: SelectionSpec | Selection, name: str, **kw: Any
) -> tuple[PlanResult, RunResult | None]:
    """Rename the files of a selection in place by the template ``name``."""
    return run_op(ws, "rename", selection, name=name, **kw)


def delete_files(
    ws: Workspace, selection: SelectionSpec | Selection, **kw: Any
) -> tuple[PlanResult, RunResult | None]:
    """Move the files of a selection to the workspace trash (undo brings them back)."""
    return run_op(ws, "delete", selection, **kw)


def convert_files(
    ws: Workspace,
    selection: SelectionSpec | Selection,
    to: str | os.PathLike[str] | None = None,
    convert: ConvertOptions | None = None,
    **kw: Any,
) -> tuple[PlanResult, RunResult | None]:
    """Re-encode the files of a selection into ``to`` (format, quality, largest side, metadata),
    or in place with ``in_place=True`` (no ``to``)."""
    return run_op(ws, "convert", selection, to=to, convert=convert or ConvertOptions(), **kw)


def convert_in_place(
    ws: Workspace, selection: SelectionSpec | Selection, convert: ConvertOptions | None = None, **kw: Any
) -> tuple[PlanResult, RunResult | None]:
    """Re-encode the files of a selection where they are (the new extension when the format
    changes); the store's records follow, originals wait in the trash for undo."""
    return run_op(ws, "convert", selection, convert=convert or ConvertOptions(), in_place=True, **kw)
