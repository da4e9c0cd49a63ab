"""`tuiops tui`: the terminal app (also what `tuiops` with no command opens), built from its
description in :mod:`tuiops.commands.workspace`."""

from __future__ import annotations

from tuiops.cli import cli
from tuiops.cli.build import add

add(cli, "tui")
