"""The masters of a project checked before any augmentation runs: errors in them are blamed on them.

Every master image (``master/images/STEM.ext``) needs its VOC annotation
(``master/annotations/STEM.xml``, one without ``<object>`` for an image with no object)
and every annotation its image. An annotation must parse, its ``<size>`` must be the
image's real size, and each object must have a class of the project and numeric
coordinates of a box with area that lies inside the image (within
:data:`~tuiops.ops.projects.model.BOX_TOLERANCE` px). Each problem names the file and,
for an object, its line.
"""

from __future__ import annotations

from pathlib import Path

from tuiops.errors import InputError
from tuiops.fsutil import display_path
from tuiops.ops.projects.model import BOX_TOLERANCE, IMAGE_SUFFIXES, Project


def _number(text: str | None) -> float | None:
    try:
        v = float(text) if text is not None else None
    except ValueError:
        return None
    return v if v is not None and v == v and abs(v) != float("inf") else None


def _image_size(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """The image's real size, or the reason it does not open."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size, None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return None, f"{display_path(path)}: not a readable image: {exc}"


def _object_problems(
    where: str, objects: list[tuple[int | None, str | None, str | None, str | None, str | None, str | None, str]],
    size: tuple[int, int], classes: list[str],
) -> list[str]:  # fmt: skip
    """The problems of one annotation's objects against its image's size and the project's classes."""
    w, h = size
    out = []
    for k, (line, name, *texts, _extra) in enumerate(objects, 1):
        at = f"{where} line {line}" if line else where
        label = f"object {k} ({name})" if name else f"object {k}"
        if not name:
            out.append(f"{at}: {label} has no <name>")
            continue
        if name not in classes:
            out.append(
                f"{at}: {label}: class {name!r} is not one of the project's classes ({', '.join(classes)})"
            )
            continue
        coords = [_number(t) for t in texts]
        if any(c is None for c in coords):
            out.append(
                f"{at}: {label}: a coordinate is missing or not a number ({', '.join(map(str, texts))})"
            )
            continue
        x1, y1, x2, y2 = (float(c) for c in coords if c is not None)
        if x1 < -BOX_TOLERANCE or y1 < -BOX_TOLERANCE or x2 > w + BOX_TOLERANCE or y2 > h + BOX_TOLERANCE:
            out.append(
                f"{at}: {label}: box ({texts[0]}, {texts[1]}, {texts[2]}, {texts[3]}) reaches past the "
                f"{w}×{h} image"
            )
        elif min(x2, w) - max(x1, 0.0) < 1.0 or min(y2, h) - max(y1, 0.0) < 1.0:
            out.append(
                f"{at}: {label}: box ({', '.join(map(str, texts))}) is empty (less than 1 px wide or high)"
            )
    return out


def annotation_problems(where: str, data: bytes, img: Path, classes: list[str]) -> list[str]:
    """The problems of one VOC annotation (``data``, named ``where``) of image ``img``."""
    from tuiops.formats.voc import parse_voc

    size, err = _image_size(img)
    if size is None:
        return [str(err)]
    doc, perr = parse_voc(data)
    if doc is None:
        return [f"{where}: {perr}"]
    if doc.width is not None and doc.height is not None and (doc.width, doc.height) != size:
        return [f"{where}: <size> says {doc.width}×{doc.height}, but {img.name} is {size[0]}×{size[1]}"]
    return _object_problems(where, doc.objects, size, classes)


def master_problems(project: Project) -> list[str]:
    """Every problem of the project's masters (see the module docstring), one line each."""
    images_dir, ann_dir = project.master / "images", project.master / "annotations"
    images = {
        p.stem: p
        for p in sorted(images_dir.iterdir() if images_dir.is_dir() else [])
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    }
    anns = {
        p.stem: p
        for p in sorted(ann_dir.iterdir() if ann_dir.is_dir() else [])
        if p.is_file() and p.suffix.lower() == ".xml" and not p.name.startswith(".")
    }
    problems = []
    for stem, img in images.items():
        ann = anns.get(stem)
        if ann is None:
            problems.append(
                f"{display_path(img)}: the master has no annotation {display_path(ann_dir / (stem + '.xml'))} "
                "(an image with no object needs one without <object>)"
            )
            continue
        problems += annotation_problems(display_path(ann), ann.read_bytes(), img, project.classes)
    for stem, ann in anns.items():
        if stem not in images:
            problems.append(
                f"{display_path(ann)}: an annotation without a master image {stem}.* in {display_path(images_dir)}"
            )
    return problems


def check_masters(project: Project) -> None:
    """Refuse a build whose masters have problems, naming the first ten, before anything runs."""
    problems = master_problems(project)
    if problems:
        shown = "\n    ".join(problems[:10])
        more = f"\n    … and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise InputError(
            f"the masters of {project.name} have {len(problems)} problem(s); nothing was built:\n    {shown}{more}",
            hint="fix the master images or annotations (labelImg opens them), then build again",
        )
