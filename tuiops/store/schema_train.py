"""Migrations of the training tables: datasets, training runs, pitstops, detection errors.

- ``datasets`` / ``dataset_images``: an ultralytics dataset built from a label set
  (``tuiops dataset build``) and the split of every image in it (``train``, ``val``,
  or ``excluded``), kept across rebuilds so that an image keeps its split.
- ``train_runs``: one training run (``tuiops train``): its data, model, epochs,
  pitstop epochs, the ultralytics folder, the resumable checkpoint and where it is.
- ``train_pitstops``: what each pitstop did: the epoch, the best weights and their
  hash, the detection run made with them, the report and its summary (JSON).
- ``detect_errors``: images a detection run could not read or decode, with the reason;
  a resumed run skips them unless asked to retry.

Run and label-set ids can be reused by SQLite after a delete, so triggers remove the
rows that belong to a deleted run (the ADBC connection does not enforce foreign keys).
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0400_train",
        """
        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            root TEXT NOT NULL,
            label_set TEXT NOT NULL,
            created TEXT NOT NULL,
            built TEXT,
            params TEXT,
            summary TEXT
        );
        CREATE TABLE dataset_images (
            dataset_id INTEGER NOT NULL,
            item_id INTEGER NOT NULL,
            split TEXT NOT NULL,
            file_id INTEGER,
            name TEXT,
            PRIMARY KEY (dataset_id, item_id)
        ) WITHOUT ROWID;
        CREATE TABLE train_runs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL,
            updated TEXT,
            status TEXT NOT NULL,
            data TEXT NOT NULL,
            dataset TEXT,
            model TEXT NOT NULL,
            epochs INTEGER NOT NULL,
            epoch INTEGER NOT NULL DEFAULT 0,
            pitstops TEXT NOT NULL DEFAULT '[]',
            save_dir TEXT NOT NULL,
            checkpoint TEXT,
            nc INTEGER,
            args TEXT,
            host TEXT,
            pid INTEGER,
            job_id INTEGER,
            error TEXT
        );
        CREATE TABLE train_pitstops (
            train_id INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            epoch INTEGER NOT NULL,
            created TEXT NOT NULL,
            weights TEXT,
            weights_sha256 TEXT,
            best_epoch INTEGER,
            run_name TEXT,
            report TEXT,
            summary TEXT,
            PRIMARY KEY (train_id, idx)
        ) WITHOUT ROWID;
        CREATE TABLE detect_errors (
            run_id INTEGER NOT NULL,
            item_id INTEGER NOT NULL,
            file_id INTEGER,
            error TEXT NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (run_id, item_id)
        ) WITHOUT ROWID;
        CREATE TRIGGER runs_detect_cleanup AFTER DELETE ON runs BEGIN
            DELETE FROM detect_errors WHERE run_id = OLD.id;
        END;
        CREATE TRIGGER datasets_cleanup AFTER DELETE ON datasets BEGIN
            DELETE FROM dataset_images WHERE dataset_id = OLD.id;
        END;
        CREATE TRIGGER train_runs_cleanup AFTER DELETE ON train_runs BEGIN
            DELETE FROM train_pitstops WHERE train_id = OLD.id;
        END;
        CREATE VIEW v_dataset_images AS
            SELECT d.name AS dataset, i.key, di.item_id, di.split, di.name AS path, di.file_id
            FROM dataset_images di
            JOIN datasets d ON d.id = di.dataset_id
            JOIN items i ON i.id = di.item_id;
        CREATE VIEW v_detect_errors AS
            SELECT r.name AS run, i.key, e.item_id, e.file_id, e.error, e.created
            FROM detect_errors e
            JOIN runs r ON r.id = e.run_id
            JOIN items i ON i.id = e.item_id;
        """,
    ),
]
