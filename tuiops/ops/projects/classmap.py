"""The class map of a mix: the union of the projects' classes by name, after the explicit renames."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tuiops.errors import ConflictError, UsageError
from tuiops.ops.projects.mixmodel import MAP_RX, ProjectBuild


@dataclass(frozen=True)
class MapRule:
    """``[project:]old=new``: rename class ``old`` (of one project, or of every project) to ``new``."""

    project: str | None
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.project + ':' if self.project else ''}{self.old}={self.new}"


def parse_map(items: Sequence[str]) -> list[MapRule]:
    """Parse ``--map`` values (``OLD=NEW`` or ``PROJECT:OLD=NEW``)."""
    rules = []
    for item in items:
        m = MAP_RX.match(item.strip())
        if not m or not m.group("old").strip() or not m.group("new").strip():
            raise UsageError(
                f"--map {item!r}: expected OLD=NEW or PROJECT:OLD=NEW (e.g. kanji:ka=hiragana_ka)"
            )
        project = m.group("project")
        rules.append(
            MapRule(project.strip() if project else None, m.group("old").strip(), m.group("new").strip())
        )
    return rules


def _fold(name: str) -> str:
    return re.sub(r"[\s_-]+", "_", name.casefold()).strip("_")


@dataclass
class ClassMap:
    """The mix's class names and where each project's class goes."""

    names: list[str]
    sources: list[dict[str, Any]]

    def lookup(self) -> dict[tuple[str, str], int]:
        return {(s["project"], s["name"]): s["class_id"] for s in self.sources}


def build_class_map(
    builds: Sequence[ProjectBuild],
    rules: Sequence[MapRule] = (),
    *,
    order: Sequence[str] | None = None,
    merge: bool = False,
) -> ClassMap:
    """The class map of a mix (see the module docstring for what a conflict is).

    ``order``: the class names in the order of a ``--classes`` file; every class of the
    mix must be in it. Without it, names come in order of first appearance.
    """
    by_name = {b.name: b for b in builds}
    exact: dict[tuple[str, str], str] = {}
    general: dict[str, str] = {}
    for r in rules:
        if r.project is not None:
            if r.project not in by_name:
                raise UsageError(
                    f"--map {r}: project {r.project!r} is not in this mix ({', '.join(by_name)})"
                )
            if r.old not in by_name[r.project].classes:
                raise UsageError(
                    f"--map {r}: project {r.project!r} has no class {r.old!r} "
                    f"(its classes: {', '.join(by_name[r.project].classes)})"
                )
            key = (r.project, r.old)
            if exact.get(key, r.new) != r.new:
                raise UsageError(
                    f"--map gives {r.project}:{r.old} two new names: {exact[key]!r} and {r.new!r}"
                )
            exact[key] = r.new
        else:
            if not any(r.old in b.classes for b in builds):
                raise UsageError(f"--map {r}: no project of this mix has a class {r.old!r}")
            if general.get(r.old, r.new) != r.new:
                raise UsageError(f"--map gives {r.old} two new names: {general[r.old]!r} and {r.new!r}")
            general[r.old] = r.new
    targets: list[tuple[str, str, str]] = []
    for b in builds:
        for c in b.classes:
            targets.append((b.name, c, exact.get((b.name, c), general.get(c, c))))
    # a name that looks like another one
    seen_fold: dict[str, tuple[str, str]] = {}
    for project, _old, new in targets:
        f = _fold(new)
        if f in seen_fold and seen_fold[f][1] != new:
            other_project, other = seen_fold[f]
            raise ConflictError(
                f"class {other!r} of project {other_project!r} and class {new!r} of project {project!r} "
                "differ only in case or separators: one class or two?",
                hint=f"merge them with --map {project}:{new}={other} --merge, or rename one with --map",
            )
        seen_fold.setdefault(f, (project, new))
    # several names onto one: a merge
    sources: dict[str, list[tuple[str, str]]] = {}
    for project, old, new in targets:
        sources.setdefault(new, []).append((project, old))
    if not merge:
        for new, srcs in sources.items():
            olds = sorted({o for _, o in srcs})
            if len(olds) > 1:
                shown = " and ".join(f"{p}:{o}" for p, o in srcs)
                raise ConflictError(
                    f"{shown} would all become class {new!r}: two different classes merged into one",
                    hint="pass --merge if they are the same thing, or map them to different names",
                )
    if order is not None:
        names = list(order)
        missing = [(p, o, n) for p, o, n in targets if n not in names]
        if missing:
            shown = ", ".join(f"{p}:{o}" + (f" (as {n!r})" if n != o else "") for p, o, n in missing[:10])
            raise UsageError(
                f"the classes file does not list {shown}",
                hint="add the names to the classes file or map them onto names it lists",
            )
    else:
        names = list(dict.fromkeys(n for _, _, n in targets))
    ids = {n: i for i, n in enumerate(names)}
    return ClassMap(
        names=names,
        sources=[{"project": p, "name": o, "class": n, "class_id": ids[n]} for p, o, n in targets],
    )
