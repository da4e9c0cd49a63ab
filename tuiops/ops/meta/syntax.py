"""The booru search syntax: one parser, one grammar, errors that point at the position.

Grammar (terms are separated by white space; a tag is any text without white space)::

    query    := term*
    term     := ['-' | '~'] (metatag | [category ':'] tag)
    category := general | artist | copyright | character | meta
    metatag  := rating ':' RATING[,RATING…]   g|s|q|e (or general, sensitive, safe, questionable, explicit)
              | score|favcount|width|height|id|tagcount|filesize ':' RANGE
              | md5 ':' HEX32 | booru ':' NAME | filetype ':' EXT | has ':' image
              | order ':' ORDER
    RANGE    := N | =N | >N | >=N | <N | <=N | A..B | ..B | A..     (integers; A..B is inclusive)
    ORDER    := id | id_desc | score | score_asc | favcount | favcount_asc
              | tagcount | tagcount_asc | width | height | random

Meaning, as on Danbooru:

* ``tag`` — the post has the tag; every plain term must hold (space is AND);
* ``-term`` — the term must not hold (a post without a score is not ``score:>10``, so it
  is ``-score:>10``);
* ``~a ~b`` — at least one of the ``~`` terms holds (all ``~`` tags of a query form one
  OR group; metatags cannot be OR-ed);
* ``*`` in a tag matches any run of characters (``*_hair``, ``long_*``, ``*girl*``); every
  other character, quotes, ``%``, ``_``, ``?`` and ``[`` included, is itself;
* ``character:saber`` — the tag ``saber`` in the category ``character`` (as the dump
  gave it; a tag whose category is unknown is in none);
* ``order:`` sorts (one at most; the default is ``id_desc``, the newest post first).

Tags are matched exactly as imported (case included; Danbooru's tags are lower case).
A name before ``:`` that is neither a category nor a metatag is part of the tag
(``re:zero``, ``:d``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tuiops.errors import InputError

CATEGORIES = ("general", "artist", "copyright", "character", "meta")

#: Numeric metatags → the column of ``meta_posts`` they compare.
NUMERIC = {
    "score": "score",
    "favcount": "fav_count",
    "width": "width",
    "height": "height",
    "id": "fid",
    "tagcount": "tag_count",
    "filesize": "file_size",
}

RATINGS = {
    "g": "g",
    "general": "g",
    "s": "s",
    "safe": "s",
    "sensitive": "s",
    "q": "q",
    "questionable": "q",
    "e": "e",
    "explicit": "e",
}

#: order: values → (column, descending).
ORDERS = {
    "id": ("fid", False),
    "id_asc": ("fid", False),
    "id_desc": ("fid", True),
    "score": ("score", True),
    "score_desc": ("score", True),
    "score_asc": ("score", False),
    "favcount": ("fav_count", True),
    "favcount_asc": ("fav_count", False),
    "tagcount": ("tag_count", True),
    "tagcount_asc": ("tag_count", False),
    "width": ("width", True),
    "height": ("height", True),
    "random": ("random", False),
}

METATAGS = ("rating", *NUMERIC, "md5", "booru", "filetype", "has", "order")

_RANGE_OP = re.compile(r"(>=|<=|>|<|=)?(-?[0-9]+)")
_RANGE_SPAN = re.compile(r"(-?[0-9]+)?\.\.(-?[0-9]+)?")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


class QuerySyntaxError(InputError):
    """A tag query the grammar refuses; ``position`` is the 0-based column of the fault."""

    def __init__(self, query: str, position: int, what: str) -> None:
        self.query = query
        self.position = position
        self.what = what
        caret = " " * position + "^"
        super().__init__(
            f"tag query: {what} at column {position + 1}\n  {query}\n  {caret}",
            hint="tags are separated by spaces; -tag excludes, ~a ~b is a OR b, * matches "
            "any text, metatags: " + ", ".join(f"{m}:" for m in METATAGS),
        )


@dataclass(frozen=True)
class TagTerm:
    """A tag (or tag pattern with ``*``), optionally limited to one category."""

    pattern: str
    category: str | None
    pos: int

    @property
    def wildcard(self) -> bool:
        return "*" in self.pattern


@dataclass(frozen=True)
class MetaTerm:
    """A metatag condition on a post's column: ``op`` is one of ``in`` (values), ``=``,
    ``>``, ``>=``, ``<``, ``<=``, ``between`` (two values, inclusive) or ``has``."""

    name: str
    op: str
    values: tuple[object, ...]
    pos: int


@dataclass
class Query:
    """A parsed query: what must hold, what must not, the OR group and the order."""

    text: str
    must: list[TagTerm] = field(default_factory=list)
    must_not: list[TagTerm] = field(default_factory=list)
    any_of: list[TagTerm] = field(default_factory=list)
    meta: list[MetaTerm] = field(default_factory=list)
    meta_not: list[MetaTerm] = field(default_factory=list)
    order: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.must or self.must_not or self.any_of or self.meta or self.meta_not)


def _tokens(text: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group()) for m in re.finditer(r"\S+", text)]


def _parse_range(query: str, pos: int, value: str) -> tuple[str, tuple[object, ...]]:
    m = _RANGE_OP.fullmatch(value)
    if m:
        return (m.group(1) or "="), (int(m.group(2)),)
    m = _RANGE_SPAN.fullmatch(value)
    if m and (m.group(1) is not None or m.group(2) is not None):
        lo, hi = m.group(1), m.group(2)
        if lo is None:
            return "<=", (int(hi),)
        if hi is None:
            return ">=", (int(lo),)
        return "between", (int(lo), int(hi))
    raise QuerySyntaxError(query, pos, f"{value!r} is not a number or range (10, >10, >=10, <10, 5..20)")


def _parse_meta(query: str, pos: int, name: str, value: str) -> MetaTerm:
    vpos = pos + len(name) + 1
    if value == "":
        raise QuerySyntaxError(query, vpos, f"{name}: needs a value")
    if name == "rating":
        letters: list[str] = []
        at = vpos
        for part in value.split(","):
            if part.lower() not in RATINGS:
                raise QuerySyntaxError(query, at, f"{part!r} is not a rating (g, s, q, e)")
            letters.append(RATINGS[part.lower()])
            at += len(part) + 1
        return MetaTerm("rating", "in", tuple(dict.fromkeys(letters)), pos)
    if name in NUMERIC:
        op, values = _parse_range(query, vpos, value)
        return MetaTerm(name, op, values, pos)
    if name == "md5":
        if not _HEX32.fullmatch(value):
            raise QuerySyntaxError(query, vpos, f"{value!r} is not an md5 (32 hexadecimal digits)")
        return MetaTerm("md5", "=", (value.lower(),), pos)
    if name == "booru":
        return MetaTerm("booru", "=", (value.lower(),), pos)
    if name == "filetype":
        return MetaTerm("filetype", "=", (value.lower().lstrip("."),), pos)
    if name == "has":
        if value != "image":
            raise QuerySyntaxError(query, vpos, f"has:{value} is not known (has:image)")
        return MetaTerm("has", "has", ("image",), pos)
    raise AssertionError(name)  # pragma: no cover - METATAGS lists every name handled


def parse(text: str) -> Query:
    """Parse a booru search query; raises :class:`QuerySyntaxError` naming the column."""
    q = Query(text)
    for pos, tok in _tokens(text):
        sign = ""
        body, at = tok, pos
        if tok[0] in "-~":
            sign, body, at = tok[0], tok[1:], pos + 1
            if body == "":
                raise QuerySyntaxError(text, pos, f"'{sign}' needs a tag after it")
            if body[0] in "-~":
                raise QuerySyntaxError(text, at, f"'{sign}{body[0]}': one of - or ~ per term")
        name, colon, value = body.partition(":")
        lname = name.lower()
        if colon and lname == "order":
            if sign:
                raise QuerySyntaxError(text, pos, f"order: cannot take '{sign}'")
            if value not in ORDERS:
                raise QuerySyntaxError(text, at + 6, f"{value!r} is not an order ({', '.join(ORDERS)})")
            if q.order is not None:
                raise QuerySyntaxError(text, pos, "one order: per query")
            q.order = value
            continue
        if colon and lname in METATAGS:
            if sign == "~":
                raise QuerySyntaxError(text, pos, f"{lname}: cannot be OR-ed with '~'")
            term = _parse_meta(text, at, lname, value)
            (q.meta_not if sign == "-" else q.meta).append(term)
            continue
        category = None
        if colon and lname in CATEGORIES:
            if value == "":
                raise QuerySyntaxError(text, at + len(name) + 1, f"{lname}: needs a tag")
            category, body, at = lname, value, at + len(name) + 1
        tag = TagTerm(body, category, at)
        {"": q.must, "-": q.must_not, "~": q.any_of}[sign].append(tag)
    return q


def glob_pattern(pattern: str) -> str:
    """The SQLite GLOB pattern of a tag pattern: ``*`` stays, ``?`` and ``[`` are literal."""
    out = []
    for ch in pattern:
        if ch == "?":
            out.append("[?]")
        elif ch == "[":
            out.append("[[]")
        else:
            out.append(ch)
    return "".join(out)


__all__ = [
    "CATEGORIES",
    "METATAGS",
    "NUMERIC",
    "ORDERS",
    "RATINGS",
    "MetaTerm",
    "Query",
    "QuerySyntaxError",
    "TagTerm",
    "glob_pattern",
    "parse",
]
