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
    #: (id, name, category) of the tags new to the vocabulary, in the order posts name them,
    #: and their tokens.
    new_tags: list[tuple[int, str, str | None]]
    new_toks: list[str]
    #: (category, name) of stored tags without one that this run gives one.
    categorised: list[tuple[str, str]]
    #: The stored tags without a category that this run names (whether or not it gives one).
    named: list[str]


def _first_categories(frame: pl.DataFrame, firsts: pl.DataFrame) -> pl.DataFrame:
    """``firsts`` (``row``, ``tag``, in order) with the ``category`` its row's category fields
    give each tag (the first field naming it; null where none does)."""
    rows = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), *CATEGORY_FIELDS)
    need = firsts.get_column("row").unique()
    if need.len() < frame.height // 2:
        rows = rows[need.sort()]
    parts = [
        rows.select("row", pl.col(col).str.split(" ").alias("tag"), pl.lit(k, pl.UInt8).alias("order"))
        .explode("tag")
        .filter(pl.col("tag").is_not_null() & (pl.col("tag") != ""))
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
    """The run's tags against ``vocab`` (``tag``, ``tok``: ``t<id>``); new ids from
    ``next_tag``. Gives the vocabulary with the new tags added too. ``frame`` holds
    ``tag_string`` and the category fields, one row per post, tags separated by single spaces
    (no space first or last)."""
    n = frame.height
    flat = (
        frame.select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), pl.col("tag_string").str.split(" ")
        )
        .explode("tag_string")
        .rename({"tag_string": "tag"})
    )
    flat = flat.join(vocab, on="tag", how="left", maintain_order="left")
    # the tags new to the vocabulary, in the order the posts first name them
    fresh = (
        flat.filter(pl.col("tok").is_null() & (pl.col("tag") != ""))
        .select("row", "tag")
        .unique("tag", keep="first", maintain_order=True)
    )
    new_tags: list[tuple[int, str, str | None]] = []
    new_toks: list[str] = []
    if not fresh.is_empty():
        ids = pl.int_range(next_tag, next_tag + fresh.height, dtype=pl.Int64, eager=True)
        cats = _first_categories(frame, fresh)
        new_tags = list(
            zip(ids.to_list(), *(cats.get_column(c).to_list() for c in ("tag", "category")), strict=True)
        )
        fresh = fresh.select("tag", pl.format("t{}", ids).alias("tok"))
        flat = flat.join(fresh.rename({"tok": "new"}), on="tag", how="left", maintain_order="left")
        flat = flat.select("row", "tag", pl.coalesce("tok", "new").alias("tok"))
        vocab = pl.concat([vocab, fresh])
        new_toks = fresh.get_column("tok").to_list()
    categorised: list[tuple[str, str]] = []
    named: list[str] = []
    if no_category:
        stored = pl.Series("tag", list(no_category), dtype=pl.String)
        unknown = (
            flat.filter(pl.col("tag").is_in(stored.implode()))
            .select("row", "tag")
            .unique("tag", keep="first", maintain_order=True)
        )
        named = unknown.get_column("tag").to_list()
        given = _first_categories(frame, unknown).drop_nulls("category")
        categorised = list(
            zip(given.get_column("category").to_list(), given.get_column("tag").to_list(), strict=True)
        )
    # Each post's tokens: the run's tokens in one text, a post's ending in a newline.
    last = pl.col("row") != pl.col("row").shift(-1, fill_value=n)
    text = flat.select(
        pl.concat_str(
            pl.col("tok").fill_null(""), pl.when(last).then(pl.lit("\n")).otherwise(pl.lit(" "))
        ).str.join("")
    ).item()
    tags = frame.get_column("tag_string")
    counts = (tags.str.count_matches(" ", literal=True) + 1) * (tags != "")
    return (
        RunTags(
            text.split("\n")[:n], tags.to_list(), counts.to_list(), new_tags, new_toks, categorised, named
        ),
        vocab,
    )


__all__ = ["CATEGORY_FIELDS", "RunTags", "run_tags"]
