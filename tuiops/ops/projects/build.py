"""Dataset projects: create, load, build (here or on a host over SSH), list and show.

A project is ``projects/NAME/`` of the workspace::

    project.toml            [project] name, classes, augment (a command), count, seed
    master/images/*         the source images
    master/annotations/*    their VOC annotations (same stem as the image)
    augment.py              the augmentation script (or whatever ``augment`` runs)
    .gitignore              build/
    build/                  the last finished build (never in version control)

Shared augmentation code lives in ``projects/common/``; the build puts ``projects/``
on ``PYTHONPATH``. A build runs the ``augment`` command in the project folder with
``{out}`` (an empty output folder), ``{count}`` and ``{seed}`` substituted (shell-quoted),
then takes the boxes the script reports (``boxes.json``, else VOC XMLs beside the
images, else the master's boxes for images named ``MASTERSTEM__….ext`` of the
master's size), validates every image and box, and writes ``build/``::

    JPEGImages/NAME_000001.jpg …   Annotations/NAME_000001.xml …   build.json (last)

Each box keeps its VOC object's flags and tags (``<pose>``, ``<truncated>``,
``<difficult>``, ``<occluded>`` and any other tag, as written): a box of a VOC file
the script wrote keeps that object's, a box of an image named after a master keeps
the master object's, and a ``boxes.json`` object keeps those of the master object it
names with ``"master": STEM, "object": N`` (1-based), and may set ``difficult``,
``truncated``, ``pose`` or ``occluded`` itself.

into ``build.tmp-…`` first and then swaps it into place, so a failed build leaves the
previous one untouched. ``build.json`` records the hashes of the inputs (masters,
project.toml, the script, ``projects/common``); a build with the same inputs, count
and seed is "up to date" and not run again unless forced.

On a host (``--on HOST``) the project and ``projects/common`` are sent to
``.tuiops-builds/NAME-KEY/`` under the host's home, the command runs there with a
time limit (``python`` there is the interpreter named by ``python = "…"`` in the
host's table of tuiops.toml when set, else ``python``, else ``python3``), the output
folder comes back and is validated here; the remote folder is removed afterwards. A build cut off by a lost connection keeps both the remote
folder and the local staging folder, so running it again resumes the transfers
instead of starting over. A script that fails or runs past its time limit keeps its
folder, with ``augment.log``, here (``build.tmp-…``) or on the host, until the next
successful build or ``project clean``; a build cancelled or interrupted otherwise
removes both sides' folders.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    ConflictError,
    InputError,
    UsageError,
)
from tuiops.fsutil import atomic_write_text, disk_error, replace_folder, sha256_file
from tuiops.ops.base import CancelToken, JobProgress, ProgressFn, Reporter, job
from tuiops.ops.projects.build_local import AugmentFailed, check_requires_here, run_local
from tuiops.ops.projects.build_remote import remote_build, resumable
from tuiops.ops.projects.masters import check_masters
from tuiops.ops.projects.model import (
    BUILD,
    BUILD_JSON,
    DEFAULT_TIMEOUT,
    LOCAL,
    LOCK_NAME,
    REMOTE_BUILDS,
    BuildResult,
    Project,
    build_staleness,
    input_hashes,
    load_project,
    read_build,
)
from tuiops.ops.projects.outputs import (
    CheckedImage,
    Output,
    bad_outputs_error,
    box_frame,
    collect_outputs,
    open_outputs,
    validate_boxes,
)

if TYPE_CHECKING:
    import polars as pl

    from tuiops.remote.hosts import RetryPolicy
    from tuiops.workspace import Workspace


def _write_build(
    ws: Workspace,
    project: Project,
    dest: Path,
    outputs: list[Output],
    checked: list[CheckedImage],
    boxes: pl.DataFrame,
    info: dict[str, Any],
    rep: Reporter,
) -> dict[str, Any]:
    import polars as pl
    from PIL import Image

    from tuiops.formats.voc import voc_documents

    (dest / "JPEGImages").mkdir(parents=True)
    (dest / "Annotations").mkdir()
    stems = [f"{project.name}_{i + 1:06d}" for i in range(len(checked))]
    for c, stem in zip(checked, stems, strict=True):
        target = dest / f"JPEGImages/{stem}.jpg"
        if c.jpeg:
            os.replace(c.path, target)
        else:
            with Image.open(c.path) as im:
                rgb = im.convert("L" if im.mode in ("L", "I", "I;16", "1") else "RGB")
                rgb.save(target, "JPEG", quality=95)
                c.depth = len(rgb.getbands())
        rep.check()
    docs = pl.DataFrame(
        {
            "item_id": range(len(checked)),
            "meta": [None] * len(checked),
            "folder": ["JPEGImages"] * len(checked),
            "filename": [f"{stem}.jpg" for stem in stems],
            "path": [f"{stem}.jpg" for stem in stems],
            "width": [c.width for c in checked],
            "height": [c.height for c in checked],
            "depth": [c.depth for c in checked],
        },
        schema_overrides={"item_id": pl.Int64, "meta": pl.String},
    )
    objects = boxes.sort("img", "obj").select(
        pl.col("img").cast(pl.Int64).alias("item_id"),
        "name",
        *[pl.col(f"c{k}").alias(k) for k in ("x1", "y1", "x2", "y2")],
        pl.col("extra").cast(pl.String),
    )
    n_objects = dict(objects.group_by("item_id").len().iter_rows())
    files = []
    for i, (stem, data) in enumerate(zip(stems, voc_documents(docs, objects), strict=True)):
        img_rel, ann_rel = f"JPEGImages/{stem}.jpg", f"Annotations/{stem}.xml"
        (dest / ann_rel).write_bytes(data)
        files.append(
            {
                "image": img_rel,
                "annotation": ann_rel,
                "sha256": sha256_file(dest / img_rel),
                "width": checked[i].width,
                "height": checked[i].height,
                "objects": int(n_objects.get(i, 0)),
                "source": outputs[i].rel,
                "master": outputs[i].master,
            }
        )
        rep.advance(message=stem)
    counts = boxes.group_by("name").agg(pl.len().alias("n")).sort("name")
    class_counts = {n: int(k) for n, k in counts.iter_rows()}
    doc = {
        **info,
        "images": len(files),
        "objects": int(boxes.height),
        "class_counts": class_counts,
        "files": files,
    }
    atomic_write_text(dest / BUILD_JSON, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return doc


def _lock(project: Project) -> Any:
    import fcntl

    path = project.root / LOCK_NAME
    try:
        fh = open(path, "a")  # noqa: SIM115 - held for the whole build
    except OSError as exc:
        raise disk_error(path, exc, "create") from exc
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        fh.close()
        raise ConflictError(
            f"another build of {project.name} is running", hint="wait for it to finish, then build again"
        ) from exc
    return fh


def _up_to_date(
    ws: Workspace, project: Project, inputs: str, script: str, count: int, seed: int, where: str
) -> BuildResult | None:
    """The last build's result when it is current for this count and seed (:func:`build_staleness`); else None."""
    prev = read_build(project)
    if prev is None or build_staleness(ws, project, count, seed)[0] != "up to date":
        return None
    return BuildResult(
        project=project.name,
        status="up to date",
        host=str(prev.get("host", where)),
        count=count,
        seed=seed,
        images=len(prev.get("files", [])),
        objects=int(prev.get("objects", 0) or 0),
        class_counts=dict(prev.get("class_counts", {}) or {}),
        path=str(project.build_dir),
        inputs_sha256=inputs,
        script_sha256=script,
        created=str(prev.get("created", "")),
    )


def _make_stage(project: Project, key: str, *, fresh: bool) -> Path:
    """The build's staging folder ``build.tmp-KEY`` with an empty ``out/`` (other stages stay until a build succeeds).

    ``fresh``: empty it first (a local build; a remote build keeps what an interrupted run left).
    """
    stage = project.root / f"build.tmp-{key}"
    if fresh:
        shutil.rmtree(stage, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(stage / BUILD)
    try:
        (stage / "out").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(stage, exc, "create") from exc
    return stage


def local_leftovers(project: Project, remove: bool = True) -> list[str]:
    """The staging folders of failed or interrupted builds of the project (``build.tmp-*``, ``build.old-*``),
    removed unless ``remove`` is false."""
    found = []
    for old in sorted(project.root.glob("build.*-*")):
        if old.is_dir() and old.name.startswith(("build.tmp-", "build.old-")):
            found.append(str(old))
            if remove:
                shutil.rmtree(old, ignore_errors=True)
    return found


def clean_project(ws: Workspace, name: str, *, host: str | None = None) -> dict[str, Any]:
    """Remove what failed or interrupted builds of project ``name`` left: here, and on ``host`` when given."""
    project = load_project(ws, name)
    lock = _lock(project)
    try:
        local = local_leftovers(project)
        remote: list[str] = []
        if host is not None:
            from tuiops.ops.projects.build_remote import clean_remote
            from tuiops.ops.remote import open_hosts

            remote = clean_remote(open_hosts(ws), host, name)
    finally:
        lock.close()
    return {"project": name, "local": local, "host": host, "remote": remote}


def _checked_outputs(
    project: Project, out: Path, rep: Reporter
) -> tuple[list[Output], list[CheckedImage], pl.DataFrame]:
    """The augmentation's outputs, their images opened and their boxes validated; any problem refuses them all."""
    import polars as pl

    outputs = collect_outputs(out, project)
    rep.update(0, "validate", force=True, total=len(outputs))
    checked, problems = open_outputs(outputs, rep)
    frame = validate_boxes(box_frame(outputs, checked), project.classes)
    problems += frame.filter(pl.col("problem").is_not_null())["problem"].to_list()
    if problems:
        raise bad_outputs_error(project, problems)
    return outputs, checked, frame


def _record_build(
    ws: Workspace,
    project: Project,
    where: str,
    info: dict[str, Any],
    doc: dict[str, Any],
    build_sha: str,
    elapsed: float,
    job_id: int,
) -> int:
    """The build's row in ``project_builds``; its id."""
    with ws.store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO project_builds(project, host, count, seed, classes, images, objects, "
            "class_counts, script_sha256, inputs_sha256, build_sha256, path, created, elapsed, job_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                project.name,
                where,
                info["count"],
                info["seed"],
                json.dumps(project.classes),
                doc["images"],
                doc["objects"],
                json.dumps(doc["class_counts"]),
                info["script_sha256"],
                info["inputs_sha256"],
                build_sha,
                str(project.build_dir),
                info["created"],
                elapsed,
                job_id,
            ),
        )
        return int(cur.lastrowid or 0)


def build_project(
    ws: Workspace,
    name: str,
    *,
    host: str | None = None,
    count: int | None = None,
    seed: int | None = None,
    force: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> BuildResult:
    """Build ``projects/NAME/build/`` by running its augmentation here or on ``host``.

    The masters are checked first (:mod:`~tuiops.ops.projects.masters`): a problem in
    them refuses the build before anything runs. Skipped ("up to date") when the last
    build is current for this count and seed, unless ``force``. Any failure (the script fails or hangs past ``timeout`` s, a bad
    image or box, a lost connection) leaves the previous build as it was.
    """

    from tuiops.store.db import utcnow

    project = load_project(ws, name)
    count = project.count if count is None else count
    seed = project.seed if seed is None else seed
    if count < 1:
        raise UsageError(f"count must be at least 1, not {count}")
    if timeout is not None and timeout <= 0:
        raise UsageError(f"timeout must be positive, not {timeout:g}")
    where = host or LOCAL
    hosts = None
    if host is not None:
        from tuiops.ops.remote import open_hosts

        hosts = open_hosts(ws, retry=retry)
        hosts.get(host)
    if not project.master.is_dir():
        raise InputError(f"project {name} has no master folder {project.master}")
    check_masters(project)
    lock = _lock(project)
    stage: Path | None = None
    try:
        t0 = time.monotonic()
        inputs, script = input_hashes(ws, project)
        if not force:
            done = _up_to_date(ws, project, inputs, script, count, seed, where)
            if done is not None:
                return done
        key = f"{inputs[:12]}-{count}-{seed}"
        stage = _make_stage(project, key, fresh=host is None)
        params = {"project": name, "host": where, "count": count, "seed": seed, "force": force}
        with job(ws.store, "project.build", params) as j:
            rep = Reporter(
                "project.build", JobProgress(ws, j.id, progress, with_op=True), cancel, job_id=j.id
            )
            rep.update(0, f"augment on {where}", force=True)
            transfers: dict[str, Any] = {}
            remote_dir = f"{REMOTE_BUILDS}/{name}-{key}"
            if host is None:
                check_requires_here(project)
                run_local(ws, project, stage / "out", count, seed, timeout, cancel)
            else:
                transfers = remote_build(
                    ws, hosts, host, project, remote_dir, stage, count, seed, timeout, j.id, progress, cancel
                )
            rep.check()
            outputs, checked, frame = _checked_outputs(project, stage / "out", rep)
            rep.update(0, "write", force=True, total=len(outputs))
            created = utcnow()
            info = {
                "project": name,
                "classes": list(project.classes),
                "count": count,
                "seed": seed,
                "host": where,
                "script_sha256": script,
                "inputs_sha256": inputs,
                "created": created,
                "augment": project.augment,
            }
            try:
                doc = _write_build(ws, project, stage / BUILD, outputs, checked, frame, info, rep)
                replace_folder(stage / BUILD, project.build_dir)
            except OSError as exc:
                raise disk_error(project.build_dir, exc, "write") from exc
            local_leftovers(project)
            elapsed = round(time.monotonic() - t0, 3)
            build_sha = sha256_file(project.build_dir / BUILD_JSON)
            build_id = _record_build(ws, project, where, info, doc, build_sha, elapsed, j.id)
            result = BuildResult(
                project=name,
                status="built",
                host=where,
                count=count,
                seed=seed,
                images=doc["images"],
                objects=doc["objects"],
                class_counts=doc["class_counts"],
                path=str(project.build_dir),
                inputs_sha256=inputs,
                script_sha256=script,
                created=created,
                elapsed=elapsed,
                build_id=build_id,
                transfers=transfers,
            )
            j.result = result.to_dict()
        return result
    except BaseException as exc:
        kept = resumable(exc) if host is not None else isinstance(exc, AugmentFailed)
        if stage is not None and not kept:
            shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        lock.close()
