"""The box renderer (`tuiops.imaging`) at cell resolution: where box edges are drawn and
where captions go on crowded images."""

from __future__ import annotations

import random

import polars as pl
import pytest

from tuiops.imaging import DET_COLOR, LABEL_COLOR, BoxMark, place_captions, render_preview
from tuiops.ops.browse import ImageInfo


def crowded_marks(seed: int, width: int, rows: int, n: int) -> list[BoxMark]:
    """``n`` boxes of every size, overlapping, on a ``width``×``rows``-cell image."""
    rng = random.Random(seed)
    names = ["head", "upper_body", "lower_body", "text", "hand"]
    out = []
    for i in range(n):
        x = rng.randrange(0, width - 2)
        y = rng.randrange(0, 2 * rows - 2)
        right = min(width - 1, x + rng.randrange(1, width // 2))
        bottom = min(2 * rows - 1, y + rng.randrange(1, rows))
        kind = "label" if i % 2 else "det"
        name = rng.choice(names)
        text = name if kind == "label" else f"{name} 0.{rng.randrange(10, 99)}"
        short = "".join(w[0] for w in name.split("_")) + ("" if kind == "label" else f" .{text[-2:]}")
        color = LABEL_COLOR if kind == "label" else DET_COLOR
        out.append(BoxMark(x, y, text, kind, color, right, bottom, short, i == 3))
    return out


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("width", "rows", "n"), [(40, 20, 12), (60, 30, 40), (24, 12, 30), (120, 33, 16)])
def test_captions_on_crowded_boxes(seed, width, rows, n):
    marks = crowded_marks(seed, width, rows, n)
    placed = place_captions(marks, width, rows)
    assert placed, "some caption always finds room"
    cells: dict[tuple[int, int], int] = {}
    for c in placed:
        mark = marks[c.index]
        assert c.text in (mark.text, mark.short)
        assert c.x >= 0 and c.x + len(c.text) <= width and 0 <= c.y < rows
        # no caption on another one, nor touching it on its row
        for x in range(c.x - 1, c.x + len(c.text) + 1):
            other = cells.get((x, c.y))
            assert other is None, f"caption {c.text!r} touches {placed[other].text!r}"
        for x in range(c.x, c.x + len(c.text)):
            cells[(x, c.y)] = placed.index(c)
        # a caption covers no more of its own box than the box's top or bottom edge row
        top, bottom = mark.y // 2, mark.bottom // 2
        assert not top < c.y < bottom, f"caption {c.text!r} inside its box (rows {top}..{bottom})"
    # the current object's caption is placed first, so it always shows
    assert any(c.index == 3 for c in placed)


def test_a_lone_box_gets_its_full_caption_outside_it():
    label = BoxMark(10, 10, "upper_body", "label", LABEL_COLOR, 30, 29, "ub")
    det = BoxMark(10, 10, "upper_body 0.87", "det", DET_COLOR, 30, 29, "ub .87")
    (c,) = place_captions([label], 60, 30)
    assert (c.x, c.y, c.text) == (10, 4, "upper_body")  # the row above the box's top row (5)
    (c,) = place_captions([det], 60, 30)
    assert (c.x, c.y, c.text) == (10, 15, "upper_body 0.87")  # the row below its bottom row (14)


def test_crowded_captions_are_shortened_rather_than_left_out():
    # four boxes side by side, 5 cells wide, with one free row above and below them
    marks = [BoxMark(6 * i, 2, "upper_body", "label", LABEL_COLOR, 6 * i + 4, 9, "ub") for i in range(4)]
    placed = place_captions(marks, 24, 6)
    assert len(placed) == 4
    assert "ub" in {c.text for c in placed} and all(c.y in (0, 5) for c in placed)


def test_cell_strokes_fall_on_the_pixel_nearest_each_edge():
    """An edge at 10.6 px is drawn on pixel 11 (not 10); an edge at 20.4 on pixel 19: each
    edge shows where it is to half a pixel (half a cell), the box never grows outward."""
    boxes = pl.DataFrame(
        {
            "source": ["gt"],
            "kind": ["label"],
            "class_id": [0],
            "class": ["head"],
            "score": [None],
            "x1": [10.6],
            "y1": [4.4],
            "x2": [20.4],
            "y2": [12.6],
        },
        schema_overrides={"score": pl.Float64},
    )
    info = ImageInfo("k", 1, width=40, height=40, boxes=boxes)
    image, marks = render_preview(info, 40, 40)
    assert image.size == (40, 40)
    drawn = {(x, y) for x in range(40) for y in range(40) if image.getpixel((x, y)) == LABEL_COLOR}
    xs = {x for x, _ in drawn}
    ys = {y for _, y in drawn}
    assert (min(xs), max(xs), min(ys), max(ys)) == (11, 19, 4, 12)
    assert (marks[0].x, marks[0].y) == (11, 4)


def test_paint_tags_move_off_each_other():
    """Five labels with one top-left corner: their tags would all go above it; each finds
    its own place (below the box, inside its edges, at either end), none on another."""
    from PIL import Image

    from tuiops.imaging import PALETTE, Box, Frame, draw_boxes

    canvas = Image.new("RGB", (400, 300), (128, 128, 128))
    boxes = [Box("label", f"class_{i}", None, 40, 60, 200 + 30 * i, 220, PALETTE[i]) for i in range(5)]
    tags = draw_boxes(canvas, boxes, Frame(1.0, 1.0), cells=False)
    assert len(tags) == 5
    assert (tags[0].x, tags[0].bottom) == (40, 60)  # the first where a label's tag always goes
    for i, a in enumerate(tags):
        for b in tags[i + 1 :]:
            apart = a.right < b.x or b.right < a.x or a.bottom < b.y or b.bottom < a.y
            assert apart, f"tag {a.text!r} {a} is on tag {b.text!r} {b}"
