"""Pushing a mix's tarball to a host over SSH."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from tuiops.errors import ConflictError, NotFoundError, RemoteError
from tuiops.fsutil import (
    display_path,
    sha256_file,
)
from tuiops.ops.base import CancelToken, ProgressFn, job
from tuiops.ops.projects.mixmodel import PushResult

if TYPE_CHECKING:
    from tuiops.remote.hosts import RetryPolicy
    from tuiops.workspace import Workspace


def raise_unknown_host(ws: Workspace, name: str) -> None:
    """Refuse a host that tuiops.toml does not name."""
    known = ", ".join(sorted(ws.config.hosts)) or "none"
    raise NotFoundError(
        f"no host {name!r} in tuiops.toml (hosts: {known})", hint="add it with `tuiops hosts add`"
    )


def push_tarball(
    ws: Workspace,
    tar_path: str | os.PathLike[str],
    host: str,
    remote_dir: str,
    *,
    mix_id: int | None = None,
    replace: bool = False,
    retry: RetryPolicy | None = None,
    chunk: int | None = None,
    progress_interval: float = 0.1,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> PushResult:
    """Send ``tar_path`` into ``remote_dir`` on ``host`` and check its SHA-256 there.

    The upload is resumable (a ``.part`` beside the target, continued by the next push
    of the same file) and renamed into place only after its SHA-256 on the host matches;
    the host then hashes the final file once more (``sha256sum``). A mismatch removes
    the remote file and is an error. The push is recorded in ``project_mix_pushes``.
    """
    from tuiops.ops.remote import open_hosts
    from tuiops.remote import run_sync, transfer
    from tuiops.remote.errors import OutsideHome
    from tuiops.store.db import utcnow

    local = Path(tar_path)
    if not local.is_file():
        raise NotFoundError(f"tarball {display_path(local)} does not exist", hint="mix with --tar first")
    if host not in ws.config.hosts:
        raise_unknown_host(ws, host)
    sha = sha256_file(local)
    size = local.stat().st_size
    hosts = open_hosts(ws, retry=retry)
    params = {"host": host, "remote_dir": remote_dir, "tar": str(local), "sha256": sha, "mix_id": mix_id}

    async def verify(path: str) -> str:
        conn = await hosts.connect(host)
        async with conn:
            sftp = await conn.sftp()
            remote = await transfer.remote_sha256(conn, sftp, path)
            if remote != sha:
                with contextlib.suppress(Exception):
                    await sftp.remove(path)
            return remote

    with job(ws.store, "project.push", params, total=size) as j:
        try:
            res = run_sync(
                transfer.put(
                    hosts,
                    host,
                    [local],
                    remote_dir,
                    existing="overwrite" if replace else "error",
                    verify="sha256",
                    concurrency=1,
                    channels=1,
                    progress=progress,
                    cancel=cancel,
                    retry=retry,
                    chunk=chunk or transfer.CHUNK,
                    progress_interval=progress_interval,
                ),
                cancel,
            )
        except OutsideHome as exc:  # the transfer's hint names `remote put`'s flags
            exc.hint = (
                f"give --push {host}:PATH with PATH inside the host's home, or change its home in tuiops.toml"
            )
            raise
        except ConflictError as exc:
            exc.hint = "pass --replace-remote to replace it, or push into another folder; nothing was sent"
            raise
        remote_path = f"{res.target.rstrip('/')}/{local.name}"
        remote = run_sync(verify(remote_path), cancel)
        if remote != sha:
            raise RemoteError(
                f"{remote_path} on host {host}: SHA-256 {remote[:12]}… differs from {display_path(local)} "
                f"({sha[:12]}…); the remote file was removed",
                hint="push again; if it happens again, check the host's disk",
            )
        out = PushResult(
            host=host,
            path=remote_path,
            sha256=sha,
            size=size,
            sent=res.sent,
            resumed=bool(res.resumed),
            skipped=bool(res.skipped),
        )
        with ws.store.transaction() as conn:
            conn.execute(
                "INSERT INTO project_mix_pushes(mix_id, host, path, sha256, size, resumed, pushed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (mix_id, host, remote_path, sha, size, int(out.resumed), utcnow()),
            )
        j.result = out.to_dict()
    return out
