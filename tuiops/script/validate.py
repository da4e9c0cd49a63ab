"""Checking a script against the commands before anything runs.

Each step's ``op`` must be a tuiops command (``dataset build``, ``match`` …) and its params
that command's option or argument names (hyphen or underscore); required params must be
there, and every value already known (not an earlier step's output) must pass the
parameter's type as the registry describes it (a Path is not required to exist yet: an
earlier step may make it). Every ``${…}`` must be defined, ``${steps.X.…}`` must name an
earlier step whose command prints JSON, and every ``when:`` must parse. Mistakes raise
:class:`InputError` with the file and line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import tuiops.script.commands  # noqa: F401  (registers run and runs …: known to scripts, refused as steps)
from tuiops.commands import BadValue, Choice, Command, all_commands, lookup
from tuiops.commands import Param as CmdParam
from tuiops.errors import InputError
from tuiops.script.expr import (
    BUILTINS,
    Condition,
    Deferred,
    Ref,
    Undefined,
    find_refs,
    interpolate,
    is_deferred,
    to_text,
)
from tuiops.script.parse import Loc, Param, Script, Step

#: Commands a script may not call: scripts do not nest, and the app needs a terminal.
FORBIDDEN_OPS = ("run", "runs", "tui")


@dataclass
class CommandInfo:
    """A command a step can run and its parameters, in the order its ``--help`` lists them."""

    path: tuple[str, ...]
    params: tuple[CmdParam, ...]
    #: The registry's description: a step calls its function.
    command: Command
    #: The command prints JSON with ``--format json`` (``query``) rather than ``--json``.
    json_format: bool = False
    by_key: dict[str, CmdParam] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for p in self.params:
            for k in sorted(p.keys):
                self.by_key.setdefault(k, p)
        if self.has_json:
            self.json_format = False

    @property
    def op(self) -> str:
        return " ".join(self.path)

    @property
    def has_json(self) -> bool:
        return any(p.name == "as_json" or "--json" in p.opts for p in self.params)


@dataclass
class Checked:
    """A validated step: its command and its parameters."""

    step: Step
    info: CommandInfo
    params: list[tuple[CmdParam, Param]] = field(default_factory=list)
    when: Condition | None = None


def _key(name: str) -> str:
    return name.strip().replace("-", "_")


def registry_info(command: Command) -> CommandInfo:
    """The step view of a registered command."""
    json_format = any(
        "--format" in p.opts and isinstance(p.type, Choice) and "json" in p.type.choices
        for p in command.params
    )
    return CommandInfo(command.path, command.params, command, json_format)


def json_args(info: CommandInfo, step: Step) -> list[str] | None:
    """The words that make a step's command print JSON (its outputs), or None when it cannot."""
    if info.has_json:
        return ["--json"]
    if info.json_format and not any(_key(k) in ("format", "output", "o") for k in step.params):
        return ["--format", "json"]
    return None


def subcommands(prefix: tuple[str, ...]) -> list[str]:
    """The words that can follow ``tuiops PREFIX`` (in the order the commands are described)."""
    n = len(prefix)
    words = [c.path[n] for c in all_commands() if len(c.path) > n and c.path[:n] == prefix]
    return list(dict.fromkeys(words))


def resolve_op(op: str, loc: Loc) -> CommandInfo:
    """The command an op names; an error with the line when there is none."""
    path: tuple[str, ...] = ()
    for part in op.split():
        if lookup(path) is not None:
            raise InputError(
                f"{loc}: unknown op {op!r}: `tuiops {' '.join(path)}` has no subcommands",
                hint="`tuiops --help` and docs/commands.md list the commands",
            )
        known = subcommands(path)
        if part not in known:
            where = f"tuiops {' '.join(path)}" if path else "tuiops"
            raise InputError(
                f"{loc}: unknown op {op!r}: {where} has no command {part!r}",
                hint=f"known: {', '.join(sorted(known))}",
            )
        path = (*path, part)
    command = lookup(path)
    if command is None:
        subs = ", ".join(f"{op} {name}" for name in subcommands(path))
        raise InputError(f"{loc}: op {op!r} is a group of commands", hint=f"name one of them: {subs}")
    if path[0] in FORBIDDEN_OPS:
        raise InputError(
            f"{loc}: op {op!r} cannot be a step",
            hint="scripts do not run other scripts or the terminal app; use include: to reuse steps",
        )
    return registry_info(command)


def _param_label(p: CmdParam) -> str:
    return p.label


class Scope:
    """What references resolve to: variables, the environment, and the steps' outputs so far."""

    def __init__(
        self,
        variables: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        builtins: Mapping[str, Any] | None = None,
    ) -> None:
        self.variables = dict(variables)
        self.env = os.environ if env is None else env
        self.builtins = dict(builtins or {})
        self.outputs: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str] = {}
        #: At validation: step name → index and whether it has outputs; the step being checked.
        self.order: dict[str, tuple[int, bool]] = {}
        self.current = -1
        self.validating = False

    def resolve(self, ref: Ref) -> Any:
        if ref.kind == "var":
            if ref.name in self.variables:
                return self.variables[ref.name]
            if ref.name in self.builtins:
                return self.builtins[ref.name]
            if ref.name in BUILTINS and self.validating:
                return Deferred(ref)
            raise Undefined(f"no variable {ref.name!r} (define it under vars: or give --var {ref.name}=…)")
        if ref.kind == "env":
            if ref.name in self.env:
                return self.env[ref.name]
            raise Undefined(f"the environment has no {ref.name}")
        if self.validating:
            found = self.order.get(ref.name)
            if found is None:
                raise Undefined(f"there is no step {ref.name!r}")
            if found[0] >= self.current:
                raise Undefined(f"step {ref.name!r} does not run before this one")
            if not found[1]:
                raise Undefined(f"step {ref.name!r} runs a command that prints no JSON: it has no outputs")
            return Deferred(ref)
        if ref.name not in self.outputs:
            status = self.status.get(ref.name, "not run")
            raise Undefined(f"step {ref.name!r} was {status}: it has no outputs")
        value: Any = self.outputs[ref.name]
        for i, key in enumerate(ref.path):
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif (
                isinstance(value, list) and key.lstrip("-").isdigit() and -len(value) <= int(key) < len(value)
            ):
                value = value[int(key)]
            else:
                have = (
                    ", ".join(sorted(map(str, value))[:20])
                    if isinstance(value, dict)
                    else type(value).__name__
                )
                at = ".".join(ref.path[:i]) or "its output"
                raise Undefined(f"step {ref.name!r}: {at} has no {key!r} (it has: {have})")
        return value


def _convert(info: CommandInfo, p: CmdParam, texts: list[str], loc: Loc, step: Step) -> None:
    for text in texts:
        try:
            p.type.convert(text, check_exists=False)
        except BadValue as exc:
            raise InputError(
                f"{loc}: step {step.name!r} ({info.op}): {p.label}: Invalid value for {p.error_hint}: {exc}",
                hint=f"see `tuiops {info.op} --help`",
            ) from exc


def convert_value(p: CmdParam, value: Any) -> Any:
    """A resolved step value as the command's function takes it (a path must exist now if
    the command says so); :class:`BadValue` when its type refuses it."""
    if p.is_flag:
        return bool(value)
    if p.many:
        vals = value if isinstance(value, list) else [value]
        if p.multiple and p.nargs > 1:
            return tuple(
                tuple(p.type.convert(to_text(x)) for x in (g if isinstance(g, list) else [g])) for g in vals
            )
        return tuple(p.type.convert(to_text(v)) for v in vals)
    return p.type.convert(to_text(value))


def param_texts(p: CmdParam, value: Any, loc: Loc, step: Step, op: str) -> list[str]:
    """The command-line words of one parameter's value (without the option name)."""
    label = _param_label(p)
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not p.many:
        raise InputError(f"{loc}: step {step.name!r} ({op}): {label} takes one value, not a list")
    if not p.is_argument and p.nargs > 1 and not p.multiple and len(values) != p.nargs:
        raise InputError(f"{loc}: step {step.name!r} ({op}): {label} takes {p.nargs} values (a list)")
    for v in values:
        if isinstance(v, dict):
            raise InputError(f"{loc}: step {step.name!r} ({op}): {label}: a mapping is not a value")
    return [to_text(v) for v in values]


def flag_value(p: CmdParam, value: Any, loc: Loc, step: Step, op: str) -> bool:
    """A flag's value: true or false."""
    if isinstance(value, bool):
        return value
    text = to_text(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0", ""):
        return False
    raise InputError(
        f"{loc}: step {step.name!r} ({op}): {_param_label(p)} is a flag: give true or false, not {value!r}"
    )


def build_argv(checked: Checked, values: Mapping[str, Any]) -> list[str]:
    """The command's arguments (after its path) for resolved parameter values."""
    step, info = checked.step, checked.info
    opts: list[str] = []
    args: list[str] = []
    for p, param in checked.params:
        value = values[param.key]
        if p.is_flag:
            v = flag_value(p, value, param.loc, step, info.op)
            if v:
                opts.append(p.primary)
            elif p.secondary:
                opts.append(p.secondary[0])
            continue
        if value is None:
            continue
        texts = param_texts(p, value, param.loc, step, info.op)
        if p.is_argument:
            args.extend(texts)
        elif p.nargs > 1 and not p.multiple:
            opts.append(p.primary)
            opts.extend(texts)
        elif p.multiple and p.nargs > 1:
            vals = value if isinstance(value, list) else [value]
            for group in vals:
                opts.append(p.primary)
                opts.extend(to_text(x) for x in (group if isinstance(group, list) else [group]))
        else:
            for t in texts:
                opts.append(p.primary)
                opts.append(t)
    if any(a.startswith("-") for a in args):
        return [*opts, "--", *args]
    return [*opts, *args]


def check_step(step: Step, scope: Scope) -> Checked:
    """Check one step's op, params and condition against its command and the scope."""
    info = resolve_op(step.op, step.op_loc)
    checked = Checked(step, info)
    seen: dict[int, Param] = {}
    for key, param in step.params.items():
        p = info.by_key.get(_key(key))
        if p is None:
            known = ", ".join(sorted({q.label for q in info.params}))
            raise InputError(
                f"{param.loc}: step {step.name!r} ({info.op}) has no parameter {key!r}",
                hint=f"`tuiops {info.op}` takes: {known}",
            )
        if id(p) in seen:
            raise InputError(f"{param.loc}: step {step.name!r}: {key!r} repeats {seen[id(p)].key!r}")
        seen[id(p)] = param
        if p.name == "as_json":
            continue
        checked.params.append((p, param))
        for ref in find_refs(param.value, str(param.loc)):
            interpolate(ref.text, scope.resolve, str(param.loc))
        value = interpolate(param.value, scope.resolve, str(param.loc))
        if p.is_flag:
            if not is_deferred(value):
                flag_value(p, value, param.loc, step, info.op)
            continue
        if value is None:
            continue
        if isinstance(value, list):
            texts = [to_text(v) for v in value if not isinstance(v, Deferred)]
            param_texts(p, value, param.loc, step, info.op)
        elif isinstance(value, Deferred):
            texts = []
        else:
            texts = param_texts(p, value, param.loc, step, info.op)
        if not p.is_argument and p.nargs > 1:
            continue
        _convert(info, p, texts, param.loc, step)
    for p in info.params:
        if p.required and id(p) not in seen:
            raise InputError(
                f"{step.loc}: step {step.name!r} ({info.op}) needs {_param_label(p)}",
                hint=f"add it under params: (see `tuiops {info.op} --help`)",
            )
    order = {id(p): i for i, p in enumerate(info.params)}
    checked.params.sort(key=lambda pp: order.get(id(pp[0]), 0))
    if step.when is not None:
        loc = step.when_loc or step.loc
        cond = Condition(step.when, str(loc))
        for ref in cond.refs():
            interpolate(ref.text, scope.resolve, str(loc))
        _check_condition(cond, scope)
        checked.when = cond
    return checked


class _Unknown(Exception):
    """A condition refers to a value known only when the run gets there."""


def _check_condition(cond: Condition, scope: Scope) -> None:
    """Decide a condition whose values are all known now, so that a type mismatch
    (``${set} > 3``) stops the script before anything runs."""

    def known(ref: Ref) -> Any:
        value = scope.resolve(ref)
        if isinstance(value, Deferred):
            raise _Unknown
        return value

    try:
        cond.evaluate(known)
    except _Unknown:
        pass


def validate(
    script: Script, variables: Mapping[str, Any], *, env: Mapping[str, str] | None = None
) -> list[Checked]:
    """Check every step of ``script``; returns them ready to run, or raises naming the line."""
    scope = Scope(variables, env=env)
    scope.validating = True
    for i, step in enumerate(script.steps):
        try:
            info_json = json_args(resolve_op(step.op, step.op_loc), step) is not None
        except InputError:
            info_json = True
        scope.order[step.name] = (i, info_json)
    for name, param in script.vars.items():
        for ref in find_refs(param.value, str(param.loc)):
            if ref.kind == "steps":
                raise InputError(
                    f"{param.loc}: variable {name!r} refers to a step output {ref.text}; vars are set before any step runs"
                )
    out = []
    for i, step in enumerate(script.steps):
        scope.current = i
        out.append(check_step(step, scope))
    return out


def script_variables(
    script: Script, overrides: Mapping[str, str], *, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The script's variables: its defaults (which may use ``${env.X}`` and earlier vars), then ``--var``."""
    scope = Scope({}, env=env)
    values: dict[str, Any] = {}
    for name, param in script.vars.items():
        if name in overrides:
            values[name] = overrides[name]
        else:
            scope.variables = dict(values)
            values[name] = interpolate(param.value, scope.resolve, str(param.loc))
    for name, value in overrides.items():
        values[name] = value
    return values
