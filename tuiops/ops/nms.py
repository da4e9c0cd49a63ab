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

The work runs on chunks of whole groups (numpy arrays; chunks in parallel threads). In
a chunk, a few rounds first "peel" each group: its first box in NMS order is kept and
suppresses every box of the group it overlaps (one pair per box and round), which takes
the biggest clusters out cheaply. Then the boxes left are sorted by group and x1, and a
box is paired only with the following boxes of its group that start early enough to reach
IoU > threshold at all (most windows are a few boxes long; they are counted by comparing
shifted slices). The pairs with
IoU > threshold, oriented from the earlier box ``a`` to the later box ``b``, go through
greedy rounds: each box with no undecided earlier neighbour is kept and every box it
overlaps is suppressed; the decided boxes leave the table. This is exactly the greedy
result (each kept box is the earliest undecided box of its neighbourhood when it is
decided), and the number of rounds is the length of the longest chain of dependencies,
not the number of boxes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from tuiops.errors import ConflictError, InputError, UsageError
from tuiops.frames import num_max, num_min
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job
from tuiops.store.db import id_range
from tuiops.store.frames import BOX

if TYPE_CHECKING:
    from tuiops.workspace import Workspace


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
    lo_min = float(num_min(f["_lo"]) or 0.0)
    span = max(float(num_max(f["_hi"]) or 0.0), float(num_max(f["_lo"]) or 0.0)) - lo_min + 1.0
    if not presorted:
        f = f.sort("_g", "_lo")
    f = f.with_columns(
        pl.col("_g").ne_missing(pl.col("_g").shift(1)).cum_sum().cast(pl.Float64).alias("_gd")
    ).with_columns(
        (pl.col("_gd") * span + (pl.col("_lo") - lo_min)).alias("_key"),
        (pl.col("_gd") * span + (pl.col("_hi") - lo_min)).alias("_end"),
    )
    max_key = float(num_max(f["_end"].abs()) or 0.0) + float(num_max(f["_key"].abs()) or 0.0)
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
UNDECIDED, KEPT, SUPPRESSED = 0, 1, 2

#: Group × span + x keys of one chunk stay below this, so a float64 key separates the groups
#: (by at least 1) and orders x within a group to far better than the sweep's tolerance.
_KEY_LIMIT = 2.0**40

#: Partner offsets visited one by one; longer windows come from a binary search.
_SHIFTS = 16

#: Shifted slices are used while more than this fraction of the rows reach the offset.
_DENSE = 0.25


def _codes(df: pl.DataFrame, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer group codes of the rows, and the codes of the first key alone (the major part).

    Integer keys are packed arithmetically (code = Σ (value − min) × stride); other keys,
    nulls or ranges too wide to pack fall back to one dense rank of all keys together.
    Equal codes mean the same group; the major code is non-decreasing wherever the first
    key is.
    """
    n = df.height
    if not keys or n == 0:
        zero = np.zeros(n, dtype=np.int64)
        return zero, zero
    parts: list[tuple[np.ndarray, int]] = []
    for k in keys:
        s = df[k]
        if (
            not (s.dtype.is_integer() or s.dtype == pl.Boolean)
            or s.null_count()
            or (s.dtype == pl.UInt64 and s.len() and (num_max(s) or 0) >= 2**63)
        ):
            parts = []
            break
        v = s.cast(pl.Int64).to_numpy()
        lo, hi = int(v.min()), int(v.max())
        parts.append((v - lo, hi - lo + 1))
    width = 1
    for _, r in parts:
        width *= r
    if not parts or width >= 2**62:
        dense = df.select(pl.struct(*keys).rank("dense").cast(pl.Int64))
        code = dense.to_series().to_numpy()
        return code, code
    code = parts[0][0]
    for v, r in parts[1:]:
        code = code * r + v
    return code, parts[0][0]


def _order_arrays(df: pl.DataFrame, tiebreak: Sequence[str]) -> list[np.ndarray]:
    """The tie-break columns as numeric arrays that compare like the columns (nulls first)."""
    out = []
    for c in tiebreak:
        s = df[c]
        if s.dtype.is_numeric() and not s.null_count():
            out.append(s.to_numpy())
        else:
            out.append(s.rank("dense").fill_null(0).cast(pl.Int64).to_numpy())
    return out


def _precedes(ri: np.ndarray, rj: np.ndarray, tb: Sequence[np.ndarray]) -> np.ndarray:
    """For boxes of equal score (input rows ``ri``, ``rj``): True where ``ri`` comes first."""
    lt = ri < rj
    for arr in reversed(tb):
        vi, vj = arr[ri], arr[rj]
        lt = (vi < vj) | ((vi == vj) & lt)
    return lt


def _window_pairs(
    key: np.ndarray, end: np.ndarray, rows: np.ndarray, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)`` of rows sorted by ``key``: ``i`` in ``rows``, ``j ≥ i + offset``, ``key[j] ≤ end[i]``."""
    first = rows.astype(np.int64) + offset
    cnt = np.searchsorted(key, end[rows], side="right") - first
    np.maximum(cnt, 0, out=cnt)
    total = int(cnt.sum())
    dtype = np.int32 if max(total, len(key)) < 2**31 else np.int64
    cnt = cnt.astype(dtype)
    shift = (np.cumsum(cnt, dtype=dtype) - cnt) - first.astype(dtype)
    i = np.repeat(rows.astype(dtype), cnt)
    j = np.arange(total, dtype=dtype) - np.repeat(shift, cnt)
    return i, j


def _shifted_hits(
    k: int, reach: np.ndarray, box: tuple[np.ndarray, ...], area: np.ndarray, iou: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs ``(q, q + k)`` with ``reach[q]`` and IoU > ``iou``, computed on shifted slices."""
    x1, y1, x2, y2 = box
    m = len(x1)
    a, b = slice(0, m - k), slice(k, m)
    iw = np.minimum(x2[a], x2[b])
    t = np.maximum(x1[a], x1[b])
    iw -= t
    np.maximum(iw, 0.0, out=iw)
    ih = np.minimum(y2[a], y2[b])
    np.maximum(y1[a], y1[b], out=t)
    ih -= t
    np.maximum(ih, 0.0, out=ih)
    inter = iw
    inter *= ih
    union = np.add(area[a], area[b], out=t)
    union -= inter
    with np.errstate(invalid="ignore", divide="ignore"):
        ov = np.divide(inter, union, out=union)
    hit = np.flatnonzero((ov > iou) & reach)
    dtype = np.int32 if m < 2**31 else np.int64
    return hit.astype(dtype), (hit + k).astype(dtype), ov[hit]


def _iou_hits(
    i: np.ndarray, j: np.ndarray, box: tuple[np.ndarray, ...], area: np.ndarray, iou: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs of ``(i, j)`` with IoU > ``iou``, and their IoU.

    The IoU takes torchvision's floating-point steps (``w = max(0, min(x2) − max(x1))``,
    ``inter / ((area_a + area_b) − inter)`` with areas ``(x2 − x1)·(y2 − y1)``), so the
    comparison with the threshold is bit-exact.
    """
    x1, y1, x2, y2 = box
    iw = x2[i]
    np.minimum(iw, x2[j], out=iw)
    t = x1[i]
    np.maximum(t, x1[j], out=t)
    iw -= t
    np.maximum(iw, 0.0, out=iw)
    ih = y2[i]
    np.minimum(ih, y2[j], out=ih)
    np.take(y1, i, out=t)
    np.maximum(t, y1[j], out=t)
    ih -= t
    np.maximum(ih, 0.0, out=ih)
    inter = iw
    inter *= ih
    union = np.take(area, i, out=t)
    union += area[j]
    union -= inter
    with np.errstate(invalid="ignore", divide="ignore"):
        ov = np.divide(inter, union, out=union)
    hit = np.flatnonzero(ov > iou)
    return i[hit], j[hit], ov[hit]


def _overlap_pairs(
    key: np.ndarray, end: np.ndarray, box: tuple[np.ndarray, ...], area: np.ndarray, iou: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``i < j`` of rows sorted by ``key`` with ``key[j] ≤ end[i]`` and IoU > ``iou``.

    ``key`` is sorted, so the partners of a row are a run of the rows after it. Offsets
    are visited in turn: while most rows still reach offset ``k``, the IoU of every
    ``(q, q + k)`` is computed on shifted slices (no gathers); once few do, only those
    rows' pairs are gathered; after :data:`_SHIFTS` offsets the rows still open (crowded
    groups) get the rest of their window from a binary search.
    """
    m = len(key)
    dtype = np.int32 if m < 2**31 else np.int64
    parts = []
    act: np.ndarray | None = None
    for k in range(1, m):
        if act is None:
            reach = key[k:] <= end[:-k]
            count = int(np.count_nonzero(reach))
            if count == 0:
                break
            if count > _DENSE * (m - k) and k < _SHIFTS:
                parts.append(_shifted_hits(k, reach, box, area, iou))
                continue
            act = np.flatnonzero(reach).astype(dtype)
        else:
            act = act[act < m - k]
            act = act[key[act + k] <= end[act]]
            if not len(act):
                break
        if k >= _SHIFTS:
            parts.append(_iou_hits(*_window_pairs(key, end, act, k), box, area, iou))
            break
        parts.append(_iou_hits(act, act + k, box, area, iou))
    if not parts:
        empty = np.zeros(0, dtype=dtype)
        return empty, empty, np.zeros(0)
    i, j, ov = (np.concatenate(p) for p in zip(*parts, strict=True))
    return i, j, ov


def _greedy(a: np.ndarray, b: np.ndarray, m: int) -> tuple[np.ndarray, int]:
    """The status of ``m`` boxes (KEPT or SUPPRESSED) from the pairs ``a`` (earlier) → ``b``.

    Boxes with no earlier neighbour are kept at once. Each round suppresses the boxes an
    earlier kept box overlaps, drops the decided boxes' edges, and keeps every undecided
    box left with no undecided earlier neighbour. Returns the status and the round count.
    """
    status = np.full(m, KEPT, dtype=np.int8)
    status[b] = UNDECIDED
    undecided = np.flatnonzero(status == UNDECIDED)
    blocked = np.zeros(m, dtype=bool)
    rounds = 0
    while len(a):
        rounds += 1
        sa = status[a]
        status[b[sa == KEPT]] = SUPPRESSED
        live = np.flatnonzero((sa == UNDECIDED) & (status[b] == UNDECIDED))
        a, b = a[live], b[live]
        undecided = undecided[status[undecided] == UNDECIDED]
        blocked[b] = True
        status[undecided[~blocked[undecided]]] = KEPT
        blocked[b] = False
    return status, rounds


@dataclass
class _Chunk:
    """The NMS outcome of one chunk; boxes are input row positions."""

    suppressed: np.ndarray
    by_row: np.ndarray
    target: np.ndarray
    iou: np.ndarray
    rounds: int


#: Rounds of peeling each group's first box (and the boxes it suppresses) before the sweep.
_PEEL_ROUNDS = 3

#: Peeling stops once a round removes fewer than this fraction of the boxes left.
_PEEL_MIN = 0.05


def _nms_chunk(
    code: np.ndarray,
    box: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    score: np.ndarray,
    rows: np.ndarray,
    tb: Sequence[np.ndarray],
    iou: float,
) -> _Chunk:
    """Greedy NMS of a run of whole groups (finite boxes only); see :func:`nms_frame`.

    The first box of each group in NMS order is kept, and every box of its group that it
    overlaps with IoU > ``iou`` is suppressed by it (no kept box comes before it). A few
    rounds of that ("peeling": one pair per box and round) take the biggest clusters out
    of crowded groups; the sweep then pairs only the boxes left, which overlap none of the
    peeled kept boxes above the threshold. The result is the greedy one.
    """
    x1, y1, x2, y2 = box
    m = len(code)
    live = np.argsort(code, kind="stable") if m > 1 and bool((code[1:] < code[:-1]).any()) else np.arange(m)
    sup: list[np.ndarray] = []
    by: list[np.ndarray] = []
    ovs: list[np.ndarray] = []
    peeled = 0
    area = (x2 - x1) * (y2 - y1)
    for _ in range(_PEEL_ROUNDS):
        if len(live) < 2:
            break
        c = code[live]
        new = np.empty(len(c), bool)
        new[0] = True
        np.not_equal(c[1:], c[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        gid = np.cumsum(new) - 1
        s = score[live]
        cand = np.flatnonzero(s == np.maximum.reduceat(s, starts)[gid])
        if len(cand) > len(starts):  # equal best scores: the first by tie-break, then row
            r = rows[live[cand]]
            cand = cand[np.lexsort((r, *(arr[r] for arr in reversed(tb)), gid[cand]))]
            first = np.empty(len(cand), bool)
            first[0] = True
            np.not_equal(gid[cand][1:], gid[cand][:-1], out=first[1:])
            cand = cand[first]
        top = live[cand][gid]
        # every box overlaps itself: the tops come back among the hits, kept
        i, j, ov = _iou_hits(top, live, box, area, iou)
        hit = np.flatnonzero(i != j)
        sup.append(j[hit])
        by.append(i[hit])
        ovs.append(ov[hit])
        peeled += 1
        out = np.zeros(m, bool)
        out[live[cand]] = True
        out[j] = True
        n_live = len(live)
        live = live[~out[live]]
        if n_live - len(live) < _PEEL_MIN * n_live:
            break
    if not peeled:
        return _sweep_chunk(code, box, score, rows, tb, iou)
    if len(live):
        live.sort()
        left = (x1[live], y1[live], x2[live], y2[live])
        rest = _sweep_chunk(code[live], left, score[live], rows[live], tb, iou)
    else:
        e = np.zeros(0, np.int64)
        rest = _Chunk(e, e, e, np.zeros(0), 0)
    sup_all = rows[np.concatenate(sup)]
    return _Chunk(
        np.concatenate((sup_all, rest.suppressed)),
        np.concatenate((rows[np.concatenate(by)], rest.by_row)),
        np.concatenate((sup_all, rest.target)),
        np.concatenate((*ovs, rest.iou)),
        peeled + rest.rounds,
    )


def _sweep_chunk(
    code: np.ndarray,
    box: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    score: np.ndarray,
    rows: np.ndarray,
    tb: Sequence[np.ndarray],
    iou: float,
) -> _Chunk:
    """Greedy NMS of a run of whole groups by a sweep over candidate pairs.

    The boxes are sorted by group, then x1. A pair can only have IoU > t when its x
    overlap exceeds t × the width of either box, so a box is paired only with the
    following boxes of its group that start before ``x2 − t·w`` (one float key
    ``group × span + x`` serves both the sort and the window search; groups whose codes
    or coordinates are too wide for it pair every two boxes of a group instead).
    """
    x1, y1, x2, y2 = box
    m = len(code)
    lo = float(x1.min())
    end = x2 - (iou * (1.0 - 1e-9)) * np.maximum(x2 - x1, 0.0)
    span = max(float(end.max()), float(x1.max())) - lo + 1.0
    cmin = int(code.min())
    top = (int(code.max()) - cmin + 1) * span
    sweep = top < _KEY_LIMIT
    if sweep:
        key = (code - cmin).astype(np.float64) * span + (x1 - lo)
        order = np.argsort(key, kind="stable")
        key = key[order]
        cs = code[order]
        wend = (cs - cmin).astype(np.float64) * span + (end[order] - lo)
        wend += top * 1e-13 + 1e-9
    else:
        order = np.lexsort((x1, code))
        cs = code[order]
        key = np.cumsum(np.append(False, cs[1:] != cs[:-1])).astype(np.float64)
        wend = key
    sbox = (x1[order], y1[order], x2[order], y2[order])
    area = (sbox[2] - sbox[0]) * (sbox[3] - sbox[1])
    i, j, ov = _overlap_pairs(key, wend, sbox, area, iou)
    ss = score[order]
    srows = rows[order]
    si, sj = ss[i], ss[j]
    first = si > sj
    tie = np.flatnonzero(si == sj)
    if len(tie):
        first[tie] = _precedes(srows[i[tie]], srows[j[tie]], tb)
    a = np.where(first, i, j)
    b = np.where(first, j, i)
    status, rounds = _greedy(a, b, m)
    sup = np.flatnonzero((status[a] == KEPT) & (status[b] == SUPPRESSED))
    a, b, ov = a[sup], b[sup], ov[sup]
    sa = ss[a]
    best = np.full(m, -np.inf)
    np.maximum.at(best, b, sa)
    first_kept = np.flatnonzero(sa == best[b])
    a, b, ov = a[first_kept], b[first_kept], ov[first_kept]
    many = np.bincount(b, minlength=m)[b] > 1
    if many.any():
        ra = srows[a[many]]
        cols = {"b": b[many], **{f"t{k}": arr[ra] for k, arr in enumerate(tb)}, "r": ra}
        first_a = (
            pl.DataFrame({**cols, "a": a[many], "ov": ov[many]})
            .sort(list(cols))
            .unique("b", keep="first", maintain_order=True)
        )
        a = np.concatenate([a[~many], first_a["a"].to_numpy()])
        b = np.concatenate([b[~many], first_a["b"].to_numpy()])
        ov = np.concatenate([ov[~many], first_a["ov"].to_numpy()])
    return _Chunk(srows[status == SUPPRESSED], srows[a], srows[b], ov, rounds)


def _chunk_bounds(major: np.ndarray, chunk_rows: int) -> list[int]:
    """Start positions of chunks of about ``chunk_rows`` rows that never split a run of ``major``."""
    n = len(major)
    if n == 0:
        return []
    cuts = np.flatnonzero(major[1:] != major[:-1]) + 1
    want = np.arange(chunk_rows, n, max(1, chunk_rows))
    at = np.unique(cuts[np.minimum(np.searchsorted(cuts, want), len(cuts) - 1)]) if len(cuts) else cuts
    return [0, *at[at > 0].tolist()]


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
    chunk_rows: int = 100_000,
    threads: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> pl.DataFrame:
    """Greedy NMS of every group of ``boxes`` at once; returns the rows with three new columns.

    ``keep`` (bool): the box survives. ``suppressed_by``: the ``id`` of the kept box that
    suppressed it (the earliest kept box in NMS order overlapping it with IoU > ``iou``;
    null when kept). ``suppressed_iou``: the IoU with that box. Rows come back in input
    order. Groups are ``group`` (+ ``class_col`` unless ``class_agnostic``). NMS order is
    ``score`` descending, then ``tiebreak`` ascending (default: the ``id`` column; nulls
    first), then the row position. Without an ``id`` column, ``suppressed_by`` is a row
    position. Work proceeds in chunks of about ``chunk_rows`` boxes (whole groups) on
    ``threads`` threads (default: polars' thread pool size).
    """
    if not 0.0 <= iou <= 1.0:
        raise UsageError(f"IoU threshold {iou} is outside 0…1")
    df = boxes.collect() if isinstance(boxes, pl.LazyFrame) else boxes
    keys = [*group, *([] if class_agnostic else [class_col])]
    need = [*keys, score, *BOX]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise UsageError(f"NMS needs the columns {', '.join(missing)}")
    scores = df[score].cast(pl.Float64).to_numpy()
    bad = int((~np.isfinite(scores)).sum())
    if bad:
        raise InputError(f"{bad} boxes have no finite {score}; NMS needs a score for every box")
    n = df.height
    id_col = id if id is not None and id in df.columns else None
    tb = _order_arrays(df, tiebreak if tiebreak is not None else [id_col] if id_col is not None else [])
    code, major = _codes(df, keys)
    x1, y1, x2, y2 = (df[c].cast(pl.Float64).to_numpy() for c in BOX)
    rows = np.arange(n, dtype=np.int64)
    finite = np.isfinite(x1) & np.isfinite(y1) & np.isfinite(x2) & np.isfinite(y2)
    moved = False
    if n and not finite.all():
        rows, moved = rows[finite], True
    mj = major[rows] if moved else major
    if len(rows) > 1 and not bool((mj[1:] >= mj[:-1]).all()):
        rows, major, moved = rows[pl.Series(code[rows]).arg_sort().to_numpy()], code, True
    if moved:
        code, major = code[rows], major[rows]
        x1, y1, x2, y2, scores = x1[rows], y1[rows], x2[rows], y2[rows], scores[rows]
    m = len(rows)
    starts = _chunk_bounds(major, chunk_rows)
    bounds = list(zip(starts, [*starts[1:], m], strict=False))
    reporter = Reporter("nms", progress, cancel, total=n)
    ids = df[id_col] if id_col is not None else None
    id_values = (
        ids.to_numpy() if ids is not None and ids.dtype.is_numeric() and not ids.null_count() else None
    )
    keep = np.ones(n, dtype=bool)
    by = np.zeros(n, dtype=id_values.dtype if id_values is not None else np.int64)
    by_iou = np.full(n, np.nan)
    rounds = 0

    def work(span: tuple[int, int]) -> _Chunk:
        s = slice(*span)
        return _nms_chunk(code[s], (x1[s], y1[s], x2[s], y2[s]), scores[s], rows[s], tb, iou)

    def done(part: _Chunk, stop: int) -> None:
        nonlocal rounds
        keep[part.suppressed] = False
        by[part.target] = part.by_row if id_values is None else id_values[part.by_row]
        by_iou[part.target] = part.iou
        rounds = max(rounds, part.rounds)
        reporter.update(stop, "suppressing")

    workers = min(threads if threads is not None else pl.thread_pool_size(), len(bounds))
    if workers <= 1:
        for span in bounds:
            reporter.check()
            done(work(span), span[1])
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="nms") as pool:
            futures = [pool.submit(work, span) for span in bounds]
            try:
                for fut, span in zip(futures, bounds, strict=True):
                    reporter.check()
                    done(fut.result(), span[1])
            finally:
                for fut in futures:
                    fut.cancel()
    reporter.update(n, f"{rounds} rounds", force=True)
    kept = pl.Series("keep", keep, dtype=pl.Boolean)
    sup_by = pl.select(pl.when(~kept).then(pl.Series(by))).to_series()
    if ids is not None and id_values is None:
        sup_by = ids.gather(sup_by)
    return df.hstack(
        [
            kept,
            sup_by.alias("suppressed_by"),
            pl.Series("suppressed_iou", by_iou, dtype=pl.Float64, nan_to_null=True),
        ]
    )


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
