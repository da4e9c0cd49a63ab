"""`tuiops project mix`: several project builds into one dataset (built from its description in
:mod:`tuiops.commands.projects`)."""

from __future__ import annotations

from tuiops.cli.build import add
from tuiops.cli.project_cmds import project_group

add(project_group, "project mix")
