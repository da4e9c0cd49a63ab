"""`labels export --format voc|yolo|coco` read by Datumaro: items, boxes, class names and the
VOC flags where the format holds them. (The mix formats are read by Datumaro in
``test_project_flags.py``.)

``labels export`` writes label files only (a flat folder, or one COCO file), so each test
puts the export where Datumaro's importer looks (``Annotations/``, ``labels/NAME/``,
``annotations/instances_NAME.json``) and adds only the index files that layout needs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from tests.conftest import CLASSES
from tests.test_review import matched  # noqa: F401 - the fixture
from tuiops.cli import run


def _export(ws: Any, fmt: str, to: Path) -> None:
    assert (
        run(["-w", str(ws.root), "labels", "export", "--set", "gt", "--format", fmt, "--to", str(to), "-q"])
        == 0
    )


def _store(ws: Any) -> tuple[int, list[tuple[str, tuple[float, ...]]]]:
    images = ws.store.one("SELECT COUNT(*) FROM set_images WHERE set_id = ?", (ws.store.label_set_id("gt"),))
    boxes = ws.store.read_labels("gt").select("class_id", "x1", "y1", "x2", "y2").rows()
    return images, sorted((CLASSES[c], (x1, y1, x2, y2)) for c, x1, y1, x2, y2 in boxes)


def _read(ds: Any) -> tuple[int, list[tuple[str, tuple[float, ...]]], dict[str, dict]]:
    from datumaro.components.annotation import AnnotationType, Bbox

    labels = ds.categories()[AnnotationType.label]
    boxes, attrs = [], {}
    for item in ds:
        for a in item.annotations:
            if isinstance(a, Bbox):
                x, y, w, h = a.get_bbox()
                boxes.append((labels[a.label].name, (x, y, x + w, y + h)))
                attrs[f"{item.id}:{labels[a.label].name}"] = dict(a.attributes)
    return len(ds), sorted(boxes), attrs


def _mark_difficult(ws: Any) -> None:
    """labelImg's flags on the first label (as a VOC import would have stored them)."""
    lo = ws.store.read_labels("gt")["id"].min()
    with ws.store.transaction() as conn:
        conn.execute("UPDATE labels SET extra = ? WHERE id = ?", ('{"difficult":1,"truncated":1}', lo))


def test_datumaro_reads_the_voc_export(ws, matched, tmp_path):  # noqa: F811
    import datumaro as dm

    from tuiops.formats.voc import labelmap_text

    _mark_difficult(ws)
    root = tmp_path / "voc"
    _export(ws, "voc", root / "Annotations")
    stems = sorted(p.stem for p in (root / "Annotations").glob("*.xml"))
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "default.txt").write_text("".join(f"{s}\n" for s in stems))
    (root / "labelmap.txt").write_text(labelmap_text(CLASSES))
    n, boxes, attrs = _read(dm.Dataset.import_from(str(root), "voc"))
    assert (n, boxes) == _store(ws)
    assert attrs["danbooru_0:head"]["difficult"] is True and attrs["danbooru_0:head"]["truncated"] is True
    assert attrs["danbooru_0:hand"]["difficult"] is False


def test_datumaro_reads_the_yolo_export(ws, matched, tmp_path):  # noqa: F811
    import datumaro as dm

    root = tmp_path / "yolo"
    _export(ws, "yolo", root / "labels" / "default")
    shutil.move(root / "labels" / "default" / "classes.txt", root / "obj.names")
    (root / "images" / "default").mkdir(parents=True)
    for p in sorted(matched.rglob("danbooru_*.jpg")):
        shutil.copy(p, root / "images" / "default" / p.name)
    n, boxes, _ = _read(dm.Dataset.import_from(str(root), "yolo"))
    want_n, want = _store(ws)
    assert n == want_n and [b[0] for b in boxes] == [w[0] for w in want]
    for (_, got), (_, exp) in zip(boxes, want, strict=True):  # YOLO's 6 decimals of 320×240
        assert max(abs(g - e) for g, e in zip(got, exp, strict=True)) < 1e-3


def test_datumaro_reads_the_coco_export(ws, matched, tmp_path):  # noqa: F811
    import datumaro as dm

    root = tmp_path / "coco"
    _export(ws, "coco", root / "annotations" / "instances_default.json")
    (root / "images" / "default").mkdir(parents=True)  # Datumaro wants the folder; sizes come from the file
    doc = json.loads((root / "annotations" / "instances_default.json").read_text())
    assert [c["name"] for c in sorted(doc["categories"], key=lambda c: c["id"])] == CLASSES
    n, boxes, _ = _read(dm.Dataset.import_from(str(root), "coco_instances"))
    assert (n, boxes) == _store(ws)
    assert pl.DataFrame(boxes, orient="row").height == len(doc["annotations"])
