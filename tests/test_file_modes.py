"""Every file and folder tuiops writes follows the umask, exports and workspace state alike.

Files written to a temporary name and renamed into place used to be created 0600 (and
staged folders 0700), whatever the umask; a replaced file keeps its own mode.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import draw_image
from tests.test_project_mix import make_build
from tuiops.cli import run


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def tuiops(ws: Path, *args: str) -> None:
    assert run(["-w", str(ws), *args]) == 0, args


def record_a_host_key(ws: Path) -> Path:
    import asyncssh

    from tuiops.remote.hosts import Hosts
    from tuiops.workspace import Workspace

    tuiops(ws, "hosts", "add", "h", "--address", "127.0.0.1", "--port", "2222")
    with Workspace.open(ws) as w:
        hosts = Hosts.from_workspace(w)
        key = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
        return hosts.record_key(hosts.get("h"), key)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_exports_and_workspace_files_follow_the_umask(tmp_path, mask):
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    with umask(mask):
        ws = tmp_path / "ws"
        assert run(["init", str(ws), "--classes", "head,body"]) == 0
        for i in range(3):
            draw_image(tmp_path / "pool" / f"danbooru_{i}.png", (64, 48), seed=i)
        tuiops(ws, "scan", str(tmp_path / "pool"), "-q")
        labels = tmp_path / "labels"
        labels.mkdir()
        for i in range(3):
            (labels / f"danbooru_{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.25 0.25\n")
        tuiops(ws, "labels", "import", str(labels), "--set", "GT", "-q")
        out = tmp_path / "out"
        out.mkdir()
        tuiops(ws, "query", "SELECT key FROM items", "--format", "csv", "-o", str(out / "keys.csv"))
        tuiops(ws, "labels", "export", "--set", "GT", "--format", "coco", "--to", str(out / "gt.json"))
        tuiops(ws, "labels", "export", "--set", "GT", "--format", "yolo", "--to", str(out / "yolo"))
        tuiops(ws, "labels", "export", "--set", "GT", "--format", "voc", "--to", str(out / "voc"))
        tuiops(ws, "dataset", "build", "--set", "GT", "--to", str(out / "ds"), "--val", "0.5", "-q")
        from tuiops.workspace import Workspace

        with Workspace.open(ws) as w:
            make_build(w, "a", ["head"], 2)
        tar = out / "ship" / "mix.tar.gz"
        tuiops(
            ws, "project", "mix", "a", "--out", str(out / "mix"), "--format", "yolo", "--tar", str(tar), "-q"
        )
        known_hosts = record_a_host_key(ws)

    files = [
        ws / "tuiops.toml",
        ws / "tuiops.db",
        known_hosts,
        out / "keys.csv",
        out / "gt.json",
        out / "yolo" / "danbooru_0.txt",
        out / "yolo" / "classes.txt",
        out / "voc" / "danbooru_1.xml",
        out / "ds" / "data.yaml",
        *(out / "ds" / "labels").rglob("*.txt"),
        out / "mix" / "manifest.json",
        tar,
    ]
    folders = [out / "ds", out / "ds" / "labels" / "train", out / "mix", tar.parent]
    wrong = {str(p.relative_to(tmp_path)): oct(mode(p)) for p in files if mode(p) != file_mode}
    wrong |= {str(p.relative_to(tmp_path)): oct(mode(p)) for p in folders if mode(p) != dir_mode}
    assert not wrong, f"not {oct(file_mode)} / {oct(dir_mode)} under umask {oct(mask)}"


def test_a_replaced_file_keeps_its_mode(tmp_path):
    from tuiops.fsutil import atomic_write_text

    with umask(0o022):
        ws = tmp_path / "ws"
        assert run(["init", str(ws), "--classes", "head"]) == 0
        os.chmod(ws / "tuiops.toml", 0o600)
        tuiops(ws, "classes", "add", "body")
        assert mode(ws / "tuiops.toml") == 0o600
        assert "body" in (ws / "tuiops.toml").read_text()
        shared = tmp_path / "shared.txt"
        shared.write_text("a")
        os.chmod(shared, 0o664)
        atomic_write_text(shared, "b")
        assert mode(shared) == 0o664 and shared.read_text() == "b"
        atomic_write_text(tmp_path / "new.txt", "c")
        assert mode(tmp_path / "new.txt") == 0o644
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_a_pushed_tarball_follows_the_umask(own, tmp_path):
    from tests.sshd import sshd_unavailable

    if sshd_unavailable():
        pytest.skip(sshd_unavailable() or "")
    _s, _key, ws = own
    make_build(ws, "a", ["x"], 2)
    with umask(0o022):
        out = str(tmp_path / "m" / "a")
        push = ["--format", "yolo", "--push", "test:datasets", "-q"]
        code = run(["-w", str(ws.root), "project", "mix", "a", "--out", out, *push])
    assert code == 0
    assert mode(tmp_path / "m" / "a.tar.gz") == 0o644
    assert mode(tmp_path / "home" / "datasets" / "a.tar.gz") == 0o644
