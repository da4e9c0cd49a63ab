"""`tuiops scan` and `tuiops pools`, built from their descriptions in :mod:`tuiops.commands.scan`."""

from __future__ import annotations

from tuiops.cli import cli
from tuiops.cli.build import add

add(cli, "scan")
add(cli, "pools")
