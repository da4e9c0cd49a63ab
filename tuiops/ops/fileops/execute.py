"""Running a job's actions: windows journaled ahead, on threads or worker processes."""

from __future__ import annotations

import contextlib
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import TYPE_CHECKING, Any

from tuiops.errors import TuiopsError
from tuiops.frames import gc_paused
from tuiops.fsutil import display_path
from tuiops.ops.base import Reporter
from tuiops.ops.fileops.actions import do_action, run_groups, undo_action
from tuiops.ops.fileops.acts import Action, JobContext, Outcome
from tuiops.ops.fileops.journal import Journal, group_actions
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
    run = _Run(store, ctx, groups, undo, workers, journal, rep)
    failure: BaseException | None = None
    try:
        if dirs:
            run.run_dirs(dirs)
        run.run_windows(_windows(groups))
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
            untouched = [s for s in run.untouched if by_seq[s].state == run.mark_as]
            if untouched:
                journal.mark(untouched, "done" if undo else "planned")
        except BaseException as exc:
            failure = failure or exc
    return run.fatal, failure


def _windows(groups: list[list[Action]]) -> list[tuple[int, int]]:
    """Consecutive runs of groups (start, end) of about WINDOW actions each."""
    windows: list[tuple[int, int]] = []
    start = n = 0
    for i, g in enumerate(groups):
        n += len(g)
        if n >= WINDOW:
            windows.append((start, i + 1))
            start, n = i + 1, 0
    if start < len(groups):
        windows.append((start, len(groups)))
    return windows


class _Run:
    """One run of a job's actions: the tasks in flight, their outcomes journaled as they come,
    the first fatal error, and the actions of tasks cancelled before they started."""

    def __init__(
        self,
        store: Store,
        ctx: JobContext,
        groups: list[list[Action]],
        undo: bool,
        workers: int,
        journal: Journal,
        rep: Reporter,
    ) -> None:
        self.store = store
        self.ctx = ctx
        self.groups = groups
        self.undo = undo
        self.workers = workers
        self.journal = journal
        self.rep = rep
        self.mark_as = "undoing" if undo else "started"
        self.fatal: str | None = None
        self.in_flight: list[tuple[Future[Any], list[list[Action]]]] = []
        self.untouched: list[int] = []
        self.seen: set[Future[Any]] = set()
        self.per_task = max(1, WINDOW // (2 * max(1, workers) * 2))
        self.procs = process_count(workers, sum(len(g) for g in groups))

    def mark(self, win: tuple[int, int]) -> None:
        self.journal.mark([a.seq for g in self.groups[win[0] : win[1]] for a in g], self.mark_as)

    def submit(self, pool: Executor, win: tuple[int, int]) -> list[Future[Any]]:
        futures = []
        for k in range(win[0], win[1], self.per_task):
            end = min(k + self.per_task, win[1])
            chunk = self.groups[k:end]
            # a worker process has the groups from its fork: it is sent their positions only
            fut = (
                pool.submit(run_range, k, end, self.ctx, self.undo)
                if self.procs
                else pool.submit(run_groups, chunk, self.ctx, self.undo)
            )
            self.in_flight.append((fut, chunk))
            futures.append(fut)
        return futures

    def outcomes(self, fut: Future[Any]) -> tuple[list[Outcome], str, int]:
        """(outcomes, plain outcomes packed by a worker process, their count)."""
        res = fut.result()
        if not self.procs:
            return res, "", 0
        packed, n, rest = res
        return [Outcome(*r) for r in rest], packed, n

    def collect(self, fut: Future[Any]) -> None:
        self.seen.add(fut)
        outs, packed, n = self.outcomes(fut)
        self.journal.add(outs, packed, n)
        for o in outs:
            if o.fatal and self.fatal is None:
                self.fatal = o.error
        self.rep.advance(len(outs) + n)

    def run_dirs(self, dirs: list[Action]) -> None:
        """The folders, one by one in this process, before any file; a folder that cannot be
        made stops the job."""
        journal, ctx = self.journal, self.ctx
        journal.mark([a.seq for a in dirs], self.mark_as)
        for a in dirs:
            out = undo_action(a, ctx) if self.undo else do_action(a, ctx)
            journal.add([out])
            self.rep.advance(1)
            if out.state == "failed":
                self.fatal = f"cannot create the folder {display_path(a.dst)}: {out.error}"
                break
        journal.flush()

    def run_windows(self, windows: list[tuple[int, int]]) -> None:
        """The files, window by window on the pool, the next window queued while one runs."""
        if not windows or self.fatal:
            self.procs = 0  # no pool is started: nothing to run
            return
        executor, self.procs = make_executor(
            self.store, self.ctx.job_id, self.workers, self.procs, self.groups
        )
        with executor as pool:
            try:
                self.mark(windows[0])
                queued = self.submit(pool, windows[0])
                for wi in range(len(windows)):
                    if self.fatal:
                        break
                    current = queued
                    if wi + 1 < len(windows):
                        # the next window is journaled and queued while this one runs: no idle workers
                        self.mark(windows[wi + 1])
                        queued = self.submit(pool, windows[wi + 1])
                    self.wait_for(current, last=wi + 1 == len(windows))
            finally:
                self.drain()

    def wait_for(self, current: list[Future[Any]], *, last: bool) -> None:
        pending = set(current)
        while pending:
            finished, pending = wait(pending, timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
            for fut in finished:
                self.collect(fut)
            if not finished or last:
                # in the last window outcomes are journaled as they come: what is
                # left for after the last action is a few rows, not a batch
                self.journal.flush()

    def drain(self) -> None:
        """After the last window or a failure: tasks not started are cancelled (their actions
        are left untouched), and the outcomes of the others are journaled."""
        for fut, chunk in self.in_flight:
            if fut.cancel():
                self.untouched.extend(a.seq for g in chunk for a in g)
        for fut, _ in self.in_flight:
            if not fut.cancelled() and fut not in self.seen:
                self.seen.add(fut)
                with contextlib.suppress(Exception):
                    self.journal.add(*self.outcomes(fut))
