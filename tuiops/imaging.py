"""The box renderer: images with their label boxes and detection boxes drawn on them.

Label boxes are drawn solid, with the class name on a filled tag above the box; detection
boxes are drawn dashed and thinner, with the class name and the score on a tag inside the
box's bottom edge. Each class has its own colour, the same in both styles. Rendering is
deterministic, so a resumed job can tell a finished picture from a partial one.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from tuiops.ops.browse import ImageInfo
    from tuiops.ops.triage import ImageView, TriageObject

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

_LABEL_COLOR = (60, 230, 90)


_DET_COLOR = (255, 70, 200)


CURRENT_COLOR = (255, 220, 0)


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


@dataclass(frozen=True)
class BoxMark:
    """Where a drawn box's caption goes in the preview (pixel coordinates of the preview)."""

    x: int
    y: int
    text: str
    kind: str
    color: tuple[int, int, int]


LABEL_COLOR = _LABEL_COLOR


DET_COLOR = _DET_COLOR


def render_preview(
    info: ImageInfo,
    max_w: int,
    max_h: int,
    *,
    label_set: str | None = None,
    run: str | None = None,
    show_labels: bool = True,
    show_dets: bool = True,
    min_score: float = 0.0,
) -> tuple[Image.Image, list[BoxMark]]:
    """The image fitted into ``max_w``×``max_h`` pixels with label and detection boxes drawn.

    Boxes are drawn after scaling, one pixel wide, labels in green and detections in
    magenta; ``label_set``/``run`` choose which (default: every set and run). A missing or
    unreadable file gives a dark placeholder with the boxes on it. Returns the image and the
    captions (class name, and score for detections) with their anchor points.
    """
    from PIL import Image, ImageDraw, ImageOps

    W = max(2, int(info.width or 0)) if info.width else None
    H = max(2, int(info.height or 0)) if info.height else None
    img = None
    if info.path is not None and info.status in (None, "ok"):
        try:
            with Image.open(info.path) as im:
                im.draft("RGB", (max_w * 2, max_h * 2))
                img = ImageOps.exif_transpose(im).convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError):
            img = None
    src_w = W or (img.width if img is not None else max_w)
    src_h = H or (img.height if img is not None else max_h)
    scale = min(max_w / src_w, max_h / src_h)
    tw, th = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    if img is None:
        out = Image.new("RGB", (tw, th), (28, 28, 36))
        d = ImageDraw.Draw(out)
        d.line([(0, 0), (tw - 1, th - 1)], fill=(70, 70, 80))
        d.line([(0, th - 1), (tw - 1, 0)], fill=(70, 70, 80))
    else:
        out = img.resize((tw, th), Image.Resampling.BILINEAR)
    marks: list[BoxMark] = []
    if info.boxes is not None and info.boxes.height:
        import polars as pl

        boxes = info.boxes
        keep = pl.lit(False)
        if show_labels:
            keep = keep | (
                (pl.col("kind") == "label") & (pl.col("source") == label_set if label_set else pl.lit(True))
            )
        if show_dets:
            keep = keep | (
                (pl.col("kind") == "det")
                & (pl.col("source") == run if run else pl.lit(True))
                & (pl.col("score").fill_null(1.0) >= min_score)
            )
        boxes = boxes.filter(keep)
        d = ImageDraw.Draw(out)
        sx, sy = tw / src_w, th / src_h
        for kind, cls, score, x1, y1, x2, y2 in boxes.select(
            "kind", "class", "score", "x1", "y1", "x2", "y2"
        ).iter_rows():
            color = _LABEL_COLOR if kind == "label" else _DET_COLOR
            a = (max(0, min(tw - 1, math.floor(x1 * sx))), max(0, min(th - 1, math.floor(y1 * sy))))
            b = (max(0, min(tw - 1, math.ceil(x2 * sx) - 1)), max(0, min(th - 1, math.ceil(y2 * sy) - 1)))
            d.rectangle([a, (max(a[0], b[0]), max(a[1], b[1]))], outline=color)
            text = cls if score is None else f"{cls} {score:.2f}"
            marks.append(BoxMark(a[0], a[1] if kind == "label" else max(a[1], b[1]), text, kind, color))
    return out, marks


def render_view(
    info: ImageInfo,
    view: ImageView,
    current: TriageObject | None,
    classes: list[str],
    max_w: int,
    max_h: int,
) -> tuple[Image.Image, list[BoxMark]]:
    """The image fitted into ``max_w``×``max_h`` with the labels (green), the detections
    (magenta) and the current object's boxes (yellow) drawn, and their captions."""
    from dataclasses import replace

    from PIL import ImageDraw

    bare = replace(info, boxes=None, width=info.width or view.width, height=info.height or view.height)
    img, _ = render_preview(bare, max_w, max_h, show_labels=False, show_dets=False)
    src_w = max(2, int(bare.width)) if bare.width else img.width
    src_h = max(2, int(bare.height)) if bare.height else img.height
    sx, sy = img.width / src_w, img.height / src_h
    tw, th = img.width, img.height
    draw = ImageDraw.Draw(img)
    marks: list[BoxMark] = []
    cur_label = current.label_id if current else None
    cur_det = current.det_id if current else None

    def name(cid: int) -> str:
        return classes[cid] if 0 <= cid < len(classes) else str(cid)

    boxes: list[tuple[str, int, int, float | None, tuple[float, float, float, float]]] = []
    boxes += [("label", r[0], r[1], None, (r[2], r[3], r[4], r[5])) for r in view.labels]
    boxes += [("det", d[0], d[1], d[6], (d[2], d[3], d[4], d[5])) for d in view.dets]
    boxes.sort(key=lambda b: b[1] == cur_label or b[1] == cur_det)
    for kind, bid, cid, score, (x1, y1, x2, y2) in boxes:
        is_current = bid == (cur_label if kind == "label" else cur_det)
        color = CURRENT_COLOR if is_current else (LABEL_COLOR if kind == "label" else DET_COLOR)
        a = (max(0, min(tw - 1, math.floor(x1 * sx))), max(0, min(th - 1, math.floor(y1 * sy))))
        b = (max(0, min(tw - 1, math.ceil(x2 * sx) - 1)), max(0, min(th - 1, math.ceil(y2 * sy) - 1)))
        draw.rectangle([a, (max(a[0], b[0]), max(a[1], b[1]))], outline=color)
        text = name(cid) if score is None else f"{name(cid)} {score:.2f}"
        marks.append(BoxMark(a[0], a[1] if kind == "label" else max(a[1], b[1]), text, kind, color))
    return img, marks


def place_captions(
    captions: Sequence[Any], width: int, rows: int
) -> list[tuple[int, int, str, tuple[int, int, int]]]:
    """Cell positions for captions (given in pixels) so that none overlaps another: a caption
    that would overlap moves a row down or up, and is left out when no row near it is free."""
    taken: dict[int, list[tuple[int, int]]] = {}
    out = []
    for c in captions:
        raw = str(c.text)
        x = max(0, min(int(c.x), width - len(raw) - 2))
        raw = raw[: max(0, width - x - 2)]
        if not raw:
            continue
        end = x + len(raw) + 2
        y0 = int(c.y) // 2
        for y in (y0, y0 + 1, y0 - 1, y0 + 2, y0 - 2):
            if not 0 <= y < rows:
                continue
            spans = taken.setdefault(y, [])
            if all(end <= a or x >= b for a, b in spans):
                spans.append((x, end))
                out.append((x, y, raw, tuple(c.color)))
                break
    return out
