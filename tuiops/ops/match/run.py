"""The `match` op: images read chunk by chunk, matched and stored while the next chunk is read."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import InputError, UsageError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job
from tuiops.ops.match.compare import image_stats, item_ids, match_frames, read_dets, read_labels
from tuiops.ops.match.model import CATEGORIES, CHUNK_ITEMS, MatchSummary, check_images_choice, check_params
from tuiops.ops.match.queries import worst_images
from tuiops.ops.match.splits import resolve_splits
from tuiops.ops.match.tables import (
    add_totals,
    counts_json,
    image_rows,
    object_rows,
    replace_match,
    store_ranks,
    top_images,
    top_objects,
)

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace


# -- the op -------------------------------------------------------------------------------------
def match(
    ws: Workspace,
    set_name: str,
    run_name: str,
    *,
    iou: float = 0.5,
    low: float = 0.1,
    conf: float = 0.25,
    name: str | None = None,
    splits: pl.DataFrame | Mapping[Any, str] | None = None,
    worst: int = 10,
    images: str = "processed",
    chunk_items: int = CHUNK_ITEMS,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> MatchSummary:
    """Match run ``run_name`` against label set ``set_name`` and store the result as ``name``.

    See the module doc for the categories, costs and image metrics. ``splits``: image →
    split name, as a frame with ``item_id`` or ``key`` and ``split``, or a mapping from
    item ids or keys. ``images``: ``processed`` compares the set's images that the run
    processed, ``all`` every image of the set (those the run never processed: their labels
    are fn), as `eval` takes the same choice. Re-running with the same name replaces that
    match in one transaction. Returns the counts per split and the ``worst`` worst images.
    """

    check_params(iou, low, conf)
    if chunk_items < 1:
        raise UsageError("chunk_items must be at least 1")
    store = ws.store
    set_id = store.label_set_id(set_name)
    run_id = store.run_id(run_name)
    name = name or f"{set_name}__{run_name}"
    if not name.strip():
        raise UsageError("a match name must not be empty")
    rep = Reporter("match", progress, cancel)
    times: dict[str, float] = {"read": 0.0, "read_wait": 0.0, "match": 0.0, "write": 0.0, "write_wait": 0.0}
    t0 = time.perf_counter()
    set_items = item_ids(store, "set", set_id)
    run_items = item_ids(store, "run", run_id)
    check_images_choice(images)
    items = np.intersect1d(set_items, run_items, assume_unique=True) if images == "processed" else set_items
    if len(np.intersect1d(set_items, run_items, assume_unique=True)) == 0:
        raise InputError(
            f"label set {set_name!r} and run {run_name!r} have no image in common",
            hint="run the detection on the set's images, or pick the run made for this set",
        )
    split_codes, split_names, overlap = resolve_splits(ws, items, splits)
    times["read"] += time.perf_counter() - t0
    params = {
        "set": set_name,
        "run": run_name,
        "iou": iou,
        "low": low,
        "conf": conf,
        "name": name,
        "images": images,
    }
    chunker = _Chunks(items, split_codes, split_names, chunk_items, iou, low, conf, rep)
    with job(store, "match", params, total=len(items)) as handle:
        rep.update(0, "matching", total=len(items), force=True)
        mid = chunker.run(store, set_id, run_id, (name, set_name, run_name), times)
        handle.result = {"match_id": mid, "images": len(items), "counts": chunker.counts}
    times["total"] = time.perf_counter() - t0
    return MatchSummary(
        name=name,
        match_id=mid,
        set_name=set_name,
        run_name=run_name,
        iou=iou,
        low=low,
        conf=conf,
        images=len(items),
        images_from=images,
        set_only=len(set_items) - len(np.intersect1d(set_items, run_items, assume_unique=True)),
        run_only=len(run_items) - len(items),
        splits=chunker.counts,
        worst=worst_images(store, name, n=worst) if worst > 0 else None,
        split_overlap=overlap,
        seconds=times,
    )


class _Chunks:
    """Matches the compared images chunk by chunk and stores the rows in one transaction.

    Three things overlap: two reader threads fetch the next chunk's labels and
    detections (each on its own read-only connection), the calling thread matches the
    current chunk, and a writer thread appends the previous chunk's rows.
    """

    def __init__(
        self,
        items: np.ndarray,
        split_codes: np.ndarray,
        split_names: list[str],
        chunk_items: int,
        iou: float,
        low: float,
        conf: float,
        rep: Reporter,
    ) -> None:
        self.items = items
        self.split_codes = split_codes
        self.split_names = split_names
        self.split_lookup = np.array([*split_names, None], dtype=object)
        bounds = [*range(0, len(items), chunk_items), len(items)]
        self.bounds = list(itertools.pairwise(bounds))
        self.iou, self.low, self.conf = iou, low, conf
        self.rep = rep
        self.totals = np.zeros((len(split_names) + 1, len(CATEGORIES) + 3), dtype=np.int64)
        self.obj_cands: list[pl.DataFrame] = []
        self.img_cands: list[pl.DataFrame] = []
        self.counts: dict[str, dict[str, Any]] = {}

    def run(
        self, store: Store, set_id: int, run_id: int, names: tuple[str, str, str], times: dict[str, float]
    ) -> int:
        """Replace the match ``names[0]`` and fill it; returns its id."""
        from tuiops.store import Store

        readers = [Store(store.path, readonly=True) for _ in range(2)]
        try:
            with store.bulk() as tx, ThreadPoolExecutor(max_workers=3) as pool:

                def fetch(k: int) -> tuple[Any, Any]:
                    a, b = self.bounds[k]
                    lo, hi = int(self.items[a]), int(self.items[b - 1])
                    return (
                        pool.submit(_timed, read_labels, readers[0], set_id, lo, hi),
                        pool.submit(_timed, read_dets, readers[1], run_id, lo, hi),
                    )

                def write(objs: pl.DataFrame, imgs: pl.DataFrame) -> float:
                    t = time.perf_counter()
                    tx.ingest("match_objects", objs)
                    tx.ingest("match_images", imgs)
                    return time.perf_counter() - t

                try:
                    pending = fetch(0)
                    t = time.perf_counter()
                    mid = replace_match(tx, *names, set_id, run_id, self.iou, self.low, self.conf)
                    times["write"] += time.perf_counter() - t
                    writing = None
                    for k, (a, b) in enumerate(self.bounds):
                        t = time.perf_counter()
                        (lab, t_lab), (det, t_det) = pending[0].result(), pending[1].result()
                        times["read_wait"] += time.perf_counter() - t
                        times["read"] += t_lab + t_det
                        if k + 1 < len(self.bounds):
                            pending = fetch(k + 1)
                        self.rep.check()
                        t = time.perf_counter()
                        rows = self.compute(mid, a, b, lab, det)
                        times["match"] += time.perf_counter() - t
                        t = time.perf_counter()
                        if writing is not None:
                            times["write"] += writing.result()
                        times["write_wait"] += time.perf_counter() - t
                        writing = pool.submit(write, *rows)
                        self.rep.update(b, f"{b}/{len(self.items)} images")
                    if writing is not None:
                        times["write"] += writing.result()
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
                t = time.perf_counter()
                store_ranks(tx, mid, self.obj_cands, self.img_cands)
                self.counts = counts_json(self.totals, self.split_names)
                tx.execute("UPDATE matches SET counts = ? WHERE id = ?", (json.dumps(self.counts), mid))
                times["write"] += time.perf_counter() - t
                t = time.perf_counter()
            times["commit"] = time.perf_counter() - t
        finally:
            for r in readers:
                r.close()
        return mid

    def compute(
        self, mid: int, a: int, b: int, lab: pl.DataFrame, det: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Match images ``items[a:b]``; returns the rows to store and keeps the rank candidates."""
        import polars as pl

        ids = self.items[a:b]
        lab, det = rows_of_items(lab, ids), rows_of_items(det, ids)
        objects = match_frames(lab, det, iou=self.iou, low=self.low, conf=self.conf, check=self.rep.check)
        codes = self.split_codes[a:b]
        images = image_stats(objects, lab, det, ids, conf=self.conf).with_columns(
            pl.Series("split", self.split_lookup[codes], dtype=pl.String)
        )
        add_totals(self.totals, images, codes)
        obj_rows = object_rows(mid, objects)
        self.obj_cands.append(top_objects(obj_rows, objects, codes, ids))
        self.img_cands.append(top_images(images, codes))
        return obj_rows, image_rows(mid, images)


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def rows_of_items(frame: pl.DataFrame, ids: np.ndarray) -> pl.DataFrame:
    """The rows of ``frame`` whose item is in ``ids`` (sorted)."""
    import polars as pl

    from tuiops.ops.matching import member

    keep = member(frame["item_id"].to_numpy(), ids)
    return frame if keep.all() else frame.filter(pl.Series(keep))
