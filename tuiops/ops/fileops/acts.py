"""What runs: a journaled action, its outcome, and the context of its job."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Any

from tuiops.fsutil import display_path
from tuiops.ops.fileops.model import ConvertOptions


@dataclass(slots=True)
class Action:
    seq: int
    action: str
    role: str
    parent: int | None
    file_id: int | None
    src: bytes | None
    dst: bytes
    tmp: bytes | None
    bak: bytes | None
    data: bytes | None
    state: str
    conflict: str | None
    size: int | None
    hash: str | None
    dst_pool: int | None
    dst_rel: str | None
    dst_rel_raw: bytes | None
    prev: str | None
    new_file_id: int | None
    error: str | None
    resumed: bool = False


ACT_COLS = (
    "seq, action, role, parent, file_id, src, dst, tmp, bak, data, state, conflict, size, hash, "
    "dst_pool, dst_rel, dst_rel_raw, prev, new_file_id, error"
)
ACT_NAMES = [c.strip() for c in ACT_COLS.split(",")]


@dataclass(slots=True)
class Outcome:
    seq: int
    state: str
    size: int | None = None
    hash: str | None = None
    error: str | None = None
    dst: bytes | None = None
    bak: bytes | None = None
    fatal: bool = False
    info: dict[str, Any] | None = None

    def row(self) -> tuple[Any, ...]:
        """The fields in order (``Outcome(*row)`` makes it again)."""
        return (
            self.seq,
            self.state,
            self.size,
            self.hash,
            self.error,
            self.dst,
            self.bak,
            self.fatal,
            self.info,
        )


class ActionError(Exception):
    """One action cannot be done; the job goes on with the others."""


@dataclass
class JobContext:
    job_id: int
    op: str
    policy: str
    follow_symlinks: bool
    convert: ConvertOptions | None
    trash: bytes
    pool_roots: list[tuple[bytes, bytes]]
    durable: bool = False


def open_source(src: bytes, ctx: JobContext) -> int:
    """Open a source for reading; a symlink only when it stays in its pool (or when asked)."""
    try:
        return os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
    real = os.path.realpath(src)
    allowed = ctx.follow_symlinks or any(
        src.startswith(root + b"/") and (real == rreal or real.startswith(rreal + b"/"))
        for root, rreal in ctx.pool_roots
    )
    if not allowed:
        raise ActionError(
            f"{display_path(src)} is a symlink out of its pool; pass --follow-symlinks to copy it"
        )
    return os.open(src, os.O_RDONLY | os.O_CLOEXEC)


def missing_source(a: Action, ctx: JobContext) -> Outcome:
    msg = f"the source {display_path(a.src or b'')} is gone"
    return Outcome(a.seq, "skipped" if ctx.policy == "skip" else "failed", error=msg)


def action_tmp(a: Action, ctx: JobContext) -> bytes:
    """The action's temporary name (the journal's, or the default one)."""
    return a.tmp or tmp_path(a.dst, ctx.job_id, a.seq)


def tmp_path(dst: bytes, job_id: int, seq: int) -> bytes:
    """The temporary name an action writes its target under: ``.tuiops-JOB-SEQ.part`` beside it."""
    return os.path.join(os.path.dirname(dst), b".tuiops-%d-%d.part" % (job_id, seq))
