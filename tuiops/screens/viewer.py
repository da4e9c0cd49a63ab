"""F3: the image under the cursor, full screen, with its boxes and metadata.

PgDn/PgUp (or Space, ←/→) step through the panel's rows; the panel's cursor follows, so
closing the viewer leaves the panel on the last image viewed. The image takes the largest
area the terminal allows (the metadata beside it or below it, or hidden with ``i``);
``l``, ``d`` and ``v`` choose the box layers, ``t`` hides the captions; ``]`` and ``[`` (or
``n`` and ``p``) choose the next or previous box (drawn yellow) and zoom to it, ``z`` zooms
to the chosen box or back to the whole image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.widgets import Static

from tuiops.screens.actions import bindings, key_bar_text
from tuiops.screens.quickview import ImageCard, row_target

if TYPE_CHECKING:
    from tuiops.screens.panel import Panel


class ViewerScreen(Screen[None]):
    """One image at a time from a panel."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("viewer")

    def __init__(self, panel: Panel) -> None:
        super().__init__(classes="viewer-screen")
        self.panel = panel

    def compose(self) -> ComposeResult:
        yield ImageCard(id="viewer-card", meta_lines=30, adaptive=True)
        yield Static(key_bar_text("viewer"), classes="viewer--keys")

    @property
    def card(self) -> ImageCard:
        return self.query_one(ImageCard)

    def on_mount(self) -> None:
        self._show_current()

    def _show_current(self) -> None:
        row = self.panel.table.current_row()
        title = ""
        if row is not None:
            title = str(row.get("relpath") or row.get("name") or row.get("_key") or "")
        self.card.show(row_target(row), title)

    def _step(self, delta: int) -> None:
        table = self.panel.table
        index = table.cursor
        for _ in range(50):
            index += delta
            row: Any = table.row_at(index)
            if row is None:
                return
            if row_target(row) is not None:
                table.set_cursor(index)
                self._show_current()
                return

    def action_viewer_next(self) -> None:
        self._step(1)

    def action_viewer_prev(self) -> None:
        self._step(-1)

    def action_viewer_labels(self) -> None:
        self.card.show_labels = not self.card.show_labels
        self.card.redraw()

    def action_viewer_dets(self) -> None:
        self.card.show_dets = not self.card.show_dets
        self.card.redraw()

    def action_viewer_layers(self) -> None:
        layer = self.card.next_layer()
        self.notify(f"boxes: {layer}", timeout=2)

    def action_viewer_captions(self) -> None:
        shown = self.card.toggle_captions()
        self.notify(f"captions {'shown' if shown else 'hidden'}", timeout=2)

    def action_viewer_zoom(self) -> None:
        self.notify(self.card.toggle_zoom(), timeout=2)

    def action_viewer_next_box(self) -> None:
        self.notify(self.card.step_box(1), timeout=2)

    def action_viewer_prev_box(self) -> None:
        self.notify(self.card.step_box(-1), timeout=2)

    def action_viewer_info(self) -> None:
        self.card.toggle_meta()

    def action_viewer_close(self) -> None:
        self.dismiss(None)
