"""`tuiops labels …` and `tuiops dets …` through the real CLI, asserting through the store."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

# Imported up front, so that a test running without root's privileges needs no new imports.
import tuiops.formats.classes
import tuiops.formats.coco
import tuiops.formats.voc
import tuiops.formats.yolo
import tuiops.ops.labels
from tests.conftest import CLASSES, add_items, draw_image
from tuiops.cli import cli, run
from tuiops.workspace import Workspace

W, H = 640, 480


@pytest.fixture
def wsdir(tmp_path: Path) -> Path:
    ws = Workspace.init(tmp_path / "ws", classes=list(CLASSES))
    add_items(ws, [f"danbooru_{i}" for i in range(1, 4)], width=W, height=H)
    ws.close()
    return tmp_path / "ws"


def tuiops(wsdir: Path, *args: str) -> int:
    return run(["-w", str(wsdir), *args])


def store_count(wsdir: Path, sql: str) -> int:
    with Workspace.open(wsdir) as ws:
        return int(ws.store.one(sql))


def labels_dir(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


GOOD = {
    "danbooru_1.txt": "0 0.500000 0.500000 0.100000 0.200000\n",
    "danbooru_2.txt": "",
}
BAD = {**GOOD, "danbooru_3.txt": "0 0.5 0.5\n1 0.5 0.5 0.1 0.1\n", "danbooru_9.txt": "0 0.5 0.5 0.1 0.1\n"}


def test_scan_drawn_images_then_import_and_export(tmp_path, capsys):
    wsdir = tmp_path / "ws"
    assert run(["init", str(wsdir), "--classes", ",".join(CLASSES)]) == 0
    for i, size in ((1, (320, 200)), (2, (200, 320))):
        draw_image(tmp_path / "pool" / f"danbooru_{i}.png", size=size, seed=i)
    assert tuiops(wsdir, "scan", str(tmp_path / "pool"), "-q") == 0
    src = labels_dir(
        tmp_path / "labels",
        {"danbooru_1.txt": "1 0.5 0.5 0.5 0.5\n", "danbooru_2.txt": "3 0.5 0.5 0.5 0.5\n"},
    )
    capsys.readouterr()
    assert tuiops(wsdir, "labels", "import", str(src), "--set", "master", "-q") == 0
    out = capsys.readouterr().out
    assert "imported label set 'master'" in out and "2 image(s), 2 box(es)" in out
    with Workspace.open(wsdir) as ws:
        rows = ws.store.execute("SELECT key, class, x1, y1, x2, y2 FROM v_labels ORDER BY key").fetchall()
    assert rows == [
        ("danbooru_1", "upper_body", 80.0, 50.0, 240.0, 150.0),
        ("danbooru_2", "hand", 50.0, 80.0, 150.0, 240.0),
    ]
    assert (
        tuiops(
            wsdir,
            "labels",
            "export",
            "--set",
            "master",
            "--format",
            "voc",
            "--to",
            str(tmp_path / "voc"),
            "-q",
        )
        == 0
    )
    xml = (tmp_path / "voc" / "danbooru_2.xml").read_text()
    assert "<filename>danbooru_2.png</filename>" in xml and "<width>200</width>" in xml
    assert f"<path>{tmp_path / 'pool' / 'danbooru_2.png'}</path>" in xml


def test_problems_go_to_stderr_with_file_and_line(wsdir, tmp_path, capsys):
    src = labels_dir(tmp_path / "l", BAD)
    assert tuiops(wsdir, "labels", "import", str(src), "--set", "m", "-q") == 0
    cap = capsys.readouterr()
    assert cap.err.splitlines() == [
        f"{src}/danbooru_3.txt:1: expected 5 fields (class cx cy w h), found 3",
        f"{src}/danbooru_9.txt: label without an image: no image with key 'danbooru_9' in the store; "
        "scan the pool that holds it first (`tuiops scan`)",
    ]
    assert "skipped 1 file(s) and 2 box(es): 2 problem(s)" in cap.out
    assert store_count(wsdir, "SELECT count(*) FROM labels") == 2
    assert tuiops(wsdir, "labels", "import", str(src), "--set", "m2", "--show", "1", "-q") == 0
    assert "… and 1 more problem(s)" in capsys.readouterr().err


def test_json_summary(wsdir, tmp_path, capsys):
    src = labels_dir(tmp_path / "l", BAD)
    assert tuiops(wsdir, "labels", "import", str(src), "--set", "m", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["imported"] is True and data["set"] == "m"
    assert (data["images"], data["boxes"], data["files_skipped"], data["boxes_skipped"]) == (3, 2, 1, 2)
    assert data["problems"][0] == {
        "file": f"{src}/danbooru_3.txt",
        "line": 1,
        "message": "expected 5 fields (class cx cy w h), found 3",
    }


def test_strict_exit_code_and_nothing_stored(wsdir, tmp_path, capsys):
    src = labels_dir(tmp_path / "l", BAD)
    assert tuiops(wsdir, "labels", "import", str(src), "--set", "m", "--strict", "-q") == 4
    cap = capsys.readouterr()
    assert "danbooru_3.txt:1: expected 5 fields" in cap.err
    assert "nothing imported (--strict rejects the whole label set 'm')" in cap.err
    assert store_count(wsdir, "SELECT count(*) FROM label_sets") == 0
    assert tuiops(wsdir, "labels", "import", str(src), "--set", "m", "--strict", "--json") == 4
    assert json.loads(capsys.readouterr().out)["imported"] is False


def test_errors_without_traceback(wsdir, tmp_path, capsys):
    assert tuiops(wsdir, "labels", "import", str(tmp_path / "nope"), "--set", "m", "--format", "yolo") == 4
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{oops")
    assert tuiops(wsdir, "labels", "import", str(tmp_path / "bad.json"), "--set", "m") == 4
    err = capsys.readouterr().err
    assert "bad.json:1: not valid JSON" in err and "Traceback" not in err
    assert (
        tuiops(wsdir, "labels", "export", "--set", "nope", "--format", "yolo", "--to", str(tmp_path / "o"))
        == 5
    )
    assert tuiops(wsdir, "labels", "import", str(tmp_path), "--set", "m", "--tolerance", "wide") == 2


def test_export_refuses_to_overwrite(wsdir, tmp_path, capsys):
    src = labels_dir(tmp_path / "l", GOOD)
    assert tuiops(wsdir, "labels", "import", str(src), "--set", "m", "-q") == 0
    out = tmp_path / "out"
    assert tuiops(wsdir, "labels", "export", "--set", "m", "--format", "yolo", "--to", str(out), "-q") == 0
    (out / "danbooru_1.txt").write_text("hand-edited\n")
    assert tuiops(wsdir, "labels", "export", "--set", "m", "--format", "yolo", "--to", str(out), "-q") == 6
    assert "3 file(s) exist already" in capsys.readouterr().err
    assert (out / "danbooru_1.txt").read_text() == "hand-edited\n"
    assert (
        tuiops(
            wsdir, "labels", "export", "--set", "m", "--format", "yolo", "--to", str(out), "--overwrite", "-q"
        )
        == 0
    )
    assert (out / "danbooru_1.txt").read_text() == GOOD["danbooru_1.txt"]
    coco = tmp_path / "m.json"
    assert tuiops(wsdir, "labels", "export", "--set", "m", "--format", "coco", "--to", str(coco), "-q") == 0
    assert tuiops(wsdir, "labels", "export", "--set", "m", "--format", "coco", "--to", str(coco), "-q") == 6


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Drop root's effective ids for the block (file permissions apply again)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder anybody may use (for the workspace of a test that drops privileges)."""
    base = Path(tempfile.mkdtemp(prefix="tuiops-ro-"))
    os.chmod(base, 0o777)
    try:
        yield base
    finally:
        for p in base.rglob("*"):
            with contextlib.suppress(OSError):
                p.chmod(0o777 if p.is_dir() else 0o666)
        shutil.rmtree(base, ignore_errors=True)


def test_export_to_a_read_only_folder(open_dir, capsys):
    wsdir = open_dir / "ws"
    ws = Workspace.init(wsdir, classes=list(CLASSES))
    add_items(ws, ["danbooru_1", "danbooru_2"], width=W, height=H)
    ws.close()
    src = labels_dir(open_dir / "labels", GOOD)
    assert tuiops(wsdir, "labels", "import", str(src), "--set", "m", "-q") == 0
    for p in [wsdir, *wsdir.iterdir()]:
        p.chmod(0o777 if p.is_dir() else 0o666)
    target = open_dir / "readonly"
    target.mkdir()
    target.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    capsys.readouterr()
    with unprivileged():
        rc = tuiops(wsdir, "labels", "export", "--set", "m", "--format", "yolo", "--to", str(target), "-q")
        rc_coco = tuiops(
            wsdir, "labels", "export", "--set", "m", "--format", "coco", "--to", str(target / "m.json"), "-q"
        )
    err = capsys.readouterr().err
    assert (rc, rc_coco) == (10, 10)
    assert f"cannot write into {target}: permission denied" in err
    assert "Traceback" not in err
    assert list(target.iterdir()) == []


def test_failure_while_writing_leaves_nothing_behind(wsdir, tmp_path, capsys):
    long_key = "x" * 300
    with Workspace.open(wsdir) as ws:
        items = add_items(ws, [long_key], width=W, height=H)
        import polars as pl

        boxes = pl.DataFrame({"item_id": [], "class_id": [], "x1": [], "y1": [], "x2": [], "y2": []})
        first = (
            ws.store.read_items().filter(pl.col("key") == "danbooru_1").select(pl.col("id").alias("item_id"))
        )
        ws.store.create_label_set("long", boxes, pl.concat([first, items.select("item_id")]))
    out = tmp_path / "out"
    assert (
        tuiops(wsdir, "labels", "export", "--set", "long", "--format", "yolo", "--to", str(out), "-q") == 10
    )
    assert "file name is too long" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_detections_through_the_cli(wsdir, tmp_path, capsys):
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"\0" * 1000)
    src = labels_dir(
        tmp_path / "pred",
        {"danbooru_1.txt": "0 0.5 0.5 0.1 0.1 0.75\n", "danbooru_2.txt": "0 0.5 0.5 0.1 0.1\n"},
    )
    rc = tuiops(
        wsdir,
        "dets",
        "import",
        str(src),
        "--run",
        "v1",
        "--weights",
        str(weights),
        "--conf",
        "0.25",
        "--iou",
        "0.7",
        "--epoch",
        "12",
        "--json",
    )
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert (
        data["run"] == "v1"
        and data["boxes"] == 1
        and "no confidence column" in data["problems"][1]["message"]
        and data["images"] == 1
        and data["images_without_boxes"] == 1
    )
    with Workspace.open(wsdir) as ws:
        assert ws.store.execute("SELECT conf, iou, epoch FROM runs").fetchone() == (0.25, 0.7, 12)
    res = tmp_path / "v1.json"
    assert tuiops(wsdir, "dets", "export", "--run", "v1", "--format", "coco", "--to", str(res), "-q") == 0
    assert json.loads(res.read_text())[0]["score"] == 0.75
    assert (
        tuiops(
            wsdir,
            "dets",
            "import",
            str(res),
            "--run",
            "v1b",
            "--images",
            str(tmp_path / "v1_images.json"),
            "-q",
        )
        == 0
    )
    assert store_count(wsdir, "SELECT count(*) FROM detections") == 2
    assert (
        tuiops(wsdir, "dets", "export", "--run", "v1", "--format", "yolo", "--to", str(tmp_path / "y"), "-q")
        == 0
    )
    assert (tmp_path / "y" / "danbooru_1.txt").read_text() == "0 0.5 0.5 0.1 0.1 0.75\n"


def test_every_command_and_option_has_help():
    for group in ("labels", "dets"):
        grp = cli.commands[group]
        assert grp.help
        assert isinstance(grp, click.Group)
        for name, cmd in grp.commands.items():
            assert cmd.help, f"{group} {name}"
            for p in cmd.params:
                if isinstance(p, click.Option):
                    assert p.help, f"{group} {name} {p.name}"
