"""`tuiops select`, `tuiops paint` and batch file operations: `tuiops ops copy|move|rename|delete|convert|resume|undo|list|purge|forget`."""

from __future__ import annotations

import inspect
from typing import Any

from tuiops.commands import (
    Choice,
    CommandContext,
    FloatRange,
    Int,
    IntRange,
    Param,
    PathType,
    Result,
    command,
    json_param,
)
from tuiops.commands.review import render_plan, render_run

FILES_AT_ONCE = (
    "Files handled at once: threads for a small job, worker processes (one per core, at most "
    "this many) from 1,000 file actions on."
)
#: The options that say which files a command works on.
SELECTION_PARAMS = (
    Param("where", ("--where",), help="SQL condition over the selection view (see `tuiops select --help`)."),
    Param(
        "keys_file",
        ("--keys",),
        type=PathType(dir_okay=False, allow_dash=True),
        help="File of image keys or file names, one per line ('-' reads stdin).",
    ),
    Param(
        "tags",
        ("--tags",),
        help='Booru tag search over the images\' post metadata, e.g. "1girl solo -monochrome rating:s" '
        "(`tuiops meta import`; grammar: `tuiops meta search --help`).",
    ),
    Param("selection_name", ("--selection",), help="A saved selection (`tuiops select --save`)."),
    Param(
        "view",
        ("--view",),
        help="The images a view or table of yours names by its key (or item_id) column: "
        "[views] of tuiops.toml, or user.NAME made with `tuiops query --write`.",
    ),
    Param("label_set", ("--set",), help="Label set: adds its per-image columns (and labels to write)."),
    Param("run", ("--run",), help="Detection run: adds its per-image columns."),
    Param("match", ("--match",), help="Stored match: adds its per-image columns (f1, fp, fn, …)."),
    Param("pools", ("--pool",), multiple=True, help="Only files of this pool (repeatable)."),
    Param(
        "all_statuses",
        ("--all-statuses",),
        is_flag=True,
        help="Also files that are missing, moved, trashed or not images (left out by default).",
    ),
)
#: Options every file operation has (after --json and the selection).
OP_PARAMS = (
    json_param(),
    *SELECTION_PARAMS,
    Param(
        "labels",
        ("--labels",),
        type=Choice(("carry", "none", "yolo", "voc", "both")),
        default="carry",
        show_default=True,
        help="Label files: carry them from disk, none, or write them from --set as yolo, voc or both.",
    ),
    Param(
        "on_conflict",
        ("--on-conflict",),
        type=Choice(("fail", "skip", "rename", "overwrite")),
        default="fail",
        show_default=True,
        help="Conflicts (target exists, two sources to one target, source missing, read-only "
        "folder): fail before anything is touched, skip them, rename (NAME_1.ext) or overwrite "
        "(the old file goes to the trash).",
    ),
    Param(
        "dry_run",
        ("--dry-run",),
        is_flag=True,
        help="Plan and show the plan and its conflicts; touch nothing.",
    ),
    Param(
        "follow_symlinks",
        ("--follow-symlinks",),
        is_flag=True,
        help="Copy files that are symlinks out of their pool, too.",
    ),
    Param("workers", ("--workers",), type=IntRange(min=1), default=4, show_default=True, help=FILES_AT_ONCE),
    Param(
        "durable",
        ("--durable",),
        is_flag=True,
        help="Sync every file (and its folder) before the journal records it: resume is exact "
        "after a power loss too, not only after a kill. Slower.",
    ),
    Param(
        "show", ("--show",), type=IntRange(min=0), default=10, show_default=True, help="Plan rows to print."
    ),
    Param("quiet", ("-q", "--quiet"), is_flag=True, help="No progress output on stderr."),
)


def _layout_help() -> str:
    from tuiops.ops.select import LAYOUTS

    return (
        "Target folder layout: "
        + ", ".join(f"{k} ({v or 'one folder'})" for k, v in LAYOUTS.items())
        + ", or a template like '{booru}/{fid:08d}'."
    )


LAYOUT_HELP = _layout_help()
LABEL_LAYOUT_HELP = (
    "Where label files go: beside their image, or sibling (ultralytics): images under TO/images/…, "
    "label files and classes.txt under TO/labels/… with the same relative path."
)
NAME_HELP = (
    "File-name template, e.g. '{booru}_{fid}{ext}' (default: the name as it is). Fields: name, stem, ext, "
    "dir, relpath, n (1, 2, …) and every selection column ({class} with --set, {category} with --match)."
)
LABEL_LAYOUT = Param(
    "label_layout",
    ("--label-layout",),
    type=Choice(("beside", "sibling")),
    default="beside",
    show_default=True,
    help=LABEL_LAYOUT_HELP,
)
PLACE_PARAMS = (
    Param("to", ("--to",), required=True, type=PathType(file_okay=False), help="Target folder."),
    Param("layout", ("--layout",), default="flat", show_default=True, help=LAYOUT_HELP),
    Param("name", ("--name",), help=NAME_HELP),
    LABEL_LAYOUT,
)


def selection_spec(ws: Any, kw: dict[str, Any]) -> Any:
    """The selection the selection options describe."""
    from tuiops.ops.select import SelectionSpec, read_keys

    keys = None
    if kw.get("keys_file"):
        keys = read_keys(kw["keys_file"], ws)
    return SelectionSpec(
        where=kw.get("where"),
        keys=keys,
        name=kw.get("selection_name"),
        view=kw.get("view"),
        label_set=kw.get("label_set"),
        run=kw.get("run"),
        match=kw.get("match"),
        pools=list(kw.get("pools") or []) or None,
        all_statuses=bool(kw.get("all_statuses")),
        tags=kw.get("tags"),
    )


def _columns_block() -> str:
    from tuiops.ops.select import COLUMNS, MATCH_COLUMNS, RUN_COLUMNS, SET_COLUMNS

    lines = []
    for title, cols in (
        ("Columns (always):", COLUMNS),
        ("With --set NAME:", SET_COLUMNS),
        ("With --run NAME:", RUN_COLUMNS),
        ("With --match NAME:", MATCH_COLUMNS),
    ):
        lines.append("\b")
        lines.append(title)
        width = max(len(k) for k in cols)
        lines.extend(f"  {k:<{width}}  {v}" for k, v in cols.items())
        lines.append("")
    return "\n".join(lines)


def _sample_table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    texts = [[("" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    widths = [min(60, max(len(c), *(len(t[i]) for t in texts))) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    for t in texts:
        lines.append("  ".join(v[:w].ljust(w) for v, w in zip(t, widths, strict=True)))
    return "\n".join(lines)


def _slow_selection() -> None:
    import sys

    print("tuiops: selection running… (Ctrl+C cancels)", file=sys.stderr, flush=True)


SELECT_HELP = (
    inspect.cleandoc(
        """Count and show the files of a selection; save it under a name.

    A selection is a SQL condition (--where) over the selection view below (one row per
    indexed file), a saved selection (--selection), a list of image keys (--keys), the
    images a view or table of yours names (--view: [views] of tuiops.toml, or user.NAME
    made with `tuiops query --write`), or several of these together (all must hold). Missing, moved, trashed and non-image
    files are left out unless --all-statuses.

    \b
    Examples:
      tuiops select --where "booru = 'danbooru' AND width < 512"
      tuiops select --set master --where "n_labels = 0" --save unlabelled
      tuiops select --match v41 --where "f1 < 0.5 AND split = 'val'"
      tuiops select --match v41 --where "f1 < 0.5" --keys-out worst.txt
      tuiops select --keys review.txt --pool main
      tuiops select --view flagged --where "width >= 512" --save big-flagged
      tuiops select --list
    """
    )
    + "\n\n"
    + _columns_block()
)


@command(
    "select",
    *SELECTION_PARAMS,
    Param("save_name", ("--save",), help="Save the selection under this name."),
    Param(
        "replace", ("--replace",), is_flag=True, help="With --save: replace a saved selection of that name."
    ),
    Param("note", ("--note",), help="With --save: a note kept with the saved selection."),
    Param(
        "keys_out",
        ("--keys-out",),
        type=PathType(dir_okay=False),
        help="Write the selection's image keys to this file, one per line, no header "
        "(for --keys FILE, or `tuiops dataset build --exclude @FILE`).",
    ),
    Param("sample", ("--sample",), type=IntRange(min=0), default=10, show_default=True, help="Rows to show."),
    Param("list_saved", ("--list",), is_flag=True, help="List the saved selections and stop."),
    Param("drop_name", ("--drop",), help="Delete the saved selection of this name and stop."),
    Param(
        "timeout",
        ("--timeout",),
        type=FloatRange(min=0, min_open=True),
        default=300.0,
        show_default=True,
        help="Stop a --where with a sub-select after this many seconds (Ctrl+C cancels it any time).",
    ),
    json_param(),
    help=SELECT_HELP,
)
def select_cmd(
    ctx: CommandContext,
    save_name: str | None,
    replace: bool,
    note: str | None,
    keys_out: str | None,
    sample: int,
    list_saved: bool,
    drop_name: str | None,
    timeout: float,
    as_json: bool,
    **kw: Any,
) -> Result:
    from tuiops.ops.select import drop_selection, list_selections, save_selection, summarize
    from tuiops.ops.usersql import Limits

    ws = ctx.workspace
    if list_saved:
        rows = list_selections(ws)

        def saved() -> str:
            if not rows:
                return "(no saved selections; save one with `tuiops select --where … --save NAME`)"
            return "\n".join(
                f"{r['name']:<20} {r['created']}  "
                + ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("name", "created"))
                for r in rows
            )

        return Result(rows, saved)
    if drop_name:
        drop_selection(ws, drop_name)
        return Result({"dropped": drop_name}, f"dropped selection {drop_name!r}")
    spec = selection_spec(ws, kw)
    limits = Limits(
        timeout=timeout,
        sigint=True,
        on_slow=_slow_selection,
        timeout_hint="give it more time with --timeout SECONDS, or narrow the --where",
    )
    out = summarize(ws, spec, sample=sample, limits=limits, keys_out=keys_out)
    if save_name:
        out["saved"] = save_selection(ws, save_name, spec, replace=replace, note=note)["name"]

    def text() -> str:
        lines = [
            f"{out['files']} file(s) of {out['images']} image(s), {out['bytes'] / 1e6:.1f} MB"
            + (f"  ({', '.join(f'{k} {v}' for k, v in out['by_pool'].items())})" if out["by_pool"] else "")
        ]
        if out.get("statuses") and set(out["statuses"]) != {"ok"}:
            lines.append("  status: " + ", ".join(f"{k} {v}" for k, v in out["statuses"].items()))
        if out["unknown_keys"]:
            lines.append(
                f"  {out['unknown_keys']} key(s) not in the store, e.g. {', '.join(out['unknown_key_examples'][:3])}"
            )
        if out["keys_without_files"]:
            lines.append(f"  {out['keys_without_files']} known key(s) without a selected file")
        lines.extend(f"  warning: {w}" for w in out["warnings"])
        if out["sample"]:
            lines.append(_sample_table(out["sample"]))
        if save_name:
            lines.append(f"saved as {save_name!r}")
        if keys_out:
            lines.append(f"{out['keys_written']} key(s) written to {out['keys_out']}")
        return "\n".join(lines)

    return Result(out, text)


def _run(ctx: CommandContext, op: str, kw: dict[str, Any], **plan_kw: Any) -> Result:
    from tuiops.ops.fileops import run_op

    ws = ctx.workspace
    spec = selection_spec(ws, kw)
    as_json, quiet, show = kw["as_json"], kw["quiet"], kw["show"]
    with ctx.progress(f"ops {op}", quiet=quiet or as_json) as on_progress:
        plan, result = run_op(
            ws,
            op,
            spec,
            dry_run=kw["dry_run"],
            workers=kw["workers"],
            progress=on_progress,
            labels=kw["labels"],
            label_set=kw.get("label_set"),
            on_conflict=kw["on_conflict"],
            follow_symlinks=kw["follow_symlinks"],
            durable=kw["durable"],
            **plan_kw,
        )
    out: dict[str, Any] = {"plan": plan.to_dict()}
    if not show:
        out["plan"]["sample"] = []
    else:
        out["plan"]["sample"] = out["plan"]["sample"][:show]
    if result is not None:
        out["run"] = result.to_dict()

    def text() -> str:
        lines = [render_plan(out["plan"])]
        if result is not None:
            lines.append(render_run(out["run"]))
        return "\n".join(lines)

    return Result(out, text, exit_code=1 if result is not None and result.status != "done" else 0)


@command("ops copy", *PLACE_PARAMS, *OP_PARAMS)
def ops_copy(
    ctx: CommandContext, to: str, layout: str, name: str | None, label_layout: str, **kw: Any
) -> Result:
    """Copy the files of a selection (with their label files) into a folder.

    \b
    Examples:
      tuiops ops copy --where "n_labels = 0" --set master --to review/empty
      tuiops ops copy --match v41 --where "f1 < 0.5" --layout by-match --to review/worst
      tuiops ops copy --keys list.txt --to train/images --labels yolo --set master
      tuiops ops copy --selection train --to datasets/v41 --label-layout sibling --labels yolo --set master
    """
    return _run(ctx, "copy", kw, to=to, layout=layout, name=name, label_layout=label_layout)


@command("ops move", *PLACE_PARAMS, *OP_PARAMS)
def ops_move(
    ctx: CommandContext, to: str, layout: str, name: str | None, label_layout: str, **kw: Any
) -> Result:
    """Move the files of a selection (with their label files); the store's records follow.

    \b
    Examples:
      tuiops ops move --where "status = 'corrupt'" --to /data/quarantine --layout by-pool
    """
    return _run(ctx, "move", kw, to=to, layout=layout, name=name, label_layout=label_layout)


@command("ops rename", Param("name", ("--name",), required=True, help=NAME_HELP), *OP_PARAMS)
def ops_rename(ctx: CommandContext, name: str, **kw: Any) -> Result:
    """Rename the files of a selection in place (label files alongside); the store follows.

    \b
    Examples:
      tuiops ops rename --where "booru = 'gelbooru'" --name '{booru}_{fid:08d}{ext}'
    """
    return _run(ctx, "rename", kw, name=name)


@command("ops delete", *OP_PARAMS)
def ops_delete(ctx: CommandContext, **kw: Any) -> Result:
    """Move the files of a selection (with their label files) to the workspace trash.

    Nothing is unlinked: the files go to .trash/job-N/POOL/… inside the workspace, and
    `tuiops ops undo N` puts them back.

    \b
    Examples:
      tuiops ops delete --where "status IN ('corrupt', 'empty')" --dry-run
    """
    return _run(ctx, "delete", kw)


@command(
    "ops convert",
    Param("to", ("--to",), type=PathType(file_okay=False), help="Target folder (or --in-place)."),
    Param(
        "in_place",
        ("--in-place",),
        is_flag=True,
        help="Re-encode each file at its path (or beside it under the new extension); the originals go "
        "to the workspace trash until `ops purge`, the store's records follow, label files are left alone.",
    ),
    Param(
        "fmt",
        ("--format",),
        type=Choice(("jpeg", "png", "webp")),
        default="jpeg",
        show_default=True,
        help="Output format.",
    ),
    Param(
        "quality",
        ("--quality",),
        type=IntRange(1, 100),
        default=90,
        show_default=True,
        help="JPEG/WebP quality.",
    ),
    Param(
        "max_side",
        ("--max-side",),
        type=IntRange(min=1),
        help="Shrink so the longer side is at most this (px).",
    ),
    Param(
        "strip_metadata",
        ("--strip-metadata",),
        secondary=("--keep-metadata",),
        is_flag=True,
        default=True,
        show_default=True,
        help="Drop or keep EXIF and ICC profile.",
    ),
    Param("layout", ("--layout",), default="flat", show_default=True, help=LAYOUT_HELP),
    Param(
        "name",
        ("--name",),
        help=NAME_HELP + " For convert the default is '{stem}{ext}' with the new extension.",
    ),
    LABEL_LAYOUT,
    *OP_PARAMS,
)
def ops_convert(
    ctx: CommandContext,
    to: str | None,
    in_place: bool,
    fmt: str,
    quality: int,
    max_side: int | None,
    strip_metadata: bool,
    layout: str,
    name: str | None,
    label_layout: str,
    **kw: Any,
) -> Result:
    """Re-encode the files of a selection with Pillow into a folder, or in place (format, quality, size).

    Labels go along into a folder: YOLO files unchanged (they are relative); with
    --max-side, VOC files must be written from the store (--labels voc --set NAME), which
    scales their boxes. --in-place keeps each file where it is (a new extension when the
    format changes), keeps the original in the workspace trash for `ops undo` until
    `ops purge`, and leaves label files alone.

    \b
    Examples:
      tuiops ops convert --where "format = 'PNG'" --to out/jpg --format jpeg --quality 92
      tuiops ops convert --selection train --to out/small --max-side 1024 --labels yolo --set master
      tuiops ops convert --where "format = 'PNG' AND size > 2000000" --in-place --format webp
    """
    from tuiops.ops.fileops import ConvertOptions

    conv = ConvertOptions(format=fmt, quality=quality, max_side=max_side, strip_metadata=strip_metadata)
    return _run(
        ctx,
        "convert",
        kw,
        to=to,
        layout=layout,
        name=name,
        convert=conv,
        in_place=in_place,
        label_layout=label_layout,
    )


@command(
    "ops resume",
    Param("job", type=Int(), required=True),
    Param("workers", ("--workers",), type=IntRange(min=1), default=4, show_default=True, help=FILES_AT_ONCE),
    Param(
        "durable",
        ("--durable",),
        is_flag=True,
        help="Sync every file before it is journaled (default: as planned).",
    ),
    Param("quiet", ("-q", "--quiet"), is_flag=True, help="No progress output on stderr."),
    json_param(),
)
def ops_resume(
    ctx: CommandContext, job: int, workers: int, durable: bool, quiet: bool, as_json: bool
) -> Result:
    """Run a planned (dry-run) job, or finish one that was killed, cancelled or failed.

    Each action left half-done is decided from the journal and the disk: nothing is lost
    and nothing done twice. Failed actions are tried again.
    """
    from tuiops.ops.fileops import run_job

    ws = ctx.workspace
    with ctx.progress(f"job {job}", quiet=quiet or as_json) as on_progress:
        r = run_job(ws, job, workers=workers, durable=True if durable else None, progress=on_progress)
    d = r.to_dict()
    return Result(d, lambda: render_run(d), exit_code=0 if r.status == "done" else 1)


@command(
    "ops undo",
    Param("job", type=Int(), required=True),
    Param("dry_run", ("--dry-run",), is_flag=True, help="Only count what would be undone."),
    Param("workers", ("--workers",), type=IntRange(min=1), default=4, show_default=True, help=FILES_AT_ONCE),
    Param("quiet", ("-q", "--quiet"), is_flag=True, help="No progress output on stderr."),
    json_param(),
)
def ops_undo(
    ctx: CommandContext, job: int, dry_run: bool, workers: int, quiet: bool, as_json: bool
) -> Result:
    """Reverse a finished or partial job: moves go back, copies are removed, renames restored.

    Overwritten files come back from the trash; copies changed since the job are left in
    place and reported. A killed undo is finished by running it again.
    """
    from tuiops.ops.fileops import undo_job

    ws = ctx.workspace
    with ctx.progress(f"undo {job}", quiet=quiet or as_json) as on_progress:
        r = undo_job(ws, job, workers=workers, dry_run=dry_run, progress=on_progress)
    d = r.to_dict()
    return Result(d, lambda: render_run(d), exit_code=0 if r.status in ("undone", "dry run") else 1)


@command(
    "ops list",
    Param("limit", ("--limit",), type=IntRange(min=1), default=20, show_default=True, help="Jobs to show."),
    Param("all_kinds", ("--all",), is_flag=True, help="Every kind of job, not only file operations."),
    json_param(),
)
def ops_list(ctx: CommandContext, limit: int, all_kinds: bool, as_json: bool) -> Result:
    """List the latest jobs with their status and progress (newest first)."""
    from tuiops.ops.fileops import list_jobs

    rows = list_jobs(ctx.workspace, limit=limit, all_kinds=all_kinds)

    def text() -> str:
        if not rows:
            return "(no jobs)"
        lines = []
        for r in rows:
            prog = f"{r['done']}/{r['total']}" if r["total"] is not None else str(r["done"])
            err = f"  {r['error']}" if r["error"] else ""
            lines.append(f"{r['id']:>5}  {r['kind']:<16} {r['status']:<18} {prog:>13}  {r['created']}{err}")
        return "\n".join(lines)

    return Result(rows, text)


@command(
    "ops show",
    Param("job", type=Int(), required=True),
    Param(
        "what",
        ("--conflicts",),
        is_flag=True,
        flag_value="conflicts",
        help="List the actions with a conflict.",
    ),
    Param("what", ("--errors",), is_flag=True, flag_value="errors", help="List the actions that failed."),
    Param(
        "what",
        ("--actions",),
        help="List the actions: all, or those in a state (planned, done, failed, skipped, …).",
    ),
    Param(
        "limit", ("--limit",), type=IntRange(min=1), default=50, show_default=True, help="Actions to list."
    ),
    json_param(),
)
def ops_show(ctx: CommandContext, job: int, what: str | None, limit: int, as_json: bool) -> Result:
    """Show a job: status, parameters, counts per state, action and conflict, and its actions."""
    from tuiops.ops.fileops import show_job

    d = show_job(ctx.workspace, job, actions=what, limit=limit)

    def text() -> str:
        lines = [
            f"job {d['id']}  {d['kind']}  {d['status']}  ({d['done']}/{d['total']})",
            f"  created {d['created']}  started {d['started'] or '-'}  finished {d['finished'] or '-'}",
        ]
        if d["error"]:
            lines.append(f"  error: {d['error']}")
        shown = {k: v for k, v in d["params"].items() if v not in (None, False, "", {})}
        lines.append("  params: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
        lines.append("  states: " + ", ".join(f"{k} {v}" for k, v in sorted(d["states"].items())))
        lines.append("  actions: " + ", ".join(f"{k} {v}" for k, v in sorted(d["by_action"].items())))
        if d["conflicts"]:
            lines.append(
                "  conflicts: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in d["conflicts"].items())
            )
        for a in d.get("actions", []):
            arrow = f"{a['src']} → {a['dst']}" if a["src"] else a["dst"]
            extra = f"  [{a['conflict']}]" if a["conflict"] else ""
            err = f"  {a['error']}" if a["error"] else ""
            lines.append(f"  {a['seq']:>6} {a['action']:<7} {a['state']:<8} {arrow}{extra}{err}")
        return "\n".join(lines)

    return Result(d, text)


@command("ops purge", Param("job", type=Int(), required=True), json_param())
def ops_purge(ctx: CommandContext, job: int, as_json: bool) -> Result:
    """Delete what a job keeps in the workspace trash; the job can no longer be undone.

    The trash folder .trash/job-N holds the originals of an in-place conversion, files an
    overwrite replaced and files a delete moved there.
    """
    from tuiops.ops.fileops import purge_job

    d = purge_job(ctx.workspace, job)
    return Result(d, f"purged job {job}: {d['files']} file(s), {d['bytes'] / 1e6:.1f} MB freed")


@command("ops forget", Param("job", type=Int(), required=True), json_param())
def ops_forget(ctx: CommandContext, job: int, as_json: bool) -> Result:
    """Delete the record of a planned, refused or undone job (its files are not touched)."""
    from tuiops.ops.fileops import forget_job

    forget_job(ctx.workspace, job)
    return Result({"forgotten": job}, f"forgot job {job}")


@command(
    "paint",
    *SELECTION_PARAMS,
    Param("to", ("--to",), required=True, type=PathType(file_okay=False), help="Folder for the pictures."),
    Param(
        "conf",
        ("--conf",),
        type=FloatRange(0, 1),
        default=0.0,
        show_default=True,
        help="Leave out detections below.",
    ),
    Param("layout", ("--layout",), default="flat", show_default=True, help=LAYOUT_HELP),
    Param("name", ("--name",), help=NAME_HELP + " Default '{stem}.jpg'."),
    Param(
        "on_conflict",
        ("--on-conflict",),
        type=Choice(("fail", "skip", "rename", "overwrite")),
        default="fail",
        show_default=True,
        help="What to do when a picture exists already.",
    ),
    Param("dry_run", ("--dry-run",), is_flag=True, help="Plan and show; draw nothing."),
    Param(
        "workers",
        ("--workers",),
        type=IntRange(min=1),
        default=4,
        show_default=True,
        help="Pictures drawn at once.",
    ),
    Param(
        "show", ("--show",), type=IntRange(min=0), default=10, show_default=True, help="Plan rows to print."
    ),
    Param("quiet", ("-q", "--quiet"), is_flag=True, help="No progress output on stderr."),
    json_param(),
)
def paint_cmd(
    ctx: CommandContext,
    to: str,
    conf: float,
    layout: str,
    name: str | None,
    on_conflict: str,
    dry_run: bool,
    workers: int,
    show: int,
    quiet: bool,
    as_json: bool,
    **kw: Any,
) -> Result:
    """Draw label boxes (solid, class tag) and detection boxes (dashed, class and score) on images.

    Give --set and/or --run for what to draw; the selection options choose the images.
    One JPEG per image, for review in any image viewer; a journaled, undoable job.

    \b
    Examples:
      tuiops paint --set master --run v41 --match m41 --where "f1 < 0.5" --to review/painted
      tuiops paint --run v41 --keys list.txt --conf 0.3 --to painted
    """
    from tuiops.ops.paint import paint

    ws = ctx.workspace
    spec = selection_spec(ws, kw)
    if not kw.get("where") and not kw.get("keys_file") and not kw.get("selection_name"):
        from tuiops.errors import UsageError

        raise UsageError("which images? give --where, --keys or --selection", hint="all of them: --where 1")
    with ctx.progress("paint", quiet=quiet or as_json) as on_progress:
        p, r = paint(
            ws, spec, to, label_set=kw.get("label_set"), run=kw.get("run"), conf=conf, layout=layout, name=name,
            on_conflict=on_conflict, dry_run=dry_run, workers=workers, progress=on_progress,
        )  # fmt: skip
    out: dict[str, Any] = {"plan": p.to_dict(), "run": r.to_dict() if r else None}
    out["plan"]["sample"] = out["plan"]["sample"][:show]

    def text() -> str:
        lines = [render_plan(out["plan"])]
        if r is not None:
            lines.append(render_run(out["run"]))
        return "\n".join(lines)

    return Result(out, text, exit_code=0 if r is None or r.status == "done" else 1)
