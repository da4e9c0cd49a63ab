"""Two SQLite libraries in one process (stdlib ``sqlite3`` and the ADBC driver's copy) on one store.

POSIX locks belong to a process, not to a file descriptor: when either library closes a
descriptor of ``tuiops.db`` or its ``-shm``, the process loses every lock the other library
holds on that file, and a library opening its first connection takes the other library's
shared-memory index for a stale one and resets it. The store never closes a connection
before the process exits (``tuiops.store.connections``); these tests open, use and close
stores of both libraries from threads while a second process writes, and check that the
second process never gets the write lock this process holds, that its closing connection
never resets the write-ahead log under this one, and that every row written through one
library is read through the other.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from tuiops.store import Store
from tuiops.store.connections import POOL

#: A second process answering one line per command on stdin; every connection it opens is
#: its only one, so closing it is a last close (which checkpoints and deletes the log when
#: it can lock the whole database).
PROBE = r"""
import sqlite3, sys
path = sys.argv[1]

def connect(timeout):
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    return conn

for line in sys.stdin:
    cmd, *args = line.split()
    try:
        if cmd == "try-write":
            conn = connect(0)
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                print("locked" if "locked" in str(exc) else f"error {exc}", flush=True)
            else:
                conn.execute("ROLLBACK")
                print("got", flush=True)
            conn.close()
        elif cmd == "write":
            for i in range(int(args[0])):
                conn = connect(30)
                conn.execute(
                    "INSERT INTO jobs(kind, status, created) VALUES ('probe', 'done', ?)", (str(i),)
                )
                conn.close()
            print("wrote", flush=True)
        elif cmd == "count":
            conn = connect(30)
            print(conn.execute("SELECT count(*) FROM jobs WHERE kind = ?", (args[0],)).fetchone()[0], flush=True)
            conn.close()
        elif cmd == "check":
            conn = connect(30)
            print(conn.execute("PRAGMA integrity_check").fetchone()[0], flush=True)
            conn.close()
    except Exception as exc:
        print(f"error {exc}", flush=True)
"""


class Probe:
    """The second process: each call sends one command and waits for its answer."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PROBE, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def answer(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def ask(self, cmd: str) -> str:
        self.send(cmd)
        return self.answer()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "tuiops.db"
    Store(path).close()
    yield path


@pytest.fixture
def probe(db: Path) -> Iterator[Probe]:
    p = Probe(db)
    yield p
    p.close()


def _job(kind: str) -> tuple[str, tuple[str, str, str]]:
    """A statement that records one job row of ``kind``."""
    return "INSERT INTO jobs(kind, status, created) VALUES (?, ?, ?)", (kind, "done", "x")


def _threads(*targets: Callable[[], None]) -> None:
    """Run ``targets`` in threads side by side and re-raise what any of them raised."""
    errors: list[BaseException] = []

    def run(fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(fn,)) for fn in targets]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors, errors


def _churn(db: Path, *, write: bool, rounds: int = 3) -> None:
    """Two threads that open stores (read-write and read-only), use both libraries and close them."""

    def work() -> None:
        for _ in range(rounds):
            for readonly in (False, True):
                with Store(db, readonly=readonly) as s:
                    s.one("SELECT count(*) FROM jobs")
                    s.read_frame("SELECT id, kind FROM jobs ORDER BY id")
                    if write and not readonly:
                        sql, params = _job("thread-sqlite3")
                        s.execute(sql, params)
                        with s.bulk() as tx:
                            tx.execute(*_job("thread-adbc"))
                            row = {"kind": ["thread-arrow"], "status": ["done"], "created": ["x"]}
                            tx.ingest("jobs", pl.DataFrame(row))

    _threads(work, work)


def _read_and_close(stores: list[Store], lib: str) -> None:
    """Threads that read through ``lib`` on each of ``stores`` and close it."""

    def work(s: Store) -> Callable[[], None]:
        def run() -> None:
            if lib == "sqlite3":
                s.one("SELECT count(*) FROM jobs")
            else:
                s.read_frame("SELECT id, kind FROM jobs ORDER BY id")
            s.close()

        return run

    _threads(*(work(s) for s in stores))


def _count(store: Store, kind: str) -> tuple[int, int]:
    """Rows of ``kind`` as stdlib sqlite3 and as the ADBC driver read them."""
    through_sqlite3 = store.one("SELECT count(*) FROM jobs WHERE kind = ?", (kind,))
    through_adbc = store.read_frame("SELECT count(*) AS n FROM jobs WHERE kind = ?", (kind,))["n"][0]
    return int(through_sqlite3), int(through_adbc)


@pytest.mark.parametrize("holder", ["sqlite3", "adbc"])
def test_a_write_transaction_keeps_every_other_writer_out(db: Path, probe: Probe, holder: str) -> None:
    """While this process writes through one library, neither a second process nor this
    process's other library gets to write; stores of the same library opened and closed
    meanwhile leave the lock where it is."""
    other = "adbc" if holder == "sqlite3" else "sqlite3"
    main = Store(db)
    gate = POOL.gate(main.path)
    wrote: list[str] = []
    errors: list[BaseException] = []

    def write_through_other() -> None:
        try:
            with Store(db) as s:
                if other == "sqlite3":
                    s.execute(*_job("other"))
                else:
                    with s.bulk() as tx:
                        tx.execute(*_job("other"))
        except BaseException as exc:
            errors.append(exc)
        with gate.cond:
            wrote.append(other)
            gate.cond.notify_all()

    try:
        _churn(db, write=True)
        assert probe.ask("try-write") == "got"
        # opening a store reads through sqlite3, which waits for an ADBC write: open them first
        readers = [Store(db, readonly=readonly) for readonly in (False, True, False, True)]
        with main.transaction() if holder == "sqlite3" else main.bulk() as tx:
            tx.execute(*_job("held"))
            assert probe.ask("try-write") == "locked"
            _read_and_close(readers, holder)
            assert probe.ask("try-write") == "locked"
            thread = threading.Thread(target=write_through_other)
            thread.start()
            with gate.cond:  # the other library's writer either waits for this transaction or wrote
                gate.cond.wait_for(lambda: wrote or gate.waiting[other])
            assert not wrote, f"{other} wrote while a {holder} write transaction was open"
            assert probe.ask("try-write") == "locked"
        thread.join()
        assert not errors, errors
        assert probe.ask("try-write") == "got"
        assert _count(main, "held") == (1, 1)
        assert _count(main, "other") == (1, 1)
        assert probe.ask("count held") == "1"
        assert probe.ask("count other") == "1"
        assert probe.ask("check") == "ok"
    finally:
        main.close()


def test_a_closing_second_process_never_resets_the_log_under_this_one(db: Path, probe: Probe) -> None:
    """Concurrent writers in both processes; the second one's last close leaves the log alone."""
    main = Store(db)
    try:
        main.read_frame("SELECT count(*) AS n FROM jobs")
        main.one("SELECT count(*) FROM jobs")
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        shm_inode = shm.stat().st_ino
        probe.send("write 100")  # the second process writes while threads here write and close
        _churn(db, write=True, rounds=4)
        assert probe.answer() == "wrote"
        assert wal.exists() and shm.exists(), "the write-ahead log was deleted under an open store"
        assert shm.stat().st_ino == shm_inode, "the shared-memory index was replaced under an open store"
        with main.bulk() as tx:  # written after the second process's last close: must reach it
            tx.execute(*_job("after"))
        sql, params = _job("after")
        main.execute(sql, params)
        assert probe.ask("count after") == "2"
        assert probe.ask("count probe") == "100"
        assert _count(main, "probe") == (100, 100)
        for kind in ("thread-sqlite3", "thread-adbc", "thread-arrow"):
            assert _count(main, kind) == (8, 8)
        assert probe.ask("check") == "ok"
        assert main.one("PRAGMA integrity_check") == "ok"
    finally:
        main.close()


def test_sql_on_the_connection_holds_the_adbc_side_off(db: Path) -> None:
    """``Store.connection()`` keeps ADBC work of other threads waiting until the block ends."""
    main = Store(db)
    reader = Store(db, readonly=True)
    gate = POOL.gate(main.path)
    read: list[int] = []

    def read_through_adbc() -> None:
        n = reader.read_frame("SELECT count(*) AS n FROM jobs")["n"][0]
        with gate.cond:
            read.append(int(n))
            gate.cond.notify_all()

    try:
        with main.connection() as conn:
            conn.execute(*_job("raw"))
            thread = threading.Thread(target=read_through_adbc)
            thread.start()
            with gate.cond:
                gate.cond.wait_for(lambda: read or gate.waiting["adbc"])
            assert not read, "ADBC read while the sqlite3 connection was in use"
        thread.join()
        assert read == [1]
    finally:
        reader.close()
        main.close()


def test_only_the_store_opens_sqlite_connections() -> None:
    """Every connection to a store file comes from ``tuiops.store``, which never closes one early."""
    root = Path(__file__).resolve().parents[1] / "tuiops"
    openers = {"sqlite3.connect", "adbc_driver_sqlite", "apsw", "sqlite_utils"}
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("store/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                name = f"{node.value.id}.{node.attr}"
            elif isinstance(node, ast.Import):
                name = next((a.name for a in node.names if a.name.split(".")[0] in openers), None)
            elif isinstance(node, ast.ImportFrom) and node.module:
                name = node.module if node.module.split(".")[0] in openers else None
            if name and (name in openers or name.split(".")[0] in openers - {"sqlite3"}):
                found.append(f"{rel}:{node.lineno}: {name}")
    assert not found, found
    assert os.path.exists(root / "store" / "connections.py")


def test_sql_outside_the_store_goes_through_its_gate() -> None:
    """Code outside ``tuiops.store`` reaches the sqlite3 connection only through
    ``Store.connection()`` (held for sqlite3 while it runs), never through ``store.conn``."""
    root = Path(__file__).resolve().parents[1] / "tuiops"
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("store/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "conn"
                and isinstance(node.value, (ast.Name, ast.Attribute))
                and (node.value.id if isinstance(node.value, ast.Name) else node.value.attr).endswith("store")
            ):
                found.append(f"{rel}:{node.lineno}")
    assert not found, found
