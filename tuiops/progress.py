"""Progress events and cancellation: the protocol every long piece of work shares.

An operation (or a transfer under it) reports :class:`ProgressEvent` messages
through a :data:`ProgressFn` and checks a :class:`CancelToken` between units of
work; :class:`Reporter` throttles the one and checks the other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tuiops.errors import Cancelled


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A small, immutable progress message: safe to post across threads."""

    op: str
    done: int
    total: int | None = None
    message: str = ""
    job_id: int | None = None


ProgressFn = Callable[[ProgressEvent], None]


class CancelToken:
    """A thread-safe flag an op checks between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user; what was done so far is recorded")


class Reporter:
    """Throttled progress reporting for one op (at most every ``interval`` seconds)."""

    def __init__(
        self,
        op: str,
        progress: ProgressFn | None,
        cancel: CancelToken | None,
        total: int | None = None,
        *,
        interval: float = 0.1,
        job_id: int | None = None,
    ) -> None:
        self.op = op
        self.progress = progress
        self.cancel = cancel
        self.total = total
        self.done = 0
        self.interval = interval
        self.job_id = job_id
        self._last = 0.0

    def check(self) -> None:
        if self.cancel is not None:
            self.cancel.check()

    def advance(self, n: int = 1, message: str = "", *, force: bool = False) -> None:
        self.done += n
        self.update(self.done, message, force=force)

    def update(self, done: int, message: str = "", *, force: bool = False, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        self.check()
        if self.progress is None:
            return
        now = time.monotonic()
        if force or now - self._last >= self.interval or (self.total is not None and done >= self.total):
            self._last = now
            self.progress(ProgressEvent(self.op, done, self.total, message, self.job_id))


__all__ = ["CancelToken", "ProgressEvent", "ProgressFn", "Reporter"]
