"""Detection on a Dask cluster vs a plain run: images/s and where the cluster's time goes.

The same pool of N drawn JPEG images and the same YOLOv8n (from yolov8n.yaml, random
weights, nothing downloaded) go through :func:`tuiops.ops.detect.detect`:

- plain: the op in this process (one torch thread, as each worker gets);
- local:1 and local:2: ``--cluster local:N`` (a ``LocalCluster`` of N worker processes
  with one thread each, tasks of ``--task-images`` images).

For a cluster run the images/s are counted over its task phase (from the first task
submitted to the last result written); the start of the cluster (worker processes
importing torch) is shown apart, as it is paid once per command, not per image. The
overhead is the workers' time not spent inside a task (scheduling, transfers, waiting
for the driver), as a share of workers × wall time and per task. Parity: every run's
rows must equal the plain run's (prints MISMATCH otherwise).

Goals: local:1 within 10 % of the plain run; overhead per task < 50 ms.

    python benchmarks/bench_cluster.py [--images 192] [--size 512x384] [--imgsz 320] [--batch 16]
                                       [--task-images 32] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "true")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_detect import CLASSES, draw_pool, index_pool, make_model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=192, help="images in the pool")
    ap.add_argument("--size", default="512x384", help="image size WxH")
    ap.add_argument("--imgsz", type=int, default=320, help="inference image size")
    ap.add_argument("--batch", type=int, default=16, help="images per model call")
    ap.add_argument("--task-images", type=int, default=32, help="images per cluster task")
    ap.add_argument("--quick", action="store_true", help="16 small images at imgsz 64, tasks of 4")
    a = ap.parse_args(argv)
    if a.quick:
        a.images, a.size, a.imgsz, a.batch, a.task_images = 16, "96x64", 64, 8, 4
    size = tuple(int(x) for x in a.size.lower().split("x"))
    assert len(size) == 2

    from tuiops.ops.cluster import ClusterOptions
    from tuiops.ops.detect import detect, load_model
    from tuiops.workspace import Workspace

    kw = {"conf": 0.001, "imgsz": a.imgsz, "batch": a.batch, "max_det": 50, "threads": 1}
    mismatches = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        draw_pool(root / "pool", a.images, size)  # type: ignore[arg-type]
        weights = make_model(root / "rand.pt")
        ws = Workspace.init(root / "ws", classes=CLASSES)
        index_pool(ws, root / "pool", size)  # type: ignore[arg-type]
        model = load_model(ws, weights)
        detect(ws, weights, "warm", limit=a.batch, model=model, **kw)  # type: ignore[arg-type]
        print(
            f"{a.images} images {a.size}, imgsz {a.imgsz}, batch {a.batch}, tasks of {a.task_images}, "
            f"1 torch thread per worker, {os.cpu_count()} cores"
        )
        t0 = time.perf_counter()
        plain = detect(ws, weights, "plain", model=model, **kw)  # type: ignore[arg-type]
        plain_s = time.perf_counter() - t0
        base = ws.store.read_detections("plain").drop("id")
        plain_rate = plain.processed / plain_s
        print(
            f"{'run':<10} {'images/s':>9} {'vs plain':>9} {'start s':>8} {'tasks':>6} {'overhead':>9} {'ms/task':>8}"
        )
        print(f"{'plain':<10} {plain_rate:>9.1f} {'1.00':>9} {'-':>8} {'-':>6} {'-':>9} {'-':>8}")
        for spec in ("local:1", "local:2"):
            run = spec.replace(":", "")
            t0 = time.perf_counter()
            res = detect(
                ws,
                weights,
                run,
                cluster=ClusterOptions(spec, task_images=a.task_images),
                **kw,  # type: ignore[arg-type]
            )
            total = time.perf_counter() - t0
            c = res.cluster or {}
            rate = res.processed / c["wall_seconds"] if c.get("wall_seconds") else 0.0
            print(
                f"{spec:<10} {rate:>9.1f} {rate / plain_rate:>9.2f} {c['start_seconds']:>8.1f} {c['tasks']:>6} "
                f"{100 * c['overhead_share']:>8.1f}% {c['overhead_per_task_ms']:>8.1f}"
                f"   (end to end {res.processed / total:.1f} images/s with the start)"
            )
            rows = ws.store.read_detections(run).drop("id")
            same = rows.height == base.height and rows.drop("run_id", strict=False).equals(
                base.drop("run_id", strict=False)
            )
            if not same:
                mismatches += 1
                print(f"MISMATCH: {spec} stored {rows.height} rows, the plain run {base.height}")
        ws.close()
    print("parity: every cluster run stored the plain run's rows" if not mismatches else "parity: MISMATCH")
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
