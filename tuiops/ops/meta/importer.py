"""`meta import`: post metadata into the store, streamed, in one transaction.

The file is read one record at a time (a JSON-lines file: a run of lines at a time, see
:mod:`tuiops.ops.meta.records`) and written in batches (a JSON-lines file: one per run,
however the run was read), so a dump of millions of posts takes memory for one batch and
the tag vocabulary. Everything an import writes
commits together: a failure, Ctrl+C or a kill leaves the store as it was.

A post is keyed by booru and id. A post already stored is updated when the file says
something else about it and left alone when it says the same (a re-import of a file
changes nothing); with ``replace`` the booru's posts that the file does not hold are
removed. A line that is not a post is reported as ``file:line: message`` and left out; a
post id given twice is reported and the later line kept (the post counts once: new,
updated or unchanged against the store before the import). Posts whose image is not in
the pool are kept and counted. Where a scanned file of a post's image exists, its size
and md5 are compared with the post's (``md5=False`` compares sizes only, without reading
files); a difference is reported and recorded in ``meta_checks``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tuiops.errors import InputError, UsageError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter
from tuiops.ops.meta.records import FORMATS, BadLine, Post, PostRows, RunEnd, read_csv, read_json, read_jsonl
from tuiops.ops.meta.runs import run_tags
from tuiops.store import utcnow

if TYPE_CHECKING:
    from tuiops.workspace import Workspace

BATCH = 20_000

#: Columns of ``meta_posts`` an import writes, in this order (after ``id``).
_FIELDS = (
    "booru",
    "fid",
    "rating",
    "score",
    "fav_count",
    "width",
    "height",
    "md5",
    "file_ext",
    "file_size",
    "created_at",
    "tags",
    "tag_count",
)
#: The fields that decide whether a stored post changed (all but booru and fid).
_COMPARED = _FIELDS[2:]


@dataclass
class ImportSummary:
    """What an import read, wrote and left out."""

    source: str
    booru: str
    format: str
    replace_used: bool = False
    import_id: int = 0
    lines: int = 0
    posts: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    bad_lines: int = 0
    duplicates: int = 0
    with_image: int = 0
    without_image: int = 0
    new_tags: int = 0
    checked_files: int = 0
    size_mismatches: int = 0
    md5_mismatches: int = 0
    elapsed: float = 0.0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SeenIds:
    """Which post ids of one booru a file has given so far: a bit map (a set past 2**28)."""

    LIMIT = 1 << 28

    def __init__(self) -> None:
        self.bits = bytearray()
        self.big: set[int] = set()

    def add(self, fid: int) -> bool:
        """Mark ``fid``; true when it was marked already."""
        if fid >= self.LIMIT:
            seen = fid in self.big
            self.big.add(fid)
            return seen
        byte, bit = fid >> 3, 1 << (fid & 7)
        if byte >= len(self.bits):
            self.bits.extend(bytes(max(byte + 1 - len(self.bits), len(self.bits))))
        seen = bool(self.bits[byte] & bit)
        self.bits[byte] |= bit
        return seen

    def add_many(self, fids: list[int]) -> list[int]:
        """Mark each of ``fids`` in order; the positions of those marked already (by an
        earlier call or earlier in ``fids``)."""
        import numpy as np

        if not fids:
            return []
        arr = np.asarray(fids, dtype=np.int64)
        if int(arr.max()) >= self.LIMIT or int(arr.min()) < 0:
            return [i for i, fid in enumerate(fids) if self.add(fid)]
        need = (int(arr.max()) >> 3) + 1
        if need > len(self.bits):
            self.bits.extend(bytes(max(need - len(self.bits), len(self.bits))))
        bits = np.frombuffer(self.bits, dtype=np.uint8)
        byte, bit = arr >> 3, (np.left_shift(1, arr & 7)).astype(np.uint8)
        seen = (bits[byte] & bit) != 0
        _, first = np.unique(arr, return_index=True)
        again = np.ones(len(arr), dtype=bool)
        again[first] = False
        np.bitwise_or.at(bits, byte, bit)
        del bits
        return np.flatnonzero(seen | again).tolist()

    def __contains__(self, fid: int) -> bool:
        if fid >= self.LIMIT:
            return fid in self.big
        byte = fid >> 3
        return byte < len(self.bits) and bool(self.bits[byte] & (1 << (fid & 7)))


def with_rating(tok: str, rating: str | None) -> str:
    """A post's index entry: its tags' tokens, then ``r`` + its rating letter when it has one."""
    if rating is None:
        return tok
    return f"{tok} r{rating}" if tok else f"r{rating}"


NewTag = tuple[int, str, str | None]


@dataclass(slots=True)
class _Rows:
    """Posts to write, one per key, as columns; ``cats_of(i, names)`` gives post ``i``'s
    categories of ``names``."""

    boorus: list[str]
    fids: list[int]
    lines: list[int]
    #: rating, score, fav_count, width, height, md5, file_ext, file_size, created_at
    base: list[tuple[Any, ...]]
    #: Each post's tags and ``cats_of(i, names)``: post ``i``'s categories of ``names``...
    tags: list[list[str]] = field(default_factory=list)
    cats_of: Callable[[int, set[str]], dict[str, str]] | None = None
    #: ... or the posts' tag fields as read (see :class:`PostRows`).
    frame: pl.DataFrame | None = None

    @property
    def ratings(self) -> list[str | None]:
        return [b[0] for b in self.base]


class _Writer:
    """The state of one import inside its transaction: vocabulary, ids, counts."""

    def __init__(self, conn: sqlite3.Connection, summary: ImportSummary, source: str) -> None:
        self.conn = conn
        self.s = summary
        self.source = source
        #: tag name → its index token (``t<id>``)
        self.vocab: dict[str, str] = {}
        #: tags whose category is not known yet
        self.no_category: set[str] = set()
        for tid, name, cat in conn.execute("SELECT id, name, category FROM meta_tags"):
            self.vocab[name] = f"t{tid}"
            if cat is None:
                self.no_category.add(name)
        #: The vocabulary as a frame (``tag``, ``tok``) for runs read as columns, made when
        #: the first is, and the tags added a line at a time since.
        self.vocab_frame: pl.DataFrame | None = None
        self.vocab_added: list[str] = []
        self.next_tag = (conn.execute("SELECT max(id) FROM meta_tags").fetchone()[0] or 0) + 1
        self.next_post = (conn.execute("SELECT max(id) FROM meta_posts").fetchone()[0] or 0) + 1
        #: Posts from this id on are new in this import.
        self.first_post = self.next_post
        self.had_posts: set[str] = {r[0] for r in conn.execute("SELECT DISTINCT booru FROM meta_posts")}
        self.seen: dict[str, SeenIds] = {}
        #: Posts given twice in the file whose earlier line was written in an earlier batch.
        self.again: set[tuple[str, int]] = set()
        #: The boorus of the store's images (a post of another booru has no image to look for).
        self.pool_boorus: set[str] = {
            r[0] for r in conn.execute("SELECT DISTINCT booru FROM items WHERE booru IS NOT NULL")
        }

    # -- tags ------------------------------------------------------------------------------
    def _fresh(
        self, tags: list[str], cats_of: Callable[[set[str]], dict[str, str]], new_tags: list[NewTag]
    ) -> None:
        """Give the tags of ``tags`` not in the vocabulary their ids, in order, with the
        categories this post gives them."""
        vocab = self.vocab
        fresh = {t for t in tags if t not in vocab}
        categories = cats_of(fresh)
        for t in dict.fromkeys(t for t in tags if t in fresh):
            tid = self.next_tag
            self.next_tag += 1
            vocab[t] = f"t{tid}"
            self.vocab_added.append(t)
            new_tags.append((tid, t, categories.get(t)))

    def _toks(self, rows: _Rows, new_tags: list[NewTag], cats: list[tuple[str, str]]) -> list[str]:
        """Each post's index entry; new tags get ids (in the order posts name them) and a stored
        tag without a category the one the first post naming it gives."""
        vocab = self.vocab
        get = vocab.__getitem__
        cats_of = rows.cats_of
        assert cats_of is not None, "posts read a line at a time carry their categories"
        toks: list[str] = []
        append = toks.append
        for i, tags in enumerate(rows.tags):
            try:
                append(" ".join(map(get, tags)))
            except KeyError:
                self._fresh(tags, partial(cats_of, i), new_tags)
                append(" ".join(map(get, tags)))
        if self.no_category:
            no_category = self.no_category
            for i, tags in enumerate(rows.tags):
                if not no_category.isdisjoint(tags):
                    unknown = no_category.intersection(tags)
                    for t, cat in cats_of(i, unknown).items():
                        cats.append((cat, t))
                    no_category.difference_update(unknown)
                    if not no_category:
                        break
        return toks

    def _run_toks(
        self, frame: pl.DataFrame, new_tags: list[NewTag], cats: list[tuple[str, str]]
    ) -> tuple[list[str], list[str], list[int]]:
        """Index entries, tag strings and counts of a run read as columns (see
        :func:`~tuiops.ops.meta.runs.run_tags`)."""
        if self.vocab_frame is None or self.vocab_added:
            added = self.vocab_added if self.vocab_frame is not None else list(self.vocab)
            more = pl.DataFrame(
                {"tag": added, "tok": [self.vocab[t] for t in added]},
                schema={"tag": pl.String, "tok": pl.String},
            )
            self.vocab_frame = more if self.vocab_frame is None else pl.concat([self.vocab_frame, more])
            self.vocab_added = []
        got, self.vocab_frame = run_tags(frame, self.vocab_frame, self.next_tag, self.no_category)
        self.vocab.update(zip([t[1] for t in got.new_tags], got.new_toks, strict=True))
        self.next_tag += len(got.new_tags)
        new_tags.extend(got.new_tags)
        cats.extend(got.categorised)
        self.no_category.difference_update(got.named)
        return got.toks, got.tags, got.counts

    def old_tok(self, tags: str, rating: str | None) -> str:
        """The index entry a stored post was written with."""
        return with_rating(" ".join([self.vocab[t] for t in tags.split()]), rating)

    # -- one batch ---------------------------------------------------------------------------
    def _existing(self, booru: str, fids: list[int]) -> dict[int, tuple[Any, ...]]:
        cols = ", ".join(("fid", "id", *_COMPARED, "import_id"))
        out: dict[int, tuple[Any, ...]] = {}
        for i in range(0, len(fids), 500):
            chunk = fids[i : i + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self.conn.execute(
                f"SELECT {cols} FROM meta_posts WHERE booru = ? AND fid IN ({marks})", [booru, *chunk]
            ):
                out[row[0]] = row[1:]
        return out

    def write(self, batch: dict[tuple[str, int], Post]) -> None:
        """Write a batch of posts (one per key): new ones inserted, changed ones updated."""
        posts = list(batch.values())
        self.write_rows(
            _Rows(
                [p.booru for p in posts],
                [p.fid for p in posts],
                [p.line for p in posts],
                [
                    (
                        p.rating,
                        p.score,
                        p.fav_count,
                        p.width,
                        p.height,
                        p.md5,
                        p.file_ext,
                        p.file_size,
                        p.created_at,
                    )
                    for p in posts
                ],
                [p.tags for p in posts],
                lambda i, names: posts[i].categories(names),
            )
        )

    def write_rows(self, rows: _Rows) -> None:
        """Write posts given as columns (one per key): new ones inserted, changed ones updated."""
        new_tags: list[NewTag] = []
        cats: list[tuple[str, str]] = []
        if rows.frame is not None:
            toks, tag_strings, counts = self._run_toks(rows.frame, new_tags, cats)
        else:
            toks = self._toks(rows, new_tags, cats)
            tag_strings, counts = [" ".join(t) for t in rows.tags], [len(t) for t in rows.tags]
        toks = [
            tok if r is None else f"{tok} r{r}" if tok else f"r{r}"
            for tok, r in zip(toks, rows.ratings, strict=True)
        ]
        values = [(*base, tags, n) for base, tags, n in zip(rows.base, tag_strings, counts, strict=True)]
        by_booru: dict[str, list[int]] = {}
        lookup: dict[str, list[int]] = {}
        again = self.again
        for booru, fid in zip(rows.boorus, rows.fids, strict=True):
            if again and (booru, fid) in again:
                lookup.setdefault(booru, []).append(fid)
                continue  # counted where the file first gave it
            by_booru.setdefault(booru, []).append(fid)
            if booru in self.had_posts:
                lookup.setdefault(booru, []).append(fid)
        if new_tags:
            self.conn.executemany("INSERT INTO meta_tags(id, name, category) VALUES (?, ?, ?)", new_tags)
            self.s.new_tags += len(new_tags)
        if cats:
            self.conn.executemany("UPDATE meta_tags SET category = ? WHERE name = ?", cats)
        existing: dict[tuple[str, int], tuple[Any, ...]] = {}
        for booru, fids in lookup.items():
            for fid, row in self._existing(booru, fids).items():
                existing[(booru, fid)] = row
        import_id = self.s.import_id
        inserts, fts_new, updates, fts_del = [], [], [], []
        if not existing:
            first = self.next_post
            self.next_post += len(values)
            pids = range(first, self.next_post)
            inserts = [
                (pid, booru, fid, *vals, import_id, line)
                for pid, booru, fid, vals, line in zip(
                    pids, rows.boorus, rows.fids, values, rows.lines, strict=True
                )
            ]
            fts_new = list(zip(pids, toks, strict=True))
            self.s.new += len(values)
        else:
            for booru, fid, vals, line, tok in zip(
                rows.boorus, rows.fids, values, rows.lines, toks, strict=True
            ):
                old = existing.get((booru, fid))
                if old is None:
                    pid = self.next_post
                    self.next_post += 1
                    inserts.append((pid, booru, fid, *vals, import_id, line))
                    fts_new.append((pid, tok))
                    self.s.new += 1
                    continue
                changed = tuple(old[1:-1]) != vals
                if changed:
                    pid = old[0]
                    updates.append((*vals, import_id, line, pid))
                    fts_del.append((pid, self.old_tok(old[-3], old[1])))
                    fts_new.append((pid, tok))
                if (booru, fid) not in again:
                    if changed:
                        self.s.updated += 1
                    else:
                        self.s.unchanged += 1
                elif changed and old[0] < self.first_post and old[-1] != import_id:
                    # given again in a later batch: a post stored before, counted unchanged at its
                    # first line, is updated by this one
                    self.s.unchanged -= 1
                    self.s.updated += 1
        conn = self.conn
        if inserts:
            marks = ", ".join("?" for _ in range(len(_FIELDS) + 3))
            conn.executemany(
                f"INSERT INTO meta_posts(id, {', '.join(_FIELDS)}, import_id, line) VALUES ({marks})", inserts
            )
        if updates:
            sets = ", ".join(f"{c} = ?" for c in (*_COMPARED, "import_id", "line"))
            conn.executemany(f"UPDATE meta_posts SET {sets} WHERE id = ?", updates)
        if fts_del:
            conn.executemany("INSERT INTO meta_fts(meta_fts, rowid, tok) VALUES ('delete', ?, ?)", fts_del)
        if fts_new:
            conn.executemany("INSERT INTO meta_fts(rowid, tok) VALUES (?, ?)", fts_new)
        for booru, fids in by_booru.items():
            self._count_images(booru, fids)

    def _count_images(self, booru: str, fids: list[int]) -> None:
        have = 0
        if booru not in self.pool_boorus:
            self.s.without_image += len(fids)
            return
        for i in range(0, len(fids), 500):
            chunk = fids[i : i + 500]
            marks = ", ".join("?" for _ in chunk)
            have += self.conn.execute(
                "SELECT count(DISTINCT i.fid) FROM items i WHERE i.booru = ? AND i.fid IN "
                f"({marks}) AND EXISTS (SELECT 1 FROM files f WHERE f.item_id = i.id AND f.status = 'ok')",
                [booru, *chunk],
            ).fetchone()[0]
        self.s.with_image += have
        self.s.without_image += len(fids) - have

    # -- replace ------------------------------------------------------------------------------
    def remove_unseen(self, booru: str) -> None:
        """Remove the booru's posts that this file did not hold."""
        seen = self.seen.get(booru, SeenIds())
        gone = [
            (pid, tags, rating)
            for pid, fid, tags, rating in self.conn.execute(
                "SELECT id, fid, tags, rating FROM meta_posts WHERE booru = ?", (booru,)
            )
            if fid not in seen
        ]
        self.conn.executemany(
            "INSERT INTO meta_fts(meta_fts, rowid, tok) VALUES ('delete', ?, ?)",
            ((pid, self.old_tok(tags, rating)) for pid, tags, rating in gone),
        )
        self.conn.executemany("DELETE FROM meta_checks WHERE post_id = ?", ((pid,) for pid, _, _ in gone))
        self.conn.executemany("DELETE FROM meta_posts WHERE id = ?", ((pid,) for pid, _, _ in gone))
        self.s.removed += len(gone)


def _records(
    ws: Workspace, path: Path, fmt: str, booru: str, rep: Reporter, columnar: bool
) -> Iterator[PostRows | Post | BadLine | RunEnd]:
    def on_bytes(n: int) -> None:
        rep.update(n)

    def parse_key(name: str) -> tuple[str | None, int | None]:
        k = ws.parse_key(name)
        return k.booru, k.fid

    if fmt == "danbooru-jsonl":
        return read_jsonl(path, booru, on_bytes, columnar=columnar)
    if fmt == "csv":
        return read_csv(path, booru, parse_key, on_bytes)
    return read_json(path, booru, parse_key, on_bytes)


def _take_rows(w: _Writer, rows: PostRows) -> _Rows:
    """The posts of a run to write: ids given twice are reported (as a line at a time does)
    and only the later line of each is kept, in the order of the kept lines."""
    s = w.s
    booru, fids, lines = rows.booru, rows.fids, rows.lines
    s.lines = lines[-1]
    twice = w.seen.setdefault(booru, SeenIds()).add_many(fids)
    s.posts += len(fids) - len(twice)
    if not twice:
        return _Rows([booru] * len(fids), fids, lines, rows.base, frame=rows.frame)
    first = dict(zip(reversed(fids), reversed(range(len(fids))), strict=True))
    last = dict(zip(fids, range(len(fids)), strict=True))
    for i in twice:
        fid = fids[i]
        s.duplicates += 1
        s.problems.append(
            f"{w.source}:{lines[i]}: post {booru} {fid} was given before in this file; this later line is kept"
        )
        if first[fid] == i:
            w.again.add((booru, fid))
    keep = [i for i, fid in enumerate(fids) if last[fid] == i]
    return _Rows(
        [booru] * len(keep),
        [fids[i] for i in keep],
        [lines[i] for i in keep],
        [rows.base[i] for i in keep],
        frame=rows.frame[keep],
    )


def guess_format(path: Path) -> str:
    """The format a file's name suggests (``.csv``, ``.json``; anything else JSON lines), with
    or without ``.gz``."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".json"):
        return "json"
    return "danbooru-jsonl"


def _file_md5(path: str) -> str | None:
    h = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def check_files(
    conn: sqlite3.Connection, s: ImportSummary, boorus: list[str], *, md5: bool, source: str
) -> None:
    """Compare the size and md5 of each post of ``boorus`` with its scanned files."""
    marks = ", ".join("?" for _ in boorus)
    conn.execute(
        f"DELETE FROM meta_checks WHERE post_id IN (SELECT id FROM meta_posts WHERE booru IN ({marks}))",
        boorus,
    )
    rows = conn.execute(
        "SELECT p.id, p.booru, p.fid, p.line, p.import_id, lower(p.md5), p.file_size, f.id, f.size, "
        "f.mtime_ns, pl.root, f.relpath, m.md5, m.size, m.mtime_ns "
        "FROM meta_posts p JOIN items i ON i.booru = p.booru AND i.fid = p.fid "
        "JOIN files f ON f.item_id = i.id AND f.status = 'ok' JOIN pools pl ON pl.id = f.pool_id "
        "LEFT JOIN meta_md5 m ON m.file_id = f.id "
        f"WHERE p.booru IN ({marks}) AND (p.md5 IS NOT NULL OR p.file_size IS NOT NULL) ORDER BY p.id, f.id",
        boorus,
    ).fetchall()
    checks, cached = [], []
    for (
        pid,
        booru,
        fid,
        line,
        imp,
        want_md5,
        want_size,
        file_id,
        size,
        mtime,
        root,
        rel,
        c_md5,
        c_size,
        c_mtime,
    ) in rows:
        s.checked_files += 1
        where = f"{source}:{line}" if imp == s.import_id else f"post {booru} {fid}"
        path = os.path.join(root, rel)
        if want_size is not None and size is not None and want_size != size:
            s.size_mismatches += 1
            checks.append((pid, file_id, "size", str(want_size), str(size), s.import_id))
            s.problems.append(
                f"{where}: {path} has {size} bytes but post {booru} {fid} says {want_size} "
                "(a re-encoded or wrong file)"
            )
        if not (md5 and want_md5):
            continue
        got = c_md5 if (c_md5 is not None and c_size == size and c_mtime == mtime) else None
        if got is None:
            got = _file_md5(path)
            if got is None:
                s.problems.append(f"{where}: {path} could not be read for its md5")
                continue
            cached.append((file_id, size, mtime, got))
        if got != want_md5:
            s.md5_mismatches += 1
            checks.append((pid, file_id, "md5", want_md5, got, s.import_id))
            s.problems.append(
                f"{where}: {path} has md5 {got} but post {booru} {fid} says {want_md5} "
                "(a re-encoded or wrong file)"
            )
    conn.executemany(
        "INSERT OR REPLACE INTO meta_md5(file_id, size, mtime_ns, md5) VALUES (?, ?, ?, ?)", cached
    )
    conn.executemany("INSERT OR REPLACE INTO meta_checks VALUES (?, ?, ?, ?, ?, ?)", checks)


def import_meta(
    ws: Workspace,
    source: str | os.PathLike[str],
    *,
    booru: str = "danbooru",
    fmt: str | None = None,
    replace: bool = False,
    md5: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    columnar: bool = True,
) -> ImportSummary:
    """Import a post metadata file (see the module's notes); one transaction. ``columnar``
    off reads a JSON-lines file one line at a time throughout (the same store, slower)."""
    path = Path(source)
    if not path.exists() or path.is_dir():
        raise InputError(f"no metadata file {path}", hint="give the path of a .jsonl, .csv or .json file")
    fmt = fmt or guess_format(path)
    if fmt not in FORMATS:
        raise UsageError(f"unknown metadata format {fmt!r}", hint=f"--format {'|'.join(FORMATS)}")
    booru = booru.strip().lower()
    if not booru:
        raise UsageError("the booru name is empty", hint="--booru danbooru")
    t0 = time.perf_counter()
    s = ImportSummary(str(path), booru, fmt, replace)
    rep = Reporter("meta import", progress, cancel, total=path.stat().st_size or None)
    store = ws.store
    with store.transaction() as conn:
        s.import_id = conn.execute(
            "INSERT INTO meta_imports(source, booru, format, replace, started) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (str(path), booru, fmt, int(replace), utcnow()),
        ).fetchone()[0]
        w = _Writer(conn, s, str(path))
        batch: dict[tuple[str, int], Post] = {}
        boorus: dict[str, None] = {booru: None}
        for rec in _records(ws, path, fmt, booru, rep, columnar):
            if isinstance(rec, RunEnd | PostRows):
                # a JSON-lines file is written run by run, whichever way a run was read
                if batch:
                    w.write(batch)
                    batch = {}
                if isinstance(rec, PostRows):
                    boorus[rec.booru] = None
                    w.write_rows(_take_rows(w, rec))
                continue
            s.lines = rec.line
            if isinstance(rec, BadLine):
                s.bad_lines += 1
                s.problems.append(f"{path}:{rec.line}: {rec.message}; left out")
                continue
            boorus[rec.booru] = None
            seen = w.seen.setdefault(rec.booru, SeenIds())
            if not seen.add(rec.fid):
                s.posts += 1
            else:
                s.duplicates += 1
                s.problems.append(
                    f"{path}:{rec.line}: post {rec.booru} {rec.fid} was given before in this file; "
                    "this later line is kept"
                )
                key = (rec.booru, rec.fid)
                if key in batch:
                    del batch[key]
                else:
                    w.again.add(key)
            batch[(rec.booru, rec.fid)] = rec
            if len(batch) >= BATCH:
                w.write(batch)
                batch = {}
        if batch:
            w.write(batch)
        if replace:
            for b in boorus:
                w.remove_unseen(b)
        check_files(conn, s, list(boorus), md5=md5, source=str(path))
        s.elapsed = time.perf_counter() - t0
        summary = {k: v for k, v in s.to_dict().items() if k != "problems"}
        conn.execute(
            "UPDATE meta_imports SET finished = ?, summary = ? WHERE id = ?",
            (utcnow(), json.dumps(summary), s.import_id),
        )
    rep.update(rep.total or 0, force=True)
    return s


__all__ = ["BATCH", "ImportSummary", "SeenIds", "check_files", "guess_format", "import_meta"]
