"""`tuiops select`, `tuiops ops …` (batch file operations), `tuiops review …` and `tuiops paint`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import click

from tuiops.cli import cli, emit, get_workspace, json_option, progress_reporter
from tuiops.cli.build import add
from tuiops.commands.review import render_plan, render_run
from tuiops.ops.select import COLUMNS, LAYOUTS, MATCH_COLUMNS, RUN_COLUMNS, SET_COLUMNS


def _columns_block() -> str:
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


def selection_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say which files a command works on."""
    opts = [
        click.option("--where", help="SQL condition over the selection view (see `tuiops select --help`)."),
        click.option(
            "--keys",
            "keys_file",
            type=click.Path(dir_okay=False, allow_dash=True),
            help="File of image keys or file names, one per line ('-' reads stdin).",
        ),
        click.option("--selection", "selection_name", help="A saved selection (`tuiops select --save`)."),
        click.option(
            "--set", "label_set", help="Label set: adds its per-image columns (and labels to write)."
        ),
        click.option("--run", "run", help="Detection run: adds its per-image columns."),
        click.option("--match", "match", help="Stored match: adds its per-image columns (f1, fp, fn, …)."),
        click.option("--pool", "pools", multiple=True, help="Only files of this pool (repeatable)."),
        click.option(
            "--all-statuses",
            is_flag=True,
            help="Also files that are missing, moved, trashed or not images (left out by default).",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _spec(kw: dict[str, Any]) -> Any:
    from tuiops.ops.select import SelectionSpec, read_keys

    keys = None
    if kw.get("keys_file"):
        keys = read_keys(kw["keys_file"], get_workspace())
    return SelectionSpec(
        where=kw.get("where"),
        keys=keys,
        name=kw.get("selection_name"),
        label_set=kw.get("label_set"),
        run=kw.get("run"),
        match=kw.get("match"),
        pools=list(kw.get("pools") or []) or None,
        all_statuses=bool(kw.get("all_statuses")),
    )


FILES_AT_ONCE = (
    "Files handled at once: threads for a small job, worker processes (one per core, at most "
    "this many) from 1,000 file actions on."
)
_SELECTION_KEYS = (
    "where",
    "keys_file",
    "selection_name",
    "label_set",
    "run",
    "match",
    "pools",
    "all_statuses",
)


# -- select --------------------------------------------------------------------------------------
@cli.command("select")
@selection_options
@click.option("--save", "save_name", help="Save the selection under this name.")
@click.option("--replace", is_flag=True, help="With --save: replace a saved selection of that name.")
@click.option("--note", help="With --save: a note kept with the saved selection.")
@click.option("--sample", type=click.IntRange(min=0), default=10, show_default=True, help="Rows to show.")
@click.option("--list", "list_saved", is_flag=True, help="List the saved selections and stop.")
@click.option("--drop", "drop_name", help="Delete the saved selection of this name and stop.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Stop a --where with a sub-select after this many seconds (Ctrl+C cancels it any time).",
)
@json_option
def select_cmd(
    save_name: str | None,
    replace: bool,
    note: str | None,
    sample: int,
    list_saved: bool,
    drop_name: str | None,
    timeout: float,
    as_json: bool,
    **kw: Any,
) -> None:
    from tuiops.ops.select import drop_selection, list_selections, save_selection, summarize
    from tuiops.ops.usersql import Limits

    ws = get_workspace()
    if list_saved:
        rows = list_selections(ws)
        if as_json:
            emit(rows, True)
        elif not rows:
            click.echo("(no saved selections; save one with `tuiops select --where … --save NAME`)")
        else:
            for r in rows:
                what = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("name", "created"))
                click.echo(f"{r['name']:<20} {r['created']}  {what}")
        return
    if drop_name:
        drop_selection(ws, drop_name)
        emit({"dropped": drop_name}, as_json, text=f"dropped selection {drop_name!r}")
        return
    spec = _spec(kw)
    limits = Limits(
        timeout=timeout,
        sigint=True,
        on_slow=lambda: click.echo("tuiops: selection running… (Ctrl+C cancels)", err=True),
        timeout_hint="give it more time with --timeout SECONDS, or narrow the --where",
    )
    out = summarize(ws, spec, sample=sample, limits=limits)
    if save_name:
        out["saved"] = save_selection(ws, save_name, spec, replace=replace, note=note)["name"]
    if as_json:
        emit(out, True)
        return
    click.echo(
        f"{out['files']} file(s) of {out['images']} image(s), {out['bytes'] / 1e6:.1f} MB"
        + (f"  ({', '.join(f'{k} {v}' for k, v in out['by_pool'].items())})" if out["by_pool"] else "")
    )
    if out.get("statuses") and set(out["statuses"]) != {"ok"}:
        click.echo("  status: " + ", ".join(f"{k} {v}" for k, v in out["statuses"].items()))
    if out["unknown_keys"]:
        click.echo(
            f"  {out['unknown_keys']} key(s) not in the store, e.g. {', '.join(out['unknown_key_examples'][:3])}"
        )
    if out["keys_without_files"]:
        click.echo(f"  {out['keys_without_files']} known key(s) without a selected file")
    if out["sample"]:
        click.echo(_table(out["sample"]))
    if save_name:
        click.echo(f"saved as {save_name!r}")


select_cmd.help = (
    inspect.cleandoc(
        """Count and show the files of a selection; save it under a name.

    A selection is a SQL condition (--where) over the selection view below (one row per
    indexed file), a saved selection (--selection), a list of image keys (--keys), or
    several of these together (all must hold). Missing, moved, trashed and non-image
    files are left out unless --all-statuses.

    \b
    Examples:
      tuiops select --where "booru = 'danbooru' AND width < 512"
      tuiops select --set master --where "n_labels = 0" --save unlabelled
      tuiops select --match v41 --where "f1 < 0.5 AND split = 'val'"
      tuiops select --keys review.txt --pool main
      tuiops select --list
    """
    )
    + "\n\n"
    + _columns_block()
)


def _table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    texts = [[("" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    widths = [min(60, max(len(c), *(len(t[i]) for t in texts))) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    for t in texts:
        lines.append("  ".join(v[:w].ljust(w) for v, w in zip(t, widths, strict=True)))
    return "\n".join(lines)


# -- ops -------------------------------------------------------------------------------------------
@cli.group("ops")
def ops_group() -> None:
    """Batch file operations on a selection: copy, move, rename, delete, convert — journaled.

    Every operation first writes its plan into the store as a job (one row per file
    action) and checks it for conflicts; --dry-run stops there. Actions write to a
    temporary name and rename; a move across file systems is copy, verify, delete. A
    killed job is finished by `tuiops ops resume JOB`; `tuiops ops undo JOB` reverses a
    finished or partial job exactly. Label files go along: carried from disk (STEM.txt,
    STEM.xml beside the image, or labels/ beside images/), or written from --set.
    """


_LAYOUT_HELP = (
    "Target folder layout: "
    + ", ".join(f"{k} ({v or 'one folder'})" for k, v in LAYOUTS.items())
    + ", or a template like '{booru}/{fid:08d}'."
)
_LABEL_LAYOUT_HELP = (
    "Where label files go: beside their image, or sibling (ultralytics): images under TO/images/…, "
    "label files and classes.txt under TO/labels/… with the same relative path."
)
_NAME_HELP = (
    "File-name template, e.g. '{booru}_{fid}{ext}' (default: the name as it is). Fields: name, stem, ext, "
    "dir, relpath, n (1, 2, …) and every selection column ({class} with --set, {category} with --match)."
)


for _name in ("copy", "move", "rename", "delete", "convert", "resume", "undo", "list"):
    add(ops_group, ("ops", _name))


@ops_group.command("show")
@click.argument("job", type=int)
@click.option("--conflicts", "what", flag_value="conflicts", help="List the actions with a conflict.")
@click.option("--errors", "what", flag_value="errors", help="List the actions that failed.")
@click.option(
    "--actions",
    "what",
    help="List the actions: all, or those in a state (planned, done, failed, skipped, …).",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Actions to list.")
@json_option
def ops_show(job: int, what: str | None, limit: int, as_json: bool) -> None:
    """Show a job: status, parameters, counts per state, action and conflict, and its actions."""
    from tuiops.ops.fileops import show_job

    d = show_job(get_workspace(), job, actions=what, limit=limit)
    if as_json:
        emit(d, True)
        return
    click.echo(f"job {d['id']}  {d['kind']}  {d['status']}  ({d['done']}/{d['total']})")
    click.echo(f"  created {d['created']}  started {d['started'] or '-'}  finished {d['finished'] or '-'}")
    if d["error"]:
        click.echo(f"  error: {d['error']}")
    p = d["params"]
    shown = {k: v for k, v in p.items() if v not in (None, False, "", {})}
    click.echo("  params: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    click.echo("  states: " + ", ".join(f"{k} {v}" for k, v in sorted(d["states"].items())))
    click.echo("  actions: " + ", ".join(f"{k} {v}" for k, v in sorted(d["by_action"].items())))
    if d["conflicts"]:
        click.echo(
            "  conflicts: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in d["conflicts"].items())
        )
    for a in d.get("actions", []):
        arrow = f"{a['src']} → {a['dst']}" if a["src"] else a["dst"]
        extra = f"  [{a['conflict']}]" if a["conflict"] else ""
        err = f"  {a['error']}" if a["error"] else ""
        click.echo(f"  {a['seq']:>6} {a['action']:<7} {a['state']:<8} {arrow}{extra}{err}")


add(ops_group, "ops purge")
add(ops_group, "ops forget")


# -- review ----------------------------------------------------------------------------------------
@cli.group("review")
def review_group() -> None:
    """Review subsets for labelImg: export the worst cases of a match, import the edits back."""


add(review_group, "review export")
add(review_group, "review import")


@review_group.command("open")
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
@click.option("--no-wait", is_flag=True, help="Start the editor and return at once.")
def review_open_cmd(folder: str, no_wait: bool) -> int:
    """Open a review folder in the label editor ([editor] command in tuiops.toml; labelImg by default).

    The command may use {dir} (the folder), {classes} (its classes.txt) and {image}
    (its first image).
    """
    from tuiops.ops.review import review_open

    return review_open(get_workspace(), folder, wait=not no_wait)


# -- paint -------------------------------------------------------------------------------------------
@cli.command("paint")
@selection_options
@click.option("--to", "to", required=True, type=click.Path(file_okay=False), help="Folder for the pictures.")
@click.option(
    "--conf", type=click.FloatRange(0, 1), default=0.0, show_default=True, help="Leave out detections below."
)
@click.option("--layout", default="flat", show_default=True, help=_LAYOUT_HELP)
@click.option("--name", "name", help=_NAME_HELP + " Default '{stem}.jpg'.")
@click.option(
    "--on-conflict",
    type=click.Choice(["fail", "skip", "rename", "overwrite"]),
    default="fail",
    show_default=True,
    help="What to do when a picture exists already.",
)
@click.option("--dry-run", is_flag=True, help="Plan and show; draw nothing.")
@click.option(
    "--workers", type=click.IntRange(min=1), default=4, show_default=True, help="Pictures drawn at once."
)
@click.option("--show", type=click.IntRange(min=0), default=10, show_default=True, help="Plan rows to print.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output on stderr.")
@json_option
def paint_cmd(
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
) -> int:
    """Draw label boxes (solid, class tag) and detection boxes (dashed, class and score) on images.

    Give --set and/or --run for what to draw; the selection options choose the images.
    One JPEG per image, for review in any image viewer; a journaled, undoable job.

    \b
    Examples:
      tuiops paint --set master --run v41 --match m41 --where "f1 < 0.5" --to review/painted
      tuiops paint --run v41 --keys list.txt --conf 0.3 --to painted
    """
    from tuiops.ops.paint import paint

    ws = get_workspace()
    spec = _spec(kw)
    if not kw.get("where") and not kw.get("keys_file") and not kw.get("selection_name"):
        from tuiops.errors import UsageError

        raise UsageError("which images? give --where, --keys or --selection", hint="all of them: --where 1")
    with progress_reporter("paint", quiet=quiet or as_json) as on_progress:
        p, r = paint(
            ws, spec, to, label_set=kw.get("label_set"), run=kw.get("run"), conf=conf, layout=layout, name=name,
            on_conflict=on_conflict, dry_run=dry_run, workers=workers, progress=on_progress,
        )  # fmt: skip
    out: dict[str, Any] = {"plan": p.to_dict(), "run": r.to_dict() if r else None}
    out["plan"]["sample"] = out["plan"]["sample"][:show]
    if as_json:
        emit(out, True)
    else:
        click.echo(render_plan(out["plan"]))
        if r is not None:
            click.echo(render_run(out["run"]))
    return 0 if r is None or r.status == "done" else 1
