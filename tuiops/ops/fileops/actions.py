"""One action forward or back, settled from the disk after a kill; an image with its label files."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from typing import TYPE_CHECKING, Any

from tuiops.fsutil import disk_error, display_path
from tuiops.ops.fileops.acts import _Act, _ActionError, _Ctx, _missing, _Out, _tmp
from tuiops.ops.fileops.encode import _encode, _paint
from tuiops.ops.fileops.fault import _FAULT, _fault
from tuiops.ops.fileops.model import _FATAL_ERRNOS, BIG_FILE
from tuiops.ops.fileops.place import _backup, _copy_file, _move, _move_across, _place, _same_file
from tuiops.ops.fileops.syscalls import (
    _ANON_OK,
    _NO_ANON,
    _O_ANON,
    _O_SRC,
    _fsync_dir,
    _hash_path,
    _identity,
    _lexists,
    _link_fd,
    _rename_noreplace,
    _unchanged,
    _write_all,
    _write_new,
)

if TYPE_CHECKING:
    pass


def _reencode(a: _Act, ctx: _Ctx) -> _Out:
    """Convert in place: the original is kept at the backup, then the new encoding takes its
    path (replacing it atomically) or its new name (and the original name is removed)."""
    assert a.src is not None and a.bak is not None and ctx.convert is not None
    if not _lexists(a.src):
        return _missing(a, ctx)
    data, info = _encode(a.src, ctx.convert, ctx)
    digest = hashlib.sha256(data).hexdigest()
    tmp = _tmp(a, ctx)
    _write_new(tmp, lambda fd: (_write_all(fd, data), (len(data), digest))[1], ctx.durable)
    try:
        _backup(a.src, a.bak)
        if a.src == a.dst:
            os.replace(tmp, a.dst)
        else:
            try:
                _rename_noreplace(tmp, a.dst)
            except FileExistsError:
                os.unlink(tmp)
                with contextlib.suppress(OSError):
                    if os.path.samefile(a.src, a.bak):
                        os.unlink(a.bak)
                if ctx.policy == "skip":
                    return _Out(a.seq, "skipped", error="the target appeared after planning")
                raise _ActionError(
                    f"{display_path(a.dst)} appeared after planning; re-plan with --on-conflict"
                ) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if ctx.durable:
        _fsync_dir(os.path.dirname(a.dst))
    _fault("placed")
    if a.src != a.dst:
        os.unlink(a.src)
    st = os.lstat(a.dst)
    return _Out(a.seq, "done", len(data), digest, bak=a.bak, info={**info, "mtime_ns": st.st_mtime_ns})


def _settle_reencode(a: _Act, ctx: _Ctx) -> _Out | None:
    """Decide a started in-place re-encode: done when the target holds the encoding of the backup."""
    assert a.src is not None and a.bak is not None and ctx.convert is not None
    if not _lexists(a.bak) or not _lexists(a.dst):
        return None
    try:
        want = hashlib.sha256(_encode(a.bak, ctx.convert, ctx)[0]).hexdigest()
        size, got = _hash_path(a.dst)
    except (_ActionError, OSError):
        return None
    if got != want:
        return None
    if a.src != a.dst and _lexists(a.src):
        if not _same_file(a.src, a.bak):
            return None
        os.unlink(a.src)
    info: dict[str, Any] = {"mtime_ns": os.lstat(a.dst).st_mtime_ns}
    with contextlib.suppress(Exception):
        from PIL import Image

        with Image.open(a.dst) as im:
            info.update(width=im.size[0], height=im.size[1], format=im.format, mode=im.mode)
    return _Out(a.seq, "done", size, got, bak=a.bak, info=info)


def _unreencode(a: _Act, ctx: _Ctx) -> _Out:
    """Undo an in-place re-encode: the original comes back from the backup to its path."""
    assert a.src is not None and a.bak is not None
    if not _lexists(a.bak):
        # restored by an undo that was killed before it was journaled
        if a.src != a.dst and _lexists(a.dst) and a.hash is not None and _hash_path(a.dst)[1] == a.hash:
            os.unlink(a.dst)
        return _Out(a.seq, "undone")
    if _lexists(a.dst) and a.hash is not None and _hash_path(a.dst)[1] != a.hash:
        return _Out(a.seq, "done", error="not undone: the file changed since the job; left in place")
    if a.src != a.dst and _lexists(a.src) and not _same_file(a.src, a.bak):
        return _Out(a.seq, "done", error="not undone: another file is at the old place now")
    try:
        os.rename(a.bak, a.src)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _move_across(a.bak, a.src, _tmp(a, ctx), ctx)
    _fault("placed")
    if a.src != a.dst and _lexists(a.dst):
        os.unlink(a.dst)
    return _Out(a.seq, "undone")


def _expected(a: _Act, ctx: _Ctx) -> str | None:
    """The content hash a copy, convert or write action puts at its target (None: unknown)."""
    if a.action == "write":
        return hashlib.sha256(a.data or b"").hexdigest()
    if a.src is None or not _lexists(a.src):
        return None
    if a.action == "paint":
        try:
            return hashlib.sha256(_paint(a, ctx)).hexdigest()
        except _ActionError:
            return None
    if a.action == "convert" and a.role == "image":
        assert ctx.convert is not None
        try:
            return hashlib.sha256(_encode(a.src, ctx.convert, ctx)[0]).hexdigest()
        except _ActionError:
            return None
    try:
        return _hash_path(a.src)[1]
    except OSError:
        return None


def _settle(a: _Act, ctx: _Ctx) -> _Out | None:
    """Decide a ``started`` action from the file system: done (outcome), or not (None, cleaned up)."""
    if a.action == "mkdir":
        return _Out(a.seq, "done") if os.path.isdir(a.dst) else None
    tmp = _tmp(a, ctx)
    if _lexists(tmp):
        os.unlink(tmp)
    if a.action == "reencode":
        return _settle_reencode(a, ctx)
    bak_ok = a.bak is None or _lexists(a.bak)
    if a.action in ("copy", "convert", "write", "paint"):
        if not _lexists(a.dst) or not bak_ok:
            return None
        want = _expected(a, ctx)
        size, got = _hash_path(a.dst)
        if want is not None and got == want:
            return _Out(a.seq, "done", size, got, bak=a.bak)
        return None
    assert a.src is not None
    s, d = _lexists(a.src), _lexists(a.dst)
    if d and not s and bak_ok:
        st = os.lstat(a.dst)
        return _Out(a.seq, "done", st.st_size, None, bak=a.bak, info={"mtime_ns": st.st_mtime_ns})
    if s and d and bak_ok:
        if os.path.samefile(a.src, a.dst):
            os.unlink(a.src)
            st = os.lstat(a.dst)
            return _Out(a.seq, "done", st.st_size, None, bak=a.bak, info={"mtime_ns": st.st_mtime_ns})
        try:
            same = _hash_path(a.src) == _hash_path(a.dst)
        except OSError:
            same = False
        if same:
            os.unlink(a.src)
            st = os.lstat(a.dst)
            return _Out(a.seq, "done", st.st_size, None, bak=a.bak, info={"mtime_ns": st.st_mtime_ns})
    return None


def _forward(a: _Act, ctx: _Ctx) -> _Out:
    """Do one action (settling it first when a killed run left it ``started``)."""
    try:
        _fault("action")
        if a.action == "mkdir":
            if a.resumed and os.path.isdir(a.dst):
                return _Out(a.seq, "done")
            try:
                os.mkdir(a.dst)
            except FileExistsError:
                if os.path.isdir(a.dst):
                    return _Out(a.seq, "skipped", error="the folder existed already")
                raise
            return _Out(a.seq, "done")
        if a.resumed:
            out = _settle(a, ctx)
            a.resumed = False
            if out is not None:
                return out
        if a.action == "move":
            return _move(a, ctx)
        if a.action == "copy":
            return _copy_file(a, ctx)
        if a.action == "reencode":
            return _reencode(a, ctx)
        if a.src is not None and not _lexists(a.src) and a.action != "write":
            return _missing(a, ctx)
        return _place(a, ctx)
    except _ActionError as exc:
        return _Out(a.seq, "failed", error=str(exc))
    except OSError as exc:
        if a.action != "mkdir":
            with contextlib.suppress(OSError):
                os.unlink(_tmp(a, ctx))
        where = exc.filename if isinstance(exc.filename, bytes | str) else a.dst
        return _Out(a.seq, "failed", error=disk_error(where, exc).message, fatal=exc.errno in _FATAL_ERRNOS)


def _backward(a: _Act, ctx: _Ctx) -> _Out:
    """Undo one done action; a failure keeps it ``done`` with the reason as its error."""
    try:
        _fault("undo")
        if a.action == "mkdir":
            try:
                os.rmdir(a.dst)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                return _Out(a.seq, "undone", error="folder kept: it is not empty")
            return _Out(a.seq, "undone")
        if a.action == "reencode":
            return _unreencode(a, ctx)
        if a.action in ("copy", "convert", "write", "paint"):
            if _lexists(a.dst):
                restored = a.bak is not None and not _lexists(a.bak)
                ours = a.hash is None or _unchanged(a.dst, a.hash)
                if ours:
                    os.unlink(a.dst)
                elif not restored:
                    return _Out(
                        a.seq, "done", error="not undone: the file changed since the job; left in place"
                    )
            _restore_bak(a)
            return _Out(a.seq, "undone")
        assert a.src is not None
        s, d = _lexists(a.src), _lexists(a.dst)
        undo_tmp = os.path.join(os.path.dirname(a.src), b".tuiops-%d-%d.undo" % (ctx.job_id, a.seq))
        if _lexists(undo_tmp):
            os.unlink(undo_tmp)
        if d and not s:
            os.makedirs(os.path.dirname(a.src), exist_ok=True)
            try:
                _rename_noreplace(a.dst, a.src)
            except FileExistsError:
                return _Out(a.seq, "done", error="not undone: another file is at the old place now")
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _move_across(a.dst, a.src, undo_tmp, ctx)
            else:
                _fault("placed")
        elif d and s:
            try:
                same = os.path.samefile(a.src, a.dst) or _hash_path(a.src) == _hash_path(a.dst)
            except OSError:
                same = False
            if not same:
                return _Out(a.seq, "done", error="not undone: another file is at the old place now")
            os.unlink(a.dst)
        elif not s:
            return _Out(a.seq, "done", error="not undone: the file is gone from its new place")
        _restore_bak(a)
        return _Out(a.seq, "undone")
    except _ActionError as exc:
        return _Out(a.seq, "done", error=f"not undone: {exc}")
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, bytes | str) else a.dst
        return _Out(
            a.seq,
            "done",
            error=f"not undone: {disk_error(where, exc).message}",
            fatal=exc.errno in _FATAL_ERRNOS,
        )


def _restore_bak(a: _Act) -> None:
    if a.bak is not None and _lexists(a.bak) and not _lexists(a.dst):
        os.rename(a.bak, a.dst)


def _run_group(group: list[_Act], ctx: _Ctx, undo: bool) -> list[_Out]:
    """One image with its label files (the image first: labels follow only a placed image)."""
    outs: list[_Out] = []
    if undo:
        return [_backward(a, ctx) for a in group]
    fast = not ctx.durable
    head = group[0]
    first = (fast and head.action == "copy" and not head.resumed and _copy_fast(head)) or _forward(head, ctx)
    outs.append(first)
    gated = head.role == "image" and first.state != "done"
    for a in group[1:]:
        if gated:
            outs.append(
                _Out(
                    a.seq,
                    "skipped" if first.state == "skipped" else "failed",
                    error="its image was not placed",
                )
            )
        else:
            outs.append((fast and a.action == "copy" and not a.resumed and _copy_fast(a)) or _forward(a, ctx))
    return outs


def _copy_fast(a: _Act) -> _Out | None:
    """The common copy in the fewest steps: an unnamed file in the target folder, filled by
    the kernel in one call, linked to its name (what :func:`_copy_file` does, without its
    layers: between system calls every step of the interpreter counts).

    Anything else (a source that is missing, a symlink or not of its planned size, a folder
    without unnamed files, a taken name, an error) gives None with nothing left behind, and
    the general path does the action and says what went wrong.
    """
    if _FAULT:
        _fault("action")
    try:
        src_fd = os.open(a.src, _O_SRC)  # type: ignore[arg-type]
    except OSError:
        return None
    try:
        hint = a.size if a.size is not None else os.fstat(src_fd).st_size
        folder = a.dst.rpartition(b"/")[0] or b"/"
        if not (_ANON_OK and 0 <= hint < BIG_FILE) or folder in _NO_ANON:
            return None
        try:
            fd = os.open(folder, _O_ANON, 0o666)
        except OSError:
            return None
        try:
            try:
                # one byte more than expected: a short answer of the expected size is the end
                if os.copy_file_range(src_fd, fd, hint + 1) != hint:
                    return None
                _link_fd(fd, a.dst)
            except OSError:
                return None
            st = os.fstat(fd)  # after the link, which set its change time
        finally:
            os.close(fd)
    finally:
        os.close(src_fd)
    if _FAULT:
        _fault("placed")
    info = {"mtime_ns": st.st_mtime_ns} if a.dst_pool is not None and a.file_id is not None else None
    return _Out(a.seq, "done", hint, _identity(st), bak=a.bak, info=info)


def _run_groups(groups: list[list[_Act]], ctx: _Ctx, undo: bool) -> list[_Out]:
    out: list[_Out] = []
    for g in groups:
        out.extend(_run_group(g, ctx, undo))
    return out
