"""Remote-host operations: list/add/remove/trust/check hosts, run commands, put and get files.

Synchronous faces of :mod:`tuiops.remote` for the CLI, the terminal app (from a
worker thread) and scripts. Commands and transfers are recorded as jobs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tuiops.errors import Cancelled, ConflictError, UsageError, WorkspaceError
from tuiops.ops.base import CancelToken, JobProgress, ProgressFn, Reporter, job
from tuiops.remote import run_sync
from tuiops.remote.errors import HostKeyChanged
from tuiops.remote.hosts import AskFn, Hosts, PromptFn, RetryPolicy, fingerprint, validate_host_name
from tuiops.workspace import HostConfig

if TYPE_CHECKING:
    from tuiops.remote.commands import HostCheck, RunResult
    from tuiops.remote.transfer import TransferResult
    from tuiops.workspace import Workspace


def open_hosts(
    ws: Workspace,
    *,
    ask: AskFn | None = None,
    prompt: PromptFn | None = None,
    retry: RetryPolicy | None = None,
    connect_timeout: float | None = None,
) -> Hosts:
    """The workspace's hosts, with the callbacks for unknown host keys and passwords."""
    kw: dict[str, Any] = {"ask": ask, "prompt": prompt, "retry": retry}
    if connect_timeout is not None:
        kw["connect_timeout"] = connect_timeout
    return Hosts.from_workspace(ws, **kw)


def list_hosts(ws: Workspace) -> list[dict[str, Any]]:
    """Every configured host with its settings and whether its host key is recorded."""
    hosts = open_hosts(ws)
    rows = []
    for name in hosts.names():
        h = hosts.get(name)
        trusted, _ = hosts.trusted_keys(h)
        rows.append(
            {
                "name": name,
                "address": h.address,
                "port": h.port,
                "user": hosts.user(h),
                "key_file": h.key_file,
                "home": h.home,
                "jump": h.jump,
                "python": h.extra.get("python"),
                "known": bool(trusted),
                "fingerprints": [fingerprint(k) for k in trusted],
            }
        )
    return rows


def add_host(
    ws: Workspace,
    name: str,
    address: str,
    *,
    port: int = 22,
    user: str | None = None,
    key_file: str | None = None,
    home: str | None = None,
    jump: str | None = None,
    python: str | None = None,
    replace: bool = False,
) -> HostConfig:
    """Add ``[hosts.NAME]`` to tuiops.toml (ConflictError if it exists, unless ``replace``).

    ``python`` is the interpreter builds and checks run there (``/venv/bin/python``); replacing a
    host without one keeps the python it had.
    """
    validate_host_name(name)
    if python is not None:
        python = _valid_python(python)
    if not address or any(c.isspace() for c in address):
        raise UsageError(f"address {address!r} is empty or has spaces")
    if not 0 < port < 65536:
        raise UsageError(f"port {port} is out of range (1-65535)")
    if name in ws.config.hosts and not replace:
        raise ConflictError(
            f"host {name!r} exists already in tuiops.toml", hint="pass --replace to change it"
        )
    if jump is not None and jump not in ws.config.hosts:
        raise WorkspaceError(
            f"jump host {jump!r} is not configured", hint="add it first with `tuiops hosts add`"
        )
    if jump == name:
        raise UsageError(f"host {name!r} cannot be its own jump host")
    old = ws.config.hosts.get(name)
    host = HostConfig(
        name=name,
        address=address,
        port=port,
        user=user,
        key_file=key_file,
        home=home,
        jump=jump,
        extra=dict(old.extra) if old is not None else {},
    )
    if python is not None:
        host.extra["python"] = python
    ws.config.hosts[name] = host
    ws.save_config()
    return host


def _valid_python(value: str) -> str:
    import shlex

    text = value.strip()
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--python {value!r} cannot be read as a command: {exc}") from exc
    if not words or any(c in text for c in "\n\r\0"):
        raise UsageError(
            f"--python {value!r} names no interpreter",
            hint="give the path of the host's python, such as --python /opt/venv/bin/python",
        )
    return text


def remove_host(ws: Workspace, name: str) -> None:
    """Remove ``[hosts.NAME]`` from tuiops.toml (its known_hosts entry stays)."""
    hosts = open_hosts(ws)
    hosts.get(name)
    users = [n for n, h in ws.config.hosts.items() if h.jump == name]
    if users:
        raise ConflictError(
            f"host {name!r} is the jump host of {', '.join(users)}; remove or change those first"
        )
    del ws.config.hosts[name]
    ws.save_config()


def trust_host(
    ws: Workspace,
    name: str,
    *,
    yes: bool = False,
    replace: bool = False,
    confirm: AskFn | None = None,
    ask: AskFn | None = None,
) -> dict[str, Any]:
    """Fetch host ``name``'s key, show its fingerprint and record it in known_hosts.

    Records at once with ``yes``; otherwise ``confirm`` is asked (no ``confirm``:
    UsageError telling to check the fingerprint and pass --yes). A key that differs
    from the recorded one is refused (HostKeyChanged) unless ``replace``.
    """
    hosts = open_hosts(ws, ask=ask)
    host = hosts.get(name)
    key = run_sync(hosts.fetch_host_key(name))
    state = hosts.key_state(host, key)
    path = hosts.known_hosts_path(host)
    out: dict[str, Any] = {
        "host": name,
        "address": f"{host.address}:{host.port}",
        "fingerprint": fingerprint(key),
        "known_hosts": str(path),
    }
    if state == "trusted":
        return {**out, "status": "already trusted"}
    if state == "revoked":
        raise HostKeyChanged(f"the host key of {name} ({fingerprint(key)}) is marked revoked in {path}")
    if state == "changed" and not replace:
        trusted, _ = hosts.trusted_keys(host)
        raise hosts._changed_error(host, trusted, key)
    if not yes:
        question = (
            f"{'The host key of ' + name + ' has CHANGED. New' if state == 'changed' else 'Host ' + name} "
            f"({host.address}:{host.port}) key: {fingerprint(key)}\nRecord it in {path}?"
        )
        if confirm is None:
            raise UsageError(
                f"host {name} ({host.address}:{host.port}) presents {fingerprint(key)}; not recorded",
                hint=f"check the fingerprint with the host's administrator, then run "
                f"`tuiops hosts trust {name} --yes{' --replace' if state == 'changed' else ''}`",
            )
        if not confirm(question):
            raise Cancelled(f"the host key of {name} was not recorded")
    hosts.record_key(host, key, replace=(state == "changed"))
    return {**out, "status": "replaced" if state == "changed" else "recorded"}


CHECKED_FILE = ".tuiops/hosts-checked.json"
"""The outcome of each host's last check (reachable, python, failed items, when), read by the app's catalog."""


def project_requires(
    ws: Workspace, projects: list[str] | None = None
) -> tuple[dict[str, list[str]], list[str]]:
    """The modules the projects declare (``requires``), each with the projects that need it, and
    the projects left out because their project.toml does not read.

    ``projects`` names them (an unknown or unreadable one is an error); None takes every project.
    """
    from tuiops.errors import TuiopsError
    from tuiops.ops.projects import list_projects, load_project

    unreadable: list[str] = []
    if projects is None:
        rows = list_projects(ws)
        unreadable = [r["name"] for r in rows if "error" in r]
        names = [r["name"] for r in rows if "error" not in r]
    else:
        names = list(dict.fromkeys(projects))
    needed: dict[str, list[str]] = {}
    for n in names:
        try:
            p = load_project(ws, n)
        except TuiopsError:
            if projects is not None:
                raise
            unreadable.append(n)
            continue
        for m in p.requires:
            needed.setdefault(m, []).append(n)
    return needed, unreadable


def check_hosts(
    ws: Workspace,
    names: list[str] | None = None,
    *,
    projects: list[str] | None = None,
    prompt: PromptFn | None = None,
    progress: ProgressFn | None = None,
) -> list[HostCheck]:
    """Check hosts (all when ``names`` is empty): reachable, key, login, home writable, tools, the
    python builds run there and the modules the projects declare (``projects``: those; None: all).

    Each host's outcome is kept in ``.tuiops/hosts-checked.json`` for the app's catalog.
    """
    from tuiops.remote.commands import check_hosts as _check

    hosts = open_hosts(ws, prompt=prompt)
    names = list(names or hosts.names())
    if not names:
        raise UsageError(
            "no hosts are configured", hint="add one with `tuiops hosts add NAME --address ADDR`"
        )
    for n in names:
        hosts.get(n)
    requires, unreadable = project_requires(ws, projects)
    rep = Reporter("hosts.check", progress, None, total=len(names))
    results = run_sync(
        _check(hosts, names, requires=requires, on_result=lambda r: rep.advance(1, r.host, force=True))
    )
    if unreadable:
        note = f"not read: {', '.join(unreadable)} (`tuiops project list` says why); their requires are not checked"
        for r in results:
            r.add("projects", True, note)
    _record_checks(ws, results)
    return results


def _record_checks(ws: Workspace, results: list[HostCheck]) -> None:
    import json
    from datetime import UTC, datetime

    from tuiops.fsutil import atomic_write_text

    path = ws.root / CHECKED_FILE
    seen = last_checks(ws)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    for r in results:
        items = {i.name: i for i in r.items}
        reach = items.get("reachable")
        py = items.get("python")
        seen[r.host] = {
            "ok": r.ok,
            "reachable": bool(reach and reach.ok),
            "python": py.detail if py is not None and py.ok else None,
            "failed": [i.name for i in r.items if not i.ok],
            "checked": when,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(seen, indent=1, sort_keys=True) + "\n")


def last_checks(ws: Workspace) -> dict[str, dict[str, Any]]:
    """Each host's last check as ``hosts check`` recorded it (empty when none was)."""
    import json

    path = ws.root / CHECKED_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_command(
    ws: Workspace,
    names: list[str],
    argv: list[str],
    *,
    timeout: float | None = None,
    shell: bool = False,
    ask: AskFn | None = None,
    prompt: PromptFn | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> list[RunResult]:
    """Run ``argv`` on each host in ``names`` (arguments quoted); one result per host.

    With one host, a connection problem or a timeout raises (RemoteError subclasses);
    with several, each host's problem is in its result and the others go on.
    """
    from tuiops.remote import commands

    if not names:
        raise UsageError("no host given")
    if not argv:
        raise UsageError("no command given: pass the command and its arguments after --")
    hosts = open_hosts(ws, ask=ask, prompt=prompt)
    for n in names:
        hosts.get(n)
    params = {"hosts": names, "argv": argv, "timeout": timeout, "shell": shell}
    with job(ws.store, "remote.run", params, total=len(names)) as j:
        rep = Reporter("remote.run", JobProgress(ws, j.id, progress), cancel, total=len(names))
        if len(names) == 1:
            res = run_sync(commands.run(hosts, names[0], argv, timeout=timeout, shell=shell), cancel)
            rep.advance(1, names[0], force=True)
            results = [res]
        else:
            results = run_sync(
                commands.run_many(
                    hosts,
                    names,
                    argv,
                    timeout=timeout,
                    shell=shell,
                    on_result=lambda r: rep.advance(1, r.host, force=True),
                ),
                cancel,
            )
        j.result = {
            "hosts": {r.host: {"rc": r.rc, "error": r.error, "elapsed": r.elapsed} for r in results},
        }
    return results


def _transfer_job(
    ws: Workspace,
    kind: str,
    params: dict[str, Any],
    progress: ProgressFn | None,
    run: Callable[[ProgressFn], Any],
) -> TransferResult:
    with job(ws.store, kind, params) as j:
        res = run(JobProgress(ws, j.id, progress))
        j.result = res.to_dict(with_items=False)
    return res


def put_files(
    ws: Workspace,
    name: str,
    local_paths: list[str | os.PathLike[str]],
    remote_dir: str,
    *,
    allow_outside: bool = False,
    existing: str = "error",
    verify: str = "size",
    concurrency: int = 8,
    channels: int = 4,
    ask: AskFn | None = None,
    prompt: PromptFn | None = None,
    retry: RetryPolicy | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> TransferResult:
    """Send local files/folders into ``remote_dir`` on host ``name`` (see :func:`tuiops.remote.transfer.put`)."""
    from tuiops.remote import transfer

    hosts = open_hosts(ws, ask=ask, prompt=prompt, retry=retry)
    local = list(local_paths)
    params = {
        "host": name,
        "local": [str(p) for p in local],
        "remote_dir": remote_dir,
        "existing": existing,
        "verify": verify,
        "outside_home": allow_outside,
    }
    return _transfer_job(
        ws,
        "remote.put",
        params,
        progress,
        lambda prog: run_sync(
            transfer.put(
                hosts,
                name,
                local,
                remote_dir,
                allow_outside=allow_outside,
                existing=existing,
                verify=verify,
                concurrency=concurrency,
                channels=channels,
                progress=prog,
                cancel=cancel,
            ),
            cancel,
        ),
    )


def get_files(
    ws: Workspace,
    name: str,
    remote_paths: list[str],
    local_dir: str | os.PathLike[str],
    *,
    allow_outside: bool = False,
    existing: str = "error",
    verify: str = "size",
    concurrency: int = 8,
    channels: int = 4,
    ask: AskFn | None = None,
    prompt: PromptFn | None = None,
    retry: RetryPolicy | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> TransferResult:
    """Fetch remote files/folders from host ``name`` into ``local_dir`` (see :func:`tuiops.remote.transfer.get`)."""
    from tuiops.remote import transfer

    hosts = open_hosts(ws, ask=ask, prompt=prompt, retry=retry)
    params = {
        "host": name,
        "remote": list(remote_paths),
        "local_dir": str(local_dir),
        "existing": existing,
        "verify": verify,
        "outside_home": allow_outside,
    }
    return _transfer_job(
        ws,
        "remote.get",
        params,
        progress,
        lambda prog: run_sync(
            transfer.get(
                hosts,
                name,
                list(remote_paths),
                local_dir,
                allow_outside=allow_outside,
                existing=existing,
                verify=verify,
                concurrency=concurrency,
                channels=channels,
                progress=prog,
                cancel=cancel,
            ),
            cancel,
        ),
    )
