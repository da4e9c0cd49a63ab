"""The ready scripts in scripts/ run headless on a demo workspace, with tiny settings."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tuiops.cli import run

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
READY = ["pitstop_cycle.yaml", "reprocess.yaml", "prepare_training.yaml", "projects.yaml"]


def _has_project_commands() -> bool:
    from tuiops.cli import cli

    group = cli.commands.get("project")
    return group is not None and {"build", "mix"} <= set(getattr(group, "commands", {}))


needs_projects = pytest.mark.skipif(
    not _has_project_commands(), reason="`tuiops project build` and `project mix` are not in this build"
)


def make_ws(root: Path, images: int = 16) -> Path:
    from tuiops.ops.demo import make_demo

    make_demo(root, images=images, seed=7)
    return root


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ws(tmp_path_factory.mktemp("ready") / "demo")


def run_json(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code = run(["-w", str(root), "run", *args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("name", READY)
def test_every_ready_script_validates_on_the_demo(demo, capsys, name):
    if name == "projects.yaml" and not _has_project_commands():
        pytest.skip("`tuiops project build` and `project mix` are not in this build")
    res = run_json(demo, capsys, str(SCRIPTS / name), "--dry-run")
    assert res["valid"] and res["steps"] >= 3


def test_prepare_training_end_to_end(tmp_path, capsys):
    root = make_ws(tmp_path / "ws")
    res = run_json(root, capsys, str(SCRIPTS / "prepare_training.yaml"))
    assert res["status"] == "done"
    steps = {s["name"]: s for s in res["steps"]}
    assert [s["status"] for s in res["steps"]] == ["done"] * 4
    assert steps["dedupe"]["outputs"]["into"] == "master-clean"
    build = steps["build"]["outputs"]
    assert build["label_set"] == "master-clean" and build["images"] > 0
    assert (root / "datasets" / "master-clean" / "data.yaml").is_file()
    counts = {row["class"]: row["boxes"] for row in steps["summary"]["outputs"]["items"]}
    with sqlite3.connect(root / "tuiops.db") as conn:
        stored = dict(
            conn.execute(
                "SELECT class, count(*) FROM v_labels WHERE label_set = 'master-clean' GROUP BY class"
            ).fetchall()
        )
    assert counts == stored


@needs_projects
def test_projects_end_to_end(tmp_path, capsys):
    root = make_ws(tmp_path / "ws", images=4)
    if not (root / "projects" / "close_button").is_dir():
        shutil.copytree(REPO / "projects", root / "projects", dirs_exist_ok=True)
    res = run_json(
        root,
        capsys,
        str(SCRIPTS / "projects.yaml"),
        "--var",
        "count=3",
        "--var",
        "tar=datasets/mix.tar.gz",
    )
    assert [s["status"] for s in res["steps"]] == ["done"] * 3
    assert (root / "datasets" / "mix").is_dir()
    assert (root / "datasets" / "mix.tar.gz").is_file()
    # a second run builds nothing again (unchanged projects) and ends the same
    again = run_json(root, capsys, str(SCRIPTS / "projects.yaml"), "--var", "count=3")
    assert again["status"] == "done"


@pytest.mark.slow
def test_pitstop_cycle_then_reprocess(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "true")
    root = make_ws(tmp_path / "ws", images=16)
    res = run_json(root, capsys, str(SCRIPTS / "pitstop_cycle.yaml"))
    by = {s["name"]: s for s in res["steps"]}
    assert by["train"]["outputs"]["status"] == "pitstop"
    assert by["match"]["outputs"]["run"] == "cycle.pitstop1"
    assert by["resume"]["status"] == "done"
    assert by["resume"]["outputs"]["status"] == "done"
    assert by["resume"]["outputs"]["epoch"] == 3
    exported = [n for n in ("review_fn", "review_fp") if by[n]["status"] == "done"]
    assert exported, "no review subset was exported"
    for n in exported:
        assert Path(by[n]["outputs"]["to"]).is_dir()
    weights = by["resume"]["outputs"]["best_weights"]
    assert Path(weights).is_file()

    res = run_json(
        root,
        capsys,
        str(SCRIPTS / "reprocess.yaml"),
        "--var",
        f"weights={weights}",
        "--var",
        "imgsz=64",
        "--var",
        "new=cycle-pool",
    )
    by = {s["name"]: s for s in res["steps"]}
    assert res["status"] == "done"
    assert by["eval_new"]["outputs"]["run"] == "cycle-pool"
    assert by["regressions"]["status"] == "done"
    with sqlite3.connect(root / "tuiops.db") as conn:
        runs = {r[0] for r in conn.execute("SELECT name FROM runs")}
        statuses = conn.execute("SELECT status FROM script_runs ORDER BY id").fetchall()
    assert {"v1", "cycle.pitstop1", "cycle-pool"} <= runs
    assert statuses == [("done",), ("done",)]
