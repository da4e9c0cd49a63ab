"""`tuiops run SCRIPT` and `tuiops runs list|show`: headless scripts of tuiops commands."""

from __future__ import annotations

from typing import Any

import click

from tuiops.cli import cli, emit, get_workspace, json_option

RUN_HELP = """Run a script: named steps of tuiops commands, validated first, recorded as one run.

\b
A script is YAML:
  vars:                       # defaults; --var NAME=VALUE overrides
    set: master
  steps:
    - name: match             # unique step name
      op: match               # a command path: scan, labels import, dataset build …
      params:                 # its options and arguments (hyphen or underscore)
        set: ${set}
        run: v1
    - name: review
      op: review export
      when: ${steps.match.splits.all.fp} > 0
      params: {set: "${set}", run: v1, kind: fp, to: review/fp}
    - include: common.yaml    # inline another script's steps

References: ${name}, ${env.NAME}, ${steps.STEP.KEY} (the JSON the step's command printed),
${workspace}, ${script_dir}, ${run_id}; ${ref:-default}. Conditions (when:) use numbers,
'strings', == != < <= > >=, and, or, not, ( ). Relative paths are relative to the workspace.

Everything is checked before anything runs (unknown op or parameter, a missing or mistyped
value, an undefined reference: the error names the file and line). A failed step stops the
run with the step's exit code; `tuiops run --resume RUNID` continues with the first step that
is not done (a killed run too). Ctrl+C cancels the current step (exit 130).

\b
Examples:
  tuiops run scripts/prepare_training.yaml --dry-run
  tuiops run scripts/pitstop_cycle.yaml --var set=master --var epochs=3
  tuiops run scripts/reprocess.yaml --from match_new
  tuiops run --resume 12
  tuiops runs show 12
"""


@cli.command("run", help=RUN_HELP)
@click.argument("script", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--dry-run", is_flag=True, help="Validate and print each step's command; run and record nothing."
)
@click.option(
    "--from", "from_step", metavar="STEP", help="Start at this step (earlier ones are recorded as skipped)."
)
@click.option(
    "--var", "variables", multiple=True, metavar="NAME=VALUE", help="Set a script variable (repeatable)."
)
@click.option(
    "--resume", type=int, metavar="RUNID", help="Continue recorded run RUNID after a failure, cancel or kill."
)
@click.option("--force", is_flag=True, help="With --resume: go on even though the script file changed.")
@click.option(
    "-q", "--quiet", is_flag=True, help="No step lines on stderr (commands still show their progress)."
)
@json_option
def run_cmd(
    script: str | None,
    dry_run: bool,
    from_step: str | None,
    variables: tuple[str, ...],
    resume: int | None,
    force: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    from pathlib import Path

    from tuiops.errors import InputError, UsageError
    from tuiops.script.parse import parse_var_options
    from tuiops.script.runner import _stderr_echo, dry_run_lines, prepare, resume_run, start_run

    ws = get_workspace()
    overrides = parse_var_options(variables)
    echo = None if quiet else _stderr_echo
    if resume is not None:
        if script is not None or from_step is not None or dry_run:
            raise UsageError(
                "--resume RUNID takes no SCRIPT, --from or --dry-run", hint="the run knows its script"
            )
        result = resume_run(ws, resume, force=force, overrides=overrides, echo=echo)
        _render(result.to_dict(), as_json)
        return
    if script is None:
        raise UsageError(
            "give a SCRIPT to run, or --resume RUNID", hint="`tuiops run --help` shows the format"
        )
    if force:
        raise UsageError("--force goes with --resume")
    path = Path(script).expanduser()
    if not path.is_absolute() and not path.exists() and (ws.root / path).exists():
        path = ws.root / path
    parsed, values, checked = prepare(path, overrides, root=ws.root)
    if dry_run:
        names = [s.name for s in parsed.steps]
        if from_step is not None and from_step not in names:
            raise InputError(
                f"--from {from_step}: the script has no such step", hint=f"its steps: {', '.join(names)}"
            )
        start = names.index(from_step) if from_step is not None else 0
        lines = dry_run_lines(parsed, values, checked, start=start)
        emit(
            {"script": str(parsed.path), "steps": len(checked), "plan": lines, "valid": True},
            as_json,
            "\n".join(lines),
        )
        return
    result = start_run(ws, parsed, values, checked, from_step=from_step, echo=echo)
    _render(result.to_dict(), as_json)


def _render(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit(result, True)
        return
    width = max((len(s["name"]) for s in result["steps"]), default=4)
    lines = [f"run {result['run_id']}: {result['status']}  ({result['script']})"]
    for s in result["steps"]:
        lines.append(f"  {s['idx'] + 1:>3}. {s['name']:<{width}}  {s['status']}")
    emit(result, False, "\n".join(lines))


@cli.group("runs")
def runs_group() -> None:
    """Recorded script runs: list them, show one with its steps, outputs and logs."""


@runs_group.command("list")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Runs to list, newest first."
)
@json_option
def runs_list(limit: int, as_json: bool) -> None:
    """List the latest script runs: status (a killed run shows as interrupted), steps done."""
    from tuiops.script.runner import list_runs

    ws = get_workspace()
    rows = list_runs(ws.store, limit)
    if as_json:
        emit(rows, True)
        return
    if not rows:
        emit(rows, False, "no script runs yet (`tuiops run SCRIPT`)")
        return
    lines = [f"{'id':>5}  {'status':<11}  {'steps':>7}  {'started':<20}  script"]
    for r in rows:
        lines.append(
            f"{r['id']:>5}  {r['status']:<11}  {r['done']:>3}/{r['steps']:<3}  {r['started']:<20}  {r['script']}"
        )
    emit(rows, False, "\n".join(lines))


@runs_group.command("show")
@click.argument("run_id", type=int, metavar="RUNID")
@click.option("--log", "show_log", is_flag=True, help="Print each step's log tail too.")
@json_option
def runs_show(run_id: int, show_log: bool, as_json: bool) -> None:
    """Show run RUNID: its script, variables, and each step's status, command, outputs and error."""
    import json

    from tuiops.script.runner import run_row

    ws = get_workspace()
    row = run_row(ws.store, run_id)
    if as_json:
        emit(row, True)
        return
    lines = [
        f"run {row['id']}: {row['status']}",
        f"script:  {row['script']}",
        f"vars:    {json.dumps(row['vars'], ensure_ascii=False)}",
        f"started: {row['started']}   ended: {row['ended'] or '-'}   pid: {row['pid']}",
    ]
    if row["error"]:
        lines.append(f"error:   {row['error']}")
    for s in row["steps"]:
        lines.append(f"  {s['idx'] + 1:>3}. {s['name']}  [{s['status']}]  {s['op']}")
        if s["argv"]:
            lines.append("       tuiops " + " ".join(s["argv"]))
        if s["error"]:
            lines.append(f"       error: {s['error']}")
        if s["outputs"]:
            text = json.dumps(s["outputs"], ensure_ascii=False, default=str)
            lines.append("       outputs: " + (text if len(text) <= 300 else text[:297] + "…"))
        if show_log and s["log"]:
            lines.extend("       | " + ln for ln in s["log"].splitlines()[-20:])
    emit(row, False, "\n".join(lines))
