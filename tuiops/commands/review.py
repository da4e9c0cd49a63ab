"""`tuiops review export|import|open`: review subsets for labelImg, and the readable forms of a file
operation's plan and run."""

from __future__ import annotations

from typing import Any

from tuiops.commands import (
    Choice,
    CommandContext,
    FloatRange,
    IntRange,
    Param,
    PathType,
    Result,
    command,
    json_param,
)


def render_plan(p: dict[str, Any]) -> str:
    """The readable form of a plan (``PlanResult.to_dict()``)."""
    head = f"job {p['job_id']}: {p['op']} {p['images']} file(s)"
    if p["labels"]:
        head += f" with {p['labels']} label file(s)"
    head += f"  [{p['status']}{', dry run' if p['dry_run'] else ''}]"
    lines = [head]
    lines.append("  actions:   " + ", ".join(f"{k} {v}" for k, v in p["by_action"].items()))
    lines.append(f"  to do:     {p['to_do']} action(s), {p['bytes'] / 1e6:.1f} MB; skipped {p['skipped']}")
    if p["conflicts"]:
        lines.append(
            f"  conflicts ({p['policy']}): "
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in p["conflicts"].items())
        )
        for c in p["conflict_examples"][:5]:
            arrow = f"{c['src']} → {c['dst']}" if c["src"] and c["dst"] else c["src"] or c["dst"]
            lines.append(f"    {c['conflict'].replace('_', ' ')} ({c['resolution']}): {arrow}")
    for w in p["warnings"]:
        lines.append(f"  warning: {w}")
    if p["sample"]:
        lines.append("  plan:")
        for s in p["sample"]:
            arrow = f"{s['src']} → {s['dst']}" if s["src"] else s["dst"]
            lines.append(f"    {s['action']:<7} {s['state']:<8} {arrow}")
        if p["actions"] > len(p["sample"]):
            lines.append(
                f"    … {p['actions'] - len(p['sample'])} more: `tuiops ops show {p['job_id']} --actions all`"
            )
    if p["dry_run"] and p["status"] == "planned":
        lines.append(f"  run it with `tuiops ops resume {p['job_id']}`")
    return "\n".join(lines)


def render_run(r: dict[str, Any]) -> str:
    """The readable form of a run, resume or undo (``RunResult.to_dict()``)."""
    text = (
        f"job {r['job_id']} {r['status']}: {r['done']} done, {r['skipped']} skipped, {r['failed']} failed"
        + (f", {r['undone']} undone" if r["undone"] else "")
        + f" in {r['elapsed']:.2f} s"
    )
    if r["done"] and r["elapsed"] > 0 and not r["undone"]:
        text += f" ({r['files_per_s']:.0f} files/s, {r['bytes'] / 1e6:.1f} MB)"
    lines = [text]
    if r["message"]:
        lines.append(f"  {r['message']}")
    for e in r["errors"][:10]:
        lines.append(f"  {e['action']} {e['src'] or e['dst']}: {e['error']}")
    return "\n".join(lines)


@command(
    "review export",
    Param("label_set", ("--set",), required=True, help="The label set (ground truth) to review."),
    Param("run", ("--run",), required=True, help="The detection run it is compared with."),
    Param(
        "kind",
        ("--kind",),
        type=Choice(("fp", "fn", "cls", "loc", "dup", "worst-images")),
        required=True,
        help="Which differences: images of the costliest fp/fn/cls/loc/dup objects, or the worst images (F1).",
    ),
    Param("top", ("--top",), type=IntRange(min=1), default=50, show_default=True, help="Images to export."),
    Param("to", ("--to",), required=True, type=PathType(file_okay=False), help="The review folder to write."),
    Param(
        "fmt",
        ("--format",),
        type=Choice(("yolo", "voc")),
        default="yolo",
        show_default=True,
        help="Label file format (YOLO writes classes.txt from the workspace class map).",
    ),
    Param(
        "dets",
        ("--dets",),
        type=Choice(("files", "overlays", "both", "none")),
        default="both",
        show_default=True,
        help="The run's detections: YOLO files with scores in detections/, drawn overlays in overlays/, both, none.",
    ),
    Param("match", ("--match",), help="Use this stored match (default SET__RUN, made when missing)."),
    Param("split", ("--split",), help="Only images of this split of the match."),
    Param(
        "conf",
        ("--conf",),
        type=FloatRange(0, 1),
        help="Leave out detections below (in detections/, overlays and the pre-labels; "
        "default 0, and 0.25 for the pre-labels).",
    ),
    Param(
        "prelabel",
        ("--prelabel",),
        metavar="RUN",
        help="Write this run's detections as the label files of the images without labels in the set "
        "(labelImg opens them pre-filled; `review import` counts what became of them).",
    ),
    Param(
        "nms",
        ("--nms",),
        type=FloatRange(0, 1, min_open=True),
        metavar="IOU",
        help="Greedy NMS per class at this IoU over the pre-labels (with --prelabel).",
    ),
    Param(
        "on_conflict",
        ("--on-conflict",),
        type=Choice(("fail", "skip", "rename", "overwrite")),
        default="fail",
        show_default=True,
        help="What to do when files exist in the folder already.",
    ),
    Param("dry_run", ("--dry-run",), is_flag=True, help="Plan and show; write nothing."),
    Param("quiet", ("-q", "--quiet"), is_flag=True, help="No progress output on stderr."),
    json_param(),
)
def review_export_cmd(
    ctx: CommandContext,
    label_set: str,
    run: str,
    kind: str,
    top: int,
    to: str,
    fmt: str,
    dets: str,
    match: str | None,
    split: str | None,
    conf: float | None,
    prelabel: str | None,
    nms: float | None,
    on_conflict: str,
    dry_run: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Write a folder labelImg opens directly with the worst images of a set × run match.

    Images are named KEY.ext, with the set's labels beside them; the manifest
    tuiops-review.json lets `tuiops review import` tell what was edited. The export is a
    journaled job (`tuiops ops undo JOB` removes it).

    \b
    Examples:
      tuiops review export --set master --run v41 --kind fn --top 100 --to review/fn
      tuiops review export --set master --run v41 --kind worst-images --format voc --to review/worst
      tuiops review export --set master --run v41 --kind fp --prelabel v41 --conf 0.25 --nms 0.6 --to review/new
    """
    from tuiops.ops.review import review_export

    ws = ctx.workspace
    with ctx.progress("review export", quiet=quiet or as_json) as on_progress:
        res = review_export(
            ws, label_set, run, kind=kind, to=to, top=top, fmt=fmt, dets=dets, match=match, split=split,
            conf=conf, prelabel=prelabel, nms=nms, on_conflict=on_conflict, dry_run=dry_run,
            progress=on_progress,
        )  # fmt: skip
    d = res.to_dict()

    def text() -> str:
        lines = [f"{res.images} image(s) of {kind} from match {res.match} → {res.to}", render_plan(d["plan"])]
        if d["run"]:
            lines.append(render_run(d["run"]))
        return "\n".join(lines)

    return Result(d, text, exit_code=0 if (d["run"] is None or d["run"]["status"] == "done") else 1)


@command(
    "review import",
    Param("folder", required=True, type=PathType(file_okay=False, exists=True)),
    Param(
        "label_set",
        ("--set",),
        help="The label set to update (default: the one the folder was exported from).",
    ),
    Param(
        "fmt", ("--format",), type=Choice(("yolo", "voc")), help="Label format (default: from the manifest)."
    ),
    Param(
        "add_classes",
        ("--add-classes",),
        is_flag=True,
        help="Accept new classes appended to classes.txt (or new VOC names).",
    ),
    Param(
        "force",
        ("--force",),
        is_flag=True,
        help="Apply even where the set changed in the store since the export.",
    ),
    Param("dry_run", ("--dry-run",), is_flag=True, help="Show the diff only; change nothing."),
    Param("note", ("--note",), help="A note for the revision record."),
    json_param(),
)
def review_import_cmd(
    ctx: CommandContext,
    folder: str,
    label_set: str | None,
    fmt: str | None,
    add_classes: bool,
    force: bool,
    dry_run: bool,
    note: str | None,
    as_json: bool,
) -> Result:
    """Read back an edited review folder: show the diff per image and apply it to the set.

    Boxes added, removed, moved and re-classed are counted per image; the changes go into
    the label set in one transaction with a revision record (`tuiops labels undo` takes
    it back). A classes.txt that re-orders or renames classes is refused. A label file
    with an error (a line that does not parse, a class id outside the class map, a class
    the map lacks) is listed with its line and left out: its image keeps its boxes, and
    the command exits with 4 after applying the other files. The summary's files add
    up: unchanged + changed + left out = label files.

    A folder exported with --prelabel also says, per class, what became of the run's
    proposals: accepted as predicted (every coordinate within 0.51 px, the rounding of
    the file), moved (a coordinate changed beyond that, IoU with the proposal still
    >= 0.5), re-classed, deleted, and boxes added. A pre-labelled file left as exported
    counts as untouched and changes nothing.
    """
    from tuiops.ops.review import review_import

    res = review_import(
        ctx.workspace, folder, label_set=label_set, fmt=fmt, add_classes=add_classes, force=force,
        dry_run=dry_run, note=note,
    )  # fmt: skip
    d = res.to_dict()

    def text() -> str:
        lines = [
            f"{res.folder}: {res.files} label file(s): {res.unchanged_files} unchanged, "
            f"{res.changed_images} changed, {res.error_files} left out with errors; boxes: "
            f"+{res.added} added, -{res.removed} removed, {res.moved} moved, {res.recls} re-classed"
        ]
        for r in res.per_image[:50]:
            lines.append(
                f"  {r['key']:<30} +{r['added']} -{r['removed']} ~{r['moved']} moved, {r['recls']} re-classed"
            )
        if res.prelabel is not None:
            from tuiops.ops.prelabel import accounting_lines

            a, t = res.prelabel, res.prelabel["totals"]
            lines.append(
                f"pre-labels of run {a['run']}: {a['reviewed']} of {a['files']} file(s) reviewed, "
                f"{a['untouched']} untouched, {a['left_out']} left out; of {t['predicted']} proposal(s) "
                f"{t['accepted']} accepted, {t['moved']} moved, {t['recls']} re-classed, {t['deleted']} deleted; "
                f"{t['added']} box(es) added"
            )
            if a["classes"]:
                lines.extend(accounting_lines(a))
        for p in res.problems[:20]:
            lines.append(f"  problem: {p}")
        if len(res.problems) > 20:
            lines.append(f"  … and {len(res.problems) - 20} more problem(s) (--json lists them all)")
        if res.applied:
            lines.append(
                f"applied to {res.label_set!r} as revision {res.revision} "
                f"(`tuiops labels undo --set {res.label_set} {res.revision}` takes it back)"
            )
        elif res.changed_images:
            lines.append("dry run: nothing applied" if dry_run else "nothing applied")
        return "\n".join(lines)

    return Result(d, text, exit_code=4 if res.error_files else 0)


@command(
    "review open",
    Param("folder", required=True, type=PathType(file_okay=False, exists=True)),
    Param("no_wait", ("--no-wait",), is_flag=True, help="Start the editor and return at once."),
)
def review_open_cmd(ctx: CommandContext, folder: str, no_wait: bool) -> Result:
    """Open a review folder in the label editor ([editor] command in tuiops.toml; labelImg by default).

    The command may use {dir} (the folder), {classes} (its classes.txt) and {image}
    (its first image).
    """
    from tuiops.ops.review_open import review_open

    rc = review_open(ctx.workspace, folder, wait=not no_wait)
    return Result({"folder": folder, "exit_code": rc}, None, exit_code=rc, raw=True)
