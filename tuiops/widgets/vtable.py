"""A virtual table: renders only the visible rows of any number of rows (Textual Line API).

The table holds no rows. It asks a :class:`RowProvider` for the rows of the visible
window (a polars frame with a ``_id`` column and one column per :class:`TableColumn`),
formats only those, and draws them with ``render_line``. Scrolling a 4M-row table costs
one page read, never a Python object per row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    from textual import events


class RowProvider(Protocol):
    """What the table reads rows from."""

    def row_count(self) -> int: ...

    def rows(self, start: int, n: int) -> pl.DataFrame: ...

    def selected(self, ids: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class TableColumn:
    """A column: ``name`` in the row frame, header ``title``, ``kind`` for formatting, fixed
    ``width`` (None: takes the room left)."""

    name: str
    title: str
    kind: str = "text"
    width: int | None = 8


def _human(n: float) -> str:
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            if unit == "":
                return str(int(n))
            return f"{n:.1f}{unit}" if abs(n) < 100 else f"{n:.0f}{unit}"
        n /= 1024
    return f"{n:.0f}T"


def format_cell(kind: str, value: Any, row: dict[str, Any] | None = None) -> str:
    """Text of one cell (the table formats only the visible ones)."""
    if kind == "dims":
        if row is None:
            return ""
        w, h = row.get("width"), row.get("height")
        return f"{w}×{h}" if w and h else ""
    if value is None:
        return ""
    if kind == "size":
        return _human(float(value))
    if kind == "score":
        return f"{float(value):.2f}"
    if kind == "coord":
        return f"{float(value):.0f}"
    if kind == "float":
        v = float(value)
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    if kind in ("int", "count"):
        return f"{int(value):,}" if kind == "int" else str(int(value))
    return str(value)


def fit(text: str, width: int, right: bool) -> str:
    if width <= 0:
        return ""
    if len(text) > width:
        return text[: width - 1] + "…" if width > 1 else text[:width]
    return text.rjust(width) if right else text.ljust(width)


_RIGHT = frozenset({"size", "int", "float", "count", "score", "coord", "dims"})


class VirtualTable(ScrollView, can_focus=True, inherit_bindings=False):
    """A scrollable, virtual table with a cursor, selection marks and a fixed header line."""

    DEFAULT_CSS = """
    VirtualTable {
        background: $surface;
        color: $foreground;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    VirtualTable > .vtable--header { color: $warning; text-style: bold; }
    VirtualTable > .vtable--cursor { background: $accent 40%; }
    VirtualTable:focus > .vtable--cursor { background: $accent; color: $text; }
    VirtualTable > .vtable--selected { color: $warning; text-style: bold; }
    VirtualTable > .vtable--dir { color: $text; text-style: bold; }
    VirtualTable > .vtable--bad { color: $error; }
    VirtualTable > .vtable--separator { color: $primary; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "vtable--header",
        "vtable--cursor",
        "vtable--selected",
        "vtable--dir",
        "vtable--bad",
        "vtable--separator",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False, id="cursor-up"),
        Binding("down", "cursor_down", "Down", show=False, id="cursor-down"),
        Binding("pageup", "page_up", "PgUp", show=False, id="page-up"),
        Binding("pagedown", "page_down", "PgDn", show=False, id="page-down"),
        Binding("home", "first_row", "Home", show=False, id="first-row"),
        Binding("end", "last_row", "End", show=False, id="last-row"),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False, repaint=False)

    @dataclass
    class CursorMoved(Message):
        """The cursor moved to another row (``row`` is that row's values, or None)."""

        table: VirtualTable
        index: int
        row: dict[str, Any] | None

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns: list[TableColumn] = []
        self.provider: RowProvider | None = None
        self._rows: tuple[int, list[dict[str, Any]]] = (0, [])
        self._row_count = 0
        self.placeholder = ""
        self._styles: dict[str, Style] = {}
        #: Drawn lines by (row index, width, under the cursor): a scroll redraws only new rows.
        self._strips: dict[tuple[int, int, bool], Strip] = {}
        self._width_cache: tuple[int, list[TableColumn], list[int]] | None = None
        self.row_style: Callable[[dict[str, Any]], str | None] | None = None
        #: Called at once when the cursor moves (same frame), before CursorMoved is posted.
        self.on_cursor: Callable[[int, dict[str, Any] | None], None] | None = None

    # -- data --------------------------------------------------------------------------------
    def set_provider(self, provider: RowProvider | None, columns: list[TableColumn], cursor: int = 0) -> None:
        """Show another provider's rows (the cursor goes to ``cursor``)."""
        self.provider = provider
        self.columns = columns
        self.reload(cursor=cursor)

    def reload(self, cursor: int | None = None) -> None:
        """Forget cached rows and re-read the row count (after the provider changed)."""
        self._rows, self._strips = (0, []), {}
        self._row_count = self.provider.row_count() if self.provider is not None else 0
        self.virtual_size = Size(self.size.width, self._row_count + 1)
        target = self.cursor if cursor is None else cursor
        target = max(0, min(target, self._row_count - 1))
        self.set_cursor(target, force=True)
        self.refresh()

    def refresh_marks(self) -> None:
        """Re-draw the visible rows (selection changed)."""
        self._rows, self._strips = (0, []), {}
        self.refresh()

    @property
    def row_count(self) -> int:
        return self._row_count

    def visible_rows(self) -> int:
        return max(1, self.size.height - 1)

    def _window(self, start: int, n: int) -> list[dict[str, Any]]:
        first, rows = self._rows
        if rows and first <= start and start + n <= first + len(rows):
            return rows[start - first : start - first + n]
        if self.provider is None:
            return []
        # at least a screenful around ``start``, so a single row (the cursor's) and the drawing
        # of the screen around it share one read
        span = max(n, self.visible_rows())
        lo = max(0, start - span // 2)
        frame = self.provider.rows(lo, 2 * span)
        rows = frame.to_dicts()
        if rows and "_id" in frame.columns:
            import numpy as np

            ids = frame["_id"].to_numpy().astype(np.int64)
            marks = self.provider.selected(ids)
            for r, m in zip(rows, marks, strict=True):
                r["_selected"] = bool(m)
        self._rows = (lo, rows)
        return rows[start - lo : start - lo + n]

    def row_at(self, index: int) -> dict[str, Any] | None:
        if index < 0 or index >= self._row_count:
            return None
        rows = self._window(index, 1)
        return rows[0] if rows else None

    def current_row(self) -> dict[str, Any] | None:
        return self.row_at(self.cursor)

    # -- cursor ----------------------------------------------------------------------------
    def set_cursor(self, index: int, *, force: bool = False) -> None:
        index = max(0, min(index, max(0, self._row_count - 1)))
        if index != self.cursor or force:
            self.cursor = index
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        height = self.visible_rows()
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def watch_cursor(self, old: int, new: int) -> None:
        top = int(self.scroll_y)
        width = self.size.width
        for index in (old, new):
            y = index - top + 1
            if 1 <= y < self.size.height:
                self.refresh(Region(0, y, width, 1))
        row = self.row_at(new)
        if self.on_cursor is not None:
            self.on_cursor(new, row)
        self.post_message(self.CursorMoved(self, new, row))

    def action_cursor_up(self) -> None:
        self.set_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.set_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.set_cursor(self.cursor - self.visible_rows())

    def action_page_down(self) -> None:
        self.set_cursor(self.cursor + self.visible_rows())

    def action_first_row(self) -> None:
        self.set_cursor(0)

    def action_last_row(self) -> None:
        self.set_cursor(self._row_count - 1)

    async def _on_click(self, event: events.Click) -> None:
        y = event.y
        if y >= 1:
            self.set_cursor(int(self.scroll_y) + y - 1)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, self._row_count + 1)
        self._rows, self._strips = (0, []), {}
        self._scroll_to_cursor()

    # -- drawing ------------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        self._styles, self._strips = {}, {}
        super().notify_style_update()

    def _on_focus(self, event: events.Focus) -> None:
        self._styles, self._strips = {}, {}
        super()._on_focus(event)
        self.refresh()

    def _on_blur(self, event: events.Blur) -> None:
        self._styles, self._strips = {}, {}
        super()._on_blur(event)
        self.refresh()

    def _style(self, name: str) -> Style:
        """The rich style of a component class on top of the widget's (cached until styles change)."""
        styles = self._styles
        if not styles:
            styles["base"] = self.rich_style
        style = styles.get(name)
        if style is None:
            style = styles["base"] + self.get_component_rich_style(name) if name != "base" else styles["base"]
            styles[name] = style
        return style

    def _widths(self, total: int) -> list[int]:
        cached = self._width_cache
        if cached is not None and cached[0] == total and cached[1] is self.columns:
            return cached[2]
        fixed = sum(c.width or 0 for c in self.columns) + max(0, len(self.columns) - 1)
        flex = [c for c in self.columns if c.width is None]
        room = max(4, total - fixed)
        out = []
        for c in self.columns:
            if c.width is None:
                out.append(max(4, room // max(1, len(flex))))
            else:
                out.append(c.width)
        self._width_cache = (total, self.columns, out)
        return out

    def _line(self, cells: list[str], style: Style, sep: Style, width: int) -> Strip:
        segs: list[Segment] = []
        used = 0
        for i, text in enumerate(cells):
            if i:
                segs.append(Segment("│", sep))
                used += 1
            if used + len(text) > width:
                text = text[: max(0, width - used)]
            segs.append(Segment(text, style))
            used += len(text)
            if used >= width:
                break
        if used < width:
            segs.append(Segment(" " * (width - used), style))
        return Strip(segs, width)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self._style("base")
        sep = self._style("vtable--separator")
        widths = self._widths(width)
        if y == 0:
            cells = [c.title.center(w)[:w] for c, w in zip(self.columns, widths, strict=True)]
            return self._line(cells, self._style("vtable--header"), sep, width)
        index = int(self.scroll_y) + y - 1
        if index >= self._row_count:
            if index == 0 and self.placeholder:
                return self._line([fit(self.placeholder, width, False)], base, sep, width)
            return Strip.blank(width, base)
        key = (index, width, index == self.cursor)
        strip = self._strips.get(key)
        if strip is not None:
            return strip
        rows = self._window(index, self.visible_rows())
        row = rows[0] if rows else None
        if row is None:
            return Strip.blank(width, base)
        strip = self._row_strip(index, row, width, widths, base, sep)
        if len(self._strips) > 8 * self.visible_rows():
            self._strips = {}
        self._strips[key] = strip
        return strip

    def _row_strip(
        self, index: int, row: dict[str, Any], width: int, widths: list[int], base: Style, sep: Style
    ) -> Strip:
        custom = self.row_style(row) if self.row_style else None
        name = "base"
        if index == self.cursor:
            style = self._style("vtable--cursor")
            if custom:
                style = self._style(custom) + style
            if row.get("_selected"):
                style = style + Style(color=self._style("vtable--selected").color)
            sep = style
        else:
            if row.get("_selected"):
                name = "vtable--selected"
            elif custom:
                name = custom
            style = self._style(name)
        cells = []
        for c, w in zip(self.columns, widths, strict=True):
            text = format_cell(c.kind, row.get(c.name), row)
            cells.append(fit(text, w, c.kind in _RIGHT))
        return self._line(cells, style, sep, width)
