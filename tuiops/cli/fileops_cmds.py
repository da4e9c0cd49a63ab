"""`tuiops select`, `tuiops ops …` (batch file operations), `tuiops review …` and `tuiops paint`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from tuiops.cli import cli, emit, get_workspace, json_option, progress_reporter
from tuiops.cli.build import add
from tuiops.commands.fileops import LAYOUT_HELP, NAME_HELP, selection_spec
from tuiops.commands.review import render_plan, render_run


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


# -- select --------------------------------------------------------------------------------------
add(cli, "select")


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
@click.option("--layout", default="flat", show_default=True, help=LAYOUT_HELP)
@click.option("--name", "name", help=NAME_HELP + " Default '{stem}.jpg'.")
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
    spec = selection_spec(get_workspace(), kw)
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
