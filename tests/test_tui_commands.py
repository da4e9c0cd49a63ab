"""Commands typed on the app's command line: real ``tuiops`` subprocesses that report through
their events channel (JSON lines on a pipe of their own), and whose output shows in the
app's output screen. Plus the one failure policy of the app's workers.

Tests wait on workers and messages (``settle``), never on timers.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import pytest

from tests.test_tui_app import command, drive, notes, settle
from tests.test_tui_browse import build_workspace
from tuiops.cli import run
from tuiops.events import EVENTS_FD_ENV, read_event

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return build_workspace(tmp_path / "demo", images=8)


@pytest.fixture
def silenced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Subprocesses started from here write no human text on stderr at all (a
    ``sitecustomize`` sends it to /dev/null), so whatever the app learns of progress and
    errors comes from the events channel."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os, sys\nsys.stderr = open(os.devnull, 'w')\n")
    paths = [str(site), str(REPO), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


def _events_of(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[dict]]:
    """Run the CLI in this process with an events pipe; its exit code and events."""
    r, w = os.pipe()
    monkeypatch.setenv(EVENTS_FD_ENV, str(w))
    code = run(argv)
    with os.fdopen(r, "rb") as f:
        lines = f.read().splitlines()
    assert EVENTS_FD_ENV not in os.environ  # taken out: children never inherit it
    return code, [e for e in map(read_event, lines) if e is not None]


def _pictures(folder: Path, n: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (32 + i, 24), (i * 20, 40, 90)).save(folder / f"danbooru_{1000 + i}.png")
    return folder


# -- the CLI's events writer ----------------------------------------------------------------------
def test_cli_writes_error_progress_and_result_events(root, tmp_path, monkeypatch, capsys):
    code, events = _events_of(
        [
            "-w",
            str(root),
            "labels",
            "export",
            "--set",
            "nope",
            "--format",
            "yolo",
            "--to",
            str(tmp_path / "x"),
        ],
        monkeypatch,
    )
    assert code == 5
    assert events == [
        {
            "event": "error",
            "message": "no label set named 'nope'",
            "hint": events[0]["hint"],
            "exit_code": 5,
            "kind": "NotFoundError",
        }
    ]
    assert "master" in events[0]["hint"]
    # the human text is unchanged on stderr
    assert "tuiops: error: no label set named 'nope'" in capsys.readouterr().err

    pics = _pictures(tmp_path / "pics", 5)
    code, events = _events_of(["-w", str(root), "scan", str(pics), "--name", "pics"], monkeypatch)
    assert code == 0
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and {e["label"] for e in progress} == {"scan"}
    assert progress[-1]["done"] == progress[-1]["total"] == 5
    (result,) = [e["result"] for e in events if e["event"] == "result"]
    assert result["pool"] == "pics" and result["total"] == 5
    # stdout stays the command's data
    assert "pool pics" in capsys.readouterr().out

    # a usage error of click, too
    code, events = _events_of(["-w", str(root), "frobnicate"], monkeypatch)
    assert code == 2 and events[0]["message"] == "No such command 'frobnicate'."
    assert events[0]["hint"] == "`tuiops --help` shows the usage"


def test_events_go_only_to_a_pipe(root, tmp_path, monkeypatch):
    """A number left in the environment that names a file of this process is not written to."""
    path = tmp_path / "not-a-pipe"
    with path.open("w") as f:
        monkeypatch.setenv(EVENTS_FD_ENV, str(f.fileno()))
        assert (
            run(["-w", str(root), "labels", "export", "--set", "nope", "--format", "yolo", "--to", "x"]) == 5
        )
        assert EVENTS_FD_ENV not in os.environ
    assert path.read_text() == ""
    monkeypatch.setenv(EVENTS_FD_ENV, "not-a-number")
    assert run(["-w", str(root), "pools"]) == 0


@pytest.fixture
def buggy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Subprocesses started from here have a bug: listing the pools divides by zero."""
    site = tmp_path / "buggy"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import tuiops.ops.scan as scan\n"
        "def list_pools(ws):\n"
        "    raise ZeroDivisionError('a bug')\n"
        "scan.list_pools = list_pools\n"
    )
    paths = [str(site), str(REPO), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


def test_an_unexpected_failure_is_an_event_with_its_traceback(root, buggy):
    import subprocess

    r, w = os.pipe()
    proc = subprocess.run(
        [sys.executable, "-m", "tuiops", "-w", str(root), "pools"],
        pass_fds=(w,),
        env={**os.environ, EVENTS_FD_ENV: str(w)},
        capture_output=True,
        text=True,
        check=False,
    )
    os.close(w)
    with os.fdopen(r, "rb") as f:
        (event,) = [read_event(line) for line in f.read().splitlines()]
    assert proc.returncode == 1
    assert event["event"] == "error" and event["kind"] == "internal" and event["exit_code"] == 1
    assert event["message"] == "ZeroDivisionError: a bug"
    assert "Traceback" in event["traceback"] and "in list_pools" in event["traceback"]
    assert "ZeroDivisionError: a bug" in proc.stderr  # the human traceback as before


# -- the app ----------------------------------------------------------------------------------------
def test_a_commands_output_shows_in_the_output_screen(root):
    from tuiops.screens.output import OutputScreen

    assert run(["-w", str(root), "project", "new", "gadget", "--classes", "head", "--count", "3"]) == 0
    assert run(["-w", str(root), "project", "new", "widget", "--classes", "hand", "--count", "3"]) == 0

    async def scenario(pilot, app):
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert any("no command has run" in n for n in notes(app))
        await command(pilot, "tuiops project list")
        (task,) = app.jobs_pane.tasks.values()
        assert task.status == "done", (task.error, task.output)
        # the registry's result of `project list` came as a structured event
        assert [r["name"] for r in task.result] == ["gadget", "widget"], task.result
        assert task.result[0]["classes"] == ["head"]
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert isinstance(app.screen, OutputScreen)
        shown = list(app.screen.log_view.lines)
        assert any(line.startswith("gadget") and "classes head" in line for line in shown), shown
        assert any(line.startswith("widget") for line in shown), shown
        assert app.screen.query_one("#output-status").has_class("-done")
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, OutputScreen)
        # from the jobs pane: o on the picked job
        await command(pilot, "tuiops pools")
        await pilot.press("f12")
        await settle(pilot)
        pane = app.jobs_pane
        pane.cursor = next(i for i, (k, r) in enumerate(pane.rows()) if k == "task" and r.id == task.id)
        await pilot.press("o")
        await settle(pilot)
        assert isinstance(app.screen, OutputScreen) and app.screen.job is task
        await pilot.press("q")
        await settle(pilot)

    drive(root, scenario)


def test_output_arrives_while_the_command_runs(root):
    """The screen opened on a running command appends the lines as they come."""
    from tuiops.screens.output import OutputScreen

    async def scenario(pilot, app):
        await pilot.press("colon")
        await pilot.press(*"tuiops pools")
        await pilot.press("enter", "ctrl+o")
        screen = app.screen
        assert isinstance(screen, OutputScreen)
        await settle(pilot)
        task = screen.job
        assert task.status == "done", task.error
        assert list(screen.log_view.lines) == task.lines
        assert task.lines[0].split()[:2] == ["pool", "files"]

    drive(root, scenario)


def test_a_failing_command_shows_the_message_and_hint_of_its_error_event(root, tmp_path, silenced):
    async def scenario(pilot, app):
        await command(pilot, f"tuiops labels export --set nope --format yolo --to {tmp_path / 'x'}")
        (task,) = app.jobs_pane.tasks.values()
        assert task.status == "failed" and task.exit_code == 5
        assert task.error == "no label set named 'nope'"
        assert task.hint and "master" in task.hint
        assert task.lines == []  # nothing on stderr to read: it all came as an event
        assert any(n == f"no label set named 'nope'\nhint: {task.hint}" for n in notes(app)), notes(app)

    drive(root, scenario)


def test_a_scans_progress_arrives_as_progress_events(root, tmp_path, silenced):
    pics = _pictures(tmp_path / "pics", 7)

    async def scenario(pilot, app):
        await command(pilot, f"tuiops scan {pics} --name pics")
        (task,) = app.jobs_pane.tasks.values()
        assert task.status == "done", task.error
        assert task.progress_events >= 1
        assert task.done == task.total == 7
        assert task.result["pool"] == "pics" and task.result["total"] == 7
        assert task.lines and task.lines[0].startswith("pool pics")  # stdout: the summary

    drive(root, scenario)


def test_a_command_that_fails_unexpectedly_shows_its_traceback(root, buggy):
    from tuiops.screens.dialogs import MessageDialog

    async def scenario(pilot, app):
        await command(pilot, "tuiops pools")
        (task,) = app.jobs_pane.tasks.values()
        assert task.status == "failed" and task.error == "ZeroDivisionError: a bug"
        assert isinstance(app.screen, MessageDialog)
        body = str(app.screen.body)
        assert "Traceback" in body and "in list_pools" in body

    drive(root, scenario)


# -- the failure policy of the workers --------------------------------------------------------------
def test_an_unexpected_worker_error_shows_a_dialog_with_the_traceback(root):
    from tuiops.errors import NotFoundError
    from tuiops.screens.dialogs import MessageDialog

    def broken() -> None:
        raise ZeroDivisionError("a bug")

    def mistaken() -> None:
        raise NotFoundError("no pool named 'x'", hint="`tuiops pools` lists them")

    async def scenario(pilot, app):
        app.main_screen.run_worker(mistaken, thread=True, exit_on_error=False)
        await settle(pilot)
        assert "no pool named 'x'\nhint: `tuiops pools` lists them" in notes(app)
        assert not isinstance(app.screen, MessageDialog)
        app.main_screen.panel("left").run_worker(broken, thread=True, exit_on_error=False)
        await settle(pilot)
        assert isinstance(app.screen, MessageDialog)
        body = str(app.screen.body)
        assert "ZeroDivisionError: a bug" in body and "Traceback" in body and "in broken" in body
        await pilot.press("escape")
        await settle(pilot)
        assert app.is_running

    drive(root, scenario)


def test_workers_follow_the_one_failure_policy():
    """Every worker of the app and its screens runs with exit_on_error=False in a node that
    hands failures to the app; none calls the UI from its thread; no face imports the CLI."""
    sources = [REPO / "tuiops" / "app.py", *sorted((REPO / "tuiops" / "screens").glob("*.py"))]
    workers = 0
    for path in sources:
        text = path.read_text()
        assert "call_from_thread" not in text, path.name
        assert "tuiops.cli" not in text, path.name
        tree = ast.parse(text)
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            bases = [ast.unparse(b) for b in cls.bases]
            for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
                for deco in fn.decorator_list:
                    if isinstance(deco, ast.Call) and ast.unparse(deco.func) == "work":
                        workers += 1
                        kw = {k.arg: ast.unparse(k.value) for k in deco.keywords}
                        assert kw.get("exit_on_error") == "False", f"{path.name}: {fn.name}"
                        assert "ReportsWorkerFailures" in bases, f"{path.name}: {cls.name}"
    assert workers >= 15


def test_the_jobs_pane_reads_no_human_text():
    import tuiops.screens.jobs as jobs

    assert not hasattr(jobs, "PROGRESS_LINE") and not hasattr(jobs, "ERROR_LINE")
    assert not hasattr(jobs, "parse_progress")
    assert json.loads('{"event": "x"}') == read_event(b'{"event": "x"}')
    assert read_event(b"scan: 3/7 (43%)") is None
