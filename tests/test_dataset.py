"""Dataset builds: YOLO labels from the store, stable split, checks and their fixes, rebuilds."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.conftest import CLASSES
from tests.test_train_support import draw_scene, index_pool, make_label_set
from tuiops.cli import run
from tuiops.errors import ConflictError, InputError, NotFoundError, UsageError
from tuiops.ops.dataset import (
    build_dataset,
    dataset_images,
    delete_label_caches,
    effective_labels,
    list_datasets,
    near_duplicate_pairs,
    split_draw,
    yolo_lines,
)

N = 30


@pytest.fixture
def gt(ws, tmp_path):
    """A pool of N drawn images with a label set GT of their rectangles."""
    pool = tmp_path / "pool"
    boxes = {f"danbooru_{i}": draw_scene(pool / f"danbooru_{i}.png", i, (96, 80)) for i in range(N)}
    index_pool(ws, pool, phash=True)
    make_label_set(ws, "GT", boxes)
    return ws, pool, boxes


def _labels(root: Path, key: str) -> list[list[float]]:
    for split in ("train", "val"):
        p = root / "labels" / split / f"{key}.txt"
        if p.exists():
            return [[float(x) for x in ln.split()] for ln in p.read_text().splitlines()]
    raise AssertionError(f"no label file for {key}")


def _splits(root: Path) -> dict[str, str]:
    out = {}
    for split in ("train", "val"):
        for p in (root / "images" / split).iterdir():
            out[p.stem] = split
    return out


def test_build_writes_an_ultralytics_dataset(gt, tmp_path):
    ws, pool, boxes = gt
    res = build_dataset(ws, "GT", tmp_path / "ds", val=0.3, seed=3)
    root = tmp_path / "ds"
    assert res.images == N and res.train + res.val == N and res.val > 0 and res.train > 0
    assert res.boxes == sum(len(b) for b in boxes.values())
    doc = yaml.safe_load((root / "data.yaml").read_text())
    assert doc["names"] == dict(enumerate(CLASSES)) and doc["nc"] == len(CLASSES)
    assert (
        doc["path"] == str(root.resolve()) and doc["train"] == "images/train" and doc["val"] == "images/val"
    )
    img = next((root / "images" / "train").iterdir())
    assert img.is_symlink() and os.readlink(img) == str((pool / img.name).resolve())
    c, x1, y1, x2, y2 = boxes["danbooru_0"][0]
    first = _labels(root, "danbooru_0")[0]
    assert first == pytest.approx(
        [c, (x1 + x2) / 2 / 96, (y1 + y2) / 2 / 80, (x2 - x1) / 96, (y2 - y1) / 80], abs=1e-6
    )
    text = (root / "labels" / _splits(root)["danbooru_0"] / "danbooru_0.txt").read_text()
    assert text.endswith("\n") and all(len(t.split(".")[-1]) == 6 for t in text.split()[1:5])
    manifest = json.loads((root / "tuiops_dataset.json").read_text())
    assert manifest["dataset"] == "ds" and manifest["label_set"] == "GT" and manifest["params"]["seed"] == 3
    assert list_datasets(ws)[0]["train"] == res.train
    imgs = dataset_images(ws.store, "ds")
    assert imgs.height == N and imgs["path"].map_elements(os.path.exists, return_dtype=pl.Boolean).all()
    assert ws.store.one("SELECT status FROM jobs WHERE kind = 'dataset'") == "done"


def test_split_is_stable_across_rebuilds(gt, tmp_path):
    ws, pool, boxes = gt
    build_dataset(ws, "GT", tmp_path / "ds", val=0.3, seed=3)
    first = _splits(tmp_path / "ds")
    # more images arrive; the old ones keep their split even with another fraction
    more = {f"danbooru_{i}": draw_scene(pool / f"danbooru_{i}.png", i, (96, 80)) for i in range(N, N + 10)}
    index_pool(ws, pool, phash=True)
    make_label_set(ws, "GT", {**boxes, **more})
    res = build_dataset(ws, "GT", tmp_path / "ds", val=0.9)
    second = _splits(tmp_path / "ds")
    assert {k: second[k] for k in first} == first
    assert res.new_images == 10 and res.kept_split == N
    # the draw is a pure function of key and seed: another dataset with the same seed agrees
    build_dataset(ws, "GT", tmp_path / "ds2", val=0.3, seed=3)
    assert {k: v for k, v in _splits(tmp_path / "ds2").items() if k in first} == first
    # images left out of one build by --where keep their split for the next
    assert build_dataset(ws, "GT", tmp_path / "ds", where="fid < 10").images == 10
    res = build_dataset(ws, "GT", tmp_path / "ds", where="", val=0.99)
    assert res.new_images == 0 and _splits(tmp_path / "ds") == second
    res = build_dataset(ws, "GT", tmp_path / "ds", resplit=True, val=0.3, seed=4)
    assert res.kept_split == N + 10  # it had a split before, but was drawn again
    assert _splits(tmp_path / "ds") != second


def test_split_draw_is_pinned():
    keys = pl.Series(["danbooru_1", "danbooru_2", "gelbooru_3", "ünïcode key", ""])
    a = split_draw(keys, 0).to_list()
    assert a == split_draw(keys, 0).to_list()
    assert a != split_draw(keys, 1).to_list()
    assert all(0.0 <= x < 1.0 for x in a)
    # the same key draws the same number wherever it sits
    assert split_draw(pl.Series(["gelbooru_3"]), 0).item() == a[2]
    assert round(a[0], 12) == round(split_draw(pl.Series(["danbooru_1", "x" * 300]), 0)[0], 12)
    big = split_draw(pl.Series([f"danbooru_{i}" for i in range(20000)]), 5)
    assert 0.18 < float((big < 0.2).mean()) < 0.22  # type: ignore[arg-type]


def test_checks_report_and_fix(gt, tmp_path):
    ws, _pool, boxes = gt
    bad = dict(boxes)
    bad["danbooru_5"] = [*boxes["danbooru_5"], boxes["danbooru_5"][0]]  # labelled twice
    bad["danbooru_6"] = [
        (0, -12.0, 5.0, 50.0, 70.0),
        (1, 10.0, 10.0, 96.4, 80.3),
    ]  # one far out, one within 1 px
    bad["danbooru_7"] = []  # no boxes
    bad["danbooru_8"] = [(1, 120.0, 90.0, 130.0, 99.0)]  # wholly outside: nothing left after clipping
    make_label_set(ws, "GT", bad)
    res = build_dataset(ws, "GT", tmp_path / "ds", val=0.3, seed=3)
    c = res.checks
    assert (c["duplicates"].found, c["outside"].found, c["empty"].found) == (1, 2, 1)
    assert not any(r.fixed for r in c.values())
    assert c["duplicates"].examples[0]["key"] == "danbooru_5" and c["duplicates"].examples[0]["iou"] == 1.0
    assert {e["key"] for e in c["outside"].examples} == {"danbooru_6", "danbooru_8"}
    assert any("ultralytics ignores" in w for w in res.warnings)
    root = tmp_path / "ds"
    assert len(_labels(root, "danbooru_5")) == len(boxes["danbooru_5"]) + 1
    six = _labels(root, "danbooru_6")
    assert six[0][1] - six[0][3] / 2 < 0  # reported, written as it is
    assert six[1][1] + six[1][3] / 2 == pytest.approx(1.0)  # within tolerance: clipped
    assert (root / "labels" / _splits(root)["danbooru_7"] / "danbooru_7.txt").read_text() == ""
    with pytest.raises(InputError, match="1 duplicates, 2 outside"):
        build_dataset(ws, "GT", tmp_path / "ds", strict=True)
    res = build_dataset(ws, "GT", tmp_path / "ds", fix=["all"])
    assert all(r.fixed for k, r in res.checks.items() if r.found)
    assert len(_labels(root, "danbooru_5")) == len(boxes["danbooru_5"])
    six = _labels(root, "danbooru_6")
    assert six[0] == pytest.approx([0, 25 / 96, 37.5 / 80, 50 / 96, 65 / 80], abs=1e-6)
    assert "danbooru_7" not in _splits(root) and "danbooru_8" not in _splits(root)  # empty: left out
    assert res.images == N - 2
    eff = effective_labels(ws, "ds")
    assert eff.height == res.boxes
    assert eff.filter(pl.col("x1") < 0).height == 0
    # a rebuild without --fix keeps the dataset's fixes (its settings are remembered)
    assert build_dataset(ws, "GT", tmp_path / "ds").checks["duplicates"].fixed


def test_leaks_between_train_and_val(gt, tmp_path):
    ws, pool, boxes = gt
    build_dataset(ws, "GT", tmp_path / "ds", val=0.3, seed=3)
    splits = _splits(tmp_path / "ds")
    val_key = next(k for k, v in sorted(splits.items()) if v == "val")
    train_key = next(k for k, v in sorted(splits.items()) if v == "train")
    # a train image re-uploaded under a new id that the draw puts into val
    n = N
    while True:
        key = f"danbooru_{1000 + n}"
        if split_draw(pl.Series([key]), 3).item() < 0.3:
            break
        n += 1
    shutil.copy(pool / f"{train_key}.png", pool / f"{key}.png")
    index_pool(ws, pool, phash=True)
    make_label_set(ws, "GT", {**boxes, key: boxes[train_key]})
    res = build_dataset(ws, "GT", tmp_path / "ds")
    assert res.checks["leaks"].found >= 1
    assert {"val": key, "train": train_key, "distance": 0} in res.checks["leaks"].examples
    assert _splits(tmp_path / "ds")[key] == "val"
    res = build_dataset(ws, "GT", tmp_path / "ds", fix=["leaks"])
    assert res.moved_to_train >= 1 and _splits(tmp_path / "ds")[key] == "train"
    # the move is remembered: a rebuild without the fix keeps it in train
    build_dataset(ws, "GT", tmp_path / "ds", fix=[])
    assert _splits(tmp_path / "ds")[key] == "train"
    assert _splits(tmp_path / "ds")[val_key] == "val"
    assert build_dataset(ws, "GT", tmp_path / "ds", phash_distance=-1).checks["leaks"].found == 0


def test_near_duplicate_pairs():
    left = pl.DataFrame({"item_id": [1, 2, 3], "phash": [0, -1, 12345]})
    right = pl.DataFrame({"item_id": [10, 11, 12], "phash": [1, 12345 ^ 0b111, (1 << 40) | 0b111111]})
    out = near_duplicate_pairs(left, right, 4)
    assert out.rows() == [(1, 10, 1), (3, 11, 3)]
    assert near_duplicate_pairs(left, right, 0).height == 0
    assert near_duplicate_pairs(left.head(0), right, 4).height == 0


def test_missing_files_exclusions_and_copies(gt, tmp_path):
    ws, pool, boxes = gt
    ws.store.ensure_items(pl.DataFrame({"key": ["danbooru_777"]}))
    make_label_set(ws, "GT", {**boxes, "danbooru_777": [(0, 1.0, 1.0, 5.0, 5.0)]})
    ws.store.execute("UPDATE files SET status = 'corrupt' WHERE relpath = 'danbooru_3.png'")
    keys = tmp_path / "worst.txt"
    keys.write_text("# worst images\ndanbooru_1\n\ndanbooru_2  # noisy\n", encoding="utf-8")
    res = build_dataset(
        ws, "GT", tmp_path / "ds", exclude=["@" + str(keys), "danbooru_4", "danbooru_404"], link="copy"
    )
    assert res.skipped == {"no readable pool file": 2}
    assert {e["key"] for e in res.skipped_examples} == {"danbooru_777", "danbooru_3"}
    assert res.excluded == 3 and res.images == N - 4
    assert any("danbooru_404" in w for w in res.warnings)
    got = _splits(tmp_path / "ds")
    assert not {"danbooru_1", "danbooru_2", "danbooru_4", "danbooru_3"} & set(got)
    img = tmp_path / "ds" / "images" / got["danbooru_0"] / "danbooru_0.png"
    assert not img.is_symlink() and img.read_bytes() == (pool / "danbooru_0.png").read_bytes()
    # excluded images stay out on a rebuild until included again
    res = build_dataset(ws, "GT", tmp_path / "ds", include=["danbooru_2"])
    assert res.excluded == 2 and "danbooru_2" in _splits(tmp_path / "ds")
    with pytest.raises(UsageError, match="both excluded and included"):
        build_dataset(ws, "GT", tmp_path / "ds", include=["danbooru_1"], exclude=["danbooru_1"])
    with pytest.raises(InputError, match="cannot read the key list"):
        build_dataset(ws, "GT", tmp_path / "ds", exclude=["@" + str(tmp_path / "none.txt")])


def test_where_selection_and_refusals(gt, tmp_path):
    ws, _pool, boxes = gt
    res = build_dataset(ws, "GT", tmp_path / "ds", where="fid < 10")
    assert res.images == 10
    with pytest.raises(InputError, match="not valid SQL"):
        build_dataset(ws, "GT", tmp_path / "ds3", where="bogus_column = 2")
    with pytest.raises(InputError, match="no image"):
        build_dataset(ws, "GT", tmp_path / "ds4", where="fid > 99999")
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ConflictError, match="not empty"):
        build_dataset(ws, "GT", other)
    assert (other / "keep.txt").read_text() == "mine"
    make_label_set(ws, "GT2", {k: boxes[k] for k in list(boxes)[:5]})
    with pytest.raises(ConflictError, match="built from label set 'GT'"):
        build_dataset(ws, "GT2", tmp_path / "ds")
    with pytest.raises(ConflictError, match="holds the dataset 'ds'"):
        build_dataset(ws, "GT2", tmp_path / "ds", name="other")
    with pytest.raises(NotFoundError):
        build_dataset(ws, "nope", tmp_path / "ds5")
    for kw in ({"val": 1.0}, {"fix": ["everything"]}, {"link": "teleport"}, {"phash_distance": 40}):
        with pytest.raises(UsageError):
            build_dataset(ws, "GT", tmp_path / "ds6", **kw)
    assert not (tmp_path / "ds6").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds")]  # no staging left behind


def test_yolo_lines_and_caches(tmp_path):
    boxes = pl.DataFrame(
        {
            "id": [3, 1, 2],
            "item_id": [7, 7, 8],
            "class_id": [1, 0, 4],
            "x1": [0.0, 10.0, 0.0],
            "y1": [0.0, 20.0, 0.0],
            "x2": [50.0, 30.0, 100.0],
            "y2": [100.0, 60.0, 50.0],
            "w": [100, 100, 100],
            "h": [200, 200, 50],
        }
    )
    out = dict(yolo_lines(boxes).iter_rows())
    assert out[7] == "0 0.200000 0.200000 0.200000 0.200000\n1 0.250000 0.250000 0.500000 0.500000\n"
    assert out[8] == "4 0.500000 0.500000 1.000000 1.000000\n"
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "train.cache").write_bytes(b"x")
    (tmp_path / "labels" / "a.txt").write_text("")
    assert [p.name for p in delete_label_caches(tmp_path)] == ["train.cache"]
    assert (tmp_path / "labels" / "a.txt").exists()


def test_cli_dataset_build_and_list(gt, tmp_path, capsys):
    ws, _pool, _boxes = gt
    w = ["-w", str(ws.root)]
    assert (
        run(
            [
                *w,
                "dataset",
                "build",
                "--set",
                "GT",
                "--to",
                str(tmp_path / "ds"),
                "--val",
                "0.25",
                "--fix",
                "duplicates,outside",
                "-q",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "dataset ds" in out and "duplicates" in out and "data.yaml" in out
    assert run([*w, "dataset", "build", "--set", "GT", "--name", "ds", "--json", "-q"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kept_split"] == N and d["images"] == N
    assert run([*w, "dataset", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["name"] == "ds"
    assert run([*w, "dataset", "build", "--set", "GT", "--to", str(tmp_path / "x"), "--fix", "bogus"]) == 2
    assert run([*w, "dataset", "build", "--set", "GT"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_exclude_warnings_name_only_keys_that_change_nothing_and_say_why(gt, tmp_path):
    ws, _pool, _boxes = gt
    res = build_dataset(
        ws,
        "GT",
        tmp_path / "ds",
        where="fid < 10",
        exclude=["danbooru_2", "danbooru_15", "danbooru_404"],
        include=["danbooru_999"],
    )
    assert res.excluded == 1 and "danbooru_2" not in _splits(tmp_path / "ds")
    # danbooru_15 is an image of GT (outside --where), never called "not an image of GT"
    assert not any("danbooru_15" in w and "not images of" in w for w in res.warnings), res.warnings
    assert any(
        w.startswith("1 key(s) given to --exclude are not images of 'GT': danbooru_404") for w in res.warnings
    )
    assert any(
        w.startswith("1 key(s) given to --include are not images of 'GT': danbooru_999") for w in res.warnings
    )
    assert any(
        w.startswith("1 key(s) given to --exclude are images of 'GT' that --where 'fid < 10' leaves out")
        and w.endswith("danbooru_15")
        for w in res.warnings
    ), res.warnings
    # keys that all take effect: no warning about keys
    res = build_dataset(ws, "GT", tmp_path / "ds", exclude=["danbooru_3"])
    assert not any("key(s) given" in w for w in res.warnings), res.warnings


def test_build_counts_the_voc_flags_yolo_cannot_hold(gt, tmp_path):
    ws, _pool, _boxes = gt
    from tuiops.ops.labels import import_labels

    obj = (
        "<object><name>{name}</name><pose>Unspecified</pose><truncated>{t}</truncated>"
        "<difficult>{d}</difficult><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>40</xmax><ymax>40</ymax>"
        "</bndbox></object>"
    )
    xml = (
        "<annotation><filename>danbooru_1.png</filename><size><width>96</width><height>80</height>"
        "<depth>3</depth></size>"
        + obj.format(name=CLASSES[0], t=1, d=1)
        + obj.format(name=CLASSES[1], t=0, d=1)
        + "</annotation>"
    )
    src = tmp_path / "voc"
    src.mkdir()
    (src / "danbooru_1.xml").write_text(xml)
    import_labels(ws, src, "V", "voc")
    res = build_dataset(ws, "V", tmp_path / "ds", val=0.0, seed=1)
    assert res.not_carried == {"difficult": 2, "truncated": 1}
    assert any("not written: difficult 2, truncated 1" in w for w in res.warnings)
