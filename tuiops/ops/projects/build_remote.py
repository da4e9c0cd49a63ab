"""Running a project's augmentation on a host over SSH: inputs up, command, outputs back, cleanup."""

from __future__ import annotations

import contextlib
import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    TuiopsError,
)
from tuiops.ops.base import CancelToken, JobProgress, ProgressFn
from tuiops.ops.projects.build_local import AugmentFailed, format_command, is_build_folder, output_tail
from tuiops.ops.projects.model import (
    COMMON,
    LOG_NAME,
    MISSING_MODULES,
    PROJECTS,
    REMOTE_BUILDS,
    Project,
    input_files,
    missing_modules_error,
    projects_dir,
)

if TYPE_CHECKING:
    from tuiops.remote.hosts import Hosts
    from tuiops.workspace import Workspace


def _remote_python(host_extra: dict[str, Any]) -> str:
    from tuiops.remote.commands import configured_python, python_prelude

    return python_prelude(configured_python(host_extra))


async def _check_requires(hosts: Hosts, host_name: str, project: Project) -> None:
    """Refuse a build whose ``requires`` modules the host's python cannot import (before anything is sent)."""
    from tuiops.remote import commands

    host = hosts.get(host_name)
    q = shlex.quote
    script = f"{_remote_python(host.extra)}python -c {q(MISSING_MODULES)} {' '.join(q(m) for m in project.requires)}"
    conn = await hosts.connect(host_name)
    try:
        res = await commands.run_on(conn, ["sh", "-c", script], timeout=120)
    finally:
        await conn.close()
    missing = res.stdout.split() if res.rc == 0 else list(project.requires)
    if missing:
        py = host.extra.get("python") or "python"
        raise missing_modules_error(project, missing, f"on host {host_name}", str(py))


async def _remote_augment(
    hosts: Hosts,
    host_name: str,
    ws: Workspace,
    project: Project,
    remote_dir: str,
    stage: Path,
    count: int,
    seed: int,
    timeout: float | None,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> dict[str, Any]:
    """Send the project, run its augmentation on the host, fetch ``out/`` into ``stage/out``."""
    import posixpath

    import asyncssh

    from tuiops.remote import commands, transfer
    from tuiops.remote.errors import CommandTimeout
    from tuiops.remote.paths import confine, resolve_home

    if project.requires:
        await _check_requires(hosts, host_name, project)
    tops = sorted({rel.split("/", 1)[0] for rel, _ in input_files(project.root)})
    sent = await transfer.put(
        hosts,
        host_name,
        [project.root / t for t in tops],
        f"{remote_dir}/{PROJECTS}/{project.name}",
        existing="overwrite",
        progress=progress,
        cancel=cancel,
    )
    common = projects_dir(ws) / COMMON
    files_sent = sent.files
    if common.is_dir():
        common_sent = await transfer.put(
            hosts,
            host_name,
            [common],
            f"{remote_dir}/{PROJECTS}",
            existing="overwrite",
            progress=progress,
            cancel=cancel,
        )
        files_sent += common_sent.files
    host = hosts.get(host_name)
    conn = await hosts.connect(host_name)
    ran: dict[str, Any] = {"ran": False}
    try:
        async with await conn.sftp() as sftp:
            home = await resolve_home(sftp, host)
            rdir = await confine(sftp, host_name, home, remote_dir)
            done = posixpath.join(rdir, "done")
            finished = await sftp.exists(done)
        if files_sent or not finished:
            q = shlex.quote
            out = posixpath.join(rdir, "out")
            log = posixpath.join(rdir, LOG_NAME)
            cmd = format_command(project.augment, out, count, seed)
            script = (
                f"cd {q(posixpath.join(rdir, PROJECTS, project.name))} && "
                f"rm -rf {q(out)} {q(done)} && mkdir -p {q(out)} && "
                f"PYTHONPATH={q(posixpath.join(rdir, PROJECTS))}${{PYTHONPATH:+:$PYTHONPATH}} && "
                "export PYTHONPATH && "
                f"{_remote_python(host.extra)}"
                f"{{ {cmd} ; }} > {q(log)} 2>&1 < /dev/null; rc=$?; tail -n 40 {q(log)}; "
                f'[ "$rc" -eq 0 ] && : > {q(done)}; exit "$rc"'
            )
            kept = f"the failed build is kept on the host in {rdir} (its log: {log})"
            look = (
                f"look at it on the host: {posixpath.join(rdir, PROJECTS, project.name)} and {log}; "
                f"`tuiops project clean {project.name} --on {host_name}` removes it"
            )
            try:
                res = await commands.run_on(conn, ["sh", "-c", script], timeout=timeout)
            except CommandTimeout as exc:
                raise AugmentFailed(
                    f"the augmentation of {project.name} (`{project.augment}`) did not finish within "
                    f"{timeout:g} s on host {host_name} and was stopped; the previous build is untouched; {kept}",
                    hint="raise the limit with --timeout SECONDS, or check why the script hangs; " + look,
                ) from exc
            ran = {"ran": True, "elapsed": res.elapsed}
            if res.rc != 0:
                raise AugmentFailed(
                    f"the augmentation of {project.name} (`{cmd}`) failed on host {host_name} with exit "
                    f"status {res.rc}; the previous build is untouched; {kept}. Its last output:\n    "
                    f"{output_tail(res.stdout + chr(10) + res.stderr) or '(none)'}",
                    hint=look,
                )
    except (asyncssh.DisconnectError, asyncssh.ConnectionLost, ConnectionError) as exc:
        from tuiops.remote.errors import ConnectionDropped

        raise ConnectionDropped(
            f"the connection to {host_name} was lost while the augmentation of {project.name} ran: {exc}",
            hint="run the same build again when the host is back",
        ) from exc
    finally:
        await conn.close()
    if ran["ran"]:
        shutil.rmtree(stage / "out", ignore_errors=True)
    got = await transfer.get(
        hosts,
        host_name,
        [f"{remote_dir}/out"],
        stage,
        existing="overwrite",
        progress=progress,
        cancel=cancel,
    )
    return {"sent_files": files_sent, "sent_bytes": sent.sent, "got_files": got.files, **ran}


async def _remote_cleanup(
    hosts: Hosts, host_name: str, remote_dir: str, others_of: str | None = None
) -> list[str]:
    """Remove ``remote_dir`` on the host (and, with ``others_of``, every other build folder of that
    project there), then ``.tuiops-builds`` when it is empty; the folders removed."""
    import asyncssh

    from tuiops.remote.paths import confine, resolve_home

    removed = []
    conn = await hosts.connect(host_name)
    try:
        async with await conn.sftp() as sftp:
            home = await resolve_home(sftp, hosts.get(host_name))
            rdir = await confine(sftp, host_name, home, remote_dir)
            parent = rdir.rsplit("/", 1)[0]
            targets = [rdir]
            if others_of is not None:
                with contextlib.suppress(asyncssh.SFTPError, OSError):
                    targets += [
                        f"{parent}/{n}"
                        for n in sorted(await sftp.listdir(parent))
                        if is_build_folder(n, others_of) and f"{parent}/{n}" != rdir
                    ]
            for t in targets:
                with contextlib.suppress(asyncssh.SFTPError, OSError):
                    if await sftp.exists(t):
                        await sftp.rmtree(t, ignore_errors=True)
                        removed.append(t)
            with contextlib.suppress(asyncssh.SFTPError, OSError):
                await sftp.rmdir(parent)
    finally:
        await conn.close()
    return removed


def clean_remote(hosts: Hosts, host_name: str, project: str) -> list[str]:
    """Remove every build folder of ``project`` in ``.tuiops-builds`` on the host; the folders removed."""
    from tuiops.remote import run_sync

    return run_sync(_remote_cleanup(hosts, host_name, f"{REMOTE_BUILDS}/{project}-", others_of=project))


def resumable(exc: BaseException) -> bool:
    """Whether a remote build failed by a lost connection, so its staging folder is kept for the next try."""
    from tuiops.remote.errors import ConnectionDropped, HostUnreachable

    return isinstance(exc, (ConnectionDropped, HostUnreachable))


def remote_build(
    ws: Workspace,
    hosts: Any,
    host: str,
    project: Project,
    remote_dir: str,
    stage: Path,
    count: int,
    seed: int,
    timeout: float | None,
    job_id: int,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> dict[str, Any]:
    """The remote half of a build: augment on the host, fetch, clean up (kept for a resume when cut off)."""
    from tuiops.remote import run_sync
    from tuiops.remote.errors import RemoteDiskError

    forward = JobProgress(ws, job_id, progress, with_op=True)
    try:
        res = run_sync(
            _remote_augment(
                hosts, host, ws, project, remote_dir, stage, count, seed, timeout, forward, cancel
            ),
            cancel,
        )
    except BaseException as exc:
        if not resumable(exc) and not isinstance(exc, AugmentFailed):
            with contextlib.suppress(TuiopsError, OSError):
                run_sync(_remote_cleanup(hosts, host, remote_dir))
        if isinstance(exc, RemoteDiskError):
            raise RemoteDiskError(
                f"{exc.message}; the project could not be sent to {host} for the build",
                hint=f"the build works in {REMOTE_BUILDS}/ under the home of host {host}: free space there, "
                f"or set home = a writable folder in [hosts.{host}] of tuiops.toml",
            ) from exc
        raise
    with contextlib.suppress(TuiopsError, OSError):
        run_sync(_remote_cleanup(hosts, host, remote_dir, others_of=project.name))
    return res
