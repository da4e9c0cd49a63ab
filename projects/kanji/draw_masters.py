"""Draw the master sheets of the kanji project and their VOC annotations.

Run from this folder (``python draw_masters.py``); it rewrites ``master/images/*.png``
and ``master/annotations/*.xml``. Each sheet is a strip of paper with the three
glyphs 一 (kanji_ichi), 十 (kanji_juu) and 口 (kanji_kuchi) brushed with Pillow
primitives in one ink and stroke width; each glyph's box is the bounds of its ink.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from common.voc import write_voc  # noqa: E402

CELL = 64
Stroke = tuple[int, int, int, int]

GLYPHS: dict[str, list[Stroke]] = {
    "kanji_ichi": [(8, 32, 56, 30)],
    "kanji_juu": [(8, 26, 56, 26), (32, 6, 32, 58)],
    "kanji_kuchi": [(12, 12, 12, 52), (12, 12, 52, 12), (52, 12, 52, 52), (12, 52, 52, 52)],
}

STYLES = [
    ((245, 238, 220), (20, 20, 24), 7),
    ((250, 250, 246), (40, 30, 90), 5),
    ((236, 226, 200), (120, 20, 20), 9),
]


def brush(
    draw: ImageDraw.ImageDraw, stroke: Stroke, ox: int, oy: int, ink: tuple[int, int, int], w: int
) -> None:
    """One stroke: a thick line with round ends."""
    x1, y1, x2, y2 = stroke
    a, b = (ox + x1, oy + y1), (ox + x2, oy + y2)
    draw.line((*a, *b), fill=ink, width=w)
    r = w // 2
    for x, y in (a, b):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)


def sheet(paper: tuple[int, int, int], ink: tuple[int, int, int], width: int):  # type: ignore[no-untyped-def]
    """A sheet with the three glyphs side by side; the image and its boxes."""
    names = list(GLYPHS)
    img = Image.new("RGB", (CELL * len(names) + 16, CELL + 16), paper)
    d = ImageDraw.Draw(img)
    boxes = []
    for k, name in enumerate(names):
        ox, oy = 8 + k * CELL, 8
        for stroke in GLYPHS[name]:
            brush(d, stroke, ox, oy, ink, width)
        xs = [c for s in GLYPHS[name] for c in (s[0], s[2])]
        ys = [c for s in GLYPHS[name] for c in (s[1], s[3])]
        r = width // 2 + 2
        boxes.append((name, ox + min(xs) - r, oy + min(ys) - r, ox + max(xs) + r + 1, oy + max(ys) + r + 1))
    return img, boxes


def main() -> None:
    images = HERE / "master" / "images"
    annotations = HERE / "master" / "annotations"
    images.mkdir(parents=True, exist_ok=True)
    annotations.mkdir(parents=True, exist_ok=True)
    for i, style in enumerate(STYLES, 1):
        img, boxes = sheet(*style)
        name = f"sheet_{i:02d}"
        img.save(images / f"{name}.png", optimize=True)
        write_voc(annotations / f"{name}.xml", f"{name}.png", img.size, boxes)


if __name__ == "__main__":
    main()
