"""COCO mAP: tuiops (polars/numpy) vs pycocotools, faster-coco-eval and hotcoco, side by side.

The same generated boxes (~4 labels and ~5 detections per image, 5 classes: jittered
copies of labels, duplicates, class confusions and random false positives) go to every
peer. What is timed, for every peer alike, is the evaluation from in-memory data:

- peers: ``evaluate() + accumulate() + summarize()`` of their COCOeval; building their
  COCO objects (``COCO(dict)`` + ``loadRes(list)``) is done before and not timed; each
  peer runs in a child process of its own (so one that runs out of memory is reported
  and the others go on);
- tuiops: :func:`tuiops.ops.evaluate.coco_evaluate` from polars frames (everything:
  pairs, matching, accumulation, summary).

Prints seconds (wall and CPU) per peer and size, the ratios peer / tuiops, each side's peak
memory (how far the process's resident size rose above its size at the start of the timed
part; Linux) and a parity check: the 12 stats and the per-class AP of every peer must equal
ours within 1e-6 (exit 1 if not).
pycocotools is slow (minutes at 200k images), so by default it runs only up to
``--pycocotools-max`` images; peers that are not installed are reported as such.

    python benchmarks/bench_map.py [--sizes 20000,200000,1000000] [--peers pycocotools,fce,hotcoco] [--quick]

``--from-files`` times the user's whole path instead, from a COCO ground-truth file and
a results list on disk to the 12 numbers: image and category ids non-contiguous and
shuffled, two-decimal scores (ties across images), ~5 % of the detections sticking out
of the image. tuiops: ``labels import`` + ``dets import --images`` + ``eval`` through the
ops functions in one process (a fresh workspace whose items a scan would have made,
untimed); hotcoco and pycocotools: ``COCO(gt)`` + ``loadRes(dt)`` + evaluate +
accumulate + summarize. Each runs in a child process of its own; parity is the 12
stats of every one against pycocotools (or hotcoco where pycocotools is skipped). A
peer's line gives its wall and CPU time over tuiops' (> 1: tuiops is faster); on a
loaded machine the CPU ratio is the steadier one.

    python benchmarks/bench_map.py --from-files [--sizes 20000] [--import-only 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
import polars as pl

N_CLASSES = 5
TOL = 1e-6


def synth(n_images: int, seed: int = 0, n_classes: int = N_CLASSES) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Labels (``item_id, class_id, x1…y2``) and detections (+ ``score``) for images 1..n.

    ~4 labels per image (Poisson), ~5 detections: 85 % of the labels found with a jitter of
    ~8 % of their size, 10 % of those found twice, 5 % with another class, the rest random
    false positives; scores rounded to 3 decimals (many exact ties). Rows are in image order.
    """
    rng = np.random.default_rng(seed)
    per = rng.poisson(4, n_images)
    n = int(per.sum())
    img = np.repeat(np.arange(1, n_images + 1, dtype=np.int64), per)
    w_img, h_img = 640.0, 480.0
    w = np.exp(rng.uniform(np.log(8), np.log(300), n))
    h = np.minimum(w * rng.uniform(0.5, 2, n), h_img - 1)
    x1 = rng.uniform(0, w_img - np.minimum(w, w_img - 1))
    y1 = rng.uniform(0, h_img - h)
    cls = rng.integers(0, n_classes, n)
    labels = pl.DataFrame(
        {"item_id": img, "class_id": cls.astype(np.int32), "x1": x1, "y1": y1, "x2": x1 + w, "y2": y1 + h}
    )
    src = np.flatnonzero(rng.random(n) < 0.85)
    src = np.concatenate([src, src[rng.random(src.size) < 0.1]])
    n_fp = max(0, 5 * n_images - src.size)
    k = src.size

    def jitter(size: np.ndarray) -> np.ndarray:
        return rng.normal(0, 1, k) * size * 0.08

    dx1, dy1 = x1[src] + jitter(w[src]), y1[src] + jitter(h[src])
    dx2 = np.maximum(x1[src] + w[src] + jitter(w[src]), dx1 + 1)
    dy2 = np.maximum(y1[src] + h[src] + jitter(h[src]), dy1 + 1)
    dcls = np.where(rng.random(k) < 0.05, rng.integers(0, n_classes, k), cls[src])
    fw = np.exp(rng.uniform(np.log(8), np.log(300), n_fp))
    fh = np.minimum(fw * rng.uniform(0.5, 2, n_fp), h_img - 1)
    fx1 = rng.uniform(0, w_img - np.minimum(fw, w_img - 1))
    fy1 = rng.uniform(0, h_img - fh)
    dets = pl.DataFrame(
        {
            "item_id": np.concatenate([img[src], rng.integers(1, n_images + 1, n_fp)]),
            "class_id": np.concatenate([dcls, rng.integers(0, n_classes, n_fp)]).astype(np.int32),
            "x1": np.concatenate([dx1, fx1]),
            "y1": np.concatenate([dy1, fy1]),
            "x2": np.concatenate([dx2, fx1 + fw]),
            "y2": np.concatenate([dy2, fy1 + fh]),
            "score": np.round(np.concatenate([rng.beta(5, 2, k), rng.beta(1.5, 5, n_fp)]), 3),
        }
    ).sort("item_id", maintain_order=True)
    return labels, dets


def coco_dicts(
    labels: pl.DataFrame, dets: pl.DataFrame, n_images: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The same boxes as a COCO ground-truth dict (area = w·h) and a results list."""
    lab = labels.with_columns(w=pl.col("x2") - pl.col("x1"), h=pl.col("y2") - pl.col("y1"))
    anns = [
        {"id": i + 1, "image_id": im, "category_id": c, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
        for i, (im, c, x, y, w, h) in enumerate(
            lab.select("item_id", "class_id", "x1", "y1", "w", "h").iter_rows()
        )
    ]
    det = dets.with_columns(w=pl.col("x2") - pl.col("x1"), h=pl.col("y2") - pl.col("y1"))
    res = [
        {"image_id": im, "category_id": c, "bbox": [x, y, w, h], "score": s}
        for im, c, x, y, w, h, s in det.select(
            "item_id", "class_id", "x1", "y1", "w", "h", "score"
        ).iter_rows()
    ]
    gt = {
        "images": [{"id": i, "width": 640, "height": 480} for i in range(1, n_images + 1)],
        "categories": [{"id": c, "name": f"c{c}"} for c in range(N_CLASSES)],
        "annotations": anns,
    }
    return gt, res


def _status_kb(field: str) -> int | None:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status in KiB (None off Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def memory_mark() -> int | None:
    """Reset the process's peak resident size to its current one; returns that size (KiB)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return None
    return _status_kb("VmRSS")


def memory_peak(mark: int | None) -> float | None:
    """MiB the process's resident size rose to above ``mark`` since :func:`memory_mark`."""
    hwm = _status_kb("VmHWM")
    return None if mark is None or hwm is None else max(0, hwm - mark) / 1024


def run_peer(
    name: str, gt: dict[str, Any], res: list[dict[str, Any]]
) -> tuple[float, float, np.ndarray, np.ndarray, float | None]:
    """Build the peer's COCO objects from the dicts (untimed; they may change them), then time
    evaluate + accumulate + summarize. Returns wall seconds, CPU seconds (all threads), the
    12 stats, the per-class AP and the peak memory (MiB above the resident size at the start
    of the timed part).
    """
    with contextlib.redirect_stdout(io.StringIO()):
        if name == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval

            cg = COCO()
            cg.dataset = gt
            cg.createIndex()
            cd = cg.loadRes(res)
        elif name == "fce":
            from faster_coco_eval import COCO
            from faster_coco_eval import COCOeval_faster as COCOeval

            cg = COCO(gt)
            cd = cg.loadRes(res)
        else:
            from hotcoco import COCO, COCOeval

            cg = COCO(gt)
            cd = cg.loadRes(res)
        del gt, res
        gc.collect()
        mark = memory_mark()
        t, c = time.perf_counter(), time.process_time()
        ev = COCOeval(cg, cd, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        dt, dc = time.perf_counter() - t, time.process_time() - c
        peak = memory_peak(mark)
    stats = np.asarray(ev.stats, dtype=np.float64)
    per_class = np.full(N_CLASSES, np.nan)
    prec = np.asarray(ev.eval["precision"]) if isinstance(ev.eval, dict) and "precision" in ev.eval else None
    if prec is not None and prec.ndim == 5:
        for k in range(N_CLASSES):
            p = prec[:, :, k, 0, -1]
            per_class[k] = p[p > -1].mean() if (p > -1).any() else -1.0
    return dt, dc, stats, per_class, peak


def available(name: str) -> str | None:
    """None if the peer can be imported, else why not."""
    mod = {"pycocotools": "pycocotools.cocoeval", "fce": "faster_coco_eval", "hotcoco": "hotcoco"}[name]
    try:
        __import__(mod)
    except ImportError as exc:
        hint = {"hotcoco": "pip install hotcoco", "fce": "pip install faster-coco-eval"}.get(
            name, "pip install pycocotools"
        )
        return f"not installed ({exc.name}; {hint})"
    return None


def peer_in_child(peer: str, n: int) -> tuple[float, float, np.ndarray, np.ndarray, float | None] | str:
    """Run one peer on one size in a child process (a peer that runs out of memory takes only
    itself down); its results, or why there are none."""
    out = subprocess.run(
        [sys.executable, __file__, "--peer-child", peer, str(n)], capture_output=True, text=True
    )
    if out.returncode != 0:
        how = f"killed by signal {-out.returncode}" if out.returncode < 0 else f"exit {out.returncode}"
        if out.returncode == -9:
            how += " (out of memory?)"
        tail = out.stderr.strip().splitlines()[-1:] if out.stderr.strip() else []
        return f"failed: {how}" + (f": {tail[0][:120]}" if tail else "")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return (
        r["wall"],
        r["cpu"],
        np.array(r["stats"]),
        np.array(r["per_class"], dtype=np.float64),
        r.get("peak_mib"),
    )


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# -- from files: the user's path -----------------------------------------------------------------
FILE_CATS = (19, 3, 23, 11, 7)  # category ids of the classes 0..4: non-contiguous, listed shuffled


def _obj(*pairs: tuple[str, pl.Expr | str]) -> pl.Expr:
    """A JSON object's text from (key, value text) pairs; a str value is written as is."""
    parts: list[pl.Expr] = []
    for k, (key, value) in enumerate(pairs):
        parts.append(pl.lit(("{" if k == 0 else ",") + json.dumps(key) + ":"))
        parts.append(pl.lit(value) if isinstance(value, str) else value.cast(pl.String))
    return pl.concat_str([*parts, pl.lit("}")])


def write_files(n_images: int, folder: str, seed: int = 0) -> tuple[str, str]:
    """A COCO ground-truth file and a results list of :func:`synth`'s boxes (see ``--from-files``)."""
    rng = np.random.default_rng(seed + 1)
    labels, dets = synth(n_images, seed)
    coco_id = rng.permutation(n_images) * 7 + 3  # item k → COCO image id coco_id[k-1]
    ids = pl.Series("coco_id", coco_id, dtype=pl.Int64)
    cat = pl.col("class_id").replace_strict(dict(enumerate(FILE_CATS)), return_dtype=pl.Int64)

    def num(e: pl.Expr) -> pl.Expr:
        return e.round(2).cast(pl.String)

    def bbox(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.col("x1").round(2).alias("x"),
            pl.col("y1").round(2).alias("y"),
            (pl.col("x2") - pl.col("x1")).round(2).alias("w"),
            (pl.col("y2") - pl.col("y1")).round(2).alias("h"),
            pl.col("item_id").map_batches(lambda s: ids.gather(s - 1)).alias("image_id"),
            cat.alias("category_id"),
        )

    box_text = pl.format("[{},{},{},{}]", *(num(pl.col(c)) for c in ("x", "y", "w", "h")))
    lab = bbox(labels).with_columns(pl.int_range(pl.len()).shuffle(seed).mul(3).add(11).alias("id"))
    ann = lab.sample(fraction=1.0, shuffle=True, seed=seed).select(
        _obj(
            ("id", pl.col("id")),
            ("image_id", pl.col("image_id")),
            ("category_id", pl.col("category_id")),
            ("bbox", box_text),
            ("area", num(pl.col("w") * pl.col("h"))),
            ("iscrowd", "0"),
            ("segmentation", "[]"),
        )
    )
    out = rng.random(dets.height) < 0.05  # detectors of other frameworks do not clip
    det = bbox(dets).with_columns(
        pl.when(pl.Series(out)).then(-pl.col("w") / 3).otherwise(pl.col("x")).alias("x"),
        pl.col("score").round(2).alias("score"),
    )
    res = det.sample(fraction=1.0, shuffle=True, seed=seed + 1).select(
        _obj(
            ("image_id", pl.col("image_id")),
            ("category_id", pl.col("category_id")),
            ("bbox", box_text),
            ("score", pl.col("score")),
        )
    )
    images = pl.DataFrame({"k": np.arange(1, n_images + 1), "coco_id": coco_id}).sample(
        fraction=1.0, shuffle=True, seed=seed
    )
    img = images.select(
        _obj(
            ("id", pl.col("coco_id")),
            ("file_name", pl.format('"danbooru_{}.jpg"', "k")),
            ("width", "640"),
            ("height", "480"),
        )
    )
    order = sorted(enumerate(FILE_CATS), key=lambda t: t[1] % 5)
    cats = json.dumps([{"id": c, "name": f"c{k}"} for k, c in order])
    gt_path, dt_path = os.path.join(folder, "gt.json"), os.path.join(folder, "dt.json")
    with open(gt_path, "w", encoding="utf-8") as fh:
        fh.write('{"images":[' + ",".join(img.to_series().to_list()) + "],")
        fh.write('"annotations":[' + ",".join(ann.to_series().to_list()) + "],")
        fh.write('"categories":' + cats + "}\n")
    with open(dt_path, "w", encoding="utf-8") as fh:
        fh.write("[" + ",".join(res.to_series().to_list()) + "]\n")
    return gt_path, dt_path


def tuiops_from_files(gt: str, dt: str, n_images: int, import_only: bool = False) -> dict[str, Any]:
    """labels import + dets import + eval in a fresh workspace (its items made beforehand, untimed)."""
    import tempfile

    from tuiops.ops.evaluate import STAT_KEYS, evaluate
    from tuiops.ops.labels import import_detections, import_labels
    from tuiops.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(os.path.join(tmp, "ws"), classes=[])
        keys = pl.DataFrame(
            {
                "key": [f"danbooru_{k}" for k in range(1, n_images + 1)],
                "booru": ["danbooru"] * n_images,
                "fid": np.arange(1, n_images + 1),
                "width": [640] * n_images,
                "height": [480] * n_images,
            }
        )
        ws.store.ensure_items(keys)
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        lab = import_labels(ws, gt, "gt", "coco", add_classes=True)
        t1 = time.perf_counter()
        if import_only:
            ws.close()
            return {"labels_import": t1 - t0, "boxes": lab.boxes, "cpu": time.process_time() - c0}
        det = import_detections(ws, dt, "dt", "coco", images_file=gt)
        t2 = time.perf_counter()
        res = evaluate(ws, "gt", "dt")
        t3 = time.perf_counter()
        cpu = time.process_time() - c0
        ws.close()
    return {
        "wall": t3 - t0,
        "cpu": cpu,
        "labels_import": t1 - t0,
        "dets_import": t2 - t1,
        "eval": t3 - t2,
        "labels": lab.boxes,
        "dets": det.boxes,
        "outside": det.boxes_outside,
        "stats": [res.stats[k] for k in STAT_KEYS],
    }


def peer_from_files(peer: str, gt: str, dt: str) -> dict[str, Any]:
    """The peer's ``COCO(gt)`` + ``loadRes(dt)`` + evaluate + accumulate + summarize, timed whole."""
    with contextlib.redirect_stdout(io.StringIO()):
        t, c = time.perf_counter(), time.process_time()
        if peer == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval
        else:
            from hotcoco import COCO, COCOeval  # type: ignore[no-redef]
        cg = COCO(gt)
        cd = cg.loadRes(dt)
        ev = COCOeval(cg, cd, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"wall": wall, "cpu": cpu, "stats": np.asarray(ev.stats, dtype=np.float64).tolist()}


def files_child(who: str, args: list[str]) -> dict[str, Any] | str:
    """Run one side of ``--from-files`` in a child process; its JSON answer, or why there is none."""
    out = subprocess.run(
        [sys.executable, __file__, "--files-child", who, *args], capture_output=True, text=True
    )
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-1:] if out.stderr.strip() else []
        return f"failed: exit {out.returncode}" + (f": {tail[0][:160]}" if tail else "")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main_from_files(sizes: list[int], peers: list[str], py_max: int, import_only: int | None) -> int:
    import tempfile

    print("timed: the whole path from the files on disk to the 12 numbers, each side in its own process.")
    print("  tuiops: labels import + dets import --images + eval (ops functions; items made beforehand)")
    print("  peers:  COCO(gt) + loadRes(dt) + evaluate + accumulate + summarize")
    print(f"load average at start: {_load()} on {os.cpu_count()} CPUs")
    ok = True
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            gt, dt = write_files(n, tmp)
            mb = (os.path.getsize(gt) + os.path.getsize(dt)) / 1e6
            ours = files_child("tuiops", [gt, dt, str(n)])
            if isinstance(ours, str):
                print(f"{n:>9} images  tuiops  {ours}")
                return 1
            print(
                f"{n:>9} images  tuiops        {ours['wall']:8.2f} s  cpu {ours['cpu']:7.2f} s  "
                f"(labels import {ours['labels_import']:.2f} s, dets import {ours['dets_import']:.2f} s, "
                f"eval {ours['eval']:.2f} s; {ours['labels']} labels, {ours['dets']} dets, "
                f"{ours['outside']} outside the image; files {mb:.0f} MB)",
                flush=True,
            )
            ref: np.ndarray | None = None
            answers: dict[str, dict[str, Any]] = {}
            for peer in peers:
                if peer not in ("pycocotools", "hotcoco"):
                    continue
                why = available(peer)
                if why is None and peer == "pycocotools" and n > py_max:
                    why = f"skipped above {py_max} images (--pycocotools-max)"
                got = why if why is not None else files_child(peer, [gt, dt])
                if isinstance(got, str):
                    print(f"{n:>9} images  {peer:<12}  {got}", flush=True)
                    continue
                answers[peer] = got
                if ref is None or peer == "pycocotools":
                    ref = np.array(got["stats"])
            if ref is None:
                ref = np.array(ours["stats"])
            for peer, got in answers.items():
                diff = float(np.abs(np.array(got["stats"]) - ref).max())
                note = (
                    "reference" if diff == 0 and peer == "pycocotools" else f"max |Δ| vs reference {diff:.1e}"
                )
                print(
                    f"{n:>9} images  {peer:<12}  {got['wall']:8.2f} s  cpu {got['cpu']:7.2f} s  "
                    f"{got['wall'] / ours['wall']:6.2f}x tuiops' time  "
                    f"{got['cpu'] / ours['cpu']:6.2f}x tuiops' cpu  {note}",
                    flush=True,
                )
            diff = float(np.abs(np.array(ours["stats"]) - ref).max())
            same = diff <= TOL
            ok &= same
            print(
                f"{n:>9} images  parity: tuiops' 12 stats vs "
                f"{'pycocotools' if 'pycocotools' in answers else 'hotcoco' if answers else 'itself'}: "
                f"{'ok' if same else 'MISMATCH'} (max |Δ| {diff:.1e})",
                flush=True,
            )
    if import_only:
        with tempfile.TemporaryDirectory() as tmp:
            gt, dt = write_files(import_only, tmp)
            got = files_child("tuiops-import", [gt, dt, str(import_only)])
            if isinstance(got, str):
                print(f"{import_only:>9} images  labels import  {got}")
            else:
                print(
                    f"{import_only:>9} images  labels import {got['labels_import']:8.2f} s  "
                    f"cpu {got['cpu']:7.2f} s  ({got['boxes']} boxes)"
                )
    print(f"load average at end: {_load()}")
    print("parity: ok" if ok else "parity: MISMATCH")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,200000,1000000", help="Image counts, comma-separated.")
    ap.add_argument("--peers", default="pycocotools,fce,hotcoco", help="Peers to run, comma-separated.")
    ap.add_argument("--pycocotools-max", type=int, default=200_000, help="Largest size pycocotools runs at.")
    ap.add_argument("--repeat", type=int, default=2, help="Runs of tuiops per size (the best is reported).")
    ap.add_argument("--quick", action="store_true", help="A tiny run (smoke test).")
    ap.add_argument("--peer-child", nargs=2, metavar=("PEER", "IMAGES"), help=argparse.SUPPRESS)
    ap.add_argument(
        "--from-files", action="store_true", help="Time the whole path from COCO files on disk (module doc)."
    )
    ap.add_argument(
        "--import-only", type=int, help="--from-files: also time a labels import alone of this many images."
    )
    ap.add_argument("--files-child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.files_child:  # a child process: one side of --from-files
        who, rest = args.files_child[0], args.files_child[1:]
        if who.startswith("tuiops"):
            got = tuiops_from_files(rest[0], rest[1], int(rest[2]), import_only=who == "tuiops-import")
        else:
            got = peer_from_files(who, rest[0], rest[1])
        print(json.dumps(got))
        return 0
    if args.from_files:
        sizes = [300] if args.quick else [int(s) for s in args.sizes.split(",") if s]
        if not args.quick and args.sizes == ap.get_default("sizes"):
            sizes = [20_000]
        peers = [p for p in args.peers.split(",") if p]
        return main_from_files(sizes, peers, args.pycocotools_max, None if args.quick else args.import_only)
    if args.peer_child:  # a child process: one peer on one size, its memory its own
        peer, n_child = args.peer_child[0], int(args.peer_child[1])
        labels, dets = synth(n_child)
        gt, res = coco_dicts(labels, dets, n_child)
        del labels, dets
        dt, dc, stats, per_class, peak = run_peer(peer, gt, res)
        print(
            json.dumps(
                {
                    "wall": dt,
                    "cpu": dc,
                    "stats": stats.tolist(),
                    "per_class": per_class.tolist(),
                    "peak_mib": peak,
                }
            )
        )
        return 0
    sizes = [500] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    peers = [p for p in args.peers.split(",") if p]

    from tuiops.ops.evaluate import coco_evaluate

    print("timed: peers evaluate+accumulate+summarize (building their COCO objects excluded);")
    print("       tuiops coco_evaluate from polars frames (everything). cpu = CPU seconds of all threads.")
    print(f"load average at start: {_load()} on {os.cpu_count()} CPUs")
    rows: list[tuple[int, str, str, str, str, str, str, str]] = []
    ok = True

    def mib(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    for n in sizes:
        labels, dets = synth(n)
        best = best_cpu = float("inf")
        ours = None
        peak: float | None = None
        for rep in range(max(1, args.repeat)):
            gc.collect()
            mark = memory_mark()
            t, c = time.perf_counter(), time.process_time()
            ours = coco_evaluate(labels, dets, image_ids=np.arange(1, n + 1), class_ids=np.arange(N_CLASSES))
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            if rep == 0:  # later runs find memory the first one left with the allocator
                peak = memory_peak(mark)
            if wall < best:
                best, best_cpu = wall, cpu
        assert ours is not None
        rows.append(
            (
                n,
                "tuiops",
                f"{best:.3f}",
                f"{best_cpu:.3f}",
                "1.0",
                "1.0",
                mib(peak),
                f"{labels.height} labels, {dets.height} dets",
            )
        )
        print(
            f"{n:>9} images  tuiops        {best:9.3f} s  cpu {best_cpu:8.3f} s  peak {mib(peak)} MiB",
            flush=True,
        )
        for peer in peers:
            why = available(peer)
            if why is None and peer == "pycocotools" and n > args.pycocotools_max:
                why = f"skipped above {args.pycocotools_max} images (--pycocotools-max)"
            if why is not None:
                rows.append((n, peer, "-", "-", "-", "-", "-", why))
                print(f"{n:>9} images  {peer:<12}  {why}", flush=True)
                continue
            got = peer_in_child(peer, n)
            if isinstance(got, str):
                rows.append((n, peer, "-", "-", "-", "-", "-", got))
                print(f"{n:>9} images  {peer:<12}  {got}", flush=True)
                continue
            dt, dc, stats, per_class, p_peak = got
            diff = float(np.abs(stats - ours.stats).max())
            has_pc = not np.isnan(per_class).all()
            if has_pc:
                diff = max(diff, float(np.abs(per_class - ours.per_class_ap).max()))
            same = diff <= TOL
            ok &= same
            what = "12 stats + per-class AP" if has_pc else "12 stats"
            note = (
                f"parity ok: {what} (max |Δ| {diff:.1e})"
                if same
                else f"MISMATCH: {what} (max |Δ| {diff:.2e})"
            )
            rows.append(
                (
                    n,
                    peer,
                    f"{dt:.3f}",
                    f"{dc:.3f}",
                    f"{dt / best:.1f}",
                    f"{dc / best_cpu:.1f}",
                    mib(p_peak),
                    note,
                )
            )
            print(
                f"{n:>9} images  {peer:<12}  {dt:9.3f} s  cpu {dc:8.3f} s  peak {mib(p_peak)} MiB  "
                f"{dt / best:7.1f}x  {note}",
                flush=True,
            )
    print()
    print(
        "× tuiops: the peer's seconds over tuiops' (> 1: tuiops is faster), wall and CPU; peak MiB: how far"
    )
    print("the process's resident memory rose above its size at the start of the timed part.")
    print(
        f"{'images':>9}  {'peer':<12} {'wall s':>9} {'cpu s':>9}  {'× tuiops':>8} {'cpu ×':>6} "
        f"{'peak MiB':>9}  note"
    )
    for n, peer, sec, cpu, ratio, cpu_ratio, pk, note in rows:
        print(f"{n:>9}  {peer:<12} {sec:>9} {cpu:>9}  {ratio:>8} {cpu_ratio:>6} {pk:>9}  {note}")
    print(f"load average at end: {_load()}")
    print()
    print("parity: ok" if ok else "parity: MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
