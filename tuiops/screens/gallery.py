"""The gallery (Shift+F3): thumbnails of a panel's images or of a triage queue, many selected at once.

The tiles come a page at a time from a feed (:mod:`tuiops.ops.browse.gallery`): a panel's
rows in the panel's order (its own copy of the panel's pager, so a 4M-image pool opens as
fast as a page of its table) or a triage queue's entries. A thread worker reads the page
around the cursor, posts it, then decodes the thumbnails one by one (JPEG in draft mode)
with the one box renderer and posts each as it is ready; a newer page cancels it. Drawn
thumbnails are kept for a few pages, so paging back shows them at once.

Ins (or Space) selects the image under the cursor, ``+``/``-`` select and deselect by
mask, ``*`` inverts, Ctrl+A and Ctrl+D select all and none, as in the panels. On the
selection (or the image under the cursor): ``b`` marks the images bad in the label set
(every one bad already: good again), ``r`` copies them with their labels to the review
folder, F5 copies the files to a folder, through the same operations as triage and the
panels. Enter goes back with the panel's cursor (or triage) on the image; Esc goes back;
a panel keeps the selection made here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from tuiops.errors import TuiopsError, UsageError
from tuiops.screens.actions import bindings
from tuiops.screens.host import tuiops_app
from tuiops.screens.messages import Replan
from tuiops.screens.quickview import LAYERS, layer_name
from tuiops.screens.workers import ReportsWorkerFailures
from tuiops.widgets.thumbs import TILE_SIZES, GridTile, ThumbGrid, thumb_lines

if TYPE_CHECKING:
    from textual.strip import Strip

    from tuiops.ops.browse import Selection
    from tuiops.ops.browse.gallery import Feed, Tile
    from tuiops.ops.triage import TriageQueue
    from tuiops.screens.panel import Panel

#: Panel sources whose rows are images.
IMAGE_SOURCES = ("pool", "selection", "match", "query")
#: Pages of tiles read around the one shown (before and after it).
AHEAD = 1
#: Rows a gallery's pager reads beyond those asked for (a screen of tiles is few rows).
GALLERY_WINDOW = 1
#: Marking bad or sending to review more images than this asks first.
CONFIRM_OVER = 100
#: Pages of drawn thumbnails kept.
KEEP_PAGES = 4


# -- messages ------------------------------------------------------------------------------------
@dataclass
class TilesReady(Message):
    seq: int
    tiles: list[Tile]
    bad: set[int]
    count: int | None
    error: TuiopsError | None = None


@dataclass
class ThumbReady(Message):
    seq: int
    key: tuple[Any, ...]
    lines: list[Strip] | None
    note: str = ""


@dataclass
class GallerySelected(Message):
    selection: Selection
    before: Selection
    error: TuiopsError | None = None


@dataclass
class GalleryDone(Message):
    """An action on the selection finished: its summary, the images now bad and good."""

    text: str
    bad: set[int] = field(default_factory=set)
    good: set[int] = field(default_factory=set)
    error: TuiopsError | None = None


@dataclass
class CopyPlanned(Message):
    preview: Any
    error: TuiopsError | None = None


@dataclass
class GalleryResult:
    """What the gallery hands back: the position Enter went to (None: Esc), and the selection."""

    position: int | None
    selection: Selection


# -- the screen ----------------------------------------------------------------------------------
#: Keys the key bar leaves out (the arrows and paging keys move as everywhere).
MOVING = ("left", "right", "up", "down", "page-up", "page-down", "first", "last")


def gallery_keys() -> Text:
    """The gallery's key bar, from the action table: the first key of each action and its label."""
    from tuiops.screens.actions import ACTIONS, key_display

    text = Text(no_wrap=True, overflow="crop")
    for a in ACTIONS:
        if a.scope == "gallery" and a.id.removeprefix("gallery-") not in MOVING:
            text.append(f" {key_display(a.keys[0])}", "bold")
            text.append(f" {a.label} ")
    return text


class GalleryScreen(ReportsWorkerFailures, Screen[GalleryResult]):
    """Thumbnails of one feed; see the module doc."""

    #: The styles are in gallery.tcss, read with the app's (see :class:`tuiops.app.TuiopsApp`).
    BINDINGS: ClassVar[list[BindingType]] = bindings("gallery")

    def __init__(
        self,
        feed: Feed,
        *,
        selection: Selection | None = None,
        cursor: int = 0,
        copy_to: str = "",
    ) -> None:
        from tuiops.ops.browse import Selection

        super().__init__(classes="gallery-screen")
        self.feed = feed
        self.selection: Selection = selection if selection is not None else Selection()
        self.start_cursor = max(0, cursor)
        self.copy_to = copy_to
        self.tiles: dict[int, Tile] = {}
        self.bad: set[int] = set()
        self.thumbs: OrderedDict[tuple[Any, ...], tuple[list[Strip] | None, str]] = OrderedDict()
        self.show_labels = True
        self.show_dets = True
        self.busy = ""
        self._seq = 0
        self._asked: tuple[Any, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="gallery-title", markup=False)
        yield ThumbGrid(id="gallery-grid")
        yield Static("", id="gallery-status", markup=False)
        yield Static(gallery_keys(), id="gallery-keys")

    @property
    def grid(self) -> ThumbGrid:
        return self.query_one(ThumbGrid)

    @property
    def count(self) -> int:
        """Images in the feed (those known so far while it is counted)."""
        n = self.feed.count
        if n is not None:
            return n
        known = getattr(self.feed, "known", 0)
        return max(int(known), max(self.tiles, default=-1) + 1)

    def on_mount(self) -> None:
        grid = self.grid
        grid.cursor = self.start_cursor
        grid.count = max(self.count, self.start_cursor + 1)
        grid.focus()
        self._first_screen()
        # the thumbnails after the first frame, which names the tiles
        self.call_after_refresh(self._request)

    def _first_screen(self) -> None:
        """Name the first screen's tiles at once, from the rows the panel has read already
        where it can (else one indexed query, as a table reads its page); their marks and
        thumbnails follow from a worker."""
        grid = self.grid
        grid.assumed_size = (self.app.size.width - 2, self.app.size.height - 5)
        grid.scroll_to_cursor()
        app = tuiops_app(self)
        try:
            tiles = self.feed.screen_tiles(app.ui_store, grid.top, grid.page)
        except TuiopsError as exc:
            app.show_error(exc)
            return
        self._tiles_ready(TilesReady(self._seq, tiles, set(), self.feed.count))

    @on(ThumbGrid.Resized)
    def _resized(self, event: ThumbGrid.Resized) -> None:
        event.stop()
        self._request()

    # -- reading pages ------------------------------------------------------------------------------
    def _layers(self) -> str:
        return layer_name(self.show_labels, self.show_dets)

    def _thumb_key(self, tile: Tile) -> tuple[Any, ...]:
        return (tile.position, tile.id, *self.grid.pixel_size(), self._layers())

    def _request(self) -> None:
        """Read the page shown when a tile or a thumbnail of it is missing, then the pages
        either side of it."""
        grid = self.grid
        grid.scroll_to_cursor()
        page = grid.page
        shown = (
            range(grid.top, min(self.count, grid.top + page)) if self.count else range(grid.top, grid.top + 1)
        )
        have = all(p in self.tiles for p in shown)
        drawn = have and all(self._thumb_key(self.tiles[p]) in self.thumbs for p in shown)
        self._update()
        if have and drawn:
            return
        start = max(0, grid.top - AHEAD * page)
        around = (start, grid.top + page * (1 + AHEAD) - start)
        if self._asked == (grid.top, page, *around, grid.pixel_size(), self._layers()):
            return
        self._asked = (grid.top, page, *around, grid.pixel_size(), self._layers())
        self._seq += 1
        ready = [self.tiles[p] for p in shown] if have else None
        self._page_worker(self._seq, (grid.top, page), around, grid.pixel_size(), self._layers(), ready)

    @work(thread=True, group="gallery-page", exit_on_error=False)
    def _page_worker(
        self,
        seq: int,
        shown: tuple[int, int],
        around: tuple[int, int],
        px: tuple[int, int],
        layers: str,
        ready: list[Tile] | None = None,
    ) -> None:
        """The tiles shown (unless ``ready``) and their thumbnails first, then those of the
        pages around them; a newer request (``seq``) stops it between two thumbnails."""
        from tuiops.ops.browse.gallery import excluded

        app: Any = self.app
        store = app.reader()
        try:
            known = set(self.thumbs)
            label_set = self.feed.label_set or app.ctx.label_set
            if ready is not None:
                first = ready
                items = [t.item_id for t in ready if t.item_id is not None]
                self.post_message(TilesReady(seq, ready, excluded(store, label_set, items), self.feed.count))
            else:
                first = self._read_tiles(store, seq, *shown, label_set)
            self._draw_tiles(store, seq, first, known, px, layers)
            if seq != self._seq:
                return
            start, n = around
            more = self._read_tiles(store, seq, start, n, label_set, skip=shown)
            # the next page before the one before
            more.sort(key=lambda t: (t.position < shown[0], t.position))
            self._draw_tiles(store, seq, more, known, px, layers)
            if self.feed.count is None and seq == self._seq:
                self._count(store, seq)
        except TuiopsError as exc:
            self.post_message(TilesReady(seq, [], set(), None, exc))
        finally:
            app.release(store)

    def _read_tiles(
        self,
        store: Any,
        seq: int,
        start: int,
        n: int,
        label_set: str | None,
        skip: tuple[int, int] | None = None,
    ) -> list[Tile]:
        """Read and post tiles ``start`` … ``start + n`` (those of ``skip`` read already)."""
        from tuiops.ops.browse.gallery import excluded

        if skip is not None:
            a, b = skip[0], skip[0] + skip[1]
            tiles = self.feed.tiles(store, start, max(0, a - start)) + self.feed.tiles(
                store, b, start + n - b
            )
        else:
            tiles = self.feed.tiles(store, start, n)
        bad = excluded(store, label_set, [t.item_id for t in tiles if t.item_id is not None])
        self.post_message(TilesReady(seq, tiles, bad, self.feed.count))
        return tiles

    def _count(self, store: Any, seq: int) -> None:
        """Count a panel's rows the panel had not counted yet."""
        source = getattr(self.feed, "source", None)
        pager = getattr(self.feed, "pager", None)
        if source is not None and pager is not None:
            pager.set_total(source.count(store))
            self.post_message(TilesReady(seq, [], set(), pager.count))

    def _draw_tiles(
        self,
        store: Any,
        seq: int,
        tiles: list[Tile],
        known: set[Any],
        px: tuple[int, int],
        layers: str,
    ) -> None:
        """Draw the thumbnails of ``tiles`` not drawn yet, posting each as it is ready."""
        from tuiops.ops.browse.gallery import render_tile

        classes = store.class_names()
        for tile in tiles:
            if seq != self._seq:
                return
            key = (tile.position, tile.id, *px, layers)
            if key in known:
                continue
            try:
                image, _marks = render_tile(
                    store,
                    tile,
                    self.feed,
                    px[0],
                    px[1],
                    classes=classes,
                    show_labels=layers in ("both", "labels"),
                    show_dets=layers in ("both", "dets"),
                )
                self.post_message(ThumbReady(seq, key, thumb_lines(image)))
            except TuiopsError as exc:
                self.post_message(ThumbReady(seq, key, None, exc.message[:40]))

    @on(TilesReady)
    def _tiles_ready(self, msg: TilesReady) -> None:
        msg.stop()
        if msg.error is not None:
            self._asked = None
            tuiops_app(self).show_error(msg.error)
            return
        if len(self.tiles) > 20 * max(1, self.grid.page):
            keep = range(self.grid.top - 5 * self.grid.page, self.grid.top + 6 * self.grid.page)
            self.tiles = {p: t for p, t in self.tiles.items() if p in keep}
        for t in msg.tiles:
            self.tiles[t.position] = t
            if t.item_id is not None:
                if t.item_id in msg.bad:
                    self.bad.add(t.item_id)
                else:
                    self.bad.discard(t.item_id)
        grid = self.grid
        grid.count = self.count
        if grid.cursor >= grid.count > 0:
            grid.cursor = grid.count - 1
        self._update()

    @on(ThumbReady)
    def _thumb_ready(self, msg: ThumbReady) -> None:
        msg.stop()
        self.thumbs[msg.key] = (msg.lines, msg.note)
        self.thumbs.move_to_end(msg.key)
        while len(self.thumbs) > KEEP_PAGES * max(1, self.grid.page) * (1 + 2 * AHEAD):
            self.thumbs.popitem(last=False)
        pos = msg.key[0]
        if pos in self.grid.shown():
            self._update()

    # -- display ------------------------------------------------------------------------------------
    def _update(self) -> None:
        grid = self.grid
        grid.count = self.count
        shown: dict[int, GridTile] = {}
        for p in grid.shown():
            tile = self.tiles.get(p)
            if tile is None:
                continue
            lines, note = self.thumbs.get(self._thumb_key(tile), (None, ""))
            shown[p] = GridTile(
                tile.title,
                bool(self.selection.contains(_ids([tile.id]))[0]) if len(self.selection) else False,
                tile.item_id in self.bad,
                lines,
                note,
            )
        grid.tiles = shown
        grid.refresh()
        self._update_title()
        self._update_status()

    def _update_title(self) -> None:
        grid = self.grid
        n = self.feed.count
        where = f"{grid.cursor + 1:,}/{n:,}" if n is not None else f"{grid.cursor + 1:,}/…"
        parts = [" Gallery", self.feed.title, where, f"boxes: {self._layers()}"]
        if self.busy:
            parts.append(self.busy)
        self.query_one("#gallery-title", Static).update(" · ".join(parts) + " ", layout=False)

    def _update_status(self) -> None:
        tile = self.tiles.get(self.grid.cursor)
        text = ""
        if tile is not None:
            text = tile.title if not tile.key or tile.key in tile.title else f"{tile.title}  {tile.key}"
            if tile.item_id is not None and tile.item_id in self.bad:
                text += "  BAD (excluded from training)"
        if len(self.selection):
            text = f"{len(self.selection):,} selected │ {text}"
        self.query_one("#gallery-status", Static).update(" " + text, layout=False)

    # -- moving -------------------------------------------------------------------------------------
    def _move(self, to: int) -> None:
        grid = self.grid
        last = max(0, self.count - 1)
        grid.cursor = max(0, min(last, to))
        self._request()

    def action_gallery_left(self) -> None:
        self._move(self.grid.cursor - 1)

    def action_gallery_right(self) -> None:
        self._move(self.grid.cursor + 1)

    def action_gallery_up(self) -> None:
        self._move(self.grid.cursor - self.grid.columns)

    def action_gallery_down(self) -> None:
        self._move(self.grid.cursor + self.grid.columns)

    def action_gallery_page_up(self) -> None:
        self.grid.top = max(0, self.grid.top - self.grid.page)
        self._move(self.grid.cursor - self.grid.page)

    def action_gallery_page_down(self) -> None:
        if self.grid.cursor + self.grid.page < self.count:
            self.grid.top += self.grid.page
        self._move(self.grid.cursor + self.grid.page)

    def action_gallery_first(self) -> None:
        self._move(0)

    def action_gallery_last(self) -> None:
        self._move(self.count - 1)

    def action_gallery_layers(self) -> None:
        new = LAYERS[(LAYERS.index(self._layers()) + 1) % len(LAYERS)]
        self.show_labels, self.show_dets = new in ("both", "labels"), new in ("both", "dets")
        self.notify(f"boxes: {new}", timeout=2)
        self._asked = None
        self._request()

    def action_gallery_size(self) -> None:
        grid = self.grid
        grid.size_index = (grid.size_index + 1) % len(TILE_SIZES)
        self._asked = None
        self._request()

    def action_gallery_open(self) -> None:
        self.dismiss(GalleryResult(self.grid.cursor, self.selection))

    def action_gallery_close(self) -> None:
        self.dismiss(GalleryResult(None, self.selection))

    # -- selecting ----------------------------------------------------------------------------------
    def action_gallery_select(self) -> None:
        tile = self.tiles.get(self.grid.cursor)
        if tile is None or tile.id < 0:
            return
        self.selection = self.selection.toggle(tile.id)
        self._move(self.grid.cursor + 1)
        self._update()

    def _mask(self, mode: str, title: str) -> None:
        from tuiops.ops.browse import mask_regex
        from tuiops.screens.dialogs import InputDialog

        def done(mask: str | None) -> None:
            if mask:
                self._select_by(mode, mask)

        def check(text: str) -> None:
            mask_regex(text)

        self.app.push_screen(
            InputDialog(title, "Mask (comma-separated; * any run of characters, ? one):", "*", check=check),
            done,
        )

    def _select_by(self, mode: str, mask: str | None = None) -> None:
        self.busy = "selecting…"
        self._update_title()
        self._mask_worker(mode, mask, self.selection)

    @work(thread=True, exclusive=True, group="gallery-mask", exit_on_error=False)
    def _mask_worker(self, mode: str, mask: str | None, before: Selection) -> None:
        app: Any = self.app
        store = app.reader()
        try:
            hit = self.feed.select_ids(store, mode, mask)
            if mode in ("all", "add"):
                new = before.union(hit)
            elif mode == "remove":
                new = before.minus(hit)
            else:
                new = before.invert_within(hit)
            self.post_message(GallerySelected(new, before))
        except TuiopsError as exc:
            self.post_message(GallerySelected(before, before, exc))
        finally:
            app.release(store)

    @on(GallerySelected)
    def _selected(self, msg: GallerySelected) -> None:
        msg.stop()
        self.busy = ""
        if msg.error is not None:
            tuiops_app(self).show_error(msg.error)
        elif self.selection is msg.before:
            self.selection = msg.selection
        else:
            # the selection changed while the worker ran: its change goes on top
            added = msg.selection.minus(msg.before.ids)
            removed = msg.before.minus(msg.selection.ids)
            self.selection = self.selection.union(added.ids).minus(removed.ids)
        self._update()

    def action_gallery_select_mask(self) -> None:
        self._mask("add", "Select")

    def action_gallery_deselect_mask(self) -> None:
        self._mask("remove", "Deselect")

    def action_gallery_invert(self) -> None:
        self._select_by("invert")

    def action_gallery_select_all(self) -> None:
        self._select_by("all")

    def action_gallery_clear(self) -> None:
        from tuiops.ops.browse import Selection

        self.selection = Selection()
        self._update()

    # -- actions on the selection -------------------------------------------------------------------
    def chosen_ids(self) -> Any:
        """The selected tile ids, or the cursor's when nothing is selected."""
        if len(self.selection):
            return self.selection.ids
        tile = self.tiles.get(self.grid.cursor)
        return _ids([] if tile is None or tile.id < 0 else [tile.id])

    def _label_set(self) -> str:
        name = self.feed.label_set or tuiops_app(self).ctx.label_set
        if not name:
            raise UsageError(
                "marking bad and the review folder need a label set",
                hint="type `set labels SET` on the panels' command line (:)",
            )
        return name

    def _act(self, what: str) -> None:
        ids = self.chosen_ids()
        if len(ids) == 0:
            self.notify("nothing selected (Ins selects, + selects by mask)", severity="warning")
            return
        try:
            label_set = self._label_set()
        except TuiopsError as exc:
            tuiops_app(self).show_error(exc)
            return

        def go(ok: bool | None = True) -> None:
            if ok:
                self.busy = "marking…" if what == "bad" else "copying to review…"
                self._update_title()
                self._act_worker(what, ids, label_set)

        if len(ids) <= CONFIRM_OVER:
            go()
            return
        from tuiops.screens.dialogs import ConfirmDialog

        verb = (
            f"Mark {len(ids):,} images bad in {label_set}"
            if what == "bad"
            else f"Copy {len(ids):,} images with their {label_set} labels to the review folder"
        )
        body = Text(
            f"{verb}?\n(one revision per image; b again on images all bad marks them good)"
            if what == "bad"
            else f"{verb}?"
        )
        self.app.push_screen(ConfirmDialog("Bad" if what == "bad" else "Review", body, yes="Go on"), go)

    @work(thread=True, group="gallery-write", exit_on_error=False)
    def _act_worker(self, what: str, ids: Any, label_set: str) -> None:
        from tuiops.ops.browse.gallery import excluded

        app: Any = self.app
        store = app.reader()
        try:
            targets = self.feed.targets(store, ids)
            was_bad = excluded(store, label_set, targets.item_ids)
        except TuiopsError as exc:
            self.post_message(GalleryDone("", error=exc))
            return
        finally:
            app.release(store)
        with app.writing() as ws:
            try:
                if what == "bad":
                    self.post_message(_mark(ws, label_set, targets.item_ids, targets.keys, was_bad))
                else:
                    self.post_message(_review(ws, label_set, targets.item_ids, targets.keys))
            except TuiopsError as exc:
                self.post_message(GalleryDone("", error=exc))

    @on(GalleryDone)
    def _done(self, msg: GalleryDone) -> None:
        msg.stop()
        self.busy = ""
        if msg.error is not None:
            tuiops_app(self).show_error(msg.error)
        else:
            self.bad |= msg.bad
            self.bad -= msg.good
            if msg.bad or msg.good:
                tuiops_app(self).forget_sources()
            self.notify(msg.text, timeout=5)
        self._update()

    def action_gallery_bad(self) -> None:
        self._act("bad")

    def action_gallery_review(self) -> None:
        self._act("review")

    def action_gallery_copy(self) -> None:
        from tuiops.screens.dialogs import InputDialog

        ids = self.chosen_ids()
        if len(ids) == 0:
            self.notify("nothing selected (Ins selects, + selects by mask)", severity="warning")
            return

        def done(target: str | None) -> None:
            if target and target.strip():
                self.busy = "planning…"
                self._update_title()
                self._plan_worker(ids, target.strip(), "fail")

        what = f"{len(ids):,} image{'s' if len(ids) != 1 else ''}"
        self.app.push_screen(InputDialog(f"Copy {what}", "to folder:", self.copy_to), done)

    @work(thread=True, exclusive=True, group="gallery-plan", exit_on_error=False)
    def _plan_worker(self, ids: Any, target: str, policy: str, files: Any = None) -> None:
        """Plan the copy (``files``: the file ids of a plan made before, else those of ``ids``)."""
        from tuiops.screens.fileops_bridge import FileOpRequest, plan

        app: Any = self.app
        if files is None:
            store = app.reader()
            try:
                files = self.feed.targets(store, ids).file_ids
            except TuiopsError as exc:
                self.post_message(CopyPlanned(None, exc))
                return
            finally:
                app.release(store)
        with app.writing() as ws:
            try:
                if len(files) == 0:
                    raise UsageError(
                        "none of the chosen images is a file of a pool",
                        hint="copy from the gallery of a pool folder or a saved selection",
                    )
                self.post_message(CopyPlanned(plan(ws, FileOpRequest("copy", files, None, target, policy))))
            except TuiopsError as exc:
                self.post_message(CopyPlanned(None, exc))

    @work(thread=True, group="gallery-plan-discard", exit_on_error=False)
    def _discard_worker(self, preview: Any, then: str | None = None) -> None:
        from tuiops.screens.fileops_bridge import discard

        app: Any = self.app
        try:
            with app.writing() as ws:
                discard(ws, preview)
        finally:
            if then is not None:
                self.post_message(Replan(replace(preview.request, on_conflict=then)))

    @on(Replan)
    def _replan(self, msg: Replan) -> None:
        msg.stop()
        req = msg.request
        self._plan_worker(None, req.target, req.on_conflict, req.file_ids)

    @on(CopyPlanned)
    def _planned(self, msg: CopyPlanned) -> None:
        from tuiops.screens.dialogs import ConfirmDialog, MenuDialog

        msg.stop()
        self.busy = ""
        self._update_title()
        if msg.error is not None or msg.preview is None:
            if msg.error is not None:
                tuiops_app(self).show_error(msg.error)
            return
        preview = msg.preview
        req = preview.request
        body = Text(f"copy {len(req.file_ids):,} file(s) to {req.target}\n")
        body.append(f"conflict policy: {req.on_conflict}   (job {preview.job_id})\n\n")
        for line in preview.summary_lines():
            body.append(line + "\n", "bold red" if line.startswith("conflicts") else "")
        if preview.blocked:

            def chosen(policy: str | None) -> None:
                keep = policy in ("skip", "rename", "overwrite")
                self._discard_worker(preview, policy if keep else None)

            entries = [
                ("skip", "Skip the files in conflict, do the rest"),
                ("rename", "Rename the new files (NAME_1.ext …)"),
                ("overwrite", "Overwrite (the old files go to the workspace trash)"),
                ("cancel", "Cancel: touch nothing"),
            ]
            self.app.push_screen(MenuDialog("Copy: conflicts", entries, body=body), chosen)
            return

        def done(ok: bool | None) -> None:
            if ok:
                tuiops_app(self).run_file_op(preview)
                self.notify(f"copying {len(req.file_ids):,} files to {req.target} (F12: jobs)", timeout=4)
            else:
                self._discard_worker(preview)

        self.app.push_screen(ConfirmDialog("Copy", body, yes="Copy"), done)


def _ids(values: Any) -> Any:
    import numpy as np

    return np.asarray(values, dtype=np.int64)


def _mark(ws: Any, label_set: str, items: list[int], keys: list[str], was_bad: set[int]) -> GalleryDone:
    """Mark the images bad (one revision each, as triage does); when every one is bad already,
    mark them good again. An image the label set cannot mark is left out and named."""
    from tuiops.ops.triage import decide

    action = "good" if items and all(i in was_bad for i in items) else "bad"
    todo = [(i, k) for i, k in zip(items, keys, strict=True) if (i in was_bad) == (action == "good")]
    revisions: list[int] = []
    done: set[int] = set()
    left_out: list[str] = []
    for item, key in todo:
        try:
            revisions.append(
                decide(ws.store, label_set, action, item_id=item, note=f"gallery {action} {key}").revision
            )
            done.add(item)
        except TuiopsError as exc:
            left_out.append(f"{key}: {exc.message}")
    already = len(items) - len(todo)
    what = "marked bad (excluded from training)" if action == "bad" else "marked good again"
    text = f"{len(done):,} image{'s' if len(done) != 1 else ''} {what} in {label_set}"
    if revisions:
        text += f" (revision {revisions[0]}" + (f"–{revisions[-1]})" if len(revisions) > 1 else ")")
    if already:
        text += f"; {already:,} bad already"
    if left_out:
        text += f"; {len(left_out):,} left out: " + "; ".join(left_out[:3])
    if action == "bad":
        return GalleryDone(text, bad=done)
    return GalleryDone(text, good=done)


def _review(ws: Any, label_set: str, items: list[int], keys: list[str]) -> GalleryDone:
    """Copy each image with its labels to the review folder (the triage's operation); an image
    without a readable file is left out and named."""
    from tuiops.ops.triage import send_to_review

    folder = None
    left_out: list[str] = []
    for item, key in zip(items, keys, strict=True):
        try:
            folder = send_to_review(ws, label_set, item)
        except TuiopsError as exc:
            left_out.append(f"{key}: {exc.message}")
    sent = len(items) - len(left_out)
    where = ""
    if folder is not None:
        where = str(folder.relative_to(ws.root)) if folder.is_relative_to(ws.root) else str(folder)
    text = f"{sent:,} image{'s' if sent != 1 else ''} copied to {where or 'the review folder'}"
    if left_out:
        text += f"; {len(left_out):,} left out: " + "; ".join(left_out[:3])
    return GalleryDone(text)


# -- opening -------------------------------------------------------------------------------------
def open_panel_gallery(app: Any, panel: Panel, other: Panel | None = None) -> None:
    """The gallery of a panel's images (in its order, from its cursor); the panel takes back the
    selection, and Enter's image as its cursor."""
    from tuiops.ops.browse import PoolSource
    from tuiops.ops.browse.gallery import PanelFeed, copy_pager

    source, pager = panel.source, panel.pager
    if source is None or pager is None:
        app.notify("the panel is still opening", severity="warning")
        return
    if source.kind not in IMAGE_SOURCES:
        raise UsageError(
            f"the gallery shows images: {source.title} is not a pool, a selection, a match or a query",
            hint="open a pool folder, selection:NAME or match:NAME in the panel first",
        )
    feed = PanelFeed(
        copy_pager(pager, GALLERY_WINDOW), label_set=app.ctx.label_set, run=app.ctx.run, panel_pager=pager
    )
    copy_to = ""
    if other is not None and isinstance(other.source, PoolSource) and other.display:
        copy_to = str(other.source.root / other.source.folder).rstrip("/")
    n_fixed = pager.n_fixed
    cursor = max(0, panel.table.cursor - n_fixed)

    def done(result: GalleryResult | None) -> None:
        if result is None or panel.pager is not pager:
            return
        panel.selection = result.selection
        if result.position is not None:
            panel.table.set_cursor(n_fixed + result.position)
        panel.table.refresh_marks()
        panel.update_status()

    app.push_screen(GalleryScreen(feed, selection=panel.selection, cursor=cursor, copy_to=copy_to), done)


def open_queue_gallery(
    app: Any, queue: TriageQueue | None, position: int, went: Callable[[int], None]
) -> None:
    """The gallery of a triage queue from ``position``; Enter calls ``went`` with the position."""
    from tuiops.ops.browse.gallery import QueueFeed

    if queue is None or len(queue) == 0:
        app.notify("the queue is empty or still opening", severity="warning")
        return

    def done(result: GalleryResult | None) -> None:
        if result is not None and result.position is not None:
            went(result.position)

    app.push_screen(GalleryScreen(QueueFeed(queue), cursor=position), done)
