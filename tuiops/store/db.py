"""The SQLite store: connections, migrations, transactions and Arrow/polars bulk I/O.

Small reads and writes go through :mod:`sqlite3`; bulk reads and writes go through
the ADBC SQLite driver as Arrow record batches straight into and out of polars frames.
The connections of both, and the rules that keep two SQLite libraries safe on one
file, live in :mod:`tuiops.store.connections`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, DiskError, NotFoundError, StoreError, TuiopsError
from tuiops.store.connections import ADBC, POOL, SQLITE3, Rows, open_adbc, open_sqlite3
from tuiops.store.connections import BUSY_TIMEOUT_MS as BUSY_TIMEOUT_MS
from tuiops.store.frames import BOX_COLUMNS as BOX_COLUMNS
from tuiops.store.frames import COCO_LABEL_COLUMNS as COCO_LABEL_COLUMNS
from tuiops.store.frames import box_schema, image_size_schema, item_schema
from tuiops.store.schema import all_migrations

if TYPE_CHECKING:
    import polars as pl

#: Box ids are ``(owner << OWNER_SHIFT) | (item_id << ITEM_SHIFT) | ord`` (see schema.py).
OWNER_SHIFT = 43
ITEM_SHIFT = 12
MAX_ORD = (1 << ITEM_SHIFT) - 1
MAX_ITEM = (1 << (OWNER_SHIFT - ITEM_SHIFT)) - 1
MAX_OWNER = (1 << (63 - OWNER_SHIFT)) - 1


def id_range(owner_id: int, item_id: int | None = None) -> tuple[int, int]:
    """The inclusive id range of a label set's (or run's) boxes, or of one image's boxes in it."""
    if item_id is None:
        lo = owner_id << OWNER_SHIFT
        return lo, lo + (1 << OWNER_SHIFT) - 1
    lo = (owner_id << OWNER_SHIFT) | (item_id << ITEM_SHIFT)
    return lo, lo + MAX_ORD


def item_of(id_expr: Any) -> Any:
    """The item id inside a box id, for a polars expression (or an int)."""
    return (id_expr // (1 << ITEM_SHIFT)) % (1 << (OWNER_SHIFT - ITEM_SHIFT))


def utcnow() -> str:
    """An ISO-8601 UTC timestamp with seconds, the store's format for times."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: ADBC reads a result in batches typed from their first batch; a result whose column is
#: null in the first batch and text later is read again as one batch of this many rows.
ONE_BATCH_OPTION = "adbc.sqlite.query.batch_rows"
ONE_BATCH_ROWS = 1 << 30
READ_BATCH_ROWS = 1 << 16


def _is_adbc_type_mismatch(exc: Exception) -> bool:
    return "Type mismatch" in str(exc) or "type mismatch" in str(exc)


class Store:
    """One workspace's ``tuiops.db``.

    The store is safe to use from one thread at a time per instance; open a second
    :class:`Store` for another thread (SQLite in WAL mode lets readers and one writer
    work side by side).
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path).resolve()
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._adbc: Any = None
        self._lock = threading.RLock()
        self._gate = POOL.gate(self.path)
        if readonly and not self.path.exists():
            raise StoreError(f"store {self.path} does not exist", hint="run `tuiops init` first")
        self.conn  # noqa: B018 - open and migrate now, so errors surface early
        self._prime()

    def _prime(self) -> None:
        """Open one connection of each SQLite library to this file, once per process."""
        if POOL.prime(self.path):
            self.adbc  # noqa: B018

    # -- connections -------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open_sqlite3()
            if not self.readonly:
                self.migrate()
            else:
                self._check_version(self._conn)
        return self._conn

    def _open_sqlite3(self) -> sqlite3.Connection:
        try:
            return open_sqlite3(self.path, self.readonly)
        except OSError as exc:
            from tuiops.fsutil import disk_error

            raise disk_error(self.path.parent, exc, "create the store's folder") from exc
        except sqlite3.DatabaseError as exc:
            raise _open_error(self.path, exc, getattr(exc, "step", "open")) from exc

    @property
    def adbc(self) -> Any:
        """The ADBC connection used for Arrow bulk I/O (autocommit; explicit BEGIN/COMMIT)."""
        if self._adbc is None:
            self.conn  # noqa: B018 - make sure the schema exists first
            self._adbc = open_adbc(self.path, self.readonly)
        return self._adbc

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The ``sqlite3`` connection for statements the store has no method for (user SQL
        under an authorizer, ``EXPLAIN``), held for ``sqlite3`` while the block runs.

        Use it only inside the block and read every result to the end there: the ADBC side
        of the store waits meanwhile (see :mod:`tuiops.store.connections`).
        """
        conn = self.conn
        with self._lock, self._gate.use(SQLITE3):
            yield conn

    def close(self) -> None:
        """Hand this store's connections back to the process pool (never closed before exit)."""
        with self._lock:
            if self._adbc is not None:
                with (
                    self._gate.use(ADBC),
                    contextlib.suppress(Exception),
                    contextlib.closing(self._adbc.cursor()) as cur,
                ):
                    cur.execute("ROLLBACK")
                POOL.give(self.path, ADBC, self.readonly, self._adbc)
                self._adbc = None
            if self._conn is not None:
                if self._conn.in_transaction:
                    with self._gate.use(SQLITE3), contextlib.suppress(Exception):
                        self._conn.execute("ROLLBACK")
                POOL.give(self.path, SQLITE3, self.readonly, self._conn)
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- migrations ---------------------------------------------------------------------------
    def _check_version(self, conn: sqlite3.Connection) -> list[str]:
        try:
            with self._gate.use(SQLITE3):
                rows = conn.execute("SELECT name FROM migrations ORDER BY name").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise _open_error(self.path, exc, "open") from exc
        applied = [r[0] for r in rows]
        known = {name for name, _ in all_migrations()}
        unknown = [name for name in applied if name not in known]
        if unknown:
            raise StoreError(
                f"store {self.path} was written by a newer tuiops (migrations {', '.join(unknown)})",
                hint="upgrade tuiops",
            )
        return applied

    def migrate(self) -> list[str]:
        """Apply pending migrations, each in its own transaction; returns the names applied."""
        conn = self._conn
        assert conn is not None
        with self._gate.use(SQLITE3, write=True):
            return self._migrate(conn)

    def _migrate(self, conn: sqlite3.Connection) -> list[str]:
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)"
            )
        except sqlite3.DatabaseError as exc:
            raise _open_error(self.path, exc, "open") from exc
        done = set(self._check_version(conn))
        applied = []
        for name, sql in all_migrations():
            if name in done:
                continue
            try:
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                    conn.execute("ROLLBACK")
                    continue
                for statement in _split_sql(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO migrations(name, applied) VALUES (?, ?)", (name, utcnow()))
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.DatabaseError):
                        conn.execute("ROLLBACK")
                full = disk_full_error(self.path, exc)
                if full is not None:
                    raise full from exc
                raise StoreError(f"store {self.path}: migration {name} failed: {exc}") from exc
            applied.append(name)
        return applied

    # -- transactions ------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the sqlite3 connection (nested calls become savepoints)."""
        conn = self.conn
        with self._lock, self._gate.use(SQLITE3, write=True):
            if conn.in_transaction:
                name = f"sp_{id(conn)}_{threading.get_ident()}"
                conn.execute(f"SAVEPOINT {name}")
                try:
                    yield conn
                except BaseException:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                    raise
                conn.execute(f"RELEASE {name}")
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    with contextlib.suppress(sqlite3.DatabaseError):
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                full = disk_full_error(self.path, exc)
                if full is None:
                    raise
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.DatabaseError):
                        conn.execute("ROLLBACK")
                raise full from exc

    @contextlib.contextmanager
    def bulk(self) -> Iterator[BulkTx]:
        """One write transaction on the ADBC connection, for Arrow ingest plus small SQL.

        Everything done through the yielded :class:`BulkTx` commits together or not at all.
        """
        adbc = self.adbc
        with self._lock, self._gate.use(ADBC, write=True):
            cur = adbc.cursor()
            try:
                _wrap(self, cur.execute, "BEGIN IMMEDIATE")
                try:
                    yield BulkTx(self, cur)
                except BaseException:
                    with contextlib.suppress(Exception):
                        cur.execute("ROLLBACK")
                    raise
                try:
                    _wrap(self, cur.execute, "COMMIT")
                except BaseException:
                    with contextlib.suppress(Exception):
                        cur.execute("ROLLBACK")
                    raise
            finally:
                with contextlib.suppress(Exception):
                    cur.close()

    # -- reads -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        """Run one statement through ``sqlite3``; a statement that returns rows is read to
        the end at once (its cursor holds no transaction open afterwards)."""
        conn = self.conn
        try:
            with self._gate.use(SQLITE3):
                cur = conn.execute(sql, params)
                return cur if cur.description is None else Rows(conn, cur)
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"store constraint failed: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            full = disk_full_error(self.path, exc)
            if full is not None:
                raise full from exc
            raise StoreError(f"store query failed: {exc}") from exc

    def one(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def read_frame(
        self,
        sql: str,
        params: Sequence[Any] = (),
        schema: Mapping[str, pl.DataType | type[pl.DataType]] | None = None,
    ) -> pl.DataFrame:
        """Run a query and return a polars frame, through Arrow (ADBC) where the types allow.

        ``schema`` names the dtypes of the result's columns: an empty result gets them, and
        a result is cast to them.
        """
        import polars as pl

        frame = None
        adbc = self.adbc
        with self._lock, self._gate.use(ADBC):
            for one_batch in (False, True):
                cur = adbc.cursor()
                try:
                    # large batches: fewer Arrow chunks; on a type clash (a column whose first
                    # rows are null), one batch typed from all of its rows
                    rows = ONE_BATCH_ROWS if one_batch else READ_BATCH_ROWS
                    cur.set_options(**{ONE_BATCH_OPTION: str(rows)})
                    cur.execute(sql, tuple(params) if params else None)
                    frame = cur.fetch_frame()
                    break
                except Exception as exc:
                    if not _is_adbc_type_mismatch(exc):
                        _raise_store_error(self, exc)
                finally:
                    with contextlib.suppress(Exception):
                        cur.close()
        if frame is None:  # mixed-type columns: the row path
            c = self.execute(sql, params)
            names = [d[0] for d in c.description]
            data = c.fetchall()
            frame = pl.DataFrame(data, schema=names, orient="row", infer_schema_length=None)
        assert isinstance(frame, pl.DataFrame)
        if schema:
            if frame.height == 0:
                return pl.DataFrame(schema={k: schema.get(k, frame.schema[k]) for k in frame.columns})
            frame = frame.with_columns(
                [pl.col(k).cast(v, strict=False) for k, v in schema.items() if k in frame.columns]
            )
        return frame

    # -- classes -----------------------------------------------------------------------------
    def sync_classes(self, names: Sequence[str]) -> None:
        """Mirror the workspace's class map into ``classes``; only appending is allowed."""
        if self.readonly:
            return
        stored = dict(self.execute("SELECT id, name FROM classes ORDER BY id").fetchall())
        for i, name in enumerate(names):
            if i in stored and stored[i] != name:
                raise StoreError(
                    f"class {i} is {stored[i]!r} in the store but {name!r} in tuiops.toml",
                    hint="the class map is append-only; restore the order in tuiops.toml "
                    "(renaming a class needs `tuiops classes rename`)",
                )
        missing = [(i, n) for i, n in enumerate(names) if i not in stored]
        extra = [i for i in stored if i >= len(names)]
        if extra:
            raise StoreError(
                f"the store knows classes {', '.join(repr(stored[i]) for i in extra)} missing from tuiops.toml",
                hint="add them back to [classes] names in tuiops.toml, in the same order",
            )
        if missing:
            with self.transaction() as conn:
                conn.executemany("INSERT INTO classes(id, name) VALUES (?, ?)", missing)

    def class_names(self) -> list[str]:
        return [r[0] for r in self.execute("SELECT name FROM classes ORDER BY id")]

    # -- names -------------------------------------------------------------------------------
    def label_set_id(self, name: str) -> int:
        sid = self.one("SELECT id FROM label_sets WHERE name = ?", (name,))
        if sid is None:
            known = [r[0] for r in self.execute("SELECT name FROM label_sets ORDER BY name")]
            raise NotFoundError(
                f"no label set named {name!r}",
                hint=f"known sets: {', '.join(known) or 'none'}; import one with `tuiops labels import`",
            )
        return int(sid)

    def run_id(self, name: str) -> int:
        rid = self.one("SELECT id FROM runs WHERE name = ?", (name,))
        if rid is None:
            known = [r[0] for r in self.execute("SELECT name FROM runs ORDER BY name")]
            raise NotFoundError(
                f"no detection run named {name!r}",
                hint=f"known runs: {', '.join(known) or 'none'}; import one with `tuiops dets import`",
            )
        return int(rid)

    def pool_id(self, name: str) -> int:
        pid = self.one("SELECT id FROM pools WHERE name = ?", (name,))
        if pid is None:
            known = [r[0] for r in self.execute("SELECT name FROM pools ORDER BY name")]
            raise NotFoundError(f"no pool named {name!r}", hint=f"known pools: {', '.join(known) or 'none'}")
        return int(pid)

    # -- bulk box I/O ------------------------------------------------------------------------
    def read_labels(self, set_name: str, *, with_extra: bool = False) -> pl.DataFrame:
        """All boxes of a label set: id, item_id, class_id, x1, y1, x2, y2 [, extra]."""
        sid = self.label_set_id(set_name)
        schema = box_schema(extra=with_extra)
        return self.read_frame(
            f"SELECT {', '.join(schema)} FROM labels WHERE id BETWEEN ? AND ? ORDER BY id",
            id_range(sid),
            schema,
        )

    def read_detections(self, run_name: str, *, with_extra: bool = False) -> pl.DataFrame:
        """All boxes of a detection run: id, item_id, class_id, x1, y1, x2, y2, score [, extra]."""
        rid = self.run_id(run_name)
        schema = box_schema(score=True, extra=with_extra)
        return self.read_frame(
            f"SELECT {', '.join(schema)} FROM detections WHERE id BETWEEN ? AND ? ORDER BY id",
            id_range(rid),
            schema,
        )

    def read_set_images(self, set_name: str) -> pl.DataFrame:
        """The images that belong to a label set (also those with no boxes): item_id, key, width, height."""
        sid = self.label_set_id(set_name)
        return self.read_frame(
            "SELECT s.item_id, i.key, i.width, i.height FROM set_images s JOIN items i ON i.id = s.item_id "
            "WHERE s.set_id = ? ORDER BY s.item_id",
            (sid,),
            image_size_schema(),
        )

    def read_run_images(self, run_name: str) -> pl.DataFrame:
        """The images a detection run processed (also those with no detections)."""
        rid = self.run_id(run_name)
        return self.read_frame(
            "SELECT r.item_id, i.key, i.width, i.height FROM run_images r JOIN items i ON i.id = r.item_id "
            "WHERE r.run_id = ? ORDER BY r.item_id",
            (rid,),
            image_size_schema(),
        )

    def read_items(self) -> pl.DataFrame:
        """Every item: id, key, booru, fid, width, height."""
        return self.read_frame(
            "SELECT id, key, booru, fid, width, height FROM items ORDER BY id",
            (),
            item_schema(),
        )

    # -- bulk box writes ----------------------------------------------------------------------
    def ensure_items(self, keys: pl.DataFrame, tx: BulkTx | None = None) -> pl.DataFrame:
        """Make sure every key has an item; returns ``keys`` with an ``item_id`` column.

        ``keys`` has a ``key`` column and optionally ``booru``, ``fid``, ``width``, ``height``.
        New items are inserted; an existing item's missing width/height are filled in,
        never overwritten.
        """
        import polars as pl

        if tx is None:
            with self.bulk() as own:
                return self.ensure_items(keys, own)
        want = keys.select(
            pl.col("key").cast(pl.String),
            *(
                (pl.col(c) if c in keys.columns else pl.lit(None)).cast(t).alias(c)
                for c, t in (
                    ("booru", pl.String),
                    ("fid", pl.Int64),
                    ("width", pl.Int64),
                    ("height", pl.Int64),
                )
            ),
        )
        # a key's size comes from a row that has one (its image), whatever the rows' order
        want = want.sort(pl.col("width").is_null(), maintain_order=True).unique(
            "key", keep="first", maintain_order=True
        )
        tx.ingest("_want_items", want, temporary=True, mode="replace")
        tx.execute(
            "INSERT INTO items(key, booru, fid, width, height) "
            "SELECT w.key, w.booru, w.fid, w.width, w.height FROM _want_items w "
            "WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.key = w.key)"
        )
        tx.execute(
            "UPDATE items SET width = w.width, height = w.height FROM _want_items w "
            "WHERE items.key = w.key AND items.width IS NULL AND w.width IS NOT NULL"
        )
        ids = tx.read_frame("SELECT i.key, i.id AS item_id FROM items i JOIN _want_items w ON w.key = i.key")
        tx.execute("DROP TABLE temp._want_items")
        ids = ids.with_columns(pl.col("item_id").cast(pl.Int64), pl.col("key").cast(pl.String))
        return keys.join(ids, on="key", how="left")

    def create_label_set(
        self,
        name: str,
        boxes: pl.DataFrame,
        images: pl.DataFrame,
        *,
        source: str | None = None,
        fmt: str | None = None,
        note: str | None = None,
        replace: bool = False,
        meta: str | None = None,
        tx: BulkTx | None = None,
    ) -> int:
        """Store a label set in one transaction; returns its id.

        ``boxes``: item_id, class_id, x1, y1, x2, y2 [, extra] in file order.
        ``images``: item_id [, source, meta] — every image of the set, also those with no boxes.
        ``meta``: JSON about the source file (e.g. its COCO categories).
        With ``replace`` an existing set of that name is replaced; otherwise it is an error.
        """
        if tx is None:
            with self.bulk() as own:
                return self.create_label_set(
                    name, boxes, images, source=source, fmt=fmt, note=note, replace=replace, meta=meta, tx=own
                )
        return self._create_box_table(
            tx,
            "label_sets",
            "set_images",
            "labels",
            "set_id",
            name,
            boxes,
            images,
            {"source": source, "format": fmt, "note": note, **({"meta": meta} if meta is not None else {})},
            replace,
            BOX_COLUMNS,
        )

    def create_run(
        self,
        name: str,
        boxes: pl.DataFrame,
        images: pl.DataFrame,
        *,
        source: str | None = None,
        fmt: str | None = None,
        weights: str | None = None,
        weights_sha256: str | None = None,
        epoch: int | None = None,
        conf: float | None = None,
        iou: float | None = None,
        params: Mapping[str, Any] | None = None,
        note: str | None = None,
        replace: bool = False,
        meta: str | None = None,
        tx: BulkTx | None = None,
    ) -> int:
        """Store a detection run (boxes with ``score``) with its lineage, in one transaction.

        ``meta``: JSON about the source file (e.g. its COCO categories).
        """
        if tx is None:
            with self.bulk() as own:
                return self.create_run(
                    name,
                    boxes,
                    images,
                    source=source,
                    fmt=fmt,
                    weights=weights,
                    weights_sha256=weights_sha256,
                    epoch=epoch,
                    conf=conf,
                    iou=iou,
                    params=params,
                    note=note,
                    replace=replace,
                    meta=meta,
                    tx=own,
                )
        head = {
            "source": source,
            "format": fmt,
            "weights": weights,
            "weights_sha256": weights_sha256,
            "epoch": epoch,
            "conf": conf,
            "iou": iou,
            "params": json.dumps(params, default=str) if params is not None else None,
            "note": note,
        }
        if meta is not None:
            head["meta"] = meta
        return self._create_box_table(
            tx,
            "runs",
            "run_images",
            "detections",
            "run_id",
            name,
            boxes,
            images,
            head,
            replace,
            (*BOX_COLUMNS, "score"),
        )

    def _create_box_table(
        self,
        tx: BulkTx,
        head: str,
        image_table: str,
        box_table: str,
        fk: str,
        name: str,
        boxes: pl.DataFrame,
        images: pl.DataFrame,
        meta: Mapping[str, Any],
        replace: bool,
        box_columns: Sequence[str],
    ) -> int:
        import polars as pl

        old = tx.one(f"SELECT id FROM {head} WHERE name = ?", (name,))
        if old is not None:
            if not replace:
                kind = "label set" if head == "label_sets" else "detection run"
                raise ConflictError(
                    f"a {kind} named {name!r} exists already",
                    hint="choose another name, or pass --replace to replace it",
                )
            self._delete_box_table(tx, head, image_table, box_table, fk, int(old))
        cols = ["name", "created", *meta]
        new_id = int(
            tx.one(
                f"INSERT INTO {head}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) RETURNING id",
                (name, utcnow(), *meta.values()),
            )
        )
        img_cols = [c for c in ("source", "meta") if c in images.columns]
        tx.ingest(
            image_table,
            images.select(
                pl.lit(new_id, pl.Int64).alias(fk),
                pl.col("item_id").cast(pl.Int64),
                *[pl.col(c).cast(pl.String) for c in img_cols],
            ).unique("item_id", keep="first", maintain_order=True),
        )
        missing = [c for c in box_columns if c not in boxes.columns]
        if missing:
            raise ValueError(f"box frame lacks columns {missing}")
        if new_id > MAX_OWNER:
            raise StoreError(f"the store holds too many label sets or runs ({new_id}); drop some")

        def describe(item_id: int) -> str:
            key = tx.one("SELECT key FROM items WHERE id = ?", (item_id,))
            source = None
            if "source" in images.columns:
                rows = images.filter(pl.col("item_id") == item_id)["source"]
                source = rows[0] if len(rows) else None
            return f"image {key!r}" + (f" (from {source})" if source else "")

        values = [c for c in box_columns if c not in ("item_id", "class_id")]
        tx.ingest(box_table, box_frame(new_id, boxes, values, describe=describe))
        return new_id

    def _delete_box_table(
        self, tx: BulkTx, head: str, image_table: str, box_table: str, fk: str, old_id: int
    ) -> None:
        tx.execute(f"DELETE FROM {box_table} WHERE id BETWEEN ? AND ?", id_range(old_id))
        tx.execute(f"DELETE FROM {image_table} WHERE {fk} = ?", (old_id,))
        tx.execute(f"DELETE FROM {head} WHERE id = ?", (old_id,))

    def drop_label_set(self, name: str) -> None:
        sid = self.label_set_id(name)
        with self.bulk() as tx:
            self._delete_box_table(tx, "label_sets", "set_images", "labels", "set_id", sid)

    def drop_run(self, name: str) -> None:
        rid = self.run_id(name)
        with self.bulk() as tx:
            self._delete_box_table(tx, "runs", "run_images", "detections", "run_id", rid)

    # -- jobs --------------------------------------------------------------------------------
    def job_start(self, kind: str, params: Mapping[str, Any], total: int | None = None) -> int:
        now = utcnow()
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO jobs(kind, status, params, created, started, total, pid) VALUES (?, 'running', ?, ?, ?, ?, ?)",
                (kind, json.dumps(params, default=str), now, now, total, os.getpid()),
            )
            return int(cur.lastrowid or 0)

    def job_progress(
        self, job_id: int, done: int, total: int | None = None, message: str | None = None
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET done = ?, total = COALESCE(?, total), message = COALESCE(?, message) WHERE id = ?",
                (done, total, message, job_id),
            )

    def job_finish(
        self, job_id: int, status: str, *, result: Mapping[str, Any] | None = None, error: str | None = None
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET status = ?, finished = ?, result = ?, error = ? WHERE id = ?",
                (
                    status,
                    utcnow(),
                    json.dumps(result, default=str) if result is not None else None,
                    error,
                    job_id,
                ),
            )


def box_frame(
    owner_id: int,
    boxes: pl.DataFrame,
    value_columns: Sequence[str],
    first_ord: int = 0,
    describe: Callable[[int], str] | None = None,
) -> pl.DataFrame:
    """The rows to store for ``boxes`` of one set or run: composite ids in file order.

    ``boxes`` has ``item_id`` and ``class_id`` and the value columns (``x1…y2``[, ``score``])
    and optionally ``extra`` and (labels) the :data:`COCO_LABEL_COLUMNS`; the boxes of one
    image keep their relative order.
    ``describe`` names an image (by item id) in the error for one with too many boxes.
    """
    import polars as pl

    from tuiops.errors import InputError

    idx = pl.int_range(pl.len(), dtype=pl.Int64)
    new_image = (pl.col("item_id") != pl.col("item_id").shift(1)).fill_null(True)
    start = pl.when(new_image).then(idx).otherwise(None).forward_fill()
    frame = boxes.with_columns(pl.col("item_id").cast(pl.Int64))
    if frame.height and not frame["item_id"].is_sorted():
        frame = frame.sort("item_id", maintain_order=True)
    frame = frame.with_columns(_ord=idx - start + first_ord)
    if frame.height:
        too_many = frame.filter(pl.col("_ord") > MAX_ORD)
        if too_many.height:
            item = int(too_many["item_id"][0])
            n = int((frame["item_id"] == item).sum()) + first_ord
            what = describe(item) if describe is not None else f"image item {item}"
            raise InputError(
                f"{what} has {n} boxes; a label set or run holds at most {MAX_ORD + 1} per image",
                hint="run NMS or raise the confidence threshold before storing",
            )
        if frame["item_id"].max() > MAX_ITEM or frame["item_id"].min() < 0:  # type: ignore[operator]
            raise StoreError("an item id is out of range for the store's box ids")
    sel = [
        (
            (pl.lit(owner_id, pl.Int64) * (1 << OWNER_SHIFT))
            + pl.col("item_id") * (1 << ITEM_SHIFT)
            + pl.col("_ord")
        ).alias("id"),
        pl.col("class_id").cast(pl.Int64),
        *[pl.col(c).cast(pl.Float64) for c in value_columns],
    ]
    if "extra" in boxes.columns:
        sel.append(pl.col("extra").cast(pl.String))
    for col, dtype in COCO_LABEL_COLUMNS.items():
        if col in boxes.columns:
            sel.append(pl.col(col).cast(getattr(pl, dtype)))
    return frame.select(sel)


class BulkTx:
    """Statements and Arrow ingest inside one ADBC write transaction."""

    def __init__(self, store: Store, cursor: Any) -> None:
        self.store = store
        self.cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; returns its rows (use ``RETURNING`` to get new ids)."""
        _wrap(self.store, self.cursor.execute, sql, tuple(params) if params else None)
        try:
            return list(self.cursor.fetchall())
        except Exception:
            return []

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.execute(sql, params)
        return rows[0][0] if rows else None

    def ingest(
        self, table: str, frame: pl.DataFrame, *, temporary: bool = False, mode: str = "append"
    ) -> int:
        """Append a polars frame to ``table`` (columns by name); returns the row count.

        With ``temporary`` the table is a connection-local temp table (``mode="replace"``
        creates it from the frame's schema).
        """
        if frame.height == 0 and mode == "append":
            return 0
        _wrap(self.store, self.cursor.ingest, table, frame, mode=mode, temporary=temporary)
        return frame.height

    def read_frame(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        _wrap(self.store, self.cursor.execute, sql, tuple(params) if params else None)
        return self.cursor.fetch_frame()


def _wrap(store: Store, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call an ADBC function, turning driver errors into tuiops errors."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        _raise_store_error(store, exc)


def _raise_store_error(store: Store, exc: Exception) -> None:
    if isinstance(exc, TuiopsError):
        raise exc
    text = str(exc)
    if "UNIQUE constraint" in text or "FOREIGN KEY constraint" in text:
        raise ConflictError(f"store constraint failed: {text}") from exc
    if "database is locked" in text or "busy" in text.lower():
        raise StoreError(
            f"store {store.path} is locked by another tuiops process", hint="wait for it or stop it"
        ) from exc
    full = disk_full_error(store.path, exc)
    if full is not None:
        raise full from exc
    raise StoreError(f"store {store.path}: {text}") from exc


#: Below this many free bytes an I/O error of the store is taken for a full file system.
LOW_SPACE = 1 << 20
_FULL_HINT = "free space on that file system and run the command again"


def _free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def disk_full_error(path: Path, exc: BaseException, what: str | None = None) -> DiskError | None:
    """A :class:`DiskError` when SQLite failed on the store ``path`` for want of space, else None.

    ``what`` begins the message (default: ``store PATH``).

    SQLite says so itself (``SQLITE_FULL``, "database or disk is full") when a write of
    the database or its log finds no space; growing the shared-memory index
    (``tuiops.db-shm``) on a full file system fails as a plain "disk I/O error", which is
    taken for a full disk when the file system has less than ``LOW_SPACE`` bytes free.
    """
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc)
    full = name == "SQLITE_FULL" or "database or disk is full" in text
    if not full and (name.startswith("SQLITE_IOERR") or "disk I/O error" in text):
        free = _free_bytes(path.parent)
        full = free is not None and free < LOW_SPACE
    if not full:
        return None
    free = _free_bytes(path.parent)
    left = f" ({free:,} bytes free)" if free is not None else ""
    return DiskError(f"{what or f'store {path}'}: the disk is full{left}", hint=_FULL_HINT)


def _open_error(path: Path, exc: sqlite3.DatabaseError, step: str) -> TuiopsError:
    """The error for a store that cannot be opened: a full disk, a file system without
    the WAL's shared memory, or a file that is not a store."""
    full = disk_full_error(path, exc, f"cannot open store {path}")
    if full is not None:
        return full
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(f"store {path} is locked by another tuiops process", hint="wait for it or stop it")
    at_wal = step == "wal" and name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY"))
    if at_wal or name.startswith(("SQLITE_IOERR_SHM", "SQLITE_PROTOCOL")):
        return StoreError(
            f"cannot open store {path}: its write-ahead log ({path.name}-wal, {path.name}-shm "
            f"beside it) cannot be set up: {exc} ({name or 'no code'})",
            hint="the store needs a local file system with shared memory (not NFS or SMB) "
            "where its folder is writable",
        )
    return StoreError(
        f"cannot open store {path}: {exc}",
        hint="is it a tuiops.db? is its folder writable? restore it from a backup if it is damaged",
    )


def _split_sql(sql: str) -> list[str]:
    """Split a migration script into statements (``sqlite3.complete_statement`` aware)."""
    out: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
