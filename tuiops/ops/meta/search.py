"""Compiling a booru search (:mod:`tuiops.ops.meta.syntax`) to SQL over the store.

Tags are resolved against ``meta_tags`` (exact names with ``=``, patterns with ``GLOB``,
the user's text always a bound parameter) to tag ids; the tag part of the query becomes one
FTS5 ``MATCH`` over the ids' tokens (``t<id>``) and the rating's (``r<letter>``), itself a
bound parameter, and each other metatag a comparison with bound values. The result is a condition on ``meta_posts AS p``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuiops.ops.meta.syntax import (
    NUMERIC,
    ORDERS,
    MetaTerm,
    Query,
    QuerySyntaxError,
    TagTerm,
    glob_pattern,
    parse,
)

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store

#: A wildcard that names more tags than this is refused (narrow the pattern).
MAX_EXPANSION = 20_000

_COLUMNS = {**NUMERIC, "rating": "rating", "booru": "booru"}


@dataclass
class CompiledQuery:
    """A condition on ``meta_posts AS p`` with its parameters, the ``ORDER BY`` and notes."""

    where: str
    params: list[Any]
    order_by: str
    warnings: list[str] = field(default_factory=list)
    #: The FTS5 expression alone, when the query is tags that must hold and nothing else
    #: (its posts are counted from the index without reading them).
    match_only: str | None = None


def _resolve(conn: sqlite3.Connection, q: Query, term: TagTerm, warnings: list[str]) -> list[int]:
    cat_sql, cat_params = ("", []) if term.category is None else (" AND category = ?", [term.category])
    if term.wildcard:
        rows = conn.execute(
            f"SELECT id FROM meta_tags WHERE name GLOB ?{cat_sql} LIMIT ?",
            [glob_pattern(term.pattern), *cat_params, MAX_EXPANSION + 1],
        ).fetchall()
        if len(rows) > MAX_EXPANSION:
            raise QuerySyntaxError(
                q.text, term.pos, f"{term.pattern!r} matches more than {MAX_EXPANSION} tags; narrow it"
            )
    else:
        rows = conn.execute(
            f"SELECT id FROM meta_tags WHERE name = ?{cat_sql}", [term.pattern, *cat_params]
        ).fetchall()
    if not rows:
        what = f"{term.category} tag" if term.category else "tag"
        warnings.append(f"no {what} matches {term.pattern!r}")
    return [r[0] for r in rows]


def _any(ids: Sequence[int | str]) -> str:
    """One of tags (by id) or other index tokens (``rs``: rating s)."""
    toks = [i if isinstance(i, str) else f"t{i}" for i in dict.fromkeys(ids)]
    return toks[0] if len(toks) == 1 else "(" + " OR ".join(toks) + ")"


def _rating_tokens(term: MetaTerm) -> list[int | str]:
    return [f"r{v}" for v in term.values]


def _meta_sql(term: MetaTerm) -> tuple[str, list[Any]]:
    if term.name == "has":
        return (
            "EXISTS (SELECT 1 FROM items i JOIN files f ON f.item_id = i.id "
            "WHERE i.booru = p.booru AND i.fid = p.fid AND f.status = 'ok')",
            [],
        )
    if term.name == "md5":
        return "lower(p.md5) = ?", list(term.values)
    if term.name == "filetype":
        return "lower(p.file_ext) = ?", list(term.values)
    col = f"p.{_COLUMNS[term.name]}"
    if term.op == "in":
        return f"{col} IN ({', '.join('?' for _ in term.values)})", list(term.values)
    if term.op == "between":
        return f"{col} BETWEEN ? AND ?", list(term.values)
    return f"{col} {term.op} ?", list(term.values)


def _order_sql(order: str | None) -> str:
    col, desc = ORDERS[order or "id_desc"]
    if col == "random":
        return "random()"
    direction = "DESC" if desc else "ASC"
    return f"p.{col} {direction} NULLS LAST, p.booru, p.fid"


def compile_query(conn: sqlite3.Connection, query: str | Query) -> CompiledQuery:
    """The SQL condition of ``query`` on ``meta_posts AS p`` (tags resolved through ``conn``)."""
    q = parse(query) if isinstance(query, str) else query
    warnings: list[str] = []
    clauses: list[str] = []
    params: list[Any] = []
    positive: list[str] = []
    for term in q.must:
        ids = _resolve(conn, q, term, warnings)
        if not ids:
            return CompiledQuery("0", [], _order_sql(q.order), warnings)
        positive.append(_any(ids))
    if q.any_of:
        union = [i for term in q.any_of for i in _resolve(conn, q, term, warnings)]
        if not union:
            return CompiledQuery("0", [], _order_sql(q.order), warnings)
        positive.append(_any(union))
    negative: list[int | str] = [i for term in q.must_not for i in _resolve(conn, q, term, warnings)]
    # a post's rating is a token of its index entry too (r + the letter)
    positive += [_any(_rating_tokens(mt)) for mt in q.meta if mt.name == "rating"]
    negative += [t for mt in q.meta_not if mt.name == "rating" for t in _rating_tokens(mt)]
    match = "p.id IN (SELECT rowid FROM meta_fts WHERE meta_fts MATCH ?)"
    if positive:
        expr = "(" + " AND ".join(positive) + ")"
        if negative:
            expr += " NOT " + _any(negative)
        clauses.append(match)
        params.append(expr)
    elif negative:
        clauses.append("p.id NOT IN (SELECT rowid FROM meta_fts WHERE meta_fts MATCH ?)")
        params.append(_any(negative))
    for mt in q.meta:
        if mt.name == "rating":
            continue
        sql, ps = _meta_sql(mt)
        clauses.append(f"({sql})")
        params.extend(ps)
    for mt in q.meta_not:
        if mt.name == "rating":
            continue
        sql, ps = _meta_sql(mt)
        clauses.append(f"NOT IFNULL(({sql}), 0)")
        params.extend(ps)
    only = params[0] if positive and len(clauses) == 1 else None
    return CompiledQuery(" AND ".join(clauses) or "1", params, _order_sql(q.order), warnings, only)


POST_COLUMNS = "booru, fid, rating, score, fav_count, width, height, md5, file_ext, file_size, created_at, tags, tag_count"


def search_posts(store: Store, query: str, *, limit: int | None = None) -> tuple[pl.DataFrame, CompiledQuery]:
    """The posts that ``query`` finds, in its order (``limit`` rows at most), with the compiled query."""
    with store.connection() as conn:
        c = compile_query(conn, query)
    sql = f"SELECT {POST_COLUMNS} FROM meta_posts p WHERE {c.where} ORDER BY {c.order_by}"
    params = list(c.params)
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return store.read_frame(sql, params), c


def count_posts(store: Store, query: str) -> tuple[int, CompiledQuery]:
    """How many posts ``query`` finds."""
    with store.connection() as conn:
        c = compile_query(conn, query)
        if c.match_only is not None:
            n = conn.execute(
                "SELECT count(*) FROM meta_fts WHERE meta_fts MATCH ?", (c.match_only,)
            ).fetchone()[0]
        else:
            n = conn.execute(f"SELECT count(*) FROM meta_posts p WHERE {c.where}", c.params).fetchone()[0]
    return int(n), c


def items_sql(conn: sqlite3.Connection, query: str) -> tuple[str, list[Any], list[str]]:
    """A ``SELECT item_id`` of the pool's images whose post ``query`` finds, for use as
    ``item_id IN (…)`` in a selection; its parameters and the query's warnings."""
    c = compile_query(conn, query)
    sql = (
        "SELECT i.id AS item_id FROM meta_posts p JOIN items i ON i.booru = p.booru AND i.fid = p.fid "
        f"WHERE {c.where}"
    )
    return sql, c.params, c.warnings


def tag_counts(store: Store, query: str | None = None, *, limit: int = 50) -> pl.DataFrame:
    """The most frequent tags (``tag``, ``category``, ``posts``) of all posts, or of the posts
    ``query`` finds."""
    if not query or not query.strip():
        sql = (
            "SELECT t.name AS tag, t.category, v.doc AS posts FROM meta_fts_vocab v "
            "JOIN meta_tags t ON 't' || t.id = v.term ORDER BY v.doc DESC, t.name LIMIT ?"
        )
        return store.read_frame(sql, [limit])
    import polars as pl

    with store.connection() as conn:
        c = compile_query(conn, query)
    posts = store.read_frame(f"SELECT p.tags FROM meta_posts p WHERE {c.where}", c.params)
    cats = store.read_frame("SELECT name AS tag, category FROM meta_tags")
    if posts.height == 0:
        return pl.DataFrame(schema={"tag": pl.String, "category": pl.String, "posts": pl.Int64})
    counts = (
        posts.select(pl.col("tags").str.split(" ").list.unique().alias("tag"))
        .explode("tag")
        .filter(pl.col("tag") != "")
        .group_by("tag")
        .agg(pl.len().cast(pl.Int64).alias("posts"))
    )
    return (
        counts.join(cats, on="tag", how="left")
        .select("tag", "category", "posts")
        .sort(["posts", "tag"], descending=[True, False])
        .head(limit)
    )


__all__ = [
    "MAX_EXPANSION",
    "POST_COLUMNS",
    "CompiledQuery",
    "compile_query",
    "count_posts",
    "items_sql",
    "search_posts",
    "tag_counts",
]
