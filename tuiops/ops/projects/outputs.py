"""Collecting an augmentation's outputs (boxes.json, VOC annotations or the masters) and validating their boxes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    InputError,
)
from tuiops.ops.base import Reporter
from tuiops.ops.projects.model import BOX_TOLERANCE, IMAGE_SUFFIXES, MASTER_SEP, Project

if TYPE_CHECKING:
    import polars as pl


#: A reported box: ``(name, xmin, ymin, xmax, ymax, extra)``.
_Box = tuple[str | None, float | None, float | None, float | None, float | None, str | None]


@dataclass
class Output:
    """One image the augmentation wrote, with its boxes."""

    rel: str
    path: Path
    boxes: list[_Box]
    """``(name, xmin, ymin, xmax, ymax, extra)``: the extra keeps the VOC object's flags and tags."""
    master: str | None = None
    """The stem of the one master this image is a variant of (None: not known, or several)."""


#: Keys of a boxes.json object that set a VOC object flag.
_FLAG_KEYS = ("pose", "truncated", "difficult", "occluded")


def _master_objects(project: Project) -> dict[str, list[tuple[str | None, Any, Any, Any, Any, str | None]]]:
    """Every master annotation's objects by the annotation's stem (with their extras)."""
    from tuiops.formats.voc import parse_voc

    masters: dict[str, list[tuple[str | None, Any, Any, Any, Any, str | None]]] = {}
    ann = project.master / "annotations"
    for x in sorted(ann.glob("*.xml")) if ann.is_dir() else []:
        doc, err = parse_voc(x.read_bytes())
        if doc is None:
            raise InputError(f"{x}: {err}")
        masters[x.stem] = [(n, _num(a), _num(b), _num(c), _num(d), e) for _, n, a, b, c, d, e in doc.objects]
    return masters


def _object_extra(o: dict[str, Any], where: str, masters: dict[str, list[Any]]) -> str | None:
    """The extra of a boxes.json object: its master object's (``master``/``object``) with its own flags."""
    fields: dict[str, Any] = {}
    if "master" in o or "object" in o:
        stem, number = o.get("master"), o.get("object")
        if not isinstance(stem, str) or isinstance(number, bool) or not isinstance(number, int):
            raise InputError(
                f'{where}: "master" (an annotation\'s stem) and "object" (its 1-based object number) go together'
            )
        objs = masters.get(stem)
        if objs is None or not 1 <= number <= len(objs):
            have = (
                f"it has {len(objs)} object(s)" if objs is not None else "there is no such master annotation"
            )
            raise InputError(f"{where}: names object {number} of master {stem!r}, but {have}")
        if objs[number - 1][5]:
            fields = json.loads(objs[number - 1][5])
    for k in _FLAG_KEYS:
        if k in o:
            v = o[k]
            if isinstance(v, bool):
                v = int(v)
            if not isinstance(v, (int, str)):
                raise InputError(f'{where}: "{k}" must be a number or a text, not {v!r}')
            fields[k] = v
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")) if fields else None


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    return f if f == f and abs(f) != float("inf") else None


def _inside(out: Path, rel: str, where: str) -> Path:
    p = (out / rel).resolve()
    if not isinstance(rel, str) or not rel or not p.is_relative_to(out.resolve()):
        raise InputError(f"{where}: file {rel!r} is not a file inside the output folder")
    return p


def _from_boxes_json(out: Path, path: Path, project: Project) -> list[Output]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"the augmentation's boxes.json is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise InputError('the augmentation\'s boxes.json must be a list of {"file", "objects"} records')
    outputs, seen = [], set()
    masters: dict[str, list[Any]] | None = None
    for i, rec in enumerate(data):
        where = f"boxes.json record {i + 1}"
        if not isinstance(rec, dict) or not isinstance(rec.get("file"), str):
            raise InputError(f'{where}: needs "file" (an image name) and "objects" (a list)')
        objs = rec.get("objects", [])
        if not isinstance(objs, list):
            raise InputError(f'{where} ({rec["file"]}): "objects" must be a list')
        if rec["file"] in seen:
            raise InputError(f"{where}: {rec['file']} is listed twice")
        seen.add(rec["file"])
        boxes: list[_Box] = []
        for k, o in enumerate(objs):
            if not isinstance(o, dict):
                raise InputError(f"{where} ({rec['file']}): object {k + 1} is not a JSON object")
            name = o.get("name")
            if masters is None and ("master" in o or "object" in o):
                masters = _master_objects(project)
            extra = _object_extra(o, f"{where} ({rec['file']}) object {k + 1}", masters or {})
            x1, y1, x2, y2 = (_num(o.get(c)) for c in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append((name if isinstance(name, str) else None, x1, y1, x2, y2, extra))
        outputs.append(
            Output(rec["file"], _inside(out, rec["file"], where), boxes, _record_master(rec, where))
        )
    listed = {o.path for o in outputs}
    unlisted = [p.relative_to(out).as_posix() for p in _images_in(out) if p.resolve() not in listed]
    if unlisted:
        shown = ", ".join(unlisted[:5]) + (f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else "")
        raise InputError(
            f"the augmentation wrote {len(unlisted)} image(s) that boxes.json does not list: {shown}",
            hint='list every image in boxes.json (an image without objects as "objects": [])',
        )
    return outputs


def _record_master(rec: dict[str, Any], where: str) -> str | None:
    """The master a boxes.json record is a variant of: its ``"master"``, else the one master its objects name."""
    own = rec.get("master")
    if own is not None:
        if not isinstance(own, str) or not own:
            raise InputError(f'{where} ({rec["file"]}): "master" must be a master\'s stem, not {own!r}')
        return own
    named = {o.get("master") for o in rec.get("objects", []) if isinstance(o, dict)}
    return named.pop() if len(named) == 1 and isinstance(next(iter(named)), str) else None


def _images_in(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _from_voc(out: Path, xmls: list[Path]) -> list[Output]:
    from tuiops.formats.voc import parse_voc

    by_stem: dict[str, Path] = {}
    for x in xmls:
        if x.stem in by_stem:
            raise InputError(
                f"two annotations for one image: {by_stem[x.stem].relative_to(out)} and {x.relative_to(out)}"
            )
        by_stem[x.stem] = x
    outputs = []
    images = _images_in(out)
    stems = {p.stem for p in images}
    for x in xmls:
        if x.stem not in stems:
            raise InputError(f"{x.relative_to(out)}: an annotation without an image of the same name")
    for img in images:
        rel = img.relative_to(out).as_posix()
        xml = by_stem.get(img.stem)
        if xml is None:
            raise InputError(f"{rel}: the augmentation wrote VOC annotations but none for this image")
        doc, err = parse_voc(xml.read_bytes())
        if doc is None:
            raise InputError(f"{xml.relative_to(out)}: {err}")
        boxes: list[_Box] = [
            (n, _num(a), _num(b), _num(c), _num(d), e) for _, n, a, b, c, d, e in doc.objects
        ]
        named = img.stem.split(MASTER_SEP, 1)[0] if MASTER_SEP in img.stem else None
        outputs.append(Output(rel, img, boxes, named))
    return outputs


def _from_masters(out: Path, project: Project) -> list[Output]:
    masters = _master_objects(project)
    outputs = []
    for img in _images_in(out):
        rel = img.relative_to(out).as_posix()
        stem = img.stem.split(MASTER_SEP, 1)[0]
        if stem not in masters:
            raise InputError(
                f"{rel}: the augmentation wrote neither boxes.json nor VOC annotations, and this image "
                f"is not named after a master (MASTERSTEM{MASTER_SEP}….ext)",
                hint="let the script report the boxes it placed in {out}/boxes.json",
            )
        outputs.append(Output(rel, img, masters[stem], stem))
    return outputs


def collect_outputs(out: Path, project: Project) -> list[Output]:
    """The images the augmentation wrote into ``out`` with their boxes (boxes.json, VOC XMLs or masters)."""
    boxes_json = out / "boxes.json"
    if boxes_json.is_file():
        outputs = _from_boxes_json(out, boxes_json, project)
    else:
        xmls = sorted(out.rglob("*.xml"))
        outputs = _from_voc(out, xmls) if xmls else _from_masters(out, project)
    if not outputs:
        raise InputError(
            f"the augmentation of {project.name} wrote no images", hint="check the script's --out and --count"
        )
    return outputs


@dataclass
class CheckedImage:
    """An output image as opened: its size, bands and whether it is a JPEG (zero size: it did not open)."""

    rel: str
    path: Path
    width: int
    height: int
    depth: int
    jpeg: bool


def open_outputs(outputs: list[Output], rep: Reporter) -> tuple[list[CheckedImage], list[str]]:
    """Open every output image fully; the images as checked and the problems found."""
    from PIL import Image

    checked, problems = [], []
    for o in outputs:
        try:
            with Image.open(o.path) as im:
                im.load()
                checked.append(
                    CheckedImage(o.rel, o.path, im.width, im.height, len(im.getbands()), im.format == "JPEG")
                )
        except FileNotFoundError:
            problems.append(f"{o.rel}: listed, but no such file was written")
            checked.append(CheckedImage(o.rel, o.path, 0, 0, 0, False))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            problems.append(f"{o.rel}: the image does not open fully: {exc}")
            checked.append(CheckedImage(o.rel, o.path, 0, 0, 0, False))
        rep.advance(message=o.rel)
    return checked, problems


def box_frame(outputs: list[Output], checked: list[CheckedImage]) -> pl.DataFrame:
    """One row per reported box: image index, object number, name, coordinates, image size."""
    import polars as pl

    idx: list[int] = []
    k: list[int] = []
    names: list[str | None] = []
    coords: tuple[list[float | None], ...] = ([], [], [], [])
    extras: list[str | None] = []
    for i, o in enumerate(outputs):
        for j, b in enumerate(o.boxes):
            idx.append(i)
            k.append(j + 1)
            names.append(b[0])
            for c, v in zip(coords, b[1:5], strict=True):
                c.append(v)
            extras.append(b[5])
    frame = pl.DataFrame(
        {
            "img": idx,
            "obj": k,
            "name": names,
            "x1": coords[0],
            "y1": coords[1],
            "x2": coords[2],
            "y2": coords[3],
            "extra": extras,
        },
        schema={
            "img": pl.Int64,
            "obj": pl.Int64,
            "name": pl.String,
            "x1": pl.Float64,
            "y1": pl.Float64,
            "x2": pl.Float64,
            "y2": pl.Float64,
            "extra": pl.String,
        },
    )
    sizes = pl.DataFrame(
        {
            "img": list(range(len(checked))),
            "rel": [c.rel for c in checked],
            "w": [float(c.width) for c in checked],
            "h": [float(c.height) for c in checked],
        },
        schema={"img": pl.Int64, "rel": pl.String, "w": pl.Float64, "h": pl.Float64},
    )
    return frame.join(sizes, on="img", how="left")


def validate_boxes(frame: pl.DataFrame, classes: list[str], tol: float = BOX_TOLERANCE) -> pl.DataFrame:
    """Clip the boxes to their images and add ``problem`` (null when the box is good).

    A box may reach ``tol`` pixels past the image edge (it is clipped); one further
    out, empty after clipping, with a missing coordinate or an unknown class has a
    problem naming the image, the object and the value.
    """
    import polars as pl

    x1c = pl.col("x1").clip(0.0, pl.col("w"))
    y1c = pl.col("y1").clip(0.0, pl.col("h"))
    x2c = pl.col("x2").clip(0.0, pl.col("w"))
    y2c = pl.col("y2").clip(0.0, pl.col("h"))
    coords = pl.format("({}, {}, {}, {})", *(pl.col(c).round(1) for c in ("x1", "y1", "x2", "y2")))
    size = pl.format("{}x{}", pl.col("w").cast(pl.Int64), pl.col("h").cast(pl.Int64))
    where = pl.format("{}: object {}", pl.col("rel"), pl.col("obj"))
    missing = pl.any_horizontal(pl.col(c).is_null() for c in ("x1", "y1", "x2", "y2"))
    problem = (
        pl.when(pl.col("w") <= 0)
        .then(pl.lit(None, pl.String))
        .when(pl.col("name").is_null() | (pl.col("name") == ""))
        .then(pl.format("{}: has no class name", where))
        .when(~pl.col("name").is_in(classes))
        .then(
            pl.format(
                "{}: class '{}' is not one of the project's classes ({})",
                where,
                pl.col("name"),
                pl.lit(", ".join(classes)),
            )
        )
        .when(missing)
        .then(pl.format("{}: a coordinate is missing or not a number", where))
        .when(
            (pl.col("x1") < -tol)
            | (pl.col("y1") < -tol)
            | (pl.col("x2") > pl.col("w") + tol)
            | (pl.col("y2") > pl.col("h") + tol)
        )
        .then(pl.format("{}: box {} lies outside the image {}", where, coords, size))
        .when(((x2c - x1c) < 1.0) | ((y2c - y1c) < 1.0))
        .then(pl.format("{}: box {} is empty (less than 1 px wide or high)", where, coords))
        .otherwise(pl.lit(None, pl.String))
    )
    return frame.with_columns(
        problem.alias("problem"), x1c.alias("cx1"), y1c.alias("cy1"), x2c.alias("cx2"), y2c.alias("cy2")
    )


def bad_outputs_error(project: Project, problems: list[str]) -> InputError:
    """The error refusing a build's outputs, with the first ten problems."""
    shown = "\n    ".join(problems[:10])
    more = f"\n    … and {len(problems) - 10} more" if len(problems) > 10 else ""
    return InputError(
        f"the augmentation of {project.name} wrote {len(problems)} bad output(s); nothing was replaced:\n    {shown}{more}",
        hint="fix the script (or the project's classes) and build again",
    )
