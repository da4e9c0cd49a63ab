"""One action forward or back, settled from the disk after a kill; an image with its label files."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from typing import Any

from tuiops.fsutil import (
    ANON_OK,
    BIG_FILE,
    NO_ANON,
    O_ANON,
    O_SRC,
    disk_error,
    display_path,
    file_identity,
    fsync_dir,
    hash_path,
    is_unchanged,
    lexists,
    link_fd,
    rename_noreplace,
    write_all,
    write_new,
)
from tuiops.ops.fileops.acts import Action, ActionError, JobContext, Outcome, action_tmp, missing_source
from tuiops.ops.fileops.encode import encode_image, paint_image
from tuiops.ops.fileops.model import FATAL_ERRNOS
from tuiops.ops.fileops.place import copy_file, keep_original, move_across, move_file, place_file, same_file
from tuiops.ops.procs import FAULTS, fault


def _reencode(a: Action, ctx: JobContext) -> Outcome:
    """Convert in place: the original is kept at the backup, then the new encoding takes its
    path (replacing it atomically) or its new name (and the original name is removed)."""
    assert a.src is not None and a.bak is not None and ctx.convert is not None
    if not lexists(a.src):
        return missing_source(a, ctx)
    data, info = encode_image(a.src, ctx.convert, ctx)
    digest = hashlib.sha256(data).hexdigest()
    tmp = action_tmp(a, ctx)

    def produce(fd: int) -> tuple[int, str]:
        write_all(fd, data)
        return len(data), digest

    write_new(tmp, produce, ctx.durable)
    try:
        keep_original(a.src, a.bak)
        if a.src == a.dst:
            os.replace(tmp, a.dst)
        else:
            try:
                rename_noreplace(tmp, a.dst)
            except FileExistsError:
                os.unlink(tmp)
                with contextlib.suppress(OSError):
                    if os.path.samefile(a.src, a.bak):
                        os.unlink(a.bak)
                if ctx.policy == "skip":
                    return Outcome(a.seq, "skipped", error="the target appeared after planning")
                raise ActionError(
                    f"{display_path(a.dst)} appeared after planning; re-plan with --on-conflict"
                ) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if ctx.durable:
        fsync_dir(os.path.dirname(a.dst))
    fault("placed")
    if a.src != a.dst:
        os.unlink(a.src)
    st = os.lstat(a.dst)
    return Outcome(a.seq, "done", len(data), digest, bak=a.bak, info={**info, "mtime_ns": st.st_mtime_ns})


def _settle_reencode(a: Action, ctx: JobContext) -> Outcome | None:
    """Decide a started in-place re-encode: done when the target holds the encoding of the backup."""
    assert a.src is not None and a.bak is not None and ctx.convert is not None
    if not lexists(a.bak) or not lexists(a.dst):
        return None
    try:
        want = hashlib.sha256(encode_image(a.bak, ctx.convert, ctx)[0]).hexdigest()
        size, got = hash_path(a.dst)
    except (ActionError, OSError):
        return None
    if got != want:
        return None
    if a.src != a.dst and lexists(a.src):
        if not same_file(a.src, a.bak):
            return None
        os.unlink(a.src)
    info: dict[str, Any] = {"mtime_ns": os.lstat(a.dst).st_mtime_ns}
    with contextlib.suppress(Exception):
        from PIL import Image

        with Image.open(a.dst) as im:
            info.update(width=im.size[0], height=im.size[1], format=im.format, mode=im.mode)
    return Outcome(a.seq, "done", size, got, bak=a.bak, info=info)


def _unreencode(a: Action, ctx: JobContext) -> Outcome:
    """Undo an in-place re-encode: the original comes back from the backup to its path."""
    assert a.src is not None and a.bak is not None
    if not lexists(a.bak):
        # restored by an undo that was killed before it was journaled
        if a.src != a.dst and lexists(a.dst) and a.hash is not None and hash_path(a.dst)[1] == a.hash:
            os.unlink(a.dst)
        return Outcome(a.seq, "undone")
    if lexists(a.dst) and a.hash is not None and hash_path(a.dst)[1] != a.hash:
        return Outcome(a.seq, "done", error="not undone: the file changed since the job; left in place")
    if a.src != a.dst and lexists(a.src) and not same_file(a.src, a.bak):
        return Outcome(a.seq, "done", error="not undone: another file is at the old place now")
    try:
        os.rename(a.bak, a.src)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        move_across(a.bak, a.src, action_tmp(a, ctx), ctx)
    fault("placed")
    if a.src != a.dst and lexists(a.dst):
        os.unlink(a.dst)
    return Outcome(a.seq, "undone")


def _expected(a: Action, ctx: JobContext) -> str | None:
    """The content hash a copy, convert or write action puts at its target (None: unknown)."""
    if a.action == "write":
        return hashlib.sha256(a.data or b"").hexdigest()
    if a.src is None or not lexists(a.src):
        return None
    if a.action == "paint":
        try:
            return hashlib.sha256(paint_image(a, ctx)).hexdigest()
        except ActionError:
            return None
    if a.action == "convert" and a.role == "image":
        assert ctx.convert is not None
        try:
            return hashlib.sha256(encode_image(a.src, ctx.convert, ctx)[0]).hexdigest()
        except ActionError:
            return None
    try:
        return hash_path(a.src)[1]
    except OSError:
        return None


def settle_action(a: Action, ctx: JobContext) -> Outcome | None:
    """Decide a ``started`` action from the file system: done (outcome), or not (None, cleaned up)."""
    if a.action == "mkdir":
        return Outcome(a.seq, "done") if os.path.isdir(a.dst) else None
    tmp = action_tmp(a, ctx)
    if lexists(tmp):
        os.unlink(tmp)
    if a.action == "reencode":
        return _settle_reencode(a, ctx)
    bak_ok = a.bak is None or lexists(a.bak)
    if a.action in ("copy", "convert", "write", "paint"):
        if not lexists(a.dst) or not bak_ok:
            return None
        want = _expected(a, ctx)
        size, got = hash_path(a.dst)
        if want is not None and got == want:
            return Outcome(a.seq, "done", size, got, bak=a.bak)
        return None
    assert a.src is not None
    s, d = lexists(a.src), lexists(a.dst)
    if d and not s and bak_ok:
        st = os.lstat(a.dst)
        return Outcome(a.seq, "done", st.st_size, None, bak=a.bak, info={"mtime_ns": st.st_mtime_ns})
    if s and d and bak_ok:
        if os.path.samefile(a.src, a.dst):
            os.unlink(a.src)
            st = os.lstat(a.dst)
            return Outcome(a.seq, "done", st.st_size, None, bak=a.bak, info={"mtime_ns": st.st_mtime_ns})
        try:
            same = hash_path(a.src) == hash_path(a.dst)
        except OSError:
            same = False
        if same:
            os.unlink(a.src)
            st = os.lstat(a.dst)
            return Outcome(a.seq, "done", st.st_size, None, bak=a.bak, info={"mtime_ns": st.st_mtime_ns})
    return None


def do_action(a: Action, ctx: JobContext) -> Outcome:
    """Do one action (settling it first when a killed run left it ``started``)."""
    try:
        fault("action")
        if a.action == "mkdir":
            if a.resumed and os.path.isdir(a.dst):
                return Outcome(a.seq, "done")
            try:
                os.mkdir(a.dst)
            except FileExistsError:
                if os.path.isdir(a.dst):
                    return Outcome(a.seq, "skipped", error="the folder existed already")
                raise
            return Outcome(a.seq, "done")
        if a.resumed:
            out = settle_action(a, ctx)
            a.resumed = False
            if out is not None:
                return out
        if a.action == "move":
            return move_file(a, ctx)
        if a.action == "copy":
            return copy_file(a, ctx)
        if a.action == "reencode":
            return _reencode(a, ctx)
        if a.src is not None and not lexists(a.src) and a.action != "write":
            return missing_source(a, ctx)
        return place_file(a, ctx)
    except ActionError as exc:
        return Outcome(a.seq, "failed", error=str(exc))
    except OSError as exc:
        if a.action != "mkdir":
            with contextlib.suppress(OSError):
                os.unlink(action_tmp(a, ctx))
        where = exc.filename if isinstance(exc.filename, bytes | str) else a.dst
        return Outcome(a.seq, "failed", error=disk_error(where, exc).message, fatal=exc.errno in FATAL_ERRNOS)


def undo_action(a: Action, ctx: JobContext) -> Outcome:
    """Undo one done action; a failure keeps it ``done`` with the reason as its error."""
    try:
        fault("undo")
        if a.action == "mkdir":
            try:
                os.rmdir(a.dst)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                return Outcome(a.seq, "undone", error="folder kept: it is not empty")
            return Outcome(a.seq, "undone")
        if a.action == "reencode":
            return _unreencode(a, ctx)
        if a.action in ("copy", "convert", "write", "paint"):
            if lexists(a.dst):
                restored = a.bak is not None and not lexists(a.bak)
                ours = a.hash is None or is_unchanged(a.dst, a.hash)
                if ours:
                    os.unlink(a.dst)
                elif not restored:
                    return Outcome(
                        a.seq, "done", error="not undone: the file changed since the job; left in place"
                    )
            _restore_bak(a)
            return Outcome(a.seq, "undone")
        assert a.src is not None
        s, d = lexists(a.src), lexists(a.dst)
        undo_tmp = os.path.join(os.path.dirname(a.src), b".tuiops-%d-%d.undo" % (ctx.job_id, a.seq))
        if lexists(undo_tmp):
            os.unlink(undo_tmp)
        if d and not s:
            os.makedirs(os.path.dirname(a.src), exist_ok=True)
            try:
                rename_noreplace(a.dst, a.src)
            except FileExistsError:
                return Outcome(a.seq, "done", error="not undone: another file is at the old place now")
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                move_across(a.dst, a.src, undo_tmp, ctx)
            else:
                fault("placed")
        elif d and s:
            try:
                same = os.path.samefile(a.src, a.dst) or hash_path(a.src) == hash_path(a.dst)
            except OSError:
                same = False
            if not same:
                return Outcome(a.seq, "done", error="not undone: another file is at the old place now")
            os.unlink(a.dst)
        elif not s:
            return Outcome(a.seq, "done", error="not undone: the file is gone from its new place")
        _restore_bak(a)
        return Outcome(a.seq, "undone")
    except ActionError as exc:
        return Outcome(a.seq, "done", error=f"not undone: {exc}")
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, bytes | str) else a.dst
        return Outcome(
            a.seq,
            "done",
            error=f"not undone: {disk_error(where, exc).message}",
            fatal=exc.errno in FATAL_ERRNOS,
        )


def _restore_bak(a: Action) -> None:
    if a.bak is not None and lexists(a.bak) and not lexists(a.dst):
        os.rename(a.bak, a.dst)


def _run_group(group: list[Action], ctx: JobContext, undo: bool) -> list[Outcome]:
    """One image with its label files (the image first: labels follow only a placed image)."""
    outs: list[Outcome] = []
    if undo:
        return [undo_action(a, ctx) for a in group]
    fast = not ctx.durable
    head = group[0]
    first = (fast and head.action == "copy" and not head.resumed and copy_fast(head)) or do_action(head, ctx)
    outs.append(first)
    gated = head.role == "image" and first.state != "done"
    for a in group[1:]:
        if gated:
            outs.append(
                Outcome(
                    a.seq,
                    "skipped" if first.state == "skipped" else "failed",
                    error="its image was not placed",
                )
            )
        else:
            outs.append((fast and a.action == "copy" and not a.resumed and copy_fast(a)) or do_action(a, ctx))
    return outs


def copy_fast(a: Action) -> Outcome | None:
    """The common copy in the fewest steps: an unnamed file in the target folder, filled by
    the kernel in one call, linked to its name (what :func:`copy_file` does, without its
    layers: between system calls every step of the interpreter counts).

    Anything else (a source that is missing, a symlink or not of its planned size, a folder
    without unnamed files, a taken name, an error) gives None with nothing left behind, and
    the general path does the action and says what went wrong.
    """
    if FAULTS:
        fault("action")
    try:
        src_fd = os.open(a.src, O_SRC)  # type: ignore[arg-type]
    except OSError:
        return None
    try:
        hint = a.size if a.size is not None else os.fstat(src_fd).st_size
        folder = a.dst.rpartition(b"/")[0] or b"/"
        if not (ANON_OK and 0 <= hint < BIG_FILE) or folder in NO_ANON:
            return None
        try:
            fd = os.open(folder, O_ANON, 0o666)
        except OSError:
            return None
        try:
            try:
                # one byte more than expected: a short answer of the expected size is the end
                if os.copy_file_range(src_fd, fd, hint + 1) != hint:
                    return None
                link_fd(fd, a.dst)
            except OSError:
                return None
            st = os.fstat(fd)  # after the link, which set its change time
        finally:
            os.close(fd)
    finally:
        os.close(src_fd)
    if FAULTS:
        fault("placed")
    info = {"mtime_ns": st.st_mtime_ns} if a.dst_pool is not None and a.file_id is not None else None
    return Outcome(a.seq, "done", hint, file_identity(st), bak=a.bak, info=info)


def run_groups(groups: list[list[Action]], ctx: JobContext, undo: bool) -> list[Outcome]:
    out: list[Outcome] = []
    for g in groups:
        out.extend(_run_group(g, ctx, undo))
    return out
