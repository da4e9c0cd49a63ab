"""`tuiops query`: built from its description in :mod:`tuiops.commands.query`."""

from __future__ import annotations

from tuiops.cli import cli
from tuiops.cli.build import add

add(cli, "query")
