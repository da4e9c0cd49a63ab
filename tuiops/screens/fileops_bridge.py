"""F5 copy, F6 move, F8 delete: the panels' side of the batch file-operation engine.

The engine (:mod:`tuiops.ops.fileops`: plan → journal → run → resume → undo) does the
work. This module turns a panel's selected files into a selection of the engine, asks it
for a plan (a dry run: nothing is touched; the plan's counts and conflicts are what the
confirmation dialog shows), runs a confirmed plan as a journaled job, and forgets a plan
the user turned down.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuiops.errors import UsageError
from tuiops.ops.browse import where_for_ids

if TYPE_CHECKING:
    import numpy as np

    from tuiops.ops.base import CancelToken, ProgressFn
    from tuiops.workspace import Workspace

ENGINE = "tuiops.ops.fileops"
POLICIES = ("fail", "skip", "rename", "overwrite")


@dataclass
class FileOpRequest:
    """What the user asked for: an op on some files of a pool, into a target folder."""

    op: str
    file_ids: Sequence[int] | np.ndarray
    pool: str | None
    target: str | None = None
    on_conflict: str = "fail"


@dataclass
class PlanPreview:
    """A planned op (a dry-run job of the engine) as the confirmation dialog shows it."""

    request: FileOpRequest
    job_id: int
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    conflicts: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        """True when the plan cannot run as it is (conflicts under the ``fail`` policy)."""
        return self.status == "refused"

    def summary_lines(self) -> list[str]:
        lines = [f"{k}: {v:,}" for k, v in self.counts.items()]
        if self.conflicts:
            lines.append(
                "conflicts: " + ", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in self.conflicts.items())
            )
            lines += [f"  {e}" for e in self.examples[:6]]
        lines += [f"warning: {w}" for w in self.warnings[:4]]
        return lines


def engine_available() -> bool:
    return importlib.util.find_spec(ENGINE) is not None


def _engine() -> Any:
    if not engine_available():
        raise UsageError(
            "copy, move and delete need the batch file-operation engine, which this build does not have",
            hint="nothing was touched",
        )
    return importlib.import_module(ENGINE)


def plan(ws: Workspace, request: FileOpRequest) -> PlanPreview:
    """Plan ``request`` with the engine as a dry run (nothing on disk changes)."""
    if request.op not in ("copy", "move", "delete"):
        raise UsageError(f"unknown file operation {request.op!r}")
    if len(request.file_ids) == 0:
        raise UsageError("nothing is selected", hint="select files with Ins or +, or put the cursor on one")
    if request.op != "delete" and not (request.target or "").strip():
        raise UsageError(f"{request.op} needs a target folder")
    if request.on_conflict not in POLICIES:
        raise UsageError(
            f"unknown conflict policy {request.on_conflict!r}", hint=f"use one of {', '.join(POLICIES)}"
        )
    eng = _engine()
    from tuiops.ops.select import SelectionSpec

    spec = SelectionSpec(
        where=where_for_ids(request.file_ids), pools=[request.pool] if request.pool else None
    )
    target = ws.resolve(request.target) if request.target else None
    res = eng.plan(ws, request.op, spec, to=target, on_conflict=request.on_conflict, dry_run=True)
    counts: dict[str, int] = {"images": res.images}
    if res.labels:
        counts["label files"] = res.labels
    counts.update({k: v for k, v in res.by_action.items() if k != "mkdir"})
    counts["to do"] = res.to_do
    if res.skipped:
        counts["skipped"] = res.skipped
    examples = []
    for ex in res.conflict_examples[:6]:
        what = str(ex.get("conflict", "")).replace("_", " ")
        examples.append(f"{what}: {ex.get('src') or ex.get('dst') or ''}")
    return PlanPreview(
        request,
        res.job_id,
        res.status,
        counts,
        dict(res.conflicts),
        examples,
        list(res.warnings) + ([f"{len(res.unknown_keys)} keys unknown"] if res.unknown_keys else []),
    )


def execute(
    ws: Workspace,
    preview: PlanPreview,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Run a confirmed plan through the engine's journal; returns the engine's summary."""
    eng = _engine()
    result = eng.run_job(ws, preview.job_id, progress=progress, cancel=cancel)
    return dict(result.to_dict())


def discard(ws: Workspace, preview: PlanPreview) -> None:
    """Forget a plan the user turned down (its journal goes with it)."""
    eng = _engine()
    eng.forget_job(ws, preview.job_id)
