"""The store: migrations, WAL, bulk I/O, class map, transactions."""

from __future__ import annotations

import sqlite3

import numpy as np
import polars as pl
import pytest

from tests.conftest import add_items
from tuiops.errors import ConflictError, NotFoundError, StoreError
from tuiops.store import Store
from tuiops.store.schema import all_migrations
from tuiops.workspace import Workspace


def test_migrations_recorded_and_wal(ws):
    names = [r[0] for r in ws.store.execute("SELECT name FROM migrations ORDER BY rowid")]
    assert names == [n for n, _ in all_migrations()]
    assert ws.store.one("PRAGMA journal_mode") == "wal"
    # reopening applies nothing new
    s2 = Store(ws.db_path)
    assert s2.migrate() == []
    s2.close()


def test_newer_store_is_refused(ws):
    ws.store.execute("INSERT INTO migrations(name, applied) VALUES ('9999_future', 'x')")
    ws.close()
    with pytest.raises(StoreError, match="newer tuiops"):
        Store(ws.db_path)


def test_not_a_database(tmp_path):
    bad = tmp_path / "tuiops.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        Store(bad)


def test_class_map_is_append_only(ws):
    ws.config.classes[0], ws.config.classes[1] = ws.config.classes[1], ws.config.classes[0]
    with pytest.raises(StoreError, match="class 0"):
        ws.store.sync_classes(ws.config.classes)


def test_label_set_roundtrip_and_replace(ws):
    items = add_items(ws, [f"danbooru_{i}" for i in range(100)])
    rng = np.random.default_rng(1)
    n = 400
    boxes = pl.DataFrame(
        {
            "item_id": np.repeat(items["item_id"].to_numpy(), 4),
            "class_id": rng.integers(0, 5, n),
            "x1": rng.random(n) * 100,
            "y1": rng.random(n) * 100,
            "x2": rng.random(n) * 100 + 100,
            "y2": rng.random(n) * 100 + 100,
        }
    )
    ws.store.create_label_set("master", boxes, items.select("item_id"))
    back = ws.store.read_labels("master")
    assert back.drop("id").equals(boxes.with_columns(pl.col("class_id").cast(pl.Int32)))
    with pytest.raises(ConflictError):
        ws.store.create_label_set("master", boxes, items.select("item_id"))
    ws.store.create_label_set("master", boxes.head(3), items.select("item_id"), replace=True)
    assert ws.store.read_labels("master").height == 3
    assert ws.store.one("SELECT count(*) FROM set_images") == 100
    with pytest.raises(NotFoundError, match="no label set named 'nope'"):
        ws.store.read_labels("nope")


def test_failed_bulk_transaction_leaves_nothing(ws):
    items = add_items(ws, ["danbooru_1"])
    boxes = pl.DataFrame(
        {"item_id": [1], "class_id": [0], "x1": [0.0], "y1": [0.0], "x2": [1.0], "y2": [1.0]}
    )
    with pytest.raises(RuntimeError), ws.store.bulk() as tx:
        ws.store.create_label_set("half", boxes, items.select("item_id"), tx=tx)
        raise RuntimeError("boom in the middle")
    assert ws.store.one("SELECT count(*) FROM labels") == 0
    assert ws.store.one("SELECT count(*) FROM label_sets") == 0


def test_run_lineage(ws):
    items = add_items(ws, ["gelbooru_5"])
    boxes = pl.DataFrame(
        {
            "item_id": items["item_id"],
            "class_id": [1],
            "x1": [1.0],
            "y1": [2.0],
            "x2": [3.0],
            "y2": [4.0],
            "score": [0.9],
        }
    )
    ws.store.create_run(
        "v41", boxes, items.select("item_id"), weights="best.pt", weights_sha256="ab" * 32, epoch=7, conf=0.25
    )
    row = ws.store.execute(
        "SELECT weights, weights_sha256, epoch, conf FROM runs WHERE name='v41'"
    ).fetchone()
    assert row == ("best.pt", "ab" * 32, 7, 0.25)
    assert ws.store.read_detections("v41")["score"].to_list() == [0.9]


def test_readers_see_commits_while_writer_open(ws):
    add_items(ws, ["danbooru_1", "danbooru_2"])
    other = sqlite3.connect(ws.db_path)
    assert other.execute("SELECT count(*) FROM items").fetchone()[0] == 2
    other.close()


def test_workspace_find_from_subfolder(ws, monkeypatch):
    sub = ws.root / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.delenv("TUIOPS_WORKSPACE", raising=False)
    found = Workspace.find(cwd=sub)
    assert found.root == ws.root
    found.close()


def test_stores_opened_and_closed_across_threads_keep_the_file_sound(ws):
    """Readers opening and closing stores while another thread writes through both libraries."""
    import threading

    items = add_items(ws, [f"danbooru_{i}" for i in range(200)])
    rng = np.random.default_rng(3)
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for k in range(15):
                n = 2000
                boxes = pl.DataFrame(
                    {
                        "item_id": np.repeat(items["item_id"].to_numpy(), n // 200),
                        "class_id": rng.integers(0, 5, n),
                        "x1": rng.random(n),
                        "y1": rng.random(n),
                        "x2": rng.random(n) + 1,
                        "y2": rng.random(n) + 1,
                    }
                )
                with Store(ws.db_path) as s:
                    s.create_label_set(f"s{k}", boxes, items.select("item_id"))
                    s.execute("INSERT INTO jobs(kind, status, created) VALUES ('t', 'done', 'x')")
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                with Store(ws.db_path, readonly=True) as s:
                    s.read_frame("SELECT count(*) AS n FROM labels")
                    s.one("SELECT count(*) FROM label_sets")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer), *[threading.Thread(target=reader) for _ in range(2)]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert ws.store.one("PRAGMA integrity_check") == "ok"
    assert ws.store.one("SELECT count(*) FROM label_sets") == 15
    assert ws.store.one("SELECT count(*) FROM labels") == 15 * 2000


def test_match_objects_of_an_older_store_get_category_codes(tmp_path):
    """A store written before categories were coded keeps every object's category."""
    import sqlite3

    from tuiops.store.db import Store, _split_sql

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
    for name, sql in all_migrations():
        if name == "0101_match_codes":
            continue
        for statement in _split_sql(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO migrations VALUES (?, 'then')", (name,))
    conn.execute(
        "INSERT INTO matches(id, name, set_name, run_name, iou, low, conf, created) "
        "VALUES (1, 'gt__r', 'gt', 'r', 0.5, 0.1, 0.25, 'then')"
    )
    cats = ["tp", "loc", "cls", "dup", "fp", "fn"]
    for i, cat in enumerate(cats):
        conn.execute(
            "INSERT INTO match_objects(id, category, cost, worst_rank) VALUES (?, ?, ?, ?)",
            ((1 << 44) | (7 << 13) | i, cat, i / 10, i + 1),
        )
    conn.close()

    store = Store(path)
    try:
        rows = store.execute(
            "SELECT category, code, cost, worst_rank, match_id, item_id FROM match_objects ORDER BY id"
        )
        assert [tuple(r) for r in rows] == [(c, i, i / 10, i + 1, 1, 7) for i, c in enumerate(cats)]
        assert store.execute("SELECT COUNT(*) FROM match_objects WHERE category = 'fn'").fetchone()[0] == 1
        assert "o.category" in store.one("SELECT sql FROM sqlite_master WHERE name = 'v_match_objects'")
        plan = " ".join(
            str(r[-1])
            for r in store.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM match_objects WHERE match_id = 1 AND category = 'fp' "
                "AND worst_rank IS NOT NULL ORDER BY worst_rank"
            )
        )
        assert "match_objects_worst" in plan
    finally:
        store.close()


def test_read_frame_takes_columns_whose_type_shows_late_and_mixed_ones(ws):
    """A column null for the first batch and text later is read again in one batch, every
    value as stored; a column holding both numbers and text comes back as text."""
    from tuiops.store.db import READ_BATCH_ROWS

    n = READ_BATCH_ROWS + 10
    with ws.store.transaction() as conn:
        conn.execute("CREATE TABLE late (i INTEGER, t TEXT, m)")
        conn.executemany(
            "INSERT INTO late VALUES (?, ?, ?)",
            ((i, None if i < n - 5 else f"t{i}", i if i % 2 else f"s{i}") for i in range(n)),
        )
    frame = ws.store.read_frame("SELECT i, t FROM late ORDER BY i")
    assert frame.height == n and frame.schema["t"] == pl.String
    assert frame["t"].drop_nulls().to_list() == [f"t{i}" for i in range(n - 5, n)]
    mixed = ws.store.read_frame("SELECT m FROM late WHERE i < 4 ORDER BY i")
    assert mixed["m"].to_list() == ["s0", "1", "s2", "3"]


def test_the_store_reads_and_ingests_arrow_without_pyarrow_or_pandas(ws):
    """The store's Arrow side (reads and bulk ingest through the ADBC driver) imports
    neither pyarrow nor pandas: both cost seconds of every command's start."""
    import subprocess
    import sys

    code = (
        "import sys, polars as pl\n"
        "from tuiops.workspace import Workspace\n"
        f"ws = Workspace.open({str(ws.root)!r})\n"
        "with ws.store.bulk() as tx:\n"
        "    tx.ingest('_k', pl.DataFrame({'k': ['a', None], 'v': [1.5, 2.0]}), temporary=True, mode='replace')\n"
        "    got = tx.read_frame('SELECT k, v FROM temp._k WHERE v > ?', (1.0,))\n"
        "assert got.rows() == [('a', 1.5), (None, 2.0)], got\n"
        "assert ws.store.read_frame('SELECT ? AS x, ? AS y, ? AS z', (None, b'\\x00', True)).rows() == [(None, b'\\x00', 1)]\n"
        "print(sorted(m for m in ('pyarrow', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
