"""Mix the builds of several dataset projects into one VOC, YOLO or COCO dataset.

A project's build is read only through its ``build.json`` (``projects/NAME/build/``):
the images and VOC annotations it lists, checked against the SHA-256 and sizes it
records. The mix then

- builds one class map across the projects: the union of their classes by name, in
  the order of the projects given (or the order of a ``--classes`` file), after the
  explicit renames of ``--map [PROJECT:]OLD=NEW``;
- draws a stable split: an image goes to ``val`` when
  ``draw(project + "/" + stem, seed) < val`` (a 64-bit hash turned into [0, 1)), so its
  split depends on nothing else and adding images never moves the others;
- hashes every image (perceptual hash, 64 bits) and groups near-duplicates (Hamming
  distance ≤ ``max_distance``) with the chunked equi-join of :mod:`tuiops.ops.similar`:
  ``dupes="drop"`` keeps the first image of each group (projects in the order given,
  then stems) and drops the others; ``dupes="group"`` keeps them all in the split of
  the group's first image. A group whose images were drawn into both train and val is
  a leak: it is fixed that way, or, with ``strict``, an error;
- writes the dataset into a temporary sibling of the output folder and renames it
  into place, with ``manifest.json`` (class map, parameters, the builds' hashes, every
  image's split, project and SHA-256, the SHA-256 of every other file);
- optionally tars it (``.tar.gz``, reproducible: sorted members, fixed owners and
  times, so the same mix gives the same bytes) under a temporary name and renames it,
  and pushes the tarball to a host (resumable SFTP, temporary name + rename), then
  checks its SHA-256 on the host.

Class conflicts (errors naming both projects, never guessed):

- two different class names that are the same after case folding and treating runs
  of spaces, hyphens and underscores as one ``_`` (``Kanji`` in one project,
  ``kanji`` in another): they look like one class but are spelled as two; resolve with
  ``--map`` (``--map p1:Kanji=kanji --merge``) or rename one;
- ``--map`` rules that send two different class names onto one name (a merge, also
  onto a name another project has) without ``merge=True``.

Box coordinates are taken as the VOC files write them (pixels, no 1-based shift, the
convention of :mod:`tuiops.formats.voc`), clipped to the image; a box with no area
after clipping is an error naming its file.

Each object's VOC flags (``pose``, ``truncated``, ``difficult``, ``occluded``) and other
tags go on: VOC writes them as the build did (and ``labelmap.txt``, Datumaro's and
CVAT's label map, beside ``classes.txt``); COCO writes the flags as the annotation's
``attributes`` (as Datumaro and CVAT do); what a format cannot hold (YOLO: every flag;
COCO: other tags) is a warning, counted in ``not_carried`` and listed per object in
the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tuiops.errors import ConflictError, InputError, UsageError
from tuiops.fsutil import (
    create_temp_dir,
    disk_error,
    display_path,
    replace_folder,
)
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job
from tuiops.ops.projects.classmap import build_class_map, parse_map
from tuiops.ops.projects.mixmodel import (
    DUPES,
    FORMATS,
    MANIFEST,
    MIX_KIND,
    SPLITS,
    VOC_YEARS,
    YOLO_EXTS,
    MixResult,
    ProjectBuild,
)
from tuiops.ops.projects.mixout import write_output
from tuiops.ops.projects.push import push_tarball, raise_unknown_host
from tuiops.ops.projects.sources import load_build, projects_dir, read_project_build
from tuiops.ops.projects.split import dupes_and_split, split_draws
from tuiops.ops.projects.tarball import tar_epoch, write_tarball

if TYPE_CHECKING:
    from tuiops.remote.hosts import RetryPolicy
    from tuiops.workspace import Workspace


def _check_out(out: Path, overwrite: bool) -> None:
    if out.is_file() or (out.is_symlink() and not out.is_dir()):
        raise UsageError(f"{display_path(out)} is a file; give a folder for the mixed dataset")
    if not out.exists():
        return
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            kind = json.loads(manifest.read_text(encoding="utf-8")).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind == MIX_KIND:
            return
    if overwrite or not any(out.iterdir()):
        return
    raise ConflictError(
        f"{display_path(out)} exists and is not a mixed dataset (no {MANIFEST} of a mix)",
        hint="choose a new or empty folder, or pass --overwrite to replace its content",
    )


def _changed_since_build(ws: Workspace, builds: Sequence[ProjectBuild]) -> list[str]:
    """Warnings for builds whose project (masters, script, project.toml, common) changed since."""
    from tuiops.errors import TuiopsError
    from tuiops.ops.projects.model import input_hashes, load_project

    out = []
    for b in builds:
        recorded = b.info.get("inputs_sha256")
        if not isinstance(recorded, str):
            continue
        try:
            current, _ = input_hashes(ws, load_project(ws, b.name))
        except (TuiopsError, OSError):
            continue
        if current != recorded:
            out.append(
                f"project {b.name} changed since its build (masters, script, project.toml or common); "
                f"this mix uses the old build: rebuild it with `tuiops project build {b.name}`"
            )
    return out


def _check_not_inputs(ws: Workspace, target: Path, projects: Sequence[str]) -> None:
    """Refuse an output folder that holds the workspace or lies in a build the mix reads."""
    real = target.resolve()
    root = Path(ws.root).resolve()
    if real == root or real in root.parents:
        raise UsageError(
            f"--out {display_path(target)} holds the workspace {display_path(root)}; "
            "replacing it would delete the workspace",
            hint="give a new folder for the mixed dataset",
        )
    pdir = projects_dir(ws).resolve()
    for name in projects:
        build = pdir / name / "build"
        if real == build or build in real.parents or real in build.parents:
            raise UsageError(
                f"--out {display_path(target)} overlaps the build of project {name}, which this mix reads",
                hint="put the mixed dataset outside projects/",
            )


def mix_projects(
    ws: Workspace,
    projects: Sequence[str],
    out: str | os.PathLike[str],
    *,
    fmt: str = "voc",
    val: float = 0.2,
    seed: int = 0,
    maps: Sequence[str] = (),
    classes_file: str | os.PathLike[str] | None = None,
    merge: bool = False,
    max_distance: int = 4,
    dupes: str = "drop",
    strict: bool = False,
    voc_year: str | None = None,
    yaml_path: str | None = None,
    overwrite: bool = False,
    tar: str | os.PathLike[str] | None = None,
    push: str | None = None,
    replace_remote: bool = False,
    retry: RetryPolicy | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> MixResult:
    """Mix the builds of ``projects`` into one dataset in ``out`` (see the module docstring).

    ``tar``: also write a ``.tar.gz`` of the output; ``push``: ``HOST:PATH``, send the
    tarball (``OUT.tar.gz`` beside the output when ``tar`` is not given) into folder
    PATH on the host and check its SHA-256 there. Relative local paths are taken from
    the current folder.
    """
    import polars as pl

    from tuiops.formats.classes import read_names_file
    from tuiops.ops.projects.mixfiles import not_carried
    from tuiops.store.db import utcnow

    if not projects:
        raise UsageError("no project given: name the projects to mix")
    dup_names = sorted({p for p in projects if list(projects).count(p) > 1})
    if dup_names:
        raise UsageError(f"project {', '.join(dup_names)} is given twice")
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if dupes not in DUPES:
        raise UsageError(f"unknown duplicates policy {dupes!r}; choose one of {', '.join(DUPES)}")
    if not 0.0 <= val < 1.0:
        raise UsageError(f"--val must be at least 0 and less than 1, got {val}")
    if not 0 <= max_distance <= 32:
        raise UsageError(f"--max-distance must be between 0 and 32 bits, got {max_distance}")
    if voc_year is not None:
        if fmt != "voc":
            raise UsageError("--voc-year is for --format voc only")
        if str(voc_year) not in VOC_YEARS:
            raise UsageError(f"--voc-year must be one of {', '.join(VOC_YEARS)}, got {voc_year}")
        voc_year = str(voc_year)
    if yaml_path is not None and fmt != "yolo":
        raise UsageError("--yaml-path is for --format yolo only")
    push_host = push_dir = None
    if push is not None:
        push_host, sep, push_dir = push.partition(":")
        if not sep or not push_host:
            raise UsageError(
                f"--push {push!r}: expected HOST:PATH (a folder on the host, e.g. gpu1:datasets)"
            )
        push_dir = push_dir or "."
        if push_host not in ws.config.hosts:
            raise_unknown_host(ws, push_host)
    target = Path(out).expanduser().absolute()
    tar_path = Path(tar).expanduser().absolute() if tar is not None else None
    if tar_path is None and push is not None:
        tar_path = target.with_name(target.name + ".tar.gz")
    if tar_path is not None:
        if tar_path.is_dir():
            raise UsageError(f"--tar {display_path(tar_path)} is a folder; give a file name (NAME.tar.gz)")
        if tar_path == target or target in tar_path.parents:
            raise UsageError(
                f"--tar {display_path(tar_path)} lies inside the output folder; put it beside it"
            )
    _check_out(target, overwrite)
    _check_not_inputs(ws, target, projects)
    order = read_names_file(Path(classes_file).expanduser()) if classes_file is not None else None
    rules = parse_map(maps)
    builds = [load_build(ws, p) for p in projects]
    cmap = build_class_map(builds, rules, order=order, merge=merge)
    warnings = [
        f"project {b.name}: project.toml declares classes {b.declared} but its build has {b.classes}; "
        f"rebuild it with `tuiops project build {b.name}`"
        for b in builds
        if b.declared is not None and b.declared != b.classes
    ]
    warnings += _changed_since_build(ws, builds)
    total = sum(len(b.files) for b in builds)
    params = {
        "projects": list(projects),
        "out": str(target),
        "format": fmt,
        "val": val,
        "seed": seed,
        "maps": [str(r) for r in rules],
        "classes_file": str(classes_file) if classes_file is not None else None,
        "merge": merge,
        "max_distance": max_distance,
        "dupes": dupes,
        "strict": strict,
        "voc_year": voc_year,
        "yaml_path": yaml_path,
    }
    with job(ws.store, "project.mix", params, total=total) as j:
        rep = Reporter("project.mix", progress, cancel, total=2 * total, job_id=j.id)
        img_parts, box_parts = [], []
        for pi, b in enumerate(builds):
            im, bx = read_project_build(b, rep)
            img_parts.append(im.with_columns(pl.lit(pi, pl.Int64).alias("proj_idx")))
            box_parts.append(bx)
        imgs = (
            pl.concat(img_parts, how="diagonal_relaxed")
            .sort("proj_idx", "stem")
            .with_row_index("idx")
            .with_columns(
                pl.col("idx").cast(pl.Int64), pl.concat_str("project", pl.lit("/"), "stem").alias("key")
            )
        )
        if imgs.height == 0:
            raise InputError(
                f"the builds of {', '.join(projects)} hold no images",
                hint="build the projects with a count > 0",
            )
        imgs = imgs.with_columns(split_draws(imgs["project"], imgs["stem"], seed).alias("draw"))
        cls = pl.DataFrame(cmap.sources).select(
            "project", "name", pl.col("class"), pl.col("class_id").cast(pl.Int64)
        )
        boxes = (
            pl.concat(box_parts)
            .join(imgs.select("project", "stem", "idx", "width", "height"), on=["project", "stem"])
            .join(cls, on=["project", "name"], how="left")
        )
        cx1 = pl.col("x1").clip(0.0, pl.col("width").cast(pl.Float64))
        cy1 = pl.col("y1").clip(0.0, pl.col("height").cast(pl.Float64))
        cx2 = pl.col("x2").clip(0.0, pl.col("width").cast(pl.Float64))
        cy2 = pl.col("y2").clip(0.0, pl.col("height").cast(pl.Float64))
        clipped_mask = (
            (cx1 != pl.col("x1")) | (cy1 != pl.col("y1")) | (cx2 != pl.col("x2")) | (cy2 != pl.col("y2"))
        )
        clipped = boxes.filter(clipped_mask).height
        boxes = boxes.with_columns(cx1.alias("x1"), cy1.alias("y1"), cx2.alias("x2"), cy2.alias("y2"))
        flat = boxes.filter((pl.col("x2") <= pl.col("x1")) | (pl.col("y2") <= pl.col("y1")))
        if flat.height:
            r = flat.join(imgs.select("idx", "annotation"), on="idx").row(0, named=True)
            where = {b.name: b.build_dir for b in builds}[r["project"]] / r["annotation"]
            raise InputError(
                f"project {r['project']}: {display_path(where)} object {r['ord'] + 1} ({r['name']}) "
                "has no area inside the "
                f"{r['width']}×{r['height']} image ({flat.height} such box(es))",
                hint="fix the master annotation or the augmentation script and rebuild",
            )
        objects = boxes.group_by("idx").agg(pl.len().cast(pl.Int64).alias("objects"))
        imgs = (
            imgs.join(objects, on="idx", how="left").with_columns(pl.col("objects").fill_null(0)).sort("idx")
        )
        imgs, leaks, moved, groups = dupes_and_split(imgs, max_distance, dupes, strict, val)
        # output names
        out_ext = pl.col("ext")
        if fmt == "voc":
            out_ext = pl.lit(".jpg")
        elif fmt == "yolo":
            out_ext = (
                pl.when(pl.col("ext").is_in(list(YOLO_EXTS))).then(pl.col("ext")).otherwise(pl.lit(".jpg"))
            )
        imgs = imgs.with_columns((pl.col("stem") + out_ext).alias("file"))
        clash = imgs.filter(pl.col("split") != "dropped").filter(pl.col("stem").is_duplicated())
        if clash.height:
            raise ConflictError(
                f"image name {clash['stem'][0]} comes from more than one project "
                f"({', '.join(clash['project'].unique().sort().to_list())})",
                hint="builds name their images PROJECT_NNNNNN; rebuild the projects",
            )
        kept = imgs.filter(pl.col("split") != "dropped")
        kept_boxes = boxes.join(kept.select("idx"), on="idx", how="semi")
        lost_counts, lost = not_carried(kept_boxes, fmt)
        if lost:
            shown = "; ".join(
                f"{o['project']}/{o['stem']} object {o['object']} ({', '.join(o['lost'])})" for o in lost[:5]
            )
            more = f" and {len(lost) - 5} more (manifest.json lists them)" if len(lost) > 5 else ""
            what = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in lost_counts.items())
            warnings.append(
                f"{fmt.upper()} cannot hold every VOC object flag or tag of the builds: {len(lost)} box(es) "
                f"lose them ({what}): {shown}{more}; --format voc keeps them all"
            )
        rep.update(total, "writing", total=total + kept.height)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            staging = Path(create_temp_dir(target.parent, f".{target.name}.tmp-"))
        except OSError as exc:
            raise disk_error(target.parent, exc, "create a folder in") from exc
        staged_in_place = False
        try:
            try:
                kept, others, root_rel = write_output(
                    staging,
                    fmt,
                    kept,
                    kept_boxes,
                    {b.name: b for b in builds},
                    cmap.names,
                    voc_year,
                    yaml_path,
                    rep,
                )
            except OSError as exc:
                raise disk_error(staging, exc) from exc
            by_split = {s: kept.filter(pl.col("split") == s).height for s in SPLITS}
            per_class = (
                kept_boxes.join(kept.select("idx", "split"), on="idx")
                .group_by("class", "split")
                .agg(pl.len().alias("n"))
                .sort("class", "split")
            )
            class_counts = {n: {s: 0 for s in SPLITS} for n in cmap.names}
            for c, s, n in per_class.iter_rows():
                class_counts[c][s] = n
            manifest = {
                "kind": MIX_KIND,
                "version": 1,
                "format": fmt,
                "root": root_rel,
                "classes": cmap.names,
                "class_map": cmap.sources,
                "params": {k: v for k, v in params.items() if k not in ("out", "projects")},
                "projects": [
                    {
                        "name": b.name,
                        "build_json_sha256": b.build_sha256,
                        "script_sha256": b.info.get("script_sha256"),
                        "inputs_sha256": b.info.get("inputs_sha256"),
                        "created": b.info.get("created"),
                        "host": b.info.get("host"),
                        "seed": b.info.get("seed"),
                        "count": b.info.get("count"),
                        "images": len(b.files),
                    }
                    for b in builds
                ],
                "counts": {
                    "images": kept.height,
                    **by_split,
                    "dropped": imgs.height - kept.height,
                    "boxes": kept_boxes.height,
                    "leaks": leaks,
                    "moved": moved,
                    "clipped": clipped,
                    "per_class": class_counts,
                    "not_carried": lost_counts,
                },
                "not_carried": lost,
                "images": kept.sort("idx")
                .select(
                    pl.col("file_rel").alias("file"),
                    "split",
                    "project",
                    "stem",
                    pl.col("image").alias("source"),
                    pl.col("out_sha256").alias("sha256"),
                    "objects",
                    pl.col("label_rel").alias("label"),
                    pl.col("label_sha256"),
                    pl.col("reason"),
                )
                .to_dicts(),
                "dropped": imgs.filter(pl.col("split") == "dropped")
                .select("project", "stem", "dup_of", "distance")
                .to_dicts(),
                "files": dict(sorted(others.items())),
            }
            mbytes = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
            try:
                (staging / MANIFEST).write_bytes(mbytes)
            except OSError as exc:
                raise disk_error(staging / MANIFEST, exc) from exc
            manifest_sha = hashlib.sha256(mbytes).hexdigest()
            rep.check()
            _check_out(target, overwrite)
            replace_folder(staging, target)
            staged_in_place = True
        finally:
            if not staged_in_place:
                shutil.rmtree(staging, ignore_errors=True)
        tar_sha = tar_size = None
        tar_reused = False
        if tar_path is not None:
            mtime = max((tar_epoch(b.info.get("created")) for b in builds), default=0)
            tar_sha, tar_size, tar_reused = write_tarball(target, tar_path, arcroot=target.name, mtime=mtime)
        images_rows = imgs.select(
            "project",
            "stem",
            "split",
            "draw",
            "phash",
            "sha256",
            "objects",
            "reason",
            "dup_of",
            "distance",
        ).join(
            kept.select("project", "stem", pl.col("file_rel").alias("file")),
            on=["project", "stem"],
            how="left",
        )
        with ws.store.bulk() as tx:
            mix_id = tx.one(
                "INSERT INTO project_mixes(name, out, format, projects, classes, params, images, train, val, "
                "dropped, leaks, boxes, manifest_sha256, tar_path, tar_sha256, tar_size, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    target.name,
                    str(target),
                    fmt,
                    json.dumps(list(projects)),
                    json.dumps(cmap.names, ensure_ascii=False),
                    json.dumps(params, ensure_ascii=False),
                    kept.height,
                    by_split["train"],
                    by_split["val"],
                    imgs.height - kept.height,
                    leaks,
                    kept_boxes.height,
                    manifest_sha,
                    str(tar_path) if tar_path else None,
                    tar_sha,
                    tar_size,
                    utcnow(),
                ),
            )
            tx.ingest(
                "project_mix_images", images_rows.with_columns(pl.lit(mix_id, pl.Int64).alias("mix_id"))
            )
        result = MixResult(
            mix_id=int(mix_id),
            out=str(target),
            root=str(target / root_rel) if root_rel != "." else str(target),
            format=fmt,
            projects=list(projects),
            classes=cmap.names,
            images=kept.height,
            train=by_split["train"],
            val=by_split["val"],
            dropped=imgs.height - kept.height,
            boxes=kept_boxes.height,
            leaks=leaks,
            moved=moved,
            duplicate_groups=len(groups),
            clipped=clipped,
            not_carried=lost_counts,
            manifest_sha256=manifest_sha,
            tar=str(tar_path) if tar_path else None,
            tar_sha256=tar_sha,
            tar_size=tar_size,
            tar_reused=tar_reused,
            duplicates=groups[:50],
            warnings=warnings,
        )
        j.result = {k: v for k, v in result.to_dict().items() if k not in ("duplicates", "classes")}
    if push is not None:
        assert tar_path is not None and push_host is not None and push_dir is not None
        result.push = push_tarball(
            ws,
            tar_path,
            push_host,
            push_dir,
            mix_id=result.mix_id,
            replace=replace_remote,
            retry=retry,
            progress=progress,
            cancel=cancel,
        )
    return result
