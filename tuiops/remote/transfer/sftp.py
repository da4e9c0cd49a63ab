"""SFTP helpers of a transfer: pipelined reads and writes, listings, renames and the errors' reasons."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import posixpath
import re
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    TuiopsError,
)
from tuiops.remote.errors import ConnectionDropped, HostUnreachable, RemoteDiskError
from tuiops.remote.transfer.plan import CHUNK, HASH_EXEC_MIN

if TYPE_CHECKING:
    import asyncssh

    from tuiops.remote.hosts import Connection

_ST_RDONLY = 1


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a lost or refused connection that a new connection may cure."""
    import asyncssh

    if isinstance(exc, (ConnectionDropped, HostUnreachable)):
        return True
    if isinstance(exc, (asyncssh.PermissionDenied, asyncssh.HostKeyNotVerifiable)):
        return False
    return isinstance(
        exc,
        (
            asyncssh.ConnectionLost,
            asyncssh.DisconnectError,
            asyncssh.SFTPConnectionLost,
            asyncssh.SFTPNoConnection,
            ConnectionResetError,
            ConnectionAbortedError,
            BrokenPipeError,
            TimeoutError,
        ),
    )


def error_reason(exc: BaseException) -> str:
    """The message of ``exc`` as a user reads it (a TuiopsError's message, a server's reason)."""
    if isinstance(exc, TuiopsError):
        return exc.message
    return str(getattr(exc, "reason", "") or exc) or type(exc).__name__


async def remote_disk_error(
    sftp: asyncssh.SFTPClient, host: str, path: str, exc: BaseException, need: int
) -> RemoteDiskError:
    """Explain a failed remote write: read-only, full, permission denied, or what the server said."""
    import asyncssh

    reason = f"the server said: {error_reason(exc)}"
    hint = "check the folder on the host, or choose another target"
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        reason = "permission denied"
        hint = "check the folder's owner and permissions on the host, or choose another target"
    folder = posixpath.dirname(path) or "/"
    while True:
        try:
            vfs = await sftp.statvfs(folder)
            break
        except asyncssh.SFTPNoSuchFile:
            parent = posixpath.dirname(folder)
            if parent == folder:
                vfs = None
                break
            folder = parent
        except (asyncssh.SFTPError, OSError):
            vfs = None
            break
    if vfs is not None:
        free = vfs.bavail * vfs.frsize
        if vfs.flags & _ST_RDONLY:
            reason = "the remote file system is read-only"
            hint = "choose a writable target folder on the host"
        elif isinstance(exc, (asyncssh.SFTPFailure, asyncssh.SFTPNoSpaceOnFilesystem)) and free < max(
            need, 1
        ):
            reason = f"the remote disk is full ({free} bytes free, {need} more needed)"
            hint = "free space on the host (or choose another target) and run the command again"
        elif isinstance(exc, asyncssh.SFTPFailure) and not vfs.favail:
            reason = "the remote file system has no free inodes"
            hint = "free space on the host (or choose another target) and run the command again"
    return RemoteDiskError(f"cannot write {path} on host {host}: {reason}", hint=hint)


async def remote_sha256(
    conn: Connection, sftp: asyncssh.SFTPClient, path: str, chunk: int = CHUNK, *, size: int | None = None
) -> str:
    """SHA-256 of a remote file: ``sha256sum`` on the host for large files, else read back over SFTP.

    Starting a command costs a session set-up on the host (tens of milliseconds), so
    files below :data:`HASH_EXEC_MIN` are read back instead; so is any file when the
    host has no ``sha256sum``.
    """
    import shlex

    import asyncssh

    if size is None or size >= HASH_EXEC_MIN:
        try:
            res = await conn.conn.run(f"sha256sum -- {shlex.quote(path)}", check=False, encoding=None)
            out = res.stdout if isinstance(res.stdout, bytes) else b""
            if res.exit_status == 0 and re.match(rb"^[0-9a-f]{64}", out):
                return out[:64].decode()
        except asyncssh.ChannelOpenError:
            pass
    digest = hashlib.sha256()
    async with sftp.open(path, "rb", encoding=None, block_size=0) as fh:
        pos = 0
        while True:
            data = await _pread(fh, sftp, chunk, pos)
            if not data:
                break
            digest.update(data)
            pos += len(data)
    return digest.hexdigest()


def _block(sftp: asyncssh.SFTPClient, read: bool) -> int:
    """The request size the server accepts (its limits@openssh.com answer, else 16 KiB)."""
    limits = sftp.limits
    size = limits.max_read_len if read else limits.max_write_len
    return int(size) if size else 16384


async def gather_all(coros: list[Any]) -> list[Any]:
    """Await all ``coros`` together; every outcome is collected, then the first error is raised."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def write_requests(
    fh: asyncssh.SFTPClientFile, sftp: asyncssh.SFTPClient, data: bytes, pos: int
) -> list[Any]:
    """Write requests for ``data`` at ``pos``, one per block the server accepts (not yet awaited)."""
    block = _block(sftp, read=False)
    view = memoryview(data)
    return [fh.write(bytes(view[i : i + block]), pos + i) for i in range(0, len(data), block)]


def read_requests(fh: asyncssh.SFTPClientFile, sftp: asyncssh.SFTPClient, size: int, pos: int) -> list[Any]:
    """Read requests for ``size`` bytes at ``pos``, one per block the server accepts (not yet awaited)."""
    block = _block(sftp, read=True)
    return [fh.read(min(block, size - i), pos + i) for i in range(0, size, block)]


def join_reads(parts: list[bytes], sftp: asyncssh.SFTPClient, size: int) -> bytes:
    """The answers of :func:`read_requests` as one piece, up to the first short answer."""
    block = _block(sftp, read=True)
    out = bytearray()
    for i, part in enumerate(parts):
        out += part
        if len(part) < min(block, size - i * block):
            break
    return bytes(out)


async def _pread(fh: asyncssh.SFTPClientFile, sftp: asyncssh.SFTPClient, size: int, pos: int) -> bytes:
    """Read up to ``size`` bytes at ``pos`` as parallel requests; stops at the first short answer."""
    return join_reads(await gather_all(read_requests(fh, sftp, size, pos)), sftp, size)


def file_mode(attrs: asyncssh.SFTPAttrs) -> int:
    """The mode bits of a remote file (0 when the server did not send them)."""
    return attrs.permissions or 0


async def list_folder(sftp: asyncssh.SFTPClient, path: str) -> dict[str, asyncssh.SFTPAttrs]:
    """The entries of remote folder ``path`` by name (empty when it does not exist)."""
    import asyncssh

    try:
        names = await sftp.readdir(path)
    except asyncssh.SFTPNoSuchFile:
        return {}
    out: dict[str, asyncssh.SFTPAttrs] = {}
    for n in names:
        fname = n.filename.decode("utf-8", "surrogateescape") if isinstance(n.filename, bytes) else n.filename
        if fname not in (".", ".."):
            out[fname] = n.attrs
    return out


async def flush_remote(fh: asyncssh.SFTPClientFile) -> None:
    """Flush a remote file to its disk (fsync@openssh.com), where the server offers it."""
    import asyncssh

    with contextlib.suppress(asyncssh.SFTPOpUnsupported):
        await fh.fsync()


async def rename_into_place(sftp: asyncssh.SFTPClient, src: str, dst: str) -> None:
    """Rename ``src`` over ``dst`` (posix-rename@openssh.com, else remove and rename)."""
    import asyncssh

    try:
        await sftp.posix_rename(src, dst)
    except asyncssh.SFTPOpUnsupported:
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await sftp.remove(dst)
        await sftp.rename(src, dst)


async def remove_quietly(sftp: asyncssh.SFTPClient, path: str) -> None:
    """Remove a remote file, ignoring any error (used to clear a ``.part``)."""
    import asyncssh

    with contextlib.suppress(asyncssh.SFTPError, OSError):
        await sftp.remove(path)
