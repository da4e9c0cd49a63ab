"""The image card: one image with its label and detection boxes, and its metadata.

Used by the quick view (Ctrl+Q: the other panel follows the cursor) and by the F3
viewer. Decoding the image and reading its boxes run in a worker; only the newest
request's result is shown. In the viewer the card gives the picture the room: the
metadata goes beside the image or below it, whichever leaves the image larger (or is
hidden), and the image can be zoomed onto one box at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.widgets import Static
from textual.worker import get_current_worker

from tuiops.errors import TuiopsError
from tuiops.screens.messages import InfoReady
from tuiops.screens.workers import ReportsWorkerFailures
from tuiops.widgets.image import ImagePreview

if TYPE_CHECKING:
    from tuiops.ops.browse import ImageInfo


def row_target(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """What identifies the image of a panel row: a file id, else an item id or a key."""
    if row is None:
        return None
    if row.get("_kind") == "file" and row.get("_id", -1) >= 0:
        return {"file_id": int(row["_id"])}
    if row.get("_item") is not None:
        return {"item_id": int(row["_item"])}
    if row.get("_key"):
        return {"key": str(row["_key"])}
    return None


#: Layers of boxes shown, in the order the layer key steps through them.
LAYERS = ("both", "labels", "dets", "none")


def layer_name(labels: bool, dets: bool) -> str:
    """The name in :data:`LAYERS` of the layers shown."""
    return {(True, True): "both", (True, False): "labels", (False, True): "dets"}.get((labels, dets), "none")


#: Columns of the metadata beside the image (its border included).
SIDE_META = 42


def layout_side(cols: int, rows: int, meta_rows: int, width: int | None, height: int | None) -> bool:
    """Whether the metadata beside the image (``SIDE_META`` columns) leaves it larger than
    below it (``meta_rows`` rows): ``cols``×``rows`` cells for both, the image ``width``×``height``."""
    w, h = max(1, width or 4), max(1, height or 3)

    def area(c: int, r: int) -> float:
        if c < 1 or r < 1:
            return 0.0
        k = min(c / w, 2 * r / h)
        return (w * k) * (h * k)

    return area(cols - SIDE_META, rows) > area(cols, rows - meta_rows)


class ImageCard(ReportsWorkerFailures, Vertical):
    """Preview (half blocks) with a metadata list below it, or beside it (``adaptive``)."""

    def __init__(
        self,
        *,
        id: str | None = None,
        classes: str | None = None,
        meta_lines: int = 14,
        adaptive: bool = False,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._seq = 0
        self.target: dict[str, Any] | None = None
        self.info: ImageInfo | None = None
        self.show_labels = True
        self.show_dets = True
        self.meta_lines = meta_lines
        self.card_title = ""
        #: Lay the metadata out beside or below the image, whichever leaves the image larger.
        self.adaptive = adaptive
        #: Whether the metadata is shown.
        self.show_meta = True
        #: The box the image is zoomed onto (its index among the boxes shown), or None.
        self.zoom: int | None = None
        #: The box chosen with the next/previous box keys (drawn yellow), or None.
        self.chosen: int | None = None

    def compose(self) -> ComposeResult:
        yield Static("", classes="card--title")
        with Container(classes="card--body"):
            yield ImagePreview(classes="card--image")
            yield Static("", classes="card--meta")

    @property
    def box_layers(self) -> str:
        """The layers shown: both, labels, dets or none."""
        return layer_name(self.show_labels, self.show_dets)

    def next_layer(self) -> str:
        """Step to the next layer of :data:`LAYERS` and draw again; returns it."""
        new = LAYERS[(LAYERS.index(self.box_layers) + 1) % len(LAYERS)]
        self.show_labels = new in ("both", "labels")
        self.show_dets = new in ("both", "dets")
        self.redraw()
        return new

    def toggle_captions(self) -> bool:
        """Show or hide the captions; returns whether they are shown now."""
        if self.preview.set_captions(not self.preview.show_captions):
            self.redraw()
        return self.preview.show_captions

    def toggle_meta(self) -> bool:
        """Show or hide the metadata (the image takes its room); returns whether it is shown."""
        self.show_meta = not self.show_meta
        self.query_one(".card--meta", Static).display = self.show_meta
        self._arrange()
        self.call_after_refresh(self.redraw)
        return self.show_meta

    def toggle_zoom(self) -> str:
        """Zoom onto the chosen box (the first one when none is chosen), or back to the whole
        image, and draw again; returns what is shown (``whole image`` or ``box 2/7 head``)."""
        boxes = self._shown_boxes()
        if self.zoom is not None or not boxes:
            self.zoom = None
        else:
            self.zoom = self.chosen if self.chosen is not None and self.chosen < len(boxes) else 0
            self.chosen = self.zoom
        self.redraw()
        return self._zoom_text(boxes)

    def step_box(self, delta: int) -> str:
        """Choose the next (``delta`` 1) or previous (-1) box shown, round the boxes, and zoom
        onto it; returns what is shown (``box 3/7 hand``, or ``no box`` on an image without)."""
        boxes = self._shown_boxes()
        if not boxes:
            self.zoom = self.chosen = None
            self.redraw()
            return "no box"
        now = self.zoom if self.zoom is not None else self.chosen
        if now is None or now >= len(boxes):
            self.zoom = 0 if delta > 0 else len(boxes) - 1
        else:
            self.zoom = (now + delta) % len(boxes)
        self.chosen = self.zoom
        self.redraw()
        return self._zoom_text(boxes)

    def _zoom_text(self, boxes: list[tuple[str, tuple[float, float, float, float]]]) -> str:
        if self.zoom is None or not 0 <= self.zoom < len(boxes):
            return "whole image"
        return f"box {self.zoom + 1}/{len(boxes)} {boxes[self.zoom][0]}"

    def _shown_boxes(self) -> list[tuple[str, tuple[float, float, float, float]]]:
        if self.info is None or self.info.boxes is None:
            return []
        app: Any = self.app
        out = []
        for kind, source, cls, x1, y1, x2, y2 in self.info.boxes.select(
            "kind", "source", "class", "x1", "y1", "x2", "y2"
        ).iter_rows():
            if kind == "label" and (
                not self.show_labels or (app.ctx.label_set and source != app.ctx.label_set)
            ):
                continue
            if kind == "det" and (not self.show_dets or (app.ctx.run and source != app.ctx.run)):
                continue
            out.append((str(cls), (x1, y1, x2, y2)))
        return out

    def _arrange(self) -> None:
        """Put the metadata beside the image where that leaves the image larger."""
        if not self.adaptive:
            return
        meta = self.query_one(".card--meta", Static)
        cols, rows = self.size.width, self.size.height - 1
        lines = (
            min(self.meta_lines, len(self.info.meta_lines())) if self.info is not None else self.meta_lines
        )
        width = self.info.width if self.info is not None else None
        height = self.info.height if self.info is not None else None
        side = self.show_meta and layout_side(cols, rows, min(lines + 1, 20), width, height)
        self.set_class(side, "card--side")
        meta.display = self.show_meta

    @property
    def preview(self) -> ImagePreview:
        return self.query_one(ImagePreview)

    def show(self, target: dict[str, Any] | None, title: str = "") -> None:
        """Show the image that ``target`` names (see :func:`row_target`); None clears."""
        self._seq += 1
        if target != self.target:
            self.zoom = self.chosen = None
        self.target = target
        self.card_title = title
        self.query_one(".card--title", Static).update(f" {title} " if title else "")
        if target is None:
            self.info = None
            self.preview.show_message("no image under the cursor")
            self.query_one(".card--meta", Static).update("")
            return
        self.preview.show_message("loading…")
        if self.preview.size.height == 0:
            self.call_after_refresh(self._load_later, self._seq)
            return
        self._load(self._seq, target, *self.preview.pixel_size(), self._draw_options())

    def _load_later(self, seq: int) -> None:
        if seq == self._seq and self.target is not None:
            self._load(self._seq, self.target, *self.preview.pixel_size(), self._draw_options())

    def _draw_options(self) -> dict[str, Any]:
        """How :func:`tuiops.imaging.render_preview` draws the image now."""
        return {
            "show_labels": self.show_labels,
            "show_dets": self.show_dets,
            "region": self._zoom_region(),
            "current": self.chosen,
            "pixels": self.preview.pixels,
            "captions": self.preview.show_captions,
        }

    def _zoom_region(self) -> tuple[float, float, float, float] | None:
        from tuiops.imaging import zoom_region

        boxes = self._shown_boxes()
        if self.zoom is None or self.info is None or not 0 <= self.zoom < len(boxes):
            return None
        return zoom_region([boxes[self.zoom][1]], self.info.width, self.info.height)

    def redraw(self) -> None:
        if self.target is not None:
            self.show(self.target, self.card_title)

    @work(thread=True, exclusive=True, group="card", exit_on_error=False)
    def _load(
        self,
        seq: int,
        target: dict[str, Any],
        w: int,
        h: int,
        options: dict[str, Any],
    ) -> None:
        from tuiops.imaging import render_preview
        from tuiops.ops.browse import image_info

        worker = get_current_worker()
        app: Any = self.app
        store = app.reader()
        try:
            info = image_info(store, ctx=app.ctx, **target)
            if worker.is_cancelled:
                return
            image, marks = render_preview(
                info,
                w,
                h,
                label_set=app.ctx.label_set,
                run=app.ctx.run,
                **options,
            )
            self.post_message(InfoReady(seq, info, image, marks))
        except TuiopsError as exc:
            self.post_message(InfoReady(seq, None, None, [], exc))
        finally:
            app.release(store)

    @on(InfoReady)
    def _ready(self, msg: InfoReady) -> None:
        msg.stop()
        if msg.seq != self._seq:
            return
        meta = self.query_one(".card--meta", Static)
        if msg.error is not None or msg.info is None:
            self.preview.show_message(msg.error.message if msg.error else "no image")
            meta.update("")
            return
        new_image = self.info is None or (self.info.item_id, self.info.file_id) != (
            msg.info.item_id,
            msg.info.file_id,
        )
        self.info = msg.info
        if new_image and self.adaptive:
            before = self.has_class("card--side")
            self._arrange()
            if before != self.has_class("card--side"):
                meta.update(meta_text(msg.info, self.meta_lines))
                self.call_after_refresh(self.redraw)
                return
        if msg.image is not None:
            self.preview.show_image(msg.image, msg.marks)
        if msg.info.path is not None and not msg.info.path.exists():
            self.preview.show_message(f"file not on disk: {msg.info.relpath}")
        meta.update(meta_text(msg.info, self.meta_lines))

    def on_resize(self) -> None:
        self._arrange()
        if self.info is not None:
            self.redraw()

    @on(ImagePreview.Resized)
    def _preview_resized(self, msg: ImagePreview.Resized) -> None:
        """The picture is fitted to the preview again when the metadata takes more or less room."""
        msg.stop()
        if self.info is not None and msg.preview.image_size != (0, 0):
            self.redraw()


def meta_text(info: ImageInfo, limit: int) -> Text:
    """The metadata lines, with the label and detection colours as a legend."""
    from tuiops.imaging import DET_COLOR, LABEL_COLOR

    text = Text(no_wrap=True, overflow="ellipsis")
    lines = info.meta_lines()[:limit]
    width = max((len(k) for k, _ in lines), default=0)
    for k, v in lines:
        style = ""
        if k.startswith("labels "):
            style = "rgb({},{},{})".format(*LABEL_COLOR)
        elif k.startswith("dets "):
            style = "rgb({},{},{})".format(*DET_COLOR)
        text.append(f" {k:<{width}} ", style or "bold")
        text.append(f"{v}\n")
    text.rstrip()
    return text
