"""Migrations of the triage tables (appended after the core migrations).

``set_exclusions`` marks images of a label set as bad: they stay in the set (their boxes
and ``set_images`` row are kept), but ``dataset build`` leaves them out (split
``excluded``). A row is written and removed by triage decisions (``b``), each recorded
in ``revisions`` so it can be undone; deleting the set deletes its rows.

Triage decisions and their undos are ``revisions`` rows whose ``changes`` JSON has
``kind`` (``triage`` or ``undo``), ``action``, ``item_id``, ``key``, ``before`` and
``after`` (the affected label rows as ``[id, class_id, x1, y1, x2, y2, extra]``),
``excluded`` (``[before, after]``) and, for an undo, ``undoes`` (the revision undone).
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0700_triage",
        """
        CREATE TABLE set_exclusions (
            set_id INTEGER NOT NULL,
            item_id INTEGER NOT NULL,
            reason TEXT NOT NULL,
            revision_id INTEGER,
            created TEXT NOT NULL,
            PRIMARY KEY (set_id, item_id)
        ) WITHOUT ROWID;
        CREATE INDEX revisions_set ON revisions(set_id, id);
        CREATE TRIGGER label_sets_exclusions_cleanup AFTER DELETE ON label_sets BEGIN
            DELETE FROM set_exclusions WHERE set_id = OLD.id;
        END;
        """,
    ),
]
