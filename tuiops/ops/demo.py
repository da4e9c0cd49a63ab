"""A ready demo workspace: a drawn booru-like pool, a label set and a detection run with realistic errors."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuiops.errors import ConflictError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter

DEMO_CLASSES = ["head", "upper_body", "lower_body", "hand", "text"]
_BOORUS = (
    ("danbooru", "_", ".jpg"),
    ("gelbooru", "-", ".png"),
    ("yandere", "_", ".jpeg"),
    ("safebooru", "_", ".webp"),
)


@dataclass
class DemoBox:
    cls: int
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass
class DemoImage:
    name: str
    width: int
    height: int
    labels: list[DemoBox] = field(default_factory=list)
    detections: list[tuple[DemoBox, float]] = field(default_factory=list)


@dataclass
class DemoSummary:
    workspace: str
    images: int
    bad_files: int
    labels: int
    detections: int
    errors: dict[str, int]
    steps: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _draw_character(rng: random.Random, w: int, h: int) -> list[DemoBox]:
    """A stacked figure: head over upper body over lower body, maybe a hand."""
    scale = rng.uniform(0.25, 0.9)
    fig_h = h * scale
    fig_w = fig_h * rng.uniform(0.28, 0.45)
    cx = rng.uniform(fig_w / 2, w - fig_w / 2)
    top = rng.uniform(0, max(1.0, h - fig_h))
    head_h = fig_h * 0.2
    head = DemoBox(0, cx - head_h * 0.45, top, cx + head_h * 0.45, top + head_h)
    up_top = top + head_h * 0.95
    up_h = fig_h * 0.38
    upper = DemoBox(1, cx - fig_w / 2, up_top, cx + fig_w / 2, up_top + up_h)
    lo_top = up_top + up_h * 0.97
    lower = DemoBox(2, cx - fig_w * 0.42, lo_top, cx + fig_w * 0.42, min(h - 1.0, top + fig_h))
    boxes = [head, upper, lower]
    if rng.random() < 0.4:
        hx = cx + fig_w / 2 + fig_w * 0.05
        hy = up_top + up_h * 0.5
        hs = head_h * 0.45
        if hx + hs < w:
            boxes.append(DemoBox(3, hx, hy, hx + hs, hy + hs))
    return boxes


def _jitter(rng: random.Random, b: DemoBox, amount: float, w: int, h: int) -> DemoBox:
    bw, bh = b.x2 - b.x1, b.y2 - b.y1
    dx, dy = rng.gauss(0, amount) * bw, rng.gauss(0, amount) * bh
    sx, sy = 1 + rng.gauss(0, amount), 1 + rng.gauss(0, amount)
    cx, cy = (b.x1 + b.x2) / 2 + dx, (b.y1 + b.y2) / 2 + dy
    nw, nh = max(2.0, bw * sx), max(2.0, bh * sy)
    return DemoBox(
        b.cls,
        max(0.0, cx - nw / 2),
        max(0.0, cy - nh / 2),
        min(float(w), cx + nw / 2),
        min(float(h), cy + nh / 2),
    )


def plan_images(n: int, seed: int = 7) -> tuple[list[DemoImage], dict[str, int]]:
    """Decide every demo image's size, ground truth and detections (with their errors)."""
    rng = random.Random(seed)
    images: list[DemoImage] = []
    errors = {"missed": 0, "extra": 0, "wrong_class": 0, "badly_placed": 0}
    fids = rng.sample(range(100_000, 7_999_999), n)
    for i in range(n):
        booru, sep, ext = _BOORUS[i % len(_BOORUS)]
        stem = f"{booru}{sep}{fids[i]}"
        if booru == "yandere" and i % 3 == 0:
            stem += "_sample"
        w = rng.choice((320, 384, 448, 512, 640))
        h = rng.choice((320, 384, 448, 512, 640))
        img = DemoImage(stem + ext, w, h)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            img.labels.extend(_draw_character(rng, w, h))
        if rng.random() < 0.25:
            tw, th = w * rng.uniform(0.2, 0.5), h * rng.uniform(0.05, 0.1)
            tx, ty = rng.uniform(0, w - tw), rng.uniform(0, h - th)
            img.labels.append(DemoBox(4, tx, ty, tx + tw, ty + th))
        for b in img.labels:
            r = rng.random()
            if r < 0.07:
                errors["missed"] += 1
                continue
            if r < 0.11:
                errors["wrong_class"] += 1
                cls = rng.choice([c for c in range(len(DEMO_CLASSES)) if c != b.cls])
                img.detections.append((DemoBox(cls, b.x1, b.y1, b.x2, b.y2), rng.uniform(0.3, 0.8)))
                continue
            if r < 0.16:
                errors["badly_placed"] += 1
                img.detections.append((_jitter(rng, b, 0.35, w, h), rng.uniform(0.3, 0.7)))
                continue
            img.detections.append((_jitter(rng, b, 0.03, w, h), rng.uniform(0.6, 0.99)))
        if rng.random() < 0.15:
            errors["extra"] += 1
            bw, bh = w * rng.uniform(0.05, 0.3), h * rng.uniform(0.05, 0.3)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            img.detections.append(
                (DemoBox(rng.randrange(len(DEMO_CLASSES)), x, y, x + bw, y + bh), rng.uniform(0.25, 0.6))
            )
        images.append(img)
    return images, errors


_COLORS = {0: (250, 214, 180), 1: (200, 60, 80), 2: (50, 70, 160), 3: (250, 200, 170), 4: (20, 20, 20)}


def draw_image(img: DemoImage, path: Path, seed: int) -> None:
    """Render a demo image: a gradient background with the labelled shapes painted on it."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    base = Image.linear_gradient("L").resize((img.width, img.height))
    tint = (rng.randrange(80, 255), rng.randrange(80, 255), rng.randrange(80, 255))
    bg = Image.merge("RGB", [base.point(lambda v, t=t: (v * t) // 255) for t in tint])
    d = ImageDraw.Draw(bg)
    for b in img.labels:
        box = [b.x1, b.y1, max(b.x1 + 1, b.x2 - 1), max(b.y1 + 1, b.y2 - 1)]
        color = _COLORS[b.cls]
        if b.cls in (0, 3):
            d.ellipse(box, fill=color, outline=(0, 0, 0))
        elif b.cls == 4:
            d.rectangle(box, fill=(255, 255, 255))
            d.text((b.x1 + 2, b.y1 + 1), "DEMO TEXT", fill=color)
        else:
            d.rectangle(box, fill=color, outline=(0, 0, 0))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[Path(img.name).suffix]
    bg.save(path, format=fmt, quality=88) if fmt in ("JPEG", "WEBP") else bg.save(path, format=fmt)


def _yolo_lines(boxes: list[DemoBox], w: int, h: int, scores: list[float] | None = None) -> str:
    out = []
    for i, b in enumerate(boxes):
        cx, cy = (b.x1 + b.x2) / 2 / w, (b.y1 + b.y2) / 2 / h
        bw, bh = (b.x2 - b.x1) / w, (b.y2 - b.y1) / h
        line = f"{b.cls} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}"
        if scores is not None:
            line += f" {scores[i]:.6f}"
        out.append(line)
    return "\n".join(out) + ("\n" if out else "")


def make_demo(
    directory: str | Path,
    *,
    images: int = 200,
    seed: int = 7,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DemoSummary:
    """Create a demo workspace in ``directory`` and index, import and compare everything in it."""
    from tuiops.fsutil import atomic_write_text
    from tuiops.workspace import CONFIG_NAME, Workspace

    root = Path(directory).expanduser().resolve()
    if (root / CONFIG_NAME).exists():
        raise ConflictError(f"{root} holds a workspace already", hint="choose an empty folder for the demo")
    if root.exists() and any(root.iterdir()):
        raise ConflictError(f"{root} is not empty", hint="choose a new or empty folder for the demo")
    ws = Workspace.init(root, name="demo", classes=list(DEMO_CLASSES))
    try:
        pool = root / "pool"
        lab_dir = root / "incoming" / "labels-master"
        det_dir = root / "incoming" / "detections-v1"
        for d in (pool, lab_dir, det_dir):
            d.mkdir(parents=True, exist_ok=True)
        plan, errors = plan_images(images, seed)
        rep = Reporter("demo", progress, cancel, total=len(plan))
        n_labels = n_dets = 0
        for i, img in enumerate(plan):
            draw_image(img, pool / img.name, seed * 100_003 + i)
            stem = Path(img.name).stem
            atomic_write_text(lab_dir / f"{stem}.txt", _yolo_lines(img.labels, img.width, img.height))
            dets = [b for b, _ in img.detections]
            scores = [s for _, s in img.detections]
            atomic_write_text(det_dir / f"{stem}.txt", _yolo_lines(dets, img.width, img.height, scores))
            n_labels += len(img.labels)
            n_dets += len(dets)
            rep.advance(message=img.name)
        atomic_write_text(lab_dir / "classes.txt", "\n".join(DEMO_CLASSES) + "\n")
        # What a real pool also has: files that are not good images, and a name without a key.
        (pool / "danbooru_999999.jpg").write_bytes(b"")
        (pool / "gelbooru-999998.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
        draw_image(DemoImage("cover.png", 320, 320), pool / "cover.png", seed)
        steps = _index_and_import(ws, pool, lab_dir, det_dir, progress=progress, cancel=cancel)
        from tuiops.ops.project import copy_examples

        steps["projects"] = copy_examples(ws)
        return DemoSummary(str(root), len(plan), 2, n_labels, n_dets, errors, steps)
    finally:
        ws.close()


def _index_and_import(
    ws: Any,
    pool: Path,
    lab_dir: Path,
    det_dir: Path,
    *,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> dict[str, Any]:
    from tuiops.ops.labels import import_detections, import_labels
    from tuiops.ops.scan import scan

    steps: dict[str, Any] = {}
    steps["scan"] = scan(
        ws, pool, name="pool", hash=True, exif=True, progress=progress, cancel=cancel
    ).to_dict()
    steps["labels"] = import_labels(ws, lab_dir, "master", "yolo", progress=progress, cancel=cancel).to_dict(
        10
    )
    steps["detections"] = import_detections(
        ws, det_dir, "v1", "yolo", covers="master", progress=progress, cancel=cancel
    ).to_dict(10)
    return steps
