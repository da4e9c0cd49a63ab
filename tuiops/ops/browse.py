"""Browsing the store: what the terminal app's panels show, read a page at a time.

A panel shows one *source*: the workspace catalog (pools, label sets, runs, matches), a
pool folder (subfolders, then the files directly in it, with size, dimensions, label and
detection counts and the match score of each image), the boxes of a label set or a
detection run, the per-image results of a match, the result of any read-only SQL query,
or every box of one image (the panel that follows the other one's cursor).

Nothing here holds a Python structure per row. A source answers four kinds of requests:

- ``open``: the small fixed rows (``..`` and subfolders) and the first page, from an index
  (a millisecond on a 4M-file pool);
- ``ids_page``: the row ids of a page in the source's base order, by keyset (after or
  before a known row) or by offset, from the store's indexes;
- ``load_ids`` / ``load_fields``: whole columns (ids in base order, sizes, counts …) as
  numpy arrays and polars Series, for sorting, filtering and selecting by mask;
- ``fetch``: the display rows of a list of ids (a page: one indexed query).

:class:`Pager` keeps one panel's state (base ids once loaded, the sorted and filtered
order, a window of fetched rows) and turns a row range into a page with the cheapest of
those requests. :func:`compute_order` sorts and filters whole columns with numpy/polars
(packed-key ``np.sort``: about 0.25 s for 4M rows here) and runs in a worker thread;
its result is installed by the UI thread.

Filters are SQL ``WHERE`` expressions (``size > 1e6 AND labels = 0``) over the fields of
the source (:attr:`Source.fields`, listed by :func:`describe_fields`), evaluated by polars
over the loaded columns, so filtering 4M rows does not scan the store again.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tuiops.errors import (
    ConflictError,
    DiskError,
    ExternalToolError,
    InputError,
    NotFoundError,
    UsageError,
)
from tuiops.frames import num_max
from tuiops.ops.base import CancelToken, ProgressFn, Reporter
from tuiops.store.db import ITEM_SHIFT, OWNER_SHIFT, id_range
from tuiops.store.schema import FOLDER_SQL, LISTED_SQL

if TYPE_CHECKING:
    import polars as pl
    from PIL import Image

    from tuiops.ops.usersql import Limits
    from tuiops.store import Store
    from tuiops.workspace import Workspace

#: Columns every display frame has besides its display columns.
ROW_ID = "_id"
ROW_KIND = "_kind"
ROW_KEY = "_key"
ROW_ITEM = "_item"
ROW_ORDER = "_order"
ROW_TARGET = "_target"

#: Row kinds: the parent folder, a subfolder, a file, a catalog entry, a table row.
KIND_UP = "up"
KIND_DIR = "dir"
KIND_FILE = "file"
KIND_ENTRY = "entry"
KIND_ROW = "row"

#: Rows fetched around the visible ones, so that cursor moves rarely touch the store.
WINDOW_MIN = 120

_MAX_SQL_VARS = 900
_LABEL_COLOR = (60, 230, 90)
_DET_COLOR = (255, 70, 200)


# ------------------------------------------------------------------------------------------
# specs, columns, context
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One display column: ``name`` in the display frame, ``field`` to sort by (None: not sortable)."""

    name: str
    title: str
    kind: str = "text"
    width: int | None = 8
    field: str | None = None


@dataclass(frozen=True)
class Spec:
    """What a panel shows: ``kind`` and the name of the thing (and a pool's folder)."""

    kind: str
    name: str = ""
    folder: str = ""

    KINDS: ClassVar[tuple[str, ...]] = (
        "catalog",
        "pool",
        "labels",
        "run",
        "match",
        "selection",
        "query",
        "image",
    )

    @classmethod
    def parse(cls, text: str) -> Spec:
        """Parse ``catalog``, ``pool:NAME[/FOLDER]``, ``labels:SET``, ``run:RUN``, ``match:NAME``,
        ``selection:NAME``, ``query:SQL`` or ``image:KEY``."""
        text = text.strip()
        kind, _, rest = text.partition(":")
        kind = kind.strip().lower()
        if kind not in cls.KINDS:
            raise UsageError(
                f"unknown panel source {text!r}",
                hint="use catalog, pool:NAME[/FOLDER], labels:SET, run:RUN, match:NAME, selection:NAME, "
                "query:SQL or image:KEY",
            )
        if kind == "catalog":
            return cls("catalog")
        if not rest.strip():
            raise UsageError(f"panel source {text!r} needs a name after '{kind}:'")
        if kind == "pool":
            name, _, folder = rest.strip().partition("/")
            return cls("pool", name, normalise_folder(folder))
        return cls(kind, rest.strip() if kind != "query" else rest)

    def __str__(self) -> str:
        if self.kind == "catalog":
            return "catalog"
        if self.kind == "pool":
            return f"pool:{self.name}" + (f"/{self.folder.rstrip('/')}" if self.folder else "")
        return f"{self.kind}:{self.name}"


def normalise_folder(folder: str) -> str:
    """A pool folder as stored in the folder index: ``""`` or ``"a/b/"``."""
    parts = [p for p in folder.replace("\\", "/").split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        raise UsageError(f"folder {folder!r} leaves the pool", hint="use a folder inside the pool")
    return "".join(f"{p}/" for p in parts)


@dataclass(frozen=True)
class Context:
    """Which label set, run and match a pool view counts and scores against."""

    label_set: str | None = None
    run: str | None = None
    match: str | None = None


def table_exists(store: Store, name: str) -> bool:
    return bool(
        store.one("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (name,))
    )


def first_pool(store: Store) -> str | None:
    """The name of the first pool (by name), or None in a workspace without pools."""
    name = store.one("SELECT name FROM pools ORDER BY name LIMIT 1")
    return None if name is None else str(name)


def default_context(store: Store) -> Context:
    """The first label set and run by name, and the newest match of that pair (if any)."""
    label_set = store.one("SELECT name FROM label_sets ORDER BY name LIMIT 1")
    run = store.one("SELECT name FROM runs ORDER BY name LIMIT 1")
    match = None
    if label_set and run and table_exists(store, "matches"):
        with contextlib.suppress(Exception):
            match = store.one(
                "SELECT m.name FROM matches m JOIN label_sets s ON s.id = m.set_id JOIN runs r ON r.id = m.run_id "
                "WHERE s.name = ? AND r.name = ? ORDER BY m.id DESC LIMIT 1",
                (label_set, run),
            )
    return Context(label_set, run, match)


@dataclass(frozen=True)
class _Owner:
    """A resolved label set or run: its id and the id range of its boxes."""

    name: str
    id: int

    @property
    def lo(self) -> int:
        return id_range(self.id)[0]

    @property
    def hi(self) -> int:
        return id_range(self.id)[1]


def _resolve_context(store: Store, ctx: Context) -> tuple[_Owner | None, _Owner | None, int | None]:
    lab = _Owner(ctx.label_set, store.label_set_id(ctx.label_set)) if ctx.label_set else None
    run = _Owner(ctx.run, store.run_id(ctx.run)) if ctx.run else None
    mid = None
    if ctx.match and table_exists(store, "matches") and table_exists(store, "match_images"):
        mid = store.one("SELECT id FROM matches WHERE name = ?", (ctx.match,))
        if mid is None:
            raise NotFoundError(f"no match named {ctx.match!r}", hint="run `tuiops match` first")
    return lab, run, mid


# ------------------------------------------------------------------------------------------
# sources
# ------------------------------------------------------------------------------------------
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
        """The named fields of every base row (aligned with ``ids``), loaded once and cached."""
        import polars as pl

        unknown = [n for n in names if n not in self.fields]
        if unknown:
            raise UsageError(
                f"unknown field(s) {', '.join(unknown)} for {self.title}",
                hint=f"fields: {', '.join(self.fields)}",
            )
        with self._lock:
            if self._cache_ids is not ids:
                self._cache = {}
                self._cache_ids = ids
            missing = [n for n in dict.fromkeys(names) if n not in self._cache]
            if missing:
                loaded = self._load_fields(store, missing, ids)
                for n, s in loaded.items():
                    if len(s) != len(ids):
                        raise AssertionError(f"field {n} has {len(s)} values for {len(ids)} rows")
                    self._cache[n] = s.alias(n)
            return pl.DataFrame([self._cache[n] for n in dict.fromkeys(names)])

    def lowered(self, store: Store, name: str, ids: np.ndarray) -> pl.Series:
        """Field ``name`` as lower-case strings (for masks), computed once."""
        import polars as pl

        key = f"\x00lower:{name}"
        col = self.fields_for(store, [name], ids)[name]
        with self._lock:
            cached = self._cache.get(key)
            if cached is None or len(cached) != len(col):
                cached = col.cast(pl.String).str.to_lowercase().alias("v")
                self._cache[key] = cached
            return cached

    def cached_fields(self) -> list[str]:
        with self._lock:
            return list(self._cache)

    def preload_fields(self) -> list[str]:
        """Fields worth loading in the background right after the ids (cheap, often sorted on)."""
        return [
            c.field for c in self.columns if c.field and c.field in self.fields and c.field != self.name_field
        ]

    #: The field whose ascending order is the base order (sorting on it needs no load).
    name_field: ClassVar[str | None] = None


def _empty_display(extra: Mapping[str, Any]) -> pl.DataFrame:
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


def _no_fixed() -> pl.DataFrame:
    return _empty_display({})


def _in_chunks(ids: np.ndarray, size: int = _MAX_SQL_VARS) -> list[list[int]]:
    return [ids[i : i + size].tolist() for i in range(0, len(ids), size)]


def _order_by_ids(frame: pl.DataFrame, ids: np.ndarray) -> pl.DataFrame:
    """``frame`` (with ``_id``) in the order of ``ids`` (ids missing from it are dropped)."""
    import polars as pl

    want = pl.DataFrame({ROW_ID: pl.Series(ids, dtype=pl.Int64)})
    return want.join(frame, on=ROW_ID, how="inner", maintain_order="left")


def _align(ids: np.ndarray, loaded: pl.DataFrame, id_col: str, names: Sequence[str]) -> dict[str, pl.Series]:
    """Columns of ``loaded`` re-ordered to follow ``ids`` (missing ids give nulls)."""
    import polars as pl

    base = pl.DataFrame({id_col: pl.Series(ids, dtype=pl.Int64)})
    joined = base.join(
        loaded.with_columns(pl.col(id_col).cast(pl.Int64)), on=id_col, how="left", maintain_order="left"
    )
    return {n: joined[n] for n in names}


class PoolSource(Source):
    """One folder of a pool: ``..``, its subfolders, then the files directly in it.

    Fields (for filters and sorting): name, relpath, ext, key, booru, fid, size, width,
    height, pixels (width × height), format, mode, status, mtime (ns), phash, keyed,
    item_id, labels and dets (boxes of the context's set and run on the image), and,
    when the context names a match, f1, cost, tp, fp, fn of the image.
    """

    kind = "pool"
    name_field = "name"

    _FILE_FIELDS: ClassVar[dict[str, str]] = {
        "relpath": "path inside the pool",
        "size": "file size in bytes",
        "width": "image width in pixels",
        "height": "image height in pixels",
        "format": "image format (JPEG, PNG, WEBP, …)",
        "mode": "pixel mode (RGB, L, RGBA, …)",
        "status": "ok, missing, or why the file is bad",
        "mtime": "modification time, ns since the epoch",
        "phash": "64-bit perceptual hash",
        "keyed": "1 when the file name has an image key",
        "item_id": "the image's item id",
    }
    _MATCH_FIELDS: ClassVar[tuple[str, ...]] = ("f1", "cost", "tp", "fp", "fn")

    def __init__(self, spec: Spec, store: Store, ctx: Context) -> None:
        super().__init__(spec)
        self.ctx = ctx
        self.pool_id = store.pool_id(spec.name)
        self.root = Path(store.one("SELECT root FROM pools WHERE id = ?", (self.pool_id,)))
        self.folder = spec.folder
        self.lab, self.run, self.match_id = _resolve_context(store, ctx)
        self.columns = [
            Column("name", "Name", "name", None, "name"),
            Column("size", "Size", "size", 7, "size"),
            Column("dims", "Dims", "dims", 9, "pixels"),
            Column("labels", "Lbl", "count", 4, "labels"),
            Column("dets", "Det", "count", 4, "dets"),
        ]
        if self.match_id is not None:
            self.columns.append(Column("f1", "F1", "score", 4, "f1"))
        self.fields = {
            "name": "file name inside the folder",
            "ext": "file name extension, lower case, without the dot",
            "key": "image key (booru_fid)",
            "booru": "booru part of the key",
            "fid": "file id part of the key",
            **self._FILE_FIELDS,
            "pixels": "width × height",
            "labels": f"boxes of label set {ctx.label_set or '(none)'} on the image",
            "dets": f"boxes of run {ctx.run or '(none)'} on the image",
        }
        if self.match_id is not None:
            self.fields.update(
                {
                    "f1": "F1 of the image in the match",
                    "cost": "summed cost of the image in the match",
                    "tp": "true positives",
                    "fp": "false positives",
                    "fn": "false negatives",
                }
            )

    @property
    def title(self) -> str:
        return f"{self.spec.name}:/{self.folder}"

    def path_of(self, relpath: str) -> Path:
        return self.root / relpath

    # -- SQL pieces ----------------------------------------------------------------------------
    def _base_where(self) -> tuple[str, list[Any]]:
        return f"pool_id = ? AND {FOLDER_SQL} = ? AND {LISTED_SQL}", [self.pool_id, self.folder]

    def subfolders(self, store: Store) -> list[str]:
        """Names of the subfolders of this folder that hold indexed files (one index probe each)."""
        out: list[str] = []
        lo = self.folder
        hi = self.folder[:-1] + "0" if self.folder else None
        cur = lo
        while True:
            sql = (
                f"SELECT min({FOLDER_SQL}) FROM files WHERE pool_id = ? AND {FOLDER_SQL} > ? AND {LISTED_SQL}"
            )
            params: list[Any] = [self.pool_id, cur]
            if hi is not None:
                sql += f" AND {FOLDER_SQL} < ?"
                params.append(hi)
            found = store.one(sql, params)
            if found is None or not str(found).startswith(self.folder):
                break
            name = str(found)[len(self.folder) :].split("/", 1)[0]
            if name:
                out.append(name)
            cur = self.folder + name + "/\U0010ffff"
        return out

    def disk_subfolders(self) -> list[str]:
        """Subfolders that exist on disk in this folder (also empty ones); [] when unreadable."""
        here = self.root / self.folder
        out = []
        try:
            with os.scandir(here) as it:
                for entry in it:
                    with contextlib.suppress(OSError):
                        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                            out.append(entry.name)
        except OSError:
            return []
        return sorted(out)

    def fixed_rows(self, names: Sequence[str]) -> pl.DataFrame:
        import polars as pl

        rows: dict[str, list[Any]] = {
            ROW_ID: [],
            ROW_KIND: [],
            ROW_KEY: [],
            ROW_ITEM: [],
            ROW_ORDER: [],
            ROW_TARGET: [],
            "name": [],
        }

        def add(i: int, kind: str, name: str, target: str) -> None:
            rows[ROW_ID].append(-1 - i)
            rows[ROW_KIND].append(kind)
            rows[ROW_KEY].append(None)
            rows[ROW_ITEM].append(None)
            rows[ROW_ORDER].append(name)
            rows[ROW_TARGET].append(target)
            rows["name"].append(name)

        parent = "/".join(self.folder.rstrip("/").split("/")[:-1])
        add(0, KIND_UP, "..", f"pool:{self.spec.name}/{parent}" if self.folder else "catalog")
        for i, n in enumerate(sorted(set(names)), start=1):
            add(i, KIND_DIR, n, f"pool:{self.spec.name}/{self.folder}{n}")
        return pl.DataFrame(
            rows,
            schema={
                ROW_ID: pl.Int64,
                ROW_KIND: pl.String,
                ROW_KEY: pl.String,
                ROW_ITEM: pl.Int64,
                ROW_ORDER: pl.String,
                ROW_TARGET: pl.String,
                "name": pl.String,
            },
        )

    # -- requests ----------------------------------------------------------------------------
    def open(self, store: Store, n: int) -> Opened:
        fixed = self.fixed_rows(self.subfolders(store))
        head = self.fetch(store, self.ids_page(store, n))
        count = head.height if head.height < n else None
        return Opened(fixed, head, count)

    def count(self, store: Store) -> int:
        where, params = self._base_where()
        return int(store.one(f"SELECT count(*) FROM files WHERE {where}", params) or 0)

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
        where, params = self._base_where()
        desc = from_end or before is not None
        if after is not None:
            where += " AND relpath > ?"
            params.append(after)
        if before is not None:
            where += " AND relpath < ?"
            params.append(before)
        sql = (
            f"SELECT id FROM files WHERE {where} ORDER BY relpath {'DESC' if desc else 'ASC'} "
            f"LIMIT {int(limit)} OFFSET {int(offset)}"
        )
        ids = np.fromiter((r[0] for r in store.execute(sql, params)), dtype=np.int64)
        return ids[::-1].copy() if desc else ids

    def load_ids(self, store: Store) -> np.ndarray:
        import polars as pl

        where, params = self._base_where()
        frame = store.read_frame(
            f"SELECT id FROM files WHERE {where} ORDER BY relpath", params, {"id": pl.Int64}
        )
        return frame["id"].to_numpy().astype(np.int64, copy=False)

    #: Columns of ``files`` loaded together (one scan of the files' rowid range per group).
    _GROUPS: ClassVar[tuple[dict[str, str], ...]] = (
        {"item_id": "item_id", "size": "size", "width": "width", "height": "height"},
        {"mtime": "mtime_ns", "phash": "phash", "keyed": "keyed"},
        {"format": "format", "mode": "mode", "status": "status"},
    )

    def _load_by_rowid(
        self, store: Store, ids: np.ndarray, cols: str, names: list[str]
    ) -> dict[str, pl.Series]:
        import polars as pl

        if len(ids) == 0:
            return {n: pl.Series(n, [], dtype=pl.Int64) for n in names}
        lo, hi = int(ids.min()), int(ids.max())
        frame = store.read_frame(
            f"SELECT id, {cols} FROM files WHERE id BETWEEN ? AND ? AND +pool_id = ? ORDER BY id",
            (lo, hi, self.pool_id),
        )
        got = frame["id"].cast(pl.Int64).to_numpy()
        pos = np.searchsorted(got, ids)
        pos_c = np.minimum(pos, max(0, len(got) - 1))
        found = (got[pos_c] == ids) if len(got) else np.zeros(len(ids), dtype=bool)
        take = pl.Series(np.where(found, pos_c, 0), dtype=pl.Int64)
        out = {}
        for n in names:
            col = frame[n].gather(take) if len(got) else pl.Series(n, [None] * len(ids))
            if not found.all():
                col = pl.select(pl.when(pl.Series(found)).then(col).otherwise(None)).to_series()
            out[n] = col.alias(n)
        return out

    def _load_names(self, store: Store, ids: np.ndarray) -> pl.Series:
        """Relpaths in base order, from the covering folder index (checked against ``ids``)."""
        import polars as pl

        where, params = self._base_where()
        frame = store.read_frame(
            f"SELECT id, relpath FROM files WHERE {where} ORDER BY relpath",
            params,
            {"id": pl.Int64, "relpath": pl.String},
        )
        if frame.height == len(ids) and np.array_equal(frame["id"].to_numpy(), ids):
            return frame["relpath"]
        return _align(ids, frame, "id", ["relpath"])["relpath"]

    def _load_fields(self, store: Store, names: list[str], ids: np.ndarray) -> dict[str, pl.Series]:
        import polars as pl

        want = set(names)
        out: dict[str, pl.Series] = {}
        have = dict(self._cache)

        def need(name: str) -> pl.Series:
            if name in have:
                return have[name]
            group = next((g for g in self._GROUPS if name in g), None)
            if group is not None:
                cols = ", ".join(f"{c} AS {n}" for n, c in group.items())
                loaded = self._load_by_rowid(store, ids, cols, list(group))
            elif name == "relpath":
                loaded = {"relpath": self._load_names(store, ids)}
            else:
                raise AssertionError(name)
            have.update(loaded)
            out.update(loaded)
            return have[name]

        for n in names:
            if n == "relpath" or any(n in g for g in self._GROUPS):
                need(n)
        if "name" in want:
            out["name"] = need("relpath").str.slice(len(self.folder)).alias("name")
        if "ext" in want:
            out["ext"] = (
                need("relpath").str.extract(r"\.([^./]+)$", 1).str.to_lowercase().fill_null("").alias("ext")
            )
        if "pixels" in want:
            out["pixels"] = (need("width").cast(pl.Int64) * need("height").cast(pl.Int64)).alias("pixels")
        if want & {"key", "booru", "fid"}:
            items = need("item_id")
            where, params = self._base_where()
            keys = store.read_frame(
                "SELECT i.id AS item_id, i.key, i.booru, i.fid FROM items i "
                "WHERE i.id IN (SELECT item_id FROM files WHERE " + where + ")",
                params,
                {"item_id": pl.Int64, "key": pl.String, "booru": pl.String, "fid": pl.Int64},
            )
            aligned = _align(items.fill_null(-1).to_numpy(), keys, "item_id", ["key", "booru", "fid"])
            out.update(aligned)
        for name, owner, table in (("labels", self.lab, "labels"), ("dets", self.run, "detections")):
            if name not in want:
                continue
            if owner is None:
                out[name] = pl.Series(name, np.zeros(len(ids), dtype=np.int64))
                continue
            out[name] = _box_counts(store, table, owner, need("item_id")).alias(name)
        match_want = [n for n in self._MATCH_FIELDS if n in want]
        if match_want:
            items = need("item_id")
            frame = store.read_frame(
                f"SELECT item_id, {', '.join(match_want)} FROM match_images WHERE match_id = ?",
                (self.match_id,),
            )
            out.update(_align(items.fill_null(-1).to_numpy(), frame, "item_id", match_want))
        return out

    def fetch(self, store: Store, ids: np.ndarray) -> pl.DataFrame:
        import polars as pl

        schema = {
            "name": pl.String,
            "relpath": pl.String,
            "size": pl.Int64,
            "width": pl.Int64,
            "height": pl.Int64,
            "format": pl.String,
            "status": pl.String,
            "labels": pl.Int64,
            "dets": pl.Int64,
            "f1": pl.Float64,
        }
        if len(ids) == 0:
            return _empty_display(schema)
        counts = []
        params_head: list[Any] = []
        for owner, table, alias in ((self.lab, "labels", "labels"), (self.run, "detections", "dets")):
            if owner is None:
                counts.append(f"0 AS {alias}")
                continue
            counts.append(
                f"(SELECT count(*) FROM {table} b WHERE b.id BETWEEN ? + f.item_id * {1 << ITEM_SHIFT} "
                f"AND ? + f.item_id * {1 << ITEM_SHIFT} + {(1 << ITEM_SHIFT) - 1}) AS {alias}"
            )
            params_head += [owner.lo, owner.lo]
        match_join = ""
        match_col = "NULL AS f1"
        if self.match_id is not None:
            match_join = "LEFT JOIN match_images m ON m.match_id = ? AND m.item_id = f.item_id"
            match_col = "m.f1 AS f1"
            params_head.append(self.match_id)
        frames = []
        for chunk in _in_chunks(ids):
            sql = (
                f"SELECT f.id AS {ROW_ID}, f.relpath AS {ROW_ORDER}, i.key AS {ROW_KEY}, f.item_id AS {ROW_ITEM}, "
                f"f.relpath, f.size, f.width, f.height, f.format, f.status, {', '.join(counts)}, {match_col} "
                f"FROM files f LEFT JOIN items i ON i.id = f.item_id {match_join} "
                f"WHERE f.id IN ({', '.join('?' * len(chunk))})"
            )
            rows = store.execute(sql, [*params_head, *chunk]).fetchall()
            frames.append(
                pl.DataFrame(
                    rows,
                    schema=[ROW_ID, ROW_ORDER, ROW_KEY, ROW_ITEM, *[c for c in schema if c != "name"]],
                    orient="row",
                    infer_schema_length=None,
                )
            )
        frame = pl.concat(frames, how="vertical_relaxed")
        frame = frame.with_columns(
            pl.lit(KIND_FILE).alias(ROW_KIND),
            pl.lit(None, pl.String).alias(ROW_TARGET),
            pl.col("relpath").str.slice(len(self.folder)).alias("name"),
            *[pl.col(c).cast(t) for c, t in schema.items() if c != "name"],
            pl.col(ROW_ID).cast(pl.Int64),
            pl.col(ROW_ITEM).cast(pl.Int64),
            pl.col(ROW_KEY).cast(pl.String),
            pl.col(ROW_ORDER).cast(pl.String),
        )
        return _order_by_ids(frame, ids)


def _box_counts(store: Store, table: str, owner: _Owner, items: pl.Series) -> pl.Series:
    """Boxes per image of a set or run, for every row of ``items`` (0 where none).

    The set's box ids come in id order, so their item ids are sorted: the counts are the
    run lengths, found with numpy, and looked up for ``items`` by binary search.
    """
    import polars as pl

    frame = store.read_frame(
        f"SELECT id FROM {table} WHERE id BETWEEN ? AND ? ORDER BY id", (owner.lo, owner.hi), {"id": pl.Int64}
    )
    box_items = (frame["id"].to_numpy() >> ITEM_SHIFT) & ((1 << (OWNER_SHIFT - ITEM_SHIFT)) - 1)
    if len(box_items) == 0:
        return pl.Series(np.zeros(len(items), dtype=np.int64))
    starts = np.concatenate([[0], np.flatnonzero(np.diff(box_items)) + 1])
    uniq = box_items[starts]
    counts = np.diff(np.concatenate([starts, [len(box_items)]]))
    want = items.fill_null(-1).cast(pl.Int64).to_numpy()
    pos = np.minimum(np.searchsorted(uniq, want), len(uniq) - 1)
    return pl.Series(np.where(uniq[pos] == want, counts[pos], 0).astype(np.int64))


class BoxSource(Source):
    """The boxes of one label set (``labels:SET``) or detection run (``run:RUN``), in id order.

    Fields: id, item_id, key, class_id, class, x1, y1, x2, y2, w, h, area (and score for runs).
    """

    name_field = None

    def __init__(self, spec: Spec, store: Store) -> None:
        super().__init__(spec)
        self.is_run = spec.kind == "run"
        self.table = "detections" if self.is_run else "labels"
        oid = store.run_id(spec.name) if self.is_run else store.label_set_id(spec.name)
        self.owner = _Owner(spec.name, oid)
        self.class_names = store.class_names()
        self.columns = [
            Column("key", "Key", "name", None, "key"),
            Column("class", "Class", "text", 10, "class_id"),
            *([Column("score", "Score", "score", 5, "score")] if self.is_run else []),
            Column("x1", "x1", "coord", 6, "x1"),
            Column("y1", "y1", "coord", 6, "y1"),
            Column("w", "w", "coord", 6, "w"),
            Column("h", "h", "coord", 6, "h"),
        ]
        self.fields = {
            "id": "box id",
            "item_id": "the image's item id",
            "key": "image key",
            "class_id": "class id in the workspace class map",
            "class": "class name",
            **({"score": "detection confidence"} if self.is_run else {}),
            "x1": "left edge (pixels)",
            "y1": "top edge (pixels)",
            "x2": "right edge (pixels)",
            "y2": "bottom edge (pixels)",
            "w": "width (pixels)",
            "h": "height (pixels)",
            "area": "area (square pixels)",
        }

    @property
    def title(self) -> str:
        return f"{'run' if self.is_run else 'labels'}:{self.spec.name}"

    def preload_fields(self) -> list[str]:
        return ["class_id", *(["score"] if self.is_run else []), "x1", "y1", "w", "h"]

    def open(self, store: Store, n: int) -> Opened:
        head = self.fetch(store, self.ids_page(store, n))
        count = head.height if head.height < n else None
        return Opened(_no_fixed(), head, count)

    def count(self, store: Store) -> int:
        return int(
            store.one(
                f"SELECT count(*) FROM {self.table} WHERE id BETWEEN ? AND ?", (self.owner.lo, self.owner.hi)
            )
            or 0
        )

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
        lo, hi = self.owner.lo, self.owner.hi
        if after is not None:
            lo = max(lo, int(after) + 1)
        if before is not None:
            hi = min(hi, int(before) - 1)
        desc = from_end or before is not None
        sql = (
            f"SELECT id FROM {self.table} WHERE id BETWEEN ? AND ? ORDER BY id {'DESC' if desc else 'ASC'} "
            f"LIMIT {int(limit)} OFFSET {int(offset)}"
        )
        ids = np.fromiter((r[0] for r in store.execute(sql, (lo, hi))), dtype=np.int64)
        return ids[::-1].copy() if desc else ids

    def load_ids(self, store: Store) -> np.ndarray:
        import polars as pl

        frame = store.read_frame(
            f"SELECT id FROM {self.table} WHERE id BETWEEN ? AND ? ORDER BY id",
            (self.owner.lo, self.owner.hi),
            {"id": pl.Int64},
        )
        return frame["id"].to_numpy().astype(np.int64, copy=False)

    def _load_fields(self, store: Store, names: list[str], ids: np.ndarray) -> dict[str, pl.Series]:
        import polars as pl

        from tuiops.store.db import item_of

        want = set(names)
        raw = ["class_id", "x1", "y1", "x2", "y2"] + (["score"] if self.is_run else [])
        need = sorted(
            {c for c in want if c in raw}
            | ({"x1", "x2"} if want & {"w", "area"} else set())
            | ({"y1", "y2"} if want & {"h", "area"} else set())
            | ({"class_id"} if "class" in want else set())
        )
        frame = pl.DataFrame({"id": pl.Series(ids, dtype=pl.Int64)})
        if need:
            # the ids are the whole set in id order: the rows come back aligned
            loaded = store.read_frame(
                f"SELECT {', '.join(need)} FROM {self.table} WHERE id BETWEEN ? AND ? ORDER BY id",
                (self.owner.lo, self.owner.hi),
            )
            frame = (
                frame.with_columns(loaded.select(need))
                if loaded.height == len(ids)
                else frame.join(
                    store.read_frame(
                        f"SELECT id, {', '.join(need)} FROM {self.table} WHERE id BETWEEN ? AND ?",
                        (self.owner.lo, self.owner.hi),
                    ),
                    on="id",
                    how="left",
                    maintain_order="left",
                )
            )
        out: dict[str, pl.Series] = {}
        for n in names:
            if n == "id":
                out[n] = frame["id"]
            elif n == "item_id":
                out[n] = frame.select(item_of(pl.col("id")).alias("item_id"))["item_id"]
            elif n in raw:
                out[n] = frame[n]
            elif n == "w":
                out[n] = (frame["x2"] - frame["x1"]).alias("w")
            elif n == "h":
                out[n] = (frame["y2"] - frame["y1"]).alias("h")
            elif n == "area":
                out[n] = ((frame["x2"] - frame["x1"]) * (frame["y2"] - frame["y1"])).alias("area")
            elif n == "class":
                out[n] = (
                    frame["class_id"]
                    .cast(pl.Int64)
                    .replace_strict(
                        list(range(len(self.class_names))),
                        self.class_names,
                        default=None,
                        return_dtype=pl.String,
                    )
                    .alias("class")
                )
            elif n == "key":
                items = frame.select(item_of(pl.col("id")).alias("item_id"))["item_id"]
                keys = store.read_frame(
                    f"SELECT id AS item_id, key FROM items WHERE id IN (SELECT item_id FROM "
                    f"{'run_images WHERE run_id' if self.is_run else 'set_images WHERE set_id'} = ?)",
                    (self.owner.id,),
                    {"item_id": pl.Int64, "key": pl.String},
                )
                out[n] = _align(items.to_numpy(), keys, "item_id", ["key"])["key"]
        return out

    def fetch(self, store: Store, ids: np.ndarray) -> pl.DataFrame:
        import polars as pl

        schema = {
            "key": pl.String,
            "class": pl.String,
            "class_id": pl.Int64,
            "x1": pl.Float64,
            "y1": pl.Float64,
            "x2": pl.Float64,
            "y2": pl.Float64,
            "w": pl.Float64,
            "h": pl.Float64,
        }
        if self.is_run:
            schema["score"] = pl.Float64
        if len(ids) == 0:
            return _empty_display(schema)
        frames = []
        score = ", b.score" if self.is_run else ""
        mask = (1 << (OWNER_SHIFT - ITEM_SHIFT)) - 1
        for chunk in _in_chunks(ids):
            sql = (
                f"SELECT b.id, i.key, i.id, c.name, b.class_id, b.x1, b.y1, b.x2, b.y2{score} "
                f"FROM {self.table} b LEFT JOIN items i ON i.id = ((b.id >> {ITEM_SHIFT}) & {mask}) "
                f"LEFT JOIN classes c ON c.id = b.class_id WHERE b.id IN ({', '.join('?' * len(chunk))})"
            )
            rows = store.execute(sql, chunk).fetchall()
            cols = [ROW_ID, "key", ROW_ITEM, "class", "class_id", "x1", "y1", "x2", "y2"] + (
                ["score"] if self.is_run else []
            )
            frames.append(pl.DataFrame(rows, schema=cols, orient="row", infer_schema_length=None))
        frame = pl.concat(frames, how="vertical_relaxed").with_columns(
            pl.col(ROW_ID).cast(pl.Int64),
            pl.col(ROW_ITEM).cast(pl.Int64),
            pl.col("key").cast(pl.String),
            pl.col("class").cast(pl.String),
            pl.col("class_id").cast(pl.Int64),
            *[
                pl.col(c).cast(pl.Float64)
                for c in ("x1", "y1", "x2", "y2", *(["score"] if self.is_run else []))
            ],
        )
        frame = frame.with_columns(
            pl.col("key").alias(ROW_KEY),
            pl.col(ROW_ID).cast(pl.String).alias(ROW_ORDER),
            pl.lit(KIND_ROW).alias(ROW_KIND),
            pl.lit(None, pl.String).alias(ROW_TARGET),
            (pl.col("x2") - pl.col("x1")).alias("w"),
            (pl.col("y2") - pl.col("y1")).alias("h"),
        )
        return _order_by_ids(frame, ids)


class MemorySource(Source):
    """A source whose rows are all in one polars frame (catalog, query results, one image's boxes)."""

    in_memory = True

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.frame: pl.DataFrame | None = None
        #: Set from another thread to stop a build that runs user SQL (the app's Esc).
        self.cancel = CancelToken()

    def build(self, store: Store) -> pl.DataFrame:
        raise NotImplementedError

    def _columns_for(self, frame: pl.DataFrame) -> list[Column]:
        import polars as pl

        cols = []
        for name, dtype in frame.schema.items():
            if name.startswith("_"):
                continue
            if dtype.is_integer():
                kind, width = "int", 8
            elif dtype.is_float():
                kind, width = "float", 8
            else:
                kind, width = "text", 14
            if dtype == pl.String and frame.height:
                longest = num_max(frame[name].head(200).str.len_chars())
                width = max(len(name), min(40, int(longest or 1)))
            cols.append(Column(name, name, kind, max(width, len(name)), name))
        if cols:
            cols[0] = Column(cols[0].name, cols[0].title, cols[0].kind, None, cols[0].field)
        return cols

    def _install(self, frame: pl.DataFrame) -> None:
        import polars as pl

        frame = frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW_ID))
        defaults = {ROW_KIND: KIND_ROW, ROW_KEY: None, ROW_ITEM: None, ROW_TARGET: None}
        for name, value in defaults.items():
            if name not in frame.columns:
                dtype = pl.Int64 if name == ROW_ITEM else pl.String
                frame = frame.with_columns(pl.lit(value, dtype).alias(name))
        if ROW_ORDER not in frame.columns:
            frame = frame.with_columns(pl.col(ROW_ID).cast(pl.String).alias(ROW_ORDER))
        self.frame = frame
        if not self.columns:
            self.columns = self._columns_for(frame)
        if not self.fields:
            self.fields = {c: str(t) for c, t in frame.schema.items() if not c.startswith("_")}

    def open(self, store: Store, n: int) -> Opened:
        self._install(self.build(store))
        assert self.frame is not None
        return Opened(self.frame.head(0), self.frame.head(n), self.frame.height)

    def count(self, store: Store) -> int:
        assert self.frame is not None
        return self.frame.height

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
        n = self.count(store)
        start = n - offset - limit if from_end else offset
        start = max(0, start)
        return np.arange(start, min(n, start + limit), dtype=np.int64)

    def load_ids(self, store: Store) -> np.ndarray:
        return np.arange(self.count(store), dtype=np.int64)

    def _load_fields(self, store: Store, names: list[str], ids: np.ndarray) -> dict[str, pl.Series]:
        assert self.frame is not None
        return {n: self.frame[n] for n in names}

    def fetch(self, store: Store, ids: np.ndarray) -> pl.DataFrame:
        import polars as pl

        assert self.frame is not None
        if len(ids) == 0:
            return self.frame.head(0)
        return self.frame[pl.Series(ids, dtype=pl.Int64)]


class CatalogSource(MemorySource):
    """The workspace's top level: pools, label sets, runs and matches."""

    kind = "catalog"

    def __init__(self, spec: Spec, ws_name: str = "workspace") -> None:
        super().__init__(spec)
        self.ws_name = ws_name
        self.columns = [
            Column("name", "Name", "name", None, "name"),
            Column("what", "Kind", "text", 9, "what"),
            Column("images", "Images", "int", 9, "images"),
            Column("boxes", "Boxes", "int", 10, "boxes"),
        ]

    @property
    def title(self) -> str:
        return f"{self.ws_name}:"

    def build(self, store: Store) -> pl.DataFrame:
        import polars as pl

        rows: list[tuple[Any, ...]] = []
        for name, n in store.execute(
            "SELECT p.name, (SELECT count(*) FROM files f WHERE f.pool_id = p.id) FROM pools p ORDER BY p.name"
        ):
            rows.append((name, "pool", n, None, f"pool:{name}/", KIND_DIR))
        for sid, name in store.execute("SELECT id, name FROM label_sets ORDER BY name").fetchall():
            lo, hi = id_range(sid)
            n_img = store.one("SELECT count(*) FROM set_images WHERE set_id = ?", (sid,))
            n_box = store.one("SELECT count(*) FROM labels WHERE id BETWEEN ? AND ?", (lo, hi))
            rows.append((name, "labels", n_img, n_box, f"labels:{name}", KIND_ENTRY))
        for rid, name in store.execute("SELECT id, name FROM runs ORDER BY name").fetchall():
            lo, hi = id_range(rid)
            n_img = store.one("SELECT count(*) FROM run_images WHERE run_id = ?", (rid,))
            n_box = store.one("SELECT count(*) FROM detections WHERE id BETWEEN ? AND ?", (lo, hi))
            rows.append((name, "run", n_img, n_box, f"run:{name}", KIND_ENTRY))
        if table_exists(store, "selections"):
            with contextlib.suppress(Exception):
                for (name,) in store.execute("SELECT name FROM selections ORDER BY name").fetchall():
                    rows.append((name, "selection", None, None, f"selection:{name}", KIND_ENTRY))
        if table_exists(store, "matches") and table_exists(store, "match_images"):
            with contextlib.suppress(Exception):
                for mid, name in store.execute("SELECT id, name FROM matches ORDER BY name").fetchall():
                    n_img = store.one("SELECT count(*) FROM match_images WHERE match_id = ?", (mid,))
                    rows.append((name, "match", n_img, None, f"match:{name}", KIND_ENTRY))
        return pl.DataFrame(
            rows,
            schema={
                "name": pl.String,
                "what": pl.String,
                "images": pl.Int64,
                "boxes": pl.Int64,
                ROW_TARGET: pl.String,
                ROW_KIND: pl.String,
            },
            orient="row",
        ).with_columns(pl.col("name").alias(ROW_ORDER))


class QuerySource(MemorySource):
    """The result of a read-only SQL query (``query:SELECT …``), in the order the query gives."""

    kind = "query"

    @property
    def title(self) -> str:
        text = " ".join(self.spec.name.split())
        return f"query: {text[:60]}{'…' if len(text) > 60 else ''}"

    def build(self, store: Store) -> pl.DataFrame:
        import polars as pl

        from tuiops.ops.usersql import APP_TIMEOUT_S, Limits

        frame = query_frame(store, self.spec.name, limits=Limits(timeout=APP_TIMEOUT_S, cancel=self.cancel))
        extra = []
        if "key" in frame.columns and frame.schema["key"] == pl.String:
            extra.append(pl.col("key").alias(ROW_KEY))
        if "item_id" in frame.columns and frame.schema["item_id"].is_integer():
            extra.append(pl.col("item_id").cast(pl.Int64).alias(ROW_ITEM))
        return frame.with_columns(extra) if extra else frame


class MatchSource(MemorySource):
    """Per-image results of a match (``match:NAME``), worst first (F1 ascending, cost descending)."""

    kind = "match"

    def build(self, store: Store) -> pl.DataFrame:
        import polars as pl

        if not (table_exists(store, "matches") and table_exists(store, "match_images")):
            raise NotFoundError("this store has no match results", hint="run `tuiops match` first")
        mid = store.one("SELECT id FROM matches WHERE name = ?", (self.spec.name,))
        if mid is None:
            known = [r[0] for r in store.execute("SELECT name FROM matches ORDER BY name")]
            raise NotFoundError(
                f"no match named {self.spec.name!r}", hint=f"known: {', '.join(known) or 'none'}"
            )
        frame = store.read_frame(
            "SELECT i.key, m.* FROM match_images m JOIN items i ON i.id = m.item_id WHERE m.match_id = ?",
            (mid,),
        ).drop("match_id", strict=False)
        sort_cols = [c for c in ("f1", "cost") if c in frame.columns]
        if sort_cols:
            frame = frame.sort(sort_cols, descending=[c == "cost" for c in sort_cols], nulls_last=True)
        return frame.with_columns(
            pl.col("key").alias(ROW_KEY), pl.col("item_id").cast(pl.Int64).alias(ROW_ITEM)
        )


class ImageSource(MemorySource):
    """Every box of one image (``image:KEY``): each label set's, then each run's."""

    kind = "image"

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.columns = [
            Column("source", "Set/run", "name", None, "source"),
            Column("class", "Class", "text", 10, "class"),
            Column("score", "Score", "score", 5, "score"),
            Column("x1", "x1", "coord", 6, "x1"),
            Column("y1", "y1", "coord", 6, "y1"),
            Column("w", "w", "coord", 6, "w"),
            Column("h", "h", "coord", 6, "h"),
        ]

    @property
    def title(self) -> str:
        return f"boxes of {self.spec.name}"

    def build(self, store: Store) -> pl.DataFrame:
        import polars as pl

        item_id = store.one("SELECT id FROM items WHERE key = ?", (self.spec.name,))
        if item_id is None:
            raise NotFoundError(f"no image with key {self.spec.name!r} in the store")
        boxes = image_boxes(store, int(item_id))
        return boxes.with_columns(
            (pl.col("x2") - pl.col("x1")).alias("w"),
            (pl.col("y2") - pl.col("y1")).alias("h"),
            pl.lit(self.spec.name).alias(ROW_KEY),
            pl.lit(int(item_id), pl.Int64).alias(ROW_ITEM),
        )


class SelectionSource(MemorySource):
    """The files of a saved selection (``selection:NAME``, see :mod:`tuiops.ops.select`), in
    file order: pool, path, key, size, dimensions and status."""

    kind = "selection"

    def __init__(self, spec: Spec, ws: Workspace | None) -> None:
        super().__init__(spec)
        self.ws = ws
        self.columns = [
            Column("relpath", "Path", "name", None, "relpath"),
            Column("pool", "Pool", "text", 8, "pool"),
            Column("size", "Size", "size", 7, "size"),
            Column("dims", "Dims", "dims", 9, "pixels"),
            Column("status", "Status", "text", 8, "status"),
        ]

    def build(self, store: Store) -> pl.DataFrame:
        import polars as pl

        if self.ws is None:
            raise UsageError("a saved selection needs the workspace")
        from tuiops.ops.select import SelectionSpec, resolve_spec, run_selection_sql, selection_sql
        from tuiops.ops.usersql import APP_TIMEOUT_S, Limits

        spec = resolve_spec(self.ws, SelectionSpec(name=self.spec.name))
        cols = ["file_id", "pool", "relpath", "key", "item_id", "size", "width", "height", "status"]
        sql, params = selection_sql(self.ws, spec, cols)
        frame = run_selection_sql(
            store,
            sql + " ORDER BY file_id",
            params,
            spec,
            limits=Limits(timeout=APP_TIMEOUT_S, cancel=self.cancel),
        )
        if spec.keys is not None:
            frame = frame.filter(pl.col("key").is_in(spec.keys))
        return frame.with_columns(
            (pl.col("width").cast(pl.Int64) * pl.col("height").cast(pl.Int64)).alias("pixels"),
            pl.col("key").cast(pl.String).alias(ROW_KEY),
            pl.col("item_id").cast(pl.Int64).alias(ROW_ITEM),
        )

    def file_ids(self, rows: np.ndarray) -> list[int]:
        """The file ids of the given rows."""
        import polars as pl

        assert self.frame is not None
        return [int(v) for v in self.frame["file_id"].gather(pl.Series(rows, dtype=pl.Int64)).to_list()]


def make_source(
    store: Store, spec: Spec, ctx: Context, *, ws_name: str = "workspace", ws: Workspace | None = None
) -> Source:
    """The source for ``spec`` (raises NotFoundError for an unknown pool, set, run or match)."""
    if spec.kind == "catalog":
        return CatalogSource(spec, ws_name)
    if spec.kind == "pool":
        return PoolSource(spec, store, ctx)
    if spec.kind in ("labels", "run"):
        return BoxSource(spec, store)
    if spec.kind == "match":
        return MatchSource(spec)
    if spec.kind == "query":
        return QuerySource(spec)
    if spec.kind == "selection":
        return SelectionSource(spec, ws)
    if spec.kind == "image":
        return ImageSource(spec)
    raise UsageError(f"unknown panel source kind {spec.kind!r}")


def query_frame(store: Store, sql: str, *, limits: Limits | None = None) -> pl.DataFrame:
    """Run a read-only query (one statement) and return its rows as a polars frame.

    The query may only read (see :mod:`tuiops.ops.usersql`); it stops at the app's time
    limit, or when ``limits.cancel`` is set (Esc).
    """
    import sqlite3

    from tuiops.ops.usersql import APP_TIMEOUT_S, Limits, read_frame

    text = sql.strip().rstrip(";")
    if not text:
        raise UsageError("empty query")
    if not re.match(r"(?is)^\s*(select|with|values|pragma\s+table_info)\b", text):
        raise UsageError(
            f"only SELECT queries can open in a panel: {text[:60]!r}",
            hint="the views are v_images, v_labels, v_detections",
        )
    if not sqlite3.complete_statement(text + ";") or ";" in text:
        raise UsageError("give one SQL statement", hint="remove the ';' inside the query")
    limits = limits or Limits(timeout=APP_TIMEOUT_S)
    if limits.timeout_hint == Limits.timeout_hint:
        limits.timeout_hint = "narrow the query (Esc cancels a running one)"
    with store.connection() as conn:
        return read_frame(conn, text, limits=limits, what="the query")


def describe_fields(source: Source) -> str:
    """The filter fields of a source, one per line, for the help and error messages."""
    width = max((len(k) for k in source.fields), default=0)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in source.fields.items())


# ------------------------------------------------------------------------------------------
# sorting, filtering, selection — whole columns, in a worker
# ------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------
# paging
# ------------------------------------------------------------------------------------------
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
        ids = self._ids_for(store, new_start, size, ws, we)
        frame = self.source.fetch(store, ids)
        self._win_start, self._win = new_start, frame
        return frame.slice(start - new_start, n)

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


# ------------------------------------------------------------------------------------------
# one image: metadata, boxes, preview
# ------------------------------------------------------------------------------------------
def image_boxes(store: Store, item_id: int) -> pl.DataFrame:
    """Every box of one image: source (set or run name), kind (label/det), class, score, x1…y2."""
    import polars as pl

    rows: list[tuple[Any, ...]] = []
    classes = store.class_names()
    for sid, name in store.execute("SELECT id, name FROM label_sets ORDER BY name").fetchall():
        lo, hi = id_range(sid, item_id)
        for cid, x1, y1, x2, y2 in store.execute(
            "SELECT class_id, x1, y1, x2, y2 FROM labels WHERE id BETWEEN ? AND ? ORDER BY id", (lo, hi)
        ):
            rows.append(
                (
                    name,
                    "label",
                    cid,
                    classes[cid] if 0 <= cid < len(classes) else str(cid),
                    None,
                    x1,
                    y1,
                    x2,
                    y2,
                )
            )
    for rid, name in store.execute("SELECT id, name FROM runs ORDER BY name").fetchall():
        lo, hi = id_range(rid, item_id)
        for cid, x1, y1, x2, y2, score in store.execute(
            "SELECT class_id, x1, y1, x2, y2, score FROM detections WHERE id BETWEEN ? AND ? ORDER BY id",
            (lo, hi),
        ):
            rows.append(
                (
                    name,
                    "det",
                    cid,
                    classes[cid] if 0 <= cid < len(classes) else str(cid),
                    score,
                    x1,
                    y1,
                    x2,
                    y2,
                )
            )
    return pl.DataFrame(
        rows,
        schema={
            "source": pl.String,
            "kind": pl.String,
            "class_id": pl.Int64,
            "class": pl.String,
            "score": pl.Float64,
            "x1": pl.Float64,
            "y1": pl.Float64,
            "x2": pl.Float64,
            "y2": pl.Float64,
        },
        orient="row",
    )


@dataclass
class ImageInfo:
    """What the quick view and the viewer show of one image."""

    key: str | None
    item_id: int | None
    file_id: int | None = None
    pool: str | None = None
    relpath: str | None = None
    path: Path | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    mode: str | None = None
    status: str | None = None
    error: str | None = None
    phash: str | None = None
    exif: dict[str, Any] = field(default_factory=dict)
    boxes: pl.DataFrame | None = None
    match: dict[str, Any] = field(default_factory=dict)
    overlap: dict[str, Any] = field(default_factory=dict)

    def meta_lines(self) -> list[tuple[str, str]]:
        """(label, value) pairs for display, in a fixed order."""
        out: list[tuple[str, str]] = [("key", self.key or "—")]
        if self.pool is not None:
            out.append(("file", f"{self.pool}:/{self.relpath}"))
        if self.size is not None:
            out.append(("size", f"{human_size(self.size)} ({self.size:,} B)"))
        if self.width and self.height:
            out.append(("dims", f"{self.width}×{self.height}"))
        if self.format:
            out.append(("format", f"{self.format} {self.mode or ''}".strip()))
        if self.status and self.status != "ok":
            out.append(("status", f"{self.status}{': ' + self.error if self.error else ''}"))
        if self.phash:
            out.append(("phash", self.phash))
        for k, v in list(self.exif.items())[:8]:
            out.append((f"exif {k}", str(v)[:40]))
        if self.boxes is not None:
            counts = self.boxes.group_by(["kind", "source"]).len().rows()
            for kind, src, n in sorted(counts, key=lambda r: (r[0] != "label", r[1])):
                out.append((f"{'labels' if kind == 'label' else 'dets'} {src}", str(n)))
        for k, v in self.overlap.items():
            out.append((k, str(v)))
        for k, v in self.match.items():
            out.append((f"match {k}", f"{v:.3f}" if isinstance(v, float) else str(v)))
        return out


def human_size(n: int | float | None) -> str:
    """1536 → '1.5K' (binary units, FAR-style short form)."""
    if n is None:
        return ""
    n = float(n)
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{int(n)}" if unit == "" else f"{n:.1f}{unit}" if n < 100 else f"{n:.0f}{unit}"
        n /= 1024
    return f"{n:.0f}T"


def image_info(
    store: Store,
    *,
    file_id: int | None = None,
    item_id: int | None = None,
    key: str | None = None,
    ctx: Context | None = None,
) -> ImageInfo:
    """Metadata, boxes and match figures of one image (by file id, item id or key)."""
    row = None
    cols = (
        "f.id, p.name, f.relpath, p.root, f.size, f.width, f.height, f.format, f.mode, f.status, "
        "f.error, f.phash, f.exif, f.item_id, i.key"
    )
    base = (
        f"SELECT {cols} FROM files f JOIN pools p ON p.id = f.pool_id LEFT JOIN items i ON i.id = f.item_id"
    )
    if file_id is not None:
        row = store.execute(f"{base} WHERE f.id = ?", (file_id,)).fetchone()
    else:
        if item_id is None and key is not None:
            item_id = store.one("SELECT id FROM items WHERE key = ?", (key,))
            if item_id is None:
                raise NotFoundError(f"no image with key {key!r} in the store")
        if item_id is not None:
            row = store.execute(
                f"{base} WHERE f.item_id = ? ORDER BY (f.status = 'ok') DESC, f.id LIMIT 1", (item_id,)
            ).fetchone()
    if row is None:
        if item_id is None:
            raise NotFoundError("no such image in the store")
        irow = store.execute("SELECT key, width, height FROM items WHERE id = ?", (item_id,)).fetchone()
        if irow is None:
            raise NotFoundError(f"no image with item id {item_id} in the store")
        info = ImageInfo(irow[0], int(item_id), width=irow[1], height=irow[2])
    else:
        fid, pool, relpath, root, size, w, h, fmt, mode, status, error, phash, exif, iid, k = row
        exif_d: dict[str, Any] = {}
        if exif:
            with contextlib.suppress(ValueError, TypeError):
                loaded = json.loads(exif)
                if isinstance(loaded, dict):
                    exif_d = loaded
        info = ImageInfo(
            k,
            iid,
            fid,
            pool,
            relpath,
            Path(root) / relpath,
            size,
            w,
            h,
            fmt,
            mode,
            status,
            error,
            f"{phash & 0xFFFF_FFFF_FFFF_FFFF:016x}" if phash is not None else None,
            exif_d,
        )
        if info.width is None and iid is not None:
            dims = store.execute("SELECT width, height FROM items WHERE id = ?", (iid,)).fetchone()
            if dims:
                info.width, info.height = dims
    if info.item_id is not None:
        info.boxes = image_boxes(store, info.item_id)
        if ctx is not None and ctx.label_set and ctx.run:
            info.overlap = overlap_summary(info.boxes, ctx.label_set, ctx.run)
        if ctx is not None and ctx.match and table_exists(store, "match_images"):
            with contextlib.suppress(Exception):
                cur = store.execute(
                    "SELECT mi.* FROM match_images mi JOIN matches m ON m.id = mi.match_id "
                    "WHERE m.name = ? AND mi.item_id = ?",
                    (ctx.match, info.item_id),
                )
                mrow = cur.fetchone()
                if mrow is not None:
                    names = [d[0] for d in cur.description]
                    info.match = {
                        n: v
                        for n, v in zip(names, mrow, strict=True)
                        if n not in ("match_id", "item_id") and v is not None
                    }
    return info


def overlap_summary(boxes: pl.DataFrame, label_set: str, run: str, iou: float = 0.5) -> dict[str, Any]:
    """How well a run's boxes cover a set's on one image: labels with a same-class detection
    of IoU ≥ ``iou``, detections with such a label, and the mean best IoU of the labels."""
    import polars as pl

    from tuiops.geometry import pairs

    labels = boxes.filter((pl.col("kind") == "label") & (pl.col("source") == label_set)).with_row_index("li")
    dets = boxes.filter((pl.col("kind") == "det") & (pl.col("source") == run)).with_row_index("di")
    if labels.height == 0 and dets.height == 0:
        return {}
    both = pairs(
        labels.select("li", "class_id", "x1", "y1", "x2", "y2").lazy(),
        dets.select("di", "class_id", "x1", "y1", "x2", "y2").lazy(),
        on="class_id",
    ).collect()
    hit = both.filter(pl.col("iou") >= iou)
    best = both.group_by("li").agg(pl.col("iou").max())
    found = hit["li"].n_unique()
    right = hit["di"].n_unique()
    mean_iou = float(best["iou"].sum() / labels.height) if labels.height else 0.0
    return {
        f"labels found@{iou:g}": f"{found}/{labels.height}",
        f"dets right@{iou:g}": f"{right}/{dets.height}",
        "mean best IoU": f"{mean_iou:.2f}",
    }


@dataclass(frozen=True)
class BoxMark:
    """Where a drawn box's caption goes in the preview (pixel coordinates of the preview)."""

    x: int
    y: int
    text: str
    kind: str
    color: tuple[int, int, int]


LABEL_COLOR = _LABEL_COLOR
DET_COLOR = _DET_COLOR


def render_preview(
    info: ImageInfo,
    max_w: int,
    max_h: int,
    *,
    label_set: str | None = None,
    run: str | None = None,
    show_labels: bool = True,
    show_dets: bool = True,
    min_score: float = 0.0,
) -> tuple[Image.Image, list[BoxMark]]:
    """The image fitted into ``max_w``×``max_h`` pixels with label and detection boxes drawn.

    Boxes are drawn after scaling, one pixel wide, labels in green and detections in
    magenta; ``label_set``/``run`` choose which (default: every set and run). A missing or
    unreadable file gives a dark placeholder with the boxes on it. Returns the image and the
    captions (class name, and score for detections) with their anchor points.
    """
    from PIL import Image, ImageDraw, ImageOps

    W = max(2, int(info.width or 0)) if info.width else None
    H = max(2, int(info.height or 0)) if info.height else None
    img = None
    if info.path is not None and info.status in (None, "ok"):
        try:
            with Image.open(info.path) as im:
                im.draft("RGB", (max_w * 2, max_h * 2))
                img = ImageOps.exif_transpose(im).convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError):
            img = None
    src_w = W or (img.width if img is not None else max_w)
    src_h = H or (img.height if img is not None else max_h)
    scale = min(max_w / src_w, max_h / src_h)
    tw, th = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    if img is None:
        out = Image.new("RGB", (tw, th), (28, 28, 36))
        d = ImageDraw.Draw(out)
        d.line([(0, 0), (tw - 1, th - 1)], fill=(70, 70, 80))
        d.line([(0, th - 1), (tw - 1, 0)], fill=(70, 70, 80))
    else:
        out = img.resize((tw, th), Image.Resampling.BILINEAR)
    marks: list[BoxMark] = []
    if info.boxes is not None and info.boxes.height:
        import polars as pl

        boxes = info.boxes
        keep = pl.lit(False)
        if show_labels:
            keep = keep | (
                (pl.col("kind") == "label") & (pl.col("source") == label_set if label_set else pl.lit(True))
            )
        if show_dets:
            keep = keep | (
                (pl.col("kind") == "det")
                & (pl.col("source") == run if run else pl.lit(True))
                & (pl.col("score").fill_null(1.0) >= min_score)
            )
        boxes = boxes.filter(keep)
        d = ImageDraw.Draw(out)
        sx, sy = tw / src_w, th / src_h
        for kind, cls, score, x1, y1, x2, y2 in boxes.select(
            "kind", "class", "score", "x1", "y1", "x2", "y2"
        ).iter_rows():
            color = _LABEL_COLOR if kind == "label" else _DET_COLOR
            a = (max(0, min(tw - 1, math.floor(x1 * sx))), max(0, min(th - 1, math.floor(y1 * sy))))
            b = (max(0, min(tw - 1, math.ceil(x2 * sx) - 1)), max(0, min(th - 1, math.ceil(y2 * sy) - 1)))
            d.rectangle([a, (max(a[0], b[0]), max(a[1], b[1]))], outline=color)
            text = cls if score is None else f"{cls} {score:.2f}"
            marks.append(BoxMark(a[0], a[1] if kind == "label" else max(a[1], b[1]), text, kind, color))
    return out, marks


# ------------------------------------------------------------------------------------------
# jobs, editor, folders
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobRow:
    """One row of the store's job table, as the jobs pane shows it."""

    id: int
    kind: str
    status: str
    done: int
    total: int | None
    message: str | None
    error: str | None
    started: str | None
    finished: str | None
    pid: int | None


def list_jobs(store: Store, limit: int = 50) -> list[JobRow]:
    """The newest jobs, running ones first."""
    rows = store.execute(
        "SELECT id, kind, status, done, total, message, error, started, finished, pid FROM jobs "
        "ORDER BY (status = 'running') DESC, id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [JobRow(*r) for r in rows]


def cancel_job(store: Store, job_id: int) -> str:
    """Ask a running job's process to stop (SIGINT, so it journals what it did and exits).

    Returns what happened, for a notification. A job whose process is gone is marked failed.
    """
    row = store.execute("SELECT status, pid FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no job {job_id}")
    status, pid = row
    if status != "running":
        return f"job {job_id} is {status} already"
    if not pid or pid == os.getpid():
        return f"job {job_id} runs in this app: cancel it from its row"
    try:
        os.kill(int(pid), signal.SIGINT)
    except ProcessLookupError:
        store.job_finish(job_id, "failed", error="its process is gone (killed or crashed)")
        return f"job {job_id}: its process {pid} is gone; marked failed"
    except PermissionError as exc:
        raise ExternalToolError(f"cannot signal process {pid} of job {job_id}: permission denied") from exc
    return f"asked job {job_id} (process {pid}) to stop"


def classes_file(ws: Workspace) -> Path:
    """A classes.txt of the workspace class map (for label editors), rewritten when it changed."""
    from tuiops.fsutil import atomic_write_text

    path = ws.root / ".tuiops" / "classes.txt"
    text = "\n".join(ws.classes) + ("\n" if ws.classes else "")
    try:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
    except OSError as exc:
        from tuiops.fsutil import disk_error

        raise disk_error(path, exc) from exc
    return path


def editor_command(ws: Workspace, image: Path) -> list[str]:
    """The configured label editor's command line for one image.

    ``[editor] command`` in tuiops.toml may use ``{image}`` (the file), ``{dir}`` (its
    folder) and ``{classes}`` (a classes.txt of the workspace class map).
    """
    template = ws.config.editor
    try:
        parts = shlex.split(template)
    except ValueError as exc:
        raise InputError(f"[editor] command {template!r} in tuiops.toml: {exc}") from exc
    if not parts:
        raise InputError(
            "[editor] command in tuiops.toml is empty", hint='e.g. command = "labelImg {dir} {classes} {dir}"'
        )
    values = {"image": str(image), "dir": str(image.parent), "classes": ""}
    if "{classes}" in template:
        values["classes"] = str(classes_file(ws))
    try:
        return [p.format(**values) for p in parts]
    except (KeyError, IndexError, ValueError) as exc:
        raise InputError(
            f"[editor] command {template!r} in tuiops.toml has an unknown placeholder {exc}",
            hint="use {image}, {dir} and {classes}",
        ) from exc


def launch_editor(ws: Workspace, image: Path) -> subprocess.Popen[bytes]:
    """Start the label editor on ``image``, detached from the app's terminal."""
    if not image.exists():
        raise NotFoundError(f"{image} does not exist on disk", hint="re-scan the pool with `tuiops scan`")
    argv = editor_command(ws, image)
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ExternalToolError(
            f"the label editor {argv[0]!r} is not installed or not on PATH",
            hint="install it, or set [editor] command in tuiops.toml",
        ) from exc
    except OSError as exc:
        raise ExternalToolError(f"cannot start the label editor {argv[0]!r}: {exc.strerror}") from exc


_BAD_NAME = re.compile(r"[/\x00]")


def make_folder(store: Store, pool: str, folder: str, name: str) -> Path:
    """Create folder ``name`` inside ``folder`` of pool ``pool`` on disk; returns its path."""
    name = name.strip()
    if not name or name in (".", "..") or _BAD_NAME.search(name):
        raise UsageError(f"{name!r} is not a folder name", hint="give one name without '/'")
    pid = store.pool_id(pool)
    root = Path(store.one("SELECT root FROM pools WHERE id = ?", (pid,)))
    target = root / normalise_folder(folder) / name
    if target.exists():
        raise ConflictError(f"{target} exists already")
    try:
        target.mkdir(parents=False)
    except FileNotFoundError as exc:
        raise DiskError(f"cannot create {target}: its parent folder does not exist on disk") from exc
    except OSError as exc:
        from tuiops.fsutil import disk_error

        raise disk_error(target, exc, "create") from exc
    return target


def where_for_ids(ids: Sequence[int] | np.ndarray) -> str:
    """A compact SQL condition on ``file_id`` for these ids (runs become BETWEEN ranges)."""
    import numpy as np

    arr = sorted_unique(ids)
    if len(arr) == 0:
        return "0"
    breaks = np.flatnonzero(np.diff(arr) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(arr)]]) - 1
    ranges: list[str] = []
    singles: list[int] = []
    for a, b in zip(arr[starts].tolist(), arr[ends].tolist(), strict=True):
        if b - a >= 2:
            ranges.append(f"file_id BETWEEN {a} AND {b}")
        else:
            singles.extend(range(a, b + 1))
    parts = ranges + ([f"file_id IN ({', '.join(map(str, singles))})"] if singles else [])
    return " OR ".join(parts)


def edit_files(
    ws: Workspace,
    file_ids: Sequence[int],
    pool: str | None,
    label_set: str | None,
    *,
    progress: ProgressFn | None = None,
) -> Path:
    """Copy files (with label files written from ``label_set``, else carried) into a new folder
    under ``review/`` of the workspace through the file-operation engine, and start the label
    editor there. Returns the folder."""
    import datetime as dt

    from tuiops.ops import fileops
    from tuiops.ops.review import editor_command
    from tuiops.ops.select import SelectionSpec

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    folder = ws.root / "review" / f"edit-{stamp}"
    spec = SelectionSpec(where=where_for_ids(file_ids), pools=[pool] if pool else None)
    res = fileops.plan(
        ws,
        "copy",
        spec,
        to=folder,
        labels="yolo" if label_set else "carry",
        label_set=label_set,
        on_conflict="rename",
        progress=progress,
    )
    fileops.run_job(ws, res.job_id, progress=progress)
    argv = editor_command(ws, folder)
    try:
        subprocess.Popen(
            argv,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ExternalToolError(
            f"the label editor {argv[0]!r} is not installed or not on PATH (the images are in {folder})",
            hint="install it, or set [editor] command in tuiops.toml",
        ) from exc
    return folder
