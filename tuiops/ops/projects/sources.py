"""The builds a mix reads: each project's ``build.json``, its images and annotations checked against it."""

from __future__ import annotations

import hashlib
import io
import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import InputError, NotFoundError, UsageError
from tuiops.fsutil import (
    display_path,
)
from tuiops.ops.base import Reporter
from tuiops.ops.projects.mixmodel import PROJECT_RX, ProjectBuild
from tuiops.ops.projects.model import BUILD_JSON, MASTER_SEP, projects_dir

if TYPE_CHECKING:
    import polars as pl

    from tuiops.formats import ReadResult
    from tuiops.workspace import Workspace


def _available(ws: Workspace) -> list[str]:
    root = projects_dir(ws)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "project.toml").is_file())


def load_build(ws: Workspace, name: str) -> ProjectBuild:
    """Read and check project ``name``'s ``build/build.json`` (NotFoundError when there is none)."""
    if not PROJECT_RX.match(name):
        raise UsageError(f"{name!r} is not a project name (letters, digits, '.', '_', '-')")
    folder = projects_dir(ws) / name
    toml = folder / "project.toml"
    if not toml.is_file():
        known = _available(ws)
        raise NotFoundError(
            f"no project {name!r} in {display_path(projects_dir(ws))} (no {name}/project.toml)",
            hint=f"projects here: {', '.join(known)}" if known else "create one with `tuiops project new`",
        )
    declared: list[str] | None = None
    try:
        doc = tomllib.loads(toml.read_text(encoding="utf-8"))
        section = doc.get("project", {})
        if isinstance(section, dict) and isinstance(section.get("classes"), list):
            declared = [str(c) for c in section["classes"]]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{display_path(toml)}: cannot read it: {exc}") from exc
    build_dir = folder / "build"
    bj = build_dir / BUILD_JSON
    if not bj.is_file():
        raise NotFoundError(
            f"project {name!r} has no finished build ({display_path(bj)} does not exist)",
            hint=f"run `tuiops project build {name}` first",
        )
    raw = bj.read_bytes()
    try:
        info = json.loads(raw)
    except ValueError as exc:
        raise InputError(f"{display_path(bj)}: not valid JSON: {exc}", hint="rebuild the project") from exc
    if not isinstance(info, dict):
        raise InputError(f"{display_path(bj)}: not a build description (not a JSON object)")
    if info.get("project") != name:
        raise InputError(
            f"{display_path(bj)} belongs to project {info.get('project')!r}, not {name!r}",
            hint=f"rebuild it with `tuiops project build {name}`",
        )
    classes = info.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) and c.strip() for c in classes):
        raise InputError(f"{display_path(bj)}: 'classes' must be a list of class names")
    if len(set(classes)) != len(classes):
        raise InputError(f"{display_path(bj)}: 'classes' repeats a name: {classes}")
    files = info.get("files")
    if not isinstance(files, list):
        raise InputError(f"{display_path(bj)}: 'files' must be a list")
    for i, f in enumerate(files):
        where = f"{display_path(bj)}: files[{i}]"
        if not isinstance(f, dict):
            raise InputError(f"{where} is not an object")
        for key in ("image", "annotation", "sha256"):
            if not isinstance(f.get(key), str) or not f[key]:
                raise InputError(f"{where} has no {key!r}")
        for key in ("image", "annotation"):
            p = f[key]
            if p.startswith("/") or ".." in p.split("/"):
                raise InputError(f"{where}: {key} {p!r} points outside the build folder")
        for key in ("width", "height"):
            if not isinstance(f.get(key), int) or f[key] <= 0:
                raise InputError(f"{where}: {key} must be a positive whole number, got {f.get(key)!r}")
    return ProjectBuild(
        name=name,
        folder=folder,
        build_dir=build_dir,
        classes=list(classes),
        info=info,
        build_sha256=hashlib.sha256(raw).hexdigest(),
        files=files,
        declared=declared,
    )


def _checked_image(b: ProjectBuild, f: dict[str, Any], seen: set[str]) -> dict[str, Any]:
    """One image listed in ``build.json``, read and checked against its SHA-256 and size: its row."""
    from PIL import Image, UnidentifiedImageError

    from tuiops.ops.probe import phash_int

    rel = f["image"]
    path = b.build_dir / rel
    stem = Path(rel).stem
    if stem in seen:
        raise InputError(f"{display_path(b.build_dir / BUILD_JSON)} lists image {stem!r} twice")
    seen.add(stem)
    if Path(f["annotation"]).stem != stem:
        raise InputError(
            f"{display_path(b.build_dir / BUILD_JSON)}: image {rel} has annotation {f['annotation']}; "
            "an annotation has the image's stem"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"project {b.name}: cannot read {display_path(path)} listed in build.json: {exc.strerror}",
            hint=f"rebuild it with `tuiops project build {b.name}`",
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != f["sha256"]:
        raise InputError(
            f"project {b.name}: {display_path(path)} changed since the build (SHA-256 {digest[:12]}…, "
            f"build.json says {str(f['sha256'])[:12]}…)",
            hint=f"rebuild it with `tuiops project build {b.name}`",
        )
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            size = im.size
            depth = len(im.getbands())
            ph = phash_int(im)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"project {b.name}: {display_path(path)} is not a readable image: {exc}") from exc
    if size != (f["width"], f["height"]):
        raise InputError(
            f"project {b.name}: {display_path(path)} is {size[0]}×{size[1]}, build.json says "
            f"{f['width']}×{f['height']}",
            hint=f"rebuild it with `tuiops project build {b.name}`",
        )
    return {
        "stem": stem,
        "image": rel,
        "annotation": f["annotation"],
        "ext": Path(rel).suffix.lower(),
        "width": size[0],
        "height": size[1],
        "depth": depth,
        "sha256": digest,
        "phash": ph,
        "master": _master_of(f),
    }


def _master_of(f: dict[str, Any]) -> str | None:
    """The master an image of a build is a variant of: build.json's ``master``, else its source's ``MASTERSTEM__`` name."""
    master = f.get("master")
    if isinstance(master, str) and master:
        return master
    source = f.get("source")
    if isinstance(source, str) and MASTER_SEP in Path(source).stem:
        return Path(source).stem.split(MASTER_SEP, 1)[0]
    return None


def _build_images(b: ProjectBuild, rep: Reporter) -> pl.DataFrame:
    """The images of one build, one row each, checked and hashed."""
    import polars as pl

    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "stem",
            "image",
            "annotation",
            "ext",
            "width",
            "height",
            "depth",
            "sha256",
            "phash",
            "master",
        )
    }
    seen: set[str] = set()
    for f in b.files:
        row = _checked_image(b, f, seen)
        for k, v in row.items():
            rows[k].append(v)
        rep.advance(1, f"{b.name}: {row['stem']}")
    return pl.DataFrame(
        rows,
        schema={
            "stem": pl.String,
            "image": pl.String,
            "annotation": pl.String,
            "ext": pl.String,
            "width": pl.Int64,
            "height": pl.Int64,
            "depth": pl.Int64,
            "sha256": pl.String,
            "phash": pl.Int64,
            "master": pl.String,
        },
    )


def _build_annotations(b: ProjectBuild, imgs: pl.DataFrame) -> tuple[ReadResult, pl.DataFrame]:
    """The build's VOC annotations read, and each image's annotation file (``file_idx``), checked against it."""
    import polars as pl

    from tuiops.formats.voc import read_voc

    ann_dir = b.build_dir / "Annotations"
    wanted = imgs.select("stem", "annotation", "width", "height")
    res = read_voc(ann_dir) if ann_dir.is_dir() else None
    files = (
        res.files.with_columns(("Annotations/" + pl.col("path")).alias("annotation"))
        if res is not None
        else pl.DataFrame(
            schema={"file_idx": pl.Int64, "annotation": pl.String, "size_w": pl.Int64, "size_h": pl.Int64}
        )
    )
    if res is not None and res.problems.height:
        bad = res.problems.join(
            wanted.select(pl.col("annotation").str.strip_prefix("Annotations/").alias("file")),
            on="file",
            how="semi",
        )
        if bad.height:
            first = bad.row(0, named=True)
            raise InputError(
                f"project {b.name}: {display_path(ann_dir)}/{first['file']}: {first['message']}",
                hint=f"fix the master annotation or rebuild it with `tuiops project build {b.name}`",
            )
    found = wanted.join(
        files.select("file_idx", "annotation", "size_w", "size_h"), on="annotation", how="left"
    )
    missing = found.filter(pl.col("file_idx").is_null())
    if missing.height:
        raise InputError(
            f"project {b.name}: {display_path(b.build_dir)}/{missing['annotation'][0]} listed in build.json "
            f"is missing or not a VOC file ({missing.height} such)",
            hint=f"rebuild it with `tuiops project build {b.name}`",
        )
    wrong = found.filter(
        (pl.col("size_w").is_not_null() & (pl.col("size_w") != pl.col("width")))
        | (pl.col("size_h").is_not_null() & (pl.col("size_h") != pl.col("height")))
    )
    if wrong.height:
        r = wrong.row(0, named=True)
        raise InputError(
            f"project {b.name}: {display_path(b.build_dir)}/{r['annotation']} says <size> "
            f"{r['size_w']}×{r['size_h']}, the image is {r['width']}×{r['height']}",
            hint=f"rebuild it with `tuiops project build {b.name}`",
        )
    assert res is not None
    return res, found


def _build_boxes(b: ProjectBuild, res: ReadResult, found: pl.DataFrame) -> pl.DataFrame:
    """The boxes of one build's annotations, with numeric coordinates and the build's classes."""
    import polars as pl

    boxes = (
        res.boxes.join(found.select("file_idx", "stem", "annotation"), on="file_idx", how="inner")
        .with_columns(pl.int_range(pl.len()).over("file_idx").alias("ord"))
        .with_columns(
            pl.col(c).cast(pl.Float64, strict=False).alias(k)
            for c, k in zip(("xmin", "ymin", "xmax", "ymax"), ("x1", "y1", "x2", "y2"), strict=True)
        )
    )
    bad_num = boxes.filter(
        pl.any_horizontal(pl.col("x1", "y1", "x2", "y2").is_null()) | pl.col("name").is_null()
    )
    if bad_num.height:
        r = bad_num.row(0, named=True)
        raise InputError(
            f"project {b.name}: {display_path(b.build_dir)}/{r['annotation']} line {r['line']}: object "
            f"{r['name']!r} has no name or a coordinate that is not a number "
            f"({r['xmin']!r}, {r['ymin']!r}, {r['xmax']!r}, {r['ymax']!r})",
        )
    unknown = boxes.filter(~pl.col("name").is_in(b.classes))
    if unknown.height:
        r = unknown.row(0, named=True)
        raise InputError(
            f"project {b.name}: {display_path(b.build_dir)}/{r['annotation']} line {r['line']}: class "
            f"{r['name']!r} is not one of the build's classes ({', '.join(b.classes)})",
            hint="add it to classes in project.toml and rebuild, or fix the master annotation",
        )
    boxes = boxes.select(
        pl.lit(b.name).alias("project"),
        "stem",
        "ord",
        "name",
        "x1",
        "y1",
        "x2",
        "y2",
        "extra",
        *[pl.col(c).str.strip_chars().alias(f"t{c}") for c in ("xmin", "ymin", "xmax", "ymax")],
    )
    return boxes


def read_project_build(b: ProjectBuild, rep: Reporter) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The images (one row each, checked and hashed) and boxes of one build."""
    import polars as pl

    imgs = _build_images(b, rep).with_columns(pl.lit(b.name).alias("project"))
    box_schema = pl.Schema(
        {
            "project": pl.String,
            "stem": pl.String,
            "ord": pl.Int64,
            "name": pl.String,
            "x1": pl.Float64,
            "y1": pl.Float64,
            "x2": pl.Float64,
            "y2": pl.Float64,
            "extra": pl.String,
            **{f"t{c}": pl.String for c in ("xmin", "ymin", "xmax", "ymax")},
        }
    )
    if imgs.height == 0:
        return imgs, pl.DataFrame(schema=box_schema)
    res, found = _build_annotations(b, imgs)
    return imgs, _build_boxes(b, res, found).cast(box_schema)
