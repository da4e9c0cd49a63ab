"""How many threads a detection run gives the model and the decoders, and its batch size.

A run here and a task on a cluster worker choose the same way, from the cores this
process may use (its CPU affinity and its cgroup's CPU quota) and the thread cap it was
started with (``OMP_NUM_THREADS``, which Dask sets for its workers and the SSH cluster
sets from a host's ``threads``):

- on the CPU, torch's intra-op threads take the cores (less the decoders' from 8 cores
  up) and one thread in four reads and decodes the next batch while the model works;
- on a GPU, torch needs few CPU threads and the decoders take the cores.

An explicit ``threads`` is torch's count, held to the cores this process may use: more
OpenMP threads than cores only wait on each other. torch's OpenMP threads are told to
sleep when they wait (``OMP_WAIT_POLICY=PASSIVE``, set before torch is imported unless
the user chose a policy): spinning threads take the cores from the decoders and from
other processes, which made ``--threads 2`` several times slower than one thread on a
busy 2-core machine.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Images per model call by default on a GPU (on the CPU the batch follows the threads).
GPU_BATCH = 32

#: Environment variables that choose how OpenMP threads wait; none set means PASSIVE is set.
_WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")

_started_cap: dict[str, int | None] = {}


@dataclass(frozen=True)
class ThreadPlan:
    """The threads and batch size of one detection run (or one worker's tasks)."""

    torch: int
    """torch's intra-op threads."""
    decode: int
    """Threads that read and decode images ahead of the model."""
    batch: int
    """Images per model call."""
    cores: int
    """Cores this process may use."""
    gpu: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, held to its cgroup's CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None:
        n = min(n, quota)
    return max(1, n)


def _cgroup_cpus() -> int | None:
    """The CPUs a cgroup v2 quota (``cpu.max``) allows, rounded up; ``None`` without one."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except OSError:
        return None
    if len(text) != 2 or text[0] == "max":
        return None
    try:
        return max(1, math.ceil(int(text[0]) / int(text[1])))
    except (ValueError, ZeroDivisionError):
        return None


def prepare_threads_env() -> None:
    """Before torch and ultralytics are imported: remember the thread cap this process was
    started with and make OpenMP threads sleep when they wait.

    ultralytics sets ``OMP_NUM_THREADS=1`` on import when it is unset, so the cap is read
    before; OpenMP reads its wait policy once, when torch loads it.
    """
    if "ultralytics" not in sys.modules and "cap" not in _started_cap:
        _started_cap["cap"] = _parse_cap(os.environ.get("OMP_NUM_THREADS"))
    if "torch" not in sys.modules and not any(os.environ.get(v) for v in _WAIT_VARS):
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def _parse_cap(value: str | None) -> int | None:
    try:
        n = int(str(value).split(",")[0])
    except ValueError:
        return None
    return n if n >= 1 else None


def thread_cap() -> int | None:
    """The ``OMP_NUM_THREADS`` this process was started with (not the one ultralytics sets)."""
    if "cap" in _started_cap:
        return _started_cap["cap"]
    if "ultralytics" in sys.modules:  # imported before: its "1" cannot be told from a cap
        return None
    return _parse_cap(os.environ.get("OMP_NUM_THREADS"))


def uses_gpu(device: str | None) -> bool:
    """Whether ultralytics runs the model on a CUDA device for ``device`` (``None``: its choice)."""
    import torch

    if device is not None and str(device).strip().lower() in ("cpu", "mps"):
        return False
    return bool(torch.cuda.is_available())


def choose_threads(
    threads: int | None,
    batch: int | None,
    *,
    gpu: bool,
    cores: int | None = None,
    cap: int | None = None,
) -> ThreadPlan:
    """The threads and batch of a run: ``threads`` and ``batch`` where given, else from the cores.

    ``cores`` defaults to :func:`usable_cores`, ``cap`` (a default ``threads`` is held to
    it) to :func:`thread_cap`. An explicit ``threads`` is held to the cores.
    """
    cores = usable_cores() if cores is None else max(1, cores)
    cap = thread_cap() if cap is None else cap
    if gpu:
        decode = max(1, min(8, cores - 1))
        torch_n = min(threads, cores) if threads else min(4, cores, cap or cores)
        return ThreadPlan(torch_n, decode, batch or GPU_BATCH, cores, gpu=True)
    budget = min(cores, cap) if cap else cores
    decode = max(1, min(8, budget // 4))
    own = budget - decode if budget >= 8 else budget  # from 8 cores up the decoders get their own
    torch_n = min(threads, cores) if threads else own
    return ThreadPlan(torch_n, decode, batch or max(8, min(32, 4 * torch_n)), cores)
