"""Migrations of the analysis tables (NMS flags, quality, joins) (appended after the core migrations).

- ``det_sources``: for a run made by NMS or a merge, the run and detection each kept
  box was copied from.
- ``label_flags``: flags on labels of a set (``duplicate``, ``class_conflict`` from
  ``tuiops nms --set … --dedupe``), naming the other label and their IoU.
- ``det_quality`` (+ ``quality_params``): per-detection quality flags of a run, as a
  bitmask plus readable columns (see :mod:`tuiops.ops.quality`).
- ``joins`` / ``joined_objects`` / ``joined_members``: named joins of part detections
  (head, upper body, lower body, …) into one object per character (see
  :mod:`tuiops.ops.join`).

Detection and label ids can be reused by SQLite after a run or set is deleted, so
triggers delete the rows that belong to a deleted run, set or join.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0200_analysis",
        """
        CREATE TABLE det_sources (
            run_id INTEGER NOT NULL,
            det_id INTEGER NOT NULL,
            source_run_id INTEGER,
            source_run TEXT,
            source_det_id INTEGER,
            PRIMARY KEY (run_id, det_id)
        ) WITHOUT ROWID;
        CREATE TABLE label_flags (
            set_id INTEGER NOT NULL,
            label_id INTEGER NOT NULL,
            flag TEXT NOT NULL,
            other_label_id INTEGER,
            iou REAL,
            PRIMARY KEY (set_id, label_id, flag)
        ) WITHOUT ROWID;
        CREATE TABLE det_quality (
            run_id INTEGER NOT NULL,
            det_id INTEGER NOT NULL,
            flags INTEGER NOT NULL,
            disproportional INTEGER NOT NULL,
            at_border INTEGER NOT NULL,
            low_score INTEGER NOT NULL,
            too_small INTEGER NOT NULL,
            too_large INTEGER NOT NULL,
            degenerate INTEGER NOT NULL,
            aspect REAL,
            aspect_lo REAL,
            aspect_hi REAL,
            area_pct REAL,
            border INTEGER NOT NULL,
            PRIMARY KEY (run_id, det_id)
        ) WITHOUT ROWID;
        CREATE INDEX det_quality_flags ON det_quality(run_id, flags);
        CREATE TABLE quality_params (
            run_id INTEGER PRIMARY KEY,
            created TEXT NOT NULL,
            params TEXT NOT NULL
        );
        CREATE TABLE joins (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            run_id INTEGER NOT NULL,
            parts TEXT NOT NULL,
            margin REAL NOT NULL,
            created TEXT NOT NULL,
            params TEXT
        );
        CREATE TABLE joined_objects (
            id INTEGER PRIMARY KEY,
            join_id INTEGER NOT NULL,
            item_id INTEGER NOT NULL,
            x1 REAL NOT NULL,
            y1 REAL NOT NULL,
            x2 REAL NOT NULL,
            y2 REAL NOT NULL,
            members INTEGER NOT NULL,
            parts_mask INTEGER NOT NULL,
            score REAL NOT NULL,
            min_score REAL NOT NULL,
            member_ids TEXT NOT NULL
        );
        CREATE INDEX joined_objects_join_item ON joined_objects(join_id, item_id);
        CREATE TABLE joined_members (
            join_id INTEGER NOT NULL,
            det_id INTEGER NOT NULL,
            object_id INTEGER NOT NULL,
            part INTEGER NOT NULL,
            PRIMARY KEY (join_id, det_id)
        ) WITHOUT ROWID;
        CREATE INDEX joined_members_object ON joined_members(object_id);
        CREATE TRIGGER runs_analysis_cleanup AFTER DELETE ON runs BEGIN
            DELETE FROM det_sources WHERE run_id = OLD.id;
            DELETE FROM det_quality WHERE run_id = OLD.id;
            DELETE FROM quality_params WHERE run_id = OLD.id;
            DELETE FROM joins WHERE run_id = OLD.id;
        END;
        CREATE TRIGGER joins_cleanup AFTER DELETE ON joins BEGIN
            DELETE FROM joined_members WHERE join_id = OLD.id;
            DELETE FROM joined_objects WHERE join_id = OLD.id;
        END;
        CREATE TRIGGER label_sets_analysis_cleanup AFTER DELETE ON label_sets BEGIN
            DELETE FROM label_flags WHERE set_id = OLD.id;
        END;
        CREATE VIEW v_det_quality AS
            SELECT r.name AS run, i.key, q.det_id, d.item_id, c.name AS class, d.score, q.flags,
                   q.disproportional, q.at_border, q.low_score, q.too_small, q.too_large, q.degenerate,
                   q.aspect, q.aspect_lo, q.aspect_hi, q.area_pct, q.border,
                   d.x1, d.y1, d.x2, d.y2
            FROM det_quality q
            JOIN detections d ON d.id = q.det_id
            JOIN runs r ON r.id = q.run_id
            JOIN items i ON i.id = d.item_id
            LEFT JOIN classes c ON c.id = d.class_id;
        CREATE VIEW v_label_flags AS
            SELECT s.name AS label_set, i.key, f.label_id, l.item_id, c.name AS class, f.flag,
                   f.other_label_id, f.iou, l.x1, l.y1, l.x2, l.y2
            FROM label_flags f
            JOIN labels l ON l.id = f.label_id
            JOIN label_sets s ON s.id = f.set_id
            JOIN items i ON i.id = l.item_id
            LEFT JOIN classes c ON c.id = l.class_id;
        CREATE VIEW v_joined_objects AS
            SELECT j.name AS join_name, r.name AS run, i.key, o.id, o.item_id, o.x1, o.y1, o.x2, o.y2,
                   o.members, o.parts_mask, o.score, o.min_score, o.member_ids
            FROM joined_objects o
            JOIN joins j ON j.id = o.join_id
            JOIN runs r ON r.id = j.run_id
            JOIN items i ON i.id = o.item_id;
        """,
    ),
]
