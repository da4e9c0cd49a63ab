"""Sorting, filtering and selecting by mask over whole columns, in a worker thread."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import InputError, UsageError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter
from tuiops.ops.browse.source import Source

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store


def _ordered_int(values: np.ndarray) -> np.ndarray:
    """An int64 key whose order is the order of ``values`` (ints or floats; NaN handled by caller)."""
    if values.dtype.kind == "f":
        b = values.astype(np.float64).view(np.int64)
        return b ^ ((b >> 63) & np.int64(0x7FFF_FFFF_FFFF_FFFF))
    return values.astype(np.int64, copy=False)


def sort_positions(values: pl.Series, descending: bool = False) -> np.ndarray:
    """Positions that sort ``values`` (stable: ties keep their order; nulls and NaN last).

    Numbers are sorted as one packed 64-bit key per row (the value's order key in the high
    bits, the row number in the low bits) with ``np.sort``: several times faster than an
    argsort on millions of rows. Keys too wide to pack are truncated and the rows whose
    truncated keys collide are re-ordered exactly. Strings are ranked by their sorted
    distinct values (or argsorted when nearly all are distinct).
    """
    import polars as pl

    n = len(values)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    s = values
    if s.dtype == pl.Boolean:
        s = s.cast(pl.Int8)
    if not s.dtype.is_numeric():
        s = s.cast(pl.String)
        uniq = s.drop_nulls().unique()
        if len(uniq) > max(1000, n // 4):
            ranked = (
                pl.DataFrame({"v": s})
                .with_row_index("i")
                .sort("v", descending=descending, nulls_last=True, maintain_order=True)
            )
            return ranked["i"].to_numpy().astype(np.int64)
        s = s.cast(pl.Enum(uniq.sort().to_list())).to_physical().cast(pl.Int64)
    bad = s.is_null()
    if s.dtype.is_float():
        bad = bad | s.is_nan().fill_null(True)
    bad_np = bad.to_numpy()
    if bad_np.any():
        good = np.flatnonzero(~bad_np)
        sub = sort_positions(s.filter(~bad), descending) if len(good) else np.empty(0, dtype=np.int64)
        return np.concatenate([good[sub], np.flatnonzero(bad_np)]).astype(np.int64)
    key = _ordered_int(s.to_numpy())
    kmin = int(key.min())
    k = key.view(np.uint64) - np.uint64(kmin & 0xFFFF_FFFF_FFFF_FFFF)
    kmax = int(k.max())
    if descending:
        k = np.uint64(kmax) - k
    idx_bits = max(1, (n - 1).bit_length())
    shift = max(0, kmax.bit_length() - (64 - idx_bits))
    trunc = k >> np.uint64(shift) if shift else k
    packed = (trunc << np.uint64(idx_bits)) | np.arange(n, dtype=np.uint64)
    packed.sort()
    pos = (packed & np.uint64((1 << idx_bits) - 1)).astype(np.int64)
    if shift:
        t = packed >> np.uint64(idx_bits)
        same = t[1:] == t[:-1]
        if same.any():
            m = np.zeros(n, dtype=bool)
            m[1:] |= same
            m[:-1] |= same
            where = np.flatnonzero(m)
            sub = pos[where]
            order = np.lexsort((sub, k[sub], t[where]))
            pos[where] = sub[order]
    return pos


def _compile_filter(source: Source, where: str) -> tuple[Any, list[str]]:
    import polars as pl

    text = where.strip()
    if text.lower().startswith("where "):
        text = text[6:]
    try:
        expr = pl.sql_expr(text)
        names = list(dict.fromkeys(expr.meta.root_names()))
    except Exception as exc:
        raise InputError(
            f"cannot read the filter {where!r}: {exc}",
            hint="write a SQL WHERE expression, e.g. size > 1e6 AND labels = 0",
        ) from exc
    unknown = [n for n in names if n not in source.fields]
    if unknown:
        raise InputError(
            f"the filter {where!r} names unknown field(s): {', '.join(unknown)}",
            hint=f"fields of {source.title}: {', '.join(source.fields)}",
        )
    return expr, names


def check_filter(source: Source, where: str) -> None:
    """Raise InputError when ``where`` is not a valid filter of ``source`` (no store access)."""
    _compile_filter(source, where)


@dataclass
class Order:
    """A sorted and/or filtered order: positions into the base ids, and what made it."""

    positions: np.ndarray | None
    sort: tuple[tuple[str, bool], ...] = ()
    where: str | None = None
    total: int = 0

    @property
    def count(self) -> int:
        return self.total if self.positions is None else len(self.positions)


def compute_order(
    source: Source,
    store: Store,
    base_ids: np.ndarray,
    *,
    sort: Sequence[tuple[str, bool]] = (),
    where: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Order:
    """Filter then sort the base rows of ``source``; columns are loaded (and cached) as needed."""
    import polars as pl

    rep = Reporter("order", progress, cancel, total=None)
    positions: np.ndarray | None = None
    if where and where.strip():
        expr, names = _compile_filter(source, where)
        rep.update(0, "loading " + ", ".join(names), force=True)
        frame = source.fields_for(store, names, base_ids)
        rep.check()
        try:
            mask = frame.select(expr.alias("m"))["m"]
        except Exception as exc:
            raise InputError(
                f"the filter {where!r} failed: {exc}", hint="write a boolean SQL WHERE expression"
            ) from exc
        if mask.dtype != pl.Boolean:
            raise InputError(
                f"the filter {where!r} is not a condition (it gives {mask.dtype} values)",
                hint="compare a field, e.g. labels = 0",
            )
        positions = np.flatnonzero(mask.fill_null(False).to_numpy())
    for field_name, descending in reversed(list(sort)):
        rep.check()
        if field_name == source.name_field:
            if positions is None:
                positions = np.arange(len(base_ids), dtype=np.int64)
            if descending:
                positions = positions[::-1].copy()
            continue
        rep.update(0, f"sorting by {field_name}", force=True)
        col = source.fields_for(store, [field_name], base_ids)[field_name]
        if positions is None:
            positions = sort_positions(col, descending)
        else:
            sub = col.gather(pl.Series(positions, dtype=pl.Int64))
            positions = positions[sort_positions(sub, descending)]
    return Order(positions, tuple(sort), where, len(base_ids))


def view_ids(base_ids: np.ndarray, order: Order | None) -> np.ndarray:
    """The ids of every row of the view (filtered and sorted), as one array."""
    if order is None or order.positions is None:
        return base_ids
    return base_ids[order.positions]


def mask_regex(mask: str) -> str:
    """A regular expression for FAR-style masks: ``*.jpg,*.png`` (case-insensitive; ``*`` any
    run of characters, ``?`` one character; ``*`` or ``*.*`` alone matches everything)."""
    parts = [p.strip() for p in mask.split(",") if p.strip()]
    if not parts:
        raise UsageError("an empty mask selects nothing", hint="use e.g. *.jpg or danbooru_*")
    if any(p in ("*", "*.*") for p in parts):
        return ALL_MASK

    def one(p: str) -> str:
        return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)

    return "(?is)^(?:" + "|".join(one(p) for p in parts) + ")$"


ALL_MASK = "(?s)^.*$"


def mask_expr(mask: str, column: str = "v") -> pl.Expr:
    """A polars condition for a FAR mask on an already lower-cased string column: ``*.png`` is
    an ends-with test, ``gel*`` a starts-with, ``*abc*`` a contains, a name without wildcards an
    equality; anything else a regular expression."""
    import polars as pl

    rx = mask_regex(mask)
    col = pl.col(column)
    if rx == ALL_MASK:
        return pl.lit(True)
    parts = [p.strip().lower() for p in mask.split(",") if p.strip()]
    out = None
    for p in parts:
        inner = p.strip("*")
        if "?" in p or "*" in inner:
            rx_one = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)
            e = col.str.contains(f"(?s)^(?:{rx_one})$")
        elif p.startswith("*") and p.endswith("*") and len(p) > 1:
            e = col.str.contains(inner, literal=True)
        elif p.startswith("*"):
            e = col.str.ends_with(inner)
        elif p.endswith("*"):
            e = col.str.starts_with(inner)
        else:
            e = col == inner
        out = e if out is None else (out | e)
    assert out is not None
    return out


def mask_ids(
    source: Source,
    store: Store,
    base_ids: np.ndarray,
    order: Order | None,
    mask: str,
    *,
    field_name: str | None = None,
) -> np.ndarray:
    """Ids of the view's rows whose name matches the FAR mask (sorted, unique)."""
    import polars as pl

    name = field_name or source.name_field or (source.columns[0].field if source.columns else None)
    if name is None:
        raise UsageError(f"{source.title} has no name column to match a mask against")
    expr = mask_expr(mask)
    ids = view_ids(base_ids, order)
    if mask_regex(mask) == ALL_MASK:
        return sorted_unique(ids)
    col = source.lowered(store, name, base_ids)
    if order is not None and order.positions is not None:
        col = col.gather(pl.Series(order.positions, dtype=pl.Int64))
    hit = pl.DataFrame({"v": col}).select(expr.fill_null(False).alias("hit"))["hit"]
    return sorted_unique(ids[hit.to_numpy()])


def sorted_unique(values: Sequence[int] | np.ndarray) -> np.ndarray:
    """The distinct values, sorted, as int64 (a sort and one pass: numpy's ``unique`` hashes,
    several times slower on millions of ids)."""
    arr = np.sort(np.asarray(values, dtype=np.int64))
    if len(arr) < 2:
        return arr
    keep = np.empty(len(arr), dtype=bool)
    keep[0] = True
    np.not_equal(arr[1:], arr[:-1], out=keep[1:])
    return arr[keep]


@dataclass(frozen=True)
class Selection:
    """Selected row ids of a panel: a sorted unique int64 array (cheap membership for a page)."""

    ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    def contains(self, ids: np.ndarray) -> np.ndarray:
        if len(self.ids) == 0 or len(ids) == 0:
            return np.zeros(len(ids), dtype=bool)
        pos = np.searchsorted(self.ids, ids)
        pos = np.minimum(pos, len(self.ids) - 1)
        return self.ids[pos] == ids

    def toggle(self, row_id: int) -> Selection:
        i = int(np.searchsorted(self.ids, row_id))
        if i < len(self.ids) and self.ids[i] == row_id:
            return Selection(np.delete(self.ids, i))
        return Selection(np.insert(self.ids, i, row_id))

    def union(self, ids: np.ndarray) -> Selection:
        ids = np.asarray(ids, dtype=np.int64)
        new = ids[~self.contains(ids)]
        if len(new) == 0:
            return self
        return Selection(sorted_unique(np.concatenate([self.ids, new])))

    def minus(self, ids: np.ndarray) -> Selection:
        if len(self.ids) == 0:
            return self
        drop = Selection(sorted_unique(ids))
        return Selection(self.ids[~drop.contains(self.ids)])

    def invert_within(self, ids: np.ndarray) -> Selection:
        """Select the rows of ``ids`` (unique) that are not selected, deselect those that are;
        selected rows outside ``ids`` stay selected."""
        ids = np.asarray(ids, dtype=np.int64)
        flipped = ids[~self.contains(ids)]
        if len(self.ids):
            view = Selection(np.sort(ids))
            flipped = np.concatenate([flipped, self.ids[~view.contains(self.ids)]])
        flipped.sort()
        return Selection(flipped)
