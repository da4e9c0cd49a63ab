"""The F3 viewer and triage give the picture the room: the image's share of the screen at
three terminal sizes, and the keys that choose the box layers, the captions, the zoom and
the metadata (Pilot)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.test_tui_app import goto, left, settle
from tests.test_tui_browse import build_workspace
from tuiops.app import TuiopsApp
from tuiops.widgets.image import ImagePreview
from tuiops.workspace import Workspace

PORTRAIT = "gelbooru-3167620.png"  # 384×640
LANDSCAPE = "gelbooru-1365414.png"  # 640×320


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuiops.ops.match import match

    root = build_workspace(tmp_path_factory.mktemp("viewer") / "demo")
    with Workspace.open(root) as ws:
        match(ws, "master", "v1")
    return root


def play(root: Path, size: tuple[int, int], scenario: Any) -> None:
    ws = Workspace.open(root)
    app = TuiopsApp(ws)

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await scenario(pilot, app)

    try:
        asyncio.run(main())
    finally:
        ws.close()


async def press(pilot: Any, *keys: str) -> None:
    for k in keys:
        await pilot.press(k)
        await settle(pilot)


def largest(cols: int, rows: int, width: int, height: int) -> int:
    """Cells of the largest ``width``×``height`` image (two pixels a cell row) in ``cols``×``rows``."""
    k = min(cols / width, 2 * rows / height)
    return int(width * k) * int(height * k / 2)


def shown(app: Any) -> tuple[int, int]:
    """The cells of the image that show: the image drawn, cut to its widget."""
    preview = app.screen.query(ImagePreview).first()
    w, h = preview.image_size
    return min(w, preview.size.width), min(h, preview.size.height)


@pytest.mark.parametrize("size", [(80, 24), (160, 45), (200, 50)])
def test_the_viewer_gives_the_image_the_room(demo, size):
    cols, rows = size
    # the screen less its frame: the border, the title row and the key bar
    room = (cols - 2, rows - 4)
    got: dict[str, float] = {}

    async def scenario(pilot, app):
        await goto(pilot, left(app), PORTRAIT)
        await press(pilot, "f3")
        w, h = shown(app)
        got["portrait"] = w * h / largest(*room, 384, 640)
        assert h >= rows - 5, f"a portrait image takes the whole height ({h} of {rows} rows)"
        await press(pilot, "escape")
        await goto(pilot, left(app), LANDSCAPE)
        await press(pilot, "f3")
        w, h = shown(app)
        got["landscape"] = w * h / largest(*room, 640, 320)
        await press(pilot, "i")  # the metadata hidden: the image takes its room
        w, h = shown(app)
        got["landscape, no info"] = w * h / largest(*room, 640, 320)

    play(demo, size, scenario)
    assert got["portrait"] >= 0.9, got
    assert got["landscape, no info"] >= 0.9, got
    if cols >= 160:
        assert got["landscape"] >= 0.5, got  # the metadata beside it takes 42 columns


def test_viewer_keys_choose_layers_captions_zoom_and_info(demo):
    async def scenario(pilot, app):
        await goto(pilot, left(app), PORTRAIT)
        await press(pilot, "f3")
        card = app.screen.card
        preview = card.preview
        kinds = lambda: {m.kind for m in preview._marks}  # noqa: E731
        assert kinds() == {"label", "det"} and preview.captions
        await press(pilot, "v")
        assert kinds() == {"label"} and (card.show_labels, card.show_dets) == (True, False)
        await press(pilot, "v")
        assert kinds() == {"det"}
        await press(pilot, "v")
        assert kinds() == set() and not preview.captions
        await press(pilot, "v")
        assert kinds() == {"label", "det"}
        await press(pilot, "l")
        assert kinds() == {"det"}
        await press(pilot, "l", "d")
        assert kinds() == {"label"}
        await press(pilot, "d", "t")
        assert kinds() == {"label", "det"} and preview.captions == []
        await press(pilot, "t")
        assert preview.captions
        # z zooms to the first box, drawn yellow and large; z again shows the whole image
        whole = preview.image_size
        boxes = len(preview._marks)
        assert boxes >= 2 and not [m for m in preview._marks if m.current]
        await press(pilot, "z")
        assert card.zoom == 0
        (cur,) = [m for m in preview._marks if m.current]
        w, h = preview.image_size
        share = max((cur.right - cur.x + 1) / w, (cur.bottom - cur.y + 1) / (2 * h))
        assert share >= 0.45, f"the zoomed box spans half the picture one way ({share:.2f})"
        await press(pilot, "z")
        assert card.zoom is None and preview.image_size == whole
        assert [m for m in preview._marks if m.current], "the chosen box stays yellow on the whole image"
        # ] and n choose the next box and zoom to it, [ and p the previous one, round the boxes
        await press(pilot, "right_square_bracket")
        assert (card.zoom, card.chosen) == (1, 1)
        await press(pilot, "left_square_bracket")
        assert card.zoom == 0
        await press(pilot, "left_square_bracket")
        assert card.zoom == boxes - 1, "before the first box comes the last"
        await press(pilot, "n")
        assert card.zoom == 0
        await press(pilot, "p")
        assert card.zoom == boxes - 1
        await press(pilot, "z")
        assert card.zoom is None and preview.image_size == whole
        # i hides the metadata; the image never gets smaller
        w, h = preview.image_size
        await press(pilot, "i")
        assert not card.query_one(".card--meta").display
        w2, h2 = preview.image_size
        assert w2 * h2 >= w * h

    play(demo, (120, 36), scenario)


def test_triage_keys_choose_layers_captions_zoom_and_info(demo):
    async def scenario(pilot, app):
        app.main_screen.run_command_line("triage --set master --run v1 --kind worst")
        await settle(pilot)
        screen = app.screen
        preview = screen.preview
        current = lambda: [m for m in preview._marks if m.current]  # noqa: E731
        others = lambda: {m.kind for m in preview._marks if not m.current}  # noqa: E731
        assert current() and others() == {"label", "det"}
        await press(pilot, "v")
        assert others() == {"label"} and current()
        await press(pilot, "v")
        assert others() == {"det"} and current()
        await press(pilot, "v")
        assert others() == set() and current(), "the object's own boxes stay"
        await press(pilot, "v", "t")
        assert preview.captions == []
        await press(pilot, "t")
        assert preview.captions
        w, h = preview.image_size
        x, right = max((m.x, m.right) for m in current())
        await press(pilot, "z")
        cur = current()
        assert cur and max(m.right - m.x for m in cur) > right - x, "the object is drawn larger"
        # ] and [ step round the objects of this image, the zoom kept
        n = len(screen.entry.objects)
        position = screen.position
        assert n >= 2, "the first image of the queue has several objects"
        await press(pilot, "right_square_bracket")
        assert (screen.position, screen.index, screen.zoom) == (position, 1, True)
        await press(pilot, "left_square_bracket", "left_square_bracket")
        assert (screen.position, screen.index, screen.zoom) == (position, n - 1, True)
        await press(pilot, "right_square_bracket")
        assert screen.index == 0 and current(), "after the last object comes the first"
        await press(pilot, "z")
        assert preview.image_size == (w, h)
        await press(pilot, "i")
        assert not screen.query_one("#triage-info").display
        w2, h2 = preview.image_size
        assert w2 * h2 >= w * h

    play(demo, (120, 36), scenario)


def test_the_quick_view_fits_the_image_to_its_preview(demo):
    """The quick view's preview shrinks when the metadata comes in below it: the image is
    fitted again, never cut."""

    async def scenario(pilot, app):
        await goto(pilot, left(app), PORTRAIT)
        await press(pilot, "ctrl+q")
        preview = app.main_screen.quick_card("right").preview
        w, h = preview.image_size
        assert 0 < w <= preview.size.width and 0 < h <= preview.size.height
        assert h == preview.size.height, "a portrait image takes the preview's height"

    play(demo, (120, 36), scenario)
