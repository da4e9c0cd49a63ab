"""The gallery (Shift+F3) driven by the pilot: opened from a panel, from the command line and
from triage; paging; selecting with Ins, +, −, *, Ctrl+A and Ctrl+D; marking the selection
bad (and good again), sending it to the review folder and copying it, each checked in the
store or on disk; the thumbnails are the one renderer's pictures. Tests wait on workers
(``settle``), never on timers."""

from __future__ import annotations

import fnmatch
import sqlite3
from pathlib import Path
from typing import Any

from tests.test_tui_app import command, drive, left, notes, settle
from tuiops.screens.actions import ACTIONS
from tuiops.screens.gallery import GalleryScreen
from tuiops.screens.main import MainScreen
from tuiops.screens.triage import TriageScreen
from tuiops.workspace import Workspace


def excluded(root: Path) -> list[int]:
    """The images marked bad in ``master``, read by a connection of its own."""
    con = sqlite3.connect(root / "tuiops.db")
    try:
        return [
            r[0]
            for r in con.execute(
                "SELECT e.item_id FROM set_exclusions e JOIN label_sets s ON s.id = e.set_id "
                "WHERE s.name = 'master' ORDER BY e.item_id"
            )
        ]
    finally:
        con.close()


def gallery_revisions(root: Path) -> list[str]:
    con = sqlite3.connect(root / "tuiops.db")
    try:
        return [r[0] for r in con.execute("SELECT note FROM revisions ORDER BY id")]
    finally:
        con.close()


async def press(pilot: Any, *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot)


async def open_gallery(pilot: Any) -> GalleryScreen:
    await press(pilot, "shift+f3")
    screen = pilot.app.screen
    assert isinstance(screen, GalleryScreen), notes(pilot.app)
    return screen


def panel_files(app: Any) -> list[dict[str, Any]]:
    """The image rows of the left panel (its fixed rows, .. and folders, left out)."""
    panel = left(app)
    rows = [panel.table.row_at(i) for i in range(panel.table.row_count)]
    return [r for r in rows if r is not None and r.get("_kind") == "file"]


def captions(screen: GalleryScreen) -> list[str]:
    return [screen.tiles[p].title for p in sorted(screen.tiles)]


# -- keys --------------------------------------------------------------------------------------------
def test_every_gallery_key_reaches_its_action(root):
    async def scenario(pilot, app):
        assert app.screen.active_bindings["shift+f3"].binding.action == "gallery"
        screen = await open_gallery(pilot)
        active = screen.active_bindings
        gallery = [a for a in ACTIONS if a.scope == "gallery"]
        names = {a.id.removeprefix("gallery-") for a in gallery}
        assert names >= {"select", "select-mask", "deselect-mask", "bad", "review", "copy", "close"}
        for a in gallery:
            assert hasattr(GalleryScreen, f"action_{a.action}")
            for key in a.keys:
                assert active[key].binding.action == a.action, key
        bar = str(screen.query_one("#gallery-keys").render())
        for label in ("Select", "Bad", "Review", "Copy", "Close"):
            assert label in bar
        await press(pilot, "escape")
        assert isinstance(app.screen, MainScreen)

    drive(root, scenario)


# -- a panel's images ------------------------------------------------------------------------------
def test_gallery_of_a_panel_pages_through_its_images_in_its_order(root):
    from tuiops.ops.browse import render_tile
    from tuiops.widgets.thumbs import thumb_lines

    async def scenario(pilot, app):
        await press(pilot, "ctrl+f6")  # the panel sorted by size, largest first
        files = panel_files(app)
        assert len(files) > 18
        screen = await open_gallery(pilot)
        grid = screen.grid
        page = grid.page
        assert (grid.columns, grid.rows) == (6, 3) and screen.count == len(files)
        # the page shown and the next one, in the panel's order
        assert captions(screen)[: 2 * page] == [r["name"] for r in files][: 2 * page]
        shown = list(grid.shown())
        assert len(shown) == page and all(grid.tiles[p].lines or grid.tiles[p].note for p in shown)
        # each thumbnail is the one renderer's picture of the image, with the context's set and run
        tile = screen.tiles[1]
        image, _marks = render_tile(app.ui_store, tile, screen.feed, *grid.pixel_size())
        assert grid.tiles[1].lines == thumb_lines(image)
        assert tile.file_id == files[1]["_id"]
        await press(pilot, "pagedown")
        assert grid.top == page and grid.cursor == page
        assert grid.tiles[page].caption == files[page]["name"]
        assert all(grid.tiles[p].lines or grid.tiles[p].note for p in grid.shown())
        await press(pilot, "end")
        assert grid.cursor == len(files) - 1 and screen.tiles[grid.cursor].title == files[-1]["name"]
        await press(pilot, "home", "right", "down")
        went = grid.columns + 1
        assert grid.cursor == went and grid.top == 0
        await press(pilot, "enter")
        panel = left(app)
        assert isinstance(app.screen, MainScreen)
        assert panel.table.current_row()["name"] == files[went]["name"]

    drive(root, scenario)


def test_thumbnails_are_drawn_in_a_worker_thread_never_on_the_ui_thread(root, monkeypatch):
    import threading

    import tuiops.ops.browse.gallery as gallery

    threads: list[str] = []
    real = gallery.render_tile

    def watched(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(gallery, "render_tile", watched)

    async def scenario(pilot, app):
        screen = await open_gallery(pilot)
        assert all(screen.grid.tiles[p].lines for p in screen.grid.shown())
        await press(pilot, "pagedown", "v")
        assert all(screen.grid.tiles[p].lines for p in screen.grid.shown())

    drive(root, scenario)
    assert len(threads) >= 2 * 18  # two screens, and again with other layers
    assert threading.main_thread().name not in threads


def test_gallery_selects_like_the_panels_and_hands_the_selection_back(root):
    async def scenario(pilot, app):
        files = panel_files(app)
        ids = {r["name"]: r["_id"] for r in files}
        screen = await open_gallery(pilot)
        await press(pilot, "insert", "space")
        assert set(screen.selection.ids.tolist()) == {files[0]["_id"], files[1]["_id"]}
        assert screen.grid.cursor == 2 and screen.grid.tiles[0].selected
        await press(pilot, "insert")
        await press(pilot, "ctrl+d")
        assert len(screen.selection) == 0
        await press(pilot, "plus")
        await press(pilot, *"*.png")
        await press(pilot, "enter")
        png = {i for n, i in ids.items() if n.endswith(".png")}
        assert set(screen.selection.ids.tolist()) == png
        await press(pilot, "minus")
        await press(pilot, *"gel*")
        await press(pilot, "enter")
        kept = {i for n, i in ids.items() if n.endswith(".png") and not fnmatch.fnmatch(n, "gel*")}
        assert set(screen.selection.ids.tolist()) == kept
        await press(pilot, "asterisk")
        assert set(screen.selection.ids.tolist()) == set(ids.values()) - kept
        await press(pilot, "ctrl+a")
        assert set(screen.selection.ids.tolist()) == set(ids.values())
        await press(pilot, "minus")
        await press(pilot, *"dan*")
        await press(pilot, "enter")
        want = {i for n, i in ids.items() if not n.startswith("dan")}
        await press(pilot, "escape")
        panel = left(app)
        assert isinstance(app.screen, MainScreen)
        assert set(panel.selection.ids.tolist()) == want
        assert f"{len(want):,} selected" in str(panel.query_one("#status-left").render())

    drive(root, scenario)


def test_gallery_marks_the_selection_bad_then_good_again(root):
    async def scenario(pilot, app):
        files = panel_files(app)
        screen = await open_gallery(pilot)
        names = [screen.tiles[p].title for p in range(4)]
        items = [screen.tiles[p].item_id for p in range(4)]
        assert names[0] == "cover.png"  # an image the label set does not hold
        await press(pilot, "insert", "insert", "insert", "insert")
        await press(pilot, "b")
        assert excluded(root) == sorted(items[1:])
        assert sum(n.startswith("gallery bad") for n in gallery_revisions(root)) == 3
        note = next(n for n in notes(app) if "marked bad" in n)
        assert note.startswith("3 images marked bad (excluded from training) in master")
        assert "1 left out: cover: image cover is not in label set 'master'" in note
        assert [screen.grid.tiles[p].bad for p in range(4)] == [False, True, True, True]
        # the three alone, all bad already: good again
        await press(pilot, "home", "insert")
        await press(pilot, "b")
        assert excluded(root) == []
        assert sum(n.startswith("gallery good") for n in gallery_revisions(root)) == 3
        assert not any(screen.grid.tiles[p].bad for p in range(4))
        # nothing selected: the image under the cursor
        await press(pilot, "ctrl+d", "home", "right", "right", "alt+b")
        assert excluded(root) == [items[2]]
        assert len(files) == screen.count

    drive(root, scenario)


def test_gallery_asks_before_marking_many_images(root, monkeypatch):
    import tuiops.screens.gallery as gallery
    from tuiops.screens.dialogs import ConfirmDialog

    monkeypatch.setattr(gallery, "CONFIRM_OVER", 2)

    async def scenario(pilot, app):
        screen = await open_gallery(pilot)
        items = [screen.tiles[p].item_id for p in (1, 2, 3)]
        await press(pilot, "right", "insert", "insert", "insert", "b")
        assert isinstance(app.screen, ConfirmDialog)
        await press(pilot, "n")
        assert app.screen is screen and excluded(root) == []
        await press(pilot, "b")
        await press(pilot, "y")
        assert excluded(root) == sorted(items)

    drive(root, scenario)


def test_gallery_copies_the_selection_through_the_journaled_engine(root):
    async def scenario(pilot, app):
        screen = await open_gallery(pilot)
        await press(pilot, "right", "insert", "insert")
        picked = [screen.tiles[p].title for p in (1, 2)]
        await press(pilot, "f5")
        await press(pilot, *"picked")
        await press(pilot, "enter")
        await press(pilot, "y")
        await settle(pilot)
        out = root / "picked"
        assert sorted(p.name for p in out.iterdir() if p.suffix != ".txt") == sorted(picked)
        assert any("copying 2 files to picked" in n for n in notes(app))

    drive(root, scenario)


def test_gallery_from_the_command_line_and_from_a_panel_without_images(root):
    async def scenario(pilot, app):
        await command(pilot, "gallery")
        assert isinstance(app.screen, GalleryScreen)
        await press(pilot, "q")
        await press(pilot, "alt+1")
        await press(pilot, "shift+f3")
        assert isinstance(app.screen, MainScreen)
        assert any("the gallery shows images" in n for n in notes(app))

    drive(root, scenario)


def test_gallery_of_a_saved_selection_and_of_a_match(root):
    from tuiops.ops.select import SelectionSpec, save_selection

    with Workspace.open(root) as w:
        save_selection(w, "wide", SelectionSpec(where="width > 500"))

    async def scenario(pilot, app):
        await command(pilot, "open selection:wide")
        panel = left(app)
        rows = [panel.table.row_at(i) for i in range(panel.table.row_count)]
        screen = await open_gallery(pilot)
        assert screen.count == len(rows) > 2
        assert [screen.tiles[p].item_id for p in range(len(rows))] == [r["_item"] for r in rows]
        assert all(screen.grid.tiles[p].lines for p in screen.grid.shown())
        await press(pilot, "insert", "insert", "f5")
        await press(pilot, *"wide-out")
        await press(pilot, "enter")
        await press(pilot, "y")
        await settle(pilot)
        copied = sorted(p.name for p in (root / "wide-out").iterdir() if p.suffix != ".txt")
        assert copied == sorted(Path(r["relpath"]).name for r in rows[:2])
        await press(pilot, "escape")
        await command(pilot, "open match:master__v1")
        screen = await open_gallery(pilot)
        assert screen.count == left(app).pager.count == 24
        assert all(screen.grid.tiles[p].lines for p in screen.grid.shown())

    drive(root, scenario)


# -- a triage queue ------------------------------------------------------------------------------------
def test_gallery_of_a_triage_queue_reviews_and_goes_to_an_entry(root):
    async def scenario(pilot, app):
        app.main_screen.run_command_line("triage --set master --run v1 --kind fp")
        await settle(pilot)
        triage = app.screen
        assert isinstance(triage, TriageScreen)
        queue = triage.queue
        screen = await open_gallery(pilot)
        assert screen.count == len(queue)
        keys = [queue.entry(app.ui_store, p).key for p in range(min(len(queue), 18))]
        assert [screen.tiles[p].key for p in range(len(keys))] == keys
        assert all(screen.tiles[p].obj is not None for p in range(len(keys)))
        await press(pilot, "insert", "insert")
        await press(pilot, "r")
        folder = root / "review" / "triage-master"
        sent = [p.stem.replace("-", "_") for p in folder.iterdir() if p.suffix == ".txt"]
        for key in keys[:2]:
            assert any(s.startswith(key) for s in sent), key
        assert len(sent) - ("classes" in sent) == len(set(keys[:2]))
        assert any("copied to review/triage-master" in n for n in notes(app))
        await press(pilot, "right", "enter")
        assert app.screen is triage and triage.position == 3
        assert triage.entry is not None and triage.entry.key == keys[3]

    drive(root, scenario)


# -- snapshot ------------------------------------------------------------------------------------------
def test_snapshot_gallery(snap_compare, matched_root):
    from tuiops.app import TuiopsApp

    ws = Workspace.open(matched_root)
    app = TuiopsApp(ws)

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("shift+f3")
        await settle(pilot)
        await pilot.press("right", "insert", "insert", "down")
        await settle(pilot)

    try:
        assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)
    finally:
        ws.close()
