"""Reading a ``tuiops run`` script: YAML steps with the line each value came from.

A script is a YAML mapping::

    name: pitstop cycle            # optional
    description: …                 # optional
    vars:                          # defaults; `--var k=v` overrides them
      set: master
    steps:
      - name: build                # unique across the script and its includes
        op: dataset build          # a tuiops command path
        params:                    # that command's option and argument names
          set: ${set}
          to: datasets/${set}
        when: ${steps.x.count} > 0 # optional condition (see tuiops.script.expr)
      - include: common.yaml       # inlines that file's steps (path relative to this file)

Every value keeps its file and line (from :func:`yaml.compose` node marks), so that
validation can point at the line of each mistake.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiops.errors import InputError

STEP_NAME_RX = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
VAR_NAME_RX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TOP_KEYS = ("name", "description", "vars", "steps")
STEP_KEYS = ("name", "op", "params", "when")


@dataclass(frozen=True)
class Loc:
    """Where a value was written: file and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Param:
    """One parameter (or variable) as written: its key, value and place."""

    key: str
    value: Any
    loc: Loc


@dataclass
class Step:
    """One step: a tuiops command with its parameters and an optional condition."""

    name: str
    op: str
    params: dict[str, Param]
    loc: Loc
    op_loc: Loc
    when: str | None = None
    when_loc: Loc | None = None


@dataclass
class Script:
    """A parsed script with its includes inlined."""

    path: Path
    name: str
    description: str
    vars: dict[str, Param]
    steps: list[Step]
    files: list[Path] = field(default_factory=list)
    sha256: str = ""

    def step_index(self, name: str) -> int:
        for i, s in enumerate(self.steps):
            if s.name == name:
                return i
        raise KeyError(name)


def _err(loc: Loc | str, message: str, hint: str | None = None) -> InputError:
    return InputError(f"{loc}: {message}", hint=hint)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _loc(file: str, node: Any) -> Loc:
    return Loc(file, node.start_mark.line + 1)


def _compose(path: Path, shown: str) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"script {shown} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read script {shown}: {exc}") from exc
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{shown}{line}: not valid YAML: {problem}") from exc


def _scalar(node: Any, file: str) -> Any:
    import yaml
    from yaml.constructor import SafeConstructor

    if isinstance(node, yaml.ScalarNode):
        try:
            value = SafeConstructor().construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise _err(_loc(file, node), f"cannot read value {node.value!r}: {exc}") from exc
        return _as_written(node, value)
    if isinstance(node, yaml.SequenceNode):
        out = []
        for item in node.value:
            if not isinstance(item, yaml.ScalarNode):
                raise _err(_loc(file, item), "a list of parameter values may hold only plain values")
            out.append(_scalar(item, file))
        return out
    raise _err(_loc(file, node), "expected a value or a list of values, not a mapping")


def _as_written(node: Any, value: Any) -> Any:
    """A plain value YAML 1.1 would read as something else than what it shows stays text.

    ``010`` (octal 8), ``1:30`` (90), ``1.10`` (1.1), ``no``/``off``/``y`` (false/true) and
    ``0x1F`` are kept as written, so a name or a version reaches the command unchanged;
    ``3``, ``0.5``, ``true``, ``null`` keep their types.
    """
    import math

    if value is None or isinstance(value, str) or node.style is not None:
        return value
    if isinstance(value, bool):
        return value if node.value.lower() in ("true", "false") else node.value
    if isinstance(value, float) and not math.isfinite(value):
        return value
    if isinstance(value, int | float):
        return value if str(value) == node.value else node.value
    return node.value


def _mapping(node: Any, file: str, what: str) -> list[tuple[str, Any, Any]]:
    """The (key, key node, value node) entries of a mapping node; duplicate keys are an error."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise _err(_loc(file, node), f"{what} must be a mapping (key: value lines)")
    seen: dict[str, Loc] = {}
    out = []
    for knode, vnode in node.value:
        if not isinstance(knode, yaml.ScalarNode):
            raise _err(_loc(file, knode), f"a key of {what} must be plain text")
        key = str(knode.value)
        loc = _loc(file, knode)
        if key in seen:
            raise _err(loc, f"{key!r} appears twice in {what} (first at line {seen[key].line})")
        seen[key] = loc
        out.append((key, knode, vnode))
    return out


def _text(node: Any, file: str, what: str) -> str:
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        raise _err(_loc(file, node), f"{what} must be plain text")
    value = _scalar(node, file)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def load_script(path: str | Path) -> Script:
    """Read a script and its includes; raises :class:`InputError` naming the line of a mistake."""
    path = Path(path).expanduser().resolve()
    steps: list[Step] = []
    variables: dict[str, Param] = {}
    files: list[Path] = []
    header: dict[str, str] = {}
    _load_into(path, steps, variables, files, header, stack=[])
    names: dict[str, Step] = {}
    for s in steps:
        if s.name in names:
            raise _err(
                s.loc,
                f"step name {s.name!r} is used twice (also at {names[s.name].loc})",
                hint="step names must be unique across the script and its includes",
            )
        names[s.name] = s
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f).encode("utf-8") + b"\0")
        digest.update(f.read_bytes() + b"\0")
    return Script(
        path=path,
        name=header.get("name") or path.stem,
        description=header.get("description", ""),
        vars=variables,
        steps=steps,
        files=files,
        sha256=digest.hexdigest(),
    )


def _load_into(
    path: Path,
    steps: list[Step],
    variables: dict[str, Param],
    files: list[Path],
    header: dict[str, str],
    stack: list[Path],
) -> None:
    import yaml

    shown = _display(path)
    if path in stack:
        chain = " → ".join(_display(p) for p in [*stack, path])
        raise InputError(f"include cycle: {chain}", hint="a script may not include itself, directly or not")
    root = _compose(path, shown)
    files.append(path)
    if root is None:
        raise InputError(f"{shown}: the script is empty", hint="it needs a steps: list")
    entries = _mapping(root, shown, "the script")
    by_key = {k: (kn, vn) for k, kn, vn in entries}
    for key, knode, _ in entries:
        if key not in TOP_KEYS:
            raise _err(
                _loc(shown, knode),
                f"unknown script key {key!r}",
                hint=f"a script has {', '.join(TOP_KEYS)}",
            )
    if not stack:
        for key in ("name", "description"):
            if key in by_key:
                header[key] = _text(by_key[key][1], shown, key)
    if "vars" in by_key:
        vnode = by_key["vars"][1]
        if not (isinstance(vnode, yaml.ScalarNode) and vnode.value == ""):
            for key, knode, value_node in _mapping(vnode, shown, "vars"):
                if not VAR_NAME_RX.match(key) or key in ("env", "steps"):
                    raise _err(
                        _loc(shown, knode),
                        f"bad variable name {key!r}",
                        hint="letters, digits and _; env and steps are reserved",
                    )
                if key not in variables:
                    variables[key] = Param(key, _scalar(value_node, shown), _loc(shown, knode))
    if "steps" not in by_key:
        raise InputError(f"{shown}: the script has no steps: list")
    snode = by_key["steps"][1]
    if not isinstance(snode, yaml.SequenceNode):
        raise _err(_loc(shown, snode), "steps must be a list (lines starting with '- ')")
    for item in snode.value:
        _step(item, path, shown, steps, variables, files, header, stack)


def _step(
    node: Any,
    path: Path,
    shown: str,
    steps: list[Step],
    variables: dict[str, Param],
    files: list[Path],
    header: dict[str, str],
    stack: list[Path],
) -> None:
    import yaml

    loc = _loc(shown, node)
    entries = _mapping(node, shown, "a step")
    by_key = {k: (kn, vn) for k, kn, vn in entries}
    if "include" in by_key:
        extra = [k for k in by_key if k != "include"]
        if extra:
            raise _err(loc, f"an include step has only include:, not {', '.join(extra)}")
        target = _text(by_key["include"][1], shown, "include")
        if not target:
            raise _err(loc, "include: needs a file name")
        inc = (path.parent / target).resolve()
        if not inc.is_file():
            raise _err(loc, f"included script {target} does not exist (looked for {_display(inc)})")
        _load_into(inc, steps, variables, files, header, [*stack, path])
        return
    for key, knode, _ in entries:
        if key not in STEP_KEYS:
            raise _err(
                _loc(shown, knode),
                f"unknown step key {key!r}",
                hint="a step has name, op, params and when (parameters go under params:), or include:",
            )
    if "op" not in by_key:
        raise _err(loc, "the step has no op: (the tuiops command it runs, e.g. `op: dataset build`)")
    op_node = by_key["op"][1]
    op = " ".join(_text(op_node, shown, "op").split())
    if not op:
        raise _err(_loc(shown, op_node), "op: is empty")
    if "name" in by_key:
        name = _text(by_key["name"][1], shown, "name")
        if not STEP_NAME_RX.match(name):
            raise _err(
                _loc(shown, by_key["name"][1]),
                f"bad step name {name!r}",
                hint="start with a letter or _, then letters, digits, _ or -",
            )
    else:
        base = op.replace(" ", "_").replace("-", "_")
        taken = {s.name for s in steps}
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
    params: dict[str, Param] = {}
    if "params" in by_key:
        pnode = by_key["params"][1]
        if not (isinstance(pnode, yaml.ScalarNode) and pnode.value == ""):
            for key, knode, vnode in _mapping(pnode, shown, "params"):
                params[key] = Param(key, _scalar(vnode, shown), _loc(shown, knode))
    when = when_loc = None
    if "when" in by_key:
        wnode = by_key["when"][1]
        when = _text(wnode, shown, "when").strip() or None
        when_loc = _loc(shown, wnode)
    steps.append(Step(name, op, params, loc, _loc(shown, op_node), when, when_loc))


def parse_var_options(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``--var k=v`` options as a dict (later ones win)."""
    from tuiops.errors import UsageError

    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not VAR_NAME_RX.match(key):
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE", hint="e.g. --var set=master")
        out[key] = value
    return out
