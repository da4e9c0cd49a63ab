"""`tuiops query`: read-only SQL over the store, printed or exported."""

from __future__ import annotations

import click

from tuiops.cli import cli, get_workspace


@cli.command("query")
@click.argument("sql")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet", "xlsx"]),
    default="table",
    show_default=True,
    help="Output format; parquet and xlsx need --output.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.option("--limit", type=int, default=None, help="Print at most this many rows (table format).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Stop the query after this many seconds (Ctrl+C cancels it any time).",
)
def query_cmd(sql: str, fmt: str, output: str | None, limit: int | None, timeout: float) -> None:
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

    ws = get_workspace()
    limits = Limits(
        timeout=timeout,
        sigint=True,
        on_slow=lambda: click.echo("tuiops: query running… (Ctrl+C cancels)", err=True),
        timeout_hint="give it more time with --timeout SECONDS, or narrow the query",
    )
    frame = run_query(ws, sql, limits=limits)
    text = write_result(frame, fmt, output, limit=limit)
    if text is not None:
        click.echo(text, nl=not text.endswith("\n"))
