"""The box renderer: images with their label boxes and detection boxes drawn on them.

Label boxes are drawn solid, with the class name on a filled tag above the box; detection
boxes are drawn dashed and thinner, with the class name and the score on a tag inside the
box's bottom edge. Each class has its own colour, the same in both styles. Rendering is
deterministic, so a resumed job can tell a finished picture from a partial one.
"""

from __future__ import annotations

import io
import json
from typing import Any

#: One colour per class id (cycled): bright, well apart, readable with black text.
PALETTE = (
    (255, 56, 56),
    (50, 205, 50),
    (30, 144, 255),
    (255, 178, 29),
    (207, 82, 255),
    (0, 212, 187),
    (255, 105, 180),
    (146, 204, 23),
    (255, 127, 0),
    (72, 209, 204),
    (180, 130, 255),
    (255, 215, 0),
)
QUALITY = 90


def _color(class_id: int) -> tuple[int, int, int]:
    return PALETTE[class_id % len(PALETTE)]


def render(image: bytes, drawing: bytes, *, quality: int = QUALITY) -> bytes:
    """Draw ``drawing`` (see :func:`tuiops.ops.paint.drawings`) on the encoded ``image``;
    returns JPEG bytes."""
    from PIL import Image, ImageDraw, ImageFont

    spec: dict[str, Any] = json.loads(drawing or b"{}")
    with Image.open(io.BytesIO(image)) as im:
        im.load()
        canvas = im.convert("RGB")
    w, h = canvas.size
    fw, fh = spec.get("w") or w, spec.get("h") or h
    sx, sy = w / fw, h / fh
    names: list[str] = spec.get("names", [])
    side = min(w, h)
    thick = max(3, round(side / 200))
    font = ImageFont.load_default(size=max(10, round(side / 40)))
    draw = ImageDraw.Draw(canvas)

    def name_of(c: int) -> str:
        return names[c] if 0 <= c < len(names) else str(c)

    def tag(x: float, y: float, text: str, color: tuple[int, int, int], above: bool) -> None:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left + 4, bottom - top + 4
        ty = y - th
        ty = min(max(0, ty), h - th)
        tx = min(max(0, x), max(0, w - tw))
        draw.rectangle([tx, ty, tx + tw, ty + th], fill=color)
        draw.text((tx + 2 - left, ty + 2 - top), text, font=font, fill=(0, 0, 0))

    for c, x1, y1, x2, y2 in spec.get("l", []):
        col = _color(int(c))
        box = [x1 * sx, y1 * sy, x2 * sx, y2 * sy]
        draw.rectangle(box, outline=col, width=thick)
        tag(box[0], box[1], name_of(int(c)), col, above=True)
    dash = max(4, thick * 3)
    for c, score, x1, y1, x2, y2 in spec.get("d", []):
        col = _color(int(c))
        bx1, by1, bx2, by2 = x1 * sx, y1 * sy, x2 * sx, y2 * sy
        width = max(2, thick - 1)
        for a, b, horizontal, fixed in (
            (bx1, bx2, True, by1),
            (bx1, bx2, True, by2),
            (by1, by2, False, bx1),
            (by1, by2, False, bx2),
        ):
            pos = a
            while pos < b:
                end = min(b, pos + dash)
                seg = [pos, fixed, end, fixed] if horizontal else [fixed, pos, fixed, end]
                draw.line(seg, fill=col, width=width)
                pos += dash * 2
        tag(bx1, by2, f"{name_of(int(c))} {score:.2f}", col, above=False)
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
