"""An image in any terminal: two pixels per cell with the upper half block (▀).

Each cell's foreground is the upper pixel and its background the lower one, so an image
of W×2H pixels fills W×H cells with true colour. No terminal graphics protocol is needed:
it works over SSH, in tmux and in screenshots. Captions (class names, scores) are text
cells placed by :func:`tuiops.imaging.place_captions`: beside their boxes where there is
room, never over another caption; they can be hidden.

On a terminal that shows real pixels (``protocol`` ``kitty`` or ``sixel``, chosen at start
by :mod:`tuiops.widgets.graphics`), the picture is shown by textual-image instead, at the
terminal's own resolution (:meth:`ImagePreview.pixel_size` is then the widget's cells
times the cell's size in pixels), its boxes and captions drawn into the pixels.

The widget does not decode images itself: it is given a Pillow image already fitted to
:meth:`ImagePreview.pixel_size` (see :func:`tuiops.imaging.render_preview`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from tuiops.imaging import Caption, place_captions

if TYPE_CHECKING:
    from PIL import Image


class ImagePreview(Widget):
    """Shows a Pillow image with half blocks, centred, plus text captions."""

    @dataclass
    class Resized(Message):
        """The preview's size changed: the picture must be fitted again (it bubbles up to
        whoever draws it)."""

        preview: ImagePreview

    DEFAULT_CSS = """
    ImagePreview {
        height: 1fr;
        width: 1fr;
        background: $surface;
        align: center middle;
    }
    """

    MESSAGE_STYLE: ClassVar[Style] = Style(color="grey62")

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        protocol: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._lines: list[Strip] = []
        self._captions: list[Caption] = []
        self._marks: list[Any] = []
        #: Whether captions are shown (the boxes are drawn in the image either way).
        self.show_captions = True
        self._message = ""
        self._img_size = (0, 0)
        self._protocol = protocol
        #: The picture shown on a terminal that shows real pixels (padded to whole cells).
        self.picture: Image.Image | None = None
        self._pictures: Any = None

    def on_resize(self) -> None:
        self.post_message(self.Resized(self))

    def on_unmount(self) -> None:
        # textual-image frees a picture the terminal holds (Kitty) when it is replaced
        if self._pictures is not None:
            self._pictures.image = None

    @property
    def protocol(self) -> str:
        """How pictures are shown: ``halfblock``, ``kitty`` or ``sixel`` (the app's choice
        unless the widget was given one)."""
        if self._protocol is None:
            if not self.is_attached:
                return "halfblock"
            self._protocol = str(getattr(self.app, "image_protocol", "halfblock"))
        return self._protocol

    @property
    def pixels(self) -> bool:
        """Whether the picture is shown in real pixels, its captions drawn into them."""
        return self.protocol != "halfblock"

    def cell_pixels(self) -> tuple[int, int]:
        """The pixels of one cell: 1×2 for half blocks, the terminal's cell size otherwise."""
        if not self.pixels:
            return 1, 2
        from tuiops.widgets.graphics import cell_size

        return cell_size()

    def pixel_size(self) -> tuple[int, int]:
        """The largest image (width, height in pixels) that fits the widget now."""
        cw, ch = self.cell_pixels()
        return max(1, self.size.width) * cw, max(1, self.size.height) * ch

    def show_message(self, text: str) -> None:
        """Show a line of text instead of an image (loading, missing file …)."""
        self._lines = []
        self._captions = []
        self._message = text
        self.picture = None
        self._picture_widget(None)
        self.refresh()

    def _picture_widget(self, image: Image.Image | None) -> None:
        """Give textual-image's widget ``image`` (None hides it); made on first use."""
        widget = self._pictures
        if image is None:
            if widget is not None:
                widget.display = False
            return
        if widget is None:
            from textual_image.widget import SixelImage, TGPImage

            cls = SixelImage if self.protocol == "sixel" else TGPImage
            widget = self._pictures = cls(image, id="image-pixels")
            self.mount(widget)
        else:
            widget.image = image
        cw, ch = self.cell_pixels()
        widget.styles.width = image.width // cw
        widget.styles.height = image.height // ch
        widget.display = True

    def show_image(self, image: Image.Image, captions: Sequence[Any] = ()) -> None:
        """Show ``image`` (RGB) and captions (objects with x, y, text, color in image pixels;
        on a terminal that shows real pixels the captions are in the image already)."""
        if self.pixels:
            self._show_pixels(image, captions)
            return
        import numpy as np

        rgb = np.asarray(image.convert("RGB"))
        h, w = rgb.shape[0], rgb.shape[1]
        if h % 2:
            rgb = np.concatenate([rgb, np.zeros((1, w, 3), dtype=rgb.dtype)], axis=0)
            h += 1
        top = rgb[0::2]
        bottom = rgb[1::2]
        lines: list[Strip] = []
        cache: dict[tuple[int, ...], Style] = {}
        for row in range(h // 2):
            segs: list[Segment] = []
            t_row = top[row].tolist()
            b_row = bottom[row].tolist()
            for x in range(w):
                key = (*t_row[x], *b_row[x])
                style = cache.get(key)
                if style is None:
                    style = Style(
                        color=Color.from_rgb(key[0], key[1], key[2]),
                        bgcolor=Color.from_rgb(key[3], key[4], key[5]),
                    )
                    cache[key] = style
                segs.append(Segment("▀", style))
            lines.append(Strip(segs, w).simplify())
        self._lines = lines
        self._img_size = (w, h // 2)
        self._marks = list(captions)
        self._captions = place_captions(self._marks, w, h // 2) if self.show_captions else []
        self._message = ""
        self.refresh()

    def _show_pixels(self, image: Image.Image, marks: Sequence[Any]) -> None:
        """Show ``image`` with textual-image, padded with the background to whole cells."""
        from PIL import Image as PILImage

        cw, ch = self.cell_pixels()
        cols, rows = -(-image.width // cw), -(-image.height // ch)
        bg = self.rich_style.bgcolor
        fill = bg.get_truecolor() if bg is not None else (0, 0, 0)
        picture = PILImage.new("RGB", (cols * cw, rows * ch), tuple(fill))
        picture.paste(image.convert("RGB"), ((cols * cw - image.width) // 2, (rows * ch - image.height) // 2))
        self.picture = picture
        self._lines = []
        self._marks = list(marks)
        self._captions = []
        self._img_size = (cols, rows)
        self._message = ""
        self._picture_widget(picture)
        self.refresh()

    def set_captions(self, shown: bool) -> bool:
        """Show or hide the captions of the image shown; returns whether the image must be
        drawn again for it (real pixels: the captions are drawn into the image)."""
        self.show_captions = shown
        if self.pixels:
            return True
        w, h = self._img_size
        self._captions = place_captions(self._marks, w, h) if shown else []
        self.refresh()
        return False

    @property
    def image_size(self) -> tuple[int, int]:
        """The cells (columns, rows) the image shown takes; (0, 0) when none."""
        return self._img_size if self._lines or self.picture is not None else (0, 0)

    @property
    def captions(self) -> list[Caption]:
        """The captions shown, placed (cells of the image)."""
        return list(self._captions)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if not self._lines:
            if self._message and y == self.size.height // 2:
                text = self._message[:width].center(width)
                return Strip([Segment(text, base + self.MESSAGE_STYLE)], width)
            return Strip.blank(width, base)
        w, h = self._img_size
        top = max(0, (self.size.height - h) // 2)
        left = max(0, (width - w) // 2)
        row = y - top
        if row < 0 or row >= h:
            return Strip.blank(width, base)
        strip = self._lines[row]
        for c in self._captions:
            if c.y != row:
                continue
            style = Style(color="black", bgcolor=Color.from_rgb(*c.color), bold=True)
            strip = Strip.join(
                [strip.crop(0, c.x), Strip([Segment(c.text, style)]), strip.crop(c.x + len(c.text), w)]
            )
        pad_left = Strip.blank(left, base)
        return Strip.join([pad_left, strip]).extend_cell_length(width, base).crop(0, width)
