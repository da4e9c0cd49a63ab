"""The batches of a detection run: one batch predicted, batches buffered and committed, and
the plan a run follows, which the local loop and the cluster driver share."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuiops.errors import ExternalToolError
from tuiops.fsutil import display_path
from tuiops.progress import Reporter

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from tuiops.ops.detect import DetectResult
    from tuiops.ops.detect_threads import ThreadPlan
    from tuiops.store import Store


class DetectBuffer:
    """Finished batches waiting to be committed together, once ``flush_images`` images or
    ``flush_seconds`` seconds have gathered."""

    def __init__(self, flush_images: int = 1024, flush_seconds: float = 5.0) -> None:
        self.flush_images = flush_images
        self.flush_seconds = flush_seconds
        self._clear()

    def _clear(self) -> None:
        self.boxes: list[pl.DataFrame] = []
        self.images: list[pl.DataFrame] = []
        self.errors: list[pl.DataFrame] = []
        self.n_images = 0
        self.since = time.monotonic()

    def add(self, boxes: pl.DataFrame, images: pl.DataFrame, errors: pl.DataFrame) -> None:
        if boxes.height:
            self.boxes.append(boxes)
        self.images.append(images)
        if errors.height:
            self.errors.append(errors)
        self.n_images += images.height + errors.height

    def due(self) -> bool:
        return self.n_images >= self.flush_images or time.monotonic() - self.since >= self.flush_seconds

    def flush(self, store: Store, run_id: int) -> tuple[int, int, int]:
        """Commit everything buffered in one transaction; returns (images, boxes, errors)."""
        import polars as pl

        from tuiops.store.db import box_frame

        if not self.n_images:
            self.since = time.monotonic()
            return 0, 0, 0
        boxes = pl.concat(self.boxes) if self.boxes else None
        images = pl.concat(self.images)
        errors = pl.concat(self.errors) if self.errors else None
        with store.bulk() as tx:
            if errors is not None:
                tx.execute(
                    "DELETE FROM detect_errors WHERE run_id = ? AND item_id IN "
                    "(SELECT value FROM json_each(?))",
                    (run_id, json.dumps(errors["item_id"].to_list())),
                )
                tx.ingest("detect_errors", errors.with_columns(pl.lit(run_id, pl.Int64).alias("run_id")))
            if boxes is not None:
                tx.ingest("detections", box_frame(run_id, boxes, ("x1", "y1", "x2", "y2", "score")))
            tx.ingest("run_images", images.select(pl.lit(run_id, pl.Int64).alias("run_id"), "item_id"))
        counts = (
            images.height,
            boxes.height if boxes is not None else 0,
            errors.height if errors is not None else 0,
        )
        self._clear()
        return counts


def _batch_boxes(results: list[Any], meta: pl.DataFrame, cls_map: np.ndarray) -> pl.DataFrame:
    """The detections of one predicted batch as a frame in the items' frames, in score order."""
    import numpy as np
    import polars as pl
    import torch

    datas = [r.boxes.data for r in results]
    counts = np.fromiter((d.shape[0] for d in datas), dtype=np.int64, count=len(datas))
    allb = torch.cat(datas).float().cpu().numpy() if datas else np.zeros((0, 6), np.float32)
    shapes = np.array([r.orig_shape for r in results], dtype=np.float64).reshape(-1, 2)
    sx = np.where(
        meta["item_w"].fill_null(0).to_numpy() > 0, meta["item_w"].fill_null(0).to_numpy() / shapes[:, 1], 1.0
    )
    sy = np.where(
        meta["item_h"].fill_null(0).to_numpy() > 0, meta["item_h"].fill_null(0).to_numpy() / shapes[:, 0], 1.0
    )
    item = np.repeat(meta["item_id"].to_numpy(), counts)
    fx = np.repeat(sx, counts)
    fy = np.repeat(sy, counts)
    cls = allb[:, 5].astype(np.int64)
    return pl.DataFrame(
        {
            "item_id": item,
            "class_id": cls_map[cls] if cls.size else cls,
            "x1": allb[:, 0].astype(np.float64) * fx,
            "y1": allb[:, 1].astype(np.float64) * fy,
            "x2": allb[:, 2].astype(np.float64) * fx,
            "y2": allb[:, 3].astype(np.float64) * fy,
            "score": allb[:, 4].astype(np.float64),
        },
        schema={
            "item_id": pl.Int64,
            "class_id": pl.Int64,
            "x1": pl.Float64,
            "y1": pl.Float64,
            "x2": pl.Float64,
            "y2": pl.Float64,
            "score": pl.Float64,
        },
    )


@dataclass
class BatchOutcome:
    """What one batch of images gave: boxes (in the items' frames), the item ids done, the
    unreadable ones, and the seconds spent in the model."""

    boxes: pl.DataFrame
    images: pl.DataFrame
    errors: pl.DataFrame
    model_seconds: float = 0.0
    error_paths: list[bytes] = field(default_factory=list)


def predict_batch(
    model: Any,
    meta: pl.DataFrame,
    loaded: Sequence[tuple[Any, str | None]],
    cls_map: np.ndarray,
    predict_args: dict[str, Any],
    threads: int | None = None,
) -> BatchOutcome:
    """Run the model over one batch: ``meta`` (the selection's columns) and its decoded images
    (``(array, None)`` or ``(None, reason)`` each, in ``meta``'s order)."""
    import numpy as np
    import polars as pl
    import torch

    ok_mask = np.fromiter((a is not None for a, _ in loaded), dtype=bool, count=len(loaded))
    flagged = meta.with_columns(pl.Series("_ok", ok_mask))
    good = flagged.filter(pl.col("_ok"))
    bad = flagged.filter(~pl.col("_ok"))
    arrays = [a for a, _ in loaded if a is not None]
    seconds = 0.0
    if arrays:
        tm = time.perf_counter()
        if threads is not None:  # ultralytics sets its own count when it sets up a predictor
            torch.set_num_threads(threads)
        try:
            preds = model.predict(arrays, **predict_args)
        except Exception as exc:
            raise ExternalToolError(
                f"the model failed on a batch of {len(arrays)} images: {type(exc).__name__}: {exc}",
                hint="check --device, --imgsz and the weights",
            ) from exc
        seconds = time.perf_counter() - tm
        boxes = _batch_boxes(preds, good, cls_map)
    else:
        boxes = _batch_boxes([], good, cls_map)
    errs = pl.DataFrame(
        {
            "item_id": bad["item_id"],
            "file_id": bad["file_id"],
            "error": [e for a, e in loaded if a is None],
            "created": [utc_now()] * bad.height,
        },
        schema={"item_id": pl.Int64, "file_id": pl.Int64, "error": pl.String, "created": pl.String},
    )
    return BatchOutcome(boxes, good.select("item_id"), errs, seconds, bad["path"].to_list())


@dataclass
class DetectPlan:
    """A detection run set up and recorded as a job: what is left to do and how to store it.

    The local loop (:func:`detect`) and the cluster driver (:mod:`tuiops.ops.cluster`) both
    take their chunks from :meth:`chunks` and commit through :meth:`commit`, so the rows are
    the same whoever computed them. ``batch`` and ``threads`` are what was asked (``None``:
    chosen from the cores, by each cluster worker for its own); ``pace`` is what a run here
    uses.
    """

    store: Store
    run_id: int
    job_id: int
    todo: int
    limit: int | None
    batch: int | None
    threads: int | None
    cls_map: np.ndarray
    predict_args: dict[str, Any]
    result: DetectResult
    reporter: Reporter
    source: Iterator[pl.DataFrame]
    pace: ThreadPlan
    buffer: DetectBuffer = field(default_factory=DetectBuffer)

    def chunks(self) -> Iterator[pl.DataFrame]:
        """The selection's chunks still to do, cut at ``limit`` images."""
        left = self.limit
        for chunk in self.source:
            if left is not None:
                if left <= 0:
                    return
                chunk = chunk.head(left)
                left -= chunk.height
            if chunk.height:
                yield chunk

    def add(self, out: BatchOutcome) -> None:
        """Buffer one batch's outcome; commit when the buffer is due."""
        result = self.result
        result.model_seconds += out.model_seconds
        if out.errors.height and len(result.error_examples) < 10:
            for p, e in zip(out.error_paths, out.errors["error"].to_list(), strict=False):
                if len(result.error_examples) < 10:
                    result.error_examples.append({"path": display_path(p), "error": e})
        self.buffer.add(out.boxes, out.images, out.errors)
        if self.buffer.due():
            self.commit()

    def commit(self, message: str | None = None) -> None:
        """Write everything buffered in one transaction and record the job's progress (and
        ``message`` for the jobs pane)."""
        ts = time.perf_counter()
        n_img, n_box, n_err = self.buffer.flush(self.store, self.run_id)
        self.result.store_seconds += time.perf_counter() - ts
        self.result.processed += n_img
        self.result.detections += n_box
        self.result.errors += n_err
        self.store.job_progress(self.job_id, self.result.processed, self.todo, message)

    @property
    def pending(self) -> int:
        """Images done but not yet committed."""
        return self.buffer.n_images


def utc_now() -> str:
    from tuiops.store.db import utcnow

    return utcnow()
