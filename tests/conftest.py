"""Shared fixtures: temporary workspaces, drawn images, items in the store."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

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
