"""Round trips through the store: YOLO → store → YOLO and VOC → store → VOC reproduce the files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CLASSES, add_items
from tests.test_formats_voc import LABELIMG, RICH
from tuiops.ops.labels import export_detections, export_labels, import_detections, import_labels

W, H = 640, 480


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write_tree(folder: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return folder


@pytest.fixture
def pool(ws):
    add_items(ws, [f"danbooru_{i}" for i in range(1, 9)], width=W, height=H)
    return ws


LABELIMG_YOLO = {
    "classes.txt": "".join(f"{c}\n" for c in CLASSES),
    "danbooru_1.txt": "0 0.500000 0.500000 0.100000 0.200000\n3 0.250000 0.750000 0.123456 0.098765\n",
    "danbooru_2.txt": "",
    "danbooru_3.txt": "4 0.912500 0.087500 0.175000 0.175000\n",
}

MIXED_YOLO = {
    "classes.txt": "".join(f"{c}\n" for c in CLASSES),
    "train/danbooru_4.txt": "0 0.5 0.5 1 1\n2 0.0123457 0.5 0.01 0.1\n",  # ultralytics %g
    "train/danbooru_5.txt": "0 0.123 0.456 0.100 0.200\r\n1 0.500 0.500 0.100 0.100\r\n",  # %.3f, CRLF
    "val/danbooru_6.txt": "\ufeff1 0.500000 0.500000 0.100000 0.200000",  # BOM, no final newline
    "val/danbooru_7.txt": "0 .5 .5 .1 .1\n1  0.5\t0.5 0.1 0.1\n2 5e-1 0.5 0.1 0.1\n3.0 0.5 0.5 0.1 0.1\n",
    "val/danbooru_8.txt": "",
}


@pytest.mark.parametrize("files", [LABELIMG_YOLO, MIXED_YOLO], ids=["labelimg", "mixed"])
def test_yolo_round_trip_is_byte_identical(pool, tmp_path, files):
    src = write_tree(tmp_path / "src", files)
    res = import_labels(pool, src, "master", "yolo")
    assert res.problem_count == 0
    out = export_labels(pool, "master", "yolo", tmp_path / "out")
    assert out.files == len(files)
    assert tree(tmp_path / "out") == tree(src)


def test_yolo_detections_round_trip(pool, tmp_path):
    files = {
        "danbooru_1.txt": "0 0.5 0.5 0.1 0.1 0.912345\n3 0.25 0.75 0.2 0.2 0.5\n",
        "danbooru_2.txt": "1 0.500000 0.500000 0.100000 0.100000 0.870000\n",
    }
    src = write_tree(tmp_path / "src", files)
    import_detections(pool, src, "v41", "yolo")
    export_detections(pool, "v41", "yolo", tmp_path / "out")
    got = tree(tmp_path / "out")
    assert got.pop("classes.txt") == "".join(f"{c}\n" for c in CLASSES).encode()
    assert got == tree(src)


def test_voc_round_trip_is_byte_identical(pool, tmp_path):
    files = {
        "danbooru_1.xml": LABELIMG,
        "sub/danbooru_2.xml": RICH.replace("800", "640").replace("600", "480"),
        "danbooru_3.xml": LABELIMG.replace("danbooru_1", "danbooru_3").split("\t<object>")[0]
        + "</annotation>\n",
    }
    src = write_tree(tmp_path / "src", files)
    res = import_labels(pool, src, "voc", "voc")
    assert res.problem_count == 0 and res.boxes == 3
    export_labels(pool, "voc", "voc", tmp_path / "out")
    assert tree(tmp_path / "out") == tree(src)


def test_store_edits_show_up_in_the_export(pool, tmp_path):
    src = write_tree(tmp_path / "src", {"danbooru_1.xml": LABELIMG, "danbooru_1.txt": "0 .5 .5 .1 .1\n"})
    import_labels(pool, src, "voc", "voc")
    import_labels(pool, src, "yolo", "yolo")
    pool.store.execute(
        "UPDATE labels SET x2 = x2 + 6.4, class_id = 4 WHERE id IN (SELECT min(id) FROM labels GROUP BY set_id)"
    )
    export_labels(pool, "voc", "voc", tmp_path / "voc")
    export_labels(pool, "yolo", "yolo", tmp_path / "yolo")
    xml = (tmp_path / "voc/danbooru_1.xml").read_text()
    assert (
        "<name>text</name>" in xml and "<xmax>106.4</xmax>" in xml and "<xmax>30</xmax>" in xml
    )  # never rounded
    assert (tmp_path / "yolo/danbooru_1.txt").read_text() == "4 0.505 0.5 0.11 0.1\n"


def test_coco_round_trip_keeps_fields(pool, tmp_path):
    doc = {
        "images": [
            {"id": 17, "file_name": "train/danbooru_1.jpg", "width": W, "height": H, "license": 3},
            {"id": 18, "file_name": "danbooru_2.jpg", "width": W, "height": H},
        ],
        "annotations": [
            {
                "id": 101,
                "image_id": 17,
                "category_id": 2,
                "bbox": [473.07, 395.93, 38.65, 28.67],
                "area": 702.1,
                "iscrowd": 0,
                "segmentation": [[473.07, 395.93, 511.72, 395.93, 511.72, 424.6]],
            },
            {
                "id": 102,
                "image_id": 17,
                "category_id": 1,
                "bbox": [10, 20, 30, 40],
                "area": 1200,
                "iscrowd": 1,
            },
        ],
        "categories": [{"id": 1, "name": "head"}, {"id": 2, "name": "hand"}],
    }
    (tmp_path / "in.json").write_text(json.dumps(doc))
    import_labels(pool, tmp_path / "in.json", "coco")
    export_labels(pool, "coco", "coco", tmp_path / "out.json", ids="source")
    out = json.loads((tmp_path / "out.json").read_text())
    # the file comes back as written: its image, category and annotation ids included (and
    # `segmentation: []` where an annotation had none, as COCO readers expect one)
    assert out == {**doc, "annotations": [{"segmentation": [], **a} for a in doc["annotations"]]}
    export_labels(pool, "coco", "coco", tmp_path / "numbered.json", ids="tuiops")
    numbered = json.loads((tmp_path / "numbered.json").read_text())
    cat = {c["id"]: c["name"] for c in numbered["categories"]}
    assert [c["name"] for c in numbered["categories"]] == CLASSES
    for a, b in zip(numbered["annotations"], doc["annotations"], strict=True):
        name = {1: "head", 2: "hand"}[b["category_id"]]
        assert cat[a.pop("category_id")] == name


def test_coco_export_loads_in_pycocotools_and_pairs_with_results(pool, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    src = write_tree(tmp_path / "src", LABELIMG_YOLO)
    import_labels(pool, src, "gt", "yolo")
    import_detections(
        pool,
        write_tree(
            tmp_path / "pred",
            {k: v.replace("\n", " 0.9\n") for k, v in LABELIMG_YOLO.items() if k != "classes.txt"},
        ),
        "perfect",
        "yolo",
    )
    export_labels(pool, "gt", "coco", tmp_path / "gt.json")
    export_detections(pool, "perfect", "coco", tmp_path / "res.json")
    assert (tmp_path / "res_images.json").is_file()
    gt = COCO(str(tmp_path / "gt.json"))
    dt = gt.loadRes(str(tmp_path / "res.json"))
    ev = COCOeval(gt, dt, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)
    # and back into the store
    res = import_detections(pool, tmp_path / "res.json", "again", images_file=tmp_path / "res_images.json")
    assert res.problem_count == 0
    a = pool.store.read_detections("perfect").drop("id")
    b = pool.store.read_detections("again").drop("id")
    assert a.equals(b)


def test_yolo_to_voc_to_store_keeps_boxes(pool, tmp_path):
    src = write_tree(tmp_path / "src", LABELIMG_YOLO)
    import_labels(pool, src, "y", "yolo")
    export_labels(pool, "y", "voc", tmp_path / "voc")
    import_labels(pool, tmp_path / "voc", "v", "voc")
    a = pool.store.read_labels("y").drop("id")
    b = pool.store.read_labels("v").drop("id")
    assert a.select("item_id", "class_id").equals(b.select("item_id", "class_id"))
    diff = (a.select("x1", "y1", "x2", "y2") - b.select("x1", "y1", "x2", "y2")).max().max_horizontal()[0]
    assert abs(diff) <= 0.5
    assert pool.store.read_set_images("v").height == 3


def test_names_key_flattens_and_a_file_in_the_way_is_a_conflict(pool, tmp_path):
    from tuiops.errors import ConflictError

    src = write_tree(tmp_path / "src", MIXED_YOLO)
    import_labels(pool, src, "m", "yolo")
    export_labels(pool, "m", "yolo", tmp_path / "flat", names="key")
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == [
        "classes.txt",
        *[f"danbooru_{i}.txt" for i in range(4, 9)],
    ]
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / "train").write_text("a file where a folder must go")
    with pytest.raises(ConflictError, match="is a file"):
        export_labels(pool, "m", "yolo", tmp_path / "blocked")
    assert sorted(p.name for p in (tmp_path / "blocked").iterdir()) == ["train"]


def test_an_export_says_what_its_format_cannot_hold(pool, tmp_path, capsys):
    """VOC flags and tags, COCO crowds and segmentations: kept where the format holds them,
    else counted per attribute (and named in the CLI's summary), never dropped without a word."""
    from tuiops.cli import run

    src = write_tree(tmp_path / "src", {"danbooru_2.xml": RICH.replace("800", "640").replace("600", "480")})
    import_labels(pool, src, "voc", "voc")
    assert export_labels(pool, "voc", "voc", tmp_path / "v").not_carried == {}
    lost = {"pose": 1, "occluded": 1, "other_tags": 1}  # difficult and truncated are 0: nothing lost
    assert export_labels(pool, "voc", "yolo", tmp_path / "y").not_carried == lost
    assert export_labels(pool, "voc", "coco", tmp_path / "c.json").not_carried == lost

    doc = {
        "images": [{"id": 5, "file_name": "danbooru_3.jpg", "width": W, "height": H}],
        "annotations": [
            {"id": 1, "image_id": 5, "category_id": 1, "bbox": [10, 20, 30, 40], "iscrowd": 1},
            {
                "id": 2,
                "image_id": 5,
                "category_id": 1,
                "bbox": [1, 2, 3, 4],
                "segmentation": [[1, 2, 4, 2, 4, 6]],
            },
            {"id": 3, "image_id": 5, "category_id": 1, "bbox": [5, 6, 7, 8], "segmentation": []},
        ],
        "categories": [{"id": 1, "name": "head"}],
    }
    (tmp_path / "in.json").write_text(json.dumps(doc))
    import_labels(pool, tmp_path / "in.json", "coco")
    assert export_labels(pool, "coco", "coco", tmp_path / "c2.json").not_carried == {}
    assert export_labels(pool, "coco", "voc", tmp_path / "v2").not_carried == {
        "iscrowd": 1,
        "segmentation": 1,
    }
    code = run(
        [
            "-w",
            str(pool.root),
            "labels",
            "export",
            "--set",
            "coco",
            "--format",
            "yolo",
            "--to",
            str(tmp_path / "y2"),
        ]
    )
    assert code == 0
    assert (
        "warning: yolo cannot hold what some boxes' source states; not written: iscrowd 1, segmentation 1"
        in (capsys.readouterr().out)
    )
