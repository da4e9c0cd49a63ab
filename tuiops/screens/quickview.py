"""The image card: one image with its label and detection boxes, and its metadata.

Used by the quick view (Ctrl+Q: the other panel follows the cursor) and by the F3
viewer. Decoding the image and reading its boxes run in a worker; only the newest
request's result is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
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


class ImageCard(ReportsWorkerFailures, Vertical):
    """Preview (half blocks) above a metadata list."""

    def __init__(self, *, id: str | None = None, classes: str | None = None, meta_lines: int = 14) -> None:
        super().__init__(id=id, classes=classes)
        self._seq = 0
        self.target: dict[str, Any] | None = None
        self.info: ImageInfo | None = None
        self.show_labels = True
        self.show_dets = True
        self.meta_lines = meta_lines
        self.card_title = ""

    def compose(self) -> ComposeResult:
        yield Static("", classes="card--title")
        yield ImagePreview(classes="card--image")
        yield Static("", classes="card--meta")

    @property
    def preview(self) -> ImagePreview:
        return self.query_one(ImagePreview)

    def show(self, target: dict[str, Any] | None, title: str = "") -> None:
        """Show the image that ``target`` names (see :func:`row_target`); None clears."""
        self._seq += 1
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
        w, h = self.preview.pixel_size()
        self._load(self._seq, target, w, h, self.show_labels, self.show_dets)

    def _load_later(self, seq: int) -> None:
        if seq == self._seq and self.target is not None:
            w, h = self.preview.pixel_size()
            self._load(self._seq, self.target, w, h, self.show_labels, self.show_dets)

    def redraw(self) -> None:
        if self.target is not None:
            self.show(self.target, self.card_title)

    @work(thread=True, exclusive=True, group="card", exit_on_error=False)
    def _load(self, seq: int, target: dict[str, Any], w: int, h: int, labels: bool, dets: bool) -> None:
        from tuiops.ops.browse import image_info, render_preview

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
                show_labels=labels,
                show_dets=dets,
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
        self.info = msg.info
        if msg.image is not None:
            self.preview.show_image(msg.image, msg.marks)
        if msg.info.path is not None and not msg.info.path.exists():
            self.preview.show_message(f"file not on disk: {msg.info.relpath}")
        meta.update(meta_text(msg.info, self.meta_lines))

    def on_resize(self) -> None:
        if self.info is not None:
            self.redraw()


def meta_text(info: ImageInfo, limit: int) -> Text:
    """The metadata lines, with the label and detection colours as a legend."""
    from tuiops.ops.browse import DET_COLOR, LABEL_COLOR

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
