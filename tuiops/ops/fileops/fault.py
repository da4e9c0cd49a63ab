"""The testing hook ``TUIOPS_FAULT=POINT:N``: kill the process the N-th time it reaches POINT."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


_FAULT: dict[str, int] = {}
_FAULT_LOCK = threading.Lock()
if os.environ.get("TUIOPS_FAULT"):
    with contextlib.suppress(ValueError):
        _point, _n = os.environ["TUIOPS_FAULT"].rsplit(":", 1)
        _FAULT[_point] = int(_n)


#: In a worker process: the id of the process running the job (0 in that process itself).
_PARENT = 0


def _fault(point: str) -> None:
    if not _FAULT or point not in _FAULT:
        return
    with _FAULT_LOCK:
        _FAULT[point] -= 1
        if _FAULT[point] <= 0:
            if _PARENT:
                # a worker simulates a crash of the job's process, which takes its workers along
                os.kill(_PARENT, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
