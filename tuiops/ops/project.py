"""Dataset projects: create, load, build (here or on a host over SSH), list and show.

A project is ``projects/NAME/`` of the workspace::

    project.toml            [project] name, classes, augment (a command), count, seed
    master/images/*         the source images
    master/annotations/*    their VOC annotations (same stem as the image)
    augment.py              the augmentation script (or whatever ``augment`` runs)
    .gitignore              build/
    build/                  the last finished build (never in version control)

Shared augmentation code lives in ``projects/common/``; the build puts ``projects/``
on ``PYTHONPATH``. A build runs the ``augment`` command in the project folder with
``{out}`` (an empty output folder), ``{count}`` and ``{seed}`` substituted (shell-quoted),
then takes the boxes the script reports (``boxes.json``, else VOC XMLs beside the
images, else the master's boxes for images named ``MASTERSTEM__….ext`` of the
master's size), validates every image and box, and writes ``build/``::

    JPEGImages/NAME_000001.jpg …   Annotations/NAME_000001.xml …   build.json (last)

Each box keeps its VOC object's flags and tags (``<pose>``, ``<truncated>``,
``<difficult>``, ``<occluded>`` and any other tag, as written): a box of a VOC file
the script wrote keeps that object's, a box of an image named after a master keeps
the master object's, and a ``boxes.json`` object keeps those of the master object it
names with ``"master": STEM, "object": N`` (1-based), and may set ``difficult``,
``truncated``, ``pose`` or ``occluded`` itself.

into ``build.tmp-…`` first and then swaps it into place, so a failed build leaves the
previous one untouched. ``build.json`` records the hashes of the inputs (masters,
project.toml, the script, ``projects/common``); a build with the same inputs, count
and seed is "up to date" and not run again unless forced.

On a host (``--on HOST``) the project and ``projects/common`` are sent to
``.tuiops-builds/NAME-KEY/`` under the host's home, the command runs there with a
time limit (``python`` there is the interpreter named by ``python = "…"`` in the
host's table of tuiops.toml when set, else ``python``, else ``python3``), the output
folder comes back and is validated here; the remote folder is removed afterwards. A build cut off by a lost connection keeps both the remote
folder and the local staging folder, so running it again resumes the transfers
instead of starting over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import string
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    ConflictError,
    ExternalToolError,
    InputError,
    NotFoundError,
    TuiopsError,
    UsageError,
)
from tuiops.fsutil import atomic_write_text, disk_error, replace_folder, sha256_file
from tuiops.ops.base import CancelToken, JobProgress, ProgressFn, Reporter, job

if TYPE_CHECKING:
    import polars as pl

    from tuiops.remote.hosts import Hosts, RetryPolicy
    from tuiops.workspace import Workspace

PROJECTS = "projects"
COMMON = "common"
BUILD = "build"
BUILD_JSON = "build.json"
LOCAL = "local"
DEFAULT_AUGMENT = "python augment.py --master master --out {out} --count {count} --seed {seed}"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
BOX_TOLERANCE = 1.0
DEFAULT_TIMEOUT = 3600.0
REMOTE_BUILDS = ".tuiops-builds"
MASTER_SEP = "__"
NAME_RX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
RESERVED = {COMMON, BUILD}
_LOCK = ".build.lock"
_PLACEHOLDERS = {"out", "count", "seed"}


# -- projects ------------------------------------------------------------------------------------
@dataclass
class Project:
    """A loaded ``projects/NAME/project.toml``."""

    name: str
    root: Path
    classes: list[str]
    augment: str
    count: int
    seed: int

    @property
    def toml_path(self) -> Path:
        return self.root / "project.toml"

    @property
    def master(self) -> Path:
        return self.root / "master"

    @property
    def build_dir(self) -> Path:
        return self.root / BUILD

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "root": str(self.root),
            "classes": list(self.classes),
            "augment": self.augment,
            "count": self.count,
            "seed": self.seed,
        }


def projects_dir(ws: Workspace) -> Path:
    """The workspace's ``projects/`` folder."""
    return ws.root / PROJECTS


def example_projects_dir() -> Path | None:
    """The example projects shipped beside the package (``projects/`` of the source tree), if present."""
    here = Path(__file__).resolve().parents[2] / PROJECTS
    return here if (here / COMMON).is_dir() else None


def validate_name(name: str) -> str:
    """A project name: letters, digits, ``_`` and ``-`` (it prefixes every generated file)."""
    if not NAME_RX.match(name or ""):
        raise UsageError(
            f"project name {name!r} is not allowed",
            hint="use letters, digits, _ and - (at most 64, starting with a letter or digit)",
        )
    if name in RESERVED:
        raise UsageError(f"project name {name!r} is reserved (projects/{name}/ has another purpose)")
    return name


def _check_command(cmd: str, source: Path) -> None:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(cmd) if f is not None}
    except ValueError as exc:
        raise InputError(
            f"{source}: augment = {cmd!r} is not a valid command template: {exc}",
            hint="write literal braces as {{ and }}",
        ) from exc
    unknown = fields - _PLACEHOLDERS
    if unknown:
        raise InputError(
            f"{source}: augment uses unknown placeholders {', '.join(sorted('{' + f + '}' for f in unknown))}",
            hint="only {out}, {count} and {seed} are substituted; write literal braces as {{ and }}",
        )
    if "out" not in fields:
        raise InputError(
            f"{source}: augment = {cmd!r} does not pass the output folder {{out}}",
            hint="the build gives the script an empty folder {out} to write the images and boxes.json into",
        )
    probe = {f: f"/{f} x'y\"$(z)`w`" for f in _PLACEHOLDERS}
    try:
        tokens = shlex.split(cmd.format(**{f: shlex.quote(v) for f, v in probe.items()}))
    except (ValueError, IndexError, KeyError) as exc:
        raise InputError(
            f"{source}: augment = {cmd!r} is not a valid command template: {exc}",
            hint="write the placeholders bare ({out}, {count}, {seed}), without conversions or format specs",
        ) from exc
    for f in sorted(fields):
        if not any(probe[f] in t for t in tokens):
            raise InputError(
                f"{source}: augment = {cmd!r} puts {{{f}}} inside quotes",
                hint=f"write {{{f}}} bare: the build shell-quotes the value it puts there "
                "(quoting it again would break paths with spaces or let $(…) in a path run)",
            )


def load_project(ws: Workspace, name: str) -> Project:
    """Read and check ``projects/NAME/project.toml``."""
    validate_name(name)
    root = projects_dir(ws) / name
    path = root / "project.toml"
    if not path.is_file():
        raise NotFoundError(
            f"no project {name!r}: {path} does not exist",
            hint="list the projects with `tuiops project list`, or create one with `tuiops project new NAME`",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from exc
    sec = data.get("project")
    if not isinstance(sec, dict):
        raise InputError(f"{path}: no [project] table", hint="see `tuiops project new --help` for the layout")
    if sec.get("name", name) != name:
        raise InputError(
            f"{path}: name = {sec.get('name')!r} but the folder is projects/{name}",
            hint="the name in project.toml must be the folder's name",
        )
    classes = sec.get("classes")
    if (
        not isinstance(classes, list)
        or not classes
        or not all(isinstance(c, str) and c.strip() == c and c for c in classes)
    ):
        raise InputError(
            f"{path}: classes must be a non-empty list of class names (no padding), not {classes!r}"
        )
    if len(set(classes)) != len(classes):
        raise InputError(
            f"{path}: classes repeat: {', '.join(sorted({c for c in classes if classes.count(c) > 1}))}"
        )
    augment = sec.get("augment", DEFAULT_AUGMENT)
    if not isinstance(augment, str) or not augment.strip():
        raise InputError(f"{path}: augment must be a command line, not {augment!r}")
    _check_command(augment, path)
    count, seed = sec.get("count", 200), sec.get("seed", 0)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise InputError(f"{path}: count must be a whole number of at least 1, not {count!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InputError(f"{path}: seed must be a whole number, not {seed!r}")
    return Project(name, root, list(classes), augment, count, seed)


_TEMPLATE = '''"""Augmentation of the {name} project: master objects pasted onto drawn backgrounds.

``python augment.py --master master --out OUT --count N --seed S`` writes
``OUT/aug_NNNNNN.jpg`` and ``OUT/boxes.json`` (see ``projects/common/paste.py``).
"""

from __future__ import annotations

import sys

from common.paste import main

CLASSES = {classes!r}

if __name__ == "__main__":
    sys.exit(main(size=(640, 480), per_image=(1, 3), scale=(0.6, 1.6), classes=CLASSES))
'''


def ensure_common(ws: Workspace) -> Path:
    """``projects/common/``: copied from the example projects when the workspace has none yet."""
    common = projects_dir(ws) / COMMON
    if common.is_dir():
        return common
    examples = example_projects_dir()
    try:
        common.parent.mkdir(parents=True, exist_ok=True)
        tmp = common.parent / f".{COMMON}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        if examples is not None:
            shutil.copytree(examples / COMMON, tmp, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            tmp.mkdir()
            (tmp / "__init__.py").write_text('"""Augmentation code shared by the projects."""\n')
        os.rename(tmp, common)
    except OSError as exc:
        raise disk_error(common, exc, "create") from exc
    return common


def new_project(
    ws: Workspace,
    name: str,
    *,
    classes: list[str],
    count: int = 200,
    seed: int = 0,
    augment: str | None = None,
) -> Project:
    """Create ``projects/NAME/`` with its master folders, project.toml, augment.py and .gitignore.

    ``augment`` replaces the command (no augment.py is written then). The folder is
    made under a temporary name and renamed into place.
    """
    import tomli_w

    validate_name(name)
    root = projects_dir(ws) / name
    if root.exists():
        raise ConflictError(f"project {name!r} exists already ({root})", hint="choose another name")
    classes = [c.strip() for c in classes if c.strip()]
    if not classes:
        raise UsageError("a project needs at least one class", hint="pass --classes a,b")
    if len(set(classes)) != len(classes):
        raise UsageError(f"classes repeat: {', '.join(classes)}")
    if count < 1:
        raise UsageError(f"count must be at least 1, not {count}")
    command = augment or DEFAULT_AUGMENT
    _check_command(command, Path("--augment"))
    ensure_common(ws)
    tmp = projects_dir(ws) / f".{name}.new-{os.getpid()}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "master" / "images").mkdir(parents=True)
        (tmp / "master" / "annotations").mkdir()
        doc = {
            "project": {"name": name, "classes": classes, "augment": command, "count": count, "seed": seed}
        }
        (tmp / "project.toml").write_text(tomli_w.dumps(doc), encoding="utf-8")
        if augment is None:
            (tmp / "augment.py").write_text(_TEMPLATE.format(name=name, classes=classes), encoding="utf-8")
        (tmp / ".gitignore").write_text(f"{BUILD}/\n{_LOCK}\n", encoding="utf-8")
        os.rename(tmp, root)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise disk_error(root, exc, "create") from exc
    return load_project(ws, name)


# -- hashing -------------------------------------------------------------------------------------
def _skipped(name: str, top: bool) -> bool:
    if name.startswith(".") or name == "__pycache__" or name.endswith(".pyc"):
        return True
    return top and (name == BUILD or name.startswith(("build.tmp-", "build.old-")))


def input_files(folder: Path) -> list[tuple[str, Path]]:
    """``(relative posix path, path)`` of every file that is an input of a build, sorted.

    Left out: ``build/`` and the staging folders, ``__pycache__``, ``*.pyc`` and
    hidden files.
    """
    out: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(folder):
        top = Path(root) == folder
        dirs[:] = sorted(d for d in dirs if not _skipped(d, top))
        for f in files:
            if not _skipped(f, top):
                p = Path(root, f)
                if p.is_file():
                    out.append((p.relative_to(folder).as_posix(), p))
    return sorted(out)


def script_files(project: Project) -> list[Path]:
    """The files of the project folder that the augment command names (e.g. ``augment.py``)."""
    try:
        tokens = shlex.split(project.augment)
    except ValueError as exc:
        raise InputError(f"{project.toml_path}: augment = {project.augment!r}: {exc}") from exc
    found = []
    for t in tokens:
        if "{" in t or t.startswith("-"):
            continue
        p = project.root / t
        with contextlib.suppress(OSError):
            if p.is_file() and p.resolve().is_relative_to(project.root.resolve()):
                found.append(p)
    return found


def input_hashes(ws: Workspace, project: Project) -> tuple[str, str]:
    """``(inputs_sha256, script_sha256)``: over the project's files and ``projects/common``; over the script."""
    digest = hashlib.sha256()
    for prefix, folder in ((f"{project.name}/", project.root), (f"{COMMON}/", projects_dir(ws) / COMMON)):
        if not folder.is_dir():
            continue
        for rel, p in input_files(folder):
            digest.update(f"{prefix}{rel}\0{sha256_file(p)}\n".encode("utf-8", "surrogateescape"))
    script = hashlib.sha256()
    files = script_files(project)
    if files:
        for p in files:
            script.update(f"{p.name}\0{sha256_file(p)}\n".encode("utf-8", "surrogateescape"))
    else:
        script.update(project.augment.encode())
    return digest.hexdigest(), script.hexdigest()


# -- results -------------------------------------------------------------------------------------
@dataclass
class BuildResult:
    """What ``build_project`` did."""

    project: str
    status: str
    host: str
    count: int
    seed: int
    images: int = 0
    objects: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    path: str = ""
    inputs_sha256: str = ""
    script_sha256: str = ""
    created: str = ""
    elapsed: float = 0.0
    build_id: int | None = None
    transfers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_build(project: Project) -> dict[str, Any] | None:
    """The ``build.json`` of the project's finished build, or None (a build/ without one is no build)."""
    path = project.build_dir / BUILD_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _complete(project: Project, info: dict[str, Any]) -> bool:
    files = info.get("files")
    if not isinstance(files, list):
        return False
    for f in files:
        if not isinstance(f, dict):
            return False
        for k in ("image", "annotation"):
            if not isinstance(f.get(k), str) or not (project.build_dir / f[k]).is_file():
                return False
    return True


def build_state(ws: Workspace, project: Project, count: int | None = None, seed: int | None = None) -> str:
    """``none`` (never built), ``up to date`` or ``stale`` (inputs changed, or ``count``/``seed`` when given)."""
    info = read_build(project)
    if info is None:
        return "none"
    inputs, _ = input_hashes(ws, project)
    same = (
        info.get("inputs_sha256") == inputs
        and (count is None or info.get("count") == count)
        and (seed is None or info.get("seed") == seed)
    )
    return "up to date" if same and _complete(project, info) else "stale"


# -- running the augmentation -----------------------------------------------------------------------
def format_command(template: str, out: str, count: int, seed: int) -> str:
    """The augment command with ``{out}``, ``{count}`` and ``{seed}`` substituted, shell-quoted."""
    return template.format(out=shlex.quote(out), count=shlex.quote(str(count)), seed=shlex.quote(str(seed)))


def _tail(text: str, lines: int = 12) -> str:
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


def _run_local(
    ws: Workspace,
    project: Project,
    out: Path,
    count: int,
    seed: int,
    timeout: float | None,
    cancel: CancelToken | None,
) -> None:
    cmd = format_command(project.augment, str(out), count, seed)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(projects_dir(ws)), env.get("PYTHONPATH", "")) if p)
    env["PATH"] = os.pathsep.join(p for p in (os.path.dirname(sys.executable), env.get("PATH", "")) if p)
    log_path = out.parent / "augment.log"
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
            raise ExternalToolError(
                f"the augmentation of {project.name} (`{cmd}`) did not finish within {timeout:g} s "
                "and was stopped; the previous build is untouched",
                hint="raise the limit with --timeout SECONDS, or check why the script hangs "
                "(does it wait for input or a lock?)",
            )
    if rc != 0:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        raise ExternalToolError(
            f"the augmentation of {project.name} (`{cmd}`) failed with exit status {rc}; "
            f"the previous build is untouched. Its last output:\n    {_tail(text) or '(none)'}",
            hint=f"run it by hand in {project.root} with PYTHONPATH={projects_dir(ws)} to see the whole story",
        )


def _remote_python(host_extra: dict[str, Any]) -> str:
    py = host_extra.get("python")
    if isinstance(py, str) and py:
        q = shlex.quote(py)
        return f'python() {{ {q} "$@"; }}; python3() {{ {q} "$@"; }}; '
    return 'command -v python >/dev/null 2>&1 || python() { python3 "$@"; }; '


async def _remote_augment(
    hosts: Hosts,
    host_name: str,
    ws: Workspace,
    project: Project,
    remote_dir: str,
    stage: Path,
    count: int,
    seed: int,
    timeout: float | None,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> dict[str, Any]:
    """Send the project, run its augmentation on the host, fetch ``out/`` into ``stage/out``."""
    import posixpath

    import asyncssh

    from tuiops.remote import commands, transfer
    from tuiops.remote.errors import CommandTimeout
    from tuiops.remote.paths import confine, resolve_home

    tops = sorted({rel.split("/", 1)[0] for rel, _ in input_files(project.root)})
    sent = await transfer.put(
        hosts,
        host_name,
        [project.root / t for t in tops],
        f"{remote_dir}/{PROJECTS}/{project.name}",
        existing="overwrite",
        progress=progress,
        cancel=cancel,
    )
    common = projects_dir(ws) / COMMON
    files_sent = sent.files
    if common.is_dir():
        common_sent = await transfer.put(
            hosts,
            host_name,
            [common],
            f"{remote_dir}/{PROJECTS}",
            existing="overwrite",
            progress=progress,
            cancel=cancel,
        )
        files_sent += common_sent.files
    host = hosts.get(host_name)
    conn = await hosts.connect(host_name)
    ran: dict[str, Any] = {"ran": False}
    try:
        async with await conn.sftp() as sftp:
            home = await resolve_home(sftp, host)
            rdir = await confine(sftp, host_name, home, remote_dir)
            done = posixpath.join(rdir, "done")
            finished = await sftp.exists(done)
        if files_sent or not finished:
            q = shlex.quote
            out = posixpath.join(rdir, "out")
            cmd = format_command(project.augment, out, count, seed)
            script = (
                f"cd {q(posixpath.join(rdir, PROJECTS, project.name))} && "
                f"rm -rf {q(out)} {q(done)} && mkdir -p {q(out)} && "
                f"PYTHONPATH={q(posixpath.join(rdir, PROJECTS))}${{PYTHONPATH:+:$PYTHONPATH}} && "
                "export PYTHONPATH && "
                f"{_remote_python(host.extra)}"
                f"{cmd} && : > {q(done)}"
            )
            try:
                res = await commands.run_on(conn, ["sh", "-c", script], timeout=timeout)
            except CommandTimeout as exc:
                how = exc.message.rsplit("; ", 1)[-1]
                raise CommandTimeout(
                    f"the augmentation of {project.name} (`{project.augment}`) did not finish within "
                    f"{timeout:g} s on host {host_name}; {how}; the previous build is untouched",
                    hint=exc.hint,
                ) from None
            ran = {"ran": True, "elapsed": res.elapsed}
            if res.rc != 0:
                raise ExternalToolError(
                    f"the augmentation of {project.name} (`{cmd}`) failed on host {host_name} with exit "
                    f"status {res.rc}; the previous build is untouched. Its last output:\n    "
                    f"{_tail(res.stdout + chr(10) + res.stderr) or '(none)'}",
                    hint=f"look at it on the host: {posixpath.join(rdir, PROJECTS, project.name)}",
                )
    except (asyncssh.DisconnectError, asyncssh.ConnectionLost, ConnectionError) as exc:
        from tuiops.remote.errors import ConnectionDropped

        raise ConnectionDropped(
            f"the connection to {host_name} was lost while the augmentation of {project.name} ran: {exc}",
            hint="run the same build again when the host is back",
        ) from exc
    finally:
        await conn.close()
    if ran["ran"]:
        shutil.rmtree(stage / "out", ignore_errors=True)
    got = await transfer.get(
        hosts,
        host_name,
        [f"{remote_dir}/out"],
        stage,
        existing="overwrite",
        progress=progress,
        cancel=cancel,
    )
    return {"sent_files": files_sent, "sent_bytes": sent.sent, "got_files": got.files, **ran}


async def _remote_cleanup(hosts: Hosts, host_name: str, remote_dir: str) -> None:
    import asyncssh

    from tuiops.remote.paths import confine, resolve_home

    conn = await hosts.connect(host_name)
    try:
        async with await conn.sftp() as sftp:
            home = await resolve_home(sftp, hosts.get(host_name))
            rdir = await confine(sftp, host_name, home, remote_dir)
            with contextlib.suppress(asyncssh.SFTPError, OSError):
                await sftp.rmtree(rdir, ignore_errors=True)
            with contextlib.suppress(asyncssh.SFTPError, OSError):
                await sftp.rmdir(rdir.rsplit("/", 1)[0])
    finally:
        await conn.close()


# -- collecting and validating the outputs ------------------------------------------------------------
#: A reported box: ``(name, xmin, ymin, xmax, ymax, extra)``.
_Box = tuple[str | None, float | None, float | None, float | None, float | None, str | None]


@dataclass
class _Output:
    rel: str
    path: Path
    boxes: list[_Box]
    """``(name, xmin, ymin, xmax, ymax, extra)``: the extra keeps the VOC object's flags and tags."""


#: Keys of a boxes.json object that set a VOC object flag.
_FLAG_KEYS = ("pose", "truncated", "difficult", "occluded")


def _master_objects(project: Project) -> dict[str, list[tuple[str | None, Any, Any, Any, Any, str | None]]]:
    """Every master annotation's objects by the annotation's stem (with their extras)."""
    from tuiops.formats.voc import parse_voc

    masters: dict[str, list[tuple[str | None, Any, Any, Any, Any, str | None]]] = {}
    ann = project.master / "annotations"
    for x in sorted(ann.glob("*.xml")) if ann.is_dir() else []:
        doc, err = parse_voc(x.read_bytes())
        if doc is None:
            raise InputError(f"{x}: {err}")
        masters[x.stem] = [(n, _num(a), _num(b), _num(c), _num(d), e) for _, n, a, b, c, d, e in doc.objects]
    return masters


def _object_extra(o: dict[str, Any], where: str, masters: dict[str, list[Any]]) -> str | None:
    """The extra of a boxes.json object: its master object's (``master``/``object``) with its own flags."""
    fields: dict[str, Any] = {}
    if "master" in o or "object" in o:
        stem, number = o.get("master"), o.get("object")
        if not isinstance(stem, str) or isinstance(number, bool) or not isinstance(number, int):
            raise InputError(
                f'{where}: "master" (an annotation\'s stem) and "object" (its 1-based object number) go together'
            )
        objs = masters.get(stem)
        if objs is None or not 1 <= number <= len(objs):
            have = (
                f"it has {len(objs)} object(s)" if objs is not None else "there is no such master annotation"
            )
            raise InputError(f"{where}: names object {number} of master {stem!r}, but {have}")
        if objs[number - 1][5]:
            fields = json.loads(objs[number - 1][5])
    for k in _FLAG_KEYS:
        if k in o:
            v = o[k]
            if isinstance(v, bool):
                v = int(v)
            if not isinstance(v, (int, str)):
                raise InputError(f'{where}: "{k}" must be a number or a text, not {v!r}')
            fields[k] = v
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")) if fields else None


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    return f if f == f and abs(f) != float("inf") else None


def _inside(out: Path, rel: str, where: str) -> Path:
    p = (out / rel).resolve()
    if not isinstance(rel, str) or not rel or not p.is_relative_to(out.resolve()):
        raise InputError(f"{where}: file {rel!r} is not a file inside the output folder")
    return p


def _from_boxes_json(out: Path, path: Path, project: Project) -> list[_Output]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"the augmentation's boxes.json is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise InputError('the augmentation\'s boxes.json must be a list of {"file", "objects"} records')
    outputs, seen = [], set()
    masters: dict[str, list[Any]] | None = None
    for i, rec in enumerate(data):
        where = f"boxes.json record {i + 1}"
        if not isinstance(rec, dict) or not isinstance(rec.get("file"), str):
            raise InputError(f'{where}: needs "file" (an image name) and "objects" (a list)')
        objs = rec.get("objects", [])
        if not isinstance(objs, list):
            raise InputError(f'{where} ({rec["file"]}): "objects" must be a list')
        if rec["file"] in seen:
            raise InputError(f"{where}: {rec['file']} is listed twice")
        seen.add(rec["file"])
        boxes: list[_Box] = []
        for k, o in enumerate(objs):
            if not isinstance(o, dict):
                raise InputError(f"{where} ({rec['file']}): object {k + 1} is not a JSON object")
            name = o.get("name")
            if masters is None and ("master" in o or "object" in o):
                masters = _master_objects(project)
            extra = _object_extra(o, f"{where} ({rec['file']}) object {k + 1}", masters or {})
            x1, y1, x2, y2 = (_num(o.get(c)) for c in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append((name if isinstance(name, str) else None, x1, y1, x2, y2, extra))
        outputs.append(_Output(rec["file"], _inside(out, rec["file"], where), boxes))
    listed = {o.path for o in outputs}
    unlisted = [p.relative_to(out).as_posix() for p in _images_in(out) if p.resolve() not in listed]
    if unlisted:
        shown = ", ".join(unlisted[:5]) + (f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else "")
        raise InputError(
            f"the augmentation wrote {len(unlisted)} image(s) that boxes.json does not list: {shown}",
            hint='list every image in boxes.json (an image without objects as "objects": [])',
        )
    return outputs


def _images_in(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _from_voc(out: Path, xmls: list[Path]) -> list[_Output]:
    from tuiops.formats.voc import parse_voc

    by_stem: dict[str, Path] = {}
    for x in xmls:
        if x.stem in by_stem:
            raise InputError(
                f"two annotations for one image: {by_stem[x.stem].relative_to(out)} and {x.relative_to(out)}"
            )
        by_stem[x.stem] = x
    outputs = []
    images = _images_in(out)
    stems = {p.stem for p in images}
    for x in xmls:
        if x.stem not in stems:
            raise InputError(f"{x.relative_to(out)}: an annotation without an image of the same name")
    for img in images:
        rel = img.relative_to(out).as_posix()
        xml = by_stem.get(img.stem)
        if xml is None:
            raise InputError(f"{rel}: the augmentation wrote VOC annotations but none for this image")
        doc, err = parse_voc(xml.read_bytes())
        if doc is None:
            raise InputError(f"{xml.relative_to(out)}: {err}")
        boxes: list[_Box] = [
            (n, _num(a), _num(b), _num(c), _num(d), e) for _, n, a, b, c, d, e in doc.objects
        ]
        outputs.append(_Output(rel, img, boxes))
    return outputs


def _from_masters(out: Path, project: Project) -> list[_Output]:
    masters = _master_objects(project)
    outputs = []
    for img in _images_in(out):
        rel = img.relative_to(out).as_posix()
        stem = img.stem.split(MASTER_SEP, 1)[0]
        if stem not in masters:
            raise InputError(
                f"{rel}: the augmentation wrote neither boxes.json nor VOC annotations, and this image "
                f"is not named after a master (MASTERSTEM{MASTER_SEP}….ext)",
                hint="let the script report the boxes it placed in {out}/boxes.json",
            )
        outputs.append(_Output(rel, img, masters[stem]))
    return outputs


def collect_outputs(out: Path, project: Project) -> list[_Output]:
    """The images the augmentation wrote into ``out`` with their boxes (boxes.json, VOC XMLs or masters)."""
    boxes_json = out / "boxes.json"
    if boxes_json.is_file():
        outputs = _from_boxes_json(out, boxes_json, project)
    else:
        xmls = sorted(out.rglob("*.xml"))
        outputs = _from_voc(out, xmls) if xmls else _from_masters(out, project)
    if not outputs:
        raise InputError(
            f"the augmentation of {project.name} wrote no images", hint="check the script's --out and --count"
        )
    return outputs


@dataclass
class _Checked:
    rel: str
    path: Path
    width: int
    height: int
    depth: int
    jpeg: bool


def _open_all(outputs: list[_Output], rep: Reporter) -> tuple[list[_Checked], list[str]]:
    from PIL import Image

    checked, problems = [], []
    for o in outputs:
        try:
            with Image.open(o.path) as im:
                im.load()
                checked.append(
                    _Checked(o.rel, o.path, im.width, im.height, len(im.getbands()), im.format == "JPEG")
                )
        except FileNotFoundError:
            problems.append(f"{o.rel}: listed, but no such file was written")
            checked.append(_Checked(o.rel, o.path, 0, 0, 0, False))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            problems.append(f"{o.rel}: the image does not open fully: {exc}")
            checked.append(_Checked(o.rel, o.path, 0, 0, 0, False))
        rep.advance(message=o.rel)
    return checked, problems


def box_frame(outputs: list[_Output], checked: list[_Checked]) -> pl.DataFrame:
    """One row per reported box: image index, object number, name, coordinates, image size."""
    import polars as pl

    idx: list[int] = []
    k: list[int] = []
    names: list[str | None] = []
    coords: tuple[list[float | None], ...] = ([], [], [], [])
    extras: list[str | None] = []
    for i, o in enumerate(outputs):
        for j, b in enumerate(o.boxes):
            idx.append(i)
            k.append(j + 1)
            names.append(b[0])
            for c, v in zip(coords, b[1:5], strict=True):
                c.append(v)
            extras.append(b[5])
    frame = pl.DataFrame(
        {
            "img": idx,
            "obj": k,
            "name": names,
            "x1": coords[0],
            "y1": coords[1],
            "x2": coords[2],
            "y2": coords[3],
            "extra": extras,
        },
        schema={
            "img": pl.Int64,
            "obj": pl.Int64,
            "name": pl.String,
            "x1": pl.Float64,
            "y1": pl.Float64,
            "x2": pl.Float64,
            "y2": pl.Float64,
            "extra": pl.String,
        },
    )
    sizes = pl.DataFrame(
        {
            "img": list(range(len(checked))),
            "rel": [c.rel for c in checked],
            "w": [float(c.width) for c in checked],
            "h": [float(c.height) for c in checked],
        },
        schema={"img": pl.Int64, "rel": pl.String, "w": pl.Float64, "h": pl.Float64},
    )
    return frame.join(sizes, on="img", how="left")


def validate_boxes(frame: pl.DataFrame, classes: list[str], tol: float = BOX_TOLERANCE) -> pl.DataFrame:
    """Clip the boxes to their images and add ``problem`` (null when the box is good).

    A box may reach ``tol`` pixels past the image edge (it is clipped); one further
    out, empty after clipping, with a missing coordinate or an unknown class has a
    problem naming the image, the object and the value.
    """
    import polars as pl

    x1c = pl.col("x1").clip(0.0, pl.col("w"))
    y1c = pl.col("y1").clip(0.0, pl.col("h"))
    x2c = pl.col("x2").clip(0.0, pl.col("w"))
    y2c = pl.col("y2").clip(0.0, pl.col("h"))
    coords = pl.format("({}, {}, {}, {})", *(pl.col(c).round(1) for c in ("x1", "y1", "x2", "y2")))
    size = pl.format("{}x{}", pl.col("w").cast(pl.Int64), pl.col("h").cast(pl.Int64))
    where = pl.format("{}: object {}", pl.col("rel"), pl.col("obj"))
    missing = pl.any_horizontal(pl.col(c).is_null() for c in ("x1", "y1", "x2", "y2"))
    problem = (
        pl.when(pl.col("w") <= 0)
        .then(pl.lit(None, pl.String))
        .when(pl.col("name").is_null() | (pl.col("name") == ""))
        .then(pl.format("{}: has no class name", where))
        .when(~pl.col("name").is_in(classes))
        .then(
            pl.format(
                "{}: class '{}' is not one of the project's classes ({})",
                where,
                pl.col("name"),
                pl.lit(", ".join(classes)),
            )
        )
        .when(missing)
        .then(pl.format("{}: a coordinate is missing or not a number", where))
        .when(
            (pl.col("x1") < -tol)
            | (pl.col("y1") < -tol)
            | (pl.col("x2") > pl.col("w") + tol)
            | (pl.col("y2") > pl.col("h") + tol)
        )
        .then(pl.format("{}: box {} lies outside the image {}", where, coords, size))
        .when(((x2c - x1c) < 1.0) | ((y2c - y1c) < 1.0))
        .then(pl.format("{}: box {} is empty (less than 1 px wide or high)", where, coords))
        .otherwise(pl.lit(None, pl.String))
    )
    return frame.with_columns(
        problem.alias("problem"), x1c.alias("cx1"), y1c.alias("cy1"), x2c.alias("cx2"), y2c.alias("cy2")
    )


def _fail(project: Project, problems: list[str]) -> InputError:
    shown = "\n    ".join(problems[:10])
    more = f"\n    … and {len(problems) - 10} more" if len(problems) > 10 else ""
    return InputError(
        f"the augmentation of {project.name} wrote {len(problems)} bad output(s); nothing was replaced:\n    {shown}{more}",
        hint="fix the script (or the project's classes) and build again",
    )


# -- writing the build ----------------------------------------------------------------------------
def _write_build(
    ws: Workspace,
    project: Project,
    dest: Path,
    outputs: list[_Output],
    checked: list[_Checked],
    boxes: pl.DataFrame,
    info: dict[str, Any],
    rep: Reporter,
) -> dict[str, Any]:
    import polars as pl
    from PIL import Image

    from tuiops.formats.voc import VocBox, VocHeader, voc_document

    (dest / "JPEGImages").mkdir(parents=True)
    (dest / "Annotations").mkdir()
    per_img: dict[int, list[VocBox]] = {}
    cols = ("img", "name", "cx1", "cy1", "cx2", "cy2", "extra")
    for r in boxes.sort("img", "obj").select(cols).iter_rows():
        per_img.setdefault(r[0], []).append(VocBox(r[1], r[2], r[3], r[4], r[5], r[6]))
    files = []
    for i, c in enumerate(checked):
        stem = f"{project.name}_{i + 1:06d}"
        img_rel, ann_rel = f"JPEGImages/{stem}.jpg", f"Annotations/{stem}.xml"
        target = dest / img_rel
        if c.jpeg:
            os.replace(c.path, target)
        else:
            with Image.open(c.path) as im:
                rgb = im.convert("L" if im.mode in ("L", "I", "I;16", "1") else "RGB")
                rgb.save(target, "JPEG", quality=95)
                c.depth = len(rgb.getbands())
        objs = per_img.get(i, [])
        header = VocHeader("JPEGImages", f"{stem}.jpg", f"{stem}.jpg", c.width, c.height, c.depth)
        (dest / ann_rel).write_bytes(voc_document(None, objs, header))
        files.append(
            {
                "image": img_rel,
                "annotation": ann_rel,
                "sha256": sha256_file(target),
                "width": c.width,
                "height": c.height,
                "objects": len(objs),
                "source": outputs[i].rel,
            }
        )
        rep.advance(message=stem)
    counts = boxes.group_by("name").agg(pl.len().alias("n")).sort("name")
    class_counts = {n: int(k) for n, k in counts.iter_rows()}
    doc = {
        **info,
        "images": len(files),
        "objects": int(boxes.height),
        "class_counts": class_counts,
        "files": files,
    }
    atomic_write_text(dest / BUILD_JSON, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return doc


def _lock(project: Project) -> Any:
    import fcntl

    path = project.root / _LOCK
    try:
        fh = open(path, "a")  # noqa: SIM115 - held for the whole build
    except OSError as exc:
        raise disk_error(path, exc, "create") from exc
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        fh.close()
        raise ConflictError(
            f"another build of {project.name} is running", hint="wait for it to finish, then build again"
        ) from exc
    return fh


def build_project(
    ws: Workspace,
    name: str,
    *,
    host: str | None = None,
    count: int | None = None,
    seed: int | None = None,
    force: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> BuildResult:
    """Build ``projects/NAME/build/`` by running its augmentation here or on ``host``.

    Skipped ("up to date") when the last build has the same inputs, count and seed,
    unless ``force``. Any failure (the script fails or hangs past ``timeout`` s, a bad
    image or box, a lost connection) leaves the previous build as it was.
    """
    import polars as pl

    from tuiops.store.db import utcnow

    project = load_project(ws, name)
    count = project.count if count is None else count
    seed = project.seed if seed is None else seed
    if count < 1:
        raise UsageError(f"count must be at least 1, not {count}")
    if timeout is not None and timeout <= 0:
        raise UsageError(f"timeout must be positive, not {timeout:g}")
    where = host or LOCAL
    hosts = None
    if host is not None:
        from tuiops.ops.remote import open_hosts

        hosts = open_hosts(ws, retry=retry)
        hosts.get(host)
    if not project.master.is_dir():
        raise InputError(f"project {name} has no master folder {project.master}")
    lock = _lock(project)
    stage: Path | None = None
    try:
        t0 = time.monotonic()
        inputs, script = input_hashes(ws, project)
        prev = read_build(project)
        if (
            not force
            and prev is not None
            and prev.get("inputs_sha256") == inputs
            and prev.get("count") == count
            and prev.get("seed") == seed
            and _complete(project, prev)
        ):
            return BuildResult(
                project=name,
                status="up to date",
                host=str(prev.get("host", where)),
                count=count,
                seed=seed,
                images=len(prev.get("files", [])),
                objects=int(prev.get("objects", 0) or 0),
                class_counts=dict(prev.get("class_counts", {}) or {}),
                path=str(project.build_dir),
                inputs_sha256=inputs,
                script_sha256=script,
                created=str(prev.get("created", "")),
            )
        key = f"{inputs[:12]}-{count}-{seed}"
        stage = project.root / f"build.tmp-{key}"
        for old in project.root.glob("build.*-*"):
            if old.is_dir() and old != stage:
                shutil.rmtree(old, ignore_errors=True)
        if host is None:
            shutil.rmtree(stage, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(stage / BUILD)
        try:
            (stage / "out").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise disk_error(stage, exc, "create") from exc
        params = {"project": name, "host": where, "count": count, "seed": seed, "force": force}
        with job(ws.store, "project.build", params) as j:
            rep = Reporter(
                "project.build", JobProgress(ws, j.id, progress, with_op=True), cancel, job_id=j.id
            )
            rep.update(0, f"augment on {where}", force=True)
            transfers: dict[str, Any] = {}
            remote_dir = f"{REMOTE_BUILDS}/{name}-{key}"
            if host is None:
                _run_local(ws, project, stage / "out", count, seed, timeout, cancel)
            else:
                transfers = _remote_build(
                    ws, hosts, host, project, remote_dir, stage, count, seed, timeout, j.id, progress, cancel
                )
            rep.check()
            outputs = collect_outputs(stage / "out", project)
            rep.update(0, "validate", force=True, total=len(outputs))
            checked, problems = _open_all(outputs, rep)
            frame = validate_boxes(box_frame(outputs, checked), project.classes)
            problems += frame.filter(pl.col("problem").is_not_null())["problem"].to_list()
            if problems:
                raise _fail(project, problems)
            rep.update(0, "write", force=True, total=len(outputs))
            created = utcnow()
            info = {
                "project": name,
                "classes": list(project.classes),
                "count": count,
                "seed": seed,
                "host": where,
                "script_sha256": script,
                "inputs_sha256": inputs,
                "created": created,
                "augment": project.augment,
            }
            try:
                doc = _write_build(ws, project, stage / BUILD, outputs, checked, frame, info, rep)
                replace_folder(stage / BUILD, project.build_dir)
            except OSError as exc:
                raise disk_error(project.build_dir, exc, "write") from exc
            shutil.rmtree(stage, ignore_errors=True)
            elapsed = round(time.monotonic() - t0, 3)
            build_sha = sha256_file(project.build_dir / BUILD_JSON)
            with ws.store.transaction() as conn:
                cur = conn.execute(
                    "INSERT INTO project_builds(project, host, count, seed, classes, images, objects, "
                    "class_counts, script_sha256, inputs_sha256, build_sha256, path, created, elapsed, job_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        where,
                        count,
                        seed,
                        json.dumps(project.classes),
                        doc["images"],
                        doc["objects"],
                        json.dumps(doc["class_counts"]),
                        script,
                        inputs,
                        build_sha,
                        str(project.build_dir),
                        created,
                        elapsed,
                        j.id,
                    ),
                )
                build_id = int(cur.lastrowid or 0)
            result = BuildResult(
                project=name,
                status="built",
                host=where,
                count=count,
                seed=seed,
                images=doc["images"],
                objects=doc["objects"],
                class_counts=doc["class_counts"],
                path=str(project.build_dir),
                inputs_sha256=inputs,
                script_sha256=script,
                created=created,
                elapsed=elapsed,
                build_id=build_id,
                transfers=transfers,
            )
            j.result = result.to_dict()
        return result
    except BaseException as exc:
        if stage is not None and (host is None or not _resumable(exc)):
            shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        lock.close()


def _resumable(exc: BaseException) -> bool:
    from tuiops.remote.errors import ConnectionDropped, HostUnreachable

    return isinstance(exc, (ConnectionDropped, HostUnreachable))


def _remote_build(
    ws: Workspace,
    hosts: Any,
    host: str,
    project: Project,
    remote_dir: str,
    stage: Path,
    count: int,
    seed: int,
    timeout: float | None,
    job_id: int,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> dict[str, Any]:
    """The remote half of a build: augment on the host, fetch, clean up (kept for a resume when cut off)."""
    from tuiops.remote import run_sync
    from tuiops.remote.errors import RemoteDiskError

    forward = JobProgress(ws, job_id, progress, with_op=True)
    try:
        res = run_sync(
            _remote_augment(
                hosts, host, ws, project, remote_dir, stage, count, seed, timeout, forward, cancel
            ),
            cancel,
        )
    except TuiopsError as exc:
        if not _resumable(exc):
            with contextlib.suppress(TuiopsError, OSError):
                run_sync(_remote_cleanup(hosts, host, remote_dir))
        if isinstance(exc, RemoteDiskError):
            raise RemoteDiskError(
                f"{exc.message}; the project could not be sent to {host} for the build",
                hint=f"the build works in {REMOTE_BUILDS}/ under the home of host {host}: free space there, "
                f"or set home = a writable folder in [hosts.{host}] of tuiops.toml",
            ) from exc
        raise
    with contextlib.suppress(TuiopsError, OSError):
        run_sync(_remote_cleanup(hosts, host, remote_dir))
    return res


# -- listing -------------------------------------------------------------------------------------
def list_projects(ws: Workspace) -> list[dict[str, Any]]:
    """Every project of the workspace: classes, masters, count/seed and the state of its build."""
    rows: list[dict[str, Any]] = []
    base = projects_dir(ws)
    for d in sorted(base.iterdir()) if base.is_dir() else []:
        if not d.is_dir() or d.name in RESERVED or not (d / "project.toml").is_file():
            continue
        try:
            p = load_project(ws, d.name)
        except TuiopsError as exc:
            rows.append({"name": d.name, "error": exc.message})
            continue
        info = read_build(p)
        rows.append(
            {
                "name": p.name,
                "classes": p.classes,
                "masters": _count_masters(p),
                "count": p.count,
                "seed": p.seed,
                "build": build_state(ws, p),
                "built": info.get("created") if info else None,
                "host": info.get("host") if info else None,
                "images": len(info.get("files", [])) if info else 0,
            }
        )
    return rows


def _count_masters(p: Project) -> int:
    images = p.master / "images"
    if not images.is_dir():
        return 0
    return sum(1 for f in images.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def show_project(ws: Workspace, name: str) -> dict[str, Any]:
    """One project in detail: its settings, masters, build state, last build and the recorded builds."""
    p = load_project(ws, name)
    info = read_build(p)
    inputs, script = input_hashes(ws, p)
    builds = [
        dict(zip(("id", "host", "count", "seed", "images", "objects", "created", "elapsed"), r, strict=True))
        for r in ws.store.execute(
            "SELECT id, host, count, seed, images, objects, created, elapsed FROM project_builds "
            "WHERE project = ? ORDER BY id DESC LIMIT 20",
            (name,),
        ).fetchall()
    ]
    last = None
    if info is not None:
        last = {
            k: info.get(k) for k in ("created", "host", "count", "seed", "images", "objects", "class_counts")
        }
    return {
        **p.to_dict(),
        "masters": _count_masters(p),
        "script_files": [f.name for f in script_files(p)],
        "inputs_sha256": inputs,
        "script_sha256": script,
        "build": build_state(ws, p),
        "last_build": last,
        "builds": builds,
    }


def copy_examples(ws: Workspace, names: list[str] | None = None) -> list[str]:
    """Copy the example projects (and ``common``) into the workspace's ``projects/``; the names copied.

    Projects that exist already in the workspace are left alone; builds are not copied.
    """
    src = example_projects_dir()
    if src is None:
        return []
    dst = projects_dir(ws)
    dst.mkdir(parents=True, exist_ok=True)
    copied = []
    for d in sorted(src.iterdir()):
        if not d.is_dir() or d.name.startswith((".", "__")) or (dst / d.name).exists():
            continue
        if names is not None and d.name not in names and d.name != COMMON:
            continue
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", BUILD, "build.tmp-*", "build.old-*", _LOCK)
        try:
            shutil.copytree(d, dst / d.name, ignore=ignore)
        except OSError as exc:
            raise disk_error(dst / d.name, exc, "copy") from exc
        copied.append(d.name)
    return copied


__all__ = [
    "BuildResult",
    "Project",
    "build_project",
    "build_state",
    "copy_examples",
    "ensure_common",
    "list_projects",
    "load_project",
    "new_project",
    "show_project",
]
