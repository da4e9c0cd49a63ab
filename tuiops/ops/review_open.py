"""The label editor on a review folder: its command line from ``[editor]`` in tuiops.toml, and
starting it."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from tuiops.errors import ExternalToolError, InputError, UsageError
from tuiops.fsutil import display_path

if TYPE_CHECKING:
    from tuiops.workspace import Workspace


def editor_command(ws: Workspace, folder: str | os.PathLike[str]) -> list[str]:
    """The label editor's command line for ``folder`` ({dir}, {classes}, {image} filled in)."""
    root = Path(folder).resolve()
    classes = root / "classes.txt"
    first = next(
        (p for p in sorted(root.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".bmp")), root
    ) if root.is_dir() else root  # fmt: skip
    try:
        parts = shlex.split(ws.config.editor)
    except ValueError as exc:
        raise UsageError(f"[editor] command in tuiops.toml is not a valid command line: {exc}") from exc
    if not parts:
        raise UsageError(
            "[editor] command in tuiops.toml is empty", hint='e.g. command = "labelImg {dir} {classes} {dir}"'
        )
    values = {"dir": str(root), "classes": str(classes), "image": str(first)}
    try:
        return [p.format(**values) for p in parts]
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(
            f"[editor] command {ws.config.editor!r} has an unknown placeholder: {exc}",
            hint="use {dir}, {classes} and {image}",
        ) from exc


def review_open(ws: Workspace, folder: str | os.PathLike[str], *, wait: bool = True) -> int:
    """Start the label editor on a review folder; returns its exit status (0 when not waiting)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(
            f"{display_path(root)} is not a folder", hint="export one with `tuiops review export`"
        )
    cmd = editor_command(ws, root)
    try:
        proc = subprocess.Popen(cmd, cwd=root)
    except FileNotFoundError as exc:
        raise ExternalToolError(
            f"the label editor {cmd[0]!r} is not installed or not on PATH",
            hint="install labelImg (`pip install labelImg`) or set [editor] command in tuiops.toml",
        ) from exc
    except OSError as exc:
        raise ExternalToolError(f"cannot start the label editor {cmd[0]!r}: {exc.strerror}") from exc
    if not wait:
        return 0
    rc = proc.wait()
    if rc != 0:
        raise ExternalToolError(f"the label editor {cmd[0]!r} exited with status {rc}")
    return rc
