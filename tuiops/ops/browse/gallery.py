"""The gallery's rows: the images of a panel's view or of a triage queue, a page at a time.

A gallery shows one *feed*: :class:`PanelFeed` reads the rows of a panel's
:class:`~tuiops.ops.browse.Pager` (the panel's sort and filter, its fixed rows such as
``..`` and subfolders left out), so a 4M-image pool opens in the gallery as fast as a page
of the table; :class:`QueueFeed` reads the entries of a
:class:`~tuiops.ops.triage.TriageQueue`. A feed answers:

- ``count`` and ``tiles(store, start, n)``: a page of :class:`Tile` (one indexed query);
- ``select_ids(store, mode, mask)``: the ids a mask selection adds or removes;
- ``targets(store, ids)``: the images (item ids, keys, file ids) of selected ids, for the
  actions on the selection (mark bad, send to review, copy).

:func:`render_tile` draws one thumbnail with the one box renderer
(:func:`tuiops.imaging.render_preview` or, for a triage entry, :func:`render_view`), in a
worker thread: JPEG files are decoded in draft mode at the thumbnail's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import UsageError
from tuiops.ops.browse.spec import ROW_ID, ROW_ITEM, ROW_KEY, ROW_KIND

if TYPE_CHECKING:
    from PIL import Image

    from tuiops.imaging import BoxMark
    from tuiops.ops.browse.pager import Pager
    from tuiops.ops.triage import TriageObject, TriageQueue
    from tuiops.store import Store


#: Row kinds of a panel that are images (a pool's files, a table's rows).
IMAGE_KINDS = ("file", "row")


@dataclass(frozen=True)
class Tile:
    """One thumbnail of the gallery: its place in the feed, the id it is selected by, the
    image it shows and its caption."""

    position: int
    id: int
    title: str
    item_id: int | None = None
    file_id: int | None = None
    key: str | None = None
    #: The triage object the tile shows (a queue's entry), drawn in the current colour.
    obj: TriageObject | None = None

    @property
    def target(self) -> dict[str, Any] | None:
        """What :func:`tuiops.ops.browse.image_info` reads the image by."""
        if self.file_id is not None:
            return {"file_id": self.file_id}
        if self.item_id is not None:
            return {"item_id": self.item_id}
        if self.key:
            return {"key": self.key}
        return None


@dataclass
class Targets:
    """The images of some selected tiles: item ids (unique, in feed order), their keys, and
    the file ids of those that are files of a pool; ``missing`` counts ids with no image."""

    item_ids: list[int]
    keys: list[str]
    file_ids: list[int]
    missing: int = 0


class Feed:
    """What a gallery shows; see the module doc."""

    #: The label set and run the thumbnails draw (None: every set and run).
    label_set: str | None = None
    run: str | None = None
    title = ""

    @property
    def count(self) -> int | None:
        raise NotImplementedError

    def tiles(self, store: Store, start: int, n: int) -> list[Tile]:
        raise NotImplementedError

    def screen_tiles(self, store: Store, start: int, n: int) -> list[Tile]:
        """The tiles of the first screen, read on the app's thread: from what the panel has
        read already where it can."""
        return self.tiles(store, start, n)

    def position_of(self, row_id: int) -> int | None:
        """The feed position of a tile id, where it is known without reading the store."""
        return None

    def select_ids(self, store: Store, mode: str, mask: str | None = None) -> np.ndarray:
        """The ids of the feed's tiles a selection by ``mode`` works on: ``all`` (and
        ``invert``): every tile; ``add``/``remove``: those whose name matches ``mask``."""
        raise NotImplementedError

    def targets(self, store: Store, ids: np.ndarray) -> Targets:
        raise NotImplementedError


class PanelFeed(Feed):
    """The image rows of a panel's pager, in the panel's order (its fixed rows left out)."""

    def __init__(
        self,
        pager: Pager,
        *,
        label_set: str | None = None,
        run: str | None = None,
        title: str = "",
        panel_pager: Pager | None = None,
    ) -> None:
        self.pager = pager
        #: The panel's own pager (its window of rows read already), for the app's thread only.
        self.panel_pager = panel_pager
        self.source = pager.source
        self.label_set = label_set
        self.run = run
        self.title = title or self.source.title

    @property
    def count(self) -> int | None:
        return self.pager.count

    @property
    def known(self) -> int:
        """Rows known so far (the count, or what paging has read while counting)."""
        return self.pager.row_count - self.pager.n_fixed

    def tiles(self, store: Store, start: int, n: int) -> list[Tile]:
        rows = self.pager.rows(store, self.pager.n_fixed + start, n)
        out: list[Tile] = []
        for i, row in enumerate(rows.iter_rows(named=True)):
            out.append(_row_tile(start + i, row))
        return out

    def screen_tiles(self, store: Store, start: int, n: int) -> list[Tile]:
        pager = self.panel_pager or self.pager
        rows = pager.rows(store, pager.n_fixed + start, n)
        return [_row_tile(start + i, row) for i, row in enumerate(rows.iter_rows(named=True))]

    def position_of(self, row_id: int) -> int | None:
        view = self.pager.view_ids()
        if view is None:
            return None
        hit = np.flatnonzero(view == row_id)
        return int(hit[0]) if len(hit) else None

    def select_ids(self, store: Store, mode: str, mask: str | None = None) -> np.ndarray:
        from tuiops.ops.browse.order import mask_ids, view_ids

        ids = self.source.base_ids(store)
        if mode in ("all", "invert"):
            return view_ids(ids, self.pager.order)
        return mask_ids(self.source, store, ids, self.pager.order, mask or "*")

    def targets(self, store: Store, ids: np.ndarray) -> Targets:
        from tuiops.ops.browse.tables import SelectionSource

        ids = np.asarray(ids, dtype=np.int64)
        items: dict[int, str] = {}
        files: list[int] = []
        missing = 0
        frame = self.source.fetch(store, ids) if len(ids) else None
        if frame is not None and frame.height:
            cols = [c for c in (ROW_ID, ROW_KIND, ROW_ITEM, ROW_KEY) if c in frame.columns]
            for row in frame.select(cols).iter_rows(named=True):
                item = row.get(ROW_ITEM)
                if item is None:
                    missing += 1
                    continue
                items.setdefault(int(item), str(row.get(ROW_KEY) or ""))
                if row.get(ROW_KIND) == "file":
                    files.append(int(row[ROW_ID]))
            missing += len(ids) - frame.height
        if isinstance(self.source, SelectionSource) and len(ids):
            files = self.source.file_ids(ids)
        return Targets(list(items), list(items.values()), files, missing)


def copy_pager(pager: Pager, window: int | None = None) -> Pager:
    """A pager of its own over the same source, order and known rows as ``pager``: a gallery
    pages in its worker without touching the panel's window. ``window``: the rows it reads
    around those asked for (default: the panel's)."""
    from tuiops.ops.browse.pager import Pager
    from tuiops.ops.browse.source import Opened

    own = Pager(
        pager.source, Opened(pager.fixed, pager.fixed.head(0), pager.total), window=window or pager.window
    )
    if pager.base_ids is not None:
        own.set_base(pager.base_ids)
    if pager.order is not None:
        own.set_order(pager.order)
    return own


def _row_tile(position: int, row: dict[str, Any]) -> Tile:
    kind = row.get(ROW_KIND)
    row_id = int(row.get(ROW_ID, -1) if row.get(ROW_ID) is not None else -1)
    item = row.get(ROW_ITEM)
    key = row.get(ROW_KEY)
    title = str(row.get("name") or row.get("relpath") or key or "")
    file_id = row_id if kind == "file" and row_id >= 0 else None
    return Tile(position, row_id, title, None if item is None else int(item), file_id, key)


class QueueFeed(Feed):
    """The entries of a triage queue: tile ids are queue positions."""

    def __init__(self, queue: TriageQueue) -> None:
        self.queue = queue
        self.label_set = queue.label_set
        self.run = queue.run
        self.title = f"triage {queue.label_set} × {queue.run} · {queue.kind}"

    @property
    def count(self) -> int | None:
        return len(self.queue)

    @property
    def known(self) -> int:
        return len(self.queue)

    def tiles(self, store: Store, start: int, n: int) -> list[Tile]:
        out: list[Tile] = []
        for p in range(max(0, start), min(len(self.queue), start + n)):
            e = self.queue.entry(store, p)
            obj = e.objects[0] if e.objects and self.queue.kind != "worst" else None
            title = e.key if obj is None else f"{e.key} {obj.category}"
            out.append(Tile(p, p, title, e.item_id, None, e.key, obj))
        return out

    def position_of(self, row_id: int) -> int | None:
        return row_id if 0 <= row_id < len(self.queue) else None

    def select_ids(self, store: Store, mode: str, mask: str | None = None) -> np.ndarray:
        """Every position, or those whose image key matches ``mask`` (the queue read page by page)."""
        import polars as pl

        from tuiops.ops.browse.order import ALL_MASK, mask_expr, mask_regex

        every = np.arange(len(self.queue), dtype=np.int64)
        if mode in ("all", "invert") or mask_regex(mask or "*") == ALL_MASK:
            return every
        keys = [self.queue.entry(store, int(p)).key.lower() for p in every]
        hit = pl.DataFrame({"v": keys}, schema={"v": pl.String}).select(
            mask_expr(mask or "*").fill_null(False)
        )
        return every[hit.to_series().to_numpy()]

    def targets(self, store: Store, ids: np.ndarray) -> Targets:
        items: dict[int, str] = {}
        for p in np.asarray(ids, dtype=np.int64):
            e = self.queue.entry(store, int(p))
            items.setdefault(e.item_id, e.key)
        return Targets(list(items), list(items.values()), [])


def excluded(store: Store, label_set: str | None, item_ids: list[int]) -> set[int]:
    """Which of ``item_ids`` are marked bad (excluded from training) in ``label_set``."""
    if not label_set or not item_ids:
        return set()
    sid = store.label_set_id(label_set)
    marks = ", ".join("?" * len(item_ids))
    rows = store.execute(
        f"SELECT item_id FROM set_exclusions WHERE set_id = ? AND item_id IN ({marks})", (sid, *item_ids)
    ).fetchall()
    return {int(r[0]) for r in rows}


def render_tile(
    store: Store,
    tile: Tile,
    feed: Feed,
    max_w: int,
    max_h: int,
    *,
    classes: list[str] | None = None,
    show_labels: bool = True,
    show_dets: bool = True,
) -> tuple[Image.Image, list[BoxMark]]:
    """The tile's image fitted into ``max_w``×``max_h`` pixels with its boxes drawn by the one
    renderer: the feed's label set and run (a triage entry: its object in the current
    colour); a file that cannot be read gives the renderer's placeholder."""
    from tuiops.imaging import render_preview, render_view
    from tuiops.ops.browse.preview import image_info

    target = tile.target
    if target is None:
        raise UsageError(f"gallery row {tile.position + 1} is not an image")
    info = image_info(store, **target)
    if tile.obj is not None and feed.label_set and feed.run and info.item_id is not None:
        from tuiops.ops.triage import image_view

        view = image_view(store, feed.label_set, feed.run, info.item_id)
        return render_view(
            info,
            view,
            tile.obj,
            classes if classes is not None else store.class_names(),
            max_w,
            max_h,
            show_labels=show_labels,
            show_dets=show_dets,
        )
    return render_preview(
        info,
        max_w,
        max_h,
        label_set=feed.label_set,
        run=feed.run,
        show_labels=show_labels,
        show_dets=show_dets,
    )
