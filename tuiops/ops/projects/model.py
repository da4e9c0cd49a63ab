"""The project model: a project's folder and ``project.toml``, its inputs and their hashes, the build's result and state."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import string
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    UsageError,
)
from tuiops.fsutil import disk_error, sha256_file

if TYPE_CHECKING:
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


LOCK_NAME = ".build.lock"


#: The augmentation's output (stdout and stderr), beside ``out/`` in a build's staging folder.
LOG_NAME = "augment.log"


_PLACEHOLDERS = {"out", "count", "seed"}


@dataclass
class Project:
    """A loaded ``projects/NAME/project.toml``."""

    name: str
    root: Path
    classes: list[str]
    augment: str
    count: int
    seed: int
    requires: list[str] = field(default_factory=list)
    """Python modules the augmentation imports (``requires = ["PIL"]``), checked before it runs."""

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
            "requires": list(self.requires),
        }


#: Prints the modules of argv that the interpreter cannot import (a build's ``requires``).
MISSING_MODULES = (
    "import importlib.util, sys\n"
    "def gone(m):\n"
    "    try:\n"
    "        return importlib.util.find_spec(m) is None\n"
    "    except (ImportError, ValueError):\n"
    "        return True\n"
    "print(' '.join(m for m in sys.argv[1:] if gone(m)))\n"
)


def missing_modules_error(project: Project, missing: list[str], where: str, python: str) -> UsageError:
    """The error for modules a project requires that the interpreter running its script lacks."""
    return UsageError(
        f"the augmentation of {project.name} requires {', '.join(missing)}, which {python} {where} cannot "
        "import; nothing was run",
        hint=f"install them for that interpreter (pip install …), or change requires in {project.toml_path}",
    )


def projects_dir(ws: Workspace) -> Path:
    """The workspace's ``projects/`` folder."""
    return ws.root / PROJECTS


def example_projects_dir() -> Path | None:
    """The example projects shipped beside the package (``projects/`` of the source tree), if present."""
    here = Path(__file__).resolve().parents[3] / PROJECTS
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
    requires = sec.get("requires", [])
    if not isinstance(requires, list) or not all(
        isinstance(m, str) and all(part.isidentifier() for part in m.split(".")) for m in requires
    ):
        raise InputError(
            f'{path}: requires must be a list of Python module names (requires = ["PIL", "numpy"]), '
            f"not {requires!r}"
        )
    return Project(name, root, list(classes), augment, count, seed, list(requires))


_TEMPLATE = '''"""Augmentation of the {name} project: master objects pasted onto drawn backgrounds.

``python augment.py --master master --out OUT --count N --seed S`` writes
``OUT/aug_NNNNNN.jpg`` and ``OUT/boxes.json`` (see ``projects/common/paste.py``).

The contract with ``tuiops project build`` (docs/augmentation.md has it in full):

- run in the project folder, with ``projects/`` first on PYTHONPATH (``common`` imports);
  ``{{out}}`` is an empty folder, ``{{count}}`` and ``{{seed}}`` come from --count/--seed or
  project.toml; whatever is printed goes to augment.log; exit 0 for success; the build
  stops the script after --timeout seconds (default 3600);
- write the images into OUT and their boxes in one of three forms:
  1. OUT/boxes.json: [{{"file": "aug_000001.jpg", "objects": [{{"name": "CLASS",
     "xmin": X1, "ymin": Y1, "xmax": X2, "ymax": Y2, "master": "STEM", "object": 1}}]}}]
     ("master"/"object" name the master object shown; a record's "master" the master
     the image is a variant of);
  2. a VOC file NAME.xml beside every image NAME.jpg;
  3. images named MASTERSTEM__NNNN.jpg of the master's size, which take that master's
     boxes as they are (photometric variants);
- every box must lie inside its image and have one of the project's classes:
  {classes!r}. The variants of one master are kept in one split by ``project mix``.
"""

from __future__ import annotations

import sys

from common.paste import main

CLASSES = {classes!r}

if __name__ == "__main__":
    sys.exit(main(size=(640, 480), per_image=(1, 3), scale=(0.6, 1.6), classes=CLASSES))
'''


def augment_template(name: str, classes: list[str]) -> str:
    """The generated ``augment.py`` of a project (the paste augmentation, with the contract in its docstring)."""
    return _TEMPLATE.format(name=name, classes=classes)


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
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()  # an empty folder is made anew
    if root.exists():
        raise ConflictError(
            f"project {name!r} exists already ({root})",
            hint=f"choose another name, or adopt the folder: `tuiops project new {name} --adopt {root}`",
        )
    classes = [c.strip() for c in classes if c.strip()]
    if not classes:
        raise UsageError("a project needs at least one class", hint="`tuiops project new NAME --classes a,b`")
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
            (tmp / "augment.py").write_text(augment_template(name, classes), encoding="utf-8")
        (tmp / ".gitignore").write_text(f"{BUILD}/\n{LOCK_NAME}\n", encoding="utf-8")
        os.rename(tmp, root)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise disk_error(root, exc, "create") from exc
    return load_project(ws, name)


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


def build_complete(project: Project, info: dict[str, Any]) -> bool:
    """Whether every image and annotation that ``build.json`` lists is in the build folder."""
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


def build_staleness(
    ws: Workspace, project: Project, count: int | None = None, seed: int | None = None, *, files: bool = True
) -> tuple[str, list[str]]:
    """The state of the project's build and why: ``none`` (never built), ``up to date`` or ``stale``.

    A build is current when its inputs (masters, project.toml, the script, ``projects/common``),
    its script, its count and its seed are those a build would use now (``count`` and
    ``seed``, else project.toml's) and all its files are there. ``project list``, ``project
    build`` and ``project mix`` all judge a build by this (``files=False``: leave the files
    to the caller, as a mix checks each one itself).
    """
    info = read_build(project)
    if info is None:
        return "none", ["never built"]
    inputs, script = input_hashes(ws, project)
    count = project.count if count is None else count
    seed = project.seed if seed is None else seed
    why = []
    if info.get("inputs_sha256") != inputs:
        changed = (
            "the script" if info.get("script_sha256") != script else "the masters, project.toml or common"
        )
        why.append(f"{changed} changed since the build")
    if info.get("count") != count:
        why.append(f"built with count {info.get('count')}, now {count}")
    if info.get("seed") != seed:
        why.append(f"built with seed {info.get('seed')}, now {seed}")
    if files and not build_complete(project, info):
        why.append("files of the build are missing")
    return ("stale", why) if why else ("up to date", [])


def build_state(ws: Workspace, project: Project, count: int | None = None, seed: int | None = None) -> str:
    """``none`` (never built), ``up to date`` or ``stale`` (see :func:`build_staleness`)."""
    return build_staleness(ws, project, count, seed)[0]
