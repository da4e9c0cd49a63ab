"""The user's own SQL objects: tables and views in ``user.db``, views named in ``tuiops.toml``.

``tuiops query --write`` creates, fills and drops tables, views, indexes and triggers in the
schema ``user`` (the file ``user.db`` beside the store; see :mod:`tuiops.store.user`); the
store's own tables are read-only to it. Views over the store's data are written in
``tuiops.toml``::

    [views]
    tiny = "SELECT key, width, height FROM v_images WHERE width < 64"
    flagged = { sql = "SELECT f.key, f.flag FROM user.flags f JOIN items i ON i.key = f.key" }

Every query (``tuiops query``, the app's query panels) sees both kinds by name; the app's
catalog lists them; ``select --view NAME`` (and every command that takes a selection)
selects the images a view or table names by its ``key`` (or ``item_id``) column.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tuiops.errors import InputError, NotFoundError, WorkspaceError
from tuiops.ops.usersql import Limits, guard
from tuiops.store import USER_DB, USER_SCHEMA, broken_views, user_connection, user_objects

if TYPE_CHECKING:
    from tuiops.workspace import Workspace

#: The hint of a query that may use the user's objects.
USER_HINT = (
    "the views are v_images, v_labels, v_detections; your own tables are user.NAME, "
    "your views those of [views] in tuiops.toml"
)


def configured_views(ws: Workspace) -> dict[str, str]:
    """The views of ``tuiops.toml``'s ``[views]``: name → SELECT (a string, or a table with ``sql``)."""
    raw = ws.config.raw.get("views", {})
    if not isinstance(raw, dict):
        raise WorkspaceError(f'{ws.config_path}: [views] must be a table of name = "SELECT …"')
    out: dict[str, str] = {}
    for name, value in raw.items():
        sql = value.get("sql") if isinstance(value, dict) else value
        if not isinstance(sql, str) or not sql.strip():
            raise WorkspaceError(
                f"{ws.config_path}: [views] {name} needs its SELECT",
                hint=f'write {name} = "SELECT key FROM v_images WHERE …" under [views]',
            )
        out[str(name)] = sql.strip().rstrip(";").strip()
    return out


@contextlib.contextmanager
def open_user(ws: Workspace, *, write: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection that sees the store (read-only), ``user.db`` as ``user`` and the views of
    ``tuiops.toml``; with ``write``, ``user.db`` is created when missing."""
    from tuiops.store import Store

    if not ws.db_path.exists():
        raise InputError(f"the store {ws.db_path} does not exist", hint="run `tuiops init` first")
    Store(ws.db_path, readonly=True).close()  # refuses a store of a newer tuiops
    with user_connection(ws.db_path, write=write, views=configured_views(ws)) as conn:
        yield conn


def explain_missing(conn: sqlite3.Connection, exc: BaseException | None) -> InputError | None:
    """A clearer error for a statement SQLite refused because of a user object: a view of
    ``tuiops.toml`` that could not be made, or a view of ``user.db`` over the store's tables."""
    import re

    msg = str(exc)
    for name, why in broken_views(conn).items():
        if msg.lower() == f"no such table: {name}".lower():
            return InputError(
                f"the view {name} of tuiops.toml could not be made: {why}",
                hint="fix it under [views] in tuiops.toml",
            )
    m = re.fullmatch(rf"no such table: {USER_SCHEMA}\.(\w+)", msg)
    if m and conn.execute("SELECT 1 FROM main.sqlite_master WHERE name = ?", (m.group(1),)).fetchone():
        return InputError(
            f"SQL error: {msg}: a view or trigger in {USER_DB} sees only the tables of {USER_DB}, "
            f"and {m.group(1)} is the store's",
            hint='a view over the store\'s tables goes in tuiops.toml: [views] NAME = "SELECT …"',
        )
    return None


def check_new_views(conn: sqlite3.Connection, before: set[str]) -> None:
    """Refuse (and drop) a view just made in ``user.db`` that cannot be read: SQLite binds the
    names inside it to ``user.db``, so one over the store's tables never works."""
    rows = conn.execute(f"SELECT name FROM {USER_SCHEMA}.sqlite_master WHERE type = 'view'").fetchall()
    for (name,) in rows:
        if name in before:
            continue
        ref = f'{USER_SCHEMA}."{name.replace(chr(34), chr(34) * 2)}"'
        try:
            conn.execute(f"SELECT * FROM {ref} LIMIT 0").fetchall()
        except sqlite3.Error as exc:
            conn.execute(f"DROP VIEW {ref}")
            err = explain_missing(conn, exc) or InputError(
                f"the view {USER_SCHEMA}.{name} cannot be read: {exc}"
            )
            err.message += "; it was not kept"
            raise err from exc


def user_view_names(conn: sqlite3.Connection) -> set[str]:
    """The names of the views in ``user.db`` now."""
    return {r[0] for r in conn.execute(f"SELECT name FROM {USER_SCHEMA}.sqlite_master WHERE type = 'view'")}


def list_user_objects(ws: Workspace) -> list[dict[str, Any]]:
    """The user's tables and views: name, type, where it lives and (views of tuiops.toml) why
    one could not be made."""
    with open_user(ws) as conn:
        out: list[dict[str, Any]] = [{"name": n, "type": t, "in": w} for n, t, w in user_objects(conn)]
        out += [
            {"name": n, "type": "view", "in": "tuiops.toml", "error": why}
            for n, why in broken_views(conn).items()
        ]
    return out


def _qualified(conn: sqlite3.Connection, name: str) -> str:
    """``user."NAME"`` or ``temp."NAME"`` for a table or view of the user's; NotFoundError else."""
    bare = name.split(".", 1)[1] if name.lower().startswith(USER_SCHEMA + ".") else name
    broken = broken_views(conn)
    if bare in broken:
        raise InputError(
            f"the view {bare} of tuiops.toml could not be made: {broken[bare]}",
            hint="fix it under [views] in tuiops.toml",
        )
    for n, _, where in user_objects(conn):
        if n == bare:
            schema = USER_SCHEMA if where == USER_DB else "temp"
            return f'{schema}."{bare.replace(chr(34), chr(34) * 2)}"'
    known = ", ".join(n for n, _, _ in user_objects(conn)) or "none"
    raise NotFoundError(
        f"no view or table of yours named {name!r}",
        hint=f"yours: {known}; define views under [views] in tuiops.toml, tables with `tuiops query --write`",
    )


def view_keys(ws: Workspace, name: str, *, limits: Limits | None = None) -> list[str]:
    """The image keys a view or table of the user's names, in its order, each once: its ``key``
    column, or the keys of its ``item_id`` column."""
    with open_user(ws) as conn:
        ref = _qualified(conn, name)
        what = f"--view {name}"
        try:
            cols = [d[0] for d in conn.execute(f"SELECT * FROM {ref} LIMIT 0").description]
        except sqlite3.Error as exc:
            raise explain_missing(conn, exc) or InputError(f"{what}: {exc}") from exc
        if "key" in cols:
            sql = f"SELECT key FROM {ref} WHERE key IS NOT NULL"
        elif "item_id" in cols:
            sql = f"SELECT i.key FROM {ref} v JOIN main.items i ON i.id = v.item_id"
        else:
            raise InputError(
                f"{what}: it has no key or item_id column to select images by (columns: {', '.join(cols)})",
                hint="give the view a key column: SELECT key, … FROM v_images …",
            )
        try:
            with guard(conn, sql, limits=limits or Limits(), what=what, hint=USER_HINT) as cur:
                keys = [str(r[0]) for r in cur.fetchall()]
        except sqlite3.Error as exc:
            raise explain_missing(conn, exc) or InputError(f"{what}: SQL error: {exc}") from exc
    return list(dict.fromkeys(keys))
