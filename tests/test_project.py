"""Dataset projects built locally: new, build (validation, naming, VOC, skip/force), list, show, demo."""

from __future__ import annotations

import hashlib
import json
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import live_processes_with
from tuiops.cli import run

ROOT = Path(__file__).resolve().parents[1]


def cli(ws, *args: str) -> int:  # type: ignore[no-untyped-def]
    return run(["-w", str(ws.root), *args])


@pytest.fixture
def pws(tmp_path: Path) -> Iterator[object]:
    """A workspace with the repo's example projects copied into projects/."""
    from tuiops.ops.project import copy_examples
    from tuiops.workspace import Workspace

    w = Workspace.init(tmp_path / "ws", classes=["head"])
    assert set(copy_examples(w)) >= {"common", "close_button", "kanji"}
    try:
        yield w
    finally:
        w.close()


def tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def check_build(build: Path, name: str, count: int, classes: list[str]) -> dict:
    """Assert the contract of a finished build; its build.json."""
    from PIL import Image

    from tuiops.formats.voc import parse_voc

    info = json.loads((build / "build.json").read_text())
    assert info["project"] == name and info["count"] == count and info["classes"] == classes
    for k in ("seed", "host", "script_sha256", "inputs_sha256", "created", "files"):
        assert k in info
    files = info["files"]
    assert len(files) == count
    assert [f["image"] for f in files] == [f"JPEGImages/{name}_{i:06d}.jpg" for i in range(1, count + 1)]
    assert sorted(p.name for p in (build / "JPEGImages").iterdir()) == [Path(f["image"]).name for f in files]
    assert sorted(p.name for p in (build / "Annotations").iterdir()) == [
        Path(f["annotation"]).name for f in files
    ]
    total = 0
    for f in files:
        img = build / f["image"]
        assert hashlib.sha256(img.read_bytes()).hexdigest() == f["sha256"]
        with Image.open(img) as im:
            im.load()
            assert im.format == "JPEG" and im.size == (f["width"], f["height"])
        data = (build / f["annotation"]).read_bytes()
        doc, err = parse_voc(data)
        assert err is None and doc is not None
        assert (doc.width, doc.height) == (f["width"], f["height"])
        assert len(doc.objects) == f["objects"]
        root = ET.fromstring(data)
        assert root.findtext("filename") == Path(f["image"]).name
        for obj in root.iter("object"):
            assert obj.findtext("name") in classes
            x1, y1, x2, y2 = (float(obj.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            assert 0 <= x1 < x2 <= f["width"] and 0 <= y1 < y2 <= f["height"]
            total += 1
    assert total == info["objects"] == sum(info["class_counts"].values())
    return info


# -- the example projects -------------------------------------------------------------------------
def test_example_build_writes_the_contract(pws, capsys):
    assert cli(pws, "project", "build", "close_button", "--count", "12", "--json", "-q") == 0
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "built" and res["images"] == 12 and res["host"] == "local"
    build = Path(pws.root) / "projects" / "close_button" / "build"
    info = check_build(build, "close_button", 12, ["close_button"])
    assert info["host"] == "local" and info["seed"] == 0 and info["objects"] >= 12
    assert not list(build.parent.glob("build.tmp-*"))
    row = pws.store.execute(
        "SELECT project, host, count, seed, images, objects, inputs_sha256, build_sha256 FROM project_builds"
    ).fetchall()
    assert row == [
        (
            "close_button",
            "local",
            12,
            0,
            12,
            info["objects"],
            info["inputs_sha256"],
            hashlib.sha256((build / "build.json").read_bytes()).hexdigest(),
        )
    ]
    assert pws.store.one("SELECT status FROM jobs WHERE kind = 'project.build'") == "done"
    # the second example: three classes, several objects an image
    assert cli(pws, "project", "build", "kanji", "--count", "6", "-q") == 0
    info = check_build(
        build.parent.parent / "kanji" / "build", "kanji", 6, ["kanji_ichi", "kanji_juu", "kanji_kuchi"]
    )
    assert len(info["class_counts"]) >= 2


def test_unchanged_is_skipped_force_and_changes_rebuild(pws, capsys):
    from PIL import Image

    from tuiops.ops.project import build_project

    proj = Path(pws.root) / "projects" / "close_button"
    first = build_project(pws, "close_button", count=5)
    assert first.status == "built"
    before = tree(proj / "build")
    again = build_project(pws, "close_button", count=5)
    assert again.status == "up to date" and again.images == 5
    assert cli(pws, "project", "build", "close_button", "--count", "5") == 0
    assert "up to date" in capsys.readouterr().out
    assert pws.store.one("SELECT count(*) FROM project_builds") == 1
    # same seed → the same images; build.json differs only in its time
    forced = build_project(pws, "close_button", count=5, force=True)
    assert forced.status == "built" and pws.store.one("SELECT count(*) FROM project_builds") == 2
    after = tree(proj / "build")
    assert {k: v for k, v in after.items() if k != "build.json"} == {
        k: v for k, v in before.items() if k != "build.json"
    }
    # a changed master image changes the inputs
    master = proj / "master" / "images" / "close_01.png"
    with Image.open(master) as im:
        im = im.convert("RGB")
    im.putpixel((1, 1), (1, 2, 3))
    im.save(master)
    assert cli(pws, "project", "list", "--json") == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["close_button"]["build"] == "stale" and rows["kanji"]["build"] == "none"
    assert build_project(pws, "close_button", count=5).status == "built"
    # so does shared code, another count or another seed
    common = Path(pws.root) / "projects" / "common" / "paste.py"
    common.write_text(common.read_text() + "\n# touched\n")
    assert build_project(pws, "close_button", count=5).status == "built"
    assert build_project(pws, "close_button", count=4).status == "built"
    res = build_project(pws, "close_button", count=4, seed=3)
    assert res.status == "built" and res.seed == 3
    check_build(proj / "build", "close_button", 4, ["close_button"])
    assert pws.store.one("SELECT count(*) FROM project_builds") == 6


# -- scripts that go wrong -------------------------------------------------------------------------
GEN = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from PIL import Image

    out, count = Path(sys.argv[1]), int(sys.argv[2])
    mode = Path("MODE").read_text().strip()
    out.mkdir(parents=True, exist_ok=True)
    if mode == "fail":
        print("augment: cannot find the backgrounds", file=sys.stderr)
        sys.exit(3)
    recs = []
    for i in range(count):
        Image.new("RGB", (100, 80), (i * 20, 90, 160)).save(out / f"g{i}.jpg")
        recs.append({"file": f"g{i}.jpg", "objects": [{"name": "button", "xmin": 10, "ymin": 10, "xmax": 50, "ymax": 40}]})
    if mode == "corrupt":
        data = (out / "g1.jpg").read_bytes()
        (out / "g1.jpg").write_bytes(data[: len(data) // 2])
    if mode == "outside":
        recs[0]["objects"][0]["xmax"] = 140
    if mode == "edge":
        recs[0]["objects"][0].update(xmin=-0.6, xmax=100.8)
    if mode == "unknown":
        recs[1]["objects"][0]["name"] = "dog"
    if mode == "empty":
        recs[1]["objects"][0]["xmax"] = 10.5
    if mode == "missing":
        recs.append({"file": "ghost.jpg", "objects": []})
    if mode == "unlisted":
        Image.new("RGB", (100, 80)).save(out / "extra.jpg")
    if mode == "badjson":
        (out / "boxes.json").write_text("[{")
    else:
        (out / "boxes.json").write_text(json.dumps(recs))
    """
)


@pytest.fixture
def gen(pws) -> Path:  # type: ignore[no-untyped-def]
    """A project whose script's behaviour is chosen by its MODE file."""
    from tuiops.ops.project import new_project

    p = new_project(pws, "gen", classes=["button"], count=3, augment="python gen.py {out} {count}")
    (p.root / "gen.py").write_text(GEN)
    (p.root / "MODE").write_text("good")
    return p.root


@pytest.mark.parametrize(
    ("mode", "code", "needle"),
    [
        ("fail", 9, "failed with exit status 3"),
        ("corrupt", 4, "g1.jpg: the image does not open fully"),
        ("outside", 4, "g0.jpg: object 1: box (10.0, 10.0, 140.0, 40.0) lies outside the image 100x80"),
        ("unknown", 4, "g1.jpg: object 1: class 'dog' is not one of the project's classes (button)"),
        ("empty", 4, "g1.jpg: object 1: box (10.0, 10.0, 10.5, 40.0) is empty"),
        ("missing", 4, "ghost.jpg: listed, but no such file was written"),
        ("unlisted", 4, "1 image(s) that boxes.json does not list: extra.jpg"),
        ("badjson", 4, "boxes.json is not valid JSON"),
    ],
)
def test_bad_output_fails_and_keeps_the_previous_build(pws, gen, capsys, mode, code, needle):
    assert cli(pws, "project", "build", "gen", "-q") == 0
    capsys.readouterr()
    before = tree(gen / "build")
    (gen / "MODE").write_text(mode)
    assert cli(pws, "project", "build", "gen", "-q") == code
    err = capsys.readouterr().err
    assert needle in err, err
    assert "Traceback" not in err
    assert tree(gen / "build") == before
    if mode == "fail":
        # the failed build stays, with its log, until the next good build or `project clean`
        assert "cannot find the backgrounds" in err and "project clean gen" in err
        (stage,) = gen.glob("build.tmp-*")
        assert "cannot find the backgrounds" in (stage / "augment.log").read_text() and str(stage) in err
    else:
        assert not list(gen.glob("build.*-*"))
    assert pws.store.one("SELECT count(*) FROM project_builds") == 1
    assert pws.store.one("SELECT count(*) FROM jobs WHERE kind = 'project.build' AND status = 'failed'") == 1


@pytest.mark.parametrize(
    "template",
    [
        'python gen.py "{out}" {count}',
        "python gen.py '{out}' {count}",
        'python gen.py {out} "{count}"',
        "sh -c 'python gen.py {out} {count}'",
        "python gen.py {out} {count:d}",
    ],
)
def test_augment_placeholders_inside_quotes_are_refused(pws, gen, capsys, template):
    """A quoted placeholder would be quoted twice: a path with spaces breaks and ``$(…)`` in it runs."""
    toml = gen / "project.toml"
    toml.write_text(toml.read_text().replace('"python gen.py {out} {count}"', repr(template)))
    assert template in toml.read_text()
    assert cli(pws, "project", "build", "gen") == 4
    err = capsys.readouterr().err
    assert "project.toml" in err and ("inside quotes" in err or "not a valid command template" in err), err
    assert not (gen / "build").exists()


def test_workspace_path_with_shell_characters_is_passed_whole(tmp_path):
    from tuiops.ops.project import build_project, new_project
    from tuiops.workspace import Workspace

    with Workspace.init(tmp_path / "w $(touch PWNED) 'q'", classes=["head"]) as w:
        p = new_project(w, "gen", classes=["button"], count=2, augment="python gen.py {out} {count}")
        (p.root / "gen.py").write_text(GEN)
        (p.root / "MODE").write_text("good")
        assert build_project(w, "gen").images == 2
        assert not list(tmp_path.rglob("PWNED"))


def test_odd_master_file_names_are_hashed_and_built(pws, capsys):
    """Master names that are not UTF-8 or carry quotes and spaces: hashed by their bytes, built."""
    import os

    from tuiops.ops.project import build_project, build_state, load_project

    p = load_project(pws, "close_button")
    images, anns = p.master / "images", p.master / "annotations"
    for stem in (b"bad\xff", b'it\'s "q" $(x)'):
        raw_img = os.path.join(os.fsencode(images), stem + b".png")
        raw_ann = os.path.join(os.fsencode(anns), stem + b".xml")
        with open(raw_img, "wb") as fh:
            fh.write((images / "close_01.png").read_bytes())
        with open(raw_ann, "wb") as fh:
            fh.write((anns / "close_01.xml").read_bytes())
    assert build_state(pws, p) == "none"
    assert build_project(pws, "close_button", count=4).status == "built"
    assert build_state(pws, p, count=4) == "up to date"
    os.unlink(os.path.join(os.fsencode(images), b"bad\xff.png"))
    os.unlink(os.path.join(os.fsencode(anns), b"bad\xff.xml"))
    assert build_state(pws, p, count=4) == "stale"
    assert cli(pws, "project", "show", "close_button", "--json") == 0
    assert json.loads(capsys.readouterr().out)["build"] == "stale"
    assert cli(pws, "project", "list") == 0


def test_box_within_a_pixel_of_the_edge_is_clipped(pws, gen):
    from tuiops.ops.project import build_project

    (gen / "MODE").write_text("edge")
    assert build_project(pws, "gen").status == "built"
    root = ET.parse(gen / "build" / "Annotations" / "gen_000001.xml").getroot()
    box = [root.find("object/bndbox").findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")]
    assert box == ["0", "10", "100", "40"]


def test_hanging_script_is_stopped_at_the_timeout(pws, gen, capsys):
    from tuiops.errors import ExternalToolError
    from tuiops.ops.project import build_project

    marker = "987.654"
    (gen / "project.toml").write_text(
        (gen / "project.toml")
        .read_text()
        .replace("python gen.py {out} {count}", f"sleep {marker}; true {{out}}")
    )
    with pytest.raises(ExternalToolError, match=r"did not finish within 0.5 s"):
        build_project(pws, "gen", timeout=0.5)
    assert not live_processes_with(f"sleep\x00{marker}".encode())
    assert not (gen / "build").exists() and len(list(gen.glob("build.tmp-*"))) == 1
    assert cli(pws, "project", "clean", "gen") == 0
    assert not list(gen.glob("build.*-*"))


VOC_GEN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from PIL import Image
    from common.voc import write_voc

    out, count = Path(sys.argv[1]), int(sys.argv[2])
    (out / "imgs").mkdir(parents=True)
    (out / "xml").mkdir()
    for i in range(count):
        Image.new("RGB", (90, 70), (200, i * 30, 10)).save(out / "imgs" / f"v{i}.png")
        write_voc(out / "xml" / f"v{i}.xml", f"v{i}.png", (90, 70), [("button", 5, 6, 40 + i, 50)])
    """
)

MASTER_GEN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from PIL import Image, ImageEnhance

    out, count = Path(sys.argv[1]), int(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for src in sorted(Path("master/images").glob("*.png")):
        with Image.open(src) as im:
            for i in range(count):
                ImageEnhance.Brightness(im.convert("RGB")).enhance(0.6 + 0.2 * i).save(out / f"{src.stem}__{i}.png")
    """
)


def _draw_master(project_root: Path, stem: str, box: tuple[int, int, int, int], name: str = "button") -> None:
    import sys

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (120, 90), (240, 240, 240))
    ImageDraw.Draw(img).rectangle(box, fill=(200, 30, 30))
    img.save(project_root / "master" / "images" / f"{stem}.png")
    sys.path.insert(0, str(project_root.parent))
    try:
        from common.voc import write_voc
    finally:
        sys.path.pop(0)
    write_voc(
        project_root / "master" / "annotations" / f"{stem}.xml", f"{stem}.png", img.size, [(name, *box)]
    )


def test_voc_outputs_and_master_boxes(pws):
    from tuiops.ops.project import build_project, new_project

    p = new_project(pws, "vocgen", classes=["button"], count=3, augment="python gen.py {out} {count}")
    (p.root / "gen.py").write_text(VOC_GEN)
    res = build_project(pws, "vocgen")
    assert res.status == "built" and res.objects == 3
    info = check_build(p.build_dir, "vocgen", 3, ["button"])
    assert [f["source"] for f in info["files"]] == ["imgs/v0.png", "imgs/v1.png", "imgs/v2.png"]
    root = ET.parse(p.build_dir / "Annotations" / "vocgen_000003.xml").getroot()
    assert root.findtext("object/bndbox/xmax") == "42"
    # photometric augmentation: images named after their master take the master's boxes
    q = new_project(pws, "photo", classes=["button"], count=2, augment="python gen.py {out} {count}")
    (q.root / "gen.py").write_text(MASTER_GEN)
    _draw_master(q.root, "m1", (30, 20, 70, 50))
    _draw_master(q.root, "m2", (5, 5, 25, 45))
    res = build_project(pws, "photo")
    assert res.images == 4 and res.objects == 4
    info = json.loads((q.build_dir / "build.json").read_text())
    assert [f["source"] for f in info["files"]] == ["m1__0.png", "m1__1.png", "m2__0.png", "m2__1.png"]
    root = ET.parse(q.build_dir / "Annotations" / "photo_000003.xml").getroot()
    assert [root.findtext(f"object/bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")] == [
        "5",
        "5",
        "25",
        "45",
    ]


# -- new, list, show, bad settings ----------------------------------------------------------------
def test_new_project_layout_and_its_template_builds(pws, capsys):
    assert cli(pws, "project", "new", "signs", "--classes", "stop, yield", "--count", "4", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    root = Path(info["root"])
    assert info["classes"] == ["stop", "yield"] and info["count"] == 4
    assert (root / "master" / "images").is_dir() and (root / "master" / "annotations").is_dir()
    assert "build/" in (root / ".gitignore").read_text().splitlines()
    assert "{out}" in (root / "project.toml").read_text()
    assert "CLASSES = ['stop', 'yield']" in (root / "augment.py").read_text()
    assert cli(pws, "project", "new", "signs", "--classes", "x") == 6
    assert "exists already" in capsys.readouterr().err
    assert cli(pws, "project", "new", "bad name", "--classes", "x") == 2
    assert cli(pws, "project", "new", "common", "--classes", "x") == 2
    assert cli(pws, "project", "new", "nocls", "--classes", " , ") == 2
    assert cli(pws, "project", "new", "noout", "--classes", "x", "--augment", "python a.py") == 4
    assert "{out}" in capsys.readouterr().err
    # the generated augment.py works once there are masters
    assert cli(pws, "project", "build", "signs", "-q") == 9
    assert "no annotated master objects" in capsys.readouterr().err
    _draw_master(root, "s1", (10, 10, 60, 60), "stop")
    _draw_master(root, "s2", (40, 20, 100, 70), "yield")
    assert cli(pws, "project", "build", "signs", "-q") == 0
    check_build(root / "build", "signs", 4, ["stop", "yield"])
    capsys.readouterr()
    assert cli(pws, "project", "show", "signs", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["build"] == "up to date" and shown["script_files"] == ["augment.py"]
    assert shown["builds"][0]["images"] == 4 and shown["masters"] == 2
    assert cli(pws, "project", "show", "signs") == 0
    assert "up to date" in capsys.readouterr().out


def test_a_new_workspace_gets_common(tmp_path):
    from tuiops.ops.project import new_project
    from tuiops.workspace import Workspace

    with Workspace.init(tmp_path / "w") as w:
        new_project(w, "p", classes=["a"])
        assert (w.root / "projects" / "common" / "paste.py").is_file()
        assert not list((w.root / "projects" / "common").rglob("__pycache__"))


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[project]\nclasses = []\n", "non-empty list"),
        ('[project]\nclasses = ["a", "a"]\n', "classes repeat"),
        ('[project]\nclasses = ["a"]\naugment = "run {out} {where}"\n', "unknown placeholders {where}"),
        ('[project]\nclasses = ["a"]\ncount = 0\n', "count must be"),
        ('[project]\nname = "other"\nclasses = ["a"]\n', "the folder is projects/p"),
        ("[project\n", "not valid TOML"),
        ('classes = ["a"]\n', "no [project] table"),
    ],
)
def test_bad_project_toml_is_named(pws, capsys, toml, needle):
    d = Path(pws.root) / "projects" / "p"
    (d / "master").mkdir(parents=True)
    (d / "project.toml").write_text(toml)
    assert cli(pws, "project", "build", "p") == 4
    err = capsys.readouterr().err
    assert needle in err and "project.toml" in err


def test_unknown_project_and_host(pws, capsys):
    assert cli(pws, "project", "build", "nope") == 5
    assert "tuiops project list" in capsys.readouterr().err
    assert cli(pws, "project", "build", "close_button", "--on", "gpu9") == 5
    assert "no host named 'gpu9'" in capsys.readouterr().err
    assert cli(pws, "project", "list") == 0
    out = capsys.readouterr().out
    assert "close_button" in out and "kanji" in out and "common" not in out


def test_demo_workspace_has_the_example_projects(tmp_path):
    from tuiops.ops.demo import make_demo
    from tuiops.workspace import Workspace

    summary = make_demo(tmp_path / "demo", images=4)
    assert set(summary.steps["projects"]) >= {"close_button", "kanji", "common"}
    with Workspace.open(tmp_path / "demo") as w:
        from tuiops.ops.project import list_projects

        assert {r["name"] for r in list_projects(w)} >= {"close_button", "kanji"}
    assert not list((tmp_path / "demo" / "projects").rglob("build"))


def test_a_build_folder_without_build_json_is_replaced(pws):
    from tuiops.ops.project import build_project, build_state, load_project

    p = load_project(pws, "kanji")
    (p.build_dir / "JPEGImages").mkdir(parents=True)
    (p.build_dir / "JPEGImages" / "stray.jpg").write_bytes(b"half")
    assert build_state(pws, p) == "none"
    assert build_project(pws, "kanji", count=3).status == "built"
    assert not (p.build_dir / "JPEGImages" / "stray.jpg").exists()
    check_build(p.build_dir, "kanji", 3, ["kanji_ichi", "kanji_juu", "kanji_kuchi"])
    assert build_state(pws, p, count=3) == "up to date" and build_state(pws, p, count=4) == "stale"
    # the count of project.toml is the one list, build and mix go by
    assert build_state(pws, p) == "stale"


def test_a_second_build_of_one_project_at_once_is_refused(pws):
    import fcntl

    from tuiops.errors import ConflictError
    from tuiops.ops.project import build_project

    lock = Path(pws.root) / "projects" / "kanji" / ".build.lock"
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ConflictError, match="another build of kanji is running"):
            build_project(pws, "kanji", count=2)
    assert build_project(pws, "kanji", count=2).status == "built"


def test_one_notion_of_current_across_list_build_and_mix(pws, tmp_path, capsys):
    from tuiops.errors import ConflictError
    from tuiops.ops.project import build_project, list_projects
    from tuiops.ops.project_mix import mix_projects

    for name in ("close_button", "kanji"):
        toml = Path(pws.root) / "projects" / name / "project.toml"
        toml.write_text(toml.read_text().replace("count = ", "count = 3 #"))
        assert build_project(pws, name).status == "built"
    res = mix_projects(pws, ["close_button", "kanji"], tmp_path / "m1")
    assert res.images == 6 and res.warnings == [] and res.rebuilt == []
    # a build with another count is not current: list says so, build rebuilds, mix refuses
    assert build_project(pws, "close_button", count=2).status == "built"
    rows = {r["name"]: r for r in list_projects(pws)}
    assert rows["close_button"]["build"] == "stale" and rows["kanji"]["build"] == "up to date"
    assert rows["close_button"]["stale_why"] == ["built with count 2, now 3"]
    with pytest.raises(ConflictError, match="close_button is stale") as err:
        mix_projects(pws, ["close_button", "kanji"], tmp_path / "m2")
    assert "--allow-stale" in (err.value.hint or "") and not (tmp_path / "m2").exists()
    # a changed master: stale too
    ann = Path(pws.root) / "projects" / "kanji" / "master" / "annotations" / "sheet_01.xml"
    ann.write_text(ann.read_text().replace("<segmented>", "<segmented> "))
    assert cli(pws, "project", "list") == 0
    listed = capsys.readouterr().out
    assert "masters, project.toml or common changed since the build" in listed
    res = mix_projects(pws, ["close_button", "kanji"], tmp_path / "m2", allow_stale=True)
    assert res.images == 5 and len(res.warnings) == 2 and "project kanji is stale" in res.warnings[1]
    # --build rebuilds what is stale, then mixes current builds
    assert cli(pws, "project", "mix", "close_button", "kanji", "--out", str(tmp_path / "m3"), "--build") == 0
    assert "rebuilt   close_button, kanji (stale or never built)" in capsys.readouterr().out
    rows = {r["name"]: r for r in list_projects(pws)}
    assert rows["close_button"]["build"] == rows["kanji"]["build"] == "up to date"
    assert build_project(pws, "kanji").status == "up to date"
