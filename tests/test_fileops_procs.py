"""File operations on worker processes (a job of ``PROCESS_MIN`` actions or more).

The outcome and the journal are those of a run on threads; the workers are recorded on
the job; a kill of the job's process at any moment (at a worker's fault point, which
kills the job's process, or from outside) leaves no worker behind, and resume finishes
the job exactly.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.test_fileops_kill import check_one_place, cli, journal_states, leftovers, move_killed_from_outside
from tests.test_fileops_support import make_pool, scan_pool, tree
from tuiops.errors import ConflictError
from tuiops.ops import fileops as fo
from tuiops.ops.base import pid_alive
from tuiops.ops.fileops import workers as fo_workers
from tuiops.ops.select import SelectionSpec

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
N_IMAGES = 520  # with a label file each: 1,040 actions, past PROCESS_MIN

pytestmark = pytest.mark.skipif(
    CORES < 2 or not sys.platform.startswith("linux"), reason="worker processes need Linux and two cores"
)


@pytest.fixture
def pool(ws, tmp_path):
    root = make_pool(tmp_path / "pool", N_IMAGES, sub_every=3, size=(8, 8))
    scan_pool(ws, root)
    return root


def workers_of(ws, job_id: int) -> list[int]:  # type: ignore[no-untyped-def]
    raw = ws.store.one("SELECT workers FROM jobs WHERE id = ?", (job_id,))
    return json.loads(raw) if raw else []


def all_gone(pids: list[int], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while any(pid_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def journal(ws, job_id: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    """The journal's rows (a copy's recorded identity differs per copy: only its kind counts)."""
    return ws.store.execute(
        "SELECT seq, action, state, size, substr(hash, 1, 5), error FROM job_actions WHERE job_id = ? "
        "ORDER BY seq",
        (job_id,),
    ).fetchall()


def test_copy_on_processes_matches_threads_and_undoes(ws, pool, tmp_path):
    assert fo.PROCESS_MIN <= 2 * N_IMAGES
    source = tree(pool)
    plan, res = fo.copy_files(ws, SelectionSpec(where="1"), tmp_path / "procs", layout="mirror")
    assert res is not None and res.status == "done", res
    assert tree(tmp_path / "procs") == source
    pids = workers_of(ws, plan.job_id)
    assert len(pids) == min(fo.WORKERS, CORES) and os.getpid() not in pids
    assert all_gone(pids), "the workers end with the job"

    plan1, _ = fo.copy_files(
        ws, SelectionSpec(where="1"), tmp_path / "threads", layout="mirror", dry_run=True
    )
    res1 = fo.run_job(ws, plan1.job_id, workers=1)
    assert res1.status == "done" and workers_of(ws, plan1.job_id) == []
    assert tree(tmp_path / "threads") == source
    assert journal(ws, plan.job_id) == journal(ws, plan1.job_id)

    undone = fo.undo_job(ws, plan.job_id)
    assert undone.status == "undone", undone.errors
    assert tree(tmp_path / "procs") == {}
    assert tree(pool) == source


def test_move_on_processes_keeps_the_records(ws, pool, tmp_path):
    manifest = {k: v for k, v in tree(pool).items() if k != "classes.txt"}
    plan, res = fo.move_files(ws, SelectionSpec(where="1"), pool / "moved", layout="mirror", labels="carry")
    assert res is not None and res.status == "done", res
    assert len(workers_of(ws, plan.job_id)) >= 2
    check_one_place(pool, manifest)
    rows = ws.store.execute(
        "SELECT relpath FROM files WHERE status = 'ok' AND relpath LIKE '%.jpg'"
    ).fetchall()
    assert len(rows) == N_IMAGES and all(r[0].startswith("moved/") for r in rows)
    assert fo.undo_job(ws, plan.job_id).status == "undone"
    assert {k: v for k, v in tree(pool).items() if k != "classes.txt"} == manifest


def test_a_worker_fault_kills_the_job_and_resume_is_exact(ws, pool, tmp_path):
    source = tree(pool)
    out = tmp_path / "out"
    plan, _ = fo.copy_files(ws, SelectionSpec(where="1"), out, layout="mirror", dry_run=True)
    rng = random.Random(5)
    for point in ("action", "placed"):
        n = rng.randint(10, 1000 // (2 * min(fo.WORKERS, CORES)))  # each worker counts its own actions
        assert cli(ws.root, "ops", "resume", str(plan.job_id), fault=f"{point}:{n}") == -signal.SIGKILL
        ws.store.close()
        ws._store = None
        pids = workers_of(ws, plan.job_id)
        assert pids and all_gone(pids), f"workers {pids} outlived the job after a fault at {point}:{n}"
        for rel, digest in tree(out).items():
            if not os.path.basename(rel).startswith(".tuiops-"):
                assert digest == source[rel], f"corrupt copy {rel} after a kill at {point}:{n}"
    assert cli(ws.root, "ops", "resume", str(plan.job_id)) == 0
    ws.store.close()
    ws._store = None
    assert tree(out) == source
    assert not leftovers(out)
    assert set(journal_states(ws, plan.job_id)) == {"done"}


def test_kill_from_outside_leaves_no_worker_and_resumes(ws, pool, tmp_path):
    plan, manifest = move_killed_from_outside(ws, pool, random.Random(11), (0.8, 2.0))
    # resumed at once: the claim waits for the workers of the killed run, if any are left
    assert fo.run_job(ws, plan.job_id).status == "done"
    assert all_gone(workers_of(ws, plan.job_id), within=0)
    check_one_place(pool, manifest)


def test_resume_refuses_while_a_worker_of_a_dead_run_lives(ws, pool, tmp_path, monkeypatch):
    plan, _ = fo.copy_files(ws, SelectionSpec(where="1"), tmp_path / "out", layout="mirror", dry_run=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lingering = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with ws.store.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET status = 'running', pid = ?, workers = ? WHERE id = ?",
                (gone.pid, json.dumps([lingering.pid]), plan.job_id),
            )
        monkeypatch.setattr(fo_workers, "WORKER_GONE_SECONDS", 0.2)
        with pytest.raises(ConflictError, match=str(lingering.pid)):
            fo.run_job(ws, plan.job_id)
        assert tree(tmp_path / "out") == {}, "nothing was touched"
    finally:
        lingering.kill()
        lingering.wait()
    assert fo.run_job(ws, plan.job_id).status == "done"


def test_the_workers_help_names_the_threshold():
    from tuiops.commands.fileops import FILES_AT_ONCE

    assert f"{fo.PROCESS_MIN:,} file actions" in FILES_AT_ONCE


def test_workers_leave_the_parents_signal_handlers_alone(ws, pool, tmp_path):
    """A terminal app's handlers (here SIGWINCH, as on a resize) do not run in the workers."""
    import multiprocessing
    import threading

    marks = tmp_path / "handled"

    def on_winch(signum, frame):  # type: ignore[no-untyped-def]
        with open(marks, "a") as fh:
            fh.write(f"{os.getpid()}\n")

    sent: list[int] = []
    stop = threading.Event()

    def poke() -> None:
        while not stop.is_set():
            for child in multiprocessing.active_children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGWINCH)
                    sent.append(child.pid)
            time.sleep(0.005)

    old = signal.signal(signal.SIGWINCH, on_winch)
    poker = threading.Thread(target=poke)
    poker.start()
    try:
        plan, res = fo.copy_files(ws, SelectionSpec(where="1"), tmp_path / "out", layout="mirror")
    finally:
        stop.set()
        poker.join()
        signal.signal(signal.SIGWINCH, old)
    assert res is not None and res.status == "done", res
    assert set(sent) & set(workers_of(ws, plan.job_id)), "the workers were signalled while they ran"
    handled = {int(x) for x in marks.read_text().split()} if marks.exists() else set()
    assert not handled & set(sent), "a worker ran the parent's handler"


def test_a_large_copy_from_the_app_runs_on_workers(ws, pool, tmp_path):
    """`tuiops ops copy …` typed in the terminal app: its workers fork from the app's job thread."""
    from tests.test_tui_app import command, drive, settle

    out = tmp_path / "from-app"
    root = ws.root
    ws.close()

    async def scenario(pilot, app):  # type: ignore[no-untyped-def]
        await pilot.press("f12")
        await settle(pilot)
        await pilot.press("tab")
        await command(pilot, f"tuiops ops copy --where 1 --layout mirror --to {out}")
        task = list(app.jobs_pane.tasks.values())[-1]
        assert task.status == "done", (task.error, task.output)

    drive(root, scenario)
    from tuiops.workspace import Workspace

    again = Workspace.open(root)
    try:
        job = again.store.one("SELECT max(id) FROM jobs WHERE kind = 'fileops.copy'")
        assert len(workers_of(again, job)) == min(fo.WORKERS, CORES)
    finally:
        again.close()
    assert tree(out) == tree(pool)


def test_the_job_runs_on_threads_where_no_worker_can_start(ws, pool, tmp_path, monkeypatch):
    """A process limit (fork fails with EAGAIN): the same job on threads, nothing lost."""
    import errno

    def no_fork() -> int:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    plan, res = fo.copy_files(ws, SelectionSpec(where="1"), tmp_path / "out", layout="mirror")
    assert res is not None and res.status == "done", res
    assert workers_of(ws, plan.job_id) == []
    assert tree(tmp_path / "out") == tree(pool)


def test_undo_on_workers_killed_then_finished(ws, pool, tmp_path):
    """An undo of 1,040 moves runs on workers; killed at a worker's fault point and from
    outside, every file stays in one place, and a last undo puts everything back."""
    manifest = {k: v for k, v in tree(pool).items() if k != "classes.txt"}
    plan, res = fo.move_files(ws, SelectionSpec(where="1"), pool / "moved", layout="mirror", labels="carry")
    assert res is not None and res.status == "done", res
    ws.store.close()
    ws._store = None
    rng = random.Random(3)
    n = rng.randint(10, 1000 // (2 * min(fo.WORKERS, CORES)))
    assert cli(ws.root, "ops", "undo", str(plan.job_id), fault=f"undo:{n}") == -signal.SIGKILL
    check_one_place(pool, manifest)
    cli(ws.root, "ops", "undo", str(plan.job_id), kill_after=rng.uniform(0.8, 1.5))
    check_one_place(pool, manifest)
    ws.store.close()
    ws._store = None
    undone = fo.undo_job(ws, plan.job_id)
    assert undone.status == "undone", undone.errors
    assert {k: v for k, v in tree(pool).items() if k != "classes.txt"} == manifest
    assert not (pool / "moved").exists()
