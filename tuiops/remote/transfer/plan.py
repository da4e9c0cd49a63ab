"""What a transfer moves: the plan of each file, ``.part`` names and the result."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    UsageError,
)

if TYPE_CHECKING:
    pass

CHUNK = 2 * 1024 * 1024
TAG_LEN = 10
EXISTING = ("error", "skip", "overwrite")
VERIFY = ("size", "sha256")
MAX_CHANNELS = 8
HASH_EXEC_MIN = 8 * 1024 * 1024
PART_RX = re.compile(r"^(?P<base>.+)\.(?P<tag>[0-9a-f]{10})\.part$")


def part_tag(size: int, mtime_ns: int) -> str:
    """The tag of a ``.part``: identifies the source version (size and modification time)."""
    return hashlib.sha1(f"{size}:{mtime_ns}".encode()).hexdigest()[:TAG_LEN]


def part_base(name: str) -> str:
    """The part of a ``.part`` name before its tag (the target name, shortened if need be)."""
    return part_name(name, "0" * TAG_LEN)[: -(TAG_LEN + 6)]


def part_name(name: str, tag: str) -> str:
    """``NAME.<tag>.part``, shortened so that it stays within 255 bytes."""
    suffix = f".{tag}.part"
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) + len(suffix) > 255:
        name = raw[: 255 - len(suffix)].decode("utf-8", "ignore")
    return name + suffix


@dataclass
class FilePlan:
    """One file of a transfer: where from, where to, and how far it got."""

    src: str
    dst: str
    rel: str
    size: int
    mtime: float
    mtime_ns: int
    tag: str
    mode: int = 0o644
    status: str = "pending"
    offset: int = 0
    resumed_from: int = 0
    credited: int = 0
    note: str = ""


@dataclass
class TransferResult:
    """What a put or get did."""

    host: str
    direction: str
    target: str = ""
    files: int = 0
    skipped: int = 0
    bytes: int = 0
    sent: int = 0
    resumed: int = 0
    retries: int = 0
    dirs: int = 0
    elapsed: float = 0.0
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, *, with_items: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not with_items:
            d.pop("items")
        return d


# -- local side ----------------------------------------------------------------------------------
def collect_local(paths: list[str | os.PathLike[str]]) -> tuple[list[tuple[Path, str]], list[str], list[str]]:
    """Expand local files and folders into (path, relative name) pairs, folders and skipped notes.

    A folder ``x`` arrives as ``REMOTE_DIR/x/…``; symbolic links to files are
    followed, links to folders and special files are skipped (and reported).
    """
    if not paths:
        raise UsageError("no local files given")
    files: list[tuple[Path, str]] = []
    dirs: list[str] = []
    skipped: list[str] = []
    for raw in paths:
        p = Path(raw).expanduser()
        try:
            st = p.stat()
        except FileNotFoundError as exc:
            raise NotFoundError(f"local file {p} does not exist", hint="check the path") from exc
        except OSError as exc:
            raise InputError(f"cannot read local file {p}: {exc.strerror}") from exc
        if stat.S_ISDIR(st.st_mode):
            base = p.resolve().name if p.name in ("", ".", "..") else p.name
            dirs.append(base)
            for root, dnames, fnames in os.walk(p, followlinks=False):
                dnames.sort()
                rel_root = os.path.relpath(root, p)
                prefix = base if rel_root == "." else posixpath.join(base, *Path(rel_root).parts)
                for d in list(dnames):
                    full = Path(root, d)
                    if full.is_symlink():
                        skipped.append(f"{full} (a link to a folder)")
                        dnames.remove(d)
                    else:
                        dirs.append(posixpath.join(prefix, d))
                for f in sorted(fnames):
                    full = Path(root, f)
                    try:
                        fst = full.stat()
                    except OSError:
                        skipped.append(f"{full} (a broken link or unreadable)")
                        continue
                    if not stat.S_ISREG(fst.st_mode):
                        skipped.append(f"{full} (not a regular file)")
                        continue
                    files.append((full, posixpath.join(prefix, f)))
        elif stat.S_ISREG(st.st_mode):
            files.append((p, p.name))
        else:
            raise InputError(f"local file {p} is not a regular file or a folder")
    seen: dict[str, Path] = {}
    for path, rel in files:
        if rel in seen:
            raise ConflictError(f"{seen[rel]} and {path} would both arrive as {rel}")
        seen[rel] = path
    return files, dirs, skipped
