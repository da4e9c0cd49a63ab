"""A grid of thumbnails: each tile an image drawn in cells and a caption line below it.

The widget draws what it is given and reads nothing itself: the screen hands it tiles
(:class:`GridTile`: caption, whether selected, marked bad, and the thumbnail's lines once
a worker has decoded it) for the positions around the cursor. One tile's pixels become
cell lines in one function, :func:`thumb_lines` (half blocks: the upper pixel is the
cell's foreground, the lower its background); a terminal with real pixels replaces that
function and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

if TYPE_CHECKING:
    from PIL import Image

#: Thumbnail sizes the size key steps through: (columns, image rows) of one tile.
TILE_SIZES = ((16, 7), (24, 10), (34, 15))
#: Columns between two tiles, rows between two tile rows.
GAP_X = 1
GAP_Y = 1


def thumb_lines(image: Image.Image) -> list[Strip]:
    """The cell lines of an RGB image with two pixels per cell (``▀``): W×2H pixels make
    W columns of H lines. The one function that turns a thumbnail's pixels into cells."""
    import numpy as np

    rgb = np.asarray(image.convert("RGB"))
    h, w = rgb.shape[0], rgb.shape[1]
    if h % 2:
        rgb = np.concatenate([rgb, np.zeros((1, w, 3), dtype=rgb.dtype)], axis=0)
        h += 1
    top, bottom = rgb[0::2].tolist(), rgb[1::2].tolist()
    cache: dict[tuple[int, ...], Style] = {}
    lines: list[Strip] = []
    for row in range(h // 2):
        segs: list[Segment] = []
        for up, down in zip(top[row], bottom[row], strict=True):
            key = (*up, *down)
            style = cache.get(key)
            if style is None:
                style = Style(color=Color.from_rgb(*up), bgcolor=Color.from_rgb(*down))
                cache[key] = style
            segs.append(Segment("▀", style))
        lines.append(Strip(segs, w).simplify())
    return lines


@dataclass
class GridTile:
    """What the grid shows of one position: its caption, its marks and its thumbnail lines
    (None while it is decoded)."""

    caption: str
    selected: bool = False
    bad: bool = False
    lines: list[Strip] | None = None
    note: str = ""


class ThumbGrid(Widget, can_focus=True):
    """Tiles in rows, the first shown at :attr:`top`, the cursor's tile framed."""

    DEFAULT_CSS = """
    ThumbGrid {
        width: 1fr;
        height: 1fr;
        background: #0000aa;
        color: #55ffff;
    }
    ThumbGrid > .thumbs--caption { color: #55ffff; }
    ThumbGrid > .thumbs--cursor { background: #00aaaa; color: #000000; text-style: bold; }
    ThumbGrid > .thumbs--selected { color: #ffff55; text-style: bold; }
    ThumbGrid > .thumbs--bad { color: #ff5555; text-style: bold; }
    ThumbGrid > .thumbs--frame { color: #ffff55; }
    ThumbGrid > .thumbs--note { color: #8888cc; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "thumbs--caption",
        "thumbs--cursor",
        "thumbs--selected",
        "thumbs--bad",
        "thumbs--frame",
        "thumbs--note",
    }

    class Resized(Message):
        """The grid's size changed: the tiles shown, their number and size may be others."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.size_index = 1
        self.top = 0
        self.cursor = 0
        self.count = 0
        self.tiles: dict[int, GridTile] = {}
        #: The size assumed while the grid has none yet (before its first layout).
        self.assumed_size: tuple[int, int] = (0, 0)

    def on_resize(self, event: events.Resize) -> None:
        self.post_message(self.Resized())

    # -- geometry -------------------------------------------------------------------------------
    @property
    def tile_size(self) -> tuple[int, int]:
        """(columns, image rows) of one tile."""
        return TILE_SIZES[self.size_index]

    def pixel_size(self) -> tuple[int, int]:
        """The thumbnail's size in pixels (width, height)."""
        w, rows = self.tile_size
        return w, rows * 2

    def _area(self) -> tuple[int, int]:
        if self.size.height and self.size.width:
            return self.size.width, self.size.height
        return self.assumed_size

    @property
    def columns(self) -> int:
        w, _ = self.tile_size
        return max(1, (self._area()[0] - GAP_X) // (w + GAP_X))

    @property
    def rows(self) -> int:
        _, h = self.tile_size
        return max(1, (self._area()[1] + GAP_Y) // (h + 1 + GAP_Y))

    @property
    def page(self) -> int:
        """Tiles on one screen."""
        return self.columns * self.rows

    def scroll_to_cursor(self) -> None:
        """Move :attr:`top` (a multiple of the columns) so that the cursor's row is shown."""
        cols = self.columns
        row = self.cursor // cols
        first = self.top // cols
        if row < first:
            first = row
        elif row >= first + self.rows:
            first = row - self.rows + 1
        self.top = max(0, first * cols)

    def shown(self) -> range:
        """The positions on screen."""
        return range(self.top, min(self.count, self.top + self.page))

    # -- drawing --------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        tw, th = self.tile_size
        block = th + 1 + GAP_Y
        grid_row, line = divmod(y, block)
        if grid_row >= self.rows or line > th:
            return Strip.blank(width, base)
        cols = self.columns
        frame = self.get_component_rich_style("thumbs--frame")
        first = self.top + grid_row * cols
        cursor_col = self.cursor - first if self.cursor < self.count else -2

        def gap(boundary: int) -> Strip:
            # the gap left of tile column ``boundary``: a frame line beside the cursor's tile
            framed = boundary in (cursor_col, cursor_col + 1)
            return Strip([Segment("│" if framed else " ", frame)], 1)

        used = cols * (tw + GAP_X) + GAP_X
        parts: list[Strip] = [Strip.blank(max(0, (width - used) // 2), base)]
        for c in range(cols):
            parts.append(gap(c))
            parts.append(self._tile_line(first + c, line, tw, th, base))
        parts.append(gap(cols))
        return Strip.join(parts).extend_cell_length(width, base).crop(0, width)

    def _tile_line(self, pos: int, line: int, tw: int, th: int, base: Style) -> Strip:
        if pos >= self.count:
            return Strip.blank(tw, base)
        tile = self.tiles.get(pos)
        if line == th:
            return self._caption(pos, tile, tw, base)
        if tile is None or tile.lines is None:
            if line == th // 2:
                text = (tile.note if tile is not None and tile.note else "…")[:tw].center(tw)
                return Strip([Segment(text, self.get_component_rich_style("thumbs--note"))], tw)
            return Strip.blank(tw, base)
        lines = tile.lines
        top = (th - len(lines)) // 2
        row = line - top
        if row < 0 or row >= len(lines):
            return Strip.blank(tw, base)
        strip = lines[row]
        pad = max(0, (tw - strip.cell_length) // 2)
        return Strip.join([Strip.blank(pad, base), strip]).extend_cell_length(tw, base).crop(0, tw)

    def _caption(self, pos: int, tile: GridTile | None, tw: int, base: Style) -> Strip:
        mark = "✓" if tile is not None and tile.selected else " "
        bad = "BAD " if tile is not None and tile.bad else ""
        text = f"{mark}{bad}{tile.caption if tile is not None else '…'}"
        text = text[:tw].ljust(tw)
        if pos == self.cursor:
            style = self.get_component_rich_style("thumbs--cursor")
        elif tile is not None and tile.selected:
            style = self.get_component_rich_style("thumbs--selected")
        else:
            style = self.get_component_rich_style("thumbs--caption")
        segs = [Segment(text, style)]
        if bad and pos != self.cursor:
            cut = len(mark) + len(bad)
            segs = [
                Segment(text[: len(mark)], style),
                Segment(text[len(mark) : cut], self.get_component_rich_style("thumbs--bad")),
                Segment(text[cut:], style),
            ]
        return Strip(segs, tw)
