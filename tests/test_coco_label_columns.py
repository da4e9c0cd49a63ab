"""A COCO import keeps each label's area and iscrowd as numbers, and eval reads them as pycocotools does."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np

from tests.conftest import CLASSES, add_items
from tuiops.ops.evaluate import STAT_KEYS, evaluate
from tuiops.ops.labels import import_detections, import_labels
from tuiops.workspace import Workspace

TOL = 1e-6


def _files(tmp_path, anns_extra: list[dict]) -> tuple:
    rng = np.random.default_rng(3)
    images = [
        {"id": 10 + k, "file_name": f"danbooru_{k}.jpg", "width": 640, "height": 480} for k in range(1, 7)
    ]
    anns, results = [], []
    for k, extra in enumerate(anns_extra):
        img = 10 + 1 + k % 6
        x, y = float(rng.uniform(0, 400)), float(rng.uniform(0, 300))
        w, h = float(rng.uniform(4, 200)), float(rng.uniform(4, 150))
        anns.append({"id": 100 + k, "image_id": img, "category_id": 3 + k % 2, "bbox": [x, y, w, h], **extra})
        results.append(
            {
                "image_id": img,
                "category_id": 3 + k % 2,
                "bbox": [x + 1, y - 1, w, h * 0.9],
                "score": round(float(rng.uniform(0.1, 1)), 2),
            }
        )
    gt = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": 3, "name": "head"}, {"id": 4, "name": "text"}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(results))
    return tmp_path / "gt.json", tmp_path / "dt.json"


def _workspace(tmp_path) -> Workspace:
    ws = Workspace.init(tmp_path / "ws", classes=list(CLASSES))
    add_items(ws, [f"danbooru_{k}" for k in range(1, 7)])
    return ws


def test_area_and_iscrowd_are_columns_and_eval_matches_pycocotools(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    extras = [
        {"area": 5000.0, "iscrowd": 0},
        {"area": 12, "iscrowd": 1},
        {"iscrowd": 0, "area": 30.5},
        {"area": 2000, "iscrowd": 0},
        {"area": 100000.25, "iscrowd": 0},
        {"area": 900, "iscrowd": 1},
        {"area": 1e-3, "iscrowd": 0},
        {"area": 9216, "iscrowd": 0},
        {"area": 1024, "iscrowd": 0},
        {"area": 3000, "iscrowd": 0},
    ]
    gt, dt = _files(tmp_path, extras)
    ws = _workspace(tmp_path)
    import_labels(ws, gt, "gt")
    import_detections(ws, dt, "dt", images_file=gt)
    rows = ws.store.execute("SELECT coco_area, coco_iscrowd FROM labels ORDER BY id").fetchall()
    want = {(float(e["area"]), e["iscrowd"]) for e in extras}
    assert set(rows) == want
    res = evaluate(ws, "gt", "dt")
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO(str(gt))
        ev = COCOeval(cg, cg.loadRes(str(dt)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - ev.stats).max() <= TOL
    ws.close()


def test_labels_without_the_columns_are_read_from_their_extra(tmp_path):
    """Values that are not plain numbers stay out of the columns; those labels, and labels
    stored by an older store or an edit (columns null), are read from ``extra`` as before."""
    extras = [
        {"area": "12", "iscrowd": True},
        {"area": None, "iscrowd": 1},
        {"area": 2**70, "iscrowd": 2**70},
        {},
        {"area": 400, "iscrowd": 0},
        {"area": 30, "iscrowd": 0},
        {"area": 700.5, "iscrowd": 1},
    ]
    gt, dt = _files(tmp_path, extras)
    ws = _workspace(tmp_path)
    import_labels(ws, gt, "gt")
    import_detections(ws, dt, "dt", images_file=gt)
    rows = ws.store.execute("SELECT coco_area, coco_iscrowd FROM labels ORDER BY id").fetchall()
    assert sorted(rows, key=str) == sorted(
        [(None, None), (None, 1), (float(2**70), None), (None, None), (400.0, 0), (30.0, 0), (700.5, 1)],
        key=str,
    )
    with_columns = evaluate(ws, "gt", "dt")
    ws.store.execute("UPDATE labels SET coco_area = NULL, coco_iscrowd = NULL")
    from_extra = evaluate(ws, "gt", "dt")
    assert [with_columns.stats[k] for k in STAT_KEYS] == [from_extra.stats[k] for k in STAT_KEYS]
    assert with_columns.per_class == from_extra.per_class
    ws.close()
