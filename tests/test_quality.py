"""Detection quality flags on crafted boxes: aspect ranges learned and configured, border, size, score."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from tests.conftest import add_items
from tuiops.cli import run as cli_run
from tuiops.errors import UsageError, WorkspaceError
from tuiops.ops.quality import FLAGS, QualityParams, learn_aspects, quality_run
from tuiops.workspace import Workspace

HEAD, UPPER = 0, 1

# (class, x1, y1, x2, y2, score, expected flag names) in a 640×480 image
CASES = [
    (HEAD, 100, 100, 200, 200, 0.9, set()),
    (HEAD, 300, 100, 310, 300, 0.9, {"disproportional"}),
    (HEAD, 0, 50, 100, 150, 0.9, {"at_border"}),
    (HEAD, 540, 380, 640, 480, 0.9, {"at_border"}),
    (HEAD, 100, 100, 200, 200, 0.1, {"low_score"}),
    (HEAD, 300, 300, 302, 302, 0.9, {"too_small"}),
    (HEAD, 0, 0, 640, 480, 0.9, {"too_large", "at_border"}),
    (HEAD, 200, 200, 150, 250, 0.9, {"degenerate"}),
    (UPPER, 100, 100, 200, 200, 0.9, set()),
    (UPPER, 100, 100, 400, 200, 0.9, {"disproportional"}),
]


@pytest.fixture
def crafted(ws):
    items = add_items(ws, ["danbooru_1", "danbooru_2"])
    i1 = items["item_id"][0]
    dets = pl.DataFrame(
        [(i1, c, float(x1), float(y1), float(x2), float(y2), s) for c, x1, y1, x2, y2, s, _ in CASES],
        schema=["item_id", "class_id", "x1", "y1", "x2", "y2", "score"],
        orient="row",
    )
    ws.store.create_run("v1", dets, items.select("item_id"))
    # upper bodies in the label set have aspects 0.5 … 1.5
    n = 41
    aspects = np.linspace(0.5, 1.5, n)
    labels = pl.DataFrame(
        {
            "item_id": [items["item_id"][1]] * n,
            "class_id": [UPPER] * n,
            "x1": [10.0] * n,
            "y1": [10.0] * n,
            "x2": (10.0 + 100.0 * aspects).tolist(),
            "y2": [110.0] * n,
        }
    )
    ws.store.create_label_set("gt", labels, items.select("item_id"))
    ws.config.raw["quality"] = {"aspect": {"head": [0.5, 2.0]}}
    return ws


def test_flags_on_crafted_boxes(crafted):
    ws = crafted
    res = quality_run(ws, "v1", from_set="gt")
    got = ws.store.read_frame(
        "SELECT q.det_id, q.flags, q.border, q.aspect, q.area_pct FROM det_quality q ORDER BY q.det_id"
    )
    assert got.height == len(CASES) == res.detections
    for case, row in zip(CASES, got.iter_rows(named=True), strict=True):
        names = {name for name, bit in FLAGS.items() if row["flags"] & bit}
        assert names == case[-1], (case, row)
    border = got["border"].to_list()
    assert border[2] == 1 and border[3] == 4 | 8 and border[6] == 15
    assert got["area_pct"][6] == pytest.approx(100.0)
    assert res.flagged == sum(1 for c in CASES if c[-1])
    ranges = {r["class"]: r for r in res.ranges}
    assert ranges["head"]["source"] == "config" and ranges["head"]["aspect_lo"] == 0.5
    assert ranges["upper_body"]["source"] == "learned"
    assert 0.5 < ranges["upper_body"]["aspect_lo"] < 0.52 and 1.48 < ranges["upper_body"]["aspect_hi"] < 1.5
    counts = {r["class"]: r for r in res.counts}
    assert counts["head"]["detections"] == 8 and counts["head"]["at_border"] == 3
    assert counts["upper_body"]["disproportional"] == 1
    view = ws.store.read_frame("SELECT class, disproportional FROM v_det_quality WHERE disproportional = 1")
    assert sorted(view["class"].to_list()) == ["head", "upper_body"]


def test_rerun_replaces_and_dropping_the_run_cleans_up(crafted):
    ws = crafted
    quality_run(ws, "v1", from_set="gt")
    quality_run(ws, "v1", min_score=0.95)
    assert ws.store.one("SELECT count(*) FROM det_quality") == len(CASES)
    assert ws.store.one("SELECT count(*) FROM det_quality WHERE low_score = 1") == len(CASES)
    params = json.loads(ws.store.one("SELECT params FROM quality_params"))
    assert params["min_score"] == 0.95 and params["from_set"] is None
    # without --from-set upper_body has no range: never disproportional
    assert (
        ws.store.one("SELECT count(*) FROM v_det_quality WHERE class = 'upper_body' AND disproportional") == 0
    )
    ws.store.drop_run("v1")
    assert ws.store.one("SELECT count(*) FROM det_quality") == 0
    assert ws.store.one("SELECT count(*) FROM quality_params") == 0


def test_unknown_image_size_gets_no_border_or_size_flags(ws):
    items = ws.store.ensure_items(pl.DataFrame({"key": ["danbooru_9"]}))
    dets = pl.DataFrame(
        {
            "item_id": items["item_id"],
            "class_id": [0],
            "x1": [0.0],
            "y1": [0.0],
            "x2": [1.0],
            "y2": [1.0],
            "score": [0.9],
        }
    )
    ws.store.create_run("nosize", dets, items.select("item_id"))
    res = quality_run(ws, "nosize")
    assert res.flagged == 0
    assert ws.store.one("SELECT area_pct FROM det_quality") is None


def test_config_thresholds_and_bad_config(crafted):
    ws = crafted
    ws.config.raw["quality"] = {"min_score": 0.95, "border": 0, "quantiles": [0.1, 0.9], "min_support": 5}
    res = quality_run(ws, "v1", from_set="gt")
    assert res.params.min_score == 0.95 and res.params.lo_q == 0.1
    assert quality_run(ws, "v1", min_score=0.0).params.min_score == 0.0
    ws.config.raw["quality"] = {"aspect": {"nose": [1, 2]}}
    with pytest.raises(WorkspaceError, match="nose"):
        quality_run(ws, "v1")
    ws.config.raw["quality"] = {"aspect": {"head": [2, 1]}}
    with pytest.raises(WorkspaceError, match="low ≤ high"):
        quality_run(ws, "v1")
    ws.config.raw["quality"] = {"min_pct": "small"}
    with pytest.raises(WorkspaceError, match="min_pct"):
        quality_run(ws, "v1")
    ws.config.raw["quality"] = {}
    with pytest.raises(UsageError, match="min-pct"):
        quality_run(ws, "v1", min_pct=50, max_pct=10)


def test_learn_aspects_needs_support():
    labels = pl.DataFrame(
        {
            "class_id": [0] * 3 + [1] * 30,
            "x1": [0.0] * 33,
            "y1": [0.0] * 33,
            "x2": [10.0] * 33,
            "y2": [5.0] * 33,
        }
    )
    r = learn_aspects(labels, QualityParams(min_support=20))
    # one fixed shape: the range is widened to the smallest ratio, evenly around it
    assert r["class_id"].to_list() == [1] and r["source"][0] == "learned, widened"
    assert r["aspect_lo"][0] == pytest.approx(2.0 / 2**0.5) and r["aspect_hi"][0] == pytest.approx(
        2.0 * 2**0.5
    )
    r = learn_aspects(labels, QualityParams(min_support=20, min_ratio=1.0))
    assert r["aspect_lo"][0] == pytest.approx(2.0) == r["aspect_hi"][0]


def test_quality_cli(crafted, capsys):
    ws = crafted
    cfg = ws.config.to_toml()
    cfg["quality"] = {"aspect": {"head": [0.5, 2.0]}}
    import tomli_w

    ws.config_path.write_text(tomli_w.dumps(cfg))
    root = str(ws.root)
    assert cli_run(["-w", root, "quality", "--run", "v1", "--from-set", "gt", "-q"]) == 0
    out = capsys.readouterr().out
    assert "disproportional" in out and "total" in out and "learned" in out and "config" in out
    assert cli_run(["-w", root, "quality", "--run", "v1", "--json", "--max-pct", "99.9"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["detections"] == len(CASES) and data["params"]["max_pct"] == 99.9
    assert cli_run(["-w", root, "quality", "--run", "v1", "--min-pct", "5", "--max-pct", "1"]) == 2
    assert cli_run(["-w", root, "quality", "--run", "nope"]) == 5
    assert cli_run(["-w", root, "quality", "--run", "v1", "--from-set", "nope"]) == 5
    Workspace.open(root).close()


def test_ranges_learned_from_fixed_shape_labels_do_not_flag_every_detection(ws, capsys):
    """Heads labelled with a tool that keeps one aspect (0.9) and detected with the model's own
    spread; a class with a handful of labels learns nothing and says so."""
    rng = np.random.default_rng(5)
    n = 306
    items = add_items(ws, [f"danbooru_{i}" for i in range(n)], width=1000, height=1000)
    ids = items["item_id"].to_numpy()
    w = rng.uniform(40, 160, n)
    labels = pl.DataFrame(
        {"item_id": ids, "class_id": HEAD, "x1": 100.0, "y1": 100.0, "x2": 100.0 + w, "y2": 100.0 + w / 0.9}
    )
    few = pl.DataFrame(
        {"item_id": ids[:8], "class_id": UPPER, "x1": 300.0, "y1": 300.0, "x2": 400.0, "y2": 600.0}
    )
    ws.store.create_label_set("master", pl.concat([labels, few]), items.select("item_id"))
    aspect = 0.9 * np.exp(rng.normal(0.0, 0.1, n))
    aspect[0] = 3.0  # one truly disproportional head
    dh = w * 1.05
    dets = pl.DataFrame(
        {
            "item_id": np.concatenate([ids, ids[:20]]),
            "class_id": [HEAD] * n + [UPPER] * 20,
            "x1": 100.0,
            "y1": 100.0,
            "x2": np.concatenate([100.0 + dh * aspect, np.full(20, 400.0)]),
            "y2": np.concatenate([100.0 + dh, np.full(20, 900.0)]),
            "score": 0.9,
        }
    )
    ws.store.create_run("v1", dets, items.select("item_id"))
    res = quality_run(ws, "v1", from_set="master")
    heads = next(r for r in res.ranges if r["class"] == "head")
    assert heads["source"] == "learned, widened" and heads["aspect_hi"] / heads["aspect_lo"] == pytest.approx(
        2.0
    )
    assert heads["aspect_lo"] < 0.9 < heads["aspect_hi"]
    counts = {r["class"]: r for r in res.counts}
    assert 1 <= counts["head"]["disproportional"] <= n * 0.05
    flagged = ws.store.one(
        "SELECT count(*) FROM det_quality q JOIN detections d ON d.id = q.det_id "
        "WHERE q.disproportional AND d.x2 - d.x1 > 2.9 * (d.y2 - d.y1)"
    )
    assert flagged == 1
    # 8 upper-body labels are too few to learn from: warned, and not flagged
    assert counts["upper_body"]["disproportional"] == 0
    assert len(res.warnings) == 1 and res.warnings[0].startswith("upper_body: 8 label(s) in set 'master'")
    assert "--min-support" in res.warnings[0]
    assert cli_run(["-w", str(ws.root), "quality", "--run", "v1", "--from-set", "master", "-q"]) == 0
    out = capsys.readouterr().out
    assert "warning: upper_body: 8 label(s)" in out and "learned, widened" in out
    assert cli_run(["-w", str(ws.root), "quality", "--run", "v1", "--min-ratio", "0.5"]) == 2
