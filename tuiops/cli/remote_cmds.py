"""Remote hosts over SSH: `tuiops hosts …` (list, add, remove, trust, check) and `tuiops remote …` (run, put, get)."""

from __future__ import annotations

import sys
from typing import Any

import click

from tuiops.cli import cli, emit, get_workspace, json_option, progress_reporter


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _ask(question: str) -> bool:
    return click.confirm(question, default=False, err=True)


def _prompt(question: str) -> str | None:
    return click.prompt(question, hide_input=True, default="", show_default=False, err=True) or None


def _callbacks() -> dict[str, Any]:
    """Interactive questions only on a terminal: otherwise unknown keys are refused, no password is asked."""
    if _interactive():
        return {"ask": _ask, "prompt": _prompt}
    return {"ask": None, "prompt": None}


def _split_hosts(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise click.BadParameter("give at least one host name", param_hint="HOSTS")
    return list(dict.fromkeys(names))


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# -- hosts -----------------------------------------------------------------------------------------
@cli.group("hosts")
def hosts_group() -> None:
    """Remote hosts ([hosts.NAME] in tuiops.toml): list, add, remove, trust their keys, check them.

    Keys come from key_file or the SSH agent; a password only from
    TUIOPS_SSH_PASSWORD_<NAME>, TUIOPS_SSH_PASSWORD or a prompt, never from the file.
    """


@hosts_group.command("list")
@json_option
def hosts_list(as_json: bool) -> None:
    """List the configured hosts and whether their host keys are recorded."""
    from tuiops.ops.remote import list_hosts

    rows = list_hosts(get_workspace())
    lines = [
        f"{r['name']:<16} {r['user']}@{r['address']}:{r['port']}"
        + (f"  home {r['home']}" if r["home"] else "")
        + (f"  via {r['jump']}" if r["jump"] else "")
        + ("" if r["known"] else "  (host key not recorded: tuiops hosts trust " + r["name"] + ")")
        for r in rows
    ]
    emit(rows, as_json, text="\n".join(lines) or "(no hosts; add one with `tuiops hosts add`)")


@hosts_group.command("add")
@click.argument("name")
@click.option("--address", required=True, help="Host name or IP address of the SSH server.")
@click.option("--port", type=int, default=22, show_default=True, help="SSH port.")
@click.option("--user", help="Login user (default: the local user name).")
@click.option("--key-file", help="Private key file (default: the SSH agent and ~/.ssh/id_*).")
@click.option("--home", help="Remote folder that remote paths are confined to (default: the login folder).")
@click.option("--jump", help="Another configured host to tunnel through.")
@click.option("--replace", is_flag=True, help="Replace an existing host of that name.")
@json_option
def hosts_add(
    name: str,
    address: str,
    port: int,
    user: str | None,
    key_file: str | None,
    home: str | None,
    jump: str | None,
    replace: bool,
    as_json: bool,
) -> None:
    """Add a host to tuiops.toml (then record its key with `tuiops hosts trust NAME`).

    \b
    Example:
      tuiops hosts add gpu1 --address 10.0.0.7 --user train --key-file ~/.ssh/id_ed25519 --home /data/tuiops
    """
    from tuiops.ops.remote import add_host

    h = add_host(
        get_workspace(),
        name,
        address,
        port=port,
        user=user,
        key_file=key_file,
        home=home,
        jump=jump,
        replace=replace,
    )
    emit(
        {"name": h.name, "address": h.address, "port": h.port, "user": h.user, "home": h.home},
        as_json,
        text=f"host {h.name} added ({h.address}:{h.port}); next: tuiops hosts trust {h.name}",
    )


@hosts_group.command("remove")
@click.argument("name")
def hosts_remove(name: str) -> None:
    """Remove a host from tuiops.toml (its known_hosts entry stays)."""
    from tuiops.ops.remote import remove_host

    remove_host(get_workspace(), name)
    click.echo(f"host {name} removed")


@hosts_group.command("trust")
@click.argument("name")
@click.option(
    "--yes", "-y", is_flag=True, help="Record the key without asking (check the fingerprint first)."
)
@click.option("--replace", is_flag=True, help="Replace a recorded key that has changed (after checking it).")
@json_option
def hosts_trust(name: str, yes: bool, replace: bool, as_json: bool) -> None:
    """Fetch a host's key, print its fingerprint and record it in known_hosts.

    On a terminal it asks before recording; elsewhere pass --yes. A key that differs
    from the recorded one is refused unless --replace is given.
    """
    from tuiops.ops.remote import trust_host

    cb = _callbacks()
    res = trust_host(get_workspace(), name, yes=yes, replace=replace, confirm=cb["ask"], ask=cb["ask"])
    emit(
        res,
        as_json,
        text=f"{res['host']} ({res['address']}) {res['fingerprint']}: {res['status']} in {res['known_hosts']}",
    )


@hosts_group.command("check")
@click.argument("names", nargs=-1)
@json_option
def hosts_check(names: tuple[str, ...], as_json: bool) -> None:
    """Check hosts (all by default): reachable, host key, login, home writable, disk, python and tools.

    Exits with status 8 when any host fails a check.
    """
    from tuiops.errors import RemoteError
    from tuiops.ops.remote import check_hosts

    results = check_hosts(get_workspace(), list(names))
    if as_json:
        emit([r.to_dict() for r in results], True)
    else:
        for r in results:
            click.echo(f"{r.host} ({r.target}): {'ok' if r.ok else 'FAILED'}")
            for item in r.items:
                click.echo(f"  {'ok ' if item.ok else 'BAD'} {item.name:<10} {item.detail}")
    bad = [r.host for r in results if not r.ok]
    if bad:
        raise RemoteError(f"{len(bad)} of {len(results)} hosts failed the check: {', '.join(bad)}")


# -- remote ----------------------------------------------------------------------------------------
@cli.group("remote")
def remote_group() -> None:
    """Run commands on hosts and move files to and from them (over SSH/SFTP)."""


@remote_group.command(
    "run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True}
)
@click.argument("hosts")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- COMMAND [ARG]…")
@click.option("--timeout", type=float, help="Stop the command after this many seconds.")
@click.option(
    "--shell",
    is_flag=True,
    help="Pass COMMAND to the remote shell as written (pipes, globs, $VARS); default: every argument quoted.",
)
@json_option
def remote_run(
    hosts: str, command: tuple[str, ...], timeout: float | None, shell: bool, as_json: bool
) -> int:
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
    results = run_command(get_workspace(), names, list(command), timeout=timeout, shell=shell, **_callbacks())
    if as_json:
        emit([r.to_dict() for r in results], True)
    elif len(results) == 1:
        r = results[0]
        sys.stdout.write(r.stdout)
        sys.stdout.flush()
        sys.stderr.write(r.stderr)
        sys.stderr.flush()
    else:
        for r in results:
            for line in r.stdout.splitlines():
                click.echo(f"{r.host} | {line}")
            for line in r.stderr.splitlines():
                click.echo(f"{r.host} | {line}", err=True)
    if len(results) == 1 and results[0].error is None:
        return results[0].rc if results[0].rc is not None else 8
    bad = [r for r in results if not r.ok]
    if bad:
        detail = "; ".join(
            f"{r.host}: {r.error.splitlines()[0] if r.error else f'exit status {r.rc}'}" for r in bad
        )
        raise RemoteError(f"{len(bad)} of {len(results)} hosts failed: {detail}")
    return 0


def _transfer_options(f: Any) -> Any:
    options = [
        click.option(
            "--existing",
            type=click.Choice(["error", "skip", "overwrite"]),
            default="error",
            show_default=True,
            help="What to do with targets that exist and differ (identical ones are always skipped).",
        ),
        click.option(
            "--verify",
            type=click.Choice(["size", "sha256"]),
            default="size",
            show_default=True,
            help="Check each file's size, or its SHA-256 too, before it is renamed into place.",
        ),
        click.option(
            "--outside-home", is_flag=True, help="Allow remote paths outside the host's configured home."
        ),
        click.option(
            "--concurrency", type=int, default=8, show_default=True, help="Files in flight at once."
        ),
        click.option(
            "--channels",
            type=int,
            default=4,
            show_default=True,
            help="SFTP channels on the connection (at most 8).",
        ),
        click.option("-q", "--quiet", is_flag=True, help="No progress output."),
        json_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


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


@remote_group.command("put")
@click.argument("host")
@click.argument("paths", nargs=-1, required=True, metavar="LOCAL… REMOTE_DIR")
@_transfer_options
def remote_put(
    host: str,
    paths: tuple[str, ...],
    outside_home: bool,
    existing: str,
    verify: str,
    concurrency: int,
    channels: int,
    quiet: bool,
    as_json: bool,
) -> None:
    """Send local files and folders into REMOTE_DIR on HOST (the last path given).

    REMOTE_DIR is relative to the host's home and created if missing. Each file is
    written as NAME.<tag>.part, verified and renamed; an interrupted transfer
    continues where it stopped when run again.

    \b
    Example:
      tuiops remote put gpu1 datasets/v41 runs/config.yaml incoming/
    """
    from tuiops.ops.remote import put_files

    if len(paths) < 2:
        raise click.UsageError("give at least one local path and the remote folder: LOCAL… REMOTE_DIR")
    *local, remote_dir = paths
    with progress_reporter(f"put → {host}", quiet=quiet or as_json) as prog:
        res = put_files(
            get_workspace(),
            host,
            list(local),
            remote_dir,
            allow_outside=outside_home,
            existing=existing,
            verify=verify,
            concurrency=concurrency,
            channels=channels,
            progress=prog,
            **_callbacks(),
        )
    emit(res.to_dict(), as_json, text=_summary(res))


@remote_group.command("get")
@click.argument("host")
@click.argument("paths", nargs=-1, required=True, metavar="REMOTE… LOCAL_DIR")
@_transfer_options
def remote_get(
    host: str,
    paths: tuple[str, ...],
    outside_home: bool,
    existing: str,
    verify: str,
    concurrency: int,
    channels: int,
    quiet: bool,
    as_json: bool,
) -> None:
    """Fetch remote files and folders from HOST into LOCAL_DIR (the last path given).

    REMOTE paths are relative to the host's home; LOCAL_DIR is created if missing.

    \b
    Example:
      tuiops remote get gpu1 runs/exp7/weights/best.pt runs/exp7/results.csv ./exp7
    """
    from tuiops.ops.remote import get_files

    if len(paths) < 2:
        raise click.UsageError("give at least one remote path and the local folder: REMOTE… LOCAL_DIR")
    *remote, local_dir = paths
    with progress_reporter(f"get ← {host}", quiet=quiet or as_json) as prog:
        res = get_files(
            get_workspace(),
            host,
            list(remote),
            local_dir,
            allow_outside=outside_home,
            existing=existing,
            verify=verify,
            concurrency=concurrency,
            channels=channels,
            progress=prog,
            **_callbacks(),
        )
    emit(res.to_dict(), as_json, text=_summary(res))
