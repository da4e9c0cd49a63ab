"""The triage screen driven by the pilot: every binding of the triage scope, the flow of
triaging ten mismatches with the label set checked after each decision, undo, the class
picker, and the refusals. Tests wait on workers and messages (``settle``), never on timers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.test_tui_app import command, drive, notes, settle
from tests.test_tui_browse import build_workspace
from tuiops.errors import UsageError
from tuiops.ops.match import match
from tuiops.screens.actions import ACTIONS
from tuiops.screens.dialogs import MenuDialog
from tuiops.screens.main import MainScreen
from tuiops.screens.triage import ClassPicker, TriageScreen, box_text
from tuiops.store import Store
from tuiops.workspace import Workspace


def labels(root: Path, item_id: int) -> list[tuple]:
    """The label rows of one image, read by a connection of its own (as another process would)."""
    from tuiops.store.db import id_range

    con = sqlite3.connect(root / "tuiops.db")
    try:
        sid = con.execute("SELECT id FROM label_sets WHERE name = 'master'").fetchone()[0]
        return con.execute(
            "SELECT id, class_id, x1, y1, x2, y2, extra FROM labels WHERE id BETWEEN ? AND ? ORDER BY id",
            id_range(sid, item_id),
        ).fetchall()
    finally:
        con.close()


def det_row(root: Path, det_id: int) -> tuple:
    con = sqlite3.connect(root / "tuiops.db")
    try:
        return con.execute(
            "SELECT class_id, x1, y1, x2, y2 FROM detections WHERE id = ?", (det_id,)
        ).fetchone()
    finally:
        con.close()


def triaged_ids(root: Path, item_id: int) -> list[int]:
    """The label ids triage revisions of one image wrote or removed (a new label goes above them)."""
    con = sqlite3.connect(root / "tuiops.db")
    try:
        texts = [r[0] for r in con.execute("SELECT changes FROM revisions WHERE source = 'triage'")]
    finally:
        con.close()
    changes = [json.loads(t) for t in texts]
    return [r[0] for c in changes if c["item_id"] == item_id for r in c["before"] + c["after"]]


def revisions(root: Path) -> int:
    con = sqlite3.connect(root / "tuiops.db")
    try:
        return con.execute("SELECT count(*) FROM revisions").fetchone()[0]
    finally:
        con.close()


async def open_triage(pilot: Any, kind: str, *, typed: bool = False) -> TriageScreen:
    """Open the triage of master × v1: typed on the command line, or as that command runs it."""
    text = f"triage --set master --run v1 --kind {kind}"
    if typed:
        await command(pilot, text)
    else:
        pilot.app.main_screen.run_command_line(text)
        await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, TriageScreen), notes(pilot.app)
    assert screen.view is not None and screen.entry is not None
    return screen


async def open_triage_raw(pilot: Any, kind: str) -> None:
    pilot.app.main_screen.run_command_line(f"triage --set master --run v1 --kind {kind}")
    await settle(pilot)


async def press(pilot: Any, *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot)


def expected_after(root: Path, screen: TriageScreen, action: str, class_id: int | None = None) -> dict:
    """What the image's label rows must be after ``action`` on the current object."""
    obj = screen.current
    assert obj is not None
    rows = {r[0]: r for r in labels(root, obj.item_id)}
    if action == "delete":
        rows.pop(obj.label_id)
    elif action == "accept":
        d = det_row(root, obj.det_id)
        if obj.label_id is None:
            new_id = max([*rows, *triaged_ids(root, obj.item_id)]) + 1
            rows[new_id] = (new_id, *d, None)
        else:
            rows[obj.label_id] = (obj.label_id, *d, rows[obj.label_id][6])
    elif action == "reclass":
        r = rows[obj.label_id]
        rows[obj.label_id] = (r[0], class_id, *r[2:])
    return rows


# -- the action table ---------------------------------------------------------------------------------
def test_every_triage_key_reaches_its_action(root):
    async def scenario(pilot, app):
        active = app.screen.active_bindings
        assert active["f2"].binding.action == "triage" and active["ctrl+t"].binding.action == "triage"
        assert "t" not in active  # a letter typed in a panel goes to the command line
        screen = await open_triage(pilot, "fn")
        active = screen.active_bindings
        triage = [a for a in ACTIONS if a.scope == "triage"]
        assert {a.id.split("-", 1)[1] for a in triage} >= {
            "accept", "delete", "class", "bad", "review", "undo", "next", "prev", "back",
        }  # fmt: skip
        for a in triage:
            assert hasattr(TriageScreen, f"action_{a.action}")
            for key in a.keys:
                assert active[key].binding.action == a.action, key
        bar = str(screen.query_one("#triage-keys").render())
        for a in triage:
            assert a.label in bar

    drive(root, scenario)


def test_f2_asks_for_the_kind_and_esc_goes_back(root):
    async def scenario(pilot, app):
        await press(pilot, "f2")
        assert isinstance(app.screen, MenuDialog)
        from tuiops.ops.triage import queue_counts

        counts = queue_counts(app.ui_store, "master", "v1")
        menu = dict(app.screen.entries)
        for kind in ("worst", "fp", "fn"):
            assert menu[kind].split()[:2] == [kind, str(counts[kind])], menu[kind]
        await press(pilot, "down", "enter")
        screen = app.screen
        assert isinstance(screen, TriageScreen) and screen.kind == "fp"
        title = str(screen.query_one("#triage-title").render())
        assert "Triage master × v1 · fp · 1/4" in title
        info = str(screen.query_one("#triage-info").render())
        assert "FP" in info and "score" in info and "cost" in info and "IoU" in info
        await press(pilot, "escape")
        assert isinstance(app.screen, MainScreen)
        await press(pilot, "ctrl+t")
        await press(pilot, "escape")
        assert isinstance(app.screen, MainScreen)

    drive(root, scenario)


# -- the flow -------------------------------------------------------------------------------------------
def test_triage_ten_mismatches_checking_the_set_after_each(root):
    """Worst images first: accept detections of fp/loc/cls, delete labels of fn, one key each."""

    async def scenario(pilot, app):
        screen = await open_triage(pilot, "worst", typed=True)
        decided = 0
        seen: list[tuple[int, int]] = []
        snapshots: list[tuple[int, list[tuple]]] = []
        while decided < 10:
            obj = screen.current
            assert obj is not None
            assert (screen.position, obj.id) not in seen
            seen.append((screen.position, obj.id))
            item = obj.item_id
            if obj.category == "fn":
                action, key = "delete", "d"
            elif obj.det_id is not None and obj.category != "tp":
                action, key = "accept", "a"
            else:
                await press(pilot, "n")
                continue
            want = expected_after(root, screen, action)
            snapshots.append((item, labels(root, item)))
            before_revs = revisions(root)
            await press(pilot, key)
            assert revisions(root) == before_revs + 1, notes(app)
            assert {r[0]: r for r in labels(root, item)} == want
            decided += 1
        assert len(screen.history) == 10
        # undo restores the exact rows before the last decision and goes back to it, twice
        for key, n in (("u", 9), ("ctrl+z", 8)):
            _rev, position, index = screen.history[-1]
            item, rows_before = snapshots[n]
            await press(pilot, key)
            assert labels(root, item) == rows_before, key
            assert (screen.position, screen.index) == (position, index)
            assert len(screen.history) == n
        assert revisions(root) == 12

    drive(root, scenario)


# -- every binding ---------------------------------------------------------------------------------------
def test_next_and_previous_keys(root):
    async def scenario(pilot, app):
        screen = await open_triage(pilot, "fn")
        ids = [screen.current.id]
        for key in ("n", "pagedown", "space", "right"):
            await press(pilot, key)
            ids.append(screen.current.id)
        assert screen.position == 4 and len(set(ids)) == 5
        for key, back in (("p", 3), ("pageup", 2), ("left", 1)):
            await press(pilot, key)
            assert screen.current.id == ids[back]
        await press(pilot, "p")
        await press(pilot, "p")
        assert screen.position == 0 and "start of the queue" in notes(app)
        for _ in range(len(screen.queue) + 1):
            await pilot.press("n")
        await settle(pilot)
        assert screen.position == len(screen.queue) - 1 and "end of the queue" in notes(app)

    drive(root, scenario)


def test_accept_keys(root):
    async def scenario(pilot, app):
        screen = await open_triage(pilot, "fp")
        for n, key in enumerate(("a", "enter"), start=1):
            obj = screen.current
            want = expected_after(root, screen, "accept")
            await press(pilot, key)
            assert {r[0]: r for r in labels(root, obj.item_id)} == want, key
            assert screen.position == n
        assert sum("detection accepted as label" in n for n in notes(app)) == 2

    drive(root, scenario)


def test_delete_keys(root):
    async def scenario(pilot, app):
        screen = await open_triage(pilot, "fn")
        for key in ("d", "delete", "f8"):
            obj = screen.current
            want = expected_after(root, screen, "delete")
            await press(pilot, key)
            assert {r[0]: r for r in labels(root, obj.item_id)} == want, key
        assert sum("label deleted" in n for n in notes(app)) == 3
        await press(pilot, "p")
        await press(pilot, "d")
        assert any("no longer in set" in n for n in notes(app))
        fp = await open_triage(pilot, "fp")
        await press(pilot, "d")
        assert any("no label to delete" in n for n in notes(app))
        assert fp.position == 0 and revisions(root) == 3

    drive(root, scenario)


def test_class_keys_open_the_filtering_picker(root):
    async def scenario(pilot, app):
        screen = await open_triage(pilot, "fn")
        obj = screen.current
        before = labels(root, obj.item_id)
        await press(pilot, "c")
        picker = app.screen
        assert isinstance(picker, ClassPicker)
        assert len(picker.shown) == len(app.ws.classes)
        await press(pilot, *"bo")
        assert [app.ws.classes[i] for i in picker.shown] == ["upper_body", "lower_body"]
        await press(pilot, "down")
        await press(pilot, "escape")
        assert app.screen is screen and labels(root, obj.item_id) == before
        await press(pilot, "f4")
        picker = app.screen
        assert isinstance(picker, ClassPicker)
        await press(pilot, *"low")
        assert [app.ws.classes[i] for i in picker.shown] == ["lower_body"]
        await press(pilot, "backspace", "backspace", "backspace", *"zzz")
        assert picker.shown == []
        await press(pilot, "enter")
        assert app.screen is picker and "no class matches the filter" in notes(app)
        await press(pilot, "backspace", "backspace", "backspace", *"hand")
        target = app.ws.classes.index("hand")
        want = expected_after(root, screen, "reclass", target)
        await press(pilot, "enter")
        assert app.screen is screen
        assert {r[0]: r for r in labels(root, obj.item_id)} == want

    drive(root, scenario)


def test_bad_keys_mark_and_unmark_the_image(root):
    def excluded() -> list[int]:
        con = sqlite3.connect(root / "tuiops.db")
        try:
            return [r[0] for r in con.execute("SELECT item_id FROM set_exclusions ORDER BY item_id")]
        finally:
            con.close()

    async def scenario(pilot, app):
        screen = await open_triage(pilot, "worst")
        item = screen.entry.item_id
        await press(pilot, "b")
        assert excluded() == [item]
        assert screen.position == 1
        await press(pilot, "p")
        assert "BAD" in str(screen.query_one("#triage-info").render())
        await press(pilot, "insert")
        assert excluded() == []
        await press(pilot, "u")
        assert excluded() == [item]
        await press(pilot, "u")
        assert excluded() == []

    drive(root, scenario)


def test_review_keys_copy_the_image_to_the_review_folder(root):
    async def scenario(pilot, app):
        screen = await open_triage(pilot, "fp")
        folder = root / "review" / "triage-master"
        for key in ("r", "f5"):
            k = screen.entry.key
            await press(pilot, key)
            names = [p.name for p in folder.iterdir()]
            assert any(n.startswith(k) and n.endswith(".txt") for n in names), key
            await press(pilot, "n")
        assert sum("copied to review/triage-master" in n for n in notes(app)) == 2
        assert revisions(root) == 0

    drive(root, scenario)


def test_undo_keys_restore_the_exact_rows(root):
    async def scenario(pilot, app):
        screen = await open_triage(pilot, "cls")
        for key in ("u", "ctrl+z"):
            obj = screen.current
            before = labels(root, obj.item_id)
            await press(pilot, "a")
            assert labels(root, obj.item_id) != before
            await press(pilot, key)
            assert labels(root, obj.item_id) == before, key
            assert screen.current.id == obj.id
            await press(pilot, "n")
        await press(pilot, "u")
        assert "nothing to undo in this triage" in notes(app)
        assert revisions(root) == 4

    drive(root, scenario)


def test_back_keys(root):
    async def scenario(pilot, app):
        for key in ("escape", "q", "f10"):
            await open_triage(pilot, "loc")
            await press(pilot, key)
            assert isinstance(app.screen, MainScreen), key

    drive(root, scenario)


# -- refusals -------------------------------------------------------------------------------------------
def test_no_stored_match_is_a_clear_message(tmp_path):
    root = build_workspace(tmp_path / "demo")

    async def scenario(pilot, app):
        await open_triage_raw(pilot, "fp")
        screen = app.screen
        assert isinstance(screen, TriageScreen)
        assert any("no stored match 'master__v1'" in n for n in notes(app))
        info = str(screen.query_one("#triage-info").render())
        assert "tuiops match --set master --run v1" in info
        await press(pilot, "a")
        await press(pilot, "escape")
        assert isinstance(app.screen, MainScreen)
        for text, message in (
            ("triage --set master --kind nope", "--kind must be one of"),
            ("triage --sett master", "unknown option '--sett'"),
            ("triage --set", "--set needs a value"),
        ):
            with pytest.raises(UsageError, match=message):
                app.main_screen.run_command_line(text)
        assert isinstance(app.screen, MainScreen)

    drive(root, scenario)


def test_a_decision_on_a_set_changed_by_another_process(root):
    async def scenario(pilot, app):
        screen = await open_triage(pilot, "fn")
        obj = screen.current
        seen = labels(root, obj.item_id)
        other = Store(root / "tuiops.db")
        with other.transaction() as conn:
            conn.execute("UPDATE labels SET x2 = x2 + 5 WHERE id = ?", (seen[-1][0],))
        changed = labels(root, obj.item_id)
        await press(pilot, "d")
        assert any("changed since they were shown" in n for n in notes(app))
        assert labels(root, obj.item_id) == changed and revisions(root) == 0
        assert screen.current.id == obj.id and screen.view.labels == changed
        await press(pilot, "d")
        assert obj.label_id not in [r[0] for r in labels(root, obj.item_id)]
        assert revisions(root) == 1

    drive(root, scenario)


# -- a match stored under another name (a pitstop's) ------------------------------------------------------
def test_triage_opens_a_match_stored_under_the_run_name(root):
    from tuiops.ops.browse import Context

    with Workspace.open(root) as w:
        w.store.execute("DELETE FROM matches WHERE name = 'master__v1'")
        match(w, "master", "v1", name="v1.pitstop1")

    async def scenario(pilot, app):
        await command(pilot, "triage --set master --run v1 --kind fn")
        screen = app.screen
        assert isinstance(screen, TriageScreen), notes(app)
        assert screen.queue is not None and screen.queue.match == "v1.pitstop1", notes(app)
        assert screen.view is not None
        await press(pilot, "escape")
        # by its name alone, with nothing in the context
        await command(pilot, "triage --match v1.pitstop1 --kind fp")
        screen = app.screen
        assert isinstance(screen, TriageScreen), notes(app)
        assert screen.queue is not None and (screen.label_set, screen.run) == ("master", "v1")
        assert screen.view is not None
        title = str(screen.query_one("#triage-title").render())
        assert "master × v1" in title and "v1.pitstop1" in title
        await press(pilot, "escape")
        # the kind menu counts the named match's queues
        app.main_screen.run_command_line("triage --match v1.pitstop1")
        await settle(pilot)
        assert isinstance(app.screen, MenuDialog)
        await press(pilot, "escape")

    drive(root, scenario, ctx=Context())


# -- box editing ----------------------------------------------------------------------------------------
def label_box(root: Path, item_id: int, label_id: int) -> tuple[float, ...]:
    row = next(r for r in labels(root, item_id) if r[0] == label_id)
    return tuple(row[2:6])


def test_box_keys_move_edges_and_the_box_one_revision_each_and_undo(root):
    """Each key writes one revision with the exact box; undo walks them back one by one."""

    async def scenario(pilot, app):
        screen = await open_triage(pilot, "loc")
        obj = screen.current
        assert obj is not None and obj.label_id is not None and obj.det_id is not None
        item, lid = obj.item_id, obj.label_id
        W, H = screen.view.width, screen.view.height
        assert W and H
        x1, y1, x2, y2 = start = label_box(root, item, lid)
        cls = next(r for r in labels(root, item) if r[0] == lid)[1]
        n0 = revisions(root)
        fx, fy = max(1, round(W * 0.05)), max(1, round(H * 0.05))
        steps = [
            (("h",), (x1 - 1, y1, x2 - 1, y2)),  # the whole box a pixel left
            (("j",), (x1 - 1, y1 + 1, x2 - 1, y2 + 1)),
            (("L",), (x1 - 1 + fx, y1 + 1, x2 - 1 + fx, y2 + 1)),  # 5% of the image right
            (("e", "h"), (x1 - 2 + fx, y1 + 1, x2 - 1 + fx, y2 + 1)),  # the left edge
            (("e", "K"), (x1 - 2 + fx, y1 + 1 - fy, x2 - 1 + fx, y2 + 1)),  # the top edge, 5% up
            (("e", "l"), (x1 - 2 + fx, y1 + 1 - fy, x2 + fx, y2 + 1)),  # the right edge
            (("e", "k"), (x1 - 2 + fx, y1 + 1 - fy, x2 + fx, y2)),  # the bottom edge
        ]
        seen = [start]
        for keys, want in steps:
            await press(pilot, *keys)
            assert label_box(root, item, lid) == pytest.approx(want), keys
            assert screen.current is not None and screen.current.id == obj.id  # the screen stays
            seen.append(want)
            info = str(screen.query_one("#triage-info").render())
            assert " box    " + box_text(want) in info
        assert revisions(root) == n0 + len(steps)
        assert next(r for r in labels(root, item) if r[0] == lid)[1] == cls  # the class stays
        # an edge moves on its own axis only: nothing written
        await press(pilot, "h")
        assert "the bottom edge moves with j/k (e: what the keys move)" in notes(app)
        assert revisions(root) == n0 + len(steps)
        # = takes the detection's box (the whole box, after e comes round to it)
        await press(pilot, "e")
        assert "moves  whole box" in str(screen.query_one("#triage-info").render())
        await press(pilot, "equals_sign")
        d = det_row(root, obj.det_id)
        assert label_box(root, item, lid) == pytest.approx(tuple(float(v) for v in d[1:5]))
        assert next(r for r in labels(root, item) if r[0] == lid)[1] == cls
        await press(pilot, "equals_sign")
        assert "the label's whole box is the detection's already" in notes(app)
        # undo, one revision at a time, back to where it started
        await press(pilot, "u")
        for want in reversed(seen[:-1]):
            assert label_box(root, item, lid) == pytest.approx(seen[seen.index(want) + 1])
            await press(pilot, "u")
            assert label_box(root, item, lid) == pytest.approx(want)
        assert label_box(root, item, lid) == pytest.approx(start)

    drive(root, scenario)


def test_a_detection_without_a_label_is_accepted_then_its_box_moves(root):
    """fp: no label to move until the detection is accepted; then the new label moves, twice."""

    async def scenario(pilot, app):
        screen = await open_triage(pilot, "fp")
        obj = screen.current
        assert obj is not None and obj.label_id is None
        n0 = revisions(root)
        await press(pilot, "l")
        assert "this fp object has no label to move: accept the detection (a) first" in notes(app)
        await press(pilot, "equals_sign")
        assert revisions(root) == n0
        await press(pilot, "a", "p")
        assert screen.current is not None and screen.current.id == obj.id
        d = tuple(float(v) for v in det_row(root, obj.det_id)[1:5])
        new = next(r for r in labels(root, obj.item_id) if tuple(r[2:6]) == d)
        await press(pilot, "l")
        await press(pilot, "l")
        assert label_box(root, obj.item_id, new[0]) == pytest.approx((d[0] + 2, d[1], d[2] + 2, d[3]))
        await press(pilot, "equals_sign")
        assert label_box(root, obj.item_id, new[0]) == pytest.approx(d)
        assert revisions(root) == n0 + 4

    drive(root, scenario)


def test_split_view_shows_labels_left_and_detections_right(root):
    from tuiops.imaging import CURRENT_COLOR, DET_COLOR, LABEL_COLOR
    from tuiops.ops.browse import image_info
    from tuiops.ops.triage import image_view
    from tuiops.screens.triage import SPLIT_GAP, render_split

    async def scenario(pilot, app):
        screen = await open_triage(pilot, "loc")
        assert screen.preview.pixel_size()[0] >= 40
        await press(pilot, "s")
        assert screen.split_view and "split view: labels | detections" in notes(app)
        assert screen.view is not None and screen.entry is not None
        await press(pilot, "s")
        assert not screen.split_view

    drive(root, scenario)
    with Workspace.open(root) as ws:
        store = ws.store
        from tuiops.ops.triage import open_queue

        q = open_queue(store, "master", "v1", "loc")
        entry = q.entry(store, 0)
        obj = entry.objects[0]
        view = image_view(store, "master", "v1", entry.item_id)
        info = image_info(store, item_id=entry.item_id)
        img, marks = render_split(info, view, obj, store.class_names(), 120, 60)
        half = (img.width - SPLIT_GAP) // 2
        assert img.width == 2 * half + SPLIT_GAP
        pixels = img.load()
        left = {pixels[x, y] for x in range(half) for y in range(img.height)}
        right = {pixels[x, y] for x in range(half + SPLIT_GAP, img.width) for y in range(img.height)}
        assert LABEL_COLOR in left and DET_COLOR not in left and CURRENT_COLOR in left
        assert DET_COLOR in right and LABEL_COLOR not in right and CURRENT_COLOR in right
        kinds = {(m.kind, m.x >= half + SPLIT_GAP) for m in marks}
        assert kinds == {("label", False), ("det", True)}
