"""`tuiops match`, `tuiops eval` and `tuiops compare`: built from their descriptions in :mod:`tuiops.commands.engine`."""

from __future__ import annotations

from tuiops.cli import cli
from tuiops.cli.build import add

add(cli, "match")
add(cli, "eval")
add(cli, "compare")
