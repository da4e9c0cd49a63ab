"""Worker processes that never outlive the process they work for."""

from __future__ import annotations

import contextlib
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, *, direct: bool = True) -> None:
    """In a worker process: end it when the process it works for dies.

    ``direct``: ``parent`` forked this worker, and the kernel kills the worker (SIGKILL)
    when it dies (``PR_SET_PDEATHSIG``). Otherwise ``parent`` started it through another
    process (a multiprocessing forkserver, which lives as long as its workers do): a
    thread of the worker waits on ``parent``'s process descriptor and ends the worker
    when it exits. Should ``parent`` be gone already, the worker exits at once. Linux
    only; elsewhere a no-op.
    """
    if direct:
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
        return
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)
    except (OSError, AttributeError):
        return
    import threading

    def watch() -> None:
        import select

        select.select([fd], [], [])
        os._exit(1)

    threading.Thread(target=watch, name="tuiops-die-with-parent", daemon=True).start()


def fault_points() -> dict[str, int]:
    """The testing hook ``TUIOPS_FAULT=POINT:N``: kill the process the N-th time it reaches POINT."""
    points: dict[str, int] = {}
    with contextlib.suppress(ValueError):
        point, n = os.environ.get("TUIOPS_FAULT", "").rsplit(":", 1)
        points[point] = int(n)
    return points
