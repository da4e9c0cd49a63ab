"""Training on a remote host: a real OpenSSH sshd on 127.0.0.1 whose "remote" Python is this one.

The host is probed first (a Python without tuiops is refused with a clear error), the
dataset is uploaded, a tiny run (yolov8n.yaml, imgsz 64, CPU) trains there to its
pitstop, the weights come back and the pitstop's report is made here; the monitor reads
the host's results.csv over SSH while the run is marked running; a resume cancelled here
stops the host's training, and a last resume finishes it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.sshd import sshd_unavailable
from tests.test_train import results_epochs, tiny_train
from tests.test_train_support import draw_scene, index_pool, make_label_set
from tuiops.cli import run
from tuiops.errors import Cancelled
from tuiops.ops.base import CancelToken
from tuiops.ops.monitor import run_follower
from tuiops.ops.train import get_run, monitor_plan, resume, update_run

_why = sshd_unavailable()
pytestmark = [pytest.mark.skipif(_why is not None, reason=_why or ""), pytest.mark.slow]


def _set_python(ws, python: str) -> None:  # type: ignore[no-untyped-def]
    ws.config.hosts["test"].extra["python"] = python
    ws.save_config()


def test_train_on_a_host_to_a_pitstop_and_resume_there(host_ws, tmp_path, capsys):
    ws, home = host_ws
    ws.config.classes = ["head", "green"]  # the class map is append-only
    ws.save_config()
    pool = tmp_path / "pool"
    boxes = {f"danbooru_{i}": draw_scene(pool / f"danbooru_{i}.png", i) for i in range(16)}
    index_pool(ws, pool)
    make_label_set(ws, "GT", boxes)
    w = ["-w", str(ws.root)]
    ds = tmp_path / "ds"
    assert run([*w, "dataset", "build", "--set", "GT", "--to", str(ds), "--val", "0.25", "-q"]) == 0
    capsys.readouterr()
    train = tiny_train(w, ds, "r1", 2, "--on", "test")

    # -- a host whose Python cannot train is refused before anything is sent -------------------
    _set_python(ws, str(tmp_path / "no-such-python"))
    assert run(train) == 9
    err = capsys.readouterr().err
    assert "host test cannot run" in err and 'python = "/path/to/python"' in err
    assert not (home / "tuiops-train").exists()
    assert ws.store.one("SELECT count(*) FROM train_runs") == 0

    # -- train there to the pitstop ---------------------------------------------------------------
    _set_python(ws, sys.executable)
    code = run(train)
    out, err = capsys.readouterr()
    assert code == 0, err
    res = json.loads(out)
    assert res["status"] == "pitstop" and res["epoch"] == 1
    p = res["pitstop"]
    assert p["run"] == "r1.pitstop1" and p["epoch"] == 1
    r = get_run(ws.store, "r1")
    assert r.host == "test" and r.status == "pitstop" and r.epoch == 1
    # the dataset went up with a data.yaml relative to its folder
    remote_ds = home / "tuiops-train" / "datasets" / "r1" / "ds"
    doc = yaml.safe_load((remote_ds / "data.yaml").read_text())
    assert "path" not in doc and doc["train"] == "images/train"
    assert (
        len(list((remote_ds / "images" / "train").iterdir()))
        + len(list((remote_ds / "images" / "val").iterdir()))
        == 16
    )
    # it trained there (the host's own workspace and run folder) and the weights came back
    remote_run = home / "tuiops-train" / "ws" / "training" / "r1"
    assert (remote_run / "tuiops" / "resume.pt").is_file()
    assert (r.save_dir / "weights" / "best.pt").is_file()
    assert (r.save_dir / "results.csv").read_text() == (remote_run / "results.csv").read_text()
    # the pitstop's detections and report are made here, with the store's labels
    assert (
        ws.store.one(
            "SELECT count(*) FROM run_images ri JOIN runs u ON u.id = ri.run_id WHERE u.name = 'r1.pitstop1'"
        )
        == 16
    )
    assert "# Pitstop 1 of training run r1" in Path(p["report"]).read_text(encoding="utf-8")

    # -- while it trains, the monitor reads the host's file over SSH -------------------------------
    update_run(ws.store, r.id, status="running")
    follower = run_follower(ws, "r1")
    (r.save_dir / "results.csv").unlink()  # not the local copy
    assert follower.poll() is True
    assert follower.state(**monitor_plan(ws.store, "r1")).epochs["epoch"].to_list() == [1]
    update_run(ws.store, r.id, status="pitstop")

    # -- a resume cancelled here stops the host's training (SIGINT there) -------------------------
    token = CancelToken()

    def cancel_at_start(ev):  # type: ignore[no-untyped-def]
        if ev.op == "train" and ev.message.startswith("training on test from epoch 2"):
            token.cancel()

    with pytest.raises(Cancelled, match=r"on test (paused after epoch 1|was interrupted)"):
        resume(ws, "r1", progress=cancel_at_start, cancel=token)
    r = get_run(ws.store, "r1")
    assert r.status in ("paused", "interrupted") and r.epoch == 1
    assert results_epochs(remote_run / "results.csv") == [1]

    # -- resume there: the dataset is sent again, the run goes to its end -------------------------
    assert run([*w, "train", "resume", "r1", "--json", "-q"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "done" and res["started_epoch"] == 1 and res["epoch"] == 2
    r = get_run(ws.store, "r1")
    assert r.status == "done" and r.epoch == 2 and r.starts == [0, 1, 1]
    assert results_epochs(r.save_dir / "results.csv") == [1, 2]
    assert run([*w, "train", "watch", "r1"]) == 0
    watch = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in watch[1:-1]] == ["1/2", "2/2"] and "2 sessions" in watch[-1]
    jobs = [row[0] for row in ws.store.execute("SELECT status FROM jobs WHERE kind = 'train' ORDER BY id")]
    assert jobs == ["done", "cancelled", "done"]
