"""The jobs pane: running and finished work with progress bars, ETA, cancel and errors.

Two kinds of rows:

- *tasks* started in this app (a ``tuiops`` command typed on the command line, a copy or
  move confirmed in a dialog): each runs in a thread worker — a command as a subprocess
  that reports its progress, result and error as events on a pipe of its own
  (:mod:`tuiops.events`) — and reports through :class:`TaskUpdate` and
  :class:`TaskOutput` messages; a task's output (a command's stdout and stderr) shows,
  as it arrives, in the output screen (``o`` here, Ctrl+O on the panels);
- *jobs* recorded in the store by any tuiops process (the CLI in another terminal
  included), polled once a second while the pane is shown.

A task's subprocess is cancelled with SIGINT (the op journals what it did and stops); a
job of another process is cancelled through :func:`tuiops.ops.browse.cancel_job`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.binding import BindingType
from textual.widget import Widget

from tuiops.screens.actions import bindings
from tuiops.screens.host import tuiops_app

if TYPE_CHECKING:
    from tuiops.ops.base import CancelToken
    from tuiops.ops.browse import JobRow

#: Lines of output a task keeps (the oldest go first).
MAX_OUTPUT_LINES = 20_000


@dataclass
class Task:
    """One piece of work started from this app."""

    id: int
    label: str
    status: str = "running"
    done: int = 0
    total: int | None = None
    message: str = ""
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    error: str | None = None
    hint: str | None = None
    #: The traceback of an unexpected failure (not a user's mistake).
    traceback: str | None = None
    exit_code: int | None = None
    #: The command's JSON result, where it has one.
    result: Any = None
    #: How many progress events the command sent.
    progress_events: int = 0
    lines: list[str] = field(default_factory=list)
    pid: int | None = None
    cancel: CancelToken | None = None
    proc: Any = None

    def apply(self, changes: dict[str, Any]) -> None:
        for k, v in changes.items():
            setattr(self, k, v)

    def add_lines(self, lines: list[str]) -> None:
        self.lines.extend(lines)
        if len(self.lines) > MAX_OUTPUT_LINES:
            del self.lines[: len(self.lines) - MAX_OUTPUT_LINES]

    @property
    def output(self) -> str:
        """Everything the task wrote, as one text."""
        return "\n".join(self.lines)

    @output.setter
    def output(self, text: str) -> None:
        self.lines = text.splitlines()

    @property
    def running(self) -> bool:
        return self.status == "running"


def bar(done: int, total: int | None, width: int = 20) -> str:
    if not total:
        return "·" * width
    frac = max(0.0, min(1.0, done / total))
    full = int(frac * width)
    return "█" * full + "░" * (width - full)


def eta(done: int, total: int | None, elapsed: float) -> str:
    """Remaining time from the rate so far (blank until there is a rate)."""
    if not total or done <= 0 or elapsed <= 0 or done >= total:
        return ""
    left = (total - done) * elapsed / done
    m, s = divmod(int(left + 0.5), 60)
    h, m = divmod(m, 60)
    return f"ETA {h}:{m:02d}:{s:02d}" if h else f"ETA {m}:{s:02d}"


def _iso_seconds(text: str | None) -> float | None:
    if not text:
        return None
    import datetime as dt

    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


class JobsPane(Widget, can_focus=True):
    """A list of tasks and jobs, newest and running first; ↑↓ pick, x cancels, o output, Enter details."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("jobs")

    DEFAULT_CSS = """
    JobsPane { height: 8; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tasks: dict[int, Task] = {}
        self.jobs: list[JobRow] = []
        self.cursor = 0

    def rows(self) -> list[tuple[str, Any]]:
        own_pids = {t.pid for t in self.tasks.values() if t.pid}
        out: list[tuple[str, Any]] = []
        for t in sorted(self.tasks.values(), key=lambda t: (not t.running, -t.id)):
            out.append(("task", t))
        for j in self.jobs:
            if j.pid in own_pids and j.status == "running":
                continue
            out.append(("job", j))
        return out

    def current(self) -> tuple[str, Any] | None:
        rows = self.rows()
        if not rows:
            return None
        self.cursor = max(0, min(self.cursor, len(rows) - 1))
        return rows[self.cursor]

    def _move(self, delta: int) -> None:
        self.cursor = max(0, min(self.cursor + delta, len(self.rows()) - 1))
        self.refresh()

    def action_jobs_up(self) -> None:
        self._move(-1)

    def action_jobs_down(self) -> None:
        self._move(1)

    def action_jobs_cancel(self) -> None:
        row = self.current()
        if row is not None:
            tuiops_app(self).cancel_work(*row)

    def action_jobs_output(self) -> None:
        row = self.current()
        if row is None:
            return
        kind, r = row
        if kind != "task":
            self.notify("the output is kept for the commands of this app only", severity="warning")
            return
        tuiops_app(self).show_output(r.id)

    def action_jobs_details(self) -> None:
        row = self.current()
        if row is not None:
            tuiops_app(self).show_work_details(*row)

    def render(self) -> Text:
        rows = self.rows()
        text = Text(no_wrap=True, overflow="ellipsis")
        if not rows:
            text.append(
                " no jobs yet — long work (scan, import, match, copy, detect, train) shows here", "dim"
            )
            return text
        now_mono = time.monotonic()
        now_wall = time.time()
        for i, (kind, r) in enumerate(rows):
            if kind == "task":
                t: Task = r
                elapsed = (t.finished or now_mono) - t.started
                line = self._line(
                    f"app {t.id}", t.label, t.status, t.done, t.total, elapsed, t.message, t.error
                )
            else:
                j: JobRow = r
                start = _iso_seconds(j.started)
                end = _iso_seconds(j.finished)
                elapsed = ((end or now_wall) - start) if start else 0.0
                line = self._line(
                    f"job {j.id}", j.kind, j.status, j.done, j.total, elapsed, j.message or "", j.error
                )
            if i == self.cursor and self.has_focus:
                line.stylize("reverse")
            text.append_text(line)
            text.append("\n")
        text.rstrip()
        return text

    def _line(
        self,
        ident: str,
        label: str,
        status: str,
        done: int,
        total: int | None,
        elapsed: float,
        message: str,
        error: str | None,
    ) -> Text:
        style = {"running": "bold", "done": "green", "failed": "red", "cancelled": "yellow"}.get(status, "")
        line = Text()
        line.append(f" {ident:<8}", "dim")
        line.append(f"{label[:18]:<18} ", "bold")
        line.append(f"{status:<9}", style)
        line.append(bar(done, total) + " ")
        if total:
            line.append(f"{100 * done / total:5.1f}% {done:,}/{total:,} ")
        elif done:
            line.append(f"{done:,} ")
        if status == "running":
            line.append(eta(done, total, elapsed) + " ")
        if error:
            line.append(error.splitlines()[0][:80], "red")
        elif message:
            line.append(message[:60], "dim")
        return line
