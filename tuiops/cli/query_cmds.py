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
def query_cmd(sql: str, fmt: str, output: str | None, limit: int | None) -> None:
    """Run a read-only SQL query over the store (views: v_images, v_labels, v_detections).

    \b
    Examples:
      tuiops query "SELECT class, count(*) FROM v_labels GROUP BY class"
      tuiops query "SELECT * FROM v_detections WHERE score < 0.3" --format xlsx -o low.xlsx
    """
    from tuiops.ops.query import run_query, write_result

    ws = get_workspace()
    frame = run_query(ws, sql)
    text = write_result(frame, fmt, output, limit=limit)
    if text is not None:
        click.echo(text, nl=not text.endswith("\n"))
