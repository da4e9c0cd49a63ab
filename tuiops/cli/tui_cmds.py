"""`tuiops tui`: the terminal app (also what `tuiops` with no command opens)."""

from __future__ import annotations

import click

from tuiops.cli import cli, get_workspace


@cli.command("tui")
@click.option(
    "--left",
    metavar="SOURCE",
    help="What the left panel shows: catalog, pool:NAME[/FOLDER], labels:SET, run:RUN, match:NAME "
    "or query:SQL (default: the first pool).",
)
@click.option("--right", metavar="SOURCE", help="What the right panel shows (default: the catalog).")
def tui_cmd(left: str | None, right: str | None) -> None:
    """Open the terminal app: two FAR-style panels over the workspace.

    Browse pools, label sets, runs and matches; F3 views an image with its boxes, Ctrl+Q
    opens the quick view, + selects by mask, / filters with SQL, F1 lists every key.

    \b
    Examples:
      tuiops
      tuiops tui --left pool:pool/review --right labels:master
    """
    from tuiops.app import run_app
    from tuiops.ops.browse import Spec

    for value in (left, right):
        if value:
            Spec.parse(value)
    ws = get_workspace()
    run_app(ws, left=left, right=right)
