"""Detection quality flags: disproportional, at the border, low score, too small, too large, degenerate.

Every detection of a run gets a bitmask and readable columns in ``det_quality``:

=================  ====  ================================================================
flag               bit   when
=================  ====  ================================================================
disproportional    1     aspect (width / height) outside the class's range
at_border          2     within ``border`` pixels of an image edge (``border`` column: 1
                         left, 2 top, 4 right, 8 bottom)
low_score          4     score < ``min_score``
too_small          8     box area < ``min_pct`` % of the image
too_large          16    box area > ``max_pct`` % of the image
degenerate         32    zero or negative width or height, or non-finite coordinates
=================  ====  ================================================================

The aspect range of a class is learned from a label set (the ``lo_q`` and ``hi_q``
quantiles of its labels' aspects, for classes with at least ``min_support`` labels) or
configured in ``tuiops.toml``; a configured range wins over a learned one. A learned
range is at least ``min_ratio`` wide (high / low, widened evenly in log scale around its
geometric centre): labels drawn with one fixed shape would otherwise give a range such
as 0.9–0.9 that flags every detection. A class with labels in the set but fewer than
``min_support`` learns no range, and the result warns about it::

    [quality]
    min_score = 0.3
    min_pct = 0.05
    max_pct = 90
    border = 2
    quantiles = [0.01, 0.99]
    min_support = 20
    min_ratio = 2.0

    [quality.aspect]
    head = [0.5, 2.0]
    upper_body = [0.3, 1.5]

A class with no range is never flagged disproportional. Options given to the op win
over ``[quality]``, which wins over the defaults. Detections of an image whose size is
unknown get no border or size flags.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from tuiops import geometry as geo
from tuiops.errors import UsageError, WorkspaceError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job
from tuiops.store import utcnow
from tuiops.store.frames import BOX

if TYPE_CHECKING:
    from tuiops.store import Store
    from tuiops.workspace import Workspace

FLAGS: dict[str, int] = {
    "disproportional": 1,
    "at_border": 2,
    "low_score": 4,
    "too_small": 8,
    "too_large": 16,
    "degenerate": 32,
}


@dataclass
class QualityParams:
    """Thresholds of the quality flags (see the module docstring)."""

    min_score: float = 0.3
    min_pct: float = 0.05
    max_pct: float = 90.0
    border: float = 2.0
    lo_q: float = 0.01
    hi_q: float = 0.99
    min_support: int = 20
    min_ratio: float = 2.0

    def check(self) -> None:
        if not 0.0 <= self.min_pct <= self.max_pct <= 100.0:
            raise UsageError(
                f"need 0 ≤ min-pct ≤ max-pct ≤ 100, got min-pct {self.min_pct} and max-pct {self.max_pct}"
            )
        if self.border < 0:
            raise UsageError(f"border tolerance must be ≥ 0 pixels, got {self.border}")
        if not 0.0 <= self.lo_q < self.hi_q <= 1.0:
            raise UsageError(
                f"aspect quantiles must satisfy 0 ≤ low < high ≤ 1, got {self.lo_q}, {self.hi_q}"
            )
        if self.min_support < 1:
            raise UsageError(f"min_support must be ≥ 1, got {self.min_support}")
        if not self.min_ratio >= 1.0:
            raise UsageError(f"min-ratio must be ≥ 1 (high / low of a learned range), got {self.min_ratio}")


def resolve_params(ws: Workspace, **given: Any) -> QualityParams:
    """Thresholds from the arguments given (not None), else ``[quality]`` in tuiops.toml, else defaults."""
    section = ws.config.raw.get("quality", {})
    if not isinstance(section, dict):
        raise WorkspaceError(f"{ws.config_path}: [quality] must be a table")
    values: dict[str, Any] = {}
    defaults = QualityParams()
    for name in ("min_score", "min_pct", "max_pct", "border", "min_support", "min_ratio"):
        if given.get(name) is not None:
            values[name] = given[name]
        elif name in section:
            v = section[name]
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise WorkspaceError(f"{ws.config_path}: [quality] {name} must be a number, got {v!r}")
            values[name] = v
    q = given.get("quantiles") or section.get("quantiles")
    if q is not None:
        if (
            not isinstance(q, list | tuple)
            or len(q) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in q)
        ):
            raise WorkspaceError(f"{ws.config_path}: [quality] quantiles must be [low, high], got {q!r}")
        values["lo_q"], values["hi_q"] = float(q[0]), float(q[1])
    params = QualityParams(**{**asdict(defaults), **values})
    params.min_support = int(params.min_support)
    params.check()
    return params


def configured_aspects(ws: Workspace) -> pl.DataFrame:
    """Aspect ranges from ``[quality.aspect]``: class_id, aspect_lo, aspect_hi, source='config'."""
    section = ws.config.raw.get("quality", {})
    table = section.get("aspect", {}) if isinstance(section, dict) else {}
    if not isinstance(table, dict):
        raise WorkspaceError(f"{ws.config_path}: [quality.aspect] must be a table of class = [low, high]")
    rows = []
    for name, rng in table.items():
        if name not in ws.classes:
            raise WorkspaceError(
                f"{ws.config_path}: [quality.aspect] names class {name!r}, which is not in the class map",
                hint=f"known classes: {', '.join(ws.classes) or 'none'}",
            )
        ok = (
            isinstance(rng, list)
            and len(rng) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in rng)
            and 0 < rng[0] <= rng[1]
        )
        if not ok:
            raise WorkspaceError(
                f"{ws.config_path}: [quality.aspect] {name} = {rng!r}; expected [low, high] with 0 < low ≤ high"
            )
        rows.append((ws.classes.index(name), float(rng[0]), float(rng[1])))
    return pl.DataFrame(
        rows,
        schema={"class_id": pl.Int32, "aspect_lo": pl.Float64, "aspect_hi": pl.Float64},
        orient="row",
    ).with_columns(pl.lit("config").alias("source"))


def aspect_support(labels: pl.DataFrame) -> pl.DataFrame:
    """Per class the labels a range can be learned from (a finite aspect, width > 0): class_id, support."""
    return (
        labels.lazy()
        .with_columns(geo.aspect().alias("aspect"))
        .filter(pl.col("aspect").is_not_null() & pl.col("aspect").is_finite() & (pl.col("aspect") > 0))
        .group_by("class_id")
        .agg(pl.len().alias("support"))
        .with_columns(pl.col("class_id").cast(pl.Int32))
        .sort("class_id")
        .collect()
    )


def learn_aspects(labels: pl.DataFrame, params: QualityParams) -> pl.DataFrame:
    """Per-class aspect ranges of a label frame: class_id, aspect_lo, aspect_hi, support, source.

    The ``lo_q``…``hi_q`` quantiles of the class's aspects, widened to ``min_ratio`` where
    narrower (``source`` is then ``learned, widened``); classes with fewer than
    ``min_support`` labels are left out.
    """
    half = math.log(params.min_ratio) / 2.0
    log_lo = pl.col("aspect_lo").log()
    log_hi = pl.col("aspect_hi").log()
    centre = (log_lo + log_hi) / 2.0
    narrow = (log_hi - log_lo) < 2.0 * half - 1e-12
    return (
        labels.lazy()
        .with_columns(geo.aspect().alias("aspect"))
        .filter(pl.col("aspect").is_not_null() & pl.col("aspect").is_finite() & (pl.col("aspect") > 0))
        .group_by("class_id")
        .agg(
            pl.col("aspect").quantile(params.lo_q, interpolation="linear").alias("aspect_lo"),
            pl.col("aspect").quantile(params.hi_q, interpolation="linear").alias("aspect_hi"),
            pl.len().alias("support"),
        )
        .filter(pl.col("support") >= params.min_support)
        .with_columns(narrow.alias("_narrow"), centre.alias("_c"))
        .with_columns(
            pl.when("_narrow").then((pl.col("_c") - half).exp()).otherwise("aspect_lo").alias("aspect_lo"),
            pl.when("_narrow").then((pl.col("_c") + half).exp()).otherwise("aspect_hi").alias("aspect_hi"),
            pl.when("_narrow").then(pl.lit("learned, widened")).otherwise(pl.lit("learned")).alias("source"),
        )
        .drop("_narrow", "_c")
        .with_columns(pl.col("class_id").cast(pl.Int32))
        .sort("class_id")
        .collect()
    )


def _learning_warnings(
    support: pl.DataFrame,
    ranges: pl.DataFrame,
    det_classes: set[int],
    from_set: str,
    params: QualityParams,
    classes: list[str],
) -> list[str]:
    """A warning per class with too few labels in ``from_set`` to learn its range from."""
    have = dict(support.iter_rows())
    ranged = set(ranges["class_id"].to_list())
    out = []
    for cid in sorted(set(have) | det_classes):
        n = int(have.get(cid, 0))
        if n >= params.min_support or cid in ranged:
            continue
        name = classes[cid] if 0 <= cid < len(classes) else f"class {cid}"
        out.append(
            f"{name}: {n} label(s) in set {from_set!r}, fewer than the {params.min_support} needed "
            "(--min-support) to learn an aspect range: its detections are not checked for proportion"
        )
    return out


def quality_frame(
    dets: pl.LazyFrame | pl.DataFrame, ranges: pl.DataFrame, params: QualityParams
) -> pl.LazyFrame:
    """Flag columns for a frame of detections with ``img_w``/``img_h`` (a LazyFrame → LazyFrame step).

    ``ranges``: class_id, aspect_lo, aspect_hi. Adds aspect, aspect_lo, aspect_hi, area_pct,
    border, the six flag columns (bool) and ``flags`` (the bitmask).
    """
    lf = dets.lazy() if isinstance(dets, pl.DataFrame) else dets
    finite = pl.all_horizontal(pl.col(c).cast(pl.Float64).is_finite() for c in BOX)
    known = (pl.col("img_w") > 0) & (pl.col("img_h") > 0)
    lf = (
        lf.join(
            ranges.lazy().select(pl.col("class_id").cast(pl.Int32), "aspect_lo", "aspect_hi"),
            on="class_id",
            how="left",
        )
        .with_columns(
            (~finite | (pl.col("x2") <= pl.col("x1")) | (pl.col("y2") <= pl.col("y1"))).alias("degenerate"),
            geo.aspect().alias("aspect"),
            pl.when(known).then(geo.area_pct()).otherwise(None).alias("area_pct"),
            pl.when(known)
            .then(geo.border_contact(params.border))
            .otherwise(0)
            .cast(pl.Int64)
            .alias("border"),
        )
        .with_columns(
            (
                ~pl.col("degenerate")
                & ((pl.col("aspect") < pl.col("aspect_lo")) | (pl.col("aspect") > pl.col("aspect_hi")))
            )
            .fill_null(False)
            .alias("disproportional"),
            (pl.col("border") > 0).alias("at_border"),
            (pl.col("score") < params.min_score).fill_null(False).alias("low_score"),
            (~pl.col("degenerate") & (pl.col("area_pct") < params.min_pct))
            .fill_null(False)
            .alias("too_small"),
            (pl.col("area_pct") > params.max_pct).fill_null(False).alias("too_large"),
        )
    )
    bits = [pl.col(name).cast(pl.Int64) * bit for name, bit in FLAGS.items()]
    return lf.with_columns(pl.sum_horizontal(bits).alias("flags"))


@dataclass
class QualityResult:
    """What :func:`quality_run` stored: counts per class and flag, and the ranges used."""

    run: str
    detections: int
    flagged: int
    params: QualityParams
    counts: list[dict[str, Any]] = field(default_factory=list)
    ranges: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "detections": self.detections,
            "flagged": self.flagged,
            "params": asdict(self.params),
            "counts": self.counts,
            "aspect_ranges": self.ranges,
            "warnings": self.warnings,
        }


def _aspect_ranges(ws: Workspace, set_labels: pl.DataFrame | None, params: QualityParams) -> pl.DataFrame:
    """Each class's aspect range: the workspace's configured one, else one learned from ``set_labels``."""
    learned = (
        learn_aspects(set_labels, params)
        if set_labels is not None
        else pl.DataFrame(
            schema={
                "class_id": pl.Int32,
                "aspect_lo": pl.Float64,
                "aspect_hi": pl.Float64,
                "support": pl.UInt32,
                "source": pl.String,
            }
        )
    )
    config = configured_aspects(ws)
    return pl.concat(
        [config.with_columns(pl.lit(None, pl.UInt32).alias("support")).select(learned.columns), learned]
    ).unique("class_id", keep="first", maintain_order=True)


def _store_flags(
    store: Store, rid: int, q: pl.DataFrame, from_set: str | None, params: QualityParams
) -> None:
    """The flags of every detection of run ``rid`` in the store, in place of earlier ones, with the parameters."""
    rows = q.select(
        pl.lit(rid, pl.Int64).alias("run_id"),
        pl.col("id").alias("det_id"),
        "flags",
        *(pl.col(c).cast(pl.Int64) for c in FLAGS),
        "aspect",
        "aspect_lo",
        "aspect_hi",
        "area_pct",
        "border",
    )
    with store.bulk() as tx:
        tx.execute("DELETE FROM det_quality WHERE run_id = ?", (rid,))
        tx.execute("DELETE FROM quality_params WHERE run_id = ?", (rid,))
        tx.ingest("det_quality", rows)
        tx.execute(
            "INSERT INTO quality_params(run_id, created, params) VALUES (?, ?, ?)",
            (rid, utcnow(), json.dumps({"from_set": from_set, **asdict(params)})),
        )


def _class_counts(q: pl.DataFrame, names: pl.DataFrame) -> pl.DataFrame:
    """Per class: detections, those flagged, and the count of each flag."""
    flag_cols = list(FLAGS)
    return (
        q.group_by("class_id")
        .agg(
            pl.len().alias("detections"),
            (pl.col("flags") > 0).sum().alias("flagged"),
            *(pl.col(c).sum() for c in flag_cols),
        )
        .join(names, on="class_id", how="left")
        .with_columns(pl.col("class").fill_null(pl.format("class {}", pl.col("class_id"))))
        .sort("class_id")
        .select("class", "detections", "flagged", *flag_cols)
    )


def quality_run(
    ws: Workspace,
    run: str,
    *,
    from_set: str | None = None,
    min_score: float | None = None,
    min_pct: float | None = None,
    max_pct: float | None = None,
    border: float | None = None,
    quantiles: tuple[float, float] | None = None,
    min_support: int | None = None,
    min_ratio: float | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> QualityResult:
    """Compute and store the quality flags of every detection of ``run`` (replacing earlier ones)."""
    params = resolve_params(
        ws,
        min_score=min_score,
        min_pct=min_pct,
        max_pct=max_pct,
        border=border,
        quantiles=quantiles,
        min_support=min_support,
        min_ratio=min_ratio,
    )
    store = ws.store
    rid = store.run_id(run)
    reporter = Reporter("quality", progress, cancel)
    job_params = {"run": run, "from_set": from_set, **asdict(params)}
    with job(store, "quality", job_params) as j:
        set_labels = store.read_labels(from_set) if from_set is not None else None
        ranges = _aspect_ranges(ws, set_labels, params)
        reporter.check()
        dets = store.read_detections(run)
        sizes = store.read_frame(
            "SELECT id AS item_id, width AS img_w, height AS img_h FROM items WHERE id IN "
            "(SELECT item_id FROM run_images WHERE run_id = ?)",
            (rid,),
            {"item_id": pl.Int64, "img_w": pl.Int64, "img_h": pl.Int64},
        )
        warnings = (
            _learning_warnings(
                aspect_support(set_labels),
                ranges,
                set(dets["class_id"].unique().cast(pl.Int64).to_list()),
                from_set,
                params,
                list(ws.classes),
            )
            if set_labels is not None and from_set is not None
            else []
        )
        reporter.update(dets.height, "flagging", total=dets.height)
        q = quality_frame(dets.lazy().join(sizes.lazy(), on="item_id", how="left"), ranges, params).collect()
        _store_flags(store, rid, q, from_set, params)
        names = pl.DataFrame(
            {"class_id": list(range(len(ws.classes))), "class": ws.classes},
            schema={"class_id": pl.Int32, "class": pl.String},
        )
        result = QualityResult(
            run=run,
            detections=q.height,
            flagged=int((q["flags"] > 0).sum()),
            params=params,
            counts=_class_counts(q, names).to_dicts(),
            ranges=ranges.join(names, on="class_id", how="left")
            .sort("class_id")
            .select("class", "aspect_lo", "aspect_hi", "support", "source")
            .to_dicts(),
            warnings=warnings,
        )
        j.result = {"detections": result.detections, "flagged": result.flagged}
        reporter.update(q.height, "done", force=True)
    return result
