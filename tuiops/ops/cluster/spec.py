"""What ``--cluster SPEC`` names and how the workers find the pool's files.

A spec is ``local:N`` (a ``LocalCluster`` of N worker processes on this machine),
``ssh:HOST1,HOST2,…`` (one worker per workspace host, started over SSH) or
``tcp://ADDR:PORT`` (a scheduler the user runs). ``--path-map LOCAL=REMOTE`` rewrites
the start of a file's path for the workers (a mount under another name); ``--ship``
sends the bytes instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tuiops.errors import UsageError

#: Images per task by default: a few seconds of work for a GPU, a minute at most for a CPU.
TASK_IMAGES = 1024

_LOCAL_RX = re.compile(r"^local:(\d+)$")
_TCP_RX = re.compile(r"^tcp://[^\s/]+:\d+$")

SPEC_HINT = "use local:N, ssh:HOST1,HOST2 (hosts of tuiops.toml) or tcp://ADDRESS:PORT"


@dataclass(frozen=True)
class ClusterSpec:
    """A parsed ``--cluster`` value."""

    kind: str  # "local", "ssh" or "tcp"
    workers: int = 0
    hosts: tuple[str, ...] = ()
    address: str = ""


def parse_spec(text: str) -> ClusterSpec:
    """Parse a ``--cluster`` value; a :class:`UsageError` names what is wrong with it."""
    value = text.strip()
    m = _LOCAL_RX.match(value)
    if m:
        n = int(m.group(1))
        if n < 1:
            raise UsageError(f"--cluster {text!r}: a local cluster needs at least 1 worker", hint=SPEC_HINT)
        return ClusterSpec("local", workers=n)
    if value.startswith("ssh:"):
        hosts = tuple(h.strip() for h in value[4:].split(","))
        if not hosts or any(not h for h in hosts):
            raise UsageError(f"--cluster {text!r}: empty host name", hint=SPEC_HINT)
        if len(set(hosts)) != len(hosts):
            raise UsageError(f"--cluster {text!r}: a host is named twice", hint=SPEC_HINT)
        return ClusterSpec("ssh", workers=len(hosts), hosts=hosts)
    if _TCP_RX.match(value):
        return ClusterSpec("tcp", address=value)
    raise UsageError(f"--cluster {text!r} is not a cluster", hint=SPEC_HINT)


@dataclass(frozen=True)
class PathMap:
    """Path prefixes rewritten for the workers: ``(local, remote)`` pairs, longest first."""

    pairs: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def parse(cls, items: Sequence[str]) -> PathMap:
        pairs: list[tuple[bytes, bytes]] = []
        for item in items:
            local, sep, remote = item.partition("=")
            if not sep or not local or not remote:
                raise UsageError(
                    f"--path-map {item!r} is not LOCAL=REMOTE", hint="e.g. --path-map /data/pool=/mnt/pool"
                )
            pairs.append((os.fsencode(local.rstrip("/") or "/"), os.fsencode(remote.rstrip("/") or "/")))
        pairs.sort(key=lambda p: len(p[0]), reverse=True)
        return cls(tuple(pairs))

    def apply(self, path: bytes) -> bytes:
        """The path a worker opens for the local ``path``."""
        for local, remote in self.pairs:
            if path == local or path.startswith(local.rstrip(b"/") + b"/"):
                return remote + path[len(local) :]
        return path


@dataclass(frozen=True)
class ClusterOptions:
    """How a command runs on a cluster: the spec and how tasks are cut and fed.

    ``scheduler_host`` starts the scheduler on that workspace host instead of this machine
    (``ssh:`` only). ``hosts_settings`` are read from each host's table in tuiops.toml
    (``device``, ``batch``, ``threads``, ``python``).
    """

    spec: str
    task_images: int = TASK_IMAGES
    path_map: PathMap = field(default_factory=PathMap)
    ship: bool = False
    scheduler_host: str | None = None

    def __post_init__(self) -> None:
        parse_spec(self.spec)
        if self.task_images < 1:
            raise UsageError(f"--task-images must be at least 1 (got {self.task_images})")
        if self.scheduler_host is not None and not self.spec.strip().startswith("ssh:"):
            raise UsageError("--scheduler-host goes with --cluster ssh:HOST1,HOST2")

    @property
    def parsed(self) -> ClusterSpec:
        return parse_spec(self.spec)


def cluster_options(
    spec: str | None,
    *,
    path_map: Sequence[str] = (),
    ship: bool = False,
    scheduler_host: str | None = None,
    task_images: int | None = None,
) -> ClusterOptions | None:
    """The options of a command's cluster flags, or None without ``--cluster``.

    Flags that only mean something with a cluster are refused without one.
    """
    if spec is None:
        extra = [
            f
            for f, given in (
                ("--path-map", bool(path_map)),
                ("--ship", ship),
                ("--scheduler-host", scheduler_host is not None),
                ("--task-images", task_images is not None),
            )
            if given
        ]
        if extra:
            raise UsageError(f"{', '.join(extra)} only works with --cluster", hint="add --cluster local:2")
        return None
    return ClusterOptions(
        spec=spec,
        task_images=task_images if task_images is not None else TASK_IMAGES,
        path_map=PathMap.parse(path_map),
        ship=ship,
        scheduler_host=scheduler_host,
    )
