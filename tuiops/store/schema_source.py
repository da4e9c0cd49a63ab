"""Migrations of a label set's and a run's source record (appended after the engine migrations).

``label_sets.meta`` and ``runs.meta`` hold JSON about the file a set or run was imported
from, beyond its boxes and images: for COCO, ``{"coco": {"categories": [...],
"info": ..., "licenses": ...}}`` as written in the file, so an export gives the
categories back with their own ids (the images keep theirs in ``set_images.meta``, the
annotations in each box's ``extra``).

A label keeps its COCO ``area`` and ``iscrowd`` as written in ``extra``; the numbers are
also in the columns ``coco_area`` and ``coco_iscrowd`` where an import had them as JSON
numbers, so an evaluation reads them without parsing JSON per row. A label stored without
them (an older store, an edit that writes ``extra`` only) has them null there, and its
``extra`` is read instead.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0810_source_meta",
        """
        ALTER TABLE label_sets ADD COLUMN meta TEXT;
        ALTER TABLE runs ADD COLUMN meta TEXT;
        """,
    ),
    (
        "0820_label_coco_columns",
        """
        ALTER TABLE labels ADD COLUMN coco_area REAL;
        ALTER TABLE labels ADD COLUMN coco_iscrowd INTEGER;
        """,
    ),
]
