"""Running a project's augmentation command here, in its own process group, with a time limit."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tuiops.errors import (
    ExternalToolError,
)
from tuiops.ops.base import CancelToken
from tuiops.ops.projects.model import (
    LOG_NAME,
    MISSING_MODULES,
    Project,
    missing_modules_error,
    projects_dir,
)

if TYPE_CHECKING:
    from tuiops.workspace import Workspace


class AugmentFailed(ExternalToolError):
    """The augmentation failed or ran past its time limit; its folder (with its log) is kept."""


def is_build_folder(name: str, project: str) -> bool:
    """Whether ``name`` is a build folder of ``project`` (``PROJECT-INPUTS12-COUNT-SEED``)."""
    return re.fullmatch(rf"{re.escape(project)}-[0-9a-f]{{12}}-\d+--?\d+", name) is not None


def format_command(template: str, out: str, count: int, seed: int) -> str:
    """The augment command with ``{out}``, ``{count}`` and ``{seed}`` substituted, shell-quoted."""
    return template.format(out=shlex.quote(out), count=shlex.quote(str(count)), seed=shlex.quote(str(seed)))


def output_tail(text: str, lines: int = 12) -> str:
    """The last ``lines`` non-blank lines of a command's output, indented for an error message."""
    kept = [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return "\n    ".join(kept)


def _kill_group(proc: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def check_requires_here(project: Project) -> None:
    """Refuse a build whose ``requires`` modules the interpreter running its script here cannot import."""
    if not project.requires:
        return
    res = subprocess.run(
        [sys.executable, "-c", MISSING_MODULES, *project.requires],
        capture_output=True,
        text=True,
        check=False,
        cwd=project.root,
    )
    missing = res.stdout.split()
    if missing:
        raise missing_modules_error(project, missing, "here", sys.executable)


def run_local(
    ws: Workspace,
    project: Project,
    out: Path,
    count: int,
    seed: int,
    timeout: float | None,
    cancel: CancelToken | None,
) -> None:
    """Run the augmentation here in ``out``; its output goes to ``augment.log`` beside ``out``."""
    cmd = format_command(project.augment, str(out), count, seed)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(projects_dir(ws)), env.get("PYTHONPATH", "")) if p)
    env["PATH"] = os.pathsep.join(p for p in (os.path.dirname(sys.executable), env.get("PATH", "")) if p)
    log_path = out.parent / LOG_NAME
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd,
                shell=True,
                cwd=project.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except OSError as exc:
        raise ExternalToolError(f"cannot start the augmentation of {project.name} (`{cmd}`): {exc}") from exc
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        try:
            rc = proc.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        if cancel is not None and cancel.cancelled:
            _kill_group(proc)
            cancel.check()
        if deadline is not None and time.monotonic() > deadline:
            _kill_group(proc)
            raise AugmentFailed(
                f"the augmentation of {project.name} (`{cmd}`) did not finish within {timeout:g} s "
                f"and was stopped; the previous build is untouched; the failed build is kept in "
                f"{out.parent} (its log: {log_path})",
                hint="raise the limit with --timeout SECONDS, or check why the script hangs "
                f"(does it wait for input or a lock?); `tuiops project clean {project.name}` removes it",
            )
    if rc != 0:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        raise AugmentFailed(
            f"the augmentation of {project.name} (`{cmd}`) failed with exit status {rc}; "
            f"the previous build is untouched; the failed build is kept in {out.parent} (its log: "
            f"{log_path}). Its last output:\n    {output_tail(text) or '(none)'}",
            hint=f"run it by hand in {project.root} with PYTHONPATH={projects_dir(ws)} to see the whole story; "
            f"`tuiops project clean {project.name}` removes the failed build",
        )
