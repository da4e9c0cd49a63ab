"""A COCO import reads every field column-wise and stores what a plain reading of each entry gives.

The file is adversarial: shuffled, non-contiguous and string image, category and annotation
ids (``5`` and ``"5"`` differ), crowds, keys COCO does not define, values of odd types and
broken entries. The expected store is worked out here entry by entry with the standard
library, so the column-wise reader must agree with it byte for byte.
"""

from __future__ import annotations

import json
import random

import pytest

from tests.conftest import add_items
from tuiops.ops.labels import import_labels
from tuiops.workspace import Workspace

CATS = [{"id": 19, "name": "head"}, {"id": 3, "name": "text"}, {"id": "7", "name": "hand"}]
CORE = ("id", "image_id", "category_id", "bbox", "score", "area", "iscrowd", "segmentation")


def _dumps(v: object) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _document(kind: str) -> dict:
    """``adversarial``: every oddity below; ``extra``: only well-formed entries with keys COCO
    does not define, strings as ids and missing keys; ``plain``: whole, well-formed entries."""
    rnd = random.Random(7)
    images: list = [
        {"id": k * 7 + 3, "file_name": f"danbooru_{k}.jpg", "width": 640, "height": 480} for k in range(1, 31)
    ]
    rnd.shuffle(images)
    if kind != "adversarial":
        return _with_annotations(rnd, images, [im["id"] for im in images], kind)
    images[0]["license"] = 2
    images[1] = {"id": "a7", "file_name": "danbooru_31.jpg", "width": 640, "height": 480, "note": "é"}
    images[2] = {"id": 999, "file_name": "  ", "width": 640}  # no file name: skipped
    images[3] = {"id": images[4]["id"], "file_name": "danbooru_32.jpg"}  # a repeated id: skipped
    images[5] = ["not", "an", "object"]
    return _with_annotations(rnd, images, [im["id"] for im in images[6:]] + ["a7"], kind)


def _with_annotations(rnd: random.Random, images: list, image_ids: list, kind: str) -> dict:
    anns: list = []
    for k in range(400):
        a: dict = {
            "id": k * 3 + 11,
            "image_id": rnd.choice(image_ids),
            "category_id": rnd.choice([19, 3, "7"]),
            "bbox": [rnd.choice([1, 1.5, 12.25]), rnd.randint(0, 50), rnd.choice([30, 12.0, 40.5]), 12.0],
            "area": rnd.choice([360, 486.0, 12.5]),
            "iscrowd": rnd.choice([0, 0, 1]),
            "segmentation": rnd.choice(
                [[], [[1.5, 2, 30, 4.25, 3e-05]], [[0.1, 1e16, 8]], {"counts": "ab", "size": [2, 2]}]
            ),
        }
        r = rnd.random()
        if kind == "plain" or (kind == "extra" and not 0.1 <= r < 0.26):
            r = 1.0
        if r < 0.03:
            a["bbox"] = [1, 2, 3]
        elif r < 0.06:
            a["bbox"] = [1, "2", 3, 4]
        elif r < 0.08:
            a["bbox"] = [True, 2, 3, 4]
        elif r < 0.1:
            a["bbox"] = [1, 2, 0, 4]  # no width: a bad box for the import's checks
        elif r < 0.13:
            del a["id"]
        elif r < 0.16:
            a["id"] = f"s{k}"
        elif r < 0.2:
            a["attributes"] = {"occluded": False, "name": 'ñ"x'}
        elif r < 0.23:
            a["source"] = "ü"
        elif r < 0.26:
            del a["area"], a["iscrowd"]
        elif r < 0.28:
            a["image_id"] = 5  # no such image
        elif r < 0.3:
            a["image_id"] = str(image_ids[0])  # the id as text is another id
        elif r < 0.32:
            a["category_id"] = 7  # the category's id is the text "7"
        elif r < 0.34:
            a["iscrowd"] = True
        elif r < 0.36:
            a["area"] = "big"
        elif r < 0.38:
            del a["segmentation"]
        elif r < 0.4:
            a["id"] = 11  # repeats the first annotation's id
        elif r < 0.42:
            a = ["not", "an", "object"]  # type: ignore[assignment]
        anns.append(a)
    return {"info": {"year": 2026}, "images": images, "annotations": anns, "categories": CATS}


def _expected(doc: dict) -> tuple[dict[str, list[tuple]], list[str]]:
    """Per image file name, the stored rows of its boxes in file order; and the messages."""
    images: dict = {}
    messages: list[str] = []
    for i, im in enumerate(doc["images"]):
        if type(im) is not dict:
            messages.append(f"images[{i}]: not an object")
        elif not (type(im.get("file_name")) is str and im["file_name"].strip()):
            messages.append(f"images[{i}] (id {im['id']!r}): no file_name")
        elif (type(im["id"]), im["id"]) in images:
            messages.append(
                f"images[{i}]: image id {im['id']!r} repeats images[{images[(type(im['id']), im['id'])][0]}]; skipped"
            )
        else:
            images[(type(im["id"]), im["id"])] = (i, im["file_name"])
    cats = {(type(c["id"]), c["id"]): c["name"] for c in doc["categories"]}
    kept: list[tuple[int, dict]] = []
    for i, a in enumerate(doc["annotations"]):
        where = f"annotations[{i}]"
        if type(a) is not dict:
            messages.append(f"{where}: not an object")
            continue
        where += f" (id {a['id']!r})" if "id" in a else ""
        bb = a["bbox"]
        if not (type(bb) is list and len(bb) == 4 and all(type(v) in (int, float) for v in bb)):
            messages.append(f"{where}: bbox must be [x, y, width, height] numbers, got {json.dumps(bb)[:60]}")
        elif (type(a["image_id"]), a["image_id"]) not in images:
            messages.append(f"{where}: image_id {a['image_id']!r} is not in images")
        elif (type(a["category_id"]), a["category_id"]) not in cats:
            messages.append(f"{where}: category_id {a['category_id']!r} is not in categories")
        else:
            kept.append((i, a))
    rest_keys = list(dict.fromkeys(k for _, a in kept for k in a if k not in CORE))
    rows: dict[str, list[tuple]] = {}
    for i, a in kept:
        fields = {"iscrowd": a.get("iscrowd"), "area": a.get("area"), "coco_id": a.get("id")}
        body = [f'"{k}":{_dumps(v)}' for k, v in fields.items() if k in a or (k == "coco_id" and "id" in a)]
        body.append(f'"coco_bbox":{_dumps(a["bbox"])}')
        if "segmentation" in a:
            body.append(f'"coco_seg":{_dumps(a["segmentation"])}')
        rest = {k: a[k] for k in rest_keys if k in a}
        if rest:
            body.append(f'"coco":{_dumps(rest)}')
        x, y, w, h = (float(v) for v in a["bbox"])
        area = a.get("area")
        crowd = a.get("iscrowd")
        fname = images[(type(a["image_id"]), a["image_id"])][1]
        if w <= 0:
            messages.append(f"annotations[{i}]" + (f" (id {a['id']!r})" if "id" in a else "") + ": ")
            continue
        rows.setdefault(fname, []).append(
            (
                cats[(type(a["category_id"]), a["category_id"])],
                x,
                y,
                x + w,
                y + h,
                "{" + ",".join(body) + "}",
                float(area) if type(area) in (int, float) else None,
                crowd if type(crowd) is int else None,
            )
        )
    return rows, messages


@pytest.mark.parametrize("kind", ["adversarial", "extra", "plain"])
def test_column_wise_read_stores_what_each_entry_says(tmp_path, kind):
    doc = _document(kind)
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    ws = Workspace.init(tmp_path / "ws", classes=[])
    add_items(ws, [f"danbooru_{k}" for k in range(1, 33)])
    result = import_labels(ws, gt, "gt", "coco")
    want, want_messages = _expected(doc)

    stored = ws.store.read_frame(
        "SELECT i.key, l.class_id, l.x1, l.y1, l.x2, l.y2, l.extra, l.coco_area, l.coco_iscrowd "
        "FROM labels l JOIN items i ON i.id = l.item_id ORDER BY l.id"
    )
    classes = ["head", "text", "hand"]
    got: dict[str, list[tuple]] = {}
    for key, cid, x1, y1, x2, y2, extra, area, crowd in stored.iter_rows():
        got.setdefault(f"{key}.jpg", []).append((classes[cid], x1, y1, x2, y2, extra, area, crowd))
    assert got == want

    messages = [p["message"] for p in result.to_dict()["problems"]]
    for m in want_messages:
        assert any(g.startswith(m) for g in messages), m
    assert result.boxes == sum(map(len, want.values()))
    assert ("repeat an earlier one's id" in " ".join(result.warnings)) == (kind == "adversarial")

    metas = ws.store.read_frame("SELECT i.key, s.meta FROM set_images s JOIN items i ON i.id = s.item_id")
    by_name = {im["file_name"]: im for im in doc["images"] if type(im) is dict and im["file_name"].strip()}
    if kind == "adversarial":
        by_name.pop(doc["images"][4]["file_name"])  # its id repeats an earlier image's
    got_meta = {f"{key}.jpg": meta for key, meta in metas.iter_rows()}
    assert got_meta == {
        name: '{"coco":' + _dumps(im) + "}" for name, im in by_name.items() if name in got_meta
    }
    assert set(want) <= set(got_meta)
    ws.close()
