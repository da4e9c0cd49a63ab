"""Worker processes that run a job's actions beside the process that runs the job."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError
from tuiops.fsutil import disk_error
from tuiops.ops.base import pid_alive
from tuiops.ops.fileops.actions import run_groups, settle_action
from tuiops.ops.fileops.acts import Action, JobContext, Outcome
from tuiops.ops.fileops.journal import is_plain
from tuiops.ops.fileops.model import PROCESS_MIN
from tuiops.ops.procs import die_with_parent, set_fault_parent

if TYPE_CHECKING:
    from tuiops.store import Store


WORKER_GONE_SECONDS = 10.0


#: In a worker process: the job's groups of actions, as they were when it was forked.
_GROUPS: list[list[Action]] = []


def _worker_init(parent: int, groups: list[list[Action]], mask: Iterable[int]) -> None:
    """Set up a worker process: it dies with ``parent``; Ctrl+C is the parent's to handle.

    ``groups`` come with the fork (never pickled): a task names a range of them. Signals
    are blocked until the parent's handlers are gone, then ``mask`` is restored.
    """
    global _GROUPS
    set_fault_parent(parent)
    _GROUPS = groups
    # the parent's signal handlers (a terminal app's resize or suspend handlers, an event
    # loop's wake-up pipe) are not this process's business
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        with contextlib.suppress(ValueError, OSError, RuntimeError):
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_DFL)
    # the objects inherited from the parent are left out of this process's garbage
    # collections: a collection would touch (and so copy) every page of them
    gc.freeze()
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def run_range(lo: int, hi: int, ctx: JobContext, undo: bool) -> tuple[str, int, list[tuple[Any, ...]]]:
    """In a worker process: run the groups ``lo``..``hi`` of the job.

    Returns the outcomes that change only their journal row (:func:`is_plain`) packed as one
    JSON array of ``[seq, size, hash]`` with their count, and the others as tuples
    (:meth:`Outcome.row`): the job's process journals the first without a step per action.
    """
    groups = _GROUPS[lo:hi]
    outs = run_groups(groups, ctx, undo)
    plain: list[tuple[int, int | None, str | None]] = []
    rest: list[tuple[Any, ...]] = []
    acts = (a for g in groups for a in g)
    for a, o in zip(acts, outs, strict=True):
        if a.seq == o.seq and is_plain(a, o, ctx.op, undo):
            plain.append((o.seq, o.size, o.hash))
        else:
            rest.append(o.row())
    return (json.dumps(plain) if plain else ""), len(plain), rest


def process_count(workers: int, n: int) -> int:
    """How many worker processes run a job of ``n`` file actions (0: threads of this process).

    One per core, at most ``workers``, where the system has Linux (``fork`` and a death
    signal tied to the parent) and more than one core; a small job is not worth starting
    them.
    """
    if n < PROCESS_MIN or workers < 2 or not sys.platform.startswith("linux"):
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    procs = min(workers, cores)
    return procs if procs > 1 else 0


def make_executor(
    store: Store, job_id: int, workers: int, procs: int, groups: list[list[Action]]
) -> tuple[Executor, int]:
    """The pool that runs a job's actions, and how many worker processes it has (0: threads).

    Worker processes are started here and recorded on the job before any action runs; where
    they cannot be started (no ``fork``, a process limit) the job runs on threads.
    """

    def threads() -> tuple[Executor, int]:
        return ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="tuiops-fileops"), 0

    if not procs:
        return threads()
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    before = {p.pid for p in multiprocessing.active_children()}
    # signals wait while the workers start: one that came between a fork and the worker's
    # set-up would run a handler of this process in the worker
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        # fork: a worker starts at once and runs only the file actions of this module (no
        # store connection, no other library's threads are used in it)
        pool = ProcessPoolExecutor(
            procs,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_worker_init,
            initargs=(os.getpid(), groups, mask),
        )
        try:
            pool.submit(os.getpid).result()  # the first task starts every worker
        except (OSError, BrokenProcessPool):
            pool.shutdown(wait=True, cancel_futures=True)
            return threads()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    _record_workers(
        store,
        job_id,
        sorted(p.pid for p in multiprocessing.active_children() if p.pid is not None and p.pid not in before),
    )
    return pool, procs


def _record_workers(store: Store, job_id: int, pids: list[int]) -> None:
    with store.transaction() as conn:
        conn.execute("UPDATE jobs SET workers = ? WHERE id = ?", (json.dumps(pids) if pids else None, job_id))


def await_workers(job: dict[str, Any]) -> None:
    """Wait until the worker processes of a job whose process is gone have gone too.

    They are killed with it (their death signal), which takes a moment; one that is still
    there after ``WORKER_GONE_SECONDS`` is reported, so no resume ever runs beside it.
    """
    try:
        pids = [int(p) for p in json.loads(job.get("workers") or "[]")]
    except (TypeError, ValueError):
        return
    deadline = time.monotonic() + WORKER_GONE_SECONDS
    while True:
        left = [p for p in pids if process_alive(p)]
        if not left:
            return
        if time.monotonic() > deadline:
            raise ConflictError(
                f"job {job['id']}: its worker process(es) {', '.join(map(str, left))} still run",
                hint="wait for them, or stop them",
            )
        time.sleep(0.01)


def settle_only(a: Action, ctx: JobContext) -> Outcome:
    try:
        out = settle_action(a, ctx)
    except OSError as exc:
        return Outcome(a.seq, "failed", error=disk_error(a.dst, exc).message)
    return out if out is not None else Outcome(a.seq, "planned")


def process_alive(pid: int | None) -> bool:
    """Whether another process (not this one) that may still be running the job exists."""
    return bool(pid) and pid != os.getpid() and pid_alive(pid)
