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
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    Cancelled,
    ConflictError,
    ExternalToolError,
    InputError,
    NotFoundError,
    UsageError,
)
from tuiops.frames import num_mean
from tuiops.fsutil import atomic_write_text, disk_error, display_path
from tuiops.ops.base import CancelToken, ProgressEvent, ProgressFn, Reporter, pid_alive
from tuiops.ops.pitstop import STORE_CONF, pitstop_compare, write_worst_lists

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace

TRAIN_DIR = "training"
RESUME_NAME = "resume.pt"
LOG_NAME = "train.log"
NAME_RX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

#: Ultralytics arguments tuiops sets itself.
RESERVED_ARGS = frozenset(
    {"data", "epochs", "resume", "project", "name", "exist_ok", "save_dir", "mode", "model"}
)

#: How many worst images and largest differences a report lists.
REPORT_TOP = 20
REPORT_PER_CLASS = 5
#: A matched box whose IoU with its label is below this is reported as loose.
LOOSE_IOU = 0.75

ACTIVE = ("running",)
RESUMABLE = ("pitstop", "paused", "interrupted", "failed")


# -- records ---------------------------------------------------------------------------------------
@dataclass
class TrainRun:
    """A training run as the store records it."""

    id: int
    name: str
    status: str
    data: Path
    dataset: str | None
    model: str
    epochs: int
    epoch: int
    pitstops: list[int]
    save_dir: Path
    checkpoint: Path | None
    nc: int | None
    args: dict[str, Any]
    created: str
    updated: str | None
    error: str | None
    pid: int | None
    host: str | None = None

    @property
    def starts(self) -> list[int]:
        """The finished-epoch counts each training session started from (0, then each resume's)."""
        return [int(x) for x in self.args.get("_sessions") or []]

    @property
    def results_csv(self) -> Path:
        return self.save_dir / "results.csv"

    @property
    def tuiops_dir(self) -> Path:
        return self.save_dir / "tuiops"

    @property
    def log(self) -> Path:
        return self.tuiops_dir / LOG_NAME


_RUN_COLS = (
    "id, name, status, data, dataset, model, epochs, epoch, pitstops, save_dir, checkpoint, nc, args, "
    "created, updated, error, pid, host"
)


def _run_from_row(r: Sequence[Any]) -> TrainRun:
    return TrainRun(
        id=int(r[0]),
        name=r[1],
        status=r[2],
        data=Path(r[3]),
        dataset=r[4],
        model=r[5],
        epochs=int(r[6]),
        epoch=int(r[7]),
        pitstops=[int(x) for x in json.loads(r[8] or "[]")],
        save_dir=Path(r[9]),
        checkpoint=Path(r[10]) if r[10] else None,
        nc=r[11],
        args=json.loads(r[12] or "{}"),
        created=r[13],
        updated=r[14],
        error=r[15],
        pid=r[16],
        host=r[17],
    )


def get_run(store: Store, name: str) -> TrainRun:
    """The training run ``name``; NotFoundError naming the known ones otherwise."""
    row = store.execute(f"SELECT {_RUN_COLS} FROM train_runs WHERE name = ?", (name,)).fetchone()
    if row is None:
        known = [r[0] for r in store.execute("SELECT name FROM train_runs ORDER BY id")]
        raise NotFoundError(
            f"no training run named {name!r}",
            hint=f"known runs: {', '.join(known) or 'none'}; start one with `tuiops train DATA`",
        )
    return _run_from_row(row)


def _update_run(store: Store, run_id: int, **values: Any) -> None:
    from tuiops.store.db import utcnow

    values["updated"] = utcnow()
    cols = ", ".join(f"{k} = ?" for k in values)
    with store.transaction() as conn:
        conn.execute(f"UPDATE train_runs SET {cols} WHERE id = ?", (*values.values(), run_id))


def _record_session(store: Store, run_id: int, start_epoch: int) -> None:
    """Add a training session's starting point (finished epochs) to the run's ``_sessions``."""
    row = store.execute("SELECT args FROM train_runs WHERE id = ?", (run_id,)).fetchone()
    args = json.loads((row[0] if row else None) or "{}")
    sessions = [int(x) for x in args.get("_sessions") or []]
    if start_epoch == 0:
        sessions = []
    sessions.append(int(start_epoch))
    args["_sessions"] = sessions
    _update_run(store, run_id, args=json.dumps(args, default=str))


def monitor_plan(store: Store, name: str) -> dict[str, Any]:
    """What the monitor needs of run ``name`` besides its results.csv, as keywords of
    :func:`tuiops.ops.monitor.summarize`: epochs, pitstops planned and done, status and
    the epochs its sessions started from."""
    run = get_run(store, name)
    done, warnings = [], []
    for idx, epoch, summary in store.execute(
        "SELECT idx, epoch, summary FROM train_pitstops WHERE train_id = ? ORDER BY idx", (run.id,)
    ):
        done.append(int(epoch))
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            for w in (json.loads(summary or "{}").get("head") or {}).get("warnings") or []:
                warnings.append(f"pitstop {idx}: {str(w).split(' (')[0]}")  # the headline, for one line
    return {
        "epochs_total": run.epochs,
        "pitstops": run.pitstops,
        "pitstops_done": done,
        "status": run.status,
        "starts": run.starts,
        "warnings": warnings,
    }


def list_runs(ws: Workspace, *, store: Store | None = None) -> list[dict[str, Any]]:
    """Every training run: name, status, epoch/epochs, pitstops (planned and done), data, host, updated.

    ``store``: read through this store instead of the workspace's (e.g. a read-only one).
    """
    store = store if store is not None else ws.store
    rows = store.execute(f"SELECT {_RUN_COLS} FROM train_runs ORDER BY id").fetchall()
    out = []
    for r in rows:
        run = _run_from_row(r)
        done = [
            int(x[0])
            for x in store.execute(
                "SELECT epoch FROM train_pitstops WHERE train_id = ? ORDER BY idx", (run.id,)
            )
        ]
        out.append(
            {
                "name": run.name,
                "status": run.status,
                "epoch": run.epoch,
                "epochs": run.epochs,
                "pitstops": run.pitstops,
                "pitstops_done": done,
                "dataset": run.dataset,
                "data": str(run.data),
                "updated": run.updated,
                "host": run.host,
            }
        )
    return out


@dataclass
class TrainResult:
    """Where a training call left the run."""

    name: str
    status: str
    epoch: int
    epochs: int
    save_dir: str
    checkpoint: str | None
    best_weights: str | None
    seconds: float
    started_epoch: int = 0
    pitstop: dict[str, Any] | None = None
    next_pitstop: int | None = None
    dataset: dict[str, Any] | None = None
    caches_removed: list[str] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 2)
        return d


# -- plan ------------------------------------------------------------------------------------------
def pitstop_epochs(spec: Sequence[float], epochs: int) -> list[int]:
    """The epochs to stop after: a value below 1 is a fraction of ``epochs``, else an epoch number.

    Every pitstop must fall before the last epoch (the end is not a pitstop).
    """
    out = set()
    for v in spec:
        if v <= 0:
            raise UsageError(f"pitstop {v} must be a positive fraction (0.4) or epoch number (40)")
        e = max(1, round(v * epochs)) if v < 1 else int(v)
        if v >= 1 and v != int(v):
            raise UsageError(f"pitstop {v}: give a fraction below 1 or a whole epoch number")
        if e >= epochs:
            raise UsageError(
                f"pitstop {v} falls on epoch {e}, but the run has {epochs} epochs: a pitstop must come before the end"
            )
        out.add(e)
    return sorted(out)


def _resolve_data(ws: Workspace, data: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """The data.yaml and, for a tuiops dataset, its name (``data`` is a folder, a yaml or a dataset name)."""
    from tuiops.ops.dataset import DATA_YAML, dataset_info, find_dataset

    p = Path(data).expanduser()
    if not p.exists() and NAME_RX.match(str(data)):
        with contextlib.suppress(NotFoundError):
            info = dataset_info(ws.store, str(data))
            return info.data_yaml, info.name
    if p.is_dir():
        p = p / DATA_YAML
    if not p.is_file():
        raise NotFoundError(
            f"no dataset at {display_path(p)}",
            hint="give a dataset folder or data.yaml (build one with `tuiops dataset build`) or a dataset name",
        )
    p = p.resolve()
    found = find_dataset(ws.store, p)
    return p, (found.name if found is not None else None)


def _yaml_class_count(path: Path) -> int:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read {display_path(path)}: {exc}") from exc
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, dict | list):
        return len(names)
    if isinstance(doc, dict) and isinstance(doc.get("nc"), int):
        return int(doc["nc"])
    raise InputError(f"{display_path(path)} has no class names (names: …)", hint="add names to the data.yaml")


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` ultralytics arguments; values are read as YAML scalars (``0.01``, ``true``, ``[0, 1]``)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"ultralytics argument {item!r} must look like key=value (e.g. lr0=0.005)")
        k, v = item.split("=", 1)
        k = k.strip()
        if not re.match(r"^[a-z_][a-z0-9_]*$", k):
            raise UsageError(f"ultralytics argument name {k!r} is not valid")
        if k in RESERVED_ARGS:
            raise UsageError(f"{k}= is set by tuiops; use the command's own option for it")
        try:
            out[k] = yaml.safe_load(v) if v.strip() else None
        except yaml.YAMLError:
            out[k] = v
    return out


# -- the trainer -----------------------------------------------------------------------------------
@dataclass
class _FitState:
    pitstop: int | None = None
    cancelled: bool = False
    last_saved: int = 0
    best_epoch: int | None = None
    error: str | None = None
    #: Where a cancel inside an epoch stopped: (epoch, batches done, batches of the epoch).
    stopped_in: tuple[int, int, int] | None = None
    batch_epoch: int = 0
    batches: int = 0


class _StopInEpoch(Exception):
    """Raised from a batch callback to leave ultralytics' training loop in the middle of an epoch.

    Setting ``trainer.stop`` there would not do: ultralytics would still validate, log and
    save the half-trained epoch as if it were complete.
    """


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.part")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise disk_error(dst, exc) from exc


def _fit(
    ws: Workspace,
    run: TrainRun,
    *,
    resume_from: Path | None,
    verbose: bool,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> _FitState:
    """Run ultralytics training (new or resumed) with the pitstop and checkpoint callbacks."""
    from tuiops.ops.detect import prepare_ultralytics, ultralytics_output

    prepare_ultralytics(ws)
    from ultralytics import YOLO

    store = ws.store
    state = _FitState()
    start = run.epoch if resume_from is not None else 0
    pending = {p for p in run.pitstops if p > start}
    run.tuiops_dir.mkdir(parents=True, exist_ok=True)
    resume_pt = run.tuiops_dir / RESUME_NAME
    reporter = Reporter("train", progress, None, total=run.epochs, interval=1.0)

    def on_train_batch_end(trainer: Any) -> None:
        e = int(trainer.epoch) + 1
        loader = getattr(trainer, "train_loader", None)
        nb = len(loader) if loader is not None else 0
        state.batches = state.batches + 1 if state.batch_epoch == e else 1
        state.batch_epoch = e
        if cancel is not None and cancel.cancelled:
            state.cancelled = True
            state.stopped_in = (e, state.batches, nb)
            raise _StopInEpoch
        reporter.update(e - 1, f"epoch {e}/{run.epochs} batch {state.batches}/{nb or '?'}")

    def on_train_epoch_end(trainer: Any) -> None:
        e = int(trainer.epoch) + 1
        if e in pending:
            trainer.stop = True
            state.pitstop = e
        if cancel is not None and cancel.cancelled:
            trainer.stop = True
            state.cancelled = True

    def on_model_save(trainer: Any) -> None:
        e = int(trainer.epoch) + 1
        _copy_atomic(Path(trainer.last), resume_pt)
        state.last_saved = e
        stopper = getattr(trainer, "stopper", None)
        state.best_epoch = int(getattr(stopper, "best_epoch", 0) or 0) or None
        _update_run(store, run.id, epoch=e, checkpoint=str(resume_pt))
        metrics = getattr(trainer, "metrics", None) or {}
        m = metrics.get("metrics/mAP50-95(B)")
        msg = f"epoch {e}/{run.epochs}" + (f" mAP50-95 {m:.3f}" if isinstance(m, float) else "")
        reporter.update(e, msg, force=True)

    if resume_from is not None:
        with ultralytics_output(None if verbose else run.log):
            model = YOLO(str(resume_from))
        kwargs: dict[str, Any] = {
            "resume": str(resume_from),
            "data": str(run.data),
            "save_dir": str(run.save_dir),
        }
        for k in ("device", "workers", "batch", "imgsz"):
            if k in run.args:
                kwargs[k] = run.args[k]
    else:
        try:
            with ultralytics_output(None if verbose else run.log):
                model = YOLO(run.model)
        except Exception as exc:
            raise InputError(
                f"cannot load the model {run.model!r}: {type(exc).__name__}: {exc}",
                hint="give a model yaml ultralytics knows (yolov8n.yaml) or a .pt weights file",
            ) from exc
        kwargs = {
            "plots": False,
            "amp": False,
            **{k: v for k, v in run.args.items() if not k.startswith("_")},
            "data": str(run.data),
            "epochs": run.epochs,
            "project": str(run.save_dir.parent),
            "name": run.save_dir.name,
            "exist_ok": True,
            "save": True,
        }
    model.add_callback("on_train_batch_end", on_train_batch_end)
    model.add_callback("on_train_epoch_end", on_train_epoch_end)
    model.add_callback("on_model_save", on_model_save)
    reporter.update(start, f"training from epoch {start + 1}", force=True)
    try:
        with ultralytics_output(None if verbose else run.log):
            model.train(**kwargs)
    except _StopInEpoch:
        return state
    except Cancelled:
        raise
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}".strip()
        raise ExternalToolError(
            f"ultralytics training of {run.name!r} failed at epoch {state.last_saved + 1}: {detail[:400]}",
            hint=f"see {display_path(run.log)}; once fixed, `tuiops train resume {run.name}` continues "
            "from the last checkpoint",
        ) from exc
    return state


def _finish(
    ws: Workspace,
    run: TrainRun,
    state: _FitState,
    *,
    started: float,
    started_epoch: int,
    pitstop_opts: Mapping[str, Any],
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> TrainResult:
    """Record where the fit ended and, at a pitstop, do the pitstop's work."""
    store = ws.store
    run = get_run(store, run.name)
    best = run.save_dir / "weights" / "best.pt"
    result = TrainResult(
        name=run.name,
        status=run.status,
        epoch=run.epoch,
        epochs=run.epochs,
        save_dir=str(run.save_dir),
        checkpoint=str(run.checkpoint) if run.checkpoint else None,
        best_weights=str(best) if best.is_file() else None,
        seconds=0.0,
        started_epoch=started_epoch,
    )
    if state.cancelled and state.pitstop is None:
        _update_run(store, run.id, status="paused", pid=None)
        where = ""
        if state.stopped_in is not None:
            e, done, nb = state.stopped_in
            where = f" (stopped during epoch {e}, batch {done}/{nb or '?'}; that epoch is done again)"
        raise Cancelled(
            f"training {run.name!r} paused after epoch {run.epoch}{where}",
            hint=f"`tuiops train resume {run.name}` continues from there",
        )
    if state.pitstop is not None:
        _update_run(store, run.id, status="pitstop", pid=None)
        idx = len([p for p in run.pitstops if p <= state.pitstop])
        report = run_pitstop(
            ws,
            run.name,
            idx=idx,
            epoch=state.pitstop,
            best_epoch=state.best_epoch,
            progress=progress,
            cancel=cancel,
            **pitstop_opts,
        )
        result.status = "pitstop"
        result.pitstop = report
        nxt = [p for p in run.pitstops if p > state.pitstop]
        result.next_pitstop = nxt[0] if nxt else None
        result.message = (
            f"pitstop {idx} after epoch {state.pitstop}: report {report['report']}; fix labels, then "
            f"`tuiops train resume {run.name}`"
        )
    else:
        _update_run(store, run.id, status="done", pid=None)
        result.status = "done"
        early = run.epoch < run.epochs
        result.message = (
            f"training finished after epoch {run.epoch}"
            + (" (early stop: no improvement)" if early else "")
            + (f"; best weights {result.best_weights}" if result.best_weights else "")
        )
    result.seconds = time.monotonic() - started
    return result


def _guarded_fit(
    ws: Workspace,
    run: TrainRun,
    *,
    resume_from: Path | None,
    verbose: bool,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    job_params: Mapping[str, Any],
    pitstop_opts: Mapping[str, Any],
) -> TrainResult:
    """Fit inside a job record; an interruption leaves the run resumable and says so."""
    from tuiops.ops.base import job

    store = ws.store
    started = time.monotonic()
    started_epoch = run.epoch if resume_from is not None else 0
    with job(store, "train", job_params, total=run.epochs) as j:
        _update_run(store, run.id, status="running", pid=os.getpid(), job_id=j.id, error=None)
        _record_session(store, run.id, started_epoch)

        def on_progress(ev: ProgressEvent) -> None:
            with contextlib.suppress(Exception):
                store.job_progress(j.id, ev.done, ev.total, ev.message)
            if progress is not None:
                progress(ev)

        try:
            state = _fit(
                ws, run, resume_from=resume_from, verbose=verbose, progress=on_progress, cancel=cancel
            )
        except KeyboardInterrupt:
            _update_run(store, run.id, status="interrupted", pid=None, error="interrupted")
            raise
        except BaseException as exc:
            _update_run(store, run.id, status="failed", pid=None, error=str(exc)[:2000])
            raise
        result = _finish(
            ws,
            run,
            state,
            started=started,
            started_epoch=started_epoch,
            pitstop_opts=pitstop_opts,
            progress=progress,
            cancel=cancel,
        )
        j.result = result.to_dict()
    return result


def train(
    ws: Workspace,
    data: str | os.PathLike[str],
    *,
    model: str = "yolov8n.yaml",
    epochs: int = 100,
    name: str | None = None,
    pitstops: Sequence[float] = (),
    imgsz: int | None = None,
    batch: int | None = None,
    device: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    pitstop_conf: float = 0.25,
    pitstop_max_det: int = 300,
    match_iou: float = 0.5,
    replace: bool = False,
    verbose: bool = False,
    on: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Start a training run; it stops at the first pitstop (or runs to the end).

    ``data`` is a dataset folder, its data.yaml, or the name of a tuiops dataset.
    ``model`` is a model yaml (``yolov8n.yaml``: trained from scratch) or a ``.pt``
    weights file. ``overrides`` are further ultralytics train arguments. ``on``: train
    on this ``[hosts.NAME]`` machine over SSH (:mod:`tuiops.ops.train_remote`).
    """
    from tuiops.store.db import utcnow

    store = ws.store
    if epochs < 1:
        raise UsageError(f"--epochs must be at least 1 (got {epochs})")
    data_yaml, dataset = _resolve_data(ws, data)
    name = name or _default_name(store, dataset or data_yaml.parent.name)
    if not NAME_RX.match(name):
        raise UsageError(
            f"training run name {name!r} is not valid",
            hint="use letters, digits, '.', '_' and '-' (at most 64), starting with a letter or digit",
        )
    plan = pitstop_epochs(pitstops, epochs)
    model_spec = str(model)
    mp = Path(model_spec).expanduser()
    if mp.suffix == ".pt" or mp.exists():
        if not mp.is_file():
            raise NotFoundError(f"model file {display_path(mp)} does not exist")
        model_spec = str(mp.resolve())
    args: dict[str, Any] = dict(overrides or {})
    bad = sorted(set(args) & RESERVED_ARGS)
    if bad:
        raise UsageError(f"{bad[0]}= is set by tuiops; use the command's own option for it")
    for k, v in (("imgsz", imgsz), ("batch", batch), ("device", device)):
        if v is not None:
            args[k] = v
    nc = _yaml_class_count(data_yaml)
    save_dir = ws.root / TRAIN_DIR / name
    existing = store.execute("SELECT id, status FROM train_runs WHERE name = ?", (name,)).fetchone()
    if existing is not None:
        if existing[1] in ACTIVE and not replace:
            raise ConflictError(
                f"training run {name!r} is running", hint="watch it with `tuiops train watch`"
            )
        if not replace:
            raise ConflictError(
                f"a training run named {name!r} exists already",
                hint=f"continue it with `tuiops train resume {name}`, choose another --name, or pass --replace",
            )
        with store.transaction() as conn:
            conn.execute("DELETE FROM train_runs WHERE id = ?", (existing[0],))
        shutil.rmtree(save_dir, ignore_errors=True)
    elif save_dir.exists() and any(save_dir.iterdir()):
        if not replace:
            raise ConflictError(
                f"{display_path(save_dir)} exists already", hint="choose another --name, or pass --replace"
            )
        shutil.rmtree(save_dir, ignore_errors=True)
    pitstop_opts = {"conf": pitstop_conf, "max_det": pitstop_max_det, "match_iou": match_iou}
    if on is not None:
        from tuiops.ops.train_remote import train_remote

        return train_remote(
            ws,
            data_yaml,
            dataset,
            host=on,
            name=name,
            model=model_spec,
            epochs=epochs,
            plan=plan,
            args=args,
            nc=nc,
            pitstop_opts=pitstop_opts,
            replace=replace,
            progress=progress,
            cancel=cancel,
        )
    now = utcnow()
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO train_runs(name, created, updated, status, data, dataset, model, epochs, epoch, "
            "pitstops, save_dir, nc, args, pid) VALUES (?, ?, ?, 'starting', ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
            (
                name,
                now,
                now,
                str(data_yaml),
                dataset,
                model_spec,
                epochs,
                json.dumps(plan),
                str(save_dir),
                nc,
                json.dumps({**args, "_pitstop": pitstop_opts}, default=str),
                os.getpid(),
            ),
        )
    run = get_run(store, name)
    run.args.pop("_pitstop", None)
    params = {
        "op": "train",
        "name": name,
        "data": str(data_yaml),
        "model": model_spec,
        "epochs": epochs,
        "pitstops": plan,
        **args,
    }
    return _guarded_fit(
        ws,
        run,
        resume_from=None,
        verbose=verbose,
        progress=progress,
        cancel=cancel,
        job_params=params,
        pitstop_opts=pitstop_opts,
    )


def _default_name(store: Store, base: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", base)[:56].lstrip("._-") or "run"
    taken = {r[0] for r in store.execute("SELECT name FROM train_runs")}
    if base not in taken:
        return base
    i = 2
    while f"{base}-{i}" in taken:
        i += 1
    return f"{base}-{i}"


def _checkpoint_epoch(path: Path) -> int:
    """The number of finished epochs a resumable checkpoint holds (refusing one without an optimizer)."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputError(
            f"cannot read the checkpoint {display_path(path)}: {type(exc).__name__}: {exc}",
            hint="it may be damaged; start a new run from weights/best.pt with `tuiops train DATA --model …`",
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("optimizer") is None or int(ckpt.get("epoch", -1)) < 0:
        raise InputError(
            f"{display_path(path)} is not a resumable checkpoint (no optimizer state)",
            hint="start a new run from its weights with `tuiops train DATA --model …`",
        )
    return int(ckpt["epoch"]) + 1


def _trim_results(csv: Path, last_epoch: int) -> int:
    """Rewrite results.csv so it holds each epoch up to ``last_epoch`` once; returns the lines dropped.

    As the monitor reads it: the latest line of an epoch counts, a restart drops the
    stale lines after it, and a half-written last line is dropped.
    """
    if not csv.is_file():
        return 0
    text = csv.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")[:-1]  # the part after the last newline is incomplete
    if not lines:
        if text:
            atomic_write_text(csv, "")
        return 1 if text else 0
    header, body = lines[0], [ln for ln in lines[1:] if ln.strip()]
    epochs: list[int | None] = []
    for ln in body:
        try:
            epochs.append(int(float(ln.split(",", 1)[0])))
        except ValueError:
            epochs.append(None)
    keep = []
    later_min: int | None = None
    for ln, e in zip(reversed(body), reversed(epochs), strict=True):
        if e is not None and e <= last_epoch and (later_min is None or e < later_min):
            keep.append(ln)
        if e is not None:
            later_min = e if later_min is None else min(later_min, e)
    keep.reverse()
    dropped = len(body) - len(keep) + (1 if not text.endswith("\n") else 0)
    if dropped:
        atomic_write_text(csv, "\n".join([header, *keep]) + "\n")
    return dropped


def resume(
    ws: Workspace,
    name: str,
    *,
    rebuild: bool = True,
    exclude: Sequence[str] = (),
    include: Sequence[str] = (),
    verbose: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Continue a stopped run from its checkpoint, with the labels as they are now.

    A tuiops dataset is rebuilt from the store first (``exclude``/``include`` keys or
    ``@FILE`` lists change which images are in it; the split of the others stays);
    ``rebuild=False`` keeps the dataset's files as they are (labels edited in place).
    Either way ultralytics' label caches are deleted.
    """
    from tuiops.ops.dataset import build_dataset, dataset_info, delete_label_caches

    store = ws.store
    run = get_run(store, name)
    if run.status in ACTIVE and run.pid is not None and pid_alive(run.pid) and run.pid != os.getpid():
        raise ConflictError(
            f"training run {name!r} is running (process {run.pid})",
            hint=f"watch it with `tuiops train watch {name}`",
        )
    if run.status == "done":
        raise UsageError(
            f"training run {name!r} finished all {run.epochs} epochs"
            if run.epoch >= run.epochs
            else f"training run {name!r} stopped early (no improvement) after epoch {run.epoch}",
            hint="start a new run from its best weights with `tuiops train DATA --model "
            f"{run.save_dir / 'weights' / 'best.pt'}`",
        )
    ckpt = run.checkpoint
    if run.host is None and (ckpt is None or not ckpt.is_file()):
        raise NotFoundError(
            f"training run {name!r} has no checkpoint to resume from (it stopped before its first epoch ended)",
            hint=f"start it again with `tuiops train … --name {name} --replace`",
        )
    if (exclude or include) and run.dataset is None:
        raise UsageError("--exclude/--include need a dataset built by `tuiops dataset build`")
    ds_summary = None
    if run.dataset is not None and rebuild:
        info = dataset_info(store, run.dataset)
        res = build_dataset(
            ws,
            info.label_set,
            info.root,
            name=info.name,
            exclude=exclude,
            include=include,
            progress=progress,
            cancel=cancel,
        )
        ds_summary = {
            "images": res.images,
            "train": res.train,
            "val": res.val,
            "boxes": res.boxes,
            "excluded": res.excluded,
            "warnings": res.warnings,
        }
    data_root = run.data.parent
    removed = delete_label_caches(data_root)
    nc = _yaml_class_count(run.data)
    if run.nc is not None and nc != run.nc:
        raise ConflictError(
            f"the dataset now has {nc} classes, but run {name!r} was trained with {run.nc}: "
            "a checkpoint cannot continue with another class count",
            hint="start a new run from its weights with `tuiops train DATA --model "
            f"{run.save_dir / 'weights' / 'best.pt'}`",
        )
    if run.host is not None:
        from tuiops.ops.train_remote import resume_remote

        result = resume_remote(
            ws, run, dataset_summary=ds_summary, verbose=verbose, progress=progress, cancel=cancel
        )
        result.caches_removed = [str(p) for p in removed]
        return result
    assert ckpt is not None
    epoch = _checkpoint_epoch(ckpt)
    if epoch >= run.epochs:
        _update_run(store, run.id, status="done", epoch=epoch)
        raise UsageError(f"training run {name!r} has finished all {run.epochs} epochs; nothing to resume")
    _trim_results(run.results_csv, epoch)
    _update_run(store, run.id, epoch=epoch)
    run = get_run(store, name)
    pitstop_opts = dict(run.args.pop("_pitstop", {}) or {})
    params = {
        "op": "train resume",
        "name": name,
        "from_epoch": epoch,
        "rebuild": rebuild,
        "exclude": list(exclude),
        "include": list(include),
    }
    result = _guarded_fit(
        ws,
        run,
        resume_from=ckpt,
        verbose=verbose,
        progress=progress,
        cancel=cancel,
        job_params=params,
        pitstop_opts=pitstop_opts,
    )
    result.dataset = ds_summary
    result.caches_removed = [str(p) for p in removed]
    return result


# -- comparison ------------------------------------------------------------------------------------
def _greedy_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    """One-to-one pairs (``lid``, ``did``, ``iou``) chosen greedily by IoU, in rounds.

    In each round every pair that is the best remaining one for both its label and its
    detection (order: IoU descending, then label id, then detection id) is taken, and
    the pairs of taken boxes leave. This equals the global greedy matching.
    """
    import polars as pl

    taken = []
    left = pairs.sort(["iou", "lid", "did"], descending=[True, False, False])
    while left.height:
        best_l = left.unique("lid", keep="first", maintain_order=True).select("lid", "did")
        best_d = left.unique("did", keep="first", maintain_order=True).select("lid", "did")
        mutual = best_l.join(best_d, on=["lid", "did"], how="inner")
        got = left.join(mutual, on=["lid", "did"], how="semi")
        taken.append(got)
        left = left.join(got.select("lid"), on="lid", how="anti").join(
            got.select("did"), on="did", how="anti"
        )
    if not taken:
        return pairs.head(0)
    return pl.concat(taken)


def compare_boxes(labels: pl.DataFrame, dets: pl.DataFrame, *, iou: float = 0.5) -> pl.DataFrame:
    """Every label and detection as an object row: matched, missed, extra or wrong class.

    ``labels``: id, item_id, class_id, x1…y2; ``dets``: the same plus score. Returns
    ``item_id``, ``kind`` (``tp``, ``fn``, ``fp``, ``class`` — a label and a detection of
    another class at IoU ≥ ``iou``), ``class_id`` (the label's, else the detection's),
    ``det_class``, ``label_id``, ``det_id``, ``iou``, ``score``, ``area`` (of the label,
    else of the detection) and the box (``x1…y2``, the label's where there is one).
    """
    import polars as pl

    from tuiops import geometry as geo

    L = labels.select(
        pl.col("id").alias("lid"), "item_id", pl.col("class_id").cast(pl.Int64), "x1", "y1", "x2", "y2"
    )
    D = dets.select(
        pl.col("id").alias("did"),
        "item_id",
        pl.col("class_id").cast(pl.Int64).alias("dcls"),
        pl.col("x1").alias("x1_d"),
        pl.col("y1").alias("y1_d"),
        pl.col("x2").alias("x2_d"),
        pl.col("y2").alias("y2_d"),
        "score",
    )

    def candidates(left: pl.DataFrame, right: pl.DataFrame, same_class: bool) -> pl.DataFrame:
        if same_class:
            j = left.join(right, left_on=["item_id", "class_id"], right_on=["item_id", "dcls"], how="inner")
            j = j.with_columns(pl.col("class_id").alias("dcls"))
        else:
            j = left.join(right, on="item_id", how="inner").filter(pl.col("class_id") != pl.col("dcls"))
        return j.with_columns(geo.iou("", "_d").alias("iou")).filter(pl.col("iou") >= iou)

    tp = _greedy_pairs(candidates(L, D, True).select("lid", "did", "iou"))
    L2 = L.join(tp.select("lid"), on="lid", how="anti")
    D2 = D.join(tp.select("did"), on="did", how="anti")
    wrong = _greedy_pairs(candidates(L2, D2, False).select("lid", "did", "iou"))
    fn = L2.join(wrong.select("lid"), on="lid", how="anti")
    fp = D2.join(wrong.select("did"), on="did", how="anti")
    lab_area = geo.area()
    det_area = geo.area("_d")
    out_cols = [
        "item_id",
        "kind",
        "class_id",
        "det_class",
        "label_id",
        "det_id",
        "iou",
        "score",
        "area",
        "x1",
        "y1",
        "x2",
        "y2",
    ]

    def paired(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
        return (
            frame.join(L, on="lid")
            .join(D.drop("item_id"), on="did")
            .with_columns(pl.lit(kind).alias("kind"), lab_area.alias("area"))
            .select(
                "item_id",
                "kind",
                "class_id",
                pl.col("dcls").alias("det_class"),
                pl.col("lid").alias("label_id"),
                pl.col("did").alias("det_id"),
                "iou",
                "score",
                "area",
                "x1",
                "y1",
                "x2",
                "y2",
            )
        )

    parts = [
        paired(tp, "tp"),
        paired(wrong, "class"),
        fn.select(
            "item_id",
            pl.lit("fn").alias("kind"),
            "class_id",
            pl.lit(None, pl.Int64).alias("det_class"),
            pl.col("lid").alias("label_id"),
            pl.lit(None, pl.Int64).alias("det_id"),
            pl.lit(None, pl.Float64).alias("iou"),
            pl.lit(None, pl.Float64).alias("score"),
            lab_area.alias("area"),
            "x1",
            "y1",
            "x2",
            "y2",
        ),
        fp.select(
            "item_id",
            pl.lit("fp").alias("kind"),
            pl.col("dcls").alias("class_id"),
            pl.col("dcls").alias("det_class"),
            pl.lit(None, pl.Int64).alias("label_id"),
            pl.col("did").alias("det_id"),
            pl.lit(None, pl.Float64).alias("iou"),
            "score",
            det_area.alias("area"),
            pl.col("x1_d").alias("x1"),
            pl.col("y1_d").alias("y1"),
            pl.col("x2_d").alias("x2"),
            pl.col("y2_d").alias("y2"),
        ),
    ]
    schema = pl.Schema(
        {
            "item_id": pl.Int64,
            "kind": pl.String,
            "class_id": pl.Int64,
            "det_class": pl.Int64,
            "label_id": pl.Int64,
            "det_id": pl.Int64,
            "iou": pl.Float64,
            "score": pl.Float64,
            "area": pl.Float64,
            "x1": pl.Float64,
            "y1": pl.Float64,
            "x2": pl.Float64,
            "y2": pl.Float64,
        }
    )
    return pl.concat([p.select(out_cols).cast(schema) for p in parts])


def _counts(objs: pl.DataFrame) -> dict[str, Any]:
    """tp/fp/fn/wrong-class counts with precision, recall and mean IoU of the matches."""
    import polars as pl

    k = dict(objs.group_by("kind").len().iter_rows())
    tp, fp, fn, wc = (int(k.get(x, 0)) for x in ("tp", "fp", "fn", "class"))
    n_det = tp + fp + wc
    n_lab = tp + fn + wc
    miou = num_mean(objs.filter(pl.col("kind") == "tp")["iou"])
    return {
        "labels": n_lab,
        "detections": n_det,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "wrong_class": wc,
        "precision": round(tp / n_det, 4) if n_det else None,
        "recall": round(tp / n_lab, 4) if n_lab else None,
        "mean_iou": round(miou, 4) if miou is not None else None,
    }


def pitstop_report(
    objs: pl.DataFrame,
    images: pl.DataFrame,
    classes: Sequence[str],
    *,
    previous: Mapping[str, Any] | None = None,
    top: int = REPORT_TOP,
    per_class: int = REPORT_PER_CLASS,
) -> dict[str, Any]:
    """The pitstop report's content from the compared objects.

    ``images``: item_id, key, split (every compared image, also those with no boxes).
    For each split: totals, per-class counts, the change since ``previous`` (an earlier
    report's summary), the worst images (most missed + extra + wrong-class objects) and
    per class the largest missed and extra objects and the loosest boxes.
    """
    import polars as pl

    def cname(c: int | None) -> str | None:
        if c is None:
            return None
        return classes[c] if 0 <= c < len(classes) else str(c)

    objs = objs.join(images.select("item_id", "key", "split"), on="item_id", how="inner")
    out: dict[str, Any] = {"splits": {}}
    for split in ("train", "val"):
        imgs = images.filter(pl.col("split") == split)
        o = objs.filter(pl.col("split") == split)
        totals = {"images": imgs.height, **_counts(o)}
        classes_out = {}
        for cid in sorted(set(o["class_id"].drop_nulls().to_list())):
            classes_out[cname(cid)] = _counts(o.filter(pl.col("class_id") == cid))
        per_img = (
            o.group_by("item_id", "key")
            .agg(
                (pl.col("kind") == "fn").sum().alias("fn"),
                (pl.col("kind") == "fp").sum().alias("fp"),
                (pl.col("kind") == "class").sum().alias("wrong_class"),
                (pl.col("kind") != "fp").sum().alias("labels"),
                (pl.col("kind") != "fn").sum().alias("detections"),
                pl.when(pl.col("kind") == "fn")
                .then(pl.col("area"))
                .otherwise(0.0)
                .sum()
                .alias("missed_area"),
            )
            .with_columns((pl.col("fn") + pl.col("fp") + pl.col("wrong_class")).alias("errors"))
            .filter(pl.col("errors") > 0)
            .sort(["errors", "missed_area", "key"], descending=[True, True, False])
        )
        worst = [
            {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items() if k != "item_id"}
            for r in per_img.head(top).iter_rows(named=True)
        ]
        diffs: dict[str, Any] = {}
        for cid in sorted(set(o["class_id"].drop_nulls().to_list())):
            oc = o.filter(pl.col("class_id") == cid)

            def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
                return [
                    {
                        "key": r["key"],
                        "box": [round(r[c], 1) for c in ("x1", "y1", "x2", "y2")],
                        "area": round(r["area"], 1),
                        **({"score": round(r["score"], 3)} if r["score"] is not None else {}),
                        **({"iou": round(r["iou"], 3)} if r["iou"] is not None else {}),
                        **({"detected_as": cname(r["det_class"])} if r["kind"] == "class" else {}),
                    }
                    for r in frame.iter_rows(named=True)
                ]

            diffs[cname(cid) or str(cid)] = {
                "missed": rows(
                    oc.filter(pl.col("kind") == "fn").sort("area", descending=True).head(per_class)
                ),
                "extra": rows(
                    oc.filter(pl.col("kind") == "fp").sort("area", descending=True).head(per_class)
                ),
                "wrong_class": rows(
                    oc.filter(pl.col("kind") == "class").sort("area", descending=True).head(per_class)
                ),
                "loose": rows(
                    oc.filter((pl.col("kind") == "tp") & (pl.col("iou") < LOOSE_IOU))
                    .sort("iou")
                    .head(per_class)
                ),
            }
        change = None
        if previous:
            prev = (previous.get("splits") or {}).get(split) or {}
            pt = prev.get("totals") or {}
            change = {
                k: (None if totals.get(k) is None or pt.get(k) is None else round(totals[k] - pt[k], 4))
                for k in ("tp", "fp", "fn", "wrong_class", "precision", "recall", "mean_iou")
            }
            pc = prev.get("classes") or {}
            change["classes"] = {
                c: {
                    k: (
                        None
                        if v.get(k) is None or (pc.get(c) or {}).get(k) is None
                        else round(v[k] - pc[c][k], 4)
                    )
                    for k in ("fn", "fp", "recall", "precision")
                }
                for c, v in classes_out.items()
            }
        out["splits"][split] = {
            "totals": totals,
            "classes": classes_out,
            "change": change,
            "worst_images": worst,
            "largest_differences": diffs,
        }
    return out


def _report_markdown(head: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    """The report as Markdown, for reading in a terminal or an editor."""
    lines = [
        f"# Pitstop {head['idx']} of training run {head['train']} (epoch {head['epoch']}/{head['epochs']})",
        "",
        f"- weights: `{head['weights']}` (sha256 {head['weights_sha256'][:16]}…, best epoch {head['best_epoch']})",
        f"- detection run: `{head['run']}` (stored at conf ≥ {head.get('stored_conf', head['conf'])}, "
        f"compared at conf ≥ {head['conf']}), matched at IoU ≥ {head['match_iou']}",
        f"- label set: `{head['label_set']}`, dataset `{head['dataset']}`",
        "",
    ]
    for w in head.get("warnings") or []:
        lines += [f"> **WARNING** {w}", ""]

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    def delta(v: Any) -> str:
        if v is None:
            return ""
        return f" ({v:+.3f})" if isinstance(v, float) else f" ({v:+d})"

    for split, s in body["splits"].items():
        t = s["totals"]
        ch = s.get("change") or {}
        lines += [
            f"## {split}: {t['images']} images, {t['labels']} labels, {t['detections']} detections",
            "",
            "| | count | since last pitstop |",
            "|---|---|---|",
        ]
        for k in ("tp", "fp", "fn", "wrong_class", "precision", "recall", "mean_iou"):
            lines.append(f"| {k} | {fmt(t.get(k))} | {delta(ch.get(k)).strip(' ()') if ch else ''} |")
        lines += [
            "",
            "| class | labels | tp | fp | fn | wrong class | precision | recall |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c, v in s["classes"].items():
            cc = (ch.get("classes") or {}).get(c, {}) if ch else {}
            lines.append(
                f"| {c} | {v['labels']} | {v['tp']} | {v['fp']}{delta(cc.get('fp'))} | {v['fn']}{delta(cc.get('fn'))} "
                f"| {v['wrong_class']} | {fmt(v['precision'])} | {fmt(v['recall'])}{delta(cc.get('recall'))} |"
            )
        lines += [
            "",
            f"### worst {split} images",
            "",
            "| image | missed | extra | wrong class | labels | detections |",
            "|---|---|---|---|---|---|",
        ]
        for w in s["worst_images"]:
            lines.append(
                f"| {w['key']} | {w['fn']} | {w['fp']} | {w['wrong_class']} | {w['labels']} | {w['detections']} |"
            )
        lines += ["", f"### largest object differences per class ({split})", ""]
        for c, d in s["largest_differences"].items():
            parts = []
            for kind in ("missed", "extra", "wrong_class", "loose"):
                for r in d[kind]:
                    extra = "".join(f" {k}={r[k]}" for k in ("score", "iou", "detected_as") if k in r)
                    parts.append(f"- {kind}: {r['key']} box {r['box']} area {r['area']}{extra}")
            if parts:
                lines += [f"**{c}**", "", *parts, ""]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def run_pitstop(
    ws: Workspace,
    name: str,
    *,
    idx: int | None = None,
    epoch: int | None = None,
    best_epoch: int | None = None,
    conf: float = 0.25,
    max_det: int = 300,
    match_iou: float = 0.5,
    batch: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """A pitstop's work for a stopped run: detect with the best weights, compare, report.

    Called by training at each pitstop; calling it again redoes the last pitstop's
    report (the detection run is replaced). Returns the stored summary.
    """
    import polars as pl

    from tuiops.ops.dataset import dataset_images, dataset_info
    from tuiops.ops.detect import detect, sha256_file
    from tuiops.store.db import utcnow

    store = ws.store
    run = get_run(store, name)
    if idx is None or epoch is None:
        prior = store.execute(
            "SELECT idx, epoch, best_epoch FROM train_pitstops WHERE train_id = ? ORDER BY idx DESC LIMIT 1",
            (run.id,),
        ).fetchone()
        if prior is None:
            raise NotFoundError(f"training run {name!r} has not stopped at a pitstop yet")
        idx, epoch, best_epoch = int(prior[0]), int(prior[1]), prior[2]
    best = run.save_dir / "weights" / "best.pt"
    if not best.is_file():
        raise NotFoundError(f"training run {name!r} has no best weights ({display_path(best)})")
    run.tuiops_dir.mkdir(parents=True, exist_ok=True)
    weights = run.tuiops_dir / f"pitstop-{idx}-best.pt"
    if not weights.is_file() or run.status == "pitstop":
        _copy_atomic(best, weights)
    sha = sha256_file(weights)
    det_run = f"{name}.pitstop{idx}"
    head: dict[str, Any] = {
        "train": name,
        "idx": idx,
        "epoch": epoch,
        "epochs": run.epochs,
        "best_epoch": best_epoch,
        "weights": str(weights),
        "weights_sha256": sha,
        "run": det_run,
        "conf": conf,
        "stored_conf": min(conf, STORE_CONF),
        "match_iou": match_iou,
        "dataset": run.dataset,
        "label_set": None,
        "created": utcnow(),
    }
    body: dict[str, Any] = {"splits": {}}
    notes: list[str] = []
    warnings: list[str] = []
    if run.dataset is None:
        notes.append(
            "the data is not a tuiops dataset, so the pitstop made no detection run and no comparison; "
            "build the dataset with `tuiops dataset build` to get reports"
        )
    else:
        info = dataset_info(store, run.dataset)
        head["label_set"] = info.label_set
        images = dataset_images(store, run.dataset)
        imgsz = int(run.args.get("imgsz", 640))
        detect(
            ws,
            weights,
            det_run,
            images=images.select(
                "item_id", "path", pl.col("width").alias("item_w"), pl.col("height").alias("item_h")
            ),
            conf=min(conf, STORE_CONF),
            imgsz=imgsz,
            batch=batch or int(run.args.get("batch", 16) or 16),
            max_det=max_det,
            device=run.args.get("device"),
            epoch=best_epoch,
            replace=True,
            source=f"train:{name}",
            note=f"pitstop {idx} of training run {name} after epoch {epoch}",
            progress=progress,
            cancel=cancel,
        )
        prev_row = store.execute(
            "SELECT summary FROM train_pitstops WHERE train_id = ? AND idx < ? ORDER BY idx DESC LIMIT 1",
            (run.id, idx),
        ).fetchone()
        previous = json.loads(prev_row[0]).get("body") if prev_row and prev_row[0] else None
        body, more, warnings = pitstop_compare(
            ws, run.dataset, det_run, images, conf=conf, match_iou=match_iou, previous=previous
        )
        notes += more
    head["notes"] = notes
    head["warnings"] = warnings
    run.tuiops_dir.mkdir(parents=True, exist_ok=True)
    md_path = run.tuiops_dir / f"pitstop-{idx}.md"
    json_path = run.tuiops_dir / f"pitstop-{idx}.json"
    atomic_write_text(
        json_path, json.dumps({"head": head, "body": body}, indent=2, ensure_ascii=False) + "\n"
    )
    text = _report_markdown(head, body)
    if notes:
        text += "\n" + "\n".join(f"> {n}" for n in notes) + "\n"
    atomic_write_text(md_path, text)
    worst_files = write_worst_lists(run.tuiops_dir, name, idx, body, conf)
    summary = {
        "head": head,
        "body": body,
        "report": str(md_path),
        "report_json": str(json_path),
        "worst_lists": worst_files,
    }
    with store.transaction() as conn:
        conn.execute("DELETE FROM train_pitstops WHERE train_id = ? AND idx = ?", (run.id, idx))
        conn.execute(
            "INSERT INTO train_pitstops(train_id, idx, epoch, created, weights, weights_sha256, best_epoch, "
            "run_name, report, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.id,
                idx,
                epoch,
                head["created"],
                str(weights),
                sha,
                best_epoch,
                det_run if run.dataset else None,
                str(md_path),
                json.dumps(summary, default=str),
            ),
        )
    return {
        "idx": idx,
        "epoch": epoch,
        "best_epoch": best_epoch,
        "weights": str(weights),
        "weights_sha256": sha,
        "run": det_run if run.dataset else None,
        "report": str(md_path),
        "report_json": str(json_path),
        "worst_lists": worst_files,
        "totals": {s: v["totals"] for s, v in body.get("splits", {}).items()},
        "notes": notes,
        "warnings": warnings,
    }


# -- status ----------------------------------------------------------------------------------------
def train_status(ws: Workspace, name: str) -> dict[str, Any]:
    """Where a run is: its record, its pitstops with their reports, and its results.csv state."""
    from tuiops.ops.monitor import ResultsFollower

    store = ws.store
    run = get_run(store, name)
    status = run.status
    if status in ACTIVE and run.pid is not None and not pid_alive(run.pid):
        status = "interrupted"
        _update_run(store, run.id, status=status, pid=None, error="the training process is gone")
    pits = []
    for idx, epoch, report, summary in store.execute(
        "SELECT idx, epoch, report, summary FROM train_pitstops WHERE train_id = ? ORDER BY idx", (run.id,)
    ):
        s = json.loads(summary or "{}")
        body = s.get("body") or {}
        pits.append(
            {
                "idx": idx,
                "epoch": epoch,
                "report": report,
                "run": (s.get("head") or {}).get("run"),
                "totals": {k: v.get("totals") for k, v in (body.get("splits") or {}).items()},
                "worst_lists": s.get("worst_lists"),
                "warnings": (s.get("head") or {}).get("warnings") or [],
            }
        )
    follower = ResultsFollower.for_path(run.results_csv)
    follower.poll()
    state = follower.state(
        epochs_total=run.epochs,
        pitstops=run.pitstops,
        pitstops_done=[p["epoch"] for p in pits],
        status=status,
    )
    nxt = {
        "pitstop": f"look at the report, fix labels, then `tuiops train resume {name}`",
        "paused": f"`tuiops train resume {name}`",
        "interrupted": f"`tuiops train resume {name}` continues from the last checkpoint",
        "failed": f"see {run.log}; then `tuiops train resume {name}`",
        "running": f"`tuiops train watch {name}`",
        "done": f"best weights: {run.save_dir / 'weights' / 'best.pt'}; reprocess with `tuiops detect`",
    }.get(status, "")
    return {
        "name": run.name,
        "status": status,
        "epoch": run.epoch,
        "epochs": run.epochs,
        "pitstops": run.pitstops,
        "pitstops_done": pits,
        "next_pitstop": state.next_pitstop,
        "data": str(run.data),
        "dataset": run.dataset,
        "model": run.model,
        "save_dir": str(run.save_dir),
        "checkpoint": str(run.checkpoint) if run.checkpoint else None,
        "best_weights": str(run.save_dir / "weights" / "best.pt")
        if (run.save_dir / "weights" / "best.pt").is_file()
        else None,
        "log": str(run.log),
        "created": run.created,
        "updated": run.updated,
        "error": run.error,
        "monitor": state.to_dict(),
        "next": nxt,
    }
