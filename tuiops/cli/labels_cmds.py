"""`tuiops labels import|export|revisions|undo` and `tuiops dets import|export`: lossless label I/O,
built from their descriptions in :mod:`tuiops.commands.labels`."""

from __future__ import annotations

from tuiops.cli import cli
from tuiops.cli.build import add


@cli.group("labels")
def labels_group() -> None:
    """Import and export label sets: YOLO txt, Pascal VOC XML, COCO JSON, losslessly.

    Images are matched by image key (the label file's stem, or a COCO file_name) and
    must be in a scanned pool. Class names map to the workspace class map by name.
    """


for _name in ("import", "export", "revisions", "undo"):
    add(labels_group, ("labels", _name))


@cli.group("dets")
def dets_group() -> None:
    """Import and export detection runs (boxes with confidence and lineage)."""


for _name in ("import", "export"):
    add(dets_group, ("dets", _name))
