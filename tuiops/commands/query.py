"""`tuiops query`: read-only SQL over the store, printed or exported."""

from __future__ import annotations

import sys

from tuiops.commands import Choice, CommandContext, FloatRange, Int, Param, PathType, Result, command


def _slow() -> None:
    print("tuiops: query running… (Ctrl+C cancels)", file=sys.stderr, flush=True)


@command(
    "query",
    Param("sql", required=True),
    Param(
        "fmt",
        ("--format",),
        type=Choice(("table", "csv", "json", "parquet", "xlsx")),
        default="table",
        show_default=True,
        help="Output format; parquet and xlsx need --output.",
    ),
    Param(
        "output",
        ("-o", "--output"),
        type=PathType(dir_okay=False),
        help="Write to this file instead of stdout.",
    ),
    Param("limit", ("--limit",), type=Int(), help="Print at most this many rows (table format)."),
    Param(
        "write",
        ("--write",),
        is_flag=True,
        help="Also create, fill, change and drop your own tables, views, indexes and triggers "
        "in the user schema (user.NAME, the file user.db beside the store); the store stays read-only.",
    ),
    Param(
        "timeout",
        ("--timeout",),
        type=FloatRange(min=0, min_open=True),
        default=300.0,
        show_default=True,
        help="Stop the query after this many seconds (Ctrl+C cancels it any time).",
    ),
)
def query_cmd(
    ctx: CommandContext,
    sql: str,
    fmt: str,
    output: str | None,
    limit: int | None,
    write: bool,
    timeout: float,
) -> Result:
    """Run a SQL query over the store (views: v_images, v_labels, v_detections).

    The query may only read the store: ATTACH, VACUUM, load_extension, writes and pragmas
    that set a value are refused (exit 2 for a write, 4 for the rest). It sees your own
    tables (user.NAME, in user.db beside the store) and the views of [views] in
    tuiops.toml. With --write it may create, fill, change and drop objects of the user
    schema, never the store's (a view or trigger in user.db sees only user.db's tables:
    views over the store go in tuiops.toml). It stops at --timeout (exit 4); Ctrl+C
    cancels it (exit 130).

    \b
    Examples:
      tuiops query "SELECT class, count(*) FROM v_labels GROUP BY class"
      tuiops query "SELECT * FROM v_detections WHERE score < 0.3" --format xlsx -o low.xlsx
      tuiops query --write "CREATE TABLE user.flags(key TEXT PRIMARY KEY, flag TEXT)"
      tuiops query --write "INSERT INTO user.flags SELECT key, 'tiny' FROM v_images WHERE width < 64"
      tuiops select --view flags --where "pool = 'main'"
    """
    from tuiops.ops.query import run_query, write_result
    from tuiops.ops.usersql import Limits

    ws = ctx.workspace
    limits = Limits(
        timeout=timeout,
        sigint=True,
        on_slow=_slow,
        timeout_hint="give it more time with --timeout SECONDS, or narrow the query",
    )
    frame = run_query(ws, sql, limits=limits, write=write)
    text = write_result(frame, fmt, output, limit=limit)
    return Result(None, text, raw=True)
