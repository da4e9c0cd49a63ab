"""Training on this machine: ultralytics with the pitstop callbacks, the resumable checkpoint, resume."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from tuiops.fsutil import atomic_write_text, display_path
from tuiops.ops.base import CancelToken, ProgressEvent, ProgressFn, Reporter, pid_alive
from tuiops.ops.train.pitstop import run_pitstop
from tuiops.ops.train.records import (
    ACTIVE,
    NAME_RX,
    RESUME_NAME,
    TRAIN_DIR,
    TrainResult,
    TrainRun,
    copy_atomic,
    default_run_name,
    get_run,
    record_session,
    update_run,
)
from tuiops.ops.train.remote import resume_remote, train_remote
from tuiops.ops.train.report import check_worst_by

if TYPE_CHECKING:
    from tuiops.store import Store
    from tuiops.workspace import Workspace


#: Ultralytics arguments tuiops sets itself.
RESERVED_ARGS = frozenset(
    {"data", "epochs", "resume", "project", "name", "exist_ok", "save_dir", "mode", "model"}
)


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
        copy_atomic(Path(trainer.last), resume_pt)
        state.last_saved = e
        stopper = getattr(trainer, "stopper", None)
        state.best_epoch = int(getattr(stopper, "best_epoch", 0) or 0) or None
        update_run(store, run.id, epoch=e, checkpoint=str(resume_pt))
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
        update_run(store, run.id, status="paused", pid=None)
        where = ""
        if state.stopped_in is not None:
            e, done, nb = state.stopped_in
            where = f" (stopped during epoch {e}, batch {done}/{nb or '?'}; that epoch is done again)"
        raise Cancelled(
            f"training {run.name!r} paused after epoch {run.epoch}{where}",
            hint=f"`tuiops train resume {run.name}` continues from there",
        )
    if state.pitstop is not None:
        update_run(store, run.id, status="pitstop", pid=None)
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
        update_run(store, run.id, status="done", pid=None)
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
        update_run(store, run.id, status="running", pid=os.getpid(), job_id=j.id, error=None)
        record_session(store, run.id, started_epoch)

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
            update_run(store, run.id, status="interrupted", pid=None, error="interrupted")
            raise
        except BaseException as exc:
            update_run(store, run.id, status="failed", pid=None, error=str(exc)[:2000])
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


def _model_spec(model: str) -> str:
    """The model as ultralytics gets it: a weights file's resolved path, else the name (a yaml)."""
    model_spec = str(model)
    mp = Path(model_spec).expanduser()
    if mp.suffix == ".pt" or mp.exists():
        if not mp.is_file():
            raise NotFoundError(f"model file {display_path(mp)} does not exist")
        model_spec = str(mp.resolve())
    return model_spec


def _clear_name(store: Store, name: str, save_dir: Path, *, replace: bool) -> None:
    """Refuse a run name that is taken (record or folder); with ``replace``, delete what has it."""
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
    worst_by: str | None = None,
    worst_top: int | None = None,
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
    on this ``[hosts.NAME]`` machine over SSH (:mod:`tuiops.ops.train.remote`).
    ``worst_by`` / ``worst_top``: the worst lists of every pitstop of the run (see
    :func:`tuiops.ops.train.run_pitstop`), checked before anything starts.
    """
    from tuiops.store.db import utcnow

    store = ws.store
    if epochs < 1:
        raise UsageError(f"--epochs must be at least 1 (got {epochs})")
    pitstop_opts = _pitstop_options(pitstop_conf, pitstop_max_det, match_iou, worst_by, worst_top)
    data_yaml, dataset = _resolve_data(ws, data)
    name = name or default_run_name(store, dataset or data_yaml.parent.name)
    if not NAME_RX.match(name):
        raise UsageError(
            f"training run name {name!r} is not valid",
            hint="use letters, digits, '.', '_' and '-' (at most 64), starting with a letter or digit",
        )
    plan = pitstop_epochs(pitstops, epochs)
    model_spec = _model_spec(model)
    args: dict[str, Any] = dict(overrides or {})
    bad = sorted(set(args) & RESERVED_ARGS)
    if bad:
        raise UsageError(f"{bad[0]}= is set by tuiops; use the command's own option for it")
    for k, v in (("imgsz", imgsz), ("batch", batch), ("device", device)):
        if v is not None:
            args[k] = v
    nc = _yaml_class_count(data_yaml)
    save_dir = ws.root / TRAIN_DIR / name
    _clear_name(store, name, save_dir, replace=replace)
    if on is not None:
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


def _pitstop_options(
    conf: float, max_det: int, match_iou: float, worst_by: str | None, worst_top: int | None
) -> dict[str, Any]:
    """What every pitstop of a run uses, its worst lists checked before anything starts."""
    if worst_by:
        check_worst_by(worst_by)
    if worst_top is not None and worst_top < 1:
        raise UsageError(f"--worst-top must be at least 1, not {worst_top}")
    opts: dict[str, Any] = {"conf": conf, "max_det": max_det, "match_iou": match_iou}
    if worst_by:
        opts["worst_by"] = worst_by
    if worst_top is not None:
        opts["worst_top"] = worst_top
    return opts


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
        result = resume_remote(
            ws, run, dataset_summary=ds_summary, verbose=verbose, progress=progress, cancel=cancel
        )
        result.caches_removed = [str(p) for p in removed]
        return result
    assert ckpt is not None
    epoch = _checkpoint_epoch(ckpt)
    if epoch >= run.epochs:
        update_run(store, run.id, status="done", epoch=epoch)
        raise UsageError(f"training run {name!r} has finished all {run.epochs} epochs; nothing to resume")
    _trim_results(run.results_csv, epoch)
    update_run(store, run.id, epoch=epoch)
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
