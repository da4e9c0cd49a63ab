"""Worst lists by threshold: `select --keys-out` writes plain keys that `dataset build
--exclude @FILE` and `select --keys` read back as they are, and the pitstop report's worst
lists by a user condition (`--worst-by "f1 < 0.5"`, checked as user SQL) or a length."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tuiops.cli import run
from tuiops.errors import InputError, UsageError
from tuiops.ops.select import SelectionSpec, select_files
from tuiops.ops.train import compare_boxes, pitstop_report
from tuiops.ops.train.report import check_worst_by, report_markdown
from tuiops.workspace import Workspace


def test_keys_out_is_plain_keys_that_dataset_build_excludes_without_warnings(root, tmp_path, capsys):
    keys_file = tmp_path / "worst.txt"
    w = str(root)
    cond = "f1 < 0.8"
    assert (
        run(["-w", w, "select", "--match", "master__v1", "--where", cond, "--keys-out", str(keys_file)]) == 0
    )
    out = capsys.readouterr().out
    with Workspace.open(root) as ws:
        sel = select_files(ws, SelectionSpec(where=cond, match="master__v1"))
        want = list(dict.fromkeys(sel.frame["key"].to_list()))
        in_set = {
            r[0]
            for r in ws.store.execute(
                "SELECT i.key FROM set_images s JOIN items i ON i.id = s.item_id "
                "JOIN label_sets l ON l.id = s.set_id WHERE l.name = 'master'"
            )
        }
    assert len(want) >= 2 and set(want) <= in_set
    assert keys_file.read_text(encoding="utf-8") == "".join(f"{k}\n" for k in want)  # no header
    assert f"{len(want)} key(s) written to {keys_file}" in out
    # the same keys come back through --keys
    assert (
        run(
            ["-w", w, "select", "--keys", str(keys_file), "--json", "--keys-out", str(tmp_path / "again.txt")]
        )
        == 0
    )
    back = json.loads(capsys.readouterr().out)
    assert back["unknown_keys"] == 0 and back["keys_written"] == len(want)
    assert (tmp_path / "again.txt").read_text(encoding="utf-8") == keys_file.read_text(encoding="utf-8")
    # dataset build excludes exactly them, with no warning
    code = run(
        [
            "-w",
            w,
            "dataset",
            "build",
            "--set",
            "master",
            "--to",
            str(tmp_path / "ds"),
            "--exclude",
            f"@{keys_file}",
            "--json",
        ]
    )
    res = json.loads(capsys.readouterr().out)
    assert code == 0, res
    assert res["warnings"] == [] and res["excluded"] == len(want)


def test_keys_out_of_an_empty_selection_is_an_empty_file(root, tmp_path, capsys):
    keys_file = tmp_path / "none.txt"
    keys_file.write_text("old\n", encoding="utf-8")
    assert run(["-w", str(root), "select", "--where", "0", "--keys-out", str(keys_file)]) == 0
    assert keys_file.read_text(encoding="utf-8") == ""
    assert "0 key(s) written" in capsys.readouterr().out


def test_keys_with_a_space_a_dot_or_a_hash_go_round_whole(root, matched_root, tmp_path, capsys):
    """Unkeyed images are keyed by their file's stem, which may hold a space, dots or a '#':
    the key list keeps them whole, and `--keys` and `dataset build --exclude @FILE` read them so."""
    import shutil

    from tests.test_train_support import make_label_set

    odd = tmp_path / "odd"
    odd.mkdir()
    src = next(p for p in sorted((matched_root / "pool").glob("*.png")) if p.stat().st_size)
    names = {"my photo": "my photo.png", "a.b": "a.b.png", "x#1": "x#1.png", "c d#e.f": "c d#e.f.png"}
    for name in names.values():
        shutil.copy(src, odd / name)
    w = str(root)
    assert run(["-w", w, "scan", str(odd)]) == 0
    with Workspace.open(root) as ws:
        kept = [r[0] for r in ws.store.execute("SELECT key FROM items WHERE key LIKE 'danbooru_%' LIMIT 3")]
        make_label_set(ws, "odd", {k: [(0, 1.0, 1.0, 5.0, 5.0)] for k in [*names, *kept]})
    keys_file = tmp_path / "odd.txt"
    assert (
        run(
            [
                "-w",
                w,
                "select",
                "--set",
                "odd",
                "--where",
                "in_set = 1 AND key NOT LIKE 'danbooru%'",
                "--keys-out",
                str(keys_file),
            ]
        )
        == 0
    )
    assert sorted(keys_file.read_text(encoding="utf-8").splitlines()) == sorted(names)
    capsys.readouterr()
    assert run(["-w", w, "select", "--keys", str(keys_file), "--json"]) == 0
    back = json.loads(capsys.readouterr().out)
    assert back["unknown_keys"] == 0 and back["files"] == len(names)
    # a file name still reads as its key
    (tmp_path / "names.txt").write_text("".join(f"{n}\n" for n in names.values()), encoding="utf-8")
    assert run(["-w", w, "select", "--keys", str(tmp_path / "names.txt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == len(names)
    argv = ["-w", w, "dataset", "build", "--set", "odd", "--to", str(tmp_path / "ds")]
    code = run([*argv, "--exclude", f"@{keys_file}", "--json"])
    got = capsys.readouterr()
    assert code == 0, got.err
    res = json.loads(got.out)
    assert res["warnings"] == [] and res["excluded"] == len(names)


# -- the pitstop report's worst lists ----------------------------------------------------------------
def _boxes(rows: list[tuple], score: bool = False) -> pl.DataFrame:
    cols = ["id", "item_id", "class_id", "x1", "y1", "x2", "y2"] + (["score"] if score else [])
    return pl.DataFrame(rows, schema=cols, orient="row").with_columns(
        pl.col("id", "item_id", "class_id").cast(pl.Int64), pl.col("x1", "y1", "x2", "y2").cast(pl.Float64)
    )


def _scene() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Four train images: a_1 perfect (f1 1), a_2 one of two found (f1 2/3), a_3 one wrong
    class of one (f1 0), a_4 one found plus three extra (f1 0.4)."""
    labels = _boxes(
        [
            (1, 1, 0, 0, 0, 10, 10),
            (2, 2, 0, 0, 0, 10, 10),
            (3, 2, 0, 50, 50, 90, 90),
            (4, 3, 1, 0, 0, 10, 10),
            (5, 4, 0, 0, 0, 10, 10),
        ]
    )
    dets = _boxes(
        [
            (10, 1, 0, 0, 0, 10, 10, 0.9),
            (11, 2, 0, 0, 0, 10, 10, 0.9),
            (12, 3, 0, 0, 0, 10, 10, 0.9),
            (13, 4, 0, 0, 0, 10, 10, 0.9),
            (14, 4, 0, 30, 30, 40, 40, 0.5),
            (15, 4, 0, 60, 60, 70, 70, 0.5),
            (16, 4, 0, 80, 80, 90, 90, 0.5),
        ],
        score=True,
    )
    images = pl.DataFrame(
        {"item_id": [1, 2, 3, 4], "key": ["a_1", "a_2", "a_3", "a_4"], "split": ["train"] * 4}
    )
    return compare_boxes(labels, dets), images


def worst_keys(body: dict, split: str = "train") -> list[str]:
    return [w["key"] for w in body["splits"][split]["worst_images"]]


def test_worst_by_a_condition_and_worst_top():
    objs, images = _scene()
    assert worst_keys(pitstop_report(objs, images, ["a", "b"])) == ["a_4", "a_2", "a_3"]  # by errors
    assert worst_keys(pitstop_report(objs, images, ["a", "b"], top=1)) == ["a_4"]
    body = pitstop_report(objs, images, ["a", "b"], top=None, worst_by="f1 < 0.5")
    assert worst_keys(body) == ["a_4", "a_3"]
    assert body["worst"] == {"by": "f1 < 0.5", "top": None}
    # the entries show what they showed before
    assert set(body["splits"]["train"]["worst_images"][0]) == {
        "key", "fn", "fp", "wrong_class", "labels", "detections", "missed_area", "errors",
    }  # fmt: skip
    assert worst_keys(pitstop_report(objs, images, ["a", "b"], top=None, worst_by="f1 >= 1")) == ["a_1"]
    assert worst_keys(pitstop_report(objs, images, ["a", "b"], top=1, worst_by="recall < 1")) == ["a_2"]
    assert worst_keys(pitstop_report(objs, images, ["a", "b"], top=None, worst_by="key = 'a_3'")) == ["a_3"]
    assert worst_keys(pitstop_report(objs, images, ["a", "b"], top=None, worst_by="f1 < 0")) == []
    head = {
        "idx": 1, "train": "t", "epoch": 1, "epochs": 2, "weights": "w.pt", "weights_sha256": "0" * 64,
        "best_epoch": 1, "run": "t.pitstop1", "conf": 0.25, "match_iou": 0.5, "label_set": "gt", "dataset": "d",
    }  # fmt: skip
    assert "### worst train images (f1 < 0.5)" in report_markdown(head, body)


def test_worst_by_is_checked_as_user_sql():
    objs, images = _scene()
    for bad, err, text in (
        ("f1 < 0.5; DROP TABLE images", InputError, "holds a ';'"),
        ("f1 < 0.5 -- all", InputError, "comment"),
        ("f1 < 0.5)", InputError, "closes a parenthesis"),
        ("nope < 1", InputError, "no such column: nope"),
        ("f1 < (SELECT count(*) FROM sqlite_master WHERE load_extension('x'))", InputError, "load_extension"),
    ):
        with pytest.raises(err, match=text.replace("(", r"\(").replace(")", r"\)")):
            check_worst_by(bad)
        with pytest.raises(err):
            pitstop_report(objs, images, ["a", "b"], worst_by=bad)
    check_worst_by("f1 < 0.5 AND errors >= 2 OR precision IS NULL")


def test_a_pitstop_refuses_a_bad_worst_list_before_any_work(root, capsys):
    from tuiops.ops.train import run_pitstop

    with Workspace.open(root) as ws:  # refused before the run is even looked up
        with pytest.raises(InputError, match="--worst-by"):
            run_pitstop(ws, "nope", worst_by="f1 <")
        with pytest.raises(UsageError, match="at least 1"):
            run_pitstop(ws, "nope", worst_top=0)
    assert run(["-w", str(root), "train", "report", "nope", "--worst-top", "0"]) == 2
    assert "--worst-top" in capsys.readouterr().err
