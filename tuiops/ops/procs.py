"""Worker processes that never outlive the process they work for."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

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
        from tuiops.fsutil import readable

        readable(fd)
        os._exit(1)

    threading.Thread(target=watch, name="tuiops-die-with-parent", daemon=True).start()


def fault_points() -> dict[str, int]:
    """The testing hook ``TUIOPS_FAULT=POINT:N``: kill the process the N-th time it reaches POINT."""
    points: dict[str, int] = {}
    with contextlib.suppress(ValueError):
        point, n = os.environ.get("TUIOPS_FAULT", "").rsplit(":", 1)
        points[point] = int(n)
    return points


#: The points of ``TUIOPS_FAULT`` in this process and how many times each is still to be
#: reached (counted down by :func:`fault`); empty without the hook.
FAULTS: dict[str, int] = fault_points()
_FAULT_LOCK = threading.Lock()
#: In a worker process: the id of the process it works for (0 in that process itself).
_fault_parent = 0


def set_fault_parent(parent: int) -> None:
    """In a worker process: a fault kills ``parent`` too, as a crash of it takes its workers along."""
    global _fault_parent
    _fault_parent = parent


def fault(point: str) -> None:
    """Kill this process (SIGKILL) the N-th time it reaches ``point`` under ``TUIOPS_FAULT=POINT:N``.

    A worker process counts its own arrivals, and kills the process it works for with itself.
    """
    if not FAULTS or point not in FAULTS:
        return
    with _FAULT_LOCK:
        FAULTS[point] -= 1
        if FAULTS[point] <= 0:
            if _fault_parent:
                # a worker simulates a crash of the job's process, which takes its workers along
                os.kill(_fault_parent, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
