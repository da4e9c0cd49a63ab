"""Label file formats: pure readers and writers, no store.

Readers (:mod:`tuiops.formats.yolo`, :mod:`tuiops.formats.voc`, :mod:`tuiops.formats.coco`)
return a :class:`ReadResult`: a frame of files (one row per label file or COCO image
entry, with the per-file metadata that makes a round trip lossless), a frame of boxes
as written in the files (not yet in pixels or workspace class ids: that needs the pool
and the class map, which the import op brings), and a frame of problems
(``file``, ``line``, ``message``). Writers take frames and write files atomically.

What is kept where (the import op stores it; the writers read it back):

``set_images.meta`` / ``run_images.meta`` (JSON, per image)
    ``{"yolo": {...}}`` the number style of the file (``p`` decimals, ``trim``,
    ``sp``/``strim`` for the confidence column, ``crlf``, ``nl`` final newline,
    ``bom``), only what differs from the defaults (6 fixed decimals, LF, final
    newline); ``{"voc": {...}}`` the document skeleton (prolog, the root element with
    placeholders where the objects were, epilog, encoding); ``{"coco": {...}}`` the
    image entry as written (``id``, ``file_name``, ``license``, …).
``labels.extra`` / ``detections.extra`` (JSON, per box)
    YOLO: ``{"yolo": {"raw": LINE, "canon": LINE}}`` only for a line whose text is not
    what the writer would produce (``.5``, ``1e-3``, tabs, ``-0.000000``); VOC: the
    fields ``pose``, ``truncated``, ``difficult``, ``occluded`` (where the file has
    them) and ``"voc"``, the ``<object>`` element as written; COCO: ``iscrowd`` and
    ``area`` as written, ``coco_id``, ``coco_bbox`` (the bbox as written, to tell whether
    the box moved), ``coco_seg`` (the segmentation) and ``"coco"`` with every other key.
    The flat fields (``difficult``, ``iscrowd`` …) can be queried with ``json_extract``
    and edited: the writers apply them.
``label_sets.meta`` / ``runs.meta`` (JSON, per set or run)
    COCO: ``{"coco": {"categories": [...], "info": ..., "licenses": ...}}`` as written,
    so an export gives the categories back with their own ids.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tuiops.errors import ConflictError, InputError, UsageError
from tuiops.fsutil import disk_error, display_path

if TYPE_CHECKING:
    import polars as pl

#: Columns of a problems frame.
PROBLEM_COLUMNS = ("file", "line", "message")

FORMATS = ("yolo", "voc", "coco")


def problem_schema() -> pl.Schema:
    import polars as pl

    return pl.Schema({"file": pl.String(), "line": pl.Int64(), "message": pl.String()})


def problems_frame(rows: Sequence[tuple[str, int | None, str]] = ()) -> pl.DataFrame:
    """A problems frame from ``(file, line, message)`` tuples (``line`` may be None)."""
    import polars as pl

    return pl.DataFrame(list(rows), schema=problem_schema(), orient="row")


def concat_problems(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Concatenate problem frames, sorted by file and line (file-level problems first)."""
    import polars as pl

    parts = [f.select(*PROBLEM_COLUMNS).cast(problem_schema()) for f in frames if f.height]
    if not parts:
        return problems_frame()
    return pl.concat(parts).sort(["file", "line"], nulls_last=False, maintain_order=True)


@dataclass
class ReadResult:
    """What a reader found.

    ``files``: ``file_idx`` (Int64), ``path`` (the file's path relative to the source, or a
    COCO ``file_name``), ``meta`` (JSON or null) and format-specific columns.
    ``boxes``: ``file_idx``, ``line`` (1-based line, or null), ``loc`` (a location prefix
    for messages, or null) and format-specific columns. Files that could not be read at
    all are absent from ``files`` and named in ``problems``.
    """

    files: pl.DataFrame
    boxes: pl.DataFrame
    problems: pl.DataFrame
    names: list[str] | None = None
    names_source: str | None = None
    found: int = 0
    bad_boxes: int = 0
    #: file_idx of each file that had a box the reader could not take, where its problems
    #: do not name that file with a line (a COCO annotation names the JSON file): such a
    #: file left with no valid box is not an image without objects
    bad_box_files: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: JSON about the whole file, stored with the set or run (COCO: its categories, info, licenses).
    source_meta: str | None = None


# -- reading ------------------------------------------------------------------------------------
def find_label_files(src: Path, suffix: str, exclude: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Label files under ``src`` (recursively, sorted) as ``(path, relative name)`` pairs.

    The relative name uses forward slashes; for a single file ``src`` it is the file's
    name. Hidden files and folders (a name starting with ``.``) are skipped, and so are
    files named in ``exclude`` (compared case-insensitively).
    """
    if not src.exists():
        raise InputError(f"{display_path(src)} does not exist", hint="check the path")
    if src.is_file():
        return [(os.fspath(src), display_path(src.name))]
    skip = {e.lower() for e in exclude}
    out: list[tuple[str, str]] = []
    suffix = suffix.lower()

    def walk(folder: str, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise InputError(f"cannot list {display_path(folder)}: {exc.strerror}") from exc
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            low = name.lower()
            if low.endswith(suffix) and low not in skip and entry.is_file(follow_symlinks=True):
                out.append((entry.path, prefix + name))
            elif entry.is_dir(follow_symlinks=True):
                walk(entry.path, prefix + name + "/")

    walk(os.fspath(src), "")
    return [(p, display_path(rel)) for p, rel in out]


READ_THREADS = 8
_READ_CHUNK = 256


def _read_chunk(paths: Sequence[str]) -> list[tuple[bytes | None, str | None]]:
    out: list[tuple[bytes | None, str | None]] = []
    for p in paths:
        try:
            with open(p, "rb") as fh:
                out.append((fh.read(), None))
        except OSError as exc:
            out.append((None, f"cannot read the file: {exc.strerror or exc}"))
    return out


def read_all(
    paths: Sequence[str],
    on_file: Callable[[int, int], None] | None = None,
    *,
    threads: int = READ_THREADS,
) -> tuple[list[bytes | None], list[str | None]]:
    """Read every file's bytes; a file that cannot be read gets ``None`` and an error text.

    Files are read by ``threads`` threads in chunks (a pool on a disk or a network share
    answers many reads at once); results keep the order of ``paths``. ``on_file(done,
    total)`` is called from the calling thread as chunks complete.
    """
    total = len(paths)
    chunks = [paths[i : i + _READ_CHUNK] for i in range(0, total, _READ_CHUNK)]
    datas: list[bytes | None] = []
    errors: list[str | None] = []

    def take(part: list[tuple[bytes | None, str | None]]) -> None:
        for data, err in part:
            datas.append(data)
            errors.append(err)
        if on_file is not None:
            on_file(len(datas), total)

    if threads <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            take(_read_chunk(chunk))
        return datas, errors
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tuiops-read") as pool:
        futures = [pool.submit(_read_chunk, c) for c in chunks]
        try:
            for fut in futures:
                take(fut.result())
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return datas, errors


def decode_utf8(data: bytes) -> tuple[str | None, str | None]:
    """Decode UTF-8 text; returns ``(text, None)`` or ``(None, message)`` naming the bad byte."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, (
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}); "
            "save the file as UTF-8"
        )


# -- number formatting (vectorised) ---------------------------------------------------------------
MAX_DECIMALS = 15


def format_decimal(value: pl.Expr, decimals: pl.Expr | int, trim: pl.Expr | bool = False) -> pl.Expr:
    """Format floats with ``decimals`` digits after the point, like ``"%.6f"``, in polars.

    With ``trim`` trailing zeros (and a bare point) are dropped, which reproduces ``%g``
    style numbers that have no exponent. ``decimals`` and ``trim`` may be columns.
    Values too large for the requested precision give null.
    """
    import polars as pl

    d = (pl.lit(decimals) if isinstance(decimals, int) else decimals).cast(pl.Int64).clip(0, MAX_DECIMALS)
    t = pl.lit(trim) if isinstance(trim, bool) else trim.fill_null(False)
    scale = pl.lit(10, pl.Int64).pow(d)
    scaled = (value.abs() * scale.cast(pl.Float64)).round(0).cast(pl.Int64, strict=False)
    ip = (scaled // scale).cast(pl.String)
    fp = (scaled % scale).cast(pl.String).str.zfill(d)
    fp = pl.when(t).then(fp.str.strip_chars_end("0")).otherwise(fp)
    frac = pl.when((d > 0) & (fp.str.len_chars() > 0)).then(pl.lit(".") + fp).otherwise(pl.lit(""))
    sign = pl.when((value < 0) & (scaled > 0)).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.concat_str([sign, ip, frac])


def decimals_of(token: pl.Expr) -> pl.Expr:
    """Digits after the point in a number's text (0 without a point; null with an exponent)."""
    import polars as pl

    has_exp = token.str.contains("e", literal=True) | token.str.contains("E", literal=True)
    pos = token.str.find(".", literal=True)
    n = pl.when(pos.is_null()).then(pl.lit(0, pl.UInt32)).otherwise(token.str.len_chars() - pos - 1)
    return pl.when(has_exp).then(None).otherwise(n.cast(pl.Int64))


# -- writing ----------------------------------------------------------------------------------------
def check_relpath(rel: str) -> bool:
    """True when ``rel`` is a safe relative path (no root, no ``..``, no empty part)."""
    if not rel or rel.startswith("/") or "\\" in rel or "\x00" in rel:
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def write_tree(
    target: Path,
    files: Sequence[tuple[str, bytes]],
    *,
    overwrite: bool = False,
    on_file: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Write ``(relative path, bytes)`` pairs under ``target``, all or nothing.

    Every file is first written into a hidden staging folder inside ``target``; only when
    all are written (and flushed to disk) are they renamed into place, so a failure (disk
    full, permission denied) leaves no new or half-written file behind. Existing files
    are an error unless ``overwrite``. Returns the paths written.
    """
    names = [rel for rel, _ in files]
    bad = [n for n in names if not check_relpath(n)]
    if bad:
        raise UsageError(f"refusing to write outside {display_path(target)}: {bad[0]!r}")
    if len(set(names)) != len(names):
        seen: set[str] = set()
        for n in names:
            if n in seen:
                raise ConflictError(f"two images would be written to the same file {n!r}")
            seen.add(n)
    root = os.fspath(target)
    folders = sorted({n.rsplit("/", 1)[0] for n in names if "/" in n})
    try:
        if os.path.exists(root) and not os.path.isdir(root):
            raise UsageError(f"{display_path(target)} is a file; give a folder to export into")
        os.makedirs(root, exist_ok=True)
        for folder in folders:
            parts = folder.split("/")
            for k in range(1, len(parts) + 1):
                p = os.path.join(root, *parts[:k])
                if os.path.lexists(p) and not os.path.isdir(p):
                    raise ConflictError(f"{display_path(p)} is a file, but files are to be written into it")
        existing = [n for n in names if os.path.lexists(os.path.join(root, n))]
    except OSError as exc:
        raise disk_error(target, exc, "write into") from exc
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (" …" if len(existing) > 3 else "")
        raise ConflictError(
            f"{len(existing)} file(s) exist already in {display_path(target)}: {shown}",
            hint="choose an empty folder, or pass --overwrite to replace them",
        )
    try:
        staging = tempfile.mkdtemp(prefix=".tuiops-export-", dir=root)
    except OSError as exc:
        raise disk_error(target, exc, "write into") from exc
    written: list[str] = []
    try:
        for folder in folders:
            os.makedirs(os.path.join(staging, folder), exist_ok=True)
        total = len(files)
        for i, (rel, data) in enumerate(files):
            with open(os.path.join(staging, rel), "wb") as fh:
                fh.write(data)
            if on_file is not None:
                on_file(i + 1, total)
        _sync_filesystem(Path(staging))
        for folder in folders:
            os.makedirs(os.path.join(root, folder), exist_ok=True)
        for rel in names:
            final = os.path.join(root, rel)
            os.replace(os.path.join(staging, rel), final)
            written.append(final)
        with contextlib.suppress(OSError):
            fd = os.open(root, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        raise disk_error(exc.filename or target, exc) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def _sync_filesystem(folder: Path) -> None:
    """Flush the file system holding ``folder`` to disk (``syncfs``; ``sync`` where it is missing)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(folder, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


def check_target_file(path: Path, overwrite: bool) -> None:
    """Refuse an existing file unless ``overwrite``; the folder must exist or be creatable."""
    try:
        if path.is_dir():
            raise UsageError(
                f"{display_path(path)} is a folder; give a file name (e.g. {path / 'labels.json'})"
            )
        if path.exists() and not overwrite:
            raise ConflictError(
                f"{display_path(path)} exists already", hint="choose another name, or pass --overwrite"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(path, exc) from exc


__all__ = [
    "FORMATS",
    "PROBLEM_COLUMNS",
    "ReadResult",
    "check_relpath",
    "check_target_file",
    "concat_problems",
    "decimals_of",
    "decode_utf8",
    "find_label_files",
    "format_decimal",
    "problems_frame",
    "read_all",
    "write_tree",
]
