"""The source interface every panel reads through, and the frame helpers its implementations share."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tuiops.errors import UsageError
from tuiops.ops.browse.spec import ROW_ID, ROW_ITEM, ROW_KEY, ROW_KIND, ROW_ORDER, ROW_TARGET, Column, Spec

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store


_MAX_SQL_VARS = 900


@dataclass
class Opened:
    """What ``Source.open`` returns: fixed rows, the first page and (when cheap) the count."""

    fixed: pl.DataFrame
    head: pl.DataFrame
    count: int | None


class Source:
    """Base class of everything a panel can show."""

    kind: ClassVar[str] = ""
    #: True when every row is in memory after ``open`` (catalog, query, image).
    in_memory: ClassVar[bool] = False

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.columns: list[Column] = []
        self.fields: dict[str, str] = {}
        self.default_sort: list[tuple[str, bool]] = []
        self._lock = threading.Lock()
        self._ids_lock = threading.Lock()
        self._ids: np.ndarray | None = None
        self._cache: dict[str, pl.Series] = {}
        self._cache_ids: np.ndarray | None = None
        self._loading: dict[str, threading.Event] = {}

    # -- what subclasses provide ------------------------------------------------------------
    @property
    def title(self) -> str:
        return str(self.spec)

    def open(self, store: Store, n: int) -> Opened:
        raise NotImplementedError

    def count(self, store: Store) -> int:
        raise NotImplementedError

    def ids_page(
        self,
        store: Store,
        limit: int,
        *,
        offset: int = 0,
        after: Any = None,
        before: Any = None,
        from_end: bool = False,
    ) -> np.ndarray:
        """Ids of ``limit`` rows in base order: from ``offset`` (from the end with
        ``from_end``), or right after / right before the row whose order key is given."""
        raise NotImplementedError

    def load_ids(self, store: Store) -> np.ndarray:
        raise NotImplementedError

    def _load_fields(self, store: Store, names: list[str], ids: np.ndarray) -> dict[str, pl.Series]:
        raise NotImplementedError

    def fetch(self, store: Store, ids: np.ndarray) -> pl.DataFrame:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def base_ids(self, store: Store) -> np.ndarray:
        """Every row id in base order, loaded once (threads asking meanwhile wait for it)."""
        with self._ids_lock:
            if self._ids is None:
                self._ids = self.load_ids(store)
            return self._ids

    @property
    def ids_loaded(self) -> bool:
        return self._ids is not None

    def fields_for(self, store: Store, names: Sequence[str], ids: np.ndarray) -> pl.DataFrame:
        """The named fields of every base row (aligned with ``ids``), loaded once and cached.

        Fields load outside the cache's lock, each by the first thread that asks for it: a
        thread wanting a field another thread is loading waits for that load only, so a sort
        on one column never waits behind the background load of another.
        """
        import polars as pl

        unknown = [n for n in names if n not in self.fields]
        if unknown:
            raise UsageError(
                f"unknown field(s) {', '.join(unknown)} for {self.title}",
                hint=f"fields: {', '.join(self.fields)}",
            )
        wanted = list(dict.fromkeys(names))
        while True:
            with self._lock:
                if self._cache_ids is not ids:
                    self._cache, self._loading = {}, {}
                    self._cache_ids = ids
                missing = [n for n in wanted if n not in self._cache]
                if not missing:
                    return pl.DataFrame([self._cache[n] for n in wanted])
                waits = {id(e): e for n in missing if (e := self._loading.get(n)) is not None}
                mine = [
                    m
                    for n in missing
                    if n not in self._loading
                    for m in self.load_unit(n)
                    if m not in self._cache and m not in self._loading
                ]
                mine = list(dict.fromkeys(mine))
                done = threading.Event()
                for n in mine:
                    self._loading[n] = done
            if not mine:
                for e in waits.values():
                    e.wait()
                continue
            try:
                loaded = self._load_fields(store, mine, ids)
                for n, s in loaded.items():
                    if len(s) != len(ids):
                        raise AssertionError(f"field {n} has {len(s)} values for {len(ids)} rows")
                with self._lock:
                    if self._cache_ids is ids:
                        for n, s in loaded.items():
                            self._cache[n] = s.alias(n)
            finally:
                with self._lock:
                    for n in mine:
                        if self._loading.get(n) is done:
                            del self._loading[n]
                done.set()

    def load_unit(self, name: str) -> list[str]:
        """The fields loaded together with ``name`` (one read gives them all)."""
        return [name]

    def lowered(self, store: Store, name: str, ids: np.ndarray) -> pl.Series:
        """Field ``name`` as lower-case strings (for masks), computed once."""
        key = lowered_key(name)
        col = self.fields_for(store, [name], ids)[name]
        with self._lock:
            cached = self._cache.get(key)
        if cached is None or len(cached) != len(col):
            cached = lower_case(col)
            with self._lock:
                if self._cache_ids is ids:
                    self._cache[key] = cached
        return cached

    def cached_fields(self) -> list[str]:
        with self._lock:
            return list(self._cache)

    def cached_columns(self, names: Sequence[str], ids: np.ndarray) -> dict[str, pl.Series] | None:
        """The named fields of the base rows ``ids`` when every one is loaded already (never loads)."""
        with self._lock:
            if self._cache_ids is not ids or any(n not in self._cache for n in names):
                return None
            return {n: self._cache[n] for n in names}

    def page_from_cache(self, ids: np.ndarray, positions: np.ndarray) -> pl.DataFrame | None:
        """The display rows of the base rows at ``positions`` of ``ids``, made from loaded columns
        without reading the store; None when they are not all loaded (then :meth:`fetch`)."""
        return None

    def preload_fields(self) -> list[str]:
        """Fields worth loading in the background right after the ids (cheap, often sorted on)."""
        return [
            c.field for c in self.columns if c.field and c.field in self.fields and c.field != self.name_field
        ]

    #: The field whose ascending order is the base order (sorting on it needs no load).
    name_field: ClassVar[str | None] = None


def lowered_key(name: str) -> str:
    """The cache entry of field ``name`` in lower case (see :meth:`Source.lowered`); a source's
    ``_load_fields`` may return it beside the field to have it ready for masks."""
    return f"\x00lower:{name}"


def lower_case(col: pl.Series) -> pl.Series:
    """``col`` as lower-case strings named ``v``: the column itself when it is plain ASCII without
    an upper-case letter (no copy), else computed as a frame operation, which lets other
    threads run meanwhile."""
    import polars as pl

    frame = pl.DataFrame({"v": col}).select(pl.col("v").cast(pl.String))
    if not frame.select(pl.col("v").str.contains(r"[A-Z]|[^\x00-\x7F]").any())["v"][0]:
        return frame["v"]
    return frame.select(pl.col("v").str.to_lowercase())["v"]


def empty_display(extra: Mapping[str, Any]) -> pl.DataFrame:
    import polars as pl

    schema = {
        ROW_ID: pl.Int64,
        ROW_KIND: pl.String,
        ROW_KEY: pl.String,
        ROW_ITEM: pl.Int64,
        ROW_ORDER: pl.String,
        ROW_TARGET: pl.String,
        **extra,
    }
    return pl.DataFrame(schema=schema)


def no_fixed() -> pl.DataFrame:
    return empty_display({})


def in_chunks(ids: np.ndarray, size: int = _MAX_SQL_VARS) -> list[list[int]]:
    return [ids[i : i + size].tolist() for i in range(0, len(ids), size)]


def order_by_ids(frame: pl.DataFrame, ids: np.ndarray) -> pl.DataFrame:
    """``frame`` (with ``_id``) in the order of ``ids`` (ids missing from it are dropped)."""
    import polars as pl

    want = pl.DataFrame({ROW_ID: pl.Series(ids, dtype=pl.Int64)})
    return want.join(frame, on=ROW_ID, how="inner", maintain_order="left")


def align(ids: np.ndarray, loaded: pl.DataFrame, id_col: str, names: Sequence[str]) -> dict[str, pl.Series]:
    """Columns of ``loaded`` re-ordered to follow ``ids`` (missing ids give nulls)."""
    import polars as pl

    base = pl.DataFrame({id_col: pl.Series(ids, dtype=pl.Int64)})
    joined = base.join(
        loaded.with_columns(pl.col(id_col).cast(pl.Int64)), on=id_col, how="left", maintain_order="left"
    )
    return {n: joined[n] for n in names}
