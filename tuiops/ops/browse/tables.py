"""Sources held in memory whole (the catalog, a SQL query, a match, one image's boxes, a selection) and the source for a spec."""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import NotFoundError, UsageError
from tuiops.frames import num_max
from tuiops.ops.base import CancelToken
from tuiops.ops.browse.boxes import BoxSource
from tuiops.ops.browse.pools import PoolSource
from tuiops.ops.browse.preview import image_boxes
from tuiops.ops.browse.source import Opened, Source
from tuiops.ops.browse.spec import (
    KIND_DIR,
    KIND_ENTRY,
    KIND_ROW,
    ROW_ID,
    ROW_ITEM,
    ROW_KEY,
    ROW_KIND,
    ROW_ORDER,
    ROW_TARGET,
    Column,
    Context,
    Spec,
    table_exists,
)
from tuiops.store.db import id_range

if TYPE_CHECKING:
    import polars as pl

    from tuiops.ops.usersql import Limits
    from tuiops.store import Store
    from tuiops.workspace import Workspace


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
    """The workspace's top level: pools, label sets, runs, selections and matches, then its
    projects, hosts and mixes (each where there is one)."""

    kind = "catalog"

    def __init__(self, spec: Spec, ws_name: str = "workspace", ws: Workspace | None = None) -> None:
        super().__init__(spec)
        self.ws_name = ws_name
        self.ws = ws
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
        from tuiops.ops.browse.projects import catalog_entries

        rows.extend(catalog_entries(store, self.ws))
        rows += self._user_rows()
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

    def _user_rows(self) -> list[tuple[Any, ...]]:
        """The user's tables and views (``user.db``, ``[views]`` of tuiops.toml), each opening
        as a query panel."""
        if self.ws is None:
            return []
        from tuiops.ops.userdb import list_user_objects

        out: list[tuple[Any, ...]] = []
        for o in list_user_objects(self.ws):
            quoted = '"' + str(o["name"]).replace('"', '""') + '"'
            ref = f"user.{quoted}" if o["in"] == "user.db" else quoted
            out.append((o["name"], o["type"], None, None, f"query:SELECT * FROM {ref}", KIND_ENTRY))
        return out


class QuerySource(MemorySource):
    """The result of a read-only SQL query (``query:SELECT …``), in the order the query gives;
    with the workspace, it sees the user's tables and views too."""

    kind = "query"

    def __init__(self, spec: Spec, ws: Workspace | None = None) -> None:
        super().__init__(spec)
        self.ws = ws

    @property
    def title(self) -> str:
        text = " ".join(self.spec.name.split())
        return f"query: {text[:60]}{'…' if len(text) > 60 else ''}"

    def build(self, store: Store) -> pl.DataFrame:
        import polars as pl

        from tuiops.ops.usersql import APP_TIMEOUT_S, Limits

        limits = Limits(timeout=APP_TIMEOUT_S, cancel=self.cancel)
        frame = query_frame(store, self.spec.name, limits=limits, ws=self.ws)
        extra = []
        if "key" in frame.columns and frame.schema["key"] == pl.String:
            extra.append(pl.col("key").alias(ROW_KEY))
        if "item_id" in frame.columns and frame.schema["item_id"].is_integer():
            extra.append(pl.col("item_id").cast(pl.Int64).alias(ROW_ITEM))
        return frame.with_columns(extra) if extra else frame


class MatchSource(MemorySource):
    """Per-image results of a match (``match:NAME``), worst first (F1 ascending, cost descending)."""

    kind = "match"

    def _columns_for(self, frame: pl.DataFrame) -> list[Column]:
        """The query's columns, the image key as wide as the longest key (it is what the rows
        are told apart by; the figures after it keep their widths)."""
        from dataclasses import replace

        cols = super()._columns_for(frame)
        if cols and cols[0].name == "key":
            longest = int(num_max(frame["key"].str.len_chars()) or 0) if frame.height else 0
            cols[0] = replace(cols[0], width=max(len(cols[0].title), min(64, longest)))
        return cols

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
            ws=self.ws,
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
        return CatalogSource(spec, ws_name, ws)
    if spec.kind in ("projects", "hosts", "mixes", "mix"):
        from tuiops.ops.browse.projects import HostsSource, MixesSource, MixSource, ProjectsSource

        if spec.kind == "projects":
            return ProjectsSource(spec, ws)
        if spec.kind == "hosts":
            return HostsSource(spec, ws)
        return MixesSource(spec) if spec.kind == "mixes" else MixSource(spec)
    if spec.kind == "pool":
        return PoolSource(spec, store, ctx)
    if spec.kind in ("labels", "run"):
        return BoxSource(spec, store)
    if spec.kind == "match":
        return MatchSource(spec)
    if spec.kind == "query":
        return QuerySource(spec, ws)
    if spec.kind == "selection":
        return SelectionSource(spec, ws)
    if spec.kind == "image":
        return ImageSource(spec)
    raise UsageError(f"unknown panel source kind {spec.kind!r}")


def query_frame(
    store: Store, sql: str, *, limits: Limits | None = None, ws: Workspace | None = None
) -> pl.DataFrame:
    """Run a read-only query (one statement) and return its rows as a polars frame.

    The query may only read (see :mod:`tuiops.ops.usersql`); it stops at the app's time
    limit, or when ``limits.cancel`` is set (Esc). With ``ws`` it sees the user's tables and
    views (:mod:`tuiops.ops.userdb`).
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
    if ws is not None:
        from tuiops.ops.query import run_query

        return run_query(ws, text, limits=limits, what="the query")
    with store.connection() as conn:
        return read_frame(conn, text, limits=limits, what="the query")


def describe_fields(source: Source) -> str:
    """The filter fields of a source, one per line, for the help and error messages."""
    width = max((len(k) for k in source.fields), default=0)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in source.fields.items())
