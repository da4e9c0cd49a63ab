"""kill -9 at random points during copy, move and undo: after `ops resume` / `ops undo`
every file is in its old place or its new place, never both missing, never corrupted,
never duplicated, and the store's records match the disk.

The CLI runs in a subprocess that is killed with SIGKILL: at a seeded random action,
right after a file was renamed into place (before the journal knows), inside a journal
transaction (``TUIOPS_FAULT``), or from outside at a random moment.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_fileops_support import files_rows, make_pool, scan_pool, tree
from tuiops.ops import fileops as fo
from tuiops.ops.select import SelectionSpec

N_IMAGES = 120
POINTS = ("action", "placed", "flush")
KILLS: list[int] = []
CLI = "import sys; from tuiops.cli import main; sys.argv[0] = 'tuiops'; main()"


def cli(ws_root: Path, *args: str, fault: str | None = None, kill_after: float | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "TUIOPS_FAULT"}
    if fault:
        env["TUIOPS_FAULT"] = fault
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "-w", str(ws_root), *args, "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    KILLS.append(proc.returncode)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"tuiops {' '.join(args)} exited {proc.returncode}: {err.decode()}")
    return proc.returncode


def leftovers(root: Path) -> list[str]:
    return [p for p in tree(root) if os.path.basename(p).startswith(".tuiops-")]


def journal_states(ws, job_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return dict(
        ws.store.execute("SELECT state, count(*) FROM job_actions WHERE job_id = ? GROUP BY state", (job_id,))
    )


@pytest.fixture
def big_pool(ws, tmp_path):
    root = make_pool(tmp_path / "pool", N_IMAGES, sub_every=3)
    scan_pool(ws, root)
    return root


def test_kill_during_copy(ws, big_pool, tmp_path):
    rng = random.Random(1234)
    KILLS.clear()
    source = tree(big_pool)
    for rep in range(4):
        out = tmp_path / f"out{rep}"
        plan, _ = fo.copy_files(ws, SelectionSpec(where="1"), out, layout="mirror", dry_run=True)
        total = plan.to_do
        for _ in range(2):
            point = rng.choice(POINTS)
            n = rng.randint(1, 3) if point == "flush" else rng.randint(1, total)
            cli(ws.root, "ops", "resume", str(plan.job_id), fault=f"{point}:{n}")
            got = tree(out)
            for rel, digest in got.items():
                if not os.path.basename(rel).startswith(".tuiops-"):
                    assert digest == source[rel], f"corrupt copy {rel} after a kill at {point}:{n}"
        ws.store.close()
        ws._store = None
        r = fo.run_job(ws, plan.job_id)
        assert r.status == "done", r.errors
        assert tree(out) == source, f"rep {rep}"
        assert not leftovers(out)
        assert set(journal_states(ws, plan.job_id)) == {"done"}
        assert tree(big_pool) == source
    assert KILLS.count(-signal.SIGKILL) >= 4, KILLS


def test_kill_during_move_and_undo(ws, big_pool, tmp_path):
    rng = random.Random(99)
    manifest = {k: v for k, v in tree(big_pool).items() if k != "classes.txt"}
    records = files_rows(ws)
    target = big_pool / "moved"
    KILLS.clear()
    for _rep in range(4):
        plan, _ = fo.move_files(
            ws, SelectionSpec(where="1"), target, layout="mirror", labels="carry", dry_run=True
        )
        for _ in range(2):
            point = rng.choice(POINTS)
            n = rng.randint(1, 3) if point == "flush" else rng.randint(1, plan.to_do)
            cli(ws.root, "ops", "resume", str(plan.job_id), fault=f"{point}:{n}")
            check_one_place(big_pool, manifest)
        ws.store.close()
        ws._store = None
        r = fo.run_job(ws, plan.job_id)
        assert r.status == "done", r.errors
        assert {k[len("moved/") :] for k in tree(big_pool) if k.startswith("moved/")} >= set(manifest)
        assert not leftovers(big_pool)
        rows = files_rows(ws)
        assert all(k.startswith("p/moved/") or k == "p/classes.txt" for k in rows), "records follow the files"
        # now undo, killed too
        for _ in range(2):
            point = rng.choice(("undo", "placed", "flush"))
            n = rng.randint(1, 3) if point == "flush" else rng.randint(1, plan.to_do)
            cli(ws.root, "ops", "undo", str(plan.job_id), fault=f"{point}:{n}")
            check_one_place(big_pool, manifest)
        ws.store.close()
        ws._store = None
        u = fo.undo_job(ws, plan.job_id)
        assert u.status == "undone", u.errors
        assert tree(big_pool) == {**manifest, "classes.txt": tree(big_pool)["classes.txt"]}
        assert not target.exists()
        assert files_rows(ws) == records
    assert KILLS.count(-signal.SIGKILL) >= 8, KILLS


def check_one_place(root: Path, manifest: dict[str, str]) -> None:
    """Every file of ``manifest`` is at REL or at moved/REL (exactly one), with its content."""
    everything = tree(root)
    for rel, digest in manifest.items():
        places = [p for p in (rel, f"moved/{rel}") if p in everything]
        assert len(places) == 1, f"{rel} is in {len(places)} places: {places}"
        assert everything[places[0]] == digest, f"{places[0]} is corrupt"


def move_killed_from_outside(ws, root: Path, rng: random.Random, span: tuple[float, float]):  # type: ignore[no-untyped-def]
    """Plan a move of the pool into ``root/moved`` and run it twice in the CLI, killed from
    outside after a random moment in ``span`` seconds; every file stays in one place.
    Returns the plan and the manifest of the pool."""
    manifest = {k: v for k, v in tree(root).items() if k != "classes.txt"}
    plan, _ = fo.move_files(ws, SelectionSpec(where="1"), root / "moved", layout="mirror", dry_run=True)
    for _ in range(2):
        cli(ws.root, "ops", "resume", str(plan.job_id), kill_after=rng.uniform(*span))
        check_one_place(root, manifest)
    ws.store.close()
    ws._store = None
    return plan, manifest


def test_kill_from_outside_at_random_moments(ws, big_pool, tmp_path):
    rng = random.Random(7)
    plan, manifest = move_killed_from_outside(ws, big_pool, rng, (0.5, 2.5))
    assert fo.run_job(ws, plan.job_id).status == "done"
    cli(ws.root, "ops", "undo", str(plan.job_id), kill_after=rng.uniform(0.5, 2.5))
    check_one_place(big_pool, manifest)
    ws.store.close()
    ws._store = None
    assert fo.undo_job(ws, plan.job_id).status == "undone"
    assert {k: v for k, v in tree(big_pool).items() if k != "classes.txt"} == manifest
