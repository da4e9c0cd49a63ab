"""The user schema: the user's own tables and views beside the store, which never touch it.

``user.db`` sits beside ``tuiops.db``. User SQL runs on a connection of its own
(:func:`tuiops.store.connections.open_user_sqlite3`) that opens the store read-only and
attaches ``user.db`` as the schema ``user``: tables, views, indexes and triggers made there
live in ``user.db``; the store's tables can be read, never written (the file is opened
``mode=ro``, and the authorizer of :mod:`tuiops.ops.usersql` refuses the statement first,
with a message).

SQLite binds the names inside a view or trigger of ``user.db`` to ``user.db`` itself, so a
view there sees only the user's tables. Views over the store's data are named in
``tuiops.toml`` (``[views]``) and made as TEMP views on this connection each time it is handed
out: SQL over them, and over ``user.*``, works on this connection alone.

The connection is held for ``sqlite3`` in the store's gate while it is in use, and is never
closed before exit (see :mod:`tuiops.store.connections`).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tuiops.errors import StoreError
from tuiops.store.connections import POOL, SQLITE3, USER, open_user_sqlite3

#: The user's database, beside the store.
USER_DB = "user.db"
#: The schema name it is attached under.
USER_SCHEMA = "user"

_NAME_RX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass
class _State:
    """What a pooled user connection has attached and made (it outlives one ``with`` block)."""

    attached: str | None = None  # the user.db path attached, or None (an empty in-memory schema)
    views: dict[str, str] = field(default_factory=dict)  # the views made, name → SQL
    broken: dict[str, str] = field(default_factory=dict)  # views that could not be made, name → why


_STATES: dict[int, _State] = {}
_STATES_LOCK = threading.Lock()


def user_db_path(store_path: str | Path) -> Path:
    """Where the user schema of the store at ``store_path`` lives."""
    return Path(store_path).resolve().parent / USER_DB


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _attach(conn: sqlite3.Connection, state: _State, user_path: Path, create: bool) -> None:
    """Attach ``user_path`` as ``user`` (an empty in-memory schema while it does not exist and
    ``create`` is false), unless it is attached already."""
    want = str(user_path) if create or user_path.exists() else ""
    if state.attached == want:
        return
    if state.attached is not None:
        conn.execute(f"DETACH {USER_SCHEMA}")
        state.attached = None
    try:
        conn.execute(f"ATTACH ? AS {USER_SCHEMA}", (want or ":memory:",))
        state.attached = want
        conn.execute(f"SELECT count(*) FROM {USER_SCHEMA}.sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        if state.attached is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.execute(f"DETACH {USER_SCHEMA}")
            state.attached = None
        raise StoreError(
            f"the user schema {user_path} cannot be opened: {exc}",
            hint=f"move {user_path.name} away if it is not a SQLite database; a new one is made on the next write",
        ) from exc


def _check_view_name(conn: sqlite3.Connection, name: str) -> str | None:
    """Why ``name`` cannot be a view of ``tuiops.toml`` (None when it can)."""
    if not _NAME_RX.match(name) or name.lower().startswith("sqlite_"):
        return "a view name is letters, digits and '_' (at most 64), not starting with a digit or sqlite_"
    for schema in ("main", USER_SCHEMA):
        row = conn.execute(
            f"SELECT type FROM {schema}.sqlite_master WHERE lower(name) = lower(?)", (name,)
        ).fetchone()
        if row is not None:
            where = "the store" if schema == "main" else USER_DB
            return f"{where} has a {row[0]} of that name, which the view would hide"
    return None


def _sync_views(conn: sqlite3.Connection, state: _State, views: Mapping[str, str]) -> None:
    """Make the TEMP views ``views`` (name → SELECT) and drop those no longer wanted.

    A view that cannot be made (bad SQL, a table that does not exist yet) is remembered in
    ``state.broken`` with SQLite's reason; the others work.
    """
    for name in [n for n in state.views if views.get(n) != state.views[n]]:
        conn.execute(f"DROP VIEW IF EXISTS temp.{_quote(name)}")
        del state.views[name]
    state.broken = {}
    for name, sql in views.items():
        if name in state.views:
            continue
        why = _check_view_name(conn, name)
        if why is None:
            try:
                conn.execute(f"CREATE TEMP VIEW {_quote(name)} AS {sql}")
            except (sqlite3.Error, sqlite3.Warning) as exc:
                why = str(exc)
        if why is None:
            state.views[name] = sql
        else:
            state.broken[name] = why


@contextlib.contextmanager
def user_connection(
    store_path: str | Path, *, write: bool = False, views: Mapping[str, str] | None = None
) -> Iterator[sqlite3.Connection]:
    """A connection for user SQL: the store read-only, ``user.db`` attached as ``user``, the
    views of ``tuiops.toml`` (``views``) made as TEMP views; held in the store's gate for
    ``sqlite3`` while the block runs.

    With ``write`` a missing ``user.db`` is created; without it a missing one is an empty
    schema (nothing is created by reading). Read every result inside the block.
    """
    path = Path(store_path).resolve()
    if not path.exists():
        raise StoreError(f"store {path} does not exist", hint="run `tuiops init` first")
    conn = open_user_sqlite3(path)
    with _STATES_LOCK:
        state = _STATES.setdefault(id(conn), _State())
    try:
        with POOL.gate(path).use(SQLITE3):
            _attach(conn, state, user_db_path(path), write)
            _sync_views(conn, state, views or {})
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
    finally:
        POOL.give(path, USER, False, conn)


def broken_views(conn: sqlite3.Connection) -> dict[str, str]:
    """The ``tuiops.toml`` views that could not be made on ``conn``, name → SQLite's reason."""
    with _STATES_LOCK:
        state = _STATES.get(id(conn))
    return dict(state.broken) if state else {}


def user_objects(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """The user's tables and views, ``(name, type, where)``: where is ``user.db`` or ``tuiops.toml``."""
    rows = conn.execute(
        f"SELECT name, type FROM {USER_SCHEMA}.sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ).fetchall()
    with _STATES_LOCK:
        state = _STATES.get(id(conn))
    made = sorted(state.views) if state else []
    return [(r[0], r[1], USER_DB) for r in rows] + [(n, "view", "tuiops.toml") for n in made]
