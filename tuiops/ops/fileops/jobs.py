"""Jobs: run, resume, plan again and undo, each claimed so that one process runs a job."""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import TYPE_CHECKING, Any

from tuiops.errors import Cancelled, ConflictError, DiskError, NotFoundError, TuiopsError, UsageError
from tuiops.fsutil import display_path
from tuiops.ops.base import CancelToken, ProgressFn, Reporter
from tuiops.ops.fileops.acts import Action, JobContext
from tuiops.ops.fileops.execute import execute_actions
from tuiops.ops.fileops.journal import Journal, load_actions
from tuiops.ops.fileops.model import OPS, WORKERS, ConvertOptions, RunResult
from tuiops.ops.fileops.planning import plan
from tuiops.ops.fileops.workers import await_workers, process_alive, settle_only
from tuiops.ops.poollock import holding_pools
from tuiops.ops.select import SelectionSpec

if TYPE_CHECKING:
    from tuiops.store import Store
    from tuiops.workspace import Workspace


def job_row(store: Store, job_id: int) -> dict[str, Any]:
    row = store.execute(
        "SELECT id, kind, status, params, created, started, finished, done, total, message, error, result, pid, "
        "workers FROM jobs WHERE id = ?",
        (job_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no job {job_id}", hint="list the jobs with `tuiops ops list`")
    keys = (
        "id",
        "kind",
        "status",
        "params",
        "created",
        "started",
        "finished",
        "done",
        "total",
        "message",
        "error",
        "result",
        "pid",
        "workers",
    )
    d = dict(zip(keys, row, strict=True))
    if not str(d["kind"]).startswith("fileops."):
        raise UsageError(f"job {job_id} is a {d['kind']} job, not a file operation")
    d["params"] = json.loads(d["params"]) if d["params"] else {}
    d["result"] = json.loads(d["result"]) if d["result"] else None
    if d["status"] in ("running", "undoing", "planning") and not process_alive(d["pid"]):
        d["shown_status"] = "interrupted" if d["status"] != "undoing" else "undo interrupted"
    else:
        d["shown_status"] = d["status"]
    return d


def _claim(store: Store, job: dict[str, Any], status: str, total: int | None = None) -> None:
    """Mark the job as ours (compare-and-set, so two processes never run one job)."""
    if job["status"] in ("running", "undoing", "planning"):
        if process_alive(job["pid"]):
            raise ConflictError(
                f"job {job['id']} is {job['status']} in process {job['pid']}",
                hint="wait for it, or stop that process",
            )
        await_workers(job)
    from tuiops.store import utcnow

    with store.transaction() as conn:
        cur = conn.execute(
            "UPDATE jobs SET status = ?, pid = ?, started = coalesce(started, ?), finished = NULL, error = NULL, "
            "done = CASE WHEN ? IS NULL THEN done ELSE 0 END, total = coalesce(?, total) "
            "WHERE id = ? AND status = ? AND pid IS ?",
            (status, os.getpid(), utcnow(), total, total, job["id"], job["status"], job["pid"]),
        )
        if cur.rowcount != 1:
            raise ConflictError(f"job {job['id']} was taken by another process", hint="see `tuiops ops show`")


def _finish(store: Store, job_id: int, status: str, result: dict[str, Any], error: str | None) -> None:
    from tuiops.store import utcnow

    with store.transaction() as conn:
        conn.execute(
            "UPDATE jobs SET status = ?, finished = ?, result = ?, error = ?, message = NULL WHERE id = ?",
            (status, utcnow(), json.dumps(result, default=str), error, job_id),
        )


def _ctx(ws: Workspace, job: dict[str, Any]) -> JobContext:
    p = job["params"]
    conv = ConvertOptions(**p["convert"]) if p.get("convert") else None
    roots = []
    for (root,) in ws.store.execute("SELECT root FROM pools"):
        rb = os.fsencode(root)
        roots.append((rb, os.path.realpath(rb)))
    return JobContext(
        job_id=int(job["id"]),
        op=p["op"],
        policy=p.get("on_conflict", "fail"),
        follow_symlinks=bool(p.get("follow_symlinks")),
        convert=conv,
        durable=bool(p.get("durable")),
        trash=os.fsencode(ws.trash_dir.resolve() / f"job-{job['id']}"),
        pool_roots=roots,
    )


def action_counts(store: Store, job_id: int) -> dict[str, int]:
    return dict(
        store.execute(
            "SELECT state, count(*) FROM job_actions WHERE job_id = ? GROUP BY state", (job_id,)
        ).fetchall()
    )


def _errors(store: Store, job_id: int, limit: int = 10) -> list[dict[str, str]]:
    rows = store.execute(
        "SELECT seq, action, src, dst, error FROM job_actions WHERE job_id = ? AND error IS NOT NULL "
        "AND (state = 'failed' OR error LIKE 'not undone%') ORDER BY seq LIMIT ?",
        (job_id, limit),
    ).fetchall()
    return [
        {"seq": s, "action": a, "src": display_path(src) if src else "", "dst": display_path(dst), "error": e}
        for s, a, src, dst, e in rows
    ]


@holding_pools
def run_job(
    ws: Workspace,
    job_id: int,
    *,
    workers: int = WORKERS,
    durable: bool | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    _planned: list[Action] | None = None,
) -> RunResult:
    """Run a planned job, or resume one that was killed, cancelled or failed part-way.

    Started actions are decided from the journal and the file system; failed ones are
    tried again; done and skipped ones are left alone. ``durable`` (default: as planned)
    syncs each file before it gets its name, its folder after, and every journal commit.
    """
    t0 = time.perf_counter()
    store = ws.store
    job = job_row(store, job_id)
    op = job["params"].get("op", job["kind"].split(".", 1)[1])
    status = job["status"]
    if status == "refused":
        raise ConflictError(
            f"job {job_id} was refused for its conflicts; nothing to run",
            hint=f"see `tuiops ops show {job_id} --conflicts`; plan again with --on-conflict skip|rename|overwrite",
        )
    if status == "purged":
        raise UsageError(f"job {job_id} was purged; plan the operation again")
    if status in ("undoing", "undone", "undo_failed"):
        raise UsageError(
            f"job {job_id} was undone (or is being undone)",
            hint=f"finish the undo with `tuiops ops undo {job_id}`; plan the operation again to redo it",
        )
    if status == "planning":
        _replan(ws, job, progress, cancel)
        job = job_row(store, job_id)
        status = job["status"]
    # the actions of a plan made a moment ago in this process come with it (never run yet)
    acts = _planned if _planned is not None and status == "planned" else load_actions(store, job_id)
    todo = [a for a in acts if a.state in ("planned", "started", "failed")]
    res = RunResult(job_id=job_id, op=op, status=status, actions=len(acts))
    if not todo and status == "done":
        _fill(res, store, job_id, t0)
        return res
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    _claim(store, job, "running")
    ctx = _ctx(ws, job)
    if durable is not None:
        ctx.durable = durable
    rep = Reporter(f"ops.{op}", progress, cancel, total=len(todo), job_id=job_id)
    cancelled = False
    fatal, failure = None, None
    try:
        if ctx.durable:
            store.execute("PRAGMA synchronous=FULL")
        fatal, failure = execute_actions(store, ctx, acts, todo, False, workers, rep)
    except BaseException as exc:
        failure = exc
    finally:
        if ctx.durable:
            with contextlib.suppress(Exception):
                store.execute("PRAGMA synchronous=NORMAL")
        if isinstance(failure, Cancelled):
            cancelled = True
        tally = _tally(store, job_id)
        counts = tally[0]
        failed = counts.get("failed", 0)
        err: str | None
        if cancelled:
            final, err = "cancelled", "cancelled by the user; resume it with `tuiops ops resume`"
        elif failure is not None:
            final, err = "failed", f"{type(failure).__name__}: {failure}"
        elif fatal:
            final, err = "failed", f"stopped: {fatal}"
        elif failed:
            final, err = "failed", f"{failed} action(s) failed; see `tuiops ops show {job_id} --errors`"
        else:
            final, err = "done", None
        _fill(res, store, job_id, t0, tally)
        res.status = final
        res.message = err or ""
        _finish(store, job_id, final, res.to_dict(), err)
    if failure is not None:
        if isinstance(failure, TuiopsError):
            raise failure
        raise failure
    if fatal:
        raise DiskError(
            f"job {job_id} stopped: {fatal}",
            hint=f"fix the cause, then `tuiops ops resume {job_id}` finishes it (or `tuiops ops undo {job_id}`)",
        )
    return res


#: The parameters of a job that plan() alone records: such a job can be planned again from them.
_PLAN_PARAMS = frozenset(
    {
        "op",
        "to",
        "layout",
        "name",
        "labels",
        "label_set",
        "on_conflict",
        "convert",
        "follow_symlinks",
        "durable",
        "in_place",
        "label_layout",
        "selection",
    }
)


def _replannable(params: dict[str, Any]) -> bool:
    """Whether a job can be planned again from its parameters (not a key list, not a paint
    or review export, whose plans carry what the parameters do not)."""
    return (
        params.get("op") in OPS
        and set(params) <= _PLAN_PARAMS
        and "n_keys" not in (params.get("selection") or {})
    )


def planning_note(job_id: int, params: dict[str, Any]) -> str:
    """What to do with a job that was killed while planning (nothing was touched)."""
    if _replannable(params):
        return f"killed while planning, nothing was touched; `tuiops ops resume {job_id}` plans it again"
    return "killed while planning, nothing was touched; plan the operation again"


def _replan(
    ws: Workspace, job: dict[str, Any], progress: ProgressFn | None, cancel: CancelToken | None
) -> None:
    """Plan again a job that was killed while planning (its plan was never written)."""
    p = job["params"]
    if not _replannable(p):
        raise UsageError(
            f"job {job['id']} was {planning_note(job['id'], p)}",
            hint=f"`tuiops ops forget {job['id']}` removes it from the list",
        )
    _claim(ws.store, job, "planning")
    conv = p.get("convert")
    plan(
        ws,
        p["op"],
        SelectionSpec(**p["selection"]),
        to=p.get("to"),
        layout=p.get("layout") or "flat",
        name=p.get("name"),
        labels=p.get("labels", "carry"),
        label_set=p.get("label_set"),
        on_conflict=p.get("on_conflict", "fail"),
        convert=ConvertOptions(**conv) if conv else None,
        follow_symlinks=bool(p.get("follow_symlinks")),
        durable=bool(p.get("durable")),
        in_place=bool(p.get("in_place")),
        label_layout=p.get("label_layout", "beside"),
        progress=progress,
        cancel=cancel,
        _job_id=int(job["id"]),
    )


def _tally(store: Store, job_id: int) -> tuple[dict[str, int], int]:
    """A job's actions per state, and the bytes of the files done (one pass over its rows)."""
    counts: dict[str, int] = {}
    done_bytes = 0
    for state, n, size in store.execute(
        "SELECT state, count(*), sum(CASE WHEN action <> 'mkdir' THEN size END) "
        "FROM job_actions WHERE job_id = ? GROUP BY state",
        (job_id,),
    ).fetchall():
        counts[state] = n
        if state == "done":
            done_bytes = int(size or 0)
    return counts, done_bytes


def _fill(
    res: RunResult, store: Store, job_id: int, t0: float, tally: tuple[dict[str, int], int] | None = None
) -> None:
    counts, res.bytes = tally or _tally(store, job_id)
    res.done = counts.get("done", 0)
    res.skipped = counts.get("skipped", 0)
    res.failed = counts.get("failed", 0)
    res.undone = counts.get("undone", 0)
    res.errors = _errors(store, job_id)
    res.elapsed = time.perf_counter() - t0


@holding_pools
def undo_job(
    ws: Workspace,
    job_id: int,
    *,
    workers: int = WORKERS,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> RunResult:
    """Reverse a finished or partial job: copies removed, moves back, overwritten files restored.

    A copy that changed since the job is left in place (reported as an error). Undo is
    journaled: after a kill, run it again to finish.
    """
    t0 = time.perf_counter()
    store = ws.store
    job = job_row(store, job_id)
    op = job["params"].get("op", job["kind"].split(".", 1)[1])
    if job["status"] == "purged":
        raise UsageError(
            f"job {job_id} was purged: its backups in the trash are gone, so it cannot be undone"
        )
    acts = load_actions(store, job_id)
    res = RunResult(job_id=job_id, op=op, status=job["status"], actions=len(acts))
    started = [a for a in acts if a.resumed]
    todo = [a for a in acts if a.state in ("done", "undoing")]
    if dry_run:
        _fill(res, store, job_id, t0)
        res.message = f"would undo {len(todo) + len(started)} action(s)"
        res.status = "dry run"
        return res
    if job["status"] == "undone" and not todo and not started:
        _fill(res, store, job_id, t0)
        return res
    _claim(
        store,
        job,
        "undoing",
        total=len(todo) + len(started) if job["status"] not in ("undoing", "undo_failed") else None,
    )
    ctx = _ctx(ws, job)
    failure: BaseException | None = None
    fatal = None
    try:
        if started:
            journal = Journal(store, ctx, {a.seq: a for a in acts}, False)
            journal.add([settle_only(a, ctx) for a in started])
            journal.flush()
            todo = [a for a in acts if a.state in ("done", "undoing")]
        files = [a for a in reversed(todo) if a.action != "mkdir"]
        dirs = [a for a in reversed(todo) if a.action == "mkdir"]
        rep = Reporter(f"ops.undo.{op}", progress, cancel, total=len(todo), job_id=job_id)
        fatal, failure = execute_actions(store, ctx, acts, files, True, workers, rep)
        if failure is None and not fatal and dirs:
            fatal, failure = execute_actions(store, ctx, acts, dirs, True, 1, rep)
    except BaseException as exc:
        failure = failure or exc
    finally:
        tally = _tally(store, job_id)
        counts = tally[0]
        left = counts.get("done", 0) + counts.get("undoing", 0) + counts.get("started", 0)
        err: str | None
        if isinstance(failure, Cancelled):
            final, err = "undo_failed", "undo cancelled; run `tuiops ops undo` again to finish"
        elif failure is not None:
            final, err = "undo_failed", f"{type(failure).__name__}: {failure}"
        elif fatal:
            final, err = "undo_failed", f"stopped: {fatal}"
        elif left:
            final, err = (
                "undo_failed",
                f"{left} action(s) not undone; see `tuiops ops show {job_id} --errors`",
            )
        else:
            final, err = "undone", None
        _fill(res, store, job_id, t0, tally)
        res.status = final
        res.message = err or ""
        _finish(store, job_id, final, res.to_dict(), err)
    if failure is not None:
        raise failure
    if fatal:
        raise DiskError(f"undo of job {job_id} stopped: {fatal}", hint="fix the cause and run the undo again")
    return res
