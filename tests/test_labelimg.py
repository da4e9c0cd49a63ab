"""Review folders read and written by labelImg's own code (``libs/pascal_voc_io.py`` and
``libs/yolo_io.py`` of the labelImg 1.8.6 sdist, which need only lxml, not Qt).

The sdist comes from ``$TUIOPS_LABELIMG_SDIST`` or ``.cache/labelImg/labelImg-1.8.6.tar.gz``
(``.ci/run`` downloads it there with ``pip download labelImg==1.8.6 --no-deps`` and names
it in ``$TUIOPS_LABELIMG_SDIST``). Where it is missing the tests are skipped, except when
``$TUIOPS_LABELIMG_SDIST`` or ``$CI`` is set: then they fail.
"""

from __future__ import annotations

import importlib
import os
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest

from tests.conftest import CLASSES
from tests.test_review import matched  # noqa: F401 - the fixture
from tuiops.ops import review as rv
from tuiops.ops.triage import undo

ROOT = Path(__file__).resolve().parents[1]
SDIST = ROOT / ".cache" / "labelImg" / "labelImg-1.8.6.tar.gz"


@pytest.fixture(scope="module")
def labelimg(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, ModuleType]:
    """labelImg's ``libs.pascal_voc_io`` and ``libs.yolo_io``, imported from its sdist."""
    path = Path(os.environ.get("TUIOPS_LABELIMG_SDIST") or SDIST)
    if not path.is_file():
        how = f"pip download labelImg==1.8.6 --no-deps -d {SDIST.parent}"
        if os.environ.get("CI") or os.environ.get("TUIOPS_LABELIMG_SDIST"):
            pytest.fail(f"labelImg's sdist is missing at {path}; get it with `{how}`")
        pytest.skip(f"labelImg's sdist is not at {path} (`{how}`)")
    dest = tmp_path_factory.mktemp("labelimg")
    with tarfile.open(path) as tf:
        members = [m for m in tf.getmembers() if "/libs/" in m.name and m.name.endswith(".py")]
        tf.extractall(dest, members=members, filter="data")
    (top,) = [p for p in dest.iterdir() if p.is_dir()]
    saved = {k: v for k, v in sys.modules.items() if k == "libs" or k.startswith("libs.")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(top))
    try:
        voc = importlib.import_module("libs.pascal_voc_io")
        yolo = importlib.import_module("libs.yolo_io")
    finally:
        sys.path.remove(str(top))
        for k in [k for k in sys.modules if k == "libs" or k.startswith("libs.")]:
            del sys.modules[k]
        sys.modules.update(saved)
    assert not any(k.startswith(("PyQt", "PySide")) for k in sys.modules)  # no Qt was needed
    return voc, yolo


class _Image:
    """What labelImg's YoloReader asks of the QImage it is given."""

    def __init__(self, path: Path) -> None:
        from PIL import Image

        with Image.open(path) as im:
            self.size, self.mode = im.size, im.mode

    def width(self) -> int:
        return self.size[0]

    def height(self) -> int:
        return self.size[1]

    def isGrayscale(self) -> bool:
        return self.mode in ("1", "L")


def _store_shapes(ws: Any, key: str) -> list[tuple[str, list[tuple[int, int]]]]:
    item = ws.store.one("SELECT id FROM items WHERE key = ?", (key,))
    rows = ws.store.read_labels("gt").filter(pl.col("item_id") == item).sort("id")
    return [
        (
            CLASSES[c],
            [(round(x1), round(y1)), (round(x2), round(y1)), (round(x2), round(y2)), (round(x1), round(y2))],
        )
        for c, x1, y1, x2, y2 in rows.select("class_id", "x1", "y1", "x2", "y2").iter_rows()
    ]


def test_labelimg_reads_and_writes_a_voc_review_folder(ws, matched, tmp_path, labelimg):  # noqa: F811
    voc, _ = labelimg
    out = tmp_path / "rev"
    rv.review_export(ws, "gt", "r", kind="worst-images", top=6, to=out, fmt="voc", dets="none")
    before = ws.store.read_labels("gt", with_extra=True)
    xml = out / "danbooru_0.xml"
    reader = voc.PascalVocReader(str(xml))
    shapes = reader.get_shapes()
    assert [(s[0], s[1]) for s in shapes] == _store_shapes(ws, "danbooru_0")
    # an edit as labelImg saves it: the second box moved right by 7 px, a new "text" box
    img = _Image(out / "danbooru_0.jpg")
    writer = voc.PascalVocWriter(
        "rev", "danbooru_0.jpg", (img.height(), img.width(), 3), local_img_path=str(out / "danbooru_0.jpg")
    )
    for k, (label, pts, _lc, _fc, difficult) in enumerate(shapes):
        (x1, y1), (x2, y2) = pts[0], pts[2]
        if k == 1:
            x1, x2 = x1 + 7, x2 + 7
        writer.add_bnd_box(x1, y1, x2, y2, label, difficult)
    writer.add_bnd_box(200, 150, 260, 210, "text", False)
    writer.save(target_file=str(xml))
    assert [s[0] for s in voc.PascalVocReader(str(xml)).get_shapes()] == ["head", "hand", "text"]
    res = rv.review_import(ws, out)
    assert (res.changed_images, res.moved, res.added, res.removed, res.recls) == (1, 1, 1, 0, 0)
    assert res.unchanged_files + res.changed_images + res.error_files == res.files
    item = ws.store.one("SELECT id FROM items WHERE key = 'danbooru_0'")
    got = ws.store.read_labels("gt", with_extra=True).filter(pl.col("item_id") == item).sort("id")
    assert got["class_id"].to_list() == [0, 3, 4]
    assert got.row(1, named=True)["x1"] == 107.0 and got.row(2, named=True)["x2"] == 260.0
    # unchanged boxes keep their stored coordinates and extras; the revision takes it all back
    old0 = before.filter(pl.col("item_id") == item).sort("id").row(0, named=True)
    assert got.row(0, named=True) == old0
    rev = ws.store.one("SELECT changes FROM revisions WHERE id = ?", (res.revision,))
    assert '"kind": "review"' in rev
    undo(ws.store, "gt", res.revision)
    assert ws.store.read_labels("gt", with_extra=True).equals(before)


def test_labelimg_reads_and_writes_a_yolo_review_folder(ws, matched, tmp_path, labelimg):  # noqa: F811
    _, yolo = labelimg
    out = tmp_path / "rev"
    rv.review_export(ws, "gt", "r", kind="worst-images", top=6, to=out, fmt="yolo", dets="none")
    txt = out / "danbooru_1.txt"
    img = _Image(out / "danbooru_1.jpg")
    reader = yolo.YoloReader(str(txt), img)
    assert reader.classes == CLASSES
    shapes = reader.get_shapes()
    assert [(s[0], s[1]) for s in shapes] == _store_shapes(ws, "danbooru_1")
    # re-class the box to "hand" and save as labelImg does (classes.txt rewritten from its list)
    writer = yolo.YOLOWriter("rev", str(out / "danbooru_1"), (img.height(), img.width(), 3))
    for label, pts, _lc, _fc, difficult in shapes:
        (x1, y1), (x2, y2) = pts[0], pts[2]
        writer.add_bnd_box(x1, y1, x2, y2, "hand" if label == "upper_body" else label, difficult)
    writer.save(class_list=list(CLASSES), target_file=str(txt))
    assert (out / "classes.txt").read_text().splitlines() == CLASSES
    res = rv.review_import(ws, out)
    assert (res.changed_images, res.recls, res.moved, res.added, res.removed) == (1, 1, 0, 0, 0)
    item = ws.store.one("SELECT id FROM items WHERE key = 'danbooru_1'")
    got = ws.store.read_labels("gt").filter(pl.col("item_id") == item)
    assert got.select("class_id", "x1", "y1", "x2", "y2").rows() == [(3, 50.0, 50.0, 250.0, 200.0)]
    assert (
        ws.store.one("SELECT json_extract(changes, '$.kind') FROM revisions WHERE id = ?", (res.revision,))
        == "review"
    )
