"""Dataset projects: `tuiops project …` (new, build, list, show), built from their descriptions in
:mod:`tuiops.commands.projects`."""

from __future__ import annotations

from tuiops.cli import cli
from tuiops.cli.build import add


@cli.group("project")
def project_group() -> None:
    """Dataset projects: master images and VOC annotations plus an augmentation script.

    A project lives in projects/NAME/ of the workspace; a build runs its augmentation
    (here or on a host over SSH) into projects/NAME/build/, and a mix joins the builds
    of several projects into one VOC, YOLO or COCO dataset.
    """


for _name in ("new", "build", "list", "show", "examples", "clean", "label"):
    add(project_group, ("project", _name))
