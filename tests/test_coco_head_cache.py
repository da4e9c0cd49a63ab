"""A COCO file read by a labels import is not parsed again by ``dets import --images`` of it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import CLASSES, add_items
from tuiops.formats import coco
from tuiops.ops.labels import import_detections, import_labels
from tuiops.workspace import Workspace


def _gt(tag: str = "x") -> dict:
    return {
        "info": {"year": 2026},
        "images": [
            {"id": 7, "file_name": "danbooru_1.jpg", "width": 640, "height": 480, "flickr": tag},
            {"id": "b", "file_name": "danbooru_2.jpg", "width": 640, "height": 480},
            {"id": 9, "width": 640, "height": 480},
            {"id": 7, "file_name": "danbooru_3.jpg", "width": 640, "height": 480},
        ],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 30, 40], "area": 1200, "iscrowd": 0},
            {"id": 2, "image_id": "b", "category_id": 5, "bbox": [5.5, 6, 7, 8], "iscrowd": 1},
        ],
        "categories": [{"id": 3, "name": "head"}, {"id": 5, "name": "text"}],
    }


RESULTS = [
    {"image_id": 7, "category_id": 3, "bbox": [1, 2, 30, 41], "score": 0.9},
    {"image_id": "b", "category_id": 3, "bbox": [-4, 6, 7, 8], "score": 0.5},
    {"image_id": 9, "category_id": 5, "bbox": [1, 1, 2, 2], "score": 0.25},
]


def _workspace(root: Path) -> Workspace:
    ws = Workspace.init(root, classes=list(CLASSES))
    add_items(ws, ["danbooru_1", "danbooru_2", "danbooru_3"])
    return ws


def _run_rows(ws: Workspace, name: str) -> tuple[list, list, list]:
    run_id = ws.store.run_id(name)
    images = ws.store.execute(
        "SELECT item_id, source, meta FROM run_images WHERE run_id = ? ORDER BY item_id", (run_id,)
    ).fetchall()
    dets = ws.store.read_detections(name).rows()
    meta = ws.store.execute("SELECT meta FROM runs WHERE id = ?", (run_id,)).fetchall()
    return images, dets, meta


def _first_meta(ws: Workspace) -> str:
    """The stored meta of the run's image ``danbooru_1``."""
    images, _, _ = _run_rows(ws, "r")
    return next(meta for _, _, meta in images if "danbooru_1.jpg" in meta)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The documents the COCO reader parses, as they are handed to the JSON parser."""
    seen: list[bytes] = []
    real = coco._loads

    def spy(data: bytes | str) -> object:
        seen.append(data if isinstance(data, bytes) else data.encode())
        return real(data)

    monkeypatch.setattr(coco, "_loads", spy)
    return seen


def test_images_file_read_by_the_labels_import_is_not_parsed_again(tmp_path, parses):
    gt, dt = tmp_path / "gt.json", tmp_path / "dt.json"
    gt.write_text(json.dumps(_gt()))
    dt.write_text(json.dumps(RESULTS))
    # the reference: a workspace whose dets import has to read the images file itself
    ref = _workspace(tmp_path / "ref")
    want = import_detections(ref, dt, "r", images_file=gt)
    want_rows = _run_rows(ref, "r")
    ref.close()

    ws = _workspace(tmp_path / "ws")
    import_labels(ws, gt, "gt")
    parses.clear()
    got = import_detections(ws, dt, "r", images_file=gt)
    assert gt.read_bytes() not in parses
    assert dt.read_bytes() in parses
    assert _run_rows(ws, "r") == want_rows
    assert got.problem_lines() == want.problem_lines()
    assert len(got.problem_lines()) == 3  # an image without file_name, a repeated id, a result of it
    assert (got.images, got.boxes, got.found) == (want.images, want.boxes, want.found)
    ws.close()


def test_a_changed_images_file_is_read_again(tmp_path, parses):
    gt, dt = tmp_path / "gt.json", tmp_path / "dt.json"
    gt.write_text(json.dumps(_gt("x")))
    dt.write_text(json.dumps(RESULTS))
    ws = _workspace(tmp_path / "ws")
    import_labels(ws, gt, "gt")
    st = gt.stat()
    # same size, same modification time: only the content's hash tells them apart
    gt.write_text(json.dumps(_gt("y")))
    os.utime(gt, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert gt.stat().st_size == st.st_size
    parses.clear()
    import_detections(ws, dt, "r", images_file=gt)
    assert gt.read_bytes() in parses
    assert '"flickr":"y"' in _first_meta(ws)
    # a newer modification time is not even hashed against the old entry: read again
    parses.clear()
    gt.write_text(json.dumps(_gt("zz")))
    import_detections(ws, dt, "r", images_file=gt, replace=True)
    assert gt.read_bytes() in parses
    assert '"flickr":"zz"' in _first_meta(ws)
    ws.close()


def test_lookup_items_reads_the_same_items_by_index_or_whole_table(tmp_path):
    """A few keys are looked up through the key index, many through the whole items table:
    the same items either way, keys not in the store absent, sizes as stored (null too)."""
    from tuiops.ops.labels import lookup_items

    ws = Workspace.init(tmp_path / "ws", classes=list(CLASSES))
    add_items(ws, [f"danbooru_{k}" for k in range(1, 41)])
    add_items(ws, ["gelbooru_5"], width=None, height=None)
    few = ["danbooru_3", "gelbooru_5", "danbooru_999"]
    many = [f"danbooru_{k}" for k in range(1, 60)] + ["gelbooru_5", "gelbooru_5"]
    got_few = lookup_items(ws.store, few).sort("key")
    got_many = lookup_items(ws.store, many).sort("key")
    want = ws.store.read_frame("SELECT key, id AS item_id, width, height FROM items ORDER BY key")
    assert got_few.rows() == want.filter(want["key"].is_in(few)).rows()
    assert got_many.rows() == want.rows()
    assert got_few.schema == got_many.schema
    assert got_many.filter(got_many["key"] == "gelbooru_5").select("width", "height").row(0) == (None, None)
    assert lookup_items(ws.store, []).height == 0
    ws.close()
