"""COCO mAP (`tuiops eval`) against pycocotools' COCOeval on random and adversarial data."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import polars as pl
import pytest

from tests.conftest import CLASSES, add_items
from tuiops.ops.evaluate import STAT_KEYS, coco_evaluate, evaluate

TOL = 1e-6


# -- helpers --------------------------------------------------------------------------------------
def pycoco(
    labels: pl.DataFrame, dets: pl.DataFrame, image_ids: list[int], class_ids: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' 12 stats and per-class AP (all areas, maxDets 100) for the same boxes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    anns = []
    for i, r in enumerate(labels.iter_rows(named=True)):
        w, h = r["x2"] - r["x1"], r["y2"] - r["y1"]
        area = r.get("area")
        anns.append(
            {
                "id": i + 1,
                "image_id": r["item_id"],
                "category_id": r["class_id"],
                "bbox": [r["x1"], r["y1"], w, h],
                "area": w * h if area is None else area,
                "iscrowd": int(r.get("iscrowd") or 0),
            }
        )
    gt = {
        "images": [{"id": i, "width": 1000, "height": 1000} for i in image_ids],
        "categories": [{"id": c, "name": str(c)} for c in class_ids],
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
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        cd = cg.loadRes(res)
        ev = COCOeval(cg, cd, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][:, :, :, 0, 2]
    per_class = np.array(
        [
            np.mean(prec[:, :, k][prec[:, :, k] > -1]) if (prec[:, :, k] > -1).any() else -1.0
            for k in range(len(class_ids))
        ]
    )
    return np.asarray(ev.stats), per_class


def assert_parity(
    labels: pl.DataFrame, dets: pl.DataFrame, image_ids: list[int], class_ids: list[int]
) -> None:
    ours = coco_evaluate(labels, dets, image_ids=image_ids, class_ids=class_ids)
    stats, per_class = pycoco(labels, dets, image_ids, class_ids)
    assert np.abs(ours.stats - stats).max() <= TOL, (ours.stats, stats)
    assert np.abs(ours.per_class_ap - per_class).max() <= TOL, (ours.per_class_ap, per_class)


def boxes(rng: np.random.Generator, n: int, *, grid: bool, size: float = 200.0) -> dict[str, np.ndarray]:
    """Random boxes; on a coarse grid (many exact IoU ties and duplicates) or continuous."""
    if grid:
        x1 = rng.integers(0, 8, n) * 16.0
        y1 = rng.integers(0, 8, n) * 16.0
        w = rng.integers(1, 8, n) * 16.0
        h = rng.integers(1, 8, n) * 16.0
    else:
        x1 = rng.uniform(0, 400, n)
        y1 = rng.uniform(0, 400, n)
        w = np.exp(rng.uniform(np.log(4), np.log(size), n))
        h = w * rng.uniform(0.5, 2.0, n)
    return {"x1": x1, "y1": y1, "x2": x1 + w, "y2": y1 + h}


def scene(seed: int) -> tuple[pl.DataFrame, pl.DataFrame, list[int], list[int]]:
    """A random evaluation case; the seed picks its flavour."""
    rng = np.random.default_rng(seed)
    n_img = int(rng.integers(1, 25))
    image_ids = sorted(rng.choice(np.arange(1, 500), n_img, replace=False).tolist())
    n_cls = int(rng.integers(1, 5))
    class_ids = list(range(n_cls))
    grid = seed % 2 == 0
    n_lab = int(rng.integers(0, 12 * n_img))
    lab = {
        "item_id": rng.choice(image_ids, n_lab),
        "class_id": rng.integers(0, n_cls, n_lab),
        **boxes(rng, n_lab, grid=grid),
    }
    labels = pl.DataFrame(lab).sort("item_id", maintain_order=True)
    # Detections: jittered copies of labels, duplicates, and noise.
    src = rng.integers(0, max(n_lab, 1), int(rng.integers(0, 2 * n_lab + 2))) if n_lab else np.zeros(0, int)
    jit = 0.0 if grid else 8.0
    d = {
        "item_id": lab["item_id"][src] if n_lab else np.zeros(0, int),
        "class_id": np.where(
            rng.random(len(src)) < 0.15, rng.integers(0, n_cls, len(src)), lab["class_id"][src]
        )
        if n_lab
        else np.zeros(0, int),
        **{k: (lab[k][src] + rng.normal(0, jit, len(src))) if n_lab else np.zeros(0) for k in ("x1", "y1")},
    }
    if n_lab:
        d["x2"] = lab["x2"][src] + rng.normal(0, jit, len(src))
        d["y2"] = lab["y2"][src] + rng.normal(0, jit, len(src))
        d["x2"] = np.maximum(d["x2"], d["x1"] + 1)
        d["y2"] = np.maximum(d["y2"], d["y1"] + 1)
    else:
        d["x2"] = d["y2"] = np.zeros(0)
    n_noise = int(rng.integers(0, 6 * n_img))
    noise = {
        "item_id": rng.choice(image_ids, n_noise),
        "class_id": rng.integers(0, n_cls + 1, n_noise),  # class n_cls has no labels
        **boxes(rng, n_noise, grid=grid),
    }
    dets = pl.concat([pl.DataFrame(d), pl.DataFrame(noise)], how="vertical_relaxed")
    levels = np.array([0.1, 0.3, 0.3, 0.5, 0.9, 0.9])
    score = (
        levels[rng.integers(0, len(levels), dets.height)]
        if seed % 3 == 0
        else rng.random(dets.height).round(2)
    )
    dets = dets.with_columns(pl.Series("score", score)).sample(fraction=1.0, shuffle=True, seed=seed)
    return labels, dets, image_ids, [*class_ids, n_cls]


# -- parity ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(40))
def test_random_scenes_match_pycocotools(seed):
    labels, dets, image_ids, class_ids = scene(seed)
    if dets.height == 0:  # pycocotools cannot load an empty result list
        dets = pl.DataFrame(
            {
                "item_id": [image_ids[0]],
                "class_id": [0],
                "x1": [1.0],
                "y1": [1.0],
                "x2": [5.0],
                "y2": [5.0],
                "score": [0.5],
            }
        )
    assert_parity(labels, dets, image_ids, class_ids)


@pytest.mark.parametrize("seed", [1, 4, 7])
def test_classes_evaluated_in_small_groups_match_pycocotools(seed, monkeypatch):
    """Large evaluations split the classes into groups of bounded size (run side by side in
    threads, more groups than threads): the numbers are those of one pass over all classes."""
    import tuiops.ops.evaluate as ev

    labels, dets, image_ids, class_ids = scene(seed)
    if dets.height == 0:
        return
    whole = coco_evaluate(labels, dets, image_ids=image_ids, class_ids=class_ids)
    monkeypatch.setattr(ev, "PARALLEL_BOXES", 1)
    monkeypatch.setattr(ev, "GROUP_BOXES", max(1, (labels.height + dets.height) // len(class_ids)))
    grouped = coco_evaluate(labels, dets, image_ids=image_ids, class_ids=class_ids)
    assert np.array_equal(grouped.precision, whole.precision)
    assert np.array_equal(grouped.recall, whole.recall)
    assert_parity(labels, dets, image_ids, class_ids)


@pytest.mark.parametrize("seed", [0, 3, 6, 9, 12, 15])
def test_ties_across_images_in_the_given_image_order(seed):
    """pycocotools takes equal scores by ascending image id: with ``image_order`` (e.g. the
    COCO ids of a set imported from COCO) the store's item ids may run in any other order."""
    labels, dets, image_ids, class_ids = scene(seed)
    if dets.height == 0:
        return
    rng = np.random.default_rng(seed)
    coco_ids = rng.permutation(len(image_ids)) * 5 + 2
    to_coco = dict(zip(image_ids, coco_ids.tolist(), strict=True))
    ours = coco_evaluate(labels, dets, image_ids=image_ids, class_ids=class_ids, image_order=coco_ids)
    renum = [pl.col("item_id").replace_strict(to_coco, return_dtype=pl.Int64)]
    stats, per_class = pycoco(
        labels.with_columns(renum), dets.with_columns(renum), sorted(coco_ids.tolist()), class_ids
    )
    assert np.abs(ours.stats - stats).max() <= TOL, (ours.stats, stats)
    assert np.abs(ours.per_class_ap - per_class).max() <= TOL


def test_area_range_borders_and_ties():
    """Areas exactly at 32² and 96² (both borders inclusive), equal scores, duplicate labels."""
    rows = []
    for i, side in enumerate([32.0, 32.0 - 1e-9, 32.0 + 1e-9, 96.0, 96.0 - 1e-9, 96.0 + 1e-9, 1.0, 500.0]):
        rows.append(
            {
                "item_id": 1 + i % 3,
                "class_id": 0,
                "x1": 10.0,
                "y1": 10.0,
                "x2": 10.0 + side,
                "y2": 10.0 + side,
            }
        )
    labels = pl.DataFrame(rows * 2)  # every label twice: exact IoU ties between labels
    dets = labels.with_columns(pl.lit(0.5).alias("score"))
    dets = pl.concat([dets, dets.with_columns(pl.col("x2") + 3.0, pl.lit(0.5).alias("score"))])
    assert_parity(labels, dets, [1, 2, 3, 4], [0, 1])


def test_more_than_100_detections_in_an_image():
    rng = np.random.default_rng(7)
    n = 160
    b = boxes(rng, n, grid=False, size=60)
    labels = pl.DataFrame({"item_id": [1] * 40, "class_id": [0] * 40, **{k: v[:40] for k, v in b.items()}})
    dets = pl.DataFrame(
        {
            "item_id": [1] * n,
            "class_id": [0] * n,
            **{k: v + rng.normal(0, 2, n) for k, v in b.items()},
            "score": rng.random(n),
        }
    )
    dets = pl.concat([dets, dets.head(30).with_columns(pl.col("item_id") * 2)])
    assert_parity(labels, dets, [1, 2], [0])
    ours = coco_evaluate(labels, dets, image_ids=[1, 2], class_ids=[0])
    assert ours.n_dets_skipped == n - 100


def test_crowd_regions_and_given_area():
    rng = np.random.default_rng(3)
    b = boxes(rng, 30, grid=True)
    labels = (
        pl.DataFrame(
            {
                "item_id": rng.integers(1, 4, 30),
                "class_id": rng.integers(0, 2, 30),
                **b,
                "iscrowd": (rng.random(30) < 0.3).astype(int),
                "area": np.where(rng.random(30) < 0.5, rng.uniform(10, 20000, 30), np.nan),
            }
        )
        .with_columns(pl.col("area").fill_nan(None))
        .sort("item_id", maintain_order=True)
    )
    src = rng.integers(0, 30, 60)
    dets = pl.DataFrame(
        {
            "item_id": labels["item_id"].to_numpy()[src],
            "class_id": labels["class_id"].to_numpy()[src],
            **{k: labels[k].to_numpy()[src] + rng.integers(-8, 9, 60) for k in ("x1", "y1")},
            **{k: labels[k].to_numpy()[src] + 20 for k in ("x2", "y2")},
            "score": rng.integers(1, 4, 60) / 4,
        }
    )
    assert_parity(labels, dets, [1, 2, 3], [0, 1])


def test_empty_images_and_label_only_classes():
    labels = pl.DataFrame(
        {
            "item_id": [1, 1, 2],
            "class_id": [0, 1, 1],
            "x1": [0.0, 50, 10],
            "y1": [0.0, 50, 10],
            "x2": [40.0, 90, 60],
            "y2": [40.0, 90, 60],
        }
    )
    dets = pl.DataFrame(
        {
            "item_id": [1, 3],
            "class_id": [0, 2],
            "x1": [1.0, 0],
            "y1": [1.0, 0],
            "x2": [40.0, 9],
            "y2": [41.0, 9],
            "score": [0.8, 0.4],
        }
    )
    assert_parity(labels, dets, [1, 2, 3, 4], [0, 1, 2])
    ours = coco_evaluate(labels, dets, image_ids=[1, 2, 3, 4], class_ids=[0, 1, 2])
    assert ours.per_class_ap[2] == -1.0  # a class with detections but no labels
    assert ours.per_class_ap[1] == 0.0  # labels, no detections


def test_no_detections_at_all():
    labels = pl.DataFrame(
        {"item_id": [1], "class_id": [0], "x1": [0.0], "y1": [0.0], "x2": [10.0], "y2": [10.0]}
    )
    dets = pl.DataFrame(
        schema={
            "item_id": pl.Int64,
            "class_id": pl.Int64,
            **{c: pl.Float64 for c in ("x1", "y1", "x2", "y2", "score")},
        }
    )
    res = coco_evaluate(labels, dets, image_ids=[1], class_ids=[0])
    assert res.stats[0] == 0.0 and res.stats[6] == 0.0
    assert res.stats[3] == 0.0 and res.stats[4] == -1.0  # a 10×10 label is small; no medium labels


def test_detections_outside_the_image_list_are_left_out():
    labels, dets, image_ids, class_ids = scene(5)
    extra = dets.head(20).with_columns(pl.lit(10_000, dtype=dets.schema["item_id"]).alias("item_id"))
    a = coco_evaluate(labels, pl.concat([dets, extra]), image_ids=image_ids, class_ids=class_ids)
    b = coco_evaluate(labels, dets, image_ids=image_ids, class_ids=class_ids)
    assert np.array_equal(a.stats, b.stats)


# -- the op and the CLI ---------------------------------------------------------------------------
def _store_case(ws, seed: int = 11):
    labels, dets, _, _ = scene(seed)
    keys = [f"danbooru_{i}" for i in range(1, 500)]
    items = add_items(ws, keys)
    ids = dict(zip(range(1, 500), items["item_id"].to_list(), strict=True))
    labels = labels.with_columns(pl.col("item_id").replace_strict(ids), pl.col("class_id") % len(CLASSES))
    dets = dets.with_columns(pl.col("item_id").replace_strict(ids), pl.col("class_id") % len(CLASSES))
    images = pl.DataFrame({"item_id": sorted(set(labels["item_id"].to_list()) | {ids[7]})})
    ws.store.create_label_set("gt", labels, images)
    ws.store.create_run("r", dets, pl.DataFrame({"item_id": sorted(set(dets["item_id"].to_list()))}))
    return labels, dets, images


def test_evaluate_from_the_store_matches_pycocotools(ws):
    labels, dets, images = _store_case(ws)
    res = evaluate(ws, "gt", "r", images="all")
    img_ids = images["item_id"].to_list()
    inside = dets.filter(pl.col("item_id").is_in(img_ids))
    stats, per_class = pycoco(
        labels.sort("item_id", maintain_order=True),
        inside.sort("item_id", maintain_order=True),
        img_ids,
        list(range(len(CLASSES))),
    )
    assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - stats).max() <= TOL
    assert np.abs(np.array(list(res.per_class.values())) - per_class).max() <= TOL
    assert list(res.per_class) == CLASSES
    assert res.dets_outside_set == dets.height - inside.height
    run_items = set(dets["item_id"].to_list())
    assert res.images_not_in_run == sum(1 for i in img_ids if i not in run_items) > 0


def test_eval_cli_json_keys(ws):
    from tuiops.cli import run

    _store_case(ws)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = run(["-w", str(ws.root), "eval", "--set", "gt", "--run", "r", "--json", "-q"])
    assert rc == 0
    data = json.loads(out.getvalue())
    for key in (
        "map",
        "map50",
        "map75",
        "map_small",
        "map_medium",
        "map_large",
        "ar1",
        "ar10",
        "ar100",
        "per_class",
    ):
        assert key in data
    assert set(data["per_class"]) == set(CLASSES)


def test_eval_cli_text_and_errors(ws, tmp_path, capsys):
    from tuiops.cli import run

    _store_case(ws)
    assert run(["-w", str(ws.root), "eval", "--set", "gt", "--run", "r", "-q"]) == 0
    text = capsys.readouterr().out
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in text
    assert run(["-w", str(ws.root), "eval", "--set", "nope", "--run", "r"]) == 5
    assert "no label set named 'nope'" in capsys.readouterr().err
    assert run(["-w", str(ws.root), "eval", "--set", "gt", "--run", "r", "--split", "val"]) == 2
    split = tmp_path / "val.txt"
    split.write_text("danbooru_1\ndanbooru_2 val\n", encoding="utf-8")
    assert (
        run(
            [
                "-w",
                str(ws.root),
                "eval",
                "--set",
                "gt",
                "--run",
                "r",
                "--split-file",
                str(split),
                "--split",
                "test",
            ]
        )
        == 2
    )
    assert "no image is in split 'test'" in capsys.readouterr().err


def test_eval_on_one_split(ws, tmp_path):
    labels, dets, images = _store_case(ws)
    keys = [f"danbooru_{i}" for i in range(1, 500)]
    ids = dict(zip(keys, ws.store.read_items()["id"].to_list(), strict=False))
    val_ids = images["item_id"].to_list()[::2]
    res = evaluate(ws, "gt", "r", items=val_ids, images="all")
    sub_l = labels.filter(pl.col("item_id").is_in(val_ids))
    sub_d = dets.filter(pl.col("item_id").is_in(val_ids))
    ours = coco_evaluate(sub_l, sub_d, image_ids=val_ids, class_ids=list(range(len(CLASSES))))
    assert res.images == len(val_ids)
    assert res.stats["map"] == pytest.approx(float(ours.stats[0]), abs=1e-12)
    assert ids  # keys resolve to items


def test_coco_area_and_crowd_from_the_label_extra(ws):
    """Labels imported from COCO keep `area` and `iscrowd` in their extra; eval uses them as pycocotools does."""
    items = add_items(ws, ["danbooru_1", "danbooru_2"])
    a, b = items["item_id"].to_list()
    labels = pl.DataFrame(
        {
            "item_id": [a, a, a, b],
            "class_id": [0, 0, 0, 1],
            "x1": [0.0, 100, 200, 0],
            "y1": [0.0, 100, 200, 0],
            "x2": [50.0, 140, 300, 30],
            "y2": [50.0, 140, 300, 30],
            "extra": ['{"area":5000.0,"iscrowd":0}', '{"iscrowd":1}', None, '{"area":12,"coco_id":7}'],
        }
    )
    dets = pl.DataFrame(
        {
            "item_id": [a, a, a, a, b],
            "class_id": [0, 0, 0, 0, 1],
            "x1": [2.0, 105, 110, 205, 1],
            "y1": [2.0, 105, 100, 200, 1],
            "x2": [50.0, 135, 140, 300, 30],
            "y2": [52.0, 140, 130, 290, 30],
            "score": [0.9, 0.8, 0.7, 0.6, 0.5],
        }
    )
    ws.store.create_label_set("coco", labels, items.select("item_id"))
    ws.store.create_run("r", dets, items.select("item_id"))
    res = evaluate(ws, "coco", "r")
    plain = labels.with_columns(
        pl.Series("area", [5000.0, None, None, 12.0]), pl.Series("iscrowd", [0, 1, 0, 0])
    ).drop("extra")
    stats, per_class = pycoco(plain, dets, [a, b], list(range(len(CLASSES))))
    assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - stats).max() <= TOL
    assert np.abs(np.array(list(res.per_class.values())) - per_class).max() <= TOL


def test_eval_and_match_take_the_same_images_by_default_and_say_which(ws):
    from tuiops.cli import run
    from tuiops.ops.match import match

    labels, dets, images = _store_case(ws)
    img_ids = images["item_id"].to_list()
    run_items = set(dets["item_id"].to_list())
    processed = [i for i in img_ids if i in run_items]
    assert len(processed) < len(img_ids)
    # the default: only the images the run processed, as pycocotools sees them when given those
    res = evaluate(ws, "gt", "r")
    stats, _ = pycoco(
        labels.filter(pl.col("item_id").is_in(processed)).sort("item_id", maintain_order=True),
        dets.filter(pl.col("item_id").is_in(processed)).sort("item_id", maintain_order=True),
        processed,
        list(range(len(CLASSES))),
    )
    assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - stats).max() <= TOL
    assert res.images == len(processed) and res.images_from == "processed"
    assert res.images_not_in_run == len(img_ids) - len(processed)
    every = evaluate(ws, "gt", "r", images="all")
    assert every.images == len(img_ids) and every.images_from == "all"
    # match compares the same images by default, and the same as eval with --images all
    m = match(ws, "gt", "r")
    assert m.images == res.images and m.images_from == "processed"
    m_all = match(ws, "gt", "r", images="all", name="gt_all")
    assert m_all.images == every.images and m_all.splits["all"]["labels"] == labels.height
    assert (
        m_all.splits["all"]["fn"] - m.splits["all"]["fn"]
        == labels.filter(~pl.col("item_id").is_in(processed)).height
    )
    from tuiops.errors import UsageError

    with pytest.raises(UsageError, match="--images must be one of processed, all"):
        evaluate(ws, "gt", "r", images="some")
    root = str(ws.root)
    for cmd in ("eval", "match"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert run(["-w", root, cmd, "--set", "gt", "--run", "r", "-q"]) == 0
        assert "--images processed" in out.getvalue(), out.getvalue()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert run(["-w", root, cmd, "--set", "gt", "--run", "r", "-q", "--images", "all", "--json"]) == 0
        assert json.loads(out.getvalue())["images_from"] == "all"
