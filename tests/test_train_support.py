"""Helpers of the dataset, training, detection and monitor tests (no tests here).

Pools are indexed by writing ``pools``/``files``/``items`` rows directly (what a scan
records), so these tests do not depend on the scanner.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "true")


def index_pool(ws: Any, folder: Path, name: str = "pool", *, phash: bool = False) -> dict[str, int]:
    """Record every file of ``folder`` as a pool (status ``ok`` when Pillow opens it); returns key → item_id."""
    import polars as pl
    from PIL import Image

    from tuiops.keys import parse_key
    from tuiops.store.db import utcnow

    store = ws.store
    pid = store.one("SELECT id FROM pools WHERE name = ?", (name,))
    if pid is None:
        with store.transaction() as conn:
            pid = conn.execute(
                "INSERT INTO pools(name, root, created) VALUES (?, ?, ?) RETURNING id",
                (name, str(folder.resolve()), utcnow()),
            ).fetchone()[0]
    rows = []
    for p in sorted(folder.iterdir()):
        if not p.is_file():
            continue
        k = parse_key(p.name, ws.key_rx)
        status, w, h, fmt, ph = "ok", None, None, None, None
        try:
            with Image.open(p) as im:
                im.load()
                w, h, fmt = im.width, im.height, im.format
                if phash:
                    from tuiops.ops.probe import phash_file

                    ph = phash_file(p)
        except Exception:
            status = "corrupt"
        rows.append((k.key, k.booru, k.fid, p.name, w, h, fmt, ph, status, p.stat().st_size))
    frame = pl.DataFrame(
        rows,
        schema={
            "key": pl.String,
            "booru": pl.String,
            "fid": pl.Int64,
            "relpath": pl.String,
            "width": pl.Int64,
            "height": pl.Int64,
            "format": pl.String,
            "phash": pl.Int64,
            "status": pl.String,
            "size": pl.Int64,
        },
        orient="row",
    )
    items = store.ensure_items(frame.select("key", "booru", "fid", "width", "height"))
    frame = frame.join(items.select("key", "item_id").unique("key"), on="key")
    with store.transaction() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO files(pool_id, relpath, item_id, keyed, size, width, height, format, phash, "
            "phash_method, status, checks) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, 1)",
            [
                (
                    pid,
                    r["relpath"],
                    r["item_id"],
                    r["size"],
                    r["width"],
                    r["height"],
                    r["format"],
                    r["phash"],
                    None if r["phash"] is None else 2,  # probe.PHASH_METHOD
                    r["status"],
                )
                for r in frame.iter_rows(named=True)
            ],
        )
    return dict(zip(frame["key"].to_list(), frame["item_id"].to_list(), strict=True))


def draw_scene(
    path: Path, seed: int, size: tuple[int, int] = (96, 96)
) -> list[tuple[int, float, float, float, float]]:
    """Draw an image with one to three coloured rectangles; returns their boxes (class, x1, y1, x2, y2)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    w, h = size
    img = Image.new("RGB", size, (rng.randint(0, 60), rng.randint(0, 60), rng.randint(0, 60)))
    d = ImageDraw.Draw(img)
    boxes = []
    for _ in range(rng.randint(1, 3)):
        bw, bh = rng.randint(w // 5, w // 2), rng.randint(h // 5, h // 2)
        x, y = rng.randint(0, w - bw), rng.randint(0, h - bh)
        cls = rng.randint(0, 1)
        d.rectangle([x, y, x + bw - 1, y + bh - 1], fill=(240, 40, 40) if cls == 0 else (40, 240, 40))
        boxes.append((cls, float(x), float(y), float(x + bw), float(y + bh)))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return boxes


def make_label_set(
    ws: Any, name: str, boxes: dict[str, list[tuple[int, float, float, float, float]]]
) -> None:
    """Store a label set from key → boxes (every key becomes an image of the set)."""
    import polars as pl

    ids = dict(ws.store.execute("SELECT key, id FROM items").fetchall())
    rows = [(ids[k], c, x1, y1, x2, y2) for k, bs in boxes.items() for c, x1, y1, x2, y2 in bs]
    frame = pl.DataFrame(
        rows,
        schema={
            "item_id": pl.Int64,
            "class_id": pl.Int64,
            "x1": pl.Float64,
            "y1": pl.Float64,
            "x2": pl.Float64,
            "y2": pl.Float64,
        },
        orient="row",
    )
    images = pl.DataFrame({"item_id": [ids[k] for k in boxes]}, schema={"item_id": pl.Int64})
    ws.store.create_label_set(name, frame, images, replace=True)


def make_random_model(path: Path, names: list[str]) -> Path:
    """A YOLOv8n with random weights and the given class names, saved as a .pt checkpoint."""
    from tuiops.ops.detect import prepare_ultralytics

    prepare_ultralytics(None)
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from tuiops.ops.detect import ultralytics_output

    with ultralytics_output(None):
        torch.manual_seed(0)
        model = DetectionModel("yolov8n.yaml", nc=len(names), verbose=False)
    model.names = dict(enumerate(names))
    model.args = {"imgsz": 64}
    torch.save({"model": model, "epoch": -1, "train_args": {}}, path)
    return path
