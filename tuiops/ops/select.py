"""Selections: which files a batch operation works on.

A selection is one of, or a combination of:

- a SQL ``WHERE`` over the *selection view* below (one row per indexed file),
- a saved named selection (``tuiops select --where … --save NAME``),
- an explicit list of image keys (or file names, whose key is parsed) from a file or stdin.

Several given together must all hold (their conditions are ANDed; key lists intersect).
Files whose status is ``missing`` (gone from disk at the last scan), ``moved`` or
``trashed`` (by a file operation) or ``not_image`` (other files than images in a pool;
label files are not indexed at all) are left out unless all statuses are asked for; ``--pool`` limits the selection
to some pools.

The selection view
------------------
Always present (one row per file of ``files`` ⋈ ``pools`` ⋈ ``items``):

{columns}

With ``--set NAME`` (a label set; counted per image in one grouped range scan):

{set_columns}

With ``--run NAME`` (a detection run):

{run_columns}

With ``--match NAME`` (a stored match of a label set with a run, ``tuiops match``):

{match_columns}

Examples: ``booru = 'danbooru' AND width < 512``; ``n_labels = 0``;
``',' || label_classes || ',' LIKE '%,hand,%'``; ``f1 < 0.5 AND split = 'val'``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, InputError, NotFoundError, UsageError
from tuiops.ops.usersql import Limits, authorize, check_where, has_subquery

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace

#: Columns of the selection view (name → meaning).
COLUMNS: dict[str, str] = {
    "file_id": "the file's id in the store",
    "pool": "the pool's name",
    "pool_id": "the pool's id",
    "pool_root": "the pool's folder",
    "relpath": "the path inside the pool (bytes that are not UTF-8 shown as \\xNN)",
    "path": "pool_root/relpath",
    "dir": "the folder part of relpath ('' at the top of the pool)",
    "name": "the file name",
    "ext": "the extension, lower case with its dot ('.jpg'; '' without one)",
    "key": "the image key (BOORU_FID, or the stem of an unkeyed file)",
    "booru": "the booru of the key (NULL when unkeyed)",
    "fid": "the booru's file id (NULL when unkeyed)",
    "item_id": "the image's item id",
    "keyed": "1 when the name holds a key, else 0",
    "size": "file size in bytes",
    "mtime_ns": "modification time, ns since the epoch",
    "width": "pixel width of this file",
    "height": "pixel height of this file",
    "img_w": "the item's width (the frame of its boxes)",
    "img_h": "the item's height",
    "format": "image format found by the scan (JPEG, PNG, WEBP, …)",
    "mode": "pixel mode (RGB, L, P, RGBA, …)",
    "phash": "64-bit perceptual hash (signed), NULL when not hashed",
    "status": "ok, missing, wrong_ext, truncated, corrupt, empty, not_image, unreadable, moved, trashed",
    "error": "what the scan (or a file operation) noted",
    "scanned": "when the file was last scanned (UTC)",
}
SET_COLUMNS: dict[str, str] = {
    "in_set": "1 when the image belongs to the label set (also with zero boxes), else 0",
    "n_labels": "boxes of the image in the set (0 when none or not in the set)",
    "label_classes": "class names present, comma-separated in class-map order ('' when none)",
    "top_class": "the most frequent class of the image's boxes (NULL when none)",
}
RUN_COLUMNS: dict[str, str] = {
    "in_run": "1 when the run processed the image, else 0",
    "n_dets": "detections of the image in the run",
    "det_classes": "detected class names, comma-separated in class-map order",
    "top_det_class": "the most frequent detected class",
    "max_score": "highest detection score (NULL when none)",
    "min_score": "lowest detection score (NULL when none)",
    "n_flagged": "detections with a quality flag (`tuiops quality`; NULL before it ran)",
}
MATCH_COLUMNS: dict[str, str] = {
    "in_match": "1 when the match compared the image, else 0",
    "split": "the image's split in the match (train, val, …; NULL without one)",
    "m_labels": "labels compared",
    "m_dets": "detections compared",
    "tp": "true positives",
    "fp": "false positives",
    "fn": "false negatives (missed labels)",
    "loc": "right class, poor overlap",
    "cls": "good overlap, wrong class",
    "dup": "duplicate detections",
    "precision": "tp / detections",
    "recall": "tp / labels",
    "f1": "F1 of the image",
    "cost": "the image's total difference cost",
    "worst_rank": "rank among the worst images of its split (1 = worst; NULL past the top)",
    "category": "ok, or the most frequent error of the image: fn, fp, cls, loc or dup",
}

#: Files a selection leaves out unless asked for all statuses: not on disk, or not an image.
HIDDEN_STATUSES = ("missing", "moved", "trashed", "not_image")

#: Layout presets: a name for a common target-folder template.
LAYOUTS: dict[str, str] = {
    "flat": "",
    "mirror": "{dir}",
    "by-pool": "{pool}",
    "by-booru": "{booru}",
    "by-class": "{class}",
    "by-match": "{category}",
    "by-status": "{status}",
}


def _doc_table(cols: dict[str, str]) -> str:
    width = max(len(k) for k in cols)
    return "\n".join(f"- ``{k}``{' ' * (width - len(k))} {v}" for k, v in cols.items())


if __doc__:
    __doc__ = __doc__.format(
        columns=_doc_table(COLUMNS),
        set_columns=_doc_table(SET_COLUMNS),
        run_columns=_doc_table(RUN_COLUMNS),
        match_columns=_doc_table(MATCH_COLUMNS),
    )


def columns_help() -> str:
    """The selection view's columns as plain text, for command help."""
    parts = []
    for title, cols in (
        ("always", COLUMNS),
        ("with --set", SET_COLUMNS),
        ("with --run", RUN_COLUMNS),
        ("with --match", MATCH_COLUMNS),
    ):
        parts.append(f"{title}: " + ", ".join(cols))
    return "\n".join(parts)


@dataclass
class SelectionSpec:
    """What to select; every field that is given must hold."""

    where: str | None = None
    keys: list[str] | None = None
    name: str | None = None
    label_set: str | None = None
    run: str | None = None
    match: str | None = None
    pools: list[str] | None = None
    all_statuses: bool = False
    #: A booru search over the images' post metadata (``1girl solo -monochrome rating:s``).
    tags: str | None = None
    #: A view or table of the user's (``tuiops.toml`` [views], ``user.db``): the images its
    #: ``key`` (or ``item_id``) column names, read anew each time the selection is resolved.
    view: str | None = None

    def is_empty(self) -> bool:
        return (
            self.where is None and self.keys is None and self.name is None and not self.tags and not self.view
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["keys"] is not None:
            d["n_keys"] = len(d.pop("keys"))
        else:
            d.pop("keys")
        return {k: v for k, v in d.items() if v not in (None, False)}


@dataclass
class Selection:
    """The selected files (one row per file, in file-id order) and what did not match."""

    frame: pl.DataFrame
    spec: SelectionSpec
    unknown_keys: list[str] = field(default_factory=list)
    """Keys of the key list that the store does not know."""
    keys_without_files: list[str] = field(default_factory=list)
    """Known keys of the key list with no selected file (filtered out, or only missing files)."""
    warnings: list[str] = field(default_factory=list)
    """Notes on the selection, such as a tag of ``tags`` that no post has."""

    @property
    def count(self) -> int:
        return self.frame.height


# -- key lists ----------------------------------------------------------------------------------
def parse_key_lines(lines: Iterable[str], ws: Workspace) -> list[str]:
    """Image keys from lines of keys, file names or paths (blank lines and ``#`` comments skipped).

    A line that reads as a file name giving another key (``a.b`` as the file ``a`` with the
    extension ``.b``) stays as it is when the store knows it as a key (an unkeyed image's
    key is its file's stem, dots and all): a key list written by ``--keys-out`` reads back whole.
    """
    pairs: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pairs.append((line, ws.parse_key(line.replace("\\", "/")).key))
    known = _known_keys(ws, [line for line, key in pairs if key != line])
    return list(dict.fromkeys(line if line in known else key for line, key in pairs))


def _known_keys(ws: Workspace, keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` that are image keys of the store."""
    out: set[str] = set()
    for i in range(0, len(keys), 500):
        chunk = list(keys[i : i + 500])
        marks = ", ".join("?" * len(chunk))
        out.update(r[0] for r in ws.store.execute(f"SELECT key FROM items WHERE key IN ({marks})", chunk))
    return out


def read_keys(source: str | os.PathLike[str], ws: Workspace) -> list[str]:
    """Read a key list from a file, or from stdin when ``source`` is ``-``."""
    if os.fspath(source) == "-":
        data = sys.stdin.buffer.read()
        where = "stdin"
    else:
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the key list {source}: {exc.strerror}") from exc
        where = str(path)
    text = data.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    keys = parse_key_lines(text.splitlines(), ws)
    if not keys:
        raise InputError(f"the key list {where} names no image", hint="one key or file name per line")
    return keys


def write_keys(keys: Iterable[str], path: str | os.PathLike[str]) -> int:
    """Write image keys to ``path`` whole or not at all: one per line, each once in the order
    given, nothing else (no header, no comment): a key list for ``--keys FILE`` and
    ``dataset build --exclude @FILE``. Returns how many keys it holds."""
    from tuiops.fsutil import atomic_write_bytes

    unique = list(dict.fromkeys(keys))
    atomic_write_bytes(path, "".join(f"{k}\n" for k in unique).encode("utf-8", "surrogateescape"))
    return len(unique)


# -- saved selections -----------------------------------------------------------------------------
def save_selection(
    ws: Workspace, name: str, spec: SelectionSpec, *, replace: bool = False, note: str | None = None
) -> dict[str, Any]:
    """Save ``spec`` under ``name`` (a saved selection it names is folded in)."""
    from tuiops.store import utcnow

    if not name or not name.strip() or name != name.strip():
        raise UsageError(f"invalid selection name {name!r}", hint="use a short name without padding")
    spec = resolve_spec(ws, spec, search_tags=False)
    if spec.is_empty():
        raise UsageError("nothing to save: give --where, --keys, --view or --selection")
    store = ws.store
    body = {k: v for k, v in asdict(spec).items() if k not in ("keys", "name")}
    with store.transaction() as conn:
        old = conn.execute("SELECT id FROM selections WHERE name = ?", (name,)).fetchone()
        if old is not None:
            if not replace:
                raise ConflictError(
                    f"a selection named {name!r} exists already", hint="pass --replace to overwrite it"
                )
            conn.execute("DELETE FROM selections WHERE id = ?", (old[0],))
        sid = conn.execute(
            "INSERT INTO selections(name, created, spec, n_keys, note) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (name, utcnow(), json.dumps(body), len(spec.keys or []), note),
        ).fetchone()[0]
        if spec.keys is not None:
            conn.executemany(
                "INSERT OR IGNORE INTO selection_keys(selection_id, key) VALUES (?, ?)",
                ((sid, k) for k in spec.keys),
            )
    return {"name": name, **spec.to_dict()}


def load_selection(ws: Workspace, name: str) -> SelectionSpec:
    """The spec saved under ``name``."""
    store = ws.store
    row = store.execute("SELECT id, spec, n_keys FROM selections WHERE name = ?", (name,)).fetchone()
    if row is None:
        known = [r[0] for r in store.execute("SELECT name FROM selections ORDER BY name")]
        raise NotFoundError(
            f"no saved selection named {name!r}",
            hint=f"known selections: {', '.join(known) or 'none'}; save one with `tuiops select --save`",
        )
    body = json.loads(row[1])
    spec = SelectionSpec(**{k: v for k, v in body.items() if k in SelectionSpec.__dataclass_fields__})
    if row[2]:
        spec.keys = [
            r[0] for r in store.execute("SELECT key FROM selection_keys WHERE selection_id = ?", (row[0],))
        ]
    return spec


def list_selections(ws: Workspace) -> list[dict[str, Any]]:
    """Every saved selection: name, created, what it selects."""
    rows = ws.store.execute(
        "SELECT name, created, spec, n_keys, note FROM selections ORDER BY name"
    ).fetchall()
    out = []
    for name, created, spec, n_keys, note in rows:
        d = {"name": name, "created": created, **json.loads(spec)}
        if n_keys:
            d["n_keys"] = n_keys
        if note:
            d["note"] = note
        out.append(d)
    return out


def drop_selection(ws: Workspace, name: str) -> None:
    """Delete a saved selection."""
    load_selection(ws, name)
    ws.store.execute("DELETE FROM selections WHERE name = ?", (name,))


def resolve_spec(
    ws: Workspace, spec: SelectionSpec, *, search_tags: bool = True, warnings: list[str] | None = None
) -> SelectionSpec:
    """Fold a named saved selection into ``spec``: conditions ANDed, key lists intersected, tag
    searches joined (AND); with ``search_tags`` the tag search is run and becomes a key list
    (intersected with one given), and its notes (a tag no post has) go to ``warnings``."""
    merged = _merge_saved(ws, spec)
    if search_tags and merged.view:
        merged = _fold_view(ws, merged, merged.view)
    if not search_tags or not (merged.tags and merged.tags.strip()):
        return merged
    from dataclasses import replace

    from tuiops.ops.meta.search import items_sql

    with ws.store.connection() as conn:
        sql, params, notes = items_sql(conn, merged.tags)
        found = [r[0] for r in conn.execute(f"SELECT key FROM items WHERE id IN ({sql}) ORDER BY id", params)]
    if warnings is not None:
        warnings.extend(f"--tags {merged.tags!r}: {n}" for n in notes)
    if merged.keys is not None:
        mine = set(found)
        found = [k for k in merged.keys if k in mine]
    return replace(merged, keys=found, tags=None)


def _fold_view(ws: Workspace, spec: SelectionSpec, view: str) -> SelectionSpec:
    """``spec`` with the images of the user's ``view`` as its key list (intersected with one given)."""
    from dataclasses import replace

    from tuiops.ops.userdb import view_keys

    found = view_keys(ws, view)
    if spec.keys is not None:
        mine = set(found)
        found = [k for k in spec.keys if k in mine]
    return replace(spec, keys=found, view=None if spec.view == view else spec.view)


def _merge_saved(ws: Workspace, spec: SelectionSpec) -> SelectionSpec:
    if spec.name is None:
        return spec
    saved = load_selection(ws, spec.name)
    if saved.view and spec.view and saved.view != spec.view:  # two views: both must hold
        saved = _fold_view(ws, saved, saved.view)
    wheres = [w for w in (saved.where, spec.where) if w]
    if saved.keys is not None and spec.keys is not None:
        mine = set(spec.keys)
        keys: list[str] | None = [k for k in saved.keys if k in mine]
    else:
        keys = spec.keys if spec.keys is not None else saved.keys
    return SelectionSpec(
        where=" AND ".join(f"({w})" for w in wheres) if wheres else None,
        keys=keys,
        name=None,
        label_set=spec.label_set or saved.label_set,
        run=spec.run or saved.run,
        match=spec.match or saved.match,
        pools=spec.pools or saved.pools,
        all_statuses=spec.all_statuses or saved.all_statuses,
        tags=" ".join(t for t in (saved.tags, spec.tags) if t and t.strip()) or None,
        view=spec.view or saved.view,
    )


# -- the query ------------------------------------------------------------------------------------
_BASE = """
    SELECT f.id AS file_id, p.name AS pool, f.pool_id, p.root AS pool_root, f.relpath,
           p.root || '/' || f.relpath AS path,
           rtrim(rtrim(f.relpath, replace(f.relpath, '/', '')), '/') AS dir,
           substr(f.relpath, length(rtrim(f.relpath, replace(f.relpath, '/', ''))) + 1) AS name,
           i.key, i.booru, i.fid, f.item_id, f.keyed, f.size, f.mtime_ns, f.width, f.height,
           i.width AS img_w, i.height AS img_h, f.format, f.mode, f.phash, f.status, f.error,
           f.scanned, f.relpath_raw{extra}
    FROM files f
    JOIN pools p ON p.id = f.pool_id
    LEFT JOIN items i ON i.id = f.item_id{joins}
"""

_EXT = (
    "CASE WHEN instr(name, '.') > 1 THEN lower(substr(name, length(rtrim(name, replace(name, '.', ''))))) "
    "ELSE '' END AS ext"
)


def _box_counts(table: str, prefix: str, lo: int, hi: int) -> tuple[str, list[Any]]:
    """CTEs counting one set's (or run's) boxes per image and class in one grouped range scan."""
    det = table == "detections"
    pc = (
        f"{prefix}_pc AS (SELECT (id >> 12) & 2147483647 AS item_id, class_id, count(*) AS n"
        + (", max(score) AS mx, min(score) AS mn" if det else "")
        + f" FROM {table} WHERE id BETWEEN ? AND ? GROUP BY 1, 2 ORDER BY 1, 2)"
    )
    c = (
        f"{prefix}_c AS (SELECT o.item_id, sum(o.n) AS n, group_concat(cl.name, ',') AS classes"
        + (", max(o.mx) AS max_score, min(o.mn) AS min_score" if det else "")
        + f" FROM {prefix}_pc o LEFT JOIN classes cl ON cl.id = o.class_id GROUP BY o.item_id)"
    )
    top = (
        f"{prefix}_t AS (SELECT t.item_id, cl.name AS top FROM "
        f"(SELECT item_id, class_id, max(n) AS n FROM {prefix}_pc GROUP BY item_id) t "
        "LEFT JOIN classes cl ON cl.id = t.class_id)"
    )
    return f"{pc}, {c}, {top}", [lo, hi]


def _table_exists(store: Store, name: str) -> bool:
    return (
        store.one("SELECT 1 FROM sqlite_master WHERE name = ? AND type IN ('table', 'view')", (name,))
        is not None
    )


def selection_sql(
    ws: Workspace, spec: SelectionSpec, columns: Sequence[str] | None = None
) -> tuple[str, list[Any]]:
    """The SQL and parameters of a (resolved) selection: every view column, or ``columns``.

    Key lists are not part of the SQL: they are joined through a temporary table.
    """
    from tuiops.store.db import id_range

    store = ws.store
    ctes: list[str] = []
    params: list[Any] = []
    extra: list[str] = []
    joins: list[str] = []
    if spec.label_set:
        sid = store.label_set_id(spec.label_set)
        cte, p = _box_counts("labels", "lab", *id_range(sid))
        ctes.append(cte)
        params += p
        extra.append(
            "CASE WHEN si.item_id IS NULL THEN 0 ELSE 1 END AS in_set, coalesce(lab_c.n, 0) AS n_labels, "
            "coalesce(lab_c.classes, '') AS label_classes, lab_t.top AS top_class"
        )
        joins.append(
            f"LEFT JOIN set_images si ON si.set_id = {int(sid)} AND si.item_id = f.item_id "
            "LEFT JOIN lab_c ON lab_c.item_id = f.item_id LEFT JOIN lab_t ON lab_t.item_id = f.item_id"
        )
    if spec.run:
        rid = store.run_id(spec.run)
        cte, p = _box_counts("detections", "det", *id_range(rid))
        ctes.append(cte)
        params += p
        flagged = "NULL"
        if _table_exists(store, "det_quality"):
            ctes.append(
                "det_q AS (SELECT (det_id >> 12) & 2147483647 AS item_id, count(*) AS n FROM det_quality "
                f"WHERE run_id = {int(rid)} AND flags <> 0 GROUP BY 1)"
            )
            joins.append("LEFT JOIN det_q ON det_q.item_id = f.item_id")
            has_q = store.one("SELECT 1 FROM det_quality WHERE run_id = ? LIMIT 1", (rid,)) is not None
            flagged = "coalesce(det_q.n, 0)" if has_q else "NULL"
        extra.append(
            "CASE WHEN ri.item_id IS NULL THEN 0 ELSE 1 END AS in_run, coalesce(det_c.n, 0) AS n_dets, "
            "coalesce(det_c.classes, '') AS det_classes, det_t.top AS top_det_class, "
            f"det_c.max_score, det_c.min_score, {flagged} AS n_flagged"
        )
        joins.append(
            f"LEFT JOIN run_images ri ON ri.run_id = {int(rid)} AND ri.item_id = f.item_id "
            "LEFT JOIN det_c ON det_c.item_id = f.item_id LEFT JOIN det_t ON det_t.item_id = f.item_id"
        )
    if spec.match:
        if not _table_exists(store, "match_images"):
            raise NotFoundError(f"no match named {spec.match!r}", hint="make one with `tuiops match`")
        mid = store.one("SELECT id FROM matches WHERE name = ?", (spec.match,))
        if mid is None:
            known = [r[0] for r in store.execute("SELECT name FROM matches ORDER BY name")]
            raise NotFoundError(
                f"no match named {spec.match!r}",
                hint=f"known matches: {', '.join(known) or 'none'}; make one with `tuiops match --set S --run R`",
            )
        cat = (
            "CASE WHEN mi.item_id IS NULL THEN NULL "
            "WHEN max(mi.fn, mi.fp, mi.cls, mi.loc, mi.dup) = 0 THEN 'ok' "
            "WHEN mi.fn = max(mi.fn, mi.fp, mi.cls, mi.loc, mi.dup) THEN 'fn' "
            "WHEN mi.fp = max(mi.fn, mi.fp, mi.cls, mi.loc, mi.dup) THEN 'fp' "
            "WHEN mi.cls = max(mi.fn, mi.fp, mi.cls, mi.loc, mi.dup) THEN 'cls' "
            "WHEN mi.loc = max(mi.fn, mi.fp, mi.cls, mi.loc, mi.dup) THEN 'loc' ELSE 'dup' END"
        )
        extra.append(
            "CASE WHEN mi.item_id IS NULL THEN 0 ELSE 1 END AS in_match, mi.split, mi.n_labels AS m_labels, "
            "mi.n_dets AS m_dets, mi.tp, mi.fp, mi.fn, mi.loc, mi.cls, mi.dup, mi.precision, mi.recall, "
            f"mi.f1, mi.cost, mi.worst_rank, {cat} AS category"
        )
        joins.append(f"LEFT JOIN match_images mi ON mi.match_id = {int(mid)} AND mi.item_id = f.item_id")
    base = _BASE.format(
        extra="".join(",\n           " + e for e in extra),
        joins="".join("\n    " + j for j in joins),
    )
    conds = []
    if not spec.all_statuses:
        conds.append(f"status NOT IN ({', '.join(repr(x) for x in HIDDEN_STATUSES)})")
    if spec.pools:
        ids = [store.pool_id(p) for p in spec.pools]
        conds.append(f"pool_id IN ({', '.join(str(i) for i in ids)})")
    if spec.where and spec.where.strip():
        check_where(spec.where)
        conds.append(f"({spec.where})")
    want = ", ".join(_quote(c) for c in columns) if columns else "*"
    with_ = f"WITH {', '.join(ctes)} " if ctes else ""
    sql = (
        f"{with_}SELECT {want} FROM (SELECT v.*, {_EXT} FROM ({base}) v) "
        f"{'WHERE ' + ' AND '.join(conds) if conds else ''}"
    )
    return sql, params


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def view_columns(spec: SelectionSpec) -> list[str]:
    """The columns of the selection view for this spec's context."""
    cols = [*COLUMNS]
    if spec.label_set:
        cols += list(SET_COLUMNS)
    if spec.run:
        cols += list(RUN_COLUMNS)
    if spec.match:
        cols += list(MATCH_COLUMNS)
    return cols


def _check_sql(ws: Workspace, sql: str, params: Sequence[Any], spec: SelectionSpec) -> None:
    """Compile the query on a read-only connection: a clear error for a bad or refused WHERE.

    A WHERE with a sub-select is compiled where it will run, beside the user's tables and
    views (:mod:`tuiops.ops.userdb`), which it may read."""
    from tuiops.store import Store

    if spec.where and has_subquery(spec.where):
        from tuiops.ops.userdb import open_user

        with open_user(ws) as conn:
            _authorize_on(conn, sql, params, spec)
        return
    store = Store(ws.db_path, readonly=True)
    try:
        _authorize(store, sql, params, spec)
    finally:
        store.close()


def _authorize(store: Store, sql: str, params: Sequence[Any], spec: SelectionSpec) -> None:
    with store.connection() as conn:
        _authorize_on(conn, sql, params, spec)


def _authorize_on(conn: sqlite3.Connection, sql: str, params: Sequence[Any], spec: SelectionSpec) -> None:
    hint = "columns: " + ", ".join(view_columns(spec))
    try:
        authorize(conn, sql, params, what=f"the selection --where {spec.where!r}", hint=hint)
    except (sqlite3.Error, sqlite3.Warning) as exc:
        msg = str(exc)
        if "no such column" in msg and not (spec.label_set and spec.run and spec.match):
            hint += "; per-image label/detection/match columns need --set, --run or --match"
        raise InputError(f"the selection's WHERE is not valid: {msg}", hint=hint) from exc


def run_selection_sql(
    store: Store,
    sql: str,
    params: Sequence[Any],
    spec: SelectionSpec,
    *,
    limits: Limits | None = None,
    authorized: bool = False,
    ws: Workspace | None = None,
) -> pl.DataFrame:
    """Read a selection's rows. The user's WHERE may only read; one with a sub-select runs
    under ``limits`` (time limit, cancel), and with ``ws`` beside the user's tables and views;
    a plain condition runs through Arrow at full speed (``authorized``: the caller has
    checked ``sql`` already)."""
    from tuiops.ops.usersql import read_frame

    if spec.where and has_subquery(spec.where):
        hint = "columns: " + ", ".join(view_columns(spec))
        what = f"the selection --where {spec.where!r}"
        if ws is not None:
            from tuiops.ops.userdb import open_user

            with open_user(ws) as conn:
                return read_frame(conn, sql, params, limits=limits, what=what, hint=hint)
        with store.connection() as conn:
            return read_frame(conn, sql, params, limits=limits, what=what, hint=hint)
    if not authorized:
        _authorize(store, sql, params, spec)
    return store.read_frame(sql, params)


def select_files(
    ws: Workspace,
    spec: SelectionSpec,
    *,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
    limits: Limits | None = None,
) -> Selection:
    """Run a selection: the matching files as a frame (all view columns, or ``columns``)."""
    import polars as pl

    notes: list[str] = []
    spec = resolve_spec(ws, spec, warnings=notes)
    if spec.is_empty():
        raise UsageError(
            "no selection: give --where SQL, --keys FILE, --tags QUERY, --view NAME or --selection NAME",
            hint="select everything with --where 1",
        )
    cols = list(columns) if columns else None
    if cols is not None and spec.keys is not None and "key" not in cols:
        cols.append("key")
    sql, params = selection_sql(ws, spec, cols)
    _check_sql(ws, sql, params, spec)
    store = _reader(ws)
    try:
        unknown: list[str] = []
        missing_files: list[str] = []
        # a sub-select in the WHERE runs on the connection that enforces its time limit, which
        # does not see the key list's temporary table: its keys are matched afterwards
        guarded = bool(spec.where and has_subquery(spec.where))
        if spec.keys is not None:
            keys = pl.DataFrame({"key": spec.keys}, schema={"key": pl.String})
            cur = store.adbc.cursor()
            try:
                cur.ingest("_sel_keys", keys, mode="replace", temporary=True)
            finally:
                cur.close()
            if not guarded:
                sql = f"SELECT s.* FROM ({sql}) s WHERE s.key IN (SELECT key FROM temp._sel_keys)"
        if limit is not None and not (guarded and spec.keys is not None):
            sql += f" ORDER BY file_id LIMIT {int(limit)}"
        frame = run_selection_sql(store, sql, params, spec, limits=limits, authorized=True, ws=ws)
        if guarded and spec.keys is not None:
            frame = frame.filter(pl.col("key").is_in(spec.keys))
            if limit is not None:
                frame = frame.sort("file_id").head(limit)
        if frame.height and "file_id" in frame.columns and not frame["file_id"].is_sorted():
            frame = frame.sort("file_id")
        if spec.keys is not None:
            known = store.read_frame(
                "SELECT k.key, i.id FROM temp._sel_keys k LEFT JOIN items i ON i.key = k.key",
                (),
                {"key": pl.String, "id": pl.Int64},
            )
            unknown = known.filter(pl.col("id").is_null())["key"].to_list()
            if limit is None:
                have = set(frame["key"].to_list()) if frame.height else set()
                missing_files = [
                    k for k in known.filter(pl.col("id").is_not_null())["key"].to_list() if k not in have
                ]
    finally:
        store.close()
    return Selection(frame, spec, unknown, missing_files, notes)


def _reader(ws: Workspace) -> Store:
    """A read-only store connection: a selection's SQL can never write."""
    from tuiops.store import Store

    ws.store  # noqa: B018 - make sure the schema is migrated first
    return Store(ws.db_path, readonly=True)


def summarize(
    ws: Workspace,
    spec: SelectionSpec,
    *,
    sample: int = 10,
    limits: Limits | None = None,
    keys_out: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Count a selection and show a sample of it (what ``tuiops select`` prints); with
    ``keys_out``, write the selection's image keys there (:func:`write_keys`)."""

    sel = select_files(ws, spec, limits=limits)
    f = sel.frame
    show = ["pool", "relpath", "key", "size", "width", "height", "status"]
    ctx = [c for c in ("n_labels", "n_dets", "f1", "category") if c in f.columns]
    out: dict[str, Any] = {
        "files": f.height,
        "images": f["item_id"].n_unique() if f.height else 0,
        "bytes": int(f["size"].fill_null(0).sum()) if f.height else 0,
        "by_pool": dict(f.group_by("pool").len().sort("pool").iter_rows()) if f.height else {},
        "unknown_keys": len(sel.unknown_keys),
        "unknown_key_examples": sel.unknown_keys[:5],
        "keys_without_files": len(sel.keys_without_files),
        "warnings": sel.warnings,
        "sample": f.head(sample).select([c for c in show + ctx if c in f.columns]).to_dicts()
        if f.height
        else [],
    }
    if f.height:
        out["statuses"] = dict(f.group_by("status").len().sort("status").iter_rows())
    out["spec"] = sel.spec.to_dict()
    if keys_out is not None:
        out["keys_written"] = write_keys(f["key"].to_list() if f.height else [], keys_out)
        out["keys_out"] = os.fspath(keys_out)
    return out
