"""Store bulk I/O: ingest and read of boxes, tuiops vs plain sqlite3 and sqlite-utils.

Side by side on the same generated boxes, each into a fresh SQLite file in WAL mode:

- tuiops: ``Store.create_label_set`` / ``Store.read_labels`` (ADBC Arrow I/O, composite box ids)
- sqlite3: ``executemany`` into a conventional table with an index on (set_id, item_id),
  read back with ``fetchall`` into a polars frame
- sqlite-utils: ``insert_all`` (batch 10k) into the same conventional table

Prints boxes/s (the best of ``--repeat`` runs of each peer; the set is dropped, untimed,
between runs), the ratio to tuiops, and a parity check (every box read back equal).
Goal: ingest ≥ 1M boxes/s and read ≥ 1M boxes/s.

Two reference lines show where SQLite itself stands on this machine for the same rows:
``INSERT … SELECT`` of the boxes from one table into another inside SQLite (no binding
at all: the engine's own insert cost) and ADBC's row binding of the bare box table (one
prepared-statement step per row, no label-set bookkeeping).

    python benchmarks/bench_store.py [--boxes 2000000] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
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


def bench_tuiops(root: Path, boxes: pl.DataFrame, repeat: int) -> tuple[float, float, pl.DataFrame]:
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
    t_in = t_out = float("inf")
    for r in range(repeat):
        if r:
            store.drop_label_set("master")
        t0 = time.perf_counter()
        store.create_label_set("master", boxes, items.select("item_id"))
        t_in = min(t_in, time.perf_counter() - t0)
        t0 = time.perf_counter()
        back = store.read_labels("master")
        t_out = min(t_out, time.perf_counter() - t0)
    ws.close()
    return t_in, t_out, back.select("item_id", "class_id", "x1", "y1", "x2", "y2")


def sqlite_floor(root: Path, boxes: pl.DataFrame) -> tuple[float, float]:
    """CPU seconds of SQLite's own INSERT…SELECT of the rows, and of ADBC's bound ingest of them."""
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
    cur.execute(ddl.format("bound"))
    cur.execute(ddl.format("copied"))
    cur.execute("BEGIN")
    t0 = time.process_time()
    cur.adbc_ingest("bound", rows, mode="append")
    t_bound = time.process_time() - t0
    cur.execute("COMMIT")
    cur.execute("BEGIN")
    t0 = time.process_time()
    cur.execute("INSERT INTO copied SELECT * FROM bound")
    t_copy = time.process_time() - t0
    cur.execute("COMMIT")
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boxes", type=int, default=2_000_000, help="boxes in the measured label set")
    ap.add_argument("--quick", action="store_true", help="a tiny run for smoke tests")
    ap.add_argument("--skip-slow-peers", action="store_true", help="skip sqlite-utils (the slowest peer)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each peer; the best one counts")
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else args.boxes
    boxes = make_boxes(n)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repeat = 1 if args.quick else max(1, args.repeat)
        results["tuiops (ADBC/Arrow)"] = bench_tuiops(root, boxes, repeat)
        results["sqlite3 executemany/fetchall"] = bench_sqlite3(root, boxes, repeat)
        if not args.skip_slow_peers:
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
        t_copy, t_bound = sqlite_floor(Path(tmp), boxes)
    print(
        f"SQLite on this machine, CPU time for the same rows: INSERT…SELECT inside SQLite {n / t_copy:,.0f}/s; "
        f"ADBC bound ingest of the bare rows {n / t_bound:,.0f}/s"
    )
    goal_in, goal_out = n / ref_in >= 1e6, n / ref_out >= 1e6
    print(
        f"goal ingest ≥ 1M boxes/s: {'met' if goal_in else 'NOT met'}; read ≥ 1M boxes/s: {'met' if goal_out else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
