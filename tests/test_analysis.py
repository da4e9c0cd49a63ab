"""Error analysis beyond mAP — TIDE, calibration, slices, run-vs-run — checked against hotcoco."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

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
    tmp.mkdir(parents=True, exist_ok=True)
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


# -- from the store: eval's extra answers and `compare` -------------------------------------------
STAT_TO_HOT = {
    "map": "AP",
    "map50": "AP50",
    "map75": "AP75",
    "map_small": "APs",
    "map_medium": "APm",
    "map_large": "APl",
    "ar1": "AR1",
    "ar10": "AR10",
    "ar100": "AR100",
    "ar_small": "ARs",
    "ar_medium": "ARm",
    "ar_large": "ARl",
}


def two_runs(ws: Any, seed: int = 4) -> dict[str, Any]:
    """A label set with crowd regions and two runs on all its images (B: A reshuffled, thinned and jittered)."""
    import json as _json

    from tests.conftest import CLASSES, add_items

    labels, dets, image_ids, _ = scene(seed)
    rng = np.random.default_rng(seed)
    n_cls = len(CLASSES)
    items = add_items(ws, [f"danbooru_{i}" for i in image_ids])
    ids = dict(zip(image_ids, items["item_id"].to_list(), strict=True))
    crowd = rng.random(labels.height) < 0.12
    labels = labels.with_columns(
        pl.col("item_id").replace_strict(ids),
        pl.col("class_id") % n_cls,
        pl.Series("extra", [_json.dumps({"iscrowd": 1}) if c else None for c in crowd]),
    ).sort("item_id", maintain_order=True)
    dets_a = dets.with_columns(pl.col("item_id").replace_strict(ids), pl.col("class_id") % n_cls).sort(
        "item_id", maintain_order=True
    )
    keep = rng.random(dets_a.height) < 0.8
    dets_b = dets_a.filter(pl.Series(keep)).with_columns(
        (pl.col("score") * pl.Series(rng.uniform(0.7, 1.0, int(keep.sum())))).round(2),
        pl.col("x1") + pl.Series(rng.normal(0, 3, int(keep.sum()))),
    )
    all_items = items.select("item_id")
    ws.store.create_label_set("gt", labels, all_items)
    ws.store.create_run("a", dets_a, all_items)
    ws.store.create_run("b", dets_b, all_items)
    plain = labels.with_columns(pl.Series("iscrowd", crowd.astype(np.int64))).drop("extra")
    return {
        "labels": plain,
        "a": dets_a,
        "b": dets_b,
        "images": items["item_id"].to_list(),
        "classes": list(range(n_cls)),
    }


def test_compare_equals_hotcoco_compare_and_tide(ws: Any, tmp_path: Path) -> None:
    import hotcoco

    from tests.conftest import CLASSES
    from tuiops.ops.analysis import compare_runs

    case = two_runs(ws)
    # hotcoco names the categories c<id>; the workspace names them by its class map.
    ev_a = hotcoco_eval(case["labels"], case["a"], case["images"], case["classes"], tmp_path / "a")
    ev_b = hotcoco_eval(case["labels"], case["b"], case["images"], case["classes"], tmp_path / "b")
    ref = hotcoco.compare(ev_a, ev_b, n_bootstrap=0, seed=0, confidence=0.95)
    res = compare_runs(ws, "gt", "a", "b", samples=200, seed=3)
    for ours, theirs in ((res.stats_a, ref["metrics_a"]), (res.stats_b, ref["metrics_b"])):
        for k, hk in STAT_TO_HOT.items():
            assert abs(ours[k] - theirs[hk]) <= TOL, (k, ours[k], theirs[hk])
    for k, hk in STAT_TO_HOT.items():
        assert abs(res.deltas[k] - ref["deltas"][hk]) <= TOL
    hot_cls = {r["cat_name"]: r for r in ref["per_category"]}
    ours_cls = {r["class"]: r for r in res.per_class}
    assert {CLASSES.index(n) for n in ours_cls} == {int(n[1:]) for n in hot_cls}
    for name, row in ours_cls.items():
        h = hot_cls[f"c{CLASSES.index(name)}"]
        assert abs(row["ap_a"] - h["ap_a"]) <= TOL and abs(row["ap_b"] - h["ap_b"]) <= TOL
        assert abs(row["delta"] - h["delta"]) <= TOL
        lo, hi = row["ci"]["lower"], row["ci"]["upper"]
        assert lo <= hi
    for tide, ev in ((res.tide_a, ev_a), (res.tide_b, ev_b)):
        want = ev.tide_errors(pos_thr=0.5, bg_thr=0.1)
        for k, hk in HOT_KEYS.items():
            assert abs(tide.delta_ap[k] - want["delta_ap"][hk]) <= TOL
    # The bootstrap is seeded: the same seed gives the same intervals, its interval holds the difference.
    again = compare_runs(ws, "gt", "a", "b", samples=200, seed=3, top=0)
    assert again.ci == res.ci
    assert res.ci["map"]["lower"] <= res.deltas["map"] <= res.ci["map"]["upper"]
    assert res.changed and all(abs(r["d_f1"]) > 0 or r["d_cost"] != 0 for r in res.changed)
    d = [abs(r["d_f1"]) for r in res.changed]
    assert d == sorted(d, reverse=True)


def test_bootstrap_with_every_image_once_is_the_coco_ap(ws: Any) -> None:
    """The weighted accumulation of the bootstrap, with each image weighing 1, is COCO's AP of each class."""
    from tuiops.ops.analysis.compare import IOU_THRESHOLDS, _Weighted
    from tuiops.ops.evaluate import coco_evaluate

    for seed in range(6):
        labels, dets, image_ids, class_ids = with_crowds(seed)
        ref = coco_evaluate(labels, dets, image_ids=image_ids, class_ids=class_ids)
        aps = [
            _Weighted(
                coco_cells(labels, dets, image_ids=image_ids, class_ids=class_ids, threshold=float(t))
            ).class_ap(np.ones(len(image_ids)))
            for t in IOU_THRESHOLDS
        ]
        per_class = np.where(aps[0] > -1, np.mean(aps, axis=0), -1.0)
        assert np.abs(per_class - ref.per_class_ap).max() <= TOL, seed


def test_slices_equal_hotcoco_slice_by(ws: Any, tmp_path: Path) -> None:
    from tuiops.ops.analysis import analyse

    case = two_runs(ws, seed=8)
    res = analyse(ws, "gt", "a", by="fid % 3")
    ev = hotcoco_eval(case["labels"], case["a"], case["images"], case["classes"], tmp_path)
    fids = dict(ws.store.execute("SELECT id, fid FROM items").fetchall())
    groups: dict[str, list[int]] = {}
    for i in case["images"]:
        groups.setdefault(str(fids[i] % 3), []).append(i)
    ref = ev.slice_by(groups)
    assert [s.name for s in res.slices] == sorted(groups)
    for s in res.slices:
        assert s.images == ref[s.name]["num_images"]
        for k, hk in STAT_TO_HOT.items():
            assert abs(s.stats[k] - ref[s.name][hk]) <= TOL, (s.name, k)


def test_tag_slices_equal_hotcoco_slice_by(ws: Any, tmp_path: Path) -> None:
    """``tag:A | B``: an image goes to the first search that finds its post; the rest are
    ``(other)``, and images without a post ``(no post)``."""
    from tuiops.errors import UsageError
    from tuiops.ops.analysis import analyse
    from tuiops.ops.meta import import_meta

    case = two_runs(ws, seed=9)
    fids = dict(ws.store.execute("SELECT id, fid FROM items").fetchall())

    def tags(fid: int) -> set[str]:
        return {t for t, m in (("solo", 2), ("long_hair", 3), ("smile", 5)) if fid % m == 0}

    posted = [f for f in sorted(fids.values()) if f % 7]  # every seventh image has no post
    src = tmp_path / "posts.jsonl"
    src.write_text(
        "".join(
            json.dumps({"id": f, "tag_string": " ".join(sorted(tags(f)) or ["other_tag"])}) + "\n"
            for f in posted
        )
    )
    import_meta(ws, src)
    groups: dict[str, list[int]] = {}
    for i in case["images"]:
        f = fids[i]
        t = tags(f)
        name = (
            "(no post)"
            if f % 7 == 0
            else "solo"
            if "solo" in t
            else "long_hair -smile"
            if t == {"long_hair"}
            else "(other)"
        )
        groups.setdefault(name, []).append(i)
    assert len(groups) == 4
    res = analyse(ws, "gt", "a", by="tag:solo | long_hair -smile")
    ref = hotcoco_eval(case["labels"], case["a"], case["images"], case["classes"], tmp_path).slice_by(groups)
    assert [s.name for s in res.slices] == sorted(groups)
    for s in res.slices:
        assert s.images == ref[s.name]["num_images"]
        for k, hk in STAT_TO_HOT.items():
            assert abs(s.stats[k] - ref[s.name][hk]) <= TOL, (s.name, k)
    with pytest.raises(UsageError, match="no tag matches 'sollo'"):
        analyse(ws, "gt", "a", by="tag:sollo")
    with pytest.raises(UsageError, match="empty"):
        analyse(ws, "gt", "a", by="tag:solo |")


def _cli(ws: Any, *args: str) -> tuple[int, str]:
    from tuiops.cli import run

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = run(["-w", str(ws.root), *args])
    return rc, out.getvalue()


def test_eval_cli_tide_calibration_and_slices(ws: Any, tmp_path: Path) -> None:
    case = two_runs(ws, seed=6)
    rc, out = _cli(
        ws,
        "eval",
        "--set",
        "gt",
        "--run",
        "a",
        "--tide",
        "--calibration",
        "--bins",
        "5",
        "--by",
        "size",
        "--json",
        "-q",
    )
    assert rc == 0
    data = json.loads(out)
    ev = hotcoco_eval(case["labels"], case["a"], case["images"], case["classes"], tmp_path)
    want = ev.tide_errors(pos_thr=0.5, bg_thr=0.1)
    for k, hk in HOT_KEYS.items():
        assert abs(data["tide"]["delta_ap"][k] - want["delta_ap"][hk]) <= TOL
    cal = ev.calibration(n_bins=5, iou_threshold=0.5)
    assert abs(data["calibration"]["ece"] - cal["ece"]) <= TOL and len(data["calibration"]["bins"]) == 5
    assert [s["slice"] for s in data["slices"]] == ["medium"]  # every image is 640 × 480
    assert abs(data["slices"][0]["map"] - data["map"]) <= TOL
    rc, text = _cli(ws, "eval", "--set", "gt", "--run", "a", "--tide", "--calibration", "-q")
    assert rc == 0 and "TIDE" in text and "localisation" in text and "ECE" in text
    rc, _ = _cli(ws, "eval", "--set", "gt", "--run", "a", "--by", "tag:1girl", "-q")
    assert rc != 0


def test_compare_cli_text_and_json(ws: Any) -> None:
    two_runs(ws, seed=2)
    rc, out = _cli(
        ws, "compare", "--set", "gt", "--run", "a", "--run", "b", "--samples", "50", "--json", "-q"
    )
    assert rc == 0
    data = json.loads(out)
    assert data["run_a"] == "a" and data["run_b"] == "b" and data["samples"] == 50
    assert set(data["ci"]) == {"map", "map50"}
    rc, text = _cli(ws, "compare", "--set", "gt", "--run", "a", "--run", "b", "--samples", "20", "-q")
    assert rc == 0 and "what got worse first" in text and "TIDE" in text
    rc, _ = _cli(ws, "compare", "--set", "gt", "--run", "a", "-q")
    assert rc != 0


def test_report_draws_tide_reliability_and_the_comparison(ws: Any, tmp_path: Path) -> None:
    from PIL import Image

    from tuiops.ops.analysis import analyse
    from tuiops.ops.report import report

    two_runs(ws, seed=10)
    res = report(ws, "gt", "b", tmp_path / "rep", top=0, compare_with="a")
    for name in ("tide.png", "reliability.png", "compare.png"):
        assert name in res.files
        with Image.open(tmp_path / "rep" / name) as im:
            assert im.format == "PNG" and im.width > 300
    page = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    for anchor in ('id="tide"', 'id="calibration"', 'id="compare"', 'src="tide.png"', 'src="compare.png"'):
        assert anchor in page
    meta = json.loads((tmp_path / "rep" / "report.json").read_text(encoding="utf-8"))
    same = analyse(ws, "gt", "b", tide=True, bins=10)
    assert meta["tide"]["delta_ap"] == pytest.approx(same.tide.delta_ap, abs=TOL)
    assert meta["calibration"]["ece"] == pytest.approx(same.calibration.ece, abs=TOL)
    assert meta["compare"]["run_a"] == "a" and meta["compare"]["run_b"] == "b"
    # Written again without a comparison, the old comparison chart goes.
    res = report(ws, "gt", "b", tmp_path / "rep", top=0)
    assert "compare.png" not in res.files and not (tmp_path / "rep" / "compare.png").exists()


def test_report_screen_errors_tab(ws: Any) -> None:
    """The app's report screen shows the same TIDE numbers, reliability table and comparison as the report."""
    import asyncio

    from textual.widgets import TabbedContent

    from tests.test_tui_app import SIZE, settle
    from tests.test_tui_report import text_of
    from tuiops.app import TuiopsApp
    from tuiops.ops.analysis import analyse
    from tuiops.screens.report import ReportScreen

    two_runs(ws, seed=10)
    want = analyse(ws, "gt", "b", tide=True, bins=10)
    app = TuiopsApp(ws)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = ReportScreen(ws, "gt", "b", top=0, compare_with="a")
            app.push_screen(screen)
            await settle(pilot)
            assert screen.data is not None and screen.error is None
            await pilot.press("6")
            await settle(pilot)
            assert screen.query_one(TabbedContent).active == "errors"
            text = text_of(screen.query_one("#report-errors"), 240)
            assert want.tide is not None and want.calibration is not None
            assert f"{100 * want.tide.delta_ap['loc']:.2f}" in text and "localisation" in text
            assert f"ECE {want.calibration.ece:.4f}" in text
            assert "a → b" in text and "images that changed most" in text

    asyncio.run(main())


@pytest.fixture
def small_ds(ws: Any, tmp_path: Path) -> tuple[Any, Path]:
    """Six drawn images, their label set GT and the dataset ds built from it (train and val)."""
    from tests.test_train_support import draw_scene, index_pool, make_label_set
    from tuiops.ops.dataset import build_dataset

    pool = tmp_path / "pool"
    boxes = {f"danbooru_{i}": draw_scene(pool / f"danbooru_{i}.png", i) for i in range(6)}
    index_pool(ws, pool)
    make_label_set(ws, "GT", boxes)
    build_dataset(ws, "GT", tmp_path / "ds", val=0.3)
    return ws, tmp_path / "ds"


def test_a_pitstop_report_says_what_changed_since_the_previous_pitstop(small_ds: Any) -> None:
    """A pitstop compares its run with the previous pitstop's on each split; eval slices a pitstop's run by split."""
    from tuiops.ops.analysis import analyse, compare_runs, previous_pitstop_run
    from tuiops.ops.dataset import dataset_images
    from tuiops.ops.pitstop import STORE_CONF, pitstop_compare
    from tuiops.ops.train import report_markdown

    ws, _ = small_ds
    images = dataset_images(ws.store, "ds")
    labels = ws.store.read_labels("GT")
    good = labels.select(
        "item_id", "class_id", "x1", "y1", "x2", "y2", (0.5 + pl.col("id").rank() / 1000).alias("score")
    )
    worse = good.with_columns(pl.col("x2") + 0.6 * (pl.col("x2") - pl.col("x1")), (pl.col("score") * 0.9))
    ws.store.create_run("v1.pitstop1", worse, images.select("item_id"), conf=STORE_CONF)
    ws.store.create_run("v1.pitstop2", good, images.select("item_id"), conf=STORE_CONF)
    with ws.store.transaction() as conn:
        conn.execute(
            "INSERT INTO train_runs(id, name, created, status, data, dataset, model, epochs, save_dir) "
            "VALUES (1, 'v1', '2026-01-01', 'pitstop', 'ds', 'ds', 'yolov8n.yaml', 4, '/nowhere')"
        )
        for idx in (1, 2):
            conn.execute(
                "INSERT INTO train_pitstops(train_id, idx, epoch, created, run_name) VALUES (1, ?, ?, '2026-01-01', ?)",
                (idx, idx, f"v1.pitstop{idx}"),
            )
    assert previous_pitstop_run(ws.store, "v1.pitstop2") == "v1.pitstop1"
    assert previous_pitstop_run(ws.store, "v1.pitstop1") is None
    body, _, _ = pitstop_compare(ws, "ds", "v1.pitstop2", images, conf=0.25, previous_run="v1.pitstop1")
    cmp = body["compare"]
    assert cmp["against"] == "v1.pitstop1" and set(cmp["splits"]) == {"train", "val"}
    for split, d in cmp["splits"].items():
        items = images.filter(pl.col("split") == split)["item_id"].to_numpy()
        same = compare_runs(ws, "GT", "v1.pitstop1", "v1.pitstop2", items=items, samples=0, top=0)
        assert d["stats_b"]["map"] == pytest.approx(same.stats_b["map"], abs=TOL)
        assert d["deltas"]["map"] > 0 and d["images"] == len(items)
        assert d["changed_images"]  # the boxes of every image got better
    head = {
        "idx": 2,
        "train": "v1",
        "epoch": 2,
        "epochs": 4,
        "weights": "w.pt",
        "weights_sha256": "0" * 64,
        "best_epoch": 2,
        "run": "v1.pitstop2",
        "conf": 0.25,
        "stored_conf": STORE_CONF,
        "match_iou": 0.5,
        "label_set": "GT",
        "dataset": "ds",
    }
    md = report_markdown(head, body)
    assert "since the previous pitstop (run `v1.pitstop1`)" in md and "### val: mAP" in md
    # eval of a pitstop's run keeps train and val apart by itself
    res = analyse(ws, "GT", "v1.pitstop2")
    assert res.by == "split" and [s.name for s in res.slices] == ["train", "val"]


@pytest.mark.parametrize("seed", range(4))
def test_tide_and_calibration_on_a_dense_grid_equal_hotcoco(seed: int, tmp_path: Path) -> None:
    """Boxes on a coarse grid (exact IoU ties), four score levels, crowds and over 100 detections per image and class."""
    rng = np.random.default_rng(seed)
    n_lab, n_det = 50, 800

    def grid(n: int) -> pl.DataFrame:
        x1, y1 = rng.integers(0, 10, n) * 10.0, rng.integers(0, 10, n) * 10.0
        return pl.DataFrame(
            {
                "item_id": rng.integers(1, 3, n),
                "class_id": 2 * rng.integers(0, 3, n) + 1,
                "x1": x1,
                "y1": y1,
                "x2": x1 + rng.integers(1, 6, n) * 10.0,
                "y2": y1 + rng.integers(1, 6, n) * 10.0,
            }
        )

    labels = grid(n_lab).with_columns(pl.Series("iscrowd", (rng.random(n_lab) < 0.1).astype(np.int64)))
    labels = labels.sort("item_id", maintain_order=True)
    dets = grid(n_det).with_columns(pl.Series("score", rng.integers(0, 5, n_det) / 4.0))
    images, classes = [1, 2, 3], [1, 3, 5]
    ev = hotcoco_eval(labels, dets, images, classes, tmp_path)
    ref, ref_cal = ev.tide_errors(pos_thr=0.5, bg_thr=0.1), ev.calibration(n_bins=10, iou_threshold=0.5)
    cells = coco_cells(labels, dets, image_ids=images, class_ids=classes)
    ours, cal = tide_errors(cells), calibration(cells, 10)
    for k, hk in HOT_KEYS.items():
        assert abs(ours.delta_ap[k] - ref["delta_ap"][hk]) <= TOL, k
    assert ours.counts == {k: ref["counts"][HOT_KEYS[k]] for k in ours.counts}
    assert abs(cal.ece - ref_cal["ece"]) <= TOL and abs(cal.mce - ref_cal["mce"]) <= TOL
    assert cal.n_dets == ref_cal["num_detections"] < n_det  # the top 100 of each image and class


def test_eval_by_split_from_a_split_file_and_by_aspect(ws: Any, tmp_path: Path) -> None:
    case = two_runs(ws, seed=12)
    keys = [r[0] for r in ws.store.execute("SELECT key FROM items ORDER BY id").fetchall()]
    (tmp_path / "val.txt").write_text("".join(f"{k}\n" for k in keys[::3]))
    rc, out = _cli(
        ws,
        "eval",
        "--set",
        "gt",
        "--run",
        "a",
        "--by",
        "split",
        "--split-file",
        f"val={tmp_path / 'val.txt'}",
        "--json",
        "-q",
    )
    assert rc == 0
    data = json.loads(out)
    assert [s["slice"] for s in data["slices"]] == ["(none)", "val"]
    assert sum(s["images"] for s in data["slices"]) == data["images"] == len(case["images"])
    rc, text = _cli(ws, "eval", "--set", "gt", "--run", "a", "--by", "aspect", "-q")
    assert rc == 0 and "by aspect:" in text and "landscape" in text  # 640 × 480
    rc, _ = _cli(ws, "eval", "--set", "gt", "--run", "a", "--by", "width >", "-q")
    assert rc != 0


def test_plain_eval_reads_the_boxes_once(ws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --tide, --calibration or --by (and not a pitstop's run) eval reads and answers as before."""
    import tuiops.ops.analysis.run as analysis_run

    two_runs(ws, seed=1)
    calls: list[str] = []
    real = analysis_run.load_inputs

    def counted(*a: Any, **k: Any) -> Any:
        calls.append("read")
        return real(*a, **k)

    monkeypatch.setattr(analysis_run, "load_inputs", counted)
    rc, out = _cli(ws, "eval", "--set", "gt", "--run", "a", "--json", "-q")
    assert rc == 0 and calls == []
    assert not {"tide", "calibration", "slices"} & set(json.loads(out))
    rc, _ = _cli(ws, "eval", "--set", "gt", "--run", "a", "--tide", "--json", "-q")
    assert rc == 0 and calls == ["read"]
