"""The projects screen: projects, hosts and mixes of the workspace, and its keys run build and mix as jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_project_mix import make_build
from tests.test_tui_app import settle
from tuiops.app import TuiopsApp
from tuiops.workspace import Workspace

SIZE = (120, 36)


def _workspace(root: Path) -> Path:
    """Projects a and b built, c never built, a host, and one mix of a and b."""
    from tuiops.ops.project_mix import mix_projects
    from tuiops.ops.remote import add_host

    ws = Workspace.init(root, classes=["head"])
    try:
        make_build(ws, "a", ["dog", "cat"], 12)
        make_build(ws, "b", ["cat"], 8)
        c = root / "projects" / "c"
        c.mkdir(parents=True)
        (c / "project.toml").write_text('[project]\nname = "c"\nclasses = ["x"]\ncount = 4\n')
        add_host(ws, "gpu1", "127.0.0.1", port=2222, user="trainer")
        ws.config.hosts["gpu1"].extra["python"] = "/opt/venv/bin/python"
        ws.save_config()
        mix_projects(
            ws, ["a", "b"], root / "mixes" / "ab", val=0.25, seed=1, tar=root / "mixes" / "ab.tar.gz"
        )
    finally:
        ws.close()
    return root


@pytest.fixture
def proot(tmp_path: Path) -> Path:
    return _workspace(tmp_path / "ws")


def test_projects_screen_shows_and_runs_builds_and_mixes(proot):
    import asyncio

    from textual.widgets import DataTable, Static

    from tuiops.screens.projects import ProjectsScreen

    async def scenario() -> None:
        ws = Workspace.open(proot)
        app = TuiopsApp(ws)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await settle(pilot)
                await pilot.press("ctrl+b")
                await settle(pilot)
                screen = app.screen
                assert isinstance(screen, ProjectsScreen) and screen.loads == 1
                states = {p["name"]: p["state"] for p in screen.data["projects"]}
                assert states == {"a": "current", "b": "current", "c": "never built"}
                table = screen.query_one("#projects-table", DataTable)
                assert table.row_count == 3
                assert [h["python"] for h in screen.data["hosts"]] == ["/opt/venv/bin/python"]
                (mix,) = screen.data["mixes"]
                assert mix["projects"] == ["a", "b"] and mix["tar"]
                detail = str(screen.query_one("#mix-detail", Static).render())
                assert "project / class" in detail and "dog" in detail
                # a master of a changes: stale; b builds it here as a job of the app
                toml = proot / "projects" / "a" / "project.toml"
                toml.write_text(toml.read_text().replace("count = 12", "count = 6"))
                await pilot.press("r")
                await settle(pilot)
                assert {p["name"]: p["state"] for p in screen.data["projects"]}["a"] == "stale"
                # mark a and b and mix them: a job of the app (jobs pane), then the mix is listed
                toml.write_text(toml.read_text().replace("count = 6", "count = 12"))
                await pilot.press("r")
                await settle(pilot)
                await pilot.press("space", "space")
                assert screen.marked == {"a", "b"}
                argv = screen.mix_argv()
                assert argv is not None and argv[:4] == ["project", "mix", "a", "b"] and "--build" in argv
                await pilot.press("m")
                await settle(pilot)
                (task,) = app.jobs_pane.tasks.values()
                assert task.status == "done", (task.error, task.lines)
                await pilot.press("r")
                await settle(pilot)
                assert len(screen.data["mixes"]) == 2 and (proot / "mixes" / "a-b.tar.gz").is_file()
                # the command line opens it too, and a build started from it shows in the jobs pane
                await pilot.press("escape")
                app.main_screen.run_command_line("projects")
                await settle(pilot)
                assert isinstance(app.screen, ProjectsScreen)
                await pilot.press("down", "down", "b")
                await settle(pilot)
                task = list(app.jobs_pane.tasks.values())[-1]
                assert task.label.startswith("project build c")
                assert task.status == "failed" and "no master folder" in (task.error or ""), task.error
        finally:
            ws.close()

    asyncio.run(scenario())


def test_snapshot_projects(snap_compare, tmp_path):
    root = _workspace(tmp_path / "ws")
    ws = Workspace.open(root)
    app = TuiopsApp(ws)

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("ctrl+b")
        await settle(pilot)
        await pilot.press("down", "space")
        await settle(pilot)

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        ws.close()
