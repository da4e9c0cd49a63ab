"""NMS: parity with torchvision, deterministic ties, runs, merges and label de-duplication."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
import torchvision

from tests.conftest import add_items
from tuiops.cli import run as cli_run
from tuiops.errors import ConflictError, InputError, NotFoundError, UsageError
from tuiops.ops.nms import dedupe_labels, merge_runs, nms_frame, nms_run, sweep_pairs


def random_boxes(
    rng: np.random.Generator, images: int, max_boxes: int = 30, crowded: bool = False
) -> pl.DataFrame:
    """Random boxes; ``crowded`` piles jittered copies of a few boxes on each other."""
    counts = rng.integers(0, max_boxes + 1, images)
    n = int(counts.sum())
    item = np.repeat(np.arange(images), counts)
    if crowded:
        base = rng.random((images, 3, 4)) * [80, 80, 60, 60]
        pick = rng.integers(0, 3, n)
        b = base[item, pick] + rng.normal(0, 3, (n, 4))
        x1, y1, w, h = b[:, 0], b[:, 1], np.abs(b[:, 2]) + 1, np.abs(b[:, 3]) + 1
    else:
        x1, y1 = rng.random(n) * 100, rng.random(n) * 100
        w, h = rng.random(n) * 40 + 1, rng.random(n) * 40 + 1
    return pl.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64) * 7 + 3,
            "item_id": item.astype(np.int64),
            "class_id": rng.integers(0, 3, n).astype(np.int32),
            "x1": x1,
            "y1": y1,
            "x2": x1 + w,
            "y2": y1 + h,
            "score": rng.random(n),
        }
    )


def torchvision_keep(df: pl.DataFrame, iou: float, agnostic: bool) -> set[int]:
    kept: set[int] = set()
    for (_,), g in df.group_by(["item_id"]):
        b = torch.tensor(g.select("x1", "y1", "x2", "y2").to_numpy(), dtype=torch.float64)
        s = torch.tensor(g["score"].to_numpy(), dtype=torch.float64)
        if agnostic:
            k = torchvision.ops.nms(b, s, iou)
        else:
            k = torchvision.ops.batched_nms(
                b, s, torch.tensor(g["class_id"].to_numpy(), dtype=torch.int64), iou
            )
        kept |= set(g["id"].to_numpy()[k.numpy()].tolist())
    return kept


def reference_nms(df: pl.DataFrame, iou: float, agnostic: bool) -> dict[int, int | None]:
    """Greedy NMS with the documented order (score desc, id asc): id → suppressor id or None."""
    out: dict[int, int | None] = {}
    keys = ["item_id"] if agnostic else ["item_id", "class_id"]
    for _, g in df.group_by(keys):
        rows = sorted(g.iter_rows(named=True), key=lambda r: (-r["score"], r["id"]))
        kept: list[dict] = []
        for r in rows:
            by = None
            for k in kept:
                iw = max(0.0, min(r["x2"], k["x2"]) - max(r["x1"], k["x1"]))
                ih = max(0.0, min(r["y2"], k["y2"]) - max(r["y1"], k["y1"]))
                inter = iw * ih
                union = (
                    (k["x2"] - k["x1"]) * (k["y2"] - k["y1"])
                    + (r["x2"] - r["x1"]) * (r["y2"] - r["y1"])
                    - inter
                )
                if union > 0 and inter / union > iou:
                    by = k["id"]
                    break
            out[r["id"]] = by
            if by is None:
                kept.append(r)
    return out


@pytest.mark.parametrize("agnostic", [False, True])
@pytest.mark.parametrize("crowded", [False, True])
def test_parity_with_torchvision_many_seeds(agnostic, crowded):
    for seed in range(8):
        rng = np.random.default_rng(seed)
        df = random_boxes(rng, images=25, crowded=crowded)
        for t in (0.0, 0.3, 0.5, 0.7, 1.0):
            res = nms_frame(df, t, agnostic)
            ours = set(res.filter(pl.col("keep"))["id"].to_list())
            assert ours == torchvision_keep(df, t, agnostic), (seed, t)


def test_suppressed_by_is_first_kept_overlap_and_rows_keep_input_order():
    rng = np.random.default_rng(5)
    df = random_boxes(rng, images=30, crowded=True).sample(fraction=1.0, shuffle=True, seed=1)
    res = nms_frame(df, 0.5)
    assert res["id"].to_list() == df["id"].to_list()
    ref = reference_nms(df, 0.5, False)
    got = dict(zip(res["id"].to_list(), res["suppressed_by"].to_list(), strict=True))
    assert got == ref
    sup = res.filter(~pl.col("keep"))
    assert sup["suppressed_iou"].min() > 0.5
    assert res.filter(pl.col("keep"))["suppressed_iou"].null_count() == res["keep"].sum()


def test_exact_ties_follow_the_documented_rule():
    rng = np.random.default_rng(11)
    for seed in range(8):
        rng = np.random.default_rng(seed)
        df = random_boxes(rng, images=20, crowded=True).with_columns(
            (pl.col("score") * 4).floor() / 4  # only four distinct scores: many exact ties
        )
        for agnostic in (False, True):
            res = nms_frame(df, 0.4, agnostic)
            got = dict(zip(res["id"].to_list(), res["suppressed_by"].to_list(), strict=True))
            assert got == reference_nms(df, 0.4, agnostic)


def test_tied_best_scores_in_shuffled_rows_follow_the_documented_rule():
    """The first box of a group is found among equal best scores by id, not by row."""
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        df = (
            random_boxes(rng, images=20, crowded=True)
            .with_columns((pl.col("score") * 2).floor() / 2)  # two distinct scores
            .sample(fraction=1.0, shuffle=True, seed=seed)
        )
        for agnostic in (False, True):
            for t in (0.2, 0.5):
                res = nms_frame(df, t, agnostic)
                got = dict(zip(res["id"].to_list(), res["suppressed_by"].to_list(), strict=True))
                assert got == reference_nms(df, t, agnostic), (seed, agnostic, t)
                sup = res.filter(~pl.col("keep"))
                assert (sup["suppressed_iou"] > t).all()


def test_identical_boxes_single_box_empty_and_degenerate():
    df = pl.DataFrame(
        {
            "id": [10, 11, 12, 20, 30, 31, 40, 41],
            "item_id": [1, 1, 1, 2, 3, 3, 4, 4],
            "class_id": [0, 0, 0, 0, 0, 0, 0, 0],
            "x1": [0.0, 0.0, 0.0, 5.0, 3.0, 3.0, 10.0, 10.0],
            "y1": [0.0, 0.0, 0.0, 5.0, 3.0, 3.0, 10.0, 10.0],
            "x2": [10.0, 10.0, 10.0, 9.0, 3.0, 3.0, 5.0, 5.0],
            "y2": [10.0, 10.0, 10.0, 9.0, 8.0, 8.0, 5.0, 5.0],
            "score": [0.5, 0.9, 0.7, 0.1, 0.4, 0.6, 0.2, 0.3],
        }
    )
    res = nms_frame(df, 0.5)
    keep = dict(zip(res["id"].to_list(), res["keep"].to_list(), strict=True))
    # three identical boxes: the best score survives and suppresses the others
    assert keep[11] and not keep[10] and not keep[12]
    assert res.filter(pl.col("id") == 10)["suppressed_by"].item() == 11
    # one box, zero-width boxes and inverted boxes are never suppressed (torchvision agrees)
    assert keep[20] and keep[30] and keep[31] and keep[40] and keep[41]
    assert set(res.filter("keep")["id"].to_list()) == torchvision_keep(df, 0.5, False)
    # a box with a non-finite coordinate neither suppresses nor is suppressed, as in
    # torchvision's nms (its batched_nms turns every box of the call into NaN instead)
    nan_box = df.head(1).with_columns(id=pl.lit(99, pl.Int64), y2=pl.lit(float("nan")), score=pl.lit(0.99))
    nan = pl.concat([df.head(3), nan_box])
    for agnostic in (False, True):
        res = nms_frame(nan, 0.5, agnostic)
        assert res.filter(pl.col("keep"))["id"].sort().to_list() == [11, 99]
    assert set(res.filter("keep")["id"].to_list()) == torchvision_keep(nan, 0.5, True)
    empty = nms_frame(df.head(0), 0.5)
    assert empty.height == 0 and "keep" in empty.columns


def test_chunked_equals_unchunked_and_lazy_input():
    rng = np.random.default_rng(3)
    df = random_boxes(rng, images=200, crowded=True)
    a = nms_frame(df, 0.5)
    b = nms_frame(df.lazy(), 0.5, chunk_rows=400)
    assert a.equals(b)


def test_bad_inputs():
    df = pl.DataFrame({"item_id": [1], "class_id": [0], "x1": [0.0], "y1": [0.0], "x2": [1.0], "y2": [1.0]})
    with pytest.raises(UsageError, match="score"):
        nms_frame(df, 0.5)
    with pytest.raises(UsageError, match="outside"):
        nms_frame(df.with_columns(score=pl.lit(1.0)), 1.5)
    with pytest.raises(InputError, match="finite score"):
        nms_frame(df.with_columns(score=pl.lit(float("nan"))), 0.5)
    # without an id column suppressed_by is a row position
    two = pl.concat([df, df]).with_columns(score=pl.Series([0.1, 0.9]))
    res = nms_frame(two, 0.5, id=None)
    assert res["suppressed_by"].to_list() == [1, None]


def test_sweep_pairs_is_a_superset_of_touching_intervals():
    rng = np.random.default_rng(2)
    n = 400
    lo = rng.random(n) * 50
    f = pl.DataFrame(
        {"g": rng.integers(0, 5, n), "lo": lo, "hi": lo + rng.random(n) * 10, "idx": np.arange(n)}
    )
    got = {tuple(sorted(p)) for p in sweep_pairs(f, "lo", "hi", group="g", index="idx").iter_rows()}
    rows = f.rows()
    want = {
        (a[3], b[3])
        for k, a in enumerate(rows)
        for b in rows[k + 1 :]
        if a[0] == b[0] and max(a[1], b[1]) <= min(a[2], b[2])
    }
    assert want <= got


def _boxes(rows: list[tuple], **extra: list) -> pl.DataFrame:
    """Boxes from (id, item_id, class_id, x1, y1, x2, y2, score) tuples."""
    cols = ("id", "item_id", "class_id", "x1", "y1", "x2", "y2", "score")
    df = pl.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])
    df = df.with_columns(pl.col("id", "item_id").cast(pl.Int64), pl.col("class_id").cast(pl.Int32))
    return df.with_columns(**{k: pl.Series(v) for k, v in extra.items()})


def _kept(res: pl.DataFrame) -> list[int]:
    return sorted(res.filter(pl.col("keep"))["id"].to_list())


def test_a_suppressed_box_suppresses_nothing():
    # A overlaps B, B overlaps C, A does not overlap C: A suppresses B, so C survives
    df = _boxes(
        [
            (1, 0, 0, 0.0, 0.0, 10.0, 10.0, 0.9),
            (2, 0, 0, 3.0, 0.0, 13.0, 10.0, 0.8),
            (3, 0, 0, 6.0, 0.0, 16.0, 10.0, 0.7),
            # a longer chain, scores falling to the right: keep, drop, keep, drop, keep
            *[(10 + k, 1, 0, 3.0 * k, 0.0, 3.0 * k + 10, 10.0, 0.9 - 0.1 * k) for k in range(5)],
            # and rising to the right: the same alternation from the other end
            *[(20 + k, 2, 0, 3.0 * k, 0.0, 3.0 * k + 10, 10.0, 0.1 + 0.1 * k) for k in range(5)],
        ]
    )
    res = nms_frame(df, 0.3)
    assert _kept(res) == [1, 3, 10, 12, 14, 20, 22, 24]
    assert set(_kept(res)) == torchvision_keep(df, 0.3, False)
    assert res.filter(pl.col("id") == 2)["suppressed_by"].item() == 1
    assert res.filter(pl.col("id") == 23)["suppressed_by"].item() == 24


def test_iou_exactly_at_the_threshold_does_not_suppress():
    df = _boxes(
        [
            (1, 0, 0, 0.0, 0.0, 2.0, 1.0, 0.9),
            (2, 0, 0, 0.0, 0.0, 1.0, 1.0, 0.8),  # IoU with 1: exactly 0.5
            (3, 1, 0, 0.0, 0.0, 4.0, 4.0, 0.9),
            (4, 1, 0, 0.0, 0.0, 4.0, 1.0, 0.8),  # IoU with 3: exactly 0.25
        ]
    )
    assert _kept(nms_frame(df, 0.5)) == [1, 2, 3, 4]
    assert _kept(nms_frame(df, 0.25)) == [1, 3, 4]
    assert _kept(nms_frame(df, 0.4999)) == [1, 3, 4]
    assert _kept(nms_frame(df, 0.2499)) == [1, 3]
    for t in (0.5, 0.25, 0.4999, 0.2499):
        assert set(_kept(nms_frame(df, t))) == torchvision_keep(df, t, False)


def test_equal_scores_and_identical_boxes_prefer_the_tiebreak_then_the_row():
    same = (0.0, 0.0, 10.0, 10.0, 0.5)
    df = _boxes([(7, 0, 0, *same), (3, 0, 0, *same), (5, 0, 0, *same)], run=[2, 1, 1])
    # default: the lowest id wins, and suppresses the others
    res = nms_frame(df, 0.5)
    assert _kept(res) == [3]
    assert res["suppressed_by"].to_list() == [3, None, 3]
    # tiebreak columns come first: run 1 before run 2, then the id
    assert _kept(nms_frame(df, 0.5, tiebreak=["run", "id"])) == [3]
    assert _kept(nms_frame(df, 0.5, tiebreak=["run"])) == [3]
    # a string tiebreak compares as strings; equal everywhere, the first row wins
    named = df.with_columns(name=pl.Series(["b", "c", "a"]))
    assert _kept(nms_frame(named, 0.5, tiebreak=["name"])) == [5]
    assert _kept(nms_frame(df.with_columns(id=pl.lit(0, pl.Int64)), 0.5, id=None)) == [0]
    assert nms_frame(df, 0.5, id=None)["suppressed_by"].to_list() == [None, 0, 0]
    # ids of any type: suppressed_by holds the suppressor's id
    text = nms_frame(df.with_columns(pl.format("det-{}", "id").alias("id")), 0.5)
    assert text["suppressed_by"].to_list() == ["det-3", None, "det-3"]
    wide = nms_frame(df.with_columns(item_id=pl.lit(2**64 - 1, pl.UInt64)), 0.5)
    assert wide["suppressed_by"].to_list() == [3, None, 3]


def test_zero_area_and_inverted_boxes_never_suppress_or_get_suppressed():
    df = _boxes(
        [
            (1, 0, 0, 5.0, 5.0, 5.0, 5.0, 0.9),  # a point
            (2, 0, 0, 5.0, 5.0, 5.0, 5.0, 0.8),  # the same point
            (3, 0, 0, 0.0, 0.0, 10.0, 0.0, 0.7),  # a horizontal line
            (4, 0, 0, 0.0, 0.0, 10.0, 0.0, 0.6),
            (5, 0, 0, 10.0, 10.0, 0.0, 0.0, 0.5),  # inverted over a real box
            (6, 0, 0, 0.0, 0.0, 10.0, 10.0, 0.4),
            (7, 0, 0, 0.0, 0.0, 10.0, 10.0, 0.3),  # suppressed by 6 only
        ]
    )
    for t in (0.0, 0.5):
        res = nms_frame(df, t)
        assert _kept(res) == [1, 2, 3, 4, 5, 6]
        assert set(_kept(res)) == torchvision_keep(df, t, False)


def test_many_classes_wide_ids_and_long_windows():
    rng = np.random.default_rng(7)
    n = 3000
    # 40 images, 300 classes: mostly one box per group, class ids far apart and negative
    df = pl.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "item_id": rng.integers(0, 40, n) * 1_000_003,
            "class_id": rng.integers(-150, 150, n) * 7919,
            "x1": rng.random(n) * 50,
            "y1": rng.random(n) * 50,
            "score": rng.random(n),
        }
    ).with_columns(x2=pl.col("x1") + 20, y2=pl.col("y1") + 20)
    for agnostic in (False, True):
        for t in (0.1, 0.5):
            assert set(_kept(nms_frame(df, t, agnostic))) == torchvision_keep(df, t, agnostic)
    # crowded: hundreds of nearly identical boxes in one image, windows far longer than
    # the short windows counted by shifts
    pile = rng.normal(0, 0.5, (400, 2))
    crowd = pl.DataFrame(
        {
            "id": np.arange(400, dtype=np.int64),
            "item_id": np.zeros(400, dtype=np.int64),
            "class_id": rng.integers(0, 2, 400),
            "x1": 100 + pile[:, 0],
            "y1": 100 + pile[:, 1],
            "x2": 140 + pile[:, 0] * 3,
            "y2": 150 + pile[:, 1] * 3,
            "score": rng.random(400),
        }
    )
    for agnostic in (False, True):
        for t in (0.5, 0.9, 0.97):
            res = nms_frame(crowd, t, agnostic)
            assert set(_kept(res)) == torchvision_keep(crowd, t, agnostic)
            got = dict(zip(res["id"].to_list(), res["suppressed_by"].to_list(), strict=True))
            assert got == reference_nms(crowd, t, agnostic)


def test_groups_too_wide_for_one_sort_key_and_any_key_type():
    rng = np.random.default_rng(9)
    df = random_boxes(rng, images=30, crowded=True)
    want = {agnostic: set(_kept(nms_frame(df, 0.5, agnostic))) for agnostic in (False, True)}
    for agnostic in (False, True):
        assert want[agnostic] == torchvision_keep(df, 0.5, agnostic)
    # item ids 2^45 apart: one float key cannot hold group and x, every pair is tested
    wide = df.with_columns(pl.col("item_id") * 2**45)
    # huge coordinates: the same, through the span instead of the group codes
    far = df.with_columns(pl.col("x1", "x2") + 1e13)
    for agnostic in (False, True):
        assert set(_kept(nms_frame(wide, 0.5, agnostic))) == want[agnostic]
        assert set(_kept(nms_frame(far, 0.5, agnostic))) == torchvision_keep(far, 0.5, agnostic)
    # string and nullable group keys group like polars does (null is a group of its own)
    keyed = df.with_columns(
        key=pl.format("img-{}", "item_id"),
        maybe=pl.when(pl.col("item_id") == 0).then(None).otherwise(pl.col("item_id")),
    )
    for agnostic in (False, True):
        assert set(_kept(nms_frame(keyed, 0.5, agnostic, group=["key"]))) == want[agnostic]
        assert set(_kept(nms_frame(keyed, 0.5, agnostic, group=["maybe"]))) == want[agnostic]
    # no group at all: one group per class, or everything together
    one = df.filter(pl.col("item_id") == 3)
    for agnostic in (False, True):
        assert set(_kept(nms_frame(one, 0.5, agnostic, group=[]))) == torchvision_keep(one, 0.5, agnostic)


def test_threads_chunks_and_input_order_do_not_change_the_result():
    rng = np.random.default_rng(4)
    df = random_boxes(rng, images=300, crowded=True)
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=3)
    for agnostic in (False, True):
        a = nms_frame(df, 0.5, agnostic, threads=1)
        for kw in ({"threads": 2, "chunk_rows": 500}, {"threads": 3, "chunk_rows": 1}, {"threads": 1}):
            assert a.equals(nms_frame(df, 0.5, agnostic, **kw))
        b = nms_frame(shuffled, 0.5, agnostic, threads=2, chunk_rows=700)
        assert b["id"].to_list() == shuffled["id"].to_list()
        assert b.sort("id").equals(a.sort("id"))


def test_cancel_between_chunks():
    from tuiops.errors import Cancelled
    from tuiops.ops.base import CancelToken

    df = random_boxes(np.random.default_rng(1), images=200)
    token = CancelToken()
    seen = []

    def progress(event):
        seen.append(event.done)
        token.cancel()

    with pytest.raises(Cancelled):
        nms_frame(df, 0.5, chunk_rows=100, threads=2, progress=progress, cancel=token)
    assert seen and seen[0] < df.height


# -- ops over the store ----------------------------------------------------------------------------
def _run_frame(items: pl.DataFrame, rng: np.random.Generator, per: int = 12) -> pl.DataFrame:
    ids = items["item_id"].to_numpy()
    n = len(ids) * per
    item = np.repeat(ids, per)
    base = rng.random((len(ids), 2, 2)) * 400
    pick = rng.integers(0, 2, n)
    xy = base[np.repeat(np.arange(len(ids)), per), pick] + rng.normal(0, 4, (n, 2))
    return pl.DataFrame(
        {
            "item_id": item,
            "class_id": rng.integers(0, 2, n),
            "x1": xy[:, 0],
            "y1": xy[:, 1],
            "x2": xy[:, 0] + 60,
            "y2": xy[:, 1] + 80,
            "score": rng.random(n),
        }
    )


def test_nms_run_writes_a_new_run_with_lineage(ws):
    items = add_items(ws, [f"danbooru_{i}" for i in range(40)])
    rng = np.random.default_rng(0)
    boxes = _run_frame(items.head(30), rng)
    ws.store.create_run("v41", boxes, items.select("item_id"), weights="best.pt", epoch=7, conf=0.25)
    res = nms_run(ws, "v41", into="v41-nms", iou=0.5)
    src = ws.store.read_detections("v41")
    want = torchvision_keep(src, 0.5, False)
    out = ws.store.read_detections("v41-nms")
    assert res.kept == out.height == len(want) and res.boxes_in == src.height
    # every image of the source run is in the new run, also those with no detections
    assert ws.store.read_run_images("v41-nms").height == 40
    row = ws.store.execute(
        "SELECT weights, epoch, conf, iou, params, source FROM runs WHERE name='v41-nms'"
    ).fetchone()
    assert row[:4] == ("best.pt", 7, 0.25, 0.5)
    assert json.loads(row[4])["runs"] == ["v41"] and row[5] == "run:v41"
    links = ws.store.read_frame(
        "SELECT det_id, source_det_id, source_run FROM det_sources WHERE run_id = ?",
        (ws.store.run_id("v41-nms"),),
    )
    assert set(links["source_det_id"].to_list()) == want
    joined = links.join(out, left_on="det_id", right_on="id").join(
        src, left_on="source_det_id", right_on="id", suffix="_src"
    )
    assert joined.height == out.height
    assert (joined["x1"] == joined["x1_src"]).all() and (joined["score"] == joined["score_src"]).all()
    with pytest.raises(ConflictError):
        nms_run(ws, "v41", into="v41-nms")
    nms_run(ws, "v41", into="v41-nms", iou=0.3, replace=True)
    assert ws.store.read_detections("v41-nms").height < out.height
    ws.store.drop_run("v41-nms")
    assert ws.store.one("SELECT count(*) FROM det_sources") == 0


def test_merge_runs_prefers_the_first_run_on_ties_and_records_sources(ws):
    items = add_items(ws, ["danbooru_1", "danbooru_2", "danbooru_3"])
    ids = items["item_id"].to_list()
    a = pl.DataFrame(
        {
            "item_id": [ids[0], ids[0], ids[1]],
            "class_id": [0, 1, 0],
            "x1": [0.0, 200.0, 10.0],
            "y1": [0.0, 200.0, 10.0],
            "x2": [100.0, 300.0, 60.0],
            "y2": [100.0, 300.0, 60.0],
            "score": [0.8, 0.5, 0.4],
        }
    )
    b = pl.DataFrame(
        {
            "item_id": [ids[0], ids[0], ids[2]],
            "class_id": [0, 1, 0],
            "x1": [2.0, 202.0, 5.0],
            "y1": [2.0, 202.0, 5.0],
            "x2": [101.0, 301.0, 50.0],
            "y2": [101.0, 301.0, 50.0],
            "score": [0.8, 0.9, 0.7],
        }
    )
    ws.store.create_run("a", a, items.head(2).select("item_id"))
    ws.store.create_run(
        "b", b, items.select("item_id").slice(0, 1).vstack(items.select("item_id").slice(2, 1))
    )
    res = merge_runs(ws, ["a", "b"], into="ab", iou=0.5)
    assert res.kept == 4 and res.by_source == {"a": 2, "b": 2}
    src = ws.store.read_frame("SELECT source_run, source_det_id FROM det_sources ORDER BY det_id")
    da, db = ws.store.read_detections("a"), ws.store.read_detections("b")
    # tie at 0.8 on image 1 class 0: run a (listed first) wins; class 1: b's 0.9 wins
    assert src.filter(pl.col("source_run") == "a")["source_det_id"].to_list() == [da["id"][0], da["id"][2]]
    assert sorted(src.filter(pl.col("source_run") == "b")["source_det_id"].to_list()) == [
        db["id"][1],
        db["id"][2],
    ]
    assert ws.store.read_run_images("ab").height == 3
    res2 = merge_runs(ws, ["b", "a"], into="ba", iou=0.5)
    assert res2.by_source == {"b": 3, "a": 1}
    with pytest.raises(UsageError, match="also a source"):
        merge_runs(ws, ["a", "b"], into="a")
    with pytest.raises(NotFoundError):
        merge_runs(ws, ["a", "nope"], into="x")


def test_dedupe_labels_flags_without_changing_the_set(ws):
    items = add_items(ws, ["danbooru_1", "danbooru_2"])
    i1, i2 = items["item_id"].to_list()
    labels = pl.DataFrame(
        {
            "item_id": [i1, i1, i1, i1, i2, i2],
            "class_id": [0, 1, 0, 2, 0, 0],
            "x1": [10.0, 100.0, 10.5, 100.0, 0.0, 50.0],
            "y1": [10.0, 100.0, 10.0, 100.5, 0.0, 50.0],
            "x2": [50.0, 150.0, 50.0, 150.0, 40.0, 90.0],
            "y2": [60.0, 150.0, 60.0, 150.0, 40.0, 90.0],
        }
    )
    ws.store.create_label_set("gt", labels, items.select("item_id"))
    before = ws.store.read_labels("gt")
    res = dedupe_labels(ws, "gt", iou=0.9)
    assert res.flagged == 1 and res.by_flag == {"duplicate": 1}
    flags = ws.store.read_frame("SELECT label_id, flag, other_label_id, iou FROM label_flags")
    assert flags["label_id"].to_list() == [before["id"][2]]
    assert flags["other_label_id"].to_list() == [before["id"][0]]
    assert flags["iou"][0] > 0.9
    assert ws.store.read_labels("gt").equals(before)
    # class-agnostic: the box labelled with two classes is a conflict; flags are replaced
    res = dedupe_labels(ws, "gt", iou=0.9, class_agnostic=True, into="gt-clean")
    assert res.by_flag == {"duplicate": 1, "class_conflict": 1}
    assert ws.store.one("SELECT count(*) FROM label_flags") == 2
    clean = ws.store.read_labels("gt-clean")
    assert clean.height == 4 and ws.store.read_set_images("gt-clean").height == 2
    view = ws.store.read_frame("SELECT key, flag FROM v_label_flags ORDER BY flag")
    assert view.rows() == [("danbooru_1", "class_conflict"), ("danbooru_1", "duplicate")]
    ws.store.drop_label_set("gt")
    assert ws.store.one("SELECT count(*) FROM label_flags") == 0


def test_nms_cli(ws, capsys):
    items = add_items(ws, [f"danbooru_{i}" for i in range(10)])
    rng = np.random.default_rng(1)
    ws.store.create_run("r", _run_frame(items, rng), items.select("item_id"))
    ws.store.create_label_set("gt", _run_frame(items, rng).drop("score"), items.select("item_id"))
    root = str(ws.root)
    assert cli_run(["-w", root, "nms", "--run", "r", "--into", "r2", "--iou", "0.6", "-q"]) == 0
    assert "kept" in capsys.readouterr().out
    assert ws.store.read_detections("r2").height > 0
    assert (
        cli_run(["-w", root, "nms", "--run", "r", "--run", "r2", "--into", "m", "--agnostic", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["sources"] == ["r", "r2"] and out["class_agnostic"] is True
    assert cli_run(["-w", root, "nms", "--set", "gt", "--dedupe", "--iou", "0.8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label_set"] == "gt"
    assert cli_run(["-w", root, "nms", "--set", "gt"]) == 2
    assert "--dedupe" in capsys.readouterr().err
    assert cli_run(["-w", root, "nms", "--run", "r"]) == 2
    assert cli_run(["-w", root, "nms", "--run", "nope", "--into", "x"]) == 5
    assert "no detection run named 'nope'" in capsys.readouterr().err
    assert cli_run(["-w", root, "nms", "--run", "r", "--into", "r2"]) == 6


def test_cancelled_nms_leaves_nothing_and_records_the_job(ws):
    from tuiops.errors import Cancelled
    from tuiops.ops.base import CancelToken

    items = add_items(ws, [f"danbooru_{i}" for i in range(5)])
    ws.store.create_run("r", _run_frame(items, np.random.default_rng(4)), items.select("item_id"))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        nms_run(ws, "r", into="r2", cancel=token)
    assert ws.store.one("SELECT count(*) FROM runs WHERE name = 'r2'") == 0
    assert ws.store.one("SELECT status FROM jobs WHERE kind = 'nms'") == "cancelled"
