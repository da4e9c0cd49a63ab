"""Scale-out on Dask: detection and hashing on a real LocalCluster give the rows of a plain run;
a worker killed mid-run and a driver killed and run again leave complete rows, none twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from unittest import mock

import polars as pl
import pytest

from tests.conftest import CLASSES
from tests.test_train_support import draw_scene, index_pool, make_random_model
from tuiops.errors import UsageError
from tuiops.ops.cluster import ClusterOptions, PathMap, cluster_options, parse_spec
from tuiops.ops.detect import detect

N = 16
KW = {"conf": 1e-5, "imgsz": 64, "batch": 4, "max_det": 5}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("model") / "rand.pt", list(CLASSES))


@pytest.fixture
def pool_ws(ws, tmp_path):
    pool = tmp_path / "pool"
    for i in range(N):
        draw_scene(pool / f"danbooru_{i}.png", i, (80, 64))
    (pool / "danbooru_901.png").write_bytes(b"not an image at all")
    index_pool(ws, pool)
    ws.store.execute("UPDATE files SET status = 'ok'")
    return ws


def _rows(ws, run: str) -> pl.DataFrame:
    return ws.store.read_detections(run).sort("id")


def _errors(ws, run: str) -> list[tuple]:
    return sorted(ws.store.execute("SELECT key, error FROM v_detect_errors WHERE run = ?", (run,)).fetchall())


def _same_rows(ws, a: str, b: str) -> None:
    ra, rb = _rows(ws, a), _rows(ws, b)
    assert ra.height == N * 5
    assert ra.drop("id", "run_id", strict=False).equals(rb.drop("id", "run_id", strict=False))
    assert _errors(ws, a) == _errors(ws, b)
    ids = ws.store.one(
        "SELECT count(*) FROM run_images r JOIN runs u ON u.id = r.run_id WHERE u.name = ?", (b,)
    )
    assert ids == N


def test_spec_and_path_map():
    assert parse_spec("local:2").workers == 2
    assert parse_spec("ssh:a,b").hosts == ("a", "b")
    assert parse_spec("tcp://10.0.0.1:8786").address == "tcp://10.0.0.1:8786"
    for bad in ("local:0", "ssh:a,,b", "ssh:a,a", "mpi:4", "tcp://x"):
        with pytest.raises(UsageError):
            parse_spec(bad)
    pm = PathMap.parse(["/data=/mnt/d", "/data/pool=/pool"])
    assert pm.apply(b"/data/pool/a.jpg") == b"/pool/a.jpg"
    assert pm.apply(b"/data/x/a.jpg") == b"/mnt/d/x/a.jpg"
    assert pm.apply(b"/database/a.jpg") == b"/database/a.jpg"
    with pytest.raises(UsageError, match="only works with --cluster"):
        cluster_options(None, ship=True)
    with pytest.raises(UsageError, match="--scheduler-host"):
        ClusterOptions("local:2", scheduler_host="h")


def test_local_cluster_gives_the_rows_of_a_plain_run(pool_ws, model_path):
    ws = pool_ws
    plain = detect(ws, model_path, "plain", **KW)
    res = detect(ws, model_path, "dist", cluster=ClusterOptions("local:2", task_images=3), **KW)
    assert (res.processed, res.errors) == (plain.processed, plain.errors) == (N, 1)
    assert res.cluster is not None and res.cluster["tasks"] == 6 and res.cluster["workers"] == 2
    assert sum(w["images"] for w in res.cluster["per_worker"].values()) == N + 1
    # each worker holds torch to the thread cap Dask started it with (OMP_NUM_THREADS=1),
    # which ultralytics' own count would otherwise replace
    assert {(w["torch_threads"], w["decode_threads"]) for w in res.cluster["per_worker"].values()} == {(1, 1)}
    _same_rows(ws, "plain", "dist")
    # --ship sends the bytes: same rows again
    shipped = detect(
        ws, model_path, "shipped", cluster=ClusterOptions("local:2", task_images=5, ship=True), **KW
    )
    assert shipped.processed == N
    _same_rows(ws, "plain", "shipped")


def test_a_worker_killed_mid_run_loses_only_its_tasks(pool_ws, model_path):
    """The worker killed holds the only copy of the scattered weights (the cluster had one
    worker when the run began; a second joins as it dies): the tasks waiting on the weights are
    cancelled by Dask, sent again with the weights, and no image is lost or written twice."""
    from distributed import Client, LocalCluster

    ws = pool_ws
    detect(ws, model_path, "plain", **KW)
    # A cluster of the user's own (as for tcp://): its nannies set this process's environment
    # before spawning, which is given back after the test.
    with (
        mock.patch.dict(os.environ),
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as lc,
    ):
        with Client(lc) as client:
            pids = client.run(os.getpid)
        killed: list[int] = []

        def kill_one(ev) -> None:  # at the first task written, the only worker dies; another joins
            if ev.done and not killed:
                lc.scale(2)
                pid = next(iter(pids.values()))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        res = detect(
            ws,
            model_path,
            "dist",
            cluster=ClusterOptions(lc.scheduler_address, task_images=2),
            progress=kill_one,
            **KW,
        )
    assert killed and res.processed == N
    assert res.cluster is not None and len(res.cluster["per_worker"]) == 2
    _same_rows(ws, "plain", "dist")


def test_a_killed_driver_resumes_without_duplicates(pool_ws, model_path):
    ws = pool_ws
    detect(ws, model_path, "plain", **KW)
    args = [
        sys.executable, "-m", "tuiops", "-w", str(ws.root), "detect", "--weights", str(model_path), "--run", "dist",
        "--conf", "0.00001", "--imgsz", "64", "--batch", "4", "--max-det", "5",
        "--cluster", "local:2", "--task-images", "2", "-q", "--json",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "TUIOPS_FAULT": "cluster_result:3"}
    first = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    kept = ws.store.one(
        "SELECT count(*) FROM run_images r JOIN runs u ON u.id = r.run_id WHERE u.name = 'dist'"
    )
    assert 0 < kept < N
    env.pop("TUIOPS_FAULT")
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    out = json.loads(again.stdout)
    assert out["resumed"] and out["already_done"] >= kept
    _same_rows(ws, "plain", "dist")


def test_scan_hash_on_a_local_cluster_matches_the_scan(ws, tmp_path):
    from tuiops.ops.scan import scan

    pool = tmp_path / "hpool"
    for i in range(12):
        draw_scene(pool / f"danbooru_{i}.png", i, (96, 64))
    (pool / "danbooru_99.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    twin = tmp_path / "twin"
    shutil.copytree(pool, twin)
    here = scan(ws, pool, name="here", hash=True, workers=1)
    there = scan(ws, twin, name="there", hash=True, cluster=ClusterOptions("local:2", task_images=4))
    assert here.to_dict()["status"] == there.to_dict()["status"]
    q = "SELECT f.relpath, f.status, f.phash, f.width, f.height FROM files f JOIN pools p ON p.id = f.pool_id WHERE p.name = ? ORDER BY relpath"
    a = ws.store.execute(q, ("here",)).fetchall()
    b = ws.store.execute(q, ("there",)).fetchall()
    assert a == b and sum(r[2] is not None for r in a) == 12
    again = scan(ws, twin, name="there", cluster=ClusterOptions("local:2", task_images=4))
    assert again.probed == 0 and again.to_dict()["status"] == there.to_dict()["status"]


def test_workers_run_without_dasks_heap_trim_threshold(ws):
    """Dask's 64 KiB MALLOC_TRIM_THRESHOLD_ made torch several times slower in a worker; its thread caps stay."""
    from tuiops.ops.cluster import open_cluster

    before = dict(os.environ)
    with open_cluster(ws, ClusterOptions("local:1")) as running:
        env = running.client.run(
            lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS"))
        )
    assert list(env.values()) == [(None, "1")]
    # Dask's nannies set this process's environment before each spawn; it is given back as it was.
    assert dict(os.environ) == before
