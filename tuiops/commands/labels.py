"""`tuiops labels import|export|revisions|undo` and `tuiops dets import|export`: lossless label I/O."""

from __future__ import annotations

import sys
from typing import Any

from tuiops.commands import (
    Choice,
    CommandContext,
    Float,
    Int,
    Param,
    PathType,
    Result,
    command,
    json_param,
    quiet_param,
)

_TOL_HELP = (
    "How far a box may lie outside its image and still be kept as written: "
    "N% of the side, Npx, or both as N%,Npx (the larger wins)."
)

#: Options shared by `labels import` and `dets import`.
IMPORT_PARAMS = (
    Param(
        "add_classes",
        ("--add-classes",),
        is_flag=True,
        help="Append the class names the workspace map lacks, in the names file's order (ids never change). "
        "Not needed for the first import into an empty class map: that map takes the file's classes.",
    ),
    Param(
        "strict",
        ("--strict",),
        is_flag=True,
        help="Reject the whole import on any problem (nothing is stored).",
    ),
    Param("replace", ("--replace",), is_flag=True, help="Replace an existing set/run of that name."),
    Param("tolerance", ("--tolerance",), default="0.5%,2px", show_default=True, help=_TOL_HELP),
    Param("note", ("--note",), help="A note stored with the set/run."),
    Param(
        "show",
        ("--show",),
        type=Int(),
        default=50,
        show_default=True,
        help="Print at most this many problems (0: all; --json always has all).",
    ),
    quiet_param(),
    json_param(),
)

#: The --names and --ids options shared by label and detection exports.
NAMING_PARAMS = (
    Param(
        "names",
        ("--names",),
        type=Choice(("source", "key")),
        default="source",
        show_default=True,
        help="File names: the imported file's path (keeping sub-folders), else the key; or always the key.",
    ),
    Param(
        "ids",
        ("--ids",),
        type=Choice(("source", "tuiops", "item")),
        default="source",
        show_default=True,
        help="COCO ids: source keeps the image, category and annotation ids of the imported COCO file "
        "(tuiops' numbering where it has none, e.g. data from YOLO or VOC); tuiops (or item) writes "
        "item ids, class id + 1 and 1..N.",
    ),
)


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _report_import(result: Any, as_json: bool, show: int) -> Result:
    """Print an import's problems (stderr); its summary is the result's text."""
    if as_json:
        return Result(result.to_dict())
    lines = result.problem_lines(None if show <= 0 else show)
    for line in lines:
        _err(line)
    if result.problem_count > len(lines):
        _err(f"… and {result.problem_count - len(lines)} more problem(s) (--show 0 or --json lists all)")
    for w in result.warnings:
        _err(f"warning: {w}")
    if not result.imported:
        return Result(result.to_dict(), raw=True)
    what = "label set" if result.kind == "labels" else "detection run"
    text = (
        f"imported {what} {result.name!r} from {result.source} ({result.fmt}): "
        f"{result.images} image(s), {result.boxes} box(es)"
    )
    if result.problem_count:
        text += (
            f"\n  skipped {result.files_skipped} file(s) and {result.boxes_skipped} box(es): "
            f"{result.problem_count} problem(s) (listed on stderr)"
        )
    if result.images_without_boxes:
        text += (
            f"\n  left out {result.images_without_boxes} image(s) whose every box had a problem "
            "(not taken as images without objects)"
        )
    if result.kind == "dets" and result.boxes_outside:
        how = {"keep": "kept as written", "clip": "clipped", "drop": "skipped"}[result.outside]
        text += f"\n  {result.boxes_outside} detection(s) outside the image beyond the tolerance: {how}"
    if result.kind == "dets" and result.boxes_clipped:
        text += f"\n  {result.boxes_clipped} detection(s) clipped to the image"
    if result.added_classes:
        how = "the empty class map took" if result.classes_adopted else "added classes:"
        text += f"\n  {how} {', '.join(result.added_classes)}"
    if result.names_file:
        text += f"\n  class names from {result.names_file}"
    return Result(result.to_dict(), text)


def _run_import(
    ctx: CommandContext, fn: Any, as_json: bool, show: int, quiet: bool, label: str, **kwargs: Any
) -> Result:
    from tuiops.ops.labels import ImportRejected, Tolerance

    ws = ctx.workspace
    kwargs["tolerance"] = Tolerance.parse(kwargs.pop("tolerance"))
    try:
        with ctx.progress(label, quiet=quiet or as_json) as progress:
            result = fn(ws, progress=progress, **kwargs)
    except ImportRejected as exc:
        rejected = _report_import(exc.result, as_json, show)
        rejected.error = exc
        return rejected
    return _report_import(result, as_json, show)


@command(
    "labels import",
    Param("src", required=True, type=PathType()),
    Param("set_name", ("--set",), required=True, help="Name of the label set to create."),
    Param(
        "fmt",
        ("--format",),
        type=Choice(("yolo", "voc", "coco")),
        help="Source format (default: from the file suffix, or the files in the folder).",
    ),
    Param(
        "classes_file",
        ("--classes",),
        type=PathType(dir_okay=False),
        help="YOLO: classes.txt or data.yaml naming the ids (default: one in SRC; without one, ids are workspace ids).",
    ),
    *IMPORT_PARAMS,
)
def labels_import(
    ctx: CommandContext,
    src: str,
    set_name: str,
    fmt: str | None,
    classes_file: str | None,
    add_classes: bool,
    strict: bool,
    replace: bool,
    tolerance: str,
    note: str | None,
    show: int,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Import a label set from SRC: a folder of YOLO .txt or VOC .xml files, or a COCO JSON file.

    Bad lines (wrong field count, NaN, unknown class id, a box outside the image beyond
    --tolerance, a label without an image in the store) are listed as file:line: message
    on stderr and skipped; --strict rejects the whole import instead. An import is one
    transaction: stored completely or not at all. An empty YOLO file (or one of blank
    lines only) is an image with no objects; a file whose every box has a problem is
    left out and counted apart, never taken as one.

    The first import into a workspace whose class map is empty fills the map with the
    file's classes (classes.txt/data.yaml order, COCO categories' order, VOC names as they
    first appear); after that the map only grows with --add-classes.

    \b
    Examples:
      tuiops labels import data/labels --set master --format yolo
      tuiops labels import ann/ --set train-v41 --format voc --strict
      tuiops labels import instances.json --set coco --add-classes --json
    """
    from tuiops.ops.labels import import_labels

    return _run_import(
        ctx,
        import_labels,
        as_json,
        show,
        quiet,
        "labels import",
        src=src,
        name=set_name,
        fmt=fmt,
        classes_file=classes_file,
        add_classes=add_classes,
        strict=strict,
        replace=replace,
        tolerance=tolerance,
        note=note,
    )


@command(
    "labels export",
    Param("set_name", ("--set",), required=True, help="Name of the label set to export."),
    Param("fmt", ("--format",), type=Choice(("yolo", "voc", "coco")), required=True, help="Format to write."),
    Param(
        "to",
        ("--to",),
        required=True,
        type=PathType(),
        help="Folder for yolo/voc (one file per image), file for coco.",
    ),
    Param("overwrite", ("--overwrite",), is_flag=True, help="Replace files that exist already."),
    *NAMING_PARAMS,
    quiet_param(),
    json_param(),
)
def labels_export(
    ctx: CommandContext,
    set_name: str,
    fmt: str,
    to: str,
    overwrite: bool,
    names: str,
    ids: str,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Write a label set as YOLO txt (+ classes.txt), Pascal VOC XML or COCO JSON.

    Every image of the set gets a file, also those with no boxes (an empty .txt).
    Files are written to a staging folder and renamed into place: a failure leaves
    nothing half-written. Existing files are kept unless --overwrite.

    \b
    Examples:
      tuiops labels export --set master --format yolo --to out/labels
      tuiops labels export --set master --format coco --to out/instances.json
    """
    from tuiops.ops.labels import export_labels

    ws = ctx.workspace
    with ctx.progress("labels export", quiet=quiet or as_json) as progress:
        result = export_labels(
            ws, set_name, fmt, to, overwrite=overwrite, names=names, ids=ids, progress=progress
        )
    text = (
        f"exported label set {set_name!r} ({fmt}): {result.images} image(s), "
        f"{result.boxes} box(es), {result.files} file(s) to {result.target}"
    )
    if result.not_carried:
        lost = ", ".join(f"{k} {n}" for k, n in result.not_carried.items())
        text += (
            f"\n  warning: {fmt} cannot hold what some boxes' source states; not written: {lost} (box counts)"
        )
    return Result(result.to_dict(), text)


@command(
    "labels revisions",
    Param("set_name", ("--set",), required=True, help="Name of the label set."),
    Param(
        "limit",
        ("--limit",),
        type=Int(),
        default=50,
        show_default=True,
        help="How many of the newest revisions to list.",
    ),
    json_param(),
)
def labels_revisions(ctx: CommandContext, set_name: str, limit: int, as_json: bool) -> Result:
    """List the revisions of a label set, newest first (triage decisions, undos, review imports).

    \b
    Examples:
      tuiops labels revisions --set master
      tuiops labels revisions --set master --limit 5 --json
    """
    from tuiops.ops.triage import list_revisions

    ws = ctx.workspace
    frame = list_revisions(ws.store, set_name, limit=limit)
    from tuiops.ops.prelabel import accounting_lines, revision_accounts

    rows = frame.to_dicts()
    accounts = revision_accounts(ws.store, set_name, [r["id"] for r in rows])
    lines = []
    for r in rows:
        lines.append(
            f"{r['id']:>6}  {r['created']}  {(r['action'] or r['kind'] or r['source'] or ''):<8} "
            f"{r['key'] or '':<24} {r['note'] or ''}"
            + (f"  (undone by {r['undone_by']})" if r["undone_by"] else "")
        )
        r["prelabel"] = accounts.get(r["id"])
        if r["prelabel"] is not None:  # what became of the proposals of a pre-labelled review
            lines.extend(accounting_lines(r["prelabel"], indent="        "))
    return Result(rows, "\n".join(lines) if lines else f"label set {set_name!r} has no revisions")


@command(
    "labels undo",
    Param("set_name", ("--set",), required=True, help="Name of the label set."),
    Param("revision", type=Int()),
    json_param(),
)
def labels_undo(ctx: CommandContext, set_name: str, revision: int | None, as_json: bool) -> Result:
    """Undo a triage decision or review import of a label set (default: the newest one not undone yet).

    The inverse is stored as a new revision. Refused when the rows the revision wrote
    changed since (undo the later revisions first).

    \b
    Examples:
      tuiops labels undo --set master
      tuiops labels undo --set master 12
    """
    from tuiops.ops.triage import undo

    result = undo(ctx.workspace.store, set_name, revision)
    return Result(result.to_dict(), result.summary())


@command(
    "dets import",
    Param("src", required=True, type=PathType()),
    Param("run_name", ("--run",), required=True, help="Name of the detection run to create."),
    Param(
        "fmt",
        ("--format",),
        type=Choice(("yolo", "coco")),
        help="yolo: .txt with a 6th confidence column; coco: results JSON (default: from SRC).",
    ),
    Param(
        "images_file",
        ("--images",),
        type=PathType(dir_okay=False),
        help="COCO: the file with the images and categories a results list refers to.",
    ),
    Param(
        "classes_file",
        ("--classes",),
        type=PathType(dir_okay=False),
        help="YOLO: classes.txt or data.yaml naming the ids (default: one in SRC; without one, ids are workspace ids).",
    ),
    Param(
        "weights",
        ("--weights",),
        type=PathType(dir_okay=False),
        help="Weights file of the run (path and sha256 are recorded).",
    ),
    Param("conf", ("--conf",), type=Float(), help="Confidence threshold the run used."),
    Param("iou", ("--iou",), type=Float(), help="NMS IoU threshold the run used."),
    Param("epoch", ("--epoch",), type=Int(), help="Training epoch of the weights."),
    Param(
        "covers",
        ("--covers",),
        help="Label set whose every image the run processed: its images without a file had no detections.",
    ),
    Param(
        "clip",
        ("--clip",),
        is_flag=True,
        help="Clip every detection to its image (the clipped ones are counted; one left empty is skipped).",
    ),
    Param(
        "drop_outside",
        ("--drop-outside",),
        is_flag=True,
        help="Skip (and list) detections outside the image by more than --tolerance, as labels are.",
    ),
    *IMPORT_PARAMS,
)
def dets_import(
    ctx: CommandContext,
    src: str,
    run_name: str,
    fmt: str | None,
    images_file: str | None,
    classes_file: str | None,
    weights: str | None,
    conf: float | None,
    iou: float | None,
    epoch: int | None,
    covers: str | None,
    clip: bool,
    drop_outside: bool,
    add_classes: bool,
    strict: bool,
    replace: bool,
    tolerance: str,
    note: str | None,
    show: int,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Import a detection run from SRC: YOLO .txt files with a confidence column, or COCO JSON.

    A COCO results list ([{image_id, category_id, bbox, score}]) needs --images naming
    the COCO file with its images and categories; a full COCO dict whose annotations
    have a score needs nothing else. Problems are handled as in `tuiops labels import`.

    A detection is a measurement: one lying outside its image (detectors of other
    frameworks do not clip) is kept as written by default and counted in the summary
    ("outside the image"); --clip clips them, --drop-outside skips them.
    COCO files keep their image, category and annotation ids for export.

    \b
    Examples:
      tuiops dets import runs/predict/labels --run v41 --format yolo --weights best.pt --conf 0.25
      tuiops dets import results.json --images instances.json --run v41-coco
    """
    from tuiops.errors import UsageError
    from tuiops.ops.labels import import_detections

    if clip and drop_outside:
        raise UsageError("--clip and --drop-outside exclude each other", hint="give one of them")
    return _run_import(
        ctx,
        import_detections,
        as_json,
        show,
        quiet,
        "dets import",
        src=src,
        name=run_name,
        fmt=fmt,
        images_file=images_file,
        classes_file=classes_file,
        add_classes=add_classes,
        strict=strict,
        replace=replace,
        tolerance=tolerance,
        weights=weights,
        conf=conf,
        iou=iou,
        epoch=epoch,
        covers=covers,
        outside="clip" if clip else "drop" if drop_outside else "keep",
        note=note,
    )


@command(
    "dets export",
    Param("run_name", ("--run",), required=True, help="Name of the detection run to export."),
    Param("fmt", ("--format",), type=Choice(("yolo", "coco")), required=True, help="Format to write."),
    Param(
        "to",
        ("--to",),
        required=True,
        type=PathType(),
        help="Folder for yolo (one file per image), results file for coco.",
    ),
    Param(
        "images_to",
        ("--images-to",),
        type=PathType(dir_okay=False),
        help="COCO: where to write the images and categories (default: TO's name + _images.json).",
    ),
    Param("overwrite", ("--overwrite",), is_flag=True, help="Replace files that exist already."),
    *NAMING_PARAMS,
    quiet_param(),
    json_param(),
)
def dets_export(
    ctx: CommandContext,
    run_name: str,
    fmt: str,
    to: str,
    images_to: str | None,
    overwrite: bool,
    names: str,
    ids: str,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Write a detection run as YOLO txt with a confidence column, or COCO results JSON.

    COCO keeps the image and category ids of the COCO file the run was imported from
    (--ids source, the default); a run from YOLO files takes those of the label set
    imported from COCO that shares the most images with it, so pycocotools reads the
    results with your own ground-truth file.

    \b
    Examples:
      tuiops dets export --run v41 --format yolo --to out/v41
      tuiops dets export --run v41 --format coco --to out/v41.json
    """
    from tuiops.ops.labels import export_detections

    ws = ctx.workspace
    with ctx.progress("dets export", quiet=quiet or as_json) as progress:
        result = export_detections(
            ws,
            run_name,
            fmt,
            to,
            overwrite=overwrite,
            names=names,
            ids=ids,
            images_to=images_to,
            progress=progress,
        )
    return Result(
        result.to_dict(),
        f"exported detection run {run_name!r} ({fmt}): {result.images} image(s), "
        f"{result.boxes} box(es), {result.files} file(s) to {result.target}",
    )
