"""Triage: one image and one object of a review queue at a time, decided with one key.

The queue comes from a stored match (:func:`tuiops.ops.triage.open_queue`): the worst
images, or the objects of one category, costliest first, read a page at a time. The
image shows the label set's boxes (green), the run's (magenta) and the current object's
(yellow). Each decision is written at once by a thread worker through
:func:`tuiops.ops.triage.decide` (one transaction and one revision) and posted back; the
screen moves on to the next object when it is stored. ``u`` undoes this triage's last
decision. Keys come from the action table (scope ``triage``).

Box editing: ``h``/``j``/``k``/``l`` move the current object's label box (or the edge
chosen with ``e``) a pixel left, down, up or right, ``H``/``J``/``K``/``L`` 5 % of the
image; ``=`` takes the detection's box (or its chosen edge) as the label's. Each edit is
one revision (:func:`tuiops.ops.triage.decide`, decision ``box``), undone with ``u``; the
screen stays on the object. ``s`` splits the view: the labels on the left, the
detections on the right.

``z`` zooms to the current object's boxes (or back to the whole image); ``]`` and ``[``
step to the next or previous object of the same image, round them, the zoom kept.
"""

from __future__ import annotations

import contextlib
import shlex
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tuiops.errors import TuiopsError, UsageError
from tuiops.screens.actions import bindings
from tuiops.screens.actions import key_bar_text as scope_keys
from tuiops.screens.host import tuiops_app
from tuiops.screens.quickview import LAYERS, layer_name
from tuiops.screens.workers import ReportsWorkerFailures
from tuiops.widgets.image import ImagePreview

if TYPE_CHECKING:
    from PIL import Image

    from tuiops.imaging import BoxMark
    from tuiops.ops.browse import ImageInfo
    from tuiops.ops.triage import Decision, Entry, ImageView, TriageObject, TriageQueue

KIND_TITLES = {
    "worst": "worst images first (lowest F1, then highest cost)",
    "fp": "detections without a label (possibly missing labels)",
    "fn": "labels no detection found (possibly spurious labels)",
    "cls": "objects found with another class",
    "loc": "objects found with a different box",
    "dup": "second detections of one object",
}

#: What the box keys move, as the info panel names it.
PART_TITLES = {
    "box": "whole box",
    "left": "left edge",
    "top": "top edge",
    "right": "right edge",
    "bottom": "bottom edge",
}
#: Pixel columns between the two halves of the split view.
SPLIT_GAP = 2


# -- messages ------------------------------------------------------------------------------------
@dataclass
class QueueReady(Message):
    queue: TriageQueue | None
    error: TuiopsError | None = None


@dataclass
class EntryReady(Message):
    seq: int
    position: int
    entry: Entry | None
    view: ImageView | None
    image: Image.Image | None
    marks: list[Any]
    error: TuiopsError | None = None


@dataclass
class DecisionDone(Message):
    position: int
    index: int
    decision: Decision | None
    error: TuiopsError | None = None
    undo: bool = False


@dataclass
class ReviewSent(Message):
    key: str
    folder: str | None
    error: TuiopsError | None = None


# -- the class picker ------------------------------------------------------------------------------
class ClassPicker(ModalScreen[int | None]):
    """Pick a class of the workspace map: type to filter, ↑/↓ to move, Enter picks, Esc cancels."""

    AUTO_FOCUS = "#class-filter"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("down", "move(1)", "Down", show=False, priority=True),
        Binding("up", "move(-1)", "Up", show=False, priority=True),
    ]

    def __init__(self, classes: list[str], current: int | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.names = list(classes)
        self.current = current
        self.shown: list[int] = list(range(len(classes)))

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog--menu"):
            yield Label("Class (type to filter)", classes="dialog--title")
            yield Input("", id="class-filter", placeholder="filter…")
            yield OptionList(id="class-list")

    def on_mount(self) -> None:
        self._fill("")

    def _fill(self, text: str) -> None:
        needle = text.strip().lower()
        starts = [i for i, n in enumerate(self.names) if n.lower().startswith(needle)]
        inside = [i for i, n in enumerate(self.names) if needle in n.lower() and i not in starts]
        self.shown = starts + inside
        menu = self.query_one(OptionList)
        menu.clear_options()
        menu.add_options(
            [
                Option(f"{i:>3}  {self.names[i]}" + ("  (now)" if i == self.current else ""), id=str(i))
                for i in self.shown
            ]
        )
        if self.shown:
            menu.highlighted = 0

    @on(Input.Changed, "#class-filter")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self._fill(event.value)

    @on(Input.Submitted, "#class-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        menu = self.query_one(OptionList)
        if menu.highlighted is None or not self.shown:
            self.notify("no class matches the filter", severity="warning", timeout=3)
            return
        self.dismiss(self.shown[menu.highlighted])

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(int(event.option.id or 0))

    def action_move(self, delta: int) -> None:
        menu = self.query_one(OptionList)
        if not self.shown:
            return
        now = menu.highlighted or 0
        menu.highlighted = max(0, min(len(self.shown) - 1, now + delta))

    def action_cancel(self) -> None:
        self.dismiss(None)


def box_text(box: Any) -> str:
    """A box as the info panel shows it: ``x1,y1 – x2,y2`` in pixels to a tenth."""
    x1, y1, x2, y2 = (f"{round(float(v), 1):g}" for v in box)
    return f"{x1},{y1} – {x2},{y2}"


# -- the split view --------------------------------------------------------------------------------
def render_split(
    info: ImageInfo,
    view: ImageView,
    current: TriageObject | None,
    classes: list[str],
    max_w: int,
    max_h: int,
    *,
    show_labels: bool = True,
    show_dets: bool = True,
    zoom: bool = False,
    pixels: bool = False,
    captions: bool = True,
    gap: int = SPLIT_GAP,
) -> tuple[Image.Image, list[BoxMark]]:
    """The image twice side by side in ``max_w``×``max_h``, ``gap`` pixels apart: the labels
    on the left, the detections on the right, both of the same part of the image (``zoom``:
    the current object's boxes, label and detection together); ``pixels`` and ``captions``
    as for :func:`tuiops.imaging.render_preview`."""
    from PIL import Image

    from tuiops.imaging import draw_boxes, fitted_image, triage_scene

    boxes, width, height, region = triage_scene(
        info, view, current, classes, show_labels=show_labels, show_dets=show_dets, zoom=zoom
    )
    half = max(1, (max_w - gap) // 2)
    left, frame = fitted_image(info.path, info.status in (None, "ok"), width, height, half, max_h, region)
    right = left.copy()
    style = {"cells": not pixels, "captions": captions}
    marks = draw_boxes(left, [b for b in boxes if b.kind == "label"], frame, **style)
    off = left.width + gap
    for m in draw_boxes(right, [b for b in boxes if b.kind == "det"], frame, **style):
        marks.append(replace(m, x=m.x + off, right=m.right + off if m.right >= 0 else m.right))
    out = Image.new("RGB", (off + right.width, left.height))
    out.paste(left, (0, 0))
    out.paste(right, (off, 0))
    return out, marks


# -- the screen ------------------------------------------------------------------------------------
def key_bar_text() -> Text:
    """The triage keys, from the action table: the first key of each action and its label."""
    return scope_keys("triage")


class TriageScreen(ReportsWorkerFailures, Screen[None]):
    """The triage of one stored match: see the module doc."""

    CSS_PATH = "triage.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings("triage")

    def __init__(
        self,
        label_set: str | None,
        run: str | None,
        kind: str = "worst",
        *,
        match: str | None = None,
        split: str | None = None,
    ) -> None:
        """The set and run may be left out when ``match`` names the stored match: its own are taken."""
        super().__init__(classes="triage-screen")
        self.label_set = label_set
        self.run = run
        self.kind = kind
        self.match = match
        self.split = split
        self.queue: TriageQueue | None = None
        self.position = 0
        self.index = 0
        self.entry: Entry | None = None
        self.view: ImageView | None = None
        self.writing = False
        self.history: list[tuple[int, int, int]] = []
        self.last = ""
        self.problem = ""
        self._seq = 0
        #: Which box layers are shown besides the object's own boxes, and whether the image
        #: is zoomed onto the object.
        self.show_labels = True
        self.show_dets = True
        self.zoom = False
        #: The split view (labels | detections), and what the box keys move.
        self.split_view = False
        self.part = "box"
        #: Labels accepted from a detection without one, by (image, object): the label the
        #: box keys move for that object.
        self.adopted: dict[tuple[int, int], int] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="triage-title")
        with Horizontal(id="triage-body"):
            yield ImagePreview(id="triage-image")
            yield Static("", id="triage-info")
        yield Static(key_bar_text(), id="triage-keys")

    @property
    def preview(self) -> ImagePreview:
        return self.query_one("#triage-image", ImagePreview)

    @property
    def current(self) -> TriageObject | None:
        if self.entry is None or not self.entry.objects:
            return None
        return self.entry.objects[min(self.index, len(self.entry.objects) - 1)]

    def on_mount(self) -> None:
        self.preview.show_message("opening the queue…")
        self._update_title()
        self._open_worker()

    # -- loading -------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="triage-open", exit_on_error=False)
    def _open_worker(self) -> None:
        from tuiops.ops.triage import open_queue

        app: Any = self.app
        store = app.reader()
        try:
            queue = open_queue(store, self.label_set, self.run, self.kind, match=self.match, split=self.split)
            self.post_message(QueueReady(queue))
        except TuiopsError as exc:
            self.post_message(QueueReady(None, exc))
        finally:
            app.release(store)

    @on(QueueReady)
    def _queue_ready(self, msg: QueueReady) -> None:
        msg.stop()
        if msg.error is not None or msg.queue is None:
            err = msg.error
            self.problem = (err.message + (f"\nhint: {err.hint}" if err.hint else "")) if err else "no queue"
            self.preview.show_message(err.message if err else "no queue")
            self._show_info()
            if err is not None:
                tuiops_app(self).show_error(err)
            return
        self.queue = msg.queue
        self.label_set, self.run, self.match = self.queue.label_set, self.queue.run, self.queue.match
        if len(self.queue) == 0:
            self.problem = f"nothing to triage: match {self.queue.match!r} has no {self.kind} rows"
            self.preview.show_message(self.problem)
            self._show_info()
            self._update_title()
            return
        self._load()

    def _load(self) -> None:
        if self.queue is None:
            return
        self._seq += 1
        self.view = None
        self._update_title()
        if self.preview.size.height == 0:
            self.call_after_refresh(self._load_now, self._seq)
            return
        self._load_now(self._seq)

    def _load_now(self, seq: int) -> None:
        if seq != self._seq:
            return
        w, h = self.preview.pixel_size()
        style: dict[str, Any] = {
            "show_labels": self.show_labels,
            "show_dets": self.show_dets,
            "zoom": self.zoom,
            "pixels": self.preview.pixels,
            "captions": self.preview.show_captions,
        }
        if self.split_view:
            style["gap"] = SPLIT_GAP * self.preview.cell_pixels()[0]
        self._load_worker(seq, self.position, self.index, w, h, style)

    @work(thread=True, exclusive=True, group="triage-load", exit_on_error=False)
    def _load_worker(
        self, seq: int, position: int, index: int, w: int, h: int, style: dict[str, Any]
    ) -> None:
        from tuiops.imaging import render_view
        from tuiops.ops.browse import image_info
        from tuiops.ops.triage import image_view

        app: Any = self.app
        assert self.queue is not None
        store = app.reader()
        try:
            entry = self.queue.entry(store, position)
            objects = entry.objects or []
            current = (
                objects[min(index if index >= 0 else len(objects) - 1, len(objects) - 1)] if objects else None
            )
            view = image_view(store, self.queue.label_set, self.queue.run, entry.item_id)
            info = image_info(store, item_id=entry.item_id)
            image, marks = (render_split if self.split_view else render_view)(
                info,
                view,
                current,
                store.class_names(),
                w,
                h,
                **style,
            )
            self.post_message(EntryReady(seq, position, entry, view, image, marks))
        except TuiopsError as exc:
            self.post_message(EntryReady(seq, position, None, None, None, [], exc))
        finally:
            app.release(store)

    @on(EntryReady)
    def _entry_ready(self, msg: EntryReady) -> None:
        msg.stop()
        if msg.seq != self._seq:
            return
        if msg.error is not None or msg.entry is None:
            self.preview.show_message(msg.error.message if msg.error else "cannot read the entry")
            if msg.error is not None:
                tuiops_app(self).show_error(msg.error)
            return
        self.entry = msg.entry
        self.view = msg.view
        n = len(msg.entry.objects or [])
        if self.index < 0 or self.index >= n:
            self.index = max(0, n - 1) if self.index < 0 else 0
        if msg.image is not None:
            self.preview.show_image(msg.image, msg.marks)
        self._update_title()
        self._show_info()

    def on_resize(self) -> None:
        if self.queue is not None and len(self.queue):
            self._load()

    @on(ImagePreview.Resized)
    def _preview_resized(self, msg: ImagePreview.Resized) -> None:
        """The picture is fitted to the preview again when the info panel takes more or less room."""
        msg.stop()
        if self.queue is not None and len(self.queue) and msg.preview.image_size != (0, 0):
            self._load()

    # -- display --------------------------------------------------------------------------------
    def _update_title(self) -> None:
        q = self.queue
        where = f"{self.position + 1:,}/{len(q):,}" if q is not None and len(q) else "…"
        key = f" · {self.entry.key}" if self.entry is not None else ""
        split = f" · split {self.split or 'none'}" if self.split is not None else ""
        default = f"{self.label_set}__{self.run}"
        named = f" (match {self.match})" if self.match and self.match != default else ""
        self.query_one("#triage-title", Static).update(
            f" Triage {self.label_set or '…'} × {self.run or '…'}{named} · {self.kind}{split} · {where}{key} "
        )

    def _class_name(self, cid: int | None) -> str:
        if cid is None:
            return "—"
        names = tuiops_app(self).ws.classes
        return names[cid] if 0 <= cid < len(names) else str(cid)

    def _show_info(self) -> None:
        from tuiops.imaging import CURRENT_COLOR, DET_COLOR, LABEL_COLOR

        text = Text(no_wrap=True, overflow="ellipsis")
        if self.problem:
            text.append(self.problem + "\n", "bold red")
            text.append("\nEsc: back to the panels")
            self.query_one("#triage-info", Static).update(text)
            return
        entry, obj, view = self.entry, self.current, self.view
        if entry is None:
            self.query_one("#triage-info", Static).update("loading…")
            return
        n = len(entry.objects or [])
        rgb = "rgb({},{},{})"
        text.append(" image  ", "bold")
        text.append(f"{entry.key}\n")
        if view is not None and view.excluded:
            text.append(" status ", "bold")
            text.append("BAD · excluded from training\n", "bold red")
        if self.kind == "worst" and entry.f1 is not None:
            text.append(" F1     ", "bold")
            text.append(f"{entry.f1:.3f} · cost {entry.cost or 0:.3f}\n")
        if obj is None:
            text.append("\n no object to decide on this image\n")
        else:
            text.append(" object ", "bold")
            text.append(f"{self.index + 1}/{n} · ")
            text.append(obj.category.upper(), "bold " + rgb.format(*CURRENT_COLOR))
            text.append("\n label  ", "bold")
            text.append(
                self._class_name(obj.class_id) if obj.label_id is not None else "—", rgb.format(*LABEL_COLOR)
            )
            text.append("\n det    ", "bold")
            det = self._class_name(obj.det_class_id) if obj.det_id is not None else "—"
            text.append(det, rgb.format(*DET_COLOR))
            text.append("\n IoU    ", "bold")
            text.append("—" if obj.iou is None else f"{obj.iou:.3f}")
            text.append("\n score  ", "bold")
            text.append("—" if obj.score is None else f"{obj.score:.3f}")
            text.append("\n cost   ", "bold")
            text.append(f"{obj.cost:.3f}\n")
            row = self._label_row(obj)
            text.append(" box    ", "bold")
            text.append(box_text(row[2:6]) + "\n" if row else "—\n")
            text.append(" moves  ", "bold")
            text.append(PART_TITLES[self.part] + "\n")
        if view is not None:
            text.append(" boxes  ", "bold")
            text.append(f"{len(view.labels)} labels", rgb.format(*LABEL_COLOR))
            text.append(" · ")
            text.append(f"{len(view.dets)} dets\n", rgb.format(*DET_COLOR))
        if self.writing:
            text.append("\n writing…\n", "italic")
        if self.last:
            text.append("\n " + self.last + "\n", "green")
        self.query_one("#triage-info", Static).update(text)

    # -- moving -----------------------------------------------------------------------------------
    def _step(self, delta: int) -> bool:
        if self.queue is None or len(self.queue) == 0:
            return False
        n = len(self.entry.objects or []) if self.entry is not None else 0
        before = self.position
        if delta > 0:
            if self.index + 1 < n:
                self.index += 1
            elif self.position + 1 < len(self.queue):
                self.position, self.index = self.position + 1, 0
            else:
                self.notify("end of the queue", timeout=3)
                return False
        else:
            if self.index > 0:
                self.index -= 1
            elif self.position > 0:
                self.position, self.index = self.position - 1, -1
            else:
                self.notify("start of the queue", timeout=3)
                return False
        if self.position != before:
            self.entry = None
        self._load()
        return True

    def action_triage_layers(self) -> None:
        now = layer_name(self.show_labels, self.show_dets)
        new = LAYERS[(LAYERS.index(now) + 1) % len(LAYERS)]
        self.show_labels, self.show_dets = new in ("both", "labels"), new in ("both", "dets")
        self.notify(f"boxes: {new} (and the object's)", timeout=2)
        self._load()

    def action_triage_captions(self) -> None:
        if self.preview.set_captions(not self.preview.show_captions):
            self._load()

    def action_triage_zoom(self) -> None:
        self.zoom = not self.zoom
        self._load()

    def action_triage_info(self) -> None:
        info = self.query_one("#triage-info", Static)
        info.display = not info.display
        self.call_after_refresh(self._load)

    def _step_box(self, delta: int) -> None:
        """The next (``delta`` 1) or previous (-1) object of this image, round its objects."""
        n = len(self.entry.objects or []) if self.entry is not None else 0
        if n == 0:
            self.notify("no object on this image", timeout=2)
            return
        self.index = (self.index + delta) % n
        self._show_info()
        self._load()

    def action_triage_next_box(self) -> None:
        self._step_box(1)

    def action_triage_prev_box(self) -> None:
        self._step_box(-1)

    def action_triage_next(self) -> None:
        self._step(1)

    def action_triage_prev(self) -> None:
        self._step(-1)

    def action_triage_gallery(self) -> None:
        from tuiops.screens.gallery import open_queue_gallery

        def went(position: int) -> None:
            if position != self.position:
                self.position, self.index, self.entry = position, 0, None
                self._load()

        open_queue_gallery(self.app, self.queue, self.position, went)

    def action_triage_back(self) -> None:
        app: Any = self.app
        changed = bool(self.history)
        self.dismiss(None)
        if changed and app.main_screen is not None:
            app.forget_sources()
            for side in ("left", "right"):
                app.main_screen.panel(side).reread(forget=False)

    # -- deciding ---------------------------------------------------------------------------------
    def _ready(self) -> bool:
        if self.writing:
            self.notify("still writing the last decision…", timeout=2)
            return False
        if self.view is None or self.entry is None or self.view.item_id != self.entry.item_id:
            self.notify("the image is still loading", timeout=2)
            return False
        return True

    def _decide(self, action: str, class_id: int | None = None) -> None:
        if not self._ready():
            return
        assert self.entry is not None and self.view is not None
        obj = self.current
        if action in ("accept", "delete", "reclass") and obj is None:
            self.notify("no object to decide on this image", severity="warning", timeout=3)
            return
        self.writing = True
        self._show_info()
        self._decide_worker(
            action, obj, self.entry.item_id, class_id, list(self.view.labels), self.position, self.index
        )

    @work(thread=True, group="triage-write", exit_on_error=False)
    def _decide_worker(
        self,
        action: str,
        obj: TriageObject | None,
        item_id: int,
        class_id: int | None,
        expect: list[Any],
        position: int,
        index: int,
        box: tuple[float, float, float, float] | None = None,
    ) -> None:
        from tuiops.ops.triage import decide

        assert self.queue is not None
        app: Any = self.app
        with app.writing() as ws:
            try:
                d = decide(
                    ws.store,
                    self.queue.label_set,
                    action,
                    obj,
                    item_id=item_id,
                    class_id=class_id,
                    box=box,
                    expect=expect,
                    classes=list(ws.classes),
                    match=self.queue.match if self.queue is not None else None,
                )
                self.post_message(DecisionDone(position, index, d))
            except TuiopsError as exc:
                self.post_message(DecisionDone(position, index, None, exc))

    @work(thread=True, group="triage-write", exit_on_error=False)
    def _undo_worker(self, revision: int, position: int, index: int) -> None:
        from tuiops.ops.triage import undo

        assert self.queue is not None
        app: Any = self.app
        with app.writing() as ws:
            try:
                d = undo(ws.store, self.queue.label_set, revision)
                self.post_message(DecisionDone(position, index, d, undo=True))
            except TuiopsError as exc:
                self.post_message(DecisionDone(position, index, None, exc, undo=True))

    @on(DecisionDone)
    def _decided(self, msg: DecisionDone) -> None:
        msg.stop()
        self.writing = False
        app: Any = self.app
        app.forget_sources()
        if msg.error is not None or msg.decision is None:
            if msg.error is not None:
                app.show_error(msg.error)
            self._load()
            return
        d = msg.decision
        self.last = d.summary()
        self.notify(self.last, timeout=3)
        if msg.undo:
            self.history.pop()
            self.position, self.index = msg.position, msg.index
            self.entry = None
            self._load()
            return
        self.history.append((d.revision, msg.position, msg.index))
        if d.action == "box" or (self.position, self.index) != (msg.position, msg.index):
            self._load()
            return
        last = self.queue is None or self.position + 1 >= len(self.queue)
        if d.action == "bad" and self.kind == "worst" and not last:
            self.position, self.index, self.entry = self.position + 1, 0, None
            self._load()
            return
        if not self._step(1):
            self._load()

    def action_triage_accept(self) -> None:
        self._decide("accept")

    def action_triage_delete(self) -> None:
        self._decide("delete")

    def action_triage_bad(self) -> None:
        self._decide("bad")

    def action_triage_class(self) -> None:
        if not self._ready():
            return
        obj = self.current
        if obj is None:
            self.notify("no object to decide on this image", severity="warning", timeout=3)
            return
        now = obj.class_id if obj.label_id is not None else obj.det_class_id

        def done(cid: int | None) -> None:
            if cid is not None:
                self._decide("reclass", cid)

        tuiops_app(self).push_screen(ClassPicker(list(tuiops_app(self).ws.classes), now), done)

    def action_triage_undo(self) -> None:
        if self.writing:
            self.notify("still writing the last decision…", timeout=2)
            return
        if not self.history:
            self.notify(
                "nothing to undo in this triage",
                timeout=4,
            )
            return
        rev, position, index = self.history[-1]
        self.writing = True
        self._undo_worker(rev, position, index)

    # -- box editing ------------------------------------------------------------------------------
    def _det_row(self, obj: TriageObject) -> tuple[Any, ...] | None:
        """The object's detection as the view shows it: id, class, x1, y1, x2, y2, score."""
        if self.view is None or obj.det_id is None:
            return None
        return next((d for d in self.view.dets if d[0] == obj.det_id), None)

    def _label_row(self, obj: TriageObject) -> tuple[Any, ...] | None:
        """The label the box keys move for ``obj``: its own, or the one accepted from its detection."""
        view = self.view
        if view is None or view.item_id != obj.item_id:
            return None
        rows = {r[0]: r for r in view.labels}
        lid = obj.label_id if obj.label_id is not None else self.adopted.get((obj.item_id, obj.id))
        if lid is not None and lid in rows:
            return rows[lid]
        det = self._det_row(obj) if obj.label_id is None else None
        if det is None:
            return None
        box = tuple(float(v) for v in det[2:6])
        return next((r for r in view.labels if tuple(r[2:6]) == box), None)

    def _edit_target(self) -> tuple[TriageObject, tuple[Any, ...]] | None:
        """The object and its label row the box keys work on; None (and a note) when there is none."""
        if not self._ready():
            return None
        obj = self.current
        if obj is None:
            self.notify("no object to decide on this image", severity="warning", timeout=3)
            return None
        row = self._label_row(obj)
        if row is None:
            self.notify(
                f"this {obj.category} object has no label to move: accept the detection (a) first",
                severity="warning",
                timeout=4,
            )
        return None if row is None else (obj, row)

    def _write_box(self, obj: TriageObject, row: tuple[Any, ...], box: tuple[float, ...], same: str) -> None:
        """Write the label's new box as one revision (``same``: the note when nothing changes)."""
        if tuple(box) == tuple(float(v) for v in row[2:6]):
            self.notify(same, timeout=3)
            return
        if obj.label_id != row[0]:
            self.adopted[(obj.item_id, obj.id)] = int(row[0])
            obj = replace(obj, label_id=int(row[0]))
        assert self.view is not None
        self.writing = True
        self._show_info()
        x1, y1, x2, y2 = box
        expect = list(self.view.labels)
        self._decide_worker(
            "box", obj, obj.item_id, None, expect, self.position, self.index, (x1, y1, x2, y2)
        )

    def _nudge(self, dx: int, dy: int, coarse: bool = False) -> None:
        from tuiops.ops.triage import nudged_box, part_axis, step_size

        target = self._edit_target()
        if target is None:
            return
        obj, row = target
        axis = part_axis(self.part)
        if (dx and "x" not in axis) or (dy and "y" not in axis):
            keys = "h/l" if axis == "x" else "j/k"
            self.notify(f"the {PART_TITLES[self.part]} moves with {keys} (e: what the keys move)", timeout=3)
            return
        assert self.view is not None
        width, height = self.view.width, self.view.height
        sx, sy = step_size(row[2:6], coarse, width, height)
        box = nudged_box(row[2:6], self.part, dx * sx, dy * sy, width, height)
        self._write_box(
            obj, row, box, f"the {PART_TITLES[self.part]} is at the image's edge or the box's least size"
        )

    def action_triage_box_left(self) -> None:
        self._nudge(-1, 0)

    def action_triage_box_right(self) -> None:
        self._nudge(1, 0)

    def action_triage_box_up(self) -> None:
        self._nudge(0, -1)

    def action_triage_box_down(self) -> None:
        self._nudge(0, 1)

    def action_triage_box_far_left(self) -> None:
        self._nudge(-1, 0, coarse=True)

    def action_triage_box_far_right(self) -> None:
        self._nudge(1, 0, coarse=True)

    def action_triage_box_far_up(self) -> None:
        self._nudge(0, -1, coarse=True)

    def action_triage_box_far_down(self) -> None:
        self._nudge(0, 1, coarse=True)

    def action_triage_edge(self) -> None:
        from tuiops.ops.triage import BOX_PARTS

        self.part = BOX_PARTS[(BOX_PARTS.index(self.part) + 1) % len(BOX_PARTS)]
        self.notify(f"the box keys move the {PART_TITLES[self.part]}", timeout=2)
        self._show_info()

    def action_triage_snap(self) -> None:
        from tuiops.ops.triage import snapped_box

        target = self._edit_target()
        if target is None:
            return
        obj, row = target
        det = self._det_row(obj)
        if det is None:
            self.notify(f"this {obj.category} object has no detection to take the box from", timeout=3)
            return
        try:
            box = snapped_box(row[2:6], det[2:6], self.part)
        except UsageError as exc:
            self.notify(exc.message, severity="warning", timeout=4)
            return
        self._write_box(obj, row, box, f"the label's {PART_TITLES[self.part]} is the detection's already")

    def action_triage_split(self) -> None:
        self.split_view = not self.split_view
        self.notify("split view: labels | detections" if self.split_view else "one view", timeout=2)
        self._load()

    def action_triage_review(self) -> None:
        if self.entry is None:
            self.notify("the image is still loading", timeout=2)
            return
        self.notify(f"sending {self.entry.key} to the review folder…", timeout=2)
        self._review_worker(self.entry.item_id, self.entry.key)

    @work(thread=True, group="triage-review", exit_on_error=False)
    def _review_worker(self, item_id: int, key: str) -> None:
        from tuiops.ops.triage import send_to_review

        assert self.queue is not None
        app: Any = self.app
        with app.writing() as ws:
            try:
                folder = send_to_review(ws, self.queue.label_set, item_id)
                self.post_message(
                    ReviewSent(
                        key,
                        str(folder.relative_to(ws.root)) if folder.is_relative_to(ws.root) else str(folder),
                    )
                )
            except TuiopsError as exc:
                self.post_message(ReviewSent(key, None, exc))

    @on(ReviewSent)
    def _review_sent(self, msg: ReviewSent) -> None:
        msg.stop()
        if msg.error is not None:
            tuiops_app(self).show_error(msg.error)
            return
        self.last = f"{msg.key} copied to {msg.folder}"
        self.notify(self.last, timeout=4)
        self._show_info()


# -- opening ---------------------------------------------------------------------------------------
def parse_command(text: str) -> dict[str, Any]:
    """The options of a ``triage --set S --run R [--kind K] [--match M] [--split X]`` command line."""
    from tuiops.ops.triage import KINDS

    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"cannot read the command line: {exc}") from exc
    if argv and argv[0] == "triage":
        argv = argv[1:]
    names = {"--set": "label_set", "--run": "run", "--kind": "kind", "--match": "match", "--split": "split"}
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        opt, eq, value = arg.partition("=")
        if opt not in names:
            raise UsageError(
                f"triage: unknown option {arg!r}",
                hint="triage --set SET --run RUN [--kind worst|fp|fn|cls|loc|dup] [--match NAME] [--split NAME]",
            )
        if not eq:
            if i + 1 >= len(argv):
                raise UsageError(f"triage: {opt} needs a value")
            value = argv[i + 1]
            i += 1
        out[names[opt]] = value
        i += 1
    if "kind" in out and out["kind"] not in KINDS:
        raise UsageError(f"triage: --kind must be one of {', '.join(KINDS)}, not {out['kind']!r}")
    return out


def start_triage(app: Any, **options: Any) -> None:
    """Open the triage screen; the set and run default to the app's context, the kind is asked for."""
    from tuiops.ops.triage import KINDS, queue_counts
    from tuiops.screens.dialogs import MenuDialog

    named = options.get("match")
    # a match named outright brings its own set and run; otherwise they default to the context's
    label_set = options.get("label_set") or (None if named else app.ctx.label_set)
    run = options.get("run") or (None if named else app.ctx.run)
    match = named or (app.ctx.match if not options.get("label_set") else None)
    if not match and (not label_set or not run):
        raise UsageError(
            "triage needs a stored match: a label set and a run, or the match's name",
            hint="type `set labels SET` and `set run RUN`, or `triage --set SET --run RUN`, or `triage --match NAME`",
        )
    split = options.get("split")
    kind = options.get("kind")
    if kind:
        app.push_screen(TriageScreen(label_set, run, kind, match=match, split=split))
        return

    def chosen(k: str | None) -> None:
        if k:
            app.push_screen(TriageScreen(label_set, run, k, match=match, split=split))

    counts: dict[str, Any] = {}
    with contextlib.suppress(TuiopsError):
        counts = dict(queue_counts(app.ui_store, label_set, run, match=match, split=split))
    entries = [(k, f"{k:<6} {counts.get(k, ''):>8}  {KIND_TITLES[k]}") for k in KINDS]
    title = f"{label_set} × {run}" if label_set and run else f"match {match}"
    app.push_screen(MenuDialog(f"Triage {title}", entries), chosen)
