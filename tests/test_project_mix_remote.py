"""`tuiops project mix --push` against a real OpenSSH sshd on 127.0.0.1.

Push and verify on the host; the server killed mid-transfer and the same mix pushed
again (the tarball is reproducible, so the upload resumes); a full and a read-only
remote folder (small tmpfs mounts, skipped where mounting is not permitted).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sshd import Sshd, can_mount_tmpfs, generate_key, mount_tmpfs, sshd_unavailable, umount
from tests.sshd import make_workspace as make_ws
from tests.sshd import run_cli as cli
from tests.test_project_mix import make_build

_why = sshd_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")

FAST_RETRY = {"attempts": 3, "base_delay": 0.05, "max_delay": 0.2}


@pytest.fixture
def own(tmp_path: Path) -> Iterator[tuple[Sshd, Any]]:
    """A fresh sshd and a workspace that trusts it (host ``test``, home ``tmp_path/home``)."""
    key = generate_key(tmp_path / "client" / "id_ed25519")
    s = Sshd(tmp_path / "server", [key]).start()
    ws = make_ws(tmp_path, s, key)
    try:
        yield s, ws
    finally:
        ws.close()
        s.stop()


@pytest.fixture
def mountable(tmp_path: Path) -> None:
    why = can_mount_tmpfs(tmp_path)
    if why:
        pytest.skip(f"cannot fake a full or read-only remote disk: {why}")


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def big_builds(ws: Any) -> None:
    """Two projects whose tarball is several megabytes (noise images barely compress)."""
    import numpy as np
    from PIL import Image

    for name, n in (("a", 7), ("b", 6)):
        build = make_build(ws, name, ["x"], n, size=(96, 72))
        info = json.loads((build / "build.json").read_text())
        for k, f in enumerate(info["files"]):
            img = build / f["image"]
            rng = np.random.default_rng(len(name) * 100 + ord(name) + k)
            Image.fromarray(rng.integers(0, 256, (600, 800, 3), np.uint8)).save(img, quality=100)
            f["width"], f["height"] = 800, 600
            f["sha256"] = sha(img)
            ann = build / f["annotation"]
            ann.write_text(
                ann.read_text()
                .replace("<width>96</width>", "<width>800</width>")
                .replace("<height>72</height>", "<height>600</height>")
            )
        (build / "build.json").write_text(json.dumps(info))


def test_push_and_verify_on_the_host(own, tmp_path, capsys):
    _s, ws = own
    make_build(ws, "a", ["x"], 6)
    make_build(ws, "b", ["x", "y"], 5)
    out = tmp_path / "mixes" / "ab"
    capsys.readouterr()
    code = cli(
        ws,
        "project",
        "mix",
        "a",
        "b",
        "--out",
        str(out),
        "--format",
        "yolo",
        "--push",
        "test:datasets",
        "--json",
        "-q",
    )
    res = json.loads(capsys.readouterr().out)
    assert code == 0
    tar = tmp_path / "mixes" / "ab.tar.gz"
    remote = tmp_path / "home" / "datasets" / "ab.tar.gz"
    assert res["tar"] == str(tar) and remote.is_file()
    assert sha(remote) == sha(tar) == res["tar_sha256"] == res["push"]["sha256"]
    assert res["push"]["path"] == str(remote)
    assert sorted(p.name for p in remote.parent.iterdir()) == ["ab.tar.gz"]
    row = ws.store.execute("SELECT mix_id, host, path, sha256, size FROM project_mix_pushes").fetchone()
    assert row == (res["mix_id"], "test", str(remote), res["tar_sha256"], tar.stat().st_size)
    # the same mix pushed again: identical on the host, verified again
    code = cli(
        ws,
        "project",
        "mix",
        "a",
        "b",
        "--out",
        str(out),
        "--format",
        "yolo",
        "--push",
        "test:datasets",
        "--json",
        "-q",
    )
    again = json.loads(capsys.readouterr().out)
    assert code == 0 and again["push"]["skipped"] and again["tar_reused"]
    # another mix of the same name is refused on the host unless asked to replace it
    make_build(ws, "b", ["x", "y"], 7)
    assert (
        cli(
            ws,
            "project",
            "mix",
            "a",
            "b",
            "--out",
            str(out),
            "--format",
            "yolo",
            "--push",
            "test:datasets",
            "-q",
        )
        == 6
    )
    assert "exist already" in capsys.readouterr().err
    assert sha(remote) == res["tar_sha256"]
    assert (
        cli(
            ws,
            "project",
            "mix",
            "a",
            "b",
            "--out",
            str(out),
            "--format",
            "yolo",
            "--push",
            "test:datasets",
            "--replace-remote",
            "-q",
        )
        == 0
    )
    assert sha(remote) == sha(tar) != res["tar_sha256"]
    # a path outside the host's home and an unknown host are refused
    assert cli(ws, "project", "mix", "a", "--out", str(out), "--push", "test:/etc", "-q") == 8
    assert "outside the home" in capsys.readouterr().err
    assert cli(ws, "project", "mix", "a", "--out", str(out), "--push", "gpu9:x", "-q") == 5
    assert "no host 'gpu9'" in capsys.readouterr().err
    assert cli(ws, "project", "mix", "a", "--out", str(out), "--push", "nocolon", "-q") == 2


def test_server_killed_mid_push_then_the_same_mix_resumes(own, tmp_path, capsys):
    from tuiops.ops.project_mix import mix_projects, push_tarball
    from tuiops.remote.errors import ConnectionDropped
    from tuiops.remote.hosts import RetryPolicy

    s, ws = own
    big_builds(ws)
    out = tmp_path / "mixes" / "big"
    tar = tmp_path / "mixes" / "big.tar.gz"
    res = mix_projects(ws, ["a", "b"], out, tar=tar)
    size = tar.stat().st_size
    assert size > 6_000_000
    killed: list[int] = []

    def kill_midway(ev):  # type: ignore[no-untyped-def]
        if ev.op == "remote.put" and not killed and ev.done >= 4_000_000:
            killed.append(ev.done)
            s.kill()

    with pytest.raises(ConnectionDropped):
        push_tarball(
            ws,
            tar,
            "test",
            "in",
            retry=RetryPolicy(**FAST_RETRY),
            chunk=1 << 20,
            progress_interval=0,
            progress=kill_midway,
        )
    assert killed
    dest = tmp_path / "home" / "in"
    parts = list(dest.glob("big.tar.gz.*.part"))
    assert len(parts) == 1 and not (dest / "big.tar.gz").exists()
    assert 0 < parts[0].stat().st_size < size
    assert ws.store.one("SELECT count(*) FROM project_mix_pushes") == 0
    assert ws.store.one("SELECT status FROM jobs WHERE kind = 'project.push'") == "failed"
    s.start()
    # the same mix command again: same tarball bytes (kept as is), so the upload continues
    capsys.readouterr()
    code = cli(
        ws,
        "project",
        "mix",
        "a",
        "b",
        "--out",
        str(out),
        "--tar",
        str(tar),
        "--push",
        "test:in",
        "--json",
        "-q",
    )
    again = json.loads(capsys.readouterr().out)
    assert code == 0, again
    assert again["tar_reused"] and again["tar_sha256"] == res.tar_sha256
    assert again["push"]["resumed"] and again["push"]["sent"] < size, (again["push"], killed, size)
    assert sha(dest / "big.tar.gz") == res.tar_sha256
    assert sorted(p.name for p in dest.iterdir()) == ["big.tar.gz"]


def test_read_only_remote_folder_is_a_clear_error(own, tmp_path, mountable, capsys):
    _s, ws = own
    make_build(ws, "a", ["x"], 4)
    ro = tmp_path / "home" / "ro"
    mount_tmpfs(ro, "1m", readonly=True)
    try:
        capsys.readouterr()
        assert cli(ws, "project", "mix", "a", "--out", str(tmp_path / "m"), "--push", "test:ro", "-q") == 8
        err = capsys.readouterr().err
        assert "read-only" in err and "on host test" in err
        assert list(ro.iterdir()) == []
        assert (tmp_path / "m.tar.gz").is_file()  # the mix and its tarball stay here
        assert ws.store.one("SELECT count(*) FROM project_mixes") == 1
        assert ws.store.one("SELECT count(*) FROM project_mix_pushes") == 0
    finally:
        umount(ro)


def test_full_remote_disk_is_a_clear_error_and_leaves_no_part(own, tmp_path, mountable, capsys):
    _s, ws = own
    big_builds(ws)
    full = tmp_path / "home" / "full"
    mount_tmpfs(full, "1m")
    try:
        capsys.readouterr()
        assert (
            cli(ws, "project", "mix", "a", "b", "--out", str(tmp_path / "m"), "--push", "test:full", "-q")
            == 8
        )
        err = capsys.readouterr().err
        assert "the remote disk is full" in err
        assert list(full.iterdir()) == []
    finally:
        umount(full)
