"""User SQL on the store (`tuiops query`, `--where`, the app's query panels): it only reads,
a condition cannot close the statement around it, and a runaway query stops at its time
limit or when cancelled (Ctrl+C in the CLI, Esc in the app)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_fileops_support import make_pool, scan_pool
from tuiops.cli import run
from tuiops.errors import InputError, UsageError
from tuiops.ops.select import SelectionSpec, select_files
from tuiops.ops.usersql import Limits, check_where

ROOT = Path(__file__).resolve().parents[1]
FOREVER = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"


@pytest.fixture
def pool(ws, tmp_path):
    root = make_pool(tmp_path / "pool", 3)
    scan_pool(ws, root)
    return root


def _run(ws, capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = run(["-w", str(ws.root), *argv])
    return rc, capsys.readouterr().err


def test_query_cannot_create_files_or_write(ws, tmp_path, capsys):
    attached = tmp_path / "elsewhere" / "attached.db"
    attached.parent.mkdir()
    vacuumed = tmp_path / "copy.db"
    rc, err = _run(ws, capsys, "query", f"ATTACH '{attached}' AS a")
    assert (rc, attached.exists()) == (4, False), err
    assert "ATTACH" in err and "not allowed" in err
    rc, err = _run(ws, capsys, "query", f"VACUUM INTO '{vacuumed}'")
    assert (rc, vacuumed.exists()) == (4, False), err
    rc, err = _run(ws, capsys, "query", "SELECT load_extension('/nonexistent/x')")
    assert rc == 4 and "load_extension" in err and "not allowed" in err
    rc, err = _run(ws, capsys, "query", "DETACH main")
    assert rc == 4, err
    rc, err = _run(ws, capsys, "query", "PRAGMA user_version = 7")
    assert rc == 2 and "read-only" in err
    rc, err = _run(ws, capsys, "query", "DROP TABLE classes")
    assert rc == 2 and "read-only" in err
    assert ws.store.one("PRAGMA user_version") == 0
    assert ws.store.one("SELECT count(*) FROM classes") > 0
    # reading is what a query is for, pragmas that describe the store included
    assert _run(ws, capsys, "query", "PRAGMA table_info(files)")[0] == 0
    assert _run(ws, capsys, "query", "PRAGMA user_version")[0] == 0
    assert _run(ws, capsys, "query", "SELECT name FROM classes WHERE name LIKE '%--%'")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == []


@pytest.mark.parametrize(
    "where",
    ["1=1) --", "1=1) OR (1=1", "1 /* hidden", "1; DROP TABLE files", "(1 = 1", "name = 'open"],
)
def test_where_cannot_close_the_statement_around_it(ws, pool, capsys, where):
    rc, err = _run(ws, capsys, "select", "--where", where)
    assert rc == 4, err
    with pytest.raises(InputError):
        select_files(ws, SelectionSpec(where=where))


def test_where_text_inside_literals_is_data():
    check_where("name = 'a) -- b' AND relpath LIKE '%/*%' AND \"key\" <> ';'")
    check_where("(fid > 1 AND (width < 2)) OR name = 'it''s )'")


def test_where_refuses_what_is_not_reading(ws, pool, capsys):
    rc, err = _run(ws, capsys, "select", "--where", "load_extension('/nonexistent/x') IS NULL")
    assert rc == 4 and "not allowed" in err, err
    # a saved selection is checked again when it runs
    with pytest.raises(InputError, match="not allowed"):
        select_files(ws, SelectionSpec(where="load_extension('x') IS NULL"))


@pytest.mark.parametrize(
    "where, said",
    [
        ("1=1) --", "closes a parenthesis"),
        ("1 /* hidden", "holds a comment"),
        ("load_extension('x') IS NULL", "not allowed"),
    ],
)
def test_detect_and_dataset_where_are_checked_as_select_is(ws, pool, tmp_path, where, said):
    from tuiops.ops.dataset import build_dataset
    from tuiops.ops.detect import count_selection
    from tuiops.ops.labels import import_labels

    with pytest.raises(InputError, match=said):
        count_selection(ws.store, where, pool=None, run_id=0, skip_errors=True)
    import_labels(ws, pool, "GT", "yolo")
    with pytest.raises(InputError, match=said):
        build_dataset(ws, "GT", tmp_path / "ds", where=where)
    assert not (tmp_path / "ds").exists()


def test_query_stops_at_its_time_limit(ws, capsys):
    rc, err = _run(ws, capsys, "query", "--timeout", "0.3", FOREVER)
    assert rc == 4, err
    assert "time limit of 0.3 s" in err and "--timeout" in err


def test_where_with_a_sub_select_stops_at_its_time_limit(ws, pool, capsys):
    where = f"fid IN ({FOREVER})"
    rc, err = _run(ws, capsys, "select", "--where", where, "--timeout", "0.3")
    assert rc == 4 and "time limit" in err, err


def test_app_query_stops_at_its_time_limit(ws):
    from tuiops.ops.browse import query_frame

    with pytest.raises(InputError, match="time limit"):
        query_frame(ws.store, FOREVER, limits=Limits(timeout=0.3))
    with pytest.raises(UsageError, match="read-only"):
        query_frame(ws.store, "WITH x AS (SELECT 1) DELETE FROM files")
    assert query_frame(ws.store, "SELECT 1 AS one")["one"].to_list() == [1]


def test_ctrl_c_cancels_a_running_query(ws):
    """SIGINT while the query runs: exit 130 and "cancelled" (the CLI says when it runs)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from tuiops.cli import main; main()", "-w", str(ws.root), "query", FOREVER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # as from an interactive shell, whatever the test runner inherited
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # written once the query has been running a while
        assert "query running" in line, line
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "cancelled" in err


def test_esc_cancels_a_running_query_in_the_app(tmp_path):
    """The app's command line opens a query in a panel; Esc stops it (well before the app's
    own time limit, which would say "time limit" instead)."""
    import asyncio

    from tests.test_tui_app import drive, left, notes, settle
    from tests.test_tui_browse import build_workspace

    async def scenario(pilot, app):
        panel = left(app)
        await pilot.press("colon")
        await pilot.press(*FOREVER)
        await pilot.press("enter")
        assert panel.spec.kind == "query" and panel._opening is not None
        await pilot.press("escape")
        await asyncio.wait_for(settle(pilot), 120)
        assert any("cancelled" in n for n in notes(app)), notes(app)
        assert not any("time limit" in n for n in notes(app))
        assert panel._opening is None and panel.busy == ""

    drive(build_workspace(tmp_path / "demo"), scenario)
