"""Adopting an existing folder as a dataset project: its files are kept, what the layout lacks is added."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tuiops.errors import ConflictError, InputError, NotFoundError, UsageError
from tuiops.fsutil import atomic_write_text, disk_error, display_path
from tuiops.ops.projects.model import (
    BUILD,
    DEFAULT_AUGMENT,
    LOCK_NAME,
    Project,
    augment_template,
    ensure_common,
    load_project,
    projects_dir,
    validate_name,
)

if TYPE_CHECKING:
    from tuiops.workspace import Workspace


@dataclass
class Adopted:
    """A folder adopted as a project: the project and what was added to (or copied into) it."""

    project: Project
    copied_from: str | None = None
    added: list[str] = field(default_factory=list)


def _master_classes(root: Path) -> list[str]:
    """The class names of the master annotations, in the order they first appear (files sorted)."""
    from tuiops.formats.voc import parse_voc

    names: list[str] = []
    ann = root / "master" / "annotations"
    for x in sorted(ann.glob("*.xml")) if ann.is_dir() else []:
        doc, err = parse_voc(x.read_bytes())
        if doc is None:
            raise InputError(
                f"{display_path(x)}: {err}", hint="fix the annotation, or name the classes with --classes"
            )
        for _, n, *_rest in doc.objects:
            if n and n.strip() and n.strip() not in names:
                names.append(n.strip())
    return names


def _place(src: Path, root: Path) -> str | None:
    """Copy ``src`` to ``root`` (under a temporary name, then renamed) unless it is ``root``; where from."""
    if not src.is_dir():
        raise NotFoundError(
            f"--adopt {display_path(src)}: no such folder", hint="name the project folder to adopt"
        )
    if src.resolve() == root.resolve():
        return None
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ConflictError(
            f"project folder {display_path(root)} exists already and is not empty; "
            f"{display_path(src)} is not copied over it",
            hint=f"adopt the folder in place with --adopt {root}, or choose another name",
        )
    tmp = root.parent / f".{root.name}.adopt-{os.getpid()}"
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(
            src, tmp, ignore=shutil.ignore_patterns(BUILD, "build.tmp-*", "build.old-*", LOCK_NAME)
        )
        if root.is_dir():
            root.rmdir()
        os.rename(tmp, root)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise disk_error(root, exc, "copy") from exc
    return str(src)


def adopt_project(
    ws: Workspace,
    name: str,
    folder: str | os.PathLike[str],
    *,
    classes: list[str] | None = None,
    count: int = 200,
    seed: int = 0,
    augment: str | None = None,
) -> Adopted:
    """Make ``folder`` project ``name``: copied into ``projects/NAME/`` unless it is that folder.

    Every file of the folder is kept. A folder with a ``project.toml`` is checked as it
    is; otherwise one is written, with ``classes`` (else those of the master annotations,
    in the order they appear), and ``augment`` (else the default command, with the
    generated ``augment.py`` when the folder has none). ``master/images``,
    ``master/annotations`` and a ``.gitignore`` naming ``build/`` are added when missing.
    """
    import tomli_w

    validate_name(name)
    root = projects_dir(ws) / name
    copied_from = _place(Path(folder).expanduser().absolute(), root)
    added: list[str] = []
    ensure_common(ws)
    try:
        for sub in ("master/images", "master/annotations"):
            if not (root / sub).is_dir():
                (root / sub).mkdir(parents=True)
                added.append(sub + "/")
        ignore = root / ".gitignore"
        lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
        missing = [ln for ln in (f"{BUILD}/", LOCK_NAME) if ln not in lines]
        if missing:
            atomic_write_text(ignore, "\n".join([*lines, *missing]) + "\n")
            added.append(".gitignore")
        if not (root / "project.toml").is_file():
            names = [c.strip() for c in classes or [] if c.strip()] or _master_classes(root)
            if not names:
                raise UsageError(
                    f"{display_path(root)} has no project.toml and its master annotations name no class",
                    hint="name the classes: `tuiops project new NAME --adopt DIR --classes a,b`",
                )
            if count < 1:
                raise UsageError(f"count must be at least 1, not {count}")
            command = augment or DEFAULT_AUGMENT
            if augment is None and not (root / "augment.py").is_file():
                atomic_write_text(root / "augment.py", augment_template(name, names))
                added.append("augment.py")
            doc = {
                "project": {"name": name, "classes": names, "augment": command, "count": count, "seed": seed}
            }
            atomic_write_text(root / "project.toml", tomli_w.dumps(doc))
            added.append("project.toml")
    except OSError as exc:
        raise disk_error(root, exc, "write") from exc
    return Adopted(load_project(ws, name), copied_from, added)
