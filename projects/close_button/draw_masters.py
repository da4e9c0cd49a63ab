"""Draw the master images of the close-button project and their VOC annotations.

Run from this folder (``python draw_masters.py``); it rewrites ``master/images/*.png``
and ``master/annotations/*.xml``. Each master is a piece of a window or dialog with
one close button; the annotated box is the button.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from common.voc import write_voc  # noqa: E402

CLASS = "close_button"


def cross(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], colour: tuple[int, int, int], width: int
) -> None:
    """An X inside ``box`` with a margin of a quarter of its size."""
    x1, y1, x2, y2 = box
    m = (x2 - x1) // 4
    draw.line((x1 + m, y1 + m, x2 - m, y2 - m), fill=colour, width=width)
    draw.line((x1 + m, y2 - m, x2 - m, y1 + m), fill=colour, width=width)


def title_bar() -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A grey title bar with a red square button at the right."""
    img = Image.new("RGB", (200, 44), (222, 222, 226))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 199, 43), outline=(150, 150, 160))
    d.rectangle((12, 16, 90, 26), fill=(90, 90, 100))
    box = (158, 6, 190, 38)
    d.rectangle(box, fill=(212, 48, 48))
    cross(d, box, (255, 255, 255), 3)
    return img, (box[0], box[1], box[2] + 1, box[3] + 1)


def round_button() -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A dark panel corner with a round grey button."""
    img = Image.new("RGB", (120, 90), (40, 44, 52))
    d = ImageDraw.Draw(img)
    d.rectangle((8, 50, 70, 58), fill=(120, 124, 130))
    box = (74, 10, 106, 42)
    d.ellipse(box, fill=(96, 100, 110), outline=(200, 200, 210), width=2)
    cross(d, box, (235, 235, 240), 3)
    return img, (box[0], box[1], box[2] + 1, box[3] + 1)


def popup_glyph() -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The corner of a white pop-up with a bare dark ×."""
    img = Image.new("RGB", (140, 100), (250, 250, 250))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 139, 99), outline=(200, 200, 200), width=2)
    for y in (50, 62, 74):
        d.rectangle((14, y, 100, y + 5), fill=(210, 210, 215))
    box = (104, 8, 128, 32)
    cross(d, box, (60, 60, 60), 4)
    return img, (box[0] + 3, box[1] + 3, box[2] - 2, box[3] - 2)


def outlined_square() -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A blue banner with an outlined square button."""
    img = Image.new("RGB", (180, 60), (36, 110, 200))
    d = ImageDraw.Draw(img)
    d.rectangle((10, 22, 110, 36), fill=(250, 250, 250))
    box = (138, 12, 170, 44)
    d.rectangle(box, outline=(255, 255, 255), width=2)
    cross(d, box, (255, 255, 255), 2)
    return img, (box[0], box[1], box[2] + 1, box[3] + 1)


def main() -> None:
    images = HERE / "master" / "images"
    annotations = HERE / "master" / "annotations"
    images.mkdir(parents=True, exist_ok=True)
    annotations.mkdir(parents=True, exist_ok=True)
    for i, draw in enumerate((title_bar, round_button, popup_glyph, outlined_square), 1):
        img, box = draw()
        name = f"close_{i:02d}"
        img.save(images / f"{name}.png", optimize=True)
        write_voc(annotations / f"{name}.xml", f"{name}.png", img.size, [(CLASS, *box)])


if __name__ == "__main__":
    main()
