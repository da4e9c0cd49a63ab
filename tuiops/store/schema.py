"""The store's schema, as an ordered list of migrations.

Each migration runs once, in its own transaction, and is recorded in ``migrations``.
Never edit a migration that has shipped: add a new one.

Conventions:
- Boxes are absolute pixel coordinates ``x1, y1, x2, y2`` (float) in the frame of
  the item's ``width``/``height`` (the first incarnation indexed).
- A box's id is a clustered composite key: ``(set_id << 43) | (item_id << 12) | ord``
  (``run_id`` for detections), so a set, and an image within a set, is one contiguous
  id range: bulk writes append to the table without a secondary index, and reading a
  set or one image's boxes is a range scan. ``ord`` is the box's position in its source
  file (at most 4095 boxes per image and set). ``set_id``/``run_id`` and ``item_id``
  are virtual columns derived from the id; ops filter on id ranges
  (:func:`tuiops.store.db.id_range`), which plain SQL may do too.
- ``items`` is one logical image per image key; ``files`` is one physical file.
- Perceptual hashes are 64-bit, stored as signed SQLite integers (two's complement).
- ``files.checks`` is a bit mask of what a scan has looked at: 1 header, 2 perceptual
  hash, 4 EXIF, 8 full decode; a re-scan asking for more re-probes only what lacks it.
"""

from __future__ import annotations

#: The folder part of ``files.relpath`` (``"a/b/"`` for ``"a/b/c.jpg"``, ``""`` at the pool
#: root), as indexed by ``files_folder``: a query must spell it exactly so to use the index.
FOLDER_SQL = "rtrim(relpath, replace(relpath, '/', ''))"

#: The files a folder listing shows (not those moved away or put in the trash by a file
#: operation); ``files_folder`` indexes only these, so a listing must add this term as is.
LISTED_SQL = "status NOT IN ('moved', 'trashed')"

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_core",
        """
        CREATE TABLE classes (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        );
        CREATE TABLE pools (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            root TEXT NOT NULL,
            created TEXT NOT NULL,
            scanned TEXT
        );
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            booru TEXT,
            fid INTEGER,
            width INTEGER,
            height INTEGER
        );
        CREATE INDEX items_booru_fid ON items(booru, fid);
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            pool_id INTEGER NOT NULL REFERENCES pools(id) ON DELETE CASCADE,
            relpath TEXT NOT NULL,
            relpath_raw BLOB,
            item_id INTEGER REFERENCES items(id),
            keyed INTEGER NOT NULL DEFAULT 0,
            size INTEGER,
            mtime_ns INTEGER,
            width INTEGER,
            height INTEGER,
            format TEXT,
            mode TEXT,
            phash INTEGER,
            exif TEXT,
            status TEXT NOT NULL DEFAULT 'ok',
            error TEXT,
            scanned TEXT,
            UNIQUE (pool_id, relpath)
        );
        CREATE INDEX files_item ON files(item_id);
        CREATE INDEX files_status ON files(pool_id, status);
        CREATE TABLE label_sets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL,
            source TEXT,
            format TEXT,
            note TEXT
        );
        CREATE TABLE set_images (
            set_id INTEGER NOT NULL REFERENCES label_sets(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id),
            source TEXT,
            meta TEXT,
            PRIMARY KEY (set_id, item_id)
        ) WITHOUT ROWID;
        CREATE TABLE labels (
            id INTEGER PRIMARY KEY,
            class_id INTEGER NOT NULL,
            x1 REAL NOT NULL,
            y1 REAL NOT NULL,
            x2 REAL NOT NULL,
            y2 REAL NOT NULL,
            extra TEXT,
            set_id INTEGER GENERATED ALWAYS AS (id >> 43) VIRTUAL,
            item_id INTEGER GENERATED ALWAYS AS ((id >> 12) & 2147483647) VIRTUAL
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL,
            source TEXT,
            format TEXT,
            weights TEXT,
            weights_sha256 TEXT,
            epoch INTEGER,
            conf REAL,
            iou REAL,
            params TEXT,
            note TEXT
        );
        CREATE TABLE run_images (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id),
            source TEXT,
            meta TEXT,
            PRIMARY KEY (run_id, item_id)
        ) WITHOUT ROWID;
        CREATE TABLE detections (
            id INTEGER PRIMARY KEY,
            class_id INTEGER NOT NULL,
            x1 REAL NOT NULL,
            y1 REAL NOT NULL,
            x2 REAL NOT NULL,
            y2 REAL NOT NULL,
            score REAL NOT NULL,
            extra TEXT,
            run_id INTEGER GENERATED ALWAYS AS (id >> 43) VIRTUAL,
            item_id INTEGER GENERATED ALWAYS AS ((id >> 12) & 2147483647) VIRTUAL
        );
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            params TEXT,
            created TEXT NOT NULL,
            started TEXT,
            finished TEXT,
            done INTEGER NOT NULL DEFAULT 0,
            total INTEGER,
            message TEXT,
            error TEXT,
            result TEXT,
            pid INTEGER
        );
        CREATE INDEX jobs_status ON jobs(status);
        CREATE TABLE revisions (
            id INTEGER PRIMARY KEY,
            set_id INTEGER NOT NULL REFERENCES label_sets(id) ON DELETE CASCADE,
            created TEXT NOT NULL,
            source TEXT,
            note TEXT,
            changes TEXT
        );
        """,
    ),
    (
        "0002_views",
        """
        CREATE VIEW v_labels AS
            SELECT l.id, s.name AS label_set, i.key, i.booru, i.fid, l.item_id, l.class_id,
                   c.name AS class, l.x1, l.y1, l.x2, l.y2,
                   (l.x2 - l.x1) AS w, (l.y2 - l.y1) AS h,
                   (l.x2 - l.x1) * (l.y2 - l.y1) AS area,
                   i.width AS img_w, i.height AS img_h
            FROM labels l
            JOIN label_sets s ON s.id = l.set_id
            JOIN items i ON i.id = l.item_id
            LEFT JOIN classes c ON c.id = l.class_id;
        CREATE VIEW v_detections AS
            SELECT d.id, r.name AS run, i.key, i.booru, i.fid, d.item_id, d.class_id,
                   c.name AS class, d.score, d.x1, d.y1, d.x2, d.y2,
                   (d.x2 - d.x1) AS w, (d.y2 - d.y1) AS h,
                   (d.x2 - d.x1) * (d.y2 - d.y1) AS area,
                   i.width AS img_w, i.height AS img_h
            FROM detections d
            JOIN runs r ON r.id = d.run_id
            JOIN items i ON i.id = d.item_id
            LEFT JOIN classes c ON c.id = d.class_id;
        CREATE VIEW v_images AS
            SELECT f.id AS file_id, p.name AS pool, f.relpath, i.key, i.booru, i.fid, f.keyed,
                   f.item_id, f.size, f.mtime_ns, f.width, f.height, f.format, f.mode,
                   f.phash, f.status, f.error, f.scanned
            FROM files f
            JOIN pools p ON p.id = f.pool_id
            LEFT JOIN items i ON i.id = f.item_id;
        """,
    ),
    (
        "0003_files_checks",
        """
        ALTER TABLE files ADD COLUMN checks INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        "0004_files_folder_index",
        f"""
        CREATE INDEX files_folder ON files(pool_id, {FOLDER_SQL}, relpath, status) WHERE {LISTED_SQL};
        """,
    ),
]


def all_migrations() -> list[tuple[str, str]]:
    """Core migrations, then those of the engine modules, in a fixed order."""
    from tuiops.store import (
        schema_analysis,
        schema_fileops,
        schema_match,
        schema_meta,
        schema_mix,
        schema_project,
        schema_scan,
        schema_script,
        schema_source,
        schema_train,
        schema_triage,
    )

    return [
        *MIGRATIONS,
        *schema_analysis.MIGRATIONS,
        *schema_match.MIGRATIONS,
        *schema_fileops.MIGRATIONS,
        *schema_train.MIGRATIONS,
        *schema_project.MIGRATIONS,
        *schema_mix.MIGRATIONS,
        *schema_script.MIGRATIONS,
        *schema_triage.MIGRATIONS,
        *schema_scan.MIGRATIONS,
        *schema_source.MIGRATIONS,
        *schema_meta.MIGRATIONS,
    ]
