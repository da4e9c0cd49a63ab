"""`tuiops run SCRIPT` and `tuiops runs list|show`: headless scripts of tuiops commands, described
in the registry like every command.

They are registered here, beside the runner they call, because a script runs the registry's
commands: the registry itself (:mod:`tuiops.commands`) never imports the script package.
The faces that offer them import this module (the command line, script validation).
"""

from __future__ import annotations

from typing import Any

from tuiops.commands import CommandContext, Int, IntRange, Param, PathType, Result, command, json_param

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


def _render_run(result: dict[str, Any]) -> str:
    width = max((len(s["name"]) for s in result["steps"]), default=4)
    lines = [f"run {result['run_id']}: {result['status']}  ({result['script']})"]
    for s in result["steps"]:
        lines.append(f"  {s['idx'] + 1:>3}. {s['name']:<{width}}  {s['status']}")
    return "\n".join(lines)


@command(
    "run",
    Param("script", type=PathType(dir_okay=False)),
    Param(
        "dry_run",
        ("--dry-run",),
        is_flag=True,
        help="Validate and print each step's command; run and record nothing.",
    ),
    Param(
        "from_step",
        ("--from",),
        metavar="STEP",
        help="Start at this step (earlier ones are recorded as skipped).",
    ),
    Param(
        "variables",
        ("--var",),
        multiple=True,
        metavar="NAME=VALUE",
        help="Set a script variable (repeatable).",
    ),
    Param(
        "resume",
        ("--resume",),
        type=Int(),
        metavar="RUNID",
        help="Continue recorded run RUNID after a failure, cancel or kill.",
    ),
    Param(
        "force", ("--force",), is_flag=True, help="With --resume: go on even though the script file changed."
    ),
    Param(
        "quiet",
        ("-q", "--quiet"),
        is_flag=True,
        help="No step lines on stderr (commands still show their progress).",
    ),
    json_param(),
    help=RUN_HELP,
)
def run_cmd(
    ctx: CommandContext,
    script: str | None,
    dry_run: bool,
    from_step: str | None,
    variables: tuple[str, ...],
    resume: int | None,
    force: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    from pathlib import Path

    from tuiops.errors import InputError, UsageError
    from tuiops.script.parse import parse_var_options
    from tuiops.script.runner import dry_run_lines, echo_stderr, prepare, resume_run, start_run

    ws = ctx.workspace
    overrides = parse_var_options(variables)
    echo = None if quiet else echo_stderr
    if resume is not None:
        if script is not None or from_step is not None or dry_run:
            raise UsageError(
                "--resume RUNID takes no SCRIPT, --from or --dry-run", hint="the run knows its script"
            )
        done = resume_run(ws, resume, force=force, overrides=overrides, echo=echo).to_dict()
        return Result(done, lambda: _render_run(done))
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
        return Result(
            {"script": str(parsed.path), "steps": len(checked), "plan": lines, "valid": True},
            "\n".join(lines),
        )
    done = start_run(ws, parsed, values, checked, from_step=from_step, echo=echo).to_dict()
    return Result(done, lambda: _render_run(done))


@command(
    "runs list",
    Param(
        "limit",
        ("--limit",),
        type=IntRange(min=1),
        default=50,
        show_default=True,
        help="Runs to list, newest first.",
    ),
    json_param(),
)
def runs_list(ctx: CommandContext, limit: int, as_json: bool) -> Result:
    """List the latest script runs: status (a killed run shows as interrupted), steps done."""
    from tuiops.script.runner import list_runs

    rows = list_runs(ctx.workspace.store, limit)

    def text() -> str:
        if not rows:
            return "no script runs yet (`tuiops run SCRIPT`)"
        lines = [f"{'id':>5}  {'status':<11}  {'steps':>7}  {'started':<20}  script"]
        for r in rows:
            lines.append(
                f"{r['id']:>5}  {r['status']:<11}  {r['done']:>3}/{r['steps']:<3}  {r['started']:<20}  {r['script']}"
            )
        return "\n".join(lines)

    return Result(rows, text)


@command(
    "runs show",
    Param("run_id", type=Int(), required=True, metavar="RUNID"),
    Param("show_log", ("--log",), is_flag=True, help="Print each step's log tail too."),
    json_param(),
)
def runs_show(ctx: CommandContext, run_id: int, show_log: bool, as_json: bool) -> Result:
    """Show run RUNID: its script, variables, and each step's status, command, outputs and error."""
    import json

    from tuiops.script.runner import run_row

    row = run_row(ctx.workspace.store, run_id)

    def text() -> str:
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
                out = json.dumps(s["outputs"], ensure_ascii=False, default=str)
                lines.append("       outputs: " + (out if len(out) <= 300 else out[:297] + "…"))
            if show_log and s["log"]:
                lines.extend("       | " + ln for ln in s["log"].splitlines()[-20:])
        return "\n".join(lines)

    return Result(row, text)
