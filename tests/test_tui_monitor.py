"""The training monitor screen: a growing results.csv followed live, resumed runs, charts, snapshot.

The results.csv grows between pilot pauses (lines appended by the test, the last one
half-written at times); the test asks the screen to read (as its timer would) and waits
for the worker and the message it posts, never for a clock.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from tests.test_monitor import CSV_HEADER, line
from tests.test_tui_app import settle
from tuiops.app import TuiopsApp
from tuiops.errors import TuiopsError
from tuiops.screens.dialogs import MenuDialog
from tuiops.screens.monitor import MonitorScreen
from tuiops.widgets.chart import LineChart
from tuiops.workspace import Workspace

SIZE = (140, 44)


def add_run(
    ws: Workspace,
    name: str,
    *,
    epochs: int = 10,
    pitstops: tuple[int, ...] = (),
    status: str = "running",
    starts: tuple[int, ...] = (0,),
) -> Path:
    """A training run record as `tuiops train` leaves it (no training); returns its results.csv path."""
    save_dir = ws.root / "training" / name
    save_dir.mkdir(parents=True, exist_ok=True)
    with ws.store.transaction() as conn:
        conn.execute(
            "INSERT INTO train_runs(name, created, updated, status, data, model, epochs, epoch, pitstops, "
            "save_dir, args) VALUES (?, '2026-01-01T00:00:00Z', NULL, ?, 'data.yaml', 'yolov8n.yaml', ?, 0, ?, ?, ?)",
            (
                name,
                status,
                epochs,
                json.dumps(list(pitstops)),
                str(save_dir),
                json.dumps({"_sessions": list(starts)}),
            ),
        )
    return save_dir / "results.csv"


def set_starts(ws: Workspace, name: str, starts: tuple[int, ...]) -> None:
    with ws.store.transaction() as conn:
        conn.execute(
            "UPDATE train_runs SET args = ? WHERE name = ?", (json.dumps({"_sessions": list(starts)}), name)
        )


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


async def read_now(pilot: Any, screen: MonitorScreen) -> None:
    """Ask the screen to read (as its timer does) and wait for the worker and its message."""
    before = screen.polls
    screen.poll_now()
    for _ in range(50):
        await settle(pilot)
        if screen.polls > before and not screen._polling:
            return
    raise AssertionError("the monitor did not read")


def table_rows(screen: MonitorScreen) -> list[list[str]]:
    table = screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def header(screen: MonitorScreen) -> str:
    return str(screen.query_one("#monitor-header").render())


def run_app(ws: Workspace, scenario: Any) -> TuiopsApp:
    app = TuiopsApp(ws)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await scenario(pilot, app)

    asyncio.run(main())
    return app


@pytest.fixture
def ws(tmp_path: Path):  # type: ignore[no-untyped-def]
    w = Workspace.init(tmp_path / "ws", classes=["red", "green"])
    try:
        yield w
    finally:
        w.close()


def test_monitor_follows_a_growing_results_file(ws):
    csv = add_run(ws, "v1", epochs=10, pitstops=(2, 5))

    async def scenario(pilot, app):
        screen = MonitorScreen("v1", interval=3600)
        await app.push_screen(screen)
        await read_now(pilot, screen)
        # no results.csv yet
        assert "waiting for the first epoch (no results.csv yet)" in header(screen)
        assert table_rows(screen) == []
        assert screen.query_one("#chart-map", LineChart).series == {"mAP50": [], "mAP50-95": []}

        # the header, then epoch 1, and epoch 2 half-written
        csv.write_text(CSV_HEADER + "\n" + line(1, 10, 0.1) + "\n" + line(2, 20, 0.3)[:11], encoding="utf-8")
        await read_now(pilot, screen)
        rows = table_rows(screen)
        assert [r[0] for r in rows] == ["1/10"]
        assert "epoch 1/10" in header(screen) and "running" in header(screen)
        assert "next pitstop at epoch 2" in header(screen)

        # the rest of epoch 2 and epoch 3
        append(csv, line(2, 20, 0.3)[11:] + "\n" + line(3, 30, 0.2) + "\n")
        await read_now(pilot, screen)
        rows = table_rows(screen)
        assert [r[0] for r in rows] == ["1/10", "2/10", "3/10"]
        assert rows[1][-1] == "★ ◆"  # best epoch, and a pitstop
        assert rows[1][10] == "0.300" and rows[0][-2] == "10s"
        h = header(screen)
        assert "best epoch 2" in h and "10s/epoch" in h and "ETA 1m10s" in h
        assert "next pitstop at epoch 5 in 20s" in h
        chart = screen.query_one("#chart-map", LineChart)
        assert [x for x, _ in chart.series["mAP50-95"]] == [1, 2, 3]
        assert [(m.x, m.label) for m in chart.markers] == [(2, "pitstop"), (5, "pitstop"), (2, "best")]
        assert screen.query_one(DataTable).cursor_row == 2  # follows the last epoch

        # killed after logging epoch 4 (not checkpointed), resumed from epoch 3 with a new clock;
        # then a one-epoch session: its clock does not go back, the store's resume points tell it
        append(csv, line(4, 40, 0.25) + "\n")
        await read_now(pilot, screen)
        set_starts(ws, "v1", (0, 3))
        append(csv, line(4, 15, 0.4) + "\n")
        await read_now(pilot, screen)
        set_starts(ws, "v1", (0, 3, 4))
        append(csv, line(5, 16, 0.45) + "\n")
        await read_now(pilot, screen)
        rows = table_rows(screen)
        assert [r[0] for r in rows] == ["1/10", "2/10", "3/10", "4/10", "5/10"]
        assert rows[3][10] == "0.400" and rows[3][-1] == "↻" and rows[3][-2] == "15s"
        assert rows[4][-1] == "★ ◆ ↻" and rows[4][-2] == "16s"
        assert "3 sessions" in header(screen) and "best epoch 5" in header(screen)

        # nothing new: no redraw
        n = screen.updates
        await read_now(pilot, screen)
        assert screen.updates == n

        # a failed read (a dropped SSH link), then one with nothing new: the header comes back
        screen.post_message(MonitorScreen.Updated(None, TuiopsError("connection lost")))
        await settle(pilot)
        assert "cannot read: connection lost" in header(screen)
        await read_now(pilot, screen)
        assert screen.updates == n and screen.error is None
        assert "cannot read" not in header(screen) and "best epoch 5" in header(screen)

        await pilot.press("b")
        assert screen.query_one(DataTable).cursor_row == 4
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, MonitorScreen)

    run_app(ws, scenario)


def test_monitor_opens_from_the_keys_and_the_command_line(ws):
    add_run(ws, "v1", status="done")
    csv2 = add_run(ws, "v2", status="running")
    csv2.write_text(CSV_HEADER + "\n" + line(1, 10) + "\n", encoding="utf-8")

    async def scenario(pilot, app):
        await pilot.press("ctrl+w")
        await settle(pilot)
        assert isinstance(app.screen, MenuDialog)
        await pilot.press("enter")  # the running run is listed first
        await settle(pilot)
        assert isinstance(app.screen, MonitorScreen) and app.screen.target.run == "v2"
        assert [r[0] for r in table_rows(app.screen)] == ["1/10"]
        await pilot.press("escape")
        await settle(pilot)
        app.main_screen.run_command_line("monitor v1")
        await settle(pilot)
        assert isinstance(app.screen, MonitorScreen) and app.screen.target.run == "v1"
        assert "waiting for the first epoch" in header(app.screen)
        await pilot.press("q")
        await settle(pilot)
        app.main_screen.run_command_line("monitor nope")
        await settle(pilot)
        assert not isinstance(app.screen, MonitorScreen)
        assert any("no training run named 'nope'" in n.message for n in app._notifications)

    run_app(ws, scenario)


def test_snapshot_monitor(snap_compare, tmp_path):
    w = Workspace.init(tmp_path / "ws", classes=["red", "green"])
    csv = add_run(w, "v1", epochs=12, pitstops=(4, 8), status="pitstop", starts=(0, 4))
    maps = [0.05, 0.12, 0.2, 0.26, 0.22, 0.31, 0.35, 0.33]

    def full(e: int, t: float, m: float) -> str:
        loss = [round(v * (0.92**e), 4) for v in (1.9, 2.6, 1.4, 1.8, 2.2, 1.5)]
        p, r = round(0.3 + m, 3), round(0.2 + m * 1.2, 3)
        lr = 0.01 / e
        return ",".join(str(v) for v in (e, t, *loss[:3], p, r, round(m + 0.2, 3), m, *loss[3:], lr, lr, lr))

    lines = [full(e, 10.0 * e, m) for e, m in enumerate(maps[:4], start=1)]
    lines += [full(e, 12.0 * (e - 4), m) for e, m in enumerate(maps[4:], start=5)]
    csv.write_text(CSV_HEADER + "\n" + "\n".join(lines) + "\n" + "9,1", encoding="utf-8")
    w.close()
    ws2 = Workspace.open(tmp_path / "ws")
    app = TuiopsApp(ws2)

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("ctrl+w")
        await settle(pilot)
        assert isinstance(app.screen, MonitorScreen) and app.screen.updates == 1

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        ws2.close()
