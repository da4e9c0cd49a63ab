"""Scripts in the terminal app: start one from the command line, record a session as one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.test_tui_app import command, drive, goto, left, notes, settle
from tests.test_tui_browse import build_workspace
from tuiops.cli import run
from tuiops.script.parse import load_script
from tuiops.script.validate import validate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return build_workspace(tmp_path / "demo")


def test_a_script_started_from_the_command_line_shows_in_the_jobs_pane(root, monkeypatch):
    monkeypatch.chdir(REPO)

    async def scenario(pilot, app):
        await pilot.press("f12")
        await settle(pilot)
        await command(pilot, "run scripts/prepare_training.yaml --var clean=tui-clean")
        pane = app.jobs_pane
        task = next(iter(pane.tasks.values()))
        assert task.label.startswith("run scripts/prepare_training")
        assert task.status == "done", (task.error, task.output)
        assert "run 1: done" in task.output
        app._poll_jobs()
        await settle(pilot)
        scripts = [j for j in pane.jobs if j.kind == "script"]
        assert scripts and scripts[0].status == "done"
        # a recorded run is not a step of a recorded session
        assert len(app.recorder) == 0

    drive(root, scenario)
    assert (root / "datasets" / "tui-clean" / "data.yaml").is_file()


def test_actions_recorded_in_the_app_save_as_a_script_that_validates(root):
    from tuiops.screens.dialogs import ConfirmDialog, InputDialog

    async def scenario(pilot, app):
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert any("nothing recorded yet" in n for n in notes(app))
        await command(pilot, "match --set master --run v1 --iou 0.6")
        await command(pilot, "match --set nope --run v1")
        assert [t.status for t in app.jobs_pane.tasks.values()] == ["done", "failed"]
        await goto(pilot, left(app), "cover.png")
        await pilot.press("insert")
        await pilot.press("f5")
        await settle(pilot)
        assert isinstance(app.screen, InputDialog)
        app.screen.query_one("#dialog-input").value = "picked"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog), notes(app)
        await pilot.press("y")
        await settle(pilot)
        assert [t.status for t in app.jobs_pane.tasks.values()] == ["done", "failed", "done"]
        assert len(app.recorder) == 2
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, InputDialog)
        assert app.screen.query_one("#dialog-input").value == "scripts/session.yaml"
        await pilot.press("enter")
        await settle(pilot)
        assert any("saved 2 steps" in n for n in notes(app)), notes(app)

    drive(root, scenario)
    path = root / "scripts" / "session.yaml"
    script = load_script(path)
    validate(script, {})
    assert [s.op for s in script.steps] == ["match", "ops copy"]
    assert {k: p.value for k, p in script.steps[0].params.items()} == {
        "set": "master",
        "run": "v1",
        "iou": 0.6,
    }
    copy = {k: p.value for k, p in script.steps[1].params.items()}
    assert copy["where"].startswith("file_id") and copy["pool"] == ["pool"] and copy["to"] == "picked"
    # the saved session runs headless and does the same again
    shutil.rmtree(root / "picked")
    assert run(["-w", str(root), "run", str(path)]) == 0
    assert (root / "picked" / "cover.png").is_file()
