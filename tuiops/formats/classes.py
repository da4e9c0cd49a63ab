"""Class-name files: labelImg's ``classes.txt`` and a YOLO ``data.yaml``'s ``names``.

A names file gives the class *names* of the ids used in a folder of YOLO files. The
workspace's class map is never taken from it: names are mapped to workspace ids by
name (:func:`map_names`), so a ``classes.txt`` that lists the classes in another order
(labelImg re-orders it when a new class is typed) still lands every box on the right
class.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tuiops.errors import InputError
from tuiops.fsutil import atomic_write_bytes, display_path

CLASSES_TXT = "classes.txt"
YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml")


def read_classes_txt(path: Path) -> list[str]:
    """Read a ``classes.txt``: one name per line, the line position is the class id.

    Names are stripped; blank lines at the end are ignored; a blank line in the middle,
    a repeated name or bytes that are not UTF-8 are errors (each would shift or merge
    ids silently).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {display_path(path)}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{display_path(path)}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            hint="save it as UTF-8",
        ) from exc
    lines = [ln.strip() for ln in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    for i, name in enumerate(lines):
        if not name:
            raise InputError(
                f"{display_path(path)}:{i + 1}: empty line; class ids are line positions, "
                "so it would shift every class after it",
                hint="remove the empty line, or put the class name there",
            )
    _check_unique(lines, path)
    return lines


def read_yaml_names(path: Path) -> list[str]:
    """Read ``names`` from a YOLO dataset yaml (a list, or a mapping id → name from 0 up)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {display_path(path)}: {exc.strerror}") from exc
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{display_path(path)}: not a valid YAML file: {exc}") from exc
    if not isinstance(data, dict) or "names" not in data:
        raise InputError(
            f"{display_path(path)}: no `names:` entry", hint="a YOLO data.yaml lists names: [...]"
        )
    raw = data["names"]
    if isinstance(raw, dict):
        try:
            by_id = {int(k): v for k, v in raw.items()}
        except (TypeError, ValueError) as exc:
            raise InputError(f"{display_path(path)}: names keys must be class ids (0, 1, …)") from exc
        if sorted(by_id) != list(range(len(by_id))):
            raise InputError(f"{display_path(path)}: names ids must run 0..{len(by_id) - 1} without gaps")
        raw = [by_id[i] for i in range(len(by_id))]
    if not isinstance(raw, list) or not all(isinstance(n, str | int) for n in raw):
        raise InputError(f"{display_path(path)}: names must be a list of class names")
    names = [str(n).strip() for n in raw]
    if any(not n for n in names):
        raise InputError(f"{display_path(path)}: a class name is empty")
    nc = data.get("nc")
    if nc is not None and nc != len(names):
        raise InputError(f"{display_path(path)}: nc is {nc} but names lists {len(names)} classes")
    _check_unique(names, path)
    return names


def read_names_file(path: Path) -> list[str]:
    """Read a names file: ``.yaml``/``.yml`` as a dataset yaml, anything else as ``classes.txt``."""
    if not path.is_file():
        raise InputError(f"names file {display_path(path)} does not exist")
    if path.suffix.lower() in (".yaml", ".yml"):
        return read_yaml_names(path)
    return read_classes_txt(path)


def find_names_file(src: Path) -> Path | None:
    """The names file beside YOLO labels: ``classes.txt``, else ``data.yaml`` in the folder.

    ``src`` is the label folder (or one label file, whose folder is searched).
    """
    folder = src if src.is_dir() else src.parent
    for name in (CLASSES_TXT, *YAML_NAMES):
        p = folder / name
        if p.is_file():
            return p
    return None


def write_classes_txt(path: Path, names: Sequence[str]) -> None:
    """Write a ``classes.txt`` (one name per line, each line ending in ``\\n``) atomically."""
    atomic_write_bytes(path, "".join(f"{n}\n" for n in names).encode("utf-8"))


def classes_txt_bytes(names: Sequence[str]) -> bytes:
    """The bytes of a ``classes.txt`` for ``names``."""
    return "".join(f"{n}\n" for n in names).encode("utf-8")


def map_names(names: Sequence[str], workspace: Sequence[str]) -> tuple[dict[str, int], list[str]]:
    """Map class names to workspace class ids by name.

    Returns ``(known, unknown)``: name → workspace id for the names the map has, and the
    names it lacks in first-seen order.
    """
    index = {n: i for i, n in enumerate(workspace)}
    known: dict[str, int] = {}
    unknown: list[str] = []
    for n in names:
        if n in index:
            known[n] = index[n]
        elif n not in unknown:
            unknown.append(n)
    return known, unknown


def _check_unique(names: list[str], path: Path) -> None:
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            raise InputError(
                f"{display_path(path)}: class {n!r} is listed twice (ids {seen[n]} and {i})",
                hint="every class name must appear once",
            )
        seen[n] = i
