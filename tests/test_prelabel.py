"""Pre-annotated review folders (`review export --prelabel RUN`): read and edited with labelImg's
own readers and writers, and the exact accounting of what became of each proposal."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest

from tests.conftest import CLASSES
from tests.test_labelimg import _Image, labelimg  # noqa: F401 - the fixture
from tests.test_review import matched  # noqa: F401 - the fixture
from tuiops.cli import run
from tuiops.errors import UsageError
from tuiops.ops import review as rv
from tuiops.ops.triage import undo

# The proposals of run "p" on the two images without labels (danbooru_4, danbooru_5):
# B overlaps A (IoU 0.92, lower score) and goes at --nms 0.5; E is below --conf 0.25.
PROPOSALS = {
    4: [
        ("A", 0, (10.0, 10.0, 60.0, 60.0), 0.9),
        ("B", 0, (12.0, 10.0, 62.0, 60.0), 0.8),
        ("C", 3, (100.0, 100.0, 150.0, 150.0), 0.7),
        ("D", 4, (200.0, 20.0, 300.0, 80.0), 0.6),
        ("E", 0, (150.0, 150.0, 200.0, 200.0), 0.1),
    ],
    5: [
        ("F", 1, (20.0, 20.0, 200.0, 200.0), 0.85),
        ("G", 2, (50.0, 120.0, 150.0, 230.0), 0.5),
    ],
}


def _add_run(ws: Any) -> None:
    items = ws.store.read_items().rename({"id": "item_id"}).filter(pl.col("fid").is_not_null()).sort("fid")
    ids = items["item_id"].to_list()
    rows = [(ids[i], c, *box, s) for i in (4, 5) for _n, c, box, s in PROPOSALS[i]] + [
        (ids[0], 0, 11.0, 10.0, 120.0, 100.0, 0.9)
    ]  # a labelled image keeps its own labels
    dets = pl.DataFrame(
        rows, schema=["item_id", "class_id", "x1", "y1", "x2", "y2", "score"], orient="row"
    ).sort("item_id")
    ws.store.create_run("p", dets, items.select("item_id"))


def _shapes(lib: tuple[ModuleType, ModuleType], fmt: str, out: Path, key: str) -> list[tuple[Any, ...]]:
    voc, yolo = lib
    if fmt == "voc":
        shapes = voc.PascalVocReader(str(out / f"{key}.xml")).get_shapes()
    else:
        shapes = yolo.YoloReader(str(out / f"{key}.txt"), _Image(out / f"{key}.jpg")).get_shapes()
    return [(s[0], s[1][0], s[1][2]) for s in shapes]


def _save(
    lib: tuple[ModuleType, ModuleType], fmt: str, out: Path, key: str, boxes: list[tuple[Any, ...]]
) -> None:
    """Save ``boxes`` (label, (x1, y1), (x2, y2)) as labelImg saves an edited image."""
    voc, yolo = lib
    img = _Image(out / f"{key}.jpg")
    shape = (img.height(), img.width(), 3)
    if fmt == "voc":
        w = voc.PascalVocWriter("rev", f"{key}.jpg", shape, local_img_path=str(out / f"{key}.jpg"))
    else:
        w = yolo.YOLOWriter("rev", str(out / key), shape)
    for label, (x1, y1), (x2, y2) in boxes:
        w.add_bnd_box(x1, y1, x2, y2, label, False)
    if fmt == "voc":
        w.save(target_file=str(out / f"{key}.xml"))
    else:
        w.save(class_list=list(CLASSES), target_file=str(out / f"{key}.txt"))


@pytest.mark.parametrize("fmt", ["yolo", "voc"])
def test_prelabelled_export_is_read_by_labelimg_and_its_edits_are_accounted(
    ws,
    matched,  # noqa: F811
    tmp_path,
    labelimg,  # noqa: F811
    fmt,
):
    _add_run(ws)
    out = tmp_path / "rev"
    before = ws.store.read_labels("gt", with_extra=True)
    rv.review_export(
        ws,
        "gt",
        "r",
        kind="worst-images",
        top=6,
        to=out,
        fmt=fmt,
        dets="none",
        prelabel="p",
        conf=0.25,
        nms=0.5,
    )
    # labelImg opens the unlabelled images pre-filled with the kept proposals, best first
    assert _shapes(labelimg, fmt, out, "danbooru_4") == [
        ("head", (10, 10), (60, 60)),
        ("hand", (100, 100), (150, 150)),
        ("text", (200, 20), (300, 80)),
    ]
    assert _shapes(labelimg, fmt, out, "danbooru_5") == [
        ("upper_body", (20, 20), (200, 200)),
        ("lower_body", (50, 120), (150, 230)),
    ]
    # a labelled image goes out with its own labels, not the run's
    assert _shapes(labelimg, fmt, out, "danbooru_0") == [
        ("head", (10, 10), (120, 100)),
        ("hand", (100, 60), (200, 200)),
    ]
    record = json.loads((out / "tuiops-prelabel.json").read_text())
    assert sorted(record["images"]) == ["danbooru_4", "danbooru_5"] and record["nms"] == 0.5

    # nothing reviewed yet: both pre-labelled files are untouched and nothing changes
    res = rv.review_import(ws, out, dry_run=True)
    assert res.changed_images == 0 and res.prelabel is not None
    assert (res.prelabel["reviewed"], res.prelabel["untouched"], res.prelabel["totals"]["predicted"]) == (
        0,
        2,
        0,
    )

    # the reviewer keeps the head, moves the hand 8 px right, makes the text a hand and draws
    # a lower_body on danbooru_4; keeps the upper_body and deletes the lower_body on danbooru_5
    _save(labelimg, fmt, out, "danbooru_4", [
        ("head", (10, 10), (60, 60)),
        ("hand", (108, 100), (158, 150)),
        ("hand", (200, 20), (300, 80)),
        ("lower_body", (10, 150), (80, 220)),
    ])  # fmt: skip
    _save(labelimg, fmt, out, "danbooru_5", [("upper_body", (20, 20), (200, 200))])
    res = rv.review_import(ws, out)
    acc = res.prelabel
    assert acc is not None
    assert (acc["files"], acc["reviewed"], acc["untouched"], acc["left_out"]) == (2, 2, 0, 0)
    assert {r["class"]: (r["predicted"], r["accepted"], r["moved"], r["recls"], r["deleted"], r["added"])
            for r in acc["classes"]} == {
        "head": (1, 1, 0, 0, 0, 0),
        "upper_body": (1, 1, 0, 0, 0, 0),
        "lower_body": (1, 0, 0, 0, 1, 1),
        "hand": (1, 0, 1, 0, 0, 0),
        "text": (1, 0, 0, 1, 0, 0),
    }  # fmt: skip
    assert acc["totals"] == {"predicted": 5, "accepted": 2, "moved": 1, "recls": 1, "deleted": 1, "added": 1}
    # the set gains the reviewed boxes, in one revision that records the accounting
    assert (res.changed_images, res.added, res.removed) == (2, 5, 0)
    item4 = ws.store.one("SELECT id FROM items WHERE key = 'danbooru_4'")
    got = ws.store.read_labels("gt").filter(pl.col("item_id") == item4).sort("id")
    assert got.select("class_id", "x1", "x2").rows() == [(0, 10.0, 60.0), (3, 108.0, 158.0), (3, 200.0, 300.0),
                                                          (2, 10.0, 80.0)]  # fmt: skip
    rec = json.loads(ws.store.one("SELECT changes FROM revisions WHERE id = ?", (res.revision,)))
    assert rec["prelabel"]["totals"] == acc["totals"]
    undo(ws.store, "gt", res.revision)
    assert ws.store.read_labels("gt", with_extra=True).equals(before)


def test_prelabel_summary_and_revisions_table_on_the_command_line(ws, matched, tmp_path, labelimg, capsys):  # noqa: F811
    _add_run(ws)
    out = tmp_path / "rev"
    w = ["-w", str(ws.root)]
    code = run([*w, "review", "export", "--set", "gt", "--run", "r", "--kind", "worst-images", "--to", str(out),
                "--dets", "none", "--prelabel", "p", "--nms", "0.5", "-q"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    record = json.loads((out / "tuiops-prelabel.json").read_text())  # proposals from 0.25 unless --conf
    assert record["conf"] == 0.25 and [b[5] for b in record["images"]["danbooru_4"]["boxes"]] == [
        0.9,
        0.7,
        0.6,
    ]
    _save(labelimg, "yolo", out, "danbooru_5", [("upper_body", (20, 20), (200, 200))])
    capsys.readouterr()
    assert run([*w, "review", "import", str(out)]) == 0
    text = capsys.readouterr().out
    assert (
        "pre-labels of run p: 1 of 2 file(s) reviewed, 1 untouched, 0 left out; of 2 proposal(s) "
        "1 accepted, 0 moved, 0 re-classed, 1 deleted; 0 box(es) added"
    ) in text, text
    assert run([*w, "labels", "revisions", "--set", "gt"]) == 0
    text = capsys.readouterr().out
    lines = [ln.split() for ln in text.splitlines()]
    assert ["lower_body", "1", "0", "0", "0", "1", "0"] in lines, text
    assert ["all", "2", "1", "0", "0", "1", "0"] in lines, text


def test_nms_without_prelabel_is_a_usage_error(ws, matched, tmp_path):  # noqa: F811
    with pytest.raises(UsageError, match="--prelabel"):
        rv.review_export(ws, "gt", "r", kind="fp", to=tmp_path / "rev", nms=0.5)


def test_prelabelled_file_left_out_and_store_changed_since_export(ws, matched, tmp_path):  # noqa: F811
    from tuiops.errors import ConflictError
    from tuiops.store.db import id_range

    _add_run(ws)
    out = tmp_path / "rev"
    rv.review_export(ws, "gt", "r", kind="worst-images", top=6, to=out, dets="none", prelabel="p", nms=0.5)
    (out / "danbooru_4.txt").write_text("0 0.5 0.5 0.1\n")  # a line that does not parse
    (out / "danbooru_5.txt").write_text("")  # every proposal deleted
    res = rv.review_import(ws, out, dry_run=True)
    acc = res.prelabel
    assert acc is not None and res.error_files == 1
    assert (acc["files"], acc["reviewed"], acc["untouched"], acc["left_out"]) == (2, 1, 0, 1)
    assert acc["totals"] == {"predicted": 2, "accepted": 0, "moved": 0, "recls": 0, "deleted": 2, "added": 0}
    # danbooru_5 went out without boxes; one given to it in the store since is not overwritten
    sid = ws.store.label_set_id("gt")
    item5 = ws.store.one("SELECT id FROM items WHERE key = 'danbooru_5'")
    with ws.store.bulk() as tx:
        tx.execute(
            "INSERT INTO labels(id, class_id, x1, y1, x2, y2) VALUES (?, 0, 1, 1, 5, 5)",
            (id_range(sid, item5)[0],),
        )
    (out / "danbooru_5.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    with pytest.raises(ConflictError, match="pre-labelled without any"):
        rv.review_import(ws, out)
    res = rv.review_import(ws, out, force=True)
    assert res.applied and res.prelabel is not None and res.prelabel["totals"]["added"] == 1
