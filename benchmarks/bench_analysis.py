"""Error analysis: tuiops' TIDE breakdown and calibration vs hotcoco's, side by side.

The boxes are bench_map's (~4 labels and ~5 detections per image, 5 classes, scores with
ties). Timed for hotcoco: ``evaluate()`` + ``tide_errors()`` + ``calibration()`` from its
COCO objects (built before, untimed); for tuiops: :func:`tuiops.ops.analysis.coco_cells`
(the matching at IoU 0.5) + :func:`~tuiops.ops.analysis.tide_errors` +
:func:`~tuiops.ops.analysis.calibration` from polars frames. Also timed: the paired
bootstrap of `tuiops compare` (``--samples`` resamplings, outcomes at the 10 thresholds
of two runs). Prints seconds, the ratio hotcoco / tuiops and a parity check (every dAP,
the counts, ECE and MCE within 1e-6; exit 1 on a MISMATCH).

    python benchmarks/bench_analysis.py [--sizes 20000,100000] [--samples 200] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_map import synth

TOL = 1e-6
KEYS = {
    "cls": "Cls",
    "loc": "Loc",
    "both": "Both",
    "dupe": "Dupe",
    "bkg": "Bkg",
    "miss": "Miss",
    "fp": "FP",
    "fn": "FN",
}


def hotcoco_objects(labels: Any, dets: Any, n_images: int) -> Any:
    from hotcoco import COCO

    lab = labels.to_dict(as_series=False)
    anns = [
        {
            "id": i + 1,
            "image_id": lab["item_id"][i],
            "category_id": lab["class_id"][i],
            "bbox": [lab["x1"][i], lab["y1"][i], lab["x2"][i] - lab["x1"][i], lab["y2"][i] - lab["y1"][i]],
            "area": (lab["x2"][i] - lab["x1"][i]) * (lab["y2"][i] - lab["y1"][i]),
            "iscrowd": 0,
        }
        for i in range(labels.height)
    ]
    gt = {
        "images": [
            {"id": i, "width": 1000, "height": 1000, "file_name": f"{i}.jpg"} for i in range(1, n_images + 1)
        ],
        "categories": [{"id": c, "name": str(c)} for c in range(5)],
        "annotations": anns,
    }
    d = dets.to_dict(as_series=False)
    res = [
        {
            "image_id": d["item_id"][i],
            "category_id": d["class_id"][i],
            "bbox": [d["x1"][i], d["y1"][i], d["x2"][i] - d["x1"][i], d["y2"][i] - d["y1"][i]],
            "score": d["score"][i],
        }
        for i in range(dets.height)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO(gt)
        return g, g.load_res(res)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20000,100000")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="one small size (smoke test)")
    args = ap.parse_args()
    sizes = [2000] if args.quick else [int(s) for s in args.sizes.split(",")]
    samples = 20 if args.quick else args.samples
    from hotcoco import COCOeval

    from tuiops.ops.analysis import bootstrap, calibration, coco_cells, tide_errors
    from tuiops.ops.analysis.compare import IOU_THRESHOLDS

    bad = False
    print(
        f"{'images':>8} {'dets':>9} {'hotcoco s':>10} {'tuiops s':>9} {'ratio':>6}  parity   bootstrap ({samples}) s"
    )
    for n in sizes:
        labels, dets = synth(n)
        images, classes = np.arange(1, n + 1), np.arange(5)
        g, d = hotcoco_objects(labels, dets, n)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(g, d, "bbox")
            ev.evaluate()
            ref = ev.tide_errors(pos_thr=0.5, bg_thr=0.1)
            ref_cal = ev.calibration(n_bins=10, iou_threshold=0.5)
        t_hot = time.perf_counter() - t0
        t0 = time.perf_counter()
        cells = coco_cells(labels, dets, image_ids=images, class_ids=classes)
        tide = tide_errors(cells)
        cal = calibration(cells, 10)
        t_ours = time.perf_counter() - t0
        ok = all(abs(tide.delta_ap[k] - ref["delta_ap"][hk]) <= TOL for k, hk in KEYS.items())
        ok &= all(tide.counts[k] == ref["counts"][KEYS[k]] for k in tide.counts)
        ok &= abs(cal.ece - ref_cal["ece"]) <= TOL and abs(cal.mce - ref_cal["mce"]) <= TOL
        bad |= not ok
        per_t = [
            coco_cells(labels, dets, image_ids=images, class_ids=classes, threshold=float(t))
            for t in IOU_THRESHOLDS
        ]
        t0 = time.perf_counter()
        bootstrap(per_t, per_t, samples=samples, seed=0, confidence=0.95)
        t_boot = time.perf_counter() - t0
        print(
            f"{n:>8,} {dets.height:>9,} {t_hot:>10.2f} {t_ours:>9.2f} {t_hot / t_ours:>6.2f}  "
            f"{'ok' if ok else 'MISMATCH':8} {t_boot:>8.2f}"
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
