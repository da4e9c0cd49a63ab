"""The click path for commands not yet described in the registry (:mod:`tuiops.commands`).

Steps of a registered command are checked against its parameter types and run by calling
its function; a step of a command that only exists as a click command still has its
parameters read from, and its run go through, the click tree. This module is the only
part of ``tuiops.script`` that imports click: it goes away with the last such command.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from tuiops.commands import BadValue, Param


def root_command() -> click.Group:
    from tuiops.cli import cli

    return cli


def root_settings() -> dict[str, Any]:
    """The root command's context settings (its help option names among them), for a context
    made for a leaf command alone.

    click keeps the help option a command first builds, so a context without these settings
    would change that command's help for the rest of the process.
    """
    return dict(root_command().context_settings)


@dataclass(frozen=True)
class ClickType:
    """A click parameter's own type, converting as the click command would."""

    command: click.Command
    param: click.Parameter
    name: str

    @property
    def choices(self) -> tuple[str, ...]:
        t = self.param.type
        return tuple(str(c) for c in t.choices) if isinstance(t, click.Choice) else ()

    def convert(self, text: str, *, check_exists: bool = True) -> Any:
        import copy

        ptype: click.ParamType = self.param.type
        if isinstance(ptype, click.File):
            return text
        if isinstance(ptype, click.Path) and ptype.exists and not check_exists:
            unchecked = copy.copy(ptype)
            unchecked.exists = False
            ptype = unchecked
        ctx = click.Context(self.command, info_name=self.name, resilient_parsing=True, **root_settings())
        try:
            return ptype.convert(text, self.param, ctx)
        except click.BadParameter as exc:
            raise BadValue(exc.message) from exc
        except click.ClickException as exc:
            raise BadValue(exc.format_message()) from exc


def describe(path: tuple[str, ...], command: click.Command) -> tuple[tuple[Param, ...], bool]:
    """A click command's parameters as registry parameters, and whether it prints JSON with
    ``--format json`` (``query``)."""
    out = []
    json_format = False
    for p in command.params:
        if isinstance(p, click.Option) and "--help" in p.opts:
            continue
        if "--format" in p.opts and isinstance(p.type, click.Choice) and "json" in p.type.choices:
            json_format = True
        is_option = isinstance(p, click.Option)
        out.append(
            Param(
                p.name or "",
                tuple(p.opts) if is_option else (),
                type=ClickType(command, p, path[-1]),  # type: ignore[arg-type]
                default=p.default,
                required=p.required,
                is_flag=isinstance(p, click.Option) and p.is_flag,
                secondary=tuple(p.secondary_opts),
                multiple=p.multiple,
                nargs=p.nargs,
                metavar=p.metavar,
            )
        )
    return tuple(out), json_format


def resolve(op: str, loc: Any) -> tuple[tuple[str, ...], click.Command]:
    """The click command an op names; an error with the line when there is none."""
    from tuiops.errors import InputError

    node: click.Command = root_command()
    path: list[str] = []
    for part in op.split():
        if not isinstance(node, click.Group):
            raise InputError(
                f"{loc}: unknown op {op!r}: `tuiops {' '.join(path)}` has no subcommands",
                hint="`tuiops --help` and docs/commands.md list the commands",
            )
        sub = node.commands.get(part)
        if sub is None:
            known = ", ".join(sorted(node.commands))
            where = f"tuiops {' '.join(path)}" if path else "tuiops"
            raise InputError(
                f"{loc}: unknown op {op!r}: {where} has no command {part!r}", hint=f"known: {known}"
            )
        path.append(part)
        node = sub
    if isinstance(node, click.Group):
        subs = ", ".join(f"{op} {name}" for name in node.commands)
        raise InputError(f"{loc}: op {op!r} is a group of commands", hint=f"name one of them: {subs}")
    return tuple(path), node


def invoke(root: Path, path: tuple[str, ...], args: list[str], json_args: list[str] | None, tee: Any) -> Any:
    """Run ``tuiops -w ROOT PATH ARGS [--json]`` through click in this process; returns the
    outcome and what it printed on stdout."""
    from tuiops.errors import Cancelled, TuiopsError
    from tuiops.script.runner import StepOutcome

    argv = ["-w", str(root), *path, *args]
    if json_args:
        i = args.index("--") if "--" in args else len(args)
        argv = ["-w", str(root), *path, *args[:i], *json_args, *args[i:]]
    out = io.StringIO()
    outcome: StepOutcome
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(tee):
        try:
            rv = root_command().main(args=argv, prog_name="tuiops", standalone_mode=False)
            code = rv if isinstance(rv, int) else 0
            outcome = StepOutcome("done" if code == 0 else "failed", code)
            if code:
                outcome.error = f"exit code {code}"
        except Cancelled as exc:
            outcome = StepOutcome("cancelled", 130, error=exc.message, hint=exc.hint)
        except TuiopsError as exc:
            outcome = StepOutcome("failed", exc.exit_code, error=exc.message, hint=exc.hint)
        except click.exceptions.Abort:
            outcome = StepOutcome("cancelled", 130, error="interrupted")
        except KeyboardInterrupt:
            outcome = StepOutcome("cancelled", 130, error="interrupted")
        except click.exceptions.Exit as exc:
            code = int(exc.exit_code or 0)
            outcome = StepOutcome("done" if code == 0 else "failed", code)
            if code:
                outcome.error = f"exit code {code}"
        except click.ClickException as exc:
            outcome = StepOutcome("failed", 2, error=exc.format_message())
        except Exception as exc:
            outcome = StepOutcome("failed", 1, error=f"{type(exc).__name__}: {exc}")
    return outcome, out.getvalue()


def parse_argv(path: tuple[str, ...], command: click.Command, args: list[str]) -> dict[str, Any]:
    """The explicitly given parameters of ``tuiops PATH ARGS`` by parameter name (parsed, not run)."""
    from click.core import ParameterSource

    from tuiops.errors import UsageError

    try:
        ctx = command.make_context(path[-1], args, resilient_parsing=True, **root_settings())
    except click.ClickException as exc:
        raise UsageError(f"cannot read `tuiops {' '.join([*path, *args])}`: {exc.format_message()}") from exc
    out: dict[str, Any] = {}
    for p in command.params:
        if p.name in (None, "as_json", "help"):
            continue
        if ctx.get_parameter_source(p.name) != ParameterSource.COMMANDLINE:
            continue
        out[p.name] = ctx.params.get(p.name)
    return out


def split_path(args: list[str]) -> tuple[tuple[str, ...], bool, list[str]]:
    """The command path at the start of ``args`` (per the click tree), whether it names a
    leaf command, and the rest."""
    node: click.Command = root_command()
    path: list[str] = []
    args = list(args)
    while isinstance(node, click.Group) and args and args[0] in node.commands:
        path.append(args[0])
        node = node.commands[args.pop(0)]
    return tuple(path), not isinstance(node, click.Group), args


def command_at(path: tuple[str, ...]) -> click.Command:
    node: click.Command = root_command()
    for part in path:
        node = node.commands[part]  # type: ignore[attr-defined]
    return node
