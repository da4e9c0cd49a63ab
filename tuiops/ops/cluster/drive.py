"""The driver: feed image-range tasks to the cluster and write their results, alone.

Tasks are submitted a few per worker at a time; their results come back as Arrow IPC
bytes and are committed by this process in bulk, through the same buffer as a local run
(one transaction per few thousand images: an image's boxes and its ``run_images`` row
together). A worker that dies or a host that drops loses only its running tasks: Dask
runs them again on another worker, and each task's result is written once. A killed
driver leaves only committed images behind; running the command again does the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import RemoteError
from tuiops.ops.cluster.spec import ClusterOptions
from tuiops.ops.cluster.start import DETECT_MODULES, SCAN_MODULES, Running, open_cluster
from tuiops.ops.cluster.work import detect_task, from_ipc, probe_task, to_ipc, warm_worker
from tuiops.ops.procs import fault

if TYPE_CHECKING:
    from tuiops.ops.detect_batches import DetectPlan
    from tuiops.progress import Reporter
    from tuiops.workspace import Workspace

#: Seconds the driver waits for a worker when the cluster has none left.
NO_WORKER_TIMEOUT = 300.0

#: Times a task is submitted again after the cluster lost what it depended on.
LOST_RETRIES = 3


@dataclass
class ClusterStats:
    """Where a cluster run's time went: per worker, its tasks, images and busy seconds."""

    spec: str
    workers: int = 0
    tasks: int = 0
    images: int = 0
    task_seconds: float = 0.0
    model_seconds: float = 0.0
    wall_seconds: float = 0.0
    start_seconds: float = 0.0
    per_worker: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, value: dict[str, Any]) -> None:
        self.tasks += 1
        self.images += int(value["images_n"])
        self.task_seconds += float(value["seconds"])
        self.model_seconds += float(value.get("model_seconds", 0.0))
        w = self.per_worker.setdefault(str(value["worker"]), {"tasks": 0, "images": 0, "seconds": 0.0})
        w["tasks"] += 1
        w["images"] += int(value["images_n"])
        w["seconds"] += float(value["seconds"])
        chosen = value.get("threads") or {}  # what the worker chose for itself (its cores, its thread cap)
        for key, name in (("torch", "torch_threads"), ("decode", "decode_threads"), ("batch", "batch")):
            if key in chosen:
                w[name] = int(chosen[key])

    def rates(self) -> str:
        """``name n/s`` per worker, the images per busy second."""
        return ", ".join(
            f"{k} {w['images'] / w['seconds']:.1f}/s" if w["seconds"] > 0 else f"{k} -"
            for k, w in sorted(self.per_worker.items())
        )

    def to_dict(self) -> dict[str, Any]:
        capacity = self.wall_seconds * max(1, self.workers)
        overhead = max(0.0, capacity - self.task_seconds)
        return {
            "spec": self.spec,
            "workers": self.workers,
            "tasks": self.tasks,
            "images": self.images,
            "start_seconds": round(self.start_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "task_seconds": round(self.task_seconds, 3),
            "model_seconds": round(self.model_seconds, 3),
            # worker time not spent inside a task: scheduling, transfers, waiting for the driver
            "overhead_share": round(overhead / capacity, 4) if capacity > 0 else 0.0,
            "overhead_per_task_ms": round(1000 * overhead / self.tasks, 1) if self.tasks else 0.0,
            "per_worker": {
                k: {
                    "tasks": int(w["tasks"]),
                    "images": int(w["images"]),
                    "images_per_s": round(w["images"] / w["seconds"], 2) if w["seconds"] > 0 else 0.0,
                    **{x: int(w[x]) for x in ("torch_threads", "decode_threads", "batch") if x in w},
                }
                for k, w in sorted(self.per_worker.items())
            },
        }


def run_tasks(
    running: Running,
    tasks: Iterator[tuple[Any, Callable[[], Any]]],
    on_result: Callable[[Any, Any], None],
    reporter: Reporter,
    *,
    per_worker: int = 2,
    on_lost: Callable[[], None] | None = None,
) -> None:
    """Submit ``tasks`` (``(label, submit)`` pairs; ``submit`` returns a Dask future), a few
    per worker at a time, and hand each result to ``on_result(label, value)`` in the order
    they finish. Cancelling (the reporter's token, Ctrl+C) cancels what is in flight.

    A task the cluster cancels on its own (a worker died holding the only copy of data the
    task needs, such as the scattered weights) is submitted again, after ``on_lost()`` has
    put that data back, up to ``LOST_RETRIES`` times."""
    from distributed import wait
    from distributed.client import FutureCancelledError, FuturesCancelledError

    try:
        from distributed.scheduler import KilledWorker
    except ImportError:  # pragma: no cover - older layouts
        from distributed import KilledWorker

    client = running.client
    window = max(2, per_worker * max(1, running.workers))
    pending: dict[Any, tuple[Any, Callable[[], Any], int]] = {}
    exhausted = False
    idle_since: float | None = None
    try:
        while True:
            while not exhausted and len(pending) < window:
                nxt = next(tasks, None)
                if nxt is None:
                    exhausted = True
                    break
                label, submit = nxt
                pending[submit()] = (label, submit, 0)
            if not pending:
                return
            try:
                done = wait(list(pending), timeout=1.0, return_when="FIRST_COMPLETED").done
            except TimeoutError:  # nothing finished within the second: look at the token and the workers
                done = set()
            except FuturesCancelledError:  # some were cancelled by the cluster: taken one by one below
                done = {f for f in pending if f.status != "pending"}
            reporter.check()
            if not done:
                if running.workers == 0:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > NO_WORKER_TIMEOUT:
                        raise RemoteError(
                            f"the cluster has had no worker for {NO_WORKER_TIMEOUT:g} s",
                            hint="run the command again when the hosts are back; it continues where it stopped",
                        )
                else:
                    idle_since = None
                continue
            lost: list[tuple[Any, Callable[[], Any], int]] = []
            for fut in done:
                label, submit, tries = pending.pop(fut)
                try:
                    value = fut.result()
                except KilledWorker as exc:
                    raise RemoteError(
                        f"the task of {label} killed the workers that ran it ({exc})",
                        hint="an image there may crash its decoder or exhaust memory; narrow it down with --where",
                    ) from exc
                except FutureCancelledError as exc:
                    if tries >= LOST_RETRIES:
                        raise RemoteError(
                            f"the task of {label} was cancelled by the cluster {tries + 1} times",
                            hint="the cluster keeps losing its workers; `tuiops hosts check HOST` tells why",
                        ) from exc
                    lost.append((label, submit, tries + 1))
                    continue
                on_result(label, value)
            if lost:
                reporter.check()
                if on_lost is not None:
                    on_lost()
                for label, submit, tries in lost:
                    pending[submit()] = (label, submit, tries)
    finally:
        if pending:
            client.cancel(list(pending))


def _warm(running: Running, blob: Any, settings: dict[str, Any]) -> None:
    """Load the model on every worker of the cluster now, so that a host that cannot load it
    fails before any task and the first tasks do not pay for it."""
    client = running.client
    futures = {
        w.get("name", addr): client.submit(
            warm_worker, blob, settings, workers=[addr], allow_other_workers=False, pure=False
        )
        for addr, w in client.scheduler_info(n_workers=-1).get("workers", {}).items()
    }
    for name, fut in futures.items():
        try:
            fut.result()
        except Exception as exc:
            raise RemoteError(
                f"worker {name} cannot load the model: {type(exc).__name__}: {exc}",
                hint="`tuiops hosts check HOST` lists the packages a host has",
            ) from exc


def _read_blobs(paths: list[bytes]) -> list[bytes | str]:
    """The bytes of each file (or why it cannot be read), for ``--ship``."""
    out: list[bytes | str] = []
    for p in paths:
        try:
            with open(p, "rb") as fh:
                out.append(fh.read())
        except OSError as exc:
            out.append(f"cannot read the file: {exc.strerror or exc}")
    return out


def detect_on_cluster(ws: Workspace, plan: DetectPlan, weights: Path, options: ClusterOptions) -> None:
    """Run a set-up detection (``plan``) on the cluster of ``options``; this process writes."""
    from tuiops.ops.detect_batches import BatchOutcome

    result = plan.result
    stats = ClusterStats(options.spec)
    t_start = time.perf_counter()
    with open_cluster(ws, options, modules=DETECT_MODULES) as running:
        stats.workers = running.workers
        client = running.client
        weights_bytes = weights.read_bytes()
        shared = {"blob": client.scatter(weights_bytes, broadcast=True, hash=False)}

        def rescatter() -> None:
            # the weights were lost with the worker(s) holding them: send them again
            shared["blob"] = client.scatter(weights_bytes, broadcast=True, hash=False)

        settings = {
            "sha": result.weights_sha256,
            "cls_map": plan.cls_map.tolist(),
            "predict_args": plan.predict_args,
            "batch": plan.batch,
            "threads": plan.threads,
            "path_map": options.path_map.pairs,
            "hosts": running.host_settings,
        }
        _warm(running, shared["blob"], settings)
        stats.start_seconds = time.perf_counter() - t_start
        t0 = time.perf_counter()

        def tasks() -> Iterator[tuple[Any, Callable[[], Any]]]:
            for chunk in plan.chunks():
                ids = chunk["item_id"]
                label = f"images {ids[0]}…{ids[-1]}"
                blobs = _read_blobs(chunk["path"].to_list()) if options.ship else None
                meta = to_ipc(chunk)

                def submit(meta: bytes = meta, blobs: list[bytes | str] | None = blobs) -> Any:
                    return client.submit(
                        detect_task, meta, shared["blob"], settings, blobs, pure=False, retries=0
                    )

                yield label, submit

        def on_result(label: Any, value: dict[str, Any]) -> None:
            stats.add(value)
            plan.add(
                BatchOutcome(
                    from_ipc(value["boxes"]),
                    from_ipc(value["images"]),
                    from_ipc(value["errors"]),
                    float(value["model_seconds"]),
                    list(value["error_paths"]),
                )
            )
            stats.wall_seconds = time.perf_counter() - t0
            done = result.processed + plan.pending
            rate = done / stats.wall_seconds if stats.wall_seconds > 0 else 0.0
            eta = f", ETA {max(0, plan.todo - done) / rate:.0f} s" if rate > 0 else ""
            message = f"{stats.rates()}{eta}"
            # one transaction per task: its images' boxes and run_images rows together
            plan.commit(message[:200])
            fault("cluster_result")  # TUIOPS_FAULT=cluster_result:N kills the driver after N tasks
            plan.reporter.update(result.processed, f"{result.detections} boxes; {message}")

        try:
            run_tasks(running, tasks(), on_result, plan.reporter, on_lost=rescatter)
            plan.commit()
        except BaseException:
            try:
                plan.commit()
            except Exception:
                pass
            raise
        finally:
            stats.wall_seconds = time.perf_counter() - t0
            result.cluster = stats.to_dict()


def probe_on_cluster(
    ws: Workspace,
    options: ClusterOptions,
    root: bytes,
    paths: list[bytes],
    sizes: list[int],
    displays: list[str],
    opts: Any,
    reporter: Reporter,
    chunk: int,
) -> Generator[tuple[int, list[tuple[Any, ...]]], None, None]:
    """Probe a scan's files on the cluster; yields ``(start index, rows)`` as tasks finish,
    like the scan's own process pool. The workers open ``root`` as ``--path-map`` maps it."""
    if not paths:  # nothing new or changed: no cluster to start
        return
    out: list[tuple[int, list[tuple[Any, ...]]]] = []
    remote_root = options.path_map.apply(root)
    with open_cluster(ws, options, modules=SCAN_MODULES) as running:
        client = running.client
        n = len(paths)

        def tasks() -> Iterator[tuple[Any, Callable[[], Any]]]:
            for a in range(0, n, chunk):
                b = min(n, a + chunk)

                def submit(a: int = a, b: int = b) -> Any:
                    return client.submit(
                        probe_task, remote_root, paths[a:b], sizes[a:b], displays[a:b], opts, pure=False
                    )

                yield a, submit

        def on_result(a: Any, value: dict[str, Any]) -> None:
            out.append((int(a), value["rows"]))

        it = tasks()
        while True:
            # hand finished chunks to the scan as they come, a window at a time
            batch = [t for t, _ in zip(it, range(max(2, 4 * max(1, running.workers))), strict=False)]
            if not batch:
                break
            run_tasks(running, iter(batch), on_result, reporter)
            yield from out
            out.clear()
