"""`tuiops select`, `tuiops ops …` (batch file operations), `tuiops review …` and `tuiops paint`."""

from __future__ import annotations

import click

from tuiops.cli import cli, emit, get_workspace, json_option
from tuiops.cli.build import add

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
add(cli, "paint")
