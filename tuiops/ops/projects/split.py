"""The train/val split of a mix: by master group, stratified per project and class, with near-duplicates.

The unit of the split is a *master group*: the images a build made from one master
(``build.json``'s ``master``, or the ``MASTERSTEM__…`` name of its source); an image
made from no single master is a group of its own. A group never straddles train and
val, so augmented variants of one master cannot leak.

Near-duplicates (perceptual hash within ``max_distance`` bits) are looked for across
master groups only (variants of one master look alike by design): ``dupes="drop"``
drops the images that are near-duplicates of an earlier group's (projects in the
order given, then stems); ``dupes="group"`` keeps them and joins their groups into
one unit, so they land in one split (``strict`` refuses them instead).

The units are then drawn into val per project and per class: in the order of a
stable draw (a function of the unit's key and the seed), a unit goes to val while it
brings its classes closer to their targets without passing its project's target,
then while it brings its project closer to its target. The target of a project or a
class of ``n`` images is ``round(val × n)``, at least 1 and at most ``n − 1`` when
``n ≥ 4``; a project or class of at least 4 images left with no val image takes the
smallest unit that gives it one (and gives back the chosen unit that best restores
the targets). With single-image groups every project's val count is its target,
except where its classes of 4 or more images need more val images than that; a
project made of a few large groups is as close as its groups allow.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError

if TYPE_CHECKING:
    import polars as pl

#: A stratum of the split: ``("p", project)`` or ``("c", project, class)``.
Stratum = tuple[Hashable, ...]

#: The weight of a project's error against a class's in the second pass.
_PROJECT_WEIGHT = 1000


def split_draws(projects: pl.Series, stems: pl.Series, seed: int) -> pl.Series:
    """The stable draw in [0, 1) of each image (a function of project, stem and seed only)."""
    import polars as pl

    from tuiops.ops.dataset import split_draw

    keys = pl.DataFrame({"p": projects, "s": stems}).select(pl.concat_str("p", pl.lit("/"), "s"))
    return split_draw(keys.to_series(), seed)


def split_target(val: float, n: int) -> int:
    """How many of ``n`` images of a project or class go to val."""
    if val <= 0 or n == 0:
        return 0
    t = math.floor(val * n + 0.5)
    return min(max(t, 1), n - 1) if n >= 4 else t


@dataclass
class _Unit:
    key: str
    draw: float
    size: int
    counts: dict[Stratum, int] = field(default_factory=dict)


def _cost(v: dict[Stratum, int], t: dict[Stratum, int], unit: _Unit, *, projects: bool) -> int:
    """The change in error (val count against target) of adding ``unit`` to val."""
    d = 0
    for s, n in unit.counts.items():
        w = (_PROJECT_WEIGHT if projects else 0) if s[0] == "p" else 1
        if w:
            d += w * (abs(v[s] + n - t[s]) - abs(v[s] - t[s]))
    return d


def _fits(v: dict[Stratum, int], t: dict[Stratum, int], unit: _Unit) -> bool:
    return all(v[s] + n <= t[s] for s, n in unit.counts.items() if s[0] == "p")


def choose_val(units: list[_Unit], totals: dict[Stratum, int], val: float) -> set[str]:
    """The keys of the units drawn into val (see the module docstring)."""
    targets = {s: split_target(val, n) for s, n in totals.items()}
    v = dict.fromkeys(totals, 0)
    chosen: set[str] = set()
    order = sorted(units, key=lambda u: (u.draw, u.key))

    def move(u: _Unit, sign: int) -> None:
        (chosen.add if sign > 0 else chosen.discard)(u.key)
        for s, n in u.counts.items():
            v[s] += sign * n

    for u in order:
        if _fits(v, targets, u) and _cost(v, targets, u, projects=False) < 0:
            move(u, 1)
    for u in order:
        if u.key not in chosen and _cost(v, targets, u, projects=True) < 0:
            move(u, 1)
    for s in sorted(totals, key=lambda s: (s[0] != "p", [str(x) for x in s])):
        if targets[s] == 0 or v[s] > 0:
            continue
        options = [u for u in order if u.key not in chosen and 0 < u.counts.get(s, 0) < totals[s]]
        if options:
            u = min(options, key=lambda u: u.size)
            move(u, 1)
            _give_back(order, chosen, v, targets, totals, u, move)
    return chosen


def _give_back(
    order: list[_Unit],
    chosen: set[str],
    v: dict[Stratum, int],
    targets: dict[Stratum, int],
    totals: dict[Stratum, int],
    added: _Unit,
    move: Any,
) -> None:
    """After ``added`` went to val for a class, send back to train the chosen unit that best restores the
    targets without leaving a project, or a class of 4 or more images, that has a target with no val image."""

    def gain(w: _Unit) -> int:
        return -sum(
            (_PROJECT_WEIGHT if s[0] == "p" else 1) * (abs(v[s] - n - targets[s]) - abs(v[s] - targets[s]))
            for s, n in w.counts.items()
        )

    options = [
        w
        for w in order
        if w.key in chosen
        and w.key != added.key
        and not any(s[0] == "p" and s not in w.counts for s in added.counts)
        and all(v[s] - n > 0 or targets[s] == 0 or totals[s] < 4 for s, n in w.counts.items())
        and gain(w) > 0
    ]
    if options:
        move(max(options, key=gain), -1)


def _cross_pairs(imgs: pl.DataFrame, max_distance: int) -> pl.DataFrame:
    """Near-duplicate image pairs (``u`` < ``v``, ``distance``) whose images are of different master groups."""
    import polars as pl

    from tuiops.ops.similar import hash_pairs

    nodes = imgs.select(
        pl.col("idx").cast(pl.Int64).alias("node"), pl.col("phash").reinterpret(signed=False).alias("h")
    )
    groups = imgs.select(pl.col("idx").cast(pl.Int64), "mgroup")
    return (
        hash_pairs(nodes, max_distance)
        .join(groups.rename({"idx": "u", "mgroup": "gu"}), on="u")
        .join(groups.rename({"idx": "v", "mgroup": "gv"}), on="v")
        .filter(pl.col("gu") != pl.col("gv"))
        .select("u", "v")
    )


def _master_groups(imgs: pl.DataFrame) -> pl.DataFrame:
    """``mgroup``: the image's master group (``project/m:MASTER``, or ``project/i:STEM`` alone)."""
    import polars as pl

    own = pl.concat_str("project", pl.lit("/i:"), "stem")
    by_master = pl.concat_str("project", pl.lit("/m:"), "master")
    return imgs.with_columns(
        pl.when(pl.col("master").is_null()).then(own).otherwise(by_master).alias("mgroup")
    )


def _duplicates(
    imgs: pl.DataFrame, pairs: pl.DataFrame, dupes: str
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Images with ``group`` (their near-duplicate component's first image), ``dup_of``, ``distance``
    and ``dropped``; the duplicate groups as reported."""
    import polars as pl

    from tuiops.ops.join import connected_components

    comp = connected_components(pairs, imgs["idx"].cast(pl.Int64)).rename(
        {"node": "idx", "component": "group"}
    )
    imgs = imgs.join(comp, on="idx", how="left").with_columns(pl.col("group").fill_null(pl.col("idx")))
    first = imgs.select(
        pl.col("idx").alias("group"),
        pl.col("key").alias("first_key"),
        pl.col("mgroup").alias("first_mgroup"),
        pl.col("phash").alias("first_phash"),
    )
    imgs = imgs.join(first, on="group", how="left")
    is_dup = pl.col("mgroup") != pl.col("first_mgroup")
    imgs = imgs.with_columns(
        pl.when(is_dup).then(pl.col("first_key")).otherwise(pl.lit(None, pl.String)).alias("dup_of"),
        pl.when(is_dup)
        .then(pl.col("phash").xor(pl.col("first_phash")).bitwise_count_ones().cast(pl.Int64))
        .otherwise(pl.lit(None, pl.Int64))
        .alias("distance"),
        (is_dup & pl.lit(dupes == "drop")).alias("dropped"),
    )
    groups = (
        imgs.filter(pl.col("mgroup").n_unique().over("group") > 1)
        .sort("idx")
        .group_by("group", maintain_order=True)
        .agg(
            pl.col("first_key").first().alias("kept"),
            pl.col("key").filter(pl.col("dup_of").is_not_null()).alias("others"),
            pl.col("distance").max().alias("max_distance"),
        )
        .drop("group")
        .to_dicts()
    )
    return imgs.drop("first_key", "first_mgroup", "first_phash"), groups


def _unit_of(imgs: pl.DataFrame, dupes: str) -> pl.DataFrame:
    """Each master group's unit of the split (``mgroup``, ``unit``): itself, or with ``dupes="group"``
    the first of the master groups its kept near-duplicates join it to."""
    import polars as pl

    from tuiops.ops.join import connected_components

    kept = imgs.filter(~pl.col("dropped"))
    names = kept["mgroup"].unique().sort()
    ids = pl.DataFrame({"mgroup": names, "n": pl.int_range(len(names), eager=True, dtype=pl.Int64)})
    if dupes != "group":
        return ids.select("mgroup", pl.col("mgroup").alias("unit"))
    with_id = kept.select("idx", "group", "mgroup").join(ids, on="mgroup")
    edges = (
        with_id.join(with_id.select(pl.col("idx").alias("group"), pl.col("n").alias("v")), on="group")
        .filter(pl.col("n") != pl.col("v"))
        .select(pl.col("n").alias("u"), "v")
    )
    comp = connected_components(edges, ids["n"])
    return (
        ids.join(comp.rename({"node": "n"}), on="n", how="left")
        .with_columns(pl.col("mgroup").min().over("component").alias("unit"))
        .select("mgroup", "unit")
    )


def _units(kept: pl.DataFrame, image_classes: pl.DataFrame, seed: int) -> list[_Unit]:
    """The units of the split with their images per project and per class, and their draws."""
    import polars as pl

    from tuiops.ops.dataset import split_draw

    keys = kept["unit"].unique().sort()
    draws = dict(zip(keys.to_list(), split_draw(keys, seed).to_list(), strict=True))
    units: dict[str, _Unit] = {}
    per_project = kept.group_by("unit", "project").agg(pl.len()).sort("unit", "project")
    for unit, project, n in per_project.iter_rows():
        u = units.setdefault(unit, _Unit(unit, draws[unit], 0))
        u.size += n
        u.counts[("p", project)] = n
    per_class = (
        kept.select("idx", "unit", "project")
        .join(image_classes, on="idx")
        .group_by("unit", "project", "class")
        .agg(pl.len())
        .sort("unit", "project", "class")
    )
    for unit, project, cls, n in per_class.iter_rows():
        units[unit].counts[("c", project, cls)] = n
    return [units[k] for k in sorted(units)]


def _totals(kept: pl.DataFrame, image_classes: pl.DataFrame) -> dict[Stratum, int]:
    """The kept images per project and per project and class."""
    import polars as pl

    totals: dict[Stratum, int] = {}
    for project, n in kept.group_by("project").agg(pl.len()).iter_rows():
        totals[("p", project)] = n
    per_class = kept.select("idx", "project").join(image_classes, on="idx").group_by("project", "class")
    for project, cls, n in per_class.agg(pl.len()).iter_rows():
        totals[("c", project, cls)] = n
    return totals


def dupes_and_split(
    imgs: pl.DataFrame,
    image_classes: pl.DataFrame,
    seed: int,
    split_options: tuple[int, str, bool, float],
) -> tuple[pl.DataFrame, int, int, list[dict[str, Any]]]:
    """Final splits: by master group, stratified per project and class; near-duplicates dropped or grouped.

    ``imgs`` is in mix order with ``idx``, ``key``, ``project``, ``stem``, ``master``,
    ``phash``; ``image_classes`` has ``idx`` and ``class`` (one row per class an image
    holds). ``split_options``: ``(max_distance, dupes, strict, val)``. Returns ``imgs``
    with ``mgroup``, ``split``, ``reason``, ``dup_of``, ``distance``; the number of
    near-duplicate groups across master groups; the images kept in another master
    group's split; the duplicate groups.
    """
    import polars as pl

    from tuiops.ops.dataset import split_draw

    max_distance, dupes, strict, val = split_options
    imgs = _master_groups(imgs)
    imgs, groups = _duplicates(imgs, _cross_pairs(imgs, max_distance), dupes)
    if strict and groups and dupes == "group":
        shown = "; ".join(f"{g['kept']} ~ {', '.join(g['others'][:3])}" for g in groups)[:600]
        raise ConflictError(
            f"{len(groups)} group(s) of near-duplicate images (Hamming distance ≤ {max_distance}) from "
            f"different masters would straddle train and val: {shown}",
            hint="drop --strict to keep each group in one split, or remove the duplicates from the projects",
        )
    imgs = imgs.join(_unit_of(imgs, dupes), on="mgroup", how="left")
    kept = imgs.filter(~pl.col("dropped"))
    chosen = choose_val(_units(kept, image_classes, seed), _totals(kept, image_classes), val)
    split = (
        pl.when(pl.col("dropped"))
        .then(pl.lit("dropped"))
        .when(pl.col("unit").is_in(sorted(chosen)))
        .then(pl.lit("val"))
        .otherwise(pl.lit("train"))
    )
    reason = (
        pl.when(pl.col("dropped"))
        .then(pl.lit("duplicate"))
        .when(pl.col("dup_of").is_not_null())
        .then(pl.lit("near-duplicate"))
        .otherwise(pl.lit(None, pl.String))
    )
    imgs = imgs.with_columns(split.alias("split"), reason.alias("reason"), split_draw(imgs["unit"], seed))
    moved = imgs.filter(pl.col("reason") == "near-duplicate").height
    split_of = dict(zip(imgs["key"].to_list(), imgs["split"].to_list(), strict=True))
    for g in groups:
        g["splits"] = sorted({split_of[k] for k in (g["kept"], *g["others"])})
    return imgs.drop("dropped", "group", "unit"), len(groups), moved, groups


def split_table(imgs: pl.DataFrame, image_classes: pl.DataFrame, val: float) -> list[dict[str, Any]]:
    """Images per project and per project and class in train and val, with val's share and target."""
    import polars as pl

    kept = imgs.filter(pl.col("split") != "dropped").select("idx", "project", "split", "mgroup")
    with_class = kept.join(image_classes, on="idx").vstack(
        kept.with_columns(pl.lit(None, pl.String).alias("class"))
    )
    rows = (
        with_class.group_by("project", "class")
        .agg(
            pl.len().alias("images"),
            (pl.col("split") == "train").sum().alias("train"),
            (pl.col("split") == "val").sum().alias("val"),
            pl.col("mgroup").n_unique().alias("groups"),
        )
        .sort("project", "class", nulls_last=False)
    )
    order = {p: i for i, p in enumerate(imgs["project"].unique(maintain_order=True).to_list())}
    out = []
    for r in rows.iter_rows(named=True):
        n = int(r["images"])
        out.append(
            {
                "project": r["project"],
                "class": r["class"],
                "images": n,
                "train": int(r["train"]),
                "val": int(r["val"]),
                "groups": int(r["groups"]),
                "val_share": round(r["val"] / n, 4) if n else 0.0,
                "target": split_target(val, n),
            }
        )
    return sorted(out, key=lambda r: (order.get(r["project"], 0), r["class"] is not None, r["class"] or ""))
