"""Remote hosts over SSH (asyncssh): connections, commands and file transfers.

The library is asynchronous inside (:mod:`tuiops.remote.hosts`,
:mod:`tuiops.remote.commands`, :mod:`tuiops.remote.transfer`); :func:`run_sync`
runs one of its coroutines to completion from ordinary code (a CLI command, a
worker thread of the terminal app), turning a :class:`~tuiops.progress.CancelToken`
into a cancellation of the coroutine. The workspace's remote operations, one
layer up, wrap it; nothing here imports them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from tuiops.progress import CancelToken

T = TypeVar("T")

__all__ = ["run_sync"]


class _DeadSocketFilter(logging.Filter):
    """Drops asyncio's repeated warning about writes to a connection that is already lost.

    A dropped connection is reported (and retried) by the transfer itself; the
    warning would only print lines of noise under the progress bar.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "socket.send() raised exception."


_FILTER = _DeadSocketFilter()


def run_sync(coro: Coroutine[Any, Any, T], cancel: CancelToken | None = None, *, poll: float = 0.1) -> T:
    """Run ``coro`` in a new event loop in this thread and return its result.

    When ``cancel`` is given, it is polled every ``poll`` seconds; once set, the
    coroutine is cancelled (its ``finally`` blocks close connections) and
    :class:`~tuiops.errors.Cancelled` is raised.
    """

    async def main() -> T:
        task = asyncio.ensure_future(coro)
        if cancel is None:
            return await task
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll)
            if done:
                return task.result()
            if cancel.cancelled:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                cancel.check()

    log = logging.getLogger("asyncio")
    log.addFilter(_FILTER)
    try:
        return asyncio.run(main())
    finally:
        log.removeFilter(_FILTER)
