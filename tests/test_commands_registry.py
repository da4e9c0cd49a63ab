"""The registry describes each converted command once: the click command is built from it,
and a script step calls its function directly, without click."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from tuiops.cli import cli, run
from tuiops.cli.build import click_type
from tuiops.commands import Command, all_commands
from tuiops.errors import InputError


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuiops.ops.demo import make_demo

    root = tmp_path_factory.mktemp("registry") / "demo"
    make_demo(root, images=12, seed=7)
    return root


def _click_command(path: tuple[str, ...]) -> click.Command:
    node: click.Command = cli
    for part in path:
        assert isinstance(node, click.Group), path
        node = node.commands[part]
    return node


@pytest.mark.parametrize("cmd", all_commands(), ids=lambda c: c.op)
def test_the_click_command_has_the_registered_params(cmd: Command) -> None:
    clicked = _click_command(cmd.path)
    params = [p for p in clicked.params if not (isinstance(p, click.Option) and "--help" in p.opts)]
    assert [p.name for p in params] == [p.name for p in cmd.params]
    assert clicked.help == cmd.help
    for cp, rp in zip(params, cmd.params, strict=True):
        assert isinstance(cp, click.Argument) == rp.is_argument, rp.name
        assert tuple(cp.opts) == (rp.opts if rp.opts else (rp.name,)), rp.name
        assert tuple(cp.secondary_opts) == rp.secondary, rp.name
        assert cp.required == rp.required, rp.name
        assert cp.multiple == rp.multiple and cp.nargs == rp.nargs, rp.name
        if isinstance(cp, click.Option):
            assert cp.is_flag == rp.is_flag, rp.name
            assert cp.help == rp.help and cp.show_default == rp.show_default, rp.name
            if not rp.is_flag:
                assert cp.type.to_info_dict() == click_type(rp.type).to_info_dict(), rp.name
        # (the info dict shows a default that is not given as None)
        assert cp.to_info_dict()["default"] == (rp.empty() if rp.is_flag else rp.default), rp.name


def test_every_registered_type_converts_as_click_does() -> None:
    for cmd in all_commands():
        clicked = {p.name: p for p in _click_command(cmd.path).params}
        for rp in cmd.params:
            if rp.is_flag:
                continue
            cp = clicked[rp.name]
            for text in ("7", "0.5", "-1", "40", "abc", "processed", "all", "", "1e3"):
                try:
                    want = cp.type.convert(text, cp, None)
                except click.BadParameter as exc:
                    with pytest.raises(ValueError) as got:
                        rp.type.convert(text)
                    assert str(got.value) == exc.message, (cmd.op, rp.name, text)
                else:
                    assert rp.type.convert(text) == want, (cmd.op, rp.name, text)


def _script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_step_of_a_registered_command_runs_without_click(demo, tmp_path, monkeypatch) -> None:
    from tuiops.script.runner import prepare, start_run
    from tuiops.workspace import Workspace

    script = _script(
        tmp_path,
        "steps:\n"
        "  - name: nms\n    op: nms\n    params: {run: v1, into: v1-reg, iou: 0.6, replace: true}\n"
        "  - name: match\n    op: match\n    params: {set: master, run: '${steps.nms.into}', top: 3}\n"
        "  - name: eval\n    op: eval\n    params: {set: master, run: v1}\n"
        "  - name: sel\n    op: select\n    params: {where: 'file_id <= 3', save: firsts, replace: true}\n"
        "  - name: copy\n    op: ops copy\n    params: {selection: firsts, to: out/copy, quiet: true}\n"
        "  - name: pools\n    op: pools\n"
        "  - name: rescan\n    op: scan\n    params: {name: '${steps.pools.items.0.name}', hash: false, quiet: true}\n"
        "  - name: export\n    op: labels export\n    params: {set: master, format: yolo, to: out/master, quiet: true}\n"
        "  - name: reimport\n    op: labels import\n"
        "    params: {src: out/master, set: copy, format: yolo, replace: true, quiet: true}\n"
        "  - name: quality\n    op: quality\n    params: {run: v1, from-set: master, quantiles: [0.05, 0.95]}\n"
        "  - name: review\n    op: review export\n"
        "    params: {set: master, run: v1, kind: fn, top: 3, to: review/fn, dets: files, quiet: true}\n"
        "  - name: dupes\n    op: dupes\n    params: {max-distance: 4}\n"
        "  - name: q\n    op: query\n    params: {sql: 'SELECT count(*) AS n FROM v_labels'}\n"
        "  - name: ds\n    op: dataset build\n    params: {set: master, to: datasets/reg, val: 0.25, seed: 7, quiet: true}\n",
    )
    ws = Workspace.find(str(demo))
    try:
        _, variables, checked = prepare(script, {}, root=demo)

        def no_click(*args: object, **kwargs: object) -> None:
            raise AssertionError("a registered command's step went through click")

        monkeypatch.setattr(click.Command, "main", no_click)
        monkeypatch.setattr(click.Command, "make_context", no_click)
        monkeypatch.setattr(click.Context, "invoke", no_click)
        res = start_run(ws, *prepare(script, {}, root=demo), echo=None)
    finally:
        ws.close()
    assert res.status == "done", res.to_dict()
    steps = {s["name"]: s for s in res.steps}
    assert steps["nms"]["outputs"]["into"] == "v1-reg"
    assert steps["match"]["outputs"]["run"] == "v1-reg"
    assert "map" in steps["eval"]["outputs"]
    assert steps["sel"]["outputs"]["saved"] == "firsts" and steps["sel"]["outputs"]["files"] == 3
    assert steps["copy"]["outputs"]["run"]["done"] >= 3 and len(list((demo / "out" / "copy").iterdir())) >= 3
    assert steps["rescan"]["outputs"]["pool"] == steps["pools"]["outputs"]["items"][0]["name"]
    assert steps["reimport"]["outputs"]["boxes"] == steps["export"]["outputs"]["boxes"] > 0
    assert steps["quality"]["outputs"]["run"] == "v1"
    assert steps["review"]["outputs"]["run"]["status"] == "done" and (demo / "review" / "fn").is_dir()
    assert "groups" in steps["dupes"]["outputs"]
    assert steps["q"]["outputs"]["items"][0]["n"] > 0
    assert steps["ds"]["outputs"]["name"] == "reg" and (demo / "datasets" / "reg" / "data.yaml").is_file()
    assert variables["workspace"] == str(demo) and len(checked) == 14


def test_a_steps_outputs_are_the_commands_json(demo, tmp_path, capsys) -> None:
    script = _script(tmp_path, "steps:\n  - name: m\n    op: match\n    params: {set: master, run: v1}\n")
    assert run(["-w", str(demo), "run", str(script), "--json"]) == 0
    outputs = json.loads(capsys.readouterr().out)["steps"][0]["outputs"]
    assert run(["-w", str(demo), "match", "--set", "master", "--run", "v1", "--json"]) == 0
    direct = json.loads(capsys.readouterr().out)
    assert outputs.pop("seconds").keys() == direct.pop("seconds").keys()
    assert outputs == direct


@pytest.mark.parametrize(
    ("params", "line", "message"),
    [
        (
            "      max-distance: 40\n",
            5,
            "max-distance: Invalid value for '--max-distance': 40 is not in the range 0<=x<=32.",
        ),
        ("      limit: many\n", 5, "'many' is not a valid integer range."),
        ("      pool: [a, b]\n", 5, "pool takes one value, not a list"),
        ("      distinct-keys: sometimes\n", 5, "distinct-keys is a flag"),
    ],
)
def test_a_bad_value_for_a_registered_command_names_its_line(demo, tmp_path, capsys, params, line, message):
    script = _script(tmp_path, "steps:\n  - name: d\n    op: dupes\n    params:\n" + params)
    assert run(["-w", str(demo), "run", str(script)]) == InputError.exit_code
    err = capsys.readouterr().err
    assert f"s.yaml:{line}: step 'd' (dupes): " in err, err
    assert message in err, err


def test_a_value_known_only_when_the_step_runs_is_checked_then(demo, tmp_path, capsys) -> None:
    script = _script(
        tmp_path,
        "steps:\n"
        "  - name: q\n    op: query\n    params: {sql: \"SELECT 'x' AS d\"}\n"
        "  - name: d\n    op: dupes\n    params: {max-distance: '${steps.q.items.0.d}'}\n",
    )
    assert run(["-w", str(demo), "run", str(script)]) == 2
    err = capsys.readouterr().err
    assert (
        "s.yaml:5, tuiops dupes) failed: Invalid value for '--max-distance': 'x' is not a valid integer range."
        in err
    ), err


def test_the_recorder_reads_a_registered_command_without_click(monkeypatch) -> None:
    from tuiops.script.record import command_params

    monkeypatch.setattr(click.Command, "make_context", lambda *a, **k: pytest.fail("went through click"))
    step = command_params(
        ["nms", "--run", "a", "--run=b", "--into", "c", "--iou", "0.5", "--agnostic", "--json"]
    )
    assert step.op == ("nms",)
    assert step.params == {"run": ["a", "b"], "into": "c", "iou": 0.5, "agnostic": True}
    with pytest.raises(Exception, match="No such option: --nope"):
        command_params(["dupes", "--nope"])


def test_project_steps_run_without_click(tmp_path, monkeypatch) -> None:
    from tuiops.ops.project import copy_examples
    from tuiops.script.runner import prepare, start_run
    from tuiops.workspace import Workspace

    w = Workspace.init(tmp_path / "ws", classes=["head"])
    copy_examples(w)
    w.close()
    root = w.root
    script = _script(
        tmp_path,
        "steps:\n"
        "  - name: new\n    op: project new\n    params: {name: p1, classes: 'a,b', count: 4}\n"
        "  - name: build\n    op: project build\n    params: {name: close_button, count: 4, quiet: true}\n"
        "  - name: mix\n    op: project mix\n"
        "    params: {projects: [close_button], out: mixes/m, format: yolo, allow_stale: true, quiet: true}\n"
        "  - name: show\n    op: project show\n    params: {name: close_button}\n",
    )

    def no_click(*args: object, **kwargs: object) -> None:
        raise AssertionError("a registered command's step went through click")

    monkeypatch.setattr(click.Command, "main", no_click)
    monkeypatch.setattr(click.Command, "make_context", no_click)
    ws = Workspace.find(str(root))
    try:
        res = start_run(ws, *prepare(script, {}, root=root), echo=None)
    finally:
        ws.close()
    assert res.status == "done", res.to_dict()
    steps = {s["name"]: s for s in res.steps}
    assert (root / "projects" / "p1" / "project.toml").is_file()
    assert steps["build"]["outputs"]["images"] == 4
    assert steps["mix"]["outputs"]["images"] == 4 and (root / "mixes" / "m" / "data.yaml").is_file()
    assert steps["show"]["outputs"]["last_build"]["images"] == 4


def test_an_import_that_stores_nothing_fails_its_step(demo, tmp_path, capsys) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "danbooru_2816506.txt").write_text("0 0.5 0.5 nan 0.2\n", encoding="utf-8")
    script = _script(
        tmp_path,
        f"steps:\n  - name: imp\n    op: labels import\n    params: {{src: {bad}, set: bad, format: yolo, strict: true}}\n",
    )
    assert run(["-w", str(demo), "run", str(script)]) == InputError.exit_code
    err = capsys.readouterr().err
    assert "step 'imp'" in err and "nothing imported" in err, err
    assert (
        run(
            [
                "-w",
                str(demo),
                "labels",
                "import",
                str(bad),
                "--set",
                "bad",
                "--format",
                "yolo",
                "--strict",
                "--json",
            ]
        )
        == 4
    )
    out = capsys.readouterr()
    assert json.loads(out.out)["problem_count"] >= 1 and "nothing imported" in out.err


@pytest.mark.parametrize(
    ("argv", "missing"),
    [
        (["match"], "Missing option '--set'."),
        (["match", "--set", "master"], "Missing option '--run'."),
        (["project", "new"], "Missing argument 'NAME'."),
        (["report", "--set", "master", "--run", "v1"], "Missing option '--to'."),
        (["hosts", "add", "h1"], "Missing option '--address'."),
    ],
)
def test_a_missing_required_option_or_argument_is_a_usage_error(demo, capsys, argv, missing) -> None:
    """click reads an explicit default of None as a value: a required parameter built from
    the registry gets no default, so click still asks for it."""
    assert run(["-w", str(demo), *argv]) == 2
    err = capsys.readouterr().err
    assert missing in err and "Traceback" not in err, err


def test_steps_of_the_hosts_training_jobs_report_and_demo_commands_run_without_click(
    demo, tmp_path, monkeypatch
) -> None:
    from tuiops.script.runner import prepare, run_row, start_run
    from tuiops.workspace import Workspace

    script = _script(
        tmp_path,
        "steps:\n"
        "  - name: add\n    op: hosts add\n    params: {name: h1, address: 127.0.0.1, port: 2222}\n"
        "  - name: hosts\n    op: hosts list\n"
        "  - name: gone\n    op: hosts remove\n    params: {name: h1}\n"
        "  - name: runs\n    op: train status\n"
        "  - name: copy\n    op: ops copy\n    params: {where: 'file_id <= 2', to: out/shown, quiet: true}\n"
        "  - name: show\n    op: ops show\n    params: {job: '${steps.copy.run.job_id}', actions: all, limit: 1}\n"
        "  - name: conflicts\n    op: ops show\n    params: {job: '${steps.copy.run.job_id}', conflicts: true}\n"
        "  - name: report\n    op: report\n    params: {set: master, run: v1, to: out/report, top: 2, quiet: true}\n"
        "  - name: demo\n    op: demo\n    params: {directory: out/demo2, images: 3, open: true}\n",
    )

    def no_click(*args: object, **kwargs: object) -> None:
        raise AssertionError("a registered command's step went through click")

    monkeypatch.setattr(click.Command, "main", no_click)
    monkeypatch.setattr(click.Command, "make_context", no_click)
    monkeypatch.setattr(click.Context, "invoke", no_click)
    ws = Workspace.find(str(demo))
    try:
        res = start_run(ws, *prepare(script, {}, root=demo), echo=None)
        demo_log = run_row(ws.store, res.run_id)["steps"][-1]["log"]
    finally:
        ws.close()
    assert res.status == "done", res.to_dict()
    out = {s["name"]: s["outputs"] for s in res.steps}
    assert out["add"] == {
        "name": "h1",
        "address": "127.0.0.1",
        "port": 2222,
        "user": None,
        "home": None,
        "python": None,
    }
    assert [h["name"] for h in out["hosts"]["items"]] == ["h1"]
    assert out["runs"] == {"items": [], "count": 0}
    assert out["show"]["id"] == out["conflicts"]["id"] == res.steps[4]["outputs"]["run"]["job_id"]
    assert len(out["show"]["actions"]) == 1  # --actions all --limit 1
    assert out["conflicts"]["actions"] == []  # --conflicts: the actions with a conflict, none
    assert (
        out["report"]["index"].endswith("index.html") and (demo / "out" / "report" / "index.html").is_file()
    )
    assert out["demo"]["images"] == 3 and (demo / "out" / "demo2" / "tuiops.toml").is_file()
    # a script cannot open the terminal app, and says so
    assert "--open: the terminal app opens from the command line only" in demo_log


@pytest.mark.parametrize(
    ("op", "message", "hint"),
    [
        (
            "hosts frob",
            "unknown op 'hosts frob': tuiops hosts has no command 'frob'",
            "known: add, check, list, remove, trust",
        ),
        (
            "remote run ls",
            "unknown op 'remote run ls': `tuiops remote run` has no subcommands",
            "`tuiops --help`",
        ),
        ("runs", "op 'runs' is a group of commands", "name one of them: runs list, runs show"),
        ("tui", "op 'tui' cannot be a step", "scripts do not run other scripts or the terminal app"),
        ("runs show", "op 'runs show' cannot be a step", "use include: to reuse steps"),
    ],
)
def test_a_step_is_checked_against_the_registry(demo, tmp_path, capsys, op, message, hint) -> None:
    script = _script(tmp_path, f"steps:\n  - name: s\n    op: {op}\n")
    assert run(["-w", str(demo), "run", str(script), "--dry-run"]) == InputError.exit_code
    err = capsys.readouterr().err
    assert f"s.yaml:3: {message}" in err and hint in err, err


def test_the_recorder_reads_every_kind_of_parameter_from_the_registry(monkeypatch) -> None:
    from tuiops.errors import UsageError
    from tuiops.script.record import command_params

    monkeypatch.setattr(click.Command, "make_context", lambda *a, **k: pytest.fail("went through click"))
    step = command_params(["ops", "show", "3", "--errors", "--limit", "5"])
    assert (step.op, step.params) == (("ops", "show"), {"job": 3, "errors": True, "limit": 5})
    step = command_params(["ops", "show", "3", "--actions", "failed"])
    assert step.params == {"job": 3, "actions": "failed"}
    # the words of a remote command are passed on as they are, options included
    step = command_params(["remote", "run", "gpu1", "--timeout", "5", "ls", "-la"])
    assert step.params == {"hosts": "gpu1", "command": ["ls", "-la"], "timeout": 5.0}
    step = command_params(["demo", "d", "--no-open", "--images", "3"])
    assert step.params == {"directory": "d", "images": 3, "open": False}
    for argv in (["run", "x.yaml"], ["runs", "list"], ["tui"], ["hosts"], ["frob"]):
        with pytest.raises(UsageError):
            command_params(argv)
