"""`hosts add --python`, and `hosts check` against real sshd servers: the python a build runs,
the modules projects require, a passphrase-protected key and a password-only host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sshd import (
    Sshd,
    generate_key,
    make_workspace,
    password_login_unavailable,
    run_cli,
    sshd_unavailable,
)
from tuiops.fsutil import readable

pytestmark = pytest.mark.skipif(bool(sshd_unavailable()), reason=sshd_unavailable() or "")


def _items(res):  # type: ignore[no-untyped-def]
    return {i.name: i for i in res.items}


def _venv(tmp_path: Path) -> Path:
    """A virtual environment whose site-packages alone holds the module ``tuiops_probe_mod``."""
    root = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    (site,) = root.glob("lib/python*/site-packages")
    (site / "tuiops_probe_mod.py").write_text("__version__ = '1.2'\n")
    return root / "bin" / "python"


def _require(ws, name: str, modules: list[str]) -> None:  # type: ignore[no-untyped-def]
    import tomllib

    import tomli_w

    from tuiops.ops.projects import new_project

    p = new_project(ws, name, classes=["head"])
    data = tomllib.loads(p.toml_path.read_text())
    data["project"]["requires"] = modules
    p.toml_path.write_text(tomli_w.dumps(data))


def test_hosts_add_python_is_the_python_check_runs_and_requires_are_checked(own, tmp_path, capsys):
    from tuiops.ops.remote import check_hosts, last_checks

    _server, _key, ws = own
    py = _venv(tmp_path)
    _require(ws, "icons", ["tuiops_probe_mod"])
    broken = ws.root / "projects" / "broken"
    broken.mkdir()
    (broken / "project.toml").write_text("[project]\nclasses = 3\n")
    # without a python of its own the host's PATH python is checked, and it lacks the module
    (res,) = check_hosts(ws, ["test"])
    items = _items(res)
    assert items["projects"].ok and "not read: broken" in items["projects"].detail
    assert items["python"].ok and "none configured" in items["python"].detail
    assert not items["requires"].ok and not res.ok
    assert "tuiops_probe_mod (required by icons)" in items["requires"].detail
    # the venv's python, given by `hosts add --python`, has it
    host = ws.config.hosts["test"]
    argv = ["hosts", "add", "test", "--address", host.address, "--port", str(host.port)]
    argv += ["--user", host.user, "--key-file", host.key_file, "--home", host.home, "--python", str(py)]
    assert run_cli(ws, *argv, "--replace") == 0
    from tuiops.workspace import Workspace

    ws2 = Workspace.open(ws.root)
    assert ws2.config.hosts["test"].extra["python"] == str(py)
    assert 'python = "' + str(py) + '"' in (ws.root / "tuiops.toml").read_text()
    capsys.readouterr()
    assert run_cli(ws2, "hosts", "list") == 0
    assert f"python {py}" in capsys.readouterr().out
    (res,) = check_hosts(ws2, ["test"], projects=["icons"])
    items = _items(res)
    assert items["python"].ok and str(py) in items["python"].detail
    assert items["requires"].ok and "tuiops_probe_mod 1.2" in items["requires"].detail
    # replacing the host without --python keeps it
    assert run_cli(ws2, *argv[:-2], "--replace") == 0
    assert Workspace.open(ws.root).config.hosts["test"].extra["python"] == str(py)
    assert last_checks(ws2)["test"]["reachable"] is True


def test_a_passphrase_protected_key_is_a_login_problem_not_an_unreachable_host(tmp_path, monkeypatch):
    import asyncssh

    from tuiops.ops.remote import check_hosts

    key = tmp_path / "client" / "id_locked"
    key.parent.mkdir(parents=True)
    k = asyncssh.generate_private_key("ssh-ed25519")
    k.write_private_key(str(key), passphrase="open sesame")
    os.chmod(key, 0o600)
    k.write_public_key(str(key) + ".pub")
    monkeypatch.delenv("TUIOPS_SSH_PASSPHRASE", raising=False)
    monkeypatch.delenv("TUIOPS_SSH_PASSPHRASE_TEST", raising=False)
    with Sshd(tmp_path / "server", [key]) as server:
        ws = make_workspace(tmp_path, server, key)
        (res,) = check_hosts(ws, ["test"])
        items = _items(res)
        assert items["reachable"].ok and items["host key"].ok
        assert not items["login"].ok
        assert "passphrase" in items["login"].detail.lower()
        assert "TUIOPS_SSH_PASSPHRASE_TEST" in items["login"].detail
        monkeypatch.setenv("TUIOPS_SSH_PASSPHRASE_TEST", "open sesame")
        (res,) = check_hosts(ws, ["test"])
        assert _items(res)["login"].ok and res.ok
        # a key file that is not there is a login problem too
        ws.config.hosts["test"].key_file = str(key) + ".gone"
        (res,) = check_hosts(ws, ["test"])
        items = _items(res)
        assert items["reachable"].ok and not items["login"].ok and "does not exist" in items["login"].detail
        ws.close()


@pytest.fixture
def password_host(tmp_path):  # type: ignore[no-untyped-def]
    """A sshd that takes only the password ``pa55 word`` for its user, and a workspace trusting it."""
    why = password_login_unavailable()
    if why:
        pytest.skip(why)
    key = generate_key(tmp_path / "client" / "id_ed25519")
    with Sshd(tmp_path / "server", [key], password="pa55 word") as server:
        ws = make_workspace(tmp_path, server, key)
        try:
            yield server, ws
        finally:
            ws.close()


def test_a_login_refused_by_a_password_only_host_names_its_password_variable(password_host, monkeypatch):
    from tuiops.errors import TuiopsError
    from tuiops.ops.remote import check_hosts, run_command

    _server, ws = password_host
    for var in ("TUIOPS_SSH_PASSWORD", "TUIOPS_SSH_PASSWORD_TEST"):
        monkeypatch.delenv(var, raising=False)
    (res,) = check_hosts(ws, ["test"])
    items = _items(res)
    assert items["reachable"].ok and items["host key"].ok and not items["login"].ok
    assert "TUIOPS_SSH_PASSWORD_TEST" in items["login"].detail
    assert "only a password" in items["login"].detail
    with pytest.raises(TuiopsError) as err:
        run_command(ws, ["test"], ["true"])
    assert "TUIOPS_SSH_PASSWORD_TEST" in str(err.value)
    monkeypatch.setenv("TUIOPS_SSH_PASSWORD_TEST", "wrong")
    (res,) = check_hosts(ws, ["test"])
    assert "password given was wrong" in _items(res)["login"].detail
    monkeypatch.setenv("TUIOPS_SSH_PASSWORD_TEST", "pa55 word")
    (res,) = check_hosts(ws, ["test"])
    assert _items(res)["login"].ok
    (out,) = run_command(ws, ["test"], ["echo", "in"])
    assert out.stdout == "in\n"


def _read_until(fd: int, want: bytes, limit: float = 60.0) -> bytes:
    """What the terminal shows until ``want`` appears (or the process closes it, or ``limit`` s pass)."""
    got = b""
    deadline = time.monotonic() + limit
    while want not in got and time.monotonic() < deadline:
        if not readable(fd, deadline - time.monotonic()):
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    return got


def test_the_password_prompt_on_a_terminal_ends_in_one_colon(password_host, monkeypatch):
    import pty

    _server, ws = password_host
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUIOPS_SSH_PASSWORD")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    pid, fd = pty.fork()
    if pid == 0:  # the child: tuiops on a terminal
        os.execve(
            sys.executable,
            [sys.executable, "-m", "tuiops", "-w", str(ws.root), "remote", "run", "test", "--", "echo", "in"],
            env,
        )
    answered = False
    try:
        shown = _read_until(fd, b"(test)")
        shown += _read_until(fd, b": ", limit=10)
        text = shown.decode(errors="replace")
        line = text.strip().splitlines()[-1]
        assert line.startswith("password for ") and line.rstrip().endswith("(test):"), text
        assert "::" not in line and ": :" not in line, text
        os.write(fd, b"pa55 word\n")
        answered = True
        rest = _read_until(fd, b"in\r\n")
        assert b"in\r\n" in rest, rest
    finally:
        if not answered:  # it still waits for the password
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_python_that_does_not_run_and_an_unknown_project_are_named(own, capsys):
    import json

    _server, _key, ws = own
    _require(ws, "icons", ["json"])
    host = ws.config.hosts["test"]
    argv = ["hosts", "add", "test", "--address", host.address, "--port", str(host.port), "--user", host.user]
    argv += [
        "--key-file",
        host.key_file,
        "--home",
        host.home,
        "--python",
        "/nonexistent/bin/python",
        "--replace",
    ]
    assert run_cli(ws, *argv) == 0
    capsys.readouterr()
    assert run_cli(ws, "hosts", "check", "test", "--project", "icons", "--json") == 8
    (res,) = json.loads(capsys.readouterr().out)
    items = {i["name"]: i for i in res["items"]}
    assert items["login"]["ok"] and not items["python"]["ok"]
    assert "/nonexistent/bin/python does not run" in items["python"]["detail"]
    assert not items["requires"]["ok"] and "not checked" in items["requires"]["detail"]
    assert run_cli(ws, "hosts", "check", "test", "--project", "nope") != 0
    assert "nope" in capsys.readouterr().err
