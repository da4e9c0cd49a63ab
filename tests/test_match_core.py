"""The vectorised greedy matching core against a plain per-image reference (pycocotools' loop)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tuiops.geometry import coco_iou
from tuiops.ops.matching import (
    Boxes,
    descending_score_order,
    greedy_assign,
    group_pairs,
    pair_iou,
    score_order,
)


def reference(
    det_group: np.ndarray,
    det_score: np.ndarray,
    gt_group: np.ndarray,
    ious: dict[tuple[int, int], float],
    thresholds: list[float],
    ignore: np.ndarray,
    crowd: np.ndarray,
) -> np.ndarray:
    """COCOeval.evaluateImg's loop, one group at a time: (T*A, n_det) label index or −1."""
    n_sets = ignore.shape[1]
    out = np.full((len(thresholds) * n_sets, len(det_group)), -1)
    for grp in np.unique(np.concatenate((det_group, gt_group))):
        dets = [int(i) for i in np.flatnonzero(det_group == grp)]
        dets = [dets[i] for i in np.argsort([-det_score[d] for d in dets], kind="mergesort")]
        gts_all = [int(i) for i in np.flatnonzero(gt_group == grp)]
        for ti, t in enumerate(thresholds):
            for a in range(n_sets):
                gts = [gts_all[i] for i in np.argsort([ignore[g, a] for g in gts_all], kind="mergesort")]
                taken: set[int] = set()
                for d in dets:
                    best_iou = min(t, 1 - 1e-10)
                    m = -1
                    for g in gts:
                        if g in taken and not crowd[g]:
                            continue
                        if m > -1 and not ignore[m, a] and ignore[g, a]:
                            break
                        if ious.get((d, g), 0.0) < best_iou:
                            continue
                        best_iou = ious[(d, g)]
                        m = g
                    if m > -1:
                        out[ti * n_sets + a, d] = m
                        taken.add(m)
    return out


@pytest.mark.parametrize("seed", range(60))
def test_greedy_assign_equals_the_reference(seed):
    rng = np.random.default_rng(seed)
    n_groups = int(rng.integers(1, 6))
    n_det = int(rng.integers(0, 30))
    n_gt = int(rng.integers(1, 20))
    det_group = rng.integers(0, n_groups, n_det)
    gt_group = np.sort(rng.integers(0, n_groups, n_gt))
    det_score = rng.choice([0.2, 0.5, 0.5, 0.9], n_det) if seed % 2 else rng.random(n_det)
    levels = np.array([0.3, 0.5, 0.55, 0.7, 0.7, 0.9, 1.0])
    ious = {}
    for d in range(n_det):
        for g in np.flatnonzero(gt_group == det_group[d]):
            if rng.random() < 0.6:
                ious[(d, int(g))] = float(levels[rng.integers(0, len(levels))])
    n_sets = int(rng.integers(1, 4))
    ignore = rng.random((n_gt, n_sets)) < 0.3
    crowd = rng.random(n_gt) < (0.2 if seed % 3 == 0 else 0.0)
    thresholds = [0.5, 0.7, 1.0]

    turn = np.empty(n_det, np.int64)
    turn[np.argsort(-det_score, kind="stable")] = np.arange(n_det)
    det = np.array([k[0] for k in ious], dtype=np.int64)
    gt = np.array([k[1] for k in ious], dtype=np.int64)
    iou = np.array(list(ious.values()), dtype=np.float64)
    asg = greedy_assign(
        det,
        gt,
        iou,
        det_group,
        turn,
        n_det,
        thresholds,
        gt_ignore=ignore,
        gt_crowd=crowd if crowd.any() else None,
    )
    got = (
        np.stack([asg.dense(c) for c in range(asg.n_configs)])
        if n_det
        else np.zeros((len(thresholds) * n_sets, 0))
    )
    want = reference(det_group, det_score, gt_group, ious, thresholds, ignore, crowd)
    assert np.array_equal(got, want), (ious, got, want)
    for c in range(asg.n_configs):
        d_iou = asg.dense_iou(c)
        hit = got[c] >= 0
        assert np.array_equal(
            d_iou[hit], [ious[(d, g)] for d, g in zip(np.flatnonzero(hit), got[c][hit], strict=True)]
        )
        assert np.isnan(d_iou[~hit]).all()


def test_equal_iou_takes_the_last_label():
    # pycocotools' `if iou < best: continue` lets a later equal IoU replace the earlier one.
    asg = greedy_assign(
        np.array([0, 0]), np.array([0, 1]), np.array([0.8, 0.8]), np.array([0]), np.array([0]), 1, [0.5]
    )
    assert asg.dense(0).tolist() == [1]


def test_not_ignored_labels_win_over_better_ignored_ones():
    ignore = np.array([[True], [False]])
    asg = greedy_assign(
        np.array([0, 0]),
        np.array([0, 1]),
        np.array([0.95, 0.6]),
        np.array([0]),
        np.array([0]),
        1,
        [0.5],
        gt_ignore=ignore,
    )
    assert asg.dense(0).tolist() == [1]


def test_threshold_one_still_matches_identical_boxes():
    asg = greedy_assign(np.array([0]), np.array([0]), np.array([1.0]), np.array([0]), np.array([0]), 1, [1.0])
    assert asg.dense(0).tolist() == [0]


def test_score_order_is_stable():
    order, rank = score_order(np.array([1, 1, 1, 0]), np.array([0.5, 0.9, 0.5, 0.1]))
    assert order.tolist() == [3, 1, 0, 2]
    assert rank.tolist() == [1, 0, 2, 0]


def test_numpy_iou_equals_the_polars_builder():
    rng = np.random.default_rng(0)
    n = 500
    x1, y1 = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
    x2, y2 = x1 + rng.uniform(-5, 60, n), y1 + rng.uniform(-5, 60, n)
    gx1, gy1 = x1 + rng.normal(0, 10, n), y1 + rng.normal(0, 10, n)
    gx2, gy2 = gx1 + rng.uniform(1, 60, n), gy1 + rng.uniform(1, 60, n)
    frame = pl.DataFrame(
        {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "x1_g": gx1, "y1_g": gy1, "x2_g": gx2, "y2_g": gy2}
    )
    want = frame.select(coco_iou("", "_g")).to_series().to_numpy()
    db = Boxes.from_xyxy(x1, y1, x2, y2)
    gb = Boxes.from_xyxy(gx1, gy1, gx2, gy2)
    idx = np.arange(n)
    assert np.array_equal(pair_iou(db, gb, idx, idx), want)


@pytest.mark.parametrize(("block", "spread"), [(7, 1), (1 << 16, 1), (5, 10**9)])
def test_group_pairs_finds_every_overlapping_pair_of_a_group(block, spread, monkeypatch):
    from tuiops.ops import matching

    monkeypatch.setattr(matching, "PAIR_BLOCK", block)
    rng = np.random.default_rng(1)
    n_d, n_g = 80, 60
    dk, gk = rng.integers(0, 6, n_d) * spread, rng.integers(0, 6, n_g) * spread  # dense or sparse keys

    def mk(n: int) -> Boxes:
        x, y = rng.uniform(0, 60, n), rng.uniform(0, 60, n)
        return Boxes.from_xyxy(x, y, x + rng.uniform(5, 40, n), y + rng.uniform(5, 40, n))

    db, gb = mk(n_d), mk(n_g)
    di, gi, iou = group_pairs(dk, gk, db, gb, min_iou=0.2)
    got = set(zip(di.tolist(), gi.tolist(), strict=True))
    want = set()
    for d in range(n_d):
        for g in range(n_g):
            if dk[d] == gk[g]:
                v = pair_iou(db, gb, np.array([d]), np.array([g]))[0]
                if v >= 0.2:
                    want.add((d, g))
    assert got == want
    assert np.array_equal(iou, pair_iou(db, gb, di, gi))


def test_descending_score_order_is_a_stable_sort_by_class_then_score():
    rng = np.random.default_rng(2)
    for _ in range(20):
        s = rng.choice([-1.5, -0.0, 0.0, 0.3, 0.3, 1e-300, -1e-300, 2.0, np.inf, -np.inf], 300)
        c = rng.integers(0, 4, 300)
        assert np.array_equal(descending_score_order(s, c), np.lexsort((np.arange(300), -s, c)))
        assert np.array_equal(descending_score_order(s), np.argsort(-s, kind="stable"))
