"""Greedy non-maximum suppression over whole frames, and the ops built on it.

Semantics are those of :func:`torchvision.ops.batched_nms`: inside one group (an image,
or an image and class when class-aware) boxes are visited in descending score order;
a box is kept unless a box kept before it overlaps it with IoU **strictly greater** than
the threshold. Ties are deterministic: equal scores are ordered by the ``tiebreak``
columns ascending (by default the box ``id``, i.e. input order), then by row position.
IoU is computed as torchvision does (``inter / (area_kept + area_other − inter)``,
no +1), so two empty boxes never suppress each other, and a box with a non-finite
coordinate neither suppresses nor is suppressed (as in ``torchvision.ops.nms``; its
``batched_nms`` instead turns every box of the call into NaN when one box is).

The greedy loop is evaluated as rounds over all groups at once. A candidate-pair table
holds every pair of the same group with IoU > threshold, oriented from the earlier
box ``a`` to the later box ``b``; it is built once, chunk by chunk, from a sweep over
the boxes' x intervals (only pairs whose x ranges overlap are ever generated). In
every round each box with no undecided earlier neighbour is kept and every box it
overlaps is suppressed; the decided boxes leave the table. This is exactly the greedy
result (each kept box is the earliest undecided box of its neighbourhood when it is
decided), and the number of rounds is the length of the longest chain of
dependencies, not the number of boxes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from tuiops.errors import ConflictError, InputError, UsageError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job
from tuiops.store.db import id_range

if TYPE_CHECKING:
    from tuiops.workspace import Workspace

BOX = ("x1", "y1", "x2", "y2")

#: Label flags written by :func:`dedupe_labels`.
FLAG_DUPLICATE = "duplicate"
FLAG_CLASS_CONFLICT = "class_conflict"


# -- candidate pairs -------------------------------------------------------------------------------
def sweep_pairs(
    frame: pl.DataFrame,
    lo: str,
    hi: str,
    *,
    group: str,
    index: str,
    presorted: bool = False,
) -> pl.DataFrame:
    """Pairs of rows of the same ``group`` whose closed intervals ``[lo, hi]`` may intersect.

    Rows are sorted by group and ``lo``; for each row the partners are the following rows
    of its group whose ``lo`` is at most its ``hi`` (found with one vectorised binary
    search). The result is a superset of the intersecting pairs (callers test the exact
    predicate), each unordered pair once, as columns ``i`` (the row with the smaller
    ``lo``) and ``j`` holding values of ``index``. Rows with a non-finite bound have no
    partners. ``presorted`` says ``frame`` is sorted by ``group`` then ``lo`` already.
    """
    f = frame.select(
        pl.col(group).alias("_g"),
        pl.col(lo).cast(pl.Float64).alias("_lo"),
        pl.col(hi).cast(pl.Float64).alias("_hi"),
        pl.col(index).alias("_idx"),
    ).filter(pl.col("_lo").is_finite() & pl.col("_hi").is_finite())
    idx_dtype = frame.schema[index]
    empty = pl.DataFrame(schema={"i": idx_dtype, "j": idx_dtype})
    if f.height < 2:
        return empty
    lo_min = float(f["_lo"].min())  # type: ignore[arg-type]
    span = max(float(f["_hi"].max()), float(f["_lo"].max())) - lo_min + 1.0  # type: ignore[arg-type]
    if not presorted:
        f = f.sort("_g", "_lo")
    f = f.with_columns(
        pl.col("_g").ne_missing(pl.col("_g").shift(1)).cum_sum().cast(pl.Float64).alias("_gd")
    ).with_columns(
        (pl.col("_gd") * span + (pl.col("_lo") - lo_min)).alias("_key"),
        (pl.col("_gd") * span + (pl.col("_hi") - lo_min)).alias("_end"),
    )
    max_key = float(f["_end"].abs().max()) + float(f["_key"].abs().max())  # type: ignore[arg-type]
    tol = max_key * 1e-13 + 1e-9
    q = pl.int_range(pl.len(), dtype=pl.Int64)
    group_end = (
        pl.when(pl.col("_gd").ne_missing(pl.col("_gd").shift(-1))).then(q + 1).otherwise(None).backward_fill()
    )
    ends = f.select(
        q.alias("q"),
        pl.min_horizontal(
            pl.col("_key").search_sorted(pl.col("_end") + tol, side="right").cast(pl.Int64), group_end
        ).alias("e"),
    ).filter(pl.col("e") > pl.col("q") + 1)
    if ends.height == 0:
        return empty
    pos = ends.select(
        pl.col("q").alias("i"), pl.int_ranges(pl.col("q") + 1, pl.col("e"), dtype=pl.Int64).alias("j")
    ).explode("j")
    pos = pos.filter(pl.col("j").is_not_null())
    idx = f["_idx"]
    return pl.DataFrame({"i": idx.gather(pos["i"]), "j": idx.gather(pos["j"])})


# -- the NMS core ----------------------------------------------------------------------------------
def _chunk_starts(work: pl.DataFrame, chunk_rows: int) -> list[int]:
    """Row positions where chunks of whole groups begin (about ``chunk_rows`` rows each)."""
    starts = (
        work.select(pl.col("_q"), pl.col("_new"))
        .filter(pl.col("_new"))
        .group_by((pl.col("_q") // max(1, chunk_rows)).alias("_c"))
        .agg(pl.col("_q").min())
        .sort("_q")
    )
    return starts["_q"].to_list()


def _earlier(order_cols: Sequence[str]) -> pl.Expr:
    """True where box ``_i`` comes before box ``_j`` in NMS order (score desc, then the rest asc)."""
    first, *rest = order_cols
    expr: pl.Expr | None = None
    for c in reversed(rest):
        lt = pl.col(f"{c}_i") < pl.col(f"{c}_j")
        expr = lt if expr is None else lt | ((pl.col(f"{c}_i") == pl.col(f"{c}_j")) & expr)
    gt = pl.col(f"{first}_i") > pl.col(f"{first}_j")
    assert expr is not None
    return gt | ((pl.col(f"{first}_i") == pl.col(f"{first}_j")) & expr)


def _min(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return pl.when(a < b).then(a).otherwise(b)


def _max(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return pl.when(a > b).then(a).otherwise(b)


def _candidate_pairs(
    work: pl.DataFrame, iou: float, start: int, stop: int, order_cols: Sequence[str]
) -> pl.DataFrame:
    """Pairs (a, b) of one chunk with IoU > ``iou``; ``a`` comes first in NMS order.

    A pair can only have IoU > t when its x overlap exceeds t × the width of either box,
    so the sweep looks right of each box only as far as ``x2 − t·w``. The IoU is computed
    with torchvision's floating-point steps (``inter / ((area_a + area_b) − inter)``,
    areas ``(x2 − x1)·(y2 − y1)``), so the comparison with the threshold is bit-exact.
    Boxes with a non-finite coordinate take part in no pair.
    """
    shrink = iou * (1.0 - 1e-9)
    finite = pl.all_horizontal(pl.col(c).is_finite() for c in BOX)
    chunk = work.slice(start, stop - start).select(
        "_q",
        "_g",
        pl.when(finite).then(pl.col("x1")).otherwise(None).alias("_lo"),
        (pl.col("x2") - shrink * (pl.col("x2") - pl.col("x1")).clip(lower_bound=0.0)).alias("_hi"),
    )
    cand = sweep_pairs(chunk, "_lo", "_hi", group="_g", index="_q", presorted=True)
    if cand.height == 0:
        return pl.DataFrame(schema={"a": pl.Int64, "b": pl.Int64, "iou": pl.Float64})
    i, j = cand["i"], cand["j"]  # x1 of i ≤ x1 of j: the overlap starts at x1 of j
    cols = {"_i": i, "_j": j, "x1_j": work["x1"].gather(j)}
    for c in ("x2", "y1", "y2", "_area"):
        s = work[c]
        cols[f"{c}_i"] = s.gather(i)
        cols[f"{c}_j"] = s.gather(j)
    c = pl.col
    iw = _min(c("x2_i"), c("x2_j")) - c("x1_j")
    ih = _min(c("y2_i"), c("y2_j")) - _max(c("y1_i"), c("y1_j"))
    pairs = (
        pl.DataFrame(cols)
        .lazy()
        .with_columns((iw.clip(lower_bound=0.0) * ih.clip(lower_bound=0.0)).alias("_inter"))
        .filter(c("_inter") > 0)
        .select("_i", "_j", (c("_inter") / ((c("_area_i") + c("_area_j")) - c("_inter"))).alias("iou"))
        .filter(c("iou") > iou)
        .collect()
    )
    for name in order_cols:
        s = work[name]
        pairs = pairs.with_columns(
            s.gather(pairs["_i"]).alias(f"{name}_i"), s.gather(pairs["_j"]).alias(f"{name}_j")
        )
    first = _earlier(order_cols)
    return pairs.select(
        pl.when(first).then(pl.col("_i")).otherwise(pl.col("_j")).alias("a"),
        pl.when(first).then(pl.col("_j")).otherwise(pl.col("_i")).alias("b"),
        "iou",
    )


UNDECIDED, KEPT, SUPPRESSED = 0, 1, 2


def _greedy_rounds(pairs: pl.DataFrame, n: int, reporter: Reporter | None = None) -> tuple[pl.Series, int]:
    """The status of every box (KEPT or SUPPRESSED) from the oriented candidate pairs.

    Boxes with no earlier neighbour are kept at once. Each round suppresses the boxes an
    earlier kept box overlaps, drops the decided boxes' edges, and keeps every undecided
    box left with no undecided earlier neighbour. Returns the status and the number of rounds.
    """
    status = pl.repeat(KEPT, n, dtype=pl.Int8, eager=True).alias("status")
    p = pairs.select("a", "b")
    undecided = p["b"].unique()
    status.scatter(undecided, UNDECIDED)
    rounds = 0
    while p.height:
        if reporter is not None:
            reporter.check()
        rounds += 1
        sa = status.gather(p["a"])
        status.scatter(p.filter(sa == KEPT)["b"], SUPPRESSED)
        p = p.filter(sa == UNDECIDED)
        p = p.filter(status.gather(p["b"]) == UNDECIDED)
        undecided = undecided.filter(status.gather(undecided) == UNDECIDED)
        blocked = pl.zeros(n, dtype=pl.Boolean, eager=True)
        blocked.scatter(p["b"], True)
        status.scatter(undecided.filter(~blocked.gather(undecided)), KEPT)
    return status, rounds


def nms_frame(
    boxes: pl.DataFrame | pl.LazyFrame,
    iou: float = 0.5,
    class_agnostic: bool = False,
    group: Sequence[str] = ("item_id",),
    *,
    score: str = "score",
    id: str | None = "id",
    tiebreak: Sequence[str] | None = None,
    class_col: str = "class_id",
    chunk_rows: int = 2_000_000,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> pl.DataFrame:
    """Greedy NMS of every group of ``boxes`` at once; returns the rows with three new columns.

    ``keep`` (bool): the box survives. ``suppressed_by``: the ``id`` of the kept box that
    suppressed it (the earliest kept box in NMS order overlapping it with IoU > ``iou``;
    null when kept). ``suppressed_iou``: the IoU with that box. Rows come back in input
    order. Groups are ``group`` (+ ``class_col`` unless ``class_agnostic``). NMS order is
    ``score`` descending, then ``tiebreak`` ascending (default: the ``id`` column), then
    the row position. Without an ``id`` column, ``suppressed_by`` is a row position.
    """
    if not 0.0 <= iou <= 1.0:
        raise UsageError(f"IoU threshold {iou} is outside 0…1")
    df = boxes.collect() if isinstance(boxes, pl.LazyFrame) else boxes
    keys = [*group, *([] if class_agnostic else [class_col])]
    need = [*keys, score, *BOX]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise UsageError(f"NMS needs the columns {', '.join(missing)}")
    bad = df.select((pl.col(score).is_null() | ~pl.col(score).cast(pl.Float64).is_finite()).sum()).item()
    if bad:
        raise InputError(f"{bad} boxes have no finite {score}; NMS needs a score for every box")
    n = df.height
    df = df.with_row_index("_row")
    idcol = id if id is not None and id in df.columns else "_row"
    tb = [c for c in (tiebreak if tiebreak is not None else [idcol]) if c != "_row"]
    order_cols = [score, *tb, "_row"]
    work = (
        df.select(*dict.fromkeys([*keys, *order_cols, idcol]), *(pl.col(c).cast(pl.Float64) for c in BOX))
        .with_columns(((pl.col("x2") - pl.col("x1")) * (pl.col("y2") - pl.col("y1"))).alias("_area"))
        .sort([*keys, "x1"], nulls_last=True)
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_q"))
        .with_columns(
            (
                pl.any_horizontal(pl.col(k).ne_missing(pl.col(k).shift(1)) for k in keys).fill_null(True)
                if keys
                else pl.col("_q") == 0
            ).alias("_new")
        )
        .with_columns(pl.col("_new").cum_sum().alias("_g"))
    )
    starts = _chunk_starts(work, chunk_rows) if n else []
    reporter = Reporter("nms", progress, cancel, total=n)
    parts = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else n
        parts.append(_candidate_pairs(work, iou, start, stop, order_cols))
        reporter.update(stop, "candidate pairs")
    pairs = (
        pl.concat(parts) if parts else pl.DataFrame(schema={"a": pl.Int64, "b": pl.Int64, "iou": pl.Float64})
    )
    status, rounds = _greedy_rounds(pairs, n, reporter)
    by = pairs.filter((status.gather(pairs["a"]) == KEPT) & (status.gather(pairs["b"]) == SUPPRESSED))
    for c in order_cols:
        by = by.with_columns(work[c].gather(by["a"]).alias(c))
    by = by.sort(["b", *order_cols], descending=[False, True, *([False] * (len(order_cols) - 1))]).unique(
        "b", keep="first", maintain_order=True
    )
    rows = work["_row"]
    keep = pl.repeat(True, n, dtype=pl.Boolean, eager=True).alias("keep")
    keep.scatter(rows.gather(pl.arg_where(status == SUPPRESSED, eager=True)), False)
    sup_by = pl.repeat(None, n, dtype=df.schema[idcol], eager=True).alias("suppressed_by")
    sup_iou = pl.repeat(None, n, dtype=pl.Float64, eager=True).alias("suppressed_iou")
    target = rows.gather(by["b"])
    sup_by.scatter(target, work[idcol].gather(by["a"]))
    sup_iou.scatter(target, by["iou"])
    reporter.update(n, f"{rounds} rounds", force=True)
    return df.drop("_row").hstack([keep, sup_by, sup_iou])


# -- ops -------------------------------------------------------------------------------------------
@dataclass
class NmsResult:
    """What an NMS op did."""

    into: str
    sources: list[str]
    iou: float
    class_agnostic: bool
    boxes_in: int
    kept: int
    suppressed: int
    by_source: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "into": self.into,
            "sources": self.sources,
            "iou": self.iou,
            "class_agnostic": self.class_agnostic,
            "boxes_in": self.boxes_in,
            "kept": self.kept,
            "suppressed": self.suppressed,
            "kept_by_source": self.by_source,
        }


def nms_run(
    ws: Workspace,
    run: str,
    *,
    into: str,
    iou: float = 0.5,
    class_agnostic: bool = False,
    replace: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> NmsResult:
    """NMS inside one detection run; the kept detections become the new run ``into``.

    The new run keeps the source's lineage (weights, epoch, conf), its ``iou`` is the NMS
    threshold and its ``params`` name the source; ``det_sources`` maps every new detection
    to the one it was copied from.
    """
    return merge_runs(
        ws,
        [run],
        into=into,
        iou=iou,
        class_agnostic=class_agnostic,
        replace=replace,
        progress=progress,
        cancel=cancel,
    )


def merge_runs(
    ws: Workspace,
    runs: Sequence[str],
    *,
    into: str,
    iou: float = 0.5,
    class_agnostic: bool = False,
    replace: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> NmsResult:
    """Union of several runs' detections, then NMS per image; stored as the run ``into``.

    Equal scores prefer the run listed first, then the lower detection id. The new run
    covers the union of the runs' images; ``det_sources`` records the run and detection
    each kept box came from.
    """
    runs = list(dict.fromkeys(runs))
    if not runs:
        raise UsageError("give at least one run")
    if into in runs:
        raise UsageError(f"the result run {into!r} is also a source; choose another name for --into")
    store = ws.store
    run_ids = {name: store.run_id(name) for name in runs}
    if not replace and store.one("SELECT 1 FROM runs WHERE name = ?", (into,)):
        raise ConflictError(
            f"a detection run named {into!r} exists already",
            hint="choose another name, or pass --replace to replace it",
        )
    params = {
        "op": "merge" if len(runs) > 1 else "nms",
        "runs": runs,
        "iou": iou,
        "class_agnostic": class_agnostic,
        "into": into,
    }
    with job(store, "nms", params) as j:
        frames = []
        images = []
        for rank, name in enumerate(runs):
            d = store.read_detections(name, with_extra=True).with_columns(
                pl.lit(rank, pl.Int32).alias("_src"), pl.lit(run_ids[name], pl.Int64).alias("source_run_id")
            )
            frames.append(d)
            images.append(
                store.read_frame(
                    "SELECT item_id, source, meta FROM run_images WHERE run_id = ? ORDER BY item_id",
                    (run_ids[name],),
                    {"item_id": pl.Int64, "source": pl.String, "meta": pl.String},
                ).with_columns(pl.lit(rank, pl.Int32).alias("_src"))
            )
        dets = pl.concat(frames, how="vertical_relaxed")
        res = nms_frame(
            dets,
            iou,
            class_agnostic,
            tiebreak=["_src", "id"],
            progress=progress,
            cancel=cancel,
        )
        kept = res.filter(pl.col("keep")).sort("item_id", "_src", "id")
        imgs = (
            pl.concat(images, how="vertical_relaxed")
            .sort("item_id", "_src")
            .unique("item_id", keep="first", maintain_order=True)
        )
        head = store.execute(
            "SELECT weights, weights_sha256, epoch, conf FROM runs WHERE id = ?", (run_ids[runs[0]],)
        ).fetchone()
        lineage: dict[str, Any] = {}
        if len(runs) == 1:
            lineage = dict(zip(("weights", "weights_sha256", "epoch", "conf"), head, strict=True))
        with store.bulk() as tx:
            new_id = store.create_run(
                into,
                kept.select("item_id", "class_id", *BOX, "score", "extra"),
                imgs.select("item_id", "source", "meta"),
                source=",".join(f"run:{r}" for r in runs),
                fmt="nms",
                iou=iou,
                params=params,
                note=f"{'merge' if len(runs) > 1 else 'NMS'} of {', '.join(runs)} at IoU > {iou}"
                + (" (class-agnostic)" if class_agnostic else ""),
                replace=replace,
                tx=tx,
                **lineage,
            )
            new_ids = tx.read_frame(
                "SELECT id FROM detections WHERE id BETWEEN ? AND ? ORDER BY id", id_range(new_id)
            )
            names = pl.DataFrame(
                {"_src": list(range(len(runs))), "source_run": runs},
                schema={"_src": pl.Int32, "source_run": pl.String},
            )
            src = kept.join(names, on="_src", how="left", maintain_order="left")
            tx.ingest(
                "det_sources",
                pl.DataFrame(
                    {
                        "run_id": pl.Series([new_id] * kept.height, dtype=pl.Int64),
                        "det_id": new_ids["id"].cast(pl.Int64),
                        "source_run_id": src["source_run_id"],
                        "source_run": src["source_run"],
                        "source_det_id": src["id"].cast(pl.Int64),
                    }
                ),
            )
        by_source = dict(kept.join(names, on="_src").group_by("source_run").len().iter_rows())
        result = NmsResult(
            into=into,
            sources=runs,
            iou=iou,
            class_agnostic=class_agnostic,
            boxes_in=dets.height,
            kept=kept.height,
            suppressed=dets.height - kept.height,
            by_source={r: int(by_source.get(r, 0)) for r in runs},
        )
        j.result = result.to_dict()
    return result


@dataclass
class DedupeResult:
    """What :func:`dedupe_labels` found."""

    label_set: str
    iou: float
    class_agnostic: bool
    labels: int
    flagged: int
    by_flag: dict[str, int]
    into: str | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label_set": self.label_set,
            "iou": self.iou,
            "class_agnostic": self.class_agnostic,
            "labels": self.labels,
            "flagged": self.flagged,
            "by_flag": self.by_flag,
            "into": self.into,
            "examples": self.examples,
        }


def dedupe_labels(
    ws: Workspace,
    label_set: str,
    *,
    iou: float = 0.9,
    class_agnostic: bool = False,
    into: str | None = None,
    replace: bool = False,
    examples: int = 20,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DedupeResult:
    """Flag near-identical labels (boxes labelled twice) of a set, without changing the set.

    NMS in file order (the earlier label wins): a label overlapping an earlier kept label
    of the same image with IoU > ``iou`` is flagged ``duplicate`` (same class) or
    ``class_conflict`` (another class; only with ``class_agnostic``) in ``label_flags``,
    with the label it repeats and their IoU. Removing the flagged labels leaves a set
    with no such pair; ``into`` writes that cleaned copy as a new label set. Flags of an
    earlier dedupe of the set are replaced.
    """
    store = ws.store
    sid = store.label_set_id(label_set)
    params = {
        "op": "dedupe",
        "label_set": label_set,
        "iou": iou,
        "class_agnostic": class_agnostic,
        "into": into,
    }
    with job(store, "dedupe", params) as j:
        labels = store.read_labels(label_set, with_extra=True)
        res = nms_frame(
            labels.with_columns(pl.lit(0.0).alias("_score")),
            iou,
            class_agnostic,
            score="_score",
            progress=progress,
            cancel=cancel,
        )
        flagged = res.filter(~pl.col("keep"))
        other_cls = labels.select(pl.col("id").alias("suppressed_by"), pl.col("class_id").alias("_oc"))
        flagged = flagged.join(other_cls, on="suppressed_by", how="left").with_columns(
            pl.when(pl.col("_oc") == pl.col("class_id"))
            .then(pl.lit(FLAG_DUPLICATE))
            .otherwise(pl.lit(FLAG_CLASS_CONFLICT))
            .alias("flag")
        )
        rows = flagged.select(
            pl.lit(sid, pl.Int64).alias("set_id"),
            pl.col("id").alias("label_id"),
            "flag",
            pl.col("suppressed_by").cast(pl.Int64).alias("other_label_id"),
            pl.col("suppressed_iou").alias("iou"),
        )
        with store.bulk() as tx:
            tx.execute(
                "DELETE FROM label_flags WHERE set_id = ? AND flag IN (?, ?)",
                (sid, FLAG_DUPLICATE, FLAG_CLASS_CONFLICT),
            )
            tx.ingest("label_flags", rows)
            if into is not None:
                images = store.read_frame(
                    "SELECT item_id, source, meta FROM set_images WHERE set_id = ? ORDER BY item_id",
                    (sid,),
                    {"item_id": pl.Int64, "source": pl.String, "meta": pl.String},
                )
                store.create_label_set(
                    into,
                    res.filter(pl.col("keep")).select("item_id", "class_id", *BOX, "extra"),
                    images,
                    source=f"set:{label_set}",
                    fmt="dedupe",
                    note=json.dumps(params),
                    replace=replace,
                    tx=tx,
                )
        keys = store.read_frame(
            "SELECT i.id AS item_id, i.key FROM items i JOIN set_images s ON s.item_id = i.id "
            "WHERE s.set_id = ?",
            (sid,),
            {"item_id": pl.Int64, "key": pl.String},
        )
        ex = (
            flagged.join(keys, on="item_id", how="left")
            .sort("item_id", "id")
            .head(examples)
            .select(
                "key",
                pl.col("id").alias("label_id"),
                "flag",
                pl.col("suppressed_by").alias("other_label_id"),
                pl.col("suppressed_iou").alias("iou"),
            )
        )
        by_flag = dict(rows.group_by("flag").len().iter_rows())
        result = DedupeResult(
            label_set=label_set,
            iou=iou,
            class_agnostic=class_agnostic,
            labels=labels.height,
            flagged=rows.height,
            by_flag={k: int(v) for k, v in by_flag.items()},
            into=into,
            examples=ex.to_dicts(),
        )
        j.result = {k: v for k, v in result.to_dict().items() if k != "examples"}
    return result
