"""`tuiops labels import|export|revisions|undo` and `tuiops dets import|export`: lossless label I/O."""

from __future__ import annotations

from typing import Any

import click

from tuiops.cli import cli, emit, get_workspace, json_option, progress_reporter

_TOL_HELP = (
    "How far a box may lie outside its image and still be kept as written: "
    "N% of the side, Npx, or both as N%,Npx (the larger wins)."
)


def _import_options(f: Any) -> Any:
    """Options shared by `labels import` and `dets import`."""
    opts = [
        click.option(
            "--add-classes",
            is_flag=True,
            help="Append the class names the workspace map lacks, in the names file's order (ids never change). "
            "Not needed for the first import into an empty class map: that map takes the file's classes.",
        ),
        click.option(
            "--strict", is_flag=True, help="Reject the whole import on any problem (nothing is stored)."
        ),
        click.option("--replace", is_flag=True, help="Replace an existing set/run of that name."),
        click.option("--tolerance", default="0.5%,2px", show_default=True, help=_TOL_HELP),
        click.option("--note", help="A note stored with the set/run."),
        click.option(
            "--show",
            "show",
            type=int,
            default=50,
            show_default=True,
            help="Print at most this many problems (0: all; --json always has all).",
        ),
        click.option("-q", "--quiet", is_flag=True, help="No progress output."),
        json_option,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _report_import(result: Any, as_json: bool, show: int) -> None:
    """Print an import's problems (stderr) and summary (stdout)."""
    if as_json:
        emit(result.to_dict(), True)
        return
    lines = result.problem_lines(None if show <= 0 else show)
    for line in lines:
        click.echo(line, err=True)
    if result.problem_count > len(lines):
        click.echo(
            f"… and {result.problem_count - len(lines)} more problem(s) (--show 0 or --json lists all)",
            err=True,
        )
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    if not result.imported:
        return
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
    emit(result.to_dict(), False, text=text)


def _run_import(fn: Any, as_json: bool, show: int, quiet: bool, label: str, **kwargs: Any) -> None:
    from tuiops.ops.labels import ImportRejected, Tolerance

    ws = get_workspace()
    kwargs["tolerance"] = Tolerance.parse(kwargs.pop("tolerance"))
    try:
        with progress_reporter(label, quiet=quiet or as_json) as progress:
            result = fn(ws, progress=progress, **kwargs)
    except ImportRejected as exc:
        _report_import(exc.result, as_json, show)
        raise
    _report_import(result, as_json, show)


def _naming_options(f: Any) -> Any:
    """The --names and --ids options shared by label and detection exports."""
    f = click.option(
        "--ids",
        type=click.Choice(["source", "tuiops", "item"]),
        default="source",
        show_default=True,
        help="COCO ids: source keeps the image, category and annotation ids of the imported COCO file "
        "(tuiops' numbering where it has none, e.g. data from YOLO or VOC); tuiops (or item) writes "
        "item ids, class id + 1 and 1..N.",
    )(f)
    return click.option(
        "--names",
        type=click.Choice(["source", "key"]),
        default="source",
        show_default=True,
        help="File names: the imported file's path (keeping sub-folders), else the key; or always the key.",
    )(f)


@cli.group("labels")
def labels_group() -> None:
    """Import and export label sets: YOLO txt, Pascal VOC XML, COCO JSON, losslessly.

    Images are matched by image key (the label file's stem, or a COCO file_name) and
    must be in a scanned pool. Class names map to the workspace class map by name.
    """


@labels_group.command("import")
@click.argument("src", type=click.Path())
@click.option("--set", "set_name", required=True, help="Name of the label set to create.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yolo", "voc", "coco"]),
    help="Source format (default: from the file suffix, or the files in the folder).",
)
@click.option(
    "--classes",
    "classes_file",
    type=click.Path(dir_okay=False),
    help="YOLO: classes.txt or data.yaml naming the ids (default: one in SRC; without one, ids are workspace ids).",
)
@_import_options
def labels_import(
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
) -> None:
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

    _run_import(
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


@labels_group.command("export")
@click.option("--set", "set_name", required=True, help="Name of the label set to export.")
@click.option(
    "--format", "fmt", type=click.Choice(["yolo", "voc", "coco"]), required=True, help="Format to write."
)
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(),
    help="Folder for yolo/voc (one file per image), file for coco.",
)
@click.option("--overwrite", is_flag=True, help="Replace files that exist already.")
@_naming_options
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@json_option
def labels_export(
    set_name: str, fmt: str, to: str, overwrite: bool, names: str, ids: str, quiet: bool, as_json: bool
) -> None:
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

    ws = get_workspace()
    with progress_reporter("labels export", quiet=quiet or as_json) as progress:
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
    emit(result.to_dict(), as_json, text=text)


@labels_group.command("revisions")
@click.option("--set", "set_name", required=True, help="Name of the label set.")
@click.option(
    "--limit", type=int, default=50, show_default=True, help="How many of the newest revisions to list."
)
@json_option
def labels_revisions(set_name: str, limit: int, as_json: bool) -> None:
    """List the revisions of a label set, newest first (triage decisions, undos, review imports).

    \b
    Examples:
      tuiops labels revisions --set master
      tuiops labels revisions --set master --limit 5 --json
    """
    from tuiops.ops.triage import list_revisions

    ws = get_workspace()
    frame = list_revisions(ws.store, set_name, limit=limit)
    rows = frame.to_dicts()
    lines = [
        f"{r['id']:>6}  {r['created']}  {(r['action'] or r['kind'] or r['source'] or ''):<8} "
        f"{r['key'] or '':<24} {r['note'] or ''}"
        + (f"  (undone by {r['undone_by']})" if r["undone_by"] else "")
        for r in rows
    ]
    emit(rows, as_json, text="\n".join(lines) if lines else f"label set {set_name!r} has no revisions")


@labels_group.command("undo")
@click.option("--set", "set_name", required=True, help="Name of the label set.")
@click.argument("revision", type=int, required=False)
@json_option
def labels_undo(set_name: str, revision: int | None, as_json: bool) -> None:
    """Undo a triage decision or review import of a label set (default: the newest one not undone yet).

    The inverse is stored as a new revision. Refused when the rows the revision wrote
    changed since (undo the later revisions first).

    \b
    Examples:
      tuiops labels undo --set master
      tuiops labels undo --set master 12
    """
    from tuiops.ops.triage import undo

    ws = get_workspace()
    result = undo(ws.store, set_name, revision)
    emit(result.to_dict(), as_json, text=result.summary())


@cli.group("dets")
def dets_group() -> None:
    """Import and export detection runs (boxes with confidence and lineage)."""


@dets_group.command("import")
@click.argument("src", type=click.Path())
@click.option("--run", "run_name", required=True, help="Name of the detection run to create.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yolo", "coco"]),
    help="yolo: .txt with a 6th confidence column; coco: results JSON (default: from SRC).",
)
@click.option(
    "--images",
    "images_file",
    type=click.Path(dir_okay=False),
    help="COCO: the file with the images and categories a results list refers to.",
)
@click.option(
    "--classes",
    "classes_file",
    type=click.Path(dir_okay=False),
    help="YOLO: classes.txt or data.yaml naming the ids (default: one in SRC; without one, ids are workspace ids).",
)
@click.option(
    "--weights",
    type=click.Path(dir_okay=False),
    help="Weights file of the run (path and sha256 are recorded).",
)
@click.option("--conf", type=float, help="Confidence threshold the run used.")
@click.option("--iou", type=float, help="NMS IoU threshold the run used.")
@click.option("--epoch", type=int, help="Training epoch of the weights.")
@click.option(
    "--covers",
    help="Label set whose every image the run processed: its images without a file had no detections.",
)
@click.option(
    "--clip",
    is_flag=True,
    help="Clip every detection to its image (the clipped ones are counted; one left empty is skipped).",
)
@click.option(
    "--drop-outside",
    is_flag=True,
    help="Skip (and list) detections outside the image by more than --tolerance, as labels are.",
)
@_import_options
def dets_import(
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
) -> None:
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
    _run_import(
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


@dets_group.command("export")
@click.option("--run", "run_name", required=True, help="Name of the detection run to export.")
@click.option("--format", "fmt", type=click.Choice(["yolo", "coco"]), required=True, help="Format to write.")
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(),
    help="Folder for yolo (one file per image), results file for coco.",
)
@click.option(
    "--images-to",
    type=click.Path(dir_okay=False),
    help="COCO: where to write the images and categories (default: TO's name + _images.json).",
)
@click.option("--overwrite", is_flag=True, help="Replace files that exist already.")
@_naming_options
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@json_option
def dets_export(
    run_name: str,
    fmt: str,
    to: str,
    images_to: str | None,
    overwrite: bool,
    names: str,
    ids: str,
    quiet: bool,
    as_json: bool,
) -> None:
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

    ws = get_workspace()
    with progress_reporter("dets export", quiet=quiet or as_json) as progress:
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
    emit(
        result.to_dict(),
        as_json,
        text=f"exported detection run {run_name!r} ({fmt}): {result.images} image(s), "
        f"{result.boxes} box(es), {result.files} file(s) to {result.target}",
    )
