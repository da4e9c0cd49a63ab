"""The command line: parse → call an op → render. One error boundary, one exit-code map.

Command modules import only click and tuiops' light modules at import time; ops,
polars and the store are imported inside the command functions, so that
``tuiops --help`` stays instant.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from tuiops import __version__
from tuiops.errors import TuiopsError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class TuiopsGroup(click.Group):
    """Lists commands in the order they were added (the order of the workflow)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


# Without a command the app opens, so the command is optional; said explicitly, the usage line
# reads the same under every click release.
@click.group(
    cls=TuiopsGroup,
    context_settings=CONTEXT_SETTINGS,
    invoke_without_command=True,
    subcommand_metavar="[COMMAND] [ARGS]...",
)
@click.option(
    "-w",
    "--workspace",
    type=click.Path(file_okay=False),
    envvar="TUIOPS_WORKSPACE",
    help="Workspace folder (default: $TUIOPS_WORKSPACE, else the current folder or its parents).",
)
@click.version_option(__version__, prog_name="tuiops")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None) -> None:
    """tuiops: curate object-detection training sets at scale.

    Index image pools, import labels and detections, compare them, triage the worst
    cases, bulk copy/move/convert, train with pitstops and reprocess the pool. Run
    without a command to open the terminal app.
    """
    ctx.ensure_object(dict)
    ctx.obj["workspace"] = workspace
    if ctx.invoked_subcommand is None:
        tui = cli.commands.get("tui")
        if tui is None:
            click.echo(ctx.get_help())
            return
        ctx.invoke(tui)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI inside the one error boundary."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run one command line; returns the exit code.

    With an events channel (``TUIOPS_EVENTS_FD``, see :mod:`tuiops.events`) the error that
    ends a command is also written there as an event, with its message, hint and exit code.
    """
    from tuiops.events import writer_from_env

    events = writer_from_env()
    _progress.set_event_writer(events)
    try:
        return _run(argv)
    finally:
        _progress.set_event_writer(None)
        if events is not None:
            events.close()


def _run(argv: list[str] | None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="tuiops", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except TuiopsError as exc:
        print_error(exc)
        return exc.exit_code
    except click.exceptions.Abort:
        _error_event("aborted", None, 130, "Cancelled")
        click.echo("tuiops: aborted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        hint = None
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f"`{exc.ctx.command_path} --help` shows the usage"
        _error_event(exc.format_message(), hint, 2, "UsageError")
        exc.show()
        return 2
    except KeyboardInterrupt:
        _error_event("interrupted", None, 130, "Cancelled")
        click.echo("tuiops: interrupted", err=True)
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. `tuiops query … | head`): not an error.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return 0
    except Exception as exc:
        import traceback

        _error_event(
            f"{type(exc).__name__}: {exc}", None, 1, "internal", traceback="".join(traceback.format_exc())
        )
        raise


def _error_event(message: str, hint: str | None, exit_code: int, kind: str, **extra: Any) -> None:
    events = _progress.event_writer()
    if events is not None:
        events.write("error", message=message, hint=hint, exit_code=exit_code, kind=kind, **extra)


def print_error(exc: TuiopsError) -> None:
    """The error on stderr (and as an event where the process has an events channel)."""
    _error_event(exc.message, exc.hint, exc.exit_code, type(exc).__name__)
    click.secho(f"tuiops: error: {exc.message}", err=True, fg="red")
    if exc.hint:
        click.echo(f"  hint: {exc.hint}", err=True)


# -- helpers shared by the command modules ------------------------------------------------------
def get_workspace(ctx: click.Context | None = None) -> Any:
    """The workspace this command runs in (found from -w, $TUIOPS_WORKSPACE or the cwd)."""
    from tuiops.workspace import Workspace

    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    obj = root.obj or {}
    ws = obj.get("_ws")
    if ws is None:
        ws = Workspace.find(obj.get("workspace"))
        obj["_ws"] = ws
        root.obj = obj
        root.call_on_close(ws.close)
    return ws


def json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")(f)


def emit(result: Any, as_json: bool, text: str | None = None) -> None:
    """Print a result: JSON for scripts, else the given text (or a readable dump)."""
    import json

    events = _progress.event_writer()
    if events is not None:
        events.write("result", result=result)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str, ensure_ascii=False))
    elif text is not None:
        click.echo(text)
    elif isinstance(result, dict):
        width = max((len(str(k)) for k in result), default=0)
        for k, v in result.items():
            click.echo(f"{k:<{width}}  {v}")
    else:
        click.echo(str(result))


from tuiops.cli import progress as _progress  # noqa: E402

progress_reporter = _progress.progress_reporter

# Command modules register themselves on `cli` when imported, in workflow order.
from tuiops.cli import (  # noqa: E402, F401, I001
    workspace_cmds,
    scan_cmds,
    labels_cmds,
    query_cmds,
    engine_cmds,
    report_cmds,
    analysis_cmds,
    fileops_cmds,
    train_cmds,
    remote_cmds,
    project_cmds,
    project_mix_cmds,
    meta_cmds,
    run_cmds,
    tui_cmds,
)
