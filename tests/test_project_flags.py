"""VOC object flags (``difficult``, ``truncated``, ``pose``, ``occluded``) and other tags from the
master annotations through `project build` and `project mix`, read back by Datumaro."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tuiops.cli import run


def master_xml(stem: str, size: tuple[int, int], objects: list[dict[str, Any]]) -> str:
    """A master annotation as labelImg writes it, with an extra tag where an object has ``note``."""
    objs = ""
    for o in objects:
        note = f"\t\t<note>{o['note']}</note>\n" if "note" in o else ""
        objs += (
            f"\t<object>\n\t\t<name>{o['name']}</name>\n\t\t<pose>{o['pose']}</pose>\n"
            f"\t\t<truncated>{o['truncated']}</truncated>\n\t\t<difficult>{o['difficult']}</difficult>\n"
            f"{note}\t\t<bndbox>\n"
            + "".join(
                f"\t\t\t<{k}>{v}</{k}>\n"
                for k, v in zip(("xmin", "ymin", "xmax", "ymax"), o["box"], strict=True)
            )
            + "\t\t</bndbox>\n\t</object>\n"
        )
    return (
        f"<annotation>\n\t<folder>images</folder>\n\t<filename>{stem}.png</filename>\n"
        f"\t<path>{stem}.png</path>\n\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n"
        f"\t<size>\n\t\t<width>{size[0]}</width>\n\t\t<height>{size[1]}</height>\n\t\t<depth>3</depth>\n"
        f"\t</size>\n\t<segmented>0</segmented>\n{objs}</annotation>\n"
    )


BUTTON = {
    "name": "button",
    "pose": "Left",
    "truncated": 1,
    "difficult": 1,
    "note": "worn",
    "box": (10, 10, 50, 40),
}
ICON = {"name": "icon", "pose": "Unspecified", "truncated": 0, "difficult": 0, "box": (60, 20, 100, 70)}


def write_master(root: Path, stem: str, objects: list[dict[str, Any]]) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (120, 90), (240, 240, 240))
    for k, o in enumerate(objects):
        ImageDraw.Draw(img).rectangle([round(float(v)) for v in o["box"]], fill=(200, 30 + 80 * k, 30))
    img.save(root / "master" / "images" / f"{stem}.png")
    (root / "master" / "annotations" / f"{stem}.xml").write_text(master_xml(stem, img.size, objects))


def objects_of(xml: Path) -> list[dict[str, str | None]]:
    root = ET.parse(xml).getroot()
    return [
        {k: o.findtext(k) for k in ("name", "pose", "truncated", "difficult", "note")}
        for o in root.findall("object")
    ]


FLAGS = {
    "button": {"name": "button", "pose": "Left", "truncated": "1", "difficult": "1", "note": "worn"},
    "icon": {"name": "icon", "pose": "Unspecified", "truncated": "0", "difficult": "0", "note": None},
}


@pytest.fixture
def fws(tmp_path: Path) -> Iterator[Any]:
    """A workspace with project ``flags``: one master with a difficult, truncated, posed object
    with an extra tag, and a plain one; built with the example paste script."""
    from tuiops.ops.project import build_project, new_project
    from tuiops.workspace import Workspace

    w = Workspace.init(tmp_path / "ws", classes=["head"])
    try:
        p = new_project(w, "flags", classes=["button", "icon"], count=6, seed=3)
        write_master(p.root, "m1", [BUTTON, ICON])
        res = build_project(w, "flags")
        assert res.status == "built" and res.objects > 0
        yield w
    finally:
        w.close()


def test_build_keeps_the_master_objects_flags_and_tags(fws):
    build = Path(fws.root) / "projects" / "flags" / "build" / "Annotations"
    objs = [o for x in sorted(build.glob("*.xml")) for o in objects_of(x)]
    assert {o["name"] for o in objs} == {"button", "icon"}
    for o in objs:
        assert o == FLAGS[o["name"]]


def test_build_of_images_named_after_masters_keeps_flags(tmp_path):
    from tuiops.ops.project import build_project, new_project
    from tuiops.workspace import Workspace

    gen = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from PIL import Image
        out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
        for src in sorted(Path("master/images").glob("*.png")):
            Image.open(src).convert("RGB").save(out / f"{src.stem}__0.png")
        """
    )
    w = Workspace.init(tmp_path / "ws", classes=["head"])
    try:
        p = new_project(
            w, "photo", classes=["button", "icon"], count=1, augment="python gen.py {out} {count}"
        )
        (p.root / "gen.py").write_text(gen)
        write_master(p.root, "m1", [BUTTON, ICON])
        build_project(w, "photo")
        objs = objects_of(p.build_dir / "Annotations" / "photo_000001.xml")
        assert objs == [FLAGS["button"], FLAGS["icon"]]
    finally:
        w.close()


def mix(ws: Any, capsys: Any, fmt: str, out: Path) -> dict[str, Any]:
    capsys.readouterr()
    code = run(["-w", str(ws.root), "project", "mix", "flags", "--out", str(out), "--format", fmt, "--val", "0.3", "--json", "-q"])  # fmt: skip
    res = capsys.readouterr()
    assert code == 0, res.err
    return json.loads(res.out)


def dm_boxes(dataset: Any, subsets: tuple[str, ...] = ("train", "val")) -> tuple[int, list[tuple[str, dict]]]:
    """Items and (label name, attributes) of every box of a Datumaro dataset's ``subsets``."""
    from datumaro.components.annotation import AnnotationType, Bbox

    labels = dataset.categories()[AnnotationType.label]
    items, boxes = 0, []
    for item in dataset:
        if item.subset not in subsets:
            continue
        items += 1
        boxes += [(labels[a.label].name, dict(a.attributes)) for a in item.annotations if isinstance(a, Bbox)]
    return items, boxes


def test_voc_mix_keeps_flags_and_datumaro_reads_them(fws, tmp_path, capsys):
    import datumaro as dm

    out = tmp_path / "voc"
    res = mix(fws, capsys, "voc", out)
    assert res["not_carried"] == {}
    assert (out / "labelmap.txt").read_text().splitlines() == [
        "# label:color_rgb:parts:actions",
        "button:128,0,0::",
        "icon:0,128,0::",
    ]
    objs = [o for x in sorted((out / "Annotations").glob("*.xml")) for o in objects_of(x)]
    assert len(objs) == res["boxes"] and all(o == FLAGS[o["name"]] for o in objs)
    ds = dm.Dataset.import_from(str(out), "voc")
    items, boxes = dm_boxes(ds)
    assert items == res["images"] and len(boxes) == res["boxes"]
    assert {n for n, _ in boxes} == {"button", "icon"}
    for name, attrs in boxes:
        want = name == "button"
        assert attrs["difficult"] is want and attrs["truncated"] is want
        assert attrs["pose"] == FLAGS[name]["pose"]


def test_coco_mix_carries_flags_as_attributes(fws, tmp_path, capsys, caplog):
    import logging

    import datumaro as dm

    out = tmp_path / "coco"
    res = mix(fws, capsys, "coco", out)
    assert res["not_carried"] == {"other_tags": sum(1 for _ in _buttons(fws))}
    assert any("COCO cannot hold every VOC object flag" in w and "other tags" in w for w in res["warnings"])
    anns = []
    for s in ("train", "val"):
        anns += json.loads((out / "annotations" / f"instances_{s}.json").read_text())["annotations"]
    assert len(anns) == res["boxes"]
    for a in anns:
        assert a["segmentation"] == [] and a["iscrowd"] == 0 and a["area"] > 0
        assert a["attributes"]["difficult"] is (a["category_id"] == 1)
        assert a["attributes"]["truncated"] is (a["category_id"] == 1)
    with caplog.at_level(logging.WARNING):
        ds = dm.Dataset.import_from(str(out), "coco")
        items, boxes = dm_boxes(ds)
    assert [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
    ] == []  # nothing to warn about
    assert items == res["images"] and len(boxes) == res["boxes"]
    for name, attrs in boxes:
        assert attrs["difficult"] is (name == "button") and attrs["pose"] == FLAGS[name]["pose"]


def _buttons(ws: Any) -> Iterator[None]:
    build = Path(ws.root) / "projects" / "flags" / "build" / "Annotations"
    for x in build.glob("*.xml"):
        for o in objects_of(x):
            if o["name"] == "button":
                yield None


def test_yolo_mix_reports_the_flags_it_cannot_hold(fws, tmp_path, capsys):
    import datumaro as dm

    out = tmp_path / "yolo"
    n = sum(1 for _ in _buttons(fws))
    capsys.readouterr()
    code = run(["-w", str(fws.root), "project", "mix", "flags", "--out", str(out), "--format", "yolo", "--val", "0.3", "-q"])  # fmt: skip
    text = capsys.readouterr()
    assert code == 0
    assert f"YOLO cannot hold every VOC object flag or tag of the builds: {n} box(es)" in text.err
    assert f"difficult {n}, truncated {n}, pose {n}, other tags {n}" in text.out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["not_carried"] == {"difficult": n, "truncated": n, "pose": n, "other_tags": n}
    assert len(manifest["not_carried"]) == n
    ds = dm.Dataset.import_from(str(out), "yolo")
    items, boxes = dm_boxes(ds)
    assert items == manifest["counts"]["images"] and len(boxes) == manifest["counts"]["boxes"]
    assert {b for b, _ in boxes} == {"button", "icon"}


def test_float_master_coordinates_come_through_build_and_mix_as_written(tmp_path, capsys):
    from tuiops.ops.project import build_project, new_project
    from tuiops.workspace import Workspace

    gen = "import sys, shutil, pathlib\nout = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)\nshutil.copy('master/images/m1.png', out / 'm1__0.png')\n"
    w = Workspace.init(tmp_path / "ws", classes=["head"])
    try:
        p = new_project(
            w, "flags", classes=["button", "icon"], count=1, augment="python gen.py {out} {count}"
        )
        (p.root / "gen.py").write_text(gen)
        write_master(p.root, "m1", [{**BUTTON, "box": ("10.125", "10.5", "50.75", "40.0625")}])
        build_project(w, "flags")
        built = ET.parse(p.build_dir / "Annotations" / "flags_000001.xml").getroot().find("object/bndbox")
        assert [built.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")] == [
            "10.125",
            "10.5",
            "50.75",
            "40.0625",
        ]
        out = tmp_path / "voc"
        mix(w, capsys, "voc", out)
        mixed = ET.parse(out / "Annotations" / "flags_000001.xml").getroot().find("object/bndbox")
        assert [mixed.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")] == [
            "10.125",
            "10.5",
            "50.75",
            "40.0625",
        ]
        mix(w, capsys, "coco", tmp_path / "coco")
        anns = [
            a
            for s in ("train", "val")
            for a in json.loads((tmp_path / "coco" / "annotations" / f"instances_{s}.json").read_text())[
                "annotations"
            ]
        ]
        assert [a["bbox"] for a in anns] == [[10.125, 10.5, 40.625, 29.5625]]
    finally:
        w.close()


def test_boxes_json_may_state_flags_and_must_name_real_master_objects(tmp_path, capsys):
    from tuiops.errors import InputError
    from tuiops.ops.project import build_project, new_project
    from tuiops.workspace import Workspace

    gen = textwrap.dedent(
        """
        import json, sys, pathlib
        from PIL import Image
        out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48)).save(out / "a.png")
        obj = json.loads(pathlib.Path("object.json").read_text())
        (out / "boxes.json").write_text(json.dumps([{"file": "a.png", "objects": [obj]}]))
        """
    )
    w = Workspace.init(tmp_path / "ws", classes=["head"])
    try:
        p = new_project(w, "own", classes=["button", "icon"], count=1, augment="python gen.py {out} {count}")
        (p.root / "gen.py").write_text(gen)
        write_master(p.root, "m1", [BUTTON, ICON])
        box = {"name": "icon", "xmin": 1, "ymin": 2, "xmax": 30, "ymax": 40}
        (p.root / "object.json").write_text(json.dumps({**box, "difficult": True, "pose": "Rear"}))
        build_project(w, "own")
        assert objects_of(p.build_dir / "Annotations" / "own_000001.xml") == [
            {"name": "icon", "pose": "Rear", "truncated": "0", "difficult": "1", "note": None}
        ]
        # the master's object, its flags overridden by the script's own
        (p.root / "object.json").write_text(json.dumps({**box, "master": "m1", "object": 1, "truncated": 0}))
        build_project(w, "own", force=True)
        assert objects_of(p.build_dir / "Annotations" / "own_000001.xml") == [
            {"name": "icon", "pose": "Left", "truncated": "0", "difficult": "1", "note": "worn"}
        ]
        (p.root / "object.json").write_text(json.dumps({**box, "master": "m1", "object": 3}))
        with pytest.raises(InputError, match="names object 3 of master 'm1', but it has 2 object"):
            build_project(w, "own", force=True)
    finally:
        w.close()
