"""A pool panel's whole-column loads: read in short slices, each field loaded by the first
thread that asks for it, and never in the way of the UI thread's page reads."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from tests.test_tui_browse import build_workspace
from tuiops.ops import browse as b
from tuiops.ops.browse import boxes, pools
from tuiops.ops.browse.source import Source, lowered_key
from tuiops.store import Store
from tuiops.store.connections import ADBC, POOL

#: A guard against a hang on a regression, never a timing: the waits below end on events.
HANG = 60

#: The gated source below reads no store.
NO_STORE: Any = None


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_workspace(tmp_path_factory.mktemp("scale") / "demo")


@pytest.fixture
def store(demo: Path):
    s = Store(demo / "tuiops.db", readonly=True)
    yield s
    s.close()


@pytest.fixture
def tiny_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices of a few rows, so that the small store is read in many of them."""
    monkeypatch.setattr(pools, "LOAD_SLICE", 3, raising=False)
    monkeypatch.setattr(boxes, "COUNT_SLICE", 2, raising=False)


def _pool(store: Store) -> b.PoolSource:
    src = b.make_source(store, b.Spec("pool", "pool"), b.default_context(store))
    assert isinstance(src, b.PoolSource)
    return src


def test_sliced_loads_equal_the_store(store, tiny_slices):
    src = _pool(store)
    ids = src.base_ids(store)
    want_ids = [
        r[0]
        for r in store.execute(
            "SELECT id FROM files WHERE pool_id = 1 AND relpath NOT LIKE '%/%' ORDER BY relpath"
        )
    ]
    assert ids.tolist() == want_ids and len(ids) > 10
    got = src.fields_for(store, ["name", "size", "mtime", "status", "labels", "dets", "pixels"], ids)
    sql = store.read_frame(
        "SELECT f.relpath AS name, f.size, f.mtime_ns AS mtime, f.status, f.width * f.height AS pixels, "
        "(SELECT count(*) FROM v_labels v WHERE v.item_id = f.item_id AND v.label_set = 'master') AS labels, "
        "(SELECT count(*) FROM v_detections v WHERE v.item_id = f.item_id AND v.run = 'v1') AS dets "
        "FROM files f WHERE f.pool_id = 1 AND f.relpath NOT LIKE '%/%' ORDER BY f.relpath"
    )
    for name in ("name", "size", "mtime", "status", "labels", "dets", "pixels"):
        assert got[name].to_list() == sql[name].to_list(), name


def test_sort_on_a_column_not_loaded_equals_the_order_after_loading(store, tiny_slices):
    cold = _pool(store)
    ids = cold.base_ids(store)
    assert "mtime" not in cold.cached_fields()
    order = b.compute_order(cold, store, ids, sort=[("mtime", True)])
    warm = _pool(store)
    wids = warm.base_ids(store)
    warm.fields_for(store, warm.preload_fields(), wids)
    again = b.compute_order(warm, store, wids, sort=[("mtime", True)])
    assert order.positions is not None and again.positions is not None
    assert ids[order.positions].tolist() == wids[again.positions].tolist()
    by_sql = [
        r[0]
        for r in store.execute(
            "SELECT id FROM files WHERE pool_id = 1 AND relpath NOT LIKE '%/%' ORDER BY mtime_ns DESC, relpath"
        )
    ]
    assert ids[order.positions].tolist() == by_sql


def test_background_load_brings_what_sorts_and_masks_need(store):
    src = _pool(store)
    ids = src.base_ids(store)
    for name in src.preload_fields():
        src.fields_for(store, [name], ids)
    assert {"size", "mtime", "labels", "dets", "name", "status"} <= set(src.cached_fields())


class _Gated(Source):
    """A source whose field ``slow`` loads only when the test lets it (the other fields at once)."""

    def __init__(self) -> None:
        super().__init__(b.Spec("query", "gated"))
        self.fields = {"slow": "", "fast": ""}
        self.started = threading.Event()
        self.release = threading.Event()
        self.loads: list[str] = []

    def _load_fields(self, store: Any, names: list[str], ids: np.ndarray) -> dict[str, pl.Series]:
        self.loads += names
        if "slow" in names:
            self.started.set()
            self.release.wait(HANG)
        return {n: pl.Series(n, ids * (2 if n == "slow" else 3)) for n in names}


def test_a_field_loads_while_another_thread_loads_a_different_one():
    src = _Gated()
    ids = np.arange(5, dtype=np.int64)
    results: dict[str, Any] = {}
    slow = threading.Thread(target=lambda: results.setdefault("a", src.fields_for(NO_STORE, ["slow"], ids)))
    slow.start()
    assert src.started.wait(HANG)
    done = threading.Event()

    def fast() -> None:
        results["fast"] = src.fields_for(NO_STORE, ["fast"], ids)
        done.set()

    threading.Thread(target=fast, daemon=True).start()
    finished = done.wait(HANG)
    src.release.set()
    slow.join(HANG)
    assert finished, "the fast field waited for the slow one"
    assert results["fast"]["fast"].to_list() == [0, 3, 6, 9, 12]
    # a second thread asking for the field being loaded waits for that load, not a second one
    src2 = _Gated()
    first = threading.Thread(target=lambda: src2.fields_for(NO_STORE, ["slow"], ids))
    first.start()
    assert src2.started.wait(HANG)
    got: dict[str, Any] = {}
    second = threading.Thread(target=lambda: got.setdefault("v", src2.fields_for(NO_STORE, ["slow"], ids)))
    second.start()
    src2.release.set()
    first.join(HANG)
    second.join(HANG)
    assert got["v"]["slow"].to_list() == [0, 2, 4, 6, 8]
    assert src2.loads == ["slow"]


def test_pages_are_read_while_a_long_load_holds_the_store(demo, store):
    """A background load (the Arrow reader busy on the store) does not stop the UI thread's
    page reads: they go through the same SQLite library."""
    src = _pool(store)
    opened = src.open(store, 4)
    ui = Store(demo / "tuiops.db", readonly=True)
    holding, release = threading.Event(), threading.Event()

    def long_load() -> None:
        with POOL.gate(store.path).use(ADBC):
            holding.set()
            release.wait(HANG)

    loader = threading.Thread(target=long_load)
    loader.start()
    assert holding.wait(HANG)
    names: list[str] = []
    done = threading.Event()

    def pages() -> None:
        try:
            pager = b.Pager(src, opened, window=3)
            for i in range(0, 12, 3):
                names.extend(pager.rows(ui, i, 3)["name"].to_list())
        finally:
            done.set()

    threading.Thread(target=pages, daemon=True).start()
    read = done.wait(HANG)
    release.set()
    loader.join(HANG)
    ui.close()
    assert read, "a page read waited for the load"
    want = [
        r[0] for r in store.execute("SELECT relpath FROM files WHERE relpath NOT LIKE '%/%' ORDER BY relpath")
    ]
    assert names[2:] == want[: len(names) - 2]


def test_pages_from_loaded_columns_equal_the_store_pages(store):
    src = _pool(store)
    ids = src.base_ids(store)
    positions = np.array([3, 0, len(ids) - 1, 5, 1], dtype=np.int64)
    assert src.page_from_cache(ids, positions) is None  # nothing loaded yet
    for name in src.preload_fields():
        src.fields_for(store, [name], ids)
    page = src.page_from_cache(ids, positions)
    assert page is not None
    fetched = src.fetch(store, ids[positions])
    assert page.columns == fetched.columns
    assert page.schema == fetched.schema
    assert page.to_dicts() == fetched.to_dicts()
    assert page["_key"].null_count() < page.height
    # the pager serves the sorted view from them, in the sorted order
    order = b.compute_order(src, store, ids, sort=[("size", True)])
    pager = b.Pager(src, src.open(store, 2), window=4)
    pager.set_base(ids)
    pager.set_order(order)
    rows = pager.rows(store, pager.n_fixed, 6)
    assert order.positions is not None
    assert rows.to_dicts() == src.fetch(store, ids[order.positions[:6]]).to_dicts()


@pytest.mark.parametrize(
    "names",
    [
        ["danbooru_1.jpg", "gel_2.png", None],
        ["Danbooru_1.JPG", "gel_2.png", None],
        ["ÄRGER.png", "straße.PNG", "Ⅻ.png"],
    ],
)
def test_lower_case_names_equal_polars_lowercase(names):
    from tuiops.ops.browse.source import lower_case

    col = pl.Series("name", names, dtype=pl.String)
    assert lower_case(col).to_list() == col.str.to_lowercase().to_list()


def test_a_mask_after_the_background_load_finds_the_names_lowered(store):
    src = _pool(store)
    ids = src.base_ids(store)
    src.fields_for(store, ["name"], ids)
    assert src.cached_columns([lowered_key("name")], ids) is not None
    hit = b.mask_ids(src, store, ids, None, "*.PNG")
    names = src.fields_for(store, ["name"], ids)["name"].to_list()
    assert hit.tolist() == sorted(
        int(i) for i, n in zip(ids, names, strict=True) if n.lower().endswith(".png")
    )


def test_the_app_keeps_its_start_up_objects_out_of_full_collections(demo):
    import asyncio
    import gc

    from tuiops.app import TuiopsApp
    from tuiops.workspace import Workspace

    gc.unfreeze()
    ws = Workspace.open(demo)
    frozen: list[int] = []

    async def main() -> None:
        app = TuiopsApp(ws)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            frozen.append(gc.get_freeze_count())

    try:
        asyncio.run(main())
    finally:
        gc.unfreeze()
        ws.close()
    assert frozen and frozen[0] > 0
