"""One FAR-style panel: a title, a virtual table of the source's rows, and a status line.

The panel owns its source's state on the UI thread (:class:`tuiops.ops.browse.Pager`,
the selection, the sort and the filter). Everything that reads more than a page runs in
a thread worker, which posts a message with the result; the handlers install it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from tuiops.errors import TuiopsError
from tuiops.screens.actions import alt_letter
from tuiops.screens.host import tuiops_app
from tuiops.screens.messages import (
    BaseLoaded,
    FieldsLoaded,
    FixedRows,
    MaskDone,
    OrderReady,
    PanelBusy,
    PanelFailed,
    SourceCounted,
    SourceOpened,
)
from tuiops.screens.workers import ReportsWorkerFailures
from tuiops.widgets.vtable import TableColumn, VirtualTable

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from tuiops.ops.base import CancelToken
    from tuiops.ops.browse import Order, Pager, Selection, Source, Spec

#: Rows read when a source opens (more than a tall terminal shows).
FIRST_PAGE = 150

#: Fields sorted largest first on the first press (as FAR sorts size and time).
DESCENDING_FIRST = frozenset(
    {
        "size",
        "mtime",
        "pixels",
        "labels",
        "dets",
        "images",
        "boxes",
        "score",
        "area",
        "w",
        "h",
        "cost",
        "fp",
        "fn",
    }
)


@dataclass
class SearchFound(Message):
    """Where a quick search of a panel landed (``row`` None: no name starts that way)."""

    token: int
    seq: int
    text: str
    row: int | None
    #: Where the cursor was when the search started.
    cursor: int


class QuickSearch(Input):
    """FAR's quick search box under a panel: each letter typed moves the cursor to the first
    name that starts with the text; ↑/↓ go to the previous/next such name; Enter or Esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,tab", "close", "Close", show=False),
        Binding("down,ctrl+enter", "step(1)", "Next", show=False),
        Binding("up", "step(-1)", "Previous", show=False),
    ]

    def __init__(self, side: str) -> None:
        super().__init__(id=f"search-{side}", classes="panel--search", select_on_focus=False)
        self.side = side

    @property
    def panel(self) -> Panel:
        return self.app.query_one(f"#panel-{self.side}", Panel)

    def on_key(self, event: events.Key) -> None:
        # Alt held down while typing on: the letter goes on the search text.
        letter = alt_letter(event.key)
        if letter is not None:
            event.stop()
            event.prevent_default()
            self.insert_text_at_cursor(letter)

    def action_close(self) -> None:
        self.panel.end_search()

    def action_step(self, step: int) -> None:
        self.panel.search(self.value, step)


class Panel(ReportsWorkerFailures, Vertical):
    """A panel showing one source."""

    def __init__(self, side: str) -> None:
        super().__init__(id=f"panel-{side}", classes="panel")
        self.side = side
        self.spec: Spec | None = None
        self.source: Source | None = None
        self.pager: Pager | None = None
        self.selection: Selection | None = None
        self.sort: list[tuple[str, bool]] = []
        self.where: str | None = None
        self.token = 0
        self._order_seq = 0
        self.busy = ""
        self.error = ""
        self._pending_focus: str | None = None
        #: The cancel flag of the source being opened (a query or a selection: Esc stops it).
        self._opening: CancelToken | None = None
        self._search_seq = 0

    def compose(self) -> ComposeResult:
        yield Static("", classes="panel--title", id=f"title-{self.side}", markup=False)
        table = VirtualTable(id=f"table-{self.side}")
        table.row_style = _row_style
        table.on_cursor = lambda _index, row: self.update_status(row)
        yield table
        yield Static("", classes="panel--status", id=f"status-{self.side}", markup=False)
        yield QuickSearch(self.side)

    @property
    def table(self) -> VirtualTable:
        return self.query_one(VirtualTable)

    # -- RowProvider for the table --------------------------------------------------------
    def row_count(self) -> int:
        return self.pager.row_count if self.pager is not None else 0

    def rows(self, start: int, n: int) -> pl.DataFrame:
        assert self.pager is not None
        try:
            return self.pager.rows(tuiops_app(self).ui_store, start, n)
        except TuiopsError as exc:
            tuiops_app(self).show_error(exc)
            return self.pager.fixed.head(0)

    def selected(self, ids: np.ndarray) -> np.ndarray:
        import numpy as np

        if self.selection is None:
            return np.zeros(len(ids), dtype=bool)
        return self.selection.contains(ids)

    # -- opening ------------------------------------------------------------------------------
    def open(self, spec: Spec, *, focus: str | None = None, cursor: int = 0) -> None:
        """Show ``spec``: the first page comes from a worker within milliseconds."""
        self.token += 1
        self.spec = spec
        self.busy = "reading…"
        self.error = ""
        self.sort = []
        self.where = None
        self._order_seq += 1
        self.update_title()
        from tuiops.ops.base import CancelToken

        if self._opening is not None:
            self._opening.cancel()
        self._opening = CancelToken()
        self._open_worker(spec, self.token, focus, cursor, self._opening)

    def cancel_open(self) -> bool:
        """Stop the query or selection this panel is opening; False when none is running."""
        if self._opening is None or self._opening.cancelled:
            return False
        self._opening.cancel()
        self.busy = "cancelling…"
        self.update_title()
        return True

    def reread(self, *, forget: bool = True) -> None:
        """Open the same source again from the store, keeping the cursor's row where it can."""
        if self.spec is None:
            return
        if forget:
            tuiops_app(self).forget_sources(self.spec)
        row = self.table.current_row()
        focus = row.get("_order") if row else None
        sort, where = list(self.sort), self.where
        self.open(self.spec, focus=focus, cursor=self.table.cursor)
        self.sort, self.where = sort, where

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def _open_worker(
        self, spec: Spec, token: int, focus: str | None, cursor: int, cancel: CancelToken
    ) -> None:
        from tuiops.ops.browse import MemorySource, PoolSource

        worker = get_current_worker()
        app: Any = self.app
        store = app.reader()
        source: Source
        try:
            if spec.kind == "selection":
                with app.writing() as ws:
                    source = app.source_for(store, spec, ws=ws)
                    if isinstance(source, MemorySource):
                        source.cancel = cancel
                    opened = source.open(store, FIRST_PAGE)
            else:
                # the catalog and queries see the user's tables and views (they read the workspace only)
                mine = app.ws if spec.kind in ("catalog", "query") else None
                source = app.source_for(store, spec, ws=mine)
                if isinstance(source, MemorySource):
                    source.cancel = cancel
                opened = source.open(store, FIRST_PAGE)
            if worker.is_cancelled:
                return
            self.post_message(SourceOpened(token, source, opened, focus, cursor))
            if isinstance(source, PoolSource):
                disk = source.disk_subfolders()
                known = set(opened.fixed["name"].to_list())
                if set(disk) - known:
                    names = [n for n in opened.fixed["name"].to_list()[1:]] + disk
                    self.post_message(FixedRows(token, source.fixed_rows(names)))
            if opened.count is None:
                self.post_message(PanelBusy(token, "counting…"))
                total = source.count(store)
                if worker.is_cancelled:
                    return
                self.post_message(SourceCounted(token, total))
            if source.in_memory:
                self.post_message(FieldsLoaded(token, [], True))
                return
            self.post_message(PanelBusy(token, "indexing…"))
            ids = source.base_ids(store)
            if worker.is_cancelled:
                return
            self.post_message(BaseLoaded(token, ids))
            fields = source.preload_fields()
            for name in fields:
                if worker.is_cancelled:
                    return
                self.post_message(PanelBusy(token, f"loading {name}…"))
                source.fields_for(store, [name], ids)
            self.post_message(FieldsLoaded(token, fields, True))
        except TuiopsError as exc:
            self.post_message(PanelFailed(token, exc, "open"))
        finally:
            app.release(store)

    @on(SourceOpened)
    def _opened(self, msg: SourceOpened) -> None:
        if msg.token != self.token:
            return
        from tuiops.ops.browse import Pager, Selection

        self._opening = None
        self.source = msg.source
        self.pager = Pager(msg.source, msg.opened)
        self.selection = Selection()
        cursor = msg.cursor
        self._pending_focus = None
        if msg.focus is not None:
            names = msg.opened.fixed["_order"].to_list() if msg.opened.fixed.height else []
            heads = msg.opened.head["_order"].to_list() if "_order" in msg.opened.head.columns else []
            for i, n in enumerate([*names, *heads]):
                if n == msg.focus:
                    cursor = i
                    break
            else:
                self._pending_focus = msg.focus
        columns = [TableColumn(c.name, c.title, c.kind, c.width) for c in msg.source.columns]
        self.table.set_provider(self, columns, cursor=cursor)
        self.busy = "" if msg.opened.count is not None and msg.source.in_memory else self.busy
        self.update_title()
        self.update_status()
        if self.sort or self.where:
            self.request_order()

    @on(FixedRows)
    def _fixed(self, msg: FixedRows) -> None:
        if msg.token != self.token or self.pager is None:
            return
        row = self.table.current_row()
        focus = self._pending_focus or (row.get("_order") if row is not None else None)
        self._pending_focus = None
        self.pager.set_fixed(msg.fixed)
        self.pager.invalidate()
        self.table.reload()
        self.focus_order(focus)

    @on(SourceCounted)
    def _counted(self, msg: SourceCounted) -> None:
        if msg.token != self.token or self.pager is None:
            return
        self.pager.set_total(msg.total)
        self.table.reload()
        self.update_title()

    @on(BaseLoaded)
    def _base(self, msg: BaseLoaded) -> None:
        if msg.token != self.token or self.pager is None:
            return
        if self.pager.order is None:
            self.pager.set_base(msg.ids)
            self.table.reload()
        self.update_title()

    @on(FieldsLoaded)
    def _fields(self, msg: FieldsLoaded) -> None:
        if msg.token != self.token:
            return
        if msg.done:
            self.busy = ""
            self.update_title()

    @on(PanelBusy)
    def _busy(self, msg: PanelBusy) -> None:
        if msg.token != self.token:
            return
        self.busy = msg.text
        self.update_title()

    @on(PanelFailed)
    def _failed(self, msg: PanelFailed) -> None:
        if msg.token != self.token:
            return
        self.busy = ""
        if msg.what == "open":
            self._opening = None
        if msg.what == "open" and self.pager is None:
            self.error = msg.error.message
            self.table.placeholder = msg.error.message
            self.table.set_provider(None, [TableColumn("error", "", "text", None)])
        self.update_title()
        tuiops_app(self).show_error(msg.error)

    # -- sorting and filtering --------------------------------------------------------------
    def set_sort(self, field: str | None, descending: bool | None = None) -> None:
        """Sort by ``field`` (None: the store's order); the same field again reverses."""
        if field is None:
            self.sort = []
        else:
            previous = self.sort
            if descending is None:
                if previous and previous[0][0] == field:
                    descending = not previous[0][1]
                else:
                    descending = field in DESCENDING_FIRST
            self.sort = [(field, descending)]
            order = self.pager.order if self.pager is not None else None
            if (
                previous
                and previous[0] == (field, not descending)
                and order is not None
                and order.positions is not None
                and order.sort == tuple(previous)
                and order.where == self.where
            ):
                from tuiops.ops.browse import Order

                self._order_seq += 1
                flipped = Order(order.positions[::-1].copy(), tuple(self.sort), self.where, order.total)
                self._install_order(flipped, None)
                return
        self.request_order()

    def set_filter(self, where: str | None) -> None:
        """Filter by a SQL WHERE over the source's fields (None or blank: no filter)."""
        from tuiops.ops.browse import check_filter

        where = (where or "").strip() or None
        if where and self.source is not None:
            check_filter(self.source, where)
        self.where = where
        self.request_order()

    def request_order(self) -> None:
        if self.source is None:
            return
        self._order_seq += 1
        if not self.sort and not self.where:
            if self.pager is not None and self.pager.order is not None:
                self._install_order(None, self.pager.base_ids)
            return
        self.busy = "sorting…" if self.sort and not self.where else "filtering…"
        self.update_title()
        self._order_worker(self.source, self.token, self._order_seq, list(self.sort), self.where)

    @work(thread=True, exclusive=True, group="order", exit_on_error=False)
    def _order_worker(
        self, source: Source, token: int, seq: int, sort: list[tuple[str, bool]], where: str | None
    ) -> None:
        from tuiops.ops.browse import compute_order

        worker = get_current_worker()
        app: Any = self.app
        store = app.reader()
        try:
            ids = source.base_ids(store)
            order = compute_order(source, store, ids, sort=sort, where=where)
            if not worker.is_cancelled:
                self.post_message(OrderReady(token, seq, ids, order))
        except TuiopsError as exc:
            if not worker.is_cancelled:
                self.post_message(PanelFailed(token, exc, "order"))
        finally:
            app.release(store)

    @on(OrderReady)
    def _order_ready(self, msg: OrderReady) -> None:
        if msg.token != self.token or msg.seq != self._order_seq:
            return
        self._install_order(msg.order, msg.ids)

    def _install_order(self, order: Order | None, ids: np.ndarray | None) -> None:
        import numpy as np

        if self.pager is None:
            return
        row = self.table.current_row()
        if ids is not None:
            self.pager.set_base(ids)
        self.pager.set_order(order)
        cursor = 0
        if row is not None:
            if row.get("_id", -1) < 0:
                cursor = self.table.cursor
            elif self.pager.base_ids is not None:
                view = self.pager.view_ids()
                assert view is not None
                hit = np.flatnonzero(view == row["_id"])
                if len(hit):
                    cursor = self.pager.n_fixed + int(hit[0])
        self.busy = ""
        self.table.reload(cursor=cursor)
        self.update_title()

    def focus_order(self, key: Any) -> None:
        """Put the cursor on the row whose order key is ``key`` (if it is near the top)."""
        if key is None or self.pager is None:
            return
        head = self.pager.rows(tuiops_app(self).ui_store, 0, min(self.pager.row_count, FIRST_PAGE))
        if "_order" in head.columns:
            for i, v in enumerate(head["_order"].to_list()):
                if v == key:
                    self.table.set_cursor(i)
                    return

    # -- selection ----------------------------------------------------------------------------
    def toggle_current(self) -> None:
        row = self.table.current_row()
        if row is None or self.selection is None:
            return
        if row.get("_id", -1) >= 0 and row.get("_kind") in ("file", "row"):
            self.selection = self.selection.toggle(int(row["_id"]))
            self.table.refresh_marks()
            self.update_status()
        self.table.action_cursor_down()

    def select_by(self, mode: str, mask: str | None = None) -> None:
        """Select (``add``), deselect (``remove``), ``invert`` or select ``all`` by mask, in a worker."""
        if self.source is None or self.pager is None:
            return
        self.busy = "selecting…"
        self.update_title()
        order = self.pager.order
        assert self.selection is not None
        self._mask_worker(self.source, self.token, order, mode, mask, self.selection)

    @work(thread=True, exclusive=True, group="mask", exit_on_error=False)
    def _mask_worker(
        self,
        source: Source,
        token: int,
        order: Order | None,
        mode: str,
        mask: str | None,
        selection: Selection,
    ) -> None:
        from tuiops.ops.browse import mask_ids, view_ids

        app: Any = self.app
        store = app.reader()
        try:
            ids = source.base_ids(store)
            if mode in ("invert", "all"):
                hit = view_ids(ids, order)
            else:
                hit = mask_ids(source, store, ids, order, mask or "*")
            if mode == "all" or mode == "add":
                new = selection.union(hit)
            elif mode == "remove":
                new = selection.minus(hit)
            else:
                new = selection.invert_within(hit)
            self.post_message(MaskDone(token, new, selection, mode, mask or "*"))
        except TuiopsError as exc:
            self.post_message(PanelFailed(token, exc, "select"))
        finally:
            app.release(store)

    @on(MaskDone)
    def _mask_done(self, msg: MaskDone) -> None:
        if msg.token != self.token or self.selection is None:
            return
        if self.selection is msg.before:
            self.selection = msg.selection
        else:
            self.selection = self._replay(msg)
        self.busy = ""
        self.table.refresh_marks()
        self.update_title()
        self.update_status()

    def _replay(self, msg: MaskDone) -> Selection:
        """The selection changed while the worker ran: apply the worker's change on top of it."""
        assert self.selection is not None
        added = msg.selection.minus(msg.before.ids)
        removed = msg.before.minus(msg.selection.ids)
        return self.selection.union(added.ids).minus(removed.ids)

    def clear_selection(self) -> None:
        from tuiops.ops.browse import Selection

        self.selection = Selection()
        self.table.refresh_marks()
        self.update_status()

    def selected_ids(self) -> np.ndarray:
        """The selected row ids, or the cursor row's when nothing is selected."""
        import numpy as np

        if self.selection is not None and len(self.selection):
            return self.selection.ids
        row = self.table.current_row()
        if row is not None and row.get("_id", -1) >= 0 and row.get("_kind") in ("file", "row"):
            return np.array([int(row["_id"])], dtype=np.int64)
        return np.empty(0, dtype=np.int64)

    # -- quick search (Alt+letter) ---------------------------------------------------------------
    @property
    def search_box(self) -> QuickSearch:
        return self.query_one(QuickSearch)

    def start_search(self, text: str) -> None:
        """Open the quick search box with ``text`` typed in it."""
        box = self.search_box
        box.display = True
        self.query_one(f"#status-{self.side}", Static).display = False
        box.value = ""
        # At once, not after the keys already read: the next letters typed go to the box.
        self.screen.set_focus(box)
        box.insert_text_at_cursor(text)

    def end_search(self) -> None:
        """Close the quick search box; the cursor stays where the search put it (a search still
        running lands too, unless the cursor has moved since)."""
        box = self.search_box
        box.display = False
        box.remove_class("-none")
        self.query_one(f"#status-{self.side}", Static).display = True
        self.screen.set_focus(self.table)

    @on(Input.Changed, "QuickSearch")
    def _search_typed(self, event: Input.Changed) -> None:
        event.stop()
        self.search(event.value, 0)

    def search(self, text: str, step: int) -> None:
        """Go to the first row whose name starts with ``text`` (``step`` 0), the next (1) or
        the previous one (-1); the names are matched in a worker."""
        self._search_seq += 1
        if not text or self.source is None or self.pager is None:
            self.search_box.remove_class("-none")
            return
        self._search_worker(
            self.source,
            self.token,
            self._search_seq,
            self.pager.fixed,
            self.pager.order,
            text,
            self.table.cursor,
            step,
        )

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def _search_worker(
        self,
        source: Source,
        token: int,
        seq: int,
        fixed: pl.DataFrame,
        order: Order | None,
        text: str,
        cursor: int,
        step: int,
    ) -> None:
        from tuiops.ops.browse import find_rows, pick_row

        app: Any = self.app
        store = app.reader()
        try:
            rows = find_rows(source, store, fixed, source.base_ids(store), order, text)
            self.post_message(SearchFound(token, seq, text, pick_row(rows, cursor, step), cursor))
        except TuiopsError as exc:
            self.post_message(PanelFailed(token, exc, "search"))
        finally:
            app.release(store)

    @on(SearchFound)
    def _search_found(self, msg: SearchFound) -> None:
        if msg.token != self.token or msg.seq != self._search_seq:
            return
        if not self.search_box.display and self.table.cursor != msg.cursor:
            return
        self.search_box.set_class(msg.row is None, "-none")
        if msg.row is not None:
            self.table.set_cursor(msg.row)

    # -- display -----------------------------------------------------------------------------
    def counts_what(self) -> str | None:
        """Which label set and run the Lbl and Det columns count (None: the panel has neither)."""
        source = self.source
        ctx = getattr(source, "ctx", None)
        if source is None or ctx is None or "labels" not in source.fields:
            return None
        return f"Lbl {ctx.label_set or '—'} · Det {ctx.run or '—'}"

    def update_title(self) -> None:
        parts = [self.source.title if self.source is not None else str(self.spec or "")]
        counts = self.counts_what()
        if counts:
            parts.append(f"({counts})")
        if self.sort:
            f, desc = self.sort[0]
            parts.append(("↓" if desc else "↑") + f)
        if self.where:
            parts.append(f"[{self.where}]")
        if self.pager is not None and self.pager.count is not None:
            parts.append(f"{self.pager.count:,}")
        if self.busy:
            parts.append(self.busy)
        title = " " + "  ".join(parts) + " "
        self.query_one(f"#title-{self.side}", Static).update(title, layout=False)

    def update_status(self, row: dict[str, Any] | None = None) -> None:
        from tuiops.ops.browse import human_size

        if row is None:
            row = self.table.current_row()
        text = ""
        if row is not None:
            kind = row.get("_kind")
            if kind in ("dir", "up"):
                text = f"{row.get('name', '')}  <folder>"
            elif kind == "entry":
                text = f"{row.get('name', '')}  {row.get('what', '')}"
            elif "relpath" in row:
                dims = f"{row.get('width')}×{row.get('height')}" if row.get("width") else ""
                text = f"{row.get('relpath', '')}  {human_size(row.get('size'))}  {dims}  {row.get('status') or ''}"
            elif "class" in row and "x1" in row:
                score = f"  {row['score']:.2f}" if row.get("score") is not None else ""
                box = (
                    f"({row['x1']:.0f},{row['y1']:.0f})–({row['x2']:.0f},{row['y2']:.0f})"
                    if row.get("x2") is not None
                    else ""
                )
                text = f"{row.get('_key') or ''}  {row.get('class') or ''}{score}  {box}"
            elif row.get("_key"):
                text = str(row.get("_key"))
        if self.selection is not None and len(self.selection):
            text = f"{len(self.selection):,} selected │ {text}"
        self.query_one(f"#status-{self.side}", Static).update(" " + text.strip(), layout=False)


def _row_style(row: dict[str, Any]) -> str | None:
    kind = row.get("_kind")
    if kind in ("dir", "up", "entry"):
        return "vtable--dir"
    status = row.get("status")
    if status not in (None, "ok"):
        return "vtable--bad"
    return None
