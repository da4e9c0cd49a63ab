"""Triage queues on a big match: lazy pages against loading the whole queue first.

The store is the terminal-app benchmark's generated workspace (``--size`` images, label set
``master``, run ``v1``; see ``bench_tui.py``), copied once and given misses (boxes shifted or shrunk, classes changed) and matched (``master__v1``),
cached in the temp folder keyed by size. For each queue kind (the worst images, the fp
objects) it times:

- ``open``: from nothing to the first entry with its image's boxes read — ours opens the
  queue and reads one page (:func:`tuiops.ops.triage.open_queue`); the peer loads the
  whole ordered queue into a polars frame first (what a screen holding the queue in
  memory does);
- ``next``: one step to the next entry (mean and worst over ``--steps`` steps, a page
  boundary included);
- ``far``: jumping to a position past the stored worst ranks (``--far``), where ours sorts
  the match for one page;
- ``decide``/``undo``: one decision (accept a detection, delete a label) as one store
  transaction with its revision, and its undo (ours only: the peer has none).

Parity: the first ``--steps`` entries and the far entry of ours equal the peer's; any
difference prints MISMATCH and the script exits non-zero. The decisions are undone, so
the cached store keeps its labels.

    python benchmarks/bench_triage.py [--size 4000000] [--steps 300] [--far 50000] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def matched_store(size: int) -> Path:
    """A copy of the app benchmark's store with the match master × v1, made once per size."""
    from bench_tui import cached_store

    root = Path(tempfile.gettempdir()) / "tuiops-bench-triage" / f"store-{size}"
    if (root / ".complete").exists():
        return root
    src = cached_store(size)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    shutil.copy2(src / "tuiops.toml", root / "tuiops.toml")
    with (
        contextlib.closing(sqlite3.connect(src / "tuiops.db")) as a,
        contextlib.closing(sqlite3.connect(root / "tuiops.db")) as b,
    ):
        a.backup(b)
    from tuiops.ops.match import match
    from tuiops.workspace import Workspace

    t0 = time.perf_counter()
    print(f"matching master × v1 on {size:,} images in {root} (cached for later runs) …", flush=True)
    with Workspace.open(root) as ws:
        with ws.store.transaction() as conn:
            # the generated run repeats the labels; make it miss in every way a model does
            conn.execute(
                "UPDATE detections SET x1 = x1 + (x2 - x1) * 0.6, x2 = x2 + (x2 - x1) * 0.6 WHERE id % 17 = 0"
            )
            conn.execute("UPDATE detections SET x2 = x1 + (x2 - x1) * 0.55 WHERE id % 19 = 0")
            conn.execute("UPDATE detections SET class_id = (class_id + 1) % 5 WHERE id % 23 = 0")
        match(ws, "master", "v1")
    (root / ".complete").write_text("ok")
    print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    return root


def peer_queue(store, kind: str):  # type: ignore[no-untyped-def]
    """The whole queue, ordered, as one frame (the in-memory peer)."""
    import polars as pl

    from tuiops.ops.match import OBJ_MATCH_SHIFT, match_id

    mid = match_id(store, "master__v1")
    if kind == "worst":
        frame = store.read_frame(
            "SELECT item_id, f1, cost FROM match_images WHERE match_id = ?",
            (mid,),
            {"item_id": pl.Int64, "f1": pl.Float64, "cost": pl.Float64},
        )
        return frame.sort(["f1", "cost", "item_id"], descending=[False, True, False]).select(
            pl.col("item_id").alias("key")
        )
    lo = mid << OBJ_MATCH_SHIFT
    frame = store.read_frame(
        "SELECT id, cost FROM match_objects WHERE id BETWEEN ? AND ? AND category = ?",
        (lo, lo + (1 << OBJ_MATCH_SHIFT) - 1, kind),
        {"id": pl.Int64, "cost": pl.Float64},
    )
    return frame.sort(["cost", "id"], descending=[True, False]).select(pl.col("id").alias("key"))


def ident(entry, kind: str) -> int:  # type: ignore[no-untyped-def]
    return entry.item_id if kind == "worst" else entry.objects[0].id


def bench_kind(root: Path, kind: str, steps: int, far: int) -> tuple[dict[str, float], list[str]]:
    from tuiops.ops import triage as t
    from tuiops.store import Store

    problems: list[str] = []
    out: dict[str, float] = {}
    store = Store(root / "tuiops.db", readonly=True)
    try:
        t0 = time.perf_counter()
        q = t.open_queue(store, "master", "v1", kind)
        first = q.entry(store, 0)
        t.image_view(store, "master", "v1", first.item_id)
        out["open"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        peer = peer_queue(store, kind)
        t.image_view(store, "master", "v1", int(first.item_id))
        out["peer_open"] = time.perf_counter() - t0
        if peer.height != len(q):
            problems.append(f"{kind}: queue length {len(q)} ≠ peer {peer.height}")
        n = min(steps, len(q))
        times = []
        ours = [ident(first, kind)]
        for i in range(1, n):
            t0 = time.perf_counter()
            e = q.entry(store, i)
            t.image_view(store, "master", "v1", e.item_id)
            times.append(time.perf_counter() - t0)
            ours.append(ident(e, kind))
        out["next_mean"] = statistics.fmean(times) if times else 0.0
        out["next_max"] = max(times) if times else 0.0
        want = peer["key"].head(n).to_list()
        if ours != want:
            bad = next(i for i, (a, b) in enumerate(zip(ours, want, strict=False)) if a != b)
            problems.append(f"{kind}: entry {bad + 1} is {ours[bad]}, the peer's is {want[bad]}")
        if far < len(q):
            t0 = time.perf_counter()
            e = q.entry(store, far)
            out["far"] = time.perf_counter() - t0
            if ident(e, kind) != peer["key"][far]:
                problems.append(
                    f"{kind}: entry {far + 1} is {ident(e, kind)}, the peer's is {peer['key'][far]}"
                )
    finally:
        store.close()
    return out, problems


def bench_decisions(root: Path, rounds: int) -> dict[str, float]:
    from tuiops.ops import triage as t
    from tuiops.workspace import Workspace

    decide_t, undo_t = [], []
    with Workspace.open(root) as ws:
        store = ws.store
        for kind, action in (("fp", "accept"), ("loc", "accept"), ("fn", "delete")):
            q = t.open_queue(store, "master", "v1", kind)
            for i in range(min(rounds, len(q))):
                obj = q.entry(store, i).objects[0]
                view = t.image_view(store, "master", "v1", obj.item_id)
                t0 = time.perf_counter()
                t.decide(store, "master", action, obj, expect=view.labels)
                decide_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                t.undo(store, "master")
                undo_t.append(time.perf_counter() - t0)
                if t.image_view(store, "master", "v1", obj.item_id).labels != view.labels:
                    raise SystemExit(f"MISMATCH: undo did not restore the labels of item {obj.item_id}")
    return {
        "decide_mean": statistics.fmean(decide_t),
        "decide_max": max(decide_t),
        "undo_mean": statistics.fmean(undo_t),
        "undo_max": max(undo_t),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4_000_000, help="images in the generated store")
    ap.add_argument("--steps", type=int, default=300, help="entries stepped through per queue")
    ap.add_argument("--far", type=int, default=50_000, help="a position past the stored worst ranks")
    ap.add_argument("--decisions", type=int, default=10, help="decisions (and undos) per kind")
    ap.add_argument("--quick", action="store_true", help="a small store, for a smoke test")
    args = ap.parse_args()
    if args.quick:
        args.size, args.steps, args.far, args.decisions = 20_000, 120, 12_000, 3
    root = matched_store(args.size)
    print(f"triage queues on {args.size:,} images ({root})")
    print(f"{'queue':<7} {'step':<16} {'ours':>10} {'peer':>10} {'ratio':>8}")
    problems: list[str] = []
    for kind in ("worst", "fp", "cls"):
        res, probs = bench_kind(root, kind, args.steps, args.far)
        problems += probs
        ratio = res["peer_open"] / res["open"] if res["open"] else float("inf")
        print(
            f"{kind:<7} {'open → 1st entry':<16} {res['open'] * 1e3:>8.1f}ms {res['peer_open'] * 1e3:>8.1f}ms {ratio:>7.1f}×"
        )
        print(f"{kind:<7} {'next (mean)':<16} {res['next_mean'] * 1e3:>8.2f}ms {'—':>10} {'':>8}")
        print(f"{kind:<7} {'next (worst)':<16} {res['next_max'] * 1e3:>8.2f}ms {'—':>10} {'':>8}")
        if "far" in res:
            print(f"{kind:<7} {f'jump to {args.far:,}':<16} {res['far'] * 1e3:>8.1f}ms {'—':>10} {'':>8}")
    dec = bench_decisions(root, args.decisions)
    print(f"{'all':<7} {'decide (mean)':<16} {dec['decide_mean'] * 1e3:>8.2f}ms")
    print(f"{'all':<7} {'decide (worst)':<16} {dec['decide_max'] * 1e3:>8.2f}ms")
    print(f"{'all':<7} {'undo (mean)':<16} {dec['undo_mean'] * 1e3:>8.2f}ms")
    print(f"{'all':<7} {'undo (worst)':<16} {dec['undo_max'] * 1e3:>8.2f}ms")
    if problems:
        for p in problems:
            print("MISMATCH:", p)
        return 1
    print("parity: ok (first entries and the far entry equal the peer's; undo restored every image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
