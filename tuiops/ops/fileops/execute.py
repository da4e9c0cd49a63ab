"""Running a job's actions: windows journaled ahead, on threads or worker processes."""

from __future__ import annotations

import contextlib
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import TYPE_CHECKING, Any

from tuiops.errors import TuiopsError
from tuiops.fsutil import display_path
from tuiops.ops.base import Reporter
from tuiops.ops.fileops.actions import do_action, run_groups, undo_action
from tuiops.ops.fileops.acts import Action, JobContext, Outcome
from tuiops.ops.fileops.journal import Journal, gc_paused, group_actions
from tuiops.ops.fileops.model import FLUSH_SECONDS, WINDOW
from tuiops.ops.fileops.workers import make_executor, process_count, run_range

if TYPE_CHECKING:
    from tuiops.store import Store


def execute_actions(
    store: Store,
    ctx: JobContext,
    acts: list[Action],
    todo: list[Action],
    undo: bool,
    workers: int,
    rep: Reporter,
) -> tuple[str | None, BaseException | None]:
    """Run ``todo`` (folders first, then files on the pool); returns (fatal message, exception).

    Each window of actions is marked in the store before any of them touches a file
    (forward: the job's mark moves past it; undo: its rows become ``undoing``); the next
    window is marked and queued while this one runs, so the workers never wait for the
    journal.
    """
    with gc_paused():
        by_seq = {a.seq: a for a in acts}
        dirs = [a for a in todo if a.action == "mkdir"]
        groups = group_actions([a for a in todo if a.action != "mkdir"])
    journal = Journal(store, ctx, by_seq, undo)
    mark_as = "undoing" if undo else "started"
    # windows: consecutive runs of groups (start, end) of about WINDOW actions each
    windows: list[tuple[int, int]] = []
    start = n = 0
    for i, g in enumerate(groups):
        n += len(g)
        if n >= WINDOW:
            windows.append((start, i + 1))
            start, n = i + 1, 0
    if start < len(groups):
        windows.append((start, len(groups)))
    fatal: str | None = None
    failure: BaseException | None = None
    in_flight: list[tuple[Future[Any], list[list[Action]]]] = []
    untouched: list[int] = []
    seen: set[Future[Any]] = set()
    per_task = max(1, WINDOW // (2 * max(1, workers) * 2))
    procs = process_count(workers, sum(len(g) for g in groups))

    def mark(win: tuple[int, int]) -> None:
        journal.mark([a.seq for g in groups[win[0] : win[1]] for a in g], mark_as)

    def submit(pool: Executor, win: tuple[int, int]) -> list[Future[Any]]:
        futures = []
        for k in range(win[0], win[1], per_task):
            end = min(k + per_task, win[1])
            chunk = groups[k:end]
            # a worker process has the groups from its fork: it is sent their positions only
            fut = (
                pool.submit(run_range, k, end, ctx, undo)
                if procs
                else pool.submit(run_groups, chunk, ctx, undo)
            )
            in_flight.append((fut, chunk))
            futures.append(fut)
        return futures

    def outcomes(fut: Future[Any]) -> tuple[list[Outcome], str, int]:
        """(outcomes, plain outcomes packed by a worker process, their count)."""
        res = fut.result()
        if not procs:
            return res, "", 0
        packed, n, rest = res
        return [Outcome(*r) for r in rest], packed, n

    def collect(fut: Future[Any]) -> None:
        nonlocal fatal
        seen.add(fut)
        outs, packed, n = outcomes(fut)
        journal.add(outs, packed, n)
        for o in outs:
            if o.fatal and fatal is None:
                fatal = o.error
        rep.advance(len(outs) + n)

    try:
        if dirs:
            journal.mark([a.seq for a in dirs], mark_as)
            for a in dirs:
                out = undo_action(a, ctx) if undo else do_action(a, ctx)
                journal.add([out])
                rep.advance(1)
                if out.state == "failed":
                    fatal = f"cannot create the folder {display_path(a.dst)}: {out.error}"
                    break
            journal.flush()
        executor, procs = (
            make_executor(store, ctx.job_id, workers, procs, groups) if windows and not fatal else (None, 0)
        )
        with executor or contextlib.nullcontext() as pool:
            try:
                queued: list[Future[Any]] = []
                if windows and not fatal:
                    mark(windows[0])
                    queued = submit(pool, windows[0])
                for wi in range(len(windows)):
                    if fatal:
                        break
                    current = queued
                    if wi + 1 < len(windows):
                        # the next window is journaled and queued while this one runs: no idle workers
                        mark(windows[wi + 1])
                        queued = submit(pool, windows[wi + 1])
                    pending = set(current)
                    last = wi + 1 == len(windows)
                    while pending:
                        finished, pending = wait(pending, timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            collect(fut)
                        if not finished or last:
                            # in the last window outcomes are journaled as they come: what is
                            # left for after the last action is a few rows, not a batch
                            journal.flush()
            finally:
                for fut, chunk in in_flight:
                    if fut.cancel():
                        untouched.extend(a.seq for g in chunk for a in g)
                for fut, _ in in_flight:
                    if not fut.cancelled() and fut not in seen:
                        seen.add(fut)
                        with contextlib.suppress(Exception):
                            journal.add(*outcomes(fut))
    except BaseException as exc:
        failure = exc
        if type(exc).__name__ == "BrokenProcessPool":
            failure = TuiopsError(
                f"job {ctx.job_id}: a worker process died ({exc})",
                hint=f"`tuiops ops {'undo' if undo else 'resume'} {ctx.job_id}` finishes the job",
            )
    finally:
        try:
            journal.flush()
            untouched = [s for s in untouched if by_seq[s].state == mark_as]
            if untouched:
                journal.mark(untouched, "done" if undo else "planned")
        except BaseException as exc:
            failure = failure or exc
    return fatal, failure
