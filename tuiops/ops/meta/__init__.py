"""Imageboard post metadata: import (``meta import``), the booru search syntax over it and
``gather`` of samples for the next labelling cycle."""

from tuiops.ops.meta.gather import KINDS, GatherResult, gather
from tuiops.ops.meta.importer import ImportSummary, guess_format, import_meta
from tuiops.ops.meta.search import (
    CompiledQuery,
    compile_query,
    count_posts,
    items_sql,
    search_posts,
    tag_counts,
)
from tuiops.ops.meta.syntax import Query, QuerySyntaxError, parse

__all__ = [
    "KINDS",
    "CompiledQuery",
    "GatherResult",
    "ImportSummary",
    "Query",
    "QuerySyntaxError",
    "compile_query",
    "count_posts",
    "gather",
    "guess_format",
    "import_meta",
    "items_sql",
    "parse",
    "search_posts",
    "tag_counts",
]
