"""Putting a new or moved file at its target, whole or not at all, by the conflict policy."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Callable
from typing import Any

from tuiops.fsutil import (
    O_SRC,
    anon_file,
    copy_fd,
    copy_range,
    display_path,
    file_identity,
    fsync_dir,
    hash_path,
    lexists,
    link_fd,
    rename_noreplace,
    write_all,
    write_new,
)
from tuiops.ops.fileops.acts import (
    Action,
    ActionError,
    JobContext,
    Outcome,
    action_tmp,
    missing_source,
    open_source,
)
from tuiops.ops.fileops.encode import encode_image, paint_image
from tuiops.ops.procs import fault


def _put(path: bytes, a: Action, ctx: JobContext) -> tuple[Outcome | None, bytes | None]:
    """Rename ``path`` to the action's target without clobbering (see :func:`_name_new`)."""
    return _name_new(lambda: rename_noreplace(path, a.dst), a, ctx)


def _name_new(name_it: Callable[[], None], a: Action, ctx: JobContext) -> tuple[Outcome | None, bytes | None]:
    """Give the new file the action's target name with ``name_it`` (which raises
    FileExistsError rather than clobber); an existing target follows the policy (backed up
    for an overwrite). Returns (an outcome that ends the action, backup)."""
    try:
        name_it()
        return None, a.bak
    except FileExistsError:
        pass
    end, bak = _clear_target(a, ctx)
    if end is not None:
        return end, bak
    name_it()
    return None, bak


def _link_put(fd: int, a: Action, ctx: JobContext) -> tuple[Outcome | None, bytes | None]:
    """Link the unnamed file ``fd`` to the action's target without clobbering (see :func:`_name_new`)."""
    return _name_new(lambda: link_fd(fd, a.dst), a, ctx)


def _write_placed(a: Action, ctx: JobContext, produce: Callable[[int], tuple[int, str | None]]) -> Outcome:
    """Write the action's new file with ``produce`` and put it at its target, whole or not at all.

    An unnamed file linked into place where the file system allows, else a temporary name
    renamed into place. With ``durable`` the data is synced before it gets its name, and
    the folder after. A ``produce`` that gives no SHA-256 (a copy made by the kernel) gets
    the placed file's identity (:func:`file_identity`) recorded instead.
    """
    folder = a.dst.rpartition(b"/")[0] or b"/"
    fd = anon_file(folder)
    want_mtime = a.dst_pool is not None and a.file_id is not None
    st: os.stat_result | None = None
    if fd is None:
        tmp = action_tmp(a, ctx)
        size, digest = write_new(tmp, produce, ctx.durable)
        end, bak = _put(tmp, a, ctx)
        if end is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return end
        if want_mtime or digest is None:
            st = os.lstat(a.dst)
    else:
        try:
            size, digest = produce(fd)
            if ctx.durable:
                os.fsync(fd)
            end, bak = _link_put(fd, a, ctx)
            if end is not None:
                return end
            if want_mtime or digest is None:
                st = os.fstat(fd)  # after the link, which set its change time
        finally:
            os.close(fd)
    if digest is None:
        assert st is not None
        digest = file_identity(st)
    if ctx.durable:
        fsync_dir(folder)
    fault("placed")
    info = {"mtime_ns": st.st_mtime_ns} if want_mtime and st is not None else None
    return Outcome(a.seq, "done", size, digest, bak=bak, info=info)


def copy_file(a: Action, ctx: JobContext) -> Outcome:
    """A plain copy: source → new file (copied by the kernel) → put at the target whole."""
    assert a.src is not None
    try:
        src_fd = os.open(a.src, O_SRC)
    except FileNotFoundError:
        return missing_source(a, ctx)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        src_fd = open_source(a.src, ctx)
    try:
        hint = a.size if a.size is not None and a.size >= 0 else os.fstat(src_fd).st_size
        return _write_placed(a, ctx, lambda fd: copy_range(src_fd, fd, hint))
    finally:
        os.close(src_fd)


def _produce(a: Action, ctx: JobContext) -> tuple[Callable[[int], tuple[int, str]], dict[str, Any] | None]:
    """What to write for a copy, convert or write action."""
    if a.action == "write":
        data = a.data or b""

        def write(fd: int) -> tuple[int, str]:
            write_all(fd, data)
            return len(data), hashlib.sha256(data).hexdigest()

        return write, None
    assert a.src is not None
    if a.action == "paint":
        data = paint_image(a, ctx)

        def write_paint(fd: int) -> tuple[int, str]:
            write_all(fd, data)
            return len(data), hashlib.sha256(data).hexdigest()

        return write_paint, None
    if a.action == "convert" and a.role == "image":
        assert ctx.convert is not None
        data, info = encode_image(a.src, ctx.convert, ctx)

        def write_enc(fd: int) -> tuple[int, str]:
            write_all(fd, data)
            return len(data), hashlib.sha256(data).hexdigest()

        return write_enc, info
    src_fd = open_source(a.src, ctx)

    def copy(fd: int) -> tuple[int, str]:
        try:
            return copy_fd(src_fd, fd)
        finally:
            os.close(src_fd)

    return copy, None


def _bak_path(a: Action, ctx: JobContext) -> bytes:
    return a.bak or os.path.join(ctx.trash, b"overwritten", str(a.seq).encode())


def _clear_target(a: Action, ctx: JobContext) -> tuple[Outcome | None, bytes | None]:
    """Make room at the target by the policy; returns (an outcome that ends the action, backup)."""
    bak = a.bak
    if not lexists(a.dst):
        return None, bak
    if a.bak is not None or ctx.policy == "overwrite":
        bak = _bak_path(a, ctx)
        if lexists(bak):
            raise ActionError(f"{display_path(a.dst)} exists, and so does its backup {display_path(bak)}")
        os.makedirs(os.path.dirname(bak), exist_ok=True)
        os.rename(a.dst, bak)
        fault("placed")
        return None, bak
    if ctx.policy == "skip":
        return Outcome(a.seq, "skipped", error="the target appeared after planning"), bak
    raise ActionError(f"{display_path(a.dst)} appeared after planning; re-plan with --on-conflict")


def place_file(a: Action, ctx: JobContext) -> Outcome:
    if lexists(a.dst) and a.bak is None and ctx.policy not in ("overwrite",):
        end, _ = _clear_target(a, ctx)
        if end is not None:
            return end
    produce, info = _produce(a, ctx)
    out = _write_placed(a, ctx, produce)
    if out.state == "done" and info:
        out.info = {**info, **(out.info or {})}
    return out


def move_file(a: Action, ctx: JobContext) -> Outcome:
    """One rename within a file system; copy → verify → delete across file systems."""
    assert a.src is not None
    bak = a.bak
    try:
        end, bak = _put(a.src, a, ctx)
    except FileNotFoundError:
        if not lexists(a.src):
            return missing_source(a, ctx)
        raise
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    else:
        if end is not None:
            return end
        fault("placed")
        st = os.lstat(a.dst)
        return Outcome(a.seq, "done", st.st_size, None, bak=bak, info={"mtime_ns": st.st_mtime_ns})
    if lexists(a.dst):
        end, bak = _clear_target(a, ctx)
        if end is not None:
            return end
    size, digest = move_across(a.src, a.dst, action_tmp(a, ctx), ctx)
    return Outcome(a.seq, "done", size, digest, bak=bak)


def move_across(src: bytes, dst: bytes, tmp: bytes, ctx: JobContext) -> tuple[int, str]:
    """Copy → fsync → verify → rename → delete, for a move to another file system."""
    import stat as st_mod

    st = os.lstat(src)
    if st_mod.S_ISLNK(st.st_mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(os.readlink(src), tmp)
        os.rename(tmp, dst)
        fsync_dir(os.path.dirname(dst))
        fault("placed")
        os.unlink(src)
        return 0, ""
    src_fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)

    def copy(fd: int) -> tuple[int, str]:
        try:
            return copy_fd(src_fd, fd)
        finally:
            os.close(src_fd)

    size, digest = write_new(tmp, copy, True)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    with contextlib.suppress(OSError):
        os.chmod(tmp, st_mod.S_IMODE(st.st_mode))
    vsize, vdigest = hash_path(tmp)
    if (vsize, vdigest) != (size, digest) or size != st.st_size:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ActionError(
            f"the copy of {display_path(src)} did not verify (size or checksum differ); source kept"
        )
    os.rename(tmp, dst)
    fsync_dir(os.path.dirname(dst))
    fault("placed")
    os.unlink(src)
    return size, digest


def same_file(a: bytes, b: bytes) -> bool:
    """Are two paths the same file, or files with the same bytes?"""
    try:
        return os.path.samefile(a, b) or hash_path(a) == hash_path(b)
    except OSError:
        return False


def _copy_synced(src: bytes, dst: bytes) -> None:
    """Copy ``src`` to ``dst`` through a temporary name, synced before the rename."""
    src_fd = os.open(src, O_SRC)
    tmp = dst + b".part"

    def copy(fd: int) -> tuple[int, str]:
        try:
            return copy_fd(src_fd, fd)
        finally:
            os.close(src_fd)

    write_new(tmp, copy, True)
    os.rename(tmp, dst)
    fsync_dir(os.path.dirname(dst))


def keep_original(src: bytes, bak: bytes) -> None:
    """Keep the original ``src`` at ``bak``: a hard link, or a synced copy across file systems."""
    for attempt in range(2):
        try:
            os.link(src, bak, follow_symlinks=False)
            return
        except FileExistsError:
            if same_file(src, bak):
                return
            raise ActionError(f"the backup {display_path(bak)} exists and holds another file") from None
        except FileNotFoundError:
            if attempt or not lexists(src):
                raise
            os.makedirs(os.path.dirname(bak), exist_ok=True)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP):
                raise
            _copy_synced(src, bak)
            return
