"""Detections painter: images with their label boxes and detection boxes drawn on them.

Label boxes (the label set) are drawn solid, with the class name on a filled tag above
the box; detection boxes (the run) are drawn dashed and thinner, with the class name and
the score on a tag inside the box's bottom edge. Each class has its own colour, the same
in both styles, so a detection that agrees with its label looks like a dashed line
inside a solid one of the same colour. A tag that would cover another one moves below
or above its box, or inside its other edge, and is shortened (class initials and score)
where the full caption finds no room.

Painting is a file operation (:mod:`tuiops.ops.fileops`): planned as a job, one
``paint`` action per image whose ``data`` is the image's drawing (JSON: the item's
frame, class names, label boxes and detection boxes), run on the thread pool, resumable
after a kill and undoable. Rendering (:func:`tuiops.imaging.render`) is deterministic, so
a resumed job can tell a finished picture from a partial one.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from tuiops.errors import UsageError
from tuiops.ops.base import CancelToken, ProgressFn

if TYPE_CHECKING:
    import polars as pl

    from tuiops.ops.fileops import PlanResult, RunResult
    from tuiops.ops.select import Selection, SelectionSpec
    from tuiops.workspace import Workspace


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
