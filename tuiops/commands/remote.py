"""Remote hosts over SSH: `tuiops hosts list|add|remove|trust|check` and `tuiops remote run|put|get`.

Questions to the person (an unknown host key, a password) come from the face
(:attr:`CommandContext.ask`, :attr:`CommandContext.prompt`): on a terminal the command line
asks them; elsewhere unknown keys are refused and no password is asked.
"""

from __future__ import annotations

from typing import Any

from tuiops.commands import (
    BadUsage,
    BadValue,
    Choice,
    CommandContext,
    Float,
    Int,
    Param,
    Raw,
    Result,
    command,
    json_param,
    print_text,
    quiet_param,
)


def _callbacks(ctx: CommandContext) -> dict[str, Any]:
    return {"ask": ctx.ask, "prompt": ctx.prompt}


def _split_hosts(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise BadValue("give at least one host name", param="HOSTS")
    return list(dict.fromkeys(names))


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# -- hosts -----------------------------------------------------------------------------------------
@command("hosts list", json_param())
def hosts_list(ctx: CommandContext, as_json: bool) -> Result:
    """List the configured hosts and whether their host keys are recorded."""
    from tuiops.ops.remote import list_hosts

    rows = list_hosts(ctx.workspace)
    lines = [
        f"{r['name']:<16} {r['user']}@{r['address']}:{r['port']}"
        + (f"  home {r['home']}" if r["home"] else "")
        + (f"  via {r['jump']}" if r["jump"] else "")
        + (f"  python {r['python']}" if r["python"] else "")
        + ("" if r["known"] else "  (host key not recorded: tuiops hosts trust " + r["name"] + ")")
        for r in rows
    ]
    return Result(rows, "\n".join(lines) or "(no hosts; add one with `tuiops hosts add`)")


@command(
    "hosts add",
    Param("name", required=True),
    Param("address", ("--address",), required=True, help="Host name or IP address of the SSH server."),
    Param("port", ("--port",), type=Int(), default=22, show_default=True, help="SSH port."),
    Param("user", ("--user",), help="Login user (default: the local user name)."),
    Param("key_file", ("--key-file",), help="Private key file (default: the SSH agent and ~/.ssh/id_*)."),
    Param(
        "home",
        ("--home",),
        help="Remote folder that remote paths are confined to (default: the login folder).",
    ),
    Param("jump", ("--jump",), help="Another configured host to tunnel through."),
    Param(
        "python",
        ("--python",),
        metavar="PATH",
        help="The python that builds and `hosts check` run there, such as a venv's bin/python "
        "(default: python, else python3, on the host's PATH; --replace without it keeps the one set).",
    ),
    Param("replace", ("--replace",), is_flag=True, help="Replace an existing host of that name."),
    json_param(),
)
def hosts_add(
    ctx: CommandContext,
    name: str,
    address: str,
    port: int,
    user: str | None,
    key_file: str | None,
    home: str | None,
    jump: str | None,
    python: str | None,
    replace: bool,
    as_json: bool,
) -> Result:
    """Add a host to tuiops.toml (then record its key with `tuiops hosts trust NAME`).

    \b
    Example:
      tuiops hosts add gpu1 --address 10.0.0.7 --user train --key-file ~/.ssh/id_ed25519 --home /data/tuiops \\
        --python /data/venv/bin/python
    """
    from tuiops.ops.remote import add_host

    h = add_host(
        ctx.workspace,
        name,
        address,
        port=port,
        user=user,
        key_file=key_file,
        home=home,
        jump=jump,
        python=python,
        replace=replace,
    )
    return Result(
        {
            "name": h.name,
            "address": h.address,
            "port": h.port,
            "user": h.user,
            "home": h.home,
            "python": h.extra.get("python"),
        },
        f"host {h.name} added ({h.address}:{h.port}); next: tuiops hosts trust {h.name}",
    )


@command("hosts remove", Param("name", required=True))
def hosts_remove(ctx: CommandContext, name: str) -> Result:
    """Remove a host from tuiops.toml (its known_hosts entry stays)."""
    from tuiops.ops.remote import remove_host

    remove_host(ctx.workspace, name)
    return Result({"removed": name}, f"host {name} removed")


@command(
    "hosts trust",
    Param("name", required=True),
    Param(
        "yes",
        ("--yes", "-y"),
        is_flag=True,
        help="Record the key without asking (check the fingerprint first).",
    ),
    Param(
        "replace",
        ("--replace",),
        is_flag=True,
        help="Replace a recorded key that has changed (after checking it).",
    ),
    json_param(),
)
def hosts_trust(ctx: CommandContext, name: str, yes: bool, replace: bool, as_json: bool) -> Result:
    """Fetch a host's key, print its fingerprint and record it in known_hosts.

    On a terminal it asks before recording; elsewhere pass --yes. A key that differs
    from the recorded one is refused unless --replace is given.
    """
    from tuiops.ops.remote import trust_host

    res = trust_host(ctx.workspace, name, yes=yes, replace=replace, confirm=ctx.ask, ask=ctx.ask)
    return Result(
        res, f"{res['host']} ({res['address']}) {res['fingerprint']}: {res['status']} in {res['known_hosts']}"
    )


@command(
    "hosts check",
    Param("names", nargs=-1),
    Param(
        "projects",
        ("--project",),
        multiple=True,
        metavar="NAME",
        help="Check the modules these projects require (repeatable; default: every project's).",
    ),
    json_param(),
)
def hosts_check(
    ctx: CommandContext, names: tuple[str, ...], projects: tuple[str, ...], as_json: bool
) -> Result:
    """Check hosts (all by default): reachable, host key, login, home writable, disk, tools, and the
    python builds run there (`python` of the host, else python or python3 on its PATH) with the
    modules the projects declare (`requires` in project.toml).

    Exits with status 8 when any host fails a check.
    """
    from tuiops.errors import RemoteError
    from tuiops.ops.remote import check_hosts

    results = check_hosts(ctx.workspace, list(names), projects=list(projects) or None, prompt=ctx.prompt)

    def text() -> str:
        lines = []
        for r in results:
            lines.append(f"{r.host} ({r.target}): {'ok' if r.ok else 'FAILED'}")
            lines.extend(f"  {'ok ' if item.ok else 'BAD'} {item.name:<10} {item.detail}" for item in r.items)
        return "\n".join(lines)

    bad = [r.host for r in results if not r.ok]
    error = (
        RemoteError(f"{len(bad)} of {len(results)} hosts failed the check: {', '.join(bad)}") if bad else None
    )
    return Result([r.to_dict() for r in results], text, error=error)


# -- remote ----------------------------------------------------------------------------------------
@command(
    "remote run",
    Param("hosts", required=True),
    Param("command", required=True, nargs=-1, type=Raw(), metavar="-- COMMAND [ARG]…"),
    Param("timeout", ("--timeout",), type=Float(), help="Stop the command after this many seconds."),
    Param(
        "shell",
        ("--shell",),
        is_flag=True,
        help="Pass COMMAND to the remote shell as written (pipes, globs, $VARS); default: every argument quoted.",
    ),
    json_param(),
    passthrough=True,
)
def remote_run(
    ctx: CommandContext,
    hosts: str,
    command: tuple[str, ...],
    timeout: float | None,
    shell: bool,
    as_json: bool,
) -> Result:
    """Run COMMAND on one or more hosts (HOSTS: NAME or NAME1,NAME2,…); put -- before COMMAND.

    Every argument reaches the remote program as it is (quoted against the shell).
    With one host, its output passes through and its exit status is tuiops's; with
    several, each output line is prefixed with the host name and the exit status is
    8 when any host failed.

    \b
    Examples:
      tuiops remote run gpu1 -- nvidia-smi -L
      tuiops remote run gpu1,gpu2 --timeout 60 -- python3 -c "import torch; print(torch.__version__)"
    """
    from tuiops.errors import RemoteError
    from tuiops.ops.remote import run_command

    names = _split_hosts(hosts)
    results = run_command(
        ctx.workspace, names, list(command), timeout=timeout, shell=shell, **_callbacks(ctx)
    )
    data = [r.to_dict() for r in results]
    if not as_json:
        # The hosts' own output, as it came: nothing else is printed.
        if len(results) == 1:
            print_text(results[0].stdout, nl=False)
            print_text(results[0].stderr, err=True, nl=False)
        else:
            for r in results:
                for line in r.stdout.splitlines():
                    ctx.echo(f"{r.host} | {line}")
                for line in r.stderr.splitlines():
                    ctx.echo(f"{r.host} | {line}", err=True)
    if len(results) == 1 and results[0].error is None:
        rc = results[0].rc
        return Result(data, None, exit_code=rc if rc is not None else 8, raw=not as_json)
    bad = [r for r in results if not r.ok]
    error = None
    if bad:
        detail = "; ".join(
            f"{r.host}: {r.error.splitlines()[0] if r.error else f'exit status {r.rc}'}" for r in bad
        )
        error = RemoteError(f"{len(bad)} of {len(results)} hosts failed: {detail}")
    return Result(data, None, raw=not as_json, error=error)


def _transfer_params() -> tuple[Param, ...]:
    return (
        Param(
            "existing",
            ("--existing",),
            type=Choice(("error", "skip", "overwrite")),
            default="error",
            show_default=True,
            help="What to do with targets that exist and differ (identical ones are always skipped).",
        ),
        Param(
            "verify",
            ("--verify",),
            type=Choice(("size", "sha256")),
            default="size",
            show_default=True,
            help="Check each file's size, or its SHA-256 too, before it is renamed into place.",
        ),
        Param(
            "outside_home",
            ("--outside-home",),
            is_flag=True,
            help="Allow remote paths outside the host's configured home.",
        ),
        Param(
            "concurrency",
            ("--concurrency",),
            type=Int(),
            default=8,
            show_default=True,
            help="Files in flight at once.",
        ),
        Param(
            "channels",
            ("--channels",),
            type=Int(),
            default=4,
            show_default=True,
            help="SFTP channels on the connection (at most 8).",
        ),
        quiet_param(),
        json_param(),
    )


def _summary(res: Any) -> str:
    verb = "sent" if res.direction == "put" else "fetched"
    text = (
        f"{verb} {res.files} files ({_size(res.bytes)}) in {res.elapsed:.1f} s to {res.target} on {res.host}"
        if res.direction == "put"
        else f"{verb} {res.files} files ({_size(res.bytes)}) in {res.elapsed:.1f} s from {res.host} to {res.target}"
    )
    extra = []
    if res.skipped:
        extra.append(f"{res.skipped} skipped (identical or existing)")
    if res.resumed:
        extra.append(f"{res.resumed} resumed")
    if res.retries:
        extra.append(f"{res.retries} reconnections")
    odd = [
        i for i in res.items if i.get("status") == "skipped" and i.get("note") not in ("identical", "exists")
    ]
    if odd:
        extra.append(f"{len(odd)} not transferable (links, special files)")
    return text + (f"; {', '.join(extra)}" if extra else "")


def _transfer(
    ctx: CommandContext,
    direction: str,
    host: str,
    paths: tuple[str, ...],
    *,
    outside_home: bool,
    existing: str,
    verify: str,
    concurrency: int,
    channels: int,
    quiet: bool,
    as_json: bool,
) -> Result:
    from tuiops.ops.remote import get_files, put_files

    if len(paths) < 2:
        if direction == "put":
            raise BadUsage("give at least one local path and the remote folder: LOCAL… REMOTE_DIR")
        raise BadUsage("give at least one remote path and the local folder: REMOTE… LOCAL_DIR")
    *sources, folder = paths
    label = f"put → {host}" if direction == "put" else f"get ← {host}"
    fn = put_files if direction == "put" else get_files
    with ctx.progress(label, quiet=quiet or as_json) as prog:
        res = fn(
            ctx.workspace,
            host,
            list(sources),
            folder,
            allow_outside=outside_home,
            existing=existing,
            verify=verify,
            concurrency=concurrency,
            channels=channels,
            progress=prog,
            **_callbacks(ctx),
        )
    return Result(res.to_dict(), _summary(res))


@command(
    "remote put",
    Param("host", required=True),
    Param("paths", required=True, nargs=-1, metavar="LOCAL… REMOTE_DIR"),
    *_transfer_params(),
)
def remote_put(
    ctx: CommandContext,
    host: str,
    paths: tuple[str, ...],
    existing: str,
    verify: str,
    outside_home: bool,
    concurrency: int,
    channels: int,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Send local files and folders into REMOTE_DIR on HOST (the last path given).

    REMOTE_DIR is relative to the host's home and created if missing. Each file is
    written as NAME.<tag>.part, verified and renamed; an interrupted transfer
    continues where it stopped when run again.

    \b
    Example:
      tuiops remote put gpu1 datasets/v41 runs/config.yaml incoming/
    """
    return _transfer(
        ctx,
        "put",
        host,
        paths,
        outside_home=outside_home,
        existing=existing,
        verify=verify,
        concurrency=concurrency,
        channels=channels,
        quiet=quiet,
        as_json=as_json,
    )


@command(
    "remote get",
    Param("host", required=True),
    Param("paths", required=True, nargs=-1, metavar="REMOTE… LOCAL_DIR"),
    *_transfer_params(),
)
def remote_get(
    ctx: CommandContext,
    host: str,
    paths: tuple[str, ...],
    existing: str,
    verify: str,
    outside_home: bool,
    concurrency: int,
    channels: int,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Fetch remote files and folders from HOST into LOCAL_DIR (the last path given).

    REMOTE paths are relative to the host's home; LOCAL_DIR is created if missing.

    \b
    Example:
      tuiops remote get gpu1 runs/exp7/weights/best.pt runs/exp7/results.csv ./exp7
    """
    return _transfer(
        ctx,
        "get",
        host,
        paths,
        outside_home=outside_home,
        existing=existing,
        verify=verify,
        concurrency=concurrency,
        channels=channels,
        quiet=quiet,
        as_json=as_json,
    )
