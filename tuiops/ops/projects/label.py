"""The labelling host: a project's masters sent to be labelled there, the edited VOC files brought back.

``send_for_labelling`` puts the master images, their VOC annotations and a
``classes.txt`` side by side into a folder on the host (``labelling/NAME`` under its
home unless named), as labelImg opens and saves them (``labelImg DIR classes.txt``).
``fetch_labels`` brings the folder's ``*.xml`` back, checks each against its master
image and the project's classes (as a build checks the masters), shows what changed
per file, and commits the good, changed files as the project's master annotations in
one revision: the files they replace are kept in ``.revisions/N/`` of the project, so
``undo_labels`` puts them back. A file with a problem is left out and reported with
its file and line; one that is unchanged is left alone.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import NotFoundError, UsageError
from tuiops.fsutil import atomic_write_bytes, disk_error
from tuiops.ops.base import CancelToken, ProgressFn
from tuiops.ops.projects.masters import annotation_problems
from tuiops.ops.projects.model import IMAGE_SUFFIXES, Project, load_project

if TYPE_CHECKING:
    from tuiops.workspace import Workspace

#: The folder of a project where the annotations a labelling revision replaced are kept.
REVISIONS = ".revisions"


def _masters(project: Project) -> tuple[dict[str, Path], Path]:
    images = project.master / "images"
    found = {
        p.stem: p
        for p in sorted(images.iterdir() if images.is_dir() else [])
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    }
    return found, project.master / "annotations"


def send_for_labelling(
    ws: Workspace,
    name: str,
    host: str,
    *,
    folder: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Send the master images, their annotations and ``classes.txt`` into ``folder`` on ``host``."""
    from tuiops.ops.remote import open_hosts
    from tuiops.remote import run_sync, transfer
    from tuiops.store.db import utcnow

    project = load_project(ws, name)
    images, ann_dir = _masters(project)
    if not images:
        raise NotFoundError(
            f"project {name} has no master images in {project.master / 'images'}",
            hint="put the scenes to label into master/images first",
        )
    hosts = open_hosts(ws)
    hosts.get(host)
    remote = folder or f"labelling/{name}"
    tmp = project.root / f".label-send-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        (tmp / "classes.txt").write_text("\n".join(project.classes) + "\n", encoding="utf-8")
        paths: list[str | os.PathLike[str]] = [*images.values(), tmp / "classes.txt"]
        paths += [ann_dir / f"{s}.xml" for s in images if (ann_dir / f"{s}.xml").is_file()]
        sent = run_sync(
            transfer.put(hosts, host, paths, remote, existing="overwrite", progress=progress, cancel=cancel),
            cancel,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    annotations = sum(1 for s in images if (ann_dir / f"{s}.xml").is_file())
    with ws.store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO project_labelling(project, host, path, images, annotations, sent) VALUES (?, ?, ?, ?, ?, ?)",
            (name, host, remote, len(images), annotations, utcnow()),
        )
        label_id = int(cur.lastrowid or 0)
    return {
        "id": label_id,
        "project": name,
        "host": host,
        "path": remote,
        "images": len(images),
        "annotations": annotations,
        "sent_files": sent.files,
    }


def _boxes(data: bytes | None) -> list[tuple[Any, ...]]:
    from tuiops.formats.voc import parse_voc

    if data is None:
        return []
    doc, _ = parse_voc(data)
    return [] if doc is None else [o[1:6] for o in doc.objects]


def _diff(before: bytes | None, after: bytes) -> dict[str, Any]:
    """What changed in one annotation: objects added, removed and kept (by class and coordinates)."""
    old, new = _boxes(before), _boxes(after)
    added = [b for b in new if b not in old]
    removed = [b for b in old if b not in new]
    return {
        "added": [list(b) for b in added],
        "removed": [list(b) for b in removed],
        "objects_before": len(old),
        "objects_after": len(new),
        "new_file": before is None,
    }


def _last_labelling(ws: Workspace, name: str) -> tuple[int, str, str]:
    row = ws.store.execute(
        "SELECT id, host, path FROM project_labelling WHERE project = ? ORDER BY id DESC LIMIT 1", (name,)
    ).fetchone()
    if row is None:
        raise NotFoundError(
            f"project {name} was never sent for labelling",
            hint=f"send it first: `tuiops project label {name} --on HOST`",
        )
    return int(row[0]), str(row[1]), str(row[2])


def fetch_labels(
    ws: Workspace,
    name: str,
    *,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Fetch the labelled VOC files, check them, and commit the changed ones as one revision."""
    from tuiops.ops.remote import open_hosts
    from tuiops.remote import run_sync, transfer

    project = load_project(ws, name)
    label_id, host, remote = _last_labelling(ws, name)
    images, ann_dir = _masters(project)
    tmp = project.root / f".label-fetch-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        hosts = open_hosts(ws)
        run_sync(
            transfer.get(hosts, host, [remote], tmp, existing="overwrite", progress=progress, cancel=cancel),
            cancel,
        )
        got = tmp / remote.rstrip("/").rsplit("/", 1)[-1]
        changed: dict[str, dict[str, Any]] = {}
        left_out: list[str] = []
        new_bytes: dict[str, bytes] = {}
        unchanged = 0
        for x in sorted(got.glob("*.xml")):
            where = f"{host}:{remote}/{x.name}"
            img = images.get(x.stem)
            if img is None:
                left_out.append(f"{where}: no master image {x.stem}.* in the project; left out")
                continue
            data = x.read_bytes()
            problems = annotation_problems(where, data, img, project.classes)
            if problems:
                left_out += [f"{p}; left out" for p in problems]
                continue
            current = ann_dir / x.name
            before = current.read_bytes() if current.is_file() else None
            if before == data:
                unchanged += 1
                continue
            changed[x.name] = _diff(before, data)
            new_bytes[x.name] = data
        revision = None
        if changed and not dry_run:
            revision = _commit(ws, project, label_id, new_bytes, changed, left_out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "project": name,
        "host": host,
        "path": remote,
        "changed": changed,
        "unchanged": unchanged,
        "left_out": left_out,
        "revision": revision,
        "dry_run": dry_run,
    }


def _commit(
    ws: Workspace,
    project: Project,
    label_id: int,
    new_bytes: dict[str, bytes],
    changed: dict[str, dict[str, Any]],
    left_out: list[str],
) -> int:
    """Keep the annotations about to be replaced in ``.revisions/N/``, write the new ones; the revision id."""
    from tuiops.store.db import utcnow

    ann_dir = project.master / "annotations"
    with ws.store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO project_label_revisions(project, labelling_id, created, files, left_out) "
            "VALUES (?, ?, ?, ?, ?)",
            (project.name, label_id, utcnow(), json.dumps(changed), json.dumps(left_out)),
        )
        rev = int(cur.lastrowid or 0)
    keep = project.root / REVISIONS / f"{rev:04d}"
    try:
        keep.mkdir(parents=True, exist_ok=True)
        for fname, diff in changed.items():
            if not diff["new_file"]:
                shutil.copy2(ann_dir / fname, keep / fname)
        ann_dir.mkdir(parents=True, exist_ok=True)
        for fname, data in new_bytes.items():
            atomic_write_bytes(ann_dir / fname, data)
    except OSError as exc:
        raise disk_error(ann_dir, exc, "write") from exc
    return rev


def undo_labels(ws: Workspace, name: str) -> dict[str, Any]:
    """Put back the master annotations that the last labelling revision of ``name`` replaced."""
    project = load_project(ws, name)
    row = ws.store.execute(
        "SELECT id, files FROM project_label_revisions WHERE project = ? AND undone IS NULL ORDER BY id DESC LIMIT 1",
        (name,),
    ).fetchone()
    if row is None:
        raise UsageError(f"project {name} has no labelling revision to undo")
    rev, files = int(row[0]), json.loads(row[1])
    keep = project.root / REVISIONS / f"{rev:04d}"
    ann_dir = project.master / "annotations"
    try:
        for fname, diff in files.items():
            if diff["new_file"]:
                (ann_dir / fname).unlink(missing_ok=True)
            else:
                atomic_write_bytes(ann_dir / fname, (keep / fname).read_bytes())
    except OSError as exc:
        raise disk_error(ann_dir, exc, "restore") from exc
    from tuiops.store.db import utcnow

    with ws.store.transaction() as conn:
        conn.execute("UPDATE project_label_revisions SET undone = ? WHERE id = ?", (utcnow(), rev))
    return {"project": name, "revision": rev, "restored": sorted(files)}
