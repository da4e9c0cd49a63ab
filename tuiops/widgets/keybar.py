"""The F-key bar at the bottom of the screen, FAR style: ``1Help 2 3View … 10Quit``.

Clicking a key runs its action, as pressing it would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.widget import Widget


@dataclass(frozen=True)
class KeyBarItem:
    """One slot: the F-key number, its label and the action it runs."""

    number: int
    label: str
    action: str


class KeyBar(Widget):
    """Ten slots sharing the width; an F-key with no action shows an empty slot."""

    DEFAULT_CSS = """
    KeyBar {
        height: 1;
        dock: bottom;
        background: $panel;
    }
    KeyBar > .keybar--number { color: $text; background: $background; }
    KeyBar > .keybar--label { color: $background; background: $secondary; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"keybar--number", "keybar--label"}

    def __init__(self, items: Sequence[KeyBarItem], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.items = {i.number: i for i in items}
        self.slots = max([10, *self.items])

    def _layout(self) -> list[tuple[int, int, int]]:
        width = max(self.slots * 3, self.size.width)
        out = []
        x = 0
        for n in range(1, self.slots + 1):
            w = width * n // self.slots - width * (n - 1) // self.slots
            out.append((n, x, w))
            x += w
        return out

    def render(self) -> Text:
        num_style = self.get_component_rich_style("keybar--number")
        lab_style = self.get_component_rich_style("keybar--label")
        text = Text(no_wrap=True, overflow="crop")
        for n, _x, w in self._layout():
            number = str(n)
            item = self.items.get(n)
            label = item.label if item else ""
            text.append(number, num_style)
            room = max(0, w - len(number))
            text.append(label[:room].ljust(room), lab_style)
        return text

    async def _on_click(self, event: events.Click) -> None:
        for n, x, w in self._layout():
            if x <= event.x < x + w:
                item = self.items.get(n)
                if item is not None:
                    await self.screen.run_action(item.action)
                return
