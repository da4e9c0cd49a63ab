"""A real OpenSSH ``sshd`` on 127.0.0.1 for tests and benchmarks.

The server runs in the foreground (``-D``) from its own temporary folder with a
temporary host key, an ``AuthorizedKeysFile`` holding the test client's public key,
no PAM and no passwords. It listens on a free loopback port; :meth:`Sshd.start`
polls the port until the server answers with its SSH banner (a bounded connect
loop, never a fixed sleep).

With ``password=…`` the server takes only that password for its user, and no key: it runs
in a mount namespace of its own (``unshare -m``) where a copy of ``/etc/shadow`` holding that
password is bind-mounted over the real one, which nothing else sees
(:func:`password_login_unavailable` says why that cannot run here).

Faults for tests: :meth:`Sshd.kill` ends the listener and every process it forked
(its per-connection children included, which sshd puts in sessions of their own),
:meth:`Sshd.drop_connections` ends only the per-connection children, and
:meth:`Sshd.start` with ``new_host_key=True`` restarts the server under a fresh
host key.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")


def sshd_unavailable() -> str | None:
    """Why a real sshd cannot run here, or None when it can."""
    if not SSHD.is_file():
        return (
            f"{SSHD} is absent: install the OpenSSH server (apt-get install -y openssh-server) "
            "to run the remote-host tests"
        )
    if not PRIVSEP_DIR.is_dir():
        try:
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            return f"sshd needs its privilege separation folder {PRIVSEP_DIR}: {exc.strerror}"
    return None


def password_login_unavailable() -> str | None:
    """Why a password-only sshd cannot run here (see :class:`Sshd`'s ``password``), or None."""
    if sshd_unavailable():
        return sshd_unavailable()
    if os.geteuid() != 0:
        return "a password-only sshd needs root (to read the shadow file it is given)"
    for tool in ("unshare", "mount", "openssl"):
        if shutil.which(tool) is None:
            return f"a password-only sshd needs {tool}"
    r = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"unshare -m is not permitted here: {r.stderr.strip() or r.returncode}"
    return None


def _shadow_with(path: Path, user: str, password: str) -> Path:
    """A copy of /etc/shadow in which ``user``'s password is ``password`` (SHA-512 crypt)."""
    digest = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True, text=True, check=True
    ).stdout.strip()
    lines = []
    for line in Path("/etc/shadow").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            fields[1] = digest
        lines.append(":".join(fields))
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


class _PortTaken(RuntimeError):
    """sshd could not bind its port."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def generate_key(path: Path, algorithm: str = "ssh-ed25519") -> Path:
    """Write a new private key (OpenSSH format, mode 600) and its ``.pub`` beside it."""
    import asyncssh

    key = asyncssh.generate_private_key(algorithm)
    path.parent.mkdir(parents=True, exist_ok=True)
    key.write_private_key(str(path))
    os.chmod(path, 0o600)
    key.write_public_key(str(path) + ".pub")
    return path


def _children_of(pids: set[int]) -> set[int]:
    """Every live process descending from ``pids`` (read from /proc)."""
    parent_of: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        parent_of[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = set(pids)
    while frontier:
        nxt = {pid for pid, ppid in parent_of.items() if ppid in frontier and pid not in found}
        found |= nxt
        frontier = nxt
    return found


class Sshd:
    """One sshd process serving ``user`` on 127.0.0.1:``port`` from the folder ``root``."""

    def __init__(
        self,
        root: Path,
        authorized_keys: list[Path],
        *,
        port: int | None = None,
        password: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.user = getpass.getuser()
        self.host_key = self.root / "ssh_host_ed25519_key"
        self.config = self.root / "sshd_config"
        self.log = self.root / "sshd.log"
        self.authorized = self.root / "authorized_keys"
        self.authorized.write_text("".join(Path(str(k) + ".pub").read_text() for k in authorized_keys))
        os.chmod(self.authorized, 0o600)
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None
        self._started = False

    # -- configuration ----------------------------------------------------------------------
    def _write_config(self) -> None:
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            "PidFile none",
            f"AuthorizedKeysFile {self.authorized}",
            f"PubkeyAuthentication {'no' if self.password else 'yes'}",
            f"PasswordAuthentication {'yes' if self.password else 'no'}",
            "PermitEmptyPasswords no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin yes",
            "StrictModes no",
            "AllowTcpForwarding yes",
            "MaxSessions 32",
            "MaxStartups 64:30:128",
            "MaxAuthTries 6",
            "Subsystem sftp internal-sftp",
            "LogLevel INFO",
        ]
        self.config.write_text("\n".join(lines) + "\n")

    def host_key_pub(self) -> str:
        """The server's public host key line (``ssh-ed25519 AAAA…``)."""
        return Path(str(self.host_key) + ".pub").read_text().strip()

    # -- life cycle ---------------------------------------------------------------------------
    def start(self, *, new_host_key: bool = False, timeout: float = 15.0) -> Sshd:
        """Start sshd (a fresh host key when asked or when none exists) and wait until it answers.

        On its first start, a port another process took in the meantime is replaced
        by a new free one (a few times); a restart keeps its port.
        """
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("sshd is running already")
        if new_host_key or not self.host_key.exists():
            for p in (self.host_key, Path(str(self.host_key) + ".pub")):
                p.unlink(missing_ok=True)
            generate_key(self.host_key)
        for attempt in range(4):
            try:
                return self._start(timeout)
            except _PortTaken:
                if self._started or attempt == 3:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> Sshd:
        self._write_config()
        mark = self.log.stat().st_size if self.log.exists() else 0
        log = open(self.log, "ab")  # noqa: SIM115 - handed to the child process
        argv = [str(SSHD), "-D", "-e", "-f", str(self.config)]
        if self.password:
            shadow = _shadow_with(self.root / "shadow", self.user, self.password)
            # sh execs sshd: the process stays the one started here
            argv = [
                "unshare",
                "-m",
                "sh",
                "-c",
                'mount --bind "$0" /etc/shadow && exec "$@"',
                str(shadow),
                *argv,
            ]
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            # our own sshd must say it listens (another one may hold the port and answer)
            if f"Server listening on 127.0.0.1 port {self.port}".encode() in self._log_since(mark):
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                        if s.recv(64).startswith(b"SSH-"):
                            self._started = True
                            return self
                except OSError:
                    pass
            try:
                rc = self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                rc = None
            if rc is not None:
                self.proc = None
                text = self._log_since(mark).decode(errors="replace")
                if "Address already in use" in text:
                    raise _PortTaken(text)
                raise RuntimeError(f"sshd exited with status {rc}:\n{text}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"sshd did not answer on 127.0.0.1:{self.port} within {timeout} s:\n"
                    f"{self.log.read_text(errors='replace')}"
                )

    def _log_since(self, mark: int) -> bytes:
        with open(self.log, "rb") as fh:
            fh.seek(mark)
            return fh.read()

    def drop_connections(self) -> int:
        """Kill every per-connection sshd child (open sessions drop; the listener stays)."""
        if self.proc is None:
            return 0
        victims = _children_of({self.proc.pid})
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(victims)

    def kill(self) -> None:
        """Kill the listener and everything it forked, as a crash or power loss would."""
        if self.proc is None:
            return
        victims = _children_of({self.proc.pid})
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """Stop the server and its children."""
        self.kill()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Sshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def can_mount_tmpfs(scratch: Path) -> str | None:
    """Why a small tmpfs cannot be mounted here, or None when it can."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount/umount are not installed"
    probe = scratch / "mount-probe"
    probe.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True, text=True
    )
    if r.returncode != 0:
        return f"mount -t tmpfs is not permitted here: {r.stderr.strip() or r.returncode}"
    subprocess.run(["umount", str(probe)], check=True)
    return None


def mount_tmpfs(path: Path, size: str, *, readonly: bool = False) -> None:
    """Mount a tmpfs of ``size`` on ``path`` (read-only when asked)."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True)


def umount(path: Path) -> None:
    """Unmount ``path`` (lazily, so a stray open file cannot keep it busy)."""
    subprocess.run(["umount", "-l", str(path)], check=False)


# -- workspaces for the remote tests -----------------------------------------------------------------
FAST_RETRY = {"attempts": 3, "base_delay": 0.05, "max_delay": 0.2}


def sha(p: Path) -> str:
    """The sha256 of the file ``p`` (hex)."""
    return hashlib.sha256(p.read_bytes()).hexdigest()


def make_workspace(tmp_path: Path, server: Sshd, key: Path, *, trust: bool = True, name: str = "test"):  # type: ignore[no-untyped-def]
    """A workspace in ``tmp_path/ws`` with [hosts.NAME] on ``server`` and home ``tmp_path/home``.

    The server's host key is recorded in the workspace's known_hosts when ``trust``.
    """
    import asyncssh

    from tuiops.ops.remote import add_host, open_hosts
    from tuiops.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws", classes=["head"], exist_ok=True)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    add_host(ws, name, "127.0.0.1", port=server.port, user=server.user, key_file=str(key), home=str(home))
    if trust:
        hosts = open_hosts(ws)
        hosts.record_key(hosts.get(name), asyncssh.import_public_key(server.host_key_pub()))
    return ws


def use_key(ws, key: Path, name: str = "test") -> None:  # type: ignore[no-untyped-def]
    """Point host ``name`` of ``ws`` at another client key, keeping its address, port, user and home."""
    from tuiops.ops.remote import add_host

    host = ws.config.hosts[name]
    add_host(
        ws,
        name,
        host.address,
        port=host.port,
        user=host.user,
        key_file=str(key),
        home=host.home,
        replace=True,
    )


def run_cli(ws, *args: str) -> int:  # type: ignore[no-untyped-def]
    """Run ``tuiops -w WS ARGS…`` in-process; its exit status."""
    from tuiops.cli import run

    return run(["-w", str(ws.root), *args])
