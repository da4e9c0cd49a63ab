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

import contextlib
import datetime as _dt
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, InputError, NotFoundError, RemoteError, UsageError
from tuiops.fsutil import (
    create_temp_dir,
    create_temp_file,
    disk_error,
    display_path,
    replace_folder,
    sha256_file,
)
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job

if TYPE_CHECKING:
    import polars as pl

    from tuiops.remote.hosts import RetryPolicy
    from tuiops.workspace import Workspace

MIX_KIND = "tuiops-project-mix"
MANIFEST = "manifest.json"
BUILD_JSON = "build.json"
FORMATS = ("voc", "yolo", "coco")
DUPES = ("drop", "group")
VOC_YEARS = ("2007", "2008", "2009", "2010", "2011", "2012")
SPLITS = ("train", "val")

#: Image extensions ultralytics reads without extra packages; others are re-encoded as JPEG.
YOLO_EXTS = frozenset({".bmp", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp"})

_PROJECT_RX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MAP_RX = re.compile(r"^(?:(?P<project>[^:=]+):)?(?P<old>[^=]+)=(?P<new>.+)$")


# -- builds ------------------------------------------------------------------------------------------
@dataclass
class ProjectBuild:
    """One project's finished build, as its ``build.json`` describes it."""

    name: str
    folder: Path
    build_dir: Path
    classes: list[str]
    info: dict[str, Any]
    build_sha256: str
    files: list[dict[str, Any]]
    declared: list[str] | None = None


def projects_dir(ws: Workspace) -> Path:
    """The workspace's ``projects/`` folder."""
    return ws.root / "projects"


def _available(ws: Workspace) -> list[str]:
    root = projects_dir(ws)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "project.toml").is_file())


def load_build(ws: Workspace, name: str) -> ProjectBuild:
    """Read and check project ``name``'s ``build/build.json`` (NotFoundError when there is none)."""
    if not _PROJECT_RX.match(name):
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


# -- class map -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MapRule:
    """``[project:]old=new``: rename class ``old`` (of one project, or of every project) to ``new``."""

    project: str | None
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.project + ':' if self.project else ''}{self.old}={self.new}"


def parse_map(items: Sequence[str]) -> list[MapRule]:
    """Parse ``--map`` values (``OLD=NEW`` or ``PROJECT:OLD=NEW``)."""
    rules = []
    for item in items:
        m = _MAP_RX.match(item.strip())
        if not m or not m.group("old").strip() or not m.group("new").strip():
            raise UsageError(
                f"--map {item!r}: expected OLD=NEW or PROJECT:OLD=NEW (e.g. kanji:ka=hiragana_ka)"
            )
        project = m.group("project")
        rules.append(
            MapRule(project.strip() if project else None, m.group("old").strip(), m.group("new").strip())
        )
    return rules


def _fold(name: str) -> str:
    return re.sub(r"[\s_-]+", "_", name.casefold()).strip("_")


@dataclass
class ClassMap:
    """The mix's class names and where each project's class goes."""

    names: list[str]
    sources: list[dict[str, Any]]

    def lookup(self) -> dict[tuple[str, str], int]:
        return {(s["project"], s["name"]): s["class_id"] for s in self.sources}


def build_class_map(
    builds: Sequence[ProjectBuild],
    rules: Sequence[MapRule] = (),
    *,
    order: Sequence[str] | None = None,
    merge: bool = False,
) -> ClassMap:
    """The class map of a mix (see the module docstring for what a conflict is).

    ``order``: the class names in the order of a ``--classes`` file; every class of the
    mix must be in it. Without it, names come in order of first appearance.
    """
    by_name = {b.name: b for b in builds}
    exact: dict[tuple[str, str], str] = {}
    general: dict[str, str] = {}
    for r in rules:
        if r.project is not None:
            if r.project not in by_name:
                raise UsageError(
                    f"--map {r}: project {r.project!r} is not in this mix ({', '.join(by_name)})"
                )
            if r.old not in by_name[r.project].classes:
                raise UsageError(
                    f"--map {r}: project {r.project!r} has no class {r.old!r} "
                    f"(its classes: {', '.join(by_name[r.project].classes)})"
                )
            key = (r.project, r.old)
            if exact.get(key, r.new) != r.new:
                raise UsageError(
                    f"--map gives {r.project}:{r.old} two new names: {exact[key]!r} and {r.new!r}"
                )
            exact[key] = r.new
        else:
            if not any(r.old in b.classes for b in builds):
                raise UsageError(f"--map {r}: no project of this mix has a class {r.old!r}")
            if general.get(r.old, r.new) != r.new:
                raise UsageError(f"--map gives {r.old} two new names: {general[r.old]!r} and {r.new!r}")
            general[r.old] = r.new
    targets: list[tuple[str, str, str]] = []
    for b in builds:
        for c in b.classes:
            targets.append((b.name, c, exact.get((b.name, c), general.get(c, c))))
    # a name that looks like another one
    seen_fold: dict[str, tuple[str, str]] = {}
    for project, _old, new in targets:
        f = _fold(new)
        if f in seen_fold and seen_fold[f][1] != new:
            other_project, other = seen_fold[f]
            raise ConflictError(
                f"class {other!r} of project {other_project!r} and class {new!r} of project {project!r} "
                "differ only in case or separators: one class or two?",
                hint=f"merge them with --map {project}:{new}={other} --merge, or rename one with --map",
            )
        seen_fold.setdefault(f, (project, new))
    # several names onto one: a merge
    sources: dict[str, list[tuple[str, str]]] = {}
    for project, old, new in targets:
        sources.setdefault(new, []).append((project, old))
    if not merge:
        for new, srcs in sources.items():
            olds = sorted({o for _, o in srcs})
            if len(olds) > 1:
                shown = " and ".join(f"{p}:{o}" for p, o in srcs)
                raise ConflictError(
                    f"{shown} would all become class {new!r}: two different classes merged into one",
                    hint="pass --merge if they are the same thing, or map them to different names",
                )
    if order is not None:
        names = list(order)
        missing = [(p, o, n) for p, o, n in targets if n not in names]
        if missing:
            shown = ", ".join(f"{p}:{o}" + (f" (as {n!r})" if n != o else "") for p, o, n in missing[:10])
            raise UsageError(
                f"the classes file does not list {shown}",
                hint="add the names to the classes file or map them onto names it lists",
            )
    else:
        names = list(dict.fromkeys(n for _, _, n in targets))
    ids = {n: i for i, n in enumerate(names)}
    return ClassMap(
        names=names,
        sources=[{"project": p, "name": o, "class": n, "class_id": ids[n]} for p, o, n in targets],
    )


# -- stable split ----------------------------------------------------------------------------------------
def split_draws(projects: pl.Series, stems: pl.Series, seed: int) -> pl.Series:
    """The stable draw in [0, 1) of each image (a function of project, stem and seed only)."""
    import polars as pl

    from tuiops.ops.dataset import split_draw

    keys = pl.DataFrame({"p": projects, "s": stems}).select(pl.concat_str("p", pl.lit("/"), "s"))
    return split_draw(keys.to_series(), seed)


# -- result ------------------------------------------------------------------------------------------------
@dataclass
class PushResult:
    """A tarball pushed to a host and checked there."""

    host: str
    path: str
    sha256: str
    size: int
    sent: int
    resumed: bool
    skipped: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MixResult:
    """What a mix wrote and found."""

    mix_id: int
    out: str
    root: str
    format: str
    projects: list[str]
    classes: list[str]
    images: int
    train: int
    val: int
    dropped: int
    boxes: int
    leaks: int
    moved: int
    duplicate_groups: int
    clipped: int
    manifest_sha256: str
    not_carried: dict[str, int] = field(default_factory=dict)
    tar: str | None = None
    tar_sha256: str | None = None
    tar_size: int | None = None
    tar_reused: bool = False
    push: PushResult | None = None
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["push"] = self.push.to_dict() if self.push else None
        return d


# -- reading the builds --------------------------------------------------------------------------------
def _read_build(b: ProjectBuild, rep: Reporter) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The images (one row each, checked and hashed) and boxes of one build."""
    import polars as pl
    from PIL import Image, UnidentifiedImageError

    from tuiops.formats.voc import read_voc
    from tuiops.ops.probe import phash_int

    rows: dict[str, list[Any]] = {
        k: [] for k in ("stem", "image", "annotation", "ext", "width", "height", "depth", "sha256", "phash")
    }
    seen: set[str] = set()
    for f in b.files:
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
            raise InputError(
                f"project {b.name}: {display_path(path)} is not a readable image: {exc}"
            ) from exc
        if size != (f["width"], f["height"]):
            raise InputError(
                f"project {b.name}: {display_path(path)} is {size[0]}×{size[1]}, build.json says "
                f"{f['width']}×{f['height']}",
                hint=f"rebuild it with `tuiops project build {b.name}`",
            )
        rows["stem"].append(stem)
        rows["image"].append(rel)
        rows["annotation"].append(f["annotation"])
        rows["ext"].append(Path(rel).suffix.lower())
        rows["width"].append(size[0])
        rows["height"].append(size[1])
        rows["depth"].append(depth)
        rows["sha256"].append(digest)
        rows["phash"].append(ph)
        rep.advance(1, f"{b.name}: {stem}")
    imgs = pl.DataFrame(
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
        },
    ).with_columns(pl.lit(b.name).alias("project"))
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
    return imgs, boxes.cast(box_schema)


# -- duplicates and leaks --------------------------------------------------------------------------------
def _dupes_and_split(
    imgs: pl.DataFrame, max_distance: int, dupes: str, strict: bool, val: float
) -> tuple[pl.DataFrame, int, int, list[dict[str, Any]]]:
    """Final splits: duplicates dropped or grouped, leaks fixed (or refused with ``strict``).

    ``imgs`` is in mix order with ``idx``, ``key``, ``phash``, ``draw``. Returns it with
    ``split``, ``reason``, ``dup_of``, ``distance``; the leak count; the count of images
    moved; the duplicate groups.
    """
    import polars as pl

    from tuiops.ops.join import connected_components
    from tuiops.ops.similar import hash_pairs

    imgs = imgs.with_columns(
        pl.when(pl.col("draw") < val).then(pl.lit("val")).otherwise(pl.lit("train")).alias("split0")
    )
    nodes = imgs.select(
        pl.col("idx").cast(pl.Int64).alias("node"), pl.col("phash").reinterpret(signed=False).alias("h")
    )
    pairs = hash_pairs(nodes, max_distance)
    comp = connected_components(pairs, nodes["node"]).rename({"node": "idx", "component": "group"})
    imgs = imgs.join(comp, on="idx", how="left").with_columns(pl.col("group").fill_null(pl.col("idx")))
    first = imgs.select(
        pl.col("idx").alias("group"),
        pl.col("key").alias("first_key"),
        pl.col("split0").alias("first_split"),
        pl.col("phash").alias("first_phash"),
    )
    imgs = imgs.join(first, on="group", how="left").with_columns(
        pl.len().over("group").alias("group_size"),
        pl.col("split0").n_unique().over("group").alias("_splits"),
        pl.col("phash").xor(pl.col("first_phash")).bitwise_count_ones().cast(pl.Int64).alias("_dist"),
    )
    multi = imgs.filter(pl.col("group_size") > 1)
    leaky = multi.filter(pl.col("_splits") > 1)
    leaks = leaky["group"].n_unique()
    groups = (
        multi.group_by("group", maintain_order=True)
        .agg(
            pl.col("first_key").first().alias("kept"),
            pl.col("key").filter(pl.col("idx") != pl.col("group")).alias("others"),
            pl.col("_dist").max().alias("max_distance"),
            pl.col("split0").unique(maintain_order=True).alias("splits"),
        )
        .drop("group")
        .to_dicts()
    )
    if strict and leaks:
        shown = "; ".join(
            f"{g['kept']} ~ {', '.join(g['others'][:3])}" for g in groups if len(g["splits"]) > 1
        )[:600]
        raise ConflictError(
            f"{leaks} group(s) of near-duplicate images (Hamming distance ≤ {max_distance}) straddle "
            f"train and val: {shown}",
            hint="drop --strict to move each group into one split, or remove the duplicates from the projects",
        )
    is_dup = (pl.col("group_size") > 1) & (pl.col("idx") != pl.col("group"))
    if dupes == "drop":
        split = pl.when(is_dup).then(pl.lit("dropped")).otherwise(pl.col("split0"))
        reason = pl.when(is_dup).then(pl.lit("duplicate")).otherwise(pl.lit(None, pl.String))
    else:
        split = pl.col("first_split")
        reason = (
            pl.when(pl.col("first_split") != pl.col("split0"))
            .then(pl.lit("leak"))
            .otherwise(pl.lit(None, pl.String))
        )
    imgs = imgs.with_columns(split.alias("split"), reason.alias("reason")).with_columns(
        pl.when(is_dup).then(pl.col("first_key")).otherwise(pl.lit(None, pl.String)).alias("dup_of"),
        pl.when(is_dup).then(pl.col("_dist")).otherwise(pl.lit(None, pl.Int64)).alias("distance"),
    )
    moved = imgs.filter(pl.col("reason") == "leak").height
    keep = [
        c for c in imgs.columns if c not in ("first_key", "first_split", "first_phash", "_splits", "_dist")
    ]
    return imgs.select(keep), leaks, moved, groups


# -- writing ------------------------------------------------------------------------------------------------
def _place_image(src: Path, dst: Path, reencode: bool) -> str | None:
    """Link (or copy) ``src`` to ``dst``; re-encode as JPEG when asked. Returns the new SHA-256 if re-encoded."""
    if reencode:
        from PIL import Image

        with Image.open(src) as im:
            buf = io.BytesIO()
            im.convert("RGB").save(buf, format="JPEG", quality=95)
        data = buf.getvalue()
        dst.write_bytes(data)
        return hashlib.sha256(data).hexdigest()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
    return None


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
    from tuiops.ops.project import input_hashes, load_project

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


def _epoch(created: Any) -> int:
    try:
        return int(_dt.datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def write_tarball(src: Path, tar_path: Path, *, arcroot: str, mtime: int = 0) -> tuple[str, int, bool]:
    """Tar ``src`` as ``arcroot/…`` into ``tar_path`` (gzip), reproducibly and atomically.

    Members are sorted, owned by 0:0 with no names, mode 644 (755 for folders) and time
    ``mtime``; the gzip header has no name and time 0. When ``tar_path`` already holds
    the same bytes it is kept as it is (so a push of it can resume). Returns the SHA-256,
    the size and whether the existing file was kept.
    """
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = create_temp_file(tar_path.parent, f".{tar_path.name[:80]}.", ".part")
        entries: list[tuple[str, Path]] = []
        for folder, dirs, files in os.walk(src):
            dirs.sort()
            rel = Path(folder).relative_to(src).as_posix()
            base = arcroot if rel == "." else f"{arcroot}/{rel}"
            entries.append((base, Path(folder)))
            entries.extend((f"{base}/{f}", Path(folder) / f) for f in sorted(files))
        entries.sort(key=lambda e: e[0])
        digest = hashlib.sha256()

        class _Hashing(io.RawIOBase):
            def __init__(self, fh: Any) -> None:
                self.fh = fh

            def writable(self) -> bool:
                return True

            def write(self, b: Any) -> int:
                digest.update(b)
                return self.fh.write(b)

        with os.fdopen(fd, "wb") as raw:
            sink = _Hashing(raw)
            with (
                gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=6) as gz,
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf,
            ):
                for name, path in entries:
                    ti = tarfile.TarInfo(name)
                    ti.uid = ti.gid = 0
                    ti.uname = ti.gname = ""
                    ti.mtime = mtime
                    if path.is_dir():
                        ti.type = tarfile.DIRTYPE
                        ti.mode = 0o755
                        tf.addfile(ti)
                    else:
                        ti.mode = 0o644
                        ti.size = path.stat().st_size
                        with open(path, "rb") as fh:
                            tf.addfile(ti, fh)
            raw.flush()
            os.fsync(raw.fileno())
            size = raw.tell()
        sha = digest.hexdigest()
        if tar_path.is_file() and tar_path.stat().st_size == size and sha256_file(tar_path) == sha:
            return sha, size, True
        os.replace(tmp, tar_path)
        tmp = None
        return sha, size, False
    except OSError as exc:
        raise disk_error(tar_path, exc) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _write_output(
    staging: Path,
    fmt: str,
    kept: pl.DataFrame,
    boxes: pl.DataFrame,
    builds: dict[str, ProjectBuild],
    names: Sequence[str],
    voc_year: str | None,
    yaml_path: str | None,
    rep: Reporter,
) -> tuple[pl.DataFrame, dict[str, str], str]:
    """Write every file of the dataset below ``staging``; returns the kept images with
    ``file_rel``/``out_sha256``/``label_rel``/``label_sha256``, the other files' SHA-256 and the layout root."""
    import polars as pl

    from tuiops.formats.voc import labelmap_text
    from tuiops.ops import project_mix_files as mf

    root_rel = f"VOCdevkit/VOC{voc_year}" if (fmt == "voc" and voc_year) else ""
    root = staging / root_rel if root_rel else staging
    root.mkdir(parents=True, exist_ok=True)
    others: dict[str, str] = {}

    def rel(p: Path) -> str:
        return p.relative_to(staging).as_posix()

    def put_text(p: Path, data: bytes) -> str:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    if fmt == "voc":
        img_dir = {s: root / "JPEGImages" for s in SPLITS}
        texts = mf.voc_docs(kept, boxes, f"VOC{voc_year}" if voc_year else "JPEGImages")
        lab_dir = {s: root / "Annotations" for s in SPLITS}
        lab_ext = ".xml"
    elif fmt == "yolo":
        img_dir = {s: root / "images" / s for s in SPLITS}
        texts = mf.yolo_texts(kept, boxes)
        lab_dir = {s: root / "labels" / s for s in SPLITS}
        lab_ext = ".txt"
    else:
        img_dir = {s: root / "images" / s for s in SPLITS}
        texts = kept.select("idx", pl.lit(None, pl.String).alias("text"))
        lab_dir = {}
        lab_ext = ""
    for d in [*img_dir.values(), *lab_dir.values()]:
        d.mkdir(parents=True, exist_ok=True)
    rows = kept.join(texts, on="idx", how="left").sort("idx")
    file_rel: list[str] = []
    out_sha: list[str] = []
    label_rel: list[str | None] = []
    label_sha: list[str | None] = []
    for r in rows.iter_rows(named=True):
        b = builds[r["project"]]
        src = b.build_dir / r["image"]
        dst = img_dir[r["split"]] / r["file"]
        new_sha = _place_image(src, dst, r["file"] != r["stem"] + r["ext"])
        file_rel.append(rel(dst))
        out_sha.append(new_sha or r["sha256"])
        if lab_dir:
            lp = lab_dir[r["split"]] / (r["stem"] + lab_ext)
            label_sha.append(put_text(lp, (r["text"] or "").encode("utf-8")))
            label_rel.append(rel(lp))
        else:
            label_rel.append(None)
            label_sha.append(None)
        rep.advance(1, f"writing {r['file']}")
    kept = rows.drop("text").with_columns(
        pl.Series("file_rel", file_rel, pl.String),
        pl.Series("out_sha256", out_sha, pl.String),
        pl.Series("label_rel", label_rel, pl.String),
        pl.Series("label_sha256", label_sha, pl.String),
    )
    if fmt == "voc":
        sets = root / "ImageSets" / "Main"
        for s in (*SPLITS, "trainval"):
            stems = kept.filter(pl.col("split") == s) if s != "trainval" else kept
            text = "".join(f"{x}\n" for x in sorted(stems["stem"].to_list()))
            p = sets / f"{s}.txt"
            others[rel(p)] = put_text(p, text.encode("utf-8"))
        p = root / "classes.txt"
        others[rel(p)] = put_text(p, "".join(f"{n}\n" for n in names).encode("utf-8"))
        p = root / "labelmap.txt"
        others[rel(p)] = put_text(p, labelmap_text(names).encode("utf-8"))
    elif fmt == "yolo":
        has_val = kept.filter(pl.col("split") == "val").height > 0
        p = root / "data.yaml"
        others[rel(p)] = put_text(p, mf.data_yaml(names, has_val, yaml_path))
    else:
        coco = kept.with_columns(pl.int_range(1, pl.len() + 1).alias("image_id"))
        for s in SPLITS:
            part = coco.filter(pl.col("split") == s)
            sb = boxes.join(part.select("idx"), on="idx", how="semi")
            p = root / "annotations" / f"instances_{s}.json"
            others[rel(p)] = put_text(p, mf.coco_doc(part, sb, names))
    return kept, others, root_rel or "."


# -- the operation --------------------------------------------------------------------------------------------
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
    from tuiops.ops.project_mix_files import not_carried
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
            _no_host(ws, push_host)
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
            im, bx = _read_build(b, rep)
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
        imgs, leaks, moved, groups = _dupes_and_split(imgs, max_distance, dupes, strict, val)
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
                kept, others, root_rel = _write_output(
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
            mtime = max((_epoch(b.info.get("created")) for b in builds), default=0)
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


def _no_host(ws: Workspace, name: str) -> None:
    known = ", ".join(sorted(ws.config.hosts)) or "none"
    raise NotFoundError(
        f"no host {name!r} in tuiops.toml (hosts: {known})", hint="add it with `tuiops hosts add`"
    )


# -- push ---------------------------------------------------------------------------------------------------------
def push_tarball(
    ws: Workspace,
    tar_path: str | os.PathLike[str],
    host: str,
    remote_dir: str,
    *,
    mix_id: int | None = None,
    replace: bool = False,
    retry: RetryPolicy | None = None,
    chunk: int | None = None,
    progress_interval: float = 0.1,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> PushResult:
    """Send ``tar_path`` into ``remote_dir`` on ``host`` and check its SHA-256 there.

    The upload is resumable (a ``.part`` beside the target, continued by the next push
    of the same file) and renamed into place only after its SHA-256 on the host matches;
    the host then hashes the final file once more (``sha256sum``). A mismatch removes
    the remote file and is an error. The push is recorded in ``project_mix_pushes``.
    """
    from tuiops.ops.remote import open_hosts
    from tuiops.remote import run_sync, transfer
    from tuiops.remote.errors import OutsideHome
    from tuiops.store.db import utcnow

    local = Path(tar_path)
    if not local.is_file():
        raise NotFoundError(f"tarball {display_path(local)} does not exist", hint="mix with --tar first")
    if host not in ws.config.hosts:
        _no_host(ws, host)
    sha = sha256_file(local)
    size = local.stat().st_size
    hosts = open_hosts(ws, retry=retry)
    params = {"host": host, "remote_dir": remote_dir, "tar": str(local), "sha256": sha, "mix_id": mix_id}

    async def verify(path: str) -> str:
        conn = await hosts.connect(host)
        async with conn:
            sftp = await conn.sftp()
            remote = await transfer.remote_sha256(conn, sftp, path)
            if remote != sha:
                with contextlib.suppress(Exception):
                    await sftp.remove(path)
            return remote

    with job(ws.store, "project.push", params, total=size) as j:
        try:
            res = run_sync(
                transfer.put(
                    hosts,
                    host,
                    [local],
                    remote_dir,
                    existing="overwrite" if replace else "error",
                    verify="sha256",
                    concurrency=1,
                    channels=1,
                    progress=progress,
                    cancel=cancel,
                    retry=retry,
                    chunk=chunk or transfer.CHUNK,
                    progress_interval=progress_interval,
                ),
                cancel,
            )
        except OutsideHome as exc:  # the transfer's hint names `remote put`'s flags
            exc.hint = (
                f"give --push {host}:PATH with PATH inside the host's home, or change its home in tuiops.toml"
            )
            raise
        except ConflictError as exc:
            exc.hint = "pass --replace-remote to replace it, or push into another folder; nothing was sent"
            raise
        remote_path = f"{res.target.rstrip('/')}/{local.name}"
        remote = run_sync(verify(remote_path), cancel)
        if remote != sha:
            raise RemoteError(
                f"{remote_path} on host {host}: SHA-256 {remote[:12]}… differs from {display_path(local)} "
                f"({sha[:12]}…); the remote file was removed",
                hint="push again; if it happens again, check the host's disk",
            )
        out = PushResult(
            host=host,
            path=remote_path,
            sha256=sha,
            size=size,
            sent=res.sent,
            resumed=bool(res.resumed),
            skipped=bool(res.skipped),
        )
        with ws.store.transaction() as conn:
            conn.execute(
                "INSERT INTO project_mix_pushes(mix_id, host, path, sha256, size, resumed, pushed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (mix_id, host, remote_path, sha, size, int(out.resumed), utcnow()),
            )
        j.result = out.to_dict()
    return out


# -- checking a mix ---------------------------------------------------------------------------------------------------
def verify_output(out: str | os.PathLike[str]) -> list[str]:
    """Check a mixed dataset against its manifest; returns the problems (empty when it is intact)."""
    root = Path(out)
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{display_path(root / MANIFEST)}: cannot read it: {exc}"]
    if manifest.get("kind") != MIX_KIND:
        return [f"{display_path(root / MANIFEST)} is not the manifest of a mix"]
    expected: dict[str, str] = dict(manifest.get("files", {}))
    for im in manifest.get("images", []):
        expected[im["file"]] = im["sha256"]
        if im.get("label"):
            expected[im["label"]] = im["label_sha256"]
    problems = []
    for rel, sha in sorted(expected.items()):
        p = root / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif sha256_file(p) != sha:
            problems.append(f"{rel}: SHA-256 differs from the manifest")
    listed = set(expected) | {MANIFEST}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.relative_to(root).as_posix() not in listed:
            problems.append(f"{p.relative_to(root).as_posix()}: not in the manifest")
    return problems
