"""The data side of the terminal app (tuiops.ops.browse) on real stores, and the test workspace
the TUI tests share (:func:`build_workspace`: drawn images, a bad pool's usual faults, a label
set and a detection run with realistic errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tuiops.errors import ConflictError, ExternalToolError, InputError, NotFoundError, UsageError
from tuiops.ops import browse as b
from tuiops.store import Store
from tuiops.store.db import utcnow
from tuiops.workspace import Workspace

FIXED_MTIME = 1_700_000_000_000_000_000


def build_workspace(root: Path, images: int = 24, seed: int = 7) -> Path:
    """A small demo-like workspace: pool ``pool`` (a ``review/`` subfolder, an empty file, a
    truncated PNG, a file gone from disk, a name without a key), label set ``master`` and run
    ``v1``. Everything shown by the app is deterministic (fixed mtimes, hashes, sizes)."""
    from tuiops.ops.demo import DEMO_CLASSES, draw_image, plan_images
    from tuiops.ops.probe import PHASH_METHOD

    ws = Workspace.init(root, name="demo", classes=list(DEMO_CLASSES))
    pool = root / "pool"
    (pool / "review").mkdir(parents=True)
    plan, _ = plan_images(images, seed)
    rows = []
    for i, img in enumerate(plan):
        rel = f"review/{img.name}" if i % 6 == 5 else img.name
        draw_image(img, pool / rel, seed * 100_003 + i)
        key = ws.parse_key(img.name)
        exif = json.dumps({"software": "tuiops-test", "orientation": 1}) if i == 0 else None
        rows.append(
            (
                rel,
                key.key,
                key.booru,
                key.fid,
                img.width,
                img.height,
                (pool / rel).stat().st_size,
                "ok",
                exif,
                img,
            )
        )
    (pool / "danbooru_999999.jpg").write_bytes(b"")
    (pool / "gelbooru-999998.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    rows.append(
        ("danbooru_999999.jpg", "danbooru_999999", "danbooru", 999999, None, None, 0, "empty", None, None)
    )
    rows.append(
        (
            "gelbooru-999998.png",
            "gelbooru_999998",
            "gelbooru",
            999998,
            None,
            None,
            48,
            "truncated",
            None,
            None,
        )
    )
    rows.append(("danbooru_555.jpg", "danbooru_555", "danbooru", 555, 320, 320, 1234, "missing", None, None))
    rows.append(("cover.png", "cover", None, None, 320, 320, 999, "ok", None, None))
    draw_image(plan[0].__class__("cover.png", 320, 320), pool / "cover.png", seed)
    rows[-1] = (*rows[-1][:6], (pool / "cover.png").stat().st_size, *rows[-1][7:])
    store = ws.store
    keys = pl.DataFrame(
        {
            "key": [r[1] for r in rows],
            "booru": [r[2] for r in rows],
            "fid": [r[3] for r in rows],
            "width": [r[4] for r in rows],
            "height": [r[5] for r in rows],
        },
        schema={"key": pl.String, "booru": pl.String, "fid": pl.Int64, "width": pl.Int64, "height": pl.Int64},
    )
    items = store.ensure_items(keys)
    item_of = dict(zip(items["key"].to_list(), items["item_id"].to_list(), strict=True))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
    files = pl.DataFrame(
        {
            "pool_id": [1] * len(rows),
            "relpath": [r[0] for r in rows],
            "item_id": [item_of[r[1]] for r in rows],
            "keyed": [int(r[2] is not None) for r in rows],
            "size": [r[6] for r in rows],
            "mtime_ns": [FIXED_MTIME + i * 1_000_000_000 for i in range(len(rows))],
            "width": [r[4] for r in rows],
            "height": [r[5] for r in rows],
            "format": [fmt[Path(r[0]).suffix] if r[7] == "ok" else None for r in rows],
            "mode": ["RGB" if r[7] == "ok" else None for r in rows],
            "phash": [
                (i * 0x9E3779B97F4A7C15) % (1 << 63) if r[7] == "ok" else None for i, r in enumerate(rows)
            ],
            # stand-in hashes, stored as the scan's current method stores them
            "phash_method": [PHASH_METHOD if r[7] == "ok" else None for r in rows],
            "exif": [r[8] for r in rows],
            "status": [r[7] for r in rows],
            "error": [
                "file is empty"
                if r[7] == "empty"
                else "image data ends early"
                if r[7] == "truncated"
                else None
                for r in rows
            ],
            "scanned": ["2024-01-01T00:00:00Z"] * len(rows),
            "checks": [7] * len(rows),
        },
        schema_overrides={
            "phash": pl.Int64,
            "phash_method": pl.Int64,
            "exif": pl.String,
            "error": pl.String,
            "format": pl.String,
            "mode": pl.String,
        },
    )
    with store.bulk() as tx:
        tx.execute(
            "INSERT INTO pools(id, name, root, created, scanned) VALUES (1, 'pool', ?, ?, ?)",
            (str(pool), utcnow(), utcnow()),
        )
        tx.ingest("files", files)
    lab, det = [], []
    for r in rows:
        img = r[9]
        if img is None:
            continue
        iid = item_of[r[1]]
        lab += [(iid, bx.cls, bx.x1, bx.y1, bx.x2, bx.y2) for bx in img.labels]
        det += [(iid, bx.cls, bx.x1, bx.y1, bx.x2, bx.y2, s) for bx, s in img.detections]
    labels = pl.DataFrame(lab, schema=["item_id", "class_id", "x1", "y1", "x2", "y2"], orient="row")
    dets = pl.DataFrame(det, schema=["item_id", "class_id", "x1", "y1", "x2", "y2", "score"], orient="row")
    images_f = pl.DataFrame({"item_id": sorted({item_of[r[1]] for r in rows if r[9] is not None})})
    store.create_label_set("master", labels.sort("item_id", maintain_order=True), images_f, source="test")
    store.create_run("v1", dets.sort("item_id", maintain_order=True), images_f, source="test")
    ws.close()
    return root


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return build_workspace(tmp_path / "demo")


@pytest.fixture
def store(demo: Path):
    s = Store(demo / "tuiops.db", readonly=True)
    yield s
    s.close()


def _ctx(store: Store) -> b.Context:
    return b.default_context(store)


# -- specs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, spec",
    [
        ("catalog", b.Spec("catalog")),
        ("pool:pool", b.Spec("pool", "pool", "")),
        ("pool:pool/review/", b.Spec("pool", "pool", "review/")),
        ("pool:pool/./a//b", b.Spec("pool", "pool", "a/b/")),
        ("labels:master", b.Spec("labels", "master")),
        ("run:v1", b.Spec("run", "v1")),
        ("query:SELECT 1", b.Spec("query", "SELECT 1")),
    ],
)
def test_spec_parse_round_trip(text, spec):
    assert b.Spec.parse(text) == spec
    assert b.Spec.parse(str(spec)) == spec


@pytest.mark.parametrize("text", ["nope:x", "pool:", "labels:  ", "pool:pool/../etc"])
def test_spec_parse_errors(text):
    with pytest.raises(UsageError):
        b.Spec.parse(text)


# -- the pool folder view ------------------------------------------------------------------------
def test_pool_root_lists_parent_subfolders_then_files_in_name_order(store):
    src = b.make_source(store, b.Spec("pool", "pool"), _ctx(store))
    opened = src.open(store, 100)
    assert opened.fixed["name"].to_list() == ["..", "review"]
    assert opened.fixed["_target"].to_list() == ["catalog", "pool:pool/review"]
    names = opened.head["name"].to_list()
    want = [
        r[0] for r in store.execute("SELECT relpath FROM files WHERE relpath NOT LIKE '%/%' ORDER BY relpath")
    ]
    assert names == want
    assert opened.count == len(want)
    counts = dict(zip(opened.head["name"].to_list(), opened.head["labels"].to_list(), strict=True))
    for rel, n in store.execute(
        "SELECT f.relpath, (SELECT count(*) FROM v_labels v WHERE v.item_id = f.item_id) FROM files f"
    ):
        if rel in counts:
            assert counts[rel] == n


def test_subfolder_and_folder_index_is_used(store, demo):
    src = b.make_source(store, b.Spec("pool", "pool", "review/"), _ctx(store))
    opened = src.open(store, 100)
    assert opened.fixed["name"].to_list() == [".."]
    assert opened.fixed["_target"][0] == "pool:pool/"
    assert all(n.endswith((".jpg", ".png", ".jpeg", ".webp")) for n in opened.head["name"])
    plan = store.execute(
        f"EXPLAIN QUERY PLAN SELECT id FROM files WHERE pool_id = 1 AND {b.FOLDER_SQL} = '' "
        f"AND {b.LISTED_SQL} ORDER BY relpath"
    ).fetchall()
    assert "files_folder" in str(plan)
    os.mkdir(demo / "pool" / "empty_dir")
    assert src.disk_subfolders() == []
    root_src = b.make_source(store, b.Spec("pool", "pool"), _ctx(store))
    assert root_src.disk_subfolders() == ["empty_dir", "review"]


def test_unknown_pool_is_not_found(store):
    with pytest.raises(NotFoundError, match="no pool named 'nope'"):
        b.make_source(store, b.Spec("pool", "nope"), _ctx(store))


def _all_rows(pager: b.Pager, store: Store, step: int) -> list[str]:
    out = []
    i = 0
    while True:
        frame = pager.rows(store, i, step)
        if frame.height == 0:
            break
        out += frame["name"].to_list()
        i += step
        if pager.count is not None and i >= pager.row_count:
            break
    return out


@pytest.mark.parametrize("step", [1, 3, 7])
def test_pager_keyset_and_offset_paging_match_sql_order(store, step):
    src = b.make_source(store, b.Spec("pool", "pool"), _ctx(store))
    opened = src.open(store, 2)
    pager = b.Pager(src, opened, window=1)
    pager.window = 4
    want = (
        [".."]
        + ["review"]
        + [
            r[0]
            for r in store.execute("SELECT relpath FROM files WHERE relpath NOT LIKE '%/%' ORDER BY relpath")
        ]
    )
    pager.set_total(src.count(store))
    assert _all_rows(pager, store, step) == want
    # backwards from the end, through keyset "before" pages and offsets from the end
    pager.invalidate()
    back = []
    for i in range(pager.row_count - 1, -1, -1):
        back.append(pager.rows(store, i, 1)["name"][0])
    assert back[::-1] == want
    pager.set_base(src.base_ids(store))
    assert _all_rows(pager, store, step) == want


def test_sort_filter_and_mask_on_pool(store):
    src = b.make_source(store, b.Spec("pool", "pool"), _ctx(store))
    ids = src.base_ids(store)
    order = b.compute_order(src, store, ids, sort=[("size", True)])
    sizes = src.fields_for(store, ["size"], ids)["size"].to_numpy()[order.positions]
    assert list(sizes) == sorted(sizes, reverse=True)
    order = b.compute_order(src, store, ids, sort=[("labels", False)], where="labels > 2 AND status = 'ok'")
    labels = src.fields_for(store, ["labels"], ids)["labels"].to_numpy()[order.positions]
    assert (labels > 2).all() and list(labels) == sorted(labels)
    want = store.one(
        "SELECT count(*) FROM files f WHERE f.relpath NOT LIKE '%/%' AND f.status = 'ok' AND "
        "(SELECT count(*) FROM v_labels v WHERE v.item_id = f.item_id) > 2"
    )
    assert order.count == want
    png = b.mask_ids(src, store, ids, None, "*.PNG")
    names = src.fields_for(store, ["name"], ids)["name"]
    assert len(png) == sum(n.lower().endswith(".png") for n in names)
    both = b.mask_ids(src, store, ids, None, "*.png, danbooru_*")
    assert len(both) == sum(n.lower().endswith(".png") or n.startswith("danbooru_") for n in names)
    assert len(b.mask_ids(src, store, ids, order, "*")) == order.count


@pytest.mark.parametrize(
    "where, error",
    [
        ("nosuch > 1", "unknown field"),
        ("size >", "cannot read the filter"),
        ("size", "not a condition"),
    ],
)
def test_bad_filters_name_the_problem(store, where, error):
    src = b.make_source(store, b.Spec("pool", "pool"), _ctx(store))
    with pytest.raises(InputError, match=error):
        b.compute_order(src, store, src.base_ids(store), where=where)


def test_mask_regex():
    import re

    rx = re.compile(b.mask_regex("*.jpg,gel?ooru*"))
    assert rx.match("A.JPG") and rx.match("gelbooru-1.png") and not rx.match("a.png")
    assert b.mask_regex("*.*") == b.ALL_MASK
    with pytest.raises(UsageError):
        b.mask_regex(" , ")


@pytest.mark.parametrize(
    "mask", ["*.png", "GEL*", "*_sample*", "cover.png", "d?nbooru_*.jpg", "*.png,*.webp", "*", "*a*b*", "x.y"]
)
def test_mask_fast_paths_match_the_regex(mask):
    import re

    names = [
        "Cover.PNG",
        "gelbooru-1.png",
        "yandere_5_sample.jpeg",
        "danbooru_7.jpg",
        "x.y",
        "xay",
        "a+b.webp",
        "ab",
    ]
    rx = re.compile(b.mask_regex(mask))
    want = [bool(rx.match(n)) for n in names]
    frame = pl.DataFrame({"v": [n.lower() for n in names]})
    got = frame.select(b.mask_expr(mask).alias("m"))["m"]
    got = got.to_list() if len(got) == len(names) else [bool(got[0])] * len(names)
    assert got == want


# -- sorting numbers fast and exactly ---------------------------------------------------------------
def _reference(values: pl.Series, descending: bool) -> np.ndarray:
    frame = pl.DataFrame({"v": values}).with_row_index("i")
    if values.dtype.is_float():
        frame = frame.with_columns(pl.col("v").fill_nan(None))
    return frame.sort("v", descending=descending, nulls_last=True, maintain_order=True)["i"].to_numpy()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("descending", [False, True])
def test_sort_positions_matches_a_stable_sort(seed, descending):
    rng = np.random.default_rng(seed)
    n = 5000
    cases = [
        pl.Series(rng.integers(-50, 50, n)),
        pl.Series(rng.integers(0, 2**62, n) + 2**61 * rng.integers(0, 2, n)),
        pl.Series(1_600_000_000_000_000_000 + rng.integers(0, 1000, n) * 7),
        pl.Series(np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))),
        pl.Series([None if x < 0.05 else float(x) for x in rng.random(n)]),
        pl.Series(rng.random(n) < 0.5),
        pl.Series(rng.choice(["JPEG", "PNG", "WEBP", None], n)),
        pl.Series([f"k{x}" for x in rng.integers(0, 10**9, n)]),
    ]
    for values in cases:
        got = b.sort_positions(values, descending)
        assert np.array_equal(got, _reference(values, descending)), values.dtype


def test_sort_positions_collisions_after_truncation():
    base = np.int64(2**62)
    values = pl.Series(np.array([base + 5, base + 3, base + 5, base + 1, -base, base + 3], dtype=np.int64))
    assert b.sort_positions(values).tolist() == [4, 3, 1, 5, 0, 2]
    assert b.sort_positions(values, True).tolist() == [0, 2, 1, 5, 3, 4]


def test_selection_set_operations():
    sel = b.Selection()
    sel = sel.toggle(5).toggle(2).toggle(9)
    assert sel.ids.tolist() == [2, 5, 9]
    sel = sel.toggle(5)
    assert sel.contains(np.array([2, 5, 9, 10])).tolist() == [True, False, True, False]
    sel = sel.union(np.array([1, 2, 3]))
    assert sel.ids.tolist() == [1, 2, 3, 9]
    assert sel.minus(np.array([2, 9])).ids.tolist() == [1, 3]
    assert sel.invert_within(np.array([1, 2, 4])).ids.tolist() == [3, 4, 9]


# -- tables ----------------------------------------------------------------------------------------
def test_label_and_run_tables(store):
    src = b.make_source(store, b.Spec("labels", "master"), _ctx(store))
    opened = src.open(store, 10)
    assert opened.head.height == 10
    assert set(opened.head["class"]) <= {"head", "upper_body", "lower_body", "hand", "text"}
    total = src.count(store)
    assert total == store.one("SELECT count(*) FROM v_labels WHERE label_set = 'master'")
    ids = src.base_ids(store)
    assert len(ids) == total
    area = src.fields_for(store, ["area", "key", "class"], ids)
    ref = store.read_frame("SELECT id, area, key, class FROM v_labels WHERE label_set = 'master' ORDER BY id")
    assert np.allclose(area["area"].to_numpy(), ref["area"].to_numpy())
    assert area["key"].to_list() == ref["key"].to_list()
    assert area["class"].to_list() == ref["class"].to_list()
    run = b.make_source(store, b.Spec("run", "v1"), _ctx(store))
    rids = run.base_ids(store)
    order = b.compute_order(run, store, rids, sort=[("score", True)], where="class = 'head'")
    page = run.fetch(store, rids[order.positions[:5]])
    assert page["score"].to_list() == sorted(page["score"].to_list(), reverse=True)
    assert set(page["class"]) == {"head"}
    with pytest.raises(NotFoundError, match="no detection run named"):
        b.make_source(store, b.Spec("run", "nope"), _ctx(store))


def test_query_source(store):
    src = b.make_source(
        store, b.Spec("query", "SELECT key, item_id, size FROM v_images ORDER BY size DESC"), _ctx(store)
    )
    opened = src.open(store, 5)
    assert opened.count == store.one("SELECT count(*) FROM v_images")
    assert opened.head["_key"].to_list() == opened.head["key"].to_list()
    with pytest.raises(UsageError, match="only SELECT"):
        b.query_frame(store, "DELETE FROM files")
    with pytest.raises(InputError, match="SQL error"):
        b.query_frame(store, "SELECT nope FROM files")
    with pytest.raises(UsageError, match="one SQL statement"):
        b.query_frame(store, "SELECT 1; SELECT 2")
    with pytest.raises(Exception):  # noqa: B017 - a read-only store refuses writes whatever the driver says
        b.query_frame(store, "WITH x AS (SELECT 1) DELETE FROM files")
    assert store.one("SELECT count(*) FROM files") > 0


def test_catalog_and_image_sources(store):
    cat = b.make_source(store, b.Spec("catalog"), _ctx(store), ws_name="demo")
    opened = cat.open(store, 50)
    assert opened.head.select("name", "what").rows() == [
        ("pool", "pool"),
        ("master", "labels"),
        ("v1", "run"),
    ]
    assert opened.head["_target"].to_list() == ["pool:pool/", "labels:master", "run:v1"]
    key = store.one("SELECT key FROM items i WHERE EXISTS (SELECT 1 FROM v_labels v WHERE v.item_id = i.id)")
    img = b.make_source(store, b.Spec("image", key), _ctx(store))
    rows = img.open(store, 100).head
    assert set(rows["source"]) == {"master", "v1"}
    assert rows.filter(pl.col("kind") == "label").height == store.one(
        "SELECT count(*) FROM v_labels WHERE key = ?", (key,)
    )


# -- one image -------------------------------------------------------------------------------------
def test_image_info_and_preview(store):
    fid = store.one("SELECT id FROM files WHERE exif IS NOT NULL")
    info = b.image_info(store, file_id=fid, ctx=_ctx(store))
    assert info.path is not None and info.path.exists()
    assert info.exif == {"software": "tuiops-test", "orientation": 1}
    assert info.phash and len(info.phash) == 16
    meta = dict(info.meta_lines())
    assert meta["key"] == info.key and "labels master" in meta and "dets v1" in meta
    assert "mean best IoU" in meta
    image, marks = b.render_preview(info, 80, 60, label_set="master", run="v1")
    assert image.width <= 80 and image.height <= 60 and max(image.size) >= 59
    kinds = {m.kind for m in marks}
    assert kinds == {"label", "det"}
    assert any(" 0." in m.text for m in marks if m.kind == "det")
    _, marks = b.render_preview(info, 80, 60, show_dets=False)
    assert {m.kind for m in marks} == {"label"}


@pytest.mark.parametrize("status", ["empty", "truncated", "missing"])
def test_preview_of_bad_files_is_a_placeholder(store, status):
    fid = store.one("SELECT id FROM files WHERE status = ?", (status,))
    info = b.image_info(store, file_id=fid)
    assert info.status == status
    image, _ = b.render_preview(info, 40, 40)
    assert image.size[0] <= 40


def test_image_info_by_key_and_unknown(store):
    key = store.one("SELECT key FROM items WHERE booru IS NOT NULL LIMIT 1")
    assert b.image_info(store, key=key).key == key
    with pytest.raises(NotFoundError, match="no image with key"):
        b.image_info(store, key="danbooru_0")


# -- editor, folders, jobs -----------------------------------------------------------------------
def test_editor_command_and_launch(demo):
    ws = Workspace.open(demo)
    try:
        img = demo / "pool" / "cover.png"
        ws.config.editor = "labelImg {dir} {classes} {dir}"
        argv = b.editor_command(ws, img)
        assert argv[0] == "labelImg" and argv[1] == str(img.parent)
        assert Path(argv[2]).read_text(encoding="utf-8").splitlines() == ws.classes
        ws.config.editor = "labelImg {nope}"
        with pytest.raises(InputError, match="unknown placeholder"):
            b.editor_command(ws, img)
        ws.config.editor = "tuiops-no-such-editor {image}"
        with pytest.raises(ExternalToolError, match="not installed"):
            b.launch_editor(ws, img)
        ws.config.editor = f"{sys.executable} -c pass {{image}}"
        proc = b.launch_editor(ws, img)
        assert proc.wait(timeout=60) == 0
        with pytest.raises(NotFoundError, match="does not exist"):
            b.launch_editor(ws, demo / "pool" / "gone.jpg")
    finally:
        ws.close()


def test_make_folder(store, demo):
    made = b.make_folder(store, "pool", "review/", "picked")
    assert made == demo / "pool" / "review" / "picked" and made.is_dir()
    with pytest.raises(ConflictError):
        b.make_folder(store, "pool", "review/", "picked")
    for bad in ("", "..", "a/b"):
        with pytest.raises(UsageError):
            b.make_folder(store, "pool", "", bad)
    with pytest.raises(Exception, match="parent folder does not exist"):
        b.make_folder(store, "pool", "no/such/", "x")


def test_jobs_listing_and_cancel(demo):
    store = Store(demo / "tuiops.db")
    try:
        done = store.job_start("scan", {"pool": "pool"}, total=10)
        store.job_finish(done, "done")
        # the child says "ready" once its SIGINT handler is in place: set explicitly, since a
        # runner that started the tests in the background hands SIGINT down ignored
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
                "try:\n    print('ready', flush=True)\n    sys.stdin.read()\n"
                "except KeyboardInterrupt:\n    sys.exit(130)",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        live = store.job_start("match", {})
        store.execute("UPDATE jobs SET pid = ? WHERE id = ?", (child.pid, live))
        dead = store.job_start("copy", {})
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        store.execute("UPDATE jobs SET pid = ? WHERE id = ?", (gone.pid, dead))
        jobs = b.list_jobs(store)
        assert [j.status for j in jobs][:2] == ["running", "running"] and jobs[-1].id == done
        assert "asked job" in b.cancel_job(store, live)
        assert child.wait(timeout=120) == 130  # its exit is the event (the timeout only guards a hang)
        assert "is gone" in b.cancel_job(store, dead)
        assert store.one("SELECT status FROM jobs WHERE id = ?", (dead,)) == "failed"
        assert "done already" in b.cancel_job(store, done)
        with pytest.raises(NotFoundError):
            b.cancel_job(store, 999)
    finally:
        store.close()


_JOB_CHILD = """
import sys
from tuiops.ops.base import job
from tuiops.store import Store

store = Store(sys.argv[1])
with job(store, "probe", {}) as j:
    print(j.id, flush=True)
    sys.stdin.read()
"""


def test_jobs_cancel_reaches_a_job_started_with_sigint_ignored(tmp_path):
    """A tuiops job started in the background (SIGINT ignored, as a shell or CI runner does)
    still stops when `jobs cancel` asks it to."""
    import signal

    db = tmp_path / "tuiops.db"
    Store(db).close()
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        child = subprocess.Popen(
            [sys.executable, "-c", _JOB_CHILD, str(db)],
            stdin=subprocess.PIPE,  # kept open: the job ends by the signal or not at all
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    try:
        assert child.stdout is not None
        job_id = int(child.stdout.readline())  # the job is recorded, with this process's pid
        store = Store(db)
        try:
            assert "asked job" in b.cancel_job(store, job_id)
            code = child.wait(timeout=120)  # its exit is the event (the timeout only guards a hang)
            assert code != 0 and "KeyboardInterrupt" in log.read_text(), log.read_text()
            assert store.one("SELECT status FROM jobs WHERE id = ?", (job_id,)) != "running"
        finally:
            store.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_saved_selection_source_and_catalog(demo):
    from tuiops.ops.select import SelectionSpec, save_selection

    ws = Workspace.open(demo)
    try:
        save_selection(ws, "pngs", SelectionSpec(where="name LIKE '%.png'"))
        store = Store(demo / "tuiops.db", readonly=True)
        try:
            cat = b.make_source(store, b.Spec("catalog"), _ctx(store)).open(store, 50).head
            assert ("pngs", "selection", "selection:pngs") in cat.select("name", "what", "_target").rows()
            src = b.make_source(store, b.Spec.parse("selection:pngs"), _ctx(store), ws=ws)
            rows = src.open(store, 50).head
            want = [
                r[0]
                for r in store.execute(
                    "SELECT relpath FROM files WHERE relpath LIKE '%.png' AND status NOT IN "
                    "('missing', 'moved', 'trashed', 'not_image') ORDER BY id"
                )
            ]
            assert rows["relpath"].to_list() == want
            assert src.file_ids(np.array([0, 1])) == rows["file_id"].head(2).to_list()
            assert rows["_key"].to_list() == rows["key"].to_list()
        finally:
            store.close()
        with pytest.raises(NotFoundError, match="no saved selection named"):
            s2 = Store(demo / "tuiops.db", readonly=True)
            try:
                b.make_source(s2, b.Spec("selection", "nope"), _ctx(s2), ws=ws).open(s2, 5)
            finally:
                s2.close()
    finally:
        ws.close()


def test_where_for_ids_is_compact_and_exact():
    from tuiops.ops.browse import where_for_ids

    assert where_for_ids([5, 1, 2, 3, 4, 9, 11, 12]) == "file_id BETWEEN 1 AND 5 OR file_id IN (9, 11, 12)"
    assert where_for_ids([]) == "0"
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t(file_id INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(200)])
    ids = sorted({int(x) for x in np.random.default_rng(3).integers(0, 200, 80)})
    got = [r[0] for r in conn.execute(f"SELECT file_id FROM t WHERE {where_for_ids(ids)} ORDER BY 1")]
    assert got == ids
