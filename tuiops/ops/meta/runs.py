"""The tags of a run of posts read as columns, made into index entries with polars.

What a line at a time does per post, done for the whole run at once: each post's tags
split on spaces, each tag looked up in the vocabulary, tags not in it given new ids in the
order the posts first name them, with the category the first post naming each gives (its
first ``tag_string_<category>`` field holding it), and each post's index entry (its tags'
tokens ``t<id>`` in the post's order). Tags stored without a category take the one the
first post naming them gives, as they do a line at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tuiops.ops.meta.syntax import CATEGORIES

#: The category fields of a record, in the order a tag's category is looked for.
CATEGORY_FIELDS = tuple(f"tag_string_{cat}" for cat in CATEGORIES)


@dataclass(slots=True)
class RunTags:
    """What a run's tags come to."""

    #: Each post's tokens (without its rating), its tags joined by one space, its tag count.
    toks: list[str]
    tags: list[str]
    counts: list[int]
    #: (id, name, category) of the tags new to the vocabulary, in the order posts name them.
    new_tags: list[tuple[int, str, str | None]]
    #: (category, name) of stored tags without one that this run gives one.
    categorised: list[tuple[str, str]]
    #: The stored tags without a category that this run names (whether or not it gives one).
    named: list[str]


def _exploded(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """(row, tag) for each tag of ``column``, in row order and each row's own order."""
    return (
        frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), pl.col(column).str.split(" "))
        .explode(column)
        .rename({column: "tag"})
        .filter(pl.col("tag").is_not_null() & (pl.col("tag") != ""))
    )


def _first_categories(frame: pl.DataFrame, firsts: pl.DataFrame) -> pl.DataFrame:
    """``firsts`` (``row``, ``tag``, in order) with the ``category`` its row's category fields
    give each tag (the first field naming it; null where none does)."""
    parts = [
        _exploded(frame, col).with_columns(pl.lit(k, pl.UInt8).alias("order"))
        for k, col in enumerate(CATEGORY_FIELDS)
    ]
    found = (
        firsts.select("row", "tag")
        .join(pl.concat(parts), on=["row", "tag"], how="inner")
        .group_by("tag")
        .agg(pl.col("order").min())
    )
    names = pl.Series(CATEGORIES, dtype=pl.String)
    return firsts.join(found, on="tag", how="left", maintain_order="left").with_columns(
        pl.col("order").replace_strict(list(range(len(CATEGORIES))), names, default=None).alias("category")
    )


def run_tags(
    frame: pl.DataFrame, vocab: pl.DataFrame, next_tag: int, no_category: set[str]
) -> tuple[RunTags, pl.DataFrame]:
    """The run's tags against ``vocab`` (``tag``, ``tid``); new ids from ``next_tag``. Gives
    the vocabulary with the new tags added too. ``frame`` holds ``tag_string`` and the
    category fields, one row per post, tags separated by single spaces (no space first or
    last)."""
    n = frame.height
    flat = (
        frame.select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), pl.col("tag_string").str.split(" ")
        )
        .explode("tag_string")
        .rename({"tag_string": "tag"})
        .join(vocab, on="tag", how="left", maintain_order="left")
    )
    fresh = (
        flat.filter(pl.col("tid").is_null() & (pl.col("tag") != ""))
        .select("row", "tag")
        .unique("tag", keep="first", maintain_order=True)
    )
    new_tags: list[tuple[int, str, str | None]] = []
    if not fresh.is_empty():
        fresh = fresh.with_columns(
            pl.int_range(next_tag, next_tag + fresh.height, dtype=pl.Int64).alias("tid")
        )
        cats = _first_categories(frame, fresh)
        new_tags = list(zip(*(cats.get_column(c).to_list() for c in ("tid", "tag", "category")), strict=True))
        flat = flat.join(
            fresh.select("tag", pl.col("tid").alias("new")), on="tag", how="left", maintain_order="left"
        ).select("row", "tag", pl.coalesce("tid", "new").alias("tid"))
        vocab = pl.concat([vocab, fresh.select("tag", "tid")])
    categorised: list[tuple[str, str]] = []
    named: list[str] = []
    if no_category:
        stored = pl.Series("tag", list(no_category), dtype=pl.String)
        firsts = flat.filter(pl.col("tag").is_in(stored.implode())).unique(
            "tag", keep="first", maintain_order=True
        )
        named = firsts.get_column("tag").to_list()
        given = _first_categories(frame, firsts.select("row", "tag")).drop_nulls("category")
        categorised = list(
            zip(given.get_column("category").to_list(), given.get_column("tag").to_list(), strict=True)
        )
    # Each post's tokens: the run's tokens in one text, a post's ending in a newline.
    last = pl.col("row") != pl.col("row").shift(-1, fill_value=n)
    text = flat.select(
        pl.concat_str(
            pl.when(pl.col("tid").is_null()).then(pl.lit("")).otherwise(pl.format("t{}", "tid")),
            pl.when(last).then(pl.lit("\n")).otherwise(pl.lit(" ")),
        ).str.join("")
    ).item()
    tags = frame.get_column("tag_string")
    counts = (tags.str.count_matches(" ", literal=True) + 1) * (tags != "")
    return (
        RunTags(text.split("\n")[:n], tags.to_list(), counts.to_list(), new_tags, categorised, named),
        vocab,
    )


__all__ = ["CATEGORY_FIELDS", "RunTags", "run_tags"]
