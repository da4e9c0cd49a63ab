"""A job's output: a command's stdout and stderr, as they arrive, full screen.

Opened with Ctrl+O on the panels (the last command of the app, or the job picked in the
jobs pane) or ``o`` in the jobs pane. The app appends the lines a running command writes
(:meth:`add_lines`) and refreshes the status line when the task changes (:meth:`refresh_status`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.widgets import Log, Static

from tuiops.screens.actions import ACTIONS, bindings, keys_display
from tuiops.screens.jobs import MAX_OUTPUT_LINES, bar

if TYPE_CHECKING:
    from tuiops.screens.jobs import Task


class OutputScreen(Screen[None]):
    """The output of one task of the app, read-only, following new lines."""

    CSS_PATH = "output.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings("output")

    def __init__(self, task: Task) -> None:
        super().__init__(classes="output-screen")
        self.job = task

    def compose(self) -> ComposeResult:
        yield Static(id="output-title")
        yield Log(id="output-log", max_lines=MAX_OUTPUT_LINES, auto_scroll=True)
        yield Static(id="output-status")
        keys = "  ".join(
            f"{keys_display(a).split(', ')[0]} {a.label}" for a in ACTIONS if a.scope == "output"
        )
        yield Static(f" {keys} ", id="output-keys")

    @property
    def log_view(self) -> Log:
        return self.query_one("#output-log", Log)

    def on_mount(self) -> None:
        self.query_one("#output-title", Static).update(f"app {self.job.id}: {self.job.label}")
        if self.job.lines:
            self.log_view.write_lines(self.job.lines)
        self.refresh_status()
        self.log_view.focus()

    def add_lines(self, lines: list[str]) -> None:
        """Append lines the task wrote since the screen opened."""
        self.log_view.write_lines(lines)

    def refresh_status(self) -> None:
        t = self.job
        status = self.query_one("#output-status", Static)
        text = Text()
        text.append(f" {t.status} ")
        if t.running:
            text.append(bar(t.done, t.total) + " ")
            text.append(f"{t.done:,}" + (f"/{t.total:,}" if t.total else "") + " ")
            if t.message:
                text.append(t.message[:80])
        elif t.error:
            text.append(t.error.splitlines()[0][:200])
            if t.hint:
                text.append(f"  hint: {t.hint}")
        status.update(text)
        status.set_class(t.status == "failed", "-failed")
        status.set_class(t.status == "done", "-done")

    def action_output_cancel(self) -> None:
        app: Any = self.app
        app.cancel_work("task", self.job)

    def action_output_close(self) -> None:
        self.dismiss(None)
