"""The terminal app driven by the pilot: every binding of the action table, on a real store.

Tests wait on workers and messages (``settle``), never on timers.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.test_tui_browse import build_workspace
from tuiops.app import TuiopsApp
from tuiops.ops.browse import Spec
from tuiops.screens.actions import ACTIONS, BY_ID, bindings, fkey_bar
from tuiops.workspace import Workspace

SIZE = (160, 48)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_workspace(tmp_path_factory.mktemp("tui") / "demo")


@pytest.fixture
def fresh_root(tmp_path: Path) -> Path:
    return build_workspace(tmp_path / "demo")


async def settle(pilot: Any, rounds: int = 60) -> None:
    """Wait until no worker runs and every message posted meanwhile is handled (a worker that
    failed counts as finished)."""
    from textual.worker import WorkerFailed

    app = pilot.app
    for _ in range(rounds):
        try:
            await app.workers.wait_for_complete()
        except WorkerFailed:
            pass  # reported by the app's one handler; the test looks at what it showed
        await pilot.pause()
        if not any(w.is_running or w.state.name == "PENDING" for w in app.workers):
            await pilot.pause()
            if not any(w.is_running or w.state.name == "PENDING" for w in app.workers):
                return
    raise AssertionError("workers did not finish")


def drive(root: Path, scenario: Callable[[Any, TuiopsApp], Awaitable[None]], **kwargs: Any) -> TuiopsApp:
    """Run the app on ``root`` headless and play ``scenario`` against it."""
    ws = Workspace.open(root)
    app = TuiopsApp(ws, **kwargs)
    seen: list[str] = []
    shown = app.notify

    def notify(message: str, *args: Any, **kw: Any) -> None:
        seen.append(str(message))
        shown(message, *args, **kw)

    app.notify = notify  # type: ignore[method-assign]
    app.notes_seen = seen  # type: ignore[attr-defined]

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await scenario(pilot, app)

    try:
        asyncio.run(main())
    finally:
        ws.close()
    return app


def notes(app: TuiopsApp) -> list[str]:
    """Every notification shown since the app started (also those that timed out since)."""
    seen = getattr(app, "notes_seen", None)
    return list(seen) if seen is not None else [n.message for n in app._notifications]


def left(app: TuiopsApp) -> Any:
    return app.main_screen.panel("left")  # type: ignore[union-attr]


def right(app: TuiopsApp) -> Any:
    return app.main_screen.panel("right")  # type: ignore[union-attr]


def names(panel: Any, n: int = 200) -> list[str]:
    rows = [panel.table.row_at(i) for i in range(min(n, panel.table.row_count))]
    return [r.get("name") for r in rows if r is not None]


async def goto(pilot: Any, panel: Any, name: str) -> None:
    """Move the cursor to the row called ``name`` with the arrow keys."""
    rows = names(panel)
    target = rows.index(name)
    while panel.table.cursor != target:
        await pilot.press("down" if panel.table.cursor < target else "up")
    await settle(pilot)


async def command(pilot: Any, text: str) -> None:
    """Type a command line with the keys and run it."""
    await pilot.press("colon")
    await pilot.press(*text)
    await pilot.press("enter")
    await settle(pilot)


# -- the action table ---------------------------------------------------------------------------
def test_action_table_drives_bindings_keybar_and_help():
    from tuiops.screens.gallery import GalleryScreen
    from tuiops.screens.help import HelpScreen
    from tuiops.screens.main import MainScreen
    from tuiops.screens.output import OutputScreen
    from tuiops.screens.triage import TriageScreen
    from tuiops.screens.viewer import ViewerScreen
    from tuiops.widgets.vtable import VirtualTable

    ids = [a.id for a in ACTIONS]
    assert len(ids) == len(set(ids))
    from tuiops.screens.jobs import JobsPane

    for a in ACTIONS:
        owner = {
            "main": MainScreen,
            "viewer": ViewerScreen,
            "table": VirtualTable,
            "jobs": JobsPane,
            "output": OutputScreen,
            "triage": TriageScreen,
            "gallery": GalleryScreen,
        }[a.scope]
        assert hasattr(owner, f"action_{a.action}"), f"{owner.__name__} lacks action_{a.action}"
        assert a.description and a.keys
    assert [n for n, _a in fkey_bar()] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    main_ids = {b.id for b in bindings("main")}
    assert main_ids == {a.id for a in ACTIONS if a.scope == "main"}
    table_keys = {b.id: b.key for b in VirtualTable.BINDINGS}  # type: ignore[union-attr]
    for a in ACTIONS:
        if a.scope == "table":
            assert table_keys[a.id] == ",".join(a.keys)
    # every F-key has an alternative: a key that is no F-key, or a word of the command line
    for _n, a in fkey_bar():
        assert a.command or any(not k.startswith("f") for k in a.keys), a.id
    # no plain letter is a command of the panels (letters typed there go to the command line)
    for a in ACTIONS:
        if a.scope in ("main", "table"):
            assert not any(len(k) == 1 and k.isalpha() for k in a.keys), a.id
    assert HelpScreen is not None


def test_every_key_of_the_table_reaches_its_action(demo_root):
    """Each key (F-key and alternative) resolves to its action on the focused chain."""
    from tuiops.screens.viewer import ViewerScreen

    async def scenario(pilot, app):
        active = app.screen.active_bindings
        for a in ACTIONS:
            if a.scope not in ("main", "table"):
                continue
            for key in a.keys:
                assert key in active, f"{key} ({a.id}) is not bound"
                assert active[key].binding.action == a.action, (
                    f"{key} runs {active[key].binding.action}, not {a.id}"
                )
        await goto(pilot, left(app), "cover.png")
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, ViewerScreen)
        active = app.screen.active_bindings
        for a in ACTIONS:
            if a.scope == "viewer":
                for key in a.keys:
                    assert active[key].binding.action == a.action, key
        await pilot.press("escape")
        await pilot.press("f12")
        await settle(pilot)
        active = app.screen.active_bindings
        for a in ACTIONS:
            if a.scope == "jobs":
                for key in a.keys:
                    assert active[key].binding.action == a.action, key

    drive(demo_root, scenario)


def test_opens_on_the_pool_and_the_catalog(demo_root):
    async def scenario(pilot, app):
        assert left(app).spec == Spec("pool", "pool")
        assert names(left(app))[:2] == ["..", "review"]
        assert names(right(app)) == ["pool", "master", "v1"]
        assert left(app).pager.count == 24 and not left(app).busy
        assert "pool:/" in str(app.main_screen.query_one("#title-left").render())

    drive(demo_root, scenario)


def test_tab_enter_parent_and_catalog_navigation(demo_root):
    async def scenario(pilot, app):
        await goto(pilot, left(app), "review")
        await pilot.press("enter")
        await settle(pilot)
        assert left(app).spec == Spec("pool", "pool", "review/")
        assert names(left(app))[0] == ".."
        await pilot.press("enter")  # on ".." → back, cursor on the folder we came from
        await settle(pilot)
        assert left(app).spec == Spec("pool", "pool")
        assert left(app).table.current_row()["name"] == "review"
        await pilot.press("enter", "backspace")
        await settle(pilot)
        assert left(app).table.current_row()["name"] == "review"
        await pilot.press("tab")
        assert app.main_screen.active_side == "right"
        await goto(pilot, right(app), "master")
        await pilot.press("enter")
        await settle(pilot)
        assert right(app).spec == Spec("labels", "master")
        assert right(app).pager.count == 114
        await pilot.press("backspace")
        await settle(pilot)
        assert right(app).spec == Spec("catalog")
        assert right(app).table.current_row()["name"] == "master"
        await pilot.press("tab")
        assert app.main_screen.active_side == "left"

    drive(demo_root, scenario)


def test_scrolling_keys(demo_root):
    async def scenario(pilot, app):
        t = left(app).table
        await pilot.press("end")
        assert t.cursor == t.row_count - 1 == 25
        await pilot.press("home")
        assert t.cursor == 0
        await pilot.press("pagedown")
        assert t.cursor == min(t.row_count - 1, t.visible_rows())
        await pilot.press("pageup", "down", "down")
        assert t.cursor == 2
        await pilot.press("up")
        assert t.cursor == 1

    drive(demo_root, scenario)


def test_view_f3_steps_through_images_and_back(demo_root):
    from tuiops.screens.viewer import ViewerScreen

    async def scenario(pilot, app):
        await goto(pilot, left(app), "cover.png")
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, ViewerScreen)
        card = app.screen.card
        assert card.info is not None and card.info.relpath == "cover.png"
        await pilot.press("pagedown")
        await settle(pilot)
        assert card.info.relpath == names(left(app))[3]
        await pilot.press("l")
        await settle(pilot)
        assert card.show_labels is False
        await pilot.press("d", "pageup")
        await settle(pilot)
        assert card.info.relpath == "cover.png"
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ViewerScreen)
        assert left(app).table.current_row()["name"] == "cover.png"
        # Enter on an image opens the viewer too, and `view` on the command line
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ViewerScreen)
        await pilot.press("q")
        await command(pilot, "view")
        assert isinstance(app.screen, ViewerScreen)
        await pilot.press("f3")
        await settle(pilot)
        assert not isinstance(app.screen, ViewerScreen)

    drive(demo_root, scenario)


def test_view_on_a_folder_warns(demo_root):
    async def scenario(pilot, app):
        await pilot.press("f3")
        await settle(pilot)
        assert "no image under the cursor" in notes(app)

    drive(demo_root, scenario)


def test_quick_view_follows_the_cursor(demo_root):
    async def scenario(pilot, app):
        await goto(pilot, left(app), "cover.png")
        await pilot.press("ctrl+q")
        await settle(pilot)
        card = app.main_screen.quick_card("right")
        assert card.display and not right(app).display
        assert card.info is not None and card.info.relpath == "cover.png"
        await pilot.press("down")
        await settle(pilot)
        assert card.info.relpath == names(left(app))[3]
        assert dict(card.info.meta_lines())["dets v1"]
        await goto(pilot, left(app), "danbooru_999999.jpg")
        assert card.info.status == "empty"
        await pilot.press("ctrl+q")
        await settle(pilot)
        assert right(app).display and not card.display

    drive(demo_root, scenario)


def test_select_with_insert_masks_all_none(demo_root):
    async def scenario(pilot, app):
        p = left(app)
        await goto(pilot, p, "cover.png")
        await pilot.press("insert", "space")
        assert len(p.selection) == 2
        assert p.table.cursor == 4
        await pilot.press("plus")
        await settle(pilot)
        await pilot.press(*"*.png", "enter")
        await settle(pilot)
        pngs = {n for n in names(p) if n.endswith(".png")}
        assert _selected_names(p) == pngs | {"cover.png", names(p)[3]}
        await pilot.press("minus")
        await settle(pilot)
        await pilot.press(*"GEL*", "enter")
        await settle(pilot)
        assert _selected_names(p) == {n for n in pngs if not n.startswith("gel")} | {"cover.png", names(p)[3]}
        await pilot.press("ctrl+a")
        await settle(pilot)
        assert len(p.selection) == 24
        assert "24 selected" in str(app.main_screen.query_one("#status-left").render())
        await pilot.press("ctrl+d")
        assert len(p.selection) == 0
        assert "selected" not in str(app.main_screen.query_one("#status-left").render())

    drive(demo_root, scenario)


def _selected_names(panel: Any) -> set[str]:
    out = set()
    for i in range(panel.table.row_count):
        row = panel.table.row_at(i)
        if row and row.get("_selected"):
            out.add(row["name"])
    return out


def test_invert_selection_is_exact(demo_root):
    async def scenario(pilot, app):
        p = left(app)
        await goto(pilot, p, "cover.png")
        await pilot.press("insert")
        before = _selected_names(p)
        await pilot.press("asterisk")
        await settle(pilot)
        files = {n for n in names(p) if n not in ("..", "review")}
        assert _selected_names(p) == files - before
        assert "23 selected" in str(app.main_screen.query_one("#status-left").render())

    drive(demo_root, scenario)


def test_bad_mask_is_refused_in_the_dialog(demo_root):
    from tuiops.screens.dialogs import InputDialog

    async def scenario(pilot, app):
        await pilot.press("plus")
        await settle(pilot)
        await pilot.press("backspace", "comma", "enter")
        await settle(pilot)
        assert isinstance(app.screen, InputDialog)
        assert "empty mask" in str(app.screen.query_one("#dialog-error").render())
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, InputDialog)

    drive(demo_root, scenario)


def test_sort_keys_and_menu(demo_root):
    from tuiops.screens.dialogs import MenuDialog

    async def scenario(pilot, app):
        p = left(app)
        store = app.ui_store
        sizes = [
            r[0]
            for r in store.execute("SELECT size FROM files WHERE relpath NOT LIKE '%/%' ORDER BY size DESC")
        ]
        await pilot.press("ctrl+f6")
        await settle(pilot)
        assert p.sort == [("size", True)]
        got = [p.table.row_at(i)["size"] for i in range(2, 26)]
        assert got == sizes
        await pilot.press("ctrl+f6")
        await settle(pilot)
        assert [p.table.row_at(i)["size"] for i in range(2, 26)] == sizes[::-1]
        assert "↑size" in str(app.main_screen.query_one("#title-left").render())
        await pilot.press("ctrl+f3")
        await settle(pilot)
        assert p.sort == [("name", False)]
        await pilot.press("ctrl+f3")
        await settle(pilot)
        files = sorted(n for n in names(p) if n not in ("..", "review"))
        assert names(p)[2:] == files[::-1]
        await pilot.press("ctrl+f4")
        await settle(pilot)
        assert p.sort == [("ext", False)]
        await pilot.press("ctrl+f5")
        await settle(pilot)
        assert p.sort == [("mtime", True)]
        await pilot.press("ctrl+f7")
        await settle(pilot)
        assert p.sort == [] and names(p)[2:] == files
        await pilot.press("ctrl+f12")
        await settle(pilot)
        assert isinstance(app.screen, MenuDialog)
        menu = app.screen.query_one("#menu-list")
        ids = [menu.get_option_at_index(i).id for i in range(menu.option_count)]
        menu.highlighted = ids.index("labels")
        await pilot.press("enter")
        await settle(pilot)
        assert p.sort == [("labels", True)]
        labels = [p.table.row_at(i)["labels"] for i in range(2, 26)]
        assert labels == sorted(labels, reverse=True)

    drive(demo_root, scenario)


def test_filter_with_sql_where_and_clear(demo_root):
    async def scenario(pilot, app):
        p = left(app)
        await pilot.press("slash")
        await pilot.press(*"labels >= 5 AND format = 'JPEG'", "enter")
        await settle(pilot)
        assert p.where == "labels >= 5 AND format = 'JPEG'"
        want = app.ui_store.one(
            "SELECT count(*) FROM files f WHERE relpath NOT LIKE '%/%' AND format = 'JPEG' AND "
            "(SELECT count(*) FROM v_labels v WHERE v.item_id = f.item_id AND v.label_set = 'master') >= 5"
        )
        assert p.pager.count == want > 0
        assert all(p.table.row_at(i)["labels"] >= 5 for i in range(2, 2 + want))
        await pilot.press("escape")
        await settle(pilot)
        assert p.where is None and p.pager.count == 24
        await command(pilot, "where nosuch = 1")
        assert any("unknown field" in n for n in notes(app))
        assert p.where is None

    drive(demo_root, scenario)


def test_command_line_query_cd_set_and_errors(demo_root):
    async def scenario(pilot, app):
        p = left(app)
        await command(pilot, "SELECT key, size FROM v_images WHERE status = 'ok' ORDER BY size DESC LIMIT 5")
        assert p.spec.kind == "query" and p.pager.count == 5
        assert p.table.current_row()["_key"]
        await command(pilot, "cd pool:pool/review")
        assert p.spec == Spec("pool", "pool", "review/")
        await command(pilot, "cd ..")
        assert p.spec == Spec("pool", "pool")
        await command(pilot, "cd review")
        assert p.spec == Spec("pool", "pool", "review/")
        await command(pilot, "cd /")
        assert p.spec == Spec("pool", "pool")
        await command(pilot, "set labels -")
        assert app.ctx.label_set is None
        assert all(p.table.row_at(i)["labels"] == 0 for i in range(2, 6))
        await command(pilot, "set labels master")
        assert app.ctx.label_set == "master"
        await command(pilot, "set labels nope")
        assert any("no label set named 'nope'" in n for n in notes(app))
        # the command line hands any other word to tuiops, which says it is no command
        await command(pilot, "frobnicate now")
        assert any("No such command 'frobnicate'" in n and "tuiops --help" in n for n in notes(app))
        await command(pilot, "DELETE FROM files")
        assert any("No such command 'DELETE'" in n for n in notes(app))
        await command(pilot, "42 x")
        assert any("unknown command '42'" in n for n in notes(app))
        await command(pilot, "SELECT nope FROM files")
        assert any("SQL error" in n for n in notes(app))

    drive(demo_root, scenario)


def test_tuiops_command_runs_as_a_job(demo_root):
    async def scenario(pilot, app):
        await pilot.press("f12")
        await settle(pilot)
        pane = app.jobs_pane
        assert pane.display
        await pilot.press("tab")
        await command(pilot, "tuiops query 'SELECT count(*) AS n FROM files'")
        task = next(iter(pane.tasks.values()))
        assert task.status == "done", (task.error, task.output)
        assert "28" in task.output
        await command(pilot, "tuiops labels export --set nope --format yolo --to /nonexistent/x")
        failed = [t for t in pane.tasks.values() if t.status == "failed"]
        assert failed and failed[0].error
        assert any(failed[0].error in n for n in notes(app))
        pane.focus()
        pane.cursor = 0
        await pilot.press("enter")
        await settle(pilot)
        from tuiops.screens.dialogs import MessageDialog

        assert isinstance(app.screen, MessageDialog)
        await pilot.press("escape")
        await pilot.press("f12")
        assert not pane.display

    drive(demo_root, scenario)


def test_jobs_pane_shows_store_jobs_and_cancels(fresh_root):
    from tuiops.store import Store

    store = Store(fresh_root / "tuiops.db")
    done = store.job_start("scan", {}, total=100)
    store.job_progress(done, 100)
    store.job_finish(done, "done")
    stale = store.job_start("match", {}, total=10)
    store.execute("UPDATE jobs SET pid = 2147480000, done = 4 WHERE id = ?", (stale,))
    store.close()

    async def scenario(pilot, app):
        await pilot.press("f12")
        await settle(pilot)
        pane = app.jobs_pane
        assert [j.id for j in pane.jobs] == [stale, done]
        text = str(pane.render())
        assert "match" in text and "40.0%" in text and "scan" in text
        await pilot.press("x")
        await settle(pilot)
        assert any("is gone" in n for n in notes(app))
        assert [j.status for j in pane.jobs] == ["failed", "done"]

    drive(fresh_root, scenario)


def test_help_lists_every_key_and_the_fields(demo_root):
    from tuiops.screens.help import HelpScreen

    async def scenario(pilot, app):
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.fields + "".join(_plain(w.content) for w in app.screen.query("Static"))
        for a in ACTIONS:
            assert a.description in text, a.id
        assert "labels" in app.screen.fields and "pixels" in app.screen.fields
        await pilot.press("escape")
        await command(pilot, "help")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        await settle(pilot)
        assert not isinstance(app.screen, HelpScreen)

    drive(demo_root, scenario)


def _plain(renderable: Any) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def test_f9_menu_runs_an_action(demo_root):
    from tuiops.screens.dialogs import MenuDialog

    async def scenario(pilot, app):
        await pilot.press("f9")
        await settle(pilot)
        assert isinstance(app.screen, MenuDialog)
        menu = app.screen.query_one("#menu-list")
        ids = [menu.get_option_at_index(i).id for i in range(menu.option_count)]
        assert "copy" in ids and "quick-view" in ids and "menu" not in ids
        menu.highlighted = ids.index("sort-size")
        await pilot.press("enter")
        await settle(pilot)
        assert left(app).sort == [("size", True)]
        await pilot.press("ctrl+p", "escape")
        await settle(pilot)
        assert not isinstance(app.screen, MenuDialog)

    drive(demo_root, scenario)


def test_mkdir_f7_makes_a_folder_and_shows_it(fresh_root):
    async def scenario(pilot, app):
        await pilot.press("f7")
        await settle(pilot)
        await pilot.press(*"picked", "enter")
        await settle(pilot)
        assert (fresh_root / "pool" / "picked").is_dir()
        assert names(left(app))[:3] == ["..", "picked", "review"]
        assert left(app).table.current_row()["name"] == "picked"
        await command(pilot, "mkdir")
        await pilot.press(*"picked", "enter")
        await settle(pilot)
        assert any("exists already" in n for n in notes(app))
        await pilot.press("tab", "f7")
        await settle(pilot)
        assert any("pool folder panel" in n for n in notes(app))

    drive(fresh_root, scenario)


def test_edit_f4_starts_the_configured_editor(fresh_root):
    ws = Workspace.open(fresh_root)
    ws.config.editor = f"{sys.executable} -c pass {{image}}"
    ws.save_config()
    ws.close()

    async def scenario(pilot, app):
        await goto(pilot, left(app), "cover.png")
        await pilot.press("f4")
        await settle(pilot)
        assert any(n.startswith("started") and "cover.png" in n for n in notes(app))
        app.ws.config.editor = "tuiops-no-such-editor {image}"
        await command(pilot, "edit")
        assert any("not installed or not on PATH" in n for n in notes(app))
        # a selection: copied with its labels into a review folder, the editor opened there
        app.ws.config.editor = f"{sys.executable} -c pass {{dir}}"
        await pilot.press("insert", "insert")
        await pilot.press("f4")
        await settle(pilot)
        task = next(iter(app.jobs_pane.tasks.values()))
        assert task.status == "done", task.error
        folder = next((fresh_root / "review").iterdir())
        files = sorted(p.name for p in folder.iterdir())
        assert files == ["classes.txt", "cover.png", "danbooru_2118827.jpg", "danbooru_2118827.txt"]
        assert "review import" in task.output

    drive(fresh_root, scenario)


def test_copy_move_delete_through_the_engine(fresh_root):
    from tuiops.screens.dialogs import ConfirmDialog, InputDialog, MenuDialog

    pool = fresh_root / "pool"

    async def confirm(pilot, app, dialog=ConfirmDialog) -> str:
        await settle(pilot)
        assert isinstance(app.screen, dialog), (app.screen, notes(app))
        body = str(app.screen.body)
        return body

    async def scenario(pilot, app):
        await pilot.press("f5")
        await settle(pilot)
        assert any("nothing selected" in n for n in notes(app))
        right(app).open(Spec("pool", "pool", "review/"))
        await settle(pilot)
        # copy one selected file to the other panel's folder
        await goto(pilot, left(app), "cover.png")
        await pilot.press("insert")
        await pilot.press("f5")
        await settle(pilot)
        assert isinstance(app.screen, InputDialog)
        assert app.screen.query_one("#dialog-input").value == str(pool / "review")
        await pilot.press("enter")
        body = await confirm(pilot, app)
        assert "copy 1 file(s)" in body and "images: 1" in body
        await pilot.press("y")
        await settle(pilot)
        task = next(iter(app.jobs_pane.tasks.values()))
        assert task.status == "done", task.error
        assert (pool / "review" / "cover.png").is_file() and (pool / "cover.png").is_file()
        assert "cover.png" in names(right(app))
        assert len(left(app).selection) == 0
        # again: a conflict; rename solves it
        await goto(pilot, left(app), "cover.png")
        await pilot.press("f5", "enter")
        body = await confirm(pilot, app, MenuDialog)
        assert "conflicts" in body
        menu = app.screen.query_one("#menu-list")
        menu.highlighted = [menu.get_option_at_index(i).id for i in range(menu.option_count)].index("rename")
        await pilot.press("enter")
        body = await confirm(pilot, app)
        assert "rename" in body
        await pilot.press("y")
        await settle(pilot)
        assert (pool / "review" / "cover_1.png").is_file()
        # move (F6) and turn it down: nothing moves, the plan is forgotten
        await goto(pilot, left(app), "danbooru_2118827.jpg")
        await pilot.press("f6", "enter")
        await confirm(pilot, app)
        await pilot.press("escape")
        await settle(pilot)
        assert (pool / "danbooru_2118827.jpg").is_file()
        # move for real
        await command(pilot, "move")
        await pilot.press("enter")
        await confirm(pilot, app)
        await pilot.press("y")
        await settle(pilot)
        assert not (pool / "danbooru_2118827.jpg").exists()
        assert (pool / "review" / "danbooru_2118827.jpg").is_file()
        assert "danbooru_2118827.jpg" not in names(left(app))
        assert "danbooru_2118827.jpg" in names(right(app))
        # delete (F8) goes to the workspace trash and leaves the listing
        await goto(pilot, left(app), "cover.png")
        await pilot.press("f8")
        body = await confirm(pilot, app)
        assert "delete 1 file(s)" in body
        await pilot.press("y")
        await settle(pilot)
        assert not (pool / "cover.png").exists()
        assert any(p.name == "cover.png" for p in (fresh_root / ".trash").rglob("*"))
        assert "cover.png" not in names(left(app))
        assert [t.status for t in app.jobs_pane.tasks.values()] == ["done"] * 4
        # the catalog panel is not a pool: F5 there warns
        await pilot.press("tab", "alt+f2")
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        assert any("pool or selection panel" in n for n in notes(app))

    drive(fresh_root, scenario)


def test_sync_swap_reread_and_catalog_keys(demo_root):
    async def scenario(pilot, app):
        await goto(pilot, left(app), "cover.png")
        await pilot.press("down")
        await pilot.press("ctrl+k")
        await settle(pilot)
        key = left(app).table.current_row()["_key"]
        assert right(app).spec == Spec("image", key)
        assert set(
            r["source"] for r in (right(app).table.row_at(i) for i in range(right(app).table.row_count))
        ) == {
            "master",
            "v1",
        }
        await pilot.press("down")
        await settle(pilot)
        assert right(app).spec == Spec("image", left(app).table.current_row()["_key"])
        await command(pilot, "sync")
        assert not app.main_screen.sync
        await pilot.press("alt+f2")
        await settle(pilot)
        assert right(app).spec == Spec("catalog")
        await pilot.press("ctrl+u")
        await settle(pilot)
        assert left(app).spec == Spec("catalog") and right(app).spec == Spec("pool", "pool")
        await pilot.press("alt+f1")
        await settle(pilot)
        assert left(app).spec == Spec("catalog")
        await pilot.press("tab", "down", "down", "ctrl+r")
        await settle(pilot)
        assert right(app).table.cursor == 2

    drive(demo_root, scenario)


def test_a_missing_source_shows_the_error_in_the_panel(demo_root):
    async def scenario(pilot, app):
        assert "no detection run named 'nope'" in left(app).error
        assert any("known runs: v1" in n for n in notes(app))

    drive(demo_root, scenario, left=Spec("run", "nope"))


def test_keybar_click_runs_the_action(demo_root):
    from tuiops.screens.help import HelpScreen

    async def scenario(pilot, app):
        await pilot.click("#keybar", offset=(2, 0))
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)

    drive(demo_root, scenario)


def test_quit_f10(demo_root):
    async def scenario(pilot, app):
        await pilot.press("f10")

    app = drive(demo_root, scenario)
    assert app.return_code == 0 or app.return_code is None
    assert BY_ID["quit"].keys == ("f10",)


def test_tui_command_refuses_a_bad_source(demo_root, capsys):
    from tuiops.cli import run

    assert run(["-w", str(demo_root), "tui", "--left", "nope:x"]) == 2
    assert "unknown panel source" in capsys.readouterr().err


def test_an_empty_workspace_opens_on_the_catalog(tmp_path):
    root = tmp_path / "empty"
    Workspace.init(root, classes=["head"]).close()

    async def scenario(pilot, app):
        assert left(app).spec == Spec("catalog") and right(app).spec == Spec("catalog")
        assert left(app).table.row_count == 0
        await pilot.press("f3", "f5", "enter", "backspace", "ctrl+f6", "plus")
        await settle(pilot)
        await pilot.press("escape", "f10")

    drive(root, scenario)


def test_a_file_gone_from_disk_shows_a_placeholder(fresh_root):
    (fresh_root / "pool" / "cover.png").unlink()

    async def scenario(pilot, app):
        await goto(pilot, left(app), "cover.png")
        await pilot.press("f3")
        await settle(pilot)
        card = app.screen.card
        assert card.info.relpath == "cover.png"
        assert "file not on disk" in card.preview._message

    drive(fresh_root, scenario)
