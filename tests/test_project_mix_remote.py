"""`tuiops project mix --push` against a real OpenSSH sshd on 127.0.0.1.

Push and verify on the host; the server killed mid-transfer and the same mix pushed
again (the tarball is reproducible, so the upload resumes); a full and a read-only
remote folder (small tmpfs mounts, skipped where mounting is not permitted).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.sshd import FAST_RETRY, mount_tmpfs, sha, sshd_unavailable, umount
from tests.sshd import run_cli as cli
from tests.test_project_mix import make_build

_why = sshd_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


def push_ab(ws: Any, out: Path, *args: str) -> int:
    """``tuiops project mix a b --out OUT --format yolo --push test:datasets ARGS…``; its exit status."""
    return cli(
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
        *args,
    )


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
    _s, _key, ws = own
    make_build(ws, "a", ["x"], 6)
    make_build(ws, "b", ["x", "y"], 5)
    out = tmp_path / "mixes" / "ab"
    capsys.readouterr()
    code = push_ab(ws, out, "--json", "-q")
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
    code = push_ab(ws, out, "--json", "-q")
    again = json.loads(capsys.readouterr().out)
    assert code == 0 and again["push"]["skipped"] and again["tar_reused"]
    # another mix of the same name is refused on the host unless asked to replace it
    make_build(ws, "b", ["x", "y"], 7)
    assert push_ab(ws, out, "-q") == 6
    assert "exist already" in capsys.readouterr().err
    assert sha(remote) == res["tar_sha256"]
    assert push_ab(ws, out, "--replace-remote", "-q") == 0
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

    s, _key, ws = own
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
    _s, _key, ws = own
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
    _s, _key, ws = own
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
