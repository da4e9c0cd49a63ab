"""Training with pitstops: ultralytics training that stops at planned epochs, looks at
itself, and carries on after the labels were fixed.

A run (``train_runs``) trains in ``<workspace>/training/<name>/`` (ultralytics' folder:
``weights/``, ``results.csv``, ``args.yaml``) plus ``tuiops/`` with the resumable
checkpoint, the ultralytics log and the pitstop reports.

Resumable checkpoint: every time ultralytics saves ``last.pt`` (each epoch) a full copy
is taken into ``tuiops/resume.pt``. ``last.pt`` itself is no good for resuming after a
stop: the final evaluation strips its optimizer. So a run killed, cancelled or stopped
at a pitstop continues from ``resume.pt`` (:func:`resume`).

At a pitstop (an epoch in the plan, e.g. 40 % and 70 % of the epochs) the run stops
cleanly after that epoch, then:

1. the best weights so far are copied (``tuiops/pitstop-N-best.pt``) and run over the
   dataset's train and val images into the detection run ``NAME.pitstopN`` (lineage:
   the weights' hash, the best epoch);
2. the detections are compared with the labels the dataset was built from (one-to-one
   matching by IoU within each class, then across classes for the wrong-class pairs),
   and the match op stores its tables too when it is installed;
3. a report is written (``tuiops/pitstop-N.md`` and ``.json``, plus
   ``pitstop-N-worst-{train,val}.txt`` key lists for ``--exclude @FILE``): counts per
   split and class, the change since the last pitstop, the worst images, and the
   largest object differences per class (missed and extra objects, loose boxes).

:func:`resume` rebuilds a tuiops dataset from the store first (so label fixes and
exclusions are in), deletes ultralytics' label caches (keyed by file sizes and times,
they would hide the fixes), trims ``results.csv`` to the checkpoint's epoch (so every
epoch is in it once) and refuses a dataset whose class count differs from the run's.

The modules, each importing only those above it:

- :mod:`~tuiops.ops.train.records`: a run's record in the store, its sessions, its result;
- :mod:`~tuiops.ops.train.report`: a pitstop's comparison of boxes and its report;
- :mod:`~tuiops.ops.train.monitor`: following ``results.csv`` while a run trains;
- :mod:`~tuiops.ops.train.pitstop`: a pitstop's detection, comparison, report and record;
- :mod:`~tuiops.ops.train.status`: the list of runs, a run's status, the monitor's plan;
- :mod:`~tuiops.ops.train.remote`: training on a ``[hosts.NAME]`` machine over SSH;
- :mod:`~tuiops.ops.train.local`: training here (ultralytics and its callbacks) and resume.

``tuiops.ops.monitor``, ``tuiops.ops.pitstop`` and ``tuiops.ops.train_remote`` still
import, re-exporting their modules here.
"""

from tuiops.ops.train.local import (
    RESERVED_ARGS,
    parse_overrides,
    pitstop_epochs,
    resume,
    train,
)
from tuiops.ops.train.pitstop import STORE_CONF, pitstop_compare, run_pitstop, write_worst_lists
from tuiops.ops.train.records import (
    ACTIVE,
    RESUMABLE,
    TRAIN_DIR,
    TrainResult,
    TrainRun,
    get_run,
    record_session,
    update_run,
)
from tuiops.ops.train.report import compare_boxes, pitstop_report, report_markdown
from tuiops.ops.train.status import list_runs, monitor_plan, train_status

__all__ = [
    "ACTIVE",
    "RESERVED_ARGS",
    "RESUMABLE",
    "STORE_CONF",
    "TRAIN_DIR",
    "TrainResult",
    "TrainRun",
    "compare_boxes",
    "get_run",
    "list_runs",
    "monitor_plan",
    "parse_overrides",
    "pitstop_compare",
    "pitstop_epochs",
    "pitstop_report",
    "record_session",
    "report_markdown",
    "resume",
    "run_pitstop",
    "train",
    "train_status",
    "update_run",
    "write_worst_lists",
]
