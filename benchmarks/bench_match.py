"""`tuiops match` at scale: a generated store, matched from SQLite to the stored result tables.

1. Builds (or reuses, ``--store DIR``) a workspace with ``--images`` images, ~4 labels and
   ~5 detections per image (the generator of bench_map.py), written straight through
   ``Store.create_label_set`` / ``Store.create_run``.
2. Runs ``match`` in a fresh process and prints its phases — read (SQLite → Arrow, in
   background threads), match (the vectorised stages), write (Arrow → SQLite, in a
   background thread), commit — the wall time, the peak memory (``ru_maxrss``) and the
   linear extrapolation to 4M images.
3. Side by side on a sample of images (``--sample``): the vectorised ``match_frames``
   against a straightforward per-image Python implementation of the same rules (the
   peer), with their times, the ratio, and parity of every object's category, label,
   detection and cost; and the stored tables' invariants over the whole store (every
   label in exactly one of tp/loc/cls/fn, every confident detection in exactly one of
   tp/loc/cls/dup/fp). Exit 1 on any mismatch.

    python benchmarks/bench_match.py [--images 400000] [--store DIR] [--sample 20000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_map import N_CLASSES, synth

CLASSES = ["head", "upper_body", "lower_body", "hand", "text"][:N_CLASSES]
IOU, LOW, CONF = 0.5, 0.1, 0.25
CATS = ("tp", "loc", "cls", "dup", "fp", "fn")


def build(root: Path, n_images: int) -> float:
    """A workspace at ``root`` with label set ``gt`` and run ``r`` over ``n_images`` images; seconds taken."""
    from tuiops.workspace import Workspace

    t = time.perf_counter()
    ws = Workspace.init(root, classes=CLASSES)
    keys = pl.select(
        pl.format("danbooru_{}", pl.int_range(1, n_images + 1)).alias("key"),
        pl.lit("danbooru").alias("booru"),
        pl.int_range(1, n_images + 1).alias("fid"),
        pl.lit(640).alias("width"),
        pl.lit(480).alias("height"),
    )
    items = ws.store.ensure_items(keys)
    ids = items["item_id"].to_numpy()
    labels, dets = synth(n_images)
    if not np.array_equal(ids, np.arange(1, n_images + 1)):  # a store with items already: map the ids
        lookup = np.zeros(n_images + 1, dtype=np.int64)
        lookup[1:] = ids
        labels = labels.with_columns(pl.Series("item_id", lookup[labels["item_id"].to_numpy()]))
        dets = dets.with_columns(pl.Series("item_id", lookup[dets["item_id"].to_numpy()]))
    images = items.select("item_id")
    ws.store.create_label_set("gt", labels, images)
    del labels
    ws.store.create_run("r", dets, images)
    ws.close()
    return time.perf_counter() - t


def run_match(root: Path) -> dict:
    """Match gt × r in this process; timings and peak memory as a dict."""
    from tuiops.ops.match import drop_match, match
    from tuiops.workspace import Workspace

    ws = Workspace.open(root)
    if ws.store.one("SELECT 1 FROM matches WHERE name = 'gt__r'"):  # time a first match, not a replacement
        drop_match(ws, "gt__r")
    before = resource.getrusage(resource.RUSAGE_SELF)
    load = os.getloadavg()
    t = time.perf_counter()
    res = match(ws, "gt", "r", iou=IOU, low=LOW, conf=CONF, worst=10)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_SELF)
    ws.close()
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "load": [load[0], os.getloadavg()[0]],
        "phases": res.seconds,
        "images": res.images,
        "counts": res.splits["all"],
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# -- the peer: the same rules, one image at a time ------------------------------------------------
def _iou(d: tuple, g: tuple) -> float:
    """pycocotools' bbIou for one pair (same floating-point steps as tuiops)."""
    dw, dh = d[2] - d[0], d[3] - d[1]
    gw, gh = g[2] - g[0], g[3] - g[1]
    iw = min(dw + d[0], gw + g[0]) - max(d[0], g[0])
    ih = min(dh + d[1], gh + g[1]) - max(d[1], g[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (dw * dh + gw * gh - inter)


def _greedy(
    order: list[int], cands: dict[int, list[tuple[int, float]]], thr: float
) -> dict[int, tuple[int, float]]:
    """COCO's greedy rule: det → (label, IoU); ``cands[j]`` lists the (label, IoU) it may take."""
    taken: dict[int, tuple[int, float]] = {}
    used: set[int] = set()
    for j in order:
        best, best_v = -1, min(thr, 1 - 1e-10)
        for i, v in cands.get(j, []):
            if i in used or v < best_v:
                continue
            best, best_v = i, v
        if best >= 0:
            taken[j] = (best, best_v)
            used.add(best)
    return taken


def naive_match(labels: pl.DataFrame, dets: pl.DataFrame) -> pl.DataFrame:
    """Per-image Python implementation of `match`'s rules; rows (label_id, det_id, category, cost)."""
    out: list[tuple] = []
    lab_by = labels.partition_by("item_id", as_dict=True, maintain_order=True)
    det_by = dets.partition_by("item_id", as_dict=True, maintain_order=True)
    for key in sorted(set(lab_by) | set(det_by)):
        lf, df = lab_by.get(key), det_by.get(key)
        L = [] if lf is None else lf.select("id", "class_id", "x1", "y1", "x2", "y2").rows()
        D = [] if df is None else df.select("id", "class_id", "x1", "y1", "x2", "y2", "score").rows()
        order = sorted(range(len(D)), key=lambda j, D=D: -D[j][6])
        iou = {(j, i): _iou(D[j][2:6], L[i][2:6]) for j in range(len(D)) for i in range(len(L))}
        conf = [D[j][6] >= CONF for j in range(len(D))]
        same_cls = {j: [(i, iou[j, i]) for i in range(len(L)) if L[i][1] == D[j][1]] for j in range(len(D))}
        first = _greedy(order, same_cls, IOU)
        lab: dict[int, tuple[str, int, float]] = {}
        free_d = {j for j in range(len(D)) if conf[j]}
        weak: dict[int, int] = {}
        for j, (i, v) in first.items():
            if conf[j]:
                lab[i] = ("tp", j, 1.0 - v)
                free_d.discard(j)
            else:
                weak[i] = j
        for cat, same, thr in (("cls", False, IOU), ("loc", True, LOW)):
            cands = {
                j: [(i, iou[j, i]) for i in range(len(L)) if i not in lab and (L[i][1] == D[j][1]) == same]
                for j in free_d
            }
            for j, (i, v) in _greedy([j for j in order if j in free_d], cands, thr).items():
                lab[i] = (cat, j, D[j][6] if cat == "cls" else 1.0 - v)
                free_d.discard(j)
        for i in range(len(L)):
            if i in lab:
                cat, j, cost = lab[i]
                out.append((L[i][0], D[j][0], cat, cost))
            elif i in weak:
                out.append((L[i][0], D[weak[i]][0], "fn", 1.0 - D[weak[i]][6]))
            else:
                out.append((L[i][0], None, "fn", 1.0))
        for j in sorted(free_d):
            best, best_v = None, -1.0
            for i in range(len(L)):
                if i in lab and iou[j, i] >= min(IOU, 1 - 1e-10) and iou[j, i] > best_v:
                    best, best_v = i, iou[j, i]
            out.append(
                (None if best is None else L[best][0], D[j][0], "dup" if best is not None else "fp", D[j][6])
            )
    return pl.DataFrame(out, schema=["label_id", "det_id", "category", "cost"], orient="row")


def compare_sample(root: Path, n_sample: int) -> tuple[float, float, bool, int]:
    """Vectorised vs per-image matching of the first ``n_sample`` images: times, parity, rows."""
    from tuiops.ops.match import CATEGORIES, match_frames, read_dets, read_labels
    from tuiops.workspace import Workspace

    ws = Workspace.open(root)
    sid, rid = ws.store.label_set_id("gt"), ws.store.run_id("r")
    labels = read_labels(ws.store, sid, 1, n_sample)
    dets = read_dets(ws.store, rid, 1, n_sample)
    ws.close()
    t = time.perf_counter()
    ours = match_frames(labels, dets, iou=IOU, low=LOW, conf=CONF)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    theirs = naive_match(labels, dets)
    t_naive = time.perf_counter() - t
    a = ours.select(
        "label_id",
        "det_id",
        pl.col("category").replace_strict(list(range(6)), list(CATEGORIES), return_dtype=pl.String),
        "cost",
    )
    key = ["category", "label_id", "det_id"]
    a = a.sort(key, nulls_last=True)
    b = theirs.with_columns(pl.col("label_id").cast(pl.Int64), pl.col("det_id").cast(pl.Int64)).sort(
        key, nulls_last=True
    )
    same = a.height == b.height and a.select(key).equals(b.select(key))
    same = same and bool(np.allclose(a["cost"].to_numpy(), b["cost"].to_numpy(), rtol=0, atol=1e-12))
    return t_ours, t_naive, same, a.height


def invariants(root: Path) -> tuple[bool, str]:
    """Check the stored tables against the store's boxes."""
    from tuiops.workspace import Workspace

    ws = Workspace.open(root)
    s = ws.store
    mid = s.one("SELECT id FROM matches WHERE name = 'gt__r'")
    img = s.execute(
        "SELECT count(*), sum(n_labels), sum(n_dets), sum(tp), sum(loc), sum(cls), sum(dup), sum(fp), sum(fn) "
        "FROM match_images WHERE match_id = ?",
        (mid,),
    ).fetchone()
    objs = s.one(
        "SELECT count(*) FROM match_objects WHERE id BETWEEN ? AND ?", (mid << 44, ((mid + 1) << 44) - 1)
    )
    n_lab = s.one("SELECT count(*) FROM labels")
    n_conf = s.one("SELECT count(*) FROM detections WHERE score >= ?", (CONF,))
    ws.close()
    _, n_labels, n_dets, tp, loc, cls, dup, fp, fn = img
    checks = {
        "labels = tp+loc+cls+fn": n_labels == n_lab == tp + loc + cls + fn,
        "confident dets = tp+loc+cls+dup+fp": n_dets == n_conf == tp + loc + cls + dup + fp,
        "object rows = labels+dup+fp": objs == n_lab + dup + fp,
    }
    text = ", ".join(f"{k}: {'ok' if v else 'MISMATCH'}" for k, v in checks.items())
    return all(checks.values()), text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=400_000, help="Images in the generated store.")
    ap.add_argument("--store", help="Workspace folder to build, or reuse when it has gt and r already.")
    ap.add_argument("--sample", type=int, default=20_000, help="Images in the side-by-side sample.")
    ap.add_argument("--quick", action="store_true", help="A tiny run (smoke test).")
    ap.add_argument("--run-match", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run_match:  # the child process: only the match, so that ru_maxrss is its own
        print(json.dumps(run_match(Path(args.run_match))))
        return 0
    n = 3000 if args.quick else args.images
    n_sample = min(n, 1000 if args.quick else args.sample)
    with tempfile.TemporaryDirectory(prefix="bench_match_") as tmp:
        root = Path(args.store) if args.store else Path(tmp) / "ws"
        reuse = (root / "tuiops.db").exists()
        if reuse:
            print(f"reusing the store in {root}")
        else:
            secs = build(root, n)
            print(f"built a store of {n:,} images in {secs:.1f} s ({root})")
        out = subprocess.run(
            [sys.executable, __file__, "--run-match", str(root)], capture_output=True, text=True
        )
        if out.returncode != 0:
            print(out.stdout, out.stderr)
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        ph = r["phases"]
        images = r["images"]
        c = r["counts"]
        print(
            f"\nmatch of {images:,} images ({c['labels']:,} labels, {c['dets']:,} confident detections): "
            f"wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s (all threads), peak memory {r['maxrss_mb']:.0f} MiB"
        )
        print(
            f"load average (1 min) before/after: {r['load'][0]:.1f} / {r['load'][1]:.1f} on {os.cpu_count()} CPUs"
        )
        print(f"{'phase':<34} {'seconds':>8}")
        for k, label in (
            ("read", "read (SQLite → Arrow, background)"),
            ("read_wait", "  of which the matcher waited"),
            ("match", "match (vectorised stages)"),
            ("write", "write (Arrow → SQLite, background)"),
            ("write_wait", "  of which the matcher waited"),
            ("commit", "commit"),
            ("total", "total"),
        ):
            print(f"{label:<34} {ph.get(k, 0.0):8.2f}")
        scale = 4_000_000 / images
        print(
            f"extrapolated to 4,000,000 images (linear): wall {r['wall'] * scale:.0f} s at this load, "
            f"CPU {r['cpu'] * scale:.0f} s (≥ {r['cpu'] * scale / (os.cpu_count() or 1):.0f} s wall on "
            f"{os.cpu_count()} idle CPUs)"
        )
        print("counts: " + ", ".join(f"{k} {c[k]:,}" for k in CATS))

        t_ours, t_naive, same, rows = compare_sample(root, n_sample)
        print(f"\nside by side on {n_sample:,} images ({rows:,} objects):")
        print(f"{'implementation':<34} {'seconds':>8} {'× tuiops':>9}")
        print(f"{'tuiops match_frames (vectorised)':<34} {t_ours:8.3f} {1.0:9.1f}")
        print(f"{'per-image Python loop':<34} {t_naive:8.3f} {t_naive / t_ours:9.1f}")
        inv_ok, inv_text = invariants(root)
        print(f"parity of every object on the sample: {'ok' if same else 'MISMATCH'}")
        print(f"stored tables: {inv_text}")
        ok = same and inv_ok
        print("parity: ok" if ok else "parity: MISMATCH")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
