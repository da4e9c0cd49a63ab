"""Batch copy: `tuiops ops copy` (plan + journaled run) vs `cp` of the same file list.

Side by side on the same disk and the same generated files (small JPEG-sized files with a
YOLO label file each), alternating which goes first in each round, each after a ``sync``,
so both see the same page cache and load:

- cp: ``xargs -a LIST cp -t DEST`` (one cp per few thousand files, no fsync)
- tuiops: :func:`tuiops.ops.fileops.copy_files`, planning included (selection, disk survey,
  plan written to the store), then the run: write-ahead journal, each file written unnamed
  (``O_TMPFILE``), copied by the kernel (``copy_file_range``) and linked into place whole,
  each copy's identity journaled, the default workers (worker processes, one per core, for
  a job this size), no fsync (the default; ``--durable`` syncs each file)

Prints files/s of each, the ratio tuiops/cp (goal: ≥ 0.8) and a parity check (both target
folders hold the same names with the same bytes). Then plans a selection of 1M images
(generated ``files``/``items`` rows; the files need not exist) and prints the planning
time (goal: ≤ 10 s).

    python benchmarks/bench_copy.py [--files 10000] [--plan 1000000] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl


def make_files(root: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` files of 2–12 KB named danbooru_I.jpg, each with a danbooru_I.txt label."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    sizes = rng.integers(2_000, 12_000, n)
    blob = rng.bytes(int(sizes.max()) + n)
    paths = []
    for i in range(n):
        img = root / f"danbooru_{i}.jpg"
        img.write_bytes(b"\xff\xd8\xff\xe0" + blob[i : i + int(sizes[i])])
        lab = root / f"danbooru_{i}.txt"
        lab.write_text(f"{i % 5} 0.5 0.5 0.25 0.25\n{(i + 1) % 5} 0.25 0.25 0.1 0.1\n")
        paths += [img, lab]
    return paths


def register(ws, root: Path, n: int) -> None:  # type: ignore[no-untyped-def]
    """The rows a scan would write for the images (so the selection finds them)."""
    from tuiops.store import utcnow

    fid = np.arange(n)
    store = ws.store
    with store.bulk() as tx:
        pid = tx.one(
            "INSERT INTO pools(name, root, created) VALUES ('bench', ?, ?) RETURNING id",
            (str(root), utcnow()),
        )
        tx.ingest(
            "items",
            pl.DataFrame({"id": fid + 1, "key": [f"danbooru_{i}" for i in fid], "booru": "danbooru", "fid": fid,
                          "width": 64, "height": 48}),
        )  # fmt: skip
        sizes = [os.stat(root / f"danbooru_{i}.jpg").st_size for i in fid] if root.exists() else [8000] * n
        tx.ingest(
            "files",
            pl.DataFrame({"pool_id": pid, "relpath": [f"danbooru_{i}.jpg" for i in fid], "item_id": fid + 1,
                          "keyed": 1, "size": sizes, "mtime_ns": 0, "width": 64, "height": 48, "format": "JPEG",
                          "mode": "RGB", "status": "ok"}),
        )  # fmt: skip


def digest_tree(root: Path) -> dict[str, str]:
    out = {}
    for name in os.listdir(root):
        with open(root / name, "rb") as fh:
            out[name] = hashlib.sha256(fh.read()).hexdigest()
    return out


def time_cp(listing: Path, dest: Path) -> float:
    dest.mkdir()
    t = time.perf_counter()
    subprocess.run(["xargs", "-a", str(listing), "cp", "-t", str(dest)], check=True)
    return time.perf_counter() - t


def time_tuiops(ws, dest: Path) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    from tuiops.ops.fileops import copy_files
    from tuiops.ops.select import SelectionSpec

    t = time.perf_counter()
    plan, res = copy_files(ws, SelectionSpec(where="1"), dest, labels="carry")
    total = time.perf_counter() - t
    assert res is not None and res.status == "done" and res.failed == 0, res
    return total, plan.elapsed


def bench_plan(tmp: Path, n: int) -> tuple[float, int]:
    from tuiops.ops.fileops import plan
    from tuiops.ops.select import SelectionSpec
    from tuiops.workspace import Workspace

    ws = Workspace.init(tmp / "ws-plan", classes=["a", "b", "c", "d", "e"])
    register(ws, tmp / "nowhere", n)
    t = time.perf_counter()
    p = plan(
        ws,
        "copy",
        SelectionSpec(where="1"),
        to=tmp / "plan-out",
        layout="by-booru",
        on_conflict="skip",
        dry_run=True,
    )
    elapsed = time.perf_counter() - t
    rows = ws.store.one("SELECT count(*) FROM job_actions WHERE job_id = ?", (p.job_id,))
    ws.close()
    return elapsed, int(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10_000, help="images to copy (each with a label file)")
    ap.add_argument("--plan", type=int, default=1_000_000, help="images in the planning benchmark")
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs of each; the best counts")
    ap.add_argument("--dir", default=None, help="folder on the disk to measure (default: the temp folder)")
    ap.add_argument("--quick", action="store_true", help="a tiny run for a smoke test")
    args = ap.parse_args()
    if args.quick:
        args.files, args.plan, args.repeat = 200, 20_000, 1
    from tuiops.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="tuiops-bench-copy-", dir=args.dir))
    try:
        src = tmp / "src"
        t = time.perf_counter()
        paths = make_files(src, args.files)
        listing = tmp / "list.txt"
        listing.write_text("".join(f"{p}\n" for p in paths))
        ws = Workspace.init(tmp / "ws", classes=["a", "b", "c", "d", "e"])
        register(ws, src, args.files)
        print(
            f"generated {len(paths)} files ({args.files} images + labels) in {time.perf_counter() - t:.1f} s"
        )
        cp_times, tu_times, plan_times = [], [], []
        parity = True
        for r in range(args.repeat):
            # the order alternates, and each side starts after a sync: neither pays for the
            # other's write-back. Every round writes into new folders and nothing is deleted
            # until the end: a file system may avoid reusing the inodes of files deleted a
            # moment ago (ext4 without a journal skips them for a minute or more, scanning
            # past each one), which would make each round pay for the one before.
            for side in ("cp", "tu") if r % 2 == 0 else ("tu", "cp"):
                subprocess.run(["sync"], check=False)
                if side == "cp":
                    cp_times.append(time_cp(listing, tmp / f"cp{r}"))
                else:
                    total, planned = time_tuiops(ws, tmp / f"tu{r}")
                    tu_times.append(total)
                    plan_times.append(planned)
            if r == 0:
                parity = digest_tree(tmp / "cp0") == digest_tree(tmp / "tu0")
        n = len(paths)
        best_cp, best_tu = min(cp_times), min(tu_times)
        ratio = best_cp / best_tu
        print()
        print(f"{'method':<26} {'files':>7} {'best s':>8} {'median s':>9} {'files/s':>9} {'ratio':>6}")
        print(
            f"{'cp (xargs cp -t)':<26} {n:>7} {best_cp:>8.3f} {np.median(cp_times):>9.3f} {n / best_cp:>9.0f} {1.0:>6.2f}"
        )
        print(
            f"{'tuiops ops copy':<26} {n:>7} {best_tu:>8.3f} {np.median(tu_times):>9.3f} {n / best_tu:>9.0f} {ratio:>6.2f}"
        )
        print(f"  (of which planning: best {min(plan_times):.3f} s)")
        print(f"parity (same names, same bytes): {'ok' if parity else 'MISMATCH'}")
        med = float(np.median(cp_times) / np.median(tu_times))
        print(f"ratio of the medians: {med:.2f}")
        print(f"copy speed ≥ 0.8× cp (best of each): {'met' if ratio >= 0.8 else 'NOT met'} ({ratio:.2f}×)")
        ws.close()
        t_plan, rows = bench_plan(tmp, args.plan)
        print()
        print(f"planning {args.plan} images: {t_plan:.2f} s ({rows} plan rows written)")
        if args.plan >= 1_000_000:
            print(f"planning ≤ 10 s for 1M images: {'met' if t_plan <= 10 else 'NOT met'}")
        return 0 if parity else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
