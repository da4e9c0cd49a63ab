"""Click commands built from the registry's descriptions (:mod:`tuiops.commands`).

Each registered command becomes a click command with the same options, in the same order,
with the same types, defaults and help; its callback calls the command's function with the
workspace and progress of the command line and prints the result (``--json`` or the text).
Errors go through the one error boundary of :func:`tuiops.cli.run`.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from tuiops.commands import (
    BadUsage,
    BadValue,
    Choice,
    Command,
    CommandContext,
    Float,
    FloatRange,
    Int,
    IntRange,
    Param,
    ParamType,
    PathType,
    Raw,
    Text,
)


def click_type(t: ParamType) -> click.ParamType:
    """The click type of a registry parameter type."""
    if isinstance(t, Text):
        return click.STRING
    if isinstance(t, Raw):
        return click.UNPROCESSED
    if isinstance(t, Int):
        return click.INT
    if isinstance(t, Float):
        return click.FLOAT
    if isinstance(t, IntRange):
        return click.IntRange(t.min, t.max)
    if isinstance(t, FloatRange):
        return click.FloatRange(t.min, t.max, min_open=t.min_open, max_open=t.max_open)
    if isinstance(t, Choice):
        return click.Choice(list(t.choices))
    if isinstance(t, PathType):
        return click.Path(
            exists=t.exists, file_okay=t.file_okay, dir_okay=t.dir_okay, allow_dash=t.allow_dash
        )
    raise TypeError(f"no click type for {t!r}")


def click_param(p: Param) -> click.Parameter:
    """The click option or argument of a registry parameter."""
    extra: dict[str, Any] = {}
    if p.metavar is not None:
        extra["metavar"] = p.metavar
    if p.default is not None:
        # Only a real default is given: click takes an explicit None for a value, and then
        # asks no more for a required option or argument.
        extra["default"] = p.default
    if p.is_argument:
        return click.Argument([p.name], type=click_type(p.type), required=p.required, nargs=p.nargs, **extra)
    decls = list(p.opts)
    if p.flag_value is not None:
        return click.Option(
            [*decls, p.name],
            flag_value=p.flag_value,
            help=p.help,
            show_default=p.show_default,
            envvar=p.envvar,
            hidden=p.hidden,
            **extra,
        )
    if p.secondary:
        decls = [f"{'/'.join(p.opts)}/{'/'.join(p.secondary)}"]
    if p.is_flag:
        extra.pop("default", None)
        return click.Option(
            [*decls, p.name],
            is_flag=True,
            default=p.empty(),
            help=p.help,
            show_default=p.show_default,
            envvar=p.envvar,
            hidden=p.hidden,
            **extra,
        )
    return click.Option(
        [*decls, p.name],
        type=click_type(p.type),
        required=p.required,
        multiple=p.multiple,
        nargs=p.nargs,
        help=p.help,
        show_default=p.show_default,
        envvar=p.envvar,
        hidden=p.hidden,
        **extra,
    )


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _ask(question: str) -> bool:
    return click.confirm(question, default=False, err=True)


def _prompt(question: str) -> str | None:
    return click.prompt(question, hide_input=True, default="", show_default=False, err=True) or None


def _open_app(ws: Any, left: str | None = None, right: str | None = None, images: str = "auto") -> None:
    from tuiops.app import run_app

    run_app(ws, left=left, right=right, images=images)


def context() -> CommandContext:
    """What the command line gives a command: its workspace, progress on stderr, click's
    echo, and on a terminal the questions to the person and the terminal app.

    Questions are asked only on a terminal: elsewhere unknown host keys are refused and no
    password is asked.
    """
    from tuiops.cli import get_workspace, progress_reporter

    asking = _interactive()
    return CommandContext(
        find_workspace=get_workspace,
        progress=progress_reporter,
        echo=click.echo,
        ask=_ask if asking else None,
        prompt=_prompt if asking else None,
        open_app=_open_app,
    )


def click_command(cmd: Command) -> click.Command:
    """The click command that parses ``cmd``'s options, runs it and prints its result."""

    def callback(**values: Any) -> int:
        from tuiops.cli import emit

        try:
            result = cmd.fn(context(), **values)
        except BadValue as exc:
            raise click.BadParameter(str(exc), param_hint=exc.param) from exc
        except BadUsage as exc:
            raise click.UsageError(str(exc)) from exc
        for w in result.warnings:
            click.secho(f"tuiops: warning: {w}", err=True, fg="yellow")
        if result.raw:
            text = result.render()
            if text is not None:
                click.echo(text, nl=not text.endswith("\n"))
        else:
            as_json = bool(values.get("as_json"))
            emit(result.data, as_json, None if as_json else result.render())
        if result.after is not None:
            result.after()
        if result.error is not None:
            raise result.error
        return result.exit_code

    callback.__wrapped__ = cmd.fn  # type: ignore[attr-defined]  # what the command runs, for inspect
    settings = {"ignore_unknown_options": True, "allow_interspersed_args": True} if cmd.passthrough else None
    return click.Command(
        cmd.path[-1],
        callback=callback,
        params=[click_param(p) for p in cmd.params],
        help=cmd.help,
        context_settings=settings,
    )


def add(group: click.Group, path: tuple[str, ...] | str) -> click.Command:
    """Add the registered command at ``path`` to ``group`` (in the order the calls come)."""
    from tuiops.commands import lookup

    key = tuple(path.split()) if isinstance(path, str) else path
    cmd = lookup(key)
    if cmd is None:
        raise KeyError(f"no registered command {' '.join(key)!r}")
    command = click_command(cmd)
    group.add_command(command, key[-1])
    return command
