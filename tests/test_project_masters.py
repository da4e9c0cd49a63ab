"""Errors in a project's masters are found before the augmentation runs and blamed on the masters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tuiops.cli import run
from tuiops.errors import ConflictError, InputError


def voc(
    filename: str, size: tuple[int, int], objects: list[tuple[str, object, object, object, object]]
) -> str:
    objs = "".join(
        f"\t<object>\n\t\t<name>{n}</name>\n\t\t<bndbox>\n\t\t\t<xmin>{a}</xmin>\n\t\t\t<ymin>{b}</ymin>\n"
        f"\t\t\t<xmax>{c}</xmax>\n\t\t\t<ymax>{d}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for n, a, b, c, d in objects
    )
    return (
        f"<annotation>\n\t<filename>{filename}</filename>\n\t<size>\n\t\t<width>{size[0]}</width>\n"
        f"\t\t<height>{size[1]}</height>\n\t\t<depth>3</depth>\n\t</size>\n{objs}</annotation>\n"
    )


@pytest.fixture
def variants(tmp_path: Path) -> Iterator[object]:
    """A project whose script writes ``MASTERSTEM__NNNN`` variants of each master (marking that it ran)."""
    from PIL import Image

    from tuiops.ops.project import new_project
    from tuiops.workspace import Workspace

    w = Workspace.init(tmp_path / "ws", classes=["head"])
    p = new_project(w, "shots", classes=["button"], count=2, augment="python variants.py {out} {count}")
    (p.root / "variants.py").write_text(
        "import shutil, sys, pathlib\n"
        "out, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])\n"
        "pathlib.Path('ran').write_text('yes')\n"
        "for img in sorted(pathlib.Path('master/images').iterdir()):\n"
        "    for i in range(n):\n"
        "        shutil.copy(img, out / f'{img.stem}__{i:04d}{img.suffix}')\n"
    )
    for stem in ("a", "b"):
        Image.new("RGB", (400, 300), (200, 200, 200)).save(p.master / "images" / f"{stem}.png")
        (p.master / "annotations" / f"{stem}.xml").write_text(
            voc(f"{stem}.png", (400, 300), [("button", 10, 10, 60, 40)])
        )
    try:
        yield w
    finally:
        w.close()


def _break(ws: object, kind: str) -> tuple[str, str]:
    """Break master ``b`` one way; the file and the words the error must name."""

    master = Path(ws.root) / "projects" / "shots" / "master"  # type: ignore[attr-defined]
    ann = master / "annotations" / "b.xml"
    objs = [("button", 10, 10, 60, 40)]
    if kind == "past the image":
        ann.write_text(voc("b.png", (400, 300), [*objs, ("button", 300, 10, 455, 40)]))
        return "b.xml line 17", "object 2 (button): box (300, 10, 455, 40) reaches past the 400×300 image"
    if kind == "size":
        ann.write_text(voc("b.png", (640, 480), objs))
        return "b.xml", "<size> says 640×480, but b.png is 400×300"
    if kind == "missing":
        ann.unlink()
        return "b.png", "the master has no annotation"
    if kind == "unparseable":
        ann.write_text("<annotation><object>")
        return "b.xml", "not valid XML"
    if kind == "class":
        ann.write_text(voc("b.png", (400, 300), [("buton", 10, 10, 60, 40)]))
        return "b.xml line 8", "class 'buton' is not one of the project's classes (button)"
    if kind == "number":
        ann.write_text(voc("b.png", (400, 300), [("button", 10, "ten", 60, 40)]))
        return "b.xml line 8", "a coordinate is missing or not a number"
    if kind == "empty":
        ann.write_text(voc("b.png", (400, 300), [("button", 10, 10, 10.5, 40)]))
        return "b.xml line 8", "is empty"
    if kind == "orphan":
        (master / "annotations" / "c.xml").write_text(voc("c.png", (400, 300), objs))
        return "c.xml", "an annotation without a master image"
    if kind == "image":
        (master / "images" / "b.png").write_bytes(b"not a png")
        return "b.png", "not a readable image"
    raise AssertionError(kind)


KINDS = ["past the image", "size", "missing", "unparseable", "class", "number", "empty", "orphan", "image"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_master_error_is_named_once_before_the_script_runs(variants, kind, capsys):
    from tuiops.ops.project import build_project

    ws = variants
    root = Path(ws.root) / "projects" / "shots"  # type: ignore[attr-defined]
    assert build_project(ws, "shots").images == 4  # the good masters build (2 variants of each)
    (root / "ran").unlink()
    where, words = _break(ws, kind)
    with pytest.raises(InputError) as err:
        build_project(ws, "shots", force=True)
    msg = err.value.message
    assert "the masters of shots have 1 problem(s)" in msg and where in msg and words in msg, msg
    assert "fix the script" not in msg and "not named after a master" not in msg
    assert not (root / "ran").exists(), "the augmentation ran"
    assert len(list((root / "build" / "JPEGImages").iterdir())) == 4  # the last build stays
    # the CLI says it once, with the hint, and exits as an input error
    capsys.readouterr()
    assert run(["-w", str(ws.root), "project", "build", "shots", "--force"]) == InputError.exit_code  # type: ignore[attr-defined]
    out = capsys.readouterr().err
    assert out.count(words) == 1 and "labelImg" in out


def test_the_shipped_examples_have_good_masters(tmp_path):
    from tuiops.ops.project import copy_examples, load_project
    from tuiops.ops.projects.masters import master_problems
    from tuiops.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws", classes=["head"])
    copy_examples(ws)
    try:
        for name in ("close_button", "kanji"):
            assert master_problems(load_project(ws, name)) == []
    finally:
        ws.close()


# -- adopting a folder, the examples, the documented contract ------------------------------------------
def test_new_takes_an_empty_folder_and_adopts_an_existing_one(tmp_path, capsys):
    import json
    import tomllib

    from PIL import Image

    from tuiops.ops.project import build_project, list_projects
    from tuiops.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws", classes=["head"])
    try:
        (Path(ws.root) / "projects" / "empty").mkdir(parents=True)
        assert run(["-w", str(ws.root), "project", "new", "empty", "--classes", "a"]) == 0
        assert (Path(ws.root) / "projects" / "empty" / "project.toml").is_file()
        # a labelling folder elsewhere: masters and annotations, no project.toml, no script
        src = tmp_path / "labelling" / "shots"
        (src / "master" / "images").mkdir(parents=True)
        (src / "master" / "annotations").mkdir()
        (src / "notes.txt").write_text("kept")
        for stem, cls in (("s1", "ok"), ("s2", "cancel")):
            Image.new("RGB", (120, 90), (90, 90, 90)).save(src / "master" / "images" / f"{stem}.png")
            (src / "master" / "annotations" / f"{stem}.xml").write_text(
                voc(f"{stem}.png", (120, 90), [(cls, 10, 10, 50, 40)])
            )
        capsys.readouterr()
        assert (
            run(
                ["-w", str(ws.root), "project", "new", "shots", "--adopt", str(src), "--count", "3", "--json"]
            )
            == 0
        )
        res = json.loads(capsys.readouterr().out)
        root = Path(ws.root) / "projects" / "shots"
        assert res["classes"] == ["ok", "cancel"] and res["copied_from"] == str(src)
        assert set(res["added"]) == {".gitignore", "augment.py", "project.toml"}
        assert (root / "notes.txt").read_text() == "kept" and (src / "notes.txt").is_file()
        doc = tomllib.loads((root / "project.toml").read_text())["project"]
        assert doc["name"] == "shots" and doc["count"] == 3
        assert "docs/augmentation.md" in (root / "augment.py").read_text()
        assert build_project(ws, "shots").images == 3
        assert {r["name"]: r["build"] for r in list_projects(ws)}["shots"] == "up to date"
        # adopting in place keeps project.toml as it is; a non-empty folder is never overwritten
        capsys.readouterr()
        assert run(["-w", str(ws.root), "project", "new", "shots", "--adopt", str(root)]) == 0
        assert "nothing added" in capsys.readouterr().out
        assert (
            run(["-w", str(ws.root), "project", "new", "shots", "--adopt", str(src)])
            == ConflictError.exit_code
        )
        assert "--adopt" in capsys.readouterr().err
        assert (
            run(["-w", str(ws.root), "project", "new", "shots", "--classes", "a"]) == ConflictError.exit_code
        )
    finally:
        ws.close()


def test_examples_go_into_any_workspace(tmp_path, capsys):
    from tuiops.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws", classes=["head"])
    try:
        capsys.readouterr()
        assert run(["-w", str(ws.root), "project", "examples"]) == 0
        assert "close_button, common, kanji" in capsys.readouterr().out
        assert run(["-w", str(ws.root), "project", "examples"]) == 0
        assert "nothing to copy" in capsys.readouterr().out
        assert run(["project", "examples", str(tmp_path / "other")]) == 0
        assert (tmp_path / "other" / "projects" / "kanji" / "master" / "images").is_dir()
        assert not list((tmp_path / "other").rglob("build"))
    finally:
        ws.close()


def test_the_augmentation_contract_is_documented():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "augmentation.md").read_text()
    for words in ("boxes.json", "VOC beside the images", "MASTERSTEM__", "{out}", "{count}", "{seed}",
                  "PYTHONPATH", "--timeout", "augment.log", "Exit status"):  # fmt: skip
        assert words in doc, words


def test_modules_a_project_requires_are_checked_before_the_script_runs(variants):
    from tuiops.errors import UsageError
    from tuiops.ops.project import build_project, load_project

    ws = variants
    root = Path(ws.root) / "projects" / "shots"  # type: ignore[attr-defined]
    toml = root / "project.toml"
    toml.write_text(toml.read_text() + 'requires = ["PIL", "numpy.linalg", "tuiops_surely_missing"]\n')
    assert load_project(ws, "shots").requires == ["PIL", "numpy.linalg", "tuiops_surely_missing"]
    with pytest.raises(UsageError) as err:
        build_project(ws, "shots")
    msg = err.value.message
    assert "requires tuiops_surely_missing, which" in msg and "PIL" not in msg and "nothing was run" in msg
    assert not (root / "ran").exists() and not list(root.glob("build.*-*"))
    toml.write_text(toml.read_text().replace(', "tuiops_surely_missing"', ""))
    assert build_project(ws, "shots").images == 4
    toml.write_text(toml.read_text().replace('requires = ["PIL", "numpy.linalg"]', 'requires = "PIL"'))
    with pytest.raises(InputError, match="requires must be a list of Python module names"):
        load_project(ws, "shots")
