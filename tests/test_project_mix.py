"""`tuiops project mix`: builds (written per the build contract) into VOC, YOLO and COCO datasets.

Builds are made here as `tuiops project build` leaves them: drawn images, VOC XML and a
``build.json`` written last. The outputs are read back with the real loaders:
torchvision's VOCDetection, pycocotools' COCO and a 1-epoch ultralytics training.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tuiops.cli import run
from tuiops.errors import ConflictError, InputError, NotFoundError, UsageError
from tuiops.workspace import Workspace


# -- builds per the contract ---------------------------------------------------------------------------
def draw(path: Path, seed: int, size: tuple[int, int] = (96, 72), boxes: list[tuple] = ()) -> None:  # type: ignore[assignment]
    """A noisy image (its perceptual hash is unlike any other seed's) with a filled box per object."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    w, h = size
    cells = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    img = Image.fromarray(cells).resize((w, h), Image.NEAREST)
    d = ImageDraw.Draw(img)
    for _name, x1, y1, x2, y2 in boxes:
        d.rectangle([x1, y1, x2 - 1, y2 - 1], fill=(250, 20, 20))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, quality=95)


def voc_xml(filename: str, size: tuple[int, int], boxes: list[tuple]) -> str:
    objs = "".join(
        f"\t<object>\n\t\t<name>{n}</name>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n"
        f"\t\t\t<xmin>{x1}</xmin>\n\t\t\t<ymin>{y1}</ymin>\n\t\t\t<xmax>{x2}</xmax>\n\t\t\t<ymax>{y2}</ymax>\n"
        "\t\t</bndbox>\n\t</object>\n"
        for n, x1, y1, x2, y2 in boxes
    )
    return (
        f"<annotation>\n\t<filename>{filename}</filename>\n\t<size>\n\t\t<width>{size[0]}</width>\n"
        f"\t\t<height>{size[1]}</height>\n\t\t<depth>3</depth>\n\t</size>\n{objs}</annotation>\n"
    )


def scene(name: str, i: int, classes: list[str], size: tuple[int, int]) -> list[tuple]:
    rng = random.Random(f"{name}:{i}")
    w, h = size
    out = []
    for k in range(rng.randint(0, 2) + (1 if i % 4 else 0)):
        bw, bh = rng.randint(10, w // 3), rng.randint(10, h // 3)
        x1, y1 = rng.randint(0, w - bw), rng.randint(0, h - bh)
        out.append((classes[(i + k) % len(classes)], x1, y1, x1 + bw, y1 + bh))
    return out


def make_build(
    ws: Any,
    name: str,
    classes: list[str],
    n: int,
    *,
    seed_base: int | None = None,
    size: tuple[int, int] = (96, 72),
    image_seeds: dict[int, int] | None = None,
    boxes: dict[int, list[tuple]] | None = None,
    toml_classes: list[str] | None = None,
) -> Path:
    """Write projects/NAME/ with project.toml and a finished build of ``n`` drawn images."""
    folder = Path(ws.root) / "projects" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "project.toml").write_text(
        f'[project]\nname = "{name}"\nclasses = {json.dumps(toml_classes or classes)}\n'
        'augment = "python augment.py --master master --out {out} --count {count} --seed {seed}"\n'
        f"count = {n}\nseed = 0\n"
    )
    (folder / ".gitignore").write_text("build/\n")
    build = folder / "build"
    if build.exists():
        shutil.rmtree(build)
    base = seed_base if seed_base is not None else sum(map(ord, name)) * 1000
    files = []
    for i in range(1, n + 1):
        stem = f"{name}_{i:06d}"
        bx = (boxes or {}).get(i, scene(name, i, classes, size))
        img = build / "JPEGImages" / f"{stem}.jpg"
        draw(img, (image_seeds or {}).get(i, base + i), size, bx)
        ann = build / "Annotations" / f"{stem}.xml"
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text(voc_xml(img.name, size, bx))
        files.append(
            {
                "image": f"JPEGImages/{stem}.jpg",
                "annotation": f"Annotations/{stem}.xml",
                "sha256": hashlib.sha256(img.read_bytes()).hexdigest(),
                "width": size[0],
                "height": size[1],
                "objects": len(bx),
            }
        )
    from tuiops.ops.project import input_hashes, load_project

    inputs, script = input_hashes(ws, load_project(ws, name))
    info = {
        "project": name,
        "classes": classes,
        "count": n,
        "seed": 0,
        "host": "local",
        "script_sha256": script,
        "inputs_sha256": inputs,
        "created": "2026-11-20T10:00:00Z",
        "files": files,
    }
    (build / "build.json").write_text(json.dumps(info, indent=1))
    return build


def build_boxes(build: Path) -> dict[str, list[tuple]]:
    """stem → [(name, x1, y1, x2, y2)] as the build's annotations hold them."""
    info = json.loads((build / "build.json").read_text())
    import xml.etree.ElementTree as ET

    out = {}
    for f in info["files"]:
        root = ET.parse(build / f["annotation"]).getroot()
        out[Path(f["image"]).stem] = [
            (
                o.findtext("name"),
                *(float(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")),
            )
            for o in root.iter("object")
        ]
    return out


@pytest.fixture
def mws(tmp_path: Path) -> Any:
    w = Workspace.init(tmp_path / "ws", classes=["head"])
    try:
        yield w
    finally:
        w.close()


def cli(ws: Any, *args: str) -> int:
    return run(["-w", str(ws.root), *args])


def mix_json(ws: Any, capsys: Any, *args: str) -> dict[str, Any]:
    capsys.readouterr()
    code = cli(ws, "project", "mix", *args, "--json", "-q")
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


# -- VOC ------------------------------------------------------------------------------------------------
def test_voc_mix_loads_with_torchvision(mws, tmp_path, capsys):
    from torchvision.datasets import VOCDetection

    a = make_build(mws, "close_button", ["close_button"], 12)
    b = make_build(mws, "kanji", ["ka", "close_button"], 10)
    out = tmp_path / "mix"
    res = mix_json(
        mws, capsys, "close_button", "kanji", "--out", str(out), "--voc-year", "2012", "--seed", "3"
    )
    assert res["classes"] == ["close_button", "ka"]
    assert res["images"] == 22 and res["train"] + res["val"] == 22 and res["val"] > 0
    truth = {**build_boxes(a), **build_boxes(b)}
    seen: dict[str, str] = {}
    for image_set in ("train", "val"):
        ds = VOCDetection(str(out), year="2012", image_set=image_set)
        for img, target in ds:
            ann = target["annotation"]
            stem = Path(ann["filename"]).stem
            assert (int(ann["size"]["width"]), int(ann["size"]["height"])) == img.size == (96, 72)
            objs = ann.get("object", [])
            got = [
                (o["name"], *(float(o["bndbox"][k]) for k in ("xmin", "ymin", "xmax", "ymax"))) for o in objs
            ]
            assert got == truth[stem]
            assert all(o["difficult"] == "0" and o["truncated"] == "0" for o in objs)
            seen[stem] = image_set
    assert len(seen) == 22 and sum(v == "val" for v in seen.values()) == res["val"]
    trainval = VOCDetection(str(out), year="2012", image_set="trainval")
    assert len(trainval) == 22
    # the split is recorded per image in the store
    rows = dict(
        mws.store.execute(
            "SELECT project || '/' || stem, split FROM project_mix_images WHERE mix_id = ?", (res["mix_id"],)
        ).fetchall()
    )
    assert {k.split("/")[1]: v for k, v in rows.items()} == seen
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["root"] == "VOCdevkit/VOC2012" and manifest["counts"]["val"] == res["val"]
    assert [p["name"] for p in manifest["projects"]] == ["close_button", "kanji"]
    assert (
        manifest["projects"][0]["build_json_sha256"]
        == hashlib.sha256((a / "build.json").read_bytes()).hexdigest()
    )


def test_voc_without_year_is_a_plain_voc_folder(mws, tmp_path, capsys):
    make_build(mws, "p", ["x"], 5)
    out = tmp_path / "plain"
    mix_json(mws, capsys, "p", "--out", str(out), "--val", "0")
    assert sorted(p.name for p in out.iterdir()) == [
        "Annotations",
        "ImageSets",
        "JPEGImages",
        "classes.txt",
        "labelmap.txt",
        "manifest.json",
    ]
    assert (out / "ImageSets/Main/train.txt").read_text().split() == [f"p_{i:06d}" for i in range(1, 6)]
    assert (out / "ImageSets/Main/val.txt").read_text() == ""


# -- COCO -------------------------------------------------------------------------------------------------
def test_coco_mix_loads_with_pycocotools(mws, tmp_path, capsys):
    from pycocotools.coco import COCO

    a = make_build(mws, "a", ["dog", "cat"], 10)
    b = make_build(mws, "b", ["cat", "bird"], 8)
    out = tmp_path / "coco"
    res = mix_json(mws, capsys, "a", "b", "--out", str(out), "--format", "coco", "--val", "0.3")
    truth = {**build_boxes(a), **build_boxes(b)}
    total = 0
    for split in ("train", "val"):
        coco = COCO(str(out / "annotations" / f"instances_{split}.json"))
        cats = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
        assert cats == {1: "dog", 2: "cat", 3: "bird"}
        for img in coco.loadImgs(coco.getImgIds()):
            assert (out / "images" / split / img["file_name"]).is_file()
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
            got = [
                (
                    cats[a["category_id"]],
                    a["bbox"][0],
                    a["bbox"][1],
                    a["bbox"][0] + a["bbox"][2],
                    a["bbox"][1] + a["bbox"][3],
                )
                for a in anns
            ]
            assert got == truth[Path(img["file_name"]).stem]
            total += 1
    assert total == res["images"] == 18


# -- YOLO -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_yolo_mix_trains_with_ultralytics(mws, tmp_path, capsys):
    import yaml

    from tuiops.ops.detect import prepare_ultralytics

    a = make_build(mws, "a", ["red"], 10, size=(64, 64))
    make_build(mws, "b", ["red", "blue"], 8, size=(64, 64))
    out = tmp_path / "yolo"
    res = mix_json(
        mws, capsys, "a", "b", "--out", str(out), "--format", "yolo", "--val", "0.3", "--seed", "2"
    )
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data == {"train": "images/train", "val": "images/val", "nc": 2, "names": {0: "red", 1: "blue"}}
    # one label line per box, normalised
    stem = "a_000002"
    split = "train" if (out / "images/train" / f"{stem}.jpg").exists() else "val"
    lines = (out / "labels" / split / f"{stem}.txt").read_text().splitlines()
    (_n, x1, _y1, x2, _y2), *_ = build_boxes(a)[stem]
    c, cx, _cy, w, _h = lines[0].split()
    assert c == "0" and float(cx) == pytest.approx((x1 + x2) / 2 / 64, abs=1e-6)
    assert float(w) == pytest.approx((x2 - x1) / 64, abs=1e-6)
    assert res["train"] > 0 and res["val"] > 0
    ultralytics = prepare_ultralytics(mws)
    model = ultralytics.YOLO("yolov8n.yaml")
    results = model.train(
        data=str(out / "data.yaml"),
        epochs=1,
        imgsz=64,
        batch=4,
        device="cpu",
        workers=0,
        plots=False,
        amp=False,
        val=True,
        project=str(tmp_path / "runs"),
        name="mix",
        exist_ok=True,
        verbose=False,
    )
    assert (tmp_path / "runs" / "mix" / "weights" / "last.pt").is_file()
    assert results is not None
    cache = list((out / "labels").glob("*.cache"))
    assert cache, "ultralytics read the labels"


# -- stable split ---------------------------------------------------------------------------------------
def test_split_is_stable_and_keeps_its_ratio_when_images_are_added(mws, tmp_path, capsys):
    make_build(mws, "a", ["x"], 20)
    make_build(mws, "b", ["x"], 15)
    out = tmp_path / "m"

    def splits(res: dict[str, Any]) -> dict[str, str]:
        return dict(
            mws.store.execute(
                "SELECT stem, split FROM project_mix_images WHERE mix_id = ?", (res["mix_id"],)
            ).fetchall()
        )

    first = mix_json(mws, capsys, "a", "b", "--out", str(out), "--seed", "7", "--val", "0.3")
    again = mix_json(mws, capsys, "a", "b", "--out", str(out), "--seed", "7", "--val", "0.3")
    assert splits(first) == splits(again) and again["reused"] and not first["reused"]
    assert (first["val"], again["val"]) == (6 + 5, 6 + 5)  # round(0.3 × 20) + round(0.3 × 15)
    make_build(mws, "a", ["x"], 40)  # the first 20 images are the same, 20 more follow
    second = mix_json(mws, capsys, "a", "b", "--out", str(out), "--seed", "7", "--val", "0.3")
    after = splits(second)
    assert len(after) == 55 and second["val"] == 12 + 5
    # another seed draws another split
    third = mix_json(mws, capsys, "a", "b", "--out", str(out), "--seed", "8", "--val", "0.3")
    assert splits(third) != after and third["val"] == 17
    assert mws.store.one("SELECT count(*) FROM project_mixes") == 3  # the unchanged rerun is the first


# -- duplicates and leaks --------------------------------------------------------------------------------
def _leaky_builds(ws: Any) -> None:
    """b's images 1–6 are a's images 1–6 drawn again (same seed: identical or near-identical)."""
    make_build(ws, "a", ["x"], 12, seed_base=100)
    same = {i: scene("a", i, ["x"], (96, 72)) for i in range(1, 7)}
    for i in (4, 5, 6):  # near-identical: the boxes moved by a pixel
        same[i] = [(n, x1 + 1, y1, x2 + 1, y2) for n, x1, y1, x2, y2 in same[i]]
    make_build(ws, "b", ["x"], 12, seed_base=500, image_seeds={i: 100 + i for i in range(1, 7)}, boxes=same)


def test_duplicates_are_dropped_and_reported(mws, tmp_path, capsys):
    _leaky_builds(mws)
    out = tmp_path / "d"
    res = mix_json(mws, capsys, "a", "b", "--out", str(out), "--val", "0.5", "--seed", "1")
    assert res["dropped"] == 6 and res["duplicate_groups"] == 6 and res["images"] == 18
    kept = {g["kept"] for g in res["duplicates"]}
    assert kept == {f"a/a_{i:06d}" for i in range(1, 7)}
    assert all(g["others"] == [f"b/b_{g['kept'][-6:]}"] for g in res["duplicates"])
    rows = mws.store.execute(
        "SELECT stem, split, reason, dup_of, file FROM project_mix_images WHERE mix_id = ? AND split = 'dropped'",
        (res["mix_id"],),
    ).fetchall()
    assert sorted(r[0] for r in rows) == [f"b_{i:06d}" for i in range(1, 7)]
    assert all(r[2] == "duplicate" and r[3] == "a/a_" + r[0][2:] and r[4] is None for r in rows)
    assert not any((out / "JPEGImages").glob("b_00000[1-6].jpg"))
    assert res["leaks"] >= 1  # with val 0.5 some pairs were drawn into different splits


def test_near_duplicates_grouped_into_one_split_or_refused(mws, tmp_path, capsys):
    _leaky_builds(mws)
    out = tmp_path / "g"
    res = mix_json(
        mws, capsys, "a", "b", "--out", str(out), "--val", "0.5", "--seed", "1", "--dupes", "group"
    )
    assert res["dropped"] == 0 and res["images"] == 24 and res["leaks"] >= 1 and res["moved"] == res["leaks"]
    splits = dict(
        mws.store.execute(
            "SELECT stem, split FROM project_mix_images WHERE mix_id = ?", (res["mix_id"],)
        ).fetchall()
    )
    for i in range(1, 7):
        assert splits[f"a_{i:06d}"] == splits[f"b_{i:06d}"]
    moved = mws.store.execute(
        "SELECT count(*) FROM project_mix_images WHERE mix_id = ? AND reason = 'near-duplicate'",
        (res["mix_id"],),
    ).fetchone()[0]
    assert moved == res["moved"] == 6 and res["leaks"] == 6
    capsys.readouterr()
    code = cli(
        mws,
        "project",
        "mix",
        "a",
        "b",
        "--out",
        str(tmp_path / "s"),
        "--val",
        "0.5",
        "--seed",
        "1",
        "--dupes",
        "group",
        "--strict",
        "-q",
    )
    assert code == ConflictError.exit_code
    err = capsys.readouterr().err
    assert "straddle train and val" in err and "a/a_00000" in err
    assert not (tmp_path / "s").exists()
    # distance 0 still finds the identical redraws
    res0 = mix_json(mws, capsys, "a", "b", "--out", str(tmp_path / "z"), "--max-distance", "0")
    assert {"a/a_000001", "a/a_000002", "a/a_000003"} <= {g["kept"] for g in res0["duplicates"]}
    assert 3 <= res0["dropped"] <= 6


# -- class map ---------------------------------------------------------------------------------------------
def test_class_map_conflicts_and_renames(mws, tmp_path, capsys):
    from tuiops.ops.project_mix import build_class_map, load_build, parse_map

    make_build(mws, "kanji", ["ka", "ki"], 4)
    make_build(mws, "hira", ["hiragana_ka", "Ki"], 4)
    make_build(mws, "ui", ["close_button", "ki"], 4)
    # Ki vs ki: same name up to case -> an error naming both projects
    capsys.readouterr()
    assert cli(mws, "project", "mix", "kanji", "hira", "--out", str(tmp_path / "c1"), "-q") == 6
    err = capsys.readouterr().err
    assert "'ki' of project 'kanji'" in err and "'Ki' of project 'hira'" in err and "--merge" in err
    # mapping two names onto one without --merge
    assert (
        cli(
            mws,
            "project",
            "mix",
            "kanji",
            "hira",
            "--out",
            str(tmp_path / "c2"),
            "--map",
            "hira:Ki=ki",
            "--map",
            "kanji:ka=hiragana_ka",
            "-q",
        )
        == 6
    )
    err = capsys.readouterr().err
    assert "kanji:ka and hira:hiragana_ka" in err or "hira:hiragana_ka" in err
    # with --merge the mix goes through: one class each
    res = mix_json(
        mws,
        capsys,
        "kanji",
        "hira",
        "--out",
        str(tmp_path / "c3"),
        "--map",
        "hira:Ki=ki",
        "--map",
        "kanji:ka=hiragana_ka",
        "--merge",
    )
    assert res["classes"] == ["hiragana_ka", "ki"]
    # the same name in two projects is one class, no flag needed
    res = mix_json(mws, capsys, "kanji", "ui", "--out", str(tmp_path / "c4"))
    assert res["classes"] == ["ka", "ki", "close_button"]
    # a plain rename
    res = mix_json(
        mws, capsys, "kanji", "ui", "--out", str(tmp_path / "c5"), "--map", "ui:close_button=close"
    )
    assert res["classes"] == ["ka", "ki", "close"]
    xml = next((tmp_path / "c5" / "Annotations").glob("ui_*.xml")).read_text()
    assert "<name>close_button</name>" not in xml
    # a classes file fixes the order and must list every class
    names = tmp_path / "classes.txt"
    names.write_text("close_button\nki\nka\nunused\n")
    res = mix_json(mws, capsys, "kanji", "ui", "--out", str(tmp_path / "c6"), "--classes", str(names))
    assert res["classes"] == ["close_button", "ki", "ka", "unused"]
    names.write_text("ki\nka\n")
    assert (
        cli(
            mws, "project", "mix", "kanji", "ui", "--out", str(tmp_path / "c7"), "--classes", str(names), "-q"
        )
        == 2
    )
    assert "ui:close_button" in capsys.readouterr().err
    # bad --map values
    builds = [load_build(mws, "kanji"), load_build(mws, "ui")]
    with pytest.raises(UsageError, match="has no class 'zz'"):
        build_class_map(builds, parse_map(["kanji:zz=a"]))
    with pytest.raises(UsageError, match="not in this mix"):
        build_class_map(builds, parse_map(["hira:Ki=ki"]))
    with pytest.raises(UsageError, match="expected OLD=NEW"):
        parse_map(["nonsense"])
    with pytest.raises(UsageError, match="two new names"):
        build_class_map(builds, parse_map(["kanji:ka=a", "kanji:ka=b"]))


# -- missing and bad inputs -----------------------------------------------------------------------------------
def test_unknown_project_and_project_without_build(mws, tmp_path, capsys):
    make_build(mws, "a", ["x"], 3)
    capsys.readouterr()
    assert (
        cli(mws, "project", "mix", "a", "nope", "--out", str(tmp_path / "o"), "-q") == NotFoundError.exit_code
    )
    err = capsys.readouterr().err
    assert "no project 'nope'" in err and "projects here: a" in err
    unbuilt = Path(mws.root) / "projects" / "fresh"
    unbuilt.mkdir()
    (unbuilt / "project.toml").write_text('[project]\nname = "fresh"\nclasses = ["x"]\n')
    (unbuilt / "build").mkdir()  # a build folder without build.json is not a build
    assert cli(mws, "project", "mix", "a", "fresh", "--out", str(tmp_path / "o"), "-q") == 5
    err = capsys.readouterr().err
    assert "project 'fresh' has no finished build" in err and "tuiops project build fresh" in err
    assert cli(mws, "project", "mix", "a", "a", "--out", str(tmp_path / "o"), "-q") == 2
    assert cli(mws, "project", "mix", "../a", "--out", str(tmp_path / "o"), "-q") == 2
    assert cli(mws, "project", "mix", "a", "--out", str(tmp_path / "o"), "--val", "1.5", "-q") == 2
    assert (
        cli(
            mws,
            "project",
            "mix",
            "a",
            "--out",
            str(tmp_path / "o"),
            "--format",
            "yolo",
            "--voc-year",
            "2012",
            "-q",
        )
        == 2
    )
    assert not (tmp_path / "o").exists()


def test_bad_builds_are_clear_errors(mws, tmp_path):
    from tuiops.ops.project_mix import mix_projects

    build = make_build(mws, "a", ["x"], 4, boxes={1: [("x", 5, 5, 30, 30)], 2: [("y", 1, 1, 9, 9)]})
    with pytest.raises(InputError, match=r"class 'y' is not one of the build's classes"):
        mix_projects(mws, ["a"], tmp_path / "o")
    build = make_build(mws, "a", ["x"], 4)
    img = build / "JPEGImages" / "a_000003.jpg"
    img.write_bytes(img.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(InputError, match=r"a_000003.jpg changed since the build"):
        mix_projects(mws, ["a"], tmp_path / "o")
    build = make_build(mws, "a", ["x"], 4)
    (build / "Annotations" / "a_000002.xml").write_text("<annotation><object>")
    with pytest.raises(InputError, match=r"a_000002.xml: not valid XML"):
        mix_projects(mws, ["a"], tmp_path / "o")
    build = make_build(mws, "a", ["x"], 4)
    (build / "Annotations" / "a_000004.xml").unlink()
    with pytest.raises(InputError, match=r"a_000004.xml listed in build.json is missing"):
        mix_projects(mws, ["a"], tmp_path / "o")
    build = make_build(mws, "a", ["x"], 4, boxes={1: [("x", 200, 5, 230, 30)]})
    with pytest.raises(InputError, match=r"has no area inside the 96×72 image"):
        mix_projects(mws, ["a"], tmp_path / "o")
    build = make_build(mws, "a", ["x"], 4)
    (build / "build.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        mix_projects(mws, ["a"], tmp_path / "o")
    # a box reaching past the border is clipped and counted
    make_build(mws, "a", ["x"], 4, boxes={1: [("x", 80, 60, 120, 90)]})
    res = mix_projects(mws, ["a"], tmp_path / "o", val=0.0)
    assert res.clipped == 1
    xml = (tmp_path / "o" / "Annotations" / "a_000001.xml").read_text()
    assert "<xmax>96</xmax>" in xml and "<ymax>72</ymax>" in xml
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


def test_out_holding_the_workspace_or_a_build_is_refused(mws, tmp_path):
    """Even with --overwrite: replacing such a folder would delete the workspace or the builds read."""
    from tuiops.ops.project_mix import mix_projects

    make_build(mws, "a", ["x"], 3)
    before = sorted(p.name for p in mws.root.iterdir())
    for out in (mws.root, tmp_path, mws.root / "projects", mws.root / "projects" / "a" / "build" / "o"):
        with pytest.raises(UsageError, match=r"workspace|overlaps the build of project a"):
            mix_projects(mws, ["a"], out, overwrite=True)
    assert sorted(p.name for p in mws.root.iterdir()) == before
    assert (mws.root / "projects" / "a" / "build" / "build.json").is_file()
    assert mix_projects(mws, ["a"], mws.root / "mixes" / "o").images == 3


def test_stale_build_is_warned_about(mws, tmp_path):
    from tuiops.ops.project_mix import mix_projects

    make_build(mws, "a", ["x"], 3, toml_classes=["x", "y"])
    res = mix_projects(mws, ["a"], tmp_path / "o")
    assert res.warnings and "rebuild it" in res.warnings[0]


# -- output folder, manifest, tarball -------------------------------------------------------------------------
def test_tarball_manifest_and_output_policy(mws, tmp_path, capsys):
    from tuiops.ops.project_mix import verify_output

    make_build(mws, "a", ["x", "y"], 8)
    make_build(mws, "b", ["y"], 6)
    out = tmp_path / "ds" / "mix"
    tar = tmp_path / "ship" / "mix.tar.gz"
    res = mix_json(mws, capsys, "a", "b", "--out", str(out), "--format", "yolo", "--tar", str(tar))
    assert res["tar_sha256"] == hashlib.sha256(tar.read_bytes()).hexdigest()
    assert res["tar_size"] == tar.stat().st_size
    stored = mws.store.execute(
        "SELECT tar_sha256, manifest_sha256 FROM project_mixes WHERE id = ?", (res["mix_id"],)
    ).fetchone()
    assert stored == (res["tar_sha256"], res["manifest_sha256"])
    assert verify_output(out) == []
    with tarfile.open(tar) as tf:
        names = tf.getnames()
        assert "mix/manifest.json" in names and "mix/data.yaml" in names
        manifest = json.loads(tf.extractfile("mix/manifest.json").read())
        assert (
            hashlib.sha256(tf.extractfile("mix/manifest.json").read()).hexdigest() == res["manifest_sha256"]
        )
        for im in manifest["images"]:
            assert hashlib.sha256(tf.extractfile(f"mix/{im['file']}").read()).hexdigest() == im["sha256"]
            assert (
                hashlib.sha256(tf.extractfile(f"mix/{im['label']}").read()).hexdigest() == im["label_sha256"]
            )
        for rel, sha in manifest["files"].items():
            assert hashlib.sha256(tf.extractfile(f"mix/{rel}").read()).hexdigest() == sha
        assert all(m.uid == 0 and m.uname == "" for m in tf.getmembers())
    assert manifest["classes"] == ["x", "y"] and manifest["counts"]["images"] == 14
    assert {im["project"] for im in manifest["images"]} == {"a", "b"}
    assert not [p for p in tar.parent.iterdir() if p.name != "mix.tar.gz"]
    # the same mix again gives the same bytes, and the tarball is kept as it is
    mtime = tar.stat().st_mtime_ns
    again = mix_json(mws, capsys, "a", "b", "--out", str(out), "--format", "yolo", "--tar", str(tar))
    assert again["tar_sha256"] == res["tar_sha256"] and again["tar_reused"] is True
    assert again["reused"] is True and again["mix_id"] == res["mix_id"]  # nothing was read or written again
    assert tar.stat().st_mtime_ns == mtime
    # a tampered file is found
    victim = next((out / "labels" / "train").glob("*.txt"))
    victim.write_text("0 0.5 0.5 0.1 0.1\n")
    assert any(victim.name in p for p in verify_output(out))
    # a folder that is not a mix is refused unless --overwrite
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    capsys.readouterr()
    assert cli(mws, "project", "mix", "a", "--out", str(other), "-q") == 6
    assert "is not a mixed dataset" in capsys.readouterr().err
    assert (other / "keep.txt").read_text() == "mine"
    assert cli(mws, "project", "mix", "a", "--out", str(other), "--overwrite", "-q") == 0
    assert not (other / "keep.txt").exists() and (other / "manifest.json").is_file()
    # a tarball inside the output folder is refused
    assert cli(mws, "project", "mix", "a", "--out", str(out), "--tar", str(out / "x.tar.gz"), "-q") == 2
    # the text output names the tarball and its checksum
    capsys.readouterr()
    assert (
        cli(mws, "project", "mix", "a", "b", "--out", str(out), "--format", "yolo", "--tar", str(tar), "-q")
        == 0
    )
    text = capsys.readouterr().out
    assert res["tar_sha256"] in text and "train" in text
    jobs = mws.store.execute("SELECT status FROM jobs WHERE kind = 'project.mix'").fetchall()
    # refusals come before any work, so they record no job; nor does a mix run again unchanged
    assert jobs == [("done",)] * 3


def test_cancel_leaves_no_output_and_records_the_job(mws, tmp_path, capsys):
    from tuiops.errors import Cancelled
    from tuiops.ops.base import CancelToken
    from tuiops.ops.project_mix import mix_projects

    _leaky_builds(mws)
    token = CancelToken()
    seen: list[int] = []

    def stop_after_three(ev):  # type: ignore[no-untyped-def]
        seen.append(ev.done)
        if ev.done >= 3:
            token.cancel()

    with pytest.raises(Cancelled):
        mix_projects(mws, ["a", "b"], tmp_path / "c", progress=stop_after_three, cancel=token)
    assert not (tmp_path / "c").exists() and not list(tmp_path.glob(".c.*"))
    assert mws.store.one("SELECT status FROM jobs WHERE kind = 'project.mix'") == "cancelled"
    assert mws.store.one("SELECT count(*) FROM project_mixes") == 0
    # the text output lists the duplicate groups
    capsys.readouterr()
    assert cli(mws, "project", "mix", "a", "b", "--out", str(tmp_path / "t"), "-q") == 0
    text = capsys.readouterr().out
    assert "6 dropped in 6 group(s)" in text and "a/a_000001: dropped b/b_000001" in text
