"""Snapshots of the main screens (pytest-textual-snapshot; baselines in tests/__snapshots__).

The workspace is the fixed demo of :func:`tests.test_tui_browse.build_workspace` (fixed
seed, sizes, times and hashes); nothing on screen shows a clock or a temporary path.
Regenerate with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_tui_app import goto, left, settle
from tests.test_tui_browse import build_workspace
from tuiops.app import TuiopsApp
from tuiops.workspace import Workspace

SIZE = (120, 36)


@pytest.fixture(scope="module")
def snap_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_workspace(tmp_path_factory.mktemp("snap") / "demo")
    from tuiops.store import Store

    store = Store(root / "tuiops.db")
    job = store.job_start("scan", {"pool": "pool"}, total=28)
    store.job_progress(job, 28)
    store.job_finish(job, "done")
    failed = store.job_start("labels.import", {}, total=10)
    store.job_progress(failed, 3)
    store.job_finish(failed, "failed", error="labels/x.txt:3: class id 9 is not in the class map")
    store.close()
    return root


def _snap(snap_compare: Any, root: Path, steps: Any) -> bool:
    ws = Workspace.open(root)
    app = TuiopsApp(ws)

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await steps(pilot, app)
        await settle(pilot)

    try:
        return snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        ws.close()


def test_snapshot_panels(snap_compare, snap_root):
    async def steps(pilot, app):
        await goto(pilot, left(app), "gelbooru-1365414.png")
        await pilot.press("insert", "insert")

    assert _snap(snap_compare, snap_root, steps)


def test_snapshot_quick_search(snap_compare, snap_root):
    async def steps(pilot, app):
        await pilot.press("alt+s")
        await settle(pilot)
        await pilot.press(*"afebooru_5")

    assert _snap(snap_compare, snap_root, steps)


def test_snapshot_help(snap_compare, snap_root):
    async def steps(pilot, app):
        await pilot.press("f1")

    assert _snap(snap_compare, snap_root, steps)


def test_snapshot_viewer(snap_compare, snap_root):
    async def steps(pilot, app):
        await goto(pilot, left(app), "gelbooru-3167620.png")
        await pilot.press("f3")

    assert _snap(snap_compare, snap_root, steps)


def test_snapshot_viewer_zoomed_to_the_second_box(snap_compare, snap_root):
    """Half blocks (the snapshot's terminal answers nothing): ] chooses the next box, drawn
    yellow and zoomed to."""

    async def steps(pilot, app):
        await goto(pilot, left(app), "gelbooru-3167620.png")
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("right_square_bracket")
        await settle(pilot)
        await pilot.press("right_square_bracket")

    assert _snap(snap_compare, snap_root, steps)


def test_snapshot_quick_view_sorted(snap_compare, snap_root):
    async def steps(pilot, app):
        await pilot.press("ctrl+f6")
        await settle(pilot)
        await goto(pilot, left(app), "gelbooru-4356679.png")
        await pilot.press("ctrl+q")

    assert _snap(snap_compare, snap_root, steps)


def test_snapshot_labels_table_filtered_and_jobs(snap_compare, snap_root):
    async def steps(pilot, app):
        await pilot.press("tab")
        await goto(pilot, app.main_screen.panel("right"), "v1")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("slash", *"class = 'head' AND score < 0.7", "enter")
        await settle(pilot)
        await pilot.press("f12")
        await settle(pilot)
        await pilot.press("tab")

    assert _snap(snap_compare, snap_root, steps)


def test_snapshot_menu(snap_compare, snap_root):
    async def steps(pilot, app):
        await pilot.press("f9")

    assert _snap(snap_compare, snap_root, steps)


@pytest.fixture(scope="module")
def triage_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuiops.ops.match import match

    root = build_workspace(tmp_path_factory.mktemp("snap-triage") / "demo")
    with Workspace.open(root) as ws:
        match(ws, "master", "v1")
    return root


def test_snapshot_triage(snap_compare, triage_root):
    async def steps(pilot, app):
        app.main_screen.run_command_line("triage --set master --run v1 --kind worst")
        await settle(pilot)
        await pilot.press("n")

    assert _snap(snap_compare, triage_root, steps)


def test_snapshot_triage_split_and_zoomed(snap_compare, triage_root):
    """Half blocks: the labels | detections view, zoomed to the object's boxes."""

    async def steps(pilot, app):
        app.main_screen.run_command_line("triage --set master --run v1 --kind worst")
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        await pilot.press("z")

    assert _snap(snap_compare, triage_root, steps)
