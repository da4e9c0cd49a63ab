"""Running a validated script as one recorded run: steps in order, outputs, resume.

Each step runs its tuiops command in this process: the registry's function of the command
with the step's values (as with ``--json`` where the command has it: its data become the
step's outputs). The run and every step's status,
outputs, error and log tail are written to ``script_runs``/``script_steps`` as they
change, so a run killed at any point can be continued: ``--resume RUNID`` re-runs the
first step that is not done (the commands are resumable or idempotent: scan is
incremental, detect continues its run, match and nms replace their result, a step that
creates a named set or run should pass ``replace: true``).

Paths in a script are relative to the workspace root: steps run with it as the current
folder. Ctrl+C (SIGINT) cancels the current step through the command's own cancel path;
the step and the run end "cancelled" and the exit code is 130.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.commands import BadUsage, BadValue, Command, CommandContext
from tuiops.errors import Cancelled, ConflictError, InputError, NotFoundError, TuiopsError, UsageError
from tuiops.ops.base import pid_alive
from tuiops.script.expr import find_refs, interpolate, to_text
from tuiops.script.parse import Script, load_script
from tuiops.script.validate import (
    Checked,
    Scope,
    build_argv,
    convert_value,
    flag_value,
    json_args,
    script_variables,
    validate,
)

if TYPE_CHECKING:
    from tuiops.store import Store
    from tuiops.workspace import Workspace

LOG_CHARS = 4000
STEP_STATUSES = ("pending", "running", "done", "failed", "skipped", "cancelled")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CHDIR_LOCK = threading.Lock()


class StepFailed(TuiopsError):
    """A step's command failed; the run's exit code is the step's."""

    def __init__(self, message: str, *, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


@dataclass
class StepOutcome:
    """How one step ended."""

    status: str
    exit_code: int = 0
    outputs: dict[str, Any] | None = None
    error: str | None = None
    hint: str | None = None
    log: str = ""


@dataclass
class RunResult:
    """A finished (or stopped) run, as `tuiops run --json` prints it."""

    run_id: int
    script: str
    status: str
    exit_code: int
    steps: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "script": self.script,
            "status": self.status,
            "exit_code": self.exit_code,
            "error": self.error,
            "steps": self.steps,
        }


Echo = Callable[[str], None]


def echo_stderr(text: str) -> None:
    """A run's step lines as `tuiops run` shows them: one line on stderr, flushed."""
    print(text, file=sys.stderr, flush=True)


class StepDisplay:
    """Progress of a run: a bar per step on a terminal (stderr a TTY), plain lines otherwise
    (``run N: I/TOTAL (P%) STEP``, for a person reading a log; programs read the events
    channel of :mod:`tuiops.events`).
    """

    def __init__(self, echo: Echo | None, label: str, *, tty: bool | None = None) -> None:
        self.echo = echo
        self.label = label
        self.tty = _isatty() if tty is None else tty
        self.bar: Any = None
        self.task: Any = None

    def _bar(self) -> Any:
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[status]}"),
                console=Console(stderr=True),
            )
            self.bar.start()
        return self.bar

    def begin(self, i: int, n: int, name: str, command: str) -> None:
        if self.echo is None:
            return
        self.echo(f"==> [{i + 1}/{n}] {name}: {command}")
        if self.tty:
            bar = self._bar()
            self.task = bar.add_task(f"[{i + 1}/{n}] {name}", total=None, status="running")
        else:
            self.echo(f"{self.label}: {i}/{n} ({100 * i // max(n, 1)}%) {name}")

    def end(self, i: int, n: int, name: str, status: str, seconds: float) -> None:
        if self.echo is None:
            return
        if self.tty and self.bar is not None and self.task is not None:
            self.bar.update(self.task, total=1, completed=1 if status == "done" else 0, status=status)
            self.task = None
        else:
            self.echo(f"    {name}: {status} in {seconds:.1f}s")
            self.echo(f"{self.label}: {i + 1}/{n} ({100 * (i + 1) // max(n, 1)}%) {name} {status}")

    def skipped(self, i: int, n: int, name: str, why: str) -> None:
        if self.echo is not None:
            self.echo(f"==> [{i + 1}/{n}] {name}: skipped ({why})")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# -- running one command in this process -----------------------------------------------------------
class _Tee(io.TextIOBase):
    """Writes through to a stream and keeps the last characters (the step's log tail)."""

    def __init__(self, stream: Any, keep: int = LOG_CHARS) -> None:
        super().__init__()
        self.stream = stream
        self.keep = keep
        self.buf = ""

    def write(self, s: str) -> int:
        self.buf = (self.buf + s)[-self.keep * 2 :]
        try:
            self.stream.write(s)
        except (OSError, ValueError):
            pass
        return len(s)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()

    def isatty(self) -> bool:
        try:
            return bool(self.stream.isatty())
        except (OSError, ValueError, AttributeError):
            return False

    def fileno(self) -> int:
        return int(self.stream.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]  # typeshed: a writable attribute; CPython: read-only
        return getattr(self.stream, "encoding", None) or "utf-8"

    def tail(self) -> str:
        text = _ANSI.sub("", self.buf)
        lines = [ln.rsplit("\r", 1)[-1] for ln in text.split("\n")]
        return "\n".join(lines)[-self.keep :]


def invoke(root: Path, checked: Checked, values: Mapping[str, Any], *, json_output: bool) -> StepOutcome:
    """Run a step's command in this process (the registry's function of it) and capture its
    outcome: its status, the JSON it gives as outputs and its log tail."""
    tee = _Tee(sys.stderr)
    outcome, text = call(root, checked.info.command, checked, values, tee, json_format=json_output)
    outcome.log = tee.tail()
    if outcome.status == "done":
        outcome.outputs = _outputs(text, json_output)
    return outcome


def call(
    root: Path,
    command: Command,
    checked: Checked,
    values: Mapping[str, Any],
    tee: _Tee,
    *,
    json_format: bool = False,
) -> tuple[StepOutcome, str]:
    """Call a registered command's function with a step's values in the workspace at ``root``;
    returns the outcome and its data as the command's ``--json`` prints it."""
    from tuiops.reporting import event_writer, progress_reporter
    from tuiops.workspace import Workspace

    opened: list[Workspace] = []

    def find_workspace() -> Workspace:
        ws = Workspace.find(str(root))
        opened.append(ws)
        return ws

    ctx = CommandContext(find_workspace=find_workspace, progress=progress_reporter)
    out = io.StringIO()
    text = ""
    outcome: StepOutcome
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(tee):
        try:
            kwargs: dict[str, Any] = {}
            for p, param in checked.params:
                value = values[param.key]
                if p.is_flag and p.flag_value is not None:
                    if flag_value(p, value, param.loc, checked.step, command.op):
                        kwargs[p.name] = p.flag_value
                elif p.is_flag:
                    kwargs[p.name] = flag_value(p, value, param.loc, checked.step, command.op)
                elif value is not None:
                    try:
                        kwargs[p.name] = convert_value(p, value)
                    except BadValue as exc:
                        raise UsageError(f"Invalid value for {p.error_hint}: {exc}") from exc
            if command.has_json:
                kwargs["as_json"] = True
            elif json_format:
                fmt = command.param("format")
                if fmt is not None:
                    kwargs[fmt.name] = "json"
            result = command.call(ctx, kwargs)
            for w in result.warnings:
                print(f"tuiops: warning: {w}", file=sys.stderr)
            if result.after is not None:
                result.after()
            if result.error is not None:
                raise result.error
            events = event_writer()
            if events is not None and not result.raw:
                events.write("result", result=result.data)
            if command.has_json:
                text = json.dumps(result.data, indent=2, default=str, ensure_ascii=False) + "\n"
            else:
                text = result.render() or ""
            code = result.exit_code
            outcome = StepOutcome("done" if code == 0 else "failed", code)
            if code:
                outcome.error = f"exit code {code}"
        except Cancelled as exc:
            outcome = StepOutcome("cancelled", 130, error=exc.message, hint=exc.hint)
        except TuiopsError as exc:
            outcome = StepOutcome("failed", exc.exit_code, error=exc.message, hint=exc.hint)
        except KeyboardInterrupt:
            outcome = StepOutcome("cancelled", 130, error="interrupted")
        except BadValue as exc:
            what = f"Invalid value for {exc.param}" if exc.param else "Invalid value"
            outcome = StepOutcome("failed", 2, error=f"{what}: {exc}")
        except BadUsage as exc:
            outcome = StepOutcome("failed", 2, error=str(exc))
        except Exception as exc:
            outcome = StepOutcome("failed", 1, error=f"{type(exc).__name__}: {exc}")
        finally:
            for ws in opened:
                ws.close()
    return outcome, text


def _outputs(text: str, json_output: bool) -> dict[str, Any]:
    if not json_output:
        return {}
    value: Any = None
    try:
        value = json.loads(text)
    except ValueError:
        for start in (text.rfind("\n{"), text.rfind("\n[")):
            if start >= 0:
                with contextlib.suppress(ValueError):
                    value = json.loads(text[start:])
                    break
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {"items": value, "count": len(value)}
    if value is None and text.strip():
        return {"stdout": text[-LOG_CHARS:]}
    return {"value": value}


@contextlib.contextmanager
def _in_folder(root: Path) -> Iterator[None]:
    with _CHDIR_LOCK:
        old = os.getcwd()
        os.chdir(root)
        try:
            yield
        finally:
            os.chdir(old)


@contextlib.contextmanager
def _signals() -> Iterator[None]:
    """In the main thread, SIGINT and SIGTERM interrupt the current step (KeyboardInterrupt).

    From any other thread (the app's workers) nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    old_term = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


# -- the record ------------------------------------------------------------------------------------
def _now() -> str:
    from tuiops.store.db import utcnow

    return utcnow()


def _set_step(store: Store, run_id: int, idx: int, **cols: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in cols)
    with store.transaction() as conn:
        conn.execute(
            f"UPDATE script_steps SET {sets} WHERE run_id = ? AND idx = ?", (*cols.values(), run_id, idx)
        )


def _set_run(store: Store, run_id: int, **cols: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in cols)
    with store.transaction() as conn:
        conn.execute(f"UPDATE script_runs SET {sets} WHERE id = ?", (*cols.values(), run_id))


def run_row(store: Store, run_id: int) -> dict[str, Any]:
    """One recorded run with its steps."""
    cur = store.execute("SELECT * FROM script_runs WHERE id = ?", (run_id,))
    row = cur.fetchone()
    if row is None:
        raise NotFoundError(f"no script run {run_id}", hint="`tuiops runs list` lists them")
    names = [d[0] for d in cur.description]
    run = dict(zip(names, row, strict=True))
    run["vars"] = json.loads(run["vars"] or "{}")
    if run["status"] == "running" and not pid_alive(run["pid"]):
        run["status"] = "interrupted"
    cur = store.execute("SELECT * FROM script_steps WHERE run_id = ? ORDER BY idx", (run_id,))
    names = [d[0] for d in cur.description]
    steps = []
    for r in cur.fetchall():
        s = dict(zip(names, r, strict=True))
        s.pop("run_id", None)
        s["argv"] = json.loads(s["argv"]) if s["argv"] else None
        s["outputs"] = json.loads(s["outputs"]) if s["outputs"] else None
        steps.append(s)
    run["steps"] = steps
    return run


def list_runs(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """The latest recorded runs, newest first, with step counts by status."""
    rows = store.execute(
        "SELECT r.id, r.script, r.status, r.started, r.ended, r.pid, r.exit_code, r.error, "
        "(SELECT count(*) FROM script_steps s WHERE s.run_id = r.id), "
        "(SELECT count(*) FROM script_steps s WHERE s.run_id = r.id AND s.status = 'done') "
        "FROM script_runs r ORDER BY r.id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    out = []
    for rid, script, status, started, ended, pid, code, error, n, done in rows:
        if status == "running" and not pid_alive(pid):
            status = "interrupted"
        out.append(
            {
                "id": rid,
                "script": script,
                "status": status,
                "started": started,
                "ended": ended,
                "steps": n,
                "done": done,
                "exit_code": code,
                "error": error,
            }
        )
    return out


# -- planning --------------------------------------------------------------------------------------
def _check_overrides(script: Script, overrides: Mapping[str, str]) -> None:
    """A ``--var`` the script neither defines nor uses is a mistake (a typo would do nothing)."""
    used: set[str] = set(script.vars)
    texts: list[tuple[Any, str]] = [(p.value, str(p.loc)) for p in script.vars.values()]
    for step in script.steps:
        texts.extend((p.value, str(p.loc)) for p in step.params.values())
        if step.when:
            texts.append((step.when, str(step.when_loc or step.loc)))
    for value, where in texts:
        used.update(r.name for r in find_refs(value, where) if r.kind == "var")
    unknown = [k for k in overrides if k not in used]
    if unknown:
        known = ", ".join(sorted(script.vars)) or "none"
        raise UsageError(
            f"--var {unknown[0]}: {script.path.name} has no variable {unknown[0]!r}",
            hint=f"its variables: {known}",
        )


def prepare(
    path: str | Path, overrides: Mapping[str, str], *, root: Path
) -> tuple[Script, dict[str, Any], list[Checked]]:
    """Load and validate a script; nothing runs. Returns it, its variables and its checked steps."""
    script = load_script(path)
    _check_overrides(script, overrides)
    variables = script_variables(script, overrides)
    variables.setdefault("workspace", str(root))
    variables.setdefault("script_dir", str(script.path.parent))
    checked = validate(script, variables)
    return script, variables, checked


def dry_run_lines(
    script: Script, variables: Mapping[str, Any], checked: list[Checked], *, start: int = 0
) -> list[str]:
    """What a run would do: each step's command line (outputs of earlier steps shown as ``${…}``)."""
    import shlex

    scope = Scope(variables)
    scope.validating = True
    for i, c in enumerate(checked):
        scope.order[c.step.name] = (i, json_args(c.info, c.step) is not None)
    shown = {k: v for k, v in variables.items() if k not in ("workspace", "script_dir")}
    lines = [f"script {script.path}: {len(checked)} steps"]
    if shown:
        lines.append("vars: " + ", ".join(f"{k}={to_text(v)}" for k, v in shown.items()))
    width = max((len(c.step.name) for c in checked), default=0)
    for i, c in enumerate(checked):
        scope.current = i
        values = {p.key: interpolate(p.value, scope.resolve, str(p.loc)) for _, p in c.params}
        argv = [*c.info.path, *build_argv(c, values)]
        mark = "skip" if i < start else f"{i + 1:>3}."
        lines.append(f"{mark} {c.step.name:<{width}}  tuiops {shlex.join(argv)}")
        if c.step.when:
            lines.append(f"     {'':<{width}}  when: {c.step.when}")
    return lines


# -- running ---------------------------------------------------------------------------------------
class Runner:
    """Runs the checked steps of one recorded run, from ``start`` on."""

    def __init__(
        self,
        ws: Workspace,
        script: Script,
        variables: Mapping[str, Any],
        checked: list[Checked],
        run_id: int,
        *,
        echo: Echo | None = echo_stderr,
    ) -> None:
        self.ws = ws
        self.script = script
        self.checked = checked
        self.run_id = run_id
        self.echo = echo or (lambda text: None)
        self.display = StepDisplay(echo, f"run {run_id}")
        self.scope = Scope({**variables, "run_id": run_id})
        self.current = ""

    @property
    def store(self) -> Store:
        return self.ws.store

    def restore(self, name: str, status: str, outputs: dict[str, Any] | None) -> None:
        """Take over a step finished by an earlier attempt (its outputs stay usable)."""
        self.scope.status[name] = status
        if outputs is not None:
            self.scope.outputs[name] = outputs

    def run(self, start: int = 0) -> RunResult:
        from tuiops.ops.base import job

        n = len(self.checked)
        params = {"script": str(self.script.path), "run_id": self.run_id, "from": start}
        try:
            with job(self.store, "script", params, total=n) as handle:
                try:
                    with _signals(), _in_folder(self.ws.root):
                        try:
                            for i in range(start, n):
                                self.current = self.checked[i].step.name
                                self._step(i)
                                self.store.job_progress(handle.id, i + 1, n, self.checked[i].step.name)
                        finally:
                            self.display.close()
                except KeyboardInterrupt:
                    raise Cancelled(
                        f"run {self.run_id}: step {self.current!r} was cancelled",
                        hint=f"continue with `tuiops run --resume {self.run_id}`",
                    ) from None
                handle.result = {"run_id": self.run_id, "steps": n}
        except Cancelled as exc:
            for row in self.store.execute(
                "SELECT idx FROM script_steps WHERE run_id = ? AND status = 'running'", (self.run_id,)
            ).fetchall():
                _set_step(
                    self.store,
                    self.run_id,
                    row[0],
                    status="cancelled",
                    ended=_now(),
                    error="interrupted",
                    exit_code=130,
                )
            _set_run(
                self.store, self.run_id, status="cancelled", ended=_now(), error=exc.message, exit_code=130
            )
            raise
        except StepFailed as exc:
            _set_run(
                self.store,
                self.run_id,
                status="failed",
                ended=_now(),
                error=exc.message,
                exit_code=exc.exit_code,
            )
            raise
        _set_run(self.store, self.run_id, status="done", ended=_now(), error=None, exit_code=0)
        self.echo(f"run {self.run_id}: done ({n} steps)")
        return self.result()

    def _step(self, i: int) -> None:
        import shlex

        c = self.checked[i]
        step = c.step
        n = len(self.checked)
        try:
            go = c.when is None or c.when.evaluate(self.scope.resolve)
            args: list[str] = []
            values: dict[str, Any] = {}
            if go:
                values = {p.key: interpolate(p.value, self.scope.resolve, str(p.loc)) for _, p in c.params}
                args = build_argv(c, values)
        except TuiopsError as exc:
            _set_step(
                self.store,
                self.run_id,
                i,
                status="failed",
                started=_now(),
                ended=_now(),
                error=exc.message,
                exit_code=exc.exit_code,
            )
            raise StepFailed(
                f"run {self.run_id}: step {step.name!r} ({step.loc}): {exc.message}",
                exit_code=exc.exit_code,
                hint=(f"{exc.hint}; " if exc.hint else "")
                + f"fix the script, then `tuiops run --resume {self.run_id} --force`",
            ) from exc
        if not go:
            self.scope.status[step.name] = "skipped"
            _set_step(
                self.store,
                self.run_id,
                i,
                status="skipped",
                started=_now(),
                ended=_now(),
                error=f"when: {step.when} is false",
            )
            self.display.skipped(i, n, step.name, f"when: {step.when}")
            return
        shown = shlex.join([*c.info.path, *args])
        _set_step(
            self.store,
            self.run_id,
            i,
            status="running",
            started=_now(),
            ended=None,
            error=None,
            outputs=None,
            exit_code=None,
            argv=json.dumps([*c.info.path, *args]),
        )
        self.display.begin(i, n, step.name, f"tuiops {shown}")
        t0 = time.monotonic()
        try:
            outcome = invoke(self.ws.root, c, values, json_output=json_args(c.info, step) is not None)
        except KeyboardInterrupt:
            outcome = StepOutcome("cancelled", 130, error="interrupted")
        _set_step(
            self.store,
            self.run_id,
            i,
            status=outcome.status,
            ended=_now(),
            error=outcome.error,
            exit_code=outcome.exit_code,
            outputs=json.dumps(outcome.outputs, default=str) if outcome.outputs is not None else None,
            log=outcome.log,
        )
        self.scope.status[step.name] = outcome.status
        self.display.end(i, n, step.name, outcome.status, time.monotonic() - t0)
        if outcome.status == "done":
            self.scope.outputs[step.name] = outcome.outputs or {}
            return
        if outcome.status == "cancelled":
            raise KeyboardInterrupt
        hint = f"fix it, then continue with `tuiops run --resume {self.run_id}`"
        if outcome.hint:
            hint = f"{outcome.hint}; then continue with `tuiops run --resume {self.run_id}`"
        raise StepFailed(
            f"run {self.run_id}: step {step.name!r} ({step.loc}, tuiops {c.info.op}) failed: {outcome.error}",
            exit_code=outcome.exit_code or 1,
            hint=hint,
        )

    def result(self) -> RunResult:
        row = run_row(self.store, self.run_id)
        return RunResult(
            self.run_id,
            str(self.script.path),
            row["status"],
            int(row["exit_code"] or 0),
            [
                {
                    k: s[k]
                    for k in (
                        "idx",
                        "name",
                        "op",
                        "status",
                        "started",
                        "ended",
                        "exit_code",
                        "error",
                        "outputs",
                    )
                }
                for s in row["steps"]
            ],
            row["error"],
        )


def _insert_run(
    store: Store,
    script: Script,
    variables: Mapping[str, Any],
    checked: list[Checked],
    statuses: list[tuple[str, Any, str | None]],
) -> int:
    shown = {k: v for k, v in variables.items() if k not in ("workspace", "script_dir", "run_id")}
    with store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO script_runs(script, sha256, vars, started, status, pid) VALUES (?, ?, ?, ?, 'running', ?)",
            (str(script.path), script.sha256, json.dumps(shown, default=str), _now(), os.getpid()),
        )
        run_id = int(cur.lastrowid or 0)
        for i, (c, (status, outputs, error)) in enumerate(zip(checked, statuses, strict=True)):
            conn.execute(
                "INSERT INTO script_steps(run_id, idx, name, op, status, outputs, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    i,
                    c.step.name,
                    c.info.op,
                    status,
                    json.dumps(outputs, default=str) if outputs is not None else None,
                    error,
                ),
            )
    return run_id


def _check_from(checked: list[Checked], start: int, earlier: Mapping[str, Any], from_step: str) -> None:
    """Refuse ``--from`` when a later step needs the outputs of a skipped step no run has made.

    Only references without a ``:-default`` in steps without ``when:`` are certain to be needed.
    """
    missing = {c.step.name for c in checked[:start]} - set(earlier)
    if not missing:
        return
    for c in checked[start:]:
        if c.step.when is not None:
            continue
        for _, param in c.params:
            for ref in find_refs(param.value, str(param.loc)):
                if ref.kind == "steps" and ref.name in missing and ref.default is None:
                    raise InputError(
                        f"{param.loc}: step {c.step.name!r} needs {ref.text}, but step {ref.name!r} "
                        f"comes before --from {from_step} and no earlier run of this script did it",
                        hint=f"start at {ref.name!r} or before it (--from {ref.name})",
                    )


def start_run(
    ws: Workspace,
    script: Script,
    variables: Mapping[str, Any],
    checked: list[Checked],
    *,
    from_step: str | None = None,
    echo: Echo | None = echo_stderr,
) -> RunResult:
    """Record a new run of ``script`` and run it (from ``from_step`` on, when given).

    Steps before ``from_step`` are recorded as skipped; their outputs come from the latest run
    of the same script in which they were done, so later steps can still refer to them.
    """
    store = ws.store
    start = 0
    earlier: dict[str, Any] = {}
    if from_step is not None:
        try:
            start = script.step_index(from_step)
        except KeyError:
            names = ", ".join(s.name for s in script.steps)
            raise InputError(
                f"--from {from_step}: the script has no such step", hint=f"its steps: {names}"
            ) from None
        for c in checked[:start]:
            row = store.execute(
                "SELECT s.outputs FROM script_steps s JOIN script_runs r ON r.id = s.run_id "
                "WHERE r.script = ? AND s.name = ? AND s.status = 'done' AND s.outputs IS NOT NULL "
                "ORDER BY r.id DESC LIMIT 1",
                (str(script.path), c.step.name),
            ).fetchone()
            if row is not None:
                earlier[c.step.name] = json.loads(row[0])
        _check_from(checked, start, earlier, from_step)
    statuses: list[tuple[str, Any, str | None]] = [
        ("skipped", earlier.get(c.step.name), f"before --from {from_step}")
        if i < start
        else ("pending", None, None)
        for i, c in enumerate(checked)
    ]
    run_id = _insert_run(store, script, variables, checked, statuses)
    runner = Runner(ws, script, variables, checked, run_id, echo=echo)
    for c in checked[:start]:
        runner.restore(c.step.name, "skipped", earlier.get(c.step.name))
    (echo or (lambda t: None))(f"run {run_id}: {script.path} ({len(checked)} steps)")
    return runner.run(start)


def resume_run(
    ws: Workspace,
    run_id: int,
    *,
    force: bool = False,
    overrides: Mapping[str, str] | None = None,
    echo: Echo | None = echo_stderr,
) -> RunResult:
    """Continue a failed, cancelled or killed run with its first step that is not done."""
    store = ws.store
    row = run_row(store, run_id)
    if row["status"] == "done":
        raise ConflictError(
            f"run {run_id} is done already; nothing to resume",
            hint="start a new run with `tuiops run SCRIPT`",
        )
    if row["status"] == "running":
        raise ConflictError(
            f"run {run_id} is still running (process {row['pid']})",
            hint="stop it first (Ctrl+C there, or cancel it in the jobs pane)",
        )
    path = Path(row["script"])
    script = load_script(path)
    if script.sha256 != row["sha256"] and not force:
        raise ConflictError(
            f"script {path} (or a file it includes) changed since run {run_id} started",
            hint="resume anyway with --force (steps are matched by name), or start a new run",
        )
    variables = script_variables(script, {**row["vars"], **(overrides or {})})
    variables.setdefault("workspace", str(ws.root))
    variables.setdefault("script_dir", str(script.path.parent))
    checked = validate(script, variables)
    prior = {s["name"]: s for s in row["steps"]}
    start = len(checked)
    for i, c in enumerate(checked):
        s = prior.get(c.step.name)
        if s is None or s["status"] not in ("done", "skipped"):
            start = i
            break
    with store.transaction() as conn:
        conn.execute("DELETE FROM script_steps WHERE run_id = ?", (run_id,))
        for i, c in enumerate(checked):
            s = prior.get(c.step.name) if i < start else None
            conn.execute(
                "INSERT INTO script_steps(run_id, idx, name, op, argv, status, started, ended, outputs, error, exit_code, log) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    i,
                    c.step.name,
                    c.info.op,
                    json.dumps(s["argv"]) if s and s["argv"] else None,
                    s["status"] if s else "pending",
                    s["started"] if s else None,
                    s["ended"] if s else None,
                    json.dumps(s["outputs"], default=str) if s and s["outputs"] is not None else None,
                    s["error"] if s else None,
                    s["exit_code"] if s else None,
                    s["log"] if s else None,
                ),
            )
        conn.execute(
            "UPDATE jobs SET status = 'failed', finished = ?, error = 'its process is gone (killed or crashed)' "
            "WHERE kind = 'script' AND status = 'running' AND json_extract(params, '$.run_id') = ?",
            (_now(), run_id),
        )
        conn.execute(
            "UPDATE script_runs SET status = 'running', pid = ?, ended = NULL, error = NULL, exit_code = NULL, "
            "sha256 = ?, vars = ? WHERE id = ?",
            (
                os.getpid(),
                script.sha256,
                json.dumps(
                    {k: v for k, v in variables.items() if k not in ("workspace", "script_dir", "run_id")},
                    default=str,
                ),
                run_id,
            ),
        )
    runner = Runner(ws, script, variables, checked, run_id, echo=echo)
    for c in checked[:start]:
        s = prior[c.step.name]
        runner.restore(c.step.name, s["status"], s["outputs"])
    say = echo or (lambda t: None)
    if start < len(checked):
        say(f"run {run_id}: resuming at step {start + 1} ({checked[start].step.name}); {start} step(s) kept")
    return runner.run(start)
