"""Similar images by the structure of their boxes, and near-duplicate files by perceptual hash.

Layout distance (``tuiops similar``)
------------------------------------
Every box becomes four numbers in the image's unit square: centre x, centre y, width and
height, each divided by the image's width or height and clipped to 0…1 (an image of
unknown size uses the extent of its boxes). For a query image Q and a candidate I::

    class_term = Σ_c |n_Q(c) − n_I(c)| / (|Q| + |I|)          (0 when both have no boxes)
    box_term   = mean, over every box of Q or I whose class also occurs in the other
                 image, of the cost to the nearest box of that class in the other image,
                 cost = (|Δcx| + |Δcy| + |Δw| + |Δh|) / 4   (0 when no class is shared)
    distance   = class_term + box_term                          (0 … 2)

``class_term`` is the L1 distance of the class multisets, normalised to 0…1 (1 when no
class is shared); ``box_term`` is a symmetric chamfer distance between the boxes of the
shared classes, 0…1. Identical layouts have distance 0. Candidates are every other
image of the same label set or run, also those with no boxes; the cost table is built
with one join on the class against all boxes at once (in chunks that bound memory).

Near-duplicates (``tuiops dupes``)
----------------------------------
Two files are near-duplicates when the Hamming distance of their 64-bit perceptual
hashes is at most D. Pairs are found without comparing all pairs: the 64 bits are split
into m chunks; two hashes within distance D agree, in at least one chunk, up to
r = ⌊D/m⌋ bits (pigeonhole). Each chunk value is joined with the values that differ from
it in at most r bits of that chunk (r = 0 with m = D + 1: a plain equi-join), and every
candidate pair is verified by a popcount of the XOR. m is chosen from the pool size to
keep the candidate count small. Near-duplicate pairs are grouped into cliques, so that
every two files of a group are within D (connected components would chain: hashes 2 bits
apart link a group whose ends are far apart); see :func:`clique_groups`. ``distance`` of a
file is its Hamming distance to the group's representative.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from tuiops import geometry as geo
from tuiops.errors import NotFoundError, UsageError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job
from tuiops.ops.join import connected_components

if TYPE_CHECKING:
    from tuiops.workspace import Workspace

_FEATURES = ("cx", "cy", "w", "h")


# -- layout signature and distance ----------------------------------------------------------------
def box_features(boxes: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """Normalised box features: item_id, class_id, cx, cy, w, h in 0…1 (LazyFrame → LazyFrame).

    ``boxes`` has item_id, class_id, x1…y2, img_w, img_h; a missing image size is taken
    from the largest x2 / y2 of the image's boxes.
    """
    lf = boxes.lazy() if isinstance(boxes, pl.DataFrame) else boxes
    w = (
        pl.when(pl.col("img_w") > 0)
        .then(pl.col("img_w").cast(pl.Float64))
        .otherwise(pl.col("x2").max().over("item_id"))
    )
    h = (
        pl.when(pl.col("img_h") > 0)
        .then(pl.col("img_h").cast(pl.Float64))
        .otherwise(pl.col("y2").max().over("item_id"))
    )
    lf = lf.with_columns(w.alias("_W"), h.alias("_H"))
    lf = lf.with_columns(
        pl.when(pl.col("_W") > 0).then(pl.col("_W")).otherwise(1.0).alias("_W"),
        pl.when(pl.col("_H") > 0).then(pl.col("_H")).otherwise(1.0).alias("_H"),
    )
    return lf.select(
        "item_id",
        pl.col("class_id").cast(pl.Int32),
        (geo.center_x() / pl.col("_W")).clip(0.0, 1.0).alias("cx"),
        (geo.center_y() / pl.col("_H")).clip(0.0, 1.0).alias("cy"),
        (geo.width() / pl.col("_W")).clip(0.0, 1.0).alias("w"),
        (geo.height() / pl.col("_H")).clip(0.0, 1.0).alias("h"),
    )


def layout_distances(
    query: pl.DataFrame,
    candidates: pl.DataFrame,
    items: pl.Series,
    *,
    chunk_rows: int = 20_000_000,
    reporter: Reporter | None = None,
) -> pl.DataFrame:
    """Distance of the query layout to every image in ``items`` (see the module docstring).

    ``query``: class_id, cx, cy, w, h. ``candidates``: item_id, class_id, cx, cy, w, h.
    Returns item_id, distance, class_term, box_term, boxes (the candidate's box count).
    """
    nq = query.height
    q = query.select(pl.col("class_id").cast(pl.Int32), *_FEATURES).with_row_index("_qb")
    qcount = q.group_by("class_id").agg(pl.len().cast(pl.Int64).alias("nq"))
    cand = candidates.select("item_id", pl.col("class_id").cast(pl.Int32), *_FEATURES).sort("item_id")
    cand = cand.with_row_index("_cb")
    counts = (
        cand.group_by("item_id", "class_id")
        .agg(pl.len().cast(pl.Int64).alias("ni"))
        .join(qcount, on="class_id", how="left")
        .with_columns(pl.col("nq").fill_null(0))
        .group_by("item_id")
        .agg(
            pl.col("ni").sum().alias("boxes"),
            (pl.col("ni") - pl.col("nq")).abs().sum().alias("_diff"),
            pl.col("nq").sum().alias("_shared_q"),
        )
    )
    cost = sum(((pl.col(f) - pl.col(f"{f}_q")).abs() for f in _FEATURES), pl.lit(0.0)) / 4.0
    step = max(10_000, chunk_rows // max(nq, 1))
    near_c: list[pl.DataFrame] = []
    near_q: list[pl.DataFrame] = []
    for start in range(0, cand.height, step):
        if reporter is not None:
            reporter.update(min(cand.height, start + step), "comparing layouts")
        part = cand.slice(start, step)
        pairs = part.join(q, on="class_id", suffix="_q").select("item_id", "_cb", "_qb", cost.alias("cost"))
        near_c.append(pairs.group_by("item_id", "_cb").agg(pl.col("cost").min()).select("item_id", "cost"))
        near_q.append(pairs.group_by("item_id", "_qb").agg(pl.col("cost").min()))
    empty = pl.DataFrame(schema={"item_id": pl.Int64, "cost": pl.Float64})
    side_c = pl.concat(near_c) if near_c else empty
    side_q = (
        pl.concat(near_q).group_by("item_id", "_qb").agg(pl.col("cost").min()).select("item_id", "cost")
        if near_q
        else empty
    )
    box = (
        pl.concat(
            [
                side_c.with_columns(pl.col("item_id").cast(pl.Int64)),
                side_q.with_columns(pl.col("item_id").cast(pl.Int64)),
            ]
        )
        .group_by("item_id")
        .agg(pl.col("cost").sum().alias("_sum"), pl.len().alias("_n"))
    )
    base = items.cast(pl.Int64).unique().to_frame("item_id")
    return (
        base.join(counts.with_columns(pl.col("item_id").cast(pl.Int64)), on="item_id", how="left")
        .join(box, on="item_id", how="left")
        .with_columns(
            pl.col("boxes").fill_null(0),
            pl.col("_diff").fill_null(0),
            pl.col("_shared_q").fill_null(0),
        )
        .with_columns(
            (pl.col("_diff") + (nq - pl.col("_shared_q"))).alias("_l1"),
            (pl.col("boxes") + nq).alias("_tot"),
        )
        .with_columns(
            pl.when(pl.col("_tot") > 0)
            .then(pl.col("_l1") / pl.col("_tot"))
            .otherwise(0.0)
            .alias("class_term"),
            pl.when(pl.col("_n") > 0).then(pl.col("_sum") / pl.col("_n")).otherwise(0.0).alias("box_term"),
        )
        .with_columns((pl.col("class_term") + pl.col("box_term")).alias("distance"))
        .select("item_id", "distance", "class_term", "box_term", "boxes")
    )


@dataclass
class SimilarResult:
    """The images nearest in layout to one image."""

    key: str
    source: str
    boxes: int
    candidates: int
    results: pl.DataFrame = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "source": self.source,
            "boxes": self.boxes,
            "candidates": self.candidates,
            "similar": self.results.to_dicts(),
        }


def _source_boxes(
    ws: Workspace, label_set: str | None, run: str | None, min_score: float | None
) -> tuple[str, pl.DataFrame, pl.DataFrame]:
    if (label_set is None) == (run is None):
        raise UsageError("give exactly one of --set or --run")
    store = ws.store
    if label_set is not None:
        boxes = store.read_labels(label_set)
        images = store.read_set_images(label_set)
        source = f"set {label_set}"
    else:
        assert run is not None
        boxes = store.read_detections(run)
        if min_score is not None:
            boxes = boxes.filter(pl.col("score") >= min_score)
        images = store.read_run_images(run)
        source = f"run {run}"
    return source, boxes, images


def similar_images(
    ws: Workspace,
    key: str,
    *,
    label_set: str | None = None,
    run: str | None = None,
    top: int = 10,
    min_score: float | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> SimilarResult:
    """The ``top`` images of a label set (or run) whose box layout is nearest to image ``key``'s."""
    if top < 1:
        raise UsageError(f"--top must be at least 1, got {top}")
    source, boxes, images = _source_boxes(ws, label_set, run, min_score)
    hit = images.filter(pl.col("key") == key)
    if hit.height == 0:
        exists = ws.store.one("SELECT id FROM items WHERE key = ?", (key,))
        if exists is None:
            raise NotFoundError(f"no image with key {key!r}", hint="keys look like danbooru_4512345")
        raise NotFoundError(f"image {key!r} is not in {source}", hint="pick an image of that set or run")
    qid = int(hit["item_id"][0])
    reporter = Reporter("similar", progress, cancel)
    sized = boxes.join(
        images.select("item_id", pl.col("width").alias("img_w"), pl.col("height").alias("img_h")),
        on="item_id",
        how="inner",
    )
    feats = box_features(sized).collect()
    query = feats.filter(pl.col("item_id") == qid).drop("item_id")
    others = feats.filter(pl.col("item_id") != qid)
    items = images.filter(pl.col("item_id") != qid)["item_id"]
    dist = layout_distances(query, others, items, reporter=reporter)
    results = (
        dist.join(images.select("item_id", "key"), on="item_id", how="left")
        .sort("distance", "key")
        .head(top)
        .with_row_index("rank", offset=1)
        .select(
            pl.col("rank").cast(pl.Int64),
            "key",
            "item_id",
            pl.col("distance").round(6),
            pl.col("class_term").round(6),
            pl.col("box_term").round(6),
            "boxes",
        )
    )
    return SimilarResult(key=key, source=source, boxes=query.height, candidates=items.len(), results=results)


# -- near-duplicates ----------------------------------------------------------------------------
def _chunk_bits(m: int) -> list[tuple[int, int]]:
    """(offset, width) of ``m`` chunks covering 64 bits as evenly as possible."""
    base, extra = divmod(64, m)
    out = []
    off = 0
    for k in range(m):
        w = base + (1 if k < extra else 0)
        out.append((off, w))
        off += w
    return out


def _variants(width: int, r: int) -> int:
    return sum(math.comb(width, k) for k in range(r + 1))


def plan_chunks(n: int, max_distance: int) -> int:
    """The number of chunks m (1 … D+1) with the least expected work for ``n`` hashes.

    Work per chunk: ``n × v`` probe rows (v = values within r bits of a chunk value) plus
    the expected candidate pairs of uniformly spread hashes, ``n² × v / 2^width / 2``,
    each about 2.5 times as dear as a probe row.
    """
    best, best_cost = max_distance + 1, math.inf
    for m in range(1, min(64, max_distance + 1) + 1):
        r = max_distance // m
        widths = [w for _, w in _chunk_bits(m)]
        v = _variants(max(widths), r)
        if v > 5_000:
            continue
        cost = m * (n * v + 2.5 * n * n * v / 2.0 ** min(widths) / 2.0)
        if cost < best_cost:
            best, best_cost = m, cost
    return best


def hash_pairs(
    hashes: pl.DataFrame,
    max_distance: int,
    *,
    chunks: int | None = None,
    reporter: Reporter | None = None,
) -> pl.DataFrame:
    """All pairs of distinct rows whose hashes differ in at most ``max_distance`` bits.

    ``hashes``: node (Int64, unique), h (UInt64). Returns u < v (node values) and ``distance``.
    """
    if not 0 <= max_distance <= 32:
        raise UsageError(f"--max-distance must be between 0 and 32 bits, got {max_distance}")
    n = hashes.height
    empty = pl.DataFrame(schema={"u": pl.Int64, "v": pl.Int64, "distance": pl.UInt32})
    if n < 2:
        return empty
    m = chunks if chunks is not None else plan_chunks(n, max_distance)
    if not 1 <= m <= min(64, max_distance + 1):
        raise UsageError(f"chunks must be between 1 and {min(64, max_distance + 1)}, got {m}")
    r = max_distance // m
    h = hashes.select(pl.col("node").cast(pl.Int64), pl.col("h").cast(pl.UInt64))
    found: list[pl.DataFrame] = []
    for off, width in _chunk_bits(m):
        if reporter is not None:
            reporter.check()
        mask = (1 << width) - 1
        part = h.lazy().with_columns(
            ((pl.col("h") // pl.lit(1 << off, pl.UInt64)) & pl.lit(mask, pl.UInt64)).alias("c")
        )
        flips = [0] + [
            sum(1 << b for b in bits)
            for k in range(1, r + 1)
            for bits in itertools.combinations(range(width), k)
        ]
        probe = part.select(pl.col("node").alias("u"), pl.col("h").alias("hu"), "c")
        if len(flips) > 1:
            probe = probe.join(pl.LazyFrame({"f": flips}, schema={"f": pl.UInt64}), how="cross").select(
                "u", "hu", pl.col("c").xor(pl.col("f")).alias("c")
            )
        found.append(
            probe.join(part.select(pl.col("node").alias("v"), pl.col("h").alias("hv"), "c"), on="c")
            .filter(pl.col("u") < pl.col("v"))
            .select("u", "v", pl.col("hu").xor(pl.col("hv")).bitwise_count_ones().alias("distance"))
            .filter(pl.col("distance") <= max_distance)
            .collect()
        )
    return (
        pl.concat(found)
        .unique(["u", "v"])
        .select("u", "v", pl.col("distance").cast(pl.UInt32))
        .sort("u", "v")
    )


def _greedy_cliques(
    nodes: np.ndarray, h: np.ndarray, rank: np.ndarray, pairs: pl.DataFrame, max_distance: int
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy cliques over the nodes of components that are not cliques themselves.

    ``nodes`` (sorted), their hashes ``h`` and priorities ``rank`` (0 first); ``pairs`` u, v,
    distance among them. Returns (node, representative) of every node placed in a group.
    """
    both = pl.concat(
        [
            pairs.select(pl.col("u").alias("s"), pl.col("v").alias("t"), "distance"),
            pairs.select(pl.col("v").alias("s"), pl.col("u").alias("t"), "distance"),
        ]
    )
    pos = pl.DataFrame({"node": nodes, "_p": np.arange(nodes.size), "_r": rank})
    both = (
        both.join(pos.rename({"node": "s", "_p": "sp", "_r": "_sr"}), on="s")
        .join(pos.rename({"node": "t", "_p": "tp", "_r": "tr"}), on="t")
        .sort("sp", "distance", "tr")
    )
    sp = both["sp"].to_numpy()
    tp = both["tp"].to_numpy()
    indptr = np.searchsorted(sp, np.arange(nodes.size + 1))
    assigned = np.zeros(nodes.size, dtype=bool)
    rep = np.full(nodes.size, -1, dtype=np.int64)
    for c in np.argsort(rank, kind="stable"):
        if assigned[c]:
            continue
        nb = tp[indptr[c] : indptr[c + 1]]
        nb = nb[~assigned[nb]]
        if nb.size == 0:
            continue
        hs = h[nb]
        ok = np.ones(nb.size, dtype=bool)
        keep = []
        i = 0
        while True:
            keep.append(i)
            ok &= np.bitwise_count(hs ^ hs[i]) <= max_distance
            ok[: i + 1] = False
            rest = np.flatnonzero(ok)
            if rest.size == 0:
                break
            i = int(rest[0])
        members = np.concatenate([[c], nb[keep]])
        assigned[members] = True
        rep[members] = c
    placed = rep >= 0
    return nodes[placed], nodes[rep[placed]]


def clique_groups(nodes: pl.DataFrame, pairs: pl.DataFrame, max_distance: int) -> pl.DataFrame:
    """Groups of near-duplicate hashes in which every two hashes are within ``max_distance``.

    ``nodes``: node (Int64), h (UInt64) and ``first`` (a tie-break, e.g. the lowest file id
    holding the hash); ``pairs``: u, v, distance of every near pair (from :func:`hash_pairs`).
    The hash with most near-duplicates (ties: lowest ``first``) becomes a representative and
    takes its near-duplicates not yet in a group, nearest first (ties: by the same priority),
    each only if it is within the distance of every one taken before; then the next hash
    by priority that is in no group, and so on. Each hash is in at most one group. A connected
    component of pairs that is a clique already is one group around its first hash by
    priority, found without the loop. Returns node, rep (the representative's node) and
    ``distance`` (to the representative) for every grouped hash.
    """
    schema = {"node": pl.Int64, "rep": pl.Int64, "distance": pl.Int64}
    if pairs.height == 0:
        return pl.DataFrame(schema=schema)
    deg = (
        pl.concat([pairs.select(pl.col("u").alias("node")), pairs.select(pl.col("v").alias("node"))])
        .group_by("node")
        .agg(pl.len().alias("deg"))
    )
    comps = connected_components(pairs)
    info = (
        comps.join(deg, on="node")
        .join(nodes.select("node", "h", "first"), on="node")
        .sort(["deg", "first", "node"], descending=[True, False, False])
        .with_row_index("rank")
        .with_columns(pl.col("rank").cast(pl.Int64))
    )
    shape = info.group_by("component").agg(
        pl.len().alias("_s"),
        (pl.col("deg").sum() // 2).alias("_e"),
        pl.col("node").sort_by("rank").first().alias("rep"),
    )
    whole = shape.filter(pl.col("_e") == pl.col("_s") * (pl.col("_s") - 1) // 2)
    grouped = [info.join(whole.select("component", "rep"), on="component").select("node", "rep")]
    rest = info.join(whole.select("component"), on="component", how="anti").sort("node")
    if rest.height:
        sub = pairs.join(rest.select(pl.col("node").alias("u")), on="u", how="semi")
        got_node, got_rep = _greedy_cliques(
            rest["node"].to_numpy(),
            rest["h"].to_numpy(),
            rest["rank"].to_numpy(),
            sub,
            max_distance,
        )
        grouped.append(
            pl.DataFrame({"node": got_node, "rep": got_rep}, schema={"node": pl.Int64, "rep": pl.Int64})
        )
    hs = nodes.select("node", "h")
    return (
        pl.concat(grouped)
        .join(hs, on="node")
        .join(hs.rename({"node": "rep", "h": "_hr"}), on="rep")
        .select(
            "node",
            "rep",
            pl.col("h").xor(pl.col("_hr")).bitwise_count_ones().cast(pl.Int64).alias("distance"),
        )
    )


def phash_hex(col: str = "h") -> pl.Expr:
    """A UInt64 hash as 16 lower-case hex digits."""
    digits = {k: "0123456789abcdef"[k] for k in range(16)}
    return pl.concat_str(
        [
            ((pl.col(col) // pl.lit(16**k, pl.UInt64)) % 16).replace_strict(digits, return_dtype=pl.String)
            for k in range(15, -1, -1)
        ]
    )


@dataclass
class DupesResult:
    """Groups of near-duplicate files, and the files near a group that could not join one."""

    max_distance: int
    files: int
    groups: int
    files_in_groups: int
    table: pl.DataFrame = field(repr=False)
    left_out: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)
    #: files whose stored hash was made by an older method, not compared with the others
    older_hashes: int = 0

    def summary(self) -> pl.DataFrame:
        """One row per group: group, size, keys, max_distance, files (a list of structs)."""
        return self.table.group_by("group", maintain_order=True).agg(
            pl.len().alias("size"),
            pl.col("key").n_unique().alias("keys"),
            pl.col("distance").max().alias("max_distance"),
            pl.struct(pl.all().exclude("group")).alias("files"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_distance": self.max_distance,
            "files": self.files,
            "groups": self.groups,
            "files_in_groups": self.files_in_groups,
            "left_out": self.left_out.height,
            "older_hashes": self.older_hashes,
            "dupes": self.summary().to_dicts(),
            "left_out_files": self.left_out.to_dicts(),
        }


def _files_with_hash(ws: Workspace, pool: str | None) -> tuple[pl.DataFrame, int]:
    """The present files with a hash of the current method, and how many have one of an
    older method (never compared with them)."""
    from tuiops.ops.probe import PHASH_METHOD

    store = ws.store
    where, args = "f.phash IS NOT NULL AND f.status <> 'missing'", []
    if pool is not None:
        where += " AND f.pool_id = ?"
        args.append(store.pool_id(pool))
    older = store.read_frame(
        f"SELECT count(*) AS n FROM files f WHERE {where} AND f.phash_method IS NOT ?",
        [*args, PHASH_METHOD],
        {"n": pl.Int64},
    ).item()
    where += " AND f.phash_method = ?"
    args.append(PHASH_METHOD)
    frame = store.read_frame(
        "SELECT f.id AS file_id, p.name AS pool, f.relpath, i.key, f.phash FROM files f "
        f"JOIN pools p ON p.id = f.pool_id LEFT JOIN items i ON i.id = f.item_id WHERE {where} "
        "ORDER BY f.id",
        args,
        {
            "file_id": pl.Int64,
            "pool": pl.String,
            "relpath": pl.String,
            "key": pl.String,
            "phash": pl.Int64,
        },
    ).with_columns(pl.col("phash").reinterpret(signed=False).alias("h"))
    return frame, int(older)


def _left_out(
    tagged: pl.DataFrame, pairs: pl.DataFrame, grouped: pl.DataFrame, order: pl.DataFrame
) -> pl.DataFrame:
    """Files in no group that have a near-duplicate in a reported group: the nearest such group.

    ``grouped``: node, rep of the files in reported groups; ``order``: group, rep.
    """
    both = pl.concat(
        [
            pairs.select(pl.col("u").alias("node"), pl.col("v").alias("other"), "distance"),
            pairs.select(pl.col("v").alias("node"), pl.col("u").alias("other"), "distance"),
        ]
    ).with_columns(pl.col("distance").cast(pl.Int64))
    near = (
        both.join(grouped.select("node"), on="node", how="anti")
        .join(grouped.select(pl.col("node").alias("other"), "rep"), on="other")
        .join(order, on="rep")
        .sort("node", "distance", "group")
        .group_by("node", maintain_order=True)
        .first()
        .select("node", pl.col("group").alias("near_group"), "distance")
    )
    return (
        tagged.join(near, on="node")
        .sort("near_group", "file_id")
        .select("file_id", "pool", "relpath", "key", phash_hex("h").alias("phash"), "near_group", "distance")
    )


def find_dupes(
    ws: Workspace,
    *,
    max_distance: int = 4,
    pool: str | None = None,
    distinct_keys: bool = False,
    chunks: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DupesResult:
    """Groups of files whose perceptual hashes are within ``max_distance`` bits of each other.

    Only indexed files with a hash that are still present (status not ``missing``) take
    part; ``pool`` limits the search to one pool. Every two files of a group are within
    ``max_distance`` (see :func:`clique_groups` for how groups are formed; a hash's
    priority tie-break is the lowest file id holding it), and each file is in one group
    at most. With ``distinct_keys`` only groups spanning two or more image keys are
    reported (the train/val leak check). The table has one row per grouped file: group,
    file_id, pool, relpath, key, phash (hex), distance (to the group's representative,
    listed first). ``left_out`` lists the files with a near-duplicate whose own
    near-duplicates all joined groups they are not within the distance of every member of,
    with the nearest such group.
    """
    reporter = Reporter("dupes", progress, cancel)
    params = {"max_distance": max_distance, "pool": pool, "distinct_keys": distinct_keys}
    with job(ws.store, "dupes", params) as j:
        files, older = _files_with_hash(ws, pool)
        reporter.update(0, "hashing pairs", total=files.height)
        nodes = (
            files.group_by("h")
            .agg(pl.col("file_id").min().alias("first"))
            .sort("h")
            .with_row_index("node")
            .with_columns(pl.col("node").cast(pl.Int64))
        )
        pairs = hash_pairs(nodes, max_distance, chunks=chunks, reporter=reporter)
        reporter.check()
        grouped = clique_groups(nodes, pairs, max_distance)
        tagged = (
            files.join(nodes.select("node", "h"), on="h")
            .join(grouped.select("node", "rep"), on="node", how="left")
            .with_columns(
                pl.coalesce("key", pl.format("{}/{}", "pool", "relpath")).alias("_k"),
                pl.coalesce("rep", "node").alias("rep"),
            )
            .with_columns(pl.len().over("rep").alias("_size"))
        )
        members = tagged.filter(pl.col("_size") > 1)
        if distinct_keys:
            members = members.filter(pl.col("_k").n_unique().over("rep") > 1)
        order = (
            members.group_by("rep")
            .agg(pl.len().alias("_n"), pl.col("file_id").min().alias("_f"))
            .sort(["_n", "_f"], descending=[True, False])
            .with_row_index("group", offset=1)
            .select(pl.col("group").cast(pl.Int64), "rep")
        )
        table = (
            members.join(order, on="rep")
            .join(grouped.select("node", "distance"), on="node", how="left")
            .with_columns(pl.col("distance").fill_null(0))
            .sort("group", "distance", "file_id")
            .select("group", "file_id", "pool", "relpath", "key", phash_hex("h").alias("phash"), "distance")
        )
        left_out = _left_out(
            tagged.filter(pl.col("_size") == 1), pairs, members.select("node", "rep").unique(), order
        )
        result = DupesResult(
            max_distance=max_distance,
            files=files.height,
            groups=order.height,
            files_in_groups=table.height,
            table=table,
            left_out=left_out,
            older_hashes=older,
        )
        j.result = {
            "files": result.files,
            "groups": result.groups,
            "files_in_groups": result.files_in_groups,
            "left_out": left_out.height,
            "older_hashes": older,
        }
        reporter.update(files.height, "done", force=True)
    return result
