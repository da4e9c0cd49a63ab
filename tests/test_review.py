"""Review subsets for labelImg (`tuiops.ops.review`, `tuiops review …`): export the worst
cases of a match, edit the folder as labelImg would, import the diff back."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import CLASSES
from tests.test_fileops_support import make_pool, scan_pool, tree
from tuiops.cli import run
from tuiops.errors import ConflictError, ExternalToolError, InputError, NotFoundError
from tuiops.ops import fileops as fo
from tuiops.ops import review as rv
from tuiops.ops.review_open import review_open


@pytest.fixture
def matched(ws, tmp_path):
    """Six 320x240 images; a label set and a run with a missed box, a wrong class and a stray detection."""
    root = make_pool(tmp_path / "pool", 6, size=(320, 240), labels=False)
    scan_pool(ws, root)
    items = ws.store.read_items().rename({"id": "item_id"}).filter(pl.col("fid").is_not_null()).sort("fid")
    ids = items["item_id"].to_list()
    labels = pl.DataFrame(
        {
            "item_id": [ids[0], ids[0], ids[1], ids[2], ids[3]],
            "class_id": [0, 3, 1, 2, 0],
            "x1": [10.0, 100.0, 50.0, 5.0, 20.0],
            "y1": [10.0, 60.0, 50.0, 5.0, 20.0],
            "x2": [120.0, 200.0, 250.0, 60.0, 80.0],
            "y2": [100.0, 200.0, 200.0, 60.0, 80.0],
        }
    ).sort("item_id")
    ws.store.create_label_set("gt", labels, items.select("item_id"))
    dets = pl.DataFrame(
        {
            "item_id": [ids[0], ids[1], ids[3], ids[4]],
            "class_id": [0, 2, 0, 4],
            "x1": [12.0, 50.0, 20.0, 30.0],
            "y1": [10.0, 50.0, 20.0, 30.0],
            "x2": [120.0, 250.0, 80.0, 90.0],
            "y2": [100.0, 200.0, 80.0, 90.0],
            "score": [0.9, 0.8, 0.95, 0.7],
        }
    ).sort("item_id")
    ws.store.create_run("r", dets, items.select("item_id"))
    return root


def test_export_folder_for_labelimg(ws, matched, tmp_path):
    res = rv.review_export(ws, "gt", "r", kind="fn", top=10, to=tmp_path / "rev", dets="both")
    assert res.run["status"] == "done" and res.match == "gt__r"
    assert res.keys == ["danbooru_0", "danbooru_2"]  # the missed hand, the missed lower_body
    names = set(tree(tmp_path / "rev"))
    assert {"danbooru_0.jpg", "danbooru_0.txt", "classes.txt", "tuiops-review.json"} <= names
    assert {"detections/danbooru_0.txt", "detections/classes.txt", "overlays/danbooru_0.jpg"} <= names
    assert (tmp_path / "rev" / "classes.txt").read_text().splitlines() == CLASSES
    assert (tmp_path / "rev" / "detections" / "danbooru_0.txt").read_text().split()[-1] == "0.900000"
    manifest = json.loads((tmp_path / "rev" / "tuiops-review.json").read_text())
    assert manifest["set"] == "gt" and set(manifest["images"]) == {"danbooru_0", "danbooru_2"}
    worst = rv.review_export(
        ws, "gt", "r", kind="worst-images", top=2, to=tmp_path / "w", fmt="voc", dets="none"
    )
    assert len(worst.keys) == 2 and (tmp_path / "w" / f"{worst.keys[0]}.xml").exists()
    assert (tmp_path / "w" / "classes.txt").read_text().splitlines() == CLASSES
    assert not (tmp_path / "w" / "detections").exists()
    fp = rv.review_export(ws, "gt", "r", kind="fp", top=5, to=tmp_path / "fp", dets="none")
    assert fp.keys == ["danbooru_4"]
    with pytest.raises(NotFoundError, match="no dup"):
        rv.review_export(ws, "gt", "r", kind="dup", to=tmp_path / "dup")
    # the export is a job: undo removes the folder
    fo.undo_job(ws, res.plan["job_id"])
    assert not (tmp_path / "rev").exists()


def test_import_diff_and_apply(ws, matched, tmp_path):
    rv.review_export(ws, "gt", "r", kind="fn", top=10, to=tmp_path / "rev", dets="none")
    before = ws.store.read_labels("gt", with_extra=True)
    f0 = tmp_path / "rev" / "danbooru_0.txt"
    lines = f0.read_text().splitlines()
    # as labelImg saves: re-class the first box, move the second, add a new one
    lines[0] = "1 " + " ".join(lines[0].split()[1:])
    parts = lines[1].split()
    parts[1] = f"{float(parts[1]) + 0.1:.6f}"
    lines[1] = " ".join(parts)
    f0.write_text("\n".join([*lines, "4 0.500000 0.500000 0.100000 0.100000"]) + "\n")
    (tmp_path / "rev" / "danbooru_2.txt").write_text("")  # every box removed
    diff = rv.review_import(ws, tmp_path / "rev", dry_run=True)
    assert (diff.added, diff.removed, diff.moved, diff.recls) == (1, 1, 1, 1)
    assert {r["key"]: (r["added"], r["removed"], r["moved"], r["recls"]) for r in diff.per_image} == {
        "danbooru_0": (1, 0, 1, 1),
        "danbooru_2": (0, 1, 0, 0),
    }
    assert ws.store.read_labels("gt", with_extra=True).equals(before)  # a dry run changes nothing
    res = rv.review_import(ws, tmp_path / "rev", note="checked")
    assert res.applied and res.revision is not None
    after = ws.store.read_labels("gt")
    item0 = ws.store.one("SELECT id FROM items WHERE key = 'danbooru_0'")
    b0 = after.filter(pl.col("item_id") == item0)
    assert b0["class_id"].to_list() == [1, 3, 4]
    assert b0.row(0, named=True)["y1"] == 10.0  # a re-classed box keeps its exact coordinates
    assert b0.row(1, named=True)["x1"] == pytest.approx(132.0)
    untouched = after.filter(
        ~pl.col("item_id").is_in([item0, ws.store.one("SELECT id FROM items WHERE key = 'danbooru_2'")])
    )
    assert untouched.equals(
        before.drop("extra").filter(pl.col("item_id").is_in(untouched["item_id"].implode()))
    )
    rev = ws.store.execute(
        "SELECT source, note, changes FROM revisions WHERE id = ?", (res.revision,)
    ).fetchone()
    changes = json.loads(rev[2])
    assert rev[1] == "checked" and changes["totals"] == {"added": 1, "removed": 1, "moved": 1, "recls": 1}
    assert len(changes["before"]["danbooru_0"]) == 2
    # importing again: the store changed since the export for those images
    with pytest.raises(ConflictError, match="changed in the store since the export"):
        rv.review_import(ws, tmp_path / "rev")
    again = rv.review_import(ws, tmp_path / "rev", force=True)
    assert again.changed_images == 0  # the folder and the store agree now


def test_classes_txt_reordered_or_renamed_is_refused(ws, matched, tmp_path):
    rv.review_export(ws, "gt", "r", kind="fn", to=tmp_path / "rev", dets="none")
    ct = tmp_path / "rev" / "classes.txt"
    names = list(CLASSES)
    names[0], names[1] = names[1], names[0]
    ct.write_text("\n".join(names) + "\n")
    with pytest.raises(InputError, match="re-orders or renames"):
        rv.review_import(ws, tmp_path / "rev")
    ct.write_text("\n".join([*CLASSES[:2], "torso", *CLASSES[3:]]) + "\n")
    with pytest.raises(InputError, match="'torso' where the workspace has 'lower_body'"):
        rv.review_import(ws, tmp_path / "rev")
    ct.write_text("\n".join([*CLASSES, "tail"]) + "\n")  # labelImg appends a typed class
    f0 = tmp_path / "rev" / "danbooru_0.txt"
    f0.write_text(f0.read_text() + "5 0.5 0.5 0.1 0.1\n")
    with pytest.raises(InputError, match="--add-classes"):
        rv.review_import(ws, tmp_path / "rev")
    res = rv.review_import(ws, tmp_path / "rev", add_classes=True)
    assert res.added == 1 and res.added_classes == ["tail"] and ws.classes[-1] == "tail"


def test_voc_round_trip_without_edits_changes_nothing(ws, matched, tmp_path):
    rv.review_export(ws, "gt", "r", kind="worst-images", top=6, to=tmp_path / "v", fmt="voc", dets="none")
    xml = tmp_path / "v" / "danbooru_0.xml"
    text = xml.read_text()
    xml.write_text(text.replace("<xmin>10</xmin>", "<xmin>11</xmin>", 1) + "\n")
    res = rv.review_import(ws, tmp_path / "v")
    assert res.moved == 1 and res.added == res.removed == res.recls == 0 and res.unchanged_files >= 3


def test_open_runs_the_configured_editor(ws, matched, tmp_path):
    rv.review_export(ws, "gt", "r", kind="fn", to=tmp_path / "rev", dets="none")
    marker = tmp_path / "opened.txt"
    ws.config.editor = f"{sys.executable} -c \"import sys; open(sys.argv[1], 'w').write(' '.join(sys.argv[2:]))\" {marker} {{dir}} {{classes}}"
    ws.save_config()
    assert review_open(ws, tmp_path / "rev") == 0
    assert (
        marker.read_text() == f"{(tmp_path / 'rev').resolve()} {(tmp_path / 'rev').resolve() / 'classes.txt'}"
    )
    ws.config.editor = "definitely-not-a-label-editor {dir}"
    with pytest.raises(ExternalToolError, match="not installed"):
        review_open(ws, tmp_path / "rev")


def test_review_cli(ws, matched, tmp_path, capsys):
    w = ["-w", str(ws.root)]
    out = str(tmp_path / "rev")
    assert run([*w, "review", "export", "--set", "gt", "--run", "r", "--kind", "fn", "--to", out, "-q"]) == 0
    assert "2 image(s) of fn" in capsys.readouterr().out
    f0 = Path(out) / "danbooru_0.txt"
    f0.write_text(f0.read_text() + "4 0.5 0.5 0.1 0.1\n")
    assert run([*w, "review", "import", out, "--dry-run", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["added"] == 1 and not d["applied"]
    assert run([*w, "review", "import", out]) == 0
    assert "applied to 'gt' as revision" in capsys.readouterr().out
    assert run([*w, "review", "import", str(tmp_path)]) == 2  # no manifest, no --set
    assert run([*w, "review", "export", "--set", "nope", "--run", "r", "--kind", "fn", "--to", out]) == 5


#: The classes labelImg 1.8 writes first when it starts without predefined classes.
LABELIMG_DEFAULTS = [
    "dog", "person", "cat", "tv", "car", "meatballs", "marinara sauce", "tomato soup",
    "chicken noodle soup", "french onion soup", "chicken breast", "ribs", "pulled pork",
    "hamburger", "cavity",
]  # fmt: skip


def test_class_shifted_folder_is_an_error_never_a_deletion(ws, matched, tmp_path, capsys):
    """labelImg without predefined classes rewrites classes.txt with its defaults first and saves
    ids shifted past them; after classes.txt is restored, those ids point outside the map."""
    w = ["-w", str(ws.root)]
    out = tmp_path / "rev"
    rv.review_export(ws, "gt", "r", kind="worst-images", top=6, to=out, dets="none")
    before = ws.store.read_labels("gt", with_extra=True)
    (out / "classes.txt").write_text("\n".join([*LABELIMG_DEFAULTS, *CLASSES]) + "\n")
    f0 = out / "danbooru_0.txt"
    exported0 = f0.read_text()
    shifted = [
        f"{int(ln.split()[0]) + len(LABELIMG_DEFAULTS)} {ln.split(None, 1)[1]}"
        for ln in exported0.splitlines()
    ]
    f0.write_text("\n".join(shifted) + "\n")
    f1 = out / "danbooru_1.txt"
    f1.write_text(f1.read_text() + "4 0.5 0.5 0.1 0.1\n")  # a real edit in another file
    with pytest.raises(InputError, match="re-orders or renames"):
        rv.review_import(ws, out)
    (out / "classes.txt").write_text("\n".join(CLASSES) + "\n")  # as the hint says
    res = rv.review_import(ws, out, dry_run=True)
    assert res.removed == 0 and res.error_files == 1
    assert res.unchanged_files + res.changed_images + res.error_files == res.files
    assert run([*w, "review", "import", str(out)]) == 4
    text = capsys.readouterr().out
    assert "danbooru_0.txt:1: class id 15 is outside the class map" in text
    after = ws.store.read_labels("gt", with_extra=True)
    item0 = ws.store.one("SELECT id FROM items WHERE key = 'danbooru_0'")
    item1 = ws.store.one("SELECT id FROM items WHERE key = 'danbooru_1'")
    assert after.filter(pl.col("item_id") == item0).equals(before.filter(pl.col("item_id") == item0))
    assert after.height == before.height + 1  # only the added box of danbooru_1
    assert after.filter(pl.col("item_id") == item1)["class_id"].to_list() == [1, 4]
    # the review import is a revision like any other: labels undo takes it back
    rev = ws.store.one("SELECT MAX(id) FROM revisions")
    assert run([*w, "labels", "undo", "--set", "gt"]) == 0
    assert f"undid revision {rev}" in capsys.readouterr().out
    assert ws.store.read_labels("gt", with_extra=True).equals(before)
    with pytest.raises(ConflictError, match="undone already"):
        from tuiops.ops.triage import undo

        undo(ws.store, "gt", rev)


def test_review_undo_is_refused_when_rows_changed_since(ws, matched, tmp_path):
    from tuiops.ops.triage import list_revisions, undo
    from tuiops.store.db import id_range

    out = tmp_path / "rev"
    rv.review_export(ws, "gt", "r", kind="fn", to=out, dets="none")
    f0 = out / "danbooru_0.txt"
    f0.write_text(f0.read_text() + "4 0.5 0.5 0.1 0.1\n")
    res = rv.review_import(ws, out)
    item0 = ws.store.one("SELECT id FROM items WHERE key = 'danbooru_0'")
    lo, hi = id_range(ws.store.label_set_id("gt"), item0)
    with ws.store.transaction() as conn:  # an edit after the import
        conn.execute("UPDATE labels SET x1 = x1 + 1 WHERE id BETWEEN ? AND ? AND class_id = 4", (lo, hi))
    changed = ws.store.read_labels("gt").filter(pl.col("item_id") == item0)
    assert changed.height == 3
    with pytest.raises(ConflictError, match="danbooru_0 in set 'gt' changed after revision"):
        undo(ws.store, "gt", res.revision)
    assert ws.store.read_labels("gt").filter(pl.col("item_id") == item0).equals(changed)
    assert list_revisions(ws.store, "gt")["undone_by"].to_list() == [None]


def test_import_counts_add_up(ws, matched, tmp_path):
    """Files saved again without a change, files with errors and edited files partition the folder."""
    out = tmp_path / "rev"
    rv.review_export(ws, "gt", "r", kind="worst-images", top=6, to=out, dets="none")
    files = sorted(p for p in out.glob("*.txt") if p.name != "classes.txt")
    assert len(files) == 6
    files[0].write_text(files[0].read_text() + "\n")  # saved again, same boxes, other bytes
    files[1].write_text(files[1].read_text() + "4 0.5 0.5 0.1 0.1\n")  # edited
    files[2].write_text("0 0.5 0.5\n")  # a line that does not parse
    res = rv.review_import(ws, out)
    assert (res.files, res.unchanged_files, res.changed_images, res.error_files) == (6, 4, 1, 1)
    assert any(p.startswith(files[2].name + ":1:") for p in res.problems)


def test_a_box_moved_in_a_yolo_folder_keeps_its_voc_flags(ws, matched, tmp_path):
    """YOLO has no place for difficult/truncated/pose: a moved or re-classed box keeps the stored ones."""
    flags = '{"pose":"Left","truncated":1,"difficult":1}'
    item0 = ws.store.one("SELECT id FROM items WHERE key = 'danbooru_0'")
    ids = ws.store.read_labels("gt").filter(pl.col("item_id") == item0).sort("id")["id"].to_list()
    with ws.store.transaction() as conn:
        conn.executemany("UPDATE labels SET extra = ? WHERE id = ?", [(flags, i) for i in ids])
    out = tmp_path / "rev"
    rv.review_export(ws, "gt", "r", kind="fn", to=out, dets="none")
    f0 = out / "danbooru_0.txt"
    lines = f0.read_text().splitlines()
    parts = lines[0].split()
    parts[1] = f"{float(parts[1]) + 0.05:.6f}"  # the first box moved
    lines[0] = " ".join(parts)
    lines[1] = "2 " + lines[1].split(None, 1)[1]  # the second re-classed
    f0.write_text("\n".join([*lines, "4 0.5 0.5 0.1 0.1"]) + "\n")  # and a new one
    res = rv.review_import(ws, out)
    assert (res.moved, res.recls, res.added) == (1, 1, 1)
    got = ws.store.read_labels("gt", with_extra=True).filter(pl.col("item_id") == item0).sort("id")
    assert got["extra"].to_list() == [flags, flags, None]
    assert got["class_id"].to_list() == [0, 2, 4] and got.row(0, named=True)["x1"] == pytest.approx(26.0)
