"""The core's layers import only downward: checked on the real imports of a fresh interpreter
and on the source of each module (no module takes a private name from another)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Everything below the operations: importing all of it must not import an operation or a face.
BELOW_OPS = (
    "tuiops.remote",
    "tuiops.workspace",
    "tuiops.store",
    "tuiops.formats",
    "tuiops.geometry",
    "tuiops.keys",
    "tuiops.fsutil",
    "tuiops.frames",
    "tuiops.progress",
    "tuiops.errors",
)
FACES = (
    "tuiops.cli",
    "tuiops.app",
    "tuiops.screens",
    "tuiops.widgets",
    "tuiops.script",
    "textual",
    "click",
    "rich",
)


def _modules_after_importing(names: tuple[str, ...]) -> set[str]:
    code = (
        "import importlib, json, pkgutil, sys\n"
        f"for name in {list(names)!r}:\n"
        "    mod = importlib.import_module(name)\n"
        "    for info in pkgutil.walk_packages(getattr(mod, '__path__', []), name + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_layers_below_the_operations_never_import_them_or_a_face():
    mods = _modules_after_importing(BELOW_OPS)
    assert "tuiops.remote.transfer.push" in mods
    upward = sorted(m for m in mods if m == "tuiops.ops" or m.startswith("tuiops.ops."))
    assert not upward, f"a layer below the operations imports {upward}"
    faces = sorted(m for m in mods if any(m == f or m.startswith(f + ".") for f in FACES))
    assert not faces, f"a layer below the operations imports {faces}"


def _private_imports(path: Path) -> list[str]:
    """``from x import _y`` lines of ``path`` where ``x`` is another module of the package."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
    own = ".".join(parts)
    package = parts if path.name == "__init__.py" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[: len(package) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__") and module != own:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {module} import {alias.name}")
    return found


def test_no_module_takes_a_private_name_from_another_module():
    """What one module uses of another has a public name, in every layer and face."""
    files = sorted((ROOT / "tuiops").rglob("*.py"))
    assert len(files) > 150
    found = [line for f in files for line in _private_imports(f)]
    assert not found, "\n".join(found)


def _imported_names(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement of ``path`` names (inside functions too), with its line."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out += [(node.lineno, node.module)] + [
                (node.lineno, f"{node.module}.{a.name}") for a in node.names
            ]
    return out


def test_scripts_and_screens_never_import_the_command_line_or_click():
    """Script steps are validated against and run through the registry, and the app runs the
    registry's commands: neither goes through click (not even inside a function)."""
    files = sorted((ROOT / "tuiops" / "script").rglob("*.py")) + sorted(
        (ROOT / "tuiops" / "screens").rglob("*.py")
    )
    assert len(files) > 10
    found = [
        f"{f.relative_to(ROOT)}:{line} imports {name}"
        for f in files
        for line, name in _imported_names(f)
        if name.split(".")[0] == "click" or name == "tuiops.cli" or name.startswith("tuiops.cli.")
    ]
    assert not found, "\n".join(found)


def test_every_command_of_the_command_line_is_described_in_the_registry():
    import click

    from tuiops.cli import cli  # (registers run, runs list|show: tuiops.script.commands)
    from tuiops.commands import lookup

    def leaves(group: click.Group, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        for name, sub in group.commands.items():
            here = (*path, name)
            out += leaves(sub, here) if isinstance(sub, click.Group) else [here]
        return out

    paths = leaves(cli, ())
    assert len(paths) > 60
    missing = [" ".join(p) for p in paths if lookup(p) is None]
    assert not missing, f"hand-written click commands: {', '.join(missing)}"
