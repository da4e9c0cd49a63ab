"""Migrations of the project-mix tables: mixed datasets, their images and pushes.

- ``project_mixes``: one row per `tuiops project mix` run that wrote its output: the
  output folder, format, projects (JSON list, in the order given), the class map (JSON
  list of names), parameters (JSON), counts, the manifest's and the tarball's SHA-256.
- ``project_mix_images``: every image of every mixed build, kept or not: its split
  (``train``, ``val`` or ``dropped``), the stable draw that chose it, its perceptual
  hash (signed 64-bit), SHA-256, object count, and why it moved or was dropped
  (``duplicate`` with ``dup_of`` = the kept image's ``project/stem``, or ``leak``);
  since 0511 its master group (``mgroup``: ``project/m:MASTER`` or ``project/i:STEM``;
  the unit the split keeps together), and the mix's ``split_table`` (JSON: images
  per project and per project and class in train and val).
- ``project_mix_pushes``: a tarball pushed to a host and verified there.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0510_mix",
        """
        CREATE TABLE project_mixes (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            out TEXT NOT NULL,
            format TEXT NOT NULL,
            projects TEXT NOT NULL,
            classes TEXT NOT NULL,
            params TEXT NOT NULL,
            images INTEGER NOT NULL,
            train INTEGER NOT NULL,
            val INTEGER NOT NULL,
            dropped INTEGER NOT NULL,
            leaks INTEGER NOT NULL,
            boxes INTEGER NOT NULL,
            manifest_sha256 TEXT NOT NULL,
            tar_path TEXT,
            tar_sha256 TEXT,
            tar_size INTEGER,
            created TEXT NOT NULL
        );
        CREATE INDEX project_mixes_out ON project_mixes(out);
        CREATE TABLE project_mix_images (
            mix_id INTEGER NOT NULL REFERENCES project_mixes(id) ON DELETE CASCADE,
            project TEXT NOT NULL,
            stem TEXT NOT NULL,
            split TEXT NOT NULL CHECK (split IN ('train', 'val', 'dropped')),
            draw REAL NOT NULL,
            phash INTEGER,
            sha256 TEXT NOT NULL,
            objects INTEGER NOT NULL,
            reason TEXT,
            dup_of TEXT,
            distance INTEGER,
            file TEXT,
            PRIMARY KEY (mix_id, project, stem)
        ) WITHOUT ROWID;
        CREATE TABLE project_mix_pushes (
            id INTEGER PRIMARY KEY,
            mix_id INTEGER REFERENCES project_mixes(id) ON DELETE SET NULL,
            host TEXT NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            resumed INTEGER NOT NULL DEFAULT 0,
            pushed TEXT NOT NULL
        );
        """,
    ),
    (
        "0511_mix_master_groups",
        """
        ALTER TABLE project_mix_images ADD COLUMN mgroup TEXT;
        ALTER TABLE project_mixes ADD COLUMN split_table TEXT;
        """,
    ),
]
