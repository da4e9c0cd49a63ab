"""Looking at jobs: list, show, forget, purge and print a plan."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, UsageError
from tuiops.fsutil import disk_error, display_path
from tuiops.ops.fileops.jobs import action_counts, job_row, planning_note
from tuiops.ops.fileops.model import STATES
from tuiops.ops.fileops.workers import process_alive

if TYPE_CHECKING:
    from tuiops.workspace import Workspace


def list_jobs(ws: Workspace, *, limit: int = 20, all_kinds: bool = False) -> list[dict[str, Any]]:
    """The latest jobs (file operations only, unless ``all_kinds``), newest first."""
    where = "" if all_kinds else "WHERE kind LIKE 'fileops.%'"
    rows = ws.store.execute(
        f"SELECT id, kind, status, created, finished, done, total, error, pid, message FROM jobs {where} "
        "ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    out = []
    for jid, kind, status, created, finished, done, total, error, pid, message in rows:
        shown = status
        if status in ("running", "undoing", "planning") and not process_alive(pid):
            shown = "interrupted" if status != "undoing" else "undo interrupted"
            if status == "planning":
                params = json.loads(ws.store.one("SELECT params FROM jobs WHERE id = ?", (jid,)) or "{}")
                error = error or planning_note(jid, params)
        if status == "planned" and message == "dry run":
            shown = "planned (dry run)"
        out.append(
            {
                "id": jid,
                "kind": kind,
                "status": shown,
                "created": created,
                "finished": finished,
                "done": done,
                "total": total,
                "error": error,
            }
        )
    return out


def show_job(
    ws: Workspace,
    job_id: int,
    *,
    actions: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A job's status, parameters, counts per state/action/conflict and, on request, its actions.

    ``actions``: ``all``, ``conflicts``, ``errors`` or a state name (``failed``, ``done``, …).
    """
    store = ws.store
    job = job_row(store, job_id)
    out: dict[str, Any] = {
        "id": job["id"],
        "kind": job["kind"],
        "status": job["shown_status"],
        "created": job["created"],
        "started": job["started"],
        "finished": job["finished"],
        "done": job["done"],
        "total": job["total"],
        "error": job["error"],
        "params": job["params"],
        "states": action_counts(store, job_id),
        "by_action": dict(
            store.execute(
                "SELECT action, count(*) FROM job_actions WHERE job_id = ? GROUP BY action", (job_id,)
            ).fetchall()
        ),
        "conflicts": dict(
            store.execute(
                "SELECT conflict, count(*) FROM job_actions WHERE job_id = ? AND conflict IS NOT NULL GROUP BY conflict",
                (job_id,),
            ).fetchall()
        ),
    }
    if job["result"]:
        out["unknown_keys"] = job["result"].get("unknown_keys", [])
    if actions:
        where, params = {
            "all": ("", ()),
            "conflicts": (" AND conflict IS NOT NULL", ()),
            "errors": (" AND error IS NOT NULL AND (state = 'failed' OR error LIKE 'not undone%')", ()),
        }.get(actions, (" AND state = ?", (actions,)))
        if actions not in ("all", "conflicts", "errors") and actions not in STATES:
            raise UsageError(
                f"unknown action filter {actions!r}",
                hint="all, conflicts, errors or a state: " + ", ".join(STATES),
            )
        rows = store.execute(
            f"SELECT seq, action, role, state, conflict, src, dst, size, error FROM job_actions WHERE job_id = ?{where} "
            "ORDER BY seq LIMIT ?",
            (job_id, *params, limit),
        ).fetchall()
        out["actions"] = [
            {
                "seq": seq,
                "action": act,
                "role": role,
                "state": st,
                "conflict": conf,
                "src": display_path(src) if src else "",
                "dst": display_path(dst),
                "size": size,
                "error": err,
            }
            for seq, act, role, st, conf, src, dst, size, err in rows
        ]
    return out


def forget_job(ws: Workspace, job_id: int) -> None:
    """Delete a job that is planned, refused or undone, with its journal."""
    store = ws.store
    job = job_row(store, job_id)
    if (
        job["status"] not in ("planned", "refused", "undone", "purged")
        and job["shown_status"] != "interrupted"
    ):
        raise UsageError(
            f"job {job_id} is {job['shown_status']}; only planned, refused or undone jobs can be forgotten",
            hint=f"undo it first with `tuiops ops undo {job_id}`",
        )
    with store.transaction() as conn:
        conn.execute("DELETE FROM job_actions WHERE job_id = ?", (job_id,))
        conn.execute("DELETE FROM job_marks WHERE job_id = ?", (job_id,))
        conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))


def purge_job(ws: Workspace, job_id: int) -> dict[str, Any]:
    """Delete what a finished job keeps in the workspace trash (``.trash/job-N``: originals of
    in-place conversions, overwritten files, deleted files); the job can no longer be undone."""
    import shutil

    store = ws.store
    job = job_row(store, job_id)
    status = job["shown_status"]
    if status in ("running", "undoing", "planning"):
        raise ConflictError(f"job {job_id} is {status} in process {job['pid']}", hint="wait for it to finish")
    if status in ("interrupted", "undo interrupted", "undo_failed"):
        raise UsageError(
            f"job {job_id} is {status}; finish it before purging its backups",
            hint=f"`tuiops ops resume {job_id}` or `tuiops ops undo {job_id}`",
        )
    folder = ws.trash_dir.resolve() / f"job-{job_id}"
    freed = 0
    files = 0
    if folder.exists():
        for dp, _, fns in os.walk(folder):
            for fn in fns:
                with contextlib.suppress(OSError):
                    freed += os.lstat(os.path.join(dp, fn)).st_size
                    files += 1
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            raise disk_error(folder, exc, "delete") from exc
    with store.transaction() as conn:
        conn.execute("UPDATE jobs SET status = 'purged' WHERE id = ?", (job_id,))
        conn.execute("DELETE FROM job_marks WHERE job_id = ?", (job_id,))
    return {"job": job_id, "files": files, "bytes": freed, "folder": os.fspath(folder)}


def iter_plan(ws: Workspace, job_id: int, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The actions of a job in order, as readable rows (for printing a plan)."""
    store = ws.store
    job_row(store, job_id)
    sql = "SELECT seq, action, role, state, conflict, src, dst, error FROM job_actions WHERE job_id = ? ORDER BY seq"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    for seq, act, role, st, conf, src, dst, err in store.execute(sql, (job_id,)):
        yield {
            "seq": seq,
            "action": act,
            "role": role,
            "state": st,
            "conflict": conf,
            "src": display_path(src) if src else "",
            "dst": display_path(dst),
            "note": err,
        }
