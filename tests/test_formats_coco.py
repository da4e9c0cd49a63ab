"""COCO reader and writer, and the class-name files (classes.txt, data.yaml)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tuiops.errors import InputError, UsageError
from tuiops.formats.classes import find_names_file, map_names, read_classes_txt, read_names_file
from tuiops.formats.coco import annotation_texts, image_entries, read_coco


def _coco(tmp_path, doc, name="instances.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


DOC = {
    "images": [
        {"id": 7, "file_name": "train/danbooru_1.jpg", "width": 640, "height": 480, "license": 2},
        {"id": 8, "file_name": "danbooru_2.jpg", "width": 320, "height": 240},
        {"id": 7, "file_name": "danbooru_3.jpg", "width": 320, "height": 240},
        {"file_name": "danbooru_4.jpg"},
    ],
    "annotations": [
        {
            "id": 1,
            "image_id": 7,
            "category_id": 3,
            "bbox": [10, 20.5, 30, 40],
            "area": 700.5,
            "iscrowd": 0,
            "segmentation": [[10, 20, 40, 20, 40, 60]],
            "attributes": {"occluded": True},
        },
        {"id": 2, "image_id": 8, "category_id": 1, "bbox": [1, 2, 3]},
        {"id": 3, "image_id": 99, "category_id": 1, "bbox": [1, 2, 3, 4]},
        {"id": 4, "image_id": 8, "category_id": 42, "bbox": [1, 2, 3, 4]},
        {"id": 5, "image_id": 8, "category_id": 1, "bbox": [1, 2, 3, 4]},
        "junk",
    ],
    "categories": [{"id": 1, "name": "head"}, {"id": 3, "name": "hand"}],
}


def test_read_coco_boxes_meta_and_problems(tmp_path):
    rr = read_coco(_coco(tmp_path, DOC))
    assert rr.files["path"].to_list() == ["train/danbooru_1.jpg", "danbooru_2.jpg"]
    assert json.loads(rr.files["meta"][0])["coco"]["license"] == 2
    assert rr.boxes.select("name", "x", "y", "bw", "bh").rows() == [
        ("hand", 10.0, 20.5, 30.0, 40.0),
        ("head", 1.0, 2.0, 3.0, 4.0),
    ]
    extra = json.loads(rr.boxes["extra"][0])
    assert extra["iscrowd"] == 0 and extra["area"] == 700.5 and extra["coco_id"] == 1
    assert extra["coco_seg"] == [[10, 20, 40, 20, 40, 60]] and extra["coco"] == {
        "attributes": {"occluded": True}
    }
    msgs = rr.problems["message"].to_list()
    assert any("images[2]: image id 7 repeats images[0]" in m for m in msgs)
    assert any("images[3]: no id" in m for m in msgs)
    assert any("annotations[1] (id 2): bbox must be" in m for m in msgs)
    assert any("image_id 99 is not in images" in m for m in msgs)
    assert any("category_id 42 is not in categories" in m for m in msgs)
    assert any("annotations[5]: not an object" in m for m in msgs)
    assert rr.bad_boxes == 4
    assert rr.names == ["head", "hand"]


def test_not_json_and_not_utf8_are_clear_errors(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('{"images": [}')
    with pytest.raises(InputError, match=r"a.json:1: not valid JSON"):
        read_coco(p)
    p.write_bytes(b'{"images": "\xff"}')
    with pytest.raises(InputError, match="not UTF-8"):
        read_coco(p)


def test_results_list_needs_images_and_scores(tmp_path):
    res = _coco(tmp_path, [{"image_id": 8, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}], "res.json")
    with pytest.raises(UsageError, match="--images"):
        read_coco(res, with_score=True)
    with pytest.raises(InputError, match="results file"):
        read_coco(res)
    rr = read_coco(res, with_score=True, images_path=_coco(tmp_path, DOC))
    assert rr.boxes["score"].to_list() == [0.5]
    full = _coco(tmp_path, DOC, "full.json")
    rr = read_coco(full, with_score=True)
    assert rr.bad_boxes == 6 and rr.boxes.height == 0
    assert any("no numeric score" in m for m in rr.problems["message"])


def test_repeated_category_is_an_error(tmp_path):
    doc = dict(DOC, categories=[{"id": 1, "name": "head"}, {"id": 2, "name": "head"}])
    with pytest.raises(InputError, match="name 'head' repeats"):
        read_coco(_coco(tmp_path, doc))


def test_writer_keeps_fields_of_unmoved_boxes():
    boxes = pl.DataFrame(
        {
            "image_id_json": ["7", "7"],
            "class_id": [1, 1],
            "x1": [10.0, 10.0],
            "y1": [20.5, 20.5],
            "x2": [40.0, 41.0],
            "y2": [60.5, 60.5],
            "extra": [
                '{"iscrowd":1,"area":700.5,"coco_id":11,"coco_bbox":[10,20.5,30,40],"coco_seg":[[1,2,3]],"coco":{"x":1}}'
            ]
            * 2,
        }
    )
    same, moved = (json.loads(t) for t in annotation_texts(boxes, source_ids=True))
    assert same == {
        "id": 11,
        "image_id": 7,
        "category_id": 2,
        "bbox": [10, 20.5, 30, 40],
        "area": 700.5,
        "iscrowd": 1,
        "segmentation": [[1, 2, 3]],
        "x": 1,
    }
    assert moved["bbox"] == [10.0, 20.5, 31.0, 40.0] and moved["area"] == 1240.0
    assert moved["segmentation"] == [] and moved["id"] == 12 and moved["iscrowd"] == 1


def test_image_entries_ids():
    images = pl.DataFrame(
        {
            "item_id": [5, 6],
            "width": [640, 320],
            "height": [480, 240],
            "meta": ['{"coco":{"id":70,"file_name":"a/danbooru_1.jpg","license":2}}', None],
            "file_name": ["danbooru_1.jpg", "danbooru_2.png"],
        }
    )
    texts, ids = image_entries(images)
    assert ids == ["5", "6"]
    assert json.loads(texts[0]) == {
        "id": 5,
        "file_name": "a/danbooru_1.jpg",
        "width": 640,
        "height": 480,
        "license": 2,
    }
    _texts, ids = image_entries(images, source_ids=True)
    assert ids == ["70", "76"]  # no source id: the item id, above the largest source id


# -- classes.txt / data.yaml ------------------------------------------------------------------------
def test_classes_txt(tmp_path):
    p = tmp_path / "classes.txt"
    p.write_bytes(b"\xef\xbb\xbfhand\r\nhead \r\n\r\n\r\n")
    assert read_classes_txt(p) == ["hand", "head"]
    p.write_text("hand\n\nhead\n")
    with pytest.raises(InputError, match=r"classes.txt:2: empty line"):
        read_classes_txt(p)
    p.write_text("hand\nhead\nhand\n")
    with pytest.raises(InputError, match="listed twice"):
        read_classes_txt(p)
    p.write_bytes(b"h\xe9ad\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_classes_txt(p)


def test_data_yaml(tmp_path):
    p = tmp_path / "data.yaml"
    p.write_text("path: .\ntrain: images/train\nnc: 2\nnames: [hand, head]\n")
    assert read_names_file(p) == ["hand", "head"]
    p.write_text("names:\n  0: hand\n  1: head\n")
    assert read_names_file(p) == ["hand", "head"]
    assert find_names_file(tmp_path) == p
    p.write_text("nc: 3\nnames: [hand, head]\n")
    with pytest.raises(InputError, match="nc is 3"):
        read_names_file(p)
    p.write_text("names:\n  0: hand\n  2: head\n")
    with pytest.raises(InputError, match="without gaps"):
        read_names_file(p)
    p.write_text("train: x\n")
    with pytest.raises(InputError, match="no `names:`"):
        read_names_file(p)
    (tmp_path / "classes.txt").write_text("head\n")
    assert find_names_file(tmp_path).name == "classes.txt"


def test_map_names_by_name_not_position():
    known, unknown = map_names(["hand", "head", "cat", "cat"], ["head", "upper_body", "lower_body", "hand"])
    assert known == {"hand": 3, "head": 0}
    assert unknown == ["cat"]
