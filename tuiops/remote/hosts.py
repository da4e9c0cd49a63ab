"""Hosts: how to reach a ``[hosts.NAME]`` over SSH, and which host key to trust.

A host is configured in ``tuiops.toml``::

    [hosts.gpu1]
    address = "10.0.0.7"
    port = 22
    user = "train"
    key_file = "~/.ssh/id_ed25519"   # or leave it out to use the SSH agent and default keys
    home = "/data/tuiops"            # remote paths are confined to this folder
    jump = "bastion"                 # optional: another [hosts.*] to tunnel through

Passwords are never stored: one may come from ``TUIOPS_SSH_PASSWORD_<NAME>`` (the
host name upper-cased, other characters as ``_``), ``TUIOPS_SSH_PASSWORD`` or an
interactive prompt, and lives only in memory. A passphrase for an encrypted key
file comes from ``TUIOPS_SSH_PASSPHRASE_<NAME>`` or ``TUIOPS_SSH_PASSPHRASE``.

Host keys are checked against the workspace's own ``.tuiops/known_hosts`` (or the
file named by ``known_hosts`` under ``[remote]`` or in the host's table, such as
``~/.ssh/known_hosts``). An unknown host is refused until ``tuiops hosts trust
NAME`` records its key (or an interactive caller says yes); a changed key is
refused with both fingerprints. The user's ``~/.ssh/config`` is not read: the
workspace's configuration is the whole story.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import hashlib
import hmac
import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import NotFoundError, RemoteError, WorkspaceError
from tuiops.remote.errors import (
    ConnectionDropped,
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
    KeyFileUnusable,
    LoginFailed,
)
from tuiops.workspace import HostConfig

if TYPE_CHECKING:
    import asyncssh

    from tuiops.workspace import Workspace

DEFAULT_KNOWN_HOSTS = ".tuiops/known_hosts"
PASSWORD_ENV = "TUIOPS_SSH_PASSWORD"
PASSPHRASE_ENV = "TUIOPS_SSH_PASSPHRASE"
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
"""Offered before asyncssh's defaults: AES-GCM runs in one OpenSSL call per packet (AES-NI),
about twice as fast here as chacha20-poly1305, which asyncssh computes in several calls."""

HOST_NAME_RX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

AskFn = Callable[[str], bool]
"""A yes/no question put to the user; True means yes."""

PromptFn = Callable[[str], "str | None"]
"""A prompt for a secret (a password); None or "" means none is given."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try again after a dropped or failed connection, with exponential back-off."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1, 2, …)."""
        return min(self.max_delay, self.base_delay * (2 ** max(0, failures - 1)))


NO_RETRY = RetryPolicy(attempts=1)


def env_suffix(name: str) -> str:
    """The host name as an environment-variable suffix: upper case, other characters ``_``."""
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def password_from_env(name: str) -> str | None:
    """The password for host ``name`` from the environment, if one is set there."""
    return os.environ.get(f"{PASSWORD_ENV}_{env_suffix(name)}") or os.environ.get(PASSWORD_ENV) or None


def passphrase_from_env(name: str) -> str | None:
    """The key passphrase for host ``name`` from the environment, if one is set there."""
    return os.environ.get(f"{PASSPHRASE_ENV}_{env_suffix(name)}") or os.environ.get(PASSPHRASE_ENV) or None


def host_pattern(address: str, port: int) -> str:
    """The known_hosts pattern for an address and port (``addr`` or ``[addr]:port``)."""
    return address if port == 22 else f"[{address}]:{port}"


def fingerprint(key: asyncssh.SSHKey) -> str:
    """``ssh-ed25519 SHA256:…``: the algorithm and the SHA-256 fingerprint of a public key."""
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _line_names(line: str) -> list[str] | None:
    """The host names of a known_hosts line, or None for comments, blanks and markers."""
    text = line.strip()
    if not text or text.startswith("#") or text.startswith("@"):
        return None
    return text.split(None, 1)[0].split(",")


def _name_matches(entry: str, pattern: str) -> bool:
    if entry.startswith("|1|"):
        try:
            _, _, salt, digest = entry.split("|", 3)
            mac = hmac.new(base64.b64decode(salt), pattern.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(mac, base64.b64decode(digest))
        except (ValueError, TypeError):
            return False
    return entry == pattern


class Connection:
    """An open SSH connection to one host (and the jump connections it runs through)."""

    def __init__(self, host: HostConfig, conn: asyncssh.SSHClientConnection, tunnel: Connection | None):
        self.host = host
        self.conn = conn
        self.tunnel = tunnel

    @property
    def name(self) -> str:
        return self.host.name

    async def sftp(self) -> asyncssh.SFTPClient:
        """A new SFTP channel; file names that are not UTF-8 pass through as surrogate escapes."""
        return await self.conn.start_sftp_client(path_errors="surrogateescape")

    async def close(self) -> None:
        """Close this connection, then the jump connections under it."""
        self.conn.close()
        try:
            await self.conn.wait_closed()
        except Exception:
            pass
        if self.tunnel is not None:
            await self.tunnel.close()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Hosts:
    """The workspace's hosts and how to reach them.

    ``ask`` answers "trust this unknown host key?" (None: never ask, refuse);
    ``prompt`` asks for a password when the server wants one and the environment
    has none (None: no prompt). Both are called from a worker thread.
    """

    def __init__(
        self,
        hosts: Mapping[str, HostConfig],
        *,
        root: str | os.PathLike[str],
        known_hosts: str | os.PathLike[str] | None = None,
        ask: AskFn | None = None,
        prompt: PromptFn | None = None,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 15.0,
        keepalive: float = 15.0,
    ) -> None:
        self._hosts = dict(hosts)
        self.root = Path(root)
        self._known_hosts = known_hosts
        self.ask = ask
        self.prompt = prompt
        self.retry = retry or RetryPolicy()
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self._passwords: dict[str, str] = {}

    @classmethod
    def from_workspace(cls, ws: Workspace, **kwargs: Any) -> Hosts:
        """The hosts of a workspace (``[remote] known_hosts`` picks the known_hosts file)."""
        remote = ws.config.raw.get("remote", {})
        known = remote.get("known_hosts") if isinstance(remote, dict) else None
        kwargs.setdefault("known_hosts", known)
        return cls(ws.config.hosts, root=ws.root, **kwargs)

    # -- configuration ------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self._hosts)

    def get(self, name: str) -> HostConfig:
        """The configuration of host ``name``; NotFoundError naming the known hosts otherwise."""
        host = self._hosts.get(name)
        if host is None:
            known = ", ".join(sorted(self._hosts)) or "none"
            raise NotFoundError(
                f"no host named {name!r} in tuiops.toml (hosts: {known})",
                hint="add one with `tuiops hosts add NAME --address ADDR`",
            )
        return host

    def user(self, host: HostConfig) -> str:
        return host.user or getpass.getuser()

    def describe(self, host: HostConfig) -> str:
        """``user@address:port``."""
        return f"{self.user(host)}@{host.address}:{host.port}"

    def _path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    def known_hosts_path(self, host: HostConfig) -> Path:
        """The known_hosts file that holds (or will hold) this host's key."""
        value = host.extra.get("known_hosts") or self._known_hosts or DEFAULT_KNOWN_HOSTS
        return self._path(str(value))

    def key_path(self, host: HostConfig) -> Path | None:
        return self._path(host.key_file) if host.key_file else None

    def connect_timeout_for(self, host: HostConfig) -> float:
        value = host.extra.get("connect_timeout", self.connect_timeout)
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise WorkspaceError(
                f"[hosts.{host.name}] connect_timeout must be a number, not {value!r}"
            ) from exc

    # -- known hosts ---------------------------------------------------------------------------
    def trusted_keys(self, host: HostConfig) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
        """The recorded (trusted, revoked) keys of ``host`` from its known_hosts file."""
        import asyncssh

        path = self.known_hosts_path(host)
        if not path.is_file():
            return [], []
        try:
            book = asyncssh.read_known_hosts(str(path))
        except (ValueError, OSError) as exc:
            raise WorkspaceError(
                f"cannot read known_hosts file {path}: {exc}",
                hint="fix or remove the bad line, then run `tuiops hosts trust NAME` again",
            ) from exc
        addr = host.address if _is_ip(host.address) else ""
        match = book.match(host.address, addr, host.port if host.port != 22 else None)
        return list(dict.fromkeys(match[0])), list(dict.fromkeys(match[2]))

    def record_key(self, host: HostConfig, key: asyncssh.SSHKey, *, replace: bool = False) -> Path:
        """Add ``key`` for ``host`` to its known_hosts file (dropping older entries if ``replace``).

        A new entry is appended, as OpenSSH does; replacing rewrites the file atomically
        and keeps its permissions.
        """
        from tuiops.fsutil import atomic_write_text, disk_error

        path = self.known_hosts_path(host)
        pattern = host_pattern(host.address, host.port)
        alg, blob = key.export_public_key("openssh").decode("ascii").split()[:2]
        entry = f"{pattern} {alg} {blob}\n"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not replace or not path.is_file():
                with open(path, "a+", encoding="utf-8") as fh:
                    fh.seek(0, os.SEEK_END)
                    if fh.tell():
                        fh.seek(fh.tell() - 1)
                        last = fh.read(1)
                        if last != "\n":
                            fh.write("\n")
                    fh.write(entry)
                return path
            mode = path.stat().st_mode & 0o777
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        except OSError as exc:
            raise disk_error(path, exc) from exc
        kept = [ln for ln in lines if not any(_name_matches(n, pattern) for n in (_line_names(ln) or []))]
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
        atomic_write_text(path, "".join(kept) + entry)
        os.chmod(path, mode)
        return path

    def key_state(self, host: HostConfig, key: asyncssh.SSHKey) -> str:
        """``trusted``, ``unknown`` (nothing recorded), ``changed`` (another key recorded) or ``revoked``."""
        trusted, revoked = self.trusted_keys(host)
        if key in revoked:
            return "revoked"
        if key in trusted:
            return "trusted"
        return "changed" if trusted else "unknown"

    def _changed_error(
        self, host: HostConfig, trusted: list[asyncssh.SSHKey], new: asyncssh.SSHKey | None
    ) -> HostKeyChanged:
        old = "; ".join(fingerprint(k) for k in trusted)
        now = fingerprint(new) if new is not None else "a key of a type not recorded"
        return HostKeyChanged(
            f"the host key of {host.name} ({host.address}:{host.port}) has CHANGED: recorded {old}, "
            f"the server now presents {now}. The connection was refused: someone may be intercepting "
            "it, or the host was re-installed",
            hint=f"check the new fingerprint with the host's administrator; if it is right, run "
            f"`tuiops hosts trust {host.name} --replace` (known_hosts: {self.known_hosts_path(host)})",
        )

    def _unknown_error(self, host: HostConfig, new: asyncssh.SSHKey | None) -> HostKeyUnknown:
        offered = f" (it presents {fingerprint(new)})" if new is not None else ""
        return HostKeyUnknown(
            f"the host key of {host.name} ({host.address}:{host.port}) is not known{offered}; "
            "the connection was refused",
            hint=f"run `tuiops hosts trust {host.name}` to check its fingerprint and record it "
            f"in {self.known_hosts_path(host)}",
        )

    # -- connecting ----------------------------------------------------------------------------
    def _unreachable(self, host: HostConfig, reason: str) -> HostUnreachable:
        via = f" through jump host {host.jump}" if host.jump else ""
        return HostUnreachable(
            f"cannot reach host {host.name} at {host.address}:{host.port}{via}: {reason}",
            hint=f"check address and port in [hosts.{host.name}] of tuiops.toml, that the machine is up "
            "and that sshd runs there and listens on that port",
        )

    def _login_error(self, host: HostConfig, exc: Exception, methods: list[str] | None = None) -> LoginFailed:
        """The refused login, saying what was tried; ``methods`` are the ones the server offers
        (None: not known). A server that takes no key is told apart: its password comes from
        ``TUIOPS_SSH_PASSWORD_<NAME>`` or a prompt on a terminal."""
        key = self.key_path(host)
        tried = (
            f"the key {key}"
            if key
            else "the SSH agent ($SSH_AUTH_SOCK) and the default keys ~/.ssh/id_ed25519, id_ecdsa, id_rsa"
        )
        had_password = bool(password_from_env(host.name) or host.name in self._passwords)
        env = f"{PASSWORD_ENV}_{env_suffix(host.name)}"
        reason = exc.reason if hasattr(exc, "reason") else exc
        who = f"login to {host.name} as {self.user(host)} ({host.address}:{host.port}) was refused"
        by_password = bool(methods) and any(
            m in (methods or []) for m in ("password", "keyboard-interactive")
        )
        if by_password and "publickey" not in (methods or []):
            offered = ", ".join(methods or [])
            got = "the password given was wrong" if had_password else "no password was given"
            return LoginFailed(
                f"{who}: the server takes no key, only a password ({offered}), and {got} ({reason})",
                hint=f"set {env} to the password of {self.user(host)} (it is never stored), or run on a "
                "terminal to be asked for it",
            )
        if had_password:
            tried += " and a password"
        pub = f"{key}.pub" if key else "your public key"
        hint = (
            f"add {pub} to ~{self.user(host)}/.ssh/authorized_keys on the host, or set user/key_file "
            f"in [hosts.{host.name}]"
        )
        if by_password:
            hint += f"; it also takes a password: set {env}, or run on a terminal to be asked"
        return LoginFailed(f"{who}: tried {tried} ({reason})", hint=hint)

    async def _auth_methods(self, host: HostConfig, tunnel: Connection | None) -> list[str] | None:
        """The login methods the server offers this user (``publickey``, ``password`` …), or None."""
        import asyncssh

        try:
            methods = await asyncio.wait_for(
                asyncssh.get_server_auth_methods(
                    host.address,
                    host.port,
                    self.user(host),
                    tunnel=tunnel.conn if tunnel is not None else (),
                    config=[],
                ),
                self.connect_timeout_for(host),
            )
        except (asyncssh.Error, OSError):
            return None
        return [str(m) for m in methods]

    def _options(self, host: HostConfig) -> dict[str, Any]:
        import asyncssh
        from asyncssh.encryption import get_default_encryption_algs

        defaults = [a.decode("ascii") for a in get_default_encryption_algs()]
        opts: dict[str, Any] = {
            "username": self.user(host),
            "config": [],
            "encryption_algs": list(dict.fromkeys([*PREFERRED_CIPHERS, *defaults])),
            "connect_timeout": self.connect_timeout_for(host),
            "keepalive_interval": self.keepalive,
            "keepalive_count_max": 3,
        }
        key = self.key_path(host)
        if key is not None:
            if not key.is_file():
                raise KeyFileUnusable(
                    f"the key file {key} of host {host.name} does not exist",
                    hint=f"fix key_file in [hosts.{host.name}], or remove it to use the SSH agent",
                )
            passphrase = passphrase_from_env(host.name)
            try:
                opts["client_keys"] = asyncssh.load_keypairs([str(key)], passphrase)
            except (asyncssh.KeyImportError, OSError, ValueError) as exc:
                encrypted = "assphrase" in str(exc)
                raise KeyFileUnusable(
                    f"cannot load the key file {key} of host {host.name}: {exc}",
                    hint=(
                        f"load it into the SSH agent (ssh-add {key}) and remove key_file, or set "
                        f"{PASSPHRASE_ENV}_{env_suffix(host.name)}"
                        if encrypted
                        else "is it an OpenSSH private key? check key_file in tuiops.toml"
                    ),
                    encrypted=encrypted,
                ) from exc
            opts["agent_path"] = None
        password = self._passwords.get(host.name) or password_from_env(host.name)
        if password:
            opts["password"] = password
        return opts

    def connect_options(self, name: str) -> dict[str, Any]:
        """``asyncssh.connect`` keyword arguments for host ``name`` as tuiops reaches it: its
        port, user, key and only its recorded host keys (for a client tuiops does not drive,
        such as Dask's SSH workers). Call :meth:`connect` first to have an unknown or changed
        key refused with a message."""
        host = self.get(name)
        trusted, revoked = self.trusted_keys(host)
        return {"port": host.port, "known_hosts": (trusted, [], revoked), **self._options(host)}

    def _client_factory(self, host: HostConfig, seen: list[Any]) -> Callable[[], Any]:
        import asyncssh

        owner = self

        class _Client(asyncssh.SSHClient):
            def __init__(self) -> None:
                self.presented: asyncssh.SSHKey | None = None
                self.prompted = False
                seen.append(self)

            def validate_host_public_key(
                self, host_: str, addr: str, port: int, key: asyncssh.SSHKey
            ) -> bool:
                self.presented = key
                return False

            async def password_auth_requested(self) -> str | None:
                if self.prompted or owner.prompt is None:
                    return None
                self.prompted = True
                loop = asyncio.get_running_loop()
                # the face adds its own ": " (click's prompt does)
                question = f"password for {owner.describe(host)} ({host.name})"
                answer = await loop.run_in_executor(None, owner.prompt, question)
                if answer:
                    owner._passwords[host.name] = answer
                return answer or None

        return _Client

    async def connect(
        self, name: str, *, retry: RetryPolicy | None = None, _chain: tuple[str, ...] = ()
    ) -> Connection:
        """Open an authenticated connection to host ``name`` (through its jump host, if any).

        Retries with exponential back-off when the connection drops or times out during
        set-up; a refused connection, an unknown or changed host key and a refused login
        fail at once with a message saying what to do.
        """
        host = self.get(name)
        if name in _chain:
            raise WorkspaceError(f"jump hosts form a loop: {' → '.join((*_chain, name))}")
        tunnel = None
        if host.jump:
            if host.jump not in self._hosts:
                raise WorkspaceError(
                    f"[hosts.{name}] jump = {host.jump!r} names no host in tuiops.toml",
                    hint="add the jump host as its own [hosts.*] table (and trust its key) first",
                )
            tunnel = await self.connect(host.jump, retry=retry, _chain=(*_chain, name))
        try:
            conn = await self._connect_one(host, tunnel, retry or self.retry)
        except BaseException:
            if tunnel is not None:
                await tunnel.close()
            raise
        return Connection(host, conn, tunnel)

    async def _connect_one(
        self, host: HostConfig, tunnel: Connection | None, retry: RetryPolicy
    ) -> asyncssh.SSHClientConnection:
        import asyncssh

        failures = 0
        asked = False
        while True:
            trusted, revoked = self.trusted_keys(host)
            seen: list[Any] = []
            opts = self._options(host)
            try:
                conn, _ = await asyncssh.create_connection(
                    self._client_factory(host, seen),
                    host.address,
                    host.port,
                    tunnel=tunnel.conn if tunnel is not None else (),
                    known_hosts=(trusted, [], revoked),
                    **opts,
                )
                return conn
            except asyncssh.HostKeyNotVerifiable as exc:
                new = seen[-1].presented if seen else None
                if new is not None and new in revoked:
                    raise HostKeyChanged(
                        f"the host key of {host.name} ({host.address}:{host.port}) is marked revoked "
                        f"in {self.known_hosts_path(host)}: {fingerprint(new)}",
                        hint="ask the host's administrator for its current key",
                    ) from exc
                if trusted:
                    raise self._changed_error(host, trusted, new) from exc
                if new is not None and self.ask is not None and not asked:
                    asked = True
                    loop = asyncio.get_running_loop()
                    question = (
                        f"The host key of {host.name} ({host.address}:{host.port}) is not known.\n"
                        f"  {fingerprint(new)}\n"
                        f"Trust it and record it in {self.known_hosts_path(host)}?"
                    )
                    if await loop.run_in_executor(None, self.ask, question):
                        self.record_key(host, new)
                        continue
                raise self._unknown_error(host, new) from exc
            except asyncssh.PermissionDenied as exc:
                error_ = self._login_error(host, exc, await self._auth_methods(host, tunnel))
                self._passwords.pop(host.name, None)
                raise error_ from exc
            except asyncssh.KeyExchangeFailed as exc:
                if trusted and "host key" in str(exc).lower():
                    raise self._changed_error(host, trusted, None) from exc
                raise RemoteError(
                    f"the SSH key exchange with {host.name} ({host.address}:{host.port}) failed: {exc.reason}",
                    hint="the server offers no algorithm this client accepts; check its sshd_config",
                ) from exc
            except ConnectionRefusedError as exc:
                raise self._unreachable(host, "connection refused") from exc
            except socket.gaierror as exc:
                raise self._unreachable(host, f"the address does not resolve ({exc.strerror})") from exc
            except TimeoutError as exc:
                error: RemoteError = self._unreachable(
                    host, f"no answer within {self.connect_timeout_for(host):g} s (connection timed out)"
                )
                cause: BaseException = exc
            except (asyncssh.DisconnectError, asyncssh.ChannelOpenError, OSError) as exc:
                if trusted and failures == 0 and not isinstance(exc, asyncssh.ChannelOpenError):
                    # a server without a key of the recorded type drops the connection
                    offered = await self._probe_key(host, tunnel)
                    if offered is not None and offered not in trusted:
                        raise self._changed_error(host, trusted, offered) from exc
                reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
                if isinstance(exc, asyncssh.ChannelOpenError) and tunnel is not None:
                    reason = f"the jump host {tunnel.name} could not open a tunnel: {reason}"
                error = (
                    ConnectionDropped(
                        f"the connection to {host.name} ({host.address}:{host.port}) dropped while it was "
                        f"being set up: {reason}",
                        hint="check the network and the host's sshd log; run the command again",
                    )
                    if isinstance(exc, asyncssh.DisconnectError)
                    else self._unreachable(host, reason)
                )
                cause = exc
            failures += 1
            if failures >= retry.attempts:
                raise error from cause
            await asyncio.sleep(retry.delay(failures))

    async def _probe_key(self, host: HostConfig, tunnel: Connection | None) -> asyncssh.SSHKey | None:
        """The key the server presents with any algorithm, or None when it cannot be fetched."""
        import asyncssh

        try:
            return await asyncio.wait_for(
                asyncssh.get_server_host_key(
                    host.address, host.port, tunnel=tunnel.conn if tunnel is not None else (), config=[]
                ),
                self.connect_timeout_for(host),
            )
        except (asyncssh.Error, OSError):
            return None

    async def fetch_host_key(self, name: str) -> asyncssh.SSHKey:
        """The key host ``name`` presents (over its jump host, if any), without logging in.

        When a key is recorded already, the server is asked for a key of the same
        type, so that the comparison is like with like.
        """
        import asyncssh

        host = self.get(name)
        tunnel = None
        if host.jump:
            tunnel = await self.connect(host.jump)
        try:
            trusted, _ = self.trusted_keys(host)
            algs: list[str] = []
            for k in trusted:
                algs.extend(a.decode("ascii") for a in k.sig_algorithms)
            try:
                key = await asyncio.wait_for(
                    asyncssh.get_server_host_key(
                        host.address,
                        host.port,
                        tunnel=tunnel.conn if tunnel is not None else (),
                        server_host_key_algs=algs or (),
                        config=[],
                    ),
                    self.connect_timeout_for(host),
                )
            except asyncssh.KeyExchangeFailed:
                if not algs:
                    raise
                key = await asyncio.wait_for(
                    asyncssh.get_server_host_key(
                        host.address,
                        host.port,
                        tunnel=tunnel.conn if tunnel is not None else (),
                        config=[],
                    ),
                    self.connect_timeout_for(host),
                )
        except ConnectionRefusedError as exc:
            raise self._unreachable(host, "connection refused") from exc
        except socket.gaierror as exc:
            raise self._unreachable(host, f"the address does not resolve ({exc.strerror})") from exc
        except TimeoutError as exc:
            raise self._unreachable(host, "no answer (connection timed out)") from exc
        except (asyncssh.Error, OSError) as exc:
            raise self._unreachable(host, getattr(exc, "reason", None) or str(exc)) from exc
        finally:
            if tunnel is not None:
                await tunnel.close()
        if key is None:
            raise RemoteError(f"{host.name} presented no host key during the key exchange")
        return key


def validate_host_name(name: str) -> str:
    """A host name for tuiops.toml: letters, digits, ``_ . -``; UsageError otherwise."""
    from tuiops.errors import UsageError

    if not HOST_NAME_RX.match(name):
        raise UsageError(
            f"host name {name!r} is not allowed: use letters, digits, '_', '.' or '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return name
