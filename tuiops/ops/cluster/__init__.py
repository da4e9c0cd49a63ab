"""Scale-out on Dask distributed: detection and hashing in image-range tasks on a cluster.

:mod:`~tuiops.ops.cluster.spec` parses ``--cluster`` and ``--path-map``,
:mod:`~tuiops.ops.cluster.start` starts or joins the cluster (checking SSH hosts first),
:mod:`~tuiops.ops.cluster.work` holds what the workers run and
:mod:`~tuiops.ops.cluster.drive` feeds them and writes their results: the store stays
single-writer. Dask is imported only when a cluster is used.
"""

from tuiops.ops.cluster.drive import ClusterStats, detect_on_cluster, probe_on_cluster, run_tasks
from tuiops.ops.cluster.spec import (
    TASK_IMAGES,
    ClusterOptions,
    ClusterSpec,
    PathMap,
    cluster_options,
    parse_spec,
)
from tuiops.ops.cluster.start import (
    DETECT_MODULES,
    SCAN_MODULES,
    Running,
    check_modules,
    host_python,
    host_settings,
    open_cluster,
    preflight,
)

__all__ = [
    "DETECT_MODULES",
    "SCAN_MODULES",
    "TASK_IMAGES",
    "ClusterOptions",
    "ClusterSpec",
    "ClusterStats",
    "PathMap",
    "Running",
    "check_modules",
    "cluster_options",
    "detect_on_cluster",
    "host_python",
    "host_settings",
    "open_cluster",
    "parse_spec",
    "preflight",
    "probe_on_cluster",
    "run_tasks",
]
