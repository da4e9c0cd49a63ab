"""The box renderer: images with their label boxes and detection boxes drawn on them.

One renderer (:func:`draw_boxes`) serves ``paint``, the report's pictures, the app's
preview and viewer, and triage, in two resolutions:

- full resolution (``paint``): label boxes solid, with the class name on a filled tag above
  the box; detection boxes dashed and thinner, with the class name and the score on a tag
  inside the box's bottom edge. Each class has its own colour, the same in both styles.
  Rendering is deterministic, so a resumed job can tell a finished picture from a partial
  one.
- cell resolution (the terminal's half-block view): one-pixel outlines on the pixels
  nearest each edge (half a cell), labels green and detections magenta; captions go to
  the text layer, placed by :func:`place_captions` so that they hide as little of the
  image as they can and never each other.

The app's views on a terminal that shows real pixels (Kitty graphics, Sixel) are drawn
at full resolution (``pixels=True``), in the views' colours, their captions on tags.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

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


def _color(class_id: int) -> tuple[int, int, int]:
    return PALETTE[class_id % len(PALETTE)]


LABEL_COLOR = (60, 230, 90)
DET_COLOR = (255, 70, 200)
CURRENT_COLOR = (255, 220, 0)
#: The placeholder drawn for a file that cannot be read.
MISSING_COLOR = (28, 28, 36)


# -- the boxes --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Box:
    """One box to draw, in the pixels of the source image."""

    kind: str  #: "label" or "det"
    name: str  #: the class name
    score: float | None
    x1: float
    y1: float
    x2: float
    y2: float
    color: tuple[int, int, int]
    current: bool = False

    @property
    def caption(self) -> str:
        """The class name, and the score of a detection: ``upper_body 0.87``."""
        return self.name if self.score is None else f"{self.name} {self.score:.2f}"

    @property
    def short(self) -> str:
        """The caption where room is short: class initials and the score, ``ub .87``."""
        words = [w for w in self.name.replace("-", "_").replace(" ", "_").split("_") if w]
        initials = "".join(w[0] for w in words) or self.name[:2]
        if self.score is None:
            return initials
        return f"{initials} {self.score:.2f}".replace(" 0.", " .")


@dataclass(frozen=True)
class BoxMark:
    """A drawn box's caption for the text layer of the cell view: the box as drawn
    (``x``, ``y`` to ``right``, ``bottom``, inclusive pixels of the fitted image), its
    caption, the short form and its colour."""

    x: int
    y: int
    text: str
    kind: str
    color: tuple[int, int, int]
    right: int = -1
    bottom: int = -1
    short: str = ""
    current: bool = False


@dataclass(frozen=True)
class Frame:
    """Where the source image's pixels land in a drawn picture: ``(x - ox) * sx``."""

    sx: float
    sy: float
    ox: float = 0.0
    oy: float = 0.0


def draw_boxes(
    canvas: Image.Image, boxes: Sequence[Box], frame: Frame, *, cells: bool, captions: bool = True
) -> list[BoxMark]:
    """Draw ``boxes`` on ``canvas``: the one box renderer of paint, the preview and triage.

    ``cells=False`` (paint, and the app's views on a terminal that shows real pixels: full
    resolution): labels solid, detections dashed and thinner, each with its caption on a
    filled tag (labels above the box, detections inside its bottom edge; moved or shortened
    where another tag is there; no tags with ``captions=False``); returns the tags.
    ``cells=True`` (the terminal's half-block view, one pixel per cell
    column and half a cell row): one-pixel outlines on the pixels nearest each edge, so
    an edge shows where it is to half a cell; captions are not drawn but returned, for
    :func:`place_captions`.
    """
    from PIL import ImageDraw

    draw = ImageDraw.Draw(canvas)
    if cells:
        return _outline_boxes(draw, canvas.size, boxes, frame)
    return _paint_boxes(draw, canvas.size, boxes, frame, captions)


def _outline_boxes(draw: Any, size: tuple[int, int], boxes: Sequence[Box], frame: Frame) -> list[BoxMark]:
    tw, th = size
    marks: list[BoxMark] = []
    for box in boxes:
        x1, x2 = (box.x1 - frame.ox) * frame.sx, (box.x2 - frame.ox) * frame.sx
        y1, y2 = (box.y1 - frame.oy) * frame.sy, (box.y2 - frame.oy) * frame.sy
        if x2 < 0 or y2 < 0 or x1 > tw or y1 > th:
            continue
        left = max(0, min(tw - 1, round(x1)))
        top = max(0, min(th - 1, round(y1)))
        right = max(left, min(tw - 1, round(x2) - 1))
        bottom = max(top, min(th - 1, round(y2) - 1))
        draw.rectangle([(left, top), (right, bottom)], outline=box.color)
        marks.append(
            BoxMark(left, top, box.caption, box.kind, box.color, right, bottom, box.short, box.current)
        )
    return marks


def _paint_boxes(
    draw: Any, size: tuple[int, int], boxes: Sequence[Box], frame: Frame, captions: bool = True
) -> list[BoxMark]:
    from PIL import ImageFont

    w, h = size
    side = min(w, h)
    thick = max(3, round(side / 200))
    font = ImageFont.load_default(size=max(10, round(side / 40)))
    tags: list[BoxMark] = []

    def spot(box: Box, x1: float, y1: float, x2: float, y2: float) -> tuple[str, float, float]:
        """Where a caption's tag goes: where it always went (labels above the box, detections
        inside its bottom edge) unless another tag is there; else below or above the box, or
        inside its top or bottom edge, at its left or right end; the short caption where the
        full one finds no room; the full one where it always went when neither does."""
        for text in (box.caption, box.short):
            tw, th = size_of(text)
            ys = (y1 - th, y2, y1, y2 - th) if box.kind == "label" else (y2 - th, y2, y1 - th, y1)
            for ty in ys:
                for tx in (x1, x2 - tw):
                    tx, ty = min(max(0, tx), max(0, w - tw)), min(max(0, ty), h - th)
                    if all(tx > t.right or tx + tw < t.x or ty > t.bottom or ty + th < t.y for t in tags):
                        return text, tx, ty
        tw, th = size_of(box.caption)
        y = y1 - th if box.kind == "label" else y2 - th
        return box.caption, min(max(0, x1), max(0, w - tw)), min(max(0, y), h - th)

    def size_of(text: str) -> tuple[int, int]:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        return right - left + 4, bottom - top + 4

    def tag(box: Box, x1: float, y1: float, x2: float, y2: float) -> None:
        if not captions:
            return
        text, tx, ty = spot(box, x1, y1, x2, y2)
        left, top, _right, _bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = size_of(text)
        draw.rectangle([tx, ty, tx + tw, ty + th], fill=box.color)
        draw.text((tx + 2 - left, ty + 2 - top), text, font=font, fill=(0, 0, 0))
        tags.append(BoxMark(round(tx), round(ty), text, box.kind, box.color, round(tx + tw), round(ty + th)))

    dash = max(4, thick * 3)
    for box in boxes:
        bx1, by1 = (box.x1 - frame.ox) * frame.sx, (box.y1 - frame.oy) * frame.sy
        bx2, by2 = (box.x2 - frame.ox) * frame.sx, (box.y2 - frame.oy) * frame.sy
        if box.kind == "label":
            draw.rectangle([bx1, by1, bx2, by2], outline=box.color, width=thick)
            tag(box, bx1, by1, bx2, by2)
            continue
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
                draw.line(seg, fill=box.color, width=width)
                pos += dash * 2
        tag(box, bx1, by1, bx2, by2)
    return tags


# -- paint ------------------------------------------------------------------------------------------
def render(image: bytes, drawing: bytes, *, quality: int = QUALITY) -> bytes:
    """Draw ``drawing`` (see :func:`tuiops.ops.paint.drawings`) on the encoded ``image``;
    returns JPEG bytes."""
    from PIL import Image

    spec: dict[str, Any] = json.loads(drawing or b"{}")
    with Image.open(io.BytesIO(image)) as im:
        im.load()
        canvas = im.convert("RGB")
    w, h = canvas.size
    fw, fh = spec.get("w") or w, spec.get("h") or h
    names: list[str] = spec.get("names", [])

    def name_of(c: int) -> str:
        return names[c] if 0 <= c < len(names) else str(c)

    boxes = [
        Box("label", name_of(int(c)), None, x1, y1, x2, y2, _color(int(c)))
        for c, x1, y1, x2, y2 in spec.get("l", [])
    ]
    boxes += [
        Box("det", name_of(int(c)), score, x1, y1, x2, y2, _color(int(c)))
        for c, score, x1, y1, x2, y2 in spec.get("d", [])
    ]
    draw_boxes(canvas, boxes, Frame(w / fw, h / fh), cells=False)
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# -- the terminal's views -----------------------------------------------------------------------------
Region = tuple[float, float, float, float]


def fitted_image(
    path: Path | None,
    readable: bool,
    width: int | None,
    height: int | None,
    max_w: int,
    max_h: int,
    region: Region | None = None,
) -> tuple[Image.Image, Frame]:
    """The image (or ``region`` of it, in its pixels) fitted into ``max_w``×``max_h``, aspect
    kept, and where its pixels land. A missing or unreadable file gives a dark placeholder."""
    from PIL import Image, ImageDraw, ImageOps

    W = max(2, int(width)) if width else None
    H = max(2, int(height)) if height else None
    img = None
    if path is not None and readable:
        try:
            with Image.open(path) as im:
                if region is None:
                    im.draft("RGB", (max_w * 2, max_h * 2))
                img = ImageOps.exif_transpose(im).convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError):
            img = None
    src_w = W or (img.width if img is not None else max_w)
    src_h = H or (img.height if img is not None else max_h)
    ox, oy, rw, rh = 0.0, 0.0, float(src_w), float(src_h)
    if region is not None:
        ox, oy = max(0.0, region[0]), max(0.0, region[1])
        rw = max(1.0, min(float(src_w), region[2]) - ox)
        rh = max(1.0, min(float(src_h), region[3]) - oy)
    scale = min(max_w / rw, max_h / rh)
    tw, th = max(1, round(rw * scale)), max(1, round(rh * scale))
    if img is None:
        out = Image.new("RGB", (tw, th), MISSING_COLOR)
        d = ImageDraw.Draw(out)
        d.line([(0, 0), (tw - 1, th - 1)], fill=(70, 70, 80))
        d.line([(0, th - 1), (tw - 1, 0)], fill=(70, 70, 80))
    else:
        kx, ky = img.width / src_w, img.height / src_h
        if region is not None:
            img = img.crop((round(ox * kx), round(oy * ky), round((ox + rw) * kx), round((oy + rh) * ky)))
        out = img.resize((tw, th), Image.Resampling.BILINEAR)
    return out, Frame(tw / rw, th / rh, ox, oy)


def zoom_region(
    boxes: Sequence[Region], width: int | None, height: int | None, margin: float = 0.5
) -> Region | None:
    """The part of an image that shows ``boxes`` with ``margin`` (a share of their size) around
    them, at least a tenth of the image each way; None when there is no box."""
    if not boxes:
        return None
    x1 = min(b[0] for b in boxes)
    y1 = min(b[1] for b in boxes)
    x2 = max(b[2] for b in boxes)
    y2 = max(b[3] for b in boxes)
    w = max(x2 - x1, (width or 0) / 10, 4.0)
    h = max(y2 - y1, (height or 0) / 10, 4.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


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
    region: Region | None = None,
    current: int | None = None,
    pixels: bool = False,
    captions: bool = True,
) -> tuple[Image.Image, list[BoxMark]]:
    """The image fitted into ``max_w``×``max_h`` pixels with label and detection boxes drawn.

    Boxes are drawn after scaling as one-pixel outlines (``pixels``: at full resolution,
    with their captions on tags unless ``captions`` is false), labels in green and
    detections in magenta; ``label_set``/``run`` choose which (default: every set and
    run); box number ``current`` of those is drawn in yellow, on top. ``region`` (source
    pixels) shows that part of the image only. A missing or unreadable file gives a dark
    placeholder with the boxes on it. Returns the image and the captions (class name, and
    score for detections) with the boxes they belong to (``pixels``: the tags drawn).
    """
    out, frame = fitted_image(
        info.path, info.status in (None, "ok"), info.width, info.height, max_w, max_h, region
    )
    boxes: list[Box] = []
    if info.boxes is not None and info.boxes.height:
        import polars as pl

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
        rows = info.boxes.filter(keep).select("kind", "class", "score", "x1", "y1", "x2", "y2").iter_rows()
        boxes = [
            Box(
                kind,
                cls,
                score,
                x1,
                y1,
                x2,
                y2,
                CURRENT_COLOR if i == current else LABEL_COLOR if kind == "label" else DET_COLOR,
                i == current,
            )
            for i, (kind, cls, score, x1, y1, x2, y2) in enumerate(rows)
        ]
        boxes.sort(key=lambda b: b.current)
    return out, draw_boxes(out, boxes, frame, cells=not pixels, captions=captions)


def triage_boxes(
    view: ImageView,
    current: TriageObject | None,
    classes: list[str],
    *,
    show_labels: bool = True,
    show_dets: bool = True,
) -> list[Box]:
    """The boxes of a triage view: labels green, detections magenta, the current object's
    yellow and last (drawn on top); a hidden layer leaves the current object's boxes."""
    cur_label = current.label_id if current else None
    cur_det = current.det_id if current else None

    def name(cid: int) -> str:
        return classes[cid] if 0 <= cid < len(classes) else str(cid)

    boxes: list[Box] = []
    for r in view.labels:
        cur = r[0] == cur_label
        if cur or show_labels:
            boxes.append(
                Box(
                    "label",
                    name(r[1]),
                    None,
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    CURRENT_COLOR if cur else LABEL_COLOR,
                    cur,
                )
            )
    for d in view.dets:
        cur = d[0] == cur_det
        if cur or show_dets:
            boxes.append(
                Box("det", name(d[1]), d[6], d[2], d[3], d[4], d[5], CURRENT_COLOR if cur else DET_COLOR, cur)
            )
    boxes.sort(key=lambda b: b.current)
    return boxes


def render_view(
    info: ImageInfo,
    view: ImageView,
    current: TriageObject | None,
    classes: list[str],
    max_w: int,
    max_h: int,
    *,
    show_labels: bool = True,
    show_dets: bool = True,
    zoom: bool = False,
    pixels: bool = False,
    captions: bool = True,
) -> tuple[Image.Image, list[BoxMark]]:
    """The image fitted into ``max_w``×``max_h`` with the labels (green), the detections
    (magenta) and the current object's boxes (yellow) drawn, and their captions;
    ``zoom`` fits the current object's boxes instead of the whole image; ``pixels`` and
    ``captions`` as for :func:`render_preview`."""
    boxes, width, height, region = triage_scene(
        info, view, current, classes, show_labels=show_labels, show_dets=show_dets, zoom=zoom
    )
    out, frame = fitted_image(info.path, info.status in (None, "ok"), width, height, max_w, max_h, region)
    return out, draw_boxes(out, boxes, frame, cells=not pixels, captions=captions)


def triage_scene(
    info: ImageInfo,
    view: ImageView,
    current: TriageObject | None,
    classes: list[str],
    *,
    show_labels: bool = True,
    show_dets: bool = True,
    zoom: bool = False,
) -> tuple[list[Box], int | None, int | None, tuple[float, float, float, float] | None]:
    """What a triage picture shows: its boxes (:func:`triage_boxes`), the image's size, and
    with ``zoom`` the region around the current object's boxes (else None)."""
    boxes = triage_boxes(view, current, classes, show_labels=show_labels, show_dets=show_dets)
    width, height = info.width or view.width, info.height or view.height
    region = None
    if zoom:
        region = zoom_region([(b.x1, b.y1, b.x2, b.y2) for b in boxes if b.current], width, height)
    return boxes, width, height, region


# -- captions in the cell view ---------------------------------------------------------------------
@dataclass(frozen=True)
class Caption:
    """A placed caption: its first cell (column ``x``, row ``y``), its text and colour, and
    the caption it places (its index in the list given to :func:`place_captions`)."""

    x: int
    y: int
    text: str
    color: tuple[int, int, int]
    index: int = -1


def place_captions(captions: Sequence[BoxMark], width: int, rows: int) -> list[Caption]:
    """Cells for the captions of boxes drawn on a ``width``-pixel-wide image of ``rows`` cell
    rows (two pixel rows each): outside the box where there is room (labels above,
    detections below), else on the box's own edge row, never inside it and never on or
    touching another caption; the short form (initials and score) where the full one finds
    no room; left out where neither does. The current object's captions are placed first."""
    taken: dict[int, list[tuple[int, int]]] = {}
    out: list[Caption] = []
    for i, c in sorted(enumerate(captions), key=lambda ic: not ic[1].current):
        top, bottom = c.y // 2, max(c.y, c.bottom) // 2
        left, right = c.x, max(c.x, c.right)
        order = (
            (top - 1, bottom + 1, top, bottom) if c.kind == "label" else (bottom + 1, top - 1, bottom, top)
        )
        outside = [y for y in order[:2] if 0 <= y < rows]
        edges = [y for y in order[2:] if 0 <= y < rows and y not in outside]
        texts = [t for t in (c.text, c.short) if t]
        spot = _free_spot(texts, (outside, edges), left, right, width, taken)
        if spot is None:
            continue
        x, y, text = spot
        taken.setdefault(y, []).append((x, x + len(text)))
        out.append(Caption(x, y, text, c.color, i))
    return out


def _free_spot(
    texts: list[str],
    groups: tuple[list[int], list[int]],
    left: int,
    right: int,
    width: int,
    taken: dict[int, list[tuple[int, int]]],
) -> tuple[int, int, str] | None:
    """The first free place: the rows outside the box before its edge rows, the full text
    before the short one, the box's left end before its right end."""
    for rows in groups:
        for text in texts:
            text = text[:width]
            n = len(text)
            for y in rows:
                spans = taken.get(y, [])
                for x in (left, right - n + 1):
                    x = max(0, min(x, width - n))
                    if all(x + n < a or x > b for a, b in spans):
                        return x, y, text
    return None
