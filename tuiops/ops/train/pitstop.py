"""A pitstop's comparison and its warnings: the part of a pitstop after its detection run.

The detection run of a pitstop is stored from a low confidence (:data:`STORE_CONF`, as
ultralytics' val predicts), so that it is never empty because of a threshold; it is
compared with the dataset's labels and matched at the pitstop's own conf. A split with
no detection at that conf is a warning, and its worst list names no image (its "worst"
images would only be those with most labels). :func:`tuiops.ops.train.run_pitstop`
runs the whole pitstop.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import NotFoundError, UsageError
from tuiops.fsutil import atomic_write_text, display_path
from tuiops.ops.base import CancelToken, ProgressFn
from tuiops.ops.train.records import copy_atomic, get_run
from tuiops.ops.train.report import REPORT_TOP, check_worst_by, compare_boxes, pitstop_report, report_markdown

if TYPE_CHECKING:
    import polars as pl

    from tuiops.ops.train.records import TrainRun
    from tuiops.store import Store
    from tuiops.workspace import Workspace


#: The confidence a pitstop's detection run is stored at (as ultralytics' val predicts),
#: whatever the conf it is compared and matched at.
STORE_CONF = 0.001


def write_worst_lists(
    folder: Path, name: str, idx: int, body: Mapping[str, Any], conf: float
) -> dict[str, str]:
    """Write ``pitstop-IDX-worst-SPLIT.txt`` (keys for ``--exclude @FILE``) per split; their paths.

    A split with no detection at ``conf`` lists no key: its "worst" images would only be
    those with most labels, and excluding them would drop good data.
    """
    out = {}
    chosen = (body.get("worst") or {}).get("by") or "missed+extra+wrong class"
    for split, s in body.get("splits", {}).items():
        p = folder / f"pitstop-{idx}-worst-{split}.txt"
        if s["totals"].get("detections"):
            listed = "".join(f"{w['key']}\n" for w in s["worst_images"])
        else:
            listed = f"# none listed: no detection at conf >= {conf} in {split}, see the report\n"
        atomic_write_text(p, f"# worst {split} images at pitstop {idx} of {name} ({chosen})\n" + listed)
        out[split] = str(p)
    return out


def pitstop_compare(
    ws: Workspace,
    dataset: str,
    det_run: str,
    images: pl.DataFrame,
    *,
    conf: float,
    match_iou: float = 0.5,
    previous: Mapping[str, Any] | None = None,
    previous_run: str | None = None,
    worst_by: str | None = None,
    worst_top: int | None = None,
) -> tuple[dict[str, Any], list[str], list[str]]:
    """A pitstop's comparison of its detection run with the dataset's labels, at ``conf``.

    The run is stored at a low confidence (:data:`STORE_CONF`), so that it is never empty
    because of the threshold; it is compared and matched at ``conf``. ``images``: the
    dataset's item_id, key and split. Returns the report body, notes, and warnings: a
    split with no detection at ``conf`` (its worst images are then only those with most
    labels), with the conf that would give about as many detections as labels.
    ``previous_run``: the previous pitstop's run; the body then holds ``compare``, this
    run against it on each split apart (`tuiops compare`).
    ``worst_by`` / ``worst_top``: the worst lists' condition and length (see
    :func:`~tuiops.ops.train.report.pitstop_report`; default: the top 20).
    """
    import polars as pl

    from tuiops.ops.dataset import dataset_info, effective_labels

    store = ws.store
    label_set = dataset_info(store, dataset).label_set
    labels = effective_labels(ws, dataset)
    stored = store.read_detections(det_run)
    dets = stored.filter(pl.col("score") >= conf)
    objs = compare_boxes(labels, dets, iou=match_iou)
    top = worst_top if worst_top is not None else (None if worst_by else REPORT_TOP)
    body = pitstop_report(
        objs,
        images.select("item_id", "key", "split"),
        ws.classes,
        previous=previous,
        top=top,
        worst_by=worst_by,
    )
    notes: list[str] = []
    note = _store_match(
        ws, label_set, det_run, splits=images.select("item_id", "split"), iou=match_iou, conf=conf
    )
    if note:
        notes.append(note)
    warnings: list[str] = []
    splits = images.select("item_id", "split")
    for split, s in body["splits"].items():
        t = s["totals"]
        if t.get("detections") or not t.get("images"):
            continue
        here = stored.join(splits.filter(pl.col("split") == split), on="item_id", how="semi")
        n_labels = int(t.get("labels") or 0)
        if here.height:
            scores = here["score"].sort(descending=True)
            hint = (
                f"the model's best score there is {scores[0]:.3f}; about {min(n_labels, scores.len()):,} "
                f"detections at conf >= {scores[max(min(n_labels, scores.len()) - 1, 0)]:.3f}"
            )
        else:
            hint = f"the model gives no detection there even at conf >= {STORE_CONF}"
        warnings.append(
            f"NO DETECTIONS at conf >= {conf} in {split} ({t['images']} images, {n_labels} labels): "
            f"its worst images are only the images with most labels, so its worst list is left empty; "
            f"{hint}; redo the pitstop with a lower --conf (`tuiops train report`) or train longer"
        )
    if previous_run is not None:
        from tuiops.ops.analysis import split_comparison

        body["compare"] = split_comparison(ws, label_set, previous_run, det_run, splits, conf=conf)
    return body, notes, warnings


def _store_match(
    ws: Workspace, label_set: str, run_name: str, *, splits: pl.DataFrame, iou: float, conf: float
) -> str | None:
    """Store the match tables (for browsing the objects) through the match op, where it is
    installed; returns a note saying what happened."""
    import importlib
    import inspect

    try:
        mod = importlib.import_module("tuiops.ops.match")
    except ImportError:
        return None
    fn = getattr(mod, "match", None)
    if fn is None:
        return None
    wanted = {"iou": iou, "conf": conf, "splits": splits, "name": run_name}
    try:
        params = inspect.signature(fn).parameters
        kwargs = {k: v for k, v in wanted.items() if k in params}
        inspect.signature(fn).bind(ws, label_set, run_name, **kwargs)
    except (TypeError, ValueError):
        return "the match op takes other arguments; run `tuiops match` by hand"
    from tuiops.errors import TuiopsError

    try:
        fn(ws, label_set, run_name, **kwargs)
    except TuiopsError as exc:
        return f"storing the match failed: {exc.message}"
    return (
        f"match {kwargs.get('name', run_name)!r} stored ({label_set} × {run_name}): `tuiops match` shows it"
    )


def _pitstop_point(
    store: Store, run: TrainRun, idx: int | None, epoch: int | None, best_epoch: int | None
) -> tuple[int, int, int | None]:
    """The pitstop to work on: the one given, or the run's last recorded one."""
    if idx is not None and epoch is not None:
        return idx, epoch, best_epoch
    prior = store.execute(
        "SELECT idx, epoch, best_epoch FROM train_pitstops WHERE train_id = ? ORDER BY idx DESC LIMIT 1",
        (run.id,),
    ).fetchone()
    if prior is None:
        raise NotFoundError(f"training run {run.name!r} has not stopped at a pitstop yet")
    return int(prior[0]), int(prior[1]), prior[2]


def _detect_and_compare(
    ws: Workspace,
    run: TrainRun,
    head: dict[str, Any],
    *,
    dataset: str,
    max_det: int,
    batch: int | None,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Detect with the pitstop's weights over the dataset's images, then compare with its labels."""
    import polars as pl

    from tuiops.ops.dataset import dataset_images, dataset_info
    from tuiops.ops.detect import detect

    store = ws.store
    name, idx, conf = run.name, head["idx"], head["conf"]
    info = dataset_info(store, dataset)
    head["label_set"] = info.label_set
    images = dataset_images(store, dataset)
    imgsz = int(run.args.get("imgsz", 640))
    detect(
        ws,
        Path(head["weights"]),
        head["run"],
        images=images.select(
            "item_id", "path", pl.col("width").alias("item_w"), pl.col("height").alias("item_h")
        ),
        conf=min(conf, STORE_CONF),
        imgsz=imgsz,
        batch=batch or int(run.args.get("batch", 16) or 16),
        max_det=max_det,
        device=run.args.get("device"),
        epoch=head["best_epoch"],
        replace=True,
        source=f"train:{name}",
        note=f"pitstop {idx} of training run {name} after epoch {head['epoch']}",
        progress=progress,
        cancel=cancel,
    )
    prev_row = store.execute(
        "SELECT summary, run_name FROM train_pitstops WHERE train_id = ? AND idx < ? ORDER BY idx DESC LIMIT 1",
        (run.id, idx),
    ).fetchone()
    previous = json.loads(prev_row[0]).get("body") if prev_row and prev_row[0] else None
    previous_run = (
        prev_row[1]
        if prev_row and prev_row[1] and store.one("SELECT 1 FROM runs WHERE name = ?", (prev_row[1],))
        else None
    )
    return pitstop_compare(
        ws,
        dataset,
        head["run"],
        images,
        conf=conf,
        match_iou=head["match_iou"],
        previous=previous,
        previous_run=previous_run,
        worst_by=head.get("worst_by"),
        worst_top=head.get("worst_top"),
    )


def _write_report(
    run: TrainRun, head: dict[str, Any], body: dict[str, Any], notes: list[str]
) -> dict[str, Any]:
    """Write the pitstop's report (JSON, Markdown) and worst lists; the summary the store keeps."""
    idx = head["idx"]
    run.tuiops_dir.mkdir(parents=True, exist_ok=True)
    md_path = run.tuiops_dir / f"pitstop-{idx}.md"
    json_path = run.tuiops_dir / f"pitstop-{idx}.json"
    atomic_write_text(
        json_path, json.dumps({"head": head, "body": body}, indent=2, ensure_ascii=False) + "\n"
    )
    text = report_markdown(head, body)
    if notes:
        text += "\n" + "\n".join(f"> {n}" for n in notes) + "\n"
    atomic_write_text(md_path, text)
    worst_files = write_worst_lists(run.tuiops_dir, run.name, idx, body, head["conf"])
    return {
        "head": head,
        "body": body,
        "report": str(md_path),
        "report_json": str(json_path),
        "worst_lists": worst_files,
    }


def _record_pitstop(store: Store, run: TrainRun, head: dict[str, Any], summary: dict[str, Any]) -> None:
    """Record the pitstop in ``train_pitstops``, replacing an earlier record of it."""
    idx = head["idx"]
    with store.transaction() as conn:
        conn.execute("DELETE FROM train_pitstops WHERE train_id = ? AND idx = ?", (run.id, idx))
        conn.execute(
            "INSERT INTO train_pitstops(train_id, idx, epoch, created, weights, weights_sha256, best_epoch, "
            "run_name, report, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.id,
                idx,
                head["epoch"],
                head["created"],
                head["weights"],
                head["weights_sha256"],
                head["best_epoch"],
                head["run"] if run.dataset else None,
                summary["report"],
                json.dumps(summary, default=str),
            ),
        )


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
    worst_by: str | None = None,
    worst_top: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """A pitstop's work for a stopped run: detect with the best weights, compare, report.

    Called by training at each pitstop; calling it again redoes the last pitstop's
    report (the detection run is replaced). The worst lists hold the ``worst_top`` (default
    20) images with most errors, or those that meet ``worst_by`` (a SQL condition on each
    image's tp, fp, fn, wrong_class, labels, detections, errors, precision, recall, f1),
    at most ``worst_top`` of them when it is given too. Returns the stored summary.
    """
    from tuiops.ops.detect import sha256_file
    from tuiops.store.db import utcnow

    if worst_by:
        check_worst_by(worst_by)
    if worst_top is not None and worst_top < 1:
        raise UsageError(f"--worst-top must be at least 1, not {worst_top}")
    store = ws.store
    run = get_run(store, name)
    idx, epoch, best_epoch = _pitstop_point(store, run, idx, epoch, best_epoch)
    best = run.save_dir / "weights" / "best.pt"
    if not best.is_file():
        raise NotFoundError(f"training run {name!r} has no best weights ({display_path(best)})")
    run.tuiops_dir.mkdir(parents=True, exist_ok=True)
    weights = run.tuiops_dir / f"pitstop-{idx}-best.pt"
    if not weights.is_file() or run.status == "pitstop":
        copy_atomic(best, weights)
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
        "worst_by": worst_by,
        "worst_top": worst_top,
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
        body, more, warnings = _detect_and_compare(
            ws, run, head, dataset=run.dataset, max_det=max_det, batch=batch, progress=progress, cancel=cancel
        )
        notes += more
    head["notes"] = notes
    head["warnings"] = warnings
    summary = _write_report(run, head, body, notes)
    _record_pitstop(store, run, head, summary)
    return {
        "idx": idx,
        "epoch": epoch,
        "best_epoch": best_epoch,
        "weights": str(weights),
        "weights_sha256": sha,
        "run": det_run if run.dataset else None,
        "report": summary["report"],
        "report_json": summary["report_json"],
        "worst_lists": summary["worst_lists"],
        "totals": {s: v["totals"] for s, v in body.get("splits", {}).items()},
        "notes": notes,
        "warnings": warnings,
    }
