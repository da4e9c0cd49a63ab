"""Real pixels: the protocol chosen from the terminal's answer (recorded answers, and a real
pseudo-terminal answering the query), and the F3 view, the quick view and triage drawing
their boxes into pictures that textual-image shows (Pilot)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_tui_app import goto, left, settle
from tests.test_tui_viewer import PORTRAIT, press
from tuiops.fsutil import readable
from tuiops.imaging import CURRENT_COLOR, DET_COLOR, LABEL_COLOR
from tuiops.widgets.graphics import QUERY, choose_protocol, protocol_from_reply
from tuiops.widgets.image import ImagePreview

# -- the terminal's answer --------------------------------------------------------------------------
KITTY_OK = "\x1b_Gi=31;OK\x1b\\"

#: What terminals answer to the Kitty graphics query and DA1 (``\x1b[c``), as they send it.
RECORDED = {
    # kitty 0.3x: the graphics query is answered, DA1 lists no Sixel
    "kitty": (KITTY_OK + "\x1b[?62;c", "kitty"),
    # ghostty: likewise
    "ghostty": (KITTY_OK + "\x1b[?62;22c", "kitty"),
    # WezTerm answers both; Sixel is taken (it does not draw Kitty's Unicode placeholders)
    "wezterm": (KITTY_OK + "\x1b[?65;4;6;18;22c", "sixel"),
    # foot: Sixel only
    "foot": ("\x1b[?62;4;22c", "sixel"),
    # Windows Terminal 1.22
    "windows terminal": ("\x1b[?61;4;6;7;14;21;22;23;24;28;32;42c", "sixel"),
    # xterm -ti vt340
    "xterm vt340": ("\x1b[?63;1;2;4;6;9;15;22c", "sixel"),
    # xterm as most distributions start it: no Sixel, no Kitty graphics
    "xterm": ("\x1b[?64;1;2;6;9;15;16;17;18;21;22;28c", "halfblock"),
    # tmux 3.3a, recorded in a tmux pane: it answers for itself and drops the graphics query
    "tmux": ("\x1b[?1;2c", "halfblock"),
    # GNOME Terminal (VTE)
    "vte": ("\x1b[?65;1;9c", "halfblock"),
    # a terminal that refuses the graphics query
    "kitty query refused": ("\x1b_Gi=31;ENOTSUPPORTED:no graphics\x1b\\\x1b[?62;c", "halfblock"),
    # a key typed while the query was out comes before the answer
    "typed key first": ("j" + KITTY_OK + "\x1b[?62;c", "kitty"),
    # an answer cut short: no DA1
    "no DA1": (KITTY_OK, "halfblock"),
    # nothing at all
    "silent": ("", "halfblock"),
}


@pytest.mark.parametrize("terminal", list(RECORDED))
def test_protocol_from_recorded_replies(terminal):
    reply, expected = RECORDED[terminal]
    assert protocol_from_reply(reply) == expected


def test_choose_protocol_falls_back_to_half_blocks_without_asking():
    def never() -> str:
        raise AssertionError("the terminal must not be asked")

    term = {"TERM": "xterm-256color"}
    assert choose_protocol("kitty", ask=never) == ("kitty", "--images kitty")
    assert choose_protocol("halfblock", ask=never)[0] == "halfblock"
    assert choose_protocol("auto", environ={**term, "TMUX": "/tmp/x,1,0"}, is_terminal=True, ask=never) == (
        "halfblock",
        "inside tmux or screen",
    )
    assert choose_protocol("auto", environ={"TERM": "screen-256color"}, is_terminal=True, ask=never)[0] == (
        "halfblock"
    )
    assert choose_protocol("auto", environ=term, is_terminal=False, ask=never) == (
        "halfblock",
        "not a terminal",
    )
    assert choose_protocol("auto", environ={"TERM": "dumb"}, is_terminal=True, ask=never)[0] == "halfblock"
    got = choose_protocol("auto", environ=term, is_terminal=True, ask=lambda: RECORDED["foot"][0])
    assert got == ("sixel", "the terminal's answer")
    assert choose_protocol("auto", environ=term, is_terminal=True, ask=lambda: "")[1] == (
        "the terminal did not answer"
    )


CHILD = """
import sys
from tuiops.widgets.graphics import choose_protocol
protocol, why = choose_protocol("auto")
with open(sys.argv[1], "w") as f:
    f.write(protocol + "|" + why)
"""


def _ask_over_a_pty(tmp_path: Path, answer: str | None) -> tuple[str, str]:
    """Run ``choose_protocol("auto")`` in a child on a pseudo-terminal; this side plays the
    terminal: it reads the query and writes ``answer`` (None: answers nothing)."""
    import pty
    import subprocess

    out = tmp_path / "chosen.txt"
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("TMUX", None)
    env.pop("STY", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out)], stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    got = b""
    try:
        while QUERY.encode() not in got:
            assert readable(master, 30), f"the query never came: {got!r}"
            got += os.read(master, 1024)
        if answer is not None:
            os.write(master, answer.encode())
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        os.close(master)
    protocol, why = out.read_text().split("|")
    return protocol, why


@pytest.mark.parametrize("terminal", ["kitty", "foot", "xterm"])
def test_the_query_over_a_real_pty(tmp_path, terminal):
    reply, expected = RECORDED[terminal]
    assert _ask_over_a_pty(tmp_path, reply) == (expected, "the terminal's answer")


def test_a_terminal_that_does_not_answer_gets_half_blocks(tmp_path):
    assert _ask_over_a_pty(tmp_path, None) == ("halfblock", "the terminal did not answer")


# -- pictures in real pixels (Pilot) ------------------------------------------------------------------
def near(rgb: Any, color: tuple[int, int, int], tol: int = 40) -> Any:
    import numpy as np

    return (np.abs(rgb.astype(int) - np.array(color)).sum(axis=-1)) <= tol


def longest_run(mask: Any) -> int:
    """The longest horizontal run of true pixels in ``mask``."""
    best = 0
    for row in mask:
        run = 0
        for v in row:
            run = run + 1 if v else 0
            best = max(best, run)
    return best


def drawn(picture: Any, color: tuple[int, int, int]) -> int:
    """The longest horizontal line of ``color`` in ``picture`` (a box's top or bottom edge)."""
    import numpy as np

    return longest_run(near(np.asarray(picture.convert("RGB")), color))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.test_tui_browse import build_workspace
    from tuiops.ops.match import match
    from tuiops.workspace import Workspace

    root = build_workspace(tmp_path_factory.mktemp("pixels") / "demo")
    with Workspace.open(root) as ws:
        match(ws, "master", "v1")
    return root


def play_in(root: Path, protocol: str, size: tuple[int, int], scenario: Any) -> None:
    import asyncio

    from tuiops.app import TuiopsApp
    from tuiops.workspace import Workspace

    ws = Workspace.open(root)
    app = TuiopsApp(ws, image_protocol=protocol)

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await scenario(pilot, app)

    try:
        asyncio.run(main())
    finally:
        ws.close()


def shows_pixels(preview: ImagePreview, protocol: str) -> Any:
    """The picture textual-image shows for ``preview``, checked to fill whole cells of it."""
    from textual_image.widget import SixelImage, TGPImage

    widget = preview.query_one("#image-pixels")
    assert isinstance(widget, SixelImage if protocol == "sixel" else TGPImage)
    assert widget.display and widget.image is preview.picture
    cw, ch = preview.cell_pixels()
    picture = preview.picture
    assert picture is not None
    assert (widget.size.width * cw, widget.size.height * ch) == picture.size
    assert picture.width <= preview.size.width * cw and picture.height <= preview.size.height * ch
    return picture


@pytest.mark.parametrize("protocol", ["kitty", "sixel"])
def test_the_viewer_draws_its_boxes_into_real_pixels(demo, protocol):
    async def scenario(pilot, app):
        await goto(pilot, left(app), PORTRAIT)
        await press(pilot, "f3")
        card = app.screen.card
        preview = card.preview
        assert preview.pixels and preview.cell_pixels() == (10, 20)
        whole = shows_pixels(preview, protocol)
        # the picture has the terminal's resolution: far more than two pixels a cell
        assert whole.height > 4 * preview.image_size[1]
        assert drawn(whole, LABEL_COLOR) >= 20 and drawn(whole, DET_COLOR) >= 20
        assert not preview.captions, "captions are drawn into the pixels, not as text"
        # t hides the captions' tags: fewer pixels of the box colours
        import numpy as np

        def coloured(img: Any) -> int:
            rgb = np.asarray(img)
            return int(near(rgb, LABEL_COLOR).sum() + near(rgb, DET_COLOR).sum())

        await press(pilot, "t")
        plain = shows_pixels(preview, protocol)
        assert coloured(plain) < coloured(whole)
        await press(pilot, "t")
        assert coloured(shows_pixels(preview, protocol)) == coloured(whole)
        # v: labels only
        await press(pilot, "v")
        assert drawn(shows_pixels(preview, protocol), DET_COLOR) < 20
        await press(pilot, "v", "v", "v")
        # ] zooms to the first box, drawn yellow and large; z shows the whole image again
        await press(pilot, "right_square_bracket")
        zoomed = shows_pixels(preview, protocol)
        assert card.zoom == 0 and drawn(zoomed, CURRENT_COLOR) >= zoomed.width // 4
        await press(pilot, "right_square_bracket")
        assert card.zoom == 1
        await press(pilot, "left_square_bracket")
        assert card.zoom == 0
        await press(pilot, "z")
        assert card.zoom is None and shows_pixels(preview, protocol).size == whole.size
        # the half-block lines are never made
        assert preview._lines == []
        # Esc and F3 again: a new viewer shows the picture again
        await press(pilot, "escape", "f3")
        assert shows_pixels(app.screen.card.preview, protocol).size == whole.size

    play_in(demo, protocol, (120, 36), scenario)


def test_the_quick_view_shows_real_pixels(demo):
    async def scenario(pilot, app):
        await goto(pilot, left(app), PORTRAIT)
        await press(pilot, "ctrl+q")
        card = app.main_screen.quick_card("right")
        assert card.display and card.info is not None and card.info.relpath == PORTRAIT
        picture = shows_pixels(card.preview, "kitty")
        assert drawn(picture, LABEL_COLOR) >= 20 and drawn(picture, DET_COLOR) >= 20

    play_in(demo, "kitty", (120, 36), scenario)


def test_triage_shows_real_pixels_zooms_and_splits(demo):
    async def scenario(pilot, app):
        app.main_screen.run_command_line("triage --set master --run v1 --kind worst")
        await settle(pilot)
        screen = app.screen
        preview = screen.preview
        whole = shows_pixels(preview, "sixel")
        assert drawn(whole, CURRENT_COLOR) >= 10
        await press(pilot, "z")
        zoomed = shows_pixels(preview, "sixel")
        assert drawn(zoomed, CURRENT_COLOR) > drawn(whole, CURRENT_COLOR), "the object is drawn larger"
        await press(pilot, "right_square_bracket")
        assert screen.index == 1 and screen.zoom
        await press(pilot, "z", "s")
        split = shows_pixels(preview, "sixel")
        import numpy as np

        rgb = np.asarray(split)
        half = split.width // 2
        left_half, right_half = rgb[:, :half], rgb[:, half:]
        assert longest_run(near(left_half, LABEL_COLOR)) >= 10 and longest_run(near(left_half, DET_COLOR)) < 5
        assert (
            longest_run(near(right_half, DET_COLOR)) >= 10 and longest_run(near(right_half, LABEL_COLOR)) < 5
        )

    play_in(demo, "sixel", (120, 36), scenario)


# -- the escapes a real terminal gets (the app in a pseudo-terminal) --------------------------------------
CELL = (8, 16)
PTY_SIZE = (120, 36)


class Terminal:
    """The app on a pseudo-terminal of ``PTY_SIZE`` cells of ``CELL`` pixels; this side reads
    everything the app writes, as a terminal would."""

    def __init__(self, root: Path, protocol: str) -> None:
        import fcntl
        import pty
        import struct
        import subprocess
        import termios

        self.master, slave = pty.openpty()
        cols, rows = PTY_SIZE
        fcntl.ioctl(
            slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, cols * CELL[0], rows * CELL[1])
        )
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "STY", "COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        argv = [sys.executable, "-c", "from tuiops.cli import main; main()", "-w", str(root)]
        self.proc = subprocess.Popen(
            [*argv, "tui", "--images", protocol],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.out = b""

    def wait_for(self, pattern: Any, start: int = 0, deadline: float = 60.0) -> Any:
        """Read until ``pattern`` (a compiled bytes regex) matches what came after ``start``."""
        import time

        end = time.monotonic() + deadline
        while True:
            found = pattern.search(self.out, start)
            if found:
                return found
            left = end - time.monotonic()
            if not readable(self.master, max(0.0, left)):
                tail = self.out[-2000:]
                raise AssertionError(f"the terminal never got {pattern.pattern!r}; last output: {tail!r}")
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the app is gone
                chunk = b""
            if not chunk:
                raise AssertionError(f"the app ended before {pattern.pattern!r}: {self.out[-2000:]!r}")
            self.out += chunk

    def keys(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def decode_sixel(body: bytes) -> Any:
    """The picture a Sixel body (what follows ``ESC P … q``) draws: raster attributes,
    colour registers (``#n;2;r;g;b`` in percent), repeats (``!n``), ``$`` and ``-``."""
    import re

    import numpy as np

    text = body.decode("ascii")
    raster = re.match(r'"(\d+);(\d+);(\d+);(\d+)', text)
    assert raster, "the Sixel image states its size"
    width, height = int(raster.group(3)), int(raster.group(4))
    out = np.zeros((height, width, 3), dtype=np.uint8)
    colors: dict[int, tuple[int, int, int]] = {}
    color, x, band, i = (0, 0, 0), 0, 0, raster.end()
    number = re.compile(r"[\d;]*")
    while i < len(text):
        c = text[i]
        if c == "#":
            m = number.match(text, i + 1)
            assert m is not None
            args = [int(v) for v in m.group().split(";") if v]
            if len(args) == 5:
                r, g, b = (round(v * 255 / 100) for v in args[2:])
                colors[args[0]] = (r, g, b)
            color = colors[args[0]]
            i = m.end()
            continue
        if c in "$-":
            x = 0
            band += c == "-"
            i += 1
            continue
        count = 1
        if c == "!":
            m = number.match(text, i + 1)
            assert m is not None
            count, i = int(m.group()), m.end()
            c = text[i]
        bits = ord(c) - 63
        for b in range(6):
            y = band * 6 + b
            if bits >> b & 1 and y < height:
                out[y, x : x + count] = color
        x += count
        i += 1
    return out


def kitty_pictures(out: bytes) -> list[Any]:
    """The PNG pictures sent with Kitty's graphics protocol (``f=100``, in ``m=1`` chunks)."""
    import base64
    import io
    import re

    from PIL import Image

    pictures, chunks = [], b""
    for m in re.finditer(rb"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\", out):
        keys = dict(kv.split(b"=", 1) for kv in m.group(1).split(b","))
        if keys.get(b"f") != b"100" and not chunks:
            continue
        chunks += m.group(2) or b""
        if keys.get(b"m", b"0") == b"0":
            pictures.append(Image.open(io.BytesIO(base64.b64decode(chunks))).convert("RGB"))
            chunks = b""
    return pictures


@pytest.mark.parametrize(
    ("images", "answer", "protocol"),
    [
        ("sixel", None, "sixel"),
        ("kitty", None, "kitty"),
        # --images auto: the app asks at start; this terminal answers as kitty does
        ("auto", RECORDED["kitty"][0], "kitty"),
        ("auto", RECORDED["foot"][0], "sixel"),
    ],
)
def test_the_terminal_gets_the_picture_with_its_boxes_in_its_pixels(demo, images, answer, protocol):
    import re

    import numpy as np

    term = Terminal(demo, images)
    try:
        if answer is not None:
            term.wait_for(re.compile(re.escape(QUERY.encode())))
            term.keys(answer.encode())
        term.wait_for(re.compile(rb"cover\.png"))
        start = len(term.out)
        term.keys(b"\x1b[B\x1b[B\x1b[B")  # down to an image
        term.keys(b"\x1bOR")  # F3
        if protocol == "sixel":
            found = term.wait_for(re.compile(rb"\x1bP[\d;]*q(.*?)\x1b\\", re.S), start)
            picture = decode_sixel(found.group(1))
        else:
            term.wait_for(re.compile(rb"\x1b_Ga=p,i=\d+,c=\d+,r=\d+"), start)
            pictures = kitty_pictures(term.out[start:])
            assert pictures, "the picture is sent as a PNG"
            picture = np.asarray(pictures[-1])
            # closing the viewer frees the picture the terminal holds
            last = re.findall(rb"\x1b_Gi=(\d+),m=[01],f=100", term.out[start:])[-1]
            closed = len(term.out)
            term.keys(b"\x1b")
            term.wait_for(re.compile(rb"\x1b_Ga=d,I=" + last + rb"\x1b"), closed)
    finally:
        term.close()
    height, width = picture.shape[:2]
    # the picture has the terminal's resolution: whole cells of 8×16 pixels, far finer than half blocks
    assert width % CELL[0] == 0 and height % CELL[1] == 0
    assert height > PTY_SIZE[1] * 2 * 4
    assert longest_run(near(picture, LABEL_COLOR)) >= 20, "a label box's edge is drawn in the pixels"
    assert longest_run(near(picture, DET_COLOR)) >= 20, "a detection box's edge is drawn in the pixels"


def test_a_terminal_without_graphics_gets_half_blocks(demo):
    import re

    term = Terminal(demo, "auto")
    try:
        term.wait_for(re.compile(re.escape(QUERY.encode())))
        term.keys(RECORDED["xterm"][0].encode())
        term.wait_for(re.compile(rb"cover\.png"))
        start = len(term.out)
        term.keys(b"\x1b[B\x1b[B\x1b[B\x1bOR")
        term.wait_for(re.compile(rb"phash"), start)
        term.wait_for(re.compile("▀".encode()), start)
    finally:
        term.close()
    assert not re.search(rb"\x1bP[\d;]*q", term.out[start:]), "no Sixel image"
    assert b"\x1b_Ga=p" not in term.out and b"f=100" not in term.out, "no Kitty image"
