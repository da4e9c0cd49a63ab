"""Recording what was done in the app as a script, so a one-off triage becomes a batch.

The app tells a :class:`Recorder` every tuiops command it ran and every file operation it
carried out (as its ``ops copy|move|delete`` equivalent, the selection written out as a
``--where`` over file ids and its pool). :meth:`Recorder.save` writes them as a script —
one step per action, with the parameters that were given — and validates it before it is
put in place.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.commands import BadValue, Command, lookup
from tuiops.errors import InputError, UsageError
from tuiops.script.validate import FORBIDDEN_OPS

if TYPE_CHECKING:
    import numpy as np


@dataclass
class RecordedStep:
    """One recorded action: a command path and its parameters by script key."""

    op: tuple[str, ...]
    params: dict[str, Any]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str):
        return value.replace("${", "$${")
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def command_params(argv: Sequence[str]) -> RecordedStep:
    """The op and the explicitly given parameters of ``tuiops ARGV`` (parsed, not run)."""
    args = list(argv)
    if args and args[0] == "tuiops":
        args = args[1:]
    while args and args[0] in ("-w", "--workspace"):
        args = args[2:]
    command = None
    for n in (3, 2, 1):
        command = lookup(tuple(args[:n])) if len(args) >= n else None
        if command is not None:
            args = args[n:]
            break
    if command is None:
        raise UsageError(f"`tuiops {' '.join(argv)}` is not a command that can be a step")
    if command.path[0] in FORBIDDEN_OPS:
        raise UsageError(f"`tuiops {command.path[0]}` cannot be a step")
    given = parse_args(command, args, argv)
    order = dict.fromkeys(p.label for p in command.params)  # as `--help` lists them
    params = {label: _plain(given[label]) for label in order if label in given}
    params = {k: v for k, v in params.items() if v is not None and v != []}
    return RecordedStep(command.path, params)


def parse_args(command: Command, args: list[str], argv: Sequence[str]) -> dict[str, Any]:
    """The parameters given in ``args`` by their script key (``iou``, ``errors`` for the flag
    ``--errors``), converted to their types (a path need not exist); ``--json`` and ``--help``
    are left out."""

    def fail(why: str) -> UsageError:
        return UsageError(f"cannot read `tuiops {' '.join(argv)}`: {why}")

    by_opt = {o: p for p in command.params for o in p.opts}
    negative = {o: p for p in command.params for o in p.secondary}
    out: dict[str, Any] = {}
    positional: list[str] = []
    i, only_positional = 0, False
    while i < len(args):
        word = args[i]
        i += 1
        if only_positional or word == "-" or not word.startswith("-"):
            positional.append(word)
            continue
        if word == "--":
            only_positional = True
            continue
        name, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in ("-h", "--help"):
            continue
        if name in negative:
            out[negative[name].label] = False
            continue
        p = by_opt.get(name)
        if p is None and command.passthrough:
            positional.append(word)  # a word of the command it passes on (remote run … ls -la)
            continue
        if p is None:
            raise fail(f"No such option: {name}")
        if p.is_flag:
            out[p.label] = True
            continue
        values = [inline] if eq else []
        while len(values) < p.nargs:
            if i >= len(args):
                raise fail(f"Option {name!r} requires an argument.")
            values.append(args[i])
            i += 1
        try:
            got = [p.type.convert(v, check_exists=False) for v in values]
        except BadValue as exc:
            raise fail(f"Invalid value for {p.error_hint}: {exc}") from exc
        value: Any = got[0] if p.nargs == 1 else got
        if p.multiple:
            out.setdefault(p.label, []).append(value)
        else:
            out[p.label] = value
    for p in command.params:
        if not p.is_argument or not positional:
            continue
        n = len(positional) if p.nargs == -1 else max(p.nargs, 1)
        words, positional = positional[:n], positional[n:]
        try:
            got = [p.type.convert(w, check_exists=False) for w in words]
        except BadValue as exc:
            raise fail(f"Invalid value for {p.error_hint}: {exc}") from exc
        out[p.label] = got if p.nargs != 1 else got[0]
    if positional:
        raise fail(f"Got unexpected extra argument ({' '.join(positional)})")
    out.pop("json", None)
    return out


class Recorder:
    """The actions of one app session, in the order they were done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: dict[Any, RecordedStep] = {}
        self._seq = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._steps)

    @property
    def steps(self) -> list[RecordedStep]:
        with self._lock:
            return list(self._steps.values())

    def _add(self, step: RecordedStep, key: Any | None) -> Any:
        with self._lock:
            self._seq += 1
            key = key if key is not None else ("auto", self._seq)
            self._steps[key] = step
            return key

    def add_command(self, argv: Sequence[str], key: Any | None = None) -> Any | None:
        """Record ``tuiops ARGV``; returns its key, or None when it cannot be a step (``run``, ``tui``)."""
        try:
            step = command_params(argv)
        except UsageError:
            return None
        return self._add(step, key)

    def add_file_op(
        self,
        op: str,
        file_ids: Sequence[int] | np.ndarray,
        pool: str | None,
        target: str | None = None,
        on_conflict: str = "fail",
        key: Any | None = None,
    ) -> Any:
        """Record a copy/move/delete of files as ``ops copy|move|delete --where file_id …``."""
        from tuiops.ops.browse import where_for_ids

        if op not in ("copy", "move", "delete"):
            raise UsageError(f"unknown file operation {op!r}")
        params: dict[str, Any] = {"where": where_for_ids(list(file_ids))}
        if pool:
            params["pool"] = [pool]
        if op != "delete" and target:
            params["to"] = _plain(str(target))
        if on_conflict != "fail":
            params["on-conflict"] = on_conflict
        return self._add(RecordedStep(("ops", op), params), key)

    def discard(self, key: Any) -> None:
        """Forget an action (it failed or was cancelled)."""
        with self._lock:
            self._steps.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._steps.clear()

    def to_yaml(self, *, name: str = "recorded session", workspace: str | None = None) -> str:
        """The recorded actions as script text."""
        import yaml

        steps = []
        taken: set[str] = set()
        for s in self.steps:
            base = "_".join(s.op).replace("-", "_")
            step_name, n = base, 2
            while step_name in taken:
                step_name, n = f"{base}_{n}", n + 1
            taken.add(step_name)
            entry: dict[str, Any] = {"name": step_name, "op": " ".join(s.op)}
            if s.params:
                entry["params"] = s.params
            steps.append(entry)
        when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        head = f"# Recorded in the tuiops app on {when}" + (f" in workspace {workspace}" if workspace else "")
        head += ".\n# Run it again with `tuiops run FILE` (check it first with --dry-run).\n"
        body = yaml.safe_dump(
            {"name": name, "description": f"{len(steps)} recorded actions", "steps": steps},
            sort_keys=False,
            allow_unicode=True,
            width=100,
        )
        return head + body

    def save(
        self, path: str | os.PathLike[str], *, workspace: str | None = None, overwrite: bool = True
    ) -> Path:
        """Write the script to ``path`` once it validates; returns the path written."""
        from tuiops.errors import ConflictError
        from tuiops.fsutil import atomic_write_text, disk_error
        from tuiops.script.parse import load_script
        from tuiops.script.validate import validate

        if not len(self):
            raise UsageError("nothing recorded yet", hint="run commands or file operations first")
        target = Path(path).expanduser()
        if target.exists() and not overwrite:
            raise ConflictError(f"{target} exists already", hint="choose another name")
        text = self.to_yaml(name=target.stem, workspace=workspace)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise disk_error(target.parent, exc, "create") from exc
        with tempfile.TemporaryDirectory(prefix=".tuiops-record-", dir=target.parent) as tmp:
            probe = Path(tmp) / target.name
            probe.write_text(text, encoding="utf-8")
            try:
                validate(load_script(probe), {})
            except InputError as exc:
                raise InputError(
                    f"the recorded script does not validate: {exc.message}", hint=exc.hint
                ) from exc
        atomic_write_text(target, text)
        return target
