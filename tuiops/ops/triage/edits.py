"""Box edits of triage: a label's box nudged, moved whole, or snapped to its detection's box.

The functions here only compute the new box; :func:`tuiops.ops.triage.decide` with the
``box`` decision writes it as one revision (undone like every decision).

A *part* of a box is the whole box or one of its edges (:data:`BOX_PARTS`). A nudge moves
the part by ``dx``/``dy`` steps: a step is one pixel, or :data:`COARSE` (5 %) of the
image's width (horizontal) or height (vertical); of the box's own when the image's size is
unknown. An edge moves on its own axis only, never past the opposite edge (the box keeps at
least one pixel) and never out of the image (an edge already outside only moves in); the whole box moves by the same rule, keeping its size.
"""

from __future__ import annotations

from collections.abc import Sequence

from tuiops.errors import UsageError

#: What a nudge moves: the whole box or one edge.
BOX_PARTS = ("box", "left", "top", "right", "bottom")
#: A coarse nudge's share of the image's width or height.
COARSE = 0.05
#: The smallest width and height a nudged box keeps, in pixels.
MIN_SIZE = 1.0

Box = tuple[float, float, float, float]


def step_size(
    box: Sequence[float], coarse: bool, width: int | None, height: int | None
) -> tuple[float, float]:
    """One step's size in pixels (horizontal, vertical): a pixel, or the coarse share of the
    image's (or, of unknown size, the box's) width and height."""
    if not coarse:
        return 1.0, 1.0
    w = float(width) if width else float(box[2]) - float(box[0])
    h = float(height) if height else float(box[3]) - float(box[1])
    return float(max(1, round(w * COARSE))), float(max(1, round(h * COARSE)))


def _moved(lo: float, hi: float, d: float, limit: float | None) -> float:
    """The shift of a span [lo, hi] by ``d`` kept inside [0, limit] where it was inside."""
    if d < 0:
        return max(d, min(0.0, -lo))
    if limit is not None:
        return min(d, max(0.0, limit - hi))
    return d


def _low_edge(lo: float, hi: float, d: float, limit: float | None) -> float:
    """The low edge of [lo, hi] moved by ``d``, inside the image and short of ``hi`` by :data:`MIN_SIZE`."""
    new = lo + _moved(lo, lo, d, limit)
    return new if d <= 0 else max(lo, min(new, hi - MIN_SIZE))


def _high_edge(lo: float, hi: float, d: float, limit: float | None) -> float:
    """The high edge of [lo, hi] moved by ``d``, inside the image and past ``lo`` by :data:`MIN_SIZE`."""
    new = hi + _moved(hi, hi, d, limit)
    return new if d >= 0 else min(hi, max(new, lo + MIN_SIZE))


def nudged_box(
    box: Sequence[float],
    part: str,
    dx: float,
    dy: float,
    width: int | None = None,
    height: int | None = None,
) -> Box:
    """``box`` (x1, y1, x2, y2) with ``part`` moved by ``dx``, ``dy`` pixels; see the module doc."""
    if part not in BOX_PARTS:
        raise UsageError(f"the part of a box to move must be one of {', '.join(BOX_PARTS)}, not {part!r}")
    x1, y1, x2, y2 = (float(v) for v in box)
    W = float(width) if width else None
    H = float(height) if height else None
    if part == "box":
        sx, sy = _moved(x1, x2, dx, W), _moved(y1, y2, dy, H)
        return x1 + sx, y1 + sy, x2 + sx, y2 + sy
    if part == "left":
        x1 = _low_edge(x1, x2, dx, W)
    elif part == "right":
        x2 = _high_edge(x1, x2, dx, W)
    elif part == "top":
        y1 = _low_edge(y1, y2, dy, H)
    else:
        y2 = _high_edge(y1, y2, dy, H)
    return x1, y1, x2, y2


def snapped_box(box: Sequence[float], target: Sequence[float], part: str = "box") -> Box:
    """``box`` with ``part`` taken from ``target`` (the whole box, or one edge); an edge that
    would pass the opposite edge is refused."""
    if part not in BOX_PARTS:
        raise UsageError(f"the part of a box to snap must be one of {', '.join(BOX_PARTS)}, not {part!r}")
    x1, y1, x2, y2 = (float(v) for v in box)
    t = [float(v) for v in target]
    if part == "box":
        return t[0], t[1], t[2], t[3]
    i = BOX_PARTS.index(part) - 1
    out = [x1, y1, x2, y2]
    out[i] = t[i]
    if not (out[0] < out[2] and out[1] < out[3]):
        raise UsageError(f"the {part} edge of the detection would pass the label's opposite edge")
    return out[0], out[1], out[2], out[3]


def part_axis(part: str) -> str:
    """Which moves a part takes: ``xy`` (the whole box), ``x`` (left, right) or ``y`` (top, bottom)."""
    return {"box": "xy", "left": "x", "right": "x", "top": "y", "bottom": "y"}[part]
