"""One panel's paging state: the base ids, the sorted and filtered order and a window of fetched rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tuiops.ops.browse.order import Order, view_ids
from tuiops.ops.browse.source import Opened, Source
from tuiops.ops.browse.spec import ROW_ID, ROW_ORDER

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store


#: Rows fetched around the visible ones, so that cursor moves rarely touch the store.
WINDOW_MIN = 120


class Pager:
    """One panel's rows: fixed rows first, then the source's rows in view order.

    Owned by the UI thread; workers compute base ids and orders and hand them over
    (:meth:`set_base`, :meth:`set_order`). :meth:`rows` is cheap: an indexed query of a
    window of rows around the requested ones, or a slice of the cached window.
    """

    def __init__(self, source: Source, opened: Opened, window: int = WINDOW_MIN) -> None:
        self.source = source
        self.fixed = opened.fixed
        self.total: int | None = opened.count
        self.base_ids: np.ndarray | None = None
        self.order: Order | None = None
        self.window = max(window, 1)
        self.generation = 0
        self._win_start = 0
        self._win: pl.DataFrame = opened.head
        if source.in_memory:
            self.base_ids = np.arange(opened.count or 0, dtype=np.int64)

    @property
    def n_fixed(self) -> int:
        return self.fixed.height

    @property
    def count(self) -> int | None:
        """Rows after the fixed ones (in the view); None while not counted."""
        if self.order is not None:
            return self.order.count
        return self.total

    @property
    def row_count(self) -> int:
        """Rows to show now (fixed + counted, or what is known so far)."""
        if self.count is not None:
            return self.n_fixed + self.count
        return self.n_fixed + self._win_start + self._win.height

    def set_total(self, total: int) -> None:
        self.total = total

    def set_base(self, ids: np.ndarray) -> None:
        self.base_ids = ids
        self.total = len(ids)

    def set_order(self, order: Order | None) -> None:
        self.order = order
        self.generation += 1
        self._win_start = 0
        self._win = self._win.head(0)

    def set_fixed(self, fixed: pl.DataFrame) -> None:
        self.fixed = fixed
        self.generation += 1

    def invalidate(self) -> None:
        self.generation += 1
        self._win_start = 0
        self._win = self._win.head(0)

    def view_ids(self) -> np.ndarray | None:
        if self.base_ids is None:
            return None
        return view_ids(self.base_ids, self.order)

    def rows(self, store: Store, start: int, n: int) -> pl.DataFrame:
        """Display rows ``start`` … ``start + n`` (fewer at the end), fixed rows first."""
        import polars as pl

        parts = []
        if start < self.n_fixed:
            parts.append(self.fixed.slice(start, n))
        lo = max(0, start - self.n_fixed)
        want = start + n - self.n_fixed - lo
        if want > 0:
            page = self._paged(store, lo, want)
            if page.height:
                parts.append(page)
        if not parts:
            return self.fixed.head(0)
        if len(parts) == 1:
            return parts[0]
        return pl.concat(parts, how="diagonal_relaxed")

    def _paged(self, store: Store, start: int, n: int) -> pl.DataFrame:
        count = self.count
        if count is not None:
            n = max(0, min(n, count - start))
        if n <= 0:
            return self._win.head(0)
        ws, we = self._win_start, self._win_start + self._win.height
        if ws <= start and start + n <= we:
            return self._win.slice(start - ws, n)
        size = max(self.window, n + n // 2)
        new_start = max(0, start - size // 3)
        if count is not None:
            new_start = max(0, min(new_start, count - size))
        frame = self._cached(new_start, size)
        if frame is None:
            frame = self.source.fetch(store, self._ids_for(store, new_start, size, ws, we))
        self._win_start, self._win = new_start, frame
        return frame.slice(start - new_start, n)

    def _cached(self, start: int, size: int) -> pl.DataFrame | None:
        """The view rows ``start`` … ``start + size`` made from the source's loaded columns (no
        store read), or None when the base ids or those columns are not loaded yet."""
        if self.base_ids is None or self.source.in_memory:
            return None
        order_pos = self.order.positions if self.order is not None else None
        if order_pos is not None:
            positions = order_pos[start : start + size]
        else:
            positions = np.arange(start, min(start + size, len(self.base_ids)), dtype=np.int64)
        return self.source.page_from_cache(self.base_ids, positions)

    def _ids_for(self, store: Store, start: int, size: int, ws: int, we: int) -> np.ndarray:
        order_pos = self.order.positions if self.order is not None else None
        if self.base_ids is not None:
            if order_pos is not None:
                return self.base_ids[order_pos[start : start + size]]
            return self.base_ids[start : start + size]
        src = self.source
        win = self._win
        if win.height and ROW_ORDER in win.columns:
            win_ids = win[ROW_ID].to_numpy()
            if ws <= start <= we + 4 * size:
                keep = win_ids[start - ws :] if start < we else win_ids[:0]
                gap = max(0, start - we)
                need = size - len(keep)
                more = (
                    src.ids_page(store, gap + need, after=win[ROW_ORDER][-1])[gap:] if need > 0 else keep[:0]
                )
                return np.concatenate([keep[:size], more]).astype(np.int64)
            if start < ws <= start + 4 * size:
                before = src.ids_page(store, ws - start, before=win[ROW_ORDER][0])
                return np.concatenate([before, win_ids])[:size].astype(np.int64)
        count = self.count
        if count is not None and start > count // 2:
            from_end = max(0, count - (start + size))
            return src.ids_page(store, size, offset=from_end, from_end=True)
        return src.ids_page(store, size, offset=start)
