"""Project builds on a host: a real OpenSSH sshd on 127.0.0.1 standing in for the augmentation host.

The host runs the project's script with the interpreter running the tests (``python`` in
the host's table), so a remote build must give byte-identical images to a local one.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import live_processes_with
from tests.sshd import Sshd, can_mount_tmpfs, generate_key, mount_tmpfs, sshd_unavailable, umount, use_key
from tests.sshd import make_workspace as make_ws
from tests.sshd import run_cli as cli
from tests.test_project import check_build

_why = sshd_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


def project_ws(tmp_path: Path, server: Sshd, key: Path):  # type: ignore[no-untyped-def]
    """A workspace with host ``test`` on ``server`` (its python = this interpreter) and the example projects."""
    from tuiops.ops.project import copy_examples

    ws = make_ws(tmp_path, server, key)
    ws.config.hosts["test"].extra["python"] = sys.executable
    ws.save_config()
    copy_examples(ws)
    return ws


@pytest.fixture
def rws(tmp_path: Path, server: tuple[Sshd, Path]) -> Iterator[object]:
    ws = project_ws(tmp_path, *server)
    try:
        yield ws
    finally:
        ws.close()


def images(build: Path) -> dict[str, str]:
    """Every generated file but build.json (which carries the time and the host), with its sha256."""
    return {
        p.relative_to(build).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(build.rglob("*"))
        if p.is_file() and p.name != "build.json"
    }


def remote_leftovers(tmp_path: Path) -> list[str]:
    builds = tmp_path / "home" / ".tuiops-builds"
    return sorted(p.name for p in builds.iterdir()) if builds.is_dir() else []


def test_remote_build_matches_the_local_one(rws, tmp_path, capsys):
    proj = Path(rws.root) / "projects" / "close_button"
    assert cli(rws, "project", "build", "close_button", "--count", "12", "-q") == 0
    local = images(proj / "build")
    local_info = json.loads((proj / "build" / "build.json").read_text())
    capsys.readouterr()
    rc = cli(
        rws, "project", "build", "close_button", "--count", "12", "--on", "test", "--force", "--json", "-q"
    )
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "built" and res["host"] == "test" and res["transfers"]["ran"] is True
    info = check_build(proj / "build", "close_button", 12, ["close_button"])
    assert info["host"] == "test"
    assert images(proj / "build") == local
    assert info["inputs_sha256"] == local_info["inputs_sha256"]
    assert [f["sha256"] for f in info["files"]] == [f["sha256"] for f in local_info["files"]]
    assert rws.store.execute("SELECT host FROM project_builds ORDER BY id").fetchall() == [
        ("local",),
        ("test",),
    ]
    assert remote_leftovers(tmp_path) == []
    assert not list(proj.glob("build.*-*"))
    # where it was built does not matter for being up to date
    assert cli(rws, "project", "build", "close_button", "--count", "12") == 0
    assert "up to date" in capsys.readouterr().out


def test_remote_failure_and_hang(rws, tmp_path, capsys):
    from tuiops.errors import ExternalToolError
    from tuiops.ops.project import build_project, new_project

    home = tmp_path / "home"
    p = new_project(rws, "gen", classes=["button"], count=2, augment="sh -c 'echo no luck >&2; exit 3' {out}")
    with pytest.raises(ExternalToolError, match="failed on host test with exit status 3") as exc:
        build_project(rws, "gen", host="test")
    assert "no luck" in str(exc.value)
    # the folder the hint points to is there, with the log of the failed run
    kept = remote_leftovers(tmp_path)
    assert len(kept) == 1 and kept[0].startswith("gen-")
    folder = home / ".tuiops-builds" / kept[0]
    assert f"{folder}/projects/gen" in (exc.value.hint or "")
    assert "no luck" in (folder / "augment.log").read_text()
    marker = "876.543"
    toml = p.toml_path.read_text().replace(
        "sh -c 'echo no luck >&2; exit 3' {out}", f"sleep {marker}; true {{out}}"
    )
    p.toml_path.write_text(toml)
    with pytest.raises(ExternalToolError, match="did not finish within 1 s") as exc:
        build_project(rws, "gen", host="test", timeout=1)
    assert not live_processes_with(f"sleep\x00{marker}".encode())
    assert len(remote_leftovers(tmp_path)) == 2 and "project clean gen --on test" in (exc.value.hint or "")
    assert not (p.root / "build").exists() and not list(p.root.glob("build.*-*"))
    # a timeout exits with the same code on a host as here
    assert (
        cli(rws, "project", "build", "gen", "--on", "test", "--timeout", "0.5") == ExternalToolError.exit_code
    )
    err = capsys.readouterr().err
    assert "augmentation of gen (`sleep 876.543; true {out}`) did not finish within 0.5 s on host test" in err
    assert cli(rws, "project", "build", "gen", "--timeout", "0.5") == ExternalToolError.exit_code
    assert "did not finish within 0.5 s" in capsys.readouterr().err
    assert [d.name for d in p.root.glob("build.tmp-*")] and (
        next(p.root.glob("build.tmp-*")) / "augment.log"
    ).is_file()
    # project clean removes both sides' leftovers
    assert cli(rws, "project", "clean", "gen", "--on", "test", "--json") == 0
    cleaned = json.loads(capsys.readouterr().out)
    assert len(cleaned["local"]) == 1 and len(cleaned["remote"]) == 2
    assert remote_leftovers(tmp_path) == [] and not list(p.root.glob("build.*-*"))
    # a successful build on the host removes the failed folders of the project there
    with pytest.raises(ExternalToolError, match="did not finish"):
        build_project(rws, "close_button", host="test", count=2, timeout=0.01)
    assert len(remote_leftovers(tmp_path)) == 1
    assert build_project(rws, "close_button", host="test", count=3).status == "built"
    assert remote_leftovers(tmp_path) == []


def test_required_modules_are_checked_with_the_hosts_python(rws, tmp_path, capsys):
    from tuiops.errors import UsageError
    from tuiops.ops.project import build_project

    toml = Path(rws.root) / "projects" / "close_button" / "project.toml"
    toml.write_text(toml.read_text() + 'requires = ["PIL", "tuiops_surely_missing"]\n')
    with pytest.raises(
        UsageError, match=r"requires tuiops_surely_missing, which \S+ on host test cannot import"
    ):
        build_project(rws, "close_button", host="test", count=2)
    assert remote_leftovers(tmp_path) == []
    toml.write_text(toml.read_text().replace(', "tuiops_surely_missing"', ""))
    assert build_project(rws, "close_button", host="test", count=2).status == "built"


def test_wrong_key_is_a_clear_error(rws, tmp_path, capsys):
    use_key(rws, generate_key(tmp_path / "stranger" / "id_ed25519"))
    assert cli(rws, "project", "build", "kanji", "--count", "3", "--on", "test") == 8
    err = capsys.readouterr().err
    assert "login to test" in err and "was refused" in err and "Traceback" not in err
    proj = Path(rws.root) / "projects" / "kanji"
    assert not (proj / "build").exists() and not list(proj.glob("build.*-*"))


def test_server_killed_mid_transfer_then_resumed(tmp_path):
    from tuiops.ops.project import build_project
    from tuiops.remote.errors import ConnectionDropped
    from tuiops.remote.hosts import RetryPolicy

    key = generate_key(tmp_path / "client" / "id_ed25519")
    s = Sshd(tmp_path / "server", [key]).start()
    ws = project_ws(tmp_path, s, key)
    try:
        proj = Path(ws.root) / "projects" / "close_button"
        build_project(ws, "close_button", count=24)
        local = images(proj / "build")
        killed: list[int] = []

        def kill_in_get(ev):  # type: ignore[no-untyped-def]
            if not killed and ev.op == "remote.get" and ev.done > 0:
                killed.append(ev.done)
                s.kill()

        fast = RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.1)
        with pytest.raises(ConnectionDropped, match="run the same command again"):
            build_project(
                ws, "close_button", count=24, host="test", force=True, retry=fast, progress=kill_in_get
            )
        assert killed
        assert images(proj / "build") == local
        assert len(list(proj.glob("build.tmp-*"))) == 1
        assert len(remote_leftovers(tmp_path)) == 1
        s.start()
        res = build_project(ws, "close_button", count=24, host="test", force=True, retry=fast)
        assert res.status == "built" and res.host == "test"
        assert res.transfers["ran"] is False and res.transfers["sent_files"] == 0
        assert images(proj / "build") == local
        assert remote_leftovers(tmp_path) == [] and not list(proj.glob("build.*-*"))
    finally:
        ws.close()
        s.stop()


def test_read_only_remote_folder(rws, tmp_path, capsys):
    why = can_mount_tmpfs(tmp_path)
    if why:
        pytest.skip(f"cannot fake a read-only remote folder: {why}")
    from tuiops.ops.remote import add_host, open_hosts

    host = rws.config.hosts["test"]
    ro = tmp_path / "home" / "ro"
    mount_tmpfs(ro, "1m", readonly=True)
    try:
        add_host(
            rws, "rohost", host.address, port=host.port, user=host.user, key_file=host.key_file, home=str(ro)
        )
        hosts = open_hosts(rws)
        hosts.record_key(hosts.get("rohost"), hosts.trusted_keys(host)[0][0])
        assert cli(rws, "project", "build", "kanji", "--count", "3", "--on", "rohost") == 8
        err = capsys.readouterr().err
        assert "read-only" in err and "rohost" in err and "[hosts.rohost]" in err
        proj = Path(rws.root) / "projects" / "kanji"
        assert not (proj / "build").exists()
    finally:
        umount(ro)
