"""Planning: a selection becomes a job's journal of file actions, nothing touched yet."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, UsageError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter
from tuiops.ops.fileops.model import (
    LABEL_LAYOUTS,
    LABEL_MODES,
    OPS,
    PATH_FIELDS,
    POLICIES,
    ConvertOptions,
    PlanResult,
)
from tuiops.ops.fileops.planframe import build_plan
from tuiops.ops.fileops.templates import parse_template, template_fields
from tuiops.ops.poollock import holding_pools
from tuiops.ops.select import LAYOUTS, Selection, SelectionSpec, select_files

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace


#: Selection columns a plan reads only to write label files from the store (or for ops built on it).
_SIZE_COLS = ("key", "width", "height", "img_w", "img_h", "mode")


def _job_kind(op: str) -> str:
    return f"fileops.{op}"


@holding_pools
def plan(
    ws: Workspace,
    op: str,
    selection: SelectionSpec | Selection,
    *,
    to: str | os.PathLike[str] | None = None,
    layout: str = "flat",
    name: str | None = None,
    labels: str = "carry",
    label_set: str | None = None,
    on_conflict: str = "fail",
    convert: ConvertOptions | None = None,
    follow_symlinks: bool = False,
    durable: bool = False,
    in_place: bool = False,
    label_layout: str = "beside",
    dry_run: bool = False,
    image_data: Callable[[pl.DataFrame], pl.Series] | None = None,
    extra_actions: Callable[[pl.DataFrame, pl.DataFrame, int], pl.DataFrame] | None = None,
    job_params: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    _keep: list[pl.DataFrame] | None = None,
    _job_id: int | None = None,
) -> PlanResult:
    """Plan ``op`` on a selection and record the plan as a job (nothing is touched).

    ``to``: the target folder (copy, move, convert). ``layout``: a preset of
    :data:`tuiops.ops.select.LAYOUTS` or a folder template (``{booru}/{fid_k}``);
    ``name``: the file-name template (default ``{name}``; for convert ``{stem}{ext}``
    with the new extension). ``labels``: ``carry`` label files from disk, ``none``, or
    write them from ``label_set`` as ``yolo``, ``voc`` or ``both``. ``label_layout``:
    ``beside`` (label files next to their image) or ``sibling`` (ultralytics: images
    under ``TO/images/LAYOUT/``, label files and classes.txt under ``TO/labels/LAYOUT/``).
    ``in_place`` (convert only, no ``to``): re-encode each image at its path, or beside it
    under the new extension when the format changes, the original going to the job's
    trash folder (undo restores it; label files are left alone). Raises
    :class:`ConflictError` when the policy is ``fail`` and there are conflicts (the
    refused plan stays recorded, for ``tuiops ops show``), unless ``dry_run``.

    For ops built on this one (``paint``, review exports): ``image_data(images)`` gives
    each image action's ``data`` (a ``paint`` action's drawing), ``extra_actions(images,
    label_actions, job_id)`` adds actions (written files, paintings) that are planned,
    checked, run and undone with the rest; ``job_params`` are recorded with the job.
    """

    t0 = time.perf_counter()
    labels, convert = _check_options(op, to, name, labels, on_conflict, convert, in_place, label_layout)
    from tuiops.ops.select import resolve_spec

    notes: list[str] = []
    spec = selection.spec if isinstance(selection, Selection) else resolve_spec(ws, selection, warnings=notes)
    label_set = label_set or spec.label_set
    if labels in ("yolo", "voc", "both") and not label_set:
        raise UsageError(f"--labels {labels} writes label files from a label set: give --set NAME")
    layout_t, name_t, layout_parts, name_parts, fields = _templates(op, layout, name, in_place)
    store = ws.store
    rep = Reporter(f"ops.{op}", progress, cancel)
    rep.update(0, "selecting", force=True)
    # the image's sizes and key are read only where label files are written from the store
    # or another op builds on the plan (a million rows of them are seconds of planning)
    lean = labels not in ("yolo", "voc", "both") and image_data is None and extra_actions is None
    sel, frame = _select(ws, selection, spec, label_set, fields, lean=lean)
    rep.check()
    params: dict[str, Any] = {
        "op": op,
        "to": os.fspath(to) if to is not None else None,
        "layout": layout_t,
        "name": name_t,
        "labels": labels,
        "label_set": label_set,
        "on_conflict": on_conflict,
        "convert": asdict(convert) if convert else None,
        "follow_symlinks": follow_symlinks,
        "durable": durable,
        "in_place": in_place,
        "label_layout": label_layout,
        # a tag search is recorded as its query (planned again from it after a kill)
        "selection": selection.to_dict()
        if isinstance(selection, SelectionSpec) and selection.tags and selection.keys is None
        else sel.spec.to_dict(),
        **(job_params or {}),
    }
    job_id = _open_job(store, op, params, _job_id)
    try:
        result = build_plan(
            ws,
            job_id,
            op,
            sel,
            frame,
            to,
            layout_parts,
            name_parts,
            fields,
            labels,
            label_set,
            on_conflict,
            convert,
            follow_symlinks,
            dry_run,
            rep,
            image_data,
            extra_actions,
            in_place=in_place,
            label_layout=label_layout,
            keep=_keep,
        )
    except BaseException:
        with store.transaction() as conn:
            conn.execute("DELETE FROM job_actions WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        raise
    result.warnings[:0] = notes + (selection.warnings if isinstance(selection, Selection) else [])
    result.elapsed = time.perf_counter() - t0
    if result.status == "refused" and not dry_run:
        raise _refused(job_id, result)
    return result


def _check_options(
    op: str,
    to: str | os.PathLike[str] | None,
    name: str | None,
    labels: str,
    on_conflict: str,
    convert: ConvertOptions | None,
    in_place: bool,
    label_layout: str,
) -> tuple[str, ConvertOptions | None]:
    """Refuse options that do not go together; returns the label mode and conversion to plan with."""
    if op not in (*OPS, "paint"):
        raise UsageError(f"unknown operation {op!r}; use one of {', '.join(OPS)}")
    if on_conflict not in POLICIES:
        raise UsageError(f"--on-conflict must be one of {', '.join(POLICIES)}, not {on_conflict!r}")
    if labels not in LABEL_MODES:
        raise UsageError(f"--labels must be one of {', '.join(LABEL_MODES)}, not {labels!r}")
    if label_layout not in LABEL_LAYOUTS:
        raise UsageError(f"--label-layout must be one of {', '.join(LABEL_LAYOUTS)}, not {label_layout!r}")
    if in_place:
        if op != "convert":
            raise UsageError("--in-place is for `ops convert` only")
        if to is not None:
            raise UsageError("`ops convert --in-place` keeps the files where they are: leave out --to")
        if on_conflict == "overwrite":
            raise UsageError(
                "`ops convert --in-place` does not overwrite other files",
                hint="use --on-conflict skip or rename for names the new extension would take",
            )
        if label_layout != "beside":
            raise UsageError("--label-layout sibling needs a target folder; --in-place leaves labels alone")
        labels = "none"
    elif op in ("copy", "move", "convert", "paint") and to is None:
        raise UsageError(f"`ops {op}` needs a target folder: --to DIR (or --in-place for convert)")
    if label_layout == "sibling" and op in ("rename", "delete"):
        raise UsageError(f"--label-layout sibling needs a target folder; `ops {op}` has none")
    if op == "rename" and not name:
        raise UsageError("`ops rename` needs a name template: --name '{booru}_{fid}{ext}'")
    if op == "convert":
        convert = convert or ConvertOptions()
        convert.check()
    return labels, convert


def _templates(
    op: str, layout: str, name: str | None, in_place: bool
) -> tuple[
    str, str, list[tuple[str, str | None, int | None]], list[tuple[str, str | None, int | None]], list[str]
]:
    """The folder and name templates of the plan, parsed, and the fields they name."""
    layout_t = (
        LAYOUTS.get(layout, layout) if op in ("copy", "move", "convert", "paint") and not in_place else ""
    )
    name_t = name or {"convert": "{stem}{ext}", "paint": "{stem}.jpg"}.get(op, "{name}")
    layout_parts = parse_template(layout_t)
    name_parts = parse_template(name_t)
    fields = template_fields(layout_t, name_t)
    return layout_t, name_t, layout_parts, name_parts, fields


def _select(
    ws: Workspace,
    selection: SelectionSpec | Selection,
    spec: SelectionSpec,
    label_set: str | None,
    fields: list[str],
    *,
    lean: bool,
) -> tuple[Selection, pl.DataFrame]:
    """The selection to plan and its frame, with every column planning reads (``lean``: without
    the image sizes and key, which only label files written from the store need)."""
    from tuiops.ops.select import view_columns

    base_cols = [
        "file_id",
        "pool_id",
        "relpath",
        "relpath_raw",
        "key",
        "item_id",
        "size",
        "width",
        "height",
        "img_w",
        "img_h",
        "mode",
        "status",
    ]
    if isinstance(selection, Selection):
        sel = selection
    else:
        probe_spec = SelectionSpec(**{**asdict(spec), "label_set": label_set})

        known = set(view_columns(probe_spec)) | set(PATH_FIELDS) | {"n"}
        bad = [f for f in fields if f not in known]
        if bad:
            hint = "fields: " + ", ".join(sorted(known))
            if any(f in ("top_class", "category", "top_det_class") for f in bad):
                hint = "{class} needs --set, {det_class} --run, {category} --match; " + hint
            raise UsageError(f"unknown template field(s): {', '.join('{' + b + '}' for b in bad)}", hint=hint)
        core = [c for c in base_cols if c not in _SIZE_COLS] if lean else base_cols
        want = core + [f for f in fields if f not in core and f not in PATH_FIELDS and f != "n"]
        sel = select_files(ws, probe_spec, columns=want)
    frame = sel.frame
    if frame.height == 0:  # an empty result carries no types of its own
        import polars as pl

        frame = frame.with_columns(
            pl.col(c).cast(pl.String) for c in ("relpath", "key", "mode", "status") if c in frame.columns
        )
    missing = [c for c in base_cols if c not in frame.columns]
    if missing:
        import polars as pl

        text = ("key", "mode")
        frame = frame.with_columns(
            pl.lit(None, pl.String if c in text else pl.Int64).alias(c) for c in missing
        )
    return sel, frame


def _open_job(store: Store, op: str, params: dict[str, Any], job_id: int | None) -> int:
    """The job the plan is written to: a new one, or a job killed while planning, emptied."""
    if job_id is None:
        job_id = store.job_start(_job_kind(op), params, None)
        store.execute("UPDATE jobs SET status = 'planning' WHERE id = ?", (job_id,))
    else:  # a job killed while planning, planned again (claimed by the caller)
        with store.transaction() as conn:
            conn.execute("DELETE FROM job_actions WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM job_marks WHERE job_id = ?", (job_id,))
    return job_id


def _refused(job_id: int, result: PlanResult) -> ConflictError:
    """The error of a plan refused for its conflicts, naming the kinds and a first example."""
    kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in result.conflicts.items())
    first = result.conflict_examples[0] if result.conflict_examples else None
    example = ""
    if first:  # a conflict at the target names the target, one at the source the source
        at_source = first["conflict"] in ("source_missing", "read_only_source", "symlink_outside")
        where = first["src"] if at_source or not first["dst"] else first["dst"]
        came = f" (from {first['src']})" if first["src"] and where != first["src"] else ""
        example = f"; e.g. {first['conflict'].replace('_', ' ')}: {where}{came}"
    return ConflictError(
        f"job {job_id} refused, nothing was touched: {kinds}{example}",
        hint=f"see `tuiops ops show {job_id} --conflicts`; choose --on-conflict skip|rename|overwrite",
    )
