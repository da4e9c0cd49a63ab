"""Benchmark: tuiops' vectorised NMS against a per-image torchvision loop, on the same boxes.

    python benchmarks/bench_nms.py                 # 1M images × 5–20 boxes (12.5M boxes)
    python benchmarks/bench_nms.py --images 100000
    python benchmarks/bench_nms.py --quick         # a few seconds, for a smoke test

The boxes look like a detector's output before NMS: each image has a few objects and
every object a cluster of jittered boxes with random scores (no exact ties), mostly of
the object's class. Both peers get the same float64 boxes; the parity check compares
the kept detection ids. Exits 1 when they differ. tuiops runs on polars' thread pool size
(``POLARS_MAX_THREADS``); the torchvision loop is one call per image, as a training or
evaluation script would make it. The load average is printed with the table, since both
peers share the machine with whatever else runs on it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import polars as pl


def generate(images: int, min_boxes: int, max_boxes: int, classes: int, seed: int) -> pl.DataFrame:
    """Clustered boxes in 640×480 images, ``min_boxes``…``max_boxes`` per image."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(min_boxes, max_boxes + 1, images)
    n = int(counts.sum())
    item = np.repeat(np.arange(images, dtype=np.int64), counts)
    n_obj = np.maximum(1, counts // rng.integers(2, 5, images))
    obj = (rng.random(n) * np.repeat(n_obj, counts)).astype(np.int64)
    obj_key = item * 64 + obj
    uniq, inv = np.unique(obj_key, return_inverse=True)
    k = len(uniq)
    bw = rng.uniform(20, 300, k)
    bh = rng.uniform(20, 300, k)
    bx = rng.uniform(0, 640 - 20, k)
    by = rng.uniform(0, 480 - 20, k)
    bcls = rng.integers(0, classes, k)
    jitter = rng.normal(0.0, 0.08, (n, 4))
    w = bw[inv] * (1 + jitter[:, 2])
    h = bh[inv] * (1 + jitter[:, 3])
    x1 = bx[inv] + bw[inv] * jitter[:, 0]
    y1 = by[inv] + bh[inv] * jitter[:, 1]
    cls = np.where(rng.random(n) < 0.1, rng.integers(0, classes, n), bcls[inv])
    return pl.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "item_id": item,
            "class_id": cls.astype(np.int32),
            "x1": x1,
            "y1": y1,
            "x2": x1 + np.abs(w),
            "y2": y1 + np.abs(h),
            "score": rng.random(n),
        }
    )


def torchvision_loop(df: pl.DataFrame, iou: float, agnostic: bool) -> np.ndarray:
    """Kept ids from one torchvision call per image (batched_nms, or nms when agnostic)."""
    import torch
    import torchvision

    boxes = np.ascontiguousarray(df.select("x1", "y1", "x2", "y2").to_numpy())
    scores = np.array(df["score"].to_numpy())
    classes = df["class_id"].to_numpy().astype(np.int64)
    ids = df["id"].to_numpy()
    item = df["item_id"].to_numpy()
    bounds = np.flatnonzero(np.diff(item)) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [len(item)]])
    kept = []
    with torch.inference_mode():
        for s, e in zip(starts.tolist(), stops.tolist(), strict=True):
            b = torch.from_numpy(boxes[s:e])
            sc = torch.from_numpy(scores[s:e])
            if agnostic:
                k = torchvision.ops.nms(b, sc, iou)
            else:
                k = torchvision.ops.batched_nms(b, sc, torch.from_numpy(classes[s:e]), iou)
            kept.append(k.numpy() + s)
    return ids[np.concatenate(kept)] if kept else np.empty(0, dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1_000_000, help="number of images (default 1000000)")
    ap.add_argument("--min-boxes", type=int, default=5, help="fewest boxes per image (default 5)")
    ap.add_argument("--max-boxes", type=int, default=20, help="most boxes per image (default 20)")
    ap.add_argument("--classes", type=int, default=5, help="number of classes (default 5)")
    ap.add_argument("--iou", type=float, default=0.5, help="IoU threshold (default 0.5)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--modes", default="aware,agnostic", help="comma list of aware, agnostic")
    ap.add_argument("--quick", action="store_true", help="2000 images: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.images = 2000

    from tuiops.ops.nms import nms_frame

    t0 = time.perf_counter()
    df = generate(args.images, args.min_boxes, args.max_boxes, args.classes, args.seed)
    gen_s = time.perf_counter() - t0
    print(
        f"{args.images:,} images, {df.height:,} boxes ({args.min_boxes}–{args.max_boxes} per image), "
        f"IoU > {args.iou}; generated in {gen_s:.1f} s"
    )
    torchvision_loop(df.head(50), args.iou, False)
    nms_frame(df.head(50), args.iou, False)
    load_before = os.getloadavg()
    rows = []
    ok = True
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        agnostic = mode == "agnostic"
        w0, c0 = time.perf_counter(), time.process_time()
        res = nms_frame(df, args.iou, agnostic)
        ours = (time.perf_counter() - w0, time.process_time() - c0)
        kept = np.sort(res.filter(pl.col("keep"))["id"].to_numpy())
        w0, c0 = time.perf_counter(), time.process_time()
        ref_kept = np.sort(torchvision_loop(df, args.iou, agnostic))
        ref = (time.perf_counter() - w0, time.process_time() - c0)
        same = kept.shape == ref_kept.shape and bool(np.array_equal(kept, ref_kept))
        ok &= same
        rows.append((mode, ours, ref, len(kept), len(ref_kept), same))
    load_after = os.getloadavg()
    print()
    print(
        f"wall = elapsed seconds; cpu = CPU seconds of all the process's threads; tuiops threads: "
        f"{pl.thread_pool_size()}, {os.cpu_count()} cores; load average (1/5/15 min) before "
        f"{'/'.join(f'{x:.1f}' for x in load_before)}, after {'/'.join(f'{x:.1f}' for x in load_after)}"
    )
    print(
        f"{'mode':<9} {'tuiops wall':>11} {'cpu':>7} {'torchvision wall':>16} {'cpu':>7} "
        f"{'ratio wall':>10} {'cpu':>6} {'kept':>11} {'kept (tv)':>11}  parity"
    )
    for mode, (ow, oc), (rw, rc), ka, kb, same in rows:
        print(
            f"{mode:<9} {ow:>9.2f} s {oc:>7.2f} {rw:>14.2f} s {rc:>7.2f} {rw / ow:>9.1f}× {rc / oc:>5.1f}× "
            f"{ka:>11,} {kb:>11,}  {'identical' if same else 'MISMATCH'}"
        )
    if not ok:
        print("parity check FAILED: the kept sets differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
