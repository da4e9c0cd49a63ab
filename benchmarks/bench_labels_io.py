"""YOLO label import/export: tuiops vs reading the files alone vs a per-line Python parser.

Generates N labelImg-style YOLO files (``%.6f``, 0–8 boxes each, some empty) and a
workspace whose items have the images' sizes, then times, side by side on the same files:

* ``read bytes``       — only listing and reading every file (the floor any import pays);
* ``per-line python``  — a loop over files and lines with ``str.split``/``float`` and the
  pixel conversion (how most label loaders parse), without any checks or storing;
* ``tuiops import``    — ``import_labels``: read, parse and check every line in polars,
  match images, store in one transaction;
* ``python write``     — writing the same texts back with a per-line ``%.6f`` loop;
* ``tuiops export``    — ``export_labels`` to YOLO (staged, atomic).

Parity: the boxes in the store equal the per-line parser's (to 1e-9 px), and the exported
folder is byte-identical to the source. Exits 1 when parity fails.

    python benchmarks/bench_labels_io.py [--files 100000] [--quick] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

CLASSES = ["head", "upper_body", "lower_body", "hand", "text"]


def generate(folder: Path, n: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    keys = [f"danbooru_{1000000 + i}" for i in range(n)]
    widths = rng.integers(300, 4000, n)
    heights = rng.integers(300, 4000, n)
    counts = rng.integers(0, 9, n)
    total = int(counts.sum())
    cls = rng.integers(0, len(CLASSES), total)
    w = rng.uniform(0.01, 0.5, total)
    h = rng.uniform(0.01, 0.5, total)
    cx = w / 2 + rng.uniform(0, 1, total) * (1 - w)
    cy = h / 2 + rng.uniform(0, 1, total) * (1 - h)
    lines = [
        f"{c} {a:.6f} {b:.6f} {d:.6f} {e:.6f}\n" for c, a, b, d, e in zip(cls, cx, cy, w, h, strict=True)
    ]
    pos = 0
    for key, k in zip(keys, counts, strict=True):
        (folder / f"{key}.txt").write_text("".join(lines[pos : pos + k]))
        pos += k
    (folder / "classes.txt").write_text("".join(f"{c}\n" for c in CLASSES))
    return keys, widths, heights


def read_bytes(folder: Path) -> int:
    total = 0
    for entry in os.scandir(folder):
        if entry.name.endswith(".txt") and entry.name != "classes.txt":
            with open(entry.path, "rb") as fh:
                total += len(fh.read())
    return total


def per_line_python(folder: Path, sizes: dict[str, tuple[int, int]]) -> list[tuple]:
    out = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name = entry.name
        if not name.endswith(".txt") or name == "classes.txt":
            continue
        key = name[:-4]
        W, H = sizes[key]
        with open(entry.path, encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) != 5:
                    continue
                c, cx, cy, w, h = int(parts[0]), *map(float, parts[1:])
                out.append((key, c, (cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H))
    return out


def python_write(rows: list[tuple], sizes: dict[str, tuple[int, int]], keys: list[str], folder: Path) -> None:
    folder.mkdir()
    by_key: dict[str, list[str]] = {k: [] for k in keys}
    for key, c, x1, y1, x2, y2 in rows:
        W, H = sizes[key]
        by_key[key].append(
            f"{c} {(x1 + x2) / 2 / W:.6f} {(y1 + y2) / 2 / H:.6f} {(x2 - x1) / W:.6f} {(y2 - y1) / H:.6f}\n"
        )
    for key, lines in by_key.items():
        (folder / f"{key}.txt").write_text("".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100_000, help="number of label files")
    ap.add_argument("--quick", action="store_true", help="a few seconds: 2,000 files")
    ap.add_argument("--keep", action="store_true", help="keep the generated folder")
    ap.add_argument("--dir", help="where to generate the files (default: the system temp folder)")
    args = ap.parse_args()
    n = 2_000 if args.quick else args.files

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tuiops.ops.labels import export_labels, import_labels
    from tuiops.workspace import Workspace

    base = Path(tempfile.mkdtemp(prefix="bench-labels-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        keys, widths, heights = generate(base / "labels", n)
        gen_s = time.perf_counter() - t0
        sizes = {k: (int(w), int(h)) for k, w, h in zip(keys, widths, heights, strict=True)}
        ws = Workspace.init(base / "ws", classes=CLASSES)
        ws.store.ensure_items(pl.DataFrame({"key": keys, "width": widths, "height": heights}))

        times: dict[str, float] = {}
        t0 = time.perf_counter()
        nbytes = read_bytes(base / "labels")
        times["read bytes"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        rows = per_line_python(base / "labels", sizes)
        times["per-line python"] = time.perf_counter() - t0

        marks: dict[str, float] = {}

        def on_progress(ev) -> None:  # type: ignore[no-untyped-def]
            marks.setdefault(ev.message, time.perf_counter())
            if ev.message == "reading" and ev.total and ev.done >= ev.total:
                marks["read"] = time.perf_counter()

        t0 = time.perf_counter()
        res = import_labels(ws, base / "labels", "bench", "yolo", progress=on_progress)
        times["tuiops import"] = time.perf_counter() - t0
        t_end = time.perf_counter()
        phases = {
            "list+read": marks.get("read", t0) - t0,
            "parse+check": marks.get("storing", t_end) - marks.get("read", t0),
            "store": t_end - marks.get("storing", t_end),
        }

        t0 = time.perf_counter()
        python_write(rows, sizes, keys, base / "pyout")
        times["python write"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        export_labels(ws, "bench", "yolo", base / "out")
        times["tuiops export"] = time.perf_counter() - t0

        stored = ws.store.read_frame(
            "SELECT i.key, l.class_id, l.x1, l.y1, l.x2, l.y2 FROM labels l JOIN items i ON i.id = l.item_id "
            "ORDER BY i.key, l.id"
        )
        ref = pl.DataFrame(rows, schema=["key", "class_id", "x1", "y1", "x2", "y2"], orient="row")
        parity = stored.height == ref.height and res.problem_count == 0
        if parity:
            diff = stored.select("x1", "y1", "x2", "y2") - ref.select("x1", "y1", "x2", "y2")
            max_diff = float(diff.select(pl.all().abs().max()).max_horizontal()[0] or 0.0)
            parity = max_diff < 1e-9 and stored["class_id"].cast(pl.Int64).equals(
                ref["class_id"].cast(pl.Int64)
            )
        else:
            max_diff = float("nan")
        same_files = all(
            (base / "out" / p.name).read_bytes() == p.read_bytes() for p in (base / "labels").iterdir()
        )
        parity = parity and same_files
        ws.close()

        floor = times["read bytes"]
        print(
            f"{n:,} YOLO files, {res.boxes:,} boxes, {nbytes / 1e6:.1f} MB (generated in {gen_s:.1f} s, warm cache)"
        )
        print(f"{'step':<18} {'seconds':>9} {'× read':>8} {'files/s':>10}")
        for name, s in times.items():
            print(f"{name:<18} {s:>9.3f} {s / floor:>8.1f} {n / s:>10,.0f}")
        print("tuiops import phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
        print(
            f"import vs per-line python: {times['per-line python'] / times['tuiops import']:.2f}x "
            f"(tuiops also checks every line and stores); export vs python write: "
            f"{times['python write'] / times['tuiops export']:.2f}x"
        )
        print(
            f"parity: boxes {'equal' if parity else 'DIFFER'} (max |Δ| {max_diff:.2e} px), "
            f"export byte-identical: {same_files}"
        )
        return 0 if parity else 1
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
