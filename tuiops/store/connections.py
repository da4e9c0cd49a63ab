"""Every connection to a store file, and the two rules that keep two SQLite libraries safe on it.

The store reaches ``tuiops.db`` through two copies of SQLite in one process: Python's
``sqlite3`` (small statements, schema, migrations, row-typed queries) and the copy inside
the ADBC driver (Arrow ingest and reads of boxes; see ``docs/store.md`` for why both).
SQLite coordinates the connections of *one* copy within a process in memory and other
processes through POSIX locks; two copies see each other only through POSIX locks, and a
process's POSIX locks never conflict with themselves and belong to the process, not to a
descriptor. Hence the two rules, both kept here and nowhere else:

1. **No connection is closed before the process exits.** Closing any descriptor of the
   file (or of its ``-shm``) drops every lock the process holds on it, the other copy's
   included; another process could then take the database for itself, checkpoint and
   delete the write-ahead log under this one. A closed store hands its connections back to
   :data:`POOL` and the next store of that file reuses them.
2. **The two copies never work on the file at the same time.** Each copy's write lock,
   read marks and checkpoints are invisible to the other inside one process: a write through
   one while a transaction of the other is open commits over it (a lost commit), and a
   checkpoint or log restart by one runs under the other's readers. Every statement and
   transaction of a store holds :class:`Gate` for its library: transactions of one library
   run side by side (SQLite orders them), the other library's wait until they are done.

Opening the ADBC copy's first connection (which may rebuild the shared-memory index it takes
for stale) also happens inside the gate, so no ``sqlite3`` transaction sees it.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuiops.errors import StoreError

BUSY_TIMEOUT_MS = 30_000

SQLITE3 = "sqlite3"
ADBC = "adbc"
_OTHER = {SQLITE3: ADBC, ADBC: SQLITE3}


class Gate:
    """Keeps the two SQLite libraries' work on one file apart within this process.

    ``use(lib)`` waits while the other library is in use by another thread; entries of one
    library share the gate. Waiters are served in arrival order between the libraries (a
    library that is in use takes no newcomers while the other one waits), so neither
    starves. A thread that holds the gate enters again without waiting (it cannot run two
    things at once), but not to open a write transaction through the other library while
    it is writing through one: that would be two writers in one process that SQLite cannot
    tell apart, and it is refused.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.active = {SQLITE3: 0, ADBC: 0}
        self.waiting: dict[str, set[int]] = {SQLITE3: set(), ADBC: set()}
        self._tickets = itertools.count()
        self._local = threading.local()

    def _held(self) -> dict[str, int]:
        held = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = {SQLITE3: 0, ADBC: 0, "write_" + SQLITE3: 0, "write_" + ADBC: 0}
        return held

    def use(self, lib: str, *, write: bool = False) -> _Entry:
        """Hold the gate for ``lib`` (``write``: for a write transaction) while a ``with`` block runs."""
        return _Entry(self, lib, write)

    def _enter(self, lib: str, write: bool) -> None:
        held = self._held()
        other = _OTHER[lib]
        if write and held["write_" + other]:
            raise StoreError(
                f"a write transaction through {lib} was opened inside one through {other} in the "
                "same thread; the store's two SQLite libraries cannot write at the same time",
                hint="do the whole change in one `Store.transaction()` or one `Store.bulk()`",
            )
        with self.cond:
            nested = held[SQLITE3] or held[ADBC]
            if not nested and (self.active[other] or self.waiting[other]):
                ticket = next(self._tickets)
                self.waiting[lib].add(ticket)
                self.cond.notify_all()  # a waiter is news too (for whoever watches the gate)
                try:
                    self.cond.wait_for(
                        lambda: (
                            self.active[other] == 0
                            and (not self.waiting[other] or min(self.waiting[other]) > ticket)
                        )
                    )
                finally:
                    self.waiting[lib].discard(ticket)
            self.active[lib] += 1
        held[lib] += 1
        if write:
            held["write_" + lib] += 1

    def _exit(self, lib: str, write: bool) -> None:
        held = self._held()
        held[lib] -= 1
        if write:
            held["write_" + lib] -= 1
        with self.cond:
            self.active[lib] -= 1
            if self.waiting[SQLITE3] or self.waiting[ADBC]:
                self.cond.notify_all()


class _Entry:
    """One ``with`` block holding a :class:`Gate`."""

    __slots__ = ("gate", "lib", "write")

    def __init__(self, gate: Gate, lib: str, write: bool) -> None:
        self.gate, self.lib, self.write = gate, lib, write

    def __enter__(self) -> None:
        self.gate._enter(self.lib, self.write)

    def __exit__(self, *exc: object) -> None:
        self.gate._exit(self.lib, self.write)


class Pool:
    """Open connections of each store file, kept until the process exits (rule 1)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.free: dict[tuple[str, str, bool], list[Any]] = {}
        self.gates: dict[str, Gate] = {}
        self.primed: set[str] = set()
        self.all: list[Any] = []
        atexit.register(self.close_all)

    def gate(self, path: Path) -> Gate:
        with self.lock:
            return self.gates.setdefault(str(path), Gate())

    def prime(self, path: Path) -> bool:
        """True the first time it is asked about ``path``: open both libraries' connections now."""
        with self.lock:
            if str(path) in self.primed:
                return False
            self.primed.add(str(path))
            return True

    def take(self, path: Path, kind: str, readonly: bool) -> Any:
        with self.lock:
            conns = self.free.get((str(path), kind, readonly))
            return conns.pop() if conns else None

    def give(self, path: Path, kind: str, readonly: bool, conn: Any) -> None:
        with self.lock:
            self.free.setdefault((str(path), kind, readonly), []).append(conn)

    def track(self, conn: Any) -> None:
        with self.lock:
            self.all.append(conn)

    def close_all(self) -> None:
        """Close every connection; only at exit, when no store is in use any more."""
        with self.lock:
            conns, self.all = self.all, []
            self.free.clear()
        for conn in reversed(conns):
            with contextlib.suppress(Exception):
                conn.close()


#: The process's connections and gates, one per store file.
POOL = Pool()


def open_sqlite3(path: Path, readonly: bool) -> sqlite3.Connection:
    """A ``sqlite3`` connection to ``path`` from the pool, or a new one (kept until exit).

    Raises ``OSError`` and ``sqlite3.DatabaseError`` (with ``step`` set to ``"wal"`` when
    the write-ahead log could not be set up) for the store to word.
    """
    pooled = POOL.take(path, SQLITE3, readonly)
    if pooled is not None:
        return pooled
    with POOL.gate(path).use(SQLITE3):
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            POOL.track(conn)
            conn.execute("PRAGMA query_only=ON")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            POOL.track(conn)
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                exc.step = "wal"  # type: ignore[attr-defined]
                raise
            if mode.lower() != "wal":
                raise StoreError(f"store {path}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA mmap_size=268435456")
    return conn


#: The pool's kind of the connections that run user SQL with the user schema attached.
USER = "user"


def open_user_sqlite3(path: Path) -> sqlite3.Connection:
    """A ``sqlite3`` connection for user SQL, from the pool or new (kept until exit).

    The store ``path`` is opened read-only (``mode=ro``): nothing run on this connection can
    write it, whatever the authorizer lets through. The caller attaches the user schema
    (:mod:`tuiops.store.user`) and gives the connection back to :data:`POOL` under
    :data:`USER`. Never closed before exit (rule 1): it holds the store file open.
    """
    pooled = POOL.take(path, USER, False)
    if pooled is not None:
        return pooled
    with POOL.gate(path).use(SQLITE3):
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        POOL.track(conn)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
    return conn


@contextlib.contextmanager
def scratch_database() -> Iterator[sqlite3.Connection]:
    """A private in-memory ``sqlite3`` database for a computation over a frame (a user's
    condition on per-image figures, say), closed on the way out.

    It holds no file, so closing it cannot drop a lock or reset the WAL of a store file.
    """
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def open_adbc(path: Path, readonly: bool) -> Any:
    """An ADBC connection to ``path`` (autocommit; explicit BEGIN/COMMIT) from the pool, or a new one."""
    pooled = POOL.take(path, ADBC, readonly)
    if pooled is not None:
        return pooled
    from tuiops.store import arrow_sqlite

    with POOL.gate(path).use(ADBC):
        uri = f"file:{path}?mode=ro" if readonly else str(path)
        conn = arrow_sqlite.connect(uri)
        POOL.track(conn)
        with contextlib.closing(conn.cursor()) as cur:
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if not readonly:
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA cache_size=-262144")
            cur.execute("PRAGMA temp_store=MEMORY")
            # open the shared-memory index now, inside the gate (see the module's notes)
            cur.execute("SELECT count(*) FROM sqlite_master")
            cur.fetchall()
    return conn


class Rows(sqlite3.Cursor):
    """The rows of a finished ``sqlite3`` statement, read while the gate was held.

    A ``sqlite3`` cursor keeps its read transaction open until it is read to the end; the
    store reads it to the end at once, so no transaction outlives the gate, and hands back
    this cursor over the rows instead.
    """

    def __init__(self, conn: sqlite3.Connection, cur: sqlite3.Cursor) -> None:
        super().__init__(conn)
        self._description = cur.description
        self._rows = iter(cur.fetchall())
        self._lastrowid = cur.lastrowid
        self._rowcount = cur.rowcount

    @property
    def description(self) -> Any:
        return self._description

    @property
    def lastrowid(self) -> int | None:
        return self._lastrowid

    @property
    def rowcount(self) -> int:
        return self._rowcount

    def __iter__(self) -> Rows:
        return self

    def __next__(self) -> Any:
        return next(self._rows)

    def fetchone(self) -> Any:
        return next(self._rows, None)

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return list(itertools.islice(self._rows, size or self.arraysize))
