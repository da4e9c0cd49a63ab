"""File-system helpers that never leave a half-written file behind."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
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


_TEMP_TRIES = 100


def _temp_name(folder: str | os.PathLike[str], prefix: str, suffix: str) -> str:
    return os.path.join(folder, f"{prefix}{os.urandom(6).hex()}{suffix}")


def create_temp_file(
    folder: str | os.PathLike[str], prefix: str = ".tuiops-", suffix: str = ".part"
) -> tuple[int, str]:
    """A new, empty file with a random name in ``folder``, open for writing: ``(fd, path)``.

    Unlike :func:`tempfile.mkstemp` (always mode 0600) the file is created the way a plain
    ``open()`` creates one, mode 0666 less the umask (and a folder's default ACL), so a
    file renamed from it into place is as readable as any other file the user makes.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for _ in range(_TEMP_TRIES):
        name = _temp_name(folder, prefix, suffix)
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", os.fspath(folder))


def create_temp_dir(folder: str | os.PathLike[str], prefix: str = ".tuiops-") -> str:
    """A new, empty folder with a random name in ``folder``; mode 0777 less the umask.

    For staging folders that are renamed into place whole (:func:`tempfile.mkdtemp`
    makes them 0700, which would leave the result unreadable to everyone else).
    """
    for _ in range(_TEMP_TRIES):
        name = _temp_name(folder, prefix, "")
        try:
            os.mkdir(name, 0o777)
            return name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", os.fspath(folder))


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    A new file follows the umask, like any file the user makes; a file that is replaced
    keeps its permission bits. On any error the temporary file is removed and ``path``
    is untouched.
    """
    target = Path(path)
    tmp_name = None
    try:
        fd, tmp_name = create_temp_file(target.parent, f".{target.name[:80]}.", ".part")
        with os.fdopen(fd, mode) as fh:
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(target)
                if stat.S_ISREG(st.st_mode):
                    os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode))
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
            old = Path(create_temp_dir(target.parent, f".{target.name}.old-"))
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
