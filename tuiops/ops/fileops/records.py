"""The store's ``files`` records that follow the files a job moves, copies or re-encodes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tuiops.fsutil import display_path
from tuiops.ops.fileops.acts import Action, JobContext, Outcome

_FILE_COLS = (
    "id",
    "pool_id",
    "relpath",
    "relpath_raw",
    "item_id",
    "keyed",
    "size",
    "mtime_ns",
    "width",
    "height",
    "format",
    "mode",
    "phash",
    "exif",
    "status",
    "error",
    "scanned",
    "checks",
)


def _row_json(row: Sequence[Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        k: ({"hex": v.hex()} if isinstance(v, bytes | memoryview) else v)
        for k, v in zip(_FILE_COLS, row, strict=True)
    }


def _row_values(d: dict[str, Any]) -> list[Any]:
    return [bytes.fromhex(v["hex"]) if isinstance(v, dict) else v for v in (d.get(k) for k in _FILE_COLS)]


def _displace(
    conn: Any, pool_id: int, rel: str, raw: bytes | None, keep_id: int | None
) -> dict[str, Any] | None:
    """Remove the record that holds (pool, relpath) already, returning it for undo."""
    row = conn.execute(
        f"SELECT {', '.join(_FILE_COLS)} FROM files WHERE pool_id = ? AND relpath = ? AND id IS NOT ?",
        (pool_id, rel, keep_id),
    ).fetchone()
    if row is None:
        return None
    conn.execute("DELETE FROM files WHERE id = ?", (row[0],))
    return _row_json(row)


def store_forward(conn: Any, ctx: JobContext, a: Action, out: Outcome) -> tuple[str | None, int | None]:
    """Make the files record follow a done image action; returns (prev JSON, new file id)."""
    from tuiops.store import utcnow

    if a.file_id is None:
        return None, None
    info = out.info or {}
    dst = out.dst or a.dst
    if a.action == "reencode":
        row = conn.execute(f"SELECT {', '.join(_FILE_COLS)} FROM files WHERE id = ?", (a.file_id,)).fetchone()
        if row is None:
            return None, None
        prev: dict[str, Any] = {"file": _row_json(row), "full": True}
        if a.dst_pool is not None and a.dst_rel is not None:
            prev["displaced"] = _displace(conn, a.dst_pool, a.dst_rel, a.dst_rel_raw, a.file_id)
            conn.execute(
                "UPDATE files SET relpath = ?, relpath_raw = ? WHERE id = ?",
                (a.dst_rel, a.dst_rel_raw, a.file_id),
            )
        strip = bool(ctx.convert and ctx.convert.strip_metadata)
        conn.execute(
            "UPDATE files SET size = ?, mtime_ns = ?, width = coalesce(?, width), height = coalesce(?, height), "
            "format = coalesce(?, format), mode = coalesce(?, mode), phash = NULL, "
            "exif = CASE WHEN ? THEN NULL ELSE exif END, scanned = ?, checks = 1, error = NULL WHERE id = ?",
            (
                out.size,
                info.get("mtime_ns"),
                info.get("width"),
                info.get("height"),
                info.get("format"),
                info.get("mode"),
                strip,
                utcnow(),
                a.file_id,
            ),
        )
        return json.dumps(prev), None
    if ctx.op in ("move", "rename", "delete"):
        row = conn.execute(f"SELECT {', '.join(_FILE_COLS)} FROM files WHERE id = ?", (a.file_id,)).fetchone()
        if row is None:
            return None, None
        prev = {"file": _row_json(row)}
        if ctx.op != "delete" and a.dst_pool is not None and a.dst_rel is not None and dst == a.dst:
            prev["displaced"] = _displace(conn, a.dst_pool, a.dst_rel, a.dst_rel_raw, a.file_id)
            conn.execute(
                "UPDATE files SET pool_id = ?, relpath = ?, relpath_raw = ?, mtime_ns = coalesce(?, mtime_ns) "
                "WHERE id = ?",
                (a.dst_pool, a.dst_rel, a.dst_rel_raw, info.get("mtime_ns"), a.file_id),
            )
        elif ctx.op == "delete":
            conn.execute(
                "UPDATE files SET status = 'trashed', error = ? WHERE id = ?",
                (f"in the trash: {display_path(dst)} (job {ctx.job_id})", a.file_id),
            )
        else:
            conn.execute(
                "UPDATE files SET status = 'moved', error = ? WHERE id = ?",
                (f"moved to {display_path(dst)} (job {ctx.job_id})", a.file_id),
            )
        return json.dumps(prev), None
    if ctx.op not in ("copy", "convert") or a.dst_pool is None or a.dst_rel is None or dst != a.dst:
        return None, None
    displaced = _displace(conn, a.dst_pool, a.dst_rel, a.dst_rel_raw, None)
    conv = ctx.op == "convert"
    new_id = conn.execute(
        "INSERT INTO files(pool_id, relpath, relpath_raw, item_id, keyed, size, mtime_ns, width, height, format, "
        "mode, phash, phash_method, exif, status, error, scanned, checks) "
        "SELECT ?, ?, ?, item_id, keyed, ?, ?, coalesce(?, width), coalesce(?, height), coalesce(?, format), "
        "coalesce(?, mode), CASE WHEN ? THEN NULL ELSE phash END, CASE WHEN ? THEN NULL ELSE phash_method END, "
        "CASE WHEN ? THEN NULL ELSE exif END, "
        "status, NULL, ?, CASE WHEN ? THEN 1 ELSE checks END FROM files WHERE id = ? RETURNING id",
        (
            a.dst_pool,
            a.dst_rel,
            a.dst_rel_raw,
            out.size,
            info.get("mtime_ns"),
            info.get("width"),
            info.get("height"),
            info.get("format"),
            info.get("mode"),
            conv,
            conv,
            conv and bool(ctx.convert and ctx.convert.strip_metadata),
            utcnow(),
            conv,
            a.file_id,
        ),
    ).fetchone()
    return json.dumps({"displaced": displaced}), (int(new_id[0]) if new_id else None)


def store_backward(conn: Any, a: Action) -> None:
    """Put the files records back as they were before the action."""
    prev = json.loads(a.prev) if a.prev else {}
    if a.new_file_id is not None:
        conn.execute("DELETE FROM files WHERE id = ?", (a.new_file_id,))
    old = prev.get("file")
    if old and a.file_id is not None:
        # the file is back at its old place: a record made there since (a scan of another
        # file that took the name, missing now or not) describes what is no longer there
        back = dict(zip(_FILE_COLS, _row_values(old), strict=True))
        _displace(conn, back["pool_id"], back["relpath"], back["relpath_raw"], a.file_id)
    if old and a.file_id is not None and prev.get("full"):
        vals = dict(zip(_FILE_COLS, _row_values(old), strict=True))
        cols = [c for c in _FILE_COLS if c != "id"]
        conn.execute(
            f"UPDATE files SET {', '.join(f'{c} = ?' for c in cols)} WHERE id = ?",
            [vals[c] for c in cols] + [a.file_id],
        )
    elif old and a.file_id is not None:
        vals = dict(zip(_FILE_COLS, _row_values(old), strict=True))
        conn.execute(
            "UPDATE files SET pool_id = ?, relpath = ?, relpath_raw = ?, status = ?, error = ?, mtime_ns = ? "
            "WHERE id = ?",
            (
                vals["pool_id"],
                vals["relpath"],
                vals["relpath_raw"],
                vals["status"],
                vals["error"],
                vals["mtime_ns"],
                a.file_id,
            ),
        )
    displaced = prev.get("displaced")
    if displaced:
        conn.execute(
            f"INSERT OR IGNORE INTO files({', '.join(_FILE_COLS)}) VALUES ({', '.join('?' * len(_FILE_COLS))})",
            _row_values(displaced),
        )
