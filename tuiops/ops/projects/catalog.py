"""Listing and showing the projects of a workspace, and copying the example projects into it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    TuiopsError,
)
from tuiops.fsutil import disk_error
from tuiops.ops.projects.model import (
    BUILD,
    COMMON,
    IMAGE_SUFFIXES,
    LOCK_NAME,
    RESERVED,
    Project,
    build_staleness,
    example_projects_dir,
    input_hashes,
    load_project,
    projects_dir,
    read_build,
    script_files,
)

if TYPE_CHECKING:
    from tuiops.workspace import Workspace


def list_projects(ws: Workspace) -> list[dict[str, Any]]:
    """Every project of the workspace: classes, masters, count/seed and the state of its build."""
    rows: list[dict[str, Any]] = []
    base = projects_dir(ws)
    for d in sorted(base.iterdir()) if base.is_dir() else []:
        if not d.is_dir() or d.name in RESERVED or not (d / "project.toml").is_file():
            continue
        try:
            p = load_project(ws, d.name)
        except TuiopsError as exc:
            rows.append({"name": d.name, "error": exc.message})
            continue
        info = read_build(p)
        state, why = build_staleness(ws, p)
        rows.append(
            {
                "name": p.name,
                "classes": p.classes,
                "masters": _count_masters(p),
                "count": p.count,
                "seed": p.seed,
                "build": state,
                "stale_why": why if state == "stale" else [],
                "built": info.get("created") if info else None,
                "host": info.get("host") if info else None,
                "images": len(info.get("files", [])) if info else 0,
            }
        )
    return rows


def _count_masters(p: Project) -> int:
    images = p.master / "images"
    if not images.is_dir():
        return 0
    return sum(1 for f in images.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def show_project(ws: Workspace, name: str) -> dict[str, Any]:
    """One project in detail: its settings, masters, build state, last build and the recorded builds."""
    p = load_project(ws, name)
    info = read_build(p)
    inputs, script = input_hashes(ws, p)
    state, why = build_staleness(ws, p)
    builds = [
        dict(zip(("id", "host", "count", "seed", "images", "objects", "created", "elapsed"), r, strict=True))
        for r in ws.store.execute(
            "SELECT id, host, count, seed, images, objects, created, elapsed FROM project_builds "
            "WHERE project = ? ORDER BY id DESC LIMIT 20",
            (name,),
        ).fetchall()
    ]
    last = None
    if info is not None:
        last = {
            k: info.get(k) for k in ("created", "host", "count", "seed", "images", "objects", "class_counts")
        }
    return {
        **p.to_dict(),
        "masters": _count_masters(p),
        "script_files": [f.name for f in script_files(p)],
        "inputs_sha256": inputs,
        "script_sha256": script,
        "build": state,
        "stale_why": why if state == "stale" else [],
        "last_build": last,
        "builds": builds,
    }


def copy_examples(ws: Workspace, names: list[str] | None = None) -> list[str]:
    """Copy the example projects (and ``common``) into the workspace's ``projects/``; the names copied."""
    return copy_examples_to(projects_dir(ws), names)


def copy_examples_to(dst: Path, names: list[str] | None = None) -> list[str]:
    """Copy the example projects (and ``common``) into the folder ``dst``; the names copied.

    Projects that exist already there are left alone; builds are not copied.
    """
    src = example_projects_dir()
    if src is None:
        return []
    try:
        dst.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(dst, exc, "create") from exc
    copied = []
    for d in sorted(src.iterdir()):
        if not d.is_dir() or d.name.startswith((".", "__")) or (dst / d.name).exists():
            continue
        if names is not None and d.name not in names and d.name != COMMON:
            continue
        ignore = shutil.ignore_patterns(
            "__pycache__", "*.pyc", BUILD, "build.tmp-*", "build.old-*", LOCK_NAME
        )
        try:
            shutil.copytree(d, dst / d.name, ignore=ignore)
        except OSError as exc:
            raise disk_error(dst / d.name, exc, "copy") from exc
        copied.append(d.name)
    return copied
