"""Matching in memory: the labels and detections of a chunk of images read, compared object by object, counted per image."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import InputError, StoreError
from tuiops.ops.match.model import (
    CATEGORIES,
    CLS,
    DET_ORD_BASE,
    DUP,
    FN,
    FP,
    LOC,
    OBJ_ITEM_SHIFT,
    TP,
    check_params,
)
from tuiops.store.frames import BOX

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store


# -- reading ------------------------------------------------------------------------------------
def item_ids(store: Store, kind: str, owner: int) -> np.ndarray:
    """The sorted item ids of a label set (``kind="set"``) or a run (``"run"``), also images without boxes."""
    import polars as pl

    table, col = ("set_images", "set_id") if kind == "set" else ("run_images", "run_id")
    frame = store.read_frame(
        f"SELECT item_id FROM {table} WHERE {col} = ? ORDER BY item_id", (owner,), {"item_id": pl.Int64}
    )
    return frame["item_id"].to_numpy().astype(np.int64)


def _owner_range(owner: int, item_lo: int | None, item_hi: int | None) -> tuple[int, int]:
    from tuiops.store.db import id_range

    lo, hi = id_range(owner)
    if item_lo is not None:
        lo = id_range(owner, item_lo)[0]
    if item_hi is not None:
        hi = id_range(owner, item_hi)[1]
    return lo, hi


def _with_item(frame: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    from tuiops.store.db import item_of

    item = item_of(pl.col("id")).alias("item_id")
    return frame.with_columns(item).select("id", "item_id", *[c for c in frame.columns if c != "id"])


def read_labels(
    store: Store,
    set_id: int,
    item_lo: int | None = None,
    item_hi: int | None = None,
    *,
    coco_extra: bool = False,
) -> pl.DataFrame:
    """A label set's boxes (optionally of items ``item_lo..item_hi``) by id range, in id order.

    ``id, item_id, class_id, x1, y1, x2, y2``; with ``coco_extra`` also ``area`` (COCO's
    annotation area, null where absent) and ``iscrowd``: the label's numeric columns where
    its import filled them, else from ``extra``.
    """
    import polars as pl

    lo, hi = _owner_range(set_id, item_lo, item_hi)
    extra_sql = ""
    schema: dict[str, Any] = {"id": pl.Int64, "class_id": pl.Int32, **dict.fromkeys(BOX, pl.Float64)}
    # through the Arrow reader, as the detections are read beside this: a query through the
    # other SQLite library would wait for that read to end
    if (
        coco_extra
        and store.read_frame(
            "SELECT 1 AS one FROM labels WHERE id BETWEEN ? AND ? AND extra IS NOT NULL LIMIT 1", (lo, hi)
        ).height
    ):
        extra_sql = (
            ", COALESCE(coco_area, json_extract(extra, '$.area') + 0.0, -1.0) AS area"
            ", COALESCE(coco_iscrowd, json_extract(extra, '$.iscrowd'), 0) AS iscrowd"
        )
        schema.update({"area": pl.Float64, "iscrowd": pl.Int64})
    try:
        frame = store.read_frame(
            f"SELECT id, class_id, x1, y1, x2, y2{extra_sql} FROM labels WHERE id BETWEEN ? AND ?",
            (lo, hi),
            schema,
        )
    except StoreError as exc:
        if "JSON" not in str(exc):
            raise
        raise InputError(
            f"a label of the set has malformed JSON in its extra column: {exc}", hint="re-import the set"
        ) from exc
    frame = _with_item(frame)
    if "area" in frame.columns:
        frame = frame.with_columns(pl.when(pl.col("area") >= 0).then(pl.col("area")).alias("area"))
    return frame


def read_dets(
    store: Store, run_id: int, item_lo: int | None = None, item_hi: int | None = None
) -> pl.DataFrame:
    """A run's detections (optionally of items ``item_lo..item_hi``) by id range, in id order.

    ``id, item_id, class_id, x1, y1, x2, y2, score``.
    """
    import polars as pl

    lo, hi = _owner_range(run_id, item_lo, item_hi)
    frame = store.read_frame(
        "SELECT id, class_id, x1, y1, x2, y2, score FROM detections WHERE id BETWEEN ? AND ?",
        (lo, hi),
        {"id": pl.Int64, "class_id": pl.Int32, **dict.fromkeys(BOX, pl.Float64), "score": pl.Float64},
    )
    if frame.height and frame["score"].is_nan().any():
        raise InputError("the run has detections with a NaN score", hint="re-import the run")
    return _with_item(frame)


def read_boxes(
    store: Store, set_id: int, run_id: int, *, coco_extra: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All labels of a set and detections of a run (:func:`read_labels`, :func:`read_dets`), read side by side."""
    from tuiops.store import Store as _Store

    other = _Store(store.path, readonly=True)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            dets = pool.submit(read_dets, other, run_id)
            labels = read_labels(store, set_id, coco_extra=coco_extra)
            return labels, dets.result()
    finally:
        other.close()


# -- matching (in memory) -----------------------------------------------------------------------
def match_frames(
    labels: pl.DataFrame,
    dets: pl.DataFrame,
    *,
    iou: float = 0.5,
    low: float = 0.1,
    conf: float = 0.25,
    check: Callable[[], None] | None = None,
) -> pl.DataFrame:
    """Match detections to labels (module doc) and return one row per object.

    ``labels``: ``id, item_id, class_id, x1, y1, x2, y2``; ``dets`` the same plus
    ``score``; each in file order within an image. Returns ``item_id, ord, label_id,
    det_id, class_id, det_class_id, category`` (code into :data:`CATEGORIES`), ``iou,
    score, cost``, sorted by image then ``ord`` (label rows: the label's place in its
    file; detection-only rows: 4096 + the detection's place).
    """
    import polars as pl

    from tuiops.ops.matching import Boxes, descending_score_order, greedy_assign, group_pairs

    check_params(iou, low, conf)
    lid = labels["id"].cast(pl.Int64).to_numpy()
    l_item = labels["item_id"].cast(pl.Int64).to_numpy()
    l_cls = labels["class_id"].cast(pl.Int64).to_numpy()
    did = dets["id"].cast(pl.Int64).to_numpy()
    d_item = dets["item_id"].cast(pl.Int64).to_numpy()
    d_cls = dets["class_id"].cast(pl.Int64).to_numpy()
    score = dets["score"].cast(pl.Float64).to_numpy()
    n_l, n_d = len(lid), len(did)
    gb = Boxes.from_xyxy(*(labels[c].cast(pl.Float64).to_numpy() for c in ("x1", "y1", "x2", "y2")))
    db = Boxes.from_xyxy(*(dets[c].cast(pl.Float64).to_numpy() for c in ("x1", "y1", "x2", "y2")))
    t_eff = min(iou, 1.0 - 1e-10)
    low_eff = min(low, t_eff)
    n_cls = max(int(max(l_cls.max(initial=-1), d_cls.max(initial=-1))) + 1, 1)
    d_key = d_item * n_cls + d_cls
    turn = np.empty(n_d, np.int64)
    turn[descending_score_order(score)] = np.arange(n_d)
    confident = score >= conf

    # Same-class pairs (IoU ≥ low) serve tp and loc.
    di, gi, v = group_pairs(d_key, l_item * n_cls + l_cls, db, gb, min_iou=low_eff)

    # 1. tp: COCO's greedy per image and class, all detections.
    s1 = v >= t_eff
    first = greedy_assign(di[s1], gi[s1], v[s1], d_key, turn, n_d, [iou], check=check)
    took, took_iou = first.dense(0), first.dense_iou(0)
    tp = (took >= 0) & confident
    weak = (took >= 0) & ~confident
    lab_det = np.full(n_l, -1, dtype=np.int64)
    lab_iou = np.full(n_l, np.nan)
    lab_cat = np.full(n_l, FN, dtype=np.int8)
    for mask, cat in ((weak, FN), (tp, TP)):
        hit = np.flatnonzero(mask)
        lab_det[took[hit]] = hit
        lab_iou[took[hit]] = took_iou[hit]
        lab_cat[took[hit]] = cat
    det_free = confident & ~tp
    lab_free = lab_cat == FN

    # Pairs of the confident detections left over with every label of their image (IoU ≥ t)
    # serve cls and dup.
    fi = np.flatnonzero(det_free)
    sub = Boxes(db.x1[fi], db.y1[fi], db.xr[fi], db.yb[fi], db.area[fi])
    xdi, xgi, xv = group_pairs(d_item[fi], l_item, sub, gb, min_iou=t_eff)
    xdi = fi[xdi]

    # 2. cls: other class, IoU ≥ t, per image by score.
    s2 = (d_cls[xdi] != l_cls[xgi]) & lab_free[xgi]
    if s2.any():
        a2 = greedy_assign(xdi[s2], xgi[s2], xv[s2], d_item, turn, n_d, [iou], check=check)
        _take(a2, CLS, lab_det, lab_iou, lab_cat, det_free, lab_free)

    # 3. loc: same class, IoU in [low, t), per image and class by score.
    s3 = det_free[di] & lab_free[gi]
    if s3.any():
        a3 = greedy_assign(di[s3], gi[s3], v[s3], d_key, turn, n_d, [low], check=check)
        _take(a3, LOC, lab_det, lab_iou, lab_cat, det_free, lab_free)

    # 4. dup: IoU ≥ t with a label another detection explains; the best such label.
    dup_lab, dup_iou = _duplicates(xdi, xgi, xv, det_free, lab_free, n_d)
    is_dup = dup_lab >= 0
    is_fp = det_free & ~is_dup
    return _object_rows(
        (lid, l_item, l_cls),
        (did, d_item, d_cls, score),
        (lab_det, lab_iou, lab_cat),
        (dup_lab, dup_iou, np.flatnonzero(is_dup | is_fp)),
    )


def _duplicates(
    xdi: np.ndarray, xgi: np.ndarray, xv: np.ndarray, det_free: np.ndarray, lab_free: np.ndarray, n_d: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each detection left over: the label (and the IoU) it duplicates, the best of the
    labels another detection explains that it overlaps by IoU ≥ t (pairs ``xdi, xgi, xv``);
    -1 (NaN) for none."""
    dup_lab = np.full(n_d, -1, dtype=np.int64)
    dup_iou = np.full(n_d, np.nan)
    s4 = np.flatnonzero(det_free[xdi] & ~lab_free[xgi])
    if len(s4):
        order = np.lexsort((xgi[s4], -xv[s4], xdi[s4]))
        d_s, g_s, v_s = xdi[s4][order], xgi[s4][order], xv[s4][order]
        head = np.ones(len(d_s), bool)
        head[1:] = d_s[1:] != d_s[:-1]
        dup_lab[d_s[head]] = g_s[head]
        dup_iou[d_s[head]] = v_s[head]
    return dup_lab, dup_iou


def _object_rows(
    lab: tuple[np.ndarray, np.ndarray, np.ndarray],
    det: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    lab_match: tuple[np.ndarray, np.ndarray, np.ndarray],
    det_only: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> pl.DataFrame:
    """The object rows: one per label (tp, loc, cls, fn), then one per detection-only object
    (dup, fp), sorted by image then ``ord``.

    ``lab``: the labels' ids, items, classes; ``det``: the detections' ids, items, classes,
    scores; ``lab_match``: each label's detection (-1: none), IoU and category;
    ``det_only``: each detection's duplicated label (-1: none) and IoU, and the indices of
    the detections that are rows of their own.
    """
    import polars as pl

    from tuiops.store.db import MAX_ORD

    lid, l_item, l_cls = lab
    did, d_item, d_cls, score = det
    lab_det, lab_iou, lab_cat = lab_match
    dup_lab, dup_iou, d_rows = det_only
    n_l, n_d = len(lid), len(did)
    has_det = lab_det >= 0
    ld = np.where(has_det, lab_det, 0)
    l_score = np.where(has_det, score[ld], np.nan) if n_d else np.full(n_l, np.nan)
    l_cost = np.where(
        (lab_cat == TP) | (lab_cat == LOC),
        1.0 - lab_iou,
        np.where(lab_cat == CLS, l_score, np.where(has_det, 1.0 - l_score, 1.0)),
    )
    dl = dup_lab[d_rows]
    has_lab = dl >= 0
    dl0 = np.where(has_lab, dl, 0)
    none = np.int64(-1)
    rows = pl.DataFrame(
        {
            "item_id": np.concatenate((l_item, d_item[d_rows])),
            "ord": np.concatenate((lid & MAX_ORD, DET_ORD_BASE + (did[d_rows] & MAX_ORD))),
            "label_id": np.concatenate((lid, np.where(has_lab, lid[dl0] if n_l else none, none))),
            "det_id": np.concatenate((np.where(has_det, did[ld] if n_d else none, none), did[d_rows])),
            "class_id": np.concatenate((l_cls, np.where(has_lab, l_cls[dl0] if n_l else none, none))),
            "det_class_id": np.concatenate(
                (np.where(has_det, d_cls[ld] if n_d else none, none), d_cls[d_rows])
            ),
            "category": np.concatenate((lab_cat, np.where(has_lab, DUP, FP).astype(np.int8))),
            "iou": np.concatenate((lab_iou, dup_iou[d_rows])),
            "score": np.concatenate((l_score, score[d_rows])),
            "cost": np.concatenate((l_cost, score[d_rows])),
        },
        schema={
            "item_id": pl.Int64,
            "ord": pl.Int64,
            "label_id": pl.Int64,
            "det_id": pl.Int64,
            "class_id": pl.Int64,
            "det_class_id": pl.Int64,
            "category": pl.Int8,
            "iou": pl.Float64,
            "score": pl.Float64,
            "cost": pl.Float64,
        },
    )
    key = (rows["item_id"].to_numpy() << OBJ_ITEM_SHIFT) | rows["ord"].to_numpy()
    if len(key) > 1 and (key[1:] < key[:-1]).any():
        rows = rows[np.argsort(key, kind="stable")]
    nullable = ("label_id", "det_id", "class_id", "det_class_id")
    return rows.with_columns(
        *[pl.when(pl.col(c) >= 0).then(pl.col(c)).alias(c) for c in nullable],
        pl.col("iou").fill_nan(None),
        pl.col("score").fill_nan(None),
    )


def _take(
    asg: Any,
    cat: int,
    lab_det: np.ndarray,
    lab_iou: np.ndarray,
    lab_cat: np.ndarray,
    det_free: np.ndarray,
    lab_free: np.ndarray,
) -> None:
    """Record the pairs of a later matching stage (cls, loc) on the label arrays."""
    took, took_iou = asg.dense(0), asg.dense_iou(0)
    hit = np.flatnonzero(took >= 0)
    lab_det[took[hit]] = hit
    lab_iou[took[hit]] = took_iou[hit]
    lab_cat[took[hit]] = cat
    det_free[hit] = False
    lab_free[took[hit]] = False


def image_stats(
    objects: pl.DataFrame,
    labels: pl.DataFrame,
    dets: pl.DataFrame,
    items: np.ndarray,
    *,
    conf: float,
) -> pl.DataFrame:
    """Per-image counts and metrics (module doc) for ``items`` (sorted), from :func:`match_frames` rows."""
    import polars as pl

    n = len(items)
    o_idx = np.searchsorted(items, objects["item_id"].to_numpy())
    cat = objects["category"].to_numpy().astype(np.int64)
    cost = objects["cost"].to_numpy()
    counts = np.bincount(o_idx * len(CATEGORIES) + cat, minlength=n * len(CATEGORIES)).reshape(
        n, len(CATEGORIES)
    )
    n_labels = np.bincount(np.searchsorted(items, labels["item_id"].to_numpy()), minlength=n)
    confident = dets["score"].to_numpy() >= conf
    n_dets = np.bincount(np.searchsorted(items, dets["item_id"].to_numpy()[confident]), minlength=n)
    cost_sum = np.bincount(o_idx, weights=cost, minlength=n)
    worst = np.zeros(n)
    if len(o_idx):
        starts = np.flatnonzero(np.concatenate(([True], o_idx[1:] != o_idx[:-1])))
        worst[o_idx[starts]] = np.maximum.reduceat(cost, starts)
    tp = counts[:, TP]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_dets > 0, tp / n_dets, 1.0)
        recall = np.where(n_labels > 0, tp / n_labels, 1.0)
        f1 = np.where(n_labels + n_dets > 0, 2.0 * tp / (n_labels + n_dets), 1.0)
    return pl.DataFrame(
        {
            "item_id": items.astype(np.int64),
            "n_labels": n_labels,
            "n_dets": n_dets,
            **{c: counts[:, i] for i, c in enumerate(CATEGORIES)},
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "cost": cost_sum,
            "worst_cost": worst,
        }
    )
