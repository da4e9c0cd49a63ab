"""COCO files in and out, checked by the consumers: pycocotools (and hotcoco) on the user's own files.

The data is adversarial on purpose: image and category ids non-contiguous and listed
shuffled, annotation ids shuffled, two-decimal scores (many ties across images), crowd
regions, empty images, ~15 % of the detections sticking out of the image, results in
no particular image order.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import add_items
from tuiops.ops.evaluate import STAT_KEYS, evaluate
from tuiops.ops.labels import export_detections, export_labels, import_detections, import_labels

W, H = 320, 240
TOL = 1e-6
CAT_IDS = [19, 3, 11, 7]  # non-contiguous, listed shuffled


def make_files(tmp_path: Path, seed: int, n_images: int = 60, outside: float = 0.15) -> tuple[Path, Path]:
    """A ground-truth file and a results list for images danbooru_1..n (see the module doc)."""
    rng = np.random.default_rng(seed)
    img_ids = rng.choice(np.arange(1, 50_000), n_images, replace=False).tolist()
    images = [
        {"id": int(img_ids[k]), "file_name": f"danbooru_{k + 1}.jpg", "width": W, "height": H}
        for k in rng.permutation(n_images).tolist()
    ]
    cats = [{"id": c, "name": f"cls{c}", "supercategory": "thing"} for c in CAT_IDS]

    def box(grid: bool) -> list[float]:
        if grid:  # small integer grid: many exact IoU ties
            x, y = rng.integers(0, 12) * 20, rng.integers(0, 9) * 20
            w, h = rng.integers(1, 5, 2) * 20
        else:
            w, h = rng.uniform(4, 120), rng.uniform(4, 100)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
        return [round(float(v), 2) for v in (x, y, w, h)]

    anns: list[dict[str, Any]] = []
    ann_ids = rng.choice(np.arange(1, 10**6), 20 * n_images, replace=False).tolist()
    for k in range(n_images):
        if k % 7 == 3:
            continue  # an empty image
        for _ in range(int(rng.integers(1, 9))):
            bb = box(grid=bool(rng.random() < 0.4))
            anns.append(
                {
                    "id": int(ann_ids.pop()),
                    "image_id": int(img_ids[k]),
                    "category_id": int(rng.choice(CAT_IDS)),
                    "bbox": bb,
                    "area": round(bb[2] * bb[3] * float(rng.uniform(0.6, 1.0)), 2),
                    "iscrowd": int(rng.random() < 0.06),
                    "segmentation": [],
                }
            )
    rng.shuffle(anns)  # type: ignore[arg-type]
    results: list[dict[str, Any]] = []
    for a in anns:
        for _ in range(int(rng.integers(0, 3))):
            x, y, w, h = a["bbox"]
            jit = rng.normal(0, 0.1, 4) * np.array([w, h, w, h])
            bb = [
                round(float(v), 2) for v in (x + jit[0], y + jit[1], max(w + jit[2], 1), max(h + jit[3], 1))
            ]
            cat = a["category_id"] if rng.random() < 0.9 else int(rng.choice(CAT_IDS))
            results.append({"image_id": a["image_id"], "category_id": cat, "bbox": bb})
    for _ in range(3 * n_images):
        results.append(
            {
                "image_id": int(rng.choice(img_ids)),
                "category_id": int(rng.choice(CAT_IDS)),
                "bbox": box(grid=bool(rng.random() < 0.5)),
            }
        )
    for r in results:
        r["score"] = round(float(rng.choice([0.3, 0.5, 0.7, 0.9]) + rng.integers(0, 3) / 100), 2)
        if rng.random() < outside:  # stick out of the image (left/top or right/bottom)
            x, y, w, h = r["bbox"]
            r["bbox"] = (
                [round(-w / 2 - 5, 2), y, w, h] if rng.random() < 0.5 else [x, round(H - h / 3, 2), w, h]
            )
    rng.shuffle(results)  # type: ignore[arg-type]
    gt = tmp_path / f"gt{seed}.json"
    dt = tmp_path / f"dt{seed}.json"
    gt.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    dt.write_text(json.dumps(results))
    return gt, dt


def pycoco_stats(gt: Path, dt: Path | list[dict[str, Any]], lib: str = "pycocotools") -> np.ndarray:
    if lib == "hotcoco":
        from hotcoco import COCO, COCOeval
    else:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO(str(gt))
        d = g.loadRes(str(dt) if isinstance(dt, Path) else dt)
        ev = COCOeval(g, d, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats, dtype=np.float64)


@pytest.fixture
def pool(ws):
    add_items(ws, [f"danbooru_{k}" for k in range(1, 61)], width=W, height=H)
    return ws


def _import_both(ws, gt: Path, dt: Path, **kw: Any):
    lab = import_labels(ws, gt, "gt", "coco", add_classes=True)
    det = import_detections(ws, dt, "dt", "coco", images_file=gt, **kw)
    assert lab.problem_count == 0
    return lab, det


def test_exports_keep_the_files_ids_and_pycocotools_reads_them_with_the_users_gt(pool, tmp_path):
    gt, dt = make_files(tmp_path, seed=1)
    _import_both(pool, gt, dt)
    export_detections(pool, "dt", "coco", tmp_path / "out.json")
    export_labels(pool, "gt", "coco", tmp_path / "gt_out.json")

    results = json.loads((tmp_path / "out.json").read_text())
    original = json.loads(dt.read_text())
    assert len(results) == len(original)
    # the same detections with the same ids, whatever the order of the file
    key = lambda r: (r["image_id"], r["category_id"], tuple(r["bbox"]), r["score"])  # noqa: E731
    assert sorted(map(key, results)) == sorted(map(key, original))
    assert np.array_equal(pycoco_stats(gt, tmp_path / "out.json"), pycoco_stats(gt, dt))

    doc, out = json.loads(gt.read_text()), json.loads((tmp_path / "gt_out.json").read_text())
    assert out["categories"] == doc["categories"]
    assert sorted(im["id"] for im in out["images"]) == sorted(im["id"] for im in doc["images"])
    by_id = {a["id"]: a for a in doc["annotations"]}
    assert {a["id"]: a for a in out["annotations"]} == by_id
    assert np.array_equal(pycoco_stats(tmp_path / "gt_out.json", dt), pycoco_stats(gt, dt))
    images_file = json.loads((tmp_path / "out_images.json").read_text())
    assert images_file["categories"] == doc["categories"]


def test_tuiops_numbering_stays_an_explicit_choice(pool, tmp_path):
    gt, dt = make_files(tmp_path, seed=2)
    _import_both(pool, gt, dt)
    export_labels(pool, "gt", "coco", tmp_path / "g.json", ids="tuiops")
    export_detections(pool, "dt", "coco", tmp_path / "d.json", ids="tuiops")
    g = json.loads((tmp_path / "g.json").read_text())
    assert [c["id"] for c in g["categories"]] == list(range(1, len(g["categories"]) + 1))
    assert [a["id"] for a in g["annotations"]] == list(range(1, len(g["annotations"]) + 1))
    items = set(pool.store.read_set_images("gt")["item_id"].to_list())
    assert {im["id"] for im in g["images"]} == items
    # the numbered pair refers to the same images and categories
    d = json.loads((tmp_path / "d.json").read_text())
    assert {r["image_id"] for r in d} <= items
    names = {c["id"]: c["name"] for c in g["categories"]}
    src = {c["id"]: c["name"] for c in json.loads(gt.read_text())["categories"]}
    assert sorted(names[r["category_id"]] for r in d) == sorted(
        src[r["category_id"]] for r in json.loads(dt.read_text())
    )


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_eval_equals_pycocotools_with_ties_crowds_and_boxes_outside(pool, tmp_path, seed):
    gt, dt = make_files(tmp_path, seed=seed)
    _lab, det = _import_both(pool, gt, dt)
    n_results = len(json.loads(dt.read_text()))
    assert det.boxes == n_results and det.boxes_skipped == 0  # every detection kept as written
    assert det.boxes_outside > 0.08 * n_results
    ours = evaluate(pool, "gt", "dt")
    ref = pycoco_stats(gt, dt)
    assert np.abs(np.array([ours.stats[k] for k in STAT_KEYS]) - ref).max() <= TOL
    hot = pycoco_stats(gt, dt, lib="hotcoco")
    if np.abs(hot - ref).max() <= TOL:  # hotcoco is compared where it agrees with pycocotools
        assert np.abs(np.array([ours.stats[k] for k in STAT_KEYS]) - hot).max() <= TOL


def test_ties_across_images_follow_the_coco_image_ids(pool, tmp_path):
    """Equal scores in images whose COCO ids run against the store's item order."""
    images = [{"id": 100 - k, "file_name": f"danbooru_{k}.jpg", "width": W, "height": H} for k in range(1, 5)]
    anns = [
        {"id": k, "image_id": 100 - k, "category_id": 7, "bbox": [10, 10, 50, 50], "area": 2500, "iscrowd": 0}
        for k in range(1, 5)
    ]
    doc = {"images": images, "annotations": anns, "categories": [{"id": 7, "name": "cls7"}]}
    # images 99 and 97 get a hit, 98 and 96 a miss, all at the same score
    res = [
        {
            "image_id": 100 - k,
            "category_id": 7,
            "bbox": [10, 10, 50, 50] if k % 2 else [200, 150, 50, 50],
            "score": 0.5,
        }
        for k in range(1, 5)
    ]
    (tmp_path / "gt.json").write_text(json.dumps(doc))
    (tmp_path / "dt.json").write_text(json.dumps(res))
    _import_both(pool, tmp_path / "gt.json", tmp_path / "dt.json")
    ours = evaluate(pool, "gt", "dt")
    ref = pycoco_stats(tmp_path / "gt.json", tmp_path / "dt.json")
    assert np.abs(np.array([ours.stats[k] for k in STAT_KEYS]) - ref).max() <= TOL


def test_clip_and_drop_outside_are_explicit_and_counted(pool, tmp_path):
    gt, dt = make_files(tmp_path, seed=7)
    import_labels(pool, gt, "gt", "coco", add_classes=True)
    keep = import_detections(pool, dt, "keep", "coco", images_file=gt)
    drop = import_detections(pool, dt, "drop", "coco", images_file=gt, outside="drop")
    clip = import_detections(pool, dt, "clip", "coco", images_file=gt, outside="clip")
    n = len(json.loads(dt.read_text()))
    assert keep.boxes == n and keep.boxes_outside > 0 and keep.problem_count == 0
    assert drop.boxes == n - keep.boxes_outside and drop.boxes_skipped == keep.boxes_outside
    assert all("lies outside" in m for m in drop.problems["message"].to_list())
    assert clip.boxes + clip.boxes_skipped == n and clip.boxes_clipped >= keep.boxes_outside
    boxes = pool.store.read_detections("clip")
    assert boxes["x1"].min() >= 0 and boxes["y1"].min() >= 0
    assert boxes["x2"].max() <= W and boxes["y2"].max() <= H
    assert clip.to_dict()["boxes_clipped"] == clip.boxes_clipped


def test_a_run_from_yolo_exports_with_the_ids_of_the_coco_set_it_shares_images_with(pool, tmp_path):
    """Ground truth from COCO, detections from YOLO txt: the run's COCO export takes the set's
    image and category ids, so pycocotools reads it with the user's own gt.json."""
    gt, dt = make_files(tmp_path, seed=8, outside=0.0)
    import_labels(pool, gt, "gt", "coco", add_classes=True)
    doc = json.loads(gt.read_text())
    name_of = {im["id"]: Path(im["file_name"]).stem for im in doc["images"]}
    classes = list(pool.classes)
    cls_of = {c["id"]: classes.index(c["name"]) for c in doc["categories"]}
    lines: dict[str, list[str]] = {stem: [] for stem in name_of.values()}
    for r in json.loads(dt.read_text()):
        x, y, w, h = r["bbox"]
        cx, cy = (x + w / 2) / W, (y + h / 2) / H
        lines[name_of[r["image_id"]]].append(
            f"{cls_of[r['category_id']]} {cx!r} {cy!r} {w / W!r} {h / H!r} {r['score']!r}\n"
        )
    folder = tmp_path / "yolo"
    folder.mkdir()
    for stem, rows in lines.items():
        (folder / f"{stem}.txt").write_text("".join(rows))
    (folder / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    res = import_detections(pool, folder, "yolo", "yolo")
    assert res.problem_count == 0
    export_detections(pool, "yolo", "coco", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert {r["image_id"] for r in out} <= set(name_of)
    assert {r["category_id"] for r in out} <= set(CAT_IDS)
    ours = evaluate(pool, "gt", "yolo")
    ref = pycoco_stats(gt, tmp_path / "out.json")
    assert np.abs(np.array([ours.stats[k] for k in STAT_KEYS]) - ref).max() <= TOL


def test_dets_import_cli_counts_the_detections_outside_and_takes_one_policy(pool, tmp_path, capsys):
    from tuiops.cli import run

    gt, dt = make_files(tmp_path, seed=9)
    w = ["-w", str(pool.root)]
    assert run([*w, "labels", "import", str(gt), "--set", "gt", "--add-classes", "-q"]) == 0
    both = [*w, "dets", "import", str(dt), "--images", str(gt), "--run", "x", "--clip", "--drop-outside"]
    assert run(both) == 2
    assert "--clip and --drop-outside exclude each other" in capsys.readouterr().err
    assert run([*w, "dets", "import", str(dt), "--images", str(gt), "--run", "r", "-q"]) == 0
    out = capsys.readouterr().out
    assert "outside the image beyond the tolerance: kept as written" in out
    assert run([*w, "dets", "import", str(dt), "--images", str(gt), "--run", "c", "--clip", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["outside"] == "clip" and data["boxes_clipped"] >= data["boxes_outside"] > 0


def test_repeated_annotation_ids_are_kept_and_said(pool, tmp_path):
    gt, _dt = make_files(tmp_path, seed=10)
    doc = json.loads(gt.read_text())
    anns = doc["annotations"]
    anns[5]["id"] = anns[2]["id"]
    anns[9]["id"] = anns[2]["id"]
    anns[12]["id"] = anns[11]["id"]
    gt.write_text(json.dumps(doc))
    res = import_labels(pool, gt, "gt", "coco", add_classes=True)
    assert res.boxes == len(anns)
    (warning,) = [w for w in res.warnings if "repeat" in w]
    assert (
        f"3 of the annotations repeat an earlier one's id (e.g. id {anns[2]['id']} at annotations[2] and [5])"
        in warning
    )
    export_labels(pool, "gt", "coco", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())["annotations"]
    ids = [a["id"] for a in out]
    assert len(ids) == len(set(ids)) == len(anns)
    assert {a["id"] for a in anns} <= set(ids)
