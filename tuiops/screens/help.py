"""F1: every key (from the one action table), the command line, and the panel's filter fields."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tuiops.screens.actions import KEYMAP_TABLE, TYPING, groups, keys_display

COMMANDS = (
    ("q, quit, exit", "quit tuiops (as F10; asks first while jobs run)"),
    ("where EXPR  or  /EXPR", "filter the panel: a SQL WHERE over its fields (below)"),
    ("SELECT …", "open the result of a read-only query in the panel"),
    (
        "cd FOLDER  or  cd SOURCE",
        "go to a pool folder, or open labels:SET, run:RUN, match:NAME, catalog, projects, hosts, mixes, mix:ID",
    ),
    ("set labels|run|match NAME", "which label set, run and match the pool columns count"),
    ("triage [--set S --run R --kind K]", "triage a stored match: worst, fp, fn, cls, loc or dup"),
    ("projects", "the dataset projects, hosts and mixes: build, mix and push"),
    ("gallery", "thumbnails of the panel's images (Shift+F3): select many, mark bad, review, copy"),
    ("tuiops COMMAND …", "run any tuiops command as a job (progress in the jobs pane, output: Ctrl+O)"),
)

KEYMAP_NOTE = (
    "A :word after the keys runs the action when typed alone on the command line. "
    f'Keys can be changed in tuiops.toml: a [{KEYMAP_TABLE}] table of ACTION-ID = "KEY,KEY" '
    '(the id is the last column above), e.g. view = "f3,ctrl+v". Keys changed there are marked *.'
)


class HelpScreen(ModalScreen[None]):
    """The keys by group, then the command line, then the active panel's fields."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,f10,q,question_mark", "close", "Close", show=False),
    ]

    def __init__(
        self, fields: str = "", source_title: str = "", keymap: dict[str, str] | None = None
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.fields = fields
        self.source_title = source_title
        self.keymap = keymap or {}

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog dialog--help-screen", id="help-body"):
            yield Label("tuiops — keys", classes="dialog--title")
            yield Static(self._keys())
            yield Static(Text(KEYMAP_NOTE, style="dim"))
            yield Label("Command line (type in a panel, or : or Ctrl+G)", classes="dialog--title")
            yield Static(self._commands())
            if self.fields:
                yield Label(f"Filter fields of {self.source_title}", classes="dialog--title")
                yield Static(Text(self.fields))

    def _keys(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column()
        table.add_column(style="dim", no_wrap=True)
        table.add_row(Text("Typing in a panel", style="bold underline"), "", "", "")
        for keys, what in TYPING:
            table.add_row("", keys, what, "")
        for group, actions in groups().items():
            table.add_row(Text(group, style="bold underline"), "", "", "")
            for a in actions:
                keys = keys_display(a, self.keymap) + (" *" if a.id in self.keymap else "")
                if a.command:
                    keys += f", :{a.command[0]}"
                table.add_row("", keys, a.description, a.id)
        return table

    def _commands(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for cmd, what in COMMANDS:
            table.add_row(cmd, what)
        return table

    def action_close(self) -> None:
        self.dismiss(None)
