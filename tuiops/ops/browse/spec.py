"""What a panel shows: its spec, its display columns and the workspace context it reads in."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tuiops.errors import NotFoundError, UsageError
from tuiops.store.db import id_range

if TYPE_CHECKING:
    from tuiops.store import Store


#: Columns every display frame has besides its display columns.
ROW_ID = "_id"


ROW_KIND = "_kind"


ROW_KEY = "_key"


ROW_ITEM = "_item"


ROW_ORDER = "_order"


ROW_TARGET = "_target"

#: Row kinds: the parent folder, a subfolder, a file, a catalog entry, a table row.
KIND_UP = "up"


KIND_DIR = "dir"


KIND_FILE = "file"


KIND_ENTRY = "entry"


KIND_ROW = "row"


@dataclass(frozen=True)
class Column:
    """One display column: ``name`` in the display frame, ``field`` to sort by (None: not sortable)."""

    name: str
    title: str
    kind: str = "text"
    width: int | None = 8
    field: str | None = None


@dataclass(frozen=True)
class Spec:
    """What a panel shows: ``kind`` and the name of the thing (and a pool's folder)."""

    kind: str
    name: str = ""
    folder: str = ""

    KINDS: ClassVar[tuple[str, ...]] = (
        "catalog",
        "pool",
        "labels",
        "run",
        "match",
        "selection",
        "query",
        "image",
        "projects",
        "hosts",
        "mixes",
        "mix",
    )
    #: Kinds that take no name: the catalog and its lists of projects, hosts and mixes.
    NAMELESS: ClassVar[tuple[str, ...]] = ("catalog", "projects", "hosts", "mixes")

    @classmethod
    def parse(cls, text: str) -> Spec:
        """Parse ``catalog``, ``pool:NAME[/FOLDER]``, ``labels:SET``, ``run:RUN``, ``match:NAME``,
        ``selection:NAME``, ``query:SQL``, ``image:KEY``, ``projects``, ``hosts``, ``mixes`` or ``mix:ID``."""
        text = text.strip()
        kind, _, rest = text.partition(":")
        kind = kind.strip().lower()
        if kind not in cls.KINDS:
            raise UsageError(
                f"unknown panel source {text!r}",
                hint="use catalog, pool:NAME[/FOLDER], labels:SET, run:RUN, match:NAME, selection:NAME, "
                "query:SQL, image:KEY, projects, hosts, mixes or mix:ID",
            )
        if kind in cls.NAMELESS:
            return cls(kind)
        if not rest.strip():
            raise UsageError(f"panel source {text!r} needs a name after '{kind}:'")
        if kind == "pool":
            name, _, folder = rest.strip().partition("/")
            return cls("pool", name, normalise_folder(folder))
        return cls(kind, rest.strip() if kind != "query" else rest)

    def __str__(self) -> str:
        if self.kind in self.NAMELESS:
            return self.kind
        if self.kind == "pool":
            return f"pool:{self.name}" + (f"/{self.folder.rstrip('/')}" if self.folder else "")
        return f"{self.kind}:{self.name}"


def normalise_folder(folder: str) -> str:
    """A pool folder as stored in the folder index: ``""`` or ``"a/b/"``."""
    parts = [p for p in folder.replace("\\", "/").split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        raise UsageError(f"folder {folder!r} leaves the pool", hint="use a folder inside the pool")
    return "".join(f"{p}/" for p in parts)


@dataclass(frozen=True)
class Context:
    """Which label set, run and match a pool view counts and scores against."""

    label_set: str | None = None
    run: str | None = None
    match: str | None = None


def table_exists(store: Store, name: str) -> bool:
    return bool(
        store.one("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (name,))
    )


def first_pool(store: Store) -> str | None:
    """The name of the first pool (by name), or None in a workspace without pools."""
    name = store.one("SELECT name FROM pools ORDER BY name LIMIT 1")
    return None if name is None else str(name)


def default_context(store: Store) -> Context:
    """The first label set and run by name, and the newest match of that pair (if any)."""
    label_set = store.one("SELECT name FROM label_sets ORDER BY name LIMIT 1")
    run = store.one("SELECT name FROM runs ORDER BY name LIMIT 1")
    match = None
    if label_set and run and table_exists(store, "matches"):
        with contextlib.suppress(Exception):
            match = store.one(
                "SELECT m.name FROM matches m JOIN label_sets s ON s.id = m.set_id JOIN runs r ON r.id = m.run_id "
                "WHERE s.name = ? AND r.name = ? ORDER BY m.id DESC LIMIT 1",
                (label_set, run),
            )
    return Context(label_set, run, match)


@dataclass(frozen=True)
class Owner:
    """A resolved label set or run: its id and the id range of its boxes."""

    name: str
    id: int

    @property
    def lo(self) -> int:
        return id_range(self.id)[0]

    @property
    def hi(self) -> int:
        return id_range(self.id)[1]


def resolve_context(store: Store, ctx: Context) -> tuple[Owner | None, Owner | None, int | None]:
    lab = Owner(ctx.label_set, store.label_set_id(ctx.label_set)) if ctx.label_set else None
    run = Owner(ctx.run, store.run_id(ctx.run)) if ctx.run else None
    mid = None
    if ctx.match and table_exists(store, "matches") and table_exists(store, "match_images"):
        mid = store.one("SELECT id FROM matches WHERE name = ?", (ctx.match,))
        if mid is None:
            raise NotFoundError(f"no match named {ctx.match!r}", hint="run `tuiops match` first")
    return lab, run, mid
