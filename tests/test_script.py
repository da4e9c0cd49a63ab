"""`tuiops run` scripts: validation with lines, variables, conditions, includes, dry run,
failure and resume, a SIGKILL in the middle, Ctrl+C — on real demo workspaces."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tuiops.cli import run
from tuiops.errors import InputError
from tuiops.script.expr import Condition
from tuiops.script.parse import load_script

KEYS = "danbooru_2816506\ngelbooru_707639\n"


def make_ws(root: Path, images: int = 12) -> Path:
    from tuiops.ops.demo import make_demo

    make_demo(root, images=images, seed=7)
    return root


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo workspace the read-only tests share (label set master, run v1)."""
    return make_ws(tmp_path_factory.mktemp("script") / "demo")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / "tuiops.db")


def runs_count(root: Path) -> int:
    with db(root) as conn:
        return conn.execute("SELECT count(*) FROM script_runs").fetchone()[0]


def tree(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_size
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith("tuiops.db")
    }


GOOD = """\
vars:
  set: master
  run: v1
steps:
  - name: nms
    op: nms
    params:
      run: ${run}
      into: ${run}-nms
      iou: 0.6
      replace: true
  - name: match
    op: match
    params:
      set: ${set}
      run: ${steps.nms.into}
"""


# -- validation: each kind of mistake names its line, and nothing runs ----------------------------
BROKEN = [
    ("op: matchx", 4, "unknown op 'matchx'"),
    ("op: labels frobnicate", 4, "has no command 'frobnicate'"),
    ("op: train", 4, "is a group of commands"),
    ("op: run\n    params: {script: x.yaml}", 4, "cannot be a step"),
    (
        "op: match\n    params:\n      set: master\n      run: v1\n      iouu: 0.5",
        8,
        "has no parameter 'iouu'",
    ),
    ("op: match\n    params:\n      set: master", 3, "needs run"),
    (
        "op: match\n    params:\n      set: master\n      run: v1\n      iou: high",
        8,
        "'high' is not a valid float",
    ),
    (
        "op: review export\n    params:\n      set: master\n      run: v1\n      to: r\n      kind: fpp",
        9,
        "'fpp' is not one of",
    ),
    (
        "op: review export\n    params:\n      set: m\n      run: v\n      to: r\n      kind: fp\n      top: 0",
        10,
        "not in the range x>=1",
    ),
    ("op: match\n    params:\n      set: ${nope}\n      run: v1", 6, "${nope} is undefined"),
    (
        "op: match\n    params:\n      set: ${env.TUIOPS_TEST_UNSET_VAR}\n      run: v1",
        6,
        "environment has no",
    ),
    ("op: match\n    params:\n      set: master\n      run: ${steps.later.name}", 7, "does not run before"),
    ("op: match\n    params:\n      set: master\n      run: ${steps.s1.name}", 7, "does not run before"),
    ("op: match\n    params:\n      set: master\n      run: ${steps.ghost.name}", 7, "no step 'ghost'"),
    ("op: match\n    when: ${set} >\n    params: {set: a, run: b}", 5, "ends too early"),
    ("op: match\n    when: fp > 0\n    params: {set: a, run: b}", 5, "unknown word 'fp'"),
    ("op: match\n    params:\n      set: master\n      run: v1\n      quiet: maybe", 8, "is a flag"),
    ("op: match\n    params:\n      set: [a, b]\n      run: v1", 6, "takes one value"),
    ("op: match\n    parms: {set: a}", 5, "unknown step key 'parms'"),
    ("op: match\n    params: {set: a, run: b}\n    params: {set: c}", 6, "appears twice"),
    ("op: [match", 5, "not valid YAML"),
    ("op: match\n    when: ${set} > 3\n    params: {set: a, run: b}", 5, "cannot compare 'master' > 3"),
    ("op: match\n    when: \"'${nope}' == 'x'\"\n    params: {set: a, run: b}", 5, "${nope} is undefined"),
]


@pytest.mark.parametrize(("step", "line", "message"), BROKEN, ids=[b[2] for b in BROKEN])
def test_a_broken_script_is_rejected_with_its_line_before_anything_runs(
    demo, tmp_path, capsys, step, line, message
):
    script = write(
        tmp_path / "bad.yaml",
        f"vars: {{set: master}}\nsteps:\n  - name: s1\n    {step}\n  - name: later\n    op: eval\n"
        "    params: {set: master, run: v1}\n",
    )
    before = tree(demo)
    runs = runs_count(demo)
    code = run(["-w", str(demo), "run", str(script)])
    err = capsys.readouterr().err
    assert code == InputError.exit_code, err
    assert f"bad.yaml:{line}:" in err, err
    assert message in err, err
    assert "Traceback" not in err
    assert runs_count(demo) == runs
    assert tree(demo) == before


def test_structure_errors_name_the_file(demo, tmp_path, capsys):
    cases = {
        "empty.yaml": ("", "empty.yaml: the script is empty"),
        "nosteps.yaml": ("vars: {a: 1}\n", "has no steps"),
        "stepsmap.yaml": ("steps:\n  a: 1\n", "stepsmap.yaml:2: steps must be a list"),
        "top.yaml": ("stepz: []\n", "top.yaml:1: unknown script key 'stepz'"),
        "badvar.yaml": ("vars:\n  steps: 1\nsteps: []\n", "badvar.yaml:2: bad variable name"),
        "noop.yaml": ("steps:\n  - name: a\n", "noop.yaml:2: the step has no op"),
        "badname.yaml": ("steps:\n  - {name: bad name, op: pools}\n", "badname.yaml:2: bad step name"),
        "dup.yaml": (
            "steps:\n  - {name: a, op: pools}\n  - {name: a, op: pools}\n",
            "dup.yaml:3: step name 'a' is used twice",
        ),
    }
    for name, (text, message) in cases.items():
        code = run(["-w", str(demo), "run", str(write(tmp_path / name, text))])
        err = capsys.readouterr().err
        assert code == 4, (name, err)
        assert message in err, (name, err)
    code = run(["-w", str(demo), "run", str(tmp_path / "missing.yaml")])
    assert code == 4
    assert "does not exist" in capsys.readouterr().err
    code = run(["-w", str(demo), "run", str(write(tmp_path / "v.yaml", GOOD)), "--var", "noequals"])
    assert code == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    code = run(["-w", str(demo), "run", str(tmp_path / "v.yaml"), "--dry-run", "--var", "sett=x"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--var sett: v.yaml has no variable 'sett'" in err and "its variables: run, set" in err, err


# -- variables, conditions, includes, dry run --------------------------------------------------------
def test_variables_outputs_conditions_and_includes(demo, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TUIOPS_TEST_CLASS", "head")
    write(
        tmp_path / "lib" / "count.yaml",
        """\
vars:
  cls: nobody
  limit: 3
steps:
  - name: count
    op: query
    params:
      sql: SELECT count(*) AS n FROM v_labels WHERE label_set = '${set}' AND class = '${cls}'
""",
    )
    script = write(
        tmp_path / "main.yaml",
        """\
name: checks
vars:
  set: master
  cls: ${env.TUIOPS_TEST_CLASS}
  top: 2
steps:
  - include: lib/count.yaml
  - name: many
    op: query
    when: ${steps.count.items.0.n} > 0 and not (${set} == 'other')
    params:
      sql: SELECT '${cls}' AS cls, ${steps.count.items.0.n} AS n, '${missing:-fallback}' AS d, '$${literal}' AS lit
  - name: never
    op: query
    when: ${steps.count.count} != 1 or ${cls} == "nobody"
    params:
      sql: SELECT 1 AS one
  - name: top
    op: match
    when: ${top} >= 2
    params:
      set: ${set}
      run: v1
      top: ${top}
      quiet: true
""",
    )
    code = run(["-w", str(demo), "run", str(script), "--json", "--var", "top=5"])
    out, err = capsys.readouterr()
    assert code == 0, err
    res = json.loads(out)
    by = {s["name"]: s for s in res["steps"]}
    assert [s["name"] for s in res["steps"]] == ["count", "many", "never", "top"]
    n = by["count"]["outputs"]["items"][0]["n"]
    assert n > 0
    assert by["many"]["outputs"]["items"] == [{"cls": "head", "n": n, "d": "fallback", "lit": "${literal}"}]
    assert by["never"]["status"] == "skipped"
    assert by["top"]["status"] == "done"
    assert len(by["top"]["outputs"]["worst"]) == 5
    with db(demo) as conn:
        vars_json = conn.execute("SELECT vars FROM script_runs WHERE id = ?", (res["run_id"],)).fetchone()[0]
    assert json.loads(vars_json) == {"set": "master", "cls": "head", "top": "5", "limit": 3}


def test_include_cycles_and_names_across_includes(tmp_path):
    write(tmp_path / "a.yaml", "steps:\n  - include: b.yaml\n")
    write(tmp_path / "b.yaml", "steps:\n  - include: a.yaml\n")
    with pytest.raises(InputError, match="include cycle"):
        load_script(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", "steps:\n  - {name: one, op: pools}\n  - include: d.yaml\n")
    write(tmp_path / "d.yaml", "steps:\n  - {name: one, op: pools}\n")
    with pytest.raises(InputError, match=r"d.yaml:2: step name 'one' is used twice \(also at .*c.yaml:2\)"):
        load_script(tmp_path / "c.yaml")
    write(tmp_path / "e.yaml", "steps:\n  - include: nowhere.yaml\n")
    with pytest.raises(InputError, match=r"e\.yaml:2: included script nowhere\.yaml does not exist"):
        load_script(tmp_path / "e.yaml")
    write(tmp_path / "f.yaml", "steps:\n  - {include: d.yaml, op: pools}\n")
    with pytest.raises(InputError, match="only include"):
        load_script(tmp_path / "f.yaml")


def test_conditions_are_a_small_safe_language():
    values = {"n": 3, "s": "abc", "z": 0, "f": "2.5", "none": None}

    def resolve(ref):
        return values[ref.name]

    def ev(text: str) -> bool:
        return Condition(text, "t:1").evaluate(resolve)

    assert ev("${n} > 2 and ${n} <= 3")
    assert ev("${s} == 'abc' and ${s} != \"abd\"")
    assert ev("not ${z}")
    assert ev("(${z} or ${n}) and ${f} > 2")
    assert ev("${none} == null")
    assert not ev("${n} < 1 or (${s} == 'x')")
    assert ev("1e1 > 9.5")
    for bad, message in [
        ("__import__('os')", "unknown word"),
        ("${n} + 1", "cannot read"),
        ("${n} > ", "ends too early"),
        ("(${n} > 1", "not closed"),
        ("${n} > 1 > 0", "chained"),
        ("${n} > 1 )", "unexpected"),
        ("open", "unknown word"),
    ]:
        with pytest.raises(InputError, match=message):
            Condition(bad, "t:1")
    with pytest.raises(InputError, match="cannot compare"):
        ev("${s} > 1")


def test_conditions_read_refs_in_quotes_and_text_booleans():
    values = {"s": "abc", "t": "true", "no": "off", "b": True, "n": "3"}

    def ev(text: str) -> bool:
        return Condition(text, "t:1").evaluate(lambda ref: values[ref.name])

    assert ev("${s} == '${s}'")
    assert ev("'x-${s}-${n}' == \"x-abc-3\"")
    assert ev("'$${s}' != '${s}'")
    assert [r.text for r in Condition("${s} == 'a${n}'", "t:1").refs()] == ["${s}", "${n}"]
    assert ev("${t} == true") and not ev("${t} == false") and ev("${t} != false")
    assert ev("${no} == false") and ev("${b} == 'yes'")
    assert not ev("${s} == true")
    assert ev("${n} == 3 and '${n}' >= 3")


def test_plain_yaml_values_reach_the_command_as_written(demo, tmp_path, capsys):
    script = write(
        tmp_path / "w.yaml",
        """\
vars:
  top: 3
  flag: yes
steps:
  - name: m
    op: match
    when: ${flag} == true
    params: {set: master, run: v1, name: 010, iou: 0.50, conf: 1.0, top: "${top}", quiet: no}
  - name: v
    op: match
    params: {set: master, run: v1, name: 1:30}
  - name: o
    op: match
    params: {set: master, run: v1, name: off, quiet: true}
""",
    )
    parsed = load_script(script)
    assert parsed.vars["top"].value == 3
    assert parsed.vars["flag"].value == "yes"
    params = {k: p.value for k, p in parsed.steps[0].params.items()}
    assert params == {
        "set": "master",
        "run": "v1",
        "name": "010",
        "iou": "0.50",
        "conf": 1.0,
        "top": "${top}",
        "quiet": "no",
    }
    assert run(["-w", str(demo), "run", str(script), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "tuiops match --set master --run v1 --iou 0.50 --conf 1.0 --name 010 --top 3\n" in out
    assert "tuiops match --set master --run v1 --name 1:30\n" in out
    assert "tuiops match --set master --run v1 --name off --quiet\n" in out


def test_a_condition_that_fails_at_run_time_names_its_line_and_how_to_resume(demo, tmp_path, capsys):
    script = write(
        tmp_path / "c.yaml",
        """\
steps:
  - name: q
    op: query
    params: {sql: "SELECT 1 AS n"}
  - name: q2
    op: query
    when: ${steps.q.items.0.n} > 'abc'
    params: {sql: "SELECT 2 AS n"}
""",
    )
    assert run(["-w", str(demo), "run", str(script), "--dry-run"]) == 0
    capsys.readouterr()
    assert run(["-w", str(demo), "run", str(script), "-q"]) == 4
    err = capsys.readouterr().err
    assert "step 'q2' (" in err and "c.yaml:5): " in err and "c.yaml:7: condition" in err, err
    assert "cannot compare 1 > 'abc'" in err, err
    assert "compare numbers with numbers" in err and "then `tuiops run --resume" in err, err


def test_from_refuses_a_step_whose_needed_outputs_no_run_made(demo, tmp_path, capsys):
    script = write(
        tmp_path / "f.yaml",
        """\
steps:
  - name: q
    op: query
    params: {sql: "SELECT 'v1' AS r"}
  - name: m
    op: match
    params: {set: master, run: "${steps.q.items.0.r}", quiet: true}
""",
    )
    runs = runs_count(demo)
    assert run(["-w", str(demo), "run", str(script), "--from", "m"]) == 4
    err = capsys.readouterr().err
    assert "f.yaml:7: step 'm' needs ${steps.q.items.0.r}" in err and "--from q" in err, err
    assert runs_count(demo) == runs


def test_dry_run_prints_the_commands_and_records_nothing(demo, tmp_path, capsys):
    script = write(tmp_path / "good.yaml", GOOD)
    before = tree(demo)
    runs = runs_count(demo)
    assert run(["-w", str(demo), "run", str(script), "--dry-run", "--var", "run=v1"]) == 0
    out = capsys.readouterr().out
    assert "1. nms    tuiops nms --run v1 --into v1-nms --iou 0.6 --replace" in out
    assert "2. match  tuiops match --set master --run '${steps.nms.into}'" in out
    assert runs_count(demo) == runs
    assert tree(demo) == before
    assert run(["-w", str(demo), "run", str(script), "--dry-run", "--from", "match"]) == 0
    assert "skip nms" in capsys.readouterr().out


# -- failure, resume, --from ----------------------------------------------------------------------
def test_a_failing_step_stops_the_run_and_resume_continues(tmp_path, capsys):
    root = make_ws(tmp_path / "ws")
    script = write(
        tmp_path / "s.yaml",
        """\
vars:
  run: nope
steps:
  - name: nms
    op: nms
    params: {run: v1, into: v1-nms, replace: true}
  - name: match
    op: match
    params: {set: master, run: "${run}"}
  - name: eval
    op: eval
    params: {set: master, run: "${steps.match.run}"}
""",
    )
    code = run(["-w", str(root), "run", str(script)])
    err = capsys.readouterr().err
    assert code == 5, err
    assert "step 'match'" in err and "s.yaml:7" in err and "--resume 1" in err
    with db(root) as conn:
        status, exit_code, pid = conn.execute("SELECT status, exit_code, pid FROM script_runs").fetchone()
        steps = conn.execute("SELECT name, status, exit_code FROM script_steps ORDER BY idx").fetchall()
    assert (status, exit_code, pid) == ("failed", 5, os.getpid())
    assert steps == [("nms", "done", 0), ("match", "failed", 5), ("eval", "pending", None)]
    assert run(["-w", str(root), "runs", "list"]) == 0
    assert "failed" in capsys.readouterr().out

    code = run(["-w", str(root), "run", "--resume", "1", "--var", "run=v1-nms"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "resuming at step 2 (match); 1 step(s) kept" in err
    assert "[1/3]" not in err
    with db(root) as conn:
        steps = conn.execute("SELECT name, status FROM script_steps ORDER BY idx").fetchall()
        assert conn.execute("SELECT status, exit_code FROM script_runs").fetchone() == ("done", 0)
    assert steps == [("nms", "done"), ("match", "done"), ("eval", "done")]
    assert run(["-w", str(root), "run", "--resume", "1"]) == 6
    assert "done already" in capsys.readouterr().err
    assert run(["-w", str(root), "runs", "show", "1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["steps"][2]["outputs"]["run"] == "v1-nms"
    assert shown["steps"][1]["argv"] == ["match", "--set", "master", "--run", "v1-nms"]

    # a changed script is refused unless --force; --from reuses earlier outputs
    script.write_text(script.read_text() + "\n", encoding="utf-8")
    assert run(["-w", str(root), "run", str(script), "--var", "run=v1-nms", "--from", "eval", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [s["status"] for s in res["steps"]] == ["skipped", "skipped", "done"]
    assert res["steps"][2]["outputs"]["run"] == "v1-nms"
    assert run(["-w", str(root), "run", str(script), "--from", "nosuch"]) == 4
    assert "no such step" in capsys.readouterr().err


def test_resume_refuses_a_changed_script_without_force(tmp_path, capsys):
    root = make_ws(tmp_path / "ws")
    script = write(
        tmp_path / "s.yaml", "steps:\n  - {name: a, op: match, params: {set: master, run: nope}}\n"
    )
    assert run(["-w", str(root), "run", str(script)]) == 5
    write(script, "vars: {r: v1}\nsteps:\n  - {name: a, op: match, params: {set: master, run: '${r}'}}\n")
    capsys.readouterr()
    assert run(["-w", str(root), "run", "--resume", "1"]) == 6
    assert "changed since run 1 started" in capsys.readouterr().err
    assert run(["-w", str(root), "run", "--resume", "1", "--force"]) == 0
    capsys.readouterr()
    assert run(["-w", str(root), "runs", "show", "1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["steps"][0]["argv"] == ["match", "--set", "master", "--run", "v1"]
    assert shown["vars"] == {"r": "v1"}
    assert run(["-w", str(root), "run", "--resume", "99"]) == 5


# -- a kill in the middle, Ctrl+C ---------------------------------------------------------------------
KILL_SCRIPT = """\
steps:
  - name: nms
    op: nms
    params: {run: v1, into: v1-nms, iou: 0.6, replace: true}
  - name: copy
    op: ops copy
    params: {keys: "-", to: picked, set: master, labels: yolo, quiet: true}
  - name: match
    op: match
    params: {set: master, run: v1-nms, quiet: true}
"""


def _tuiops(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from tuiops.cli import main; main()", "-w", str(root), *args]


def _start_until_step(root: Path, script: Path, header: str) -> subprocess.Popen[str]:
    """Start the script in a subprocess; return once ``header`` (a step's start line) is printed.

    The step reads its key list from stdin, which stays open: the step is running, blocked."""
    proc = subprocess.Popen(
        _tuiops(root, "run", str(script)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if header in line:
            return proc
    proc.wait()
    raise AssertionError("".join(seen))


def _end_state(root: Path) -> dict[str, object]:
    with db(root) as conn:
        runs = conn.execute(
            "SELECT name, (SELECT count(*) FROM run_images WHERE run_id = runs.id) FROM runs ORDER BY name"
        ).fetchall()
        dets = conn.execute(
            "SELECT run, key, class_id, round(x1, 3), round(score, 4) FROM v_detections ORDER BY run, id"
        ).fetchall()
        match = conn.execute(
            "SELECT key, tp, fp, fn, loc, cls, round(f1, 6) FROM v_match_images WHERE match = 'master__v1-nms' ORDER BY key"
        ).fetchall()
        steps = conn.execute("SELECT name, status FROM script_steps ORDER BY run_id, idx").fetchall()
        run_status = conn.execute("SELECT status FROM script_runs").fetchall()
    files = {
        str(p.relative_to(root / "picked")): p.read_bytes()
        for p in (root / "picked").rglob("*")
        if p.is_file()
    }
    return {
        "runs": runs,
        "dets": dets,
        "match": match,
        "steps": steps,
        "run_status": run_status,
        "files": files,
    }


def test_a_script_killed_in_the_middle_resumes_to_the_same_end_state(tmp_path):
    whole = make_ws(tmp_path / "whole")
    killed = make_ws(tmp_path / "killed")
    script = write(tmp_path / "s.yaml", KILL_SCRIPT)

    done = subprocess.run(_tuiops(whole, "run", str(script)), input=KEYS, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    proc = _start_until_step(killed, script, "==> [2/3] copy")
    proc.kill()
    proc.wait()
    with db(killed) as conn:
        assert conn.execute("SELECT status FROM script_runs").fetchone() == ("running",)
        assert conn.execute("SELECT name, status FROM script_steps ORDER BY idx").fetchall() == [
            ("nms", "done"),
            ("copy", "running"),
            ("match", "pending"),
        ]
    listed = subprocess.run(_tuiops(killed, "runs", "list", "--json"), capture_output=True, text=True)
    assert json.loads(listed.stdout)[0]["status"] == "interrupted"

    resumed = subprocess.run(
        _tuiops(killed, "run", "--resume", "1"), input=KEYS, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at step 2 (copy)" in resumed.stderr
    with db(killed) as conn:
        assert conn.execute("SELECT status FROM jobs WHERE kind = 'script' ORDER BY id").fetchall() == [
            ("failed",),
            ("done",),
        ]
    a, b = _end_state(whole), _end_state(killed)
    assert a["files"], "the copy step copied nothing"
    assert a == b


def test_ctrl_c_cancels_the_current_step(tmp_path):
    root = make_ws(tmp_path / "ws")
    script = write(tmp_path / "s.yaml", KILL_SCRIPT)
    proc = _start_until_step(root, script, "==> [2/3] copy")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "step 'copy' was cancelled" in err and "--resume 1" in err
    with db(root) as conn:
        assert conn.execute("SELECT status, exit_code FROM script_runs").fetchone() == ("cancelled", 130)
        assert conn.execute("SELECT name, status FROM script_steps ORDER BY idx").fetchall() == [
            ("nms", "done"),
            ("copy", "cancelled"),
            ("match", "pending"),
        ]
        assert conn.execute("SELECT status FROM jobs WHERE kind = 'script'").fetchone() == ("cancelled",)


def test_the_recorder_keeps_what_was_given_and_writes_a_valid_script(demo, tmp_path):
    from tuiops.script.record import Recorder, command_params

    step = command_params(
        [
            "tuiops",
            "-w",
            "x",
            "review",
            "export",
            "--set",
            "master",
            "--run",
            "v1",
            "--kind",
            "fn",
            "--to",
            "r/${x}",
        ]
    )
    assert step.op == ("review", "export")
    assert step.params == {"set": "master", "run": "v1", "kind": "fn", "to": "r/$${x}"}
    rec = Recorder()
    assert rec.add_command(["run", "scripts/x.yaml"]) is None
    assert rec.add_command(["tui"]) is None
    assert rec.add_command(["nosuch"]) is None
    first = rec.add_command(
        ["match", "--set", "master", "--run", "v1", "--split-file", "a.txt", "--split-file", "b.txt"]
    )
    rec.add_command(["match", "--set", "master", "--run", "v1", "-q"])
    gone = rec.add_command(["eval", "--set", "nope", "--run", "v1"])
    rec.discard(gone)
    rec.add_file_op("delete", [5, 6, 7, 9], "pool")
    assert len(rec) == 3
    assert rec.steps[0].params["split-file"] == ["a.txt", "b.txt"]
    path = rec.save(tmp_path / "s" / "session.yaml", workspace=str(demo))
    script = load_script(path)
    assert [s.name for s in script.steps] == ["match", "match_2", "ops_delete"]
    assert [s.op for s in script.steps] == ["match", "match", "ops delete"]
    assert script.steps[2].params["where"].value == "file_id BETWEEN 5 AND 7 OR file_id IN (9)"
    assert first is not None
    assert run(["-w", str(demo), "run", str(path), "--dry-run"]) == 0
    empty = Recorder()
    with pytest.raises(Exception, match="nothing recorded"):
        empty.save(tmp_path / "e.yaml")


def test_reading_a_step_leaves_the_commands_help_as_it_was():
    # In a fresh process, so that no earlier test has built the command's help option first.
    code = (
        "import click\n"
        "from tuiops.cli import cli\n"
        "from tuiops.script.record import command_params\n"
        "command_params(['match', '--set', 'gt', '--run', 'r'])\n"
        "cmd = cli.commands['match']\n"
        "ctx = click.Context(cmd, info_name='match', parent=click.Context(cli, info_name='tuiops',"
        " **cli.context_settings))\n"
        "print('-h, --help' in cmd.get_help(ctx))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
