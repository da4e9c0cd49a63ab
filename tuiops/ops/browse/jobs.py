"""The store's jobs as the jobs pane lists them, and cancelling a running one."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuiops.errors import ExternalToolError, NotFoundError

if TYPE_CHECKING:
    from tuiops.store import Store


@dataclass(frozen=True)
class JobRow:
    """One row of the store's job table, as the jobs pane shows it."""

    id: int
    kind: str
    status: str
    done: int
    total: int | None
    message: str | None
    error: str | None
    started: str | None
    finished: str | None
    pid: int | None


def list_jobs(store: Store, limit: int = 50) -> list[JobRow]:
    """The newest jobs, running ones first."""
    rows = store.execute(
        "SELECT id, kind, status, done, total, message, error, started, finished, pid FROM jobs "
        "ORDER BY (status = 'running') DESC, id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [JobRow(*r) for r in rows]


def cancel_job(store: Store, job_id: int) -> str:
    """Ask a running job's process to stop (SIGINT, so it journals what it did and exits).

    Returns what happened, for a notification. A job whose process is gone is marked failed.
    """
    row = store.execute("SELECT status, pid FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no job {job_id}")
    status, pid = row
    if status != "running":
        return f"job {job_id} is {status} already"
    if not pid or pid == os.getpid():
        return f"job {job_id} runs in this app: cancel it from its row"
    try:
        os.kill(int(pid), signal.SIGINT)
    except ProcessLookupError:
        store.job_finish(job_id, "failed", error="its process is gone (killed or crashed)")
        return f"job {job_id}: its process {pid} is gone; marked failed"
    except PermissionError as exc:
        raise ExternalToolError(f"cannot signal process {pid} of job {job_id}: permission denied") from exc
    return f"asked job {job_id} (process {pid}) to stop"
