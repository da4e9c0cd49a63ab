"""Scans and file operations never see a pool half-way through each other.

A scan reads a pool's folder and writes what it found; a file operation moves files and
makes the store's records follow. Were they to interleave, a scan would record the files
a move is taking away as unreadable at their old places. So each pool has a lock file in
the workspace (``.tuiops/locks/pool-ID.lock``, ``flock``): a scan holds its pool's lock
alone, file operations hold every pool's lock shared (several may run together). The
kernel lets go of a lock when its process dies, so a killed job never blocks a pool;
what such a job left half-way is its journal's to finish, and a scan refuses a pool
while an interrupted job has files in it (:func:`interrupted_jobs`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from tuiops.errors import ConflictError
from tuiops.ops.base import pid_alive

if TYPE_CHECKING:
    from tuiops.workspace import Workspace

P = ParamSpec("P")
R = TypeVar("R")


def _lock_path(ws: Workspace, pool_id: int) -> str:
    folder = ws.root / ".tuiops" / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"pool-{pool_id}.lock")


def _running(ws: Workspace, kinds: str) -> str:
    """The live jobs of ``kinds`` (a LIKE pattern), for a message."""
    rows = ws.store.execute(
        "SELECT id, kind, pid FROM jobs WHERE kind LIKE ? AND status IN ('running', 'undoing', 'planning')",
        (kinds,),
    ).fetchall()
    live = [f"job {i} ({k.replace('fileops.', 'ops ')}, process {p})" for i, k, p in rows if pid_alive(p)]
    return ", ".join(live) or "another process"


@contextlib.contextmanager
def scan_lock(ws: Workspace, pool_id: int, pool: str, root: str) -> Iterator[None]:
    """Hold ``pool`` (its folder ``root``) for a scan: no file operation runs on it
    meanwhile, none may be running, and none may have been interrupted in it."""
    fd = os.open(_lock_path(ws, pool_id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError(
                f"pool {pool!r} is in use by a file operation: {_running(ws, 'fileops.%')}",
                hint="scan it when that job is over (`tuiops ops list` shows it)",
            ) from None
        for job_id, op, status in interrupted_jobs(ws, root):
            finish = "undo" if status == "undoing" else "resume"
            raise ConflictError(
                f"pool {pool!r} has files of job {job_id} (ops {op}), which was interrupted: "
                "its journal knows where they are, a scan now would not",
                hint=f"finish it with `tuiops ops {finish} {job_id}`, then scan",
            )
        yield
    finally:
        os.close(fd)


def holding_pools(fn: Callable[Concatenate[Workspace, P], R]) -> Callable[Concatenate[Workspace, P], R]:
    """Run a file operation's step (plan, run, undo) holding every pool (:func:`fileops_lock`)."""

    @functools.wraps(fn)
    def held(ws: Workspace, *args: P.args, **kwargs: P.kwargs) -> R:
        with fileops_lock(ws):
            return fn(ws, *args, **kwargs)

    return held


@contextlib.contextmanager
def fileops_lock(ws: Workspace) -> Iterator[None]:
    """Hold every pool for a file operation (shared with other file operations): no scan
    runs meanwhile, and none may be running."""
    rows = ws.store.execute("SELECT id, name FROM pools ORDER BY id").fetchall()
    with contextlib.ExitStack() as stack:
        for pool_id, name in rows:
            fd = os.open(_lock_path(ws, int(pool_id)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            stack.callback(os.close, fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConflictError(
                    f"pool {name!r} is being scanned: {_running(ws, 'scan')}",
                    hint="run the file operation when the scan is over (or cancel the scan)",
                ) from None
        yield


def interrupted_jobs(ws: Workspace, root: str) -> list[tuple[int, str, str]]:
    """File operations killed part-way with files under the folder ``root``: (id, op, status)."""
    prefix = os.fsencode(root.rstrip("/")) + b"/"
    out = []
    rows = ws.store.execute(
        "SELECT id, status, pid, params FROM jobs WHERE kind LIKE 'fileops.%' AND status IN ('running', 'undoing')"
    ).fetchall()
    for job_id, status, pid, params in rows:
        if pid_alive(pid):
            continue
        hit = ws.store.one(
            "SELECT 1 FROM job_actions WHERE job_id = ? AND (substr(src, 1, ?) = ? OR substr(dst, 1, ?) = ?) "
            "LIMIT 1",
            (job_id, len(prefix), prefix, len(prefix), prefix),
        )
        if hit:
            op = json.loads(params or "{}").get("op", "")
            out.append((int(job_id), op, status))
    return out
