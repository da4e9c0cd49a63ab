"""Paste master objects onto drawn backgrounds: random placement, scale and colour jitter.

Every object of a project's masters (the box regions of ``master/images/*`` named by
``master/annotations/*.xml``) becomes a tile; each generated image is a procedural
background (a colour gradient, blotchy noise and random shapes, nothing downloaded)
with a few tiles pasted at random places and scales, their colours jittered, without
overlapping. The boxes placed are returned, and :func:`main` writes them as the
``boxes.json`` the build reads::

    [{"file": "aug_000000.jpg", "objects": [{"name": "…", "xmin": 10, "ymin": 20, "xmax": 60, "ymax": 44,
                                            "master": "button_01", "object": 1}]}]

``master``/``object`` name the master annotation (its stem) and the object in it (1-based)
a box was cut from, so the build keeps that object's flags (``difficult``, ``truncated``,
``pose``, …) and other tags.

Each image draws from its own random stream (seed and index), so image ``i`` is the
same whatever the count, and the same on every host with the same Pillow.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from common.voc import read_voc_boxes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass
class MasterObject:
    """One object cut out of a master image: its class name and its pixels (RGBA)."""

    name: str
    image: Image.Image
    source: str
    number: int = 1


def load_masters(master_dir: str | Path, classes: Sequence[str] | None = None) -> list[MasterObject]:
    """Every annotated object of ``master_dir/images`` as a tile (the box region of its image)."""
    master = Path(master_dir)
    images = master / "images"
    annotations = master / "annotations"
    objects: list[MasterObject] = []
    for path in sorted(images.iterdir()) if images.is_dir() else []:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        xml = annotations / f"{path.stem}.xml"
        if not xml.is_file():
            raise SystemExit(f"{path}: no annotation {xml}")
        with Image.open(path) as im:
            rgba = im.convert("RGBA")
        for number, (name, x1, y1, x2, y2) in enumerate(read_voc_boxes(xml), 1):
            if classes and name not in classes:
                raise SystemExit(f"{xml}: class {name!r} is not one of {', '.join(classes)}")
            box = (
                max(0, round(x1)),
                max(0, round(y1)),
                min(rgba.width, round(x2)),
                min(rgba.height, round(y2)),
            )
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                raise SystemExit(f"{xml}: the box of {name!r} is empty or outside the image")
            objects.append(MasterObject(name, rgba.crop(box), path.stem, number))
    if not objects:
        raise SystemExit(f"no annotated master objects in {images}")
    return objects


def _colour(rng: random.Random, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def background(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A drawn background: a rotated two-colour gradient, blotchy noise and random shapes."""
    w, h = size
    grad = Image.linear_gradient("L").rotate(rng.uniform(0, 360), resample=Image.Resampling.BILINEAR)
    grad = grad.crop((38, 38, 218, 218)).resize((w, h), Image.Resampling.BILINEAR)
    img = ImageOps.colorize(grad, _colour(rng), _colour(rng)).convert("RGB")
    cells = (max(2, w // rng.choice((4, 8, 16))), max(2, h // rng.choice((4, 8, 16))))
    noise = Image.frombytes("L", cells, rng.randbytes(cells[0] * cells[1]))
    noise = noise.resize((w, h), Image.Resampling.BILINEAR).convert("RGB")
    img = Image.blend(img, noise, rng.uniform(0.05, 0.25))
    overlay = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(rng.randint(3, 12)):
        x1, y1 = rng.randint(-w // 4, w), rng.randint(-h // 4, h)
        x2, y2 = x1 + rng.randint(8, w // 2), y1 + rng.randint(8, h // 2)
        fill = (*_colour(rng), rng.randint(40, 200))
        kind = rng.random()
        if kind < 0.35:
            draw.rectangle((x1, y1, x2, y2), fill=fill)
        elif kind < 0.7:
            draw.ellipse((x1, y1, x2, y2), fill=fill)
        elif kind < 0.85:
            draw.line((x1, y1, x2, y2), fill=fill, width=rng.randint(1, 8))
        else:
            pts = [(rng.randint(0, w), rng.randint(0, h)) for _ in range(rng.randint(3, 6))]
            draw.polygon(pts, fill=fill)
    img.paste(overlay, (0, 0), overlay)
    return img


def jitter(rng: random.Random, tile: Image.Image) -> Image.Image:
    """``tile`` (RGBA) with its brightness, contrast and saturation changed at random."""
    rgb, alpha = tile.convert("RGB"), tile.getchannel("A")
    rgb = ImageEnhance.Brightness(rgb).enhance(rng.uniform(0.7, 1.3))
    rgb = ImageEnhance.Contrast(rgb).enhance(rng.uniform(0.7, 1.3))
    rgb = ImageEnhance.Color(rgb).enhance(rng.uniform(0.5, 1.5))
    out = rgb.convert("RGBA")
    out.putalpha(alpha)
    return out


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def paste(
    rng: random.Random,
    canvas: Image.Image,
    objects: Sequence[MasterObject],
    *,
    per_image: tuple[int, int] = (1, 3),
    scale: tuple[float, float] = (0.6, 1.6),
    tries: int = 30,
) -> list[dict[str, object]]:
    """Paste a random number of random objects onto ``canvas`` (in place); the boxes placed.

    Each object is scaled by a random factor (shrunk further if it would not fit),
    colour-jittered and put where it overlaps none placed before; one that finds no
    free place in ``tries`` attempts is left out.
    """
    placed: list[tuple[int, int, int, int]] = []
    boxes: list[dict[str, object]] = []
    for _ in range(rng.randint(*per_image)):
        obj = rng.choice(list(objects))
        s = rng.uniform(*scale)
        s = min(s, canvas.width * 0.9 / obj.image.width, canvas.height * 0.9 / obj.image.height)
        w, h = max(4, round(obj.image.width * s)), max(4, round(obj.image.height * s))
        tile = jitter(rng, obj.image.resize((w, h), Image.Resampling.BICUBIC))
        for _ in range(tries):
            x, y = rng.randint(0, canvas.width - w), rng.randint(0, canvas.height - h)
            box = (x, y, x + w, y + h)
            if not any(_overlaps(box, p) for p in placed):
                break
        else:
            continue
        canvas.paste(tile, (x, y), tile)
        placed.append(box)
        boxes.append(
            {
                "name": obj.name,
                "xmin": box[0],
                "ymin": box[1],
                "xmax": box[2],
                "ymax": box[3],
                "master": obj.source,
                "object": obj.number,
            }
        )
    return boxes


def generate(
    master: str | Path,
    out: str | Path,
    count: int,
    seed: int,
    *,
    size: tuple[int, int] = (640, 480),
    per_image: tuple[int, int] = (1, 3),
    scale: tuple[float, float] = (0.6, 1.6),
    classes: Sequence[str] | None = None,
    quality: int = 90,
) -> list[dict[str, object]]:
    """Write ``count`` images ``aug_NNNNNN.jpg`` and ``boxes.json`` into ``out``; the records."""
    objects = load_masters(master, classes)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, object]] = []
    for i in range(count):
        rng = random.Random(f"{seed}:{i}")
        canvas = background(rng, size)
        boxes = paste(rng, canvas, objects, per_image=per_image, scale=scale)
        name = f"aug_{i:06d}.jpg"
        canvas.save(folder / name, "JPEG", quality=quality)
        records.append({"file": name, "objects": boxes})
    tmp = folder / "boxes.json.part"
    tmp.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    tmp.replace(folder / "boxes.json")
    return records


def main(
    argv: Sequence[str] | None = None,
    *,
    size: tuple[int, int] = (640, 480),
    per_image: tuple[int, int] = (1, 3),
    scale: tuple[float, float] = (0.6, 1.6),
    classes: Sequence[str] | None = None,
) -> int:
    """Command line of a paste augmentation: ``--master DIR --out DIR --count N --seed S``."""
    ap = argparse.ArgumentParser(description="Paste master objects onto drawn backgrounds.")
    ap.add_argument("--master", required=True, help="the master folder (images/ and annotations/)")
    ap.add_argument("--out", required=True, help="folder for the images and boxes.json")
    ap.add_argument("--count", type=int, required=True, help="number of images to generate")
    ap.add_argument("--seed", type=int, default=0, help="random seed")
    ap.add_argument("--width", type=int, default=size[0], help="image width")
    ap.add_argument("--height", type=int, default=size[1], help="image height")
    args = ap.parse_args(argv)
    if args.count < 1:
        ap.error("--count must be at least 1")
    records = generate(
        args.master,
        args.out,
        args.count,
        args.seed,
        size=(args.width, args.height),
        per_image=per_image,
        scale=scale,
        classes=classes,
    )
    n = sum(len(r["objects"]) for r in records)  # type: ignore[arg-type]
    print(f"wrote {len(records)} images with {n} objects to {args.out}", file=sys.stderr)
    return 0
