"""Migrations of recorded script runs: one row per ``tuiops run`` and one per step of it."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0600_script",
        """
        CREATE TABLE script_runs (
            id INTEGER PRIMARY KEY,
            script TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            vars TEXT,
            started TEXT NOT NULL,
            ended TEXT,
            status TEXT NOT NULL,
            pid INTEGER,
            error TEXT,
            exit_code INTEGER
        );
        CREATE INDEX script_runs_script ON script_runs(script, id);
        CREATE TABLE script_steps (
            run_id INTEGER NOT NULL REFERENCES script_runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            name TEXT NOT NULL,
            op TEXT NOT NULL,
            argv TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            started TEXT,
            ended TEXT,
            outputs TEXT,
            error TEXT,
            exit_code INTEGER,
            log TEXT,
            PRIMARY KEY (run_id, idx)
        ) WITHOUT ROWID;
        """,
    ),
]
