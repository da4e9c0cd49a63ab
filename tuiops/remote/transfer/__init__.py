"""Files to and from a host over SFTP: temporary names, verification, resume, retries.

Each file is written under a temporary name beside its target,
``NAME.<tag>.part``, given its source's mode and modification time, flushed to
disk, and renamed into place only after its size (and, when asked, its SHA-256) is
verified, so a reader never sees half a file. The tag is derived
from the source's size and modification time: a ``.part`` whose tag matches the
unchanged source is continued from where it stopped (less one chunk, so that a
write still in flight when the connection died is made again); one whose source
has changed since is removed and the file starts over.

Many files move at once: ``concurrency`` files in flight, spread over ``channels``
SFTP channels of one connection (each channel is one SFTP server process on the
host; OpenSSH allows ``MaxSessions`` = 10 per connection by default). A dropped
connection is re-opened with exponential back-off and the transfer continues with
the files not yet done. On a full or read-only remote disk the ``.part`` is removed
(freeing the space) and the error says which it was.

Targets that exist already are left alone when identical (same size and
modification time); otherwise ``existing`` decides: ``error`` (the default: refuse
before anything is sent), ``skip`` or ``overwrite``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tuiops.fsutil import display_path, sha256_file
from tuiops.progress import CancelToken, ProgressFn
from tuiops.remote.hosts import RetryPolicy
from tuiops.remote.transfer.plan import (
    CHUNK,
    EXISTING,
    VERIFY,
    FilePlan,
    TransferResult,
    collect_local,
    part_name,
    part_tag,
)
from tuiops.remote.transfer.pull import GetJob
from tuiops.remote.transfer.push import PutJob
from tuiops.remote.transfer.sftp import remote_sha256

if TYPE_CHECKING:
    from tuiops.remote.hosts import Hosts


# -- entry points ----------------------------------------------------------------------------------
async def put(
    hosts: Hosts,
    name: str,
    local_paths: list[str | os.PathLike[str]],
    remote_dir: str,
    *,
    allow_outside: bool = False,
    existing: str = "error",
    verify: str = "size",
    concurrency: int = 8,
    channels: int = 4,
    chunk: int = CHUNK,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    retry: RetryPolicy | None = None,
    progress_interval: float = 0.1,
) -> TransferResult:
    """Send local files and folders into ``remote_dir`` on host ``name`` (created if missing).

    ``remote_dir`` is taken from the host's home when relative and must stay inside
    it unless ``allow_outside``. Progress counts bytes.
    """
    job = PutJob(
        hosts,
        name,
        local_paths,
        remote_dir,
        allow_outside=allow_outside,
        existing=existing,
        verify=verify,
        concurrency=concurrency,
        channels=channels,
        chunk=chunk,
        progress=progress,
        cancel=cancel,
        retry=retry,
        progress_interval=progress_interval,
    )
    job.notes.extend({"src": display_path(note), "status": "skipped"} for note in job.skipped_local)
    return await job.run()


async def get(
    hosts: Hosts,
    name: str,
    remote_paths: list[str],
    local_dir: str | os.PathLike[str],
    *,
    allow_outside: bool = False,
    existing: str = "error",
    verify: str = "size",
    concurrency: int = 8,
    channels: int = 4,
    chunk: int = CHUNK,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    retry: RetryPolicy | None = None,
    progress_interval: float = 0.1,
) -> TransferResult:
    """Fetch remote files and folders from host ``name`` into ``local_dir`` (created if missing)."""
    job = GetJob(
        hosts,
        name,
        remote_paths,
        local_dir,
        allow_outside=allow_outside,
        existing=existing,
        verify=verify,
        concurrency=concurrency,
        channels=channels,
        chunk=chunk,
        progress=progress,
        cancel=cancel,
        retry=retry,
        progress_interval=progress_interval,
    )
    return await job.run()


__all__ = [
    "CHUNK",
    "EXISTING",
    "VERIFY",
    "FilePlan",
    "TransferResult",
    "collect_local",
    "get",
    "part_name",
    "part_tag",
    "put",
    "remote_sha256",
    "sha256_file",
]
