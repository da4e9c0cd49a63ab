"""FAR habits of the panels, driven by the pilot on a real store: no plain letter is a command
(letters go to the command line, `q` does not quit), Alt+letter is the quick search, the moved
commands answer their new keys and words, F5 carries label files, the header names the label
set and run that Lbl/Det count, and user keymaps from tuiops.toml.

Tests wait on workers and messages (``settle``), never on timers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_tui_app import command, drive, goto, left, names, notes, right, settle
from tests.test_tui_browse import build_workspace
from tuiops.ops.browse import Context, Spec
from tuiops.workspace import Workspace


@pytest.fixture
def fresh_root(tmp_path: Path) -> Path:
    return build_workspace(tmp_path / "demo")


def cmdline(app: Any) -> Any:
    return app.main_screen.query_one("#command")


# -- letters and quitting ------------------------------------------------------------------------
def test_q_does_not_quit_letters_go_to_the_command_line_and_colon_q_quits(matched_root):
    from tuiops.screens.viewer import ViewerScreen

    async def scenario(pilot, app):
        await goto(pilot, left(app), "cover.png")
        await pilot.press("q")
        await settle(pilot)
        assert app.return_code is None and app.is_running
        assert cmdline(app).has_focus and cmdline(app).value == "q"
        # Esc empties the command line and gives the keys back to the panel
        await pilot.press("escape")
        assert cmdline(app).value == "" and left(app).table.has_focus
        # a word typed straight into the panel runs as on the command line
        await pilot.press(*"view", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ViewerScreen)
        await pilot.press("escape")
        await settle(pilot)
        # characters no key is bound to (?, letters, digits) go there too; bound ones (+) do not
        await pilot.press("question_mark", "x", "1")
        assert cmdline(app).value == "?x1"
        await pilot.press("escape")
        await pilot.press("colon", "q", "enter")
        await settle(pilot)
        assert app.return_code == 0

    app = drive(matched_root, scenario)
    assert app.return_code == 0


@pytest.mark.parametrize("word", ["quit", "exit", ":q"])
def test_quit_words_of_the_command_line(matched_root, word):
    async def scenario(pilot, app):
        app.main_screen.run_command_line(word)
        await settle(pilot)
        assert app.return_code == 0

    drive(matched_root, scenario)


def test_quitting_asks_first_while_a_job_runs(matched_root):
    from tuiops.screens.dialogs import ConfirmDialog

    async def scenario(pilot, app):
        task = app._new_task("scan pool")
        assert task.running
        await pilot.press(*"q", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog) and "1 job(s) still run" in str(app.screen.body)
        await pilot.press("escape")
        await settle(pilot)
        assert app.return_code is None
        await pilot.press("f10")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")
        await settle(pilot)
        task.status = "done"
        await pilot.press("f10")
        await settle(pilot)
        assert app.return_code == 0

    drive(matched_root, scenario)


# -- the moved commands ----------------------------------------------------------------------------
def test_moved_commands_answer_their_keys_and_words(matched_root):
    from tuiops.screens.dialogs import MenuDialog
    from tuiops.screens.projects import ProjectsScreen
    from tuiops.screens.report import ReportScreen

    async def back(pilot):
        await pilot.press("escape")
        await settle(pilot)

    async def scenario(pilot, app):
        main = app.main_screen
        for keys in (("f2",), ("ctrl+t",), ("colon", *"triage", "enter")):
            await pilot.press(*keys)
            await settle(pilot)
            assert isinstance(app.screen, MenuDialog) and "Triage" in app.screen.title_text, keys
            await back(pilot)
        for keys in (("f11",), ("ctrl+e",), ("colon", *"report", "enter")):
            await pilot.press(*keys)
            await settle(pilot)
            assert isinstance(app.screen, ReportScreen), keys
            await back(pilot)
        for keys in (("ctrl+b",), ("colon", *"projects", "enter")):
            await pilot.press(*keys)
            await settle(pilot)
            assert isinstance(app.screen, ProjectsScreen), keys
            await back(pilot)
        assert app.screen is main
        # the jobs pane: F12 or `jobs`; the sort menu: Ctrl+F12 or `sort`
        await command(pilot, "jobs")
        assert app.jobs_pane.display
        await pilot.press("f12")
        assert not app.jobs_pane.display
        await command(pilot, "sort")
        assert isinstance(app.screen, MenuDialog) and "Sort" in app.screen.title_text
        await back(pilot)
        # sync: Ctrl+K or `sync`
        await goto(pilot, left(app), "cover.png")
        await pilot.press("down", "ctrl+k")
        await settle(pilot)
        assert main.sync and right(app).spec.kind == "image"
        await command(pilot, "sync")
        assert not main.sync

    drive(matched_root, scenario)


def test_monitor_moved_to_ctrl_w(matched_root):
    async def scenario(pilot, app):
        await pilot.press("ctrl+w")
        await settle(pilot)
        await command(pilot, "monitor")
        # the demo has no training run: both say so the same way
        said = [n for n in notes(app) if "no training runs yet" in n]
        assert len(said) == 2, notes(app)

    drive(matched_root, scenario)


# -- quick search ------------------------------------------------------------------------------
def test_alt_letter_quick_search(matched_root):
    async def scenario(pilot, app):
        panel = left(app)
        box = panel.search_box
        assert not box.display
        await pilot.press("alt+g")
        await settle(pilot)
        assert box.display and box.has_focus and box.value == "g"
        assert panel.table.current_row()["name"] == "gelbooru-1365414.png"
        # typing on (with or without Alt) narrows it; ↓ and ↑ go to the next and previous hit
        await pilot.press(*"elbooru-", "alt+4")
        await settle(pilot)
        assert box.value == "gelbooru-4"
        assert panel.table.current_row()["name"] == "gelbooru-4356679.png"
        await pilot.press("backspace")
        await settle(pilot)
        assert panel.table.current_row()["name"] == "gelbooru-1365414.png"
        await pilot.press("down")
        await settle(pilot)
        assert panel.table.current_row()["name"] == "gelbooru-3167620.png"
        await pilot.press("up", "up")
        await settle(pilot)
        assert panel.table.current_row()["name"] == "gelbooru-999998.png"
        # wildcards as FAR: * any run of characters
        await pilot.press("ctrl+u")  # the Input's own key: clear
        await pilot.press(*"*sample")
        await settle(pilot)
        assert box.value == "*sample"
        assert panel.table.current_row()["name"] == "yandere_3607882_sample.jpeg"
        # no such name: the cursor stays and the box says so
        await pilot.press("z")
        await settle(pilot)
        assert box.has_class("-none")
        assert panel.table.current_row()["name"] == "yandere_3607882_sample.jpeg"
        # Esc closes it; the cursor stays, the panel has the keys again
        await pilot.press("escape")
        assert not box.display and panel.table.has_focus
        assert panel.table.current_row()["name"] == "yandere_3607882_sample.jpeg"
        # folders are found too (never ".."); Enter closes it
        await pilot.press("alt+r", "enter")
        await settle(pilot)
        assert panel.table.current_row()["name"] == "review" and not box.display
        # the quick search of a sorted panel goes by the order shown
        await pilot.press("ctrl+f6")
        await settle(pilot)
        order = [n for n in names(panel) if n.startswith("danbooru")]
        await pilot.press("alt+d", "escape")
        await settle(pilot)
        assert panel.table.current_row()["name"] == order[0]
        assert order != sorted(order)

    drive(matched_root, scenario)


def test_bound_alt_keys_keep_their_action(matched_root):
    async def scenario(pilot, app):
        await pilot.press("alt+2")
        await settle(pilot)
        assert right(app).spec == Spec("catalog") and not left(app).search_box.display
        # Alt+Q, Alt+S and Alt+O ran quick view, save and output before: now they search too
        for key, letter in (("alt+q", "q"), ("alt+s", "s"), ("alt+o", "o")):
            await pilot.press(key)
            await settle(pilot)
            box = app.main_screen.active.search_box  # the right panel's: Alt+2 went there
            assert box.display and box.value == letter
            assert not app.main_screen.quick and app.screen is app.main_screen
            await pilot.press("escape")

    drive(matched_root, scenario)


# -- F5/F6 -------------------------------------------------------------------------------------------
def test_f5_carries_the_label_files_into_the_other_panels_folder(fresh_root):
    from tuiops.screens.dialogs import ConfirmDialog, InputDialog

    pool = fresh_root / "pool"
    (pool / "danbooru_2118827.txt").write_text("0 0.5 0.5 0.2 0.2\n", encoding="utf-8")
    (pool / "danbooru_2118827.xml").write_text("<annotation><object/></annotation>\n", encoding="utf-8")

    async def scenario(pilot, app):
        right(app).open(Spec("pool", "pool", "review/"))
        await settle(pilot)
        await goto(pilot, left(app), "danbooru_2118827.jpg")
        await pilot.press("f5")
        await settle(pilot)
        assert isinstance(app.screen, InputDialog)
        assert "label files" in app.screen.prompt
        assert app.screen.query_one("#dialog-input").value == str(pool / "review")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert "label files: 2" in str(app.screen.body)
        await pilot.press("y")
        await settle(pilot)
        got = sorted(p.name for p in (pool / "review").iterdir() if p.stem == "danbooru_2118827")
        assert got == ["danbooru_2118827.jpg", "danbooru_2118827.txt", "danbooru_2118827.xml"]
        # an image with no label file beside it: the confirmation says so
        await goto(pilot, left(app), "cover.png")
        await pilot.press("f6", "enter")
        await settle(pilot)
        assert "label files: none beside these images" in str(app.screen.body)
        await pilot.press("escape")
        await settle(pilot)

    drive(fresh_root, scenario)


# -- the panel header and the context ----------------------------------------------------------------
def test_header_names_the_label_set_and_run_the_columns_count(matched_root):
    async def scenario(pilot, app):
        title = str(app.main_screen.query_one("#title-left").render())
        assert "Lbl master · Det v1" in title
        assert "Lbl" not in str(app.main_screen.query_one("#title-right").render())  # the catalog
        app.main_screen.run_command_line("set run -")
        await settle(pilot)
        assert "Lbl master · Det —" in str(app.main_screen.query_one("#title-left").render())

    drive(matched_root, scenario)


def test_the_only_set_and_run_are_picked_after_a_command(matched_root):
    async def scenario(pilot, app):
        assert app.ctx == Context(None, None, None)
        assert "Lbl — · Det —" in str(app.main_screen.query_one("#title-left").render())
        await command(pilot, "tuiops pools")
        assert app.ctx.label_set == "master" and app.ctx.run == "v1"
        await settle(pilot)
        assert "Lbl master · Det v1" in str(app.main_screen.query_one("#title-left").render())

    drive(matched_root, scenario, ctx=Context(None, None, None))


def test_the_match_panel_shows_whole_keys(matched_root):
    with Workspace.open(matched_root) as ws:
        name = str(ws.store.one("SELECT name FROM matches ORDER BY id LIMIT 1"))

    async def scenario(pilot, app):
        right(app).open(Spec("match", name))
        await settle(pilot)
        panel = right(app)
        keys = [panel.table.row_at(i)["key"] for i in range(panel.table.row_count)]
        longest = max(keys, key=len)
        assert panel.source.columns[0].name == "key" and panel.source.columns[0].width >= len(longest)
        lines = [panel.table.render_line(y).text for y in range(panel.table.size.height)]
        row = keys.index(longest)
        assert any(longest in line for line in lines[1 : row + 2]), lines

    drive(matched_root, scenario)


# -- user keymaps ---------------------------------------------------------------------------------
def _with_keymap(root: Path, text: str) -> None:
    cfg = root / "tuiops.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + "\n[tui.keymap]\n" + text, encoding="utf-8")


def test_user_keymap_rebinds_actions_and_f1_shows_it(fresh_root):
    from tuiops.screens.help import HelpScreen
    from tuiops.screens.viewer import ViewerScreen

    _with_keymap(
        fresh_root,
        'view = "f3,ctrl+v"\nquit = ["f10", "ctrl+q"]\nviewer-close = "escape,x"\nswitch-panel = "tab,?"\n',
    )

    async def scenario(pilot, app):
        await goto(pilot, left(app), "cover.png")
        await pilot.press("ctrl+v")
        await settle(pilot)
        assert isinstance(app.screen, ViewerScreen)
        await pilot.press("q")  # no longer closes the viewer: the keymap gave it Esc and x
        await settle(pilot)
        assert isinstance(app.screen, ViewerScreen)
        await pilot.press("x")
        await settle(pilot)
        assert not isinstance(app.screen, ViewerScreen)
        # "?" (a character) is a key of the keymap, so it switches panels instead of typing
        await pilot.press("question_mark")
        assert app.main_screen.active_side == "right"
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = "".join(_plain(w.content) for w in app.screen.query("Static"))
        assert "F3, Ctrl+V *, :view" in text and "F10, Ctrl+Q *, :q" in text and "Tab, ? *" in text
        assert "[tui.keymap]" in text
        quick = next(line for line in text.splitlines() if "Quick view:" in line)
        assert "(none)" in quick and "quick-view" in quick  # Ctrl+Q went to quit
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("ctrl+q")
        await settle(pilot)
        assert app.return_code == 0

    drive(fresh_root, scenario)


def _plain(renderable: Any) -> str:
    from tests.test_tui_app import _plain as plain

    return plain(renderable)


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ('veiw = "f3"', "[tui.keymap] veiw: no action has that id"),
        ('view = "ctrl+florp"', "[tui.keymap] view: 'ctrl+florp' has an unknown key 'florp'"),
        ('view = "hyperctrl+v"', "[tui.keymap] view: 'hyperctrl+v' has an unknown modifier 'hyperctrl'"),
        ("view = 3", "[tui.keymap] view must be a string of keys or a list of them"),
        ('view = "f3,,v"', "[tui.keymap] view has an empty key"),
    ],
)
def test_a_bad_keymap_entry_is_an_error_naming_the_toml_key(fresh_root, capsys, entry, said):
    from tuiops.cli import run

    _with_keymap(fresh_root, entry + "\n")
    assert run(["-w", str(fresh_root), "tui"]) == 3
    err = capsys.readouterr().err
    assert said in err and str(fresh_root / "tuiops.toml") in err
    assert "hint:" in err
