"""Importing label sets and detection runs into the store: mapping, checks, transactions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import CLASSES, add_items
from tuiops.errors import Cancelled, ConflictError, InputError, StoreError, UsageError
from tuiops.ops.base import CancelToken
from tuiops.ops.labels import (
    ImportRejected,
    Tolerance,
    detect_format,
    import_detections,
    import_labels,
)
from tuiops.workspace import Workspace

W, H = 640, 480


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    return folder


def boxes_of(ws, name: str) -> list[tuple]:
    return ws.store.execute(
        "SELECT i.key, l.class_id, round(l.x1, 3), round(l.y1, 3), round(l.x2, 3), round(l.y2, 3) "
        "FROM labels l JOIN label_sets s ON s.id = l.set_id JOIN items i ON i.id = l.item_id "
        "WHERE s.name = ? ORDER BY l.id",
        (name,),
    ).fetchall()


def counts(ws) -> tuple[int, int, int]:
    s = ws.store
    return (
        s.one("SELECT count(*) FROM label_sets"),
        s.one("SELECT count(*) FROM set_images"),
        s.one("SELECT count(*) FROM labels"),
    )


@pytest.fixture
def pool(ws):
    add_items(ws, [f"danbooru_{i}" for i in range(1, 6)], width=W, height=H)
    return ws


def test_yolo_import_positions_order_and_negatives(pool, tmp_path):
    src = write(
        tmp_path / "labels",
        {
            "danbooru_1.txt": "0 0.500000 0.500000 0.100000 0.200000\n3 0.250000 0.250000 0.100000 0.100000\n",
            "danbooru_2.txt": "",
        },
    )
    res = import_labels(pool, src, "master", "yolo")
    assert (res.images, res.boxes, res.problem_count, res.imported) == (2, 2, 0, True)
    assert boxes_of(pool, "master") == [
        ("danbooru_1", 0, 288.0, 192.0, 352.0, 288.0),
        ("danbooru_1", 3, 128.0, 96.0, 192.0, 144.0),
    ]
    assert pool.store.read_set_images("master")["key"].to_list() == ["danbooru_1", "danbooru_2"]
    src_rows = pool.store.execute("SELECT source FROM set_images ORDER BY item_id").fetchall()
    assert src_rows == [("danbooru_1.txt",), ("danbooru_2.txt",)]
    job = pool.store.execute("SELECT kind, status FROM jobs").fetchall()
    assert job == [("labels.import", "done")]


def test_reordered_classes_txt_lands_on_workspace_ids(pool, tmp_path):
    # labelImg re-ordered the file: "hand" first, "head" second.
    src = write(
        tmp_path / "l",
        {
            "classes.txt": "hand\nhead\n",
            "danbooru_1.txt": "0 0.5 0.5 0.1 0.1\n1 0.25 0.25 0.1 0.1\n",
        },
    )
    res = import_labels(pool, src, "master")
    assert res.names_file.endswith("classes.txt")
    assert [b[1] for b in boxes_of(pool, "master")] == [CLASSES.index("hand"), CLASSES.index("head")]
    assert pool.classes == CLASSES


def test_data_yaml_names_given_explicitly(pool, tmp_path):
    write(tmp_path, {"ds/data.yaml": "names:\n  0: text\n  1: head\n"})
    src = write(tmp_path / "l", {"danbooru_1.txt": "0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.2 0.2\n"})
    import_labels(pool, src, "master", classes_file=tmp_path / "ds/data.yaml")
    assert [b[1] for b in boxes_of(pool, "master")] == [4, 0]


def test_unknown_class_name_is_an_error_unless_add_classes(pool, tmp_path):
    src = write(
        tmp_path / "l",
        {
            "classes.txt": "head\ncat\nunused_dog\n",
            "danbooru_1.txt": "0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.2 0.2\n",
        },
    )
    with pytest.raises(InputError, match=r"not in the workspace class map: 'cat' \(1 box"):
        import_labels(pool, src, "master")
    assert counts(pool) == (0, 0, 0)
    res = import_labels(pool, src, "master", add_classes=True)
    assert res.added_classes == ["cat", "unused_dog"]
    assert pool.classes == [*CLASSES, "cat", "unused_dog"]
    assert "unused_dog" in (pool.root / "tuiops.toml").read_text()
    assert pool.store.class_names() == [*CLASSES, "cat", "unused_dog"]
    assert [b[1] for b in boxes_of(pool, "master")] == [0, 5]


def test_unknown_class_id_without_names_file(pool, tmp_path):
    src = write(tmp_path / "l", {"danbooru_1.txt": "7 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1\n"})
    res = import_labels(pool, src, "master", "yolo")
    assert res.problem_lines() == [
        f"{src}/danbooru_1.txt:1: unknown class id 7: the workspace class map has ids 0..4 "
        "(`tuiops classes list`); give the file's classes.txt with --classes"
    ]
    assert res.boxes == 1 and res.boxes_skipped == 1


def test_class_id_beyond_classes_txt(pool, tmp_path):
    src = write(tmp_path / "l", {"classes.txt": "head\nhand\n", "danbooru_1.txt": "2 0.5 0.5 0.1 0.1\n"})
    with pytest.raises(ImportRejected) as info:
        import_labels(pool, src, "master", "yolo")
    res = info.value.result
    assert res.problem_lines()[1] == f"{src}/danbooru_1.txt:1: class id 2 is not in classes.txt (ids 0..1)"
    assert res.problem_lines()[0].startswith(f"{src}/danbooru_1.txt: no valid box: every box had a problem")


def test_bad_inputs_of_a_real_pool_are_reported_and_skipped(pool, tmp_path):
    src = write(
        tmp_path / "l",
        {
            "danbooru_1.txt": "\n".join(
                [
                    "0 0.5 0.5 0.1 0.1",  # good
                    "0 0.5 0.5 0.1",  # field count
                    "0 nan 0.5 0.1 0.1",  # NaN
                    "0 0.5 0.5 -0.1 0.1",  # w <= 0 (x2 < x1)
                    "0 1.2 0.5 0.1 0.1",  # outside the image
                    "0 0.0 0.5 0.003 0.1",  # 0.96 px outside: within tolerance, kept
                    "",
                ]
            ),
            "danbooru_2.txt": b"0 0.5 0.5 0.1 0.1\n\xff\n",  # not UTF-8
            "danbooru_99.txt": "0 0.5 0.5 0.1 0.1\n",  # label without an image
            "notes_about_set.txt": "hello\n",  # no key at all
            "danbooru_3.txt": "0 0.5 0.5 0.1 0.1\n",
            "sub/danbooru_3_v2.txt": "1 0.5 0.5 0.1 0.1\n",  # second file for key danbooru_3
        },
    )
    res = import_labels(pool, src, "master", "yolo")
    lines = [line.removeprefix(f"{src}/") for line in res.problem_lines()]
    assert lines[0] == "danbooru_1.txt:2: expected 5 fields (class cx cy w h), found 4"
    assert lines[1] == "danbooru_1.txt:3: NaN or infinite number"
    assert lines[2].startswith("danbooru_1.txt:4: width and height must be positive")
    assert lines[3].startswith(
        "danbooru_1.txt:5: box (736.0, 216.0, 800.0, 264.0) lies outside the 640x480 image"
    )
    assert lines[4].startswith("danbooru_2.txt: not UTF-8 text: byte 0xff at offset 18 (line 2)")
    assert lines[5].startswith("danbooru_99.txt: label without an image: no image with key 'danbooru_99'")
    assert "`tuiops scan`" in lines[5]
    assert "(the name has no image key)" in lines[6]
    assert lines[7] == (
        "sub/danbooru_3_v2.txt: another label file has the same image key 'danbooru_3': "
        "danbooru_3.txt (this one is skipped)"
    )
    assert len(lines) == 8
    assert (res.images, res.boxes, res.files_skipped) == (2, 3, 4)
    kept = boxes_of(pool, "master")
    assert kept[1] == ("danbooru_1", 0, -0.96, 216.0, 0.96, 264.0)


def test_tolerance_is_configurable(pool, tmp_path):
    src = write(tmp_path / "l", {"danbooru_1.txt": "0 0.0203125 0.5 0.05 0.1\n"})  # x1 = -3 px
    res = import_labels(pool, src, "a", "yolo")
    assert res.boxes == 1  # 0.5% of 640 = 3.2 px
    with pytest.raises(ImportRejected) as info:  # its only box is out: nothing left to import
        import_labels(pool, src, "b", "yolo", tolerance=Tolerance.parse("2px"))
    assert "tolerance (0%,2px)" in info.value.result.problem_lines()[1]
    assert Tolerance.parse("1%") == Tolerance(1.0, 0.0)
    assert Tolerance.parse("0.5%,3px") == Tolerance(0.5, 3.0)
    with pytest.raises(UsageError):
        Tolerance.parse("lots")


def test_strict_rejects_everything_and_stores_nothing(pool, tmp_path):
    src = write(tmp_path / "l", {"danbooru_1.txt": "0 0.5 0.5 0.1 0.1\n", "danbooru_2.txt": "0 0.5 0.5\n"})
    with pytest.raises(ImportRejected) as info:
        import_labels(pool, src, "master", "yolo", strict=True)
    lines = info.value.result.problem_lines()
    assert lines[1:] == [f"{src}/danbooru_2.txt:1: expected 5 fields (class cx cy w h), found 3"]
    assert lines[0].startswith(f"{src}/danbooru_2.txt: no valid box")
    assert info.value.exit_code == 4
    assert counts(pool) == (0, 0, 0)
    assert pool.store.execute("SELECT status FROM jobs").fetchall() == [("failed",)]


def test_existing_name_needs_replace(pool, tmp_path):
    src = write(tmp_path / "l", {"danbooru_1.txt": "0 0.5 0.5 0.1 0.1\n"})
    import_labels(pool, src, "master", "yolo")
    with pytest.raises(ConflictError, match="exists already"):
        import_labels(pool, src, "master", "yolo")
    write(src, {"danbooru_2.txt": "1 0.5 0.5 0.1 0.1\n"})
    res = import_labels(pool, src, "master", "yolo", replace=True)
    assert res.images == 2 and counts(pool) == (1, 2, 2)


def test_a_failure_half_way_leaves_the_store_unchanged(pool, tmp_path):
    src = write(tmp_path / "l", {"danbooru_1.txt": "0 0.5 0.5 0.1 0.1\n"})
    import_labels(pool, src, "master", "yolo")
    before = boxes_of(pool, "master")
    # The store refuses the third box: the set header and images were already written.
    pool.store.execute(
        "CREATE TRIGGER refuse_third AFTER INSERT ON labels "
        "WHEN (SELECT count(*) FROM labels WHERE set_id = NEW.set_id) >= 3 "
        "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    )
    write(src, {"danbooru_2.txt": "1 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1\n"})
    with pytest.raises(StoreError, match="disk on fire"):
        import_labels(pool, src, "master", "yolo", replace=True)
    assert counts(pool) == (1, 1, 1)
    assert boxes_of(pool, "master") == before


def test_cancel_stores_nothing(pool, tmp_path):
    src = write(tmp_path / "l", {f"danbooru_{i}.txt": "0 0.5 0.5 0.1 0.1\n" for i in range(1, 6)})
    token = CancelToken()

    def on_progress(ev):
        if ev.done >= 2:
            token.cancel()

    with pytest.raises(Cancelled):
        import_labels(pool, src, "master", "yolo", progress=on_progress, cancel=token)
    assert counts(pool) == (0, 0, 0)
    assert pool.store.execute("SELECT status FROM jobs").fetchall() == [("cancelled",)]


def test_nothing_to_import(pool, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no \.txt label files found"):
        import_labels(pool, tmp_path / "empty", "master", "yolo")
    src = write(tmp_path / "l", {"danbooru_77.txt": "0 0.5 0.5 0.1 0.1\n"})
    with pytest.raises(InputError, match="all 1 file"):
        import_labels(pool, src, "master", "yolo")


def test_detect_format(tmp_path):
    assert detect_format(write(tmp_path / "y", {"a.txt": "", "classes.txt": ""})) == "yolo"
    assert detect_format(write(tmp_path / "v", {"a.xml": "", "classes.txt": ""})) == "voc"
    assert detect_format(write(tmp_path, {"c.json": ""}) / "c.json") == "coco"
    with pytest.raises(UsageError, match="both"):
        detect_format(write(tmp_path / "m", {"a.xml": "", "b.txt": ""}))


VOC = """<annotation>
\t<filename>{key}.jpg</filename>
\t<size>
\t\t<width>{w}</width>
\t\t<height>{h}</height>
\t\t<depth>3</depth>
\t</size>
{objects}</annotation>
"""


def voc_file(key: str, objects: list[str], w: int = W, h: int = H) -> str:
    return VOC.format(key=key, w=w, h=h, objects="".join(objects))


def obj(name: str | None, box: tuple, difficult: int = 0) -> str:
    name_el = f"\t\t<name>{name}</name>\n" if name is not None else ""
    coords = "".join(
        f"\t\t\t<{k}>{v}</{k}>\n" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True)
    )
    return f"\t<object>\n{name_el}\t\t<difficult>{difficult}</difficult>\n\t\t<bndbox>\n{coords}\t\t</bndbox>\n\t</object>\n"


def test_voc_import_checks_and_extra(pool, tmp_path):
    src = write(
        tmp_path / "voc",
        {
            "danbooru_1.xml": voc_file(
                "danbooru_1",
                [
                    obj("hand", (10, 20, 100, 200), difficult=1),
                    obj(None, (1, 2, 3, 4)),
                    obj("head", (10, "abc", 100, 200)),
                    obj("head", (100, 20, 10, 200)),
                    obj("head", (10.5, 20, 650, 200)),
                ],
            ),
            "danbooru_2.xml": voc_file("danbooru_2", [obj("head", (1, 2, 3, 4))], w=H, h=W),
            "danbooru_3.xml": "<html/>",
            "danbooru_4.xml": "not xml at all",
        },
    )
    res = import_labels(pool, src, "voc", "voc")
    lines = [line.removeprefix(f"{src}/") for line in res.problem_lines()]
    assert lines == [
        "danbooru_1.xml:18: object 2: the object has no <name>",
        "danbooru_1.xml:27: object 3: <ymin> is not a number: 'abc'",
        "danbooru_1.xml:37: object 4: empty or inverted box (100.0, 20.0, 10.0, 200.0): needs x1 < x2 and y1 < y2",
        "danbooru_1.xml:47: object 5: box (10.5, 20.0, 650.0, 200.0) lies outside the 640x480 image by more than "
        "the tolerance (0.5%,2px); fix the box or pass --tolerance",
        "danbooru_2.xml: size 480x640 in the file differs from the pool image's 640x480 "
        "(rotated? check the image's EXIF orientation)",
        "danbooru_3.xml: not a Pascal VOC annotation (the root element is <html>, not <annotation>)",
        "danbooru_4.xml: not valid XML: syntax error: line 1, column 0",
    ]
    assert boxes_of(pool, "voc") == [("danbooru_1", 3, 10.0, 20.0, 100.0, 200.0)]
    q = pool.store.one("SELECT json_extract(extra, '$.difficult') FROM labels")
    assert q == 1


def test_voc_unknown_name(pool, tmp_path):
    src = write(tmp_path / "voc", {"danbooru_1.xml": voc_file("danbooru_1", [obj("cat", (1, 2, 3, 4))])})
    with pytest.raises(InputError, match=r"'cat' \(1 box, first in danbooru_1\.xml"):
        import_labels(pool, src, "voc", "voc")
    assert import_labels(pool, src, "voc", "voc", add_classes=True).added_classes == ["cat"]
    assert pool.store.one("SELECT class_id FROM labels") == len(CLASSES)


def test_coco_import(pool, tmp_path):
    doc = {
        "images": [
            {"id": 1, "file_name": "imgs/danbooru_1.jpg", "width": W, "height": H},
            {"id": 2, "file_name": "danbooru_2.png", "width": W, "height": H},
            {"id": 3, "file_name": "danbooru_404.jpg", "width": W, "height": H},
            {"id": 4, "file_name": "danbooru_3.jpg", "width": 100, "height": 100},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 5, "bbox": [10, 20, 30, 40], "area": 900, "iscrowd": 1},
            {"id": 11, "image_id": 3, "category_id": 5, "bbox": [10, 20, 30, 40]},
            {"id": 12, "image_id": 1, "category_id": 5, "bbox": [10, 20, 0, 40]},
        ],
        "categories": [{"id": 5, "name": "hand"}],
    }
    p = tmp_path / "c.json"
    p.write_text(json.dumps(doc))
    res = import_labels(pool, p, "coco")
    assert res.images == 2 and res.boxes == 1
    assert res.problem_lines() == [
        f"{p}: image 'danbooru_3.jpg': size 100x100 in the file differs from the pool image's 640x480",
        f"{p}: image 'danbooru_404.jpg': label without an image: no image with key 'danbooru_404' in the "
        "store; scan the pool that holds it first (`tuiops scan`)",
        f"{p}: annotations[2] (id 12): empty or inverted box (10.0, 20.0, 10.0, 60.0): needs x1 < x2 and y1 < y2",
    ]
    assert boxes_of(pool, "coco") == [("danbooru_1", 3, 10.0, 20.0, 40.0, 60.0)]
    assert pool.store.one("SELECT json_extract(extra, '$.iscrowd') FROM labels") == 1


def test_detections_yolo_with_lineage(pool, tmp_path):
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"weights" * 100)
    src = write(
        tmp_path / "pred",
        {
            "danbooru_1.txt": "0 0.5 0.5 0.1 0.1 0.875\n1 0.5 0.5 0.2 0.2\n",
            "danbooru_2.txt": "3 0.5 0.5 0.2 0.2 0.25\n",
        },
    )
    label = write(tmp_path / "gt", {f"danbooru_{i}.txt": "" for i in range(1, 5)})
    import_labels(pool, label, "gt", "yolo")
    res = import_detections(
        pool, src, "v41", "yolo", weights=weights, conf=0.25, iou=0.7, epoch=30, covers="gt"
    )
    assert res.problem_lines() == [
        f"{src}/danbooru_1.txt:2: expected 6 fields (class cx cy w h conf), found 5: no confidence column (a label file?)"
    ]
    assert res.images == 4 and res.boxes == 2
    dets = pool.store.read_detections("v41")
    assert dets["score"].to_list() == [0.875, 0.25]
    row = pool.store.execute("SELECT weights, weights_sha256, conf, iou, epoch, format FROM runs").fetchone()
    assert row == (
        str(weights.resolve()),
        hashlib.sha256(weights.read_bytes()).hexdigest(),
        0.25,
        0.7,
        30,
        "yolo",
    )


def test_detections_coco_results_with_images_file(pool, tmp_path):
    images = {
        "images": [{"id": 1, "file_name": "danbooru_1.jpg", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "head"}, {"id": 2, "name": "text"}],
    }
    (tmp_path / "images.json").write_text(json.dumps(images))
    results = [
        {"image_id": 1, "category_id": 2, "bbox": [1.5, 2.25, 30.125, 40], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": float("nan")},
    ]
    (tmp_path / "res.json").write_text(json.dumps(results))
    res = import_detections(pool, tmp_path / "res.json", "r", images_file=tmp_path / "images.json")
    assert res.problem_lines() == [f"{tmp_path / 'res.json'}: results[1]: the confidence is NaN or infinite"]
    dets = pool.store.read_detections("r")
    assert dets.select("class_id", "x1", "y1", "x2", "y2", "score").rows() == [
        (4, 1.5, 2.25, 31.625, 42.25, 0.9)
    ]
    with pytest.raises(UsageError, match="--images is for COCO"):
        import_detections(pool, tmp_path, "r2", "yolo", images_file=tmp_path / "images.json")


def test_workspace_without_the_image_size(ws, tmp_path):
    add_items(ws, ["danbooru_1"], width=None, height=None)
    src = write(tmp_path / "l", {"danbooru_1.txt": "0 0.5 0.5 0.1 0.1\n"})
    with pytest.raises(InputError):
        import_labels(ws, src, "m", "yolo")
    assert isinstance(ws, Workspace)


def test_fresh_workspace_takes_the_class_order_of_the_names_file(tmp_path):
    ws = Workspace.init(tmp_path / "fresh")
    try:
        add_items(ws, ["danbooru_1"], width=W, height=H)
        src = write(
            tmp_path / "l",
            {"classes.txt": "cat\ndog\nbird\n", "danbooru_1.txt": "2 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.2 0.2\n"},
        )
        res = import_labels(ws, src, "m", "yolo", add_classes=True)
        assert res.added_classes == ["cat", "dog", "bird"] and ws.classes == ["cat", "dog", "bird"]
        assert [b[1] for b in boxes_of(ws, "m")] == [2, 0]
    finally:
        ws.close()


# -- an empty class map takes the first file's classes -----------------------------------------------
@pytest.fixture
def fresh(tmp_path):
    ws = Workspace.init(tmp_path / "fresh")
    try:
        add_items(ws, ["danbooru_1", "danbooru_2"], width=W, height=H)
        yield ws
    finally:
        ws.close()


def test_an_empty_class_map_takes_the_classes_txt_order(fresh, tmp_path):
    src = write(
        tmp_path / "l",
        {"classes.txt": "cat\ndog\nbird\n", "danbooru_1.txt": "2 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.2 0.2\n"},
    )
    res = import_labels(fresh, src, "m", "yolo")
    assert res.added_classes == ["cat", "dog", "bird"] and res.classes_adopted
    assert fresh.classes == ["cat", "dog", "bird"] and fresh.store.class_names() == ["cat", "dog", "bird"]
    assert Workspace.open(fresh.root).classes == ["cat", "dog", "bird"]
    assert [b[1] for b in boxes_of(fresh, "m")] == [2, 0]
    # afterwards the map only grows on request, and by name
    more = write(tmp_path / "l2", {"classes.txt": "bird\nfish\n", "danbooru_2.txt": "1 0.5 0.5 0.1 0.1\n"})
    with pytest.raises(InputError, match="'fish'"):
        import_labels(fresh, more, "m2", "yolo")
    res = import_labels(fresh, more, "m2", "yolo", add_classes=True)
    assert not res.classes_adopted and fresh.classes == ["cat", "dog", "bird", "fish"]


def test_an_empty_class_map_takes_the_data_yaml_names(fresh, tmp_path):
    src = write(
        tmp_path / "l",
        {"data.yaml": "names:\n  0: zebra\n  1: ant\n", "danbooru_1.txt": "1 0.5 0.5 0.1 0.1\n"},
    )
    import_labels(fresh, src, "m", "yolo")
    assert fresh.classes == ["zebra", "ant"] and [b[1] for b in boxes_of(fresh, "m")] == [1]


def test_an_empty_class_map_takes_the_coco_categories_in_their_order(fresh, tmp_path):
    doc = {
        "images": [{"id": 40, "file_name": "danbooru_1.jpg", "width": W, "height": H}],
        "annotations": [
            {"id": 1, "image_id": 40, "category_id": 3, "bbox": [1, 2, 3, 4]},
            {"id": 2, "image_id": 40, "category_id": 11, "bbox": [5, 6, 7, 8]},
        ],
        "categories": [{"id": 11, "name": "kanji"}, {"id": 3, "name": "button"}, {"id": 7, "name": "unused"}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(doc))
    res = import_labels(fresh, tmp_path / "gt.json", "gt")
    assert fresh.classes == ["kanji", "button", "unused"] and res.classes_adopted
    assert [b[1] for b in boxes_of(fresh, "gt")] == [1, 0]


def test_an_empty_class_map_takes_voc_names_as_they_first_appear(fresh, tmp_path):
    src = write(
        tmp_path / "voc",
        {
            "danbooru_1.xml": voc_file("danbooru_1", [obj("tail", (1, 2, 30, 40)), obj("ear", (1, 2, 3, 4))]),
            "danbooru_2.xml": voc_file("danbooru_2", [obj("eye", (1, 2, 3, 4)), obj("tail", (1, 2, 3, 4))]),
        },
    )
    import_labels(fresh, src, "v", "voc")
    assert fresh.classes == ["tail", "ear", "eye"]


def test_an_empty_class_map_cannot_name_bare_yolo_ids(fresh, tmp_path):
    src = write(tmp_path / "l", {"danbooru_1.txt": "0 0.5 0.5 0.1 0.1\n"})
    with pytest.raises(ImportRejected) as info:
        import_labels(fresh, src, "m", "yolo")
    assert "the workspace class map has no classes" in info.value.result.problem_lines()[1]
    assert fresh.classes == []


def test_a_rejected_first_import_leaves_the_map_empty(fresh, tmp_path):
    src = write(
        tmp_path / "l", {"classes.txt": "cat\n", "danbooru_1.txt": "0 0.5 0.5 0.1\n0 0.5 0.5 0.1 0.1\n"}
    )
    with pytest.raises(ImportRejected):
        import_labels(fresh, src, "m", "yolo", strict=True)
    assert fresh.classes == [] and fresh.store.class_names() == []


# -- a file whose every box is bad is not an image without objects ------------------------------------
def test_yolo_file_with_only_bad_lines_is_left_out(pool, tmp_path):
    src = write(
        tmp_path / "l",
        {
            "danbooru_1.txt": "0 0.5 0.5 0.1 0.1\n",
            "danbooru_2.txt": "0 0.5 0.5\n7.5 0.5 0.5 0.1 0.1\n",  # every line bad
            "danbooru_3.txt": "",  # an image with no objects
            "danbooru_4.txt": "\n  \n\r\n",  # blank lines only: also an image with no objects
            "danbooru_5.txt": "0 0.5 0.5 0.1 0.1\n0 0.5 0.5\n",  # one good line: kept with it
        },
    )
    res = import_labels(pool, src, "m", "yolo")
    lines = [line.removeprefix(f"{src}/") for line in res.problem_lines()]
    assert lines[0].startswith("danbooru_2.txt: no valid box: every box had a problem (listed)")
    assert lines[1] == "danbooru_2.txt:1: expected 5 fields (class cx cy w h), found 3"
    assert lines[2].startswith("danbooru_2.txt:2: ")
    assert lines[3] == "danbooru_5.txt:2: expected 5 fields (class cx cy w h), found 3"
    assert len(lines) == 4
    assert (res.images, res.boxes, res.images_without_boxes, res.files_skipped) == (4, 2, 1, 0)
    assert res.to_dict()["images_without_boxes"] == 1
    in_set = pool.store.execute(
        "SELECT i.key FROM set_images si JOIN items i ON i.id = si.item_id ORDER BY i.key"
    ).fetchall()
    assert [k for (k,) in in_set] == ["danbooru_1", "danbooru_3", "danbooru_4", "danbooru_5"]


def test_voc_file_with_only_bad_objects_is_left_out(pool, tmp_path):
    src = write(
        tmp_path / "voc",
        {
            "danbooru_1.xml": voc_file(
                "danbooru_1", [obj("head", (100, 20, 10, 200)), obj(None, (1, 2, 3, 4))]
            ),
            "danbooru_2.xml": voc_file("danbooru_2", []),
            "danbooru_3.xml": voc_file("danbooru_3", [obj("head", (1, 2, 3, 4))]),
        },
    )
    res = import_labels(pool, src, "v", "voc")
    assert res.problem_lines()[0].startswith(f"{src}/danbooru_1.xml: no valid box")
    assert (res.images, res.boxes, res.images_without_boxes) == (2, 1, 1)


def test_coco_image_whose_annotations_are_all_bad_is_left_out(pool, tmp_path):
    doc = {
        "images": [
            {"id": 1, "file_name": "danbooru_1.jpg", "width": W, "height": H},
            {"id": 2, "file_name": "danbooru_2.jpg", "width": W, "height": H},
            {"id": 3, "file_name": "danbooru_3.jpg", "width": W, "height": H},
            {"id": 4, "file_name": "danbooru_4.jpg", "width": W, "height": H},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40]},
            {"id": 11, "image_id": 2, "category_id": 1, "bbox": ["a", 20, 30, 40]},  # bad when read
            {"id": 12, "image_id": 2, "category_id": 1, "bbox": [900, 20, 30, 40]},  # outside the image
            {"id": 13, "image_id": 4, "category_id": 99, "bbox": [10, 20, 30, 40]},  # unknown category
        ],
        "categories": [{"id": 1, "name": "head"}],
    }
    p = tmp_path / "c.json"
    p.write_text(json.dumps(doc))
    res = import_labels(pool, p, "c")
    lines = res.problem_lines()
    assert (
        f"{p}: image 'danbooru_2.jpg': no valid box: every box had a problem (listed), so the image is not added; an empty label file (or only blank lines) marks an image with no objects"
        in lines
    )
    assert any(line.startswith(f"{p}: image 'danbooru_4.jpg': no valid box") for line in lines)
    assert (res.images, res.boxes, res.images_without_boxes) == (2, 1, 2)  # danbooru_3 has no objects


def test_covers_does_not_bring_back_an_image_whose_detections_were_all_bad(pool, tmp_path):
    gt = write(tmp_path / "gt", {f"danbooru_{i}.txt": "0 0.5 0.5 0.1 0.1\n" for i in (1, 2, 3)})
    import_labels(pool, gt, "gt", "yolo")
    pred = write(
        tmp_path / "pred",
        {"danbooru_1.txt": "0 0.5 0.5 0.1 0.1 0.9\n", "danbooru_2.txt": "0 0.5 0.5 0.1 0.1 7\n"},
    )
    res = import_detections(pool, pred, "r", "yolo", covers="gt")
    assert res.images_without_boxes == 1
    processed = pool.store.execute(
        "SELECT i.key FROM run_images ri JOIN items i ON i.id = ri.item_id ORDER BY i.key"
    ).fetchall()
    assert [k for (k,) in processed] == ["danbooru_1", "danbooru_3"]


# -- more boxes on one image than the store holds -----------------------------------------------------
def test_an_image_with_too_many_boxes_is_named_by_file_and_image(pool, tmp_path):
    line = "0 0.5 0.5 0.1 0.1\n"
    src = write(
        tmp_path / "l",
        {"danbooru_1.txt": line * 4097, "danbooru_2.txt": line * 4096, "danbooru_3.txt": line},
    )
    res = import_labels(pool, src, "m", "yolo")
    assert res.problem_lines() == [
        f"{src}/danbooru_1.txt: the image has 4097 boxes; a label set holds at most 4096 per image: "
        "the image is skipped"
    ]
    assert (res.images, res.boxes, res.files_skipped, res.boxes_skipped) == (2, 4097, 1, 4097)
    with pytest.raises(ImportRejected):
        import_labels(pool, src, "s", "yolo", strict=True)


def test_a_coco_image_with_too_many_boxes_is_named_by_file_and_image(pool, tmp_path):
    doc = {
        "images": [
            {"id": 7, "file_name": "crowd/danbooru_1.jpg", "width": W, "height": H},
            {"id": 8, "file_name": "danbooru_2.jpg", "width": W, "height": H},
        ],
        "annotations": [
            {"id": i, "image_id": 7 if i <= 4100 else 8, "category_id": 1, "bbox": [1, 2, 3, 4]}
            for i in range(1, 4102)
        ],
        "categories": [{"id": 1, "name": "head"}],
    }
    p = tmp_path / "gt.json"
    p.write_text(json.dumps(doc))
    res = import_labels(pool, p, "c")
    assert res.problem_lines() == [
        f"{p}: image 'crowd/danbooru_1.jpg' has 4100 boxes; a label set holds at most 4096 per image: "
        "the image is skipped"
    ]
    assert (res.images, res.boxes) == (1, 1)


def test_the_store_names_the_image_with_too_many_boxes(pool):
    import polars as pl

    item = pool.store.one("SELECT id FROM items WHERE key = 'danbooru_2'")
    boxes = pl.DataFrame(
        {"item_id": [item] * 4097, "class_id": [0] * 4097, "x1": [1.0] * 4097, "y1": [1.0] * 4097}
    ).with_columns(x2=pl.lit(5.0), y2=pl.lit(5.0))
    images = pl.DataFrame({"item_id": [item], "source": ["a/danbooru_2.txt"]})
    with pytest.raises(InputError, match=r"image 'danbooru_2' \(from a/danbooru_2\.txt\) has 4097 boxes"):
        pool.store.create_label_set("big", boxes, images)
