"""Remote hosts against a real OpenSSH sshd on 127.0.0.1: trust, check, run, put/get, confinement."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import live_processes_with
from tests.sshd import Sshd, free_port, sshd_unavailable
from tests.sshd import make_workspace as make_ws
from tests.sshd import run_cli as cli

_why = sshd_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def rws(tmp_path: Path, server: tuple[Sshd, Path]) -> Iterator[object]:
    ws = make_ws(tmp_path, *server)
    try:
        yield ws
    finally:
        ws.close()


def tree(folder: Path) -> dict[str, str]:
    """Relative path → sha256 of every file below ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[p.relative_to(folder).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def make_files(folder: Path, n: int, seed: int = 1) -> Path:
    """``n`` small files of varied sizes in nested folders, a 0-byte file and a 1.5 MB one."""
    rng = random.Random(seed)
    for i in range(n):
        sub = folder / f"d{i % 3}" / ("deep" if i % 5 == 0 else "")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"danbooru_{1000 + i}.jpg").write_bytes(rng.randbytes(rng.randint(1, 40_000)))
    (folder / "empty.txt").write_bytes(b"")
    (folder / "big.bin").write_bytes(rng.randbytes(1_500_000))
    (folder / "emptydir").mkdir()
    return folder


# -- hosts: config, trust, check -------------------------------------------------------------------
def test_hosts_add_list_and_config_has_no_secrets(tmp_path, server, capsys):
    s, key = server
    ws = make_ws(tmp_path, s, key, trust=False)
    try:
        assert (
            cli(ws, "hosts", "add", "gpu1", "--address", "10.0.0.7", "--user", "train", "--home", "/data")
            == 0
        )
        assert cli(ws, "hosts", "add", "gpu1", "--address", "10.0.0.8") == 6  # exists already
        assert cli(ws, "hosts", "add", "bad name", "--address", "x") == 2
        capsys.readouterr()
        assert cli(ws, "hosts", "list", "--json") == 0
        rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
        assert rows["gpu1"]["address"] == "10.0.0.7" and rows["gpu1"]["home"] == "/data"
        assert rows["test"]["known"] is False
        text = ws.config_path.read_text()
        assert "password" not in text and "[hosts.gpu1]" in text
        assert cli(ws, "hosts", "remove", "gpu1") == 0
        assert "gpu1" not in ws.config_path.read_text()
    finally:
        ws.close()


def test_password_in_config_is_refused(tmp_path):
    from tuiops.errors import WorkspaceError
    from tuiops.workspace import Workspace

    root = tmp_path / "w"
    root.mkdir()
    (root / "tuiops.toml").write_text('[hosts.x]\naddress = "127.0.0.1"\npassword = "hunter2"\n')
    with pytest.raises(WorkspaceError, match="never stored"):
        Workspace.open(root)


def test_password_and_passphrase_come_from_the_environment(monkeypatch):
    from tuiops.remote.hosts import env_suffix, passphrase_from_env, password_from_env

    assert env_suffix("gpu-1.lab") == "GPU_1_LAB"
    monkeypatch.delenv("TUIOPS_SSH_PASSWORD", raising=False)
    assert password_from_env("gpu-1") is None
    monkeypatch.setenv("TUIOPS_SSH_PASSWORD", "general")
    assert password_from_env("gpu-1") == "general"
    monkeypatch.setenv("TUIOPS_SSH_PASSWORD_GPU_1", "specific")
    assert password_from_env("gpu-1") == "specific"
    monkeypatch.setenv("TUIOPS_SSH_PASSPHRASE", "pp")
    assert passphrase_from_env("x") == "pp"


def test_unknown_host_is_refused_until_trusted(tmp_path, server, capsys):
    s, key = server
    ws = make_ws(tmp_path, s, key, trust=False)
    try:
        assert cli(ws, "remote", "run", "test", "--", "true") == 8
        err = capsys.readouterr().err
        assert "is not known" in err and "tuiops hosts trust test" in err
        # not a terminal and no --yes: shows the fingerprint, records nothing
        assert cli(ws, "hosts", "trust", "test") == 2
        err = capsys.readouterr().err
        assert "SHA256:" in err and "--yes" in err
        known = ws.root / ".tuiops" / "known_hosts"
        assert not known.exists()
        assert cli(ws, "hosts", "trust", "test", "--yes", "--json") == 0
        out = json.loads(capsys.readouterr().out)
        assert out["status"] == "recorded"
        line = known.read_text().strip()
        assert line.startswith(f"[127.0.0.1]:{s.port} ssh-ed25519 ")
        assert line.split()[2] == s.host_key_pub().split()[1]
        assert cli(ws, "hosts", "trust", "test", "--yes", "--json") == 0
        assert json.loads(capsys.readouterr().out)["status"] == "already trusted"
        assert cli(ws, "remote", "run", "test", "--", "echo", "in") == 0
        assert capsys.readouterr().out == "in\n"
        assert known.read_text().count("\n") == 1
    finally:
        ws.close()


def test_first_connection_asks_when_interactive(tmp_path, server):
    from tuiops.remote import commands, run_sync
    from tuiops.remote.errors import HostKeyUnknown
    from tuiops.remote.hosts import Hosts

    s, key = server
    ws = make_ws(tmp_path, s, key, trust=False)
    try:
        questions: list[str] = []

        def no(q: str) -> bool:
            questions.append(q)
            return False

        with pytest.raises(HostKeyUnknown):
            run_sync(commands.run(Hosts.from_workspace(ws, ask=no), "test", ["true"]))
        assert "SHA256:" in questions[0] and not (ws.root / ".tuiops" / "known_hosts").exists()
        res = run_sync(commands.run(Hosts.from_workspace(ws, ask=lambda q: True), "test", ["echo", "ok"]))
        assert res.stdout == "ok\n"
        assert (ws.root / ".tuiops" / "known_hosts").read_text().count("ssh-ed25519") == 1
        # recorded: no question any more
        res = run_sync(commands.run(Hosts.from_workspace(ws, ask=no), "test", ["true"]))
        assert res.rc == 0 and len(questions) == 1
    finally:
        ws.close()


def test_known_hosts_replace_handles_hashed_entries(tmp_path, server):
    import base64
    import hashlib as hl
    import hmac

    import asyncssh

    from tuiops.remote.hosts import Hosts, host_pattern

    s, key = server
    ws = make_ws(tmp_path, s, key, trust=False)
    try:
        hosts = Hosts.from_workspace(ws)
        host = hosts.get("test")
        other = asyncssh.generate_private_key("ssh-ed25519")
        salt = os.urandom(20)
        digest = hmac.new(salt, host_pattern("127.0.0.1", s.port).encode(), hl.sha1).digest()
        hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
        path = hosts.known_hosts_path(host)
        path.parent.mkdir(parents=True)
        pub = other.export_public_key("openssh").decode().split()[:2]
        path.write_text(f"# comment\nelsewhere.example {' '.join(pub)}\n{hashed} {' '.join(pub)}\n")
        assert hosts.key_state(host, asyncssh.import_public_key(s.host_key_pub())) == "changed"
        hosts.record_key(host, asyncssh.import_public_key(s.host_key_pub()), replace=True)
        text = path.read_text()
        assert "elsewhere.example" in text and "# comment" in text and "|1|" not in text
        assert hosts.key_state(host, asyncssh.import_public_key(s.host_key_pub())) == "trusted"
    finally:
        ws.close()


def test_check_reports_each_item(rws, capsys):
    assert cli(rws, "hosts", "check", "--json") == 0
    (res,) = json.loads(capsys.readouterr().out)
    names = [i["name"] for i in res["items"]]
    assert names[:6] == ["reachable", "host key", "login", "home", "writable", "disk"]
    assert {"python", "tools"} <= set(names)
    assert res["ok"] is True
    assert not [p for p in (Path(rws.root).parent / "home").iterdir() if p.name.startswith(".tuiops-check")]


def test_check_flags_unreachable_and_missing_home(rws, capsys):
    from tuiops.ops.remote import add_host

    add_host(rws, "down", "127.0.0.1", port=free_port())
    host = rws.config.hosts["test"]
    add_host(
        rws,
        "nohome",
        "127.0.0.1",
        port=host.port,
        user=host.user,
        key_file=host.key_file,
        home=host.home + "/nope",
    )
    import asyncssh

    from tuiops.ops.remote import open_hosts

    hosts = open_hosts(rws)
    hosts.record_key(hosts.get("nohome"), hosts.trusted_keys(hosts.get("test"))[0][0])
    assert isinstance(hosts.trusted_keys(hosts.get("nohome"))[0][0], asyncssh.SSHKey)
    assert cli(rws, "hosts", "check", "test", "down", "nohome") == 8
    out, err = capsys.readouterr()
    assert "test (" in out and "down (" in out
    assert "connection refused" in out
    assert "does not exist" in out
    assert "2 of 3 hosts failed the check: down, nohome" in err


# -- commands ---------------------------------------------------------------------------------------
def test_run_quotes_every_argument(rws, tmp_path, capfd):
    canary = tmp_path / "home" / "canary"
    canary.write_text("still here")
    nasty = [
        f"; rm -rf {canary}",
        f"$(rm {canary})",
        f"`rm {canary}`",
        f"&& rm {canary}",
        "a'b\"c\\d",
        "*",
        "two\nlines",
        "",
        "--flag",
        "$HOME",
    ]
    assert cli(rws, "remote", "run", "test", "--", "printf", "[%s]\\n", *nasty) == 0
    out = capfd.readouterr().out
    assert out == "".join(f"[{a}]\n" for a in nasty)
    assert canary.read_text() == "still here"


def test_run_in_home_and_shell_mode(rws, capfd):
    assert cli(rws, "remote", "run", "test", "--", "pwd") == 0
    assert capfd.readouterr().out.strip() == str(Path(rws.config.hosts["test"].home).resolve())
    assert cli(rws, "remote", "run", "test", "--shell", "--", "echo $((6*7)) | tr 4 X") == 0
    assert capfd.readouterr().out == "X2\n"


def test_failing_command_returns_its_status(rws, capfd):
    rc = cli(rws, "remote", "run", "test", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert rc == 3
    out, err = capfd.readouterr()
    assert out == "out\n" and err == "err\n"
    assert rws.store.one("SELECT count(*) FROM jobs WHERE kind = 'remote.run' AND status = 'done'") == 1


def test_hanging_command_times_out_and_is_stopped(rws, capfd):
    from tuiops.ops.remote import run_command
    from tuiops.remote.errors import CommandTimeout

    marker = f"{random.randint(10**6, 10**7)}.5"
    with pytest.raises(CommandTimeout, match=r"did not finish within 1 s"):
        run_command(rws, ["test"], ["sh", "-c", f"sleep {marker}; echo never"], timeout=1)
    assert live_processes_with(f"sleep\x00{marker}".encode()) == []
    assert rws.store.one("SELECT status FROM jobs WHERE kind = 'remote.run'") == "failed"
    # the CLI says which command and which limit
    assert cli(rws, "remote", "run", "test", "--timeout", "0.5", "--", "sleep", marker) == 8
    assert "within 0.5 s" in capfd.readouterr().err


def test_fan_out_gives_a_result_per_host(rws, capfd):
    from tuiops.ops.remote import add_host, open_hosts, run_command

    host = rws.config.hosts["test"]
    add_host(rws, "twin", "127.0.0.1", port=host.port, user=host.user, key_file=host.key_file, home=host.home)
    hosts = open_hosts(rws)
    hosts.record_key(hosts.get("twin"), hosts.trusted_keys(host)[0][0])
    add_host(rws, "down", "127.0.0.1", port=free_port())
    results = run_command(rws, ["test", "down", "twin"], ["echo", "hi"])
    assert [r.host for r in results] == ["test", "down", "twin"]
    assert [r.ok for r in results] == [True, False, True]
    assert results[0].stdout == results[2].stdout == "hi\n"
    assert results[1].error_kind == "HostUnreachable" and "connection refused" in results[1].error
    assert cli(rws, "remote", "run", "test,twin", "--", "echo", "x") == 0
    assert sorted(capfd.readouterr().out.splitlines()) == ["test | x", "twin | x"]
    assert cli(rws, "remote", "run", "test,down", "--json", "--", "sh", "-c", "exit 4") == 8
    out, err = capfd.readouterr()
    rows = json.loads(out)
    assert rows[0]["rc"] == 4 and rows[1]["error_kind"] == "HostUnreachable"
    assert "2 of 2 hosts failed" in err and "exit status 4" in err


def test_jump_host_tunnels(rws, capfd):
    from tuiops.ops.remote import add_host, open_hosts

    host = rws.config.hosts["test"]
    add_host(rws, "inner", "127.0.0.1", port=host.port, user=host.user, key_file=host.key_file, jump="test")
    hosts = open_hosts(rws)
    hosts.record_key(hosts.get("inner"), hosts.trusted_keys(host)[0][0])
    assert cli(rws, "remote", "run", "inner", "--", "echo", "through") == 0
    assert capfd.readouterr().out == "through\n"


# -- files ----------------------------------------------------------------------------------------
def test_put_and_get_many_files(rws, tmp_path, capsys):
    src = make_files(tmp_path / "local" / "batch", 45)
    home = tmp_path / "home"
    assert cli(rws, "remote", "put", "test", str(src), "incoming", "--verify", "sha256", "--json") == 0
    res = json.loads(capsys.readouterr().out)
    assert (
        res["files"] == 47
        and res["skipped"] == 0
        and res["bytes"] == sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    )
    assert tree(home / "incoming" / "batch") == tree(src)
    assert (home / "incoming" / "batch" / "emptydir").is_dir()
    assert not list(home.rglob("*.part"))
    # mtimes travel, so a second put finds everything identical and sends nothing
    assert cli(rws, "remote", "put", "test", str(src), "incoming", "--json") == 0
    res = json.loads(capsys.readouterr().out)
    assert res["files"] == 0 and res["skipped"] == 47 and res["sent"] == 0
    # and back
    out = tmp_path / "back"
    assert cli(rws, "remote", "get", "test", "incoming/batch", str(out), "--verify", "sha256", "--json") == 0
    res = json.loads(capsys.readouterr().out)
    assert res["files"] == 47
    assert tree(out / "batch") == tree(src)
    assert (out / "batch" / "emptydir").is_dir()
    assert not list(out.rglob("*.part"))
    assert rws.store.one("SELECT count(*) FROM jobs WHERE kind LIKE 'remote.%' AND status = 'done'") == 3


def test_existing_targets_need_a_policy(rws, tmp_path, capsys):
    from tuiops.errors import ConflictError
    from tuiops.ops.remote import put_files

    f = tmp_path / "a.txt"
    f.write_text("one")
    put_files(rws, "test", [f], "x")
    f.write_text("two!")
    with pytest.raises(ConflictError, match="exist already and differ"):
        put_files(rws, "test", [f], "x")
    target = tmp_path / "home" / "x" / "a.txt"
    assert target.read_text() == "one"
    assert put_files(rws, "test", [f], "x", existing="skip").skipped == 1
    assert target.read_text() == "one"
    assert put_files(rws, "test", [f], "x", existing="overwrite").files == 1
    assert target.read_text() == "two!"
    # the same for get
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "a.txt").write_text("local")
    assert cli(rws, "remote", "get", "test", "x/a.txt", str(tmp_path / "dl")) == 6
    assert "--existing overwrite" in capsys.readouterr().err
    assert cli(rws, "remote", "get", "test", "x/a.txt", str(tmp_path / "dl"), "--existing", "overwrite") == 0
    assert (tmp_path / "dl" / "a.txt").read_text() == "two!"


def test_missing_sources(rws, tmp_path, capsys):
    assert cli(rws, "remote", "put", "test", str(tmp_path / "nope"), "x") == 5
    assert "does not exist" in capsys.readouterr().err
    assert cli(rws, "remote", "get", "test", "nope.bin", str(tmp_path / "dl")) == 5
    assert "no such file on host test" in capsys.readouterr().err


def test_paths_outside_home_are_refused(rws, tmp_path, capsys):
    from tuiops.ops.remote import get_files, put_files
    from tuiops.remote.errors import OutsideHome

    f = tmp_path / "a.txt"
    f.write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    home = tmp_path / "home"
    (home / "sub").mkdir()
    os.symlink(outside, home / "escape")
    os.symlink(outside / "secret", home / "sub" / "secret-link")
    for target in ("../outside", str(outside), "sub/../../outside", "escape", "escape/deeper"):
        with pytest.raises(OutsideHome):
            put_files(rws, "test", [f], target)
    for source in ("../outside/secret", "/etc/hostname", "escape/secret", "sub/secret-link"):
        with pytest.raises(OutsideHome):
            get_files(rws, "test", [source], tmp_path / "dl")
    # a folder holding a link out of the home: the link is skipped, the rest comes
    (home / "sub" / "fine.txt").write_text("fine")
    res = get_files(rws, "test", ["sub"], tmp_path / "dl2")
    assert res.files == 1 and (tmp_path / "dl2" / "sub" / "fine.txt").read_text() == "fine"
    assert any(i.get("note") == "link out of the home" for i in res.items)
    assert list(outside.iterdir()) == [outside / "secret"]
    # allowed when asked
    assert cli(rws, "remote", "put", "test", str(f), str(outside), "--outside-home") == 0
    assert (outside / "a.txt").read_text() == "x"
    # inside paths, absolute or relative, are fine
    assert cli(rws, "remote", "put", "test", str(f), str(home / "ok")) == 0
    assert (home / "ok" / "a.txt").exists()


def test_partial_file_is_resumed_and_stale_parts_removed(rws, tmp_path):
    from tuiops.ops.remote import put_files
    from tuiops.remote.transfer import part_name, part_tag

    data = random.Random(5).randbytes(5_000_000)
    f = tmp_path / "big.bin"
    f.write_bytes(data)
    st = f.stat()
    dest = tmp_path / "home" / "in"
    dest.mkdir()
    part = dest / part_name("big.bin", part_tag(st.st_size, st.st_mtime_ns))
    part.write_bytes(data[:4_500_000])
    stale = dest / part_name("big.bin", "0123456789")
    stale.write_bytes(b"old version")
    res = put_files(rws, "test", [f], "in")
    assert res.resumed == 1 and res.files == 1
    assert res.items[0]["resumed_from"] == 4_500_000 - 2 * 1024 * 1024
    assert res.sent == 5_000_000 - res.items[0]["resumed_from"]
    assert (dest / "big.bin").read_bytes() == data
    assert sorted(p.name for p in dest.iterdir()) == ["big.bin"]


def test_cancel_keeps_a_resumable_part(rws, tmp_path):
    from tuiops.errors import Cancelled
    from tuiops.ops.base import CancelToken
    from tuiops.ops.remote import put_files

    data = random.Random(6).randbytes(6_000_000)
    f = tmp_path / "big.bin"
    f.write_bytes(data)
    token = CancelToken()

    def on_progress(ev):  # type: ignore[no-untyped-def]
        if ev.done >= 2_000_000:
            token.cancel()

    from tuiops.remote import run_sync, transfer
    from tuiops.remote.hosts import Hosts

    with pytest.raises(Cancelled):
        run_sync(
            transfer.put(
                Hosts.from_workspace(rws),
                "test",
                [f],
                "in",
                chunk=1 << 20,
                progress=on_progress,
                cancel=token,
                progress_interval=0,
            ),
            token,
        )
    parts = list((tmp_path / "home" / "in").glob("*.part"))
    assert len(parts) == 1 and not (tmp_path / "home" / "in" / "big.bin").exists()
    res = put_files(rws, "test", [f], "in")
    assert res.resumed == 1 and (tmp_path / "home" / "in" / "big.bin").read_bytes() == data
    assert not list((tmp_path / "home" / "in").glob("*.part"))


def test_progress_counts_bytes(rws, tmp_path):
    from tuiops.ops.remote import put_files

    src = make_files(tmp_path / "p", 10)
    events = []
    res = put_files(rws, "test", [src], "p", progress=events.append)
    assert events[-1].done == events[-1].total == res.bytes
    assert all(a.done <= b.done for a, b in itertools.pairwise(events))
    assert events[-1].job_id is not None


def test_every_remote_command_has_help():
    from tuiops.cli import cli as root

    for group in ("hosts", "remote"):
        grp = root.commands[group]
        assert grp.help
        for name, cmd in grp.commands.items():
            assert cmd.help, f"{group} {name} has no help"
            for p in cmd.params:
                if p.param_type_name == "option":
                    assert p.help, f"{group} {name} {p.opts} has no help"


def test_modes_and_odd_names_travel(rws, tmp_path):
    from tuiops.ops.remote import get_files, put_files

    src = tmp_path / "proj"
    src.mkdir()
    script = src / "augment.sh"
    script.write_text("#!/bin/sh\necho augmented\n")
    script.chmod(0o755)
    (src / "readonly.txt").write_text("r")
    (src / "readonly.txt").chmod(0o444)
    odd = os.fsdecode(b"caf\xe9 \xe2\x9c\x93 [1].jpg")
    (src / odd).write_bytes(b"odd")
    events = []
    put_files(rws, "test", [src], "p", progress=events.append)
    assert all(ev.message.encode("utf-8") for ev in events)  # printable: no lone surrogates
    assert cli(rws, "remote", "put", "test", str(src), "p2", "--json", "-q") == 0
    remote = tmp_path / "home" / "p" / "proj"
    assert (remote / "augment.sh").stat().st_mode & 0o777 == 0o755
    assert (remote / "readonly.txt").stat().st_mode & 0o777 == 0o444
    assert (remote / odd).read_bytes() == b"odd"
    assert cli(rws, "remote", "run", "test", "--", "p/proj/augment.sh") == 0
    get_files(rws, "test", ["p/proj"], tmp_path / "back")
    assert (tmp_path / "back" / "proj" / "augment.sh").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "back" / "proj" / odd).read_bytes() == b"odd"
    assert tree(tmp_path / "back" / "proj") == tree(src)


def test_recorded_key_of_another_type_is_a_changed_key(tmp_path, server):
    import asyncssh

    from tuiops.ops.remote import open_hosts
    from tuiops.remote import commands, run_sync
    from tuiops.remote.errors import HostKeyChanged

    s, key = server
    ws = make_ws(tmp_path, s, key, trust=False)
    try:
        hosts = open_hosts(ws)
        hosts.record_key(hosts.get("test"), asyncssh.generate_private_key("ecdsa-sha2-nistp256"))
        with pytest.raises(HostKeyChanged, match="ssh-ed25519 SHA256:"):
            run_sync(commands.run(hosts, "test", ["true"]))
    finally:
        ws.close()


def test_encrypted_key_needs_its_passphrase(tmp_path, server, monkeypatch, capsys):
    pytest.importorskip("bcrypt", reason="writing an encrypted OpenSSH key needs bcrypt")
    import asyncssh

    from tuiops.ops.remote import add_host

    s, _key = server
    enc = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp_path / "enc_key"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few KDF rounds keep the test fast
        enc.write_private_key(str(path), passphrase="open sesame", rounds=2)
    ws = make_ws(tmp_path, s, _key)
    try:
        s.authorized.write_text(s.authorized.read_text() + enc.export_public_key().decode())
        host = ws.config.hosts["test"]
        add_host(
            ws,
            "test",
            "127.0.0.1",
            port=s.port,
            user=s.user,
            key_file=str(path),
            home=host.home,
            replace=True,
        )
        monkeypatch.delenv("TUIOPS_SSH_PASSPHRASE", raising=False)
        assert cli(ws, "remote", "run", "test", "--", "true") == 4
        assert "TUIOPS_SSH_PASSPHRASE_TEST" in capsys.readouterr().err
        monkeypatch.setenv("TUIOPS_SSH_PASSPHRASE_TEST", "open sesame")
        assert cli(ws, "remote", "run", "test", "--", "true") == 0
    finally:
        ws.close()


def test_run_without_a_home_folder_runs_in_the_login_folder(rws, capfd):
    from tuiops.ops.remote import add_host

    host = rws.config.hosts["test"]
    add_host(
        rws,
        "test",
        "127.0.0.1",
        port=host.port,
        user=host.user,
        key_file=host.key_file,
        home=host.home + "/not-yet",
        replace=True,
    )
    assert cli(rws, "remote", "run", "test", "--", "sh", "-c", "pwd") == 0
    import pwd

    assert capfd.readouterr().out.strip() == os.path.realpath(pwd.getpwnam(host.user).pw_dir)


def test_jump_hosts_that_loop_are_refused(rws):
    from tuiops.errors import WorkspaceError
    from tuiops.ops.remote import add_host, run_command

    add_host(rws, "a", "127.0.0.1", port=1)
    add_host(rws, "b", "127.0.0.1", port=1, jump="a")
    add_host(rws, "a", "127.0.0.1", port=1, jump="b", replace=True)
    with pytest.raises(WorkspaceError, match="jump hosts form a loop"):
        run_command(rws, ["a"], ["true"])


def test_known_hosts_file_can_be_configured(tmp_path, server, capsys):
    from tuiops.workspace import Workspace

    s, key = server
    ws = make_ws(tmp_path, s, key, trust=False)
    ws.close()
    cfg = ws.config_path
    cfg.write_text(cfg.read_text() + '\n[remote]\nknown_hosts = "keys/known_hosts"\n')
    ws = Workspace.open(ws.root)
    try:
        assert cli(ws, "hosts", "trust", "test", "--yes") == 0
        assert (ws.root / "keys" / "known_hosts").read_text().count("ssh-ed25519") == 1
        assert not (ws.root / ".tuiops" / "known_hosts").exists()
        assert cli(ws, "remote", "run", "test", "--", "true") == 0
        ws.add_classes(["body"])  # rewriting tuiops.toml keeps [remote]
        assert 'known_hosts = "keys/known_hosts"' in ws.config_path.read_text()
    finally:
        ws.close()
