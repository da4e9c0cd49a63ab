"""What a worker runs: one image-range task of detection or of probing (hashing).

A task gets its images' rows (Arrow IPC bytes), reads the files from the path every
worker sees (or gets their bytes) and returns its results as Arrow IPC bytes; it never
touches the store. The weights come once per worker (a scattered blob, checked against
its SHA-256) and the loaded model is kept for the worker's next tasks.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tuiops.errors import InputError
from tuiops.ops.detect_threads import ThreadPlan

_MODELS: dict[tuple[str, str | None], Any] = {}


def to_ipc(frame: Any) -> bytes:
    """A polars frame as Arrow IPC bytes."""
    buf = io.BytesIO()
    frame.write_ipc(buf)
    return buf.getvalue()


def from_ipc(data: bytes) -> Any:
    """Arrow IPC bytes as a polars frame."""
    import polars as pl

    return pl.read_ipc(io.BytesIO(data))


def worker_name() -> str:
    """The name of the Dask worker running this task ("" outside one)."""
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except ValueError:
        return ""


def cached_model(weights: bytes, sha: str, device: str | None) -> Any:
    """The model of ``weights`` on this worker, loaded once; refused when the bytes are not ``sha``."""
    key = (sha, device)
    if key in _MODELS:
        return _MODELS[key]
    got = hashlib.sha256(weights).hexdigest()
    if got != sha:
        raise InputError(f"the weights received have sha256 {got[:12]}…, not {sha[:12]}…")
    from tuiops.ops.detect import load_model

    folder = Path(tempfile.gettempdir()) / "tuiops-weights"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sha}.pt"
    if not path.is_file():
        tmp = folder / f".{sha}.{os.getpid()}.part"
        tmp.write_bytes(weights)
        os.replace(tmp, path)
    model = load_model(None, path)
    _MODELS[key] = model
    return model


def worker_pace(settings: dict[str, Any], own: dict[str, Any], device: str | None) -> ThreadPlan:
    """This worker's threads and batch: its host's ``threads``/``batch``, else the run's, else
    chosen from the cores it may use and the thread cap it was started with (Dask starts its
    workers with ``OMP_NUM_THREADS=1``; an SSH host's ``threads`` sets it)."""
    from tuiops.ops.detect_threads import choose_threads, uses_gpu

    threads = own.get("threads") or settings.get("threads")
    batch = own.get("batch") or settings.get("batch")
    return choose_threads(
        int(threads) if threads else None, int(batch) if batch else None, gpu=uses_gpu(device)
    )


def warm_worker(weights: bytes, settings: dict[str, Any]) -> dict[str, Any]:
    """Load the model on this worker before its first task (imports, weights checked by hash,
    the predictor set up by one prediction of a blank image)."""
    t0 = time.perf_counter()
    own = settings.get("hosts", {}).get(worker_name(), {})
    args = dict(settings["predict_args"])
    if own.get("device"):
        args["device"] = own["device"]
    model = cached_model(weights, settings["sha"], args.get("device"))
    import numpy as np
    import torch

    torch.set_num_threads(worker_pace(settings, own, args.get("device")).torch)
    model.predict([np.zeros((64, 64, 3), np.uint8)], **args)  # the predictor is set up on first use
    return {"worker": worker_name(), "seconds": time.perf_counter() - t0}


def detect_task(
    meta_ipc: bytes, weights: bytes, settings: dict[str, Any], blobs: list[bytes | str] | None = None
) -> dict[str, Any]:
    """Detect on one range of images; results as Arrow IPC bytes with the task's timings.

    ``settings`` holds ``sha``, ``cls_map``, ``predict_args``, ``batch``, ``threads``,
    ``path_map`` and ``hosts`` (per worker name: ``device``, ``batch``, ``threads``).
    """
    import numpy as np

    from tuiops.ops.cluster.spec import PathMap
    from tuiops.ops.detect import decode_image, load_image
    from tuiops.ops.detect_batches import predict_batch

    t0 = time.perf_counter()
    name = worker_name()
    own = settings.get("hosts", {}).get(name, {})
    predict_args = dict(settings["predict_args"])
    if own.get("device"):
        predict_args["device"] = own["device"]
    model = cached_model(weights, settings["sha"], predict_args.get("device"))
    pace = worker_pace(settings, own, predict_args.get("device"))
    batch = pace.batch
    load_s = time.perf_counter() - t0
    meta = from_ipc(meta_ipc)
    cls_map = np.asarray(settings["cls_map"], dtype=np.int64)
    pmap = PathMap(tuple(settings.get("path_map", ())))
    outs = []
    starts = list(range(0, meta.height, batch))

    def decode_blob(b: bytes | str) -> tuple[Any, str | None]:
        return decode_image(b) if isinstance(b, bytes) else (None, b)

    with ThreadPoolExecutor(max_workers=pace.decode) as pool:

        def submit(s: int) -> list[Future]:
            # threads read and decode the next batch while the model works on this one
            if blobs is not None:
                return [pool.submit(decode_blob, b) for b in blobs[s : s + batch]]
            paths = meta["path"].slice(s, batch).to_list()
            return [pool.submit(load_image, pmap.apply(p)) for p in paths]

        pending = submit(starts[0]) if starts else []
        for k, s in enumerate(starts):
            loaded = [f.result() for f in pending]
            pending = submit(starts[k + 1]) if k + 1 < len(starts) else []
            outs.append(predict_batch(model, meta.slice(s, batch), loaded, cls_map, predict_args, pace.torch))
    import polars as pl

    return {
        "worker": name,
        "boxes": to_ipc(pl.concat([o.boxes for o in outs])),
        "images": to_ipc(pl.concat([o.images for o in outs])),
        "errors": to_ipc(pl.concat([o.errors for o in outs])),
        "error_paths": [p for o in outs for p in o.error_paths],
        "model_seconds": sum(o.model_seconds for o in outs),
        "load_seconds": load_s,
        "seconds": time.perf_counter() - t0,
        "images_n": meta.height,
        "threads": pace.to_dict(),
    }


def probe_task(
    root: bytes, paths: list[bytes], sizes: list[int], displays: list[str], opts: Any
) -> dict[str, Any]:
    """Probe (and hash) one range of a pool's files below ``root`` as the scan does."""
    from tuiops.ops.probe import probe_chunk

    t0 = time.perf_counter()
    rows = probe_chunk(root, paths, sizes, displays, opts)
    return {"worker": worker_name(), "rows": rows, "seconds": time.perf_counter() - t0, "images_n": len(rows)}
