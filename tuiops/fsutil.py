"""File-system helpers that never leave a half-written file behind.

Below the atomic writers, the Linux plumbing of file operations: unnamed files (``O_TMPFILE``)
linked into place by descriptor, copies made by the kernel (``copy_file_range``), no-clobber
renames (``renameat2``) and what tells a placed file unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from tuiops.errors import DiskError


def disk_error(
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes], exc: OSError, what: str = "write"
) -> DiskError:
    """Turn an OSError into a DiskError naming the path (a bytes path decoded as the file
    system does, :func:`os.fsdecode`) and what to do."""
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


#: A file below this size is copied in one call of its size (one byte more finds the end).
BIG_FILE = 16 << 20
#: The piece a larger file is read and written in.
CHUNK = 1 << 20


def lexists(p: bytes) -> bool:
    try:
        os.lstat(p)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return False
        raise
    return True


def hash_path(p: bytes) -> tuple[int, str]:
    """(bytes read, their SHA-256) of a file, as :func:`sha256_file` hashes it."""
    with open(p, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
        return fh.tell(), digest


def fsync_dir(folder: bytes) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def rename_noreplace(src: bytes, dst: bytes) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (FileExistsError): atomically where
    the kernel and file system can (``renameat2``), else check then rename."""
    if renameat2(src, dst, RENAME_NOREPLACE):
        return
    if lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)


_O_TMP = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
O_SRC = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_tmp(tmp: bytes) -> int:
    """Create a temporary file (a leftover of a killed run is replaced)."""
    try:
        return os.open(tmp, _O_TMP, 0o666)
    except FileExistsError:
        os.unlink(tmp)
        return os.open(tmp, _O_TMP, 0o666)


_Written = TypeVar("_Written", bound=tuple[int, str | None])


def write_new(tmp: bytes, produce: Callable[[int], _Written], durable: bool) -> _Written:
    """Write a fresh temporary file; returns what ``produce`` gives (size, sha256 or None)."""
    fd = _open_tmp(tmp)
    try:
        out = produce(fd)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    return out


# Files are written unnamed (O_TMPFILE) in the target folder and linked to their name when
# complete: one directory operation instead of create + rename, an atomic "no clobber"
# (the link fails when the name is taken), and nothing left behind by a kill mid-write.
# File systems without O_TMPFILE (NFS, FUSE, …) get a named temporary file and a rename.
O_ANON = (os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC) if hasattr(os, "O_TMPFILE") else 0
ANON_OK = bool(O_ANON) and os.path.isdir("/proc/self/fd")
NO_ANON: set[bytes] = set()
_ROOT_FD: list[int] = []
_ROOT_LOCK = threading.Lock()


def anon_file(folder: bytes) -> int | None:
    """An unnamed new file in ``folder``, or None where the file system cannot make one."""
    if not ANON_OK or folder in NO_ANON:
        return None
    try:
        return os.open(folder, O_ANON, 0o666)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOSYS):
            NO_ANON.add(folder)
            return None
        raise


_AT_EMPTY_PATH = 0x1000
_AT_FDCWD = -100
#: libc's ``linkat`` while linking by descriptor (``AT_EMPTY_PATH``) works here; None after
#: the kernel refused it (before Linux 6.10 it takes CAP_DAC_READ_SEARCH)
_FLINK: list[Any] = []


def _flink_fn() -> Any:
    if not _FLINK:
        import ctypes

        c_int, c_char_p = ctypes.c_int, ctypes.c_char_p
        _FLINK.append(libc_function("linkat", c_int, c_char_p, c_int, c_char_p, c_int))
    return _FLINK[0]


def link_fd(fd: int, dst: bytes) -> None:
    """Give the unnamed file ``fd`` the name ``dst`` (FileExistsError when the name is taken).

    By the descriptor itself where the kernel allows it, else through ``/proc/self/fd``
    (a path walk more per file).
    """
    fn = _FLINK[0] if _FLINK else _flink_fn()
    refused = False
    if fn is not None:
        if fn(fd, b"", _AT_FDCWD, dst, _AT_EMPTY_PATH) == 0:
            return
        import ctypes

        err = ctypes.get_errno()
        if err not in (errno.ENOENT, errno.EPERM, errno.EINVAL):
            raise OSError(err, os.strerror(err), dst)
        # refused, or the folder is gone: the /proc way tells which
        refused = True
    if not _ROOT_FD:
        with _ROOT_LOCK:
            if not _ROOT_FD:
                _ROOT_FD.append(os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    os.link(b"/proc/self/fd/%d" % fd, dst, src_dir_fd=_ROOT_FD[0], follow_symlinks=True)
    if refused:
        _FLINK[0] = None


def write_all(fd: int, data: bytes | memoryview) -> None:
    n = os.write(fd, data)
    if n == len(data):
        return
    view = memoryview(data)[n:]
    while view:
        n = os.write(fd, view)
        view = view[n:]


def copy_fd(src_fd: int, dst_fd: int, size_hint: int = -1) -> tuple[int, str]:
    """Copy to the end of the source, hashing on the way; returns (size, sha256).

    ``size_hint`` (the expected size) sizes the first read, so a small file is one read,
    one write and the read that finds the end.
    """
    want = size_hint + 1 if 0 <= size_hint < BIG_FILE else CHUNK
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = os.read(src_fd, want)
        if not chunk:
            break
        h.update(chunk)
        write_all(dst_fd, chunk)
        n += len(chunk)
        if n == size_hint and len(chunk) < want:
            break  # the expected size and a short read: the end (a grown file fills the read)
        want = CHUNK if len(chunk) == want else max(4096, want - len(chunk))
    return n, h.hexdigest()


def copy_range(src_fd: int, dst_fd: int, size_hint: int = -1) -> tuple[int, None]:
    """Copy to the end of the source inside the kernel (``copy_file_range``: no pass through
    this process, and a shared-extent clone where the file system has them); returns
    (size, None). Where the kernel cannot (another file system, an old kernel) the copy
    goes on by reads and writes."""
    want = size_hint + 1 if 0 <= size_hint < BIG_FILE else BIG_FILE
    n = 0
    while True:
        try:
            k = os.copy_file_range(src_fd, dst_fd, want)
        except OSError as exc:
            if exc.errno not in _NO_COPY_RANGE:
                raise
            return n + _copy_rest(src_fd, dst_fd), None
        if not k:
            if n == 0 and size_hint > 0:
                # nothing copied from a file that has data: a file system that does not
                # really support it (some network and union ones answer 0)
                return _copy_rest(src_fd, dst_fd), None
            break
        n += k
        if n == size_hint and k < want:
            break  # the expected size and a short copy: the end (a grown file fills the call)
    return n, None


_NO_COPY_RANGE = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM)


def _copy_rest(src_fd: int, dst_fd: int) -> int:
    n = 0
    while chunk := os.read(src_fd, CHUNK):
        write_all(dst_fd, chunk)
        n += len(chunk)
    return n


def file_identity(st: os.stat_result) -> str:
    """What tells a placed copy unchanged: inode, size, modification and change time.

    Any write changes the modification time, and the change time cannot be set back by a
    program (``utime`` moves it too), so an equal identity means the copy is as placed.
    """
    return f"stat:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def is_unchanged(path: bytes, recorded: str) -> bool:
    """Whether the file at ``path`` is the one recorded (an identity, or its SHA-256)."""
    if recorded.startswith("stat:"):
        return file_identity(os.lstat(path)) == recorded
    return hash_path(path)[1] == recorded


def readable(fd: int, timeout: float | None = None) -> bool:
    """Wait until ``fd`` can be read (or is closed) for at most ``timeout`` seconds (None: for
    ever); True when it can. ``poll`` takes any descriptor number, where ``select`` fails on
    one past 1023 (a long-lived process holding many files gets such numbers)."""
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    ms = None if timeout is None else max(0, int(timeout * 1000))
    return bool(poller.poll(ms))
