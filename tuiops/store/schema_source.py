"""Migrations of a label set's and a run's source record (appended after the engine migrations).

``label_sets.meta`` and ``runs.meta`` hold JSON about the file a set or run was imported
from, beyond its boxes and images: for COCO, ``{"coco": {"categories": [...],
"info": ..., "licenses": ...}}`` as written in the file, so an export gives the
categories back with their own ids (the images keep theirs in ``set_images.meta``, the
annotations in each box's ``extra``).
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
]
