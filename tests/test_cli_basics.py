"""The CLI's shape: start-up imports, import hygiene of the core, error boundary, docs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tuiops.cli import run

ROOT = Path(__file__).resolve().parents[1]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_imports_nothing_heavy():
    mods = _modules_after("from tuiops.cli import cli")
    for heavy in ("polars", "numpy", "torch", "ultralytics", "textual", "pyarrow", "PIL", "asyncssh"):
        assert heavy not in mods, f"`tuiops --help` imports {heavy}"


def test_core_never_imports_ui():
    code = (
        "import importlib, pkgutil, tuiops.ops, tuiops.store, tuiops.geometry\n"
        "import tuiops.formats\n"
        "for pkg in (tuiops.ops, tuiops.store, tuiops.formats):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(pkg.__name__ + '.' + m.name)\n"
    )
    mods = _modules_after(code)
    for ui in ("textual", "click", "tuiops.screens", "tuiops.cli", "tuiops.app"):
        assert ui not in mods, f"the core imports {ui}"


def test_file_operations_never_import_the_operations_built_on_them():
    """Painting and review exports plan through the file operations; the file operations
    reach neither of them (not even inside a function), so no import runs in a circle."""
    import ast

    built_on = {"tuiops.ops.paint", "tuiops.ops.review"}
    folder = ROOT / "tuiops" / "ops" / "fileops"
    files = sorted(folder.glob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            for name in names:
                assert name not in built_on, f"{path.name}:{node.lineno} imports {name}"


def test_console_script_help_runs():
    out = subprocess.run(["tuiops", "--help"], capture_output=True, text=True, check=True)
    assert "Usage: tuiops" in out.stdout


def test_no_workspace_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TUIOPS_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    code = run(["classes", "list"])
    err = capsys.readouterr().err
    assert code == 3
    assert "no tuiops workspace" in err and "tuiops init" in err
    assert "Traceback" not in err


def test_init_twice_is_a_conflict(tmp_path, capsys):
    assert run(["init", str(tmp_path / "w"), "--classes", "a,b"]) == 0
    assert run(["init", str(tmp_path / "w")]) == 6
    assert "workspace already" in capsys.readouterr().err


def test_bad_toml_names_the_file(tmp_path, capsys):
    assert run(["init", str(tmp_path / "w")]) == 0
    (tmp_path / "w" / "tuiops.toml").write_text("[classes\nnames = 3", encoding="utf-8")
    assert run(["-w", str(tmp_path / "w"), "classes", "list"]) == 3
    assert "tuiops.toml: not valid TOML" in capsys.readouterr().err


def test_bad_key_pattern(tmp_path, capsys):
    assert run(["init", str(tmp_path / "w"), "--key-pattern", "(?P<booru>x"]) == 3
    assert "invalid image-key pattern" in capsys.readouterr().err
    assert run(["init", str(tmp_path / "w2"), "--key-pattern", r"(?P<x>\d+)"]) == 3
    assert "lacks the named group" in capsys.readouterr().err


def test_classes_add_is_append_only(tmp_path, capsys):
    w = str(tmp_path / "w")
    assert run(["init", w, "--classes", "head,body"]) == 0
    capsys.readouterr()
    assert run(["-w", w, "classes", "add", "hand", "head", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == ["hand"] and out["classes"] == ["head", "body", "hand"]
    assert run(["-w", w, "classes", "add", " bad "]) == 3


def test_query_formats(tmp_path, capsys):
    w = tmp_path / "w"
    assert run(["init", str(w), "--classes", "head,body"]) == 0
    capsys.readouterr()
    assert run(["-w", str(w), "query", "SELECT id, name FROM classes ORDER BY id", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "id,name\n0,head\n1,body\n"
    assert run(["-w", str(w), "query", "SELECT id, name FROM classes", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"id": 0, "name": "head"}, {"id": 1, "name": "body"}]
    for fmt in ("parquet", "xlsx"):
        out = tmp_path / f"q.{fmt}"
        assert run(["-w", str(w), "query", "SELECT * FROM classes", "--format", fmt, "-o", str(out)]) == 0
        assert out.stat().st_size > 0
    assert pl.read_parquet(tmp_path / "q.parquet")["name"].to_list() == ["head", "body"]
    assert run(["-w", str(w), "query", "SELECT * FROM classes", "--format", "parquet"]) == 2
    assert run(["-w", str(w), "query", "DROP TABLE classes"]) == 2
    assert run(["-w", str(w), "query", "SELEC nonsense"]) == 4
    assert "SQL error" in capsys.readouterr().err


def test_docs_reference_is_current():
    from tuiops.cli.docgen import render

    current = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    assert current == render(), (
        "docs/commands.md is stale: run `python -m tuiops.cli.docgen > docs/commands.md`"
    )


def test_every_command_has_help_and_is_documented():
    from tuiops.cli.docgen import all_commands

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path, cmd in all_commands():
        name = " ".join(path)
        assert (cmd.help or "").strip(), f"`{name}` has no help text"
        for param in cmd.params:
            if param.param_type_name == "option" and not getattr(param, "hidden", False):
                assert getattr(param, "help", None), f"`{name}` option {param.opts} has no help text"
        if len(path) == 2:
            assert f"`tuiops {path[1]}" in readme, f"README does not mention `tuiops {path[1]}`"


@pytest.mark.parametrize("cmd", [["--version"], ["--help"]])
def test_version_and_help(cmd, capsys):
    assert run(cmd) == 0
    assert "tuiops" in capsys.readouterr().out


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```sh\n")[1:3]]
    assert len(blocks) == 2, "README must start with two set-up commands"
    install, test_cmd = blocks
    assert "pip install" in install and "tuiops demo" in install
    assert test_cmd in ci.splitlines(), ".ci/run must run the README's test command exactly"


def test_ssh_commands_print_no_library_warnings(request):
    """`hosts check` and `remote run` against a real sshd: stderr holds no Python warning
    (asyncssh's import used to print ten lines of CryptographyDeprecationWarning)."""
    from tests.sshd import sshd_unavailable

    if (why := sshd_unavailable()) is not None:
        pytest.skip(why)
    own = request.getfixturevalue("own")
    import os

    _server, _key, ws = own
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": ""}  # the interpreter's defaults
    for args in (["hosts", "check", "test"], ["remote", "run", "test", "--", "echo", "hi"]):
        out = subprocess.run(
            [sys.executable, "-c", "from tuiops.cli import main; main()", "-w", str(ws.root), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert "Warning" not in out.stderr and "deprecated" not in out.stderr, out.stderr
