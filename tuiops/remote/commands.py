"""Remote commands: one argv run on a host (arguments quoted), fan-out to many, host checks.

Every argument is quoted with :func:`shlex.quote`, so ``; rm -rf ~`` arrives as one
inert argument. A command that outlives its time limit is stopped: the remote shell
reports its process-group id first (on stderr, removed from the output shown), and
on a timeout a second channel sends SIGTERM and then SIGKILL to that whole group,
so nothing keeps running on the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import stat
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tuiops.errors import RemoteError, TuiopsError, UsageError
from tuiops.remote.errors import (
    CommandTimeout,
    ConnectionDropped,
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
    KeyFileUnusable,
    LoginFailed,
)

if TYPE_CHECKING:
    from tuiops.remote.hosts import Connection, Hosts

_PGID_PREFIX = "printf 'tuiops-pgid:%s\\n' \"$$\" >&2; "
_PGID_RX = re.compile(rb"^tuiops-pgid:(\d+)\n")
TOOLS = ("tar", "sha256sum", "rsync", "df")
REQUIRED_TOOLS = ("tar", "sha256sum")


def quote_argv(argv: list[str]) -> str:
    """The shell command line that runs ``argv`` exactly: every argument quoted."""
    if not argv:
        raise UsageError("no command given: pass the command and its arguments after --")
    return " ".join(shlex.quote(str(a)) for a in argv)


def build_command(argv: list[str], *, shell: bool = False, cwd: str | None = None) -> str:
    """The remote command line: ``argv`` quoted (or joined as shell text when ``shell``), run in ``cwd``."""
    if not argv:
        raise UsageError("no command given: pass the command and its arguments after --")
    command = " ".join(argv) if shell else quote_argv(argv)
    if cwd:
        command = f"cd {shlex.quote(cwd)} && {command}"
    return command


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", errors="backslashreplace")


@dataclass
class RunResult:
    """What one host answered: exit status and output, or why there is none."""

    host: str
    command: str
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    elapsed: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    signal: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.rc == 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


async def run_on(
    conn: Connection,
    argv: list[str],
    *,
    timeout: float | None = None,
    cwd: str | None = None,
    shell: bool = False,
    input: bytes | None = None,
    kill_grace: float = 2.0,
    start_grace: float = 30.0,
) -> RunResult:
    """Run ``argv`` on an open connection; rc/stdout/stderr, CommandTimeout after ``timeout`` s.

    On a timeout the command's process group is stopped (SIGTERM, then SIGKILL after
    ``kill_grace`` s). When the remote shell has not even reported its process group
    yet (a slow login), up to ``start_grace`` s more are allowed for that report.
    """
    import asyncssh

    command = build_command(argv, shell=shell, cwd=cwd)
    t0 = time.monotonic()
    try:
        proc = await conn.conn.create_process(_PGID_PREFIX + command, encoding=None)
    except asyncssh.ChannelOpenError as exc:
        raise RemoteError(f"host {conn.name} refused to start a command: {exc.reason}") from exc
    if input:
        proc.stdin.write(input)
    proc.stdin.write_eof()
    loop = asyncio.get_running_loop()
    pgid: asyncio.Future[int | None] = loop.create_future()

    async def read_err() -> bytes:
        first = await proc.stderr.readline()
        m = _PGID_RX.match(first)
        if not pgid.done():
            pgid.set_result(int(m.group(1)) if m else None)
        rest = await proc.stderr.read()
        return (b"" if m else first) + rest

    async def read_all() -> tuple[bytes, bytes]:
        out, err = await asyncio.gather(proc.stdout.read(), read_err())
        await proc.wait()
        return out, err

    reader = asyncio.ensure_future(read_all())
    try:
        stdout, stderr = await asyncio.wait_for(asyncio.shield(reader), timeout)
    except TimeoutError:
        try:
            group = await asyncio.wait_for(asyncio.shield(pgid), start_grace)
        except TimeoutError:
            group = None
        how = await _stop(conn, proc, group, kill_grace)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        raise CommandTimeout(
            f"command `{command}` on {conn.name} did not finish within {timeout:g} s; {how}",
            hint="raise the limit with --timeout SECONDS, or check why the command hangs "
            "(does it wait for input or a lock?)",
        ) from None
    finally:
        if not pgid.done():
            pgid.cancel()
    sig = proc.exit_signal[0] if proc.exit_signal else None
    return RunResult(
        host=conn.name,
        command=command,
        rc=proc.exit_status if proc.exit_status is not None and proc.exit_status >= 0 else proc.returncode,
        stdout=_text(stdout),
        stderr=_text(stderr),
        elapsed=round(time.monotonic() - t0, 3),
        signal=sig,
    )


async def _stop(conn: Connection, proc: Any, pgid: int | None, grace: float) -> str:
    """Stop a remote command: SIGTERM to its process group, SIGKILL after ``grace`` s.

    Returns how it went, for the error message.
    """
    import asyncssh

    async def signal_group(sig: str) -> None:
        if pgid:
            await conn.conn.run(f"kill -{sig} -- -{pgid} 2>/dev/null", check=False, timeout=60)
        else:
            proc.send_signal(sig)

    async def exited() -> bool:
        try:
            await proc.wait(timeout=grace)
        except asyncssh.TimeoutError:
            return False
        return True

    try:
        await signal_group("TERM")
        if await exited():
            return "it was stopped (SIGTERM)"
        await signal_group("KILL")
        if await exited():
            return "it was killed (SIGKILL)"
        if not pgid:
            return "its process group was never reported; SIGTERM and SIGKILL were asked of sshd, which may ignore them"
        return "SIGKILL was sent; it may still be exiting"
    except (asyncssh.Error, OSError) as exc:
        where = f"process group {pgid}" if pgid else "its process group (not known)"
        return f"it could NOT be stopped ({exc}): check {where} on the host"
    finally:
        proc.close()


async def run(
    hosts: Hosts,
    name: str,
    argv: list[str],
    *,
    timeout: float | None = None,
    shell: bool = False,
    input: bytes | None = None,
    in_home: bool = True,
) -> RunResult:
    """Connect to host ``name``, run ``argv`` (in the host's home when configured), disconnect.

    A non-zero exit status is returned, not raised; connection problems and a
    timeout raise RemoteError subclasses naming the host.
    """
    import asyncssh

    host = hosts.get(name)
    conn = await hosts.connect(name)
    try:
        cwd = None
        if in_home and host.home:
            from tuiops.remote.paths import resolve_home

            async with await conn.sftp() as sftp:
                home = await resolve_home(sftp, host)
                with contextlib.suppress(asyncssh.SFTPError):
                    if stat.S_ISDIR((await sftp.stat(home)).permissions or 0):
                        cwd = home
        return await run_on(conn, argv, timeout=timeout, cwd=cwd, shell=shell, input=input)
    except (asyncssh.DisconnectError, asyncssh.SFTPConnectionLost, ConnectionError) as exc:
        raise ConnectionDropped(
            f"the connection to {name} was lost while `{quote_argv(argv)}` ran: {exc}",
            hint="the command may or may not have finished on the host; check there before running it again",
        ) from exc
    finally:
        await conn.close()


async def run_many(
    hosts: Hosts,
    names: list[str],
    argv: list[str],
    *,
    timeout: float | None = None,
    shell: bool = False,
    concurrency: int = 16,
    on_result: Any = None,
) -> list[RunResult]:
    """Run ``argv`` on every host in ``names`` at once; one result per host, in ``names`` order.

    A host that is unreachable, refuses login or times out gets a result with
    ``error`` set; the other hosts are not affected.
    """
    for n in names:
        hosts.get(n)
    command = build_command(argv, shell=shell)
    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(n: str) -> RunResult:
        async with sem:
            t0 = time.monotonic()
            try:
                res = await run(hosts, n, argv, timeout=timeout, shell=shell)
            except TuiopsError as exc:
                res = RunResult(
                    host=n,
                    command=command,
                    elapsed=round(time.monotonic() - t0, 3),
                    error=str(exc),
                    error_kind=type(exc).__name__,
                )
            except Exception as exc:
                res = RunResult(
                    host=n,
                    command=command,
                    elapsed=round(time.monotonic() - t0, 3),
                    error=f"{type(exc).__name__}: {exc}",
                    error_kind=type(exc).__name__,
                )
        if on_result is not None:
            on_result(res)
        return res

    return list(await asyncio.gather(*(one(n) for n in names)))


# -- host checks -------------------------------------------------------------------------------
@dataclass
class CheckItem:
    """One line of a host check: what was checked, whether it passed, the detail."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class HostCheck:
    """The outcome of ``tuiops hosts check`` for one host."""

    host: str
    target: str
    items: list[CheckItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.items)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.items.append(CheckItem(name, ok, detail))

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "target": self.target,
            "ok": self.ok,
            "items": [asdict(i) for i in self.items],
        }


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


#: What a host's configured python must import to run detection and hashing tasks of a cluster.
WORK_PACKAGES = ("tuiops", "distributed", "ultralytics", "torch")

_PY_MARK = "tuiops-python"
_IMPORT_CHECK = (
    "import importlib, sys\n"
    f"print('{_PY_MARK}=' + sys.version.split()[0] + ' ' + sys.executable)\n"
    "for n in sys.argv[1:]:\n"
    "    try:\n"
    "        m = importlib.import_module(n); print(n + '=' + str(getattr(m, '__version__', '') or '?'))\n"
    "    except Exception:\n"
    "        print(n + '=')\n"
)


def configured_python(extra: Mapping[str, Any]) -> str | None:
    """The ``python`` of a host's table (a path, maybe with arguments: ``/venv/bin/python -S``), or None."""
    py = extra.get("python")
    return py.strip() if isinstance(py, str) and py.strip() else None


def python_prelude(python: str | None) -> str:
    """Shell text after which ``python`` and ``python3`` run the interpreter a host's builds and
    checks use: the configured one (its words quoted one by one), else ``python`` on PATH, else
    ``python3``."""
    if python:
        words = " ".join(shlex.quote(w) for w in shlex.split(python))
        return f'python() {{ {words} "$@"; }}; python3() {{ {words} "$@"; }}; '
    return 'command -v python >/dev/null 2>&1 || python() { python3 "$@"; }; '


def _missing_detail(missing: list[str], needed_by: Mapping[str, Sequence[str]]) -> str:
    return ", ".join(
        f"{m} (required by {', '.join(needed_by[m])})" if needed_by.get(m) else m for m in missing
    )


async def _check_python(
    conn: Connection,
    configured: str | None,
    result: HostCheck,
    timeout: float,
    requires: Mapping[str, Sequence[str]],
) -> None:
    """The ``python`` item (the interpreter a build runs there), ``packages`` (with a configured
    python: what cluster work needs) and ``requires`` (the modules the projects declare), from
    one run of that interpreter."""
    work = list(WORK_PACKAGES) if configured else []
    wanted = list(dict.fromkeys([*work, *requires]))
    args = " ".join(shlex.quote(m) for m in wanted)
    cmd = f"{python_prelude(configured)}python -c {shlex.quote(_IMPORT_CHECK)} {args}"
    res = await run_on(conn, ["sh", "-c", cmd], timeout=max(timeout, 120.0))
    found = dict(line.partition("=")[::2] for line in res.stdout.splitlines() if "=" in line)
    which = configured or "python (or python3) on PATH"
    if not found.get(_PY_MARK):
        why = res.stderr.strip()[-200:] or f"exit status {res.rc}"
        result.add("python", False, f"{which} does not run: {why}")
        if work:
            result.add("packages", False, "not checked: the host's python does not run")
        if requires:
            result.add("requires", False, "not checked: the host's python does not run")
        return
    version, _, exe = found[_PY_MARK].partition(" ")
    result.add("python", True, f"Python {version} ({exe})" + ("" if configured else ", none configured"))

    def have(names: Sequence[str]) -> str:
        return ", ".join(f"{p} {found[p]}" for p in names if found.get(p)) or "-"

    if work:
        missing = [p for p in work if not found.get(p)]
        result.add(
            "packages",
            not missing,
            f"missing {', '.join(missing)} (needed by --cluster and remote training); present {have(work)}"
            if missing
            else f"present {have(work)}",
        )
    if requires:
        mods = list(requires)
        missing = [m for m in mods if not found.get(m)]
        result.add(
            "requires",
            not missing,
            f"missing {_missing_detail(missing, requires)}: a build there would stop before it runs; "
            f"present {have(mods)}"
            if missing
            else f"present {have(mods)}",
        )


async def _check_unopened(hosts: Hosts, name: str, result: HostCheck) -> None:
    """``reachable`` and ``host key`` for a host that cannot be logged into from here at all
    (its key file cannot be loaded): its key is fetched without a login."""
    host = hosts.get(name)
    try:
        key = await hosts.fetch_host_key(name)
    except TuiopsError as exc:
        result.add("reachable", False, exc.message)
        return
    result.add("reachable", True, f"{host.address}:{host.port} answers")
    state = hosts.key_state(host, key)
    if state == "trusted":
        result.add("host key", True, "matches known_hosts")
    else:
        result.add("host key", False, f"{state}: run `tuiops hosts trust {name}`")


def _with_hint(exc: TuiopsError) -> str:
    return f"{exc.message} ({exc.hint})" if exc.hint else exc.message


async def check_host(
    hosts: Hosts,
    name: str,
    *,
    timeout: float = 30.0,
    requires: Mapping[str, Sequence[str]] | None = None,
) -> HostCheck:
    """Check one host: reachable, host key, login, home present and writable, free space, tools,
    the python its builds run (``python`` of its table, else python or python3 on PATH), with
    ``python`` set the packages that cluster work needs, and the modules of ``requires``
    (module → the projects that declare it)."""
    import asyncssh

    from tuiops.remote.paths import resolve_home

    host = hosts.get(name)
    result = HostCheck(name, hosts.describe(host))
    answers = f"{host.address}:{host.port} answers"
    try:
        conn = await hosts.connect(name)
    except (HostKeyUnknown, HostKeyChanged) as exc:
        result.add("reachable", True, answers)
        result.add("host key", False, _with_hint(exc))
        return result
    except LoginFailed as exc:
        result.add("reachable", True, answers)
        result.add("host key", True, "matches known_hosts")
        result.add("login", False, _with_hint(exc))
        return result
    except KeyFileUnusable as exc:
        await _check_unopened(hosts, name, result)
        result.add("login", False, f"not tried: {_with_hint(exc)}")
        return result
    except HostUnreachable as exc:
        result.add("reachable", False, _with_hint(exc))
        return result
    except ConnectionDropped as exc:
        result.add("reachable", True, answers)
        result.add("connection", False, _with_hint(exc))
        return result
    except TuiopsError as exc:
        result.add("connection", False, _with_hint(exc))
        return result
    result.add("reachable", True, answers)
    result.add("host key", True, "matches known_hosts")
    result.add("login", True, f"as {hosts.user(host)}")
    try:
        async with await conn.sftp() as sftp:
            home = await resolve_home(sftp, host)
            await _check_home(sftp, home, result)
        script = "; ".join(f'printf "%s=%s\\n" {t} "$(command -v {t} 2>/dev/null)"' for t in TOOLS)
        res = await run_on(conn, ["sh", "-c", script], timeout=timeout)
        found: dict[str, str] = {}
        for line in res.stdout.splitlines():
            k, _, v = line.partition("=")
            found[k] = v.strip()
        await _check_python(conn, configured_python(host.extra), result, timeout, requires or {})
        missing = [t for t in REQUIRED_TOOLS if not found.get(t)]
        present = [t for t in TOOLS if found.get(t)]
        result.add(
            "tools",
            not missing,
            f"missing {', '.join(missing)}; present {', '.join(present) or '-'}"
            if missing
            else f"present {', '.join(present)}",
        )
    except TuiopsError as exc:
        result.add("commands", False, exc.message)
    except (asyncssh.Error, OSError) as exc:
        result.add("connection", False, f"lost during the check: {exc}")
    finally:
        await conn.close()
    return result


async def _check_home(sftp: Any, home: str, result: HostCheck) -> None:
    """``home`` (present), ``writable`` (a file is created and removed there) and ``disk`` (free space)."""
    import asyncssh

    try:
        attrs = await sftp.stat(home)
        is_dir = attrs.permissions is not None and stat.S_ISDIR(attrs.permissions)
    except asyncssh.SFTPError:
        is_dir = False
    if not is_dir:
        result.add("home", False, f"{home} does not exist (put creates it; or fix home in tuiops.toml)")
        return
    result.add("home", True, home)
    probe = f"{home.rstrip('/')}/.tuiops-check-{uuid.uuid4().hex[:12]}"
    try:
        async with sftp.open(probe, "wb", encoding=None) as fh:
            await fh.write(b"tuiops host check\n")
        await sftp.remove(probe)
        result.add("writable", True, f"created and removed a file in {home}")
    except asyncssh.SFTPError as exc:
        result.add("writable", False, f"cannot create a file in {home}: {exc.reason}")
    try:
        vfs = await sftp.statvfs(home)
    except asyncssh.SFTPError:
        return
    free = vfs.bavail * vfs.frsize
    ro = bool(vfs.flags & 1)
    result.add(
        "disk", not ro and free > 0, ("read-only file system; " if ro else "") + f"{_human_bytes(free)} free"
    )


async def check_hosts(
    hosts: Hosts,
    names: list[str],
    *,
    on_result: Any = None,
    requires: Mapping[str, Sequence[str]] | None = None,
) -> list[HostCheck]:
    """Check every host in ``names`` at once (each for the modules of ``requires``); results in ``names`` order."""
    for n in names:
        hosts.get(n)

    async def one(n: str) -> HostCheck:
        res = await check_host(hosts, n, requires=requires)
        if on_result is not None:
            on_result(res)
        return res

    return list(await asyncio.gather(*(one(n) for n in names)))
