"""Analysis commands: `tuiops nms`, `quality`, `join`, `similar`, `dupes`, built from their
descriptions in :mod:`tuiops.commands.analysis`."""

from __future__ import annotations

from tuiops.cli import cli
from tuiops.cli.build import add

for _name in ("nms", "quality", "join", "similar", "dupes"):
    add(cli, _name)
