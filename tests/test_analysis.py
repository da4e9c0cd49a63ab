"""Error analysis beyond mAP — TIDE, calibration, slices, run-vs-run — checked against hotcoco."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.test_eval import scene
from tuiops.ops.analysis import calibration, coco_cells, tide_errors

TOL = 1e-6


def with_crowds(seed: int) -> tuple[pl.DataFrame, pl.DataFrame, list[int], list[int]]:
    """A random scene (ties, empty images, a class without labels) with crowd regions and boxes outside the image."""
    labels, dets, image_ids, class_ids = scene(seed)
    rng = np.random.default_rng(seed + 1000)
    crowd = (rng.random(labels.height) < 0.12).astype(np.int64)
    labels = labels.with_columns(pl.Series("iscrowd", crowd))
    # Non-contiguous category ids, shuffled.
    remap = {c: 3 + 7 * c for c in class_ids}
    labels = labels.with_columns(pl.col("class_id").replace_strict(remap))
    dets = dets.with_columns(pl.col("class_id").replace_strict(remap))
    # Some boxes reach past the (1000 × 1000) image.
    dets = dets.with_columns(
        pl.when(pl.int_range(pl.len()) % 9 == 4)
        .then(pl.col("x2") + 900.0)
        .otherwise(pl.col("x2"))
        .alias("x2")
    )
    return labels, dets, image_ids, [remap[c] for c in class_ids][::-1]


def hotcoco_eval(
    labels: pl.DataFrame, dets: pl.DataFrame, image_ids: list[int], class_ids: list[int], tmp: Path
):
    from hotcoco import COCO, COCOeval

    anns = []
    for i, r in enumerate(labels.iter_rows(named=True)):
        w, h = r["x2"] - r["x1"], r["y2"] - r["y1"]
        anns.append(
            {
                "id": i + 1,
                "image_id": r["item_id"],
                "category_id": r["class_id"],
                "bbox": [r["x1"], r["y1"], w, h],
                "area": w * h,
                "iscrowd": int(r.get("iscrowd") or 0),
            }
        )
    gt = {
        "images": [{"id": i, "width": 1000, "height": 1000, "file_name": f"{i}.jpg"} for i in image_ids],
        "categories": [{"id": c, "name": f"c{c}"} for c in class_ids],
        "annotations": anns,
    }
    res = [
        {
            "image_id": r["item_id"],
            "category_id": r["class_id"],
            "bbox": [r["x1"], r["y1"], r["x2"] - r["x1"], r["y2"] - r["y1"]],
            "score": r["score"],
        }
        for r in dets.iter_rows(named=True)
    ]
    (tmp / "gt.json").write_text(json.dumps(gt))
    (tmp / "dt.json").write_text(json.dumps(res))
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO(str(tmp / "gt.json"))
        d = g.load_res(str(tmp / "dt.json")) if res else g.load_res([])
        ev = COCOeval(g, d, "bbox")
        ev.evaluate()
    return ev


HOT_KEYS = {
    "cls": "Cls",
    "loc": "Loc",
    "both": "Both",
    "dupe": "Dupe",
    "bkg": "Bkg",
    "miss": "Miss",
    "fp": "FP",
    "fn": "FN",
}


@pytest.mark.parametrize("seed", range(24))
def test_tide_equals_hotcoco(seed: int, tmp_path: Path) -> None:
    labels, dets, image_ids, class_ids = with_crowds(seed)
    if dets.height == 0:
        pytest.skip("hotcoco needs a detection")
    ev = hotcoco_eval(labels, dets, image_ids, class_ids, tmp_path)
    ref = ev.tide_errors(pos_thr=0.5, bg_thr=0.1)
    cells = coco_cells(labels, dets, image_ids=image_ids, class_ids=class_ids)
    ours = tide_errors(cells)
    assert abs(ours.ap - ref["ap_base"]) <= TOL
    for k, hk in HOT_KEYS.items():
        assert abs(ours.delta_ap[k] - ref["delta_ap"][hk]) <= TOL, (k, ours.delta_ap, ref["delta_ap"])
    for k in ("cls", "loc", "both", "dupe", "bkg", "miss"):
        assert ours.counts[k] == ref["counts"][HOT_KEYS[k]], (k, ours.counts, ref["counts"])


@pytest.mark.parametrize("seed", range(12))
def test_calibration_equals_hotcoco(seed: int, tmp_path: Path) -> None:
    labels, dets, image_ids, class_ids = with_crowds(seed)
    if dets.height == 0:
        pytest.skip("hotcoco needs a detection")
    ev = hotcoco_eval(labels, dets, image_ids, class_ids, tmp_path)
    cells = coco_cells(labels, dets, image_ids=image_ids, class_ids=class_ids)
    for n_bins in (10, 7):
        ref = ev.calibration(n_bins=n_bins, iou_threshold=0.5)
        ours = calibration(cells, n_bins, class_names=[f"c{c}" for c in cells.cats.tolist()])
        assert ours.n_dets == ref["num_detections"]
        assert abs(ours.ece - ref["ece"]) <= TOL and abs(ours.mce - ref["mce"]) <= TOL
        for a, b in zip(ours.bins, ref["bins"], strict=True):
            assert a["count"] == b["count"]
            assert abs(a["confidence"] - b["avg_confidence"]) <= TOL
            assert abs(a["accuracy"] - b["avg_accuracy"]) <= TOL
        assert set(ours.per_class) == set(ref["per_category"])
        for name, row in ours.per_class.items():
            assert abs(row["ece"] - ref["per_category"][name]) <= TOL
