"""Cancelling a `tuiops train` process the way the jobs pane and `cancel_job` do (SIGINT):
it stops inside the current epoch, keeps the last finished epoch's checkpoint and logs
every finished epoch once; a real tiny run (yolov8n.yaml, imgsz 64, CPU) in a subprocess.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

from tests.test_train_support import draw_scene, index_pool, make_label_set
from tuiops.cli import run
from tuiops.ops.browse import cancel_job
from tuiops.store import Store
from tuiops.workspace import Workspace

pytestmark = pytest.mark.slow


def test_sigint_stops_inside_the_epoch_and_keeps_a_resumable_checkpoint(tmp_path, capsys):
    import torch

    ws = Workspace.init(tmp_path / "ws", classes=["red", "green"])
    pool = tmp_path / "pool"
    boxes = {f"danbooru_{i}": draw_scene(pool / f"danbooru_{i}.png", i) for i in range(16)}
    index_pool(ws, pool)
    make_label_set(ws, "GT", boxes)
    ds = tmp_path / "ds"
    assert run(["-w", str(ws.root), "dataset", "build", "--set", "GT", "--to", str(ds), "-q"]) == 0
    capsys.readouterr()
    ws.close()
    cmd = [
        sys.executable,
        "-c",
        "from tuiops.cli import main; main()",
        "-w",
        str(tmp_path / "ws"),
        "train",
        str(ds),
        "--epochs",
        "40",
        "--imgsz",
        "64",
        "--batch",
        "4",
        "--device",
        "cpu",
        "--name",
        "c1",
        "workers=0",
    ]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    err: list[str] = []
    store = Store(tmp_path / "ws" / "tuiops.db")
    try:
        for ln in proc.stderr:  # plain progress lines: "train: DONE/40 (…%) epoch E/40 batch …"
            err.append(ln)
            m = re.match(r"train: (\d+)/40", ln)
            if m and int(m.group(1)) >= 1:
                job = store.one("SELECT id FROM jobs WHERE kind = 'train' AND status = 'running'")
                assert "asked job" in cancel_job(store, int(job))
                break
        _out, rest = proc.communicate(timeout=300)
        err.append(rest)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    text = "".join(err)
    assert proc.returncode == 130, text
    m = re.search(r"paused after epoch (\d+) \(stopped during epoch (\d+), batch (\d+)/(\d+)", text)
    assert m, text
    epoch, during = int(m.group(1)), int(m.group(2))
    assert during == epoch + 1 and epoch < 40
    assert "stopping within the current epoch" in text
    row = store.execute("SELECT status, epoch, checkpoint FROM train_runs WHERE name = 'c1'").fetchone()
    assert row[0] == "paused" and row[1] == epoch
    job = store.execute("SELECT status FROM jobs WHERE kind = 'train'").fetchone()
    assert job[0] == "cancelled"
    store.close()
    run_dir = tmp_path / "ws" / "training" / "c1"
    logged = [int(float(x.split(",")[0])) for x in (run_dir / "results.csv").read_text().splitlines()[1:]]
    assert logged == list(range(1, epoch + 1))  # the half-trained epoch left no line
    ckpt = torch.load(row[2], map_location="cpu", weights_only=False)
    assert ckpt["optimizer"] is not None and ckpt["epoch"] == epoch - 1  # resumable, at the last full epoch
