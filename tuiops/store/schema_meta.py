"""Migrations of the imageboard post metadata (appended after the other migrations).

- ``meta_posts``: one row per post of a booru (``booru``, ``fid`` as in an image key), its
  rating (one letter: ``g``, ``s``, ``q``, ``e``), score, favourites, size in pixels, md5,
  file extension and size, creation time, and its tags as imported (space-separated, in
  the file's order). A post is kept whether or not the pool holds its image; the image is
  found through ``items(booru, fid)``. ``import_id`` and ``line`` name the import and the
  line that last wrote it.
- ``meta_tags``: the tag vocabulary (``id``, ``name``, ``category``: ``general``,
  ``artist``, ``copyright``, ``character``, ``meta`` or NULL when the file did not say).
  Tag ids are never reused: a post's index entry is derived from its tag names.
- ``meta_fts``: a contentless FTS5 index, one document per post (rowid = ``meta_posts.id``)
  whose tokens are ``t<tag id>`` and ``r<rating>``; ``meta_fts_vocab`` gives each token's post count. The
  booru search syntax (:mod:`tuiops.ops.meta.syntax`) is compiled to ``MATCH`` over these
  tokens, so any tag text (quotes, ``%``, ``_``, unicode) is matched exactly.
- ``meta_imports``: each import (file, booru, format, replace, times, summary JSON).
- ``meta_checks``: posts whose md5 or file size differs from a scanned file of their image
  (``kind`` ``md5`` or ``size``, what the post says and what the file has).
- ``meta_md5``: the md5 of a scanned file, cached by size and mtime so a re-import reads a
  file once.
- ``gather_picks``: the images a ``gather`` saved as a selection, each with its kind
  (``good``, ``bad``, ``new``), class and reason.
- ``v_images`` gains the post's ``tags``, ``rating`` and ``score``.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0900_meta",
        """
        CREATE TABLE meta_imports (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            booru TEXT NOT NULL,
            format TEXT NOT NULL,
            replace INTEGER NOT NULL DEFAULT 0,
            started TEXT NOT NULL,
            finished TEXT,
            summary TEXT
        );
        CREATE TABLE meta_tags (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            category TEXT
        );
        CREATE TABLE meta_posts (
            id INTEGER PRIMARY KEY,
            booru TEXT NOT NULL,
            fid INTEGER NOT NULL,
            rating TEXT,
            score INTEGER,
            fav_count INTEGER,
            width INTEGER,
            height INTEGER,
            md5 TEXT,
            file_ext TEXT,
            file_size INTEGER,
            created_at TEXT,
            tags TEXT NOT NULL,
            tag_count INTEGER NOT NULL,
            import_id INTEGER,
            line INTEGER,
            UNIQUE (booru, fid)
        );
        CREATE VIRTUAL TABLE meta_fts USING fts5(tok, content='', columnsize=0, detail=none, tokenize='ascii');
        CREATE VIRTUAL TABLE meta_fts_vocab USING fts5vocab(meta_fts, row);
        CREATE TABLE meta_checks (
            post_id INTEGER NOT NULL,
            file_id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            expected TEXT,
            found TEXT,
            import_id INTEGER,
            PRIMARY KEY (post_id, file_id, kind)
        ) WITHOUT ROWID;
        CREATE TABLE meta_md5 (
            file_id INTEGER PRIMARY KEY,
            size INTEGER,
            mtime_ns INTEGER,
            md5 TEXT NOT NULL
        );
        CREATE TABLE gather_picks (
            selection TEXT NOT NULL,
            key TEXT NOT NULL,
            kind TEXT NOT NULL,
            class TEXT,
            reason TEXT NOT NULL,
            rank REAL,
            PRIMARY KEY (selection, key)
        ) WITHOUT ROWID;
        CREATE TRIGGER selections_gather_cleanup AFTER DELETE ON selections BEGIN
            DELETE FROM gather_picks WHERE selection = OLD.name;
        END;
        DROP VIEW v_images;
        CREATE VIEW v_images AS
            SELECT f.id AS file_id, p.name AS pool, f.relpath, i.key, i.booru, i.fid, f.keyed,
                   f.item_id, f.size, f.mtime_ns, f.width, f.height, f.format, f.mode,
                   f.phash, f.status, f.error, f.scanned,
                   mp.tags, mp.rating, mp.score
            FROM files f
            JOIN pools p ON p.id = f.pool_id
            LEFT JOIN items i ON i.id = f.item_id
            LEFT JOIN meta_posts mp ON mp.booru = i.booru AND mp.fid = i.fid;
        """,
    ),
]
