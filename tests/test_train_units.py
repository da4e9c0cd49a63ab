"""Training without training: plans, arguments, refusals, the comparison and the report."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.test_train_support import draw_scene, index_pool, make_label_set
from tuiops.cli import run
from tuiops.errors import ConflictError, NotFoundError, UsageError
from tuiops.ops.dataset import build_dataset
from tuiops.ops.train import (
    compare_boxes,
    parse_overrides,
    pitstop_epochs,
    pitstop_report,
    resume,
    train,
)
from tuiops.ops.train.local import _trim_results


def test_pitstop_plan():
    assert pitstop_epochs([0.4, 0.7], 100) == [40, 70]
    assert pitstop_epochs([0.7, 40, 0.4], 100) == [40, 70]
    assert pitstop_epochs([0.1], 3) == [1]
    assert pitstop_epochs([], 5) == []
    for bad in ([1.0 * 100], [0.999], [0], [-0.2], [2.5]):
        with pytest.raises(UsageError):
            pitstop_epochs(bad, 100 if bad != [0.999] else 10)


def test_overrides():
    assert parse_overrides(["lr0=0.005", "mosaic=0", "cos_lr=true", "freeze=[0, 1]", "optimizer=SGD"]) == {
        "lr0": 0.005,
        "mosaic": 0,
        "cos_lr": True,
        "freeze": [0, 1],
        "optimizer": "SGD",
    }
    for bad in (["lr0"], ["epochs=3"], ["data=x.yaml"], ["Bad-Name=1"]):
        with pytest.raises(UsageError):
            parse_overrides(bad)


def _boxes(rows: list[tuple], score: bool = False) -> pl.DataFrame:
    cols = ["id", "item_id", "class_id", "x1", "y1", "x2", "y2"] + (["score"] if score else [])
    return pl.DataFrame(rows, schema=cols, orient="row").with_columns(
        pl.col("id", "item_id", "class_id").cast(pl.Int64), pl.col("x1", "y1", "x2", "y2").cast(pl.Float64)
    )


def test_compare_is_one_to_one_and_finds_wrong_classes():
    labels = _boxes(
        [
            (1, 1, 0, 0, 0, 10, 10),
            (2, 1, 0, 1, 1, 11, 11),  # a second label overlapping the first
            (3, 1, 1, 50, 50, 60, 60),  # detected as class 0: wrong class
            (4, 2, 0, 0, 0, 20, 20),  # missed
        ]
    )
    dets = _boxes(
        [
            (10, 1, 0, 0, 0, 10, 10, 0.9),  # matches label 1 exactly
            (11, 1, 0, 1, 1, 11, 12, 0.8),  # matches label 2 (label 1 is taken)
            (12, 1, 0, 0, 0, 10, 10, 0.7),  # a repeat: extra
            (13, 1, 0, 50, 50, 60, 61, 0.6),  # over label 3, other class
            (14, 3, 1, 0, 0, 5, 5, 0.5),  # on an image without labels: extra
        ],
        score=True,
    )
    objs = compare_boxes(labels, dets, iou=0.5)
    kinds = {(r["kind"], r["label_id"], r["det_id"]) for r in objs.iter_rows(named=True)}
    assert kinds == {
        ("tp", 1, 10),
        ("tp", 2, 11),
        ("class", 3, 13),
        ("fn", 4, None),
        ("fp", None, 12),
        ("fp", None, 14),
    }
    wrong = objs.filter(pl.col("kind") == "class").row(0, named=True)
    assert wrong["class_id"] == 1 and wrong["det_class"] == 0
    assert objs.filter(pl.col("kind") == "fn")["area"].item() == 400.0


def test_report_counts_worst_images_and_change():
    labels = _boxes([(1, 1, 0, 0, 0, 10, 10), (2, 2, 1, 0, 0, 40, 40), (3, 3, 0, 0, 0, 8, 8)])
    dets = _boxes([(10, 1, 0, 0, 0, 10, 10, 0.9), (11, 2, 0, 60, 60, 70, 70, 0.4)], score=True)
    images = pl.DataFrame(
        {
            "item_id": [1, 2, 3, 4],
            "key": ["a_1", "a_2", "a_3", "a_4"],
            "split": ["train", "train", "val", "val"],
        }
    )
    classes = ["red", "green"]
    first = pitstop_report(compare_boxes(labels, dets), images, classes)
    tr = first["splits"]["train"]
    assert tr["totals"] == {
        "images": 2,
        "labels": 2,
        "detections": 2,
        "tp": 1,
        "fp": 1,
        "fn": 1,
        "wrong_class": 0,
        "precision": 0.5,
        "recall": 0.5,
        "mean_iou": 1.0,
    }
    assert tr["worst_images"][0]["key"] == "a_2" and tr["worst_images"][0]["errors"] == 2
    assert tr["largest_differences"]["green"]["missed"][0]["key"] == "a_2"
    assert tr["largest_differences"]["red"]["extra"][0]["score"] == 0.4
    assert tr["change"] is None
    assert first["splits"]["val"]["totals"]["fn"] == 1 and first["splits"]["val"]["totals"]["images"] == 2
    better = _boxes([(10, 1, 0, 0, 0, 10, 10, 0.9), (12, 2, 1, 0, 0, 40, 36, 0.8)], score=True)
    second = pitstop_report(compare_boxes(labels, better), images, classes, previous=first)
    ch = second["splits"]["train"]["change"]
    assert ch["tp"] == 1 and ch["fp"] == -1 and ch["fn"] == -1 and ch["recall"] == 0.5
    assert ch["classes"]["green"]["fn"] == -1
    assert second["splits"]["train"]["largest_differences"]["green"]["loose"] == []


def test_trim_results(tmp_path):
    p = tmp_path / "results.csv"
    p.write_text("epoch,time\n1,1\n2,2\n3,3\n2,1\n4,9", encoding="utf-8")
    assert _trim_results(p, 2) == 3
    assert p.read_text() == "epoch,time\n1,1\n2,1\n"
    assert _trim_results(p, 2) == 0
    assert _trim_results(tmp_path / "none.csv", 2) == 0


@pytest.fixture
def small_ds(ws, tmp_path):
    pool = tmp_path / "pool"
    boxes = {f"danbooru_{i}": draw_scene(pool / f"danbooru_{i}.png", i) for i in range(6)}
    index_pool(ws, pool)
    make_label_set(ws, "GT", boxes)
    build_dataset(ws, "GT", tmp_path / "ds", val=0.3)
    return ws, tmp_path / "ds"


def test_train_refuses_before_training(small_ds, tmp_path, capsys):
    ws, ds = small_ds
    with pytest.raises(NotFoundError, match="no dataset"):
        train(ws, tmp_path / "nowhere", epochs=3)
    with pytest.raises(UsageError, match="before the end"):
        train(ws, ds, epochs=3, pitstops=[3])
    with pytest.raises(UsageError, match="set by tuiops"):
        train(ws, ds, epochs=3, overrides={"epochs": 4})
    with pytest.raises(UsageError, match="not valid"):
        train(ws, ds, epochs=3, name="bad name!")
    with pytest.raises(NotFoundError, match="does not exist"):
        train(ws, ds, epochs=3, model=str(tmp_path / "missing.pt"))
    with pytest.raises(NotFoundError, match="no training run"):
        resume(ws, "nope")
    w = ["-w", str(ws.root)]
    assert run([*w, "train", str(ds), "--epochs", "2", "--pitstops", "0.4,x"]) == 2
    assert run([*w, "train", str(ds), "--epochs", "2", "lr0"]) == 2
    assert run([*w, "train", "status"]) == 0
    assert "(no training runs)" in capsys.readouterr().out
    assert run([*w, "train", "status", "nope"]) == 5
    assert run([*w, "train", "resume", "nope"]) == 5
    assert "Traceback" not in capsys.readouterr().err


def test_a_run_that_fails_is_recorded_and_resumable_only_with_a_checkpoint(small_ds, tmp_path):
    ws, ds = small_ds
    from tuiops.errors import InputError

    with pytest.raises(InputError, match="cannot load the model"):
        train(ws, ds, epochs=2, model="no_such_model.yaml", name="broken")
    row = ws.store.execute("SELECT status, error FROM train_runs WHERE name = 'broken'").fetchone()
    assert row[0] == "failed" and "no_such_model" in row[1]
    assert ws.store.one("SELECT status FROM jobs WHERE kind = 'train'") == "failed"
    with pytest.raises(NotFoundError, match="no checkpoint"):
        resume(ws, "broken")
    with pytest.raises(ConflictError, match="exists already"):
        train(ws, ds, epochs=2, model="no_such_model.yaml", name="broken")


def test_a_pitstop_with_no_detection_at_its_conf_warns_and_lists_no_worst_images(small_ds, tmp_path):
    from tuiops.ops.dataset import dataset_images
    from tuiops.ops.monitor import format_footer, summarize
    from tuiops.ops.pitstop import STORE_CONF, pitstop_compare, write_worst_lists
    from tuiops.ops.train import report_markdown

    ws, _ = small_ds
    images = dataset_images(ws.store, "ds")
    labels = ws.store.read_labels("GT")
    # an early model: every label found, but every score under the default conf of 0.25
    dets = labels.select(
        "item_id", "class_id", "x1", "y1", "x2", "y2", (0.02 + pl.col("id").rank() / 1000).alias("score")
    )
    ws.store.create_run("v1.pitstop1", dets, images.select("item_id"), conf=STORE_CONF)
    body, notes, warnings = pitstop_compare(ws, "ds", "v1.pitstop1", images, conf=0.25)
    assert [s["totals"]["detections"] for s in body["splits"].values()] == [0, 0]
    # the worst lists fed to `train resume --exclude` name no image
    lists = write_worst_lists(tmp_path, "v1", 1, body, 0.25)
    for split, path in lists.items():
        text = Path(path).read_text()
        assert [ln for ln in text.splitlines() if not ln.startswith("#")] == [], text
        assert f"no detection at conf >= 0.25 in {split}" in text
    assert body["splits"]["train"]["worst_images"]  # by labels only: not listed
    assert len(warnings) == 2 and all(w.startswith("NO DETECTIONS at conf >= 0.25 in ") for w in warnings)
    best = dets.join(images.filter(pl.col("split") == "val"), on="item_id", how="semi")["score"].max()
    assert f"best score there is {best:.3f}" in warnings[1] and "tuiops train report" in warnings[1]
    # the stored match is made at the chosen conf, over the stored run
    assert any("match 'v1.pitstop1' stored" in n for n in notes)
    assert ws.store.one("SELECT conf FROM matches WHERE name = 'v1.pitstop1'") == 0.25
    # at a conf the model reaches there are detections and no warning
    body, _, warnings = pitstop_compare(ws, "ds", "v1.pitstop1", images, conf=0.01)
    assert warnings == [] and all(s["totals"]["tp"] == s["totals"]["labels"] for s in body["splits"].values())
    listed = Path(write_worst_lists(tmp_path, "v1", 1, body, 0.01)["train"]).read_text().splitlines()
    assert listed[1:] == [w["key"] for w in body["splits"]["train"]["worst_images"]]
    head = {
        "idx": 1,
        "train": "v1",
        "epoch": 1,
        "epochs": 4,
        "weights": "w.pt",
        "weights_sha256": "0" * 64,
        "best_epoch": 1,
        "run": "v1.pitstop1",
        "conf": 0.25,
        "stored_conf": STORE_CONF,
        "match_iou": 0.5,
        "label_set": "GT",
        "dataset": "ds",
        "warnings": ["NO DETECTIONS at conf >= 0.25 in val (2 images, 3 labels): …"],
    }
    md = report_markdown(head, {"splits": {}})
    assert "> **WARNING** NO DETECTIONS at conf >= 0.25 in val" in md
    assert "stored at conf ≥ 0.001, compared at conf ≥ 0.25" in md
    footer = format_footer(summarize("", warnings=["pitstop 1: NO DETECTIONS at conf >= 0.25 in val"]))
    assert "WARNING pitstop 1: NO DETECTIONS at conf >= 0.25 in val" in footer


def test_train_start_takes_the_pitstops_worst_lists(small_ds, tmp_path, capsys):
    """`train start --worst-by/--worst-top` are checked before anything starts and kept with the
    run for every pitstop (and for `train report` without its own)."""
    import json

    from tuiops.errors import InputError

    ws, ds = small_ds
    w = ["-w", str(ws.root)]
    assert run([*w, "train", str(ds), "--epochs", "2", "--worst-by", "f1 <", "--name", "bad"]) == 4
    assert "--worst-by" in capsys.readouterr().err
    assert run([*w, "train", str(ds), "--epochs", "2", "--worst-by", "nope < 1", "--name", "bad"]) == 4
    assert "no such column: nope" in capsys.readouterr().err
    assert run([*w, "train", str(ds), "--epochs", "2", "--worst-top", "0", "--name", "bad"]) == 2
    assert ws.store.one("SELECT count(*) FROM train_runs") == 0  # refused before any run
    with pytest.raises(InputError, match="cannot load the model"):
        train(ws, ds, epochs=2, model="no_such_model.yaml", name="kept", worst_by="f1 < 0.5", worst_top=3)
    args = json.loads(ws.store.one("SELECT args FROM train_runs WHERE name = 'kept'"))
    assert args["_pitstop"]["worst_by"] == "f1 < 0.5" and args["_pitstop"]["worst_top"] == 3
