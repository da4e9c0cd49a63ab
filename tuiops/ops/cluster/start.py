"""Starting (or joining) the Dask cluster a command runs on.

``local:N`` starts a ``LocalCluster`` of N worker processes with one thread each.
``ssh:H1,H2`` checks every host first, the way tuiops reaches it (its key, its recorded
host key: an unknown or changed key is refused before anything starts), and that the
host's configured python (``python`` in its ``[hosts.NAME]`` table) imports tuiops,
Dask distributed of this machine's version and the model's packages; then the scheduler
starts on this machine (or, with ``scheduler_host``, on that host) and one worker per
host over asyncssh, as Dask's ``SSHCluster`` does. ``tcp://ADDR`` joins a scheduler the
user runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuiops.errors import ExternalToolError, RemoteError, UsageError
from tuiops.ops.cluster.spec import ClusterOptions, ClusterSpec

if TYPE_CHECKING:
    from distributed import Client

    from tuiops.remote.hosts import Hosts
    from tuiops.workspace import Workspace

#: Seconds to wait for the workers of a new cluster (imports of torch included).
START_TIMEOUT = 300.0

#: What a host's python must import to run detection tasks (scanning needs only the first two).
DETECT_MODULES = ("tuiops", "distributed", "ultralytics", "torch", "cv2")
SCAN_MODULES = ("tuiops", "distributed", "PIL")

_CHECK_SCRIPT = """
import importlib, json, sys
out = {}
for name in sys.argv[1:]:
    try:
        m = importlib.import_module(name)
        out[name] = getattr(m, "__version__", "") or "?"
    except Exception as exc:
        out[name] = None
print(json.dumps(out))
"""


@dataclass
class Running:
    """A cluster in use: the client, and what each worker's host asks for (``device``, ``batch``,
    ``threads`` from its ``[hosts.NAME]`` table, by worker name)."""

    client: Client
    spec: ClusterSpec
    host_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1).get("workers", {}))


def host_python(extra: dict[str, Any]) -> str:
    """The python command of a host (``python`` in its table; ``python3`` otherwise)."""
    py = extra.get("python")
    return py if isinstance(py, str) and py.strip() else "python3"


def host_settings(extra: dict[str, Any]) -> dict[str, Any]:
    """The per-host detection settings of a host's table: ``device``, ``batch``, ``threads``."""
    out: dict[str, Any] = {}
    for key, kind in (("device", str), ("batch", int), ("threads", int)):
        value = extra.get(key)
        if value is not None:
            if not isinstance(value, kind) or isinstance(value, bool):
                raise UsageError(f"{key} = {value!r} in a [hosts.*] table must be a {kind.__name__}")
            out[key] = value
    return out


async def check_modules(hosts: Hosts, name: str, modules: tuple[str, ...]) -> dict[str, str | None]:
    """Which of ``modules`` the host's configured python imports, with their versions (None:
    not importable). Connecting refuses an unknown or changed host key first."""
    from tuiops.remote.commands import run_on

    host = hosts.get(name)
    conn = await hosts.connect(name)
    try:
        argv = f"{host_python(host.extra)} -c {shlex.quote(_CHECK_SCRIPT)} {' '.join(modules)}"
        res = await run_on(conn, ["sh", "-c", argv], timeout=120)
    finally:
        await conn.close()
    import json

    if res.rc != 0:
        raise RemoteError(
            f"host {name}: its python ({host_python(host.extra)}) does not run: {res.stderr.strip()[-300:]}",
            hint=f'set python = "/path/to/python" in [hosts.{name}] of tuiops.toml',
        )
    try:
        found = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise RemoteError(
            f"host {name}: cannot read the module check's answer {res.stdout[-200:]!r}"
        ) from exc
    return {m: found.get(m) for m in modules}


def preflight(hosts: Hosts, names: tuple[str, ...], modules: tuple[str, ...]) -> None:
    """Refuse, before any work, a host that cannot be reached as configured (unknown or changed
    host key included) or whose python lacks a module or runs another Dask version."""
    import asyncio

    import distributed

    from tuiops.remote import run_sync

    for n in names:
        host = hosts.get(n)
        if host.jump:
            raise UsageError(
                f"host {n} is reached through the jump host {host.jump}: Dask's SSH workers cannot use it",
                hint="start the workers there yourself and pass --cluster tcp://SCHEDULER:PORT",
            )

    async def all_hosts() -> list[dict[str, str | None]]:
        return list(await asyncio.gather(*(check_modules(hosts, n, modules) for n in names)))

    for n, found in zip(names, run_sync(all_hosts()), strict=True):
        missing = [m for m, v in found.items() if v is None]
        if missing:
            raise RemoteError(
                f"host {n} cannot run the work: its python lacks {', '.join(missing)}",
                hint=f'install them there (pip install tuiops "dask[distributed]"), or set python in '
                f"[hosts.{n}]; `tuiops hosts check {n}` lists what it has",
            )
        theirs = found.get("distributed")
        if theirs != distributed.__version__:
            raise RemoteError(
                f"host {n} runs Dask distributed {theirs}, this machine {distributed.__version__}",
                hint=f"install distributed=={distributed.__version__} on {n}",
            )


def _listen_ip(address: str) -> str:
    """The address of this machine's interface that routes to ``address``."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((socket.gethostbyname(address), 9))
            return str(s.getsockname()[0])
    except OSError:
        return "0.0.0.0"


def _ssh_cluster(ws: Workspace, spec: ClusterSpec, options: ClusterOptions, modules: tuple[str, ...]) -> Any:
    from distributed import Scheduler, SpecCluster
    from distributed.deploy import ssh

    from tuiops.remote.hosts import Hosts

    hosts = Hosts.from_workspace(ws)
    names = spec.hosts + ((options.scheduler_host,) if options.scheduler_host else ())
    preflight(hosts, tuple(dict.fromkeys(names)), modules)
    scheduler: dict[str, Any]
    if options.scheduler_host:
        sh = hosts.get(options.scheduler_host)
        scheduler = {
            "cls": ssh.Scheduler,
            "options": {
                "address": sh.address,
                "connect_options": hosts.connect_options(sh.name),
                "kwargs": {"dashboard": False},
                "remote_python": host_python(sh.extra),
            },
        }
    else:
        first = hosts.get(spec.hosts[0])
        scheduler = {
            "cls": Scheduler,
            "options": {"host": _listen_ip(first.address), "port": 0, "dashboard": False},
        }
    workers = {}
    for n in spec.hosts:
        h = hosts.get(n)
        threads = host_settings(h.extra).get("threads", 1)
        workers[n] = {
            "cls": ssh.Worker,
            "options": {
                "address": h.address,
                "connect_options": hosts.connect_options(n),
                "kwargs": {"nthreads": 1, "name": n, "env": {"OMP_NUM_THREADS": str(threads)}},
                "worker_class": "distributed.Nanny",
                "remote_python": host_python(h.extra),
            },
        }
    try:
        return SpecCluster(workers, scheduler, name="tuiops-ssh", silence_logs=logging.ERROR)
    except Exception as exc:
        raise RemoteError(
            f"the Dask workers on {', '.join(spec.hosts)} did not start: {type(exc).__name__}: {exc}",
            hint="`tuiops hosts check HOST` checks a host; the scheduler must be reachable from every host",
        ) from exc


@contextlib.contextmanager
def _worker_environ() -> Iterator[None]:
    """Dask's configuration for the workers it spawns, without its low ``MALLOC_TRIM_THRESHOLD_``:
    trimming the heap at 64 KiB makes torch, which frees large tensors every batch, give memory
    back and map it again each time (several times slower on a CPU). Its thread caps stay.

    Held for the cluster's whole life, so that a worker Dask starts again after one died is
    spawned the same way; this process's own environment, which Dask's nannies set before each
    spawn, is given back as it was on the way out.
    """
    import dask

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    before = dict(os.environ)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            yield
    finally:
        for name in set(os.environ) - set(before):
            os.environ.pop(name, None)
        for name, value in before.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


@contextlib.contextmanager
def open_cluster(
    ws: Workspace, options: ClusterOptions, *, modules: tuple[str, ...] = DETECT_MODULES
) -> Iterator[Running]:
    """Start (or join) the cluster of ``options``; closed again on the way out."""
    spec = options.parsed
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ExternalToolError(
            f"cannot import Dask distributed: {exc}", hint='install it with `pip install "dask[distributed]"`'
        ) from exc
    settings: dict[str, dict[str, Any]] = {}
    cluster: Any = None
    with contextlib.ExitStack() as spawning:
        if spec.kind == "local":
            spawning.enter_context(_worker_environ())
            cluster = LocalCluster(
                n_workers=spec.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = Client(cluster)
        elif spec.kind == "ssh":
            from tuiops.remote.hosts import Hosts

            hosts = Hosts.from_workspace(ws)
            settings = {n: host_settings(hosts.get(n).extra) for n in spec.hosts}
            spawning.enter_context(_worker_environ())
            cluster = _ssh_cluster(ws, spec, options, modules)
            client = Client(cluster)
        else:
            try:
                client = Client(spec.address, timeout=30)
            except (OSError, TimeoutError) as exc:
                raise RemoteError(
                    f"no Dask scheduler answers at {spec.address}: {exc}",
                    hint="start one with `dask scheduler` and its workers with `dask worker ADDRESS`",
                ) from exc
        try:
            want = spec.workers or 1
            try:
                client.wait_for_workers(want, timeout=START_TIMEOUT)
            except TimeoutError as exc:
                raise RemoteError(
                    f"the cluster {options.spec} has no {want} worker(s) after {START_TIMEOUT:g} s",
                    hint="check that the workers can reach the scheduler",
                ) from exc
            yield Running(client, spec, settings)
        finally:
            with contextlib.suppress(Exception):
                client.close()
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close()
