"""Every flag an error hint names exists on the command that shows the hint.

Statically: every ``hint=`` string (and ``exc.hint = …``) in the package is read with
``ast``; a flag in it belongs to the command the hint names (``tuiops project mix … --flag``)
or else to the commands that reach the module the hint is written in (the module's own
commands for ``tuiops/cli``, the commands whose code imports it for the core). At run time:
the hints `project mix --push` shows for its own failures name its own flags.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from tuiops.cli.docgen import all_commands

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tuiops"
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")

#: Flags a hint names that are not tuiops options (file → flags, with why).
NOT_OURS = {
    "tuiops/ops/project.py": {"--out", "--count"},  # the augmentation script's own arguments
}


def _app_triage_options() -> set[str]:
    """The options of the app's ``triage`` command line (the triage op's other face)."""
    src = (PACKAGE / "screens" / "triage.py").read_text(encoding="utf-8")
    names = re.search(r"names = \{([^}]*)\}", src)
    assert names, "the app's triage command line lost its option table"
    return set(re.findall(r'"(--[a-z-]+)"', names.group(1)))


def _commands() -> dict[tuple[str, ...], click.Command]:
    return {tuple(path[1:]): cmd for path, cmd in all_commands()}


def _options(cmd: click.Command) -> set[str]:
    """A command's long options; a group's are its sub-commands' (``tuiops train DATA …``
    runs the group's default sub-command)."""
    out = {"--help"}
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            out |= _options(sub)
    for p in cmd.params:
        if isinstance(p, click.Option):
            out.update(o for o in [*p.opts, *p.secondary_opts] if o.startswith("--"))
    return out


def _text(node: ast.AST) -> str | None:
    """The literal text of a string expression (f-string holes become ``{}``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        if left is not None or right is not None:
            return (left or "") + (right or "")
    if isinstance(node, ast.IfExp):
        parts = [t for t in (_text(node.body), _text(node.orelse)) if t]
        return " | ".join(parts) if parts else None
    return None


def hints_in(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every hint written in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.keyword) and node.arg == "hint") or (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Attribute)
            and node.targets[0].attr == "hint"
        ):
            text = _text(node.value)
        else:
            continue
        if text and "--" in text:
            yield getattr(node, "lineno", getattr(node.value, "lineno", 0)), text


def _named_command(
    text: str, commands: dict[tuple[str, ...], click.Command]
) -> list[tuple[tuple[str, ...], str]]:
    """Pieces of ``text`` that name a command (``tuiops a b …``): (command path, the piece)."""
    out = []
    for m in re.finditer(r"tuiops ((?:[a-z][a-z0-9-]* ?)+)([^`;]*)", text):
        words = m.group(1).split()
        path: tuple[str, ...] = ()
        for w in words:
            if (*path, w) in commands:
                path = (*path, w)
            else:
                break
        if path:
            out.append((path, m.group(0)))
    return out


def _users() -> dict[str, set[tuple[str, ...]]]:
    """Module (``tuiops/ops/x.py``) → the commands whose code is in it or imports it."""
    commands = _commands()
    users: dict[str, set[tuple[str, ...]]] = {}
    for path, cmd in commands.items():
        if cmd.callback is None or not path:
            continue
        fn = inspect.unwrap(cmd.callback)
        own = Path(inspect.getsourcefile(fn) or "").resolve()
        users.setdefault(str(own.relative_to(ROOT)), set()).add(path)
        source = inspect.getsource(fn)
        for mod in re.findall(r"from (tuiops(?:\.\w+)+) import|import (tuiops(?:\.\w+)+)", source):
            name = mod[0] or mod[1]
            rel = Path(*name.split("."))
            for cand in (rel.with_suffix(".py"), rel / "__init__.py"):
                if (ROOT / cand).exists():
                    users.setdefault(str(cand), set()).add(path)
    return users


def bad_hint_flags() -> list[str]:
    commands = _commands()
    users = _users()
    everything = set().union(*(_options(c) for c in commands.values()))
    problems = []
    for file in sorted(PACKAGE.rglob("*.py")):
        rel = str(file.relative_to(ROOT))
        for line, text in hints_in(file):
            named = _named_command(text, commands)
            rest = text
            for path, piece in named:
                rest = rest.replace(piece, " ")
                for flag in FLAG.findall(piece):
                    if flag not in _options(commands[path]):
                        problems.append(f"{rel}:{line}: `tuiops {' '.join(path)}` has no {flag} ({text!r})")
            flags = [f for f in FLAG.findall(rest) if f not in NOT_OURS.get(rel, set())]
            if not flags:
                continue
            reach = users.get(rel)
            extra = _app_triage_options() if rel.startswith("tuiops/ops/triage/") else set()
            for flag in flags:
                if reach is None:
                    ok = flag in everything
                    where = "any command"
                else:
                    ok = flag in extra or any(flag in _options(commands[p]) for p in reach)
                    where = ", ".join(sorted("tuiops " + " ".join(p) for p in reach))
                if not ok:
                    problems.append(f"{rel}:{line}: {flag} is not an option of {where} ({text!r})")
    return problems


def test_every_flag_in_a_hint_exists():
    assert bad_hint_flags() == []


def test_the_checker_sees_a_wrong_flag(tmp_path):
    """The checker itself: a hint naming a flag its command lacks is reported."""
    src = tmp_path / "probe.py"
    src.write_text('raise X("a", hint="pass --no-such-flag, or `tuiops query --nope`")\n', encoding="utf-8")
    found = list(hints_in(src))
    assert found == [(1, "pass --no-such-flag, or `tuiops query --nope`")]
    pieces = _named_command(found[0][1], _commands())
    assert pieces and pieces[0][0] == ("query",)
    assert FLAG.findall(pieces[0][1]) == ["--nope"]


def _flags_in_hints(err: str) -> list[str]:
    return [f for line in err.splitlines() if "hint:" in line for f in FLAG.findall(line)]


def test_project_mix_push_hints_name_its_own_flags(own, tmp_path, capsys):
    from tests.sshd import sshd_unavailable

    if sshd_unavailable() is not None:
        pytest.skip(sshd_unavailable() or "")
    from tests.test_project_mix import make_build
    from tests.test_project_mix_remote import cli, push_ab

    _s, _key, ws = own
    mix = _options(_commands()[("project", "mix")])
    make_build(ws, "a", ["x"], 3)
    make_build(ws, "b", ["x", "y"], 3)
    out = tmp_path / "mixes" / "ab"
    assert push_ab(ws, out, "-q") == 0
    make_build(ws, "b", ["x", "y"], 4)  # another mix of the same name: refused on the host
    capsys.readouterr()
    assert push_ab(ws, out, "-q") == 6
    err = capsys.readouterr().err
    assert _flags_in_hints(err) and set(_flags_in_hints(err)) <= mix, err
    assert cli(ws, "project", "mix", "a", "--out", str(out), "--push", "test:/etc", "-q") == 8
    err = capsys.readouterr().err
    assert "hint:" in err and set(_flags_in_hints(err)) <= mix, err
