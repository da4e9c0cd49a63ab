"""The machine channel of a ``tuiops`` process: JSON lines on a file descriptor of its own.

A program that runs ``tuiops`` as a subprocess (the terminal app does) opens a pipe, passes
its write end to the child (``pass_fds``) and names it in ``TUIOPS_EVENTS_FD``. The child
then writes one JSON object per line there, while stdout stays the command's data and
stderr its human text:

- ``{"event": "progress", "label": "scan", "done": 120, "total": 2000, "message": "…"}``
- ``{"event": "result", "result": {…}}`` where the command has a JSON result
- ``{"event": "error", "message": "…", "hint": "…" | null, "exit_code": 4, "kind": "InputError"}``;
  an unexpected failure also carries ``"traceback"``

The variable is taken out of the child's environment when read, so the processes it starts
in turn never write to a descriptor that is not theirs.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from typing import IO, Any

#: The environment variable that names the events descriptor.
EVENTS_FD_ENV = "TUIOPS_EVENTS_FD"


class EventWriter:
    """Writes events as JSON lines; thread-safe; a reader gone away silences it."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream: IO[str] | None = stream
        self._lock = threading.Lock()

    def write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}, default=str, ensure_ascii=False)
        with self._lock:
            if self._stream is None:
                return
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                self._stream = None

    def close(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def writer_from_env() -> EventWriter | None:
    """The writer named by ``TUIOPS_EVENTS_FD`` (removed from the environment), or None.

    Only a pipe or a socket is taken: a number left over from another process that
    names an ordinary file or a terminal of this one is ignored.
    """
    text = os.environ.pop(EVENTS_FD_ENV, None)
    if not text:
        return None
    try:
        fd = int(text)
        mode = os.fstat(fd).st_mode
    except (ValueError, OSError):
        return None
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return None
    return EventWriter(os.fdopen(fd, "w", encoding="utf-8", closefd=True))


def read_event(line: bytes | str) -> dict[str, Any] | None:
    """One event from a line of the channel, or None where the line is not one."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(obj, dict) and isinstance(obj.get("event"), str):
        return obj
    return None
