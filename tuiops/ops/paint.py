"""Detections painter: images with their label boxes and detection boxes drawn on them.

Label boxes (the label set) are drawn solid, with the class name on a filled tag above
the box; detection boxes (the run) are drawn dashed and thinner, with the class name and
the score on a tag inside the box's bottom edge. Each class has its own colour, the same
in both styles, so a detection that agrees with its label looks like a dashed line
inside a solid one of the same colour.

Painting is a file operation (:mod:`tuiops.ops.fileops`): planned as a job, one
``paint`` action per image whose ``data`` is the image's drawing (JSON: the item's
frame, class names, label boxes and detection boxes), run on the thread pool, resumable
after a kill and undoable. Rendering is deterministic, so a resumed job can tell a
finished picture from a partial one.
"""

from __future__ import annotations

import io
import json
import os
from typing import TYPE_CHECKING, Any

from tuiops.errors import UsageError
from tuiops.ops.base import CancelToken, ProgressFn

if TYPE_CHECKING:
    import polars as pl

    from tuiops.ops.fileops import PlanResult, RunResult
    from tuiops.ops.select import Selection, SelectionSpec
    from tuiops.workspace import Workspace

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


def drawings(
    ws: Workspace,
    images: pl.DataFrame,
    *,
    label_set: str | None,
    run: str | None,
    conf: float = 0.0,
) -> pl.Series:
    """The drawing (JSON bytes) of every row of ``images`` (needs ``item_id``), in order.

    Built in polars for all boxes at once: no loop per box or image.
    """
    import polars as pl

    store = ws.store
    names = json.dumps(list(ws.classes))
    frame = store.read_frame(
        "SELECT id AS item_id, width AS fw, height AS fh FROM items", (), {"item_id": pl.Int64}
    ).join(images.select("item_id").unique(), on="item_id", how="semi")

    def boxes(kind: str) -> pl.DataFrame:
        if kind == "l":
            if not label_set:
                return pl.DataFrame(schema={"item_id": pl.Int64, kind: pl.String})
            b = store.read_labels(label_set)
            cells = [pl.col("class_id").cast(pl.String)]
        else:
            if not run:
                return pl.DataFrame(schema={"item_id": pl.Int64, kind: pl.String})
            b = store.read_detections(run).filter(pl.col("score") >= conf)
            cells = [pl.col("class_id").cast(pl.String), pl.col("score").round(3).cast(pl.String)]
        b = b.join(frame.select("item_id"), on="item_id", how="semi")
        coords = [pl.col(c).round(2).cast(pl.String) for c in ("x1", "y1", "x2", "y2")]
        box = pl.concat_str([pl.lit("["), pl.concat_str([*cells, *coords], separator=","), pl.lit("]")])
        return b.group_by("item_id", maintain_order=True).agg(box.str.join(",").alias(kind))

    spec = (
        frame.join(boxes("l"), on="item_id", how="left")
        .join(boxes("d"), on="item_id", how="left")
        .select(
            "item_id",
            pl.concat_str(
                [
                    pl.lit('{"w":'),
                    pl.col("fw").cast(pl.String).fill_null("null"),
                    pl.lit(',"h":'),
                    pl.col("fh").cast(pl.String).fill_null("null"),
                    pl.lit(',"names":' + names + ',"l":['),
                    pl.col("l").fill_null(""),
                    pl.lit('],"d":['),
                    pl.col("d").fill_null(""),
                    pl.lit("]}"),
                ]
            ).alias("spec"),
        )
    )
    out = images.select("item_id").join(spec, on="item_id", how="left", maintain_order="left")
    return out["spec"].fill_null('{"l":[],"d":[]}').cast(pl.Binary).alias("data")


def render(image: bytes, drawing: bytes, *, quality: int = QUALITY) -> bytes:
    """Draw ``drawing`` (see :func:`drawings`) on the encoded ``image``; returns JPEG bytes."""
    from PIL import Image, ImageDraw, ImageFont

    spec: dict[str, Any] = json.loads(drawing or b"{}")
    with Image.open(io.BytesIO(image)) as im:
        im.load()
        canvas = im.convert("RGB")
    w, h = canvas.size
    fw, fh = spec.get("w") or w, spec.get("h") or h
    sx, sy = w / fw, h / fh
    names: list[str] = spec.get("names", [])
    side = min(w, h)
    thick = max(3, round(side / 200))
    font = ImageFont.load_default(size=max(10, round(side / 40)))
    draw = ImageDraw.Draw(canvas)

    def name_of(c: int) -> str:
        return names[c] if 0 <= c < len(names) else str(c)

    def tag(x: float, y: float, text: str, color: tuple[int, int, int], above: bool) -> None:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left + 4, bottom - top + 4
        ty = y - th
        ty = min(max(0, ty), h - th)
        tx = min(max(0, x), max(0, w - tw))
        draw.rectangle([tx, ty, tx + tw, ty + th], fill=color)
        draw.text((tx + 2 - left, ty + 2 - top), text, font=font, fill=(0, 0, 0))

    for c, x1, y1, x2, y2 in spec.get("l", []):
        col = _color(int(c))
        box = [x1 * sx, y1 * sy, x2 * sx, y2 * sy]
        draw.rectangle(box, outline=col, width=thick)
        tag(box[0], box[1], name_of(int(c)), col, above=True)
    dash = max(4, thick * 3)
    for c, score, x1, y1, x2, y2 in spec.get("d", []):
        col = _color(int(c))
        bx1, by1, bx2, by2 = x1 * sx, y1 * sy, x2 * sx, y2 * sy
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
                draw.line(seg, fill=col, width=width)
                pos += dash * 2
        tag(bx1, by2, f"{name_of(int(c))} {score:.2f}", col, above=False)
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def paint(
    ws: Workspace,
    selection: SelectionSpec | Selection,
    to: str | os.PathLike[str],
    *,
    label_set: str | None = None,
    run: str | None = None,
    conf: float = 0.0,
    layout: str = "flat",
    name: str | None = None,
    on_conflict: str = "fail",
    dry_run: bool = False,
    workers: int = 4,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[PlanResult, RunResult | None]:
    """Paint the images of a selection with the boxes of ``label_set`` and ``run`` into ``to``.

    One JPEG per image (default name ``{stem}.jpg``), as a journaled, undoable job.
    Detections below ``conf`` are left out.
    """
    from tuiops.ops.fileops import plan, run_job
    from tuiops.ops.select import Selection

    if not label_set and not run:
        raise UsageError("nothing to paint: give --set and/or --run")
    if not 0.0 <= conf <= 1.0:
        raise UsageError(f"--conf must be between 0 and 1, not {conf}")
    if label_set:
        ws.store.label_set_id(label_set)
    if run:
        ws.store.run_id(run)
    if not isinstance(selection, Selection):
        from dataclasses import replace

        selection = replace(selection, label_set=selection.label_set or label_set, run=selection.run or run)

    def data(images: pl.DataFrame) -> pl.Series:
        return drawings(ws, images, label_set=label_set, run=run, conf=conf)

    p = plan(
        ws,
        "paint",
        selection,
        to=to,
        layout=layout,
        name=name,
        labels="none",
        on_conflict=on_conflict,
        dry_run=dry_run,
        image_data=data,
        job_params={"set": label_set, "run": run, "conf": conf},
        progress=progress,
        cancel=cancel,
    )
    if dry_run or p.status != "planned":
        return p, None
    return p, run_job(ws, p.job_id, workers=workers, progress=progress, cancel=cancel)
