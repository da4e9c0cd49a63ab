"""The whole path of the dataset projects against a real sshd on 127.0.0.1 as the host.

Both example projects build (here and on the host), mix into VOC and into YOLO, the
tarballs go to the host and are checked there, and the external loaders read what
arrived: torchvision's VOCDetection and ultralytics' YOLODataset.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sshd import Sshd, generate_key, sshd_unavailable
from tests.sshd import run_cli as cli
from tests.test_project import check_build
from tests.test_project_remote import images, project_ws, remote_leftovers

_why = sshd_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")

KANJI = ["kanji_ichi", "kanji_juu", "kanji_kuchi"]


@pytest.fixture
def e2e(tmp_path: Path) -> Iterator[object]:
    key = generate_key(tmp_path / "client" / "id_ed25519")
    s = Sshd(tmp_path / "server", [key]).start()
    ws = project_ws(tmp_path, s, key)
    try:
        yield ws
    finally:
        ws.close()
        s.stop()


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def mix(ws, capsys, *args: str) -> dict:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert cli(ws, "project", "mix", "close_button", "kanji", "--json", "-q", *args) == 0
    return json.loads(capsys.readouterr().out)


def unpack(tar_path: Path, into: Path) -> Path:
    with tarfile.open(tar_path) as tf:
        tf.extractall(into, filter="data")
    (root,) = list(into.iterdir())
    return root


@pytest.mark.slow
def test_build_here_and_there_mix_push_and_load(e2e, tmp_path, capsys):
    ws = e2e
    projects = Path(ws.root) / "projects"
    home = tmp_path / "home"
    for name, count in (("close_button", 10), ("kanji", 8)):  # the counts a current build has
        toml = projects / name / "project.toml"
        toml.write_text(re.sub(r"(?m)^count = .*$", f"count = {count}", toml.read_text()))
    # build: close_button here and on the host (the same bytes), kanji on the host
    assert cli(ws, "project", "build", "close_button", "--count", "10", "-q") == 0
    here = images(projects / "close_button" / "build")
    assert cli(ws, "project", "build", "close_button", "--count", "10", "--on", "test", "--force", "-q") == 0
    assert images(projects / "close_button" / "build") == here
    assert cli(ws, "project", "build", "kanji", "--count", "8", "--on", "test", "-q") == 0
    check_build(projects / "kanji" / "build", "kanji", 8, KANJI)
    assert remote_leftovers(tmp_path) == []
    hosts = ws.store.execute("SELECT project, host FROM project_builds ORDER BY id").fetchall()
    assert hosts == [("close_button", "local"), ("close_button", "test"), ("kanji", "test")]

    # VOC: mixed, tarred, pushed and checked on the host; torchvision reads what arrived
    from torchvision.datasets import VOCDetection

    voc_tar = tmp_path / "ui_voc.tar.gz"
    res = mix(
        ws, capsys, "--out", str(tmp_path / "ui_voc"), "--voc-year", "2012", "--tar", str(voc_tar),
        "--push", "test:datasets", "--val", "0.25", "--seed", "1",
    )  # fmt: skip
    assert res["classes"] == ["close_button", *KANJI] and res["images"] + res["dropped"] == 18
    pushed = home / "datasets" / voc_tar.name
    assert res["push"]["sha256"] == sha(voc_tar) == sha(pushed)
    root = unpack(pushed, tmp_path / "voc_arrived")
    names: set[str] = set()
    n = 0
    for image_set in ("train", "val"):
        ds = VOCDetection(str(root), year="2012", image_set=image_set)
        for img, target in ds:
            ann = target["annotation"]
            assert (int(ann["size"]["width"]), int(ann["size"]["height"])) == img.size
            names |= {o["name"] for o in ann.get("object", [])}
            n += 1
    assert n == res["images"] and names == {"close_button", *KANJI}

    # YOLO: the same, read back by ultralytics' own dataset class
    yolo_tar = tmp_path / "ui_yolo.tar.gz"
    res = mix(
        ws, capsys, "--out", str(tmp_path / "ui_yolo"), "--format", "yolo", "--tar", str(yolo_tar),
        "--push", "test:datasets", "--val", "0.25", "--seed", "1",
    )  # fmt: skip
    pushed = home / "datasets" / yolo_tar.name
    assert res["push"]["sha256"] == sha(yolo_tar) == sha(pushed)
    root = unpack(pushed, tmp_path / "yolo_arrived")
    from tuiops.ops.detect import prepare_ultralytics

    prepare_ultralytics(ws)
    import yaml
    from ultralytics.data.dataset import YOLODataset

    data = yaml.safe_load((root / "data.yaml").read_text())
    assert list(data["names"].values()) == ["close_button", *KANJI]
    seen = 0
    classes: set[int] = set()
    for split in ("train", "val"):
        ds = YOLODataset(
            img_path=str(root / data[split]),
            data={**data, "channels": 3},
            task="detect",
            imgsz=64,
            augment=False,
            cache=False,
        )
        for lab in ds.labels:
            assert lab["bboxes"].shape[0] == lab["cls"].shape[0]
            assert ((lab["bboxes"] >= 0) & (lab["bboxes"] <= 1)).all()
            classes |= {int(c) for c in lab["cls"].ravel()}
        seen += len(ds.labels)
    assert seen == res["images"] and classes == {0, 1, 2, 3}
