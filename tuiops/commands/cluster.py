"""The ``--cluster`` parameters that ``detect`` and ``scan`` share (no command of its own)."""

from __future__ import annotations

from typing import Any

from tuiops.commands import IntRange, Param

CLUSTER_HELP = (
    "Run on a Dask cluster: local:N (N worker processes here), ssh:HOST1,HOST2 (one worker per "
    "host of tuiops.toml, started over SSH) or tcp://ADDRESS:PORT (a scheduler you run)."
)


def cluster_params(*, ship: bool) -> tuple[Param, ...]:
    """``--cluster``, ``--path-map``, ``--scheduler-host``, ``--task-images`` [and ``--ship``]."""
    params = [
        Param("cluster", ("--cluster",), metavar="SPEC", help=CLUSTER_HELP),
        Param(
            "path_map",
            ("--path-map",),
            multiple=True,
            metavar="LOCAL=REMOTE",
            help="With --cluster: where the workers see a folder of this machine (repeatable).",
        ),
        Param(
            "scheduler_host",
            ("--scheduler-host",),
            metavar="HOST",
            help="With --cluster ssh:…: start the Dask scheduler on this host instead of here.",
        ),
        Param(
            "task_images",
            ("--task-images",),
            type=IntRange(min=1),
            help="With --cluster: images per task (default 1024).",
        ),
    ]
    if ship:
        params.append(
            Param(
                "ship",
                ("--ship",),
                is_flag=True,
                help="With --cluster: send the image bytes to the workers instead of a path they read.",
            )
        )
    return tuple(params)


def options_from(values: dict[str, Any]) -> Any:
    """The ``ClusterOptions`` of a command's cluster parameter values (None without --cluster)."""
    from tuiops.ops.cluster import cluster_options

    return cluster_options(
        values.get("cluster"),
        path_map=tuple(values.get("path_map") or ()),
        ship=bool(values.get("ship")),
        scheduler_host=values.get("scheduler_host"),
        task_images=values.get("task_images"),
    )
