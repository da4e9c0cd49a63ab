"""`match`: compare a label set with a detection run, object by object and image by image.

By default only images that are in both the set and the run are compared (an image the
run never processed says nothing about its labels; an image outside the set has no known
labels); ``images="all"`` compares every image of the set, those the run never processed
with all their labels fn — the choice `eval` offers with the same default.
A detection is *confident* when its score is at least ``conf``; ``t`` is the IoU
threshold (``iou``), ``low`` the lower bound of a localisation error.

Matching, in this order (each stage sees only what the earlier ones left):

1. **tp** — per image and class, COCO's greedy rule (:mod:`tuiops.ops.matching`):
   detections by descending score, each takes the still-unmatched label of its class
   with the highest IoU ≥ t. All detections take part, so a confident detection always
   chooses before a low-score one and the confident matches are exactly those of the
   confident detections alone. A label matched by a confident detection is a *tp* row.
   A label matched only by a low-score detection is not found (see *fn*), but that
   detection is remembered with it.
2. **cls** — per image, greedily by score: a confident unmatched detection takes the
   unmatched label *of another class* with the highest IoU ≥ t (the object is found, the
   class differs).
3. **loc** — per image and class, greedily by score: a confident unmatched detection
   takes the unmatched label of its class with the highest IoU ≥ ``low`` (IoU in
   [low, t): found, but boxed differently).
4. **dup** — a confident detection still unpaired whose IoU with a label that another
   detection already explains (tp, cls or loc) is ≥ t, of any class: a second
   detection of one object. The row names that label (the one with the highest IoU).
5. **fp** — every other confident detection: a detection with no label (possibly a
   missing label).
6. **fn** — every label still unpaired: nobody found it (possibly a spurious label). If a
   low-score detection matched it in step 1, the row names that detection, its IoU and
   score.

Detections below ``conf`` never become tp, cls, loc, dup or fp rows: they are not
confident, and there are usually many of them; they only soften an fn (its cost).

Cost of an object (``match_objects.cost``; larger = a bigger difference):

- tp, loc: ``1 − IoU`` (0 = the boxes agree exactly; loc rows lie in (1 − t, 1 − low]);
- cls, dup, fp: the detection's score (how sure the model is of what the labels lack);
- fn: 1, or ``1 − score`` of the low-score detection that matched it (so labels that
  no detection sees at any score come first).

Per image (``match_images``): the counts of each category; ``n_labels``; ``n_dets`` =
confident detections (= tp + cls + loc + dup + fp); ``precision = tp / n_dets`` (1 when
there is no confident detection, for the order; the totals of a split or of the whole
match have no precision — ``None``, printed n/a — when they hold no confident detection), ``recall = tp / n_labels`` (1 when there is no label),
``f1 = 2·tp / (n_labels + n_dets)`` (1 when both are 0); ``cost`` = the sum of its
objects' costs and ``worst_cost`` their maximum. The worst images come first in
``ORDER BY f1 ASC, cost DESC`` (then item id), the biggest differences of a category in
``ORDER BY cost DESC`` (then object id) — and ``worst_rank`` stores those orders for the
first :data:`TOP_RANKED` rows of each split (and category), indexed.

Splits: an optional mapping image → split name (``train``/``val``/…) is stored with each
image; reports keep the splits apart, because scores of images the weights were trained
on mean something different. An image listed in ``train`` and in another split counts as
``train``.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import InputError, NotFoundError, StoreError, UsageError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import BulkTx, Store
    from tuiops.workspace import Workspace

#: Object categories, in report order; their codes are the positions.
CATEGORIES = ("tp", "loc", "cls", "dup", "fp", "fn")
TP, LOC, CLS, DUP, FP, FN = range(6)

#: ``worst_rank`` is stored (and indexed) for this many rows per split (and category).
TOP_RANKED = 10_000
#: Images compared per chunk (bounds memory; the next chunk is read while one is matched).
CHUNK_ITEMS = 250_000

#: Object ids: ``(match_id << OBJ_MATCH_SHIFT) | (item_id << OBJ_ITEM_SHIFT) | ord``.
OBJ_MATCH_SHIFT = 44
OBJ_ITEM_SHIFT = 13
DET_ORD_BASE = 4096
_BOX = ("x1", "y1", "x2", "y2")


# -- results ------------------------------------------------------------------------------------
@dataclass
class MatchSummary:
    """What `match` stored: counts per split and category, the worst images, timings."""

    name: str
    match_id: int
    set_name: str
    run_name: str
    iou: float
    low: float
    conf: float
    images: int
    set_only: int
    run_only: int
    splits: dict[str, dict[str, Any]]
    #: Which images were compared: ``processed`` (the set's that the run processed) or ``all``.
    images_from: str = "processed"
    worst: pl.DataFrame | None = None
    split_overlap: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "set": self.set_name,
            "run": self.run_name,
            "iou": self.iou,
            "low": self.low,
            "conf": self.conf,
            "images": self.images,
            "images_from": self.images_from,
            "set_only_images": self.set_only,
            "run_only_images": self.run_only,
            "split_overlap": self.split_overlap,
            "splits": self.splits,
            "worst": [] if self.worst is None else self.worst.to_dicts(),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


# -- the op -------------------------------------------------------------------------------------
def match(
    ws: Workspace,
    set_name: str,
    run_name: str,
    *,
    iou: float = 0.5,
    low: float = 0.1,
    conf: float = 0.25,
    name: str | None = None,
    splits: pl.DataFrame | Mapping[Any, str] | None = None,
    worst: int = 10,
    images: str = "processed",
    chunk_items: int = CHUNK_ITEMS,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> MatchSummary:
    """Match run ``run_name`` against label set ``set_name`` and store the result as ``name``.

    See the module doc for the categories, costs and image metrics. ``splits``: image →
    split name, as a frame with ``item_id`` or ``key`` and ``split``, or a mapping from
    item ids or keys. ``images``: ``processed`` compares the set's images that the run
    processed, ``all`` every image of the set (those the run never processed: their labels
    are fn), as `eval` takes the same choice. Re-running with the same name replaces that
    match in one transaction. Returns the counts per split and the ``worst`` worst images.
    """

    _check_params(iou, low, conf)
    if chunk_items < 1:
        raise UsageError("chunk_items must be at least 1")
    store = ws.store
    set_id = store.label_set_id(set_name)
    run_id = store.run_id(run_name)
    name = name or f"{set_name}__{run_name}"
    if not name.strip():
        raise UsageError("a match name must not be empty")
    rep = Reporter("match", progress, cancel)
    times: dict[str, float] = {"read": 0.0, "read_wait": 0.0, "match": 0.0, "write": 0.0, "write_wait": 0.0}
    t0 = time.perf_counter()
    set_items = item_ids(store, "set", set_id)
    run_items = item_ids(store, "run", run_id)
    check_images_choice(images)
    items = np.intersect1d(set_items, run_items, assume_unique=True) if images == "processed" else set_items
    if len(np.intersect1d(set_items, run_items, assume_unique=True)) == 0:
        raise InputError(
            f"label set {set_name!r} and run {run_name!r} have no image in common",
            hint="run the detection on the set's images, or pick the run made for this set",
        )
    split_codes, split_names, overlap = _resolve_splits(ws, items, splits)
    times["read"] += time.perf_counter() - t0
    params = {
        "set": set_name,
        "run": run_name,
        "iou": iou,
        "low": low,
        "conf": conf,
        "name": name,
        "images": images,
    }
    chunker = _Chunks(items, split_codes, split_names, chunk_items, iou, low, conf, rep)
    with job(store, "match", params, total=len(items)) as handle:
        rep.update(0, "matching", total=len(items), force=True)
        mid = chunker.run(store, set_id, run_id, (name, set_name, run_name), times)
        handle.result = {"match_id": mid, "images": len(items), "counts": chunker.counts}
    times["total"] = time.perf_counter() - t0
    return MatchSummary(
        name=name,
        match_id=mid,
        set_name=set_name,
        run_name=run_name,
        iou=iou,
        low=low,
        conf=conf,
        images=len(items),
        images_from=images,
        set_only=len(set_items) - len(np.intersect1d(set_items, run_items, assume_unique=True)),
        run_only=len(run_items) - len(items),
        splits=chunker.counts,
        worst=worst_images(store, name, n=worst) if worst > 0 else None,
        split_overlap=overlap,
        seconds=times,
    )


class _Chunks:
    """Matches the compared images chunk by chunk and stores the rows in one transaction.

    Three things overlap: two reader threads fetch the next chunk's labels and
    detections (each on its own read-only connection), the calling thread matches the
    current chunk, and a writer thread appends the previous chunk's rows.
    """

    def __init__(
        self,
        items: np.ndarray,
        split_codes: np.ndarray,
        split_names: list[str],
        chunk_items: int,
        iou: float,
        low: float,
        conf: float,
        rep: Reporter,
    ) -> None:
        self.items = items
        self.split_codes = split_codes
        self.split_names = split_names
        self.split_lookup = np.array([*split_names, None], dtype=object)
        bounds = [*range(0, len(items), chunk_items), len(items)]
        self.bounds = list(itertools.pairwise(bounds))
        self.iou, self.low, self.conf = iou, low, conf
        self.rep = rep
        self.totals = np.zeros((len(split_names) + 1, len(CATEGORIES) + 3), dtype=np.int64)
        self.obj_cands: list[pl.DataFrame] = []
        self.img_cands: list[pl.DataFrame] = []
        self.counts: dict[str, dict[str, Any]] = {}

    def run(
        self, store: Store, set_id: int, run_id: int, names: tuple[str, str, str], times: dict[str, float]
    ) -> int:
        """Replace the match ``names[0]`` and fill it; returns its id."""
        from tuiops.store import Store

        readers = [Store(store.path, readonly=True) for _ in range(2)]
        try:
            with store.bulk() as tx, ThreadPoolExecutor(max_workers=3) as pool:

                def fetch(k: int) -> tuple[Any, Any]:
                    a, b = self.bounds[k]
                    lo, hi = int(self.items[a]), int(self.items[b - 1])
                    return (
                        pool.submit(_timed, read_labels, readers[0], set_id, lo, hi),
                        pool.submit(_timed, read_dets, readers[1], run_id, lo, hi),
                    )

                def write(objs: pl.DataFrame, imgs: pl.DataFrame) -> float:
                    t = time.perf_counter()
                    tx.ingest("match_objects", objs)
                    tx.ingest("match_images", imgs)
                    return time.perf_counter() - t

                try:
                    pending = fetch(0)
                    t = time.perf_counter()
                    mid = _replace_match(tx, *names, set_id, run_id, self.iou, self.low, self.conf)
                    times["write"] += time.perf_counter() - t
                    writing = None
                    for k, (a, b) in enumerate(self.bounds):
                        t = time.perf_counter()
                        (lab, t_lab), (det, t_det) = pending[0].result(), pending[1].result()
                        times["read_wait"] += time.perf_counter() - t
                        times["read"] += t_lab + t_det
                        if k + 1 < len(self.bounds):
                            pending = fetch(k + 1)
                        self.rep.check()
                        t = time.perf_counter()
                        rows = self.compute(mid, a, b, lab, det)
                        times["match"] += time.perf_counter() - t
                        t = time.perf_counter()
                        if writing is not None:
                            times["write"] += writing.result()
                        times["write_wait"] += time.perf_counter() - t
                        writing = pool.submit(write, *rows)
                        self.rep.update(b, f"{b}/{len(self.items)} images")
                    if writing is not None:
                        times["write"] += writing.result()
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
                t = time.perf_counter()
                _store_ranks(tx, mid, self.obj_cands, self.img_cands)
                self.counts = _counts_json(self.totals, self.split_names)
                tx.execute("UPDATE matches SET counts = ? WHERE id = ?", (json.dumps(self.counts), mid))
                times["write"] += time.perf_counter() - t
                t = time.perf_counter()
            times["commit"] = time.perf_counter() - t
        finally:
            for r in readers:
                r.close()
        return mid

    def compute(
        self, mid: int, a: int, b: int, lab: pl.DataFrame, det: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Match images ``items[a:b]``; returns the rows to store and keeps the rank candidates."""
        import polars as pl

        ids = self.items[a:b]
        lab, det = _only(lab, ids), _only(det, ids)
        objects = match_frames(lab, det, iou=self.iou, low=self.low, conf=self.conf, check=self.rep.check)
        codes = self.split_codes[a:b]
        images = image_stats(objects, lab, det, ids, conf=self.conf).with_columns(
            pl.Series("split", self.split_lookup[codes], dtype=pl.String)
        )
        _add_totals(self.totals, images, codes)
        obj_rows = _object_rows(mid, objects)
        self.obj_cands.append(_top_objects(obj_rows, objects, codes, ids))
        self.img_cands.append(_top_images(images, codes))
        return obj_rows, _image_rows(mid, images)


def _check_params(iou: float, low: float, conf: float) -> None:
    if not (0.0 < iou <= 1.0):
        raise UsageError(f"--iou must be in (0, 1], got {iou}")
    if not (0.0 < low <= iou):
        raise UsageError(f"--low must be in (0, iou], got {low} with iou {iou}")
    if not (0.0 <= conf <= 1.0):
        raise UsageError(f"--conf must be in [0, 1], got {conf}")


# -- reading ------------------------------------------------------------------------------------
def item_ids(store: Store, kind: str, owner: int) -> np.ndarray:
    """The sorted item ids of a label set (``kind="set"``) or a run (``"run"``), also images without boxes."""
    import polars as pl

    table, col = ("set_images", "set_id") if kind == "set" else ("run_images", "run_id")
    frame = store.read_frame(
        f"SELECT item_id FROM {table} WHERE {col} = ? ORDER BY item_id", (owner,), {"item_id": pl.Int64}
    )
    return frame["item_id"].to_numpy().astype(np.int64)


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def _only(frame: pl.DataFrame, ids: np.ndarray) -> pl.DataFrame:
    """The rows of ``frame`` whose item is in ``ids`` (sorted)."""
    import polars as pl

    from tuiops.ops.matching import member

    keep = member(frame["item_id"].to_numpy(), ids)
    return frame if keep.all() else frame.filter(pl.Series(keep))


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
    annotation area from ``extra``, null where absent) and ``iscrowd``.
    """
    import polars as pl

    lo, hi = _owner_range(set_id, item_lo, item_hi)
    extra_sql = ""
    schema: dict[str, Any] = {"id": pl.Int64, "class_id": pl.Int32, **dict.fromkeys(_BOX, pl.Float64)}
    if coco_extra and store.one(
        "SELECT 1 FROM labels WHERE id BETWEEN ? AND ? AND extra IS NOT NULL LIMIT 1", (lo, hi)
    ):
        extra_sql = (
            ", COALESCE(json_extract(extra, '$.area') + 0.0, -1.0) AS area"
            ", COALESCE(json_extract(extra, '$.iscrowd'), 0) AS iscrowd"
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
        {"id": pl.Int64, "class_id": pl.Int32, **dict.fromkeys(_BOX, pl.Float64), "score": pl.Float64},
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
    from tuiops.store.db import MAX_ORD

    _check_params(iou, low, conf)
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
    is_dup = dup_lab >= 0
    is_fp = det_free & ~is_dup

    # Label rows (tp, loc, cls, fn), then detection-only rows (dup, fp).
    has_det = lab_det >= 0
    ld = np.where(has_det, lab_det, 0)
    l_score = np.where(has_det, score[ld], np.nan) if n_d else np.full(n_l, np.nan)
    l_cost = np.where(
        (lab_cat == TP) | (lab_cat == LOC),
        1.0 - lab_iou,
        np.where(lab_cat == CLS, l_score, np.where(has_det, 1.0 - l_score, 1.0)),
    )
    d_rows = np.flatnonzero(is_dup | is_fp)
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


# -- splits -------------------------------------------------------------------------------------
def splits_from_file(ws: Workspace, path: str | os.PathLike[str], split: str = "train") -> pl.DataFrame:
    """Read a split list: one image per line, ``KEY`` or a file path, optionally followed by a split name.

    Lines without a split name get ``split``. Empty lines and lines starting with ``#`` are
    skipped; fields are separated by whitespace, a comma or a tab. Returns ``key, split``.
    """
    import re

    import polars as pl

    from tuiops.fsutil import display_path

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"split file {display_path(p)} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"split file {display_path(p)} is not UTF-8 text") from exc
    except OSError as exc:
        raise InputError(f"cannot read split file {display_path(p)}: {exc.strerror}") from exc
    keys: list[str] = []
    names: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f for f in re.split(r"[,\t]|\s+", line) if f]
        if len(fields) > 2:
            raise InputError(
                f"{display_path(p)}:{lineno}: expected KEY [SPLIT], got {line!r}",
                hint="one image per line: a key or file name, optionally followed by train/val/test",
            )
        keys.append(ws.parse_key(fields[0]).key)
        names.append(fields[1] if len(fields) == 2 else split)
    return pl.DataFrame({"key": keys, "split": names}, schema={"key": pl.String, "split": pl.String})


def splits_from_dir(ws: Workspace, path: str | os.PathLike[str]) -> pl.DataFrame:
    """The split of each image of an ultralytics dataset folder, from where its image file lies.

    Accepts ``DIR/images/<split>/…`` and ``DIR/<split>/images/…``; the split is the folder
    name (``train``, ``val``, ``test`` …). Returns ``key, split``.
    """
    import polars as pl

    from tuiops.fsutil import display_path

    root = Path(path)
    if not root.is_dir():
        raise InputError(
            f"{display_path(root)} is not a folder", hint="give the dataset folder (with images/train …)"
        )
    found: list[tuple[str, Path]] = []
    images = root / "images"
    if images.is_dir():
        found += [(d.name, d) for d in sorted(images.iterdir()) if d.is_dir()]
    found += [
        (d.name, d / "images") for d in sorted(root.iterdir()) if d.is_dir() and (d / "images").is_dir()
    ]
    if not found:
        raise InputError(
            f"{display_path(root)} has neither images/<split>/ nor <split>/images/ folders",
            hint="point --split-from at an ultralytics dataset folder",
        )
    suffixes = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
    keys: list[str] = []
    names: list[str] = []
    for split, folder in found:
        for f in _walk_files(folder):
            if os.path.splitext(f)[1].lower() in suffixes:
                keys.append(ws.parse_key(f).key)
                names.append(split)
    return pl.DataFrame({"key": keys, "split": names}, schema={"key": pl.String, "split": pl.String})


def _walk_files(folder: Path) -> Iterator[str]:
    stack = [str(folder)]
    while stack:
        top = stack.pop()
        try:
            with os.scandir(top) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.is_file():
                        yield e.name
        except OSError:
            continue


def _resolve_splits(
    ws: Workspace, items: np.ndarray, splits: pl.DataFrame | Mapping[Any, str] | None
) -> tuple[np.ndarray, list[str], int]:
    """Split code per item (−1 = none), the split names, and how many images were in two splits."""
    import polars as pl

    codes = np.full(len(items), -1, dtype=np.int64)
    if splits is None:
        return codes, [], 0
    if isinstance(splits, Mapping):
        ks = list(splits)
        col = "item_id" if ks and all(isinstance(k, int | np.integer) for k in ks) else "key"
        dtype = pl.Int64 if col == "item_id" else pl.String
        frame = pl.DataFrame(
            {
                col: [k if col == "item_id" else str(k) for k in ks],
                "split": [str(v) for v in splits.values()],
            },
            schema={col: dtype, "split": pl.String},
        )
    else:
        frame = splits
    if "split" not in frame.columns or not ({"item_id", "key"} & set(frame.columns)):
        raise UsageError("splits need a 'split' column and an 'item_id' or 'key' column")
    if "item_id" not in frame.columns:
        from tuiops.ops.labels import lookup_items

        found = lookup_items(ws.store, frame["key"].unique().to_list())
        frame = frame.join(found.select("key", "item_id"), on="key", how="inner")
    frame = frame.select(pl.col("item_id").cast(pl.Int64), pl.col("split").cast(pl.String)).drop_nulls()
    per_item = frame.unique().group_by("item_id").agg(pl.col("split").sort())
    overlap = int((per_item["split"].list.len() > 1).sum())
    chosen = per_item.select(
        "item_id",
        pl.when(pl.col("split").list.contains("train"))
        .then(pl.lit("train"))
        .otherwise(pl.col("split").list.first())
        .alias("split"),
    )
    names = sorted(chosen["split"].unique().to_list())
    mapped = chosen.with_columns(
        pl.col("split").replace_strict(names, list(range(len(names))), return_dtype=pl.Int64)
    )
    pos = np.searchsorted(items, mapped["item_id"].to_numpy())
    pos_ok = pos < len(items)
    hit = np.zeros(len(pos), bool)
    hit[pos_ok] = items[pos[pos_ok]] == mapped["item_id"].to_numpy()[pos_ok]
    codes[pos[hit]] = mapped["split"].to_numpy()[hit]
    return codes, names, overlap


# -- writing ------------------------------------------------------------------------------------
def _replace_match(
    tx: BulkTx,
    name: str,
    set_name: str,
    run_name: str,
    set_id: int,
    run_id: int,
    iou: float,
    low: float,
    conf: float,
) -> int:
    from tuiops.store.db import utcnow

    old = tx.one("SELECT id FROM matches WHERE name = ?", (name,))
    if old is not None:
        _delete_match(tx, int(old))
    match_id = int(
        tx.one(
            "INSERT INTO matches(name, set_id, run_id, set_name, run_name, iou, low, conf, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (name, set_id, run_id, set_name, run_name, iou, low, conf, utcnow()),
        )
    )
    if match_id >= 1 << (63 - OBJ_MATCH_SHIFT):
        raise StoreError(f"the store has used up its match ids ({match_id})", hint="drop old matches")
    return match_id


def _delete_match(tx: BulkTx, match_id: int) -> None:
    lo = match_id << OBJ_MATCH_SHIFT
    tx.execute("DELETE FROM match_objects WHERE id BETWEEN ? AND ?", (lo, lo + (1 << OBJ_MATCH_SHIFT) - 1))
    tx.execute("DELETE FROM match_images WHERE match_id = ?", (match_id,))
    tx.execute("DELETE FROM matches WHERE id = ?", (match_id,))


def drop_match(ws: Workspace, name: str) -> None:
    """Delete a stored match (its objects and images) in one transaction."""
    mid = match_id(ws.store, name)
    with ws.store.bulk() as tx:
        _delete_match(tx, mid)


def _object_rows(match_id: int, objects: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    oid = (
        (pl.lit(match_id, pl.Int64) * (1 << OBJ_MATCH_SHIFT))
        + pl.col("item_id") * (1 << OBJ_ITEM_SHIFT)
        + pl.col("ord")
    ).alias("id")
    code = pl.col("category").cast(pl.Int64).alias("code")
    return objects.select(oid, "label_id", "det_id", "class_id", "det_class_id", code, "iou", "score", "cost")


def _image_rows(match_id: int, images: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    return images.select(
        pl.lit(match_id, pl.Int64).alias("match_id"),
        "item_id",
        "split",
        "n_labels",
        "n_dets",
        *CATEGORIES,
        "precision",
        "recall",
        "f1",
        "cost",
        "worst_cost",
    )


def _top_objects(
    rows: pl.DataFrame, objects: pl.DataFrame, codes: np.ndarray, items: np.ndarray
) -> pl.DataFrame:
    """The candidates for the worst ranks of this chunk: per split and category, the top rows."""
    import polars as pl

    split = codes[np.searchsorted(items, objects["item_id"].to_numpy())]
    group = split * len(CATEGORIES) + objects["category"].to_numpy().astype(np.int64)
    keep = _top_by_group(group, -rows["cost"].to_numpy(), rows["id"].to_numpy())
    return pl.DataFrame(
        {"id": rows["id"].to_numpy()[keep], "group": group[keep], "cost": rows["cost"].to_numpy()[keep]}
    )


def _top_images(images: pl.DataFrame, codes: np.ndarray) -> pl.DataFrame:
    import polars as pl

    f1 = images["f1"].to_numpy()
    cost = images["cost"].to_numpy()
    item = images["item_id"].to_numpy()
    keep = _top_by_group(codes, f1, -cost, item)
    return pl.DataFrame({"item_id": item[keep], "group": codes[keep], "f1": f1[keep], "cost": cost[keep]})


def _top_by_group(group: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Indices of the first :data:`TOP_RANKED` rows of each group in ascending ``keys`` order."""
    out: list[np.ndarray] = []
    for g in np.unique(group).tolist():
        idx = np.flatnonzero(group == g)
        if len(idx) > TOP_RANKED:
            first = keys[0][idx]
            cut = np.partition(first, TOP_RANKED - 1)[TOP_RANKED - 1]
            idx = idx[first <= cut]
        order = np.lexsort(tuple(k[idx] for k in reversed(keys)))
        out.append(idx[order[:TOP_RANKED]])
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _store_ranks(
    tx: BulkTx, match_id: int, obj_cands: list[pl.DataFrame], img_cands: list[pl.DataFrame]
) -> None:
    import polars as pl

    objs = (
        pl.concat(obj_cands)
        if obj_cands
        else pl.DataFrame(schema={"id": pl.Int64, "group": pl.Int64, "cost": pl.Float64})
    )
    if objs.height:
        objs = objs.sort(["group", "cost", "id"], descending=[False, True, False])
        objs = objs.with_columns(rank=pl.int_range(1, pl.len() + 1).over("group")).filter(
            pl.col("rank") <= TOP_RANKED
        )
        tx.ingest("_tuiops_obj_rank", objs.select("id", "rank"), temporary=True, mode="replace")
        tx.execute(
            "UPDATE match_objects SET worst_rank = r.rank FROM temp._tuiops_obj_rank r WHERE match_objects.id = r.id"
        )
        tx.execute("DROP TABLE temp._tuiops_obj_rank")
    imgs = pl.concat(img_cands) if img_cands else pl.DataFrame()
    if imgs.height:
        imgs = imgs.sort(["group", "f1", "cost", "item_id"], descending=[False, False, True, False])
        imgs = imgs.with_columns(rank=pl.int_range(1, pl.len() + 1).over("group")).filter(
            pl.col("rank") <= TOP_RANKED
        )
        tx.ingest(
            "_tuiops_img_rank",
            imgs.select("item_id", "rank").with_columns(pl.lit(match_id, pl.Int64).alias("match_id")),
            temporary=True,
            mode="replace",
        )
        tx.execute(
            "UPDATE match_images SET worst_rank = r.rank FROM temp._tuiops_img_rank r "
            "WHERE match_images.match_id = r.match_id AND match_images.item_id = r.item_id"
        )
        tx.execute("DROP TABLE temp._tuiops_img_rank")


def _add_totals(totals: np.ndarray, images: pl.DataFrame, codes: np.ndarray) -> None:
    """Add a chunk's per-split sums: images, labels, confident detections and each category."""
    idx = np.where(codes < 0, totals.shape[0] - 1, codes)
    n = totals.shape[0]
    totals[:, 0] += np.bincount(idx, minlength=n)
    for j, col in enumerate(("n_labels", "n_dets", *CATEGORIES), start=1):
        totals[:, j] += np.bincount(idx, weights=images[col].to_numpy(), minlength=n).astype(np.int64)


def _counts_json(totals: np.ndarray, names: list[str]) -> dict[str, dict[str, Any]]:
    labels = [*names, "none"]
    out: dict[str, dict[str, Any]] = {}
    order = [len(names), *range(len(names))] if names else [0]
    for i in order:
        row = totals[i]
        if names and i == len(names) and row[0] == 0:
            continue
        out[labels[i] if names else "all"] = _metrics(row)
    if names:
        out["all"] = _metrics(totals.sum(axis=0))
    return out


#: Which images of a label set `match` and `eval` compare (the first is the default).
IMAGE_CHOICES = ("processed", "all")


def check_images_choice(images: str) -> None:
    """Refuse an ``images`` choice that is not one of :data:`IMAGE_CHOICES`."""
    if images not in IMAGE_CHOICES:
        raise UsageError(f"--images must be one of {', '.join(IMAGE_CHOICES)}, not {images!r}")


def _metrics(row: np.ndarray) -> dict[str, Any]:
    images, n_labels, n_dets = (int(x) for x in row[:3])
    counts = {c: int(row[3 + i]) for i, c in enumerate(CATEGORIES)}
    tp = counts["tp"]
    return {
        "images": images,
        "labels": n_labels,
        "dets": n_dets,
        **counts,
        "precision": tp / n_dets if n_dets else None,  # no confident detection: nothing to be precise about
        "recall": tp / n_labels if n_labels else 1.0,
        "f1": 2 * tp / (n_labels + n_dets) if n_labels + n_dets else 1.0,
    }


# -- reading results back -----------------------------------------------------------------------
def match_id(store: Store, name: str) -> int:
    """The id of a stored match, or :class:`NotFoundError` naming the known ones."""
    mid = store.one("SELECT id FROM matches WHERE name = ?", (name,))
    if mid is None:
        known = [r[0] for r in store.execute("SELECT name FROM matches ORDER BY name")]
        raise NotFoundError(
            f"no match named {name!r}",
            hint=f"known matches: {', '.join(known) or 'none'}; make one with `tuiops match --set S --run R`",
        )
    return int(mid)


def list_matches(store: Store) -> pl.DataFrame:
    """Every stored match: name, set, run, iou, low, conf, created, images."""
    import polars as pl

    return store.read_frame(
        'SELECT name, set_name AS "set", run_name AS run, iou, low, conf, created, '
        "json_extract(counts, '$.all.images') AS images FROM matches ORDER BY name",
        (),
        {"iou": pl.Float64, "low": pl.Float64, "conf": pl.Float64, "images": pl.Int64},
    )


_IMAGE_COLS = (
    "mi.item_id, i.key, mi.split, mi.n_labels, mi.n_dets, mi.tp, mi.fp, mi.fn, mi.loc, mi.cls, mi.dup, "
    "mi.precision, mi.recall, mi.f1, mi.cost, mi.worst_cost"
)


def worst_images(store: Store, name: str, *, n: int = 10, split: str | None = None) -> pl.DataFrame:
    """The ``n`` worst images of a match per split (``ORDER BY f1, cost DESC``), with a ``rank`` column.

    With ``split`` only that split (``""`` for images without one).
    """

    mid = match_id(store, name)
    where, params = _split_where(split)
    if n <= TOP_RANKED:
        sql = (
            f"SELECT mi.worst_rank AS rank, {_IMAGE_COLS} FROM match_images mi JOIN items i ON i.id = mi.item_id "
            f"WHERE mi.match_id = ? AND mi.worst_rank <= ?{where} ORDER BY mi.split, mi.worst_rank"
        )
        args: tuple[Any, ...] = (mid, n, *params)
    else:
        sql = (
            f"SELECT * FROM (SELECT ROW_NUMBER() OVER (PARTITION BY mi.split ORDER BY mi.f1, mi.cost DESC, "
            f"mi.item_id) AS rank, {_IMAGE_COLS} FROM match_images mi JOIN items i ON i.id = mi.item_id "
            f"WHERE mi.match_id = ?{where}) WHERE rank <= ? ORDER BY split, rank"
        )
        args = (mid, *params, n)
    return store.read_frame(sql, args, _image_schema())


def worst_objects(
    store: Store, name: str, *, n: int = 10, category: str | None = None, split: str | None = None
) -> pl.DataFrame:
    """The ``n`` biggest differences of each category (``ORDER BY cost DESC``) per split, with ``rank``."""
    import polars as pl

    if category is not None and category not in CATEGORIES:
        raise UsageError(f"unknown category {category!r}", hint=f"one of {', '.join(CATEGORIES)}")
    mid = match_id(store, name)
    where, params = _split_where(split)
    cat_where = " AND o.category = ?" if category else ""
    cat_params = (category,) if category else ()
    cols = (
        "o.item_id, i.key, mi.split, o.category, o.cost, o.iou, o.score, o.class_id, o.det_class_id, "
        "o.label_id, o.det_id"
    )
    joins = (
        "FROM match_objects o JOIN items i ON i.id = o.item_id "
        "JOIN match_images mi ON mi.match_id = o.match_id AND mi.item_id = o.item_id"
    )
    if n <= TOP_RANKED:
        cats = [category] if category else list(CATEGORIES)
        frames = [
            store.read_frame(
                f"SELECT o.worst_rank AS rank, {cols} {joins} WHERE o.match_id = ? AND o.category = ? "
                f"AND o.worst_rank <= ?{where} ORDER BY mi.split, o.worst_rank",
                (mid, c, n, *params),
                _object_schema(),
            )
            for c in cats
        ]
        out = pl.concat(frames)
    else:
        out = store.read_frame(
            f"SELECT * FROM (SELECT ROW_NUMBER() OVER (PARTITION BY mi.split, o.category ORDER BY o.cost DESC, "
            f"o.id) AS rank, {cols} {joins} WHERE o.match_id = ?{cat_where}{where}) WHERE rank <= ? "
            "ORDER BY split, category, rank",
            (mid, *cat_params, *params, n),
            _object_schema(),
        )
    return out


def image_objects(store: Store, name: str, item_id: int) -> pl.DataFrame:
    """Every compared object of one image in a match (label rows in file order, then detections)."""
    mid = match_id(store, name)
    lo = (mid << OBJ_MATCH_SHIFT) | (item_id << OBJ_ITEM_SHIFT)
    return store.read_frame(
        "SELECT o.id, o.category, o.cost, o.iou, o.score, o.class_id, o.det_class_id, o.label_id, o.det_id "
        "FROM match_objects o WHERE o.id BETWEEN ? AND ? ORDER BY o.id",
        (lo, lo + (1 << OBJ_ITEM_SHIFT) - 1),
        _object_schema(),
    )


def _split_where(split: str | None) -> tuple[str, tuple[Any, ...]]:
    if split is None:
        return "", ()
    if split == "":
        return " AND mi.split IS NULL", ()
    return " AND mi.split = ?", (split,)


def _image_schema() -> dict[str, Any]:
    import polars as pl

    return {
        "rank": pl.Int64,
        "item_id": pl.Int64,
        "key": pl.String,
        "split": pl.String,
        **{c: pl.Int64 for c in ("n_labels", "n_dets", *CATEGORIES)},
        **{c: pl.Float64 for c in ("precision", "recall", "f1", "cost", "worst_cost")},
    }


def _object_schema() -> dict[str, Any]:
    import polars as pl

    return {
        "rank": pl.Int64,
        "id": pl.Int64,
        "item_id": pl.Int64,
        "key": pl.String,
        "split": pl.String,
        "category": pl.String,
        "cost": pl.Float64,
        "iou": pl.Float64,
        "score": pl.Float64,
        "class_id": pl.Int64,
        "det_class_id": pl.Int64,
        "label_id": pl.Int64,
        "det_id": pl.Int64,
    }
