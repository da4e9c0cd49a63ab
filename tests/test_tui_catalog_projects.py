"""The catalog's projects, hosts and mixes entries, what they open into, in the sources and in the app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.test_tui_app import goto, left, names, settle
from tests.test_tui_projects import SIZE, _workspace
from tuiops.app import TuiopsApp
from tuiops.workspace import Workspace


@pytest.fixture
def proot(tmp_path: Path) -> Path:
    """Projects a and b built, c never built, host gpu1 (nothing listens there) and a mix of a and b."""
    return _workspace(tmp_path / "ws")


def _rows(ws: Workspace, spec: str) -> list[dict[str, Any]]:
    from tuiops.ops.browse import Context, Spec, make_source

    store = ws.store
    source = make_source(store, Spec.parse(spec), Context(), ws=ws)
    opened = source.open(store, 100)
    return opened.head.to_dicts()


def test_catalog_entries_open_into_projects_hosts_mixes_and_a_mix_ratio_table(proot):
    from tuiops.ops.remote import check_hosts

    ws = Workspace.open(proot)
    try:
        catalog = {r["name"]: r for r in _rows(ws, "catalog")}
        assert {"projects", "hosts", "mixes"} <= set(catalog)
        assert [catalog[n]["_target"] for n in ("projects", "hosts", "mixes")] == [
            "projects",
            "hosts",
            "mixes",
        ]
        assert catalog["projects"]["what"] == "3 proj"
        projects = {r["name"]: r for r in _rows(ws, "projects")}
        assert {n: r["state"] for n, r in projects.items()} == {
            "a": "current",
            "b": "current",
            "c": "never built",
        }
        assert projects["a"]["images"] == 12 and projects["a"]["classes"] == "dog, cat"
        assert projects["a"]["built"] != "-" and projects["c"]["built"] == "-"
        (host,) = _rows(ws, "hosts")
        assert host["name"] == "gpu1" and host["python"] == "/opt/venv/bin/python"
        assert host["reachable"] == "not checked"
        # a check (nothing answers on its port) is what the hosts entry then shows
        (res,) = check_hosts(ws, ["gpu1"])
        assert not res.ok
        (host,) = _rows(ws, "hosts")
        assert host["reachable"] == "no" and host["checked"] != "-"
        (mix,) = _rows(ws, "mixes")
        assert mix["projects"] == "a, b" and mix["tar"] == "ab.tar.gz"
        assert mix["images"] == mix["train"] + mix["val"] == 20
        ratio = _rows(ws, mix["_target"])
        assert [r["project"] for r in ratio if not r["project"].startswith(" ")] == ["a", "b"]
        per = {r["project"].strip(): r for r in ratio}
        assert per["a / dog"]["images"] > 0 and per["b"]["val"] >= 1
        assert sum(per[p]["val"] for p in ("a", "b")) == mix["val"]
    finally:
        ws.close()


def test_a_workspace_without_projects_hosts_or_mixes_has_no_such_entries(tmp_path):
    ws = Workspace.init(tmp_path / "empty", classes=["head"])
    try:
        assert _rows(ws, "catalog") == []
    finally:
        ws.close()


def test_the_app_opens_the_projects_and_a_mix_from_the_catalog(proot):
    async def scenario() -> None:
        ws = Workspace.open(proot)
        app = TuiopsApp(ws)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await settle(pilot)
                app.main_screen.action_catalog_left()  # type: ignore[union-attr]
                await settle(pilot)
                panel = left(app)
                assert {"projects", "hosts", "mixes"} <= set(names(panel))
                await goto(pilot, panel, "projects")
                await pilot.press("enter")
                await settle(pilot)
                assert str(panel.spec) == "projects"
                assert names(panel) == ["a", "b", "c"]
                await pilot.press("backspace")
                await settle(pilot)
                assert str(panel.spec) == "catalog"
                await goto(pilot, panel, "hosts")
                await pilot.press("enter")
                await settle(pilot)
                assert names(panel) == ["gpu1"]
                await pilot.press("backspace")
                await settle(pilot)
                await goto(pilot, panel, "mixes")
                await pilot.press("enter")
                await settle(pilot)
                assert names(panel) == ["ab"]
                await pilot.press("enter")
                await settle(pilot)
                assert panel.spec.kind == "mix"
                rows = [panel.table.row_at(i) for i in range(panel.table.row_count)]
                assert [r["project"] for r in rows if r is not None][:1] == ["a"]
        finally:
            ws.close()

    asyncio.run(scenario())


def test_snapshot_catalog_projects(snap_compare, proot):
    ws = Workspace.open(proot)
    app = TuiopsApp(ws)

    async def run_before(pilot: Any) -> None:
        from tuiops.ops.browse import Spec

        await settle(pilot)
        app.main_screen.action_catalog_left()  # type: ignore[union-attr]
        await settle(pilot)
        await goto(pilot, left(app), "projects")
        await pilot.press("enter")
        await settle(pilot)
        app.main_screen.panel("right").open(Spec.parse("mix:1"))  # type: ignore[union-attr]
        await settle(pilot)

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        ws.close()
