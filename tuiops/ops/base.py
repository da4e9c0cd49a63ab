"""What every operation shares: progress events, cancellation and job records.

The progress and cancel protocol lives in :mod:`tuiops.progress` (below the
remote layer, which uses it too) and is re-exported here.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuiops.errors import Cancelled, TuiopsError
from tuiops.progress import CancelToken, ProgressEvent, ProgressFn, Reporter

if TYPE_CHECKING:
    from tuiops.store import Store
    from tuiops.workspace import Workspace


class JobProgress:
    """Forwards progress events (tagged with the job) and writes them to the job row at most
    once a second; with ``with_op`` the row's message starts with the event's op."""

    def __init__(
        self, ws: Workspace, job_id: int, progress: ProgressFn | None, *, with_op: bool = False
    ) -> None:
        self.ws, self.job_id, self.progress, self.with_op = ws, job_id, progress, with_op
        self._last = 0.0

    def __call__(self, ev: ProgressEvent) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(ev.op, ev.done, ev.total, ev.message, self.job_id))
        now = time.monotonic()
        if now - self._last >= 1.0:
            self._last = now
            message = f"{ev.op} {ev.message}" if self.with_op else ev.message
            self.ws.store.job_progress(self.job_id, ev.done, ev.total, message[:200])


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists and is not a zombie (this process counts as alive)."""
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


@contextmanager
def job(store: Store, kind: str, params: Mapping[str, Any], total: int | None = None) -> Iterator[JobHandle]:
    """Record a batch op as a job: running → done | failed | cancelled.

    A job is cancelled by SIGINT (Ctrl+C, `tuiops jobs cancel`, the app's jobs pane), so its
    process listens for it even when it was started with SIGINT ignored (a command started
    in the background by a shell or a CI runner).
    """
    with _sigint_heard():
        yield from _job(store, kind, params, total)


@contextmanager
def _sigint_heard() -> Iterator[None]:
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _job(store: Store, kind: str, params: Mapping[str, Any], total: int | None) -> Iterator[JobHandle]:
    job_id = store.job_start(kind, params, total)
    handle = JobHandle(store, job_id)
    try:
        yield handle
    except Cancelled as exc:
        store.job_finish(job_id, "cancelled", result=handle.result, error=str(exc))
        raise
    except TuiopsError as exc:
        store.job_finish(job_id, "failed", result=handle.result, error=str(exc))
        raise
    except BaseException as exc:
        store.job_finish(job_id, "failed", result=handle.result, error=f"{type(exc).__name__}: {exc}")
        raise
    store.job_finish(job_id, "done", result=handle.result)


@dataclass
class JobHandle:
    store: Store
    id: int
    result: dict[str, Any] | None = None


__all__ = [
    "CancelToken",
    "JobHandle",
    "JobProgress",
    "ProgressEvent",
    "ProgressFn",
    "Reporter",
    "job",
    "pid_alive",
]
