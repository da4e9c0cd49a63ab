"""Small modal dialogs: a line of input, a yes/no question, a menu, a message."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tuiops.errors import TuiopsError


class InputDialog(ModalScreen[str | None]):
    """Ask for one line of text; Enter accepts, Esc cancels."""

    AUTO_FOCUS = "#dialog-input"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(
        self,
        title: str,
        prompt: str,
        value: str = "",
        *,
        check: Callable[[str], None] | None = None,
        help_text: str = "",
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.prompt = prompt
        self.value = value
        self.check = check
        self.help_text = help_text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog--title")
            yield Label(self.prompt)
            yield Input(self.value, id="dialog-input", select_on_focus=True)
            yield Static("", id="dialog-error", classes="dialog--error")
            if self.help_text:
                yield Static(self.help_text, classes="dialog--help")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value
        if self.check is not None:
            try:
                self.check(value)
            except TuiopsError as exc:
                self.query_one("#dialog-error", Static).update(
                    exc.message + (f"\nhint: {exc.hint}" if exc.hint else "")
                )
                return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A question with a body; Enter or y accepts, Esc or n refuses."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "No", show=False),
        Binding("y", "answer(True)", "Yes", show=False),
    ]

    def __init__(
        self, title: str, body: str | Text, *, yes: str = "OK", no: str = "Cancel", can_accept: bool = True
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.body = body
        self.yes = yes
        self.no = no
        self.can_accept = can_accept

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog--title")
            with VerticalScroll(classes="dialog--body"):
                yield Static(self.body, id="confirm-body")
            with Horizontal(classes="dialog--buttons"):
                yield Button(self.yes, id="yes", variant="primary", disabled=not self.can_accept)
                yield Button(self.no, id="no")

    def on_mount(self) -> None:
        self.query_one("#yes" if self.can_accept else "#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes" and self.can_accept)

    def action_answer(self, value: bool) -> None:
        self.dismiss(value and self.can_accept)


class MenuDialog(ModalScreen[str | None]):
    """Pick one entry of a list; Enter picks, Esc cancels."""

    AUTO_FOCUS = "#menu-list"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(
        self,
        title: str,
        entries: Sequence[tuple[str, str | Text]],
        *,
        highlight: str | None = None,
        body: str | Text | None = None,
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.entries = list(entries)
        self.highlight = highlight
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog--menu"):
            yield Label(self.title_text, classes="dialog--title")
            if self.body is not None:
                yield Static(self.body, classes="dialog--body", markup=False)
            yield OptionList(*[Option(text, id=key) for key, text in self.entries], id="menu-list")

    def on_mount(self) -> None:
        menu = self.query_one(OptionList)
        menu.focus()
        if self.highlight is not None:
            for i, (key, _) in enumerate(self.entries):
                if key == self.highlight:
                    menu.highlighted = i

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class MessageDialog(ModalScreen[None]):
    """A longer message (a job's errors, a command's output); any of Enter/Esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close", show=False)]

    def __init__(self, title: str, body: str | Text) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog--wide"):
            yield Label(self.title_text, classes="dialog--title")
            with VerticalScroll(classes="dialog--body"):
                yield Static(self.body, markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
