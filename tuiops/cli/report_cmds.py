"""`tuiops report`: PNG charts and one HTML page of a label set against a detection run, built
from its description in :mod:`tuiops.commands.report`."""

from __future__ import annotations

from tuiops.cli import cli
from tuiops.cli.build import add

add(cli, "report")
