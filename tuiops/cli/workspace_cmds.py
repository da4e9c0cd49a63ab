"""Workspace commands: init, classes and demo, built from :mod:`tuiops.commands.workspace`."""

from __future__ import annotations

from tuiops.cli import cli
from tuiops.cli.build import add

add(cli, "init")


@cli.group("classes")
def classes_group() -> None:
    """Show or extend the workspace's class map (append-only: ids never change)."""


add(classes_group, "classes list")
add(classes_group, "classes add")
add(cli, "demo")
