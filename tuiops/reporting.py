"""Progress of a command on a terminal: a bar on a TTY, plain periodic lines otherwise.

Shared by the faces that run commands in this process (the command line and script steps).

Where the process has an events channel (:mod:`tuiops.events`), each reporter also writes
progress events there, for the program that started it.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

from tuiops.events import EventWriter
from tuiops.ops.base import ProgressEvent, ProgressFn

#: Progress events are written at most this often (seconds), plus the last one.
EVENT_INTERVAL = 0.1

_events: EventWriter | None = None


def set_event_writer(writer: EventWriter | None) -> None:
    """Send events (progress, result, error) of this process to ``writer`` (None: nowhere)."""
    global _events
    _events = writer


def event_writer() -> EventWriter | None:
    """The events channel of this process, if it has one."""
    return _events


def _progress_event(label: str, ev: ProgressEvent) -> None:
    if _events is not None:
        _events.write("progress", label=label, done=ev.done, total=ev.total, message=ev.message)


@contextlib.contextmanager
def progress_reporter(label: str, *, quiet: bool = False, interval: float = 2.0) -> Iterator[ProgressFn]:
    """Yield a progress callback for an op.

    On a terminal (stderr is a TTY) it draws a rich progress bar; otherwise it prints
    a plain line to stderr at most every ``interval`` seconds, plus a final line. Progress
    events go to the events channel as well, ``quiet`` or not.
    """
    if _events is None:
        with _human_reporter(label, quiet=quiet, interval=interval) as human:
            yield human
        return
    state: dict[str, Any] = {"last": 0.0, "ev": None, "sent": None}

    def both(ev: ProgressEvent) -> None:
        state["ev"] = ev
        now = time.monotonic()
        if now - state["last"] >= EVENT_INTERVAL:
            state["last"] = now
            state["sent"] = ev
            _progress_event(label, ev)
        human(ev)

    with _human_reporter(label, quiet=quiet, interval=interval) as human:
        yield both
    if state["ev"] is not None and state["ev"] is not state["sent"]:
        _progress_event(label, state["ev"])


@contextlib.contextmanager
def _human_reporter(label: str, *, quiet: bool, interval: float) -> Iterator[ProgressFn]:
    if quiet:
        yield lambda ev: None
        return
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[message]}"),
            console=Console(stderr=True),
            transient=False,
        ) as bar:
            task = bar.add_task(label, total=None, message="")

            def on_progress(ev: ProgressEvent) -> None:
                bar.update(task, completed=ev.done, total=ev.total, message=ev.message[:60])

            yield on_progress
        return

    state: dict[str, Any] = {"last": 0.0, "ev": None}

    def on_plain(ev: ProgressEvent) -> None:
        state["ev"] = ev
        now = time.monotonic()
        if now - state["last"] >= interval:
            state["last"] = now
            _plain_line(label, ev)

    yield on_plain
    if state["ev"] is not None:
        _plain_line(label, state["ev"])


def _plain_line(label: str, ev: ProgressEvent) -> None:
    if ev.total:
        pct = 100.0 * ev.done / ev.total if ev.total else 0.0
        text = f"{label}: {ev.done}/{ev.total} ({pct:.0f}%)"
    else:
        text = f"{label}: {ev.done}"
    if ev.message:
        text += f" {ev.message}"
    print(text, file=sys.stderr, flush=True)
