"""Shared fixtures: temporary workspaces, drawn images, items in the store, sshd servers."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.sshd import Sshd

os.environ.setdefault("YOLO_OFFLINE", "true")

CLASSES = ["head", "upper_body", "lower_body", "hand", "text"]


@pytest.fixture(autouse=True)
def _pil_open_unpatched() -> Iterator[None]:
    """Keep ultralytics' import-time patch of PIL.Image.open from leaking into other tests."""
    yield
    if "ultralytics.utils.patches" in sys.modules:
        from tuiops.ops.detect import restore_pil_open

        restore_pil_open()


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[object]:
    """A fresh workspace in a temp folder with the test class map."""
    from tuiops.workspace import Workspace

    w = Workspace.init(tmp_path / "ws", classes=list(CLASSES))
    try:
        yield w
    finally:
        w.close()


def draw_image(path: Path, size: tuple[int, int] = (64, 48), fmt: str | None = None, seed: int = 0) -> Path:
    """Draw a small image with a few shapes and save it (format from the suffix unless given)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, (seed * 37 % 256, 120, 200))
    d = ImageDraw.Draw(img)
    w, h = size
    d.rectangle([w // 8, h // 8, w // 2, h // 2], fill=(255, (seed * 91) % 256, 0))
    d.ellipse([w // 3, h // 3, w - 2, h - 2], fill=(0, 255, (seed * 53) % 256))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def add_items(ws, keys: list[str], width: int = 640, height: int = 480):  # type: ignore[no-untyped-def]
    """Insert items for ``keys`` directly (as a scan would) and return key → item_id frame."""
    import polars as pl

    from tuiops.keys import parse_key

    parsed = [parse_key(k, ws.key_rx) for k in keys]
    frame = pl.DataFrame(
        {
            "key": [p.key for p in parsed],
            "booru": [p.booru for p in parsed],
            "fid": [p.fid for p in parsed],
            "width": [width] * len(keys),
            "height": [height] * len(keys),
        },
        schema={"key": pl.String, "booru": pl.String, "fid": pl.Int64, "width": pl.Int64, "height": pl.Int64},
    )
    return ws.store.ensure_items(frame)


def live_processes_with(needle: bytes) -> list[int]:
    """Pids of the live (not zombie) processes whose command line contains ``needle``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            state = Path(f"/proc/{entry.name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmd and state != b"Z":
            found.append(int(entry.name))
    return found


# -- a real sshd on 127.0.0.1 (modules using these skip themselves where sshd cannot run) -------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sshd, Path]]:
    """One sshd for the module and the client key it accepts."""
    from tests.sshd import Sshd, generate_key

    root = tmp_path_factory.mktemp("sshd")
    key = generate_key(root / "client" / "id_ed25519")
    s = Sshd(root / "server", [key]).start()
    try:
        yield s, key
    finally:
        s.stop()


@pytest.fixture
def own(tmp_path: Path) -> Iterator[tuple[Sshd, Path, Any]]:
    """A fresh sshd, its client key and a workspace that trusts it (host ``test``, home ``tmp_path/home``)."""
    from tests.sshd import Sshd, generate_key, make_workspace

    key = generate_key(tmp_path / "client" / "id_ed25519")
    s = Sshd(tmp_path / "server", [key]).start()
    ws = make_workspace(tmp_path, s, key)
    try:
        yield s, key, ws
    finally:
        ws.close()
        s.stop()


@pytest.fixture
def host_ws(own: tuple[Sshd, Path, Any], tmp_path: Path) -> tuple[Any, Path]:
    """The workspace of ``own`` and the home folder of its host ``test``."""
    return own[2], tmp_path / "home"


@pytest.fixture
def mountable(tmp_path: Path) -> None:
    """Skip unless a small tmpfs can be mounted here (to fake a full or read-only disk)."""
    from tests.sshd import can_mount_tmpfs

    why = can_mount_tmpfs(tmp_path)
    if why:
        pytest.skip(f"cannot fake a full or read-only remote disk: {why}")


@pytest.fixture(scope="module")
def matched_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workspace with the match of master × v1 stored, built once per test module
    (a test that changes it takes ``root``, a copy of its own)."""
    from tests.test_tui_browse import build_workspace
    from tuiops.ops.match import match
    from tuiops.workspace import Workspace

    root = build_workspace(tmp_path_factory.mktemp("matched") / "demo")
    with Workspace.open(root) as w:
        match(w, "master", "v1")
    return root


@pytest.fixture
def root(matched_root: Path, tmp_path: Path) -> Path:
    """A private copy of the matched demo workspace (the pool stays shared, read-only)."""
    from tests.test_triage import copy_workspace

    out = tmp_path / "demo"
    out.mkdir()
    copy_workspace(matched_root, out)
    return out
