"""What file operations know and answer: names, limits, options, results, escaped path strings."""

from __future__ import annotations

import errno
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from tuiops.errors import UsageError

OPS = ("copy", "move", "rename", "delete", "convert")
#: Where label files go: ``beside`` their image, or ``sibling`` (ultralytics): images under
#: ``TO/images/…`` and labels under ``TO/labels/…`` with the same relative path.
LABEL_LAYOUTS = ("beside", "sibling")
POLICIES = ("fail", "skip", "rename", "overwrite")
LABEL_MODES = ("carry", "none", "yolo", "voc", "both")
STATES = ("planned", "started", "done", "failed", "skipped", "undoing", "undone")
CONVERT_FORMATS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}

#: Conflict kinds found while planning, and what they mean.
CONFLICTS: dict[str, str] = {
    "target_exists": "a file is at the target already",
    "duplicate_target": "two sources would be written to the same target",
    "target_is_source": "the target is another source of this job (a rename chain or swap)",
    "source_missing": "the source file is not on disk",
    "read_only_target": "the target folder cannot be written",
    "read_only_source": "the source folder cannot be written (a move must delete there)",
    "symlink_outside": "the source is a symlink out of its pool (pass --follow-symlinks)",
    "name_too_long": "the target's name or path is too long for the file system",
    "shared_label": "another image of this job moves the same label file",
    "classes_differ": "the target folder has a different classes.txt",
    "unknown_key": "a key of the key list is not in the store",
    "no_file": "a key of the key list has no selected file",
}
#: Conflicts that a new name solves (policy ``rename``) or an overwrite solves.
NAME_CONFLICTS = ("target_exists", "duplicate_target", "target_is_source")

#: Template fields computed from the file's path; every selection-view column is a field too.
PATH_FIELDS = ("name", "stem", "ext", "dir", "relpath")
FIELD_ALIASES = {"class": "top_class", "det_class": "top_det_class"}

WORKERS = 4
#: From this many file actions on, a job runs on worker processes (where the system has
#: ``fork`` and more than one core); below it, on threads of this process.
PROCESS_MIN = 1000
WINDOW = 1024
FLUSH_SECONDS = 0.2
#: outcomes that make the journal commit before FLUSH_SECONDS are up (so no large batch is
#: left to write after the last action)
FLUSH_ROWS = 1024
STAT_DIR_MAX = 256
NAME_MAX = 255
PATH_MAX = 4095
RENAME_TRIES = 1000

FATAL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


# Paths are planned as polars strings; bytes that are not UTF-8 are carried as the private-use
# characters U+F780..U+F7FF and turned back into bytes at the end (only on rows marked ``esc``).
_ESC = {0xDC80 + i: 0xF780 + i for i in range(128)}
_UNESC = {v: k for k, v in _ESC.items()}


def esc(raw: bytes) -> str:
    """A path's bytes as a UTF-8-safe string (bytes that are not UTF-8 → U+F780..U+F7FF)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape").translate(_ESC)


def unesc(text: str) -> bytes:
    """The bytes of a string made by :func:`esc`."""
    return text.translate(_UNESC).encode("utf-8", "surrogateescape")


def esc_path(p: str | os.PathLike[str]) -> tuple[str, bool]:
    raw = os.fsencode(p)
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return esc(raw), True


@dataclass
class ConvertOptions:
    """How ``convert`` re-encodes: format, quality, largest side, metadata."""

    format: str = "jpeg"
    quality: int = 90
    max_side: int | None = None
    strip_metadata: bool = True

    def check(self) -> None:
        if self.format not in CONVERT_FORMATS:
            raise UsageError(f"--format must be one of {', '.join(CONVERT_FORMATS)}, not {self.format!r}")
        if not 1 <= self.quality <= 100:
            raise UsageError(f"--quality must be 1..100, not {self.quality}")
        if self.max_side is not None and self.max_side < 1:
            raise UsageError(f"--max-side must be at least 1, not {self.max_side}")

    @property
    def ext(self) -> str:
        return CONVERT_FORMATS[self.format]


@dataclass
class PlanResult:
    """What a plan holds: counts per action and conflict, examples, and the job it is."""

    job_id: int
    op: str
    status: str
    images: int = 0
    labels: int = 0
    actions: int = 0
    to_do: int = 0
    skipped: int = 0
    bytes: int = 0
    by_action: dict[str, int] = field(default_factory=dict)
    conflicts: dict[str, int] = field(default_factory=dict)
    conflict_examples: list[dict[str, str]] = field(default_factory=list)
    sample: list[dict[str, str]] = field(default_factory=list)
    unknown_keys: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    policy: str = "fail"
    dry_run: bool = False
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["elapsed"] = round(self.elapsed, 3)
        return d


@dataclass
class RunResult:
    """What a run (or resume, or undo) did."""

    job_id: int
    op: str
    status: str
    done: int = 0
    skipped: int = 0
    failed: int = 0
    undone: int = 0
    actions: int = 0
    bytes: int = 0
    elapsed: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)
    message: str = ""

    @property
    def files_per_s(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["elapsed"] = round(self.elapsed, 3)
        d["files_per_s"] = round(self.files_per_s, 1)
        return d
