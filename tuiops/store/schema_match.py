"""Migrations of the match tables (appended after the core migrations).

``matches`` names one comparison of a label set with a detection run and its
parameters. ``match_objects`` has one row per compared object; like the box tables its
id is a clustered composite key, ``(match_id << 44) | (item_id << 13) | ord``, so one
match, and one image within it, is a contiguous id range (``ord`` is the label's
position in its source file for rows that own a label — tp, loc, cls, fn — and 4096 +
the detection's position for rows that own only a detection — dup, fp).
``match_images`` has one row per compared image. ``worst_rank`` (1 = worst) is set for
the first rows of each split (and, for objects, each category) in the documented order
and indexed, so the worst rows are a short index range; it is NULL past that.
An object's category is stored as its ``code`` (the position in
``tuiops.ops.match.CATEGORIES``: tp, loc, cls, dup, fp, fn) and read as the virtual
column ``category``.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0100_match",
        """
        CREATE TABLE matches (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            set_id INTEGER,
            run_id INTEGER,
            set_name TEXT NOT NULL,
            run_name TEXT NOT NULL,
            iou REAL NOT NULL,
            low REAL NOT NULL,
            conf REAL NOT NULL,
            created TEXT NOT NULL,
            counts TEXT
        );
        CREATE TABLE match_objects (
            id INTEGER PRIMARY KEY,
            label_id INTEGER,
            det_id INTEGER,
            class_id INTEGER,
            det_class_id INTEGER,
            category TEXT NOT NULL,
            iou REAL,
            score REAL,
            cost REAL NOT NULL,
            worst_rank INTEGER,
            match_id INTEGER GENERATED ALWAYS AS (id >> 44) VIRTUAL,
            item_id INTEGER GENERATED ALWAYS AS ((id >> 13) & 2147483647) VIRTUAL
        );
        CREATE INDEX match_objects_worst ON match_objects(match_id, category, worst_rank)
            WHERE worst_rank IS NOT NULL;
        CREATE TABLE match_images (
            match_id INTEGER NOT NULL,
            item_id INTEGER NOT NULL,
            split TEXT,
            n_labels INTEGER NOT NULL,
            n_dets INTEGER NOT NULL,
            tp INTEGER NOT NULL,
            fp INTEGER NOT NULL,
            fn INTEGER NOT NULL,
            loc INTEGER NOT NULL,
            cls INTEGER NOT NULL,
            dup INTEGER NOT NULL,
            precision REAL NOT NULL,
            recall REAL NOT NULL,
            f1 REAL NOT NULL,
            cost REAL NOT NULL,
            worst_cost REAL NOT NULL,
            worst_rank INTEGER,
            PRIMARY KEY (match_id, item_id)
        ) WITHOUT ROWID;
        CREATE INDEX match_images_worst ON match_images(match_id, worst_rank)
            WHERE worst_rank IS NOT NULL;
        CREATE VIEW v_match_images AS
            SELECT m.name AS match, i.key, mi.item_id, mi.split, mi.n_labels, mi.n_dets,
                   mi.tp, mi.fp, mi.fn, mi.loc, mi.cls, mi.dup, mi.precision, mi.recall, mi.f1,
                   mi.cost, mi.worst_cost, mi.worst_rank, i.width AS img_w, i.height AS img_h
            FROM match_images mi
            JOIN matches m ON m.id = mi.match_id
            JOIN items i ON i.id = mi.item_id;
        CREATE VIEW v_match_objects AS
            SELECT m.name AS match, i.key, o.item_id, mi.split, o.category, o.cost, o.iou, o.score,
                   o.class_id, cl.name AS class, o.det_class_id, cd.name AS det_class,
                   o.label_id, o.det_id, o.worst_rank, o.id
            FROM match_objects o
            JOIN matches m ON m.id = o.match_id
            JOIN items i ON i.id = o.item_id
            LEFT JOIN match_images mi ON mi.match_id = o.match_id AND mi.item_id = o.item_id
            LEFT JOIN classes cl ON cl.id = o.class_id
            LEFT JOIN classes cd ON cd.id = o.det_class_id;
        """,
    ),
    (
        "0101_match_codes",
        """
        CREATE TABLE match_objects_coded (
            id INTEGER PRIMARY KEY,
            label_id INTEGER,
            det_id INTEGER,
            class_id INTEGER,
            det_class_id INTEGER,
            code INTEGER NOT NULL,
            iou REAL,
            score REAL,
            cost REAL NOT NULL,
            worst_rank INTEGER,
            match_id INTEGER GENERATED ALWAYS AS (id >> 44) VIRTUAL,
            item_id INTEGER GENERATED ALWAYS AS ((id >> 13) & 2147483647) VIRTUAL,
            category TEXT GENERATED ALWAYS AS (
                CASE code WHEN 0 THEN 'tp' WHEN 1 THEN 'loc' WHEN 2 THEN 'cls'
                          WHEN 3 THEN 'dup' WHEN 4 THEN 'fp' WHEN 5 THEN 'fn' END
            ) VIRTUAL
        );
        INSERT INTO match_objects_coded(id, label_id, det_id, class_id, det_class_id, code, iou, score, cost,
                                        worst_rank)
            SELECT id, label_id, det_id, class_id, det_class_id,
                   CASE category WHEN 'tp' THEN 0 WHEN 'loc' THEN 1 WHEN 'cls' THEN 2
                                 WHEN 'dup' THEN 3 WHEN 'fp' THEN 4 ELSE 5 END,
                   iou, score, cost, worst_rank
            FROM match_objects;
        DROP VIEW v_match_objects;
        DROP TABLE match_objects;
        ALTER TABLE match_objects_coded RENAME TO match_objects;
        CREATE INDEX match_objects_worst ON match_objects(match_id, category, worst_rank)
            WHERE worst_rank IS NOT NULL;
        CREATE VIEW v_match_objects AS
            SELECT m.name AS match, i.key, o.item_id, mi.split, o.category, o.cost, o.iou, o.score,
                   o.class_id, cl.name AS class, o.det_class_id, cd.name AS det_class,
                   o.label_id, o.det_id, o.worst_rank, o.id
            FROM match_objects o
            JOIN matches m ON m.id = o.match_id
            JOIN items i ON i.id = o.item_id
            LEFT JOIN match_images mi ON mi.match_id = o.match_id AND mi.item_id = o.item_id
            LEFT JOIN classes cl ON cl.id = o.class_id
            LEFT JOIN classes cd ON cd.id = o.det_class_id;
        """,
    ),
]
