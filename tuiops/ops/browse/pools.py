"""A pool folder as a source: its subfolders, then the files directly in it, a page at a time."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tuiops.ops.browse.boxes import box_counts
from tuiops.ops.browse.source import (
    Opened,
    Source,
    align,
    empty_display,
    in_chunks,
    lower_case,
    lowered_key,
    order_by_ids,
)
from tuiops.ops.browse.spec import (
    KIND_DIR,
    KIND_FILE,
    KIND_UP,
    ROW_ID,
    ROW_ITEM,
    ROW_KEY,
    ROW_KIND,
    ROW_ORDER,
    ROW_TARGET,
    Column,
    Context,
    Spec,
    resolve_context,
)
from tuiops.store.db import ITEM_SHIFT
from tuiops.store.schema import FOLDER_SQL, LISTED_SQL

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store


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
        self.lab, self.run, self.match_id = resolve_context(store, ctx)
        self._rank: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._rank_lock = threading.Lock()
        self._names: tuple[np.ndarray, pl.Series] | None = None
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
        import polars as pl

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
        # through the same SQLite library as the background loads, so a page never waits for them
        ids = store.read_frame(sql, params, {"id": pl.Int64})["id"].to_numpy().astype(np.int64)
        return ids[::-1].copy() if desc else ids

    def load_ids(self, store: Store) -> np.ndarray:
        """Every file id in name order, read from the folder index in keyset slices of
        :data:`LOAD_SLICE` rows (each a short query, so the UI's page reads get their turn);
        the names come with them and are kept for the ``name`` field."""
        import polars as pl

        where, params = self._base_where()
        parts: list[pl.DataFrame] = []
        last: str | None = None
        while True:
            cond = "" if last is None else " AND relpath > ?"
            frame = store.read_frame(
                f"SELECT id, relpath FROM files WHERE {where}{cond} ORDER BY relpath LIMIT {LOAD_SLICE}",
                [*params, *([] if last is None else [last])],
                {"id": pl.Int64, "relpath": pl.String},
            )
            parts.append(frame)
            if frame.height < LOAD_SLICE:
                break
            last = frame["relpath"][-1]
        whole = pl.concat(parts, rechunk=True) if len(parts) > 1 else parts[0]
        ids = whole["id"].to_numpy().astype(np.int64, copy=False)
        self._names = (ids, whole["relpath"])
        return ids

    #: Columns of ``files`` loaded together (one scan of the files' rowid range per group): the
    #: first group holds every column shown or commonly sorted on, so that one background scan
    #: makes them all ready.
    _GROUPS: ClassVar[tuple[dict[str, str], ...]] = (
        {"item_id": "item_id", "size": "size", "width": "width", "height": "height", "mtime": "mtime_ns"},
        {"format": "format", "mode": "mode", "status": "status", "phash": "phash", "keyed": "keyed"},
    )

    def _rowid_order(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` sorted (the order a rowid scan gives) and the rank of each base row in it."""
        with self._rank_lock:
            cached = self._rank
            if cached is not None and cached[0] is ids:
                return cached[1], cached[2]
            import polars as pl

            # frame sorts (not numpy's fancy indexing): polars lets the UI thread run meanwhile
            perm = pl.DataFrame({"id": pl.Series(ids, dtype=pl.Int64)}).with_row_index("pos").sort("id")
            rank = perm.select("pos").with_row_index("r").sort("pos")["r"].cast(pl.Int64).to_numpy()
            by_rowid = perm["id"].to_numpy()
            self._rank = (ids, by_rowid, rank)
            return by_rowid, rank

    def _load_by_rowid(
        self, store: Store, ids: np.ndarray, cols: str, names: list[str]
    ) -> dict[str, pl.Series]:
        """Columns of the files ``ids`` (aligned with them), read in rowid slices of
        :data:`LOAD_SLICE` rows: each slice is one short query and one short gather, so a
        long load never holds the interpreter lock for long (the UI thread keeps drawing)."""
        import polars as pl

        if len(ids) == 0:
            return {n: pl.Series(n, [], dtype=pl.Int64) for n in names}
        by_rowid, rank = self._rowid_order(ids)
        parts: list[pl.DataFrame] = []
        for a in range(0, len(by_rowid), LOAD_SLICE):
            want = by_rowid[a : a + LOAD_SLICE]
            frame = store.read_frame(
                f"SELECT id, {cols} FROM files WHERE id BETWEEN ? AND ? AND +pool_id = ? ORDER BY id",
                (int(want[0]), int(want[-1]), self.pool_id),
            )
            parts.append(_take_rows(frame, want, names))
        merged = pl.concat(parts, how="vertical_relaxed", rechunk=True)
        out = (
            merged.lazy().select(pl.all().gather(pl.lit(pl.Series(rank, dtype=pl.Int64)))).collect().rechunk()
        )
        return {n: out[n].alias(n) for n in names}

    def _load_names(self, store: Store, ids: np.ndarray) -> pl.Series:
        """Relpaths in base order: those read with the ids, or from the folder index."""
        names = self._names
        if names is not None and names[0] is ids:
            return names[1]
        import polars as pl

        where, params = self._base_where()
        frame = store.read_frame(
            f"SELECT id, relpath FROM files WHERE {where} ORDER BY relpath",
            params,
            {"id": pl.Int64, "relpath": pl.String},
        )
        if frame.height == len(ids) and np.array_equal(frame["id"].to_numpy(), ids):
            return frame["relpath"]
        return align(ids, frame, "id", ["relpath"])["relpath"]

    def load_unit(self, name: str) -> list[str]:
        group = next((g for g in self._GROUPS if name in g), None)
        return list(group) if group is not None else [name]

    def preload_fields(self) -> list[str]:
        """Every field a sort, filter or mask commonly needs, in the order worth having them: the
        shown columns (one scan also brings the time), the names (masks), then the rest."""
        first = [f for f in super().preload_fields() if f in self.fields]
        rest = ["name", "mtime", "status", "format", "key"]
        return list(dict.fromkeys([*first, *rest]))

    def _load_fields(self, store: Store, names: list[str], ids: np.ndarray) -> dict[str, pl.Series]:
        import polars as pl

        want = set(names)
        out: dict[str, pl.Series] = {}
        for group in self._GROUPS:
            if want & set(group):
                cols = ", ".join(f"{c} AS {n}" for n, c in group.items())
                out.update(self._load_by_rowid(store, ids, cols, list(group)))
        if "relpath" in want:
            out["relpath"] = self._load_names(store, ids)

        def need(name: str) -> pl.Series:
            if name in out:
                return out[name]
            return self.fields_for(store, [name], ids)[name]

        if "name" in want:
            out["name"] = _frame_op(need("relpath"), pl.col("v").str.slice(len(self.folder))).alias("name")
            out[lowered_key("name")] = lower_case(out["name"])
        if "ext" in want:
            ext = pl.col("v").str.extract(r"\.([^./]+)$", 1).str.to_lowercase().fill_null("")
            out["ext"] = _frame_op(need("relpath"), ext).alias("ext")
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
            aligned = align(items.fill_null(-1).to_numpy(), keys, "item_id", ["key", "booru", "fid"])
            out.update({n: aligned[n] for n in ("key", "booru", "fid") if n in want})
        for name, owner, table in (("labels", self.lab, "labels"), ("dets", self.run, "detections")):
            if name not in want:
                continue
            if owner is None:
                out[name] = pl.Series(name, np.zeros(len(ids), dtype=np.int64))
                continue
            out[name] = box_counts(store, table, owner, need("item_id")).alias(name)
        match_want = [n for n in self._MATCH_FIELDS if n in want]
        if match_want:
            items = need("item_id")
            frame = store.read_frame(
                f"SELECT item_id, {', '.join(match_want)} FROM match_images WHERE match_id = ?",
                (self.match_id,),
            )
            out.update(align(items.fill_null(-1).to_numpy(), frame, "item_id", match_want))
        return out

    def page_from_cache(self, ids: np.ndarray, positions: np.ndarray) -> pl.DataFrame | None:
        import polars as pl

        names = ["relpath", "key", "item_id", "size", "width", "height", "format", "status", "labels", "dets"]
        if self.match_id is not None:
            names.append("f1")
        cols = self.cached_columns(names, ids)
        if cols is None:
            return None
        whole = pl.DataFrame([cols[n] for n in names])  # the loaded columns, not copied
        page = whole[pl.Series(positions, dtype=pl.Int64)]  # one gather of every column
        return page.select(
            pl.Series(ROW_ID, ids[positions], dtype=pl.Int64),
            pl.col("relpath").alias(ROW_ORDER),
            pl.col("key").cast(pl.String).alias(ROW_KEY),
            pl.col("item_id").cast(pl.Int64).alias(ROW_ITEM),
            pl.col("relpath"),
            *[pl.col(c).cast(pl.Int64) for c in ("size", "width", "height")],
            pl.col("format").cast(pl.String),
            pl.col("status").cast(pl.String),
            pl.col("labels").cast(pl.Int64),
            pl.col("dets").cast(pl.Int64),
            (pl.col("f1") if self.match_id is not None else pl.lit(None)).cast(pl.Float64).alias("f1"),
            pl.lit(KIND_FILE).alias(ROW_KIND),
            pl.lit(None, pl.String).alias(ROW_TARGET),
            pl.col("relpath").str.slice(len(self.folder)).alias("name"),
        )

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
            return empty_display(schema)
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
        row_schema = {
            ROW_ID: pl.Int64,
            ROW_ORDER: pl.String,
            ROW_KEY: pl.String,
            ROW_ITEM: pl.Int64,
            **{c: t for c, t in schema.items() if c != "name"},
        }
        frames = []
        for chunk in in_chunks(ids):
            sql = (
                f"SELECT f.id AS {ROW_ID}, f.relpath AS {ROW_ORDER}, i.key AS {ROW_KEY}, f.item_id AS {ROW_ITEM}, "
                f"f.relpath, f.size, f.width, f.height, f.format, f.status, {', '.join(counts)}, {match_col} "
                f"FROM files f LEFT JOIN items i ON i.id = f.item_id {match_join} "
                # the ids are integers written into the statement: binding a page of parameters
                # through the Arrow reader costs more than the query
                f"WHERE f.id IN ({', '.join(str(int(i)) for i in chunk)})"
            )
            frames.append(store.read_frame(sql, params_head, row_schema))
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
        return order_by_ids(frame, ids)


#: Rows per query when whole columns are loaded: a few tens of milliseconds each, so that the
#: page reads of the UI thread (which wait while the store's other SQLite library is busy, see
#: :mod:`tuiops.store.connections`) and other threads never wait long.
LOAD_SLICE = 65_536


def _take_rows(frame: pl.DataFrame, want: np.ndarray, names: list[str]) -> pl.DataFrame:
    """The ``names`` columns of ``frame`` (sorted by ``id``) for the sorted ids ``want`` (nulls
    for ids it lacks)."""
    import polars as pl

    got = frame["id"].cast(pl.Int64).to_numpy() if frame.height else np.empty(0, dtype=np.int64)
    if len(got) == len(want) and np.array_equal(got, want):
        return frame.select(names)
    if len(got) == 0:
        return pl.DataFrame(
            {n: pl.Series(n, [None] * len(want), dtype=frame.schema.get(n, pl.Int64)) for n in names}
        )
    pos = np.minimum(np.searchsorted(got, want), len(got) - 1)
    found = pl.Series(got[pos] == want)
    take = pl.Series(pos, dtype=pl.Int64)
    return (
        frame.lazy()
        .select(
            pl.when(pl.lit(found)).then(pl.col(n).gather(pl.lit(take))).otherwise(None).alias(n)
            for n in names
        )
        .collect()
    )


def _frame_op(col: pl.Series, expr: pl.Expr) -> pl.Series:
    """``expr`` over ``col`` (named ``v`` in it) as a frame operation, which lets other
    threads run meanwhile (a Series method on millions of strings would hold the lock)."""
    import polars as pl

    return pl.DataFrame({"v": col}).select(expr.alias("v"))["v"]
