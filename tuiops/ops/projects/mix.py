"""Mix the builds of several dataset projects into one VOC, YOLO or COCO dataset.

A project's build is read only through its ``build.json`` (``projects/NAME/build/``):
the images and VOC annotations it lists, checked against the SHA-256 and sizes it
records. The mix then

- builds one class map across the projects: the union of their classes by name, in
  the order of the projects given (or the order of a ``--classes`` file), after the
  explicit renames of ``--map [PROJECT:]OLD=NEW``;
- splits by master group, per project and per class (:mod:`tuiops.ops.projects.split`):
  the images a build made from one master never straddle train and val, every
  project and class gets its share of val (within one image where its groups are
  single images; never none when it has at least 4 images), and the table of it per
  project and class is returned, stored and written to the manifest;
- hashes every image (perceptual hash, 64 bits) and finds near-duplicates across
  master groups (Hamming distance ≤ ``max_distance``) with the chunked equi-join of
  :mod:`tuiops.ops.similar`: ``dupes="drop"`` drops the images that repeat an earlier
  master group's (projects in the order given, then stems); ``dupes="group"`` keeps
  them in the split of that group (``strict``: an error instead). Variants of one
  master are never dropped as duplicates of each other;
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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, InputError, NotFoundError, UsageError
from tuiops.fsutil import (
    display_path,
)
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job
from tuiops.ops.projects.classmap import ClassMap, MapRule, build_class_map, parse_map
from tuiops.ops.projects.mixmodel import (
    DUPES,
    FORMATS,
    VOC_YEARS,
    YOLO_EXTS,
    MixResult,
    ProjectBuild,
)
from tuiops.ops.projects.mixout import check_out, record_mix, stage_output
from tuiops.ops.projects.model import projects_dir
from tuiops.ops.projects.push import push_tarball, raise_unknown_host
from tuiops.ops.projects.sources import load_build, read_project_build
from tuiops.ops.projects.split import dupes_and_split, split_table
from tuiops.ops.projects.tarball import tar_epoch, write_tarball

if TYPE_CHECKING:
    import polars as pl

    from tuiops.remote.hosts import RetryPolicy
    from tuiops.workspace import Workspace


def _stale_builds(ws: Workspace, projects: Sequence[str]) -> list[tuple[str, str, list[str]]]:
    """``(project, state, why)`` of every project whose build is not current (:func:`build_staleness`)."""
    from tuiops.ops.projects.model import build_staleness, load_project

    out = []
    for name in projects:
        try:
            project = load_project(ws, name)
        except NotFoundError:
            continue  # reading its build names what is there
        state, why = build_staleness(ws, project, files=False)
        if state != "up to date":
            out.append((name, state, why))
    return out


def _current_builds(
    ws: Workspace,
    projects: Sequence[str],
    allow_stale: bool,
    build: bool,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> tuple[list[str], list[str]]:
    """Make sure the mix reads current builds: rebuild the stale ones (``build``), refuse them, or
    (``allow_stale``) warn; the warnings and the projects rebuilt."""
    from tuiops.ops.projects.build import build_project

    stale = _stale_builds(ws, projects)
    if build:
        for name, _, _ in stale:
            build_project(ws, name, progress=progress, cancel=cancel)
        return [], [name for name, _, _ in stale]
    old = [(n, why) for n, state, why in stale if state == "stale"]
    if old and not allow_stale:
        shown = "; ".join(f"{n}: {', '.join(why)}" for n, why in old)
        raise ConflictError(
            f"the build of {', '.join(n for n, _ in old)} is stale ({shown})",
            hint="add --build to rebuild what is stale first, or --allow-stale to mix the old build",
        )
    return [
        f"project {n} is stale ({', '.join(why)}); this mix uses the old build: rebuild it with "
        f"`tuiops project build {n}`"
        for n, why in old
    ], []


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


def _check_options(
    ws: Workspace,
    projects: Sequence[str],
    fmt: str,
    dupes: str,
    val: float,
    max_distance: int,
    voc_year: str | None,
    yaml_path: str | None,
    push: str | None,
) -> tuple[str | None, str | None, str | None]:
    """Refuse options that do not fit together; the VOC year as text and ``--push``'s host and folder."""
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
    return voc_year, push_host, push_dir


def _tar_path(target: Path, tar: str | os.PathLike[str] | None, push: str | None) -> Path | None:
    """Where the tarball goes (``OUT.tar.gz`` beside the output for a push without ``--tar``), checked."""
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
    return tar_path


def _build_warnings(builds: Sequence[ProjectBuild]) -> list[str]:
    """Builds whose classes differ from their project.toml."""
    return [
        f"project {b.name}: project.toml declares classes {b.declared} but its build has {b.classes}; "
        f"rebuild it with `tuiops project build {b.name}`"
        for b in builds
        if b.declared is not None and b.declared != b.classes
    ]


def _read_builds(
    builds: Sequence[ProjectBuild], projects: Sequence[str], cmap: ClassMap, rep: Reporter
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All images of the builds in mix order (``idx``, ``key``) and their boxes with classes."""
    import polars as pl

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
    cls = pl.DataFrame(cmap.sources).select(
        "project", "name", pl.col("class"), pl.col("class_id").cast(pl.Int64)
    )
    boxes = (
        pl.concat(box_parts)
        .join(imgs.select("project", "stem", "idx", "width", "height"), on=["project", "stem"])
        .join(cls, on=["project", "name"], how="left")
    )
    return imgs, boxes


def _clip_boxes(
    boxes: pl.DataFrame, imgs: pl.DataFrame, builds: Sequence[ProjectBuild]
) -> tuple[pl.DataFrame, int]:
    """Boxes clipped to their image and how many were; a box with no area left is refused."""
    import polars as pl

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
    return boxes, clipped


def _name_outputs(imgs: pl.DataFrame, fmt: str) -> pl.DataFrame:
    """Each image's output ``file`` (VOC: JPEG; YOLO: JPEG where ultralytics cannot read the type); clashes refused."""
    import polars as pl

    out_ext = pl.col("ext")
    if fmt == "voc":
        out_ext = pl.lit(".jpg")
    elif fmt == "yolo":
        out_ext = pl.when(pl.col("ext").is_in(list(YOLO_EXTS))).then(pl.col("ext")).otherwise(pl.lit(".jpg"))
    imgs = imgs.with_columns((pl.col("stem") + out_ext).alias("file"))
    clash = imgs.filter(pl.col("split") != "dropped").filter(pl.col("stem").is_duplicated())
    if clash.height:
        raise ConflictError(
            f"image name {clash['stem'][0]} comes from more than one project "
            f"({', '.join(clash['project'].unique().sort().to_list())})",
            hint="builds name their images PROJECT_NNNNNN; rebuild the projects",
        )
    return imgs


def _not_carried_warning(fmt: str, lost_counts: dict[str, int], lost: list[dict[str, Any]]) -> str:
    """The warning for the VOC flags and tags the format cannot hold, with the first boxes that lose them."""
    shown = "; ".join(
        f"{o['project']}/{o['stem']} object {o['object']} ({', '.join(o['lost'])})" for o in lost[:5]
    )
    more = f" and {len(lost) - 5} more (manifest.json lists them)" if len(lost) > 5 else ""
    what = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in lost_counts.items())
    return (
        f"{fmt.upper()} cannot hold every VOC object flag or tag of the builds: {len(lost)} box(es) "
        f"lose them ({what}): {shown}{more}; --format voc keeps them all"
    )


def _mix_images(
    builds: Sequence[ProjectBuild],
    projects: Sequence[str],
    cmap: ClassMap,
    seed: int,
    fmt: str,
    split_options: tuple[int, str, bool, float],
    rep: Reporter,
) -> tuple[pl.DataFrame, pl.DataFrame, int, int, int, list[dict[str, Any]], list[dict[str, Any]]]:
    """The images of the builds split and named, their boxes clipped; the clipped, leak and moved counts,
    the duplicate groups and the split's table per project and class.

    ``split_options``: ``(max_distance, dupes, strict, val)`` of :func:`dupes_and_split`.
    """
    import polars as pl

    imgs, boxes = _read_builds(builds, projects, cmap, rep)
    boxes, clipped = _clip_boxes(boxes, imgs, builds)
    objects = boxes.group_by("idx").agg(pl.len().cast(pl.Int64).alias("objects"))
    imgs = imgs.join(objects, on="idx", how="left").with_columns(pl.col("objects").fill_null(0)).sort("idx")
    image_classes = boxes.select("idx", "class").unique().sort("idx", "class")
    imgs, leaks, moved, groups = dupes_and_split(imgs, image_classes, seed, split_options)
    table = split_table(imgs, image_classes, split_options[3])
    imgs = _name_outputs(imgs, fmt)
    return imgs, boxes, clipped, leaks, moved, groups, table


def _previous_mix(
    ws: Workspace, target: Path, params: dict[str, Any], builds: Sequence[ProjectBuild], cmap: ClassMap
) -> MixResult | None:
    """The mix already in ``target`` when it was made with these parameters from these very builds and
    nothing in it changed since (every file checked against its manifest); else None."""
    import hashlib
    import json

    from tuiops.ops.projects.mixmodel import MANIFEST, MIX_KIND
    from tuiops.ops.projects.mixout import verify_output

    path = target / MANIFEST
    try:
        raw = path.read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("kind") != MIX_KIND:
        return None
    same = (
        manifest.get("params") == {k: v for k, v in params.items() if k not in ("out", "projects")}
        and [(p.get("name"), p.get("build_json_sha256")) for p in manifest.get("projects", [])]
        == [(b.name, b.build_sha256) for b in builds]
        and manifest.get("classes") == cmap.names
    )
    if not same:
        return None
    sha = hashlib.sha256(raw).hexdigest()
    row = ws.store.execute(
        "SELECT id FROM project_mixes WHERE out = ? AND manifest_sha256 = ? ORDER BY id DESC LIMIT 1",
        (str(target), sha),
    ).fetchone()
    if row is None or verify_output(target):
        return None
    c = manifest["counts"]
    root_rel = manifest.get("root", ".")
    return MixResult(
        mix_id=int(row[0]),
        out=str(target),
        root=str(target / root_rel) if root_rel != "." else str(target),
        format=params["format"],
        projects=list(params["projects"]),
        classes=cmap.names,
        images=c["images"],
        train=c["train"],
        val=c["val"],
        dropped=c["dropped"],
        boxes=c["boxes"],
        leaks=c["leaks"],
        moved=c["moved"],
        duplicate_groups=c["leaks"],
        clipped=c["clipped"],
        not_carried=c.get("not_carried", {}),
        manifest_sha256=sha,
        split_table=c.get("split", []),
        reused=True,
    )


def _mix_params(
    projects: Sequence[str],
    target: Path,
    fmt: str,
    val: float,
    seed: int,
    rules: Sequence[MapRule],
    classes_file: str | os.PathLike[str] | None,
    merge: bool,
    max_distance: int,
    dupes: str,
    strict: bool,
    voc_year: str | None,
    yaml_path: str | None,
) -> dict[str, Any]:
    """The mix's parameters as its job, its manifest and its store row keep them."""
    return {
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


def _mix_result(
    mix_id: int,
    target: Path,
    root_rel: str,
    fmt: str,
    projects: Sequence[str],
    cmap: ClassMap,
    imgs: pl.DataFrame,
    kept: pl.DataFrame,
    counts: dict[str, Any],
    groups: list[dict[str, Any]],
    manifest_sha: str,
    warnings: list[str],
) -> MixResult:
    """The mix's result (without its tarball and push)."""
    return MixResult(
        mix_id=mix_id,
        out=str(target),
        root=str(target / root_rel) if root_rel != "." else str(target),
        format=fmt,
        projects=list(projects),
        classes=cmap.names,
        images=kept.height,
        train=counts["train"],
        val=counts["val"],
        dropped=imgs.height - kept.height,
        boxes=counts["boxes"],
        leaks=counts["leaks"],
        moved=counts["moved"],
        duplicate_groups=len(groups),
        clipped=counts["clipped"],
        not_carried=counts["not_carried"],
        manifest_sha256=manifest_sha,
        duplicates=groups[:50],
        warnings=warnings,
    )


def _make_mix(
    ws: Workspace,
    target: Path,
    params: dict[str, Any],
    builds: Sequence[ProjectBuild],
    cmap: ClassMap,
    warnings: list[str],
    tar_path: Path | None,
    rep_args: tuple[int, ProgressFn | None, CancelToken | None, bool],
) -> MixResult:
    """Read, split and write the mix (and its tarball) as one job; its result."""
    import polars as pl

    from tuiops.ops.projects.mixfiles import not_carried

    total, progress, cancel, overwrite = rep_args
    projects, fmt, seed = params["projects"], params["format"], params["seed"]
    max_distance, dupes, strict, val = (
        params["max_distance"],
        params["dupes"],
        params["strict"],
        params["val"],
    )
    voc_year, yaml_path = params["voc_year"], params["yaml_path"]
    with job(ws.store, "project.mix", params, total=total) as j:
        rep = Reporter("project.mix", progress, cancel, total=2 * total, job_id=j.id)
        imgs, boxes, clipped, leaks, moved, groups, table = _mix_images(
            builds, projects, cmap, seed, fmt, (max_distance, dupes, strict, val), rep
        )
        kept = imgs.filter(pl.col("split") != "dropped")
        kept_boxes = boxes.join(kept.select("idx"), on="idx", how="semi")
        lost_counts, lost = not_carried(kept_boxes, fmt)
        if lost:
            warnings.append(_not_carried_warning(fmt, lost_counts, lost))
        rep.update(total, "writing", total=total + kept.height)
        kept, root_rel, counts, manifest_sha = stage_output(
            target,
            overwrite,
            fmt,
            imgs,
            kept,
            kept_boxes,
            builds,
            cmap,
            params,
            voc_year,
            yaml_path,
            {"leaks": leaks, "moved": moved, "clipped": clipped, "not_carried": lost_counts, "split": table},
            lost,
            rep,
        )
        tar_sha = tar_size = None
        tar_reused = False
        if tar_path is not None:
            mtime = max((tar_epoch(b.info.get("created")) for b in builds), default=0)
            tar_sha, tar_size, tar_reused = write_tarball(target, tar_path, arcroot=target.name, mtime=mtime)
        tarball = (tar_path, tar_sha, tar_size)
        mix_id = record_mix(ws, target, params, cmap.names, imgs, kept, counts, manifest_sha, tarball)
        result = _mix_result(
            mix_id, target, root_rel, fmt, projects, cmap, imgs, kept, counts, groups, manifest_sha, warnings
        )
        result.split_table = table
        result.tar = str(tar_path) if tar_path else None
        result.tar_sha256, result.tar_size, result.tar_reused = tar_sha, tar_size, tar_reused
        j.result = {k: v for k, v in result.to_dict().items() if k not in ("duplicates", "classes")}
    return result


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
    allow_stale: bool = False,
    build: bool = False,
    retry: RetryPolicy | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> MixResult:
    """Mix the builds of ``projects`` into one dataset in ``out`` (see the module docstring).

    ``tar``: also write a ``.tar.gz`` of the output; ``push``: ``HOST:PATH``, send the
    tarball (``OUT.tar.gz`` beside the output when ``tar`` is not given) into folder
    PATH on the host and check its SHA-256 there. Relative local paths are taken from
    the current folder. A stale build (:func:`~tuiops.ops.projects.model.build_staleness`)
    is refused unless ``allow_stale`` (a warning then); ``build`` rebuilds the stale and
    unbuilt projects here first. A mix made before into ``out`` with the same parameters
    from the same builds, and unchanged since, is taken as it is (``reused``).
    """
    from tuiops.formats.classes import read_names_file

    voc_year, push_host, push_dir = _check_options(
        ws, projects, fmt, dupes, val, max_distance, voc_year, yaml_path, push
    )
    target = Path(out).expanduser().absolute()
    tar_path = _tar_path(target, tar, push)
    check_out(target, overwrite)
    _check_not_inputs(ws, target, projects)
    order = read_names_file(Path(classes_file).expanduser()) if classes_file is not None else None
    rules = parse_map(maps)
    stale_warnings, rebuilt = _current_builds(ws, projects, allow_stale, build, progress, cancel)
    builds = [load_build(ws, p) for p in projects]
    cmap = build_class_map(builds, rules, order=order, merge=merge)
    warnings = _build_warnings(builds) + stale_warnings
    total = sum(len(b.files) for b in builds)
    params = _mix_params(
        projects,
        target,
        fmt,
        val,
        seed,
        rules,
        classes_file,
        merge,
        max_distance,
        dupes,
        strict,
        voc_year,
        yaml_path,
    )
    result = _previous_mix(ws, target, params, builds, cmap)
    if result is not None:
        result.warnings = warnings
        result.rebuilt = rebuilt
        if tar_path is not None:
            mtime = max((tar_epoch(b.info.get("created")) for b in builds), default=0)
            result.tar_sha256, result.tar_size, result.tar_reused = write_tarball(
                target, tar_path, arcroot=target.name, mtime=mtime
            )
            result.tar = str(tar_path)
    else:
        rep_args = (total, progress, cancel, overwrite)
        result = _make_mix(ws, target, params, builds, cmap, warnings, tar_path, rep_args)
        result.rebuilt = rebuilt
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
