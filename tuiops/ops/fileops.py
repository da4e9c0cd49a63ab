"""Batch file operations on a selection: plan → run → resume → undo, journaled in the store.

``copy``, ``move``, ``rename``, ``delete`` and ``convert`` work on the files of a
selection (:mod:`tuiops.ops.select`) and on their label files: carried from disk
(``STEM.txt`` / ``STEM.xml`` beside the image, or in the sibling ``labels/`` folder of an
``images/`` folder, with the folder's ``classes.txt``), or written from a label set of
the store (YOLO txt with the workspace's ``classes.txt``, Pascal VOC XML).

Plan
    Every op first writes its plan into the store as a job: one ``job_actions`` row per
    file action (``mkdir``, ``copy``, ``move``, ``convert``, ``write``, ``paint``), with
    the source, the target and, for an overwrite or an in-place conversion, where the
    old file is kept. Conflicts are found while planning and follow the policy: ``fail`` (default: nothing is touched), ``skip``, ``rename`` (``NAME_1.ext``,
    the image and its label files together) or ``overwrite`` (the old file goes to the
    workspace trash, so undo restores it). Conflicts a new name cannot solve (source
    missing, read-only folder, symlink out of the pool, name too long) are skipped under
    every policy but ``fail``. A dry run stops after the plan (run it later with
    ``resume``).

Run
    Actions run one image with its label files at a time: on a small thread pool for a
    small job, and from ``PROCESS_MIN`` actions on, on worker processes (one per core, at
    most ``workers``), so the system calls of several files run in
    parallel instead of taking turns on the interpreter lock. The workers die with the
    process that runs the job (``PR_SET_PDEATHSIG``), and their ids are recorded on the
    job so that a resume after a kill waits until none is left. A new file (copy,
    convert, label written) is written unnamed in its target folder (``O_TMPFILE``) and
    linked to its name when complete, so it appears whole or not at all and never
    replaces a file that is there (file systems without ``O_TMPFILE`` get the temporary
    name ``.tuiops-JOB-SEQ.part`` and a no-replace rename). A copy is made by the kernel
    (``copy_file_range``: the data never passes through this process, and file systems
    that share extents, such as XFS and Btrfs, make a clone). A move within a file system
    is one rename; a move across file systems is copy → fsync → verify (size and
    SHA-256) → rename → delete. The journal is write-ahead: before a window of actions
    touches a file, the job's mark (``job_marks``) moves past it in one store update, and
    the outcomes are committed in batches: the size of every file, the SHA-256 of every
    file written from memory (labels, conversions, drawings) and, for a copy, the placed
    file's identity (inode, size, modification and change time), with the store's
    ``files`` records following moved files in the same transaction. After a kill at any
    moment, ``resume`` decides every action at or below the mark that the journal does
    not know as done from the file system (source and target present? target content the
    expected SHA-256? temporary file left?) and finishes the job: nothing lost, nothing
    done twice.

Durability
    The journal stays consistent through any crash (SQLite WAL). After the process is
    killed (``kill -9``, out of memory, Ctrl+C) resume is exact: the kernel keeps every
    byte written. By default file data is not synced: after a power loss or an OS crash a
    file the journal records as done may lack data that had not reached the disk. With
    ``durable`` (``--durable``) every file is synced before it gets its name, its folder
    after, and every journal commit is synced, so resume is exact after a power loss too
    (at the cost of an fsync per file).

Undo
    ``undo`` walks the done actions backwards: copies are removed (only when unchanged
    since), moves go back, overwritten files come back from the trash, created folders
    are removed when empty, and the store's records follow. Undo is journaled the same
    way, so it survives a kill too.

Setting ``TUIOPS_FAULT=POINT:N`` kills the process (SIGKILL) the N-th time it reaches
POINT (``plan``, ``action``, ``placed``, ``flush``, ``undo``): a testing hook for crash recovery. A
worker process counts its own actions, and kills the job's process with itself.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import json
import os
import re
import signal
import string
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    Cancelled,
    ConflictError,
    DiskError,
    InputError,
    NotFoundError,
    TuiopsError,
    UsageError,
)
from tuiops.fsutil import RENAME_NOREPLACE, disk_error, display_path, libc_function, renameat2
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, pid_alive
from tuiops.ops.poollock import holding_pools
from tuiops.ops.procs import die_with_parent
from tuiops.ops.select import LAYOUTS, Selection, SelectionSpec, select_files

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace

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
BIG_FILE = 16 << 20
CHUNK = 1 << 20
STAT_DIR_MAX = 256
NAME_MAX = 255
PATH_MAX = 4095
RENAME_TRIES = 1000

_FATAL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)

# -- the fault hook ---------------------------------------------------------------------------------
_FAULT: dict[str, int] = {}
_FAULT_LOCK = threading.Lock()
if os.environ.get("TUIOPS_FAULT"):
    with contextlib.suppress(ValueError):
        _point, _n = os.environ["TUIOPS_FAULT"].rsplit(":", 1)
        _FAULT[_point] = int(_n)


#: In a worker process: the id of the process running the job (0 in that process itself).
_PARENT = 0


def _fault(point: str) -> None:
    if not _FAULT or point not in _FAULT:
        return
    with _FAULT_LOCK:
        _FAULT[point] -= 1
        if _FAULT[point] <= 0:
            if _PARENT:
                # a worker simulates a crash of the job's process, which takes its workers along
                os.kill(_PARENT, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)


# -- escaped path strings -----------------------------------------------------------------------------
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


def _esc_path(p: str | os.PathLike[str]) -> tuple[str, bool]:
    raw = os.fsencode(p)
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return esc(raw), True


# -- options and results ----------------------------------------------------------------------------
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


# -- templates ----------------------------------------------------------------------------------------
_SPEC_RX = re.compile(r"^0?(\d+)d$")


def parse_template(template: str) -> list[tuple[str, str | None, int | None]]:
    """Split a ``{field}`` template into (literal, field, zero-pad width) parts."""
    parts: list[tuple[str, str | None, int | None]] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(
            f"bad template {template!r}: {exc}", hint="fields look like {booru} or {fid:08d}"
        ) from exc
    for literal, fld, spec, conv in parsed:
        width = None
        if fld is not None:
            if conv:
                raise UsageError(f"template {template!r}: conversions like !{conv} are not supported")
            if spec:
                m = _SPEC_RX.match(spec)
                if m is None:
                    raise UsageError(
                        f"template {template!r}: format {spec!r} is not supported", hint="use {fid:08d}"
                    )
                width = int(m.group(1))
            fld = FIELD_ALIASES.get(fld, fld)
        parts.append((literal, fld, width))
    for literal, _, _ in parts:
        if "\x00" in literal or any(c in ("..",) for c in literal.split("/")):
            raise UsageError(f"template {template!r} must stay inside the target folder (no '..')")
    return parts


def template_fields(*templates: str) -> list[str]:
    out: dict[str, None] = {}
    for t in templates:
        for _, fld, _ in parse_template(t):
            if fld is not None:
                out[fld] = None
    return list(out)


def _render(parts: list[tuple[str, str | None, int | None]]) -> pl.Expr:
    import polars as pl

    pieces: list[pl.Expr] = []
    for literal, fld, width in parts:
        if literal:
            pieces.append(pl.lit(literal))
        if fld is not None:
            e = pl.col(f"_f_{fld}")
            if width:
                e = e.str.zfill(width)
            pieces.append(e)
    return pl.concat_str(pieces) if pieces else pl.lit("")


def _stem(name: pl.Expr) -> pl.Expr:
    """A file name without its last extension (a leading dot does not start one)."""
    import polars as pl

    cut = name.str.replace(r"\.[^.]*$", "")
    return pl.when(cut == "").then(name).otherwise(cut)


def _field_value(name: str, dtype: Any) -> pl.Expr:
    """A selection column as safe text for a path component (null → ``none``)."""
    import polars as pl

    e = pl.col(name).cast(pl.String)
    if name not in ("dir", "relpath"):
        e = e.str.replace_all("/", "_", literal=True).str.replace_all("\x00", "", literal=True)
        e = pl.when(e.is_in([".", ".."])).then(pl.lit("_")).otherwise(e)
    return pl.when(e.is_null() | (e == "")).then(pl.lit("none") if name != "dir" else pl.lit("")).otherwise(e)


#: Selection columns a plan reads only to write label files from the store (or for ops built on it).
_SIZE_COLS = ("key", "width", "height", "img_w", "img_h", "mode")


# -- the file-system survey -------------------------------------------------------------------------
@dataclass
class _Survey:
    """What the planner saw on disk: per folder, the entries it asked about.

    A folder is listed once when it is small or most of it is asked for; otherwise the
    names asked for are looked up one by one (so a few files of a huge folder cost a few
    ``lstat`` calls, and most of a folder costs one listing).
    """

    entries: dict[str, dict[str, str]] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)
    rows: tuple[list[str], list[str], list[str]] = field(default_factory=lambda: ([], [], []))

    def _found(self, folder: str, name: str, kind: str) -> None:
        have = self.entries.setdefault(folder, {})
        if name not in have:
            have[name] = kind
            self.rows[0].append(folder)
            self.rows[1].append(name)
            self.rows[2].append(kind)

    def look_frame(self, frame: pl.DataFrame) -> None:
        """Look up the ``dir``/``name`` pairs of a frame (optional ``root``: for symlink checks)."""
        import polars as pl

        if frame.height == 0:
            return
        has_root = "root" in frame.columns
        g = frame.group_by("dir").agg(
            pl.len().alias("n"),
            (pl.col("root").first() if has_root else pl.lit(None, pl.String)).alias("root"),
        )
        stat_dirs: dict[str, str | None] = {}
        for folder, n, root in g.iter_rows():
            if folder in self.listed:
                continue
            fb = unesc(folder)
            try:
                est = os.stat(fb).st_size // 24
            except OSError:
                self.listed.add(folder)
                self.entries.setdefault(folder, {})
                continue
            if n * 8 >= est or est < 2048:
                self._list(folder, fb, root)
            else:
                stat_dirs[folder] = root
        if stat_dirs:
            sub = frame.filter(pl.col("dir").is_in(list(stat_dirs))).select("dir", "name").unique()
            for folder, name in sub.iter_rows():
                if name in self.entries.get(folder, {}):
                    continue
                path = os.path.join(unesc(folder), unesc(name))
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                self._found(folder, name, _kind_stat(st, path, stat_dirs[folder]))

    def _list(self, folder: str, fb: bytes, root: str | None) -> None:
        self.listed.add(folder)
        have = self.entries.setdefault(folder, {})
        dirs, names, kinds = self.rows
        try:
            with os.scandir(fb) as it:
                for entry in it:
                    name = esc(entry.name)
                    if name in have:
                        continue
                    # a regular file is told from the listing alone; anything else is looked at
                    kind = "file" if entry.is_file(follow_symlinks=False) else _kind(entry, fb, root)
                    have[name] = kind
                    dirs.append(folder)
                    names.append(name)
                    kinds.append(kind)
        except OSError:
            pass

    def look(self, wanted: dict[str, set[str]]) -> None:
        """Look up a few ``{folder: names}`` (for new names while renaming)."""
        for folder, names in wanted.items():
            if folder in self.listed:
                continue
            for n in names:
                if n in self.entries.get(folder, {}):
                    continue
                path = os.path.join(unesc(folder), unesc(n))
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                self._found(folder, n, _kind_stat(st, path, None))

    def kind(self, folder: str, name: str) -> str | None:
        return self.entries.get(folder, {}).get(name)

    def frame(self) -> pl.DataFrame:
        """Everything seen so far: ``_d``, ``_n``, ``_kind``."""
        import polars as pl

        return pl.DataFrame(
            {"_d": self.rows[0], "_n": self.rows[1], "_kind": self.rows[2]},
            schema={"_d": pl.String, "_n": pl.String, "_kind": pl.String},
        )


def _kind(entry: os.DirEntry[bytes], folder: bytes, root: str | None) -> str:
    try:
        if entry.is_symlink():
            return _symlink_kind(os.path.join(folder, entry.name), root)
        if entry.is_dir(follow_symlinks=False):
            return "dir"
        return "file" if entry.is_file(follow_symlinks=False) else "other"
    except OSError:
        return "other"


def _kind_stat(st: os.stat_result, path: bytes, root: str | None) -> str:
    import stat as st_mod

    if st_mod.S_ISLNK(st.st_mode):
        return _symlink_kind(path, root)
    if st_mod.S_ISDIR(st.st_mode):
        return "dir"
    return "file" if st_mod.S_ISREG(st.st_mode) else "other"


def _symlink_kind(path: bytes, root: str | None) -> str:
    try:
        real = os.path.realpath(path)
        if not os.path.isfile(real):
            return "symlink_broken"
    except OSError:
        return "symlink_broken"
    if root is None:
        return "symlink_in"
    rb = os.path.realpath(unesc(root))
    return "symlink_in" if real == rb or real.startswith(rb + b"/") else "symlink_out"


def _nearest_existing(folder: bytes) -> bytes:
    p = folder
    while not os.path.exists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return p


def _writable(folder: bytes) -> bool:
    p = _nearest_existing(folder)
    return os.path.isdir(p) and os.access(p, os.W_OK | os.X_OK)


# -- planning ------------------------------------------------------------------------------------------
def _job_kind(op: str) -> str:
    return f"fileops.{op}"


@holding_pools
def plan(
    ws: Workspace,
    op: str,
    selection: SelectionSpec | Selection,
    *,
    to: str | os.PathLike[str] | None = None,
    layout: str = "flat",
    name: str | None = None,
    labels: str = "carry",
    label_set: str | None = None,
    on_conflict: str = "fail",
    convert: ConvertOptions | None = None,
    follow_symlinks: bool = False,
    durable: bool = False,
    in_place: bool = False,
    label_layout: str = "beside",
    dry_run: bool = False,
    image_data: Callable[[pl.DataFrame], pl.Series] | None = None,
    extra_actions: Callable[[pl.DataFrame, pl.DataFrame, int], pl.DataFrame] | None = None,
    job_params: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    _keep: list[pl.DataFrame] | None = None,
    _job_id: int | None = None,
) -> PlanResult:
    """Plan ``op`` on a selection and record the plan as a job (nothing is touched).

    ``to``: the target folder (copy, move, convert). ``layout``: a preset of
    :data:`tuiops.ops.select.LAYOUTS` or a folder template (``{booru}/{fid_k}``);
    ``name``: the file-name template (default ``{name}``; for convert ``{stem}{ext}``
    with the new extension). ``labels``: ``carry`` label files from disk, ``none``, or
    write them from ``label_set`` as ``yolo``, ``voc`` or ``both``. ``label_layout``:
    ``beside`` (label files next to their image) or ``sibling`` (ultralytics: images
    under ``TO/images/LAYOUT/``, label files and classes.txt under ``TO/labels/LAYOUT/``).
    ``in_place`` (convert only, no ``to``): re-encode each image at its path, or beside it
    under the new extension when the format changes, the original going to the job's
    trash folder (undo restores it; label files are left alone). Raises
    :class:`ConflictError` when the policy is ``fail`` and there are conflicts (the
    refused plan stays recorded, for ``tuiops ops show``), unless ``dry_run``.

    For ops built on this one (``paint``, review exports): ``image_data(images)`` gives
    each image action's ``data`` (a ``paint`` action's drawing), ``extra_actions(images,
    label_actions, job_id)`` adds actions (written files, paintings) that are planned,
    checked, run and undone with the rest; ``job_params`` are recorded with the job.
    """

    t0 = time.perf_counter()
    if op not in (*OPS, "paint"):
        raise UsageError(f"unknown operation {op!r}; use one of {', '.join(OPS)}")
    if on_conflict not in POLICIES:
        raise UsageError(f"--on-conflict must be one of {', '.join(POLICIES)}, not {on_conflict!r}")
    if labels not in LABEL_MODES:
        raise UsageError(f"--labels must be one of {', '.join(LABEL_MODES)}, not {labels!r}")
    if label_layout not in LABEL_LAYOUTS:
        raise UsageError(f"--label-layout must be one of {', '.join(LABEL_LAYOUTS)}, not {label_layout!r}")
    if in_place:
        if op != "convert":
            raise UsageError("--in-place is for `ops convert` only")
        if to is not None:
            raise UsageError("`ops convert --in-place` keeps the files where they are: leave out --to")
        if on_conflict == "overwrite":
            raise UsageError(
                "`ops convert --in-place` does not overwrite other files",
                hint="use --on-conflict skip or rename for names the new extension would take",
            )
        if label_layout != "beside":
            raise UsageError("--label-layout sibling needs a target folder; --in-place leaves labels alone")
        labels = "none"
    elif op in ("copy", "move", "convert", "paint") and to is None:
        raise UsageError(f"`ops {op}` needs a target folder: --to DIR (or --in-place for convert)")
    if label_layout == "sibling" and op in ("rename", "delete"):
        raise UsageError(f"--label-layout sibling needs a target folder; `ops {op}` has none")
    if op == "rename" and not name:
        raise UsageError("`ops rename` needs a name template: --name '{booru}_{fid}{ext}'")
    if op == "convert":
        convert = convert or ConvertOptions()
        convert.check()
    from tuiops.ops.select import resolve_spec, view_columns

    spec = selection.spec if isinstance(selection, Selection) else resolve_spec(ws, selection)
    label_set = label_set or spec.label_set
    if labels in ("yolo", "voc", "both") and not label_set:
        raise UsageError(f"--labels {labels} writes label files from a label set: give --set NAME")
    layout_t = (
        LAYOUTS.get(layout, layout) if op in ("copy", "move", "convert", "paint") and not in_place else ""
    )
    name_t = name or {"convert": "{stem}{ext}", "paint": "{stem}.jpg"}.get(op, "{name}")
    layout_parts = parse_template(layout_t)
    name_parts = parse_template(name_t)
    fields = template_fields(layout_t, name_t)
    store = ws.store
    rep = Reporter(f"ops.{op}", progress, cancel)
    rep.update(0, "selecting", force=True)

    base_cols = [
        "file_id",
        "pool_id",
        "relpath",
        "relpath_raw",
        "key",
        "item_id",
        "size",
        "width",
        "height",
        "img_w",
        "img_h",
        "mode",
        "status",
    ]
    if isinstance(selection, Selection):
        sel = selection
    else:
        probe_spec = SelectionSpec(**{**asdict(spec), "label_set": label_set})

        known = set(view_columns(probe_spec)) | set(PATH_FIELDS) | {"n"}
        bad = [f for f in fields if f not in known]
        if bad:
            hint = "fields: " + ", ".join(sorted(known))
            if any(f in ("top_class", "category", "top_det_class") for f in bad):
                hint = "{class} needs --set, {det_class} --run, {category} --match; " + hint
            raise UsageError(f"unknown template field(s): {', '.join('{' + b + '}' for b in bad)}", hint=hint)
        # the image's sizes and key are read only where label files are written from the store
        # or another op builds on the plan (a million rows of them are seconds of planning)
        lean = labels not in ("yolo", "voc", "both") and image_data is None and extra_actions is None
        core = [c for c in base_cols if c not in _SIZE_COLS] if lean else base_cols
        want = core + [f for f in fields if f not in core and f not in PATH_FIELDS and f != "n"]
        sel = select_files(ws, probe_spec, columns=want)
    frame = sel.frame
    if frame.height == 0:  # an empty result carries no types of its own
        import polars as pl

        frame = frame.with_columns(
            pl.col(c).cast(pl.String) for c in ("relpath", "key", "mode", "status") if c in frame.columns
        )
    missing = [c for c in base_cols if c not in frame.columns]
    if missing:
        import polars as pl

        text = ("key", "mode")
        frame = frame.with_columns(
            pl.lit(None, pl.String if c in text else pl.Int64).alias(c) for c in missing
        )
    rep.check()
    params: dict[str, Any] = {
        "op": op,
        "to": os.fspath(to) if to is not None else None,
        "layout": layout_t,
        "name": name_t,
        "labels": labels,
        "label_set": label_set,
        "on_conflict": on_conflict,
        "convert": asdict(convert) if convert else None,
        "follow_symlinks": follow_symlinks,
        "durable": durable,
        "in_place": in_place,
        "label_layout": label_layout,
        "selection": sel.spec.to_dict(),
        **(job_params or {}),
    }
    if _job_id is None:
        job_id = store.job_start(_job_kind(op), params, None)
        store.execute("UPDATE jobs SET status = 'planning' WHERE id = ?", (job_id,))
    else:  # a job killed while planning, planned again (claimed by the caller)
        job_id = _job_id
        with store.transaction() as conn:
            conn.execute("DELETE FROM job_actions WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM job_marks WHERE job_id = ?", (job_id,))
    try:
        result = _plan(
            ws,
            job_id,
            op,
            sel,
            frame,
            to,
            layout_parts,
            name_parts,
            fields,
            labels,
            label_set,
            on_conflict,
            convert,
            follow_symlinks,
            dry_run,
            rep,
            image_data,
            extra_actions,
            in_place=in_place,
            label_layout=label_layout,
            keep=_keep,
        )
    except BaseException:
        with store.transaction() as conn:
            conn.execute("DELETE FROM job_actions WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        raise
    result.elapsed = time.perf_counter() - t0
    if result.status == "refused" and not dry_run:
        kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in result.conflicts.items())
        first = result.conflict_examples[0] if result.conflict_examples else None
        example = ""
        if first:  # a conflict at the target names the target, one at the source the source
            at_source = first["conflict"] in ("source_missing", "read_only_source", "symlink_outside")
            where = first["src"] if at_source or not first["dst"] else first["dst"]
            came = f" (from {first['src']})" if first["src"] and where != first["src"] else ""
            example = f"; e.g. {first['conflict'].replace('_', ' ')}: {where}{came}"
        raise ConflictError(
            f"job {job_id} refused, nothing was touched: {kinds}{example}",
            hint=f"see `tuiops ops show {job_id} --conflicts`; choose --on-conflict skip|rename|overwrite",
        )
    return result


def _plan(
    ws: Workspace,
    job_id: int,
    op: str,
    sel: Selection,
    frame: pl.DataFrame,
    to: str | os.PathLike[str] | None,
    layout_parts: list[tuple[str, str | None, int | None]],
    name_parts: list[tuple[str, str | None, int | None]],
    fields: list[str],
    labels: str,
    label_set: str | None,
    policy: str,
    convert: ConvertOptions | None,
    follow_symlinks: bool,
    dry_run: bool,
    rep: Reporter,
    image_data: Callable[[pl.DataFrame], pl.Series] | None = None,
    extra_actions: Callable[[pl.DataFrame, pl.DataFrame, int], pl.DataFrame] | None = None,
    *,
    in_place: bool = False,
    label_layout: str = "beside",
    keep: list[pl.DataFrame] | None = None,
) -> PlanResult:
    import polars as pl

    store = ws.store
    res = PlanResult(job_id=job_id, op=op, status="planned", policy=policy, dry_run=dry_run)
    trash_esc, trash_flag = _esc_path(ws.trash_dir.resolve() / f"job-{job_id}")
    to_esc, to_flag = _esc_path(os.path.abspath(os.fspath(to))) if to is not None else ("", False)
    to_esc = to_esc.rstrip("/") or "/"
    pools = store.execute("SELECT id, name, root FROM pools").fetchall()
    pool_name = {pid: pname for pid, pname, _ in pools}
    pool_roots = {pid: _esc_path(root) for pid, _, root in pools}

    # -- sources ---------------------------------------------------------------------------
    f = frame if frame["file_id"].is_sorted() else frame.sort("file_id")
    raw_rel = [None if r is None else esc(r) for r in f["relpath_raw"].to_list()] if f.height else []
    f = f.with_columns(
        pl.coalesce(pl.lit(pl.Series("_rel", raw_rel, dtype=pl.String)), pl.col("relpath")).alias("_rel"),
        pl.col("relpath_raw").is_not_null().alias("_esc"),
        pl.col("pool_id")
        .replace_strict({k: v[0] for k, v in pool_roots.items()}, default=None)
        .alias("_root"),
        pl.col("pool_id")
        .replace_strict({k: v[1] for k, v in pool_roots.items()}, default=False)
        .alias("_root_esc"),
        pl.col("pool_id").replace_strict(pool_name, default=None).alias("pool"),
    )
    f = f.with_columns(pl.col("_rel").str.split("/").list.last().alias("name")).with_columns(
        (pl.col("_root") + "/" + pl.col("_rel")).alias("src"),
        pl.col("_rel").str.strip_suffix(pl.col("name")).str.strip_suffix("/").alias("dir"),
        _stem(pl.col("name")).alias("stem"),
        (
            pl.col("_esc") | pl.col("_root_esc") | pl.lit(to_flag) | pl.lit(op == "delete" and trash_flag)
        ).alias("_esc"),
        pl.int_range(1, pl.len() + 1).alias("n"),
    )
    f = f.with_columns(
        pl.col("name").str.strip_prefix(pl.col("stem")).alias("ext"),
        pl.when(pl.col("dir") == "")
        .then(pl.col("_root"))
        .otherwise(pl.col("_root") + "/" + pl.col("dir"))
        .alias("src_dir"),
    )
    if op == "convert":
        assert convert is not None
        f = f.with_columns(pl.lit(convert.ext).alias("ext"))

    # -- targets -----------------------------------------------------------------------------
    field_cols = []
    for fld in fields:
        if fld == "relpath":
            field_cols.append(pl.col("_rel").alias("_f_relpath"))
        elif fld in f.columns:
            field_cols.append(_field_value(fld, f.schema[fld]).alias(f"_f_{fld}"))
    f = f.with_columns(field_cols)
    slashy = {"dir", "relpath"}
    name_simple = not any("/" in lit for lit, _, _ in name_parts) and not any(
        fld in slashy for _, fld, _ in name_parts
    )
    if op == "delete":
        f = f.with_columns(
            (
                pl.lit(trash_esc)
                + "/"
                + pl.col("pool")
                + pl.when(pl.col("dir") == "").then(pl.lit("")).otherwise("/" + pl.col("dir"))
            ).alias("dst_dir"),
            pl.col("name").alias("dst_name"),
        )
    elif op == "rename" or in_place:
        f = f.with_columns(pl.col("src_dir").alias("dst_dir"), _render(name_parts).alias("dst_name"))
    else:
        lay = _render(layout_parts)
        if any(fld in slashy for _, fld, _ in layout_parts) or any(
            lit.startswith("/") or lit.endswith("/") or "//" in lit for lit, _, _ in layout_parts
        ):
            lay = lay.str.replace_all("/+", "/").str.strip_chars("/")
        base = to_esc.rstrip("/")
        if label_layout == "sibling":
            base = f"{base}/images"
        if layout_parts and any(lit or fld for lit, fld, _ in layout_parts):
            dst_dir = pl.when(lay == "").then(pl.lit(base)).otherwise(pl.lit(base) + "/" + lay)
        else:
            dst_dir = pl.lit(base)
        f = f.with_columns(dst_dir.alias("dst_dir"), _render(name_parts).alias("dst_name"))
    if not name_simple:
        full = (pl.col("dst_dir") + "/" + pl.col("dst_name")).str.replace_all("/+", "/")
        f = (
            f.with_columns(full.alias("dst"))
            .with_columns(pl.col("dst").str.split("/").list.last().alias("dst_name"))
            .with_columns(
                pl.col("dst").str.strip_suffix(pl.col("dst_name")).str.strip_suffix("/").alias("dst_dir")
            )
        )
    f = f.with_columns(
        (pl.col("dst_dir") + "/" + pl.col("dst_name")).alias("dst"),
        _stem(pl.col("dst_name")).alias("dst_stem"),
    )
    if label_layout == "sibling":
        # the same path under TO/labels as the image has under TO/images (a name template
        # with folders in it moves both alike)
        images = to_esc.rstrip("/") + "/images"
        f = f.with_columns(
            (pl.lit(to_esc.rstrip("/") + "/labels") + pl.col("dst_dir").str.strip_prefix(images)).alias(
                "ldst_dir"
            )
        )
    else:
        f = f.with_columns(pl.col("dst_dir").alias("ldst_dir"))
    bad = f.filter((pl.col("dst_name").str.len_bytes() == 0) | pl.col("dst_name").is_in([".", ".."]))
    if bad.height:
        raise UsageError(
            f"the templates give a bad target for {display_path(unesc(bad['src'][0]))}: {bad['dst'][0]!r}",
            hint="a template must give a file name and stay inside the target folder",
        )
    rep.update(0, "looking at the disk", force=True)

    # -- label files ---------------------------------------------------------------------------
    img = f.select(
        pl.int_range(pl.len()).alias("g"),
        "file_id",
        "item_id",
        "key",
        "pool_id",
        "_root",
        "src",
        "src_dir",
        "name",
        "stem",
        "dst",
        "dst_dir",
        "ldst_dir",
        "dst_name",
        "dst_stem",
        "size",
        "width",
        "height",
        "img_w",
        "img_h",
        "mode",
        "status",
        "_esc",
    )
    survey = _Survey()
    lab = _label_candidates(img, labels, op)
    roots = img.select("g", pl.col("_root").alias("root"))
    survey.look_frame(
        pl.concat(
            [
                img.select(pl.col("src_dir").alias("dir"), "name", pl.col("_root").alias("root")),
                lab.join(roots, on="g", how="left").select(
                    pl.col("src_dir").alias("dir"), pl.col("src_name").alias("name"), "root"
                ),
            ]
        )
    )
    kind = survey.frame()
    img = img.join(kind, left_on=["src_dir", "name"], right_on=["_d", "_n"], how="left").sort("g")
    if lab.height:
        lab = (
            lab.join(kind, left_on=["src_dir", "src_name"], right_on=["_d", "_n"], how="left")
            .filter(pl.col("_kind").is_in(["file", "symlink_in"]) | (pl.col("_kind") == "symlink_out"))
            .sort("g", "ord")
        )
    lab = _label_targets(ws, img, lab, labels, label_set, op, convert, rep)
    rep.check()

    # -- one frame of every file action ---------------------------------------------------------
    if extra_actions is not None:
        extra = extra_actions(img, lab, job_id)
        if extra.height:
            lab = pl.concat([lab, extra], how="diagonal_relaxed") if lab.height else extra
    action = {
        "copy": "copy", "move": "move", "rename": "move", "delete": "move", "convert": "convert", "paint": "paint",
    }[op] if not in_place else "reencode"  # fmt: skip
    data = image_data(img) if image_data is not None else pl.lit(None, pl.Binary)
    img_actions = img.select(
        "g",
        pl.lit(0).alias("ord"),
        pl.lit(action).alias("action"),
        pl.lit("image").alias("role"),
        "file_id",
        "item_id",
        "src",
        "src_dir",
        "dst",
        "dst_dir",
        "dst_stem",
        pl.col("dst_name").str.strip_prefix(pl.col("dst_stem")).alias("dst_ext"),
        data.alias("data"),
        "size",
        "_kind",
        "_esc",
        pl.col("status"),
    )
    acts = pl.concat([img_actions, lab], how="diagonal_relaxed").sort("g", "ord")
    acts = acts.with_columns(pl.lit(None, pl.String).alias("conflict"))
    acts = _conflicts(acts, survey, op, follow_symlinks)
    acts, resolved_by = _apply_policy(acts, survey, policy)
    rep.check()

    # -- folders to make, temporary names, backups ----------------------------------------------
    live = acts.filter(~pl.col("_skip"))
    dirs = sorted(set(live["dst_dir"].to_list()))
    if live.filter(pl.col("_overwrite")).height:
        dirs.append(trash_esc + "/overwritten")
    if in_place and live.height:
        dirs.append(trash_esc + "/originals")
    needed: list[str] = []
    seen: set[str] = set()
    for d in dirs:
        chain = []
        p = d
        while p and p not in seen and not os.path.isdir(unesc(p)):
            chain.append(p)
            seen.add(p)
            parent = p.rsplit("/", 1)[0]
            if parent == p:
                break
            p = parent
        needed.extend(reversed(chain))
    needed = sorted(dict.fromkeys(needed), key=lambda p: (p.count("/"), p))
    mk = pl.DataFrame(
        {
            "action": ["mkdir"] * len(needed),
            "role": ["dir"] * len(needed),
            "dst": needed,
            "_esc": [any(0xF780 <= ord(c) <= 0xF7FF for c in p) for p in needed],
        },
        schema={"action": pl.String, "role": pl.String, "dst": pl.String, "_esc": pl.Boolean},
    )
    nmk = mk.height
    acts = acts.with_columns((pl.int_range(pl.len()) + nmk).alias("seq"))
    parent_seq = acts.filter(pl.col("ord") == 0).select("g", pl.col("seq").alias("parent"))
    acts = acts.join(parent_seq, on="g", how="left", maintain_order="left").with_columns(
        pl.when(pl.col("ord") == 0).then(None).otherwise(pl.col("parent")).alias("parent")
    )
    acts = acts.with_columns(
        pl.lit(None, pl.String).alias("tmp"),
        pl.when(pl.col("_overwrite"))
        .then(pl.lit(trash_esc + "/overwritten/") + pl.col("seq").cast(pl.String))
        .when(pl.col("action") == "reencode")
        .then(pl.lit(trash_esc + "/originals/") + pl.col("seq").cast(pl.String))
        .otherwise(None)
        .alias("bak"),
        pl.when(pl.col("_skip") | pl.col("_note").is_in(["unchanged", "identical"]).fill_null(False))
        .then(pl.lit("skipped"))
        .otherwise(pl.lit("planned"))
        .alias("state"),
    )
    acts = _dst_pools(acts, pool_roots)
    mk = mk.with_columns(pl.int_range(pl.len()).alias("seq"), pl.lit("planned").alias("state"))
    allrows = pl.concat([mk, acts], how="diagonal_relaxed").sort("seq")

    # -- results ---------------------------------------------------------------------------------
    conflicted = acts.filter(pl.col("conflict").is_not_null())
    n_unknown = len(sel.unknown_keys)
    n_nofile = len(sel.keys_without_files)
    res.images = img.height
    res.labels = acts.filter(pl.col("role") != "image").height
    res.actions = allrows.height
    res.by_action = dict(allrows.group_by("action").len().sort("action").iter_rows())
    res.skipped = allrows.filter(pl.col("state") == "skipped").height
    res.to_do = allrows.height - res.skipped
    res.bytes = int(acts.filter(pl.col("state") == "planned")["size"].fill_null(0).sum())
    counts = dict(conflicted.group_by("conflict").len().sort("conflict").iter_rows())
    if n_unknown:
        counts["unknown_key"] = n_unknown
    if n_nofile:
        counts["no_file"] = n_nofile
    res.conflicts = counts
    res.unknown_keys = sel.unknown_keys[:20]
    res.conflict_examples = [
        {
            "conflict": c,
            "src": display_path(unesc(s)) if s else "",
            "dst": display_path(unesc(d)),
            "resolution": resolved_by.get(c, "skip"),
        }
        for c, s, d in conflicted.select("conflict", "src", "dst").head(20).iter_rows()
    ]
    res.conflict_examples += [
        {"conflict": "unknown_key", "src": k, "dst": "", "resolution": "skip"} for k in sel.unknown_keys[:5]
    ]
    res.sample = [
        {"action": a, "src": display_path(unesc(s)) if s else "", "dst": display_path(unesc(d)), "state": st}
        for a, s, d, st in allrows.select("action", "src", "dst", "state").head(20).iter_rows()
    ]
    if counts and policy == "fail":
        res.status = "refused"
    space = _space_check(acts.filter(pl.col("state") == "planned"), op)
    if space:
        res.warnings.append(space)
        if policy != "fail" or not counts:
            res.status = "refused"

    # -- write the plan ------------------------------------------------------------------------
    rep.update(0, "writing the plan", force=True)
    _fault("plan")
    rows = _to_journal(allrows, job_id)
    result_json = {k: v for k, v in res.to_dict().items() if k not in ("sample",)}
    status = res.status
    error = None
    if status == "refused":
        error = "conflicts: " + ", ".join(f"{n} {k}" for k, n in counts.items()) if counts else space
    with store.bulk() as tx:
        tx.ingest("job_actions", rows)
        if keep is not None and status == "planned" and not dry_run:
            keep.append(rows)
        tx.execute(
            "UPDATE jobs SET status = ?, total = ?, done = 0, result = ?, error = ?, message = ? WHERE id = ?",
            (
                status,
                res.to_do,
                json.dumps(result_json, default=str),
                error,
                "dry run" if dry_run else None,
                job_id,
            ),
        )
    if space and status == "refused" and not dry_run and not counts:
        raise DiskError(
            f"job {job_id} refused, nothing was touched: {space}", hint="free space or choose another --to"
        )
    return res


def _label_candidates(img: pl.DataFrame, labels: str, op: str) -> pl.DataFrame:
    """Label files that may lie beside each image (carry mode): ``src_dir``, ``src_name``, ``kind``."""
    import polars as pl

    schema = {"g": pl.Int64, "ord": pl.Int64, "src_dir": pl.String, "src_name": pl.String, "lkind": pl.String}
    if labels != "carry" or img.height == 0:
        return pl.DataFrame(schema=schema)
    beside = [
        img.select(
            "g",
            pl.lit(o).alias("ord"),
            "src_dir",
            (pl.col("stem") + suffix).alias("src_name"),
            pl.lit(k).alias("lkind"),
        )
        for o, suffix, k in ((1, ".txt", "yolo"), (2, ".xml", "voc"))
    ]
    sib = (
        img.filter(pl.col("src_dir").str.contains("images", literal=True))
        .filter(pl.col("src_dir").str.contains("(^|/)images(/|$)"))
        .select(
            "g",
            pl.lit(3).alias("ord"),
            pl.col("src_dir").str.replace(r"(.*)(^|/)images(/|$)", "${1}${2}labels${3}").alias("src_dir"),
            (pl.col("stem") + ".txt").alias("src_name"),
            pl.lit("yolo").alias("lkind"),
        )
    )
    out = pl.concat([*beside, sib]).cast(schema)  # type: ignore[arg-type]
    return out.filter(pl.col("src_name") != "classes.txt")


def _label_targets(
    ws: Workspace,
    img: pl.DataFrame,
    lab: pl.DataFrame,
    labels: str,
    label_set: str | None,
    op: str,
    convert: ConvertOptions | None,
    rep: Reporter,
) -> pl.DataFrame:
    """The label-file actions of each image (carried or written from the store), plus classes.txt."""
    import polars as pl

    action = {
        "copy": "copy",
        "move": "move",
        "rename": "move",
        "delete": "move",
        "convert": "copy",
        "paint": "copy",
    }[op]
    if labels == "none" or img.height == 0:
        return pl.DataFrame()
    if labels == "carry":
        if lab.height == 0:
            return pl.DataFrame()
        lab = (
            lab.filter(pl.col("ord") == 1)
            .vstack(lab.filter(pl.col("ord") == 2))
            .vstack(
                lab.filter(
                    (pl.col("ord") == 3) & ~pl.col("g").is_in(lab.filter(pl.col("ord") == 1)["g"].implode())
                )
            )
        )
        if convert is not None and convert.max_side and lab.filter(pl.col("lkind") == "voc").height:
            first = lab.filter(pl.col("lkind") == "voc").row(0, named=True)
            raise UsageError(
                f"--max-side changes pixel sizes, so the carried VOC file {display_path(unesc(first['src_dir']))}/"
                f"{display_path(unesc(first['src_name']))} would no longer fit its image",
                hint="write the labels from the store instead: --labels voc --set NAME (boxes are scaled)",
            )
        g = img.select("g", pl.col("ldst_dir").alias("dst_dir"), "dst_stem", "_esc", "item_id")
        out = lab.join(g, on="g", how="left").select(
            "g",
            "ord",
            pl.lit(action).alias("action"),
            pl.lit("label").alias("role"),
            "item_id",
            (pl.col("src_dir") + "/" + pl.col("src_name")).alias("src"),
            (
                pl.col("dst_dir")
                + "/"
                + pl.col("dst_stem")
                + pl.when(pl.col("lkind") == "voc").then(pl.lit(".xml")).otherwise(pl.lit(".txt"))
            ).alias("dst"),
            "dst_dir",
            "dst_stem",
            pl.when(pl.col("lkind") == "voc").then(pl.lit(".xml")).otherwise(pl.lit(".txt")).alias("dst_ext"),
            pl.lit(None, pl.Binary).alias("data"),
            "_kind",
            "_esc",
            "src_dir",
            "lkind",
        )
        out = _label_file_ids(ws.store, out, img)
        return pl.concat([out.drop("lkind"), _carried_classes(out, action)], how="diagonal_relaxed")
    assert label_set is not None
    return _store_labels(ws, img, labels, label_set, convert, rep)


def _label_file_ids(store: Store, lab: pl.DataFrame, img: pl.DataFrame) -> pl.DataFrame:
    """The ``files`` records of carried label files that a scan indexed (so they follow too)."""
    import polars as pl

    roots = img.select("g", "pool_id", "_root")
    lab = lab.join(roots, on="g", how="left", maintain_order="left")
    inside = pl.col("src").str.starts_with(pl.col("_root") + "/")
    lab = lab.with_columns(
        pl.when(inside).then(pl.col("src").str.slice(pl.col("_root").str.len_chars() + 1)).alias("_lrel")
    )
    if lab["_esc"].any():
        shown = [
            unesc(r).decode("utf-8", "backslashreplace") if (e and r is not None) else r
            for r, e in zip(lab["_lrel"].to_list(), lab["_esc"].to_list(), strict=True)
        ]
        lab = lab.with_columns(pl.Series("_lrel", shown, dtype=pl.String))
    keys = (
        lab.select(pl.col("pool_id").cast(pl.Int64), pl.col("_lrel").alias("relpath")).drop_nulls().unique()
    )
    if keys.height == 0:
        return lab.with_columns(pl.lit(None, pl.Int64).alias("file_id")).drop("pool_id", "_root", "_lrel")
    with store.bulk() as tx:
        tx.ingest("_fo_labels", keys, temporary=True, mode="replace")
        found = tx.read_frame(
            "SELECT k.pool_id, k.relpath, f.id AS file_id FROM temp._fo_labels k "
            "JOIN files f ON f.pool_id = k.pool_id AND f.relpath = k.relpath"
        )
        tx.execute("DROP TABLE temp._fo_labels")
    found = found.select(
        pl.col("pool_id").cast(pl.Int64),
        pl.col("relpath").cast(pl.String).alias("_lrel"),
        pl.col("file_id").cast(pl.Int64),
    )
    lab = lab.with_columns(pl.col("pool_id").cast(pl.Int64)).join(
        found, on=["pool_id", "_lrel"], how="left", maintain_order="left"
    )
    return lab.drop("pool_id", "_root", "_lrel")


def _carried_classes(lab: pl.DataFrame, action: str) -> pl.DataFrame:
    """classes.txt of the source folders of carried YOLO files, once per target folder."""
    import polars as pl

    yolo = (
        lab.filter(pl.col("lkind") == "yolo").select("src_dir", "dst_dir", "_esc").unique(maintain_order=True)
    )
    rows: list[dict[str, Any]] = []
    contents: dict[str, bytes | None] = {}
    for sd, dd, e in yolo.iter_rows():
        if sd not in contents:
            try:
                with open(os.path.join(unesc(sd), b"classes.txt"), "rb") as fh:
                    contents[sd] = fh.read()
            except OSError:
                contents[sd] = None
        data = contents[sd]
        if data is None:
            continue
        rows.append(
            {
                "g": -1,
                "ord": 9,
                "action": "write",
                "role": "classes",
                "src": sd + "/classes.txt",
                "src_dir": sd,
                "dst": dd + "/classes.txt",
                "dst_dir": dd,
                "dst_stem": "classes",
                "dst_ext": ".txt",
                "data": data,
                "size": len(data),
                "_kind": "file",
                "_esc": e,
            }
        )
    if not rows:
        return pl.DataFrame()
    frame = pl.DataFrame(rows).unique(["dst", "data"], keep="first", maintain_order=True)
    return frame.with_columns((pl.lit(2**62) + pl.int_range(pl.len())).alias("g"))


def _store_labels(
    ws: Workspace,
    img: pl.DataFrame,
    labels: str,
    label_set: str,
    convert: ConvertOptions | None,
    rep: Reporter,
) -> pl.DataFrame:
    """Label files written from a label set: YOLO text and/or VOC documents, plus classes.txt."""
    import polars as pl

    from tuiops.formats.classes import classes_txt_bytes

    store = ws.store
    sid = store.label_set_id(label_set)
    images = store.read_frame(
        "SELECT s.item_id, s.meta FROM set_images s WHERE s.set_id = ?",
        (sid,),
        {"item_id": pl.Int64, "meta": pl.String},
    )
    first = img.unique("item_id", keep="first", maintain_order=True)
    members = img.join(images, on="item_id", how="inner").sort("g")
    boxes = store.read_labels(label_set, with_extra=True).join(
        first.select("item_id"), on="item_id", how="semi"
    )
    classes = list(ws.classes)
    if boxes.height and int(boxes["class_id"].max()) >= len(classes):  # type: ignore[arg-type]
        raise InputError(
            f"label set {label_set!r} has class id {boxes['class_id'].max()}, beyond the workspace class map",
            hint="restore the class map in tuiops.toml",
        )
    scale = pl.lit(1.0)
    if convert is not None and convert.max_side:
        side = pl.max_horizontal(pl.col("width"), pl.col("height")).cast(pl.Float64)
        scale = pl.when(side > convert.max_side).then(convert.max_side / side).otherwise(1.0)
    members = members.with_columns(
        pl.col("img_w").fill_null(pl.col("width")).alias("img_w"),
        pl.col("img_h").fill_null(pl.col("height")).alias("img_h"),
        scale.alias("_scale"),
    ).with_columns(
        (pl.col("width").fill_null(pl.col("img_w")) * pl.col("_scale"))
        .round()
        .clip(lower_bound=1)
        .cast(pl.Int64)
        .alias("_nw"),
        (pl.col("height").fill_null(pl.col("img_h")) * pl.col("_scale"))
        .round()
        .clip(lower_bound=1)
        .cast(pl.Int64)
        .alias("_nh"),
    )
    out: list[pl.DataFrame] = []
    common = [
        pl.col("g"),
        pl.lit("write").alias("action"),
        pl.lit("label").alias("role"),
        "item_id",
        pl.col("ldst_dir").alias("dst_dir"),
        "dst_stem",
        "_esc",
    ]
    if labels in ("yolo", "both") and members.height:
        from tuiops.formats.yolo import yolo_texts

        imgs = members.unique("item_id", keep="first").select(
            "item_id", pl.col("img_w").alias("width"), pl.col("img_h").alias("height"), "meta"
        )
        texts = yolo_texts(boxes.drop("id"), imgs)
        y = members.join(texts, on="item_id", how="left").select(
            *common,
            pl.lit(1).alias("ord"),
            (pl.col("ldst_dir") + "/" + pl.col("dst_stem") + ".txt").alias("dst"),
            pl.lit(".txt").alias("dst_ext"),
            pl.col("text").fill_null("").cast(pl.Binary).alias("data"),
        )
        out.append(y)
        dirs = y.select("dst_dir", "_esc").unique("dst_dir", maintain_order=True)
        ct = classes_txt_bytes(classes)
        out.append(
            dirs.select(
                (pl.lit(2**62) + pl.int_range(pl.len())).alias("g"),
                pl.lit(9).alias("ord"),
                pl.lit("write").alias("action"),
                pl.lit("classes").alias("role"),
                (pl.col("dst_dir") + "/classes.txt").alias("dst"),
                "dst_dir",
                pl.lit("classes").alias("dst_stem"),
                pl.lit(".txt").alias("dst_ext"),
                pl.lit(ct, pl.Binary).alias("data"),
                "_esc",
            )
        )
    if labels in ("voc", "both") and members.height:
        out.append(
            _voc_docs(members, boxes, classes, convert, rep).select(*common, "ord", "dst", "dst_ext", "data")
        )
    if not out:
        return pl.DataFrame()
    frame = pl.concat(out, how="diagonal_relaxed")
    return frame.with_columns(pl.col("data").bin.size().alias("size"), pl.lit("file").alias("_kind"))


_DEPTH = {"1": 1, "L": 1, "P": 3, "RGB": 3, "RGBA": 4, "CMYK": 4, "LA": 2, "I;16": 1, "I": 1, "F": 1}


def _voc_docs(
    members: pl.DataFrame,
    boxes: pl.DataFrame,
    classes: list[str],
    convert: ConvertOptions | None,
    rep: Reporter,
) -> pl.DataFrame:
    import polars as pl

    from tuiops.formats.voc import VocBox, VocHeader, voc_document

    by_item: dict[int, list[tuple[Any, ...]]] = {}
    for row in boxes.select("item_id", "class_id", "x1", "y1", "x2", "y2", "extra").iter_rows():
        by_item.setdefault(row[0], []).append(row[1:])
    resized = convert is not None and bool(convert.max_side)
    datas: list[bytes] = []
    for n, (item, dd, _, meta, nw, nh, iw, ih, mode, dname) in enumerate(
        members.select(
            "item_id",
            "dst_dir",
            "dst_stem",
            "meta",
            "_nw",
            "_nh",
            "img_w",
            "img_h",
            "mode",
            "dst_name",
        ).iter_rows()
    ):
        sx = nw / iw if resized and iw else 1.0
        sy = nh / ih if resized and ih else 1.0
        vb = [
            VocBox(classes[c], x1 * sx, y1 * sy, x2 * sx, y2 * sy, extra)
            for c, x1, y1, x2, y2, extra in by_item.get(item, [])
        ]
        folder = dd.rsplit("/", 1)[-1]
        header = VocHeader(
            display_path(unesc(folder)),
            display_path(unesc(dname)),
            display_path(unesc(dd + "/" + dname)),
            int(nw or 0),
            int(nh or 0),
            _DEPTH.get(mode or "RGB", 3),
        )
        datas.append(voc_document(None if resized else meta, vb, header))
        if n % 512 == 0:
            rep.check()
    return members.with_columns(
        pl.lit(2).alias("ord"),
        (pl.col("ldst_dir") + "/" + pl.col("dst_stem") + ".xml").alias("dst"),
        pl.lit(".xml").alias("dst_ext"),
        pl.Series("data", datas, dtype=pl.Binary),
    )


def _conflicts(acts: pl.DataFrame, survey: _Survey, op: str, follow_symlinks: bool) -> pl.DataFrame:
    """Mark each action's conflict (the first that applies)."""
    import polars as pl

    moving = op in ("move", "rename", "delete") or bool(acts.height and (acts["action"] == "reencode").any())
    dst_dirs = acts["dst_dir"].unique().to_list()
    survey.look_frame(
        acts.select(
            pl.col("dst_dir").alias("dir"),
            pl.col("dst").str.strip_prefix(pl.col("dst_dir") + "/").alias("name"),
        )
    )
    kind = survey.frame().rename({"_d": "dst_dir", "_n": "_dn", "_kind": "_dkind"})
    writable = {d: _writable(unesc(d)) for d in dst_dirs}
    src_dirs = acts.select(pl.col("src_dir").drop_nulls().unique())["src_dir"].to_list() if moving else []
    src_writable = {d: _writable(unesc(d)) for d in src_dirs}
    acts = acts.with_columns(pl.col("dst").str.strip_prefix(pl.col("dst_dir") + "/").alias("_dn"))
    acts = acts.join(kind, on=["dst_dir", "_dn"], how="left", maintain_order="left")
    sources = acts["src"].drop_nulls() if moving else pl.Series("src", [], dtype=pl.String)
    long_dirs = [
        d for d in dst_dirs if any(len(c.encode("utf-8", "surrogatepass")) > NAME_MAX for c in d.split("/"))
    ]
    long_name = (pl.col("dst").str.len_bytes() - pl.col("dst_dir").str.len_bytes() - 1 > NAME_MAX) | pl.col(
        "dst_dir"
    ).is_in(long_dirs)
    same = pl.col("src").is_not_null() & (pl.col("src") == pl.col("dst"))
    exists = pl.col("_dkind").is_not_null() & ~same.fill_null(False)
    src_ok = pl.col("_kind").is_in(["file", "symlink_in"]) | (
        (pl.col("_kind") == "symlink_out") & pl.lit(follow_symlinks)
    )
    is_file_action = pl.col("action").is_in(["copy", "move", "convert", "paint", "reencode"])
    label_shared = (
        pl.lit(moving)
        & (pl.col("role") == "label")
        & pl.col("src").is_not_null()
        & ~pl.col("src").is_first_distinct()
    )
    conflict = (
        pl.when(same & (pl.col("action") != "reencode"))
        .then(pl.lit("unchanged"))
        .when(is_file_action & pl.col("_kind").is_null() | (pl.col("status") == "missing"))
        .then(pl.lit("source_missing"))
        .when(is_file_action & (pl.col("_kind") == "symlink_out") & ~pl.lit(follow_symlinks))
        .then(pl.lit("symlink_outside"))
        .when(is_file_action & ~src_ok)
        .then(pl.lit("source_missing"))
        .when(pl.col("dst_dir").replace_strict(writable, default=True, return_dtype=pl.Boolean).not_())
        .then(pl.lit("read_only_target"))
        .when(
            pl.lit(moving)
            & pl.col("src").is_not_null()
            & pl.col("src_dir").replace_strict(src_writable, default=True, return_dtype=pl.Boolean).not_()
        )
        .then(pl.lit("read_only_source"))
        .when((pl.col("dst").str.len_bytes() > PATH_MAX) | long_name)
        .then(pl.lit("name_too_long"))
        .when(label_shared)
        .then(pl.lit("shared_label"))
        .when((pl.col("role") == "classes") & exists)
        .then(pl.lit("classes_same"))
        .when(exists & pl.col("dst").is_in(sources.implode()))
        .then(pl.lit("target_is_source"))
        .when(exists)
        .then(pl.lit("target_exists"))
        .when(~pl.col("dst").is_first_distinct())
        .then(pl.lit("duplicate_target"))
        .otherwise(None)
    )
    acts = acts.with_columns(conflict.alias("conflict"))
    same_classes = acts.filter(pl.col("conflict") == "classes_same")
    if same_classes.height:
        keep = []
        for dst, data in same_classes.select("dst", "data").iter_rows():
            try:
                with open(unesc(dst), "rb") as fh:
                    keep.append(fh.read() != data)
            except OSError:
                keep.append(True)
        differ = same_classes.with_columns(pl.Series("_differ", keep)).filter("_differ")["dst"]
        acts = acts.with_columns(
            pl.when(pl.col("conflict") == "classes_same")
            .then(
                pl.when(pl.col("dst").is_in(differ.implode()))
                .then(pl.lit("classes_differ"))
                .otherwise(pl.lit("identical"))
            )
            .otherwise(pl.col("conflict"))
            .alias("conflict")
        )
    return acts.drop("_dn", "_dkind")


def _group_any(g: Any, flag: Any) -> Any:
    """Per row: does any row of its group (``g`` sorted) have ``flag``? (numpy, no window)."""
    import numpy as np

    g = np.asarray(g)
    flag = np.asarray(flag, dtype=np.int64)
    if len(g) == 0:
        return np.zeros(0, dtype=bool)
    starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
    sums = np.add.reduceat(flag, starts)
    sizes = np.diff(np.append(starts, len(g)))
    return np.repeat(sums > 0, sizes)


def _apply_policy(acts: pl.DataFrame, survey: _Survey, policy: str) -> tuple[pl.DataFrame, dict[str, str]]:
    """Decide every conflict by the policy.

    The conflicts of one member decide for the whole group (an image and its label
    files): ``skip`` skips the group; ``rename`` gives a group whose conflicts are all
    name conflicts a free stem; ``overwrite`` runs a group whose conflicts are all
    ``target_exists``, keeping the old targets in the trash. Other groups are skipped.
    Adds ``_keep`` (run it despite a conflict), ``_overwrite``, ``_skip`` and ``_note``.
    ``acts`` is sorted by group.
    """
    import polars as pl

    resolved = {k: ("fail" if policy == "fail" else "skip") for k in CONFLICTS}
    quiet = pl.col("conflict").is_in(["unchanged", "identical"])
    acts = acts.with_columns(
        pl.when(quiet).then(pl.lit(None, pl.String)).otherwise(pl.col("conflict")).alias("conflict"),
        pl.when(quiet).then(pl.col("conflict")).otherwise(pl.lit(None, pl.String)).alias("_note"),
        pl.lit(False).alias("_keep"),
        pl.lit(False).alias("_overwrite"),
    )
    if policy == "fail":
        return acts.with_columns(pl.col("conflict").is_not_null().alias("_skip")), resolved
    conf = pl.col("conflict")
    g = acts["g"].to_numpy()

    def group_any(expr: pl.Expr) -> pl.Series:
        return pl.Series(_group_any(g, acts.select(expr.fill_null(False)).to_series().to_numpy()))

    has_conf = group_any(conf.is_not_null())
    if policy == "overwrite":
        resolved["target_exists"] = "overwrite"
        resolved["classes_differ"] = "overwrite"
        other = group_any(conf.is_not_null() & ~conf.is_in(["target_exists", "classes_differ"]))
        ok = pl.lit(has_conf & ~other)
        acts = acts.with_columns(
            (ok & conf.is_in(["target_exists", "classes_differ"]).fill_null(False)).alias("_overwrite"),
            ok.alias("_keep"),
        )
    elif policy == "rename":
        for k in NAME_CONFLICTS:
            resolved[k] = "rename"
        other = group_any(conf.is_not_null() & ~conf.is_in(NAME_CONFLICTS))
        ok = pl.lit(has_conf & ~other) & (pl.col("role") != "classes")
        acts = _rename_groups(acts.with_columns(ok.alias("_fix")), survey).drop("_fix")
    group_skip = pl.lit(has_conf) & ~pl.col("_keep")
    acts = acts.with_columns(
        pl.when(group_skip & pl.col("conflict").is_null() & pl.col("_note").is_null())
        .then(pl.lit("skipped with its image"))
        .otherwise(pl.col("_note"))
        .alias("_note"),
        group_skip.alias("_skip"),
    )
    return acts, resolved


def _rename_groups(acts: pl.DataFrame, survey: _Survey) -> pl.DataFrame:
    """Give each group marked ``_fix`` a free stem ``STEM_N`` (the image and its labels alike)."""
    import polars as pl

    todo = acts.filter(pl.col("_fix"))
    if todo.height == 0:
        return acts
    taken = set(acts.filter(~pl.col("_fix") & pl.col("conflict").is_null())["dst"].to_list())
    by_g: dict[int, list[tuple[int, str, str, str]]] = {}
    for g, o, d, st, ext in todo.select("g", "ord", "dst_dir", "dst_stem", "dst_ext").iter_rows():
        by_g.setdefault(g, []).append((o, d, st, ext or ""))
    new: list[tuple[int, int, str, str]] = []
    for g, members in by_g.items():
        for n in range(1, RENAME_TRIES + 1):
            cands = []
            for o, d, stem, ext in members:
                suffix = f"_{n}"
                while len(unesc(f"{stem}{suffix}{ext}")) > NAME_MAX and stem:
                    stem = stem[:-1]
                cands.append((o, d, f"{stem}{suffix}", f"{stem}{suffix}{ext}"))
            wanted: dict[str, set[str]] = {}
            for _, d, _, nm in cands:
                wanted.setdefault(d, set()).add(nm)
            survey.look(wanted)
            if all(f"{d}/{nm}" not in taken and survey.kind(d, nm) is None for _, d, _, nm in cands):
                for o, d, st, nm in cands:
                    new.append((g, o, f"{d}/{nm}", st))
                    taken.add(f"{d}/{nm}")
                break
    fixed = pl.DataFrame(
        new, schema={"g": pl.Int64, "ord": pl.Int64, "_new": pl.String, "_stem": pl.String}, orient="row"
    )
    acts = acts.join(fixed, on=["g", "ord"], how="left", maintain_order="left")
    renamed = pl.lit(_group_any(acts["g"].to_numpy(), acts["_new"].is_not_null().to_numpy()))
    return acts.with_columns(
        pl.col("_new").fill_null(pl.col("dst")).alias("dst"),
        pl.col("_stem").fill_null(pl.col("dst_stem")).alias("dst_stem"),
        (pl.col("_keep") | renamed).alias("_keep"),
        pl.when(renamed & pl.col("conflict").is_null())
        .then(pl.lit("renamed"))
        .otherwise(pl.col("_note"))
        .alias("_note"),
    ).drop("_new", "_stem")


def _dst_pools(acts: pl.DataFrame, pool_roots: dict[int, tuple[str, bool]]) -> pl.DataFrame:
    """Which pool (if any) each image target lands in, and its path inside it."""
    import polars as pl

    acts = acts.with_columns(pl.lit(None, pl.Int64).alias("dst_pool"), pl.lit(None, pl.String).alias("_drel"))
    for pid, (root, _) in sorted(pool_roots.items(), key=lambda kv: len(kv[1][0])):
        prefix = root.rstrip("/") + "/"
        inside = pl.col("role").is_in(["image", "label"]) & pl.col("dst").str.starts_with(prefix)
        acts = acts.with_columns(
            pl.when(inside).then(pl.lit(pid, pl.Int64)).otherwise(pl.col("dst_pool")).alias("dst_pool"),
            pl.when(inside)
            .then(pl.col("dst").str.slice(len(prefix)))
            .otherwise(pl.col("_drel"))
            .alias("_drel"),
        )
    return acts


def _space_check(acts: pl.DataFrame, op: str) -> str | None:
    """A message when the bytes to write exceed the free space of a target file system."""
    import polars as pl

    if op in ("rename", "delete") or acts.height == 0:
        return None
    writes = acts.filter(pl.col("action").is_in(["copy", "convert", "move", "write", "paint", "reencode"]))
    by_dir = writes.group_by("dst_dir").agg(pl.col("size").fill_null(0).sum(), pl.col("src").first())
    need: dict[int, int] = {}
    free: dict[int, tuple[int, str]] = {}
    for d, size, src in by_dir.iter_rows():
        base = _nearest_existing(unesc(d))
        try:
            st = os.stat(base)
            vfs = os.statvfs(base)
        except OSError:
            continue
        if op == "move" and src is not None:
            try:
                if os.stat(os.path.dirname(unesc(src))).st_dev == st.st_dev:
                    continue
            except OSError:
                pass
        need[st.st_dev] = need.get(st.st_dev, 0) + int(size)
        free[st.st_dev] = (vfs.f_bavail * vfs.f_frsize, display_path(base))
    for dev, n in need.items():
        avail, where = free[dev]
        if n > avail:
            return f"{n / 1e6:.1f} MB to write but only {avail / 1e6:.1f} MB free on {where}"
    return None


def _to_journal(rows: pl.DataFrame, job_id: int) -> pl.DataFrame:
    """The ``job_actions`` rows of a plan: strings back to path bytes."""
    import polars as pl

    cols = {
        "parent": pl.Int64,
        "file_id": pl.Int64,
        "item_id": pl.Int64,
        "src": pl.String,
        "tmp": pl.String,
        "bak": pl.String,
        "data": pl.Binary,
        "conflict": pl.String,
        "size": pl.Int64,
        "dst_pool": pl.Int64,
        "_drel": pl.String,
        "_note": pl.String,
        "_esc": pl.Boolean,
    }
    rows = rows.with_columns([pl.lit(None, t).alias(c) for c, t in cols.items() if c not in rows.columns])
    esc_rows = rows["_esc"].fill_null(False)

    def to_bytes(name: str) -> pl.Series:
        s = rows[name]
        plain = s.cast(pl.Binary)
        if not esc_rows.any():
            return plain
        fixed = [
            unesc(v) if (e and v is not None) else None
            for v, e in zip(s.to_list(), esc_rows.to_list(), strict=True)
        ]
        return pl.Series(name, fixed, dtype=pl.Binary).fill_null(plain)

    drel = rows["_drel"]
    if not esc_rows.any():
        # no escaped paths: the relative paths are text as they are (no loop over the rows)
        drel_text = drel.cast(pl.String).alias("dst_rel")
        drel_raw_s = pl.repeat(None, rows.height, dtype=pl.Binary, eager=True).alias("dst_rel_raw")
        return _journal_frame(rows, job_id, to_bytes, drel_text, drel_raw_s)
    drel_raw = (
        [
            (unesc(v) if e and v is not None and any(0xF780 <= ord(c) <= 0xF7FF for c in v) else None)
            for v, e in zip(drel.to_list(), esc_rows.to_list(), strict=True)
        ]
        if esc_rows.any()
        else [None] * rows.height
    )
    drel_raw_s = pl.Series("dst_rel_raw", drel_raw, dtype=pl.Binary)
    drel_text = pl.Series(
        "dst_rel",
        [
            d.decode("utf-8", "backslashreplace") if d is not None else v
            for v, d in zip(drel.to_list(), drel_raw, strict=True)
        ],
        dtype=pl.String,
    )
    return _journal_frame(rows, job_id, to_bytes, drel_text, drel_raw_s)


def _journal_frame(
    rows: pl.DataFrame,
    job_id: int,
    to_bytes: Callable[[str], pl.Series],
    drel_text: pl.Series,
    drel_raw_s: pl.Series,
) -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(
        {
            "job_id": pl.repeat(job_id, rows.height, dtype=pl.Int64, eager=True),
            "seq": rows["seq"].cast(pl.Int64),
            "action": rows["action"],
            "role": rows["role"],
            "parent": rows["parent"].cast(pl.Int64),
            "file_id": rows["file_id"].cast(pl.Int64),
            "item_id": rows["item_id"].cast(pl.Int64),
            "src": to_bytes("src"),
            "dst": to_bytes("dst"),
            "tmp": to_bytes("tmp"),
            "bak": to_bytes("bak"),
            "data": rows["data"],
            "state": rows["state"],
            "conflict": rows["conflict"],
            "size": rows["size"].cast(pl.Int64),
            "dst_pool": rows["dst_pool"].cast(pl.Int64),
            "dst_rel": drel_text,
            "dst_rel_raw": drel_raw_s,
            "error": rows["_note"],
        }
    )


# -- running ------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Act:
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


_ACT_COLS = (
    "seq, action, role, parent, file_id, src, dst, tmp, bak, data, state, conflict, size, hash, "
    "dst_pool, dst_rel, dst_rel_raw, prev, new_file_id, error"
)
_ACT_NAMES = [c.strip() for c in _ACT_COLS.split(",")]


@dataclass(slots=True)
class _Out:
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
        """The fields in order (``_Out(*row)`` makes it again)."""
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


class _ActionError(Exception):
    """One action cannot be done; the job goes on with the others."""


@dataclass
class _Ctx:
    job_id: int
    op: str
    policy: str
    follow_symlinks: bool
    convert: ConvertOptions | None
    trash: bytes
    pool_roots: list[tuple[bytes, bytes]]
    durable: bool = False


def _lexists(p: bytes) -> bool:
    try:
        os.lstat(p)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return False
        raise
    return True


def _hash_path(p: bytes) -> tuple[int, str]:
    """(bytes read, their SHA-256) of a file, as :func:`tuiops.fsutil.sha256_file` hashes it."""
    with open(p, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
        return fh.tell(), digest


def _fsync_dir(folder: bytes) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _rename_noreplace(src: bytes, dst: bytes) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (FileExistsError): atomically where
    the kernel and file system can (``renameat2``), else check then rename."""
    if renameat2(src, dst, RENAME_NOREPLACE):
        return
    if _lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)


def _put(path: bytes, a: _Act, ctx: _Ctx) -> tuple[_Out | None, bytes | None]:
    """Rename ``path`` to the action's target without clobbering (see :func:`_name_new`)."""
    return _name_new(lambda: _rename_noreplace(path, a.dst), a, ctx)


def _name_new(name_it: Callable[[], None], a: _Act, ctx: _Ctx) -> tuple[_Out | None, bytes | None]:
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


def _open_src(src: bytes, ctx: _Ctx) -> int:
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
        raise _ActionError(
            f"{display_path(src)} is a symlink out of its pool; pass --follow-symlinks to copy it"
        )
    return os.open(src, os.O_RDONLY | os.O_CLOEXEC)


_O_TMP = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_O_SRC = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_tmp(tmp: bytes) -> int:
    """Create a temporary file (a leftover of a killed run is replaced)."""
    try:
        return os.open(tmp, _O_TMP, 0o666)
    except FileExistsError:
        os.unlink(tmp)
        return os.open(tmp, _O_TMP, 0o666)


def _write_new(
    tmp: bytes, produce: Callable[[int], tuple[int, str | None]], durable: bool
) -> tuple[int, str | None]:
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
_O_ANON = (os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC) if hasattr(os, "O_TMPFILE") else 0
_ANON_OK = bool(_O_ANON) and os.path.isdir("/proc/self/fd")
_NO_ANON: set[bytes] = set()
_ROOT_FD: list[int] = []
_ROOT_LOCK = threading.Lock()


def _anon_file(folder: bytes) -> int | None:
    """An unnamed new file in ``folder``, or None where the file system cannot make one."""
    if not _ANON_OK or folder in _NO_ANON:
        return None
    try:
        return os.open(folder, _O_ANON, 0o666)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOSYS):
            _NO_ANON.add(folder)
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


def _link_fd(fd: int, dst: bytes) -> None:
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


def _link_put(fd: int, a: _Act, ctx: _Ctx) -> tuple[_Out | None, bytes | None]:
    """Link the unnamed file ``fd`` to the action's target without clobbering (see :func:`_name_new`)."""
    return _name_new(lambda: _link_fd(fd, a.dst), a, ctx)


def _write_placed(a: _Act, ctx: _Ctx, produce: Callable[[int], tuple[int, str | None]]) -> _Out:
    """Write the action's new file with ``produce`` and put it at its target, whole or not at all.

    An unnamed file linked into place where the file system allows, else a temporary name
    renamed into place. With ``durable`` the data is synced before it gets its name, and
    the folder after. A ``produce`` that gives no SHA-256 (a copy made by the kernel) gets
    the placed file's identity (:func:`_identity`) recorded instead.
    """
    folder = a.dst.rpartition(b"/")[0] or b"/"
    fd = _anon_file(folder)
    want_mtime = a.dst_pool is not None and a.file_id is not None
    st: os.stat_result | None = None
    if fd is None:
        tmp = _tmp(a, ctx)
        size, digest = _write_new(tmp, produce, ctx.durable)
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
        digest = _identity(st)
    if ctx.durable:
        _fsync_dir(folder)
    _fault("placed")
    info = {"mtime_ns": st.st_mtime_ns} if want_mtime and st is not None else None
    return _Out(a.seq, "done", size, digest, bak=bak, info=info)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    n = os.write(fd, data)
    if n == len(data):
        return
    view = memoryview(data)[n:]
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _copy_fd(src_fd: int, dst_fd: int, size_hint: int = -1) -> tuple[int, str]:
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
        _write_all(dst_fd, chunk)
        n += len(chunk)
        if n == size_hint and len(chunk) < want:
            break  # the expected size and a short read: the end (a grown file fills the read)
        want = CHUNK if len(chunk) == want else max(4096, want - len(chunk))
    return n, h.hexdigest()


def _copy_range(src_fd: int, dst_fd: int, size_hint: int = -1) -> tuple[int, None]:
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
        _write_all(dst_fd, chunk)
        n += len(chunk)
    return n


def _identity(st: os.stat_result) -> str:
    """What tells a placed copy unchanged: inode, size, modification and change time.

    Any write changes the modification time, and the change time cannot be set back by a
    program (``utime`` moves it too), so an equal identity means the copy is as placed.
    """
    return f"stat:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _unchanged(path: bytes, recorded: str) -> bool:
    """Whether the file at ``path`` is the one recorded (an identity, or its SHA-256)."""
    if recorded.startswith("stat:"):
        return _identity(os.lstat(path)) == recorded
    return _hash_path(path)[1] == recorded


def _copy_file(a: _Act, ctx: _Ctx) -> _Out:
    """A plain copy: source → new file (copied by the kernel) → put at the target whole."""
    assert a.src is not None
    try:
        src_fd = os.open(a.src, _O_SRC)
    except FileNotFoundError:
        return _missing(a, ctx)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        src_fd = _open_src(a.src, ctx)
    try:
        hint = a.size if a.size is not None and a.size >= 0 else os.fstat(src_fd).st_size
        return _write_placed(a, ctx, lambda fd: _copy_range(src_fd, fd, hint))
    finally:
        os.close(src_fd)


def _produce(a: _Act, ctx: _Ctx) -> tuple[Callable[[int], tuple[int, str]], dict[str, Any] | None]:
    """What to write for a copy, convert or write action."""
    if a.action == "write":
        data = a.data or b""

        def write(fd: int) -> tuple[int, str]:
            _write_all(fd, data)
            return len(data), hashlib.sha256(data).hexdigest()

        return write, None
    assert a.src is not None
    if a.action == "paint":
        data = _paint(a, ctx)

        def write_paint(fd: int) -> tuple[int, str]:
            _write_all(fd, data)
            return len(data), hashlib.sha256(data).hexdigest()

        return write_paint, None
    if a.action == "convert" and a.role == "image":
        assert ctx.convert is not None
        data, info = _encode(a.src, ctx.convert, ctx)

        def write_enc(fd: int) -> tuple[int, str]:
            _write_all(fd, data)
            return len(data), hashlib.sha256(data).hexdigest()

        return write_enc, info
    src_fd = _open_src(a.src, ctx)

    def copy(fd: int) -> tuple[int, str]:
        try:
            return _copy_fd(src_fd, fd)
        finally:
            os.close(src_fd)

    return copy, None


def _encode(src: bytes, opts: ConvertOptions, ctx: _Ctx) -> tuple[bytes, dict[str, Any]]:
    """Re-encode an image with Pillow (format, quality, largest side, metadata)."""
    import io

    from PIL import Image, UnidentifiedImageError

    fd = _open_src(src, ctx)
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read()
    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            exif = im.info.get("exif")
            icc = im.info.get("icc_profile")
            out = im
            if opts.max_side and max(im.size) > opts.max_side:
                s = opts.max_side / max(im.size)
                size = (max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s)))
                out = im.resize(size, Image.Resampling.LANCZOS)
            out = _mode_for(out, opts.format)
            buf = io.BytesIO()
            kwargs: dict[str, Any] = {}
            if opts.format in ("jpeg", "webp"):
                kwargs["quality"] = opts.quality
            if not opts.strip_metadata:
                if exif:
                    kwargs["exif"] = exif
                if icc:
                    kwargs["icc_profile"] = icc
            out.save(buf, format=opts.format.upper(), **kwargs)
            info = {
                "width": out.size[0],
                "height": out.size[1],
                "format": opts.format.upper(),
                "mode": out.mode,
            }
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _ActionError(f"cannot convert {display_path(src)}: {_decode_error(exc)}") from exc
    return buf.getvalue(), info


def _decode_error(exc: BaseException) -> str:
    """Why Pillow could not decode an image, in words."""
    from PIL import Image

    if isinstance(exc, Image.DecompressionBombError):
        return f"not decoded, a decompression bomb ({exc})"
    return str(exc)


def _paint(a: _Act, ctx: _Ctx) -> bytes:
    """Draw an action's boxes on its source image (see :mod:`tuiops.ops.paint`)."""
    from tuiops.ops.paint import render

    assert a.src is not None
    fd = _open_src(a.src, ctx)
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read()
    from PIL import Image

    try:
        return render(raw, a.data or b"{}")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _ActionError(f"cannot paint {display_path(a.src)}: {_decode_error(exc)}") from exc


def _mode_for(im: Any, fmt: str) -> Any:
    from PIL import Image

    if fmt == "jpeg":
        if im.mode in ("RGB", "L", "CMYK"):
            return im
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            bg = Image.new("RGB", rgba.size, (255, 255, 255))
            bg.paste(rgba, mask=rgba.getchannel("A"))
            return bg
        return im.convert("RGB")
    if fmt == "webp" and im.mode not in ("RGB", "RGBA"):
        return im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
    if fmt == "png" and im.mode == "CMYK":
        return im.convert("RGB")
    return im


def _bak_path(a: _Act, ctx: _Ctx) -> bytes:
    return a.bak or os.path.join(ctx.trash, b"overwritten", str(a.seq).encode())


def _clear_target(a: _Act, ctx: _Ctx) -> tuple[_Out | None, bytes | None]:
    """Make room at the target by the policy; returns (an outcome that ends the action, backup)."""
    bak = a.bak
    if not _lexists(a.dst):
        return None, bak
    if a.bak is not None or ctx.policy == "overwrite":
        bak = _bak_path(a, ctx)
        if _lexists(bak):
            raise _ActionError(f"{display_path(a.dst)} exists, and so does its backup {display_path(bak)}")
        os.makedirs(os.path.dirname(bak), exist_ok=True)
        os.rename(a.dst, bak)
        _fault("placed")
        return None, bak
    if ctx.policy == "skip":
        return _Out(a.seq, "skipped", error="the target appeared after planning"), bak
    raise _ActionError(f"{display_path(a.dst)} appeared after planning; re-plan with --on-conflict")


def _place(a: _Act, ctx: _Ctx) -> _Out:
    if _lexists(a.dst) and a.bak is None and ctx.policy not in ("overwrite",):
        end, _ = _clear_target(a, ctx)
        if end is not None:
            return end
    produce, info = _produce(a, ctx)
    out = _write_placed(a, ctx, produce)
    if out.state == "done" and info:
        out.info = {**info, **(out.info or {})}
    return out


def _move(a: _Act, ctx: _Ctx) -> _Out:
    """One rename within a file system; copy → verify → delete across file systems."""
    assert a.src is not None
    bak = a.bak
    try:
        end, bak = _put(a.src, a, ctx)
    except FileNotFoundError:
        if not _lexists(a.src):
            return _missing(a, ctx)
        raise
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    else:
        if end is not None:
            return end
        _fault("placed")
        st = os.lstat(a.dst)
        return _Out(a.seq, "done", st.st_size, None, bak=bak, info={"mtime_ns": st.st_mtime_ns})
    if _lexists(a.dst):
        end, bak = _clear_target(a, ctx)
        if end is not None:
            return end
    size, digest = _move_across(a.src, a.dst, _tmp(a, ctx), ctx)
    return _Out(a.seq, "done", size, digest, bak=bak)


def _move_across(src: bytes, dst: bytes, tmp: bytes, ctx: _Ctx) -> tuple[int, str]:
    """Copy → fsync → verify → rename → delete, for a move to another file system."""
    import stat as st_mod

    st = os.lstat(src)
    if st_mod.S_ISLNK(st.st_mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(os.readlink(src), tmp)
        os.rename(tmp, dst)
        _fsync_dir(os.path.dirname(dst))
        _fault("placed")
        os.unlink(src)
        return 0, ""
    src_fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)

    def copy(fd: int) -> tuple[int, str]:
        try:
            return _copy_fd(src_fd, fd)
        finally:
            os.close(src_fd)

    size, digest = _write_new(tmp, copy, True)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    with contextlib.suppress(OSError):
        os.chmod(tmp, st_mod.S_IMODE(st.st_mode))
    vsize, vdigest = _hash_path(tmp)
    if (vsize, vdigest) != (size, digest) or size != st.st_size:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _ActionError(
            f"the copy of {display_path(src)} did not verify (size or checksum differ); source kept"
        )
    os.rename(tmp, dst)
    _fsync_dir(os.path.dirname(dst))
    _fault("placed")
    os.unlink(src)
    return size, digest


def _same_file(a: bytes, b: bytes) -> bool:
    """Are two paths the same file, or files with the same bytes?"""
    try:
        return os.path.samefile(a, b) or _hash_path(a) == _hash_path(b)
    except OSError:
        return False


def _copy_synced(src: bytes, dst: bytes) -> None:
    """Copy ``src`` to ``dst`` through a temporary name, synced before the rename."""
    src_fd = os.open(src, _O_SRC)
    tmp = dst + b".part"

    def copy(fd: int) -> tuple[int, str]:
        try:
            return _copy_fd(src_fd, fd)
        finally:
            os.close(src_fd)

    _write_new(tmp, copy, True)
    os.rename(tmp, dst)
    _fsync_dir(os.path.dirname(dst))


def _backup(src: bytes, bak: bytes) -> None:
    """Keep the original ``src`` at ``bak``: a hard link, or a synced copy across file systems."""
    for attempt in range(2):
        try:
            os.link(src, bak, follow_symlinks=False)
            return
        except FileExistsError:
            if _same_file(src, bak):
                return
            raise _ActionError(f"the backup {display_path(bak)} exists and holds another file") from None
        except FileNotFoundError:
            if attempt or not _lexists(src):
                raise
            os.makedirs(os.path.dirname(bak), exist_ok=True)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP):
                raise
            _copy_synced(src, bak)
            return


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


def _missing(a: _Act, ctx: _Ctx) -> _Out:
    msg = f"the source {display_path(a.src or b'')} is gone"
    return _Out(a.seq, "skipped" if ctx.policy == "skip" else "failed", error=msg)


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


# -- worker processes ----------------------------------------------------------------------------------
_WORKER_GONE_SECONDS = 10.0


#: In a worker process: the job's groups of actions, as they were when it was forked.
_GROUPS: list[list[_Act]] = []


def _worker_init(parent: int, groups: list[list[_Act]], mask: set[signal.Signals]) -> None:
    """Set up a worker process: it dies with ``parent``; Ctrl+C is the parent's to handle.

    ``groups`` come with the fork (never pickled): a task names a range of them. Signals
    are blocked until the parent's handlers are gone, then ``mask`` is restored.
    """
    global _PARENT, _GROUPS
    _PARENT = parent
    _GROUPS = groups
    # the parent's signal handlers (a terminal app's resize or suspend handlers, an event
    # loop's wake-up pipe) are not this process's business
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        with contextlib.suppress(ValueError, OSError, RuntimeError):
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_DFL)
    # the objects inherited from the parent are left out of this process's garbage
    # collections: a collection would touch (and so copy) every page of them
    gc.freeze()
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _run_range(lo: int, hi: int, ctx: _Ctx, undo: bool) -> tuple[str, int, list[tuple[Any, ...]]]:
    """In a worker process: run the groups ``lo``..``hi`` of the job.

    Returns the outcomes that change only their journal row (:func:`_plain`) packed as one
    JSON array of ``[seq, size, hash]`` with their count, and the others as tuples
    (:meth:`_Out.row`): the job's process journals the first without a step per action.
    """
    groups = _GROUPS[lo:hi]
    outs = _run_groups(groups, ctx, undo)
    plain: list[tuple[int, int | None, str | None]] = []
    rest: list[tuple[Any, ...]] = []
    acts = (a for g in groups for a in g)
    for a, o in zip(acts, outs, strict=True):
        if a.seq == o.seq and _plain(a, o, ctx.op, undo):
            plain.append((o.seq, o.size, o.hash))
        else:
            rest.append(o.row())
    return (json.dumps(plain) if plain else ""), len(plain), rest


def _process_count(workers: int, n: int) -> int:
    """How many worker processes run a job of ``n`` file actions (0: threads of this process).

    One per core, at most ``workers``, where the system has Linux (``fork`` and a death
    signal tied to the parent) and more than one core; a small job is not worth starting
    them.
    """
    if n < PROCESS_MIN or workers < 2 or not sys.platform.startswith("linux"):
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    procs = min(workers, cores)
    return procs if procs > 1 else 0


def _executor(
    store: Store, job_id: int, workers: int, procs: int, groups: list[list[_Act]]
) -> tuple[Executor, int]:
    """The pool that runs a job's actions, and how many worker processes it has (0: threads).

    Worker processes are started here and recorded on the job before any action runs; where
    they cannot be started (no ``fork``, a process limit) the job runs on threads.
    """

    def threads() -> tuple[Executor, int]:
        return ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="tuiops-fileops"), 0

    if not procs:
        return threads()
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    before = {p.pid for p in multiprocessing.active_children()}
    # signals wait while the workers start: one that came between a fork and the worker's
    # set-up would run a handler of this process in the worker
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        # fork: a worker starts at once and runs only the file actions of this module (no
        # store connection, no other library's threads are used in it)
        pool = ProcessPoolExecutor(
            procs,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_worker_init,
            initargs=(os.getpid(), groups, mask),
        )
        try:
            pool.submit(os.getpid).result()  # the first task starts every worker
        except (OSError, BrokenProcessPool):
            pool.shutdown(wait=True, cancel_futures=True)
            return threads()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    _record_workers(
        store, job_id, sorted(p.pid for p in multiprocessing.active_children() if p.pid not in before)
    )
    return pool, procs


def _record_workers(store: Store, job_id: int, pids: list[int]) -> None:
    with store.transaction() as conn:
        conn.execute("UPDATE jobs SET workers = ? WHERE id = ?", (json.dumps(pids) if pids else None, job_id))


def _await_workers(job: dict[str, Any]) -> None:
    """Wait until the worker processes of a job whose process is gone have gone too.

    They are killed with it (their death signal), which takes a moment; one that is still
    there after ``_WORKER_GONE_SECONDS`` is reported, so no resume ever runs beside it.
    """
    try:
        pids = [int(p) for p in json.loads(job.get("workers") or "[]")]
    except (TypeError, ValueError):
        return
    deadline = time.monotonic() + _WORKER_GONE_SECONDS
    while True:
        left = [p for p in pids if _alive(p)]
        if not left:
            return
        if time.monotonic() > deadline:
            raise ConflictError(
                f"job {job['id']}: its worker process(es) {', '.join(map(str, left))} still run",
                hint="wait for them, or stop them",
            )
        time.sleep(0.01)


def _settle_only(a: _Act, ctx: _Ctx) -> _Out:
    try:
        out = _settle(a, ctx)
    except OSError as exc:
        return _Out(a.seq, "failed", error=disk_error(a.dst, exc).message)
    return out if out is not None else _Out(a.seq, "planned")


# -- store records that follow the files ---------------------------------------------------------------
_FILE_COLS = (
    "id",
    "pool_id",
    "relpath",
    "relpath_raw",
    "item_id",
    "keyed",
    "size",
    "mtime_ns",
    "width",
    "height",
    "format",
    "mode",
    "phash",
    "exif",
    "status",
    "error",
    "scanned",
    "checks",
)


def _row_json(row: Sequence[Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        k: ({"hex": v.hex()} if isinstance(v, bytes | memoryview) else v)
        for k, v in zip(_FILE_COLS, row, strict=True)
    }


def _row_values(d: dict[str, Any]) -> list[Any]:
    return [bytes.fromhex(v["hex"]) if isinstance(v, dict) else v for v in (d.get(k) for k in _FILE_COLS)]


def _displace(
    conn: Any, pool_id: int, rel: str, raw: bytes | None, keep_id: int | None
) -> dict[str, Any] | None:
    """Remove the record that holds (pool, relpath) already, returning it for undo."""
    row = conn.execute(
        f"SELECT {', '.join(_FILE_COLS)} FROM files WHERE pool_id = ? AND relpath = ? AND id IS NOT ?",
        (pool_id, rel, keep_id),
    ).fetchone()
    if row is None:
        return None
    conn.execute("DELETE FROM files WHERE id = ?", (row[0],))
    return _row_json(row)


def _store_forward(conn: Any, ctx: _Ctx, a: _Act, out: _Out) -> tuple[str | None, int | None]:
    """Make the files record follow a done image action; returns (prev JSON, new file id)."""
    from tuiops.store import utcnow

    if a.file_id is None:
        return None, None
    info = out.info or {}
    dst = out.dst or a.dst
    if a.action == "reencode":
        row = conn.execute(f"SELECT {', '.join(_FILE_COLS)} FROM files WHERE id = ?", (a.file_id,)).fetchone()
        if row is None:
            return None, None
        prev = {"file": _row_json(row), "full": True}
        if a.dst_pool is not None and a.dst_rel is not None:
            prev["displaced"] = _displace(conn, a.dst_pool, a.dst_rel, a.dst_rel_raw, a.file_id)
            conn.execute(
                "UPDATE files SET relpath = ?, relpath_raw = ? WHERE id = ?",
                (a.dst_rel, a.dst_rel_raw, a.file_id),
            )
        strip = bool(ctx.convert and ctx.convert.strip_metadata)
        conn.execute(
            "UPDATE files SET size = ?, mtime_ns = ?, width = coalesce(?, width), height = coalesce(?, height), "
            "format = coalesce(?, format), mode = coalesce(?, mode), phash = NULL, "
            "exif = CASE WHEN ? THEN NULL ELSE exif END, scanned = ?, checks = 1, error = NULL WHERE id = ?",
            (
                out.size,
                info.get("mtime_ns"),
                info.get("width"),
                info.get("height"),
                info.get("format"),
                info.get("mode"),
                strip,
                utcnow(),
                a.file_id,
            ),
        )
        return json.dumps(prev), None
    if ctx.op in ("move", "rename", "delete"):
        row = conn.execute(f"SELECT {', '.join(_FILE_COLS)} FROM files WHERE id = ?", (a.file_id,)).fetchone()
        if row is None:
            return None, None
        prev: dict[str, Any] = {"file": _row_json(row)}
        if ctx.op != "delete" and a.dst_pool is not None and a.dst_rel is not None and dst == a.dst:
            prev["displaced"] = _displace(conn, a.dst_pool, a.dst_rel, a.dst_rel_raw, a.file_id)
            conn.execute(
                "UPDATE files SET pool_id = ?, relpath = ?, relpath_raw = ?, mtime_ns = coalesce(?, mtime_ns) "
                "WHERE id = ?",
                (a.dst_pool, a.dst_rel, a.dst_rel_raw, info.get("mtime_ns"), a.file_id),
            )
        elif ctx.op == "delete":
            conn.execute(
                "UPDATE files SET status = 'trashed', error = ? WHERE id = ?",
                (f"in the trash: {display_path(dst)} (job {ctx.job_id})", a.file_id),
            )
        else:
            conn.execute(
                "UPDATE files SET status = 'moved', error = ? WHERE id = ?",
                (f"moved to {display_path(dst)} (job {ctx.job_id})", a.file_id),
            )
        return json.dumps(prev), None
    if ctx.op not in ("copy", "convert") or a.dst_pool is None or a.dst_rel is None or dst != a.dst:
        return None, None
    displaced = _displace(conn, a.dst_pool, a.dst_rel, a.dst_rel_raw, None)
    conv = ctx.op == "convert"
    new_id = conn.execute(
        "INSERT INTO files(pool_id, relpath, relpath_raw, item_id, keyed, size, mtime_ns, width, height, format, "
        "mode, phash, exif, status, error, scanned, checks) "
        "SELECT ?, ?, ?, item_id, keyed, ?, ?, coalesce(?, width), coalesce(?, height), coalesce(?, format), "
        "coalesce(?, mode), CASE WHEN ? THEN NULL ELSE phash END, CASE WHEN ? THEN NULL ELSE exif END, "
        "status, NULL, ?, CASE WHEN ? THEN 1 ELSE checks END FROM files WHERE id = ? RETURNING id",
        (
            a.dst_pool,
            a.dst_rel,
            a.dst_rel_raw,
            out.size,
            info.get("mtime_ns"),
            info.get("width"),
            info.get("height"),
            info.get("format"),
            info.get("mode"),
            conv,
            conv and bool(ctx.convert and ctx.convert.strip_metadata),
            utcnow(),
            conv,
            a.file_id,
        ),
    ).fetchone()
    return json.dumps({"displaced": displaced}), (int(new_id[0]) if new_id else None)


def _store_backward(conn: Any, a: _Act) -> None:
    """Put the files records back as they were before the action."""
    prev = json.loads(a.prev) if a.prev else {}
    if a.new_file_id is not None:
        conn.execute("DELETE FROM files WHERE id = ?", (a.new_file_id,))
    old = prev.get("file")
    if old and a.file_id is not None:
        # the file is back at its old place: a record made there since (a scan of another
        # file that took the name, missing now or not) describes what is no longer there
        back = dict(zip(_FILE_COLS, _row_values(old), strict=True))
        _displace(conn, back["pool_id"], back["relpath"], back["relpath_raw"], a.file_id)
    if old and a.file_id is not None and prev.get("full"):
        vals = dict(zip(_FILE_COLS, _row_values(old), strict=True))
        cols = [c for c in _FILE_COLS if c != "id"]
        conn.execute(
            f"UPDATE files SET {', '.join(f'{c} = ?' for c in cols)} WHERE id = ?",
            [vals[c] for c in cols] + [a.file_id],
        )
    elif old and a.file_id is not None:
        vals = dict(zip(_FILE_COLS, _row_values(old), strict=True))
        conn.execute(
            "UPDATE files SET pool_id = ?, relpath = ?, relpath_raw = ?, status = ?, error = ?, mtime_ns = ? "
            "WHERE id = ?",
            (
                vals["pool_id"],
                vals["relpath"],
                vals["relpath_raw"],
                vals["status"],
                vals["error"],
                vals["mtime_ns"],
                a.file_id,
            ),
        )
    displaced = prev.get("displaced")
    if displaced:
        conn.execute(
            f"INSERT OR IGNORE INTO files({', '.join(_FILE_COLS)}) VALUES ({', '.join('?' * len(_FILE_COLS))})",
            _row_values(displaced),
        )


# -- jobs -------------------------------------------------------------------------------------------------
def _alive(pid: int | None) -> bool:
    """Whether another process (not this one) that may still be running the job exists."""
    return bool(pid) and pid != os.getpid() and pid_alive(pid)


def _job_row(store: Store, job_id: int) -> dict[str, Any]:
    row = store.execute(
        "SELECT id, kind, status, params, created, started, finished, done, total, message, error, result, pid, "
        "workers FROM jobs WHERE id = ?",
        (job_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no job {job_id}", hint="list the jobs with `tuiops ops list`")
    keys = (
        "id",
        "kind",
        "status",
        "params",
        "created",
        "started",
        "finished",
        "done",
        "total",
        "message",
        "error",
        "result",
        "pid",
        "workers",
    )
    d = dict(zip(keys, row, strict=True))
    if not str(d["kind"]).startswith("fileops."):
        raise UsageError(f"job {job_id} is a {d['kind']} job, not a file operation")
    d["params"] = json.loads(d["params"]) if d["params"] else {}
    d["result"] = json.loads(d["result"]) if d["result"] else None
    if d["status"] in ("running", "undoing", "planning") and not _alive(d["pid"]):
        d["shown_status"] = "interrupted" if d["status"] != "undoing" else "undo interrupted"
    else:
        d["shown_status"] = d["status"]
    return d


def _claim(store: Store, job: dict[str, Any], status: str, total: int | None = None) -> None:
    """Mark the job as ours (compare-and-set, so two processes never run one job)."""
    if job["status"] in ("running", "undoing", "planning"):
        if _alive(job["pid"]):
            raise ConflictError(
                f"job {job['id']} is {job['status']} in process {job['pid']}",
                hint="wait for it, or stop that process",
            )
        _await_workers(job)
    from tuiops.store import utcnow

    with store.transaction() as conn:
        cur = conn.execute(
            "UPDATE jobs SET status = ?, pid = ?, started = coalesce(started, ?), finished = NULL, error = NULL, "
            "done = CASE WHEN ? IS NULL THEN done ELSE 0 END, total = coalesce(?, total) "
            "WHERE id = ? AND status = ? AND pid IS ?",
            (status, os.getpid(), utcnow(), total, total, job["id"], job["status"], job["pid"]),
        )
        if cur.rowcount != 1:
            raise ConflictError(f"job {job['id']} was taken by another process", hint="see `tuiops ops show`")


def _finish(store: Store, job_id: int, status: str, result: dict[str, Any], error: str | None) -> None:
    from tuiops.store import utcnow

    with store.transaction() as conn:
        conn.execute(
            "UPDATE jobs SET status = ?, finished = ?, result = ?, error = ?, message = NULL WHERE id = ?",
            (status, utcnow(), json.dumps(result, default=str), error, job_id),
        )


def _ctx(ws: Workspace, job: dict[str, Any]) -> _Ctx:
    p = job["params"]
    conv = ConvertOptions(**p["convert"]) if p.get("convert") else None
    roots = []
    for (root,) in ws.store.execute("SELECT root FROM pools"):
        rb = os.fsencode(root)
        roots.append((rb, os.path.realpath(rb)))
    return _Ctx(
        job_id=int(job["id"]),
        op=p["op"],
        policy=p.get("on_conflict", "fail"),
        follow_symlinks=bool(p.get("follow_symlinks")),
        convert=conv,
        durable=bool(p.get("durable")),
        trash=os.fsencode(ws.trash_dir.resolve() / f"job-{job['id']}"),
        pool_roots=roots,
    )


def _tmp(a: _Act, ctx: _Ctx) -> bytes:
    """The action's temporary name (the journal's, or the default one)."""
    return a.tmp or tmp_path(a.dst, ctx.job_id, a.seq)


def tmp_path(dst: bytes, job_id: int, seq: int) -> bytes:
    """The temporary name an action writes its target under: ``.tuiops-JOB-SEQ.part`` beside it."""
    return os.path.join(os.path.dirname(dst), b".tuiops-%d-%d.part" % (job_id, seq))


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No garbage collection while a burst of objects that live on is made: each collection
    it would set off walks every object of the process (a whole terminal app's), and none
    of these objects are garbage."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _load_actions(store: Store, job_id: int) -> list[_Act]:
    """A job's actions in order (``tmp`` NULL in the journal means the default temporary name)."""
    with _gc_paused():
        rows = store.execute(
            f"SELECT {_ACT_COLS} FROM job_actions WHERE job_id = ? ORDER BY seq", (job_id,)
        ).fetchall()
        hi = store.one("SELECT hi FROM job_marks WHERE job_id = ?", (job_id,))
        hi = -1 if hi is None else int(hi)
        acts = [_Act(*r) for r in rows]
    for a in acts:
        a.resumed = a.state == "started" or (a.state == "planned" and a.seq <= hi)
    return acts


def _acts_from_journal(rows: pl.DataFrame) -> list[_Act]:
    """The actions of a plan from the journal frame it has just written: the same as
    :func:`_load_actions` reads back for a job not yet run, without the read."""
    if not rows["seq"].is_sorted():
        rows = rows.sort("seq")
    n = rows.height
    with _gc_paused():
        cols = [rows[c].to_list() if c in rows.columns else [None] * n for c in _ACT_NAMES]
        return [_Act(*r) for r in zip(*cols, strict=True)] if n else []


def _groups(acts: list[_Act]) -> list[list[_Act]]:
    """Actions grouped by image (an image row, then the label rows whose parent it is)."""
    groups: list[list[_Act]] = []
    index: dict[int, list[_Act]] = {}
    for a in acts:
        if a.parent is not None and a.parent in index:
            index[a.parent].append(a)
            continue
        g = [a]
        groups.append(g)
        index[a.seq] = g
    return groups


def _plain(a: _Act, out: _Out, op: str, undo: bool) -> bool:
    """Whether an outcome changes only its journal row (state, size, hash): a forward
    action done where it was planned, with no store records to follow it."""
    return (
        not undo
        and out.state == "done"
        and (out.dst is None or out.dst == a.dst)
        and (out.bak is None or out.bak == a.bak)
        and (a.file_id is None or not (op in ("move", "rename", "delete") or a.dst_pool is not None))
    )


class _Journal:
    """Batched journal updates from the main thread (one transaction per flush)."""

    def __init__(self, store: Store, ctx: _Ctx, acts: dict[int, _Act], undo: bool) -> None:
        self.store = store
        self.ctx = ctx
        self.acts = acts
        self.undo = undo
        self.buffer: list[_Out] = []
        # plain outcomes packed by worker processes: JSON arrays of [seq, size, hash]
        self.packed: list[str] = []
        self.n_packed = 0
        self.last = time.monotonic()
        self.counted = 0

    def mark(self, seqs: list[int], state: str) -> None:
        """Set the state of ``seqs`` before (or after) they run.

        ``started`` is the write-ahead mark of a forward run: one update of the job's
        mark (the highest seq that may touch the disk) instead of a row per action; an
        action still ``planned`` at or below the mark is settled from the disk on resume.
        Other states are written to the rows (runs of consecutive seqs as one range).
        """
        if not seqs:
            return
        if state == "started":
            with self.store.transaction() as conn:
                conn.execute(
                    "INSERT INTO job_marks(job_id, hi) VALUES (?, ?) "
                    "ON CONFLICT(job_id) DO UPDATE SET hi = max(hi, excluded.hi)",
                    (self.ctx.job_id, max(seqs)),
                )
            for s in seqs:
                self.acts[s].state = state
            return
        if state == "planned":
            fresh = [s for s in seqs if self.acts[s].state == "started"]
            for s in fresh:
                self.acts[s].state = state
            return
        runs: list[tuple[int, int]] = []
        for s in sorted(seqs):
            if runs and s == runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], s)
            else:
                runs.append((s, s))
        with self.store.transaction() as conn:
            conn.executemany(
                "UPDATE job_actions SET state = ? WHERE job_id = ? AND seq BETWEEN ? AND ?",
                [(state, self.ctx.job_id, lo, hi) for lo, hi in runs],
            )
        for s in seqs:
            self.acts[s].state = state

    def add(self, outs: list[_Out], packed: str = "", n_packed: int = 0) -> None:
        self.buffer.extend(outs)
        if n_packed:
            self.packed.append(packed)
            self.n_packed += n_packed
        if len(self.buffer) + self.n_packed >= FLUSH_ROWS or time.monotonic() - self.last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.buffer and not self.packed:
            return
        outs, self.buffer = self.buffer, []
        packed, self.packed = self.packed, []
        done, self.n_packed = self.n_packed, 0
        rows = []
        plain: list[tuple[int, int | None, str | None]] = []
        op = self.ctx.op
        with self.store.transaction() as conn:
            for out in outs:
                a = self.acts[out.seq]
                if _plain(a, out, op, self.undo):
                    # the common case: only the outcome changes (no store records follow)
                    done += 1
                    plain.append((out.seq, out.size, out.hash))
                    a.state, a.error = "done", None
                    a.size = out.size if out.size is not None else a.size
                    a.hash = out.hash if out.hash is not None else a.hash
                    continue
                prev, new_id = a.prev, a.new_file_id
                if not self.undo and out.state == "done" and a.state != "done":
                    p, n = _store_forward(conn, self.ctx, a, out)
                    if p is not None or n is not None:
                        prev, new_id = p, n
                if self.undo and out.state == "undone" and a.state != "undone":
                    _store_backward(conn, a)
                if out.state in ("done", "undone"):
                    done += 1
                rows.append(
                    (
                        out.state,
                        out.size,
                        out.hash,
                        out.error,
                        out.dst or a.dst,
                        out.bak or a.bak,
                        prev,
                        new_id,
                        self.ctx.job_id,
                        out.seq,
                    )
                )
                a.state, a.prev, a.new_file_id, a.error = out.state, prev, new_id, out.error
                a.size = out.size if out.size is not None else a.size
                a.hash = out.hash if out.hash is not None else a.hash
                a.bak = out.bak or a.bak
            if plain or packed:
                # the batch goes in as one JSON text and is applied by one statement: SQLite
                # walks it without handing the GIL back and forth with the workers per row
                if plain:
                    packed.append(json.dumps(plain))
                text = "[" + ",".join(p[1:-1] for p in packed if len(p) > 2) + "]"
                conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS _fo_out(seq INTEGER PRIMARY KEY, size INTEGER, hash TEXT)"
                )
                conn.execute(
                    "INSERT INTO temp._fo_out SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
                    (text,),
                )
                conn.execute(
                    "UPDATE job_actions SET state = 'done', "
                    "size = coalesce((SELECT o.size FROM temp._fo_out o WHERE o.seq = job_actions.seq), size), "
                    "hash = coalesce((SELECT o.hash FROM temp._fo_out o WHERE o.seq = job_actions.seq), hash), "
                    "error = NULL WHERE job_id = ? AND seq IN (SELECT seq FROM temp._fo_out)",
                    (self.ctx.job_id,),
                )
                conn.execute("DELETE FROM temp._fo_out")
            if rows:
                conn.executemany(
                    "UPDATE job_actions SET state = ?, size = coalesce(?, size), hash = coalesce(?, hash), "
                    "error = ?, dst = ?, bak = ?, prev = ?, new_file_id = ? WHERE job_id = ? AND seq = ?",
                    rows,
                )
            self.counted += done
            conn.execute("UPDATE jobs SET done = done + ? WHERE id = ?", (done, self.ctx.job_id))
            _fault("flush")


def _execute(
    store: Store,
    ctx: _Ctx,
    acts: list[_Act],
    todo: list[_Act],
    undo: bool,
    workers: int,
    rep: Reporter,
) -> tuple[str | None, BaseException | None]:
    """Run ``todo`` (folders first, then files on the pool); returns (fatal message, exception).

    Each window of actions is marked in the store before any of them touches a file
    (forward: the job's mark moves past it; undo: its rows become ``undoing``); the next
    window is marked and queued while this one runs, so the workers never wait for the
    journal.
    """
    with _gc_paused():
        by_seq = {a.seq: a for a in acts}
        dirs = [a for a in todo if a.action == "mkdir"]
        groups = _groups([a for a in todo if a.action != "mkdir"])
    journal = _Journal(store, ctx, by_seq, undo)
    mark_as = "undoing" if undo else "started"
    # windows: consecutive runs of groups (start, end) of about WINDOW actions each
    windows: list[tuple[int, int]] = []
    start = n = 0
    for i, g in enumerate(groups):
        n += len(g)
        if n >= WINDOW:
            windows.append((start, i + 1))
            start, n = i + 1, 0
    if start < len(groups):
        windows.append((start, len(groups)))
    fatal: str | None = None
    failure: BaseException | None = None
    in_flight: list[tuple[Future[Any], list[list[_Act]]]] = []
    untouched: list[int] = []
    seen: set[Future[Any]] = set()
    per_task = max(1, WINDOW // (2 * max(1, workers) * 2))
    procs = _process_count(workers, sum(len(g) for g in groups))

    def mark(win: tuple[int, int]) -> None:
        journal.mark([a.seq for g in groups[win[0] : win[1]] for a in g], mark_as)

    def submit(pool: Executor, win: tuple[int, int]) -> list[Future[Any]]:
        futures = []
        for k in range(win[0], win[1], per_task):
            end = min(k + per_task, win[1])
            chunk = groups[k:end]
            # a worker process has the groups from its fork: it is sent their positions only
            fut = (
                pool.submit(_run_range, k, end, ctx, undo)
                if procs
                else pool.submit(_run_groups, chunk, ctx, undo)
            )
            in_flight.append((fut, chunk))
            futures.append(fut)
        return futures

    def outcomes(fut: Future[Any]) -> tuple[list[_Out], str, int]:
        """(outcomes, plain outcomes packed by a worker process, their count)."""
        res = fut.result()
        if not procs:
            return res, "", 0
        packed, n, rest = res
        return [_Out(*r) for r in rest], packed, n

    def collect(fut: Future[Any]) -> None:
        nonlocal fatal
        seen.add(fut)
        outs, packed, n = outcomes(fut)
        journal.add(outs, packed, n)
        for o in outs:
            if o.fatal and fatal is None:
                fatal = o.error
        rep.advance(len(outs) + n)

    try:
        if dirs:
            journal.mark([a.seq for a in dirs], mark_as)
            for a in dirs:
                out = _backward(a, ctx) if undo else _forward(a, ctx)
                journal.add([out])
                rep.advance(1)
                if out.state == "failed":
                    fatal = f"cannot create the folder {display_path(a.dst)}: {out.error}"
                    break
            journal.flush()
        executor, procs = (
            _executor(store, ctx.job_id, workers, procs, groups) if windows and not fatal else (None, 0)
        )
        with executor or contextlib.nullcontext() as pool:
            try:
                queued: list[Future[Any]] = []
                if windows and not fatal:
                    mark(windows[0])
                    queued = submit(pool, windows[0])
                for wi in range(len(windows)):
                    if fatal:
                        break
                    current = queued
                    if wi + 1 < len(windows):
                        # the next window is journaled and queued while this one runs: no idle workers
                        mark(windows[wi + 1])
                        queued = submit(pool, windows[wi + 1])
                    pending = set(current)
                    last = wi + 1 == len(windows)
                    while pending:
                        finished, pending = wait(pending, timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            collect(fut)
                        if not finished or last:
                            # in the last window outcomes are journaled as they come: what is
                            # left for after the last action is a few rows, not a batch
                            journal.flush()
            finally:
                for fut, chunk in in_flight:
                    if fut.cancel():
                        untouched.extend(a.seq for g in chunk for a in g)
                for fut, _ in in_flight:
                    if not fut.cancelled() and fut not in seen:
                        seen.add(fut)
                        with contextlib.suppress(Exception):
                            journal.add(*outcomes(fut))
    except BaseException as exc:
        failure = exc
        if type(exc).__name__ == "BrokenProcessPool":
            failure = TuiopsError(
                f"job {ctx.job_id}: a worker process died ({exc})",
                hint=f"`tuiops ops {'undo' if undo else 'resume'} {ctx.job_id}` finishes the job",
            )
    finally:
        try:
            journal.flush()
            untouched = [s for s in untouched if by_seq[s].state == mark_as]
            if untouched:
                journal.mark(untouched, "done" if undo else "planned")
        except BaseException as exc:
            failure = failure or exc
    return fatal, failure


def _counts(store: Store, job_id: int) -> dict[str, int]:
    return dict(
        store.execute(
            "SELECT state, count(*) FROM job_actions WHERE job_id = ? GROUP BY state", (job_id,)
        ).fetchall()
    )


def _errors(store: Store, job_id: int, limit: int = 10) -> list[dict[str, str]]:
    rows = store.execute(
        "SELECT seq, action, src, dst, error FROM job_actions WHERE job_id = ? AND error IS NOT NULL "
        "AND (state = 'failed' OR error LIKE 'not undone%') ORDER BY seq LIMIT ?",
        (job_id, limit),
    ).fetchall()
    return [
        {"seq": s, "action": a, "src": display_path(src) if src else "", "dst": display_path(dst), "error": e}
        for s, a, src, dst, e in rows
    ]


@holding_pools
def run_job(
    ws: Workspace,
    job_id: int,
    *,
    workers: int = WORKERS,
    durable: bool | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    _planned: list[_Act] | None = None,
) -> RunResult:
    """Run a planned job, or resume one that was killed, cancelled or failed part-way.

    Started actions are decided from the journal and the file system; failed ones are
    tried again; done and skipped ones are left alone. ``durable`` (default: as planned)
    syncs each file before it gets its name, its folder after, and every journal commit.
    """
    t0 = time.perf_counter()
    store = ws.store
    job = _job_row(store, job_id)
    op = job["params"].get("op", job["kind"].split(".", 1)[1])
    status = job["status"]
    if status == "refused":
        raise ConflictError(
            f"job {job_id} was refused for its conflicts; nothing to run",
            hint=f"see `tuiops ops show {job_id} --conflicts`; plan again with --on-conflict skip|rename|overwrite",
        )
    if status == "purged":
        raise UsageError(f"job {job_id} was purged; plan the operation again")
    if status in ("undoing", "undone", "undo_failed"):
        raise UsageError(
            f"job {job_id} was undone (or is being undone)",
            hint=f"finish the undo with `tuiops ops undo {job_id}`; plan the operation again to redo it",
        )
    if status == "planning":
        _replan(ws, job, progress, cancel)
        job = _job_row(store, job_id)
        status = job["status"]
    # the actions of a plan made a moment ago in this process come with it (never run yet)
    acts = _planned if _planned is not None and status == "planned" else _load_actions(store, job_id)
    todo = [a for a in acts if a.state in ("planned", "started", "failed")]
    res = RunResult(job_id=job_id, op=op, status=status, actions=len(acts))
    if not todo and status == "done":
        _fill(res, store, job_id, t0)
        return res
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    _claim(store, job, "running")
    ctx = _ctx(ws, job)
    if durable is not None:
        ctx.durable = durable
    rep = Reporter(f"ops.{op}", progress, cancel, total=len(todo), job_id=job_id)
    cancelled = False
    fatal, failure = None, None
    try:
        if ctx.durable:
            store.execute("PRAGMA synchronous=FULL")
        fatal, failure = _execute(store, ctx, acts, todo, False, workers, rep)
    except BaseException as exc:
        failure = exc
    finally:
        if ctx.durable:
            with contextlib.suppress(Exception):
                store.execute("PRAGMA synchronous=NORMAL")
        if isinstance(failure, Cancelled):
            cancelled = True
        tally = _tally(store, job_id)
        counts = tally[0]
        failed = counts.get("failed", 0)
        if cancelled:
            final, err = "cancelled", "cancelled by the user; resume it with `tuiops ops resume`"
        elif failure is not None:
            final, err = "failed", f"{type(failure).__name__}: {failure}"
        elif fatal:
            final, err = "failed", f"stopped: {fatal}"
        elif failed:
            final, err = "failed", f"{failed} action(s) failed; see `tuiops ops show {job_id} --errors`"
        else:
            final, err = "done", None
        _fill(res, store, job_id, t0, tally)
        res.status = final
        res.message = err or ""
        _finish(store, job_id, final, res.to_dict(), err)
    if failure is not None:
        if isinstance(failure, TuiopsError):
            raise failure
        raise failure
    if fatal:
        raise DiskError(
            f"job {job_id} stopped: {fatal}",
            hint=f"fix the cause, then `tuiops ops resume {job_id}` finishes it (or `tuiops ops undo {job_id}`)",
        )
    return res


#: The parameters of a job that plan() alone records: such a job can be planned again from them.
_PLAN_PARAMS = frozenset(
    {
        "op",
        "to",
        "layout",
        "name",
        "labels",
        "label_set",
        "on_conflict",
        "convert",
        "follow_symlinks",
        "durable",
        "in_place",
        "label_layout",
        "selection",
    }
)


def _replannable(params: dict[str, Any]) -> bool:
    """Whether a job can be planned again from its parameters (not a key list, not a paint
    or review export, whose plans carry what the parameters do not)."""
    return (
        params.get("op") in OPS
        and set(params) <= _PLAN_PARAMS
        and "n_keys" not in (params.get("selection") or {})
    )


def _planning_note(job_id: int, params: dict[str, Any]) -> str:
    """What to do with a job that was killed while planning (nothing was touched)."""
    if _replannable(params):
        return f"killed while planning, nothing was touched; `tuiops ops resume {job_id}` plans it again"
    return "killed while planning, nothing was touched; plan the operation again"


def _replan(
    ws: Workspace, job: dict[str, Any], progress: ProgressFn | None, cancel: CancelToken | None
) -> None:
    """Plan again a job that was killed while planning (its plan was never written)."""
    p = job["params"]
    if not _replannable(p):
        raise UsageError(
            f"job {job['id']} was {_planning_note(job['id'], p)}",
            hint=f"`tuiops ops forget {job['id']}` removes it from the list",
        )
    _claim(ws.store, job, "planning")
    conv = p.get("convert")
    plan(
        ws,
        p["op"],
        SelectionSpec(**p["selection"]),
        to=p.get("to"),
        layout=p.get("layout") or "flat",
        name=p.get("name"),
        labels=p.get("labels", "carry"),
        label_set=p.get("label_set"),
        on_conflict=p.get("on_conflict", "fail"),
        convert=ConvertOptions(**conv) if conv else None,
        follow_symlinks=bool(p.get("follow_symlinks")),
        durable=bool(p.get("durable")),
        in_place=bool(p.get("in_place")),
        label_layout=p.get("label_layout", "beside"),
        progress=progress,
        cancel=cancel,
        _job_id=int(job["id"]),
    )


def _tally(store: Store, job_id: int) -> tuple[dict[str, int], int]:
    """A job's actions per state, and the bytes of the files done (one pass over its rows)."""
    counts: dict[str, int] = {}
    done_bytes = 0
    for state, n, size in store.execute(
        "SELECT state, count(*), sum(CASE WHEN action <> 'mkdir' THEN size END) "
        "FROM job_actions WHERE job_id = ? GROUP BY state",
        (job_id,),
    ).fetchall():
        counts[state] = n
        if state == "done":
            done_bytes = int(size or 0)
    return counts, done_bytes


def _fill(
    res: RunResult, store: Store, job_id: int, t0: float, tally: tuple[dict[str, int], int] | None = None
) -> None:
    counts, res.bytes = tally or _tally(store, job_id)
    res.done = counts.get("done", 0)
    res.skipped = counts.get("skipped", 0)
    res.failed = counts.get("failed", 0)
    res.undone = counts.get("undone", 0)
    res.errors = _errors(store, job_id)
    res.elapsed = time.perf_counter() - t0


@holding_pools
def undo_job(
    ws: Workspace,
    job_id: int,
    *,
    workers: int = WORKERS,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> RunResult:
    """Reverse a finished or partial job: copies removed, moves back, overwritten files restored.

    A copy that changed since the job is left in place (reported as an error). Undo is
    journaled: after a kill, run it again to finish.
    """
    t0 = time.perf_counter()
    store = ws.store
    job = _job_row(store, job_id)
    op = job["params"].get("op", job["kind"].split(".", 1)[1])
    if job["status"] == "purged":
        raise UsageError(
            f"job {job_id} was purged: its backups in the trash are gone, so it cannot be undone"
        )
    acts = _load_actions(store, job_id)
    res = RunResult(job_id=job_id, op=op, status=job["status"], actions=len(acts))
    started = [a for a in acts if a.resumed]
    todo = [a for a in acts if a.state in ("done", "undoing")]
    if dry_run:
        _fill(res, store, job_id, t0)
        res.message = f"would undo {len(todo) + len(started)} action(s)"
        res.status = "dry run"
        return res
    if job["status"] == "undone" and not todo and not started:
        _fill(res, store, job_id, t0)
        return res
    _claim(
        store,
        job,
        "undoing",
        total=len(todo) + len(started) if job["status"] not in ("undoing", "undo_failed") else None,
    )
    ctx = _ctx(ws, job)
    failure: BaseException | None = None
    fatal = None
    try:
        if started:
            journal = _Journal(store, ctx, {a.seq: a for a in acts}, False)
            journal.add([_settle_only(a, ctx) for a in started])
            journal.flush()
            todo = [a for a in acts if a.state in ("done", "undoing")]
        files = [a for a in reversed(todo) if a.action != "mkdir"]
        dirs = [a for a in reversed(todo) if a.action == "mkdir"]
        rep = Reporter(f"ops.undo.{op}", progress, cancel, total=len(todo), job_id=job_id)
        fatal, failure = _execute(store, ctx, acts, files, True, workers, rep)
        if failure is None and not fatal and dirs:
            fatal, failure = _execute(store, ctx, acts, dirs, True, 1, rep)
    except BaseException as exc:
        failure = failure or exc
    finally:
        tally = _tally(store, job_id)
        counts = tally[0]
        left = counts.get("done", 0) + counts.get("undoing", 0) + counts.get("started", 0)
        if isinstance(failure, Cancelled):
            final, err = "undo_failed", "undo cancelled; run `tuiops ops undo` again to finish"
        elif failure is not None:
            final, err = "undo_failed", f"{type(failure).__name__}: {failure}"
        elif fatal:
            final, err = "undo_failed", f"stopped: {fatal}"
        elif left:
            final, err = (
                "undo_failed",
                f"{left} action(s) not undone; see `tuiops ops show {job_id} --errors`",
            )
        else:
            final, err = "undone", None
        _fill(res, store, job_id, t0, tally)
        res.status = final
        res.message = err or ""
        _finish(store, job_id, final, res.to_dict(), err)
    if failure is not None:
        raise failure
    if fatal:
        raise DiskError(f"undo of job {job_id} stopped: {fatal}", hint="fix the cause and run the undo again")
    return res


# -- the operations -----------------------------------------------------------------------------------
def run_op(
    ws: Workspace,
    op: str,
    selection: SelectionSpec | Selection,
    *,
    dry_run: bool = False,
    workers: int = WORKERS,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    **plan_kwargs: Any,
) -> tuple[PlanResult, RunResult | None]:
    """Plan ``op`` and, unless ``dry_run``, run it. See :func:`plan` for the options."""
    kept: list[pl.DataFrame] = []
    p = plan(ws, op, selection, dry_run=dry_run, progress=progress, cancel=cancel, _keep=kept, **plan_kwargs)
    if dry_run or p.status != "planned":
        return p, None
    acts = _acts_from_journal(kept.pop()) if kept else None
    return p, run_job(ws, p.job_id, workers=workers, progress=progress, cancel=cancel, _planned=acts)


def copy_files(
    ws: Workspace, selection: SelectionSpec | Selection, to: str | os.PathLike[str], **kw: Any
) -> tuple[PlanResult, RunResult | None]:
    """Copy the files of a selection (and their label files) into ``to``."""
    return run_op(ws, "copy", selection, to=to, **kw)


def move_files(
    ws: Workspace, selection: SelectionSpec | Selection, to: str | os.PathLike[str], **kw: Any
) -> tuple[PlanResult, RunResult | None]:
    """Move the files of a selection (and their label files) into ``to``; the store follows."""
    return run_op(ws, "move", selection, to=to, **kw)


def rename_files(
    ws: Workspace, selection: SelectionSpec | Selection, name: str, **kw: Any
) -> tuple[PlanResult, RunResult | None]:
    """Rename the files of a selection in place by the template ``name``."""
    return run_op(ws, "rename", selection, name=name, **kw)


def delete_files(
    ws: Workspace, selection: SelectionSpec | Selection, **kw: Any
) -> tuple[PlanResult, RunResult | None]:
    """Move the files of a selection to the workspace trash (undo brings them back)."""
    return run_op(ws, "delete", selection, **kw)


def convert_files(
    ws: Workspace,
    selection: SelectionSpec | Selection,
    to: str | os.PathLike[str] | None = None,
    convert: ConvertOptions | None = None,
    **kw: Any,
) -> tuple[PlanResult, RunResult | None]:
    """Re-encode the files of a selection into ``to`` (format, quality, largest side, metadata),
    or in place with ``in_place=True`` (no ``to``)."""
    return run_op(ws, "convert", selection, to=to, convert=convert or ConvertOptions(), **kw)


def convert_in_place(
    ws: Workspace, selection: SelectionSpec | Selection, convert: ConvertOptions | None = None, **kw: Any
) -> tuple[PlanResult, RunResult | None]:
    """Re-encode the files of a selection where they are (the new extension when the format
    changes); the store's records follow, originals wait in the trash for undo."""
    return run_op(ws, "convert", selection, convert=convert or ConvertOptions(), in_place=True, **kw)


# -- looking at jobs ----------------------------------------------------------------------------------------
def list_jobs(ws: Workspace, *, limit: int = 20, all_kinds: bool = False) -> list[dict[str, Any]]:
    """The latest jobs (file operations only, unless ``all_kinds``), newest first."""
    where = "" if all_kinds else "WHERE kind LIKE 'fileops.%'"
    rows = ws.store.execute(
        f"SELECT id, kind, status, created, finished, done, total, error, pid, message FROM jobs {where} "
        "ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    out = []
    for jid, kind, status, created, finished, done, total, error, pid, message in rows:
        shown = status
        if status in ("running", "undoing", "planning") and not _alive(pid):
            shown = "interrupted" if status != "undoing" else "undo interrupted"
            if status == "planning":
                params = json.loads(ws.store.one("SELECT params FROM jobs WHERE id = ?", (jid,)) or "{}")
                error = error or _planning_note(jid, params)
        if status == "planned" and message == "dry run":
            shown = "planned (dry run)"
        out.append(
            {
                "id": jid,
                "kind": kind,
                "status": shown,
                "created": created,
                "finished": finished,
                "done": done,
                "total": total,
                "error": error,
            }
        )
    return out


def show_job(
    ws: Workspace,
    job_id: int,
    *,
    actions: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A job's status, parameters, counts per state/action/conflict and, on request, its actions.

    ``actions``: ``all``, ``conflicts``, ``errors`` or a state name (``failed``, ``done``, …).
    """
    store = ws.store
    job = _job_row(store, job_id)
    out: dict[str, Any] = {
        "id": job["id"],
        "kind": job["kind"],
        "status": job["shown_status"],
        "created": job["created"],
        "started": job["started"],
        "finished": job["finished"],
        "done": job["done"],
        "total": job["total"],
        "error": job["error"],
        "params": job["params"],
        "states": _counts(store, job_id),
        "by_action": dict(
            store.execute(
                "SELECT action, count(*) FROM job_actions WHERE job_id = ? GROUP BY action", (job_id,)
            ).fetchall()
        ),
        "conflicts": dict(
            store.execute(
                "SELECT conflict, count(*) FROM job_actions WHERE job_id = ? AND conflict IS NOT NULL GROUP BY conflict",
                (job_id,),
            ).fetchall()
        ),
    }
    if job["result"]:
        out["unknown_keys"] = job["result"].get("unknown_keys", [])
    if actions:
        where, params = {
            "all": ("", ()),
            "conflicts": (" AND conflict IS NOT NULL", ()),
            "errors": (" AND error IS NOT NULL AND (state = 'failed' OR error LIKE 'not undone%')", ()),
        }.get(actions, (" AND state = ?", (actions,)))
        if actions not in ("all", "conflicts", "errors") and actions not in STATES:
            raise UsageError(
                f"unknown action filter {actions!r}",
                hint="all, conflicts, errors or a state: " + ", ".join(STATES),
            )
        rows = store.execute(
            f"SELECT seq, action, role, state, conflict, src, dst, size, error FROM job_actions WHERE job_id = ?{where} "
            "ORDER BY seq LIMIT ?",
            (job_id, *params, limit),
        ).fetchall()
        out["actions"] = [
            {
                "seq": seq,
                "action": act,
                "role": role,
                "state": st,
                "conflict": conf,
                "src": display_path(src) if src else "",
                "dst": display_path(dst),
                "size": size,
                "error": err,
            }
            for seq, act, role, st, conf, src, dst, size, err in rows
        ]
    return out


def forget_job(ws: Workspace, job_id: int) -> None:
    """Delete a job that is planned, refused or undone, with its journal."""
    store = ws.store
    job = _job_row(store, job_id)
    if (
        job["status"] not in ("planned", "refused", "undone", "purged")
        and job["shown_status"] != "interrupted"
    ):
        raise UsageError(
            f"job {job_id} is {job['shown_status']}; only planned, refused or undone jobs can be forgotten",
            hint=f"undo it first with `tuiops ops undo {job_id}`",
        )
    with store.transaction() as conn:
        conn.execute("DELETE FROM job_actions WHERE job_id = ?", (job_id,))
        conn.execute("DELETE FROM job_marks WHERE job_id = ?", (job_id,))
        conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))


def purge_job(ws: Workspace, job_id: int) -> dict[str, Any]:
    """Delete what a finished job keeps in the workspace trash (``.trash/job-N``: originals of
    in-place conversions, overwritten files, deleted files); the job can no longer be undone."""
    import shutil

    store = ws.store
    job = _job_row(store, job_id)
    status = job["shown_status"]
    if status in ("running", "undoing", "planning"):
        raise ConflictError(f"job {job_id} is {status} in process {job['pid']}", hint="wait for it to finish")
    if status in ("interrupted", "undo interrupted", "undo_failed"):
        raise UsageError(
            f"job {job_id} is {status}; finish it before purging its backups",
            hint=f"`tuiops ops resume {job_id}` or `tuiops ops undo {job_id}`",
        )
    folder = ws.trash_dir.resolve() / f"job-{job_id}"
    freed = 0
    files = 0
    if folder.exists():
        for dp, _, fns in os.walk(folder):
            for fn in fns:
                with contextlib.suppress(OSError):
                    freed += os.lstat(os.path.join(dp, fn)).st_size
                    files += 1
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            raise disk_error(folder, exc, "delete") from exc
    with store.transaction() as conn:
        conn.execute("UPDATE jobs SET status = 'purged' WHERE id = ?", (job_id,))
        conn.execute("DELETE FROM job_marks WHERE job_id = ?", (job_id,))
    return {"job": job_id, "files": files, "bytes": freed, "folder": os.fspath(folder)}


def iter_plan(ws: Workspace, job_id: int, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The actions of a job in order, as readable rows (for printing a plan)."""
    store = ws.store
    _job_row(store, job_id)
    sql = "SELECT seq, action, role, state, conflict, src, dst, error FROM job_actions WHERE job_id = ? ORDER BY seq"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    for seq, act, role, st, conf, src, dst, err in store.execute(sql, (job_id,)):
        yield {
            "seq": seq,
            "action": act,
            "role": role,
            "state": st,
            "conflict": conf,
            "src": display_path(src) if src else "",
            "dst": display_path(dst),
            "note": err,
        }
