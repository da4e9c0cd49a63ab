"""Detection threads: torch's threads, the decoding threads and the batch are chosen from the
cores and the thread cap a process was started with; torch's OpenMP threads sleep when they wait."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CLASSES
from tests.test_train_support import draw_scene, index_pool, make_random_model
from tuiops.ops.detect import detect
from tuiops.ops.detect_threads import ThreadPlan, choose_threads, usable_cores

REPO = Path(__file__).resolve().parents[1]
KW = {"conf": 1e-5, "imgsz": 64, "max_det": 5}


@pytest.mark.parametrize(
    ("threads", "batch", "gpu", "cores", "cap", "want"),
    [
        # the CPU: torch takes the cores, one decoding thread overlaps it; from 8 cores up the
        # decoders (one in four) get cores of their own
        (None, None, False, 1, None, (1, 1, 8)),
        (None, None, False, 2, None, (2, 1, 8)),
        (None, None, False, 4, None, (4, 1, 16)),
        (None, None, False, 16, None, (12, 4, 32)),
        # a Dask worker started with OMP_NUM_THREADS=1, an SSH host's threads = 4
        (None, None, False, 16, 1, (1, 1, 8)),
        (None, None, False, 16, 4, (4, 1, 16)),
        # asked for: held to the cores, never to the cap; the batch as given
        (4, None, False, 2, None, (2, 1, 8)),
        (1, 24, False, 2, None, (1, 1, 24)),
        (3, None, False, 16, 1, (3, 1, 12)),
        # a GPU: few torch threads, the cores decode
        (None, None, True, 16, None, (4, 8, 32)),
        (None, None, True, 16, 1, (1, 8, 32)),
        (None, None, True, 2, None, (2, 1, 32)),
    ],
)
def test_threads_are_chosen_from_the_cores(threads, batch, gpu, cores, cap, want):
    plan = choose_threads(threads, batch, gpu=gpu, cores=cores, cap=cap)
    assert (plan.torch, plan.decode, plan.batch) == want
    assert plan.cores == cores and plan.gpu is gpu


_PROBE = """
import json, os, sys
from tuiops.ops.detect import prepare_ultralytics
from tuiops.ops.detect_threads import thread_cap
prepare_ultralytics(None)
import torch
print(json.dumps({"wait": os.environ.get("OMP_WAIT_POLICY"), "cap": thread_cap(),
                  "omp": os.environ.get("OMP_NUM_THREADS"), "torch": "torch" in sys.modules}))
"""


def _probe(tmp_path: Path, **env: str) -> dict:
    unset = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
    base = {k: v for k, v in os.environ.items() if k not in unset}
    base.update(PYTHONPATH=str(REPO), YOLO_CONFIG_DIR=str(tmp_path / "yolo"), **env)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=base, capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_fresh_process_sleeps_its_openmp_threads_and_keeps_its_thread_cap(tmp_path):
    # nothing set: OpenMP threads sleep when they wait; ultralytics' OMP_NUM_THREADS=1 is no cap
    got = _probe(tmp_path)
    assert got == {"wait": "PASSIVE", "cap": None, "omp": "1", "torch": True}
    # a process started with a cap (a Dask worker, an SSH host's threads) keeps it
    assert _probe(tmp_path, OMP_NUM_THREADS="3")["cap"] == 3
    # a wait policy the user chose stays
    assert _probe(tmp_path, OMP_WAIT_POLICY="ACTIVE")["wait"] == "ACTIVE"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("model") / "rand.pt", list(CLASSES))


def test_detect_uses_the_chosen_threads_and_holds_an_ask_to_the_cores(ws, tmp_path, model_path):
    import torch

    pool = tmp_path / "pool"
    for i in range(10):
        draw_scene(pool / f"danbooru_{i}.png", i, (80, 64))
    index_pool(ws, pool)
    cores = usable_cores()
    res = detect(ws, model_path, "auto", device="cpu", **KW)
    want = choose_threads(None, None, gpu=False)
    assert res.threads == want.to_dict() and res.processed == 10
    assert torch.get_num_threads() == want.torch  # not ultralytics' own count (the cores less one)
    params = json.loads(ws.store.one("SELECT params FROM runs WHERE name = 'auto'"))
    assert params["batch"] == want.batch
    more = detect(ws, model_path, "more", device="cpu", threads=cores + 2, batch=3, **KW)
    assert more.threads == ThreadPlan(cores, want.decode, 3, cores).to_dict()
    assert torch.get_num_threads() == cores
    assert more.processed == 10
