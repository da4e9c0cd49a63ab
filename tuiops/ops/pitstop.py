"""A pitstop's comparison and its warnings: the part of a pitstop after its detection run.

The detection run of a pitstop is stored from a low confidence (:data:`STORE_CONF`, as
ultralytics' val predicts), so that it is never empty because of a threshold; it is
compared with the dataset's labels and matched at the pitstop's own conf. A split with
no detection at that conf is a warning, and its worst list names no image (its "worst"
images would only be those with most labels). :func:`tuiops.ops.train.run_pitstop`
runs the whole pitstop.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.fsutil import atomic_write_text

if TYPE_CHECKING:
    import polars as pl

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
    for split, s in body.get("splits", {}).items():
        p = folder / f"pitstop-{idx}-worst-{split}.txt"
        if s["totals"].get("detections"):
            listed = "".join(f"{w['key']}\n" for w in s["worst_images"])
        else:
            listed = f"# none listed: no detection at conf >= {conf} in {split}, see the report\n"
        atomic_write_text(
            p, f"# worst {split} images at pitstop {idx} of {name} (missed+extra+wrong class)\n" + listed
        )
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
) -> tuple[dict[str, Any], list[str], list[str]]:
    """A pitstop's comparison of its detection run with the dataset's labels, at ``conf``.

    The run is stored at a low confidence (:data:`STORE_CONF`), so that it is never empty
    because of the threshold; it is compared and matched at ``conf``. ``images``: the
    dataset's item_id, key and split. Returns the report body, notes, and warnings: a
    split with no detection at ``conf`` (its worst images are then only those with most
    labels), with the conf that would give about as many detections as labels.
    """
    import polars as pl

    from tuiops.ops.dataset import dataset_info, effective_labels
    from tuiops.ops.train import compare_boxes, pitstop_report

    store = ws.store
    label_set = dataset_info(store, dataset).label_set
    labels = effective_labels(ws, dataset)
    stored = store.read_detections(det_run)
    dets = stored.filter(pl.col("score") >= conf)
    objs = compare_boxes(labels, dets, iou=match_iou)
    body = pitstop_report(objs, images.select("item_id", "key", "split"), ws.classes, previous=previous)
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
