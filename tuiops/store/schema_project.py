"""Migrations of the dataset-project tables: builds of a project and what they made.

``project_builds`` has one row per finished build of ``projects/NAME/build/``: where
it ran (``local`` or a host name), the count and seed, the hashes that decide whether
the project is up to date (``inputs_sha256`` over the masters, project.toml, the
augmentation script and ``projects/common``; ``script_sha256``), what it made (images,
objects, objects per class as JSON) and the SHA-256 of its ``build.json``.

Since 0501, ``project_labelling`` records each sending of a project's masters to a
labelling host (host, folder there, counts, time), and ``project_label_revisions``
each set of labelled annotations committed back (the per-file diff and the files left
out as JSON; ``undone`` once undone; the replaced files are kept in
``projects/NAME/.revisions/NNNN/``).
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0500_project",
        """
        CREATE TABLE project_builds (
            id INTEGER PRIMARY KEY,
            project TEXT NOT NULL,
            host TEXT NOT NULL,
            count INTEGER NOT NULL,
            seed INTEGER NOT NULL,
            classes TEXT NOT NULL,
            images INTEGER NOT NULL,
            objects INTEGER NOT NULL,
            class_counts TEXT NOT NULL,
            script_sha256 TEXT NOT NULL,
            inputs_sha256 TEXT NOT NULL,
            build_sha256 TEXT NOT NULL,
            path TEXT NOT NULL,
            created TEXT NOT NULL,
            elapsed REAL,
            job_id INTEGER
        );
        CREATE INDEX project_builds_project ON project_builds(project, id);
        """,
    ),
    (
        "0501_project_labelling",
        """
        CREATE TABLE project_labelling (
            id INTEGER PRIMARY KEY,
            project TEXT NOT NULL,
            host TEXT NOT NULL,
            path TEXT NOT NULL,
            images INTEGER NOT NULL,
            annotations INTEGER NOT NULL,
            sent TEXT NOT NULL
        );
        CREATE TABLE project_label_revisions (
            id INTEGER PRIMARY KEY,
            project TEXT NOT NULL,
            labelling_id INTEGER REFERENCES project_labelling(id) ON DELETE SET NULL,
            created TEXT NOT NULL,
            files TEXT NOT NULL,
            left_out TEXT NOT NULL,
            undone TEXT
        );
        CREATE INDEX project_label_revisions_project ON project_label_revisions(project, id);
        """,
    ),
]
