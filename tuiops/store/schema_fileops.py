"""Migrations of the batch file-operation tables (selections, plans, journal).

- ``selections`` / ``selection_keys``: saved named selections (a WHERE over the
  selection view with its context, and/or an explicit list of image keys).
- ``job_actions``: the plan and journal of a file-operation job, one row per file
  action, written before any file is touched (see :mod:`tuiops.ops.fileops`).
  Paths are stored as raw bytes (``os.fsencode``), so any file name survives; a NULL
  ``tmp`` is the default temporary name, ``.tuiops-JOB-SEQ.part`` beside the target.
- ``job_marks``: per running job, the highest ``seq`` whose action may have touched the
  disk (the write-ahead mark of a window of actions, one row update per window): an
  action still ``planned`` at or below it is decided from the disk on resume.
- ``jobs.workers``: the ids of the worker processes of a running job (JSON list), so a
  resume after a kill waits until they are gone.
- ``revisions`` of label sets are in the core schema; ``review_imports`` names the
  folder and job a review import came from.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0300_fileops",
        """
        CREATE TABLE selections (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL,
            spec TEXT NOT NULL,
            n_keys INTEGER NOT NULL DEFAULT 0,
            note TEXT
        );
        CREATE TABLE selection_keys (
            selection_id INTEGER NOT NULL REFERENCES selections(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            PRIMARY KEY (selection_id, key)
        ) WITHOUT ROWID;
        CREATE TABLE job_actions (
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            action TEXT NOT NULL,
            role TEXT NOT NULL,
            parent INTEGER,
            file_id INTEGER,
            item_id INTEGER,
            src BLOB,
            dst BLOB NOT NULL,
            tmp BLOB,
            bak BLOB,
            data BLOB,
            state TEXT NOT NULL DEFAULT 'planned',
            conflict TEXT,
            size INTEGER,
            hash TEXT,
            dst_pool INTEGER,
            dst_rel TEXT,
            dst_rel_raw BLOB,
            prev TEXT,
            new_file_id INTEGER,
            error TEXT,
            PRIMARY KEY (job_id, seq)
        ) WITHOUT ROWID;
        """,
    ),
    (
        "0301_fileops_marks",
        """
        CREATE TABLE job_marks (
            job_id INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
            hi INTEGER NOT NULL
        );
        """,
    ),
    (
        "0302_fileops_workers",
        """
        ALTER TABLE jobs ADD COLUMN workers TEXT;
        """,
    ),
]
