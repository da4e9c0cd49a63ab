"""The real app in a real terminal: tmux runs `tuiops -w WS`, the test sends keys and reads
the pane as a person would see it. Every wait polls the pane for a condition, with a deadline."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_tui_browse import build_workspace

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI installs it)")

DEADLINE = 60.0


class Tmux:
    """One detached tmux session on a private socket."""

    def __init__(self, socket: str, session: str = "smoke") -> None:
        self.socket = socket
        self.session = session

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", os.devnull, *args], capture_output=True, text=True, check=check
        )

    def start(self, command: str, width: int = 160, height: int = 48) -> None:
        self.run("new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height), command)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session).stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", self.session, "-l", text)

    def alive(self) -> bool:
        return self.run("has-session", "-t", self.session, check=False).returncode == 0

    def wait_for(self, *texts: str, absent: tuple[str, ...] = ()) -> str:
        """Poll the pane until every text shows (and none of ``absent``); fail after the deadline."""
        end = time.monotonic() + DEADLINE
        screen = ""
        while time.monotonic() < end:
            screen = self.screen()
            if all(t in screen for t in texts) and not any(t in screen for t in absent):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"the pane never showed {texts} (without {absent}):\n{screen}")

    def wait_gone(self) -> None:
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            if not self.alive():
                return
            time.sleep(0.05)
        raise AssertionError(f"the app did not quit:\n{self.screen()}")

    def kill(self) -> None:
        self.run("kill-server", check=False)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[tuple[Tmux, Path]]:
    root = build_workspace(tmp_path / "demo")
    t = Tmux(f"tuiops-smoke-{os.getpid()}")
    try:
        yield t, root
    finally:
        t.kill()


def test_a_person_browses_views_and_quits(tmux):
    t, root = tmux
    app = (
        f"{shlex.quote(sys.executable)} -c 'from tuiops.cli import main; main()' -w {shlex.quote(str(root))}"
    )
    t.start(f"env -u COLUMNS -u LINES TERM=xterm-256color {app}")
    # the panel header names the set ("master") before the catalog has read its entries
    screen = t.wait_for("pool:/", "review", "cover.png", "master", "1Help", "10Quit", "labels")
    assert "labels" in screen and "run" in screen
    assert "Lbl master · Det v1" in screen
    # q alone does not quit: it is typed into the command line (Esc takes it back)
    t.keys("q")
    t.wait_for("tuiops› q")
    assert t.alive()
    t.keys("Escape")
    t.wait_for("Alt+letter: quick search")
    # Alt+letter: quick search puts the cursor on the first name that starts so (Esc closes
    # the search box and the status line shows the row under the cursor again)
    t.keys("M-y")
    t.wait_for("║ y ")  # the search box, where the status line was
    t.keys("Escape")
    t.wait_for("yandere_1901018.jpeg  10.1K")
    # down to an image, F3: the picture with its boxes and the metadata
    t.keys("Down", "Down", "Down", "F3")
    screen = t.wait_for("Esc Close", "labels master", "dets v1", "phash")
    assert "▀" in screen
    t.keys("Escape")
    t.wait_for("10Quit", absent=("Esc Close",))
    # F1: the keys
    t.keys("F1")
    t.wait_for("tuiops — keys", "Quick view", "Select rows whose name matches a mask")
    t.keys("Escape")
    t.wait_for("10Quit", absent=("tuiops — keys",))
    # Ctrl+Q: the other panel shows the image under the cursor
    t.keys("C-q")
    t.wait_for("mean best IoU", "format")
    t.keys("C-q")
    t.wait_for("master", "v1", absent=("mean best IoU",))
    # Tab to the catalog, Enter on the label set
    t.keys("Tab", "Down", "Enter")
    t.wait_for("labels:master", "upper_body")
    # select by mask in the pool panel
    t.keys("Tab", "+")
    t.wait_for("Select", "Mask", "║ *   ")
    t.type("*.png")
    t.keys("Enter")
    pngs = sum(1 for f in (root / "pool").iterdir() if f.suffix == ".png")
    t.wait_for(f"{pngs} selected")
    # F10 quits
    t.keys("F10")
    t.wait_gone()


def test_f5_carries_label_files_and_q_then_enter_quits(tmux):
    t, root = tmux
    pool = root / "pool"
    (pool / "danbooru_2118827.txt").write_text("0 0.5 0.5 0.2 0.2\n", encoding="utf-8")
    app = (
        f"{shlex.quote(sys.executable)} -c 'from tuiops.cli import main; main()' -w {shlex.quote(str(root))}"
        " tui --right pool:pool/review"
    )
    t.start(f"env -u COLUMNS -u LINES TERM=xterm-256color {app}")
    t.wait_for("pool:/", "pool:/review/", "10Quit")
    # quick search to the image, F5: the target is the other panel's folder, the label file goes along
    t.keys("M-d")
    t.wait_for("║ d ")
    t.type("anbooru_21")
    t.keys("Enter")
    t.wait_for("danbooru_2118827.jpg  14.3K")
    t.keys("F5")
    t.wait_for("Copy 1 file", "label files beside the images go along", "demo/pool/review")
    t.keys("Enter")
    t.wait_for("label files: 1")
    t.keys("y")
    t.wait_for("done: copy 1 files")
    assert (pool / "review" / "danbooru_2118827.jpg").is_file()
    assert (pool / "review" / "danbooru_2118827.txt").read_text(encoding="utf-8") == "0 0.5 0.5 0.2 0.2\n"
    # q and Enter: the command line's q quits
    t.keys("q", "Enter")
    t.wait_gone()


def test_a_person_triages_two_objects_undoes_one_and_quits(tmux):
    from tuiops.ops.match import match
    from tuiops.workspace import Workspace

    t, root = tmux
    with Workspace.open(root) as ws:
        match(ws, "master", "v1")
    app = (
        f"{shlex.quote(sys.executable)} -c 'from tuiops.cli import main; main()' -w {shlex.quote(str(root))}"
    )
    t.start(f"env -u COLUMNS -u LINES TERM=xterm-256color {app}")
    t.wait_for("pool:/", "10Quit")
    # F2: the kind menu; fn is the third entry
    t.keys("F2")
    t.wait_for("Triage master × v1", "labels no detection found")
    t.keys("Down", "Down", "Enter")
    t.wait_for("Triage master × v1 · fn · 1/6", "FN", "a Accept", "Esc Back")
    t.keys("d")
    t.wait_for("· fn · 2/6", "label deleted")
    t.keys("n")
    t.wait_for("· fn · 3/6")
    t.keys("u")
    t.wait_for("· fn · 1/6", "undid revision 1")
    t.keys("Escape")
    t.wait_for("10Quit", absent=("a Accept",))
    t.keys("F10")
    t.wait_gone()
