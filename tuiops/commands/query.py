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
        "timeout",
        ("--timeout",),
        type=FloatRange(min=0, min_open=True),
        default=300.0,
        show_default=True,
        help="Stop the query after this many seconds (Ctrl+C cancels it any time).",
    ),
)
def query_cmd(
    ctx: CommandContext, sql: str, fmt: str, output: str | None, limit: int | None, timeout: float
) -> Result:
    """Run a read-only SQL query over the store (views: v_images, v_labels, v_detections).

    The query may only read: ATTACH, VACUUM, load_extension, writes and pragmas that set a
    value are refused (exit 2 for a write, 4 for the rest). It stops at --timeout (exit 4);
    Ctrl+C cancels it (exit 130).

    \b
    Examples:
      tuiops query "SELECT class, count(*) FROM v_labels GROUP BY class"
      tuiops query "SELECT * FROM v_detections WHERE score < 0.3" --format xlsx -o low.xlsx
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
    frame = run_query(ws, sql, limits=limits)
    text = write_result(frame, fmt, output, limit=limit)
    return Result(None, text, raw=True)
