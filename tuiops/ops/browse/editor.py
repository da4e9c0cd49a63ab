"""The label editor (its classes file, its command, opening images or a review copy in it) and new folders."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tuiops.errors import ConflictError, DiskError, ExternalToolError, InputError, NotFoundError, UsageError
from tuiops.ops.base import ProgressFn
from tuiops.ops.browse.order import sorted_unique
from tuiops.ops.browse.spec import normalise_folder

if TYPE_CHECKING:
    from tuiops.store import Store
    from tuiops.workspace import Workspace


def classes_file(ws: Workspace) -> Path:
    """A classes.txt of the workspace class map (for label editors), rewritten when it changed."""
    from tuiops.fsutil import atomic_write_text

    path = ws.root / ".tuiops" / "classes.txt"
    text = "\n".join(ws.classes) + ("\n" if ws.classes else "")
    try:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
    except OSError as exc:
        from tuiops.fsutil import disk_error

        raise disk_error(path, exc) from exc
    return path


def editor_command(ws: Workspace, image: Path) -> list[str]:
    """The configured label editor's command line for one image.

    ``[editor] command`` in tuiops.toml may use ``{image}`` (the file), ``{dir}`` (its
    folder) and ``{classes}`` (a classes.txt of the workspace class map).
    """
    template = ws.config.editor
    try:
        parts = shlex.split(template)
    except ValueError as exc:
        raise InputError(f"[editor] command {template!r} in tuiops.toml: {exc}") from exc
    if not parts:
        raise InputError(
            "[editor] command in tuiops.toml is empty", hint='e.g. command = "labelImg {dir} {classes} {dir}"'
        )
    values = {"image": str(image), "dir": str(image.parent), "classes": ""}
    if "{classes}" in template:
        values["classes"] = str(classes_file(ws))
    try:
        return [p.format(**values) for p in parts]
    except (KeyError, IndexError, ValueError) as exc:
        raise InputError(
            f"[editor] command {template!r} in tuiops.toml has an unknown placeholder {exc}",
            hint="use {image}, {dir} and {classes}",
        ) from exc


def launch_editor(ws: Workspace, image: Path) -> subprocess.Popen[bytes]:
    """Start the label editor on ``image``, detached from the app's terminal."""
    if not image.exists():
        raise NotFoundError(f"{image} does not exist on disk", hint="re-scan the pool with `tuiops scan`")
    argv = editor_command(ws, image)
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ExternalToolError(
            f"the label editor {argv[0]!r} is not installed or not on PATH",
            hint="install it, or set [editor] command in tuiops.toml",
        ) from exc
    except OSError as exc:
        raise ExternalToolError(f"cannot start the label editor {argv[0]!r}: {exc.strerror}") from exc


_BAD_NAME = re.compile(r"[/\x00]")


def make_folder(store: Store, pool: str, folder: str, name: str) -> Path:
    """Create folder ``name`` inside ``folder`` of pool ``pool`` on disk; returns its path."""
    name = name.strip()
    if not name or name in (".", "..") or _BAD_NAME.search(name):
        raise UsageError(f"{name!r} is not a folder name", hint="give one name without '/'")
    pid = store.pool_id(pool)
    root = Path(store.one("SELECT root FROM pools WHERE id = ?", (pid,)))
    target = root / normalise_folder(folder) / name
    if target.exists():
        raise ConflictError(f"{target} exists already")
    try:
        target.mkdir(parents=False)
    except FileNotFoundError as exc:
        raise DiskError(f"cannot create {target}: its parent folder does not exist on disk") from exc
    except OSError as exc:
        from tuiops.fsutil import disk_error

        raise disk_error(target, exc, "create") from exc
    return target


def where_for_ids(ids: Sequence[int] | np.ndarray) -> str:
    """A compact SQL condition on ``file_id`` for these ids (runs become BETWEEN ranges)."""
    import numpy as np

    arr = sorted_unique(ids)
    if len(arr) == 0:
        return "0"
    breaks = np.flatnonzero(np.diff(arr) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(arr)]]) - 1
    ranges: list[str] = []
    singles: list[int] = []
    for a, b in zip(arr[starts].tolist(), arr[ends].tolist(), strict=True):
        if b - a >= 2:
            ranges.append(f"file_id BETWEEN {a} AND {b}")
        else:
            singles.extend(range(a, b + 1))
    parts = ranges + ([f"file_id IN ({', '.join(map(str, singles))})"] if singles else [])
    return " OR ".join(parts)


def edit_files(
    ws: Workspace,
    file_ids: Sequence[int],
    pool: str | None,
    label_set: str | None,
    *,
    progress: ProgressFn | None = None,
) -> Path:
    """Copy files (with label files written from ``label_set``, else carried) into a new folder
    under ``review/`` of the workspace through the file-operation engine, and start the label
    editor there. Returns the folder."""
    import datetime as dt

    from tuiops.ops import fileops
    from tuiops.ops.review_open import editor_command
    from tuiops.ops.select import SelectionSpec

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    folder = ws.root / "review" / f"edit-{stamp}"
    spec = SelectionSpec(where=where_for_ids(file_ids), pools=[pool] if pool else None)
    res = fileops.plan(
        ws,
        "copy",
        spec,
        to=folder,
        labels="yolo" if label_set else "carry",
        label_set=label_set,
        on_conflict="rename",
        progress=progress,
    )
    fileops.run_job(ws, res.job_id, progress=progress)
    argv = editor_command(ws, folder)
    try:
        subprocess.Popen(
            argv,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ExternalToolError(
            f"the label editor {argv[0]!r} is not installed or not on PATH (the images are in {folder})",
            hint="install it, or set [editor] command in tuiops.toml",
        ) from exc
    return folder
