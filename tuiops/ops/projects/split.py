"""The stable train/val split of a mix, and its duplicates and leaks across projects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError

if TYPE_CHECKING:
    import polars as pl


def split_draws(projects: pl.Series, stems: pl.Series, seed: int) -> pl.Series:
    """The stable draw in [0, 1) of each image (a function of project, stem and seed only)."""
    import polars as pl

    from tuiops.ops.dataset import split_draw

    keys = pl.DataFrame({"p": projects, "s": stems}).select(pl.concat_str("p", pl.lit("/"), "s"))
    return split_draw(keys.to_series(), seed)


def dupes_and_split(
    imgs: pl.DataFrame, max_distance: int, dupes: str, strict: bool, val: float
) -> tuple[pl.DataFrame, int, int, list[dict[str, Any]]]:
    """Final splits: duplicates dropped or grouped, leaks fixed (or refused with ``strict``).

    ``imgs`` is in mix order with ``idx``, ``key``, ``phash``, ``draw``. Returns it with
    ``split``, ``reason``, ``dup_of``, ``distance``; the leak count; the count of images
    moved; the duplicate groups.
    """
    import polars as pl

    from tuiops.ops.join import connected_components
    from tuiops.ops.similar import hash_pairs

    imgs = imgs.with_columns(
        pl.when(pl.col("draw") < val).then(pl.lit("val")).otherwise(pl.lit("train")).alias("split0")
    )
    nodes = imgs.select(
        pl.col("idx").cast(pl.Int64).alias("node"), pl.col("phash").reinterpret(signed=False).alias("h")
    )
    pairs = hash_pairs(nodes, max_distance)
    comp = connected_components(pairs, nodes["node"]).rename({"node": "idx", "component": "group"})
    imgs = imgs.join(comp, on="idx", how="left").with_columns(pl.col("group").fill_null(pl.col("idx")))
    first = imgs.select(
        pl.col("idx").alias("group"),
        pl.col("key").alias("first_key"),
        pl.col("split0").alias("first_split"),
        pl.col("phash").alias("first_phash"),
    )
    imgs = imgs.join(first, on="group", how="left").with_columns(
        pl.len().over("group").alias("group_size"),
        pl.col("split0").n_unique().over("group").alias("_splits"),
        pl.col("phash").xor(pl.col("first_phash")).bitwise_count_ones().cast(pl.Int64).alias("_dist"),
    )
    multi = imgs.filter(pl.col("group_size") > 1)
    leaky = multi.filter(pl.col("_splits") > 1)
    leaks = leaky["group"].n_unique()
    groups = (
        multi.group_by("group", maintain_order=True)
        .agg(
            pl.col("first_key").first().alias("kept"),
            pl.col("key").filter(pl.col("idx") != pl.col("group")).alias("others"),
            pl.col("_dist").max().alias("max_distance"),
            pl.col("split0").unique(maintain_order=True).alias("splits"),
        )
        .drop("group")
        .to_dicts()
    )
    if strict and leaks:
        shown = "; ".join(
            f"{g['kept']} ~ {', '.join(g['others'][:3])}" for g in groups if len(g["splits"]) > 1
        )[:600]
        raise ConflictError(
            f"{leaks} group(s) of near-duplicate images (Hamming distance ≤ {max_distance}) straddle "
            f"train and val: {shown}",
            hint="drop --strict to move each group into one split, or remove the duplicates from the projects",
        )
    is_dup = (pl.col("group_size") > 1) & (pl.col("idx") != pl.col("group"))
    if dupes == "drop":
        split = pl.when(is_dup).then(pl.lit("dropped")).otherwise(pl.col("split0"))
        reason = pl.when(is_dup).then(pl.lit("duplicate")).otherwise(pl.lit(None, pl.String))
    else:
        split = pl.col("first_split")
        reason = (
            pl.when(pl.col("first_split") != pl.col("split0"))
            .then(pl.lit("leak"))
            .otherwise(pl.lit(None, pl.String))
        )
    imgs = imgs.with_columns(split.alias("split"), reason.alias("reason")).with_columns(
        pl.when(is_dup).then(pl.col("first_key")).otherwise(pl.lit(None, pl.String)).alias("dup_of"),
        pl.when(is_dup).then(pl.col("_dist")).otherwise(pl.lit(None, pl.Int64)).alias("distance"),
    )
    moved = imgs.filter(pl.col("reason") == "leak").height
    keep = [
        c for c in imgs.columns if c not in ("first_key", "first_split", "first_phash", "_splits", "_dist")
    ]
    return imgs.select(keep), leaks, moved, groups
