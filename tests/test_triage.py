"""Triage ops on a real store: queues from a stored match, decisions as revisions, undo,
bad-image exclusion honoured by `dataset build`, the review folder, and the CLI."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from tests.test_tui_browse import build_workspace
from tuiops.errors import ConflictError, InputError, NotFoundError, UsageError
from tuiops.ops import triage as t
from tuiops.ops.match import match
from tuiops.workspace import Workspace


def copy_workspace(src: Path, dst: Path) -> None:
    """Copy a workspace's config and store (through SQLite's backup, so the WAL comes along)."""
    shutil.copy2(src / "tuiops.toml", dst / "tuiops.toml")
    a, b = sqlite3.connect(src / "tuiops.db"), sqlite3.connect(dst / "tuiops.db")
    with contextlib.closing(a), contextlib.closing(b):
        a.backup(b)


@pytest.fixture
def ws(matched_root: Path, tmp_path: Path):
    root = tmp_path / "demo"
    root.mkdir()
    copy_workspace(matched_root, root)
    w = Workspace.open(root)
    try:
        yield w
    finally:
        w.close()


def labels_of(ws: Workspace, item_id: int) -> list[tuple]:
    return t.image_view(ws.store, "master", "v1", item_id).labels


def first(ws: Workspace, kind: str) -> t.TriageObject:
    q = t.open_queue(ws.store, "master", "v1", kind)
    entry = q.entry(ws.store, 0)
    assert entry.objects
    return entry.objects[0]


# -- queues ------------------------------------------------------------------------------------------
def test_queues_follow_the_match_order_and_counts(ws):
    store = ws.store
    counts = json.loads(store.one("SELECT counts FROM matches WHERE name = 'master__v1'"))["all"]
    for kind in ("fp", "fn", "cls", "loc"):
        q = t.open_queue(store, "master", "v1", kind, page=2)
        assert len(q) == counts[kind] > 0
        got = [q.entry(store, i).objects[0] for i in range(len(q))]
        assert {o.category for o in got} == {kind}
        costs = [o.cost for o in got]
        assert costs == sorted(costs, reverse=True)
        want = store.execute(
            "SELECT id FROM match_objects WHERE category = ? ORDER BY cost DESC, id", (kind,)
        ).fetchall()
        assert [o.id for o in got] == [r[0] for r in want]
    worst = t.open_queue(store, "master", "v1", "worst", page=5)
    assert len(worst) == counts["images"] == 24
    entries = [worst.entry(store, i) for i in range(len(worst))]
    keys = [(e.f1, -e.cost, e.item_id) for e in entries]
    assert keys == sorted(keys)
    first_objects = entries[0].objects
    assert first_objects and all(o.category != "tp" for o in first_objects)
    assert [o.cost for o in first_objects] == sorted((o.cost for o in first_objects), reverse=True)
    with pytest.raises(UsageError):
        worst.entry(store, 24)


def test_queue_counts_are_the_queue_lengths(ws):
    store = ws.store
    counts = t.queue_counts(store, "master", "v1")
    assert set(counts) == set(t.KINDS)
    for kind in t.KINDS:
        assert counts[kind] == len(t.open_queue(store, "master", "v1", kind))
    assert t.queue_counts(store, "master", "nope") == {}
    assert t.queue_counts(store, "master", "v1", split="val") == {}


def test_queue_pages_past_the_ranked_rows(ws, monkeypatch):
    import tuiops.ops.match as m

    store = ws.store
    want = {}
    for kind in ("fn", "worst"):
        q = t.open_queue(store, "master", "v1", kind, page=2)
        want[kind] = [t_ident(q.entry(store, i)) for i in range(len(q))]
    for mod in (m, m.tables, m.queries):  # the package and the modules that rank
        monkeypatch.setattr(mod, "TOP_RANKED", 2)
    monkeypatch.setattr(t.queue, "FAR_PAGES", 1)  # the module that pages the queue
    for kind in ("fn", "worst"):
        q = t.open_queue(store, "master", "v1", kind, page=2)
        assert [t_ident(q.entry(store, i)) for i in range(len(q))] == want[kind]
        # a jump (no previous page to continue from), then steps back and on
        q = t.open_queue(store, "master", "v1", kind, page=2)
        last = len(q) - 1
        assert t_ident(q.entry(store, last)) == want[kind][last]
        assert [t_ident(q.entry(store, i)) for i in range(last, -1, -1)] == want[kind][::-1]


def t_ident(entry: t.Entry) -> int:
    return entry.objects[0].id if entry.f1 is None else entry.item_id


def test_queues_over_splits_follow_the_global_order(ws):
    store = ws.store
    items = store.read_set_images("master")
    splits = {k: ("val" if i % 3 == 0 else "train") for i, k in enumerate(items["key"].to_list())}
    match(ws, "master", "v1", splits=splits)
    for split in (None, "val", "train"):
        where = "" if split is None else f" AND mi.split = '{split}'"
        q = t.open_queue(store, "master", "v1", "worst", split=split, page=3)
        assert q.single == (split is not None)
        got = [q.entry(store, i).item_id for i in range(len(q))]
        want = store.execute(
            f"SELECT mi.item_id FROM match_images mi WHERE 1{where} ORDER BY mi.f1, mi.cost DESC, mi.item_id"
        ).fetchall()
        assert got == [r[0] for r in want]
        q = t.open_queue(store, "master", "v1", "fn", split=split, page=2)
        got = [q.entry(store, i).objects[0].id for i in range(len(q))]
        want = store.execute(
            "SELECT o.id FROM match_objects o JOIN match_images mi ON mi.item_id = o.item_id "
            f"WHERE o.category = 'fn'{where} ORDER BY o.cost DESC, o.id"
        ).fetchall()
        assert got == [r[0] for r in want] and got
    with pytest.raises(NotFoundError, match="has no split 'test'"):
        t.open_queue(store, "master", "v1", "fp", split="test")


def test_no_stored_match_is_a_clear_message(tmp_path):
    root = build_workspace(tmp_path / "demo")
    with Workspace.open(root) as w:
        with pytest.raises(NotFoundError) as err:
            t.open_queue(w.store, "master", "v1", "fp")
        assert "no stored match 'master__v1'" in err.value.message
        assert "tuiops match --set master --run v1" in (err.value.hint or "")
        with pytest.raises(UsageError):
            t.open_queue(w.store, "master", "v1", "nope")
        with pytest.raises(NotFoundError):
            t.open_queue(w.store, "master", "nope", "fp")


def test_a_set_replaced_after_the_match_is_refused(ws):
    store = ws.store
    boxes, images = store.read_labels("master").drop("id"), store.read_set_images("master")
    store.create_label_set("copy", boxes, images)
    store.create_label_set("master", boxes, images, replace=True)
    with pytest.raises(ConflictError, match="replaced after match"):
        t.open_queue(store, "master", "v1", "fp")


# -- decisions -------------------------------------------------------------------------------------------
def test_accept_fp_adds_the_detection_as_a_label_and_undo_restores(ws):
    store = ws.store
    obj = first(ws, "fp")
    before = labels_of(ws, obj.item_id)
    det = store.execute(
        "SELECT class_id, x1, y1, x2, y2 FROM detections WHERE id = ?", (obj.det_id,)
    ).fetchone()
    d = t.decide(store, "master", "accept", obj, expect=before)
    after = labels_of(ws, obj.item_id)
    assert after[:-1] == before
    assert after[-1][0] == before[-1][0] + 1 and after[-1][1:6] == tuple(det)
    assert d.before == [] and d.after == [after[-1]]
    row = store.execute("SELECT source, changes FROM revisions WHERE id = ?", (d.revision,)).fetchone()
    assert row[0] == "triage"
    changes = json.loads(row[1])
    assert changes["action"] == "accept" and changes["after"][0][0] == after[-1][0]
    u = t.undo(store, "master")
    assert u.undoes == d.revision
    assert labels_of(ws, obj.item_id) == before
    with pytest.raises(ConflictError, match="undone already"):
        t.undo(store, "master", d.revision)
    with pytest.raises(NotFoundError, match="no triage decision left"):
        t.undo(store, "master")


def test_a_detection_accepted_already_is_not_added_twice(ws):
    store = ws.store
    obj = first(ws, "fp")
    before = labels_of(ws, obj.item_id)
    d = t.decide(store, "master", "accept", obj)
    added = d.after[0]
    with pytest.raises(UsageError, match="equals the detection already"):
        t.decide(store, "master", "accept", obj, expect=labels_of(ws, obj.item_id))
    assert labels_of(ws, obj.item_id) == [*before, added]
    new_class = (added[1] + 1) % len(ws.classes)
    r = t.decide(store, "master", "reclass", obj, class_id=new_class)
    assert r.before == [added] and r.after == [(added[0], new_class, *added[2:])]
    assert labels_of(ws, obj.item_id) == [*before, (added[0], new_class, *added[2:])]
    t.decide(store, "master", "delete", obj)
    assert labels_of(ws, obj.item_id) == before
    for _ in range(3):
        t.undo(store, "master")
    assert labels_of(ws, obj.item_id) == before
    assert store.one("SELECT count(*) FROM revisions") == 6


def test_a_new_label_never_takes_the_id_of_a_label_triage_deleted(ws):
    store = ws.store
    fp = first(ws, "fp")
    before = labels_of(ws, fp.item_id)
    assert before, "the fp image needs a label"
    top = before[-1]
    gone = t.TriageObject(0, fp.item_id, "fn", 1.0, None, None, top[1], None, top[0], None)
    deleted = t.decide(store, "master", "delete", gone)
    added = t.decide(store, "master", "accept", fp).after[0]
    assert added[0] == top[0] + 1
    # the match's object naming the deleted label does not reach the new one
    with pytest.raises(ConflictError, match="no longer in set"):
        t.decide(store, "master", "delete", gone)
    t.undo(store, "master", deleted.revision)
    assert labels_of(ws, fp.item_id) == [*before, added]
    t.undo(store, "master")
    assert labels_of(ws, fp.item_id) == before


def test_accept_loc_and_cls_move_the_label_to_the_detection(ws):
    store = ws.store
    for kind in ("loc", "cls"):
        obj = first(ws, kind)
        before = labels_of(ws, obj.item_id)
        det = store.execute(
            "SELECT class_id, x1, y1, x2, y2 FROM detections WHERE id = ?", (obj.det_id,)
        ).fetchone()
        t.decide(store, "master", "accept", obj)
        after = {r[0]: r for r in labels_of(ws, obj.item_id)}
        assert after[obj.label_id][1:6] == tuple(det)
        assert {k: v for k, v in after.items() if k != obj.label_id} == {
            r[0]: r for r in before if r[0] != obj.label_id
        }


def test_delete_reclass_and_bad_with_exact_undo(ws):
    store = ws.store
    obj = first(ws, "fn")
    before = labels_of(ws, obj.item_id)
    t.decide(store, "master", "delete", obj)
    assert [r[0] for r in labels_of(ws, obj.item_id)] == [r[0] for r in before if r[0] != obj.label_id]
    t.undo(store, "master")
    assert labels_of(ws, obj.item_id) == before
    new_class = (obj.class_id + 1) % len(ws.classes)
    t.decide(store, "master", "reclass", obj, class_id=new_class, classes=list(ws.classes))
    changed = {r[0]: r for r in labels_of(ws, obj.item_id)}
    assert changed[obj.label_id][1] == new_class
    assert changed[obj.label_id][2:] == next(r for r in before if r[0] == obj.label_id)[2:]
    with pytest.raises(UsageError, match="has that class already"):
        t.decide(store, "master", "reclass", obj, class_id=new_class)
    t.undo(store, "master")
    assert labels_of(ws, obj.item_id) == before
    d = t.decide(store, "master", "bad", item_id=obj.item_id)
    assert d.action == "bad" and d.excluded == (False, True)
    assert t.excluded_items(store, "master")["item_id"].to_list() == [obj.item_id]
    d = t.decide(store, "master", "bad", item_id=obj.item_id)
    assert d.action == "good" and t.excluded_items(store, "master").height == 0
    t.undo(store, "master")
    assert t.excluded_items(store, "master")["item_id"].to_list() == [obj.item_id]
    t.undo(store, "master")
    assert t.excluded_items(store, "master").height == 0
    assert labels_of(ws, obj.item_id) == before


def test_bad_inputs_are_refused_with_a_message(ws):
    store = ws.store
    fp = first(ws, "fp")
    fn = first(ws, "fn")
    with pytest.raises(UsageError, match="no label to delete"):
        t.decide(store, "master", "delete", fp)
    if fn.det_id is None:
        with pytest.raises(UsageError, match="no detection to accept"):
            t.decide(store, "master", "accept", fn)
    with pytest.raises(UsageError, match="must be one of"):
        t.decide(store, "master", "approve", fp)
    with pytest.raises(UsageError, match="needs the new class"):
        t.decide(store, "master", "reclass", fn)
    with pytest.raises(Exception, match="not in the workspace class map"):
        t.decide(store, "master", "reclass", fn, class_id=99, classes=list(ws.classes))
    with pytest.raises(UsageError, match="is not marked bad"):
        t.decide(store, "master", "good", item_id=fn.item_id)
    assert store.one("SELECT count(*) FROM revisions") == 0


def test_a_decision_on_a_set_changed_by_another_process_is_refused(ws):
    store = ws.store
    obj = first(ws, "fn")
    seen = labels_of(ws, obj.item_id)
    other = sqlite3.connect(ws.db_path)
    other.execute("UPDATE labels SET x1 = x1 + 3 WHERE id = ?", (seen[0][0],))
    other.commit()
    with pytest.raises(ConflictError, match="changed since they were shown"):
        t.decide(store, "master", "delete", obj, expect=seen)
    assert store.one("SELECT count(*) FROM revisions") == 0
    assert labels_of(ws, obj.item_id)[0][2] == seen[0][2] + 3
    t.decide(store, "master", "delete", obj, expect=labels_of(ws, obj.item_id))
    other.execute("DELETE FROM labels WHERE id = ?", (seen[0][0],))
    other.commit()
    other.close()
    # the label the match names is gone
    with pytest.raises(ConflictError, match="no longer in set"):
        t.decide(store, "master", "reclass", obj, class_id=0)


def test_undo_refuses_when_the_rows_changed_after_the_decision(ws):
    store = ws.store
    obj = first(ws, "cls")
    d = t.decide(store, "master", "accept", obj)
    with store.transaction() as conn:
        conn.execute("UPDATE labels SET class_id = 0 WHERE id = ?", (obj.label_id,))
    with pytest.raises(ConflictError, match="changed after revision"):
        t.undo(store, "master", d.revision)
    with pytest.raises(NotFoundError):
        t.undo(store, "master", 999)


def test_revisions_list_and_review_import_revisions_are_not_undone(ws):
    store = ws.store
    sid = store.label_set_id("master")
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO revisions(set_id, created, source, note, changes) VALUES (?, 'x', 'folder', 'review', '{}')",
            (sid,),
        )
    rid = store.one("SELECT max(id) FROM revisions")
    with pytest.raises(UsageError, match="not a triage decision"):
        t.undo(store, "master", rid)
    d = t.decide(store, "master", "accept", first(ws, "fp"))
    t.undo(store, "master")
    frame = t.list_revisions(store, "master")
    assert frame["id"].to_list() == [d.revision + 1, d.revision, rid]
    assert frame.filter(pl.col("id") == d.revision)["undone_by"].item() == d.revision + 1


# -- box edits ------------------------------------------------------------------------------------------
def test_a_box_edit_is_one_revision_with_exact_undo(ws):
    store = ws.store
    obj = first(ws, "loc")
    before = {r[0]: r for r in labels_of(ws, obj.item_id)}
    label = before[obj.label_id]
    view = t.image_view(store, "master", "v1", obj.item_id)
    moved = t.nudged_box(label[2:6], "left", -1, 0, view.width, view.height)
    assert moved == (label[2] - 1, label[3], label[4], label[5])
    d = t.decide(store, "master", "box", obj, box=moved, expect=view.labels)
    assert d.action == "box" and d.before == [label]
    assert d.after == [(label[0], label[1], *moved, label[6])]
    assert "label box now" in d.summary()
    after = {r[0]: r for r in labels_of(ws, obj.item_id)}
    assert after == {**before, label[0]: (label[0], label[1], *moved, label[6])}
    # the detection's box, its class left as it is
    det = store.execute("SELECT x1, y1, x2, y2 FROM detections WHERE id = ?", (obj.det_id,)).fetchone()
    d2 = t.decide(store, "master", "box", obj, box=t.snapped_box(moved, det))
    assert labels_of(ws, obj.item_id) == sorted(
        {**before, label[0]: (label[0], label[1], *map(float, det), label[6])}.values()
    )
    frame = t.list_revisions(store, "master")
    assert frame["action"].to_list()[:2] == ["box", "box"]
    t.undo(store, "master", d2.revision)
    assert {r[0]: r for r in labels_of(ws, obj.item_id)} == after
    t.undo(store, "master", d.revision)
    assert {r[0]: r for r in labels_of(ws, obj.item_id)} == before


def test_box_edits_are_refused_without_a_label_or_with_an_empty_box(ws):
    store = ws.store
    fp = first(ws, "fp")
    with pytest.raises(UsageError, match="no label to move"):
        t.decide(store, "master", "box", fp, box=(1, 1, 5, 5))
    loc = first(ws, "loc")
    with pytest.raises(InputError, match="empty"):
        t.decide(store, "master", "box", loc, box=(5, 1, 5, 9))
    with pytest.raises(UsageError, match="needs the new box"):
        t.decide(store, "master", "box", loc)
    with pytest.raises(UsageError, match="needs an object"):
        t.decide(store, "master", "box", None, item_id=loc.item_id, box=(1, 1, 5, 5))
    label = next(r for r in labels_of(ws, loc.item_id) if r[0] == loc.label_id)
    with pytest.raises(UsageError, match="has that box already"):
        t.decide(store, "master", "box", loc, box=label[2:6])
    assert t.list_revisions(store, "master").height == 0


def test_nudges_keep_the_box_in_the_image_and_one_pixel_wide():
    b = (10.0, 20.0, 30.0, 40.0)
    assert t.nudged_box(b, "box", 1, 0, 100, 80) == (11.0, 20.0, 31.0, 40.0)
    assert t.nudged_box(b, "box", -50, 0, 100, 80) == (0.0, 20.0, 20.0, 40.0)
    assert t.nudged_box(b, "box", 0, 90, 100, 80) == (10.0, 60.0, 30.0, 80.0)
    assert t.nudged_box(b, "left", -15, 0, 100, 80) == (0.0, 20.0, 30.0, 40.0)
    assert t.nudged_box(b, "left", 40, 0, 100, 80) == (29.0, 20.0, 30.0, 40.0)
    assert t.nudged_box(b, "right", 90, 0, 100, 80) == (10.0, 20.0, 100.0, 40.0)
    assert t.nudged_box(b, "right", -40, 0, 100, 80) == (10.0, 20.0, 11.0, 40.0)
    assert t.nudged_box(b, "top", 0, -1, 100, 80) == (10.0, 19.0, 30.0, 40.0)
    assert t.nudged_box(b, "bottom", 0, 3, 100, 80) == (10.0, 20.0, 30.0, 43.0)
    assert t.nudged_box(b, "left", 0, 5, 100, 80) == b  # an edge moves on its own axis only
    # an edge outside the image moves in, not further out; unknown size: no outer bound
    assert t.nudged_box((-5, 0, 10, 10), "left", -1, 0, 100, 80) == (-5.0, 0.0, 10.0, 10.0)
    assert t.nudged_box((-5, 0, 10, 10), "left", 2, 0, 100, 80) == (-3.0, 0.0, 10.0, 10.0)
    assert t.nudged_box(b, "right", 500, 0) == (10.0, 20.0, 530.0, 40.0)
    assert t.step_size(b, False, 640, 480) == (1.0, 1.0)
    assert t.step_size(b, True, 640, 480) == (32.0, 24.0)
    assert t.step_size(b, True, None, None) == (1.0, 1.0)
    assert t.snapped_box(b, (1, 2, 3, 4), "top") == (10.0, 2.0, 30.0, 40.0)
    with pytest.raises(UsageError, match="opposite edge"):
        t.snapped_box(b, (50, 2, 60, 4), "left")
    with pytest.raises(UsageError, match="must be one of"):
        t.nudged_box(b, "middle", 1, 0)


# -- dataset build honours bad images ----------------------------------------------------------------
def test_dataset_build_leaves_out_images_marked_bad(ws, tmp_path):
    from tuiops.ops.dataset import build_dataset, dataset_images

    store = ws.store
    item = first(ws, "fn").item_id
    key = store.one("SELECT key FROM items WHERE id = ?", (item,))
    res = build_dataset(ws, "master", tmp_path / "ds", val=0.0)
    assert res.excluded == 0
    imgs = dataset_images(store, "ds", ("train", "val", "excluded"))
    assert imgs.filter(pl.col("item_id") == item)["split"].item() == "train"
    t.decide(store, "master", "bad", item_id=item)
    res = build_dataset(ws, "master", tmp_path / "ds", val=0.0, overwrite=True)
    assert res.excluded == 1
    did = store.one("SELECT id FROM datasets WHERE name = 'ds'")
    split = "SELECT split FROM dataset_images WHERE dataset_id = ? AND item_id = ?"
    assert store.one(split, (did, item)) == "excluded"
    assert item not in dataset_images(store, "ds")["item_id"].to_list()
    assert not list((tmp_path / "ds").rglob(f"{key}.*"))
    t.undo(store, "master")
    res = build_dataset(ws, "master", tmp_path / "ds", val=0.0, include=[key], overwrite=True)
    assert res.excluded == 0
    assert list((tmp_path / "ds" / "labels").rglob(f"{key}.txt"))


# -- review folder ------------------------------------------------------------------------------------
def test_send_to_review_copies_the_image_with_its_labels(ws):
    obj = first(ws, "fp")
    key = ws.store.one("SELECT key FROM items WHERE id = ?", (obj.item_id,))
    folder = t.send_to_review(ws, "master", obj.item_id)
    assert folder == ws.root / "review" / "triage-master"
    names = sorted(p.name for p in folder.iterdir())
    assert any(n.startswith(key) and n.endswith(".txt") for n in names)
    assert any(n.startswith(key) and not n.endswith(".txt") for n in names)
    assert "classes.txt" in names
    txt = next(p for p in folder.iterdir() if p.name.startswith(key) and p.suffix == ".txt")
    assert len(txt.read_text().splitlines()) == len(labels_of(ws, obj.item_id))
    again = t.send_to_review(ws, "master", obj.item_id)
    assert sorted(p.name for p in again.iterdir()) == names
    missing = ws.store.one("SELECT item_id FROM files WHERE status = 'missing'")
    with pytest.raises(NotFoundError, match="no readable file"):
        t.send_to_review(ws, "master", missing)


# -- CLI -------------------------------------------------------------------------------------------------
def test_cli_revisions_and_undo(ws, capsys):
    from tuiops.cli import run

    obj = first(ws, "fp")
    before = labels_of(ws, obj.item_id)
    d = t.decide(ws.store, "master", "accept", obj)
    root = str(ws.root)
    assert run(["-w", root, "labels", "revisions", "--set", "master"]) == 0
    out = capsys.readouterr().out
    assert f"{d.revision:>6}" in out and "accept" in out
    assert run(["-w", root, "labels", "undo", "--set", "master", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["undoes"] == d.revision
    assert labels_of(ws, obj.item_id) == before
    assert run(["-w", root, "labels", "undo", "--set", "master"]) == 5
    assert "no triage decision left to undo" in capsys.readouterr().err
    assert run(["-w", root, "labels", "revisions", "--set", "nope"]) == 5


# -- finding the stored match -------------------------------------------------------------------------
def test_a_match_stored_under_another_name_opens_by_set_and_run_or_by_name(ws):
    # a pitstop stores its match under the run's name, not SET__RUN
    ws.store.execute("DELETE FROM matches WHERE name = 'master__v1'")
    match(ws, "master", "v1", name="v1.pitstop1")
    by_pair = t.open_queue(ws.store, "master", "v1", "fp")
    assert by_pair.match == "v1.pitstop1" and len(by_pair) > 0
    by_name = t.open_queue(ws.store, None, None, "fp", match="v1.pitstop1")
    assert (by_name.label_set, by_name.run, len(by_name)) == ("master", "v1", len(by_pair))
    assert t.queue_counts(ws.store, "master", "v1")["fp"] == len(by_pair)
    assert t.queue_counts(ws.store, None, None, match="v1.pitstop1")["fp"] == len(by_pair)
    assert t.resolve_match(ws.store, "master", None, "v1.pitstop1") == ("v1.pitstop1", "master", "v1")
    with pytest.raises(UsageError, match="compares 'master' with 'v1'"):
        t.open_queue(ws.store, "master", "v2", "fp", match="v1.pitstop1")
    with pytest.raises(NotFoundError, match="no stored match 'nope'"):
        t.open_queue(ws.store, None, None, "fp", match="nope")
    # two stored matches of one pair, neither named SET__RUN: the user names one
    match(ws, "master", "v1", name="v1.second")
    with pytest.raises(UsageError, match=r"2 stored matches: v1\.pitstop1, v1\.second") as err:
        t.open_queue(ws.store, "master", "v1", "fp")
    assert "--match NAME" in (err.value.hint or "")
    # the name SET__RUN, when stored, is the one the pair means
    match(ws, "master", "v1")
    assert t.open_queue(ws.store, "master", "v1", "fp").match == "master__v1"
