"""The data of a report: a stored match read, or the label set and run matched afresh, tallied per split and class."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import UsageError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter
from tuiops.ops.report.model import BINS, CATEGORIES, ReportData

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace


def report_data(
    ws: Workspace,
    set_name: str,
    run_name: str,
    *,
    iou: float = 0.5,
    conf: float = 0.25,
    low: float = 0.1,
    top: int = 24,
    split: str | None = None,
    store: Store | None = None,
    compare_with: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ReportData:
    """Compute a report's numbers (module doc); reads only the store.

    ``store`` reads instead of the workspace's own store (a read-only one in a worker
    thread). ``top``: how many worst images (per split of a stored match when ``split`` is
    not given). ``compare_with``: an earlier run to compare this one with (`tuiops compare`).
    """
    from tuiops.ops.evaluate import IOU_THRS, REC_THRS, evaluate
    from tuiops.ops.match import check_params

    check_params(iou, low, conf)
    if top < 0:
        raise UsageError(f"--top must be 0 or more, got {top}")
    view = _view(ws, store)
    st = view.store
    rep = Reporter("report", progress, cancel, total=3)
    set_id = st.label_set_id(set_name)
    run_id = st.run_id(run_name)
    t0 = time.perf_counter()
    stored = _stored_match(st, set_name, run_name, set_id, run_id)
    split_items = None
    if split is not None:
        split_items = _split_items(st, stored, split, set_name, run_name)
    ev = evaluate(view, set_name, run_name, items=split_items, cancel=cancel)
    rep.update(1, "evaluated", force=True)
    t1 = time.perf_counter()
    coco = ev.coco
    assert coco is not None
    n_cls = len(coco.class_ids)
    tally = _Tally(n_cls)
    names = [ws.classes[i] if i < len(ws.classes) else str(i) for i in coco.class_ids.tolist()]
    prec = coco.precision[:, :, :, 0]
    pr50 = prec[0].T.copy()
    valid = np.asarray((prec > -1).all(axis=(0, 1)))
    pr_mean = np.where(valid[:, None], prec.mean(axis=0).T, -1.0)
    ap50 = np.where(valid, pr50.mean(axis=1), -1.0)
    t75 = int(np.flatnonzero(IOU_THRS == 0.75)[0])
    ap75 = np.where(valid, prec[t75].mean(axis=0), -1.0)

    use = stored if stored is not None and stored["iou"] == iou and stored["conf"] == conf else None
    if use is not None:
        worst = _from_stored(st, use, tally, split, split_items, top, rep)
        source = f"stored match {use['name']!r}"
        low = float(use["low"])
        splits = json.loads(use["counts"] or "{}") if split is None else {}
        if len(splits) <= 1:
            splits = {}
    else:
        worst = _fresh(st, set_id, run_id, tally, split_items, iou, low, conf, top, rep)
        source = "fresh match (not stored)"
        if stored is not None:
            source += f"; stored match {stored['name']!r} has iou {stored['iou']:g}, conf {stored['conf']:g}"
        splits = {}
    if split is not None and worst.height:
        import polars as pl

        worst = worst.with_columns(pl.lit(split, pl.String).alias("split"))
    rep.update(2, "matched", force=True)
    t2 = time.perf_counter()
    ap = coco.per_class_ap.astype(np.float64)
    if tally.k > n_cls:  # detections of classes the class map and the labels lack
        extra = tally.k - n_cls
        names += [str(i) for i in range(n_cls, tally.k)]
        ap, ap50, ap75 = (np.concatenate((a, -np.ones(extra))) for a in (ap, ap50, ap75))
        pr50, pr_mean = (np.vstack((a, -np.ones((extra, a.shape[1])))) for a in (pr50, pr_mean))
        valid = np.concatenate((valid, np.zeros(extra, bool)))
    per_class = _per_class_frame(names, tally.confusion, ap, ap50, ap75)
    from tuiops.ops.report.analysis import analysis_parts

    tide, cal, cmp, analysis_notes = analysis_parts(
        view, set_name, run_name, items=split_items, compare_with=compare_with
    )
    t3 = time.perf_counter()
    rep.update(3, "done", force=True)
    return ReportData(
        set_name=set_name,
        run_name=run_name,
        split=split,
        class_names=names,
        eval=ev,
        recall_points=REC_THRS.copy(),
        pr50=np.where(valid[:, None], pr50, -1.0),
        pr_mean=pr_mean,
        per_class=per_class,
        match_source=source,
        match_name=use["name"] if use is not None else None,
        iou=iou,
        low=low,
        conf=conf,
        compared_images=tally.images,
        confusion=tally.confusion,
        score_edges=tally.edges,
        score_tp=tally.score_tp,
        score_fp=tally.score_fp,
        iou_edges=tally.edges,
        iou_counts=tally.iou,
        totals={c: int(v) for c, v in zip(CATEGORIES, tally.totals(), strict=True)},
        splits=splits,
        worst=worst,
        seconds={"eval": t1 - t0, "match": t2 - t1, "analysis": t3 - t2},
        tide=tide,
        calibration=cal,
        compare=cmp,
        analysis_notes=analysis_notes,
    )


def _view(ws: Workspace, store: Store | None) -> Workspace:
    """The workspace reading through ``store`` (the same config), or ``ws`` itself."""
    if store is None:
        return ws
    from tuiops.workspace import Workspace

    view = Workspace(ws.root, ws.config)
    view._store = store
    return view


def _stored_match(st: Store, set_name: str, run_name: str, set_id: int, run_id: int) -> dict[str, Any] | None:
    """The stored match ``SET__RUN`` when it compares this set and run (the same ids)."""
    row = st.execute(
        "SELECT id, name, set_id, run_id, iou, low, conf, counts FROM matches WHERE name = ?",
        (f"{set_name}__{run_name}",),
    ).fetchone()
    if row is None or row[2] != set_id or row[3] != run_id:
        return None
    keys = ("id", "name", "set_id", "run_id", "iou", "low", "conf", "counts")
    return dict(zip(keys, row, strict=True))


def _split_items(
    st: Store, stored: dict[str, Any] | None, split: str, set_name: str, run_name: str
) -> np.ndarray:
    """The item ids of ``split`` in the stored match (sorted)."""
    import polars as pl

    hint = f"store the splits with `tuiops match --set {set_name} --run {run_name} --split-from DATASET`"
    if stored is None:
        raise UsageError(
            f"--split needs a stored match {set_name}__{run_name} with splits; there is none", hint=hint
        )
    known = [
        r[0]
        for r in st.execute(
            "SELECT DISTINCT split FROM match_images WHERE match_id = ? AND split IS NOT NULL ORDER BY split",
            (stored["id"],),
        )
    ]
    if split not in known:
        raise UsageError(
            f"the stored match {stored['name']!r} has no split {split!r}",
            hint=f"its splits: {', '.join(known)}" if known else hint,
        )
    frame = st.read_frame(
        "SELECT item_id FROM match_images WHERE match_id = ? AND split = ? ORDER BY item_id",
        (stored["id"], split),
        {"item_id": pl.Int64},
    )
    return frame["item_id"].to_numpy().astype(np.int64)


class _Tally:
    """Confusion counts and histograms, added chunk by chunk from match objects."""

    def __init__(self, n_cls: int) -> None:
        self.k = n_cls
        self.confusion = np.zeros((n_cls + 2, n_cls + 2), dtype=np.int64)
        self.edges = np.linspace(0.0, 1.0, BINS + 1)
        self.score_tp = np.zeros(BINS, dtype=np.int64)
        self.score_fp = np.zeros(BINS, dtype=np.int64)
        self.iou = {c: np.zeros(BINS, dtype=np.int64) for c in ("tp", "loc", "cls")}
        self.images = 0

    def grow(self, n_cls: int) -> None:
        """Make room for class ids up to ``n_cls − 1`` (a box of a class the map lacks)."""
        if n_cls <= self.k:
            return
        old, k = self.confusion, self.k
        new = np.zeros((n_cls + 2, n_cls + 2), dtype=np.int64)
        new[:k, :k] = old[:k, :k]
        new[n_cls:, :k] = old[k:, :k]
        new[:k, n_cls:] = old[:k, k:]
        new[n_cls:, n_cls:] = old[k:, k:]
        self.confusion, self.k = new, n_cls

    def add(
        self, cat: np.ndarray, cls: np.ndarray, dcls: np.ndarray, iou: np.ndarray, score: np.ndarray
    ) -> None:
        """Add objects: category codes (into ``CATEGORIES``), label class, detected class (−1: none), IoU, score."""
        if len(cat) == 0:
            return
        self.grow(int(max(cls.max(initial=-1), dcls.max(initial=-1))) + 1)
        k = self.k
        tp, loc, clsc, dup, fp, fn = range(6)
        label_row = (cat == tp) | (cat == clsc) | (cat == loc) | (cat == fn)
        r = np.where(label_row, cls, np.where(cat == dup, k, k + 1))
        c = np.where(
            (cat == tp) | (cat == clsc) | (cat == dup) | (cat == fp), dcls, np.where(cat == loc, k, k + 1)
        )
        self.confusion += np.bincount(r * (k + 2) + c, minlength=(k + 2) ** 2).reshape(k + 2, k + 2)
        self.score_tp += _hist(score[cat == tp], self.edges)
        self.score_fp += _hist(score[cat == fp], self.edges)
        for name, code in (("tp", tp), ("loc", loc), ("cls", clsc)):
            self.iou[name] += _hist(iou[cat == code], self.edges)

    def totals(self) -> np.ndarray:
        """Objects per category (``CATEGORIES`` order), from the confusion matrix."""
        m, k = self.confusion, self.k
        diag = np.trace(m[:k, :k])
        return np.array(
            [
                diag,
                m[:k, k].sum(),
                m[:k, :k].sum() - diag,
                m[k, :k].sum(),
                m[k + 1, :k].sum(),
                m[:k, k + 1].sum(),
            ]
        )


def _hist(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    v = values[np.isfinite(values)]
    return np.histogram(np.clip(v, 0.0, 1.0), bins=edges)[0].astype(np.int64)


def _object_arrays(objects: pl.DataFrame) -> tuple[np.ndarray, ...]:
    """Numpy columns of match objects: category code, class, detected class (−1 for none), IoU, score."""
    import polars as pl

    cat = objects["category"]
    if cat.dtype == pl.String:
        cat = cat.replace_strict(list(CATEGORIES), list(range(len(CATEGORIES))), return_dtype=pl.Int64)
    return (
        cat.cast(pl.Int64).to_numpy(),
        objects["class_id"].fill_null(-1).cast(pl.Int64).to_numpy(),
        objects["det_class_id"].fill_null(-1).cast(pl.Int64).to_numpy(),
        objects["iou"].cast(pl.Float64).fill_null(float("nan")).to_numpy(),
        objects["score"].cast(pl.Float64).fill_null(float("nan")).to_numpy(),
    )


def _chunks(items: np.ndarray, size: int) -> list[np.ndarray]:
    return [items[a : a + size] for a in range(0, len(items), size)] or []


def _from_stored(
    st: Store,
    m: dict[str, Any],
    tally: _Tally,
    split: str | None,
    split_items: np.ndarray | None,
    top: int,
    rep: Reporter,
) -> pl.DataFrame:
    """Tally the objects of a stored match (of ``split_items`` only, when given); its worst images."""
    import polars as pl

    from tuiops.ops.match import CHUNK_ITEMS, OBJ_ITEM_SHIFT, OBJ_MATCH_SHIFT, worst_images
    from tuiops.ops.matching import member

    mid = int(m["id"])
    items = (
        st.read_frame(
            "SELECT item_id FROM match_images WHERE match_id = ? ORDER BY item_id",
            (mid,),
            {"item_id": pl.Int64},
        )["item_id"]
        .to_numpy()
        .astype(np.int64)
    )
    if split_items is not None:
        items = items[member(items, split_items)]
    tally.images = len(items)
    base = mid << OBJ_MATCH_SHIFT
    schema = {
        "id": pl.Int64,
        "category": pl.String,
        "class_id": pl.Int64,
        "det_class_id": pl.Int64,
        "iou": pl.Float64,
        "score": pl.Float64,
    }
    for chunk in _chunks(items, CHUNK_ITEMS):
        rep.check()
        lo = base | (int(chunk[0]) << OBJ_ITEM_SHIFT)
        hi = base | (int(chunk[-1]) << OBJ_ITEM_SHIFT) | ((1 << OBJ_ITEM_SHIFT) - 1)
        objs = st.read_frame(
            "SELECT id, category, class_id, det_class_id, iou, score FROM match_objects WHERE id BETWEEN ? AND ?",
            (lo, hi),
            schema,
        )
        if split_items is not None and objs.height:
            item = (objs["id"].to_numpy() >> OBJ_ITEM_SHIFT) & ((1 << 31) - 1)
            objs = objs.filter(pl.Series(member(item, chunk)))
        tally.add(*_object_arrays(objs))
    if top == 0:
        return _empty_worst()
    return worst_images(st, m["name"], n=top, split=split)


def _fresh(
    st: Store,
    set_id: int,
    run_id: int,
    tally: _Tally,
    split_items: np.ndarray | None,
    iou: float,
    low: float,
    conf: float,
    top: int,
    rep: Reporter,
) -> pl.DataFrame:
    """Match in memory chunk by chunk (nothing stored); tally the objects; the worst images."""
    import polars as pl

    from tuiops.ops.match import (
        CHUNK_ITEMS,
        image_stats,
        item_ids,
        match_frames,
        read_dets,
        read_labels,
        rows_of_items,
    )
    from tuiops.ops.matching import member

    items = np.intersect1d(item_ids(st, "set", set_id), item_ids(st, "run", run_id), assume_unique=True)
    if split_items is not None:
        items = items[member(items, split_items)]
    tally.images = len(items)
    cands: list[pl.DataFrame] = []
    for chunk in _chunks(items, CHUNK_ITEMS):
        rep.check()
        lo, hi = int(chunk[0]), int(chunk[-1])
        lab = rows_of_items(read_labels(st, set_id, lo, hi), chunk)
        det = rows_of_items(read_dets(st, run_id, lo, hi), chunk)
        objects = match_frames(lab, det, iou=iou, low=low, conf=conf, check=rep.check)
        tally.add(*_object_arrays(objects))
        if top:
            images = image_stats(objects, lab, det, chunk, conf=conf)
            cands.append(images.sort(["f1", "cost", "item_id"], descending=[False, True, False]).head(top))
    if not cands:
        return _empty_worst()
    worst = (
        pl.concat(cands)
        .sort(["f1", "cost", "item_id"], descending=[False, True, False])
        .head(top)
        .with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("rank"),
            pl.lit(None, pl.String).alias("split"),
        )
    )
    keys = st.read_frame(
        "SELECT id AS item_id, key FROM items WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(worst["item_id"].to_list()),),
        {"item_id": pl.Int64, "key": pl.String},
    )
    worst = worst.join(keys, on="item_id", how="left", maintain_order="left")
    return worst.select(_empty_worst().columns)


def _empty_worst() -> pl.DataFrame:
    import polars as pl

    from tuiops.ops.match import image_schema

    return pl.DataFrame(schema=image_schema())


def _per_class_frame(
    names: list[str], m: np.ndarray, ap: np.ndarray, ap50: np.ndarray, ap75: np.ndarray
) -> pl.DataFrame:
    """One row per class: labels, confident detections, AP/AP50/AP75 and the match counts."""
    import polars as pl

    k = len(names)
    mm = m
    diag = np.diag(mm)[:k]
    labels = mm[:k, :].sum(axis=1)
    loc = mm[:k, k]
    dets = mm[:, :k].sum(axis=0) + loc
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(dets > 0, diag / np.maximum(dets, 1), np.nan)
        recall = np.where(labels > 0, diag / np.maximum(labels, 1), np.nan)
    return pl.DataFrame(
        {
            "class_id": np.arange(k, dtype=np.int64),
            "class": names,
            "labels": labels,
            "dets": dets,
            "ap": ap.astype(np.float64),
            "ap50": ap50.astype(np.float64),
            "ap75": ap75.astype(np.float64),
            "tp": diag,
            "loc": loc,
            "cls": mm[:k, :k].sum(axis=1) - diag,
            "fn": mm[:k, k + 1],
            "fp": mm[k + 1, :k],
            "dup": mm[k, :k],
            "precision": precision,
            "recall": recall,
        }
    ).with_columns(pl.col("precision", "recall").fill_nan(None))
