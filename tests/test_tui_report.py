"""The report screen inside the real app: charts drawn from `report_data`, keys switch tabs and classes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from tests.test_tui_app import SIZE, settle
from tests.test_tui_browse import build_workspace
from tuiops.app import TuiopsApp
from tuiops.screens.report import ReportScreen, braille_plot, hbar, histogram
from tuiops.workspace import Workspace


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_workspace(tmp_path_factory.mktemp("tui-report") / "demo")


def text_of(widget: Any, width: int = 200) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()


def run_app(root: Path, scenario: Any) -> None:
    ws = Workspace.open(root)
    app = TuiopsApp(ws)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await scenario(pilot, app, ws)

    try:
        asyncio.run(main())
    finally:
        ws.close()


def test_report_screen_shows_every_chart(demo_root):
    from tuiops.ops.evaluate import evaluate

    with Workspace.open(demo_root) as ws:
        want = evaluate(ws, "master", "v1")

    async def scenario(pilot: Any, app: TuiopsApp, ws: Workspace) -> None:
        screen = ReportScreen(ws, "master", "v1")
        app.push_screen(screen)
        await settle(pilot)
        assert app.screen is screen and screen.data is not None and screen.error is None
        assert str(screen.query_one("#report-keys").styles.dock) == "bottom"
        head = text_of(screen.query_one("#report-head"))
        assert f"mAP {want.stats['map']:.3f}" in head and "master × v1" in head
        ap = text_of(screen.query_one("#report-ap"))
        for name, value in want.per_class.items():
            assert name in ap
            if value >= 0:
                assert f"{value:.3f}" in ap
        assert "█" in ap

        first = screen.pr_class
        await pilot.press("2")
        await settle(pilot)
        pr = text_of(screen.query_one("#report-pr"))
        assert first is not None and first in pr and "recall" in pr
        assert any(0x2800 < ord(ch) <= 0x28FF for ch in pr)
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert screen.pr_class != first and screen.pr_class in text_of(screen.query_one("#report-pr"))
        await pilot.press("left_square_bracket")
        assert screen.pr_class == first

        await pilot.press("3")
        await settle(pilot)
        from textual.widgets import TabbedContent

        assert screen.query_one(TabbedContent).active == "confusion"
        conf = text_of(screen.query_one("#report-confusion"), 240)
        assert "missed" in conf and "extra" in conf and "head" in conf
        total = screen.data.totals
        assert str(screen.data.confusion[: len(screen.data.class_names), -1].sum()) == str(total["fn"])

        await pilot.press("4")
        hist = text_of(screen.query_one("#report-hist"))
        assert "scores of tp detections" in hist and "IoU of matched pairs" in hist
        await pilot.press("5")
        worst = text_of(screen.query_one("#report-worst"))
        assert screen.data.worst.height > 0 and screen.data.worst["key"][0] in worst

        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is not screen

    run_app(demo_root, scenario)


def test_report_screen_shows_the_error_of_an_unknown_run(demo_root):
    async def scenario(pilot: Any, app: TuiopsApp, ws: Workspace) -> None:
        screen = ReportScreen(ws, "master", "nope")
        app.push_screen(screen)
        await settle(pilot)
        assert screen.data is None and screen.error is not None
        assert "no detection run named 'nope'" in text_of(screen.query_one("#report-head"))
        assert any("nope" in n.message for n in app._notifications)

    run_app(demo_root, scenario)


def test_text_chart_helpers():
    assert hbar(1.0, 4) == "████" and hbar(0.0, 4) == "    " and hbar(0.5, 3) == "█▌ "
    rows = braille_plot([(np.ones(101), "red")], width=10, height=4)
    assert len(rows) == 4 and all(len(r.plain) == 10 for r in rows)
    assert set(rows[0].plain) == {chr(0x2800 + 0x01 + 0x08)} and rows[3].plain.strip() == ""
    diag = braille_plot([(np.linspace(0, 1, 101), "red")], width=10, height=4)
    assert diag[0].plain[-1] != " " and diag[3].plain[0] != " " and diag[0].plain[0] == " "
    h = histogram(np.array([0, 4, 8]), np.linspace(0, 1, 4), "red", height=2, title="t")
    c = Console(width=40, record=True, color_system=None)
    c.print(h)
    lines = c.export_text().splitlines()
    assert lines[1] == "│    ██" and lines[2] == "│  ████"


def test_report_key_opens_the_screen_for_the_context(demo_root):
    async def scenario(pilot: Any, app: TuiopsApp, ws: Workspace) -> None:
        from dataclasses import replace

        main = app.screen
        app.ctx = replace(app.ctx, label_set=None, run=None)
        await pilot.press("ctrl+e")
        await settle(pilot)
        assert app.screen is main
        app.ctx = replace(app.ctx, label_set="master", run="v1")
        await pilot.press("ctrl+e")
        await settle(pilot)
        assert isinstance(app.screen, ReportScreen)
        assert (app.screen.set_name, app.screen.run_name) == ("master", "v1")
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ReportScreen)

    run_app(demo_root, scenario)
