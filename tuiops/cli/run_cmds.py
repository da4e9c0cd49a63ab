"""`tuiops run SCRIPT` and `tuiops runs list|show`: headless scripts of tuiops commands, built
from their descriptions in :mod:`tuiops.script.commands`."""

from __future__ import annotations

import tuiops.script.commands  # noqa: F401  (registers run and runs list|show)
from tuiops.cli import cli
from tuiops.cli.build import add

add(cli, "run")


@cli.group("runs")
def runs_group() -> None:
    """Recorded script runs: list them, show one with its steps, outputs and logs."""


add(runs_group, "runs list")
add(runs_group, "runs show")
