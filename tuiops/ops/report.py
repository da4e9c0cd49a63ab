"""`report`: pictures of a label set against a detection run — PNG charts and one HTML page.

What a report holds (:class:`ReportData`, computed from the store without loading any
image):

- the 12 COCO numbers and AP@[.5:.95], AP50 and AP75 per class, from
  :func:`tuiops.ops.evaluate.evaluate` — the same numbers as ``tuiops eval``;
- precision–recall curves: pycocotools' interpolated precision at its 101 recall points,
  read from the very accumulation that gives the mAP (``CocoResult.precision``): one
  curve per class at IoU 0.5 (its mean is the class's AP50), the mean over the 10 IoU
  thresholds (its mean is AP@[.5:.95]) and the all-class means of both (mAP50, mAP);
- a confusion matrix of the objects of a match (:mod:`tuiops.ops.match`): rows are the
  label classes plus ``dup`` (second detections of an object) and ``extra`` (fp:
  detections with no label), columns the detected classes plus ``loc`` (found with IoU in
  [low, t): badly placed) and ``missed`` (fn). tp rows lie on the diagonal, cls rows (a
  label found as another class) off it; a label class's row adds up to its labels;
- histograms of the scores of tp and fp detections and of the IoU of matched pairs (tp,
  loc, cls);
- the worst images in the match's order (``f1`` ascending, then ``cost`` descending).

The match is the stored one named ``SET__RUN`` when it compares these very set and run
with the asked IoU threshold and confidence; otherwise a fresh one is computed in memory
(chunk by chunk, nothing stored). Splits (``train``/``val`` …) come from the stored
match: ``split`` keeps one of them (its images also restrict the COCO evaluation);
without it a stored match's worst images are listed per split.

:func:`write_report` draws the charts with matplotlib (Agg, DejaVu Sans, no pyplot state)
and only then reads and paints the worst images (:func:`tuiops.imaging.render`). Files
are made in a staging folder inside the target and moved into place; ``index.html``
comes last, written atomically, so a crash never leaves a half page.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import ConflictError, UsageError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.typing import RcKeyType

    from tuiops.ops.evaluate import EvalResult
    from tuiops.store import Store
    from tuiops.workspace import Workspace

#: The chart files of a report, in page order.
CHARTS = ("ap_per_class.png", "pr_curves.png", "confusion.png", "scores.png", "iou.png")
#: Names a report folder may hold besides the charts.
REPORT_NAMES = frozenset({*CHARTS, "index.html", "report.json", "worst"})
GENERATOR = "tuiops report"
_STAGING_PREFIX = ".tuiops-report-"
#: Histogram bins over [0, 1].
BINS = 20
#: Worst images are drawn at most this many pixels on their long side.
WORST_SIDE = 1024
_CATS = ("tp", "loc", "cls", "dup", "fp", "fn")


# -- data -----------------------------------------------------------------------------------------
@dataclass
class ReportData:
    """Everything a report shows, computed from the store (no image is read)."""

    set_name: str
    run_name: str
    split: str | None
    class_names: list[str]
    eval: EvalResult
    recall_points: np.ndarray
    pr50: np.ndarray
    pr_mean: np.ndarray
    per_class: pl.DataFrame
    match_source: str
    match_name: str | None
    iou: float
    low: float
    conf: float
    compared_images: int
    confusion: np.ndarray
    score_edges: np.ndarray
    score_tp: np.ndarray
    score_fp: np.ndarray
    iou_edges: np.ndarray
    iou_counts: dict[str, np.ndarray]
    totals: dict[str, int]
    splits: dict[str, dict[str, Any]]
    worst: pl.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def stats(self) -> dict[str, float]:
        return self.eval.stats

    @property
    def confusion_rows(self) -> list[str]:
        """Row names of :attr:`confusion`: label classes, ``dup``, ``extra``."""
        return [*self.class_names, "dup", "extra"]

    @property
    def confusion_cols(self) -> list[str]:
        """Column names of :attr:`confusion`: detected classes, ``loc``, ``missed``."""
        return [*self.class_names, "loc", "missed"]

    def confusion_view(self) -> tuple[list[str], list[str], np.ndarray]:
        """The confusion matrix without the classes that have no count at all (rows, cols, counts)."""
        k = len(self.class_names)
        m = self.confusion
        used = (m[:k, :].sum(axis=1) + m[:, :k].sum(axis=0)) > 0
        if not used.any():
            used[:] = True
        keep = np.concatenate((np.flatnonzero(used), [k, k + 1]))
        rows = [self.confusion_rows[i] for i in keep]
        cols = [self.confusion_cols[i] for i in keep]
        return rows, cols, m[np.ix_(keep, keep)]

    def pr_classes(self) -> list[int]:
        """Class ids that have a precision–recall curve (they have labels)."""
        return [int(k) for k in np.flatnonzero(self.pr50[:, 0] > -1)]

    def headline(self) -> dict[str, Any]:
        """The numbers of the page's head: the 12 COCO numbers and what was counted."""
        e = self.eval
        return {
            **self.stats,
            "images": e.images,
            "labels": e.labels,
            "dets": e.dets,
            "images_not_in_run": e.images_not_in_run,
            "dets_outside_set": e.dets_outside_set,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "set": self.set_name,
            "run": self.run_name,
            "split": self.split,
            **self.headline(),
            "per_class": {r["class"]: r["ap"] for r in self.per_class.iter_rows(named=True)},
            "match": {
                "source": self.match_source,
                "name": self.match_name,
                "iou": self.iou,
                "low": self.low,
                "conf": self.conf,
                "images": self.compared_images,
                **self.totals,
            },
            "splits": self.splits,
        }


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
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ReportData:
    """Compute a report's numbers (module doc); reads only the store.

    ``store`` reads instead of the workspace's own store (a read-only one in a worker
    thread). ``top``: how many worst images (per split of a stored match when ``split`` is
    not given).
    """
    from tuiops.ops.evaluate import IOU_THRS, REC_THRS, evaluate
    from tuiops.ops.match import _check_params

    _check_params(iou, low, conf)
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
        totals={c: int(v) for c, v in zip(_CATS, tally.totals(), strict=True)},
        splits=splits,
        worst=worst,
        seconds={"eval": t1 - t0, "match": t2 - t1},
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
        """Add objects: category codes (into ``_CATS``), label class, detected class (−1: none), IoU, score."""
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
        """Objects per category (``_CATS`` order), from the confusion matrix."""
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
        cat = cat.replace_strict(list(_CATS), list(range(len(_CATS))), return_dtype=pl.Int64)
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
        _only,
        image_stats,
        item_ids,
        match_frames,
        read_dets,
        read_labels,
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
        lab = _only(read_labels(st, set_id, lo, hi), chunk)
        det = _only(read_dets(st, run_id, lo, hi), chunk)
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

    from tuiops.ops.match import _image_schema

    return pl.DataFrame(schema=_image_schema())


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


# -- writing ---------------------------------------------------------------------------------------
@dataclass
class ReportResult:
    """What `report` wrote: the folder, its files and the numbers of its head."""

    folder: Path
    files: list[str]
    worst: list[dict[str, Any]]
    data: ReportData
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def index(self) -> Path:
        return self.folder / "index.html"

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "index": str(self.index),
            "files": self.files,
            **self.data.to_dict(),
            "worst": self.worst,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def report(
    ws: Workspace,
    set_name: str,
    run_name: str,
    to: str | os.PathLike[str],
    *,
    iou: float = 0.5,
    conf: float = 0.25,
    top: int = 24,
    split: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ReportResult:
    """Write the report of run ``run_name`` against label set ``set_name`` into folder ``to``.

    ``to`` must be new, empty or a previous report (then it is replaced), unless ``force``
    (then the report's files are written beside what is there). Recorded as a job.
    """
    folder = check_target(to, force=force)
    params = {"set": set_name, "run": run_name, "to": str(folder), "iou": iou, "conf": conf, "top": top}
    if split is not None:
        params["split"] = split
    t0 = time.perf_counter()
    with job(ws.store, "report", params) as handle:
        data = report_data(
            ws, set_name, run_name, iou=iou, conf=conf, top=top, split=split, progress=progress, cancel=cancel
        )
        t1 = time.perf_counter()
        res = write_report(ws, data, folder, force=force, progress=progress, cancel=cancel)
        res.seconds = {**data.seconds, "write": time.perf_counter() - t1, "total": time.perf_counter() - t0}
        handle.result = {"folder": str(folder), "files": len(res.files), "map": data.stats.get("map")}
    return res


def check_target(to: str | os.PathLike[str], *, force: bool = False) -> Path:
    """The report folder ``to`` (absolute), if a report may be written there (module doc)."""
    from tuiops.fsutil import display_path

    folder = Path(to).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise ConflictError(
            f"{display_path(folder)} is a file, not a folder", hint="give a folder for the report"
        )
    if not folder.is_dir() or force:
        return folder
    try:
        names = [n for n in os.listdir(folder) if not n.startswith(_STAGING_PREFIX)]
    except OSError as exc:
        from tuiops.fsutil import disk_error

        raise disk_error(folder, exc, "read") from exc
    if names and not is_report(folder):
        raise ConflictError(
            f"{display_path(folder)} is not empty and holds no earlier report",
            hint="choose a new or empty folder, or pass --force to write the report beside what is there",
        )
    return folder


def is_report(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds a report written by tuiops (its index.html or report.json says so)."""
    folder = Path(folder)
    with contextlib.suppress(OSError, ValueError):
        head = (folder / "index.html").read_bytes()[:4096].decode("utf-8", "replace")
        if f'<meta name="generator" content="{GENERATOR}">' in head:
            return True
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        return isinstance(meta, dict) and meta.get("generator") == GENERATOR
    return False


def write_report(
    ws: Workspace,
    data: ReportData,
    to: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ReportResult:
    """Draw the charts, paint the worst images and write ``index.html`` (last) into ``to``."""
    from tuiops.fsutil import atomic_write_text, disk_error

    folder = check_target(to, force=force)
    if (folder / "worst").exists() and not is_report(folder):
        from tuiops.fsutil import display_path

        raise ConflictError(
            f"{display_path(folder / 'worst')} exists and belongs to no earlier report",
            hint="move it away or choose another folder; the report keeps its worst images there",
        )
    rep = Reporter("report", progress, cancel, total=len(CHARTS) + data.worst.height + 1)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{_STAGING_PREFIX}*"):
            shutil.rmtree(old, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=folder))
    except OSError as exc:
        raise disk_error(folder, exc, "write into") from exc
    try:
        try:
            for name, draw in zip(CHARTS, _CHART_FUNCS, strict=True):
                rep.check()
                (staging / name).write_bytes(draw(data))
                rep.advance(message=name)
            (staging / "worst").mkdir()
            worst = _paint_worst(ws, data, staging / "worst", rep)
            meta = {"generator": GENERATOR, **data.to_dict(), "files": list(CHARTS), "worst": worst}
            (staging / "report.json").write_text(
                json.dumps(meta, indent=2, default=_json_default), encoding="utf-8"
            )
            page = render_html(data, worst)
            rep.check()
            for name in (*CHARTS, "report.json"):
                os.replace(staging / name, folder / name)
            if (folder / "worst").is_dir() and not (folder / "worst").is_symlink():
                os.replace(folder / "worst", staging / "worst.old")
            os.replace(staging / "worst", folder / "worst")
        except OSError as exc:
            raise disk_error(getattr(exc, "filename", None) or folder, exc) from exc
        atomic_write_text(folder / "index.html", page)
        rep.advance(message="index.html", force=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = [*CHARTS, *(w["file"] for w in worst), "report.json", "index.html"]
    return ReportResult(folder=folder, files=files, worst=worst, data=data)


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


# -- charts ---------------------------------------------------------------------------------------
_RC: dict[RcKeyType, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
}
_TP, _FP, _LOC, _CLS = "#2e9d4a", "#d64541", "#e0a21b", "#7b61c9"


@contextlib.contextmanager
def _figure(w: float, h: float) -> Any:
    """A matplotlib figure on the Agg canvas (no pyplot, no global backend)."""
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with mpl.rc_context(_RC):
        fig = Figure(figsize=(w, h), layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _title(data: ReportData, what: str) -> str:
    split = f" [{data.split}]" if data.split else ""
    return f"{what}: {data.set_name} × {data.run_name}{split}"


def chart_ap(data: ReportData) -> bytes:
    """Horizontal bars: AP@[.5:.95] and AP50 per class (classes without labels say so)."""
    pc = data.per_class
    n = max(pc.height, 1)
    with _figure(8, 1.2 + 0.38 * n) as fig:
        ax = fig.add_subplot()
        y = np.arange(pc.height)
        ap = np.clip(pc["ap"].to_numpy(), 0, None)
        ap50 = np.clip(pc["ap50"].to_numpy(), 0, None)
        ax.barh(y - 0.2, ap50, height=0.4, color="#8fb8e8", label="AP50")
        ax.barh(y + 0.2, ap, height=0.4, color="#1f5fa8", label="AP@[.5:.95]")
        for i, r in enumerate(pc.iter_rows(named=True)):
            if r["ap"] < 0:
                ax.text(0.01, i, "no labels", va="center", color="#777")
            else:
                ax.text(max(r["ap50"], r["ap"]) + 0.01, i, f"{r['ap']:.3f} / {r['ap50']:.3f}", va="center")
        ax.set_yticks(y, pc["class"].to_list())
        ax.invert_yaxis()
        ax.set_xlim(0, 1.12)
        ax.set_xlabel("average precision")
        s = data.stats
        ax.set_title(_title(data, f"AP per class (mAP {s['map']:.3f}, mAP50 {s['map50']:.3f})"))
        fig.legend(loc="outside lower center", ncols=2, title="numbers: AP@[.5:.95] / AP50")
        return _png(fig)


def chart_pr(data: ReportData) -> bytes:
    """Precision–recall at IoU 0.5, one line per class with labels, plus the all-class means."""
    import matplotlib as mpl

    r = data.recall_points
    with _figure(8, 6) as fig:
        ax = fig.add_subplot()
        cmap = mpl.colormaps["tab20"]
        ks = data.pr_classes()
        for j, k in enumerate(ks):
            p = data.pr50[k]
            ax.plot(r, p, lw=1.2, color=cmap(j % 20), label=f"{data.class_names[k]} (AP50 {p.mean():.3f})")
        if ks:
            mean50 = data.pr50[ks].mean(axis=0)
            mean_all = data.pr_mean[ks].mean(axis=0)
            ax.plot(r, mean50, lw=2.6, color="black", label=f"all classes (mAP50 {mean50.mean():.3f})")
            ax.plot(
                r,
                mean_all,
                lw=1.6,
                ls="--",
                color="black",
                label=f"all classes, IoU .50:.95 (mAP {mean_all.mean():.3f})",
            )
        else:
            ax.text(0.5, 0.5, "no labels: no curve", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision (interpolated, COCO)")
        ax.set_title(_title(data, "Precision–recall at IoU 0.5"))
        if ks:
            ax.legend(loc="lower left", fontsize=8)
        return _png(fig)


def chart_confusion(data: ReportData) -> bytes:
    """The confusion matrix: counts, coloured by the share of each row."""
    rows, cols, m = data.confusion_view()
    n = len(rows)
    side = min(max(5.0, 0.55 * n + 2.5), 30.0)
    with _figure(side + 1, side) as fig:
        ax = fig.add_subplot()
        ax.grid(False)
        share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        if n <= 40:
            for i in range(n):
                for j in range(n):
                    if m[i, j]:
                        color = "white" if share[i, j] > 0.55 else "black"
                        ax.text(j, i, f"{m[i, j]:,}", ha="center", va="center", fontsize=8, color=color)
        ax.set_xticks(np.arange(n), cols, rotation=45, ha="right")
        ax.set_yticks(np.arange(n), rows)
        ax.set_xlabel("detected class (loc: found but badly placed, missed: fn)")
        ax.set_ylabel("label class (dup: second detection, extra: fp)")
        ax.set_title(
            _title(data, f"Confusion at IoU {data.iou:g}, conf {data.conf:g}") + f"\n{data.match_source}"
        )
        fig.colorbar(im, ax=ax, shrink=0.7, label="share of the row")
        return _png(fig)


def chart_scores(data: ReportData) -> bytes:
    """Histogram of the scores of tp and fp detections."""
    e = data.score_edges
    with _figure(8, 4.5) as fig:
        ax = fig.add_subplot()
        w = (e[1] - e[0]) * 0.45
        mid = e[:-1]
        ax.bar(
            mid + w * 0.1,
            data.score_tp,
            width=w,
            align="edge",
            color=_TP,
            label=f"tp ({int(data.score_tp.sum()):,})",
        )
        ax.bar(
            mid + w * 1.1,
            data.score_fp,
            width=w,
            align="edge",
            color=_FP,
            label=f"fp ({int(data.score_fp.sum()):,})",
        )
        ax.axvline(data.conf, color="#444", ls=":", label=f"conf {data.conf:g}")
        ax.set_xlim(0, 1)
        ax.set_xlabel("detection score")
        ax.set_ylabel("detections")
        ax.set_title(_title(data, f"Scores of tp and fp detections (IoU {data.iou:g})"))
        ax.legend()
        return _png(fig)


def chart_iou(data: ReportData) -> bytes:
    """Stacked histogram of the IoU of matched pairs: tp, cls, loc."""
    e = data.iou_edges
    with _figure(8, 4.5) as fig:
        ax = fig.add_subplot()
        bottom = np.zeros(len(e) - 1)
        for name, color in (("tp", _TP), ("cls", _CLS), ("loc", _LOC)):
            counts = data.iou_counts[name]
            ax.bar(
                e[:-1],
                counts,
                width=e[1] - e[0],
                align="edge",
                bottom=bottom,
                color=color,
                edgecolor="white",
                label=f"{name} ({int(counts.sum()):,})",
            )
            bottom = bottom + counts
        ax.axvline(data.iou, color="#444", ls=":", label=f"iou {data.iou:g}")
        ax.axvline(data.low, color="#999", ls=":", label=f"low {data.low:g}")
        ax.set_xlim(0, 1)
        ax.set_xlabel("IoU of label and detection")
        ax.set_ylabel("pairs")
        ax.set_title(_title(data, f"IoU of matched pairs (conf {data.conf:g})"))
        ax.legend()
        return _png(fig)


_CHART_FUNCS = (chart_ap, chart_pr, chart_confusion, chart_scores, chart_iou)


# -- worst images ---------------------------------------------------------------------------------
def _safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:120] or "image"


def _paint_worst(ws: Workspace, data: ReportData, out: Path, rep: Reporter) -> list[dict[str, Any]]:
    """Paint the worst images (labels solid, confident detections dashed) into ``out``."""
    import polars as pl

    from tuiops.imaging import render
    from tuiops.ops.match import read_dets, read_labels

    worst = data.worst
    if worst.height == 0:
        return []
    st = ws.store
    set_id, run_id = st.label_set_id(data.set_name), st.run_id(data.run_name)
    ids = worst["item_id"].to_list()
    files = _image_files(st, ids)
    dims = st.read_frame(
        "SELECT id AS item_id, width, height FROM items WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(ids),),
        {"item_id": pl.Int64, "width": pl.Int64, "height": pl.Int64},
    )
    size = {r[0]: (r[1], r[2]) for r in dims.iter_rows()}
    digits = max(2, len(str(worst.height)))
    names = [*data.class_names]
    out_rows: list[dict[str, Any]] = []
    for n, row in enumerate(worst.iter_rows(named=True), start=1):
        rep.check()
        item = int(row["item_id"])
        lab = read_labels(st, set_id, item, item)
        det = read_dets(st, run_id, item, item).filter(pl.col("score") >= data.conf)
        w, h = size.get(item, (None, None))
        image, note = _load_image(files.get(item, []), w, h)
        spec = {
            "w": w,
            "h": h,
            "names": names,
            "l": [[int(r[0]), *r[1:]] for r in lab.select("class_id", "x1", "y1", "x2", "y2").iter_rows()],
            "d": [
                [int(r[0]), *r[1:]]
                for r in det.select("class_id", "score", "x1", "y1", "x2", "y2").iter_rows()
            ],
        }
        rel = f"worst/{n:0{digits}d}_{_safe_name(str(row['key']))}.jpg"
        (out / Path(rel).name).write_bytes(render(image, json.dumps(spec).encode()))
        out_rows.append(
            {
                "file": rel,
                "rank": row["rank"],
                "key": row["key"],
                "split": row["split"],
                "note": note,
                **{c: row[c] for c in ("n_labels", "n_dets", *_CATS, "precision", "recall", "f1", "cost")},
            }
        )
        rep.advance(message=str(row["key"]))
    return out_rows


def _image_files(st: Store, ids: list[int]) -> dict[int, list[bytes]]:
    """Paths of the files of each item, good files first."""
    import polars as pl

    frame = st.read_frame(
        "SELECT f.item_id, p.root, f.relpath, f.relpath_raw, f.status FROM files f JOIN pools p ON p.id = f.pool_id "
        "WHERE f.item_id IN (SELECT value FROM json_each(?)) AND f.status NOT IN ('moved', 'trashed') "
        "ORDER BY f.item_id, (f.status = 'ok') DESC, f.id",
        (json.dumps(ids),),
        {"item_id": pl.Int64, "root": pl.String, "relpath": pl.String, "relpath_raw": pl.Binary},
    )
    out: dict[int, list[bytes]] = {}
    for item, root, rel, raw, _status in frame.iter_rows():
        path = os.fsencode(root) + b"/" + (raw if raw is not None else os.fsencode(rel))
        out.setdefault(int(item), []).append(path)
    return out


def _load_image(paths: list[bytes], w: int | None, h: int | None) -> tuple[bytes, str | None]:
    """The first readable file, shrunk to :data:`WORST_SIDE`, as PNG bytes; else a grey canvas and why."""
    from PIL import Image, UnidentifiedImageError

    why = "no file of this image in a pool"
    for p in paths:
        try:
            with Image.open(p) as src:
                src.draft("RGB", (WORST_SIDE, WORST_SIDE))
                im = src.convert("RGB")
                im.thumbnail((WORST_SIDE, WORST_SIDE))
                buf = io.BytesIO()
                im.save(buf, format="PNG")
                return buf.getvalue(), None
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            why = f"cannot read {os.fsdecode(p)}: {type(exc).__name__}"
    cw, ch = w or 640, h or 480
    scale = min(1.0, WORST_SIDE / max(cw, ch))
    canvas = Image.new("RGB", (max(1, round(cw * scale)), max(1, round(ch * scale))), (96, 96, 96))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue(), why


# -- the page -------------------------------------------------------------------------------------
_HEAD_LABELS = {
    "map": "mAP@[.5:.95]",
    "map50": "mAP50",
    "map75": "mAP75",
    "map_small": "mAP small",
    "map_medium": "mAP medium",
    "map_large": "mAP large",
    "ar1": "AR@1",
    "ar10": "AR@10",
    "ar100": "AR@100",
    "ar_small": "AR small",
    "ar_medium": "AR medium",
    "ar_large": "AR large",
}
_CSS = """
body{font-family:"DejaVu Sans",system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f3f5f8}td.name,th.name{text-align:left}.muted{color:#777}
img.chart{max-width:100%;border:1px solid #eee}
.worst{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:1em}
.worst figure{margin:0}.worst img{width:100%;border:1px solid #ccc}
.worst figcaption{font-size:.85em}
"""


def _num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and (np.isnan(v) or v < 0)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return f"{int(v):,}"


def render_html(data: ReportData, worst: list[dict[str, Any]]) -> str:
    """The report page: head numbers, every chart, the per-class table and the worst images."""
    e = html.escape
    s = data.stats
    title = f"{data.set_name} × {data.run_name}" + (f" [{data.split}]" if data.split else "")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta name="generator" content="{GENERATOR}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>tuiops report: {e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Label set <q>{e(data.set_name)}</q> × detection run <q>{e(data.run_name)}</q>"
        + (f" — split <q>{e(data.split)}</q>" if data.split else "")
        + "</h1>",
        '<h2 id="metrics">COCO metrics</h2>',
        '<table id="headline"><tr>'
        + "".join(f'<th data-key="{k}">{e(v)}</th>' for k, v in _HEAD_LABELS.items())
        + "</tr><tr>"
        + "".join(f'<td data-key="{k}">{_num(s[k])}</td>' for k in _HEAD_LABELS)
        + "</tr></table>",
    ]
    ev = data.eval
    notes = [
        f"{ev.images:,} image(s), {ev.labels:,} label(s), {ev.dets:,} detection(s) evaluated "
        "(COCO bbox, equal to pycocotools; – where nothing is measured)."
    ]
    if ev.images_not_in_run:
        notes.append(
            f"The run did not process {ev.images_not_in_run:,} image(s) of the set: "
            + (
                "their labels count as missed."
                if ev.images_from == "all"
                else "they are left out, as in the match."
            )
        )
    if ev.dets_outside_set:
        notes.append(f"{ev.dets_outside_set:,} detection(s) on images outside the set are left out.")
    t = data.totals
    notes.append(
        f"Confusion, histograms and worst images: {e(data.match_source)} at IoU {data.iou:g} "
        f"(loc from {data.low:g}), conf {data.conf:g}, over {data.compared_images:,} image(s) in both the set "
        f"and the run: tp {t['tp']:,}, loc {t['loc']:,}, cls {t['cls']:,}, dup {t['dup']:,}, fp {t['fp']:,}, "
        f"fn {t['fn']:,}."
    )
    out += [f"<p>{n if n.startswith('Confusion') else e(n)}</p>" for n in notes]
    if data.splits:
        cols = ("images", "labels", "dets", *_CATS, "precision", "recall", "f1")
        out.append(
            '<h2 id="splits">Per split (stored match)</h2><table id="split-table"><tr><th class="name">split</th>'
        )
        out.append("".join(f"<th>{c}</th>" for c in cols) + "</tr>")
        for name, c in data.splits.items():
            out.append(
                f'<tr><td class="name">{e(str(name))}</td>'
                + "".join(f"<td>{_num(c.get(k))}</td>" for k in cols)
                + "</tr>"
            )
        out.append("</table>")
    captions = {
        "ap_per_class.png": "AP@[.5:.95] and AP50 per class",
        "pr_curves.png": "Precision–recall curves at IoU 0.5 (COCO's 101-point interpolated precision), "
        "with the all-class means",
        "confusion.png": "Confusion matrix of the match: rows are label classes, columns detected classes",
        "scores.png": "Scores of true-positive and false-positive detections",
        "iou.png": "IoU of matched label–detection pairs",
    }
    out.append('<h2 id="charts">Charts</h2>')
    for name in CHARTS:
        out.append(
            f'<figure><img class="chart" src="{name}" alt="{e(captions[name])}">'
            f"<figcaption>{e(captions[name])}</figcaption></figure>"
        )
    pcols = (
        "labels",
        "dets",
        "ap",
        "ap50",
        "ap75",
        "tp",
        "loc",
        "cls",
        "fn",
        "fp",
        "dup",
        "precision",
        "recall",
    )
    out.append('<h2 id="classes">Per class</h2><table id="per-class"><tr><th class="name">class</th>')
    out.append("".join(f"<th>{c}</th>" for c in pcols) + "</tr>")
    for r in data.per_class.iter_rows(named=True):
        out.append(
            f'<tr data-class="{e(r["class"])}"><td class="name">{e(r["class"])}</td>'
            + "".join(f'<td data-key="{c}">{_num(r[c])}</td>' for c in pcols)
            + "</tr>"
        )
    out.append("</table>")
    out.append(
        "<p class=muted>dets: confident detections (score ≥ conf) of the class; cls: labels of the class found "
        "as another class; precision and recall at the match's IoU and conf.</p>"
    )
    out.append(f'<h2 id="worst">Worst images ({len(worst)})</h2>')
    if worst:
        out.append(
            "<p class=muted>f1 ascending, then cost descending. Labels solid with the class on top; "
            "confident detections dashed with class and score.</p><div class=worst>"
        )
        for w in worst:
            split = f" · {e(str(w['split']))}" if w.get("split") else ""
            note = f'<br><span class="muted">{e(w["note"])}</span>' if w.get("note") else ""
            out.append(
                f'<figure><a href="{e(w["file"])}"><img src="{e(w["file"])}" alt="{e(str(w["key"]))}" '
                'loading="lazy"></a>'
                f"<figcaption><b>#{w['rank']} {e(str(w['key']))}</b>{split}<br>"
                f"f1 {w['f1']:.3f} · precision {w['precision']:.3f} · recall {w['recall']:.3f} · "
                f"cost {w['cost']:.3f}<br>labels {w['n_labels']} · dets {w['n_dets']} · tp {w['tp']} · "
                f"loc {w['loc']} · cls {w['cls']} · dup {w['dup']} · fp {w['fp']} · fn {w['fn']}{note}"
                "</figcaption></figure>"
            )
        out.append("</div>")
    else:
        out.append("<p>None.</p>")
    out.append("</body></html>\n")
    return "\n".join(out)
