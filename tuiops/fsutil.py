"""File-system helpers that never leave a half-written file behind."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tuiops.errors import DiskError


def disk_error(path: str | os.PathLike[str], exc: OSError, what: str = "write") -> DiskError:
    """Turn an OSError into a DiskError naming the path and what to do."""
    reason = {
        errno.ENOSPC: "the disk is full; free space and run the command again",
        errno.EDQUOT: "the disk quota is exhausted; free space and run the command again",
        errno.EROFS: "the file system is read-only; choose another target",
        errno.EACCES: "permission denied; check the folder's permissions or choose another target",
        errno.EPERM: "operation not permitted; check the folder's permissions or choose another target",
        errno.ENAMETOOLONG: "the file name is too long for this file system",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return DiskError(f"cannot {what} {os.fsdecode(path)}: {reason}")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    On any error the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name[:80]}.", suffix=".part", dir=target.parent)
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        raise disk_error(target, exc) from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all."""
    with atomic_writer(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` whole or not at all."""
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def display_path(path: str | bytes | os.PathLike) -> str:
    """A printable form of a path, escaping bytes that are not valid UTF-8."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", errors="backslashreplace")


RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


@functools.cache
def libc_function(name: str, *argtypes: Any) -> Any:
    """libc's function ``name`` through ctypes, taking ``argtypes`` and returning an int
    (its errno is kept for ``ctypes.get_errno``); None where this libc lacks it."""
    import ctypes

    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return fn


def renameat2(src: str | bytes | os.PathLike, dst: str | bytes | os.PathLike, flags: int) -> bool:
    """Linux ``renameat2`` (``RENAME_NOREPLACE``, ``RENAME_EXCHANGE``); False where the
    kernel, libc or file system lacks it. An existing ``dst`` under ``RENAME_NOREPLACE``
    raises FileExistsError naming ``dst``; other failures raise OSError naming ``src``."""
    import ctypes

    c_int, c_char_p = ctypes.c_int, ctypes.c_char_p
    fn = libc_function("renameat2", c_int, c_char_p, c_int, c_char_p, ctypes.c_uint)
    if fn is None:
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), dst if err == errno.EEXIST else src)


def replace_folder(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Put the folder ``staging`` at ``target``; an existing ``target`` is removed after.

    Where Linux can exchange the two names in one step (``renameat2`` with
    ``RENAME_EXCHANGE``) no moment exists without ``target``; elsewhere the old folder is
    first renamed aside and renamed back if the second rename fails.
    """
    import shutil

    staging, target = Path(staging), Path(target)
    old = None
    try:
        if target.exists() or target.is_symlink():
            if renameat2(staging, target, RENAME_EXCHANGE):
                shutil.rmtree(staging, ignore_errors=True)
                return
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rmdir(old)
            os.replace(target, old)
        os.replace(staging, target)
    except OSError as exc:
        if old is not None and not target.exists():
            with contextlib.suppress(OSError):
                os.replace(old, target)
        raise disk_error(target, exc, "replace") from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
