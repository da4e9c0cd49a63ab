"""Store bulk I/O: ingest and read of boxes, tuiops vs plain sqlite3 and sqlite-utils.

Side by side on the same generated boxes, each into a fresh SQLite file in WAL mode:

- tuiops: ``Store.create_label_set`` / ``Store.read_labels`` (ADBC Arrow I/O, composite box ids)
- sqlite3: ``executemany`` into a conventional table with an index on (set_id, item_id),
  read back with ``fetchall`` into a polars frame
- sqlite-utils: ``insert_all`` (batch 10k) into the same conventional table (when installed;
  tuiops itself does not use it)

Prints boxes/s (the best of ``--repeat`` runs of each peer; the set is dropped, untimed,
between runs), the ratio to tuiops, and a parity check (every box read back equal).
Goal: ingest ≥ 1M boxes/s and read ≥ 1M boxes/s.

``--libraries`` also measures the store's own box table (composite ids, generated
columns) through each SQLite library alone, each into a fresh store file made by the
store's migrations: ADBC (Arrow ingest, ``fetch_arrow_table``; what the store does
today), stdlib ``sqlite3`` (``executemany`` over the Arrow columns, ``fetchall`` into
polars) and, when it is installed, ``apsw`` (the same, through its own cursor).

Two reference lines show where SQLite itself stands on this machine for the same rows:
``INSERT … SELECT`` of the boxes from one table into another inside SQLite (no binding
at all: the engine's own insert cost) and ADBC's row binding of the bare box table (one
prepared-statement step per row, no label-set bookkeeping), each committed, best of
``--repeat``. The last line is the ingest's ratio to that bound floor in CPU time, both
measured in the same run (goal ≥ 0.9×: a label set's bookkeeping — its image rows, its
composite ids — costs under a tenth of the engine's own insert).

    python benchmarks/bench_store.py [--boxes 2000000] [--repeat 3] [--quick] [--libraries]
"""

from __future__ import annotations

import argparse
import importlib.util
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

CONVENTIONAL = """
CREATE TABLE labels (id INTEGER PRIMARY KEY, set_id INTEGER NOT NULL, item_id INTEGER NOT NULL,
    class_id INTEGER NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL, extra TEXT);
CREATE INDEX labels_set_item ON labels(set_id, item_id);
"""


def make_boxes(n: int, per_image: int = 4, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.random(n) * 500
    y1 = rng.random(n) * 500
    return pl.DataFrame(
        {
            "item_id": np.arange(n, dtype=np.int64) // per_image + 1,
            "class_id": rng.integers(0, 5, n),
            "x1": x1,
            "y1": y1,
            "x2": x1 + rng.random(n) * 200 + 1,
            "y2": y1 + rng.random(n) * 200 + 1,
        }
    )


def bench_tuiops(
    root: Path, boxes: pl.DataFrame, repeat: int, cpu: list[float] | None = None
) -> tuple[float, float, pl.DataFrame]:
    """Wall seconds of the ingest and of the read (best of ``repeat``); ``cpu`` gets the ingest's
    best CPU seconds (the process's, every thread)."""
    from tuiops.workspace import Workspace

    ws = Workspace.init(root / "tuiops", classes=["a", "b", "c", "d", "e"])
    store = ws.store
    n_items = int(boxes["item_id"].max())  # type: ignore[arg-type]
    items = pl.DataFrame(
        {"key": [f"danbooru_{i}" for i in range(1, n_items + 1)], "width": 800, "height": 800}
    )
    items = store.ensure_items(items)
    # a first set, so the measured one is not written into an empty table
    store.create_label_set("other", boxes.head(len(boxes) // 4), items.select("item_id"))
    t_in = t_out = c_in = float("inf")
    for r in range(repeat):
        if r:
            store.drop_label_set("master")
        t0, c0 = time.perf_counter(), time.process_time()
        store.create_label_set("master", boxes, items.select("item_id"))
        t_in = min(t_in, time.perf_counter() - t0)
        c_in = min(c_in, time.process_time() - c0)
        t0 = time.perf_counter()
        back = store.read_labels("master")
        t_out = min(t_out, time.perf_counter() - t0)
    ws.close()
    if cpu is not None:
        cpu.append(c_in)
    return t_in, t_out, back.select("item_id", "class_id", "x1", "y1", "x2", "y2")


def sqlite_floor(root: Path, boxes: pl.DataFrame, repeat: int = 1) -> tuple[float, float]:
    """CPU seconds (best of ``repeat``, each into an empty table and committed, as a label set's
    ingest is) of SQLite's own INSERT…SELECT of the rows, and of ADBC's bound ingest of them."""
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    from tuiops.store.db import box_frame

    rows = box_frame(1, boxes, ["x1", "y1", "x2", "y2"]).to_arrow()
    ddl = (
        "CREATE TABLE {} (id INTEGER PRIMARY KEY, class_id INTEGER NOT NULL, x1 REAL NOT NULL, "
        "y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL, extra TEXT)"
    )
    conn = adbc_sqlite.connect(str(root / "floor.db"), autocommit=True)
    cur = conn.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-262144"):
        cur.execute(f"PRAGMA {pragma}")
    t_bound = t_copy = float("inf")
    for _ in range(max(1, repeat)):
        for table in ("bound", "copied"):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(ddl.format(table))
        t0 = time.process_time()
        cur.execute("BEGIN")
        cur.adbc_ingest("bound", rows, mode="append")
        cur.execute("COMMIT")
        t_bound = min(t_bound, time.process_time() - t0)
        t0 = time.process_time()
        cur.execute("BEGIN")
        cur.execute("INSERT INTO copied SELECT * FROM bound")
        cur.execute("COMMIT")
        t_copy = min(t_copy, time.process_time() - t0)
    cur.close()
    conn.close()
    return t_copy, t_bound


def _conventional(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-262144")
    conn.executescript(CONVENTIONAL)
    return conn


def bench_sqlite3(root: Path, boxes: pl.DataFrame, repeat: int) -> tuple[float, float, pl.DataFrame]:
    conn = _conventional(root / "sqlite3.db")
    other = boxes.head(len(boxes) // 4).with_columns(set_id=pl.lit(2))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO labels(item_id, class_id, x1, y1, x2, y2, set_id) VALUES (?,?,?,?,?,?,?)",
        other.iter_rows(),
    )
    conn.execute("COMMIT")
    rows = boxes.with_columns(set_id=pl.lit(1))
    t_in = t_out = float("inf")
    for r in range(repeat):
        if r:
            conn.execute("DELETE FROM labels WHERE set_id = 1")
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO labels(item_id, class_id, x1, y1, x2, y2, set_id) VALUES (?,?,?,?,?,?,?)",
            rows.iter_rows(),
        )
        conn.execute("COMMIT")
        t_in = min(t_in, time.perf_counter() - t0)
        t0 = time.perf_counter()
        data = conn.execute(
            "SELECT item_id, class_id, x1, y1, x2, y2 FROM labels WHERE set_id = 1 ORDER BY item_id, id"
        ).fetchall()
        back = pl.DataFrame(data, schema=["item_id", "class_id", "x1", "y1", "x2", "y2"], orient="row")
        t_out = min(t_out, time.perf_counter() - t0)
    conn.close()
    return t_in, t_out, back


def bench_sqlite_utils(root: Path, boxes: pl.DataFrame, repeat: int) -> tuple[float, float, pl.DataFrame]:
    import sqlite_utils

    conn = _conventional(root / "sqlite_utils.db")
    db = sqlite_utils.Database(conn)
    rows = boxes.with_columns(set_id=pl.lit(1))
    t_in = t_out = float("inf")
    for r in range(repeat):
        if r:
            conn.execute("DELETE FROM labels WHERE set_id = 1")
        t0 = time.perf_counter()
        with conn:
            db["labels"].insert_all(rows.iter_rows(named=True), batch_size=10_000)
        t_in = min(t_in, time.perf_counter() - t0)
        t0 = time.perf_counter()
        data = list(
            db.query(
                "SELECT item_id, class_id, x1, y1, x2, y2 FROM labels WHERE set_id = 1 ORDER BY item_id, id"
            )
        )
        back = pl.DataFrame(data)
        t_out = min(t_out, time.perf_counter() - t0)
    conn.close()
    return t_in, t_out, back


LIB_INSERT = "INSERT INTO labels(id, class_id, x1, y1, x2, y2) VALUES (?,?,?,?,?,?)"
LIB_SELECT = "SELECT id, item_id, class_id, x1, y1, x2, y2 FROM labels WHERE id BETWEEN ? AND ? ORDER BY id"
LIB_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-262144", "temp_store=MEMORY")
LIB_SCHEMA = {
    "id": pl.Int64,
    "item_id": pl.Int64,
    "class_id": pl.Int64,
    "x1": pl.Float64,
    "y1": pl.Float64,
    "x2": pl.Float64,
    "y2": pl.Float64,
}


def _store_schema(path: Path) -> None:
    """A fresh file with the store's schema (all migrations), closed again."""
    from tuiops.store.db import _split_sql
    from tuiops.store.schema import all_migrations

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for _, sql in all_migrations():
        for statement in _split_sql(sql):
            conn.execute(statement)
    conn.close()


def _columns(rows: pl.DataFrame) -> list[tuple]:
    return list(zip(*(rows[c].to_list() for c in ("id", "class_id", "x1", "y1", "x2", "y2")), strict=True))


def _lib_adbc(path: Path, rows: pl.DataFrame, other: pl.DataFrame, span: tuple[int, int], repeat: int):
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    conn = adbc_sqlite.connect(str(path), autocommit=True)
    cur = conn.cursor()
    for pragma in LIB_PRAGMAS:
        cur.execute(f"PRAGMA {pragma}")
    table = rows.select("id", "class_id", "x1", "y1", "x2", "y2")
    cur.execute("BEGIN IMMEDIATE")
    cur.adbc_ingest("labels", other.select(table.columns).to_arrow(), mode="append")
    cur.execute("COMMIT")
    t_in = t_out = float("inf")
    for r in range(repeat):
        if r:
            cur.execute("DELETE FROM labels WHERE id BETWEEN ? AND ?", span)
        t0 = time.perf_counter()
        cur.execute("BEGIN IMMEDIATE")
        cur.adbc_ingest("labels", table.to_arrow(), mode="append")
        cur.execute("COMMIT")
        t_in = min(t_in, time.perf_counter() - t0)
        t0 = time.perf_counter()
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(1 << 16)})
        cur.execute(LIB_SELECT, span)
        back = pl.from_arrow(cur.fetch_arrow_table())
        t_out = min(t_out, time.perf_counter() - t0)
    cur.close()
    conn.close()
    return t_in, t_out, back


def _lib_rows(cur, rows: pl.DataFrame, other: pl.DataFrame, span: tuple[int, int], repeat: int):
    """Row-wise ingest (executemany) and read (fetchall) through ``cur``: a sqlite3 connection
    or an apsw cursor, both of which execute statements themselves."""
    for pragma in LIB_PRAGMAS:
        cur.execute(f"PRAGMA {pragma}")
    cur.execute("BEGIN IMMEDIATE")
    cur.executemany(LIB_INSERT, _columns(other))
    cur.execute("COMMIT")
    t_in = t_out = float("inf")
    for r in range(repeat):
        if r:
            cur.execute("DELETE FROM labels WHERE id BETWEEN ? AND ?", span)
        t0 = time.perf_counter()
        cur.execute("BEGIN IMMEDIATE")
        cur.executemany(
            LIB_INSERT,
            zip(*(rows[c].to_list() for c in ("id", "class_id", "x1", "y1", "x2", "y2")), strict=True),
        )
        cur.execute("COMMIT")
        t_in = min(t_in, time.perf_counter() - t0)
        t0 = time.perf_counter()
        data = cur.execute(LIB_SELECT, span).fetchall()
        back = pl.DataFrame(data, schema=LIB_SCHEMA, orient="row")
        t_out = min(t_out, time.perf_counter() - t0)
    return t_in, t_out, back


def _lib_sqlite3(path: Path, rows: pl.DataFrame, other: pl.DataFrame, span: tuple[int, int], repeat: int):
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return _lib_rows(conn, rows, other, span, repeat)
    finally:
        conn.close()


def _lib_apsw(path: Path, rows: pl.DataFrame, other: pl.DataFrame, span: tuple[int, int], repeat: int):
    import apsw

    conn = apsw.Connection(str(path))
    try:
        return _lib_rows(conn.cursor(), rows, other, span, repeat)
    finally:
        conn.close()


def bench_libraries(root: Path, boxes: pl.DataFrame, repeat: int) -> None:
    """The store's box table through each SQLite library alone; prints boxes/s and ratios."""
    from tuiops.store.db import box_frame, id_range

    rows = box_frame(2, boxes, ["x1", "y1", "x2", "y2"])
    other = box_frame(1, boxes.head(len(boxes) // 4), ["x1", "y1", "x2", "y2"])
    span = id_range(2)
    peers = {"ADBC (Arrow ingest/fetch)": _lib_adbc, "sqlite3 (executemany/fetchall)": _lib_sqlite3}
    if importlib.util.find_spec("apsw") is not None:
        peers["apsw (executemany/fetchall)"] = _lib_apsw
    n = rows.height
    expected = rows.with_columns(item_id=pl.col("id") // (1 << 12) % (1 << 31)).select(list(LIB_SCHEMA))
    print(f"the store's box table through one library, {n:,} boxes, best of {repeat} runs")
    print(f"{'library':32} {'ingest/s':>12} {'read/s':>12} {'ingest ×':>9} {'read ×':>8}  parity")
    ref = None
    for name, fn in peers.items():
        path = root / f"lib_{fn.__name__}.db"
        _store_schema(path)
        t_in, t_out, back = fn(path, rows, other, span, repeat)
        ref = ref or (t_in, t_out)
        same = back.cast(LIB_SCHEMA).equals(expected.cast(LIB_SCHEMA))
        print(
            f"{name:32} {n / t_in:12,.0f} {n / t_out:12,.0f} {t_in / ref[0]:9.2f} {t_out / ref[1]:8.2f}  "
            f"{'ok' if same else 'MISMATCH'}"
        )
    print("(× = library time / ADBC time; > 1 means ADBC is faster)")
    print("small statements (what the store runs besides boxes), microseconds each:")
    for name, fn in peers.items():
        point, write = _small_statements(root / f"lib_{fn.__name__}.db", name.split()[0])
        print(f"{name:32} point query {point:8.1f}   one-row write transaction {write:8.1f}")


def _small_statements(path: Path, lib: str, n: int = 2000) -> tuple[float, float]:
    """Microseconds per point query and per one-row write transaction through ``lib``."""
    if lib == "ADBC":
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        conn = adbc_sqlite.connect(str(path), autocommit=True)
        cur = conn.cursor()

        def run(sql: str, params: tuple = ()) -> list:
            cur.execute(sql, params or None)
            return cur.fetchall() if cur.description else []

    elif lib == "apsw":
        import apsw

        conn = apsw.Connection(str(path))
        acur = conn.cursor()

        def run(sql: str, params: tuple = ()) -> list:
            return acur.execute(sql, params).fetchall()

    else:
        conn = sqlite3.connect(path, isolation_level=None)

        def run(sql: str, params: tuple = ()) -> list:
            return conn.execute(sql, params).fetchall()

    run("PRAGMA synchronous=NORMAL")
    run("INSERT INTO jobs(kind, status, created) VALUES ('bench', 'running', 'x')")
    t0 = time.perf_counter()
    for _ in range(n):
        run("SELECT status FROM jobs WHERE id = ?", (1,))
    point = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for i in range(n // 4):
        run("BEGIN IMMEDIATE")
        run("UPDATE jobs SET done = ? WHERE id = ?", (i, 1))
        run("COMMIT")
    write = (time.perf_counter() - t0) / (n // 4) * 1e6
    conn.close()
    return point, write


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boxes", type=int, default=2_000_000, help="boxes in the measured label set")
    ap.add_argument("--quick", action="store_true", help="a tiny run for smoke tests")
    ap.add_argument("--skip-slow-peers", action="store_true", help="skip sqlite-utils (the slowest peer)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each peer; the best one counts")
    ap.add_argument(
        "--libraries", action="store_true", help="only the store's box table through each SQLite library"
    )
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else args.boxes
    boxes = make_boxes(n)
    if args.libraries:
        with tempfile.TemporaryDirectory() as tmp:
            bench_libraries(Path(tmp), boxes, 1 if args.quick else max(1, args.repeat))
        return 0
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repeat = 1 if args.quick else max(1, args.repeat)
        cpu_in: list[float] = []
        results["tuiops (ADBC/Arrow)"] = bench_tuiops(root, boxes, repeat, cpu_in)
        results["sqlite3 executemany/fetchall"] = bench_sqlite3(root, boxes, repeat)
        if not args.skip_slow_peers and importlib.util.find_spec("sqlite_utils") is not None:
            results["sqlite-utils insert_all/query"] = bench_sqlite_utils(root, boxes, repeat)
    ref_in, ref_out, _ = results["tuiops (ADBC/Arrow)"]
    expected = boxes.with_columns(pl.col("class_id").cast(pl.Int64))
    print(f"store bulk I/O, {n:,} boxes ({n // 4:,} images), same data for every peer, best of {repeat} runs")
    print(f"{'peer':32} {'ingest/s':>12} {'read/s':>12} {'ingest ×':>9} {'read ×':>8}  parity")
    ok = True
    for name, (t_in, t_out, back) in results.items():
        same = back.with_columns(pl.col("class_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64)).equals(
            expected
        )
        ok &= same
        print(
            f"{name:32} {n / t_in:12,.0f} {n / t_out:12,.0f} {t_in / ref_in:9.2f} {t_out / ref_out:8.2f}  "
            f"{'ok' if same else 'MISMATCH'}"
        )
    print("(× = peer time / tuiops time; > 1 means tuiops is faster)")
    with tempfile.TemporaryDirectory() as tmp:
        t_copy, t_bound = sqlite_floor(Path(tmp), boxes, repeat)
    print(
        f"SQLite on this machine, CPU time for the same rows: INSERT…SELECT inside SQLite {n / t_copy:,.0f}/s; "
        f"ADBC bound ingest of the bare rows {n / t_bound:,.0f}/s"
    )
    ratio = t_bound / cpu_in[0]
    print(
        f"ingest vs the engine's floor (CPU, best of {repeat}, each committed): label set {cpu_in[0]:.3f} s, "
        f"bare bound insert {t_bound:.3f} s: {ratio:.2f}x the floor's speed (goal ≥ 0.9: "
        f"{'met' if ratio >= 0.9 else 'NOT met'})"
    )
    goal_in, goal_out = n / ref_in >= 1e6, n / ref_out >= 1e6
    print(
        f"goal ingest ≥ 1M boxes/s: {'met' if goal_in else 'NOT met'}; read ≥ 1M boxes/s: {'met' if goal_out else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
