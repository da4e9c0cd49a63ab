"""The registry: each operation described once — its path, typed parameters, help, function
and result — for every face that runs it.

The command line builds its click commands from these descriptions (``tuiops.cli.build``)
and a script step calls :attr:`Command.fn` directly (``tuiops.script``). A command function
takes a :class:`CommandContext` (the workspace and a progress reporter, given by the face)
and the parameter values by name, and returns a :class:`Result`: the JSON-able data
(``--json``, a script step's outputs) and the text the command line prints.

This module imports no click, textual or rich, and the command modules import the ops
inside their functions, so that ``tuiops --help`` stays instant.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tuiops.progress import ProgressFn


class BadValue(ValueError):
    """A value a parameter's type refuses; the message reads as click's ``Invalid value`` does.

    ``param`` names the parameter where the command, not its type, refuses the value
    (``Invalid value for HOSTS: …``).
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class BadUsage(ValueError):
    """A command called the wrong way (its values agree with their types, not with each
    other); the command line reports it as its usage error, with the usage line."""


# -- parameter types -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Text:
    """Any text (click's STRING)."""

    def convert(self, text: str, *, check_exists: bool = True) -> Any:
        return text


@dataclass(frozen=True)
class Int:
    def convert(self, text: str, *, check_exists: bool = True, kind: str = "integer") -> Any:
        try:
            return int(str(text).strip())
        except ValueError:
            raise BadValue(f"{text!r} is not a valid {kind}.") from None


@dataclass(frozen=True)
class Raw:
    """Text passed on as it is, however it looks (the words of a remote command, options
    included: click's UNPROCESSED)."""

    def convert(self, text: str, *, check_exists: bool = True) -> Any:
        return text


@dataclass(frozen=True)
class Float:
    def convert(self, text: str, *, check_exists: bool = True, kind: str = "float") -> Any:
        try:
            return float(str(text).strip())
        except ValueError:
            raise BadValue(f"{text!r} is not a valid {kind}.") from None


def _range_text(lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False) -> str:
    lop, hop = "<" if lo_open else "<=", "<" if hi_open else "<="
    if lo is not None and hi is not None:
        return f"{lo}{lop}x{hop}{hi}"
    if lo is not None:
        return f"x{lop.replace('<', '>')}{lo}"
    return f"x{hop}{hi}"


@dataclass(frozen=True)
class IntRange:
    min: int | None = None
    max: int | None = None

    def convert(self, text: str, *, check_exists: bool = True) -> Any:
        value = Int().convert(text, kind="integer range")
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise BadValue(f"{value} is not in the range {_range_text(self.min, self.max)}.")
        return value


@dataclass(frozen=True)
class FloatRange:
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def convert(self, text: str, *, check_exists: bool = True) -> Any:
        value = Float().convert(text, kind="float range")
        low = self.min is not None and (value <= self.min if self.min_open else value < self.min)
        high = self.max is not None and (value >= self.max if self.max_open else value > self.max)
        if low or high:
            raise BadValue(
                f"{value} is not in the range {_range_text(self.min, self.max, self.min_open, self.max_open)}."
            )
        return value


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]

    def convert(self, text: str, *, check_exists: bool = True) -> Any:
        if text in self.choices:
            return text
        shown = ", ".join(repr(c) for c in self.choices)
        raise BadValue(f"{text!r} is not one of {shown}.")


@dataclass(frozen=True)
class PathType:
    """A path, given as text (as click.Path passes it); ``exists`` is checked when the command runs."""

    exists: bool = False
    file_okay: bool = True
    dir_okay: bool = True
    allow_dash: bool = False

    def convert(self, text: str, *, check_exists: bool = True) -> Any:
        if not check_exists or (self.allow_dash and text == "-"):
            return text
        what = (
            "File"
            if self.file_okay and not self.dir_okay
            else "Directory"
            if self.dir_okay and not self.file_okay
            else "Path"
        )
        if not os.path.exists(text):
            if self.exists:
                raise BadValue(f"{what} {text!r} does not exist.")
            return text
        if not self.file_okay and os.path.isfile(text):
            raise BadValue(f"{what} {text!r} is a file.")
        if not self.dir_okay and os.path.isdir(text):
            raise BadValue(f"{what} {text!r} is a directory.")
        return text


ParamType = Text | Raw | Int | Float | IntRange | FloatRange | Choice | PathType


# -- parameters, commands, results -----------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One parameter of a command: an option (``opts`` given) or an argument (no ``opts``).

    ``name`` is the function's keyword; a flag (``is_flag``) is true or false and may have
    ``secondary`` names that set it false (``--no-x``); ``multiple`` options and ``nargs=-1``
    arguments give a tuple. A flag with a ``flag_value`` gives that value when set (several
    such flags may share one ``name``: ``--conflicts``, ``--errors`` of ``ops show``).
    """

    name: str
    opts: tuple[str, ...] = ()
    type: ParamType = Text()
    help: str | None = None
    default: Any = None
    required: bool = False
    is_flag: bool = False
    secondary: tuple[str, ...] = ()
    multiple: bool = False
    nargs: int = 1
    show_default: bool | str = False
    metavar: str | None = None
    envvar: str | None = None
    hidden: bool = False
    flag_value: Any = None

    @property
    def is_argument(self) -> bool:
        return not self.opts

    @property
    def primary(self) -> str:
        """The option's first long name (``--iou``), or the argument's name."""
        longs = [o for o in self.opts if o.startswith("--")]
        return longs[0] if longs else (self.opts[0] if self.opts else self.name)

    @property
    def label(self) -> str:
        """How a script (and an error) names it: ``iou`` for ``--iou``, ``sql`` for SQL."""
        if self.is_argument:
            return self.name.lower()
        return self.primary[2:] if self.primary.startswith("--") else self.primary

    @property
    def keys(self) -> set[str]:
        """The script keys that name it: its python name and its long option names."""
        keys = {self.name}
        keys.update(o[2:] for o in (*self.opts, *self.secondary) if o.startswith("--"))
        return {k.replace("-", "_") for k in keys if k}

    @property
    def error_hint(self) -> str:
        """How click names it in an ``Invalid value for …`` message."""
        if self.is_argument:
            return f"'{self.metavar or self.name.upper()}'"
        return " / ".join(f"'{o}'" for o in self.opts)

    @property
    def many(self) -> bool:
        """It takes a list of values (a repeatable option or a variadic argument)."""
        return self.multiple or self.nargs != 1

    def empty(self) -> Any:
        """Its value when not given."""
        if self.is_flag and self.flag_value is not None:
            return self.default
        if self.is_flag:
            # An on/off pair without a default (--hash/--no-hash) is None when not given.
            return None if self.secondary and self.default is None else bool(self.default)
        if self.many:
            return tuple(self.default or ())
        return self.default


def json_param() -> Param:
    return Param("as_json", ("--json",), is_flag=True, help="Print the result as JSON on stdout.")


def quiet_param() -> Param:
    return Param("quiet", ("-q", "--quiet"), is_flag=True, help="No progress output.")


@dataclass
class Result:
    """What a command returns: its data (``--json``, a step's outputs) and the text a person reads.

    ``text`` may be a function, called only when the text is printed.
    """

    data: Any
    text: str | Callable[[], str] | None = None
    exit_code: int = 0
    #: The text is the command's output as it is (``query``): printed without a result event,
    #: with no newline added after one it ends with, and nothing printed for None.
    raw: bool = False
    #: Warnings for the person running it (stderr), printed before the result.
    warnings: list[str] = field(default_factory=list)
    #: An error the command ends with after its result is printed (an import that stored nothing
    #: prints its problems, then fails).
    error: Exception | None = None
    #: What the face does once the result is printed (the demo opens the app on its workspace).
    after: Callable[[], None] | None = None

    def render(self) -> str | None:
        return self.text() if callable(self.text) else self.text


ProgressFactory = Callable[..., contextlib.AbstractContextManager[ProgressFn]]


@contextlib.contextmanager
def _no_progress(label: str, *, quiet: bool = False) -> Iterator[ProgressFn]:
    yield lambda ev: None


def print_text(text: str, *, err: bool = False, nl: bool = True) -> None:
    """Write text on stdout (stderr with ``err``) as the command goes."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + ("\n" if nl else ""))
    stream.flush()


Echo = Callable[..., None]


@dataclass
class CommandContext:
    """What a face gives a command: its workspace (found when first asked), progress, a way
    to print as it goes (``echo(text, err=False, nl=True)``: what a follower prints line by
    line), and what only a terminal has: questions to the person (``ask`` a yes/no,
    ``prompt`` for a secret; None where nobody can answer) and ``open_app(workspace,
    left=…, right=…)``, which runs the terminal app (None where the face cannot)."""

    find_workspace: Callable[[], Any]
    progress: ProgressFactory = _no_progress
    echo: Echo = print_text
    ask: Callable[[str], bool] | None = None
    prompt: Callable[[str], str | None] | None = None
    open_app: Callable[..., None] | None = None
    _ws: Any = None

    @property
    def workspace(self) -> Any:
        if self._ws is None:
            self._ws = self.find_workspace()
        return self._ws


@dataclass(frozen=True)
class Command:
    """One operation: its path (``("match",)``, ``("labels", "import")``), parameters in the
    order ``--help`` lists them, help text and function."""

    path: tuple[str, ...]
    params: tuple[Param, ...]
    fn: Callable[..., Result]
    help: str | None = None
    #: Its last argument takes the words after it as they are, options included
    #: (``remote run HOSTS -- COMMAND …``).
    passthrough: bool = False

    @property
    def op(self) -> str:
        return " ".join(self.path)

    @property
    def has_json(self) -> bool:
        return any(p.name == "as_json" for p in self.params)

    def param(self, key: str) -> Param | None:
        """The parameter a script key (``iou``, ``split-file``, ``split_files``) names."""
        key = key.strip().replace("-", "_")
        for p in self.params:
            if key in p.keys:
                return p
        return None

    def call(self, ctx: CommandContext, values: dict[str, Any]) -> Result:
        """Run it with the given values (converted already); the others take their defaults."""
        kwargs = {p.name: values[p.name] if p.name in values else p.empty() for p in self.params}
        return self.fn(ctx, **kwargs)


REGISTRY: dict[tuple[str, ...], Command] = {}


def command(
    path: str, *params: Param, help: str | None = None, passthrough: bool = False
) -> Callable[[Callable[..., Result]], Command]:
    """Register the decorated function as the command ``path`` (words separated by spaces)."""

    def deco(fn: Callable[..., Result]) -> Command:
        cmd = Command(
            tuple(path.split()), tuple(params), fn, help if help is not None else fn.__doc__, passthrough
        )
        REGISTRY[cmd.path] = cmd
        return cmd

    return deco


def lookup(path: tuple[str, ...]) -> Command | None:
    """The registered command at ``path``, if it is described here."""
    _load()
    return REGISTRY.get(tuple(path))


def all_commands() -> list[Command]:
    _load()
    return list(REGISTRY.values())


def _load() -> None:
    # `run` and `runs list|show` run scripts of these commands: the script package registers
    # them (tuiops.script.commands), and the faces that offer them import it.
    from tuiops.commands import (  # noqa: F401
        analysis,
        engine,
        fileops,
        labels,
        meta,
        projects,
        query,
        remote,
        report,
        review,
        scan,
        train_runs,
        training,
        workspace,
    )


__all__ = [
    "BadUsage",
    "BadValue",
    "Choice",
    "Command",
    "CommandContext",
    "Float",
    "FloatRange",
    "Int",
    "IntRange",
    "Param",
    "PathType",
    "Raw",
    "Result",
    "Text",
    "all_commands",
    "command",
    "json_param",
    "lookup",
    "print_text",
    "quiet_param",
]
