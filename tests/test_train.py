"""A real tiny training run through the whole cycle: dataset, pitstop, report, label fix, resume.

A YOLOv8n from yolov8n.yaml (random weights, nothing downloaded) trains on two dozen
drawn 96 px images at imgsz 64 on the CPU: one pitstop after epoch 1, a label fix and
an exclusion, a resume that is cancelled inside epoch 3 (so it pauses after epoch 2), and
a last resume to epoch 4.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.test_train_support import draw_scene, index_pool, make_label_set
from tuiops.cli import run
from tuiops.errors import Cancelled, ConflictError
from tuiops.ops.base import CancelToken
from tuiops.ops.detect import sha256_file
from tuiops.ops.monitor import ResultsFollower
from tuiops.ops.train import get_run, monitor_plan, resume
from tuiops.workspace import Workspace

pytestmark = pytest.mark.slow

CLASSES = ["red", "green"]
FIXED_BOX = (1, 1.0, 2.0, 33.0, 44.0)


def _cache_labels(path: Path) -> dict[str, list[list[float]]]:
    from ultralytics.data.utils import load_dataset_cache_file

    cache = load_dataset_cache_file(path)
    return {
        Path(lb["im_file"]).stem: [
            [float(c), *map(float, b)] for c, b in zip(lb["cls"].ravel(), lb["bboxes"], strict=True)
        ]
        for lb in cache["labels"]
    }


def results_epochs(csv: Path) -> list[int]:
    """The epoch column of a results.csv."""
    lines = csv.read_text().splitlines()[1:]
    return [int(float(ln.split(",")[0])) for ln in lines]


def tiny_train(w: list[str], ds: Path, name: str, epochs: int, *where: str) -> list[str]:
    """``tuiops train DS WHERE…`` for run ``name``: one pitstop, imgsz 64 on the CPU, JSON out."""
    return [
        *w,
        "train",
        str(ds),
        *where,
        "--epochs",
        str(epochs),
        "--pitstops",
        "1",
        "--imgsz",
        "64",
        "--batch",
        "8",
        "--device",
        "cpu",
        "--name",
        name,
        "--pitstop-conf",
        "0.001",
        "workers=0",
        "--json",
        "-q",
    ]


def test_train_with_a_pitstop_fix_and_resume(tmp_path, capsys):
    ws = Workspace.init(tmp_path / "ws", classes=CLASSES)
    pool = tmp_path / "pool"
    boxes = {f"danbooru_{i}": draw_scene(pool / f"danbooru_{i}.png", i) for i in range(24)}
    index_pool(ws, pool)
    make_label_set(ws, "GT", boxes)
    w = ["-w", str(ws.root)]
    ds = tmp_path / "ds"
    assert (
        run([*w, "dataset", "build", "--set", "GT", "--to", str(ds), "--val", "0.25", "--seed", "1", "-q"])
        == 0
    )
    capsys.readouterr()

    # -- train to the pitstop -----------------------------------------------------------------
    code = run(tiny_train(w, ds, "v1", 4, "--model", "yolov8n.yaml", "--worst-top", "3"))
    out = capsys.readouterr().out
    assert code == 0, out
    res = json.loads(out)
    assert res["status"] == "pitstop" and res["epoch"] == 1 and res["next_pitstop"] is None
    p = res["pitstop"]
    assert p["run"] == "v1.pitstop1" and p["epoch"] == 1 and p["best_epoch"] == 1
    run_dir = ws.root / "training" / "v1"
    # lineage of the pitstop's detection run: the copied best weights, their hash, the epoch
    row = ws.store.execute(
        "SELECT weights, weights_sha256, epoch, source FROM runs WHERE name = 'v1.pitstop1'"
    ).fetchone()
    assert row[0] == str(run_dir / "tuiops" / "pitstop-1-best.pt")
    assert row[1] == sha256_file(row[0]) == p["weights_sha256"] and row[2] == 1 and row[3] == "train:v1"
    assert (
        ws.store.one(
            "SELECT count(*) FROM run_images r JOIN runs u ON u.id = r.run_id WHERE u.name = 'v1.pitstop1'"
        )
        == 24
    )
    report = json.loads(Path(p["report_json"]).read_text())
    # the run's worst lists (--worst-top 3), at this pitstop and at a report redone without its own
    assert report["body"]["worst"] == {"by": None, "top": 3}
    assert all(len(s["worst_images"]) <= 3 for s in report["body"]["splits"].values())
    totals = [report["body"]["splits"][s]["totals"] for s in ("train", "val")]
    for t in totals:
        assert t["tp"] + t["fn"] + t["wrong_class"] == t["labels"]
    assert sum(t["labels"] for t in totals) == sum(len(b) for b in boxes.values())
    assert sum(t["images"] for t in totals) == 24
    if importlib.util.find_spec("tuiops.ops.match") is not None:  # the match tables are stored too
        assert any("match 'v1.pitstop1' stored" in n for n in p["notes"]), p["notes"]
    md = Path(p["report"]).read_text()
    assert "# Pitstop 1 of training run v1" in md and "worst train images" in md
    assert Path(p["worst_lists"]["train"]).read_text().startswith("# worst train images")
    # the checkpoint copy is resumable; ultralytics' own last.pt was stripped by its final evaluation
    import torch

    ckpt = torch.load(run_dir / "tuiops" / "resume.pt", map_location="cpu", weights_only=False)
    assert ckpt["optimizer"] is not None and ckpt["epoch"] == 0
    assert (
        torch.load(run_dir / "weights" / "last.pt", map_location="cpu", weights_only=False)["optimizer"]
        is None
    )
    assert run([*w, "train", "status", "v1"]) == 0
    status = capsys.readouterr().out
    assert "pitstop 1" in status and "train resume v1" in status

    # -- redone with the run's worst lists, with worst lists by a condition, then by a length ---------
    assert run([*w, "train", "report", "v1", "--json", "-q"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert json.loads(Path(got["report_json"]).read_text())["body"]["worst"] == {"by": None, "top": 3}
    assert run([*w, "train", "report", "v1", "--worst-by", "f1 < 1", "--json", "-q"]) == 0
    got = json.loads(capsys.readouterr().out)
    body = json.loads(Path(got["report_json"]).read_text())["body"]
    assert body["worst"] == {"by": "f1 < 1", "top": None}
    listed = Path(got["worst_lists"]["train"]).read_text().splitlines()
    assert listed[0] == "# worst train images at pitstop 1 of v1 (f1 < 1)" and len(listed) > 1
    assert listed[1:] == [r["key"] for r in body["splits"]["train"]["worst_images"]]
    assert run([*w, "train", "report", "v1", "--worst-top", "2", "--json", "-q"]) == 0
    got = json.loads(capsys.readouterr().out)
    body = json.loads(Path(got["report_json"]).read_text())["body"]
    assert all(len(s["worst_images"]) <= 2 for s in body["splits"].values())
    assert run([*w, "train", "report", "v1", "--worst-by", "nope < 1", "-q"]) == 4
    assert "no such column: nope" in capsys.readouterr().err

    # -- redone at a conf the early model never reaches: loud warnings, no worst list ----------------
    assert run([*w, "train", "report", "v1", "--conf", "0.999", "-q"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: NO DETECTIONS at conf >= 0.999 in train" in out, out
    # the detection run is stored from conf 0.001 whatever the conf it is compared at
    assert ws.store.one("SELECT conf FROM runs WHERE name = 'v1.pitstop1'") == 0.001
    for split in ("train", "val"):
        text = (run_dir / "tuiops" / f"pitstop-1-worst-{split}.txt").read_text()
        assert [ln for ln in text.splitlines() if not ln.startswith("#")] == [], text
    assert "> **WARNING** NO DETECTIONS" in (run_dir / "tuiops" / "pitstop-1.md").read_text()
    assert run([*w, "train", "status", "v1"]) == 0
    assert "WARNING: NO DETECTIONS at conf >= 0.999" in capsys.readouterr().out
    assert monitor_plan(ws.store, "v1")["warnings"][0].startswith("pitstop 1: NO DETECTIONS at conf >= 0.999")

    # -- a dataset with another class count is refused -----------------------------------------
    data_yaml = ds / "data.yaml"
    original = data_yaml.read_text()
    doc = yaml.safe_load(original)
    doc["names"][2] = "blue"
    data_yaml.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConflictError, match="3 classes"):
        resume(ws, "v1", rebuild=False)
    data_yaml.write_text(original)
    assert get_run(ws.store, "v1").status == "pitstop"

    # -- fix a label and leave an image out, then resume; pause after epoch 3 ----------------------
    make_label_set(ws, "GT", {**boxes, "danbooru_0": [*boxes["danbooru_0"], FIXED_BOX]})
    worst = tmp_path / "leave-out.txt"
    worst.write_text("danbooru_1\n")
    token = CancelToken()

    def cancel_once_epoch_2_is_saved(ev):
        if ev.op == "train" and ev.done >= 2:
            token.cancel()

    with pytest.raises(Cancelled, match=r"paused after epoch 2 \(stopped during epoch 3, batch 1/\d"):
        resume(ws, "v1", exclude=["@" + str(worst)], progress=cancel_once_epoch_2_is_saved, cancel=token)
    r = get_run(ws.store, "v1")
    assert r.status == "paused" and r.epoch == 2
    # the half-trained epoch 3 left no trace: not logged, and the checkpoint is epoch 2's
    assert results_epochs(run_dir / "results.csv") == [1, 2]
    assert torch.load(run_dir / "tuiops" / "resume.pt", map_location="cpu", weights_only=False)["epoch"] == 1
    # the resumed run read the fixed labels (its label cache was rebuilt from them)
    cached = _cache_labels(ds / "labels" / "train.cache") | _cache_labels(ds / "labels" / "val.cache")
    assert "danbooru_1" not in cached and len(cached) == 23
    c, x1, y1, x2, y2 = FIXED_BOX
    want = [c, (x1 + x2) / 2 / 96, (y1 + y2) / 2 / 96, (x2 - x1) / 96, (y2 - y1) / 96]
    assert any(b == pytest.approx(want, abs=1e-5) for b in cached["danbooru_0"])
    assert len(cached["danbooru_0"]) == len(boxes["danbooru_0"]) + 1

    # -- the last resume runs to the end ------------------------------------------------------------
    assert run([*w, "train", "resume", "v1", "--json", "-q"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "done" and res["started_epoch"] == 2 and res["epoch"] == 4
    assert res["dataset"]["excluded"] == 1 and res["dataset"]["images"] == 23
    csv = run_dir / "results.csv"
    assert results_epochs(csv) == [1, 2, 3, 4]  # every epoch once, in order
    follower = ResultsFollower.for_path(csv)
    follower.poll()
    plan = monitor_plan(ws.store, "v1")
    assert plan["starts"] == [0, 1, 2]
    state = follower.state(**plan)
    # one-epoch sessions are told apart by the store's resume points, not by the clock
    assert state.epochs["session"].to_list() == [0, 1, 2, 2]
    assert state.sessions == 3 and state.superseded == 0 and state.epoch == 4
    assert run([*w, "train", "watch", "v1"]) == 0
    watch = capsys.readouterr().out.splitlines()
    epochs = [ln.split()[0] for ln in watch[1:-1]]
    assert epochs == ["1/4", "2/4", "3/4", "4/4"]
    assert "pitstop" in watch[1] and "3 sessions" in watch[-1]
    assert run([*w, "train", "resume", "v1"]) == 2
    assert "finished" in capsys.readouterr().err
    jobs = pl.DataFrame(
        ws.store.execute("SELECT kind, status FROM jobs WHERE kind = 'train' ORDER BY id").fetchall(),
        schema=["kind", "status"],
        orient="row",
    )
    assert jobs["status"].to_list() == ["done", "cancelled", "done"]
    ws.close()
