"""`gather`: a named selection of images for the next labelling cycle, each with its reason.

Three kinds of samples, taken in this order (an image is taken once, by the first kind
that wants it):

* **good** — images of the run whose every detection at or above ``floor`` scores at
  least ``conf`` and passes the quality checks of ``tuiops quality`` (not
  disproportional, not at the border, neither too small nor too large, not degenerate)
  and that are no bad sample; ranked by their lowest such score.
* **bad** — images with an evident misdetection:

  - a *low-probability* detection (``floor`` ≤ score < ``low``), ranked by its score;
  - an *adjacent-class conflict*: two detections of different classes overlapping with
    IoU ≥ ``conflict_iou``. Its **conflict score** is ``IoU × min(score_a, score_b)``:
    1 when two confident detections of different classes cover the same box, near 0 when
    either is unsure or they barely overlap; ranked by it;
  - a *disproportional* detection (aspect outside its class's range) scoring at least
    ``conf``, ranked by its score.
* **new** — images whose post metadata matches a booru search ``new`` (see
  :mod:`tuiops.ops.meta.syntax`) and that have no detection (at or above ``floor``) of
  the ``missing`` classes (of any class when none is named); ranked by the post's score.

Images of the label set ``label_set`` and of ``exclude_sets`` are left out. Near-duplicates
(perceptual hashes within ``max_distance`` bits) are collapsed: of a group only the best
ranked candidate can be taken. Each kind takes at most ``quota`` images, at most
``per_class`` of each class, drawing the classes in turn (the best candidate of each class,
then the second of each, …). Every image taken records its kind, class and reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from tuiops.errors import UsageError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter

if TYPE_CHECKING:
    from tuiops.workspace import Workspace

KINDS = ("good", "bad", "new")

_CAND = pl.Schema({"item_id": pl.Int64(), "class": pl.String(), "reason": pl.String(), "rank": pl.Float64()})


@dataclass
class GatherResult:
    """The images taken (``picks``: key, kind, class, reason, rank) and what was left out."""

    picks: pl.DataFrame
    candidates: dict[str, int] = field(default_factory=dict)
    near_duplicates: int = 0
    over_quota: int = 0
    saved: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        counts = self.picks.group_by("kind").len().to_dicts() if self.picks.height else []
        return {
            "picked": self.picks.height,
            "per_kind": {r["kind"]: r["len"] for r in counts},
            "candidates": self.candidates,
            "near_duplicates": self.near_duplicates,
            "over_quota": self.over_quota,
            "saved": self.saved,
            "picks": self.picks.to_dicts(),
            "warnings": self.warnings,
        }


def _quality(ws: Workspace, dets: pl.DataFrame, sizes: pl.DataFrame, label_set: str | None) -> pl.DataFrame:
    from tuiops.ops.quality import configured_aspects, learn_aspects, quality_frame, resolve_params

    params = resolve_params(ws)
    ranges = configured_aspects(ws).select(pl.col("class_id").cast(pl.Int32), "aspect_lo", "aspect_hi")
    if label_set is not None:
        learned = learn_aspects(ws.store.read_labels(label_set), params)
        ranges = pl.concat(
            [ranges, learned.select(pl.col("class_id").cast(pl.Int32), "aspect_lo", "aspect_hi")]
        ).unique("class_id", keep="first", maintain_order=True)
    return quality_frame(dets.lazy().join(sizes.lazy(), on="item_id", how="left"), ranges, params).collect()


def _class_names(ws: Workspace) -> pl.DataFrame:
    return pl.DataFrame(
        {"class_id": list(range(len(ws.classes))), "class": list(ws.classes)},
        schema={"class_id": pl.Int32, "class": pl.String},
    )


def good_candidates(q: pl.DataFrame, conf: float, floor: float) -> pl.DataFrame:
    """Images whose every detection ≥ ``floor`` is confident and in shape."""
    bad = pl.any_horizontal("disproportional", "at_border", "degenerate", "too_small", "too_large")
    per = (
        q.filter(pl.col("score") >= floor)
        .group_by("item_id")
        .agg(
            pl.col("score").min().alias("rank"),
            pl.len().alias("n"),
            (bad | (pl.col("score") < conf)).any().alias("spoiled"),
            pl.col("class").unique().sort().alias("classes"),
        )
        .filter(~pl.col("spoiled"))
    )
    return (
        per.explode("classes")
        .select(
            "item_id",
            pl.col("classes").alias("class"),
            pl.format(
                "good: {} detections, all ≥ {} and in shape (lowest {})",
                "n",
                pl.lit(conf),
                pl.col("rank").round(2),
            ).alias("reason"),
            pl.col("rank").cast(pl.Float64),
        )
        .cast(_CAND)
    )


def bad_candidates(
    q: pl.DataFrame, conf: float, low: float, floor: float, conflict_iou: float
) -> pl.DataFrame:
    """Low-probability detections, adjacent-class conflicts and confident disproportional boxes."""
    from tuiops import geometry as geo

    live = q.filter(pl.col("score") >= floor)
    lows = live.filter(pl.col("score") < low).select(
        "item_id",
        "class",
        pl.format("bad: low {} {}", "class", pl.col("score").round(3)).alias("reason"),
        pl.col("score").cast(pl.Float64).alias("rank"),
    )
    cols = ["id", "item_id", "class", "score", "x1", "y1", "x2", "y2"]
    pairs = (
        geo.pairs(live.lazy().select(cols), live.lazy().select(cols))
        .filter((pl.col("id") < pl.col("id_right")) & (pl.col("class") != pl.col("class_right")))
        .filter(pl.col("iou") >= conflict_iou)
        .with_columns((pl.col("iou") * pl.min_horizontal("score", "score_right")).alias("conflict"))
        .collect()
    )
    conflict_reason = pl.format(
        "bad: conflict {}/{} iou {} score {}",
        "class",
        "class_right",
        pl.col("iou").round(2),
        pl.col("conflict").round(3),
    ).alias("reason")
    conflicts = pl.concat(
        [
            pairs.select(
                "item_id", pl.col(c).alias("class"), conflict_reason, pl.col("conflict").alias("rank")
            )
            for c in ("class", "class_right")
        ]
    )
    shapes = live.filter(pl.col("disproportional") & (pl.col("score") >= conf)).select(
        "item_id",
        "class",
        pl.format(
            "bad: disproportional {} aspect {} outside {}–{}",
            "class",
            pl.col("aspect").round(2),
            pl.col("aspect_lo").round(2),
            pl.col("aspect_hi").round(2),
        ).alias("reason"),
        pl.col("score").cast(pl.Float64).alias("rank"),
    )
    return pl.concat([f.cast(_CAND) for f in (lows, conflicts, shapes)])


def new_candidates(
    ws: Workspace, query: str, missing: Sequence[str], dets: pl.DataFrame, floor: float, warnings: list[str]
) -> pl.DataFrame:
    """Images whose post matches ``query`` and that have no detection of ``missing``."""
    from tuiops.ops.meta.search import compile_query

    store = ws.store
    with store.connection() as conn:
        c = compile_query(conn, query)
    warnings.extend(c.warnings)
    found = store.read_frame(
        "SELECT i.id AS item_id, p.score FROM meta_posts p JOIN items i ON i.booru = p.booru AND i.fid = p.fid "
        f"WHERE {c.where} AND EXISTS (SELECT 1 FROM files f WHERE f.item_id = i.id AND f.status = 'ok')",
        c.params,
        {"item_id": pl.Int64, "score": pl.Int64},
    )
    live = dets.filter(pl.col("score") >= floor)
    if missing:
        live = live.filter(pl.col("class").is_in(list(missing)))
    found = found.join(live.select("item_id").unique(), on="item_id", how="anti")
    what = "/".join(missing) if missing else "any"
    return found.select(
        "item_id",
        pl.lit("/".join(missing) if missing else None, pl.String).alias("class"),
        pl.lit(f"new: tags match {query!r}; no {what} detection").alias("reason"),
        pl.col("score").cast(pl.Float64).fill_null(float("-inf")).alias("rank"),
    ).cast(_CAND)


def _groups(ws: Workspace, items: pl.Series, max_distance: int) -> pl.DataFrame:
    """item_id → group (the near-duplicate group of its image; the item itself when unhashed)."""
    from tuiops.ops.join import connected_components
    from tuiops.ops.similar import hash_pairs

    ids = pl.DataFrame({"item_id": items.unique()}, schema={"item_id": pl.Int64})
    hashes = ws.store.read_frame(
        "SELECT item_id, min(phash) AS phash FROM files WHERE phash IS NOT NULL AND status = 'ok' GROUP BY item_id",
        (),
        {"item_id": pl.Int64, "phash": pl.Int64},
    ).join(ids, on="item_id")
    if max_distance < 0 or hashes.height < 2:
        return ids.with_columns(pl.col("item_id").alias("group"))
    pairs = hash_pairs(
        hashes.select(
            pl.col("item_id").alias("node"), pl.col("phash").cast(pl.UInt64, wrap_numerical=True).alias("h")
        ),
        max_distance,
    )
    comps = connected_components(pairs, ids["item_id"])
    return comps.select(pl.col("node").alias("item_id"), pl.col("component").alias("group"))


def pick(cands: pl.DataFrame, quota: int, per_class: int | None) -> pl.DataFrame:
    """The best candidates of one kind, classes drawn in turn; one row per image."""
    per_item = (
        cands.sort(["rank", "item_id"], descending=[True, False])
        .group_by("item_id", "class", maintain_order=True)
        .agg(pl.col("reason").unique(maintain_order=True).str.join("; "), pl.col("rank").max())
    )
    ranked = per_item.with_columns(pl.int_range(pl.len()).over(pl.col("class").fill_null("")).alias("turn"))
    if per_class is not None:
        ranked = ranked.filter(pl.col("turn") < per_class)
    return (
        ranked.sort(["turn", "rank", "item_id"], descending=[False, True, False])
        .unique("item_id", keep="first", maintain_order=True)
        .head(quota)
        .drop("turn")
    )


def _find_candidates(
    ws: Workspace,
    dets: pl.DataFrame,
    run: str | None,
    label_set: str | None,
    kinds: Sequence[str],
    new: str | None,
    missing: Sequence[str],
    thresholds: tuple[float, float, float, float],
    warnings: list[str],
) -> dict[str, pl.DataFrame]:
    """Each kind's candidates (item_id, class, reason, rank); ``thresholds``: conf, low, floor,
    conflict IoU."""
    conf, low, floor, conflict_iou = thresholds
    store = ws.store
    cands: dict[str, pl.DataFrame] = {}
    if "good" in kinds or "bad" in kinds:
        sizes = store.read_frame(
            "SELECT id AS item_id, width AS img_w, height AS img_h FROM items WHERE id IN "
            "(SELECT item_id FROM run_images WHERE run_id = ?)",
            (store.run_id(run or ""),),
            {"item_id": pl.Int64, "img_w": pl.Int64, "img_h": pl.Int64},
        )
        q = _quality(ws, dets, sizes, label_set)
        bad_c = bad_candidates(q, conf, low, floor, conflict_iou)
        if "good" in kinds:
            # an image with a bad detection is no good sample
            cands["good"] = good_candidates(q, conf, floor).join(bad_c, on="item_id", how="anti")
        if "bad" in kinds:
            cands["bad"] = bad_c
    if "new" in kinds and new:
        cands["new"] = new_candidates(ws, new, missing, dets, floor, warnings)
    return cands


def gather(
    ws: Workspace,
    *,
    run: str | None = None,
    label_set: str | None = None,
    kinds: Sequence[str] = KINDS,
    new: str | None = None,
    missing: Sequence[str] = (),
    quota: int = 100,
    per_class: int | None = None,
    exclude_sets: Sequence[str] = (),
    conf: float = 0.5,
    low: float = 0.4,
    floor: float = 0.1,
    conflict_iou: float = 0.5,
    max_distance: int = 4,
    save: str | None = None,
    replace: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> GatherResult:
    """Gather good, bad and new samples (see the module's notes) into a selection."""
    kinds = [k for k in KINDS if k in kinds]
    if not kinds:
        raise UsageError("nothing to gather", hint="pass --good, --bad or --new QUERY")
    if ("good" in kinds or "bad" in kinds) and run is None:
        raise UsageError("--good and --bad read a detection run", hint="pass --run NAME")
    if "new" in kinds and not new:
        raise UsageError("--new needs a tag query", hint='--new "holding_sword"')
    if not floor <= low <= 1.0 or not 0.0 <= conf <= 1.0:
        raise UsageError(
            f"thresholds out of order: floor {floor}, low {low}, conf {conf}", hint="--floor ≤ --low ≤ 1"
        )
    unknown = [c for c in missing if c not in ws.classes]
    if unknown:
        raise UsageError(f"unknown class {', '.join(unknown)}", hint=f"classes: {', '.join(ws.classes)}")
    rep = Reporter("gather", progress, cancel, total=len(kinds) + 2)
    store = ws.store
    warnings: list[str] = []
    names = _class_names(ws)
    det_schema = {"id": pl.Int64, "item_id": pl.Int64, "class_id": pl.Int32, "score": pl.Float64}
    dets = pl.DataFrame(schema={**det_schema, "class": pl.String})
    if run is not None:
        dets = store.read_detections(run).join(names, on="class_id", how="left")
    rep.advance(1, "detections read")
    cands = _find_candidates(
        ws, dets, run, label_set, kinds, new, missing, (conf, low, floor, conflict_iou), warnings
    )
    rep.advance(1, "candidates found")
    excluded = [s for s in (label_set, *exclude_sets) if s]
    out_ids: set[int] = set()
    for s in excluded:
        out_ids.update(store.read_set_images(s)["item_id"].to_list())
    with_files = store.read_frame(
        "SELECT DISTINCT item_id FROM files WHERE status = 'ok' AND item_id IS NOT NULL",
        (),
        {"item_id": pl.Int64},
    )
    all_items = (
        pl.concat([c.select("item_id") for c in cands.values()])
        if cands
        else pl.DataFrame(schema={"item_id": pl.Int64})
    )
    groups = _groups(ws, all_items["item_id"], max_distance)
    result = GatherResult(pl.DataFrame(), warnings=warnings)
    taken_groups: set[int] = set()
    chosen: list[pl.DataFrame] = []
    for kind in kinds:
        rep.check()
        c = cands.get(kind, pl.DataFrame(schema=_CAND))
        c = c.join(with_files, on="item_id", how="semi").filter(~pl.col("item_id").is_in(list(out_ids)))
        result.candidates[kind] = c["item_id"].n_unique()
        c = c.join(groups, on="item_id", how="left").filter(~pl.col("group").is_in(list(taken_groups)))
        # one image per near-duplicate group: the best ranked one
        best = (
            c.sort(["rank", "item_id"], descending=[True, False])
            .unique("group", keep="first", maintain_order=True)
            .select("item_id")
        )
        result.near_duplicates += c["item_id"].n_unique() - best.height
        c = c.join(best, on="item_id", how="semi")
        picked = pick(c.drop("group"), quota, per_class)
        result.over_quota += c["item_id"].n_unique() - picked.height
        taken_groups.update(groups.join(picked.select("item_id"), on="item_id")["group"].to_list())
        chosen.append(picked.with_columns(pl.lit(kind).alias("kind")))
        rep.advance(1, f"{kind}: {picked.height}")
    keys = store.read_frame(
        "SELECT id AS item_id, key FROM items", (), {"item_id": pl.Int64, "key": pl.String}
    )
    picks = (
        pl.concat(chosen)
        .join(keys, on="item_id", how="left")
        .select("key", "item_id", "kind", "class", "reason", "rank")
        if chosen
        else pl.DataFrame()
    )
    result.picks = picks
    if save:
        _save(ws, save, picks, replace)
        result.saved = save
    return result


def _save(ws: Workspace, name: str, picks: pl.DataFrame, replace: bool) -> None:
    from tuiops.ops.select import SelectionSpec, save_selection

    if picks.height == 0:
        raise UsageError(
            "gather found no image; nothing saved", hint="loosen --conf, --low or the --new query"
        )
    with ws.store.transaction() as conn:
        save_selection(ws, name, SelectionSpec(keys=picks["key"].to_list()), replace=replace, note="gather")
        conn.execute("DELETE FROM gather_picks WHERE selection = ?", (name,))
        conn.executemany(
            "INSERT INTO gather_picks(selection, key, kind, class, reason, rank) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (name, r["key"], r["kind"], r["class"], r["reason"], r["rank"])
                for r in picks.iter_rows(named=True)
            ],
        )


__all__ = [
    "KINDS",
    "GatherResult",
    "bad_candidates",
    "gather",
    "good_candidates",
    "new_candidates",
    "pick",
]
