"""SQL a user types, run on the store: read-only by construction, time-limited, cancellable.

Every path that runs user SQL (``tuiops query``, ``--where`` of a selection, the app's query
panels and saved selections) goes through here:

- :func:`check_where` refuses a condition that could close the statement it is put into
  (an unbalanced parenthesis, a comment, a ``;``), before any SQL is compiled;
- :func:`guard` compiles the statement under an authorizer that allows reading and nothing
  else: no ATTACH or DETACH (which create files), no VACUUM, no ``load_extension``, no write,
  no pragma that sets a value. A statement SQLite does not report to the authorizer at all
  (``VACUUM INTO``) is refused because it reads nothing;
- while it runs, a progress handler stops the statement at its deadline or when the
  caller's cancel flag is set (Ctrl+C in the CLI, Esc in the app).
"""

from __future__ import annotations

import contextlib
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuiops.errors import Cancelled, InputError, UsageError

if TYPE_CHECKING:
    import polars as pl

    from tuiops.ops.base import CancelToken

#: Time limit of a query typed on the command line (seconds).
CLI_TIMEOUT_S = 300.0
#: Time limit of a query or filter typed in the app (seconds): the app stays responsive.
APP_TIMEOUT_S = 10.0
#: A statement running longer than this tells its caller once (the CLI says how to cancel).
SLOW_AFTER_S = 1.0
#: SQLite virtual-machine steps between two checks of the deadline and the cancel flag.
PROGRESS_STEPS = 2000

# Pragmas that only describe the store; they may take an argument (a table name).
_PRAGMAS_DESCRIBE = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "foreign_key_check",
        "collation_list",
        "function_list",
        "module_list",
        "pragma_list",
        "database_list",
        "compile_options",
        "integrity_check",
        "quick_check",
    }
)
# Pragmas that are settings: reading them is harmless, setting them is a write.
_PRAGMAS_READ = frozenset(
    {
        "user_version",
        "schema_version",
        "application_id",
        "data_version",
        "page_count",
        "page_size",
        "freelist_count",
        "encoding",
        "journal_mode",
        "foreign_keys",
        "auto_vacuum",
        "cache_size",
        "busy_timeout",
        "query_only",
        "synchronous",
    }
)
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"})

_WRITE_ACTIONS = {
    sqlite3.SQLITE_CREATE_INDEX: "CREATE INDEX",
    sqlite3.SQLITE_CREATE_TABLE: "CREATE TABLE",
    sqlite3.SQLITE_CREATE_TEMP_INDEX: "CREATE INDEX",
    sqlite3.SQLITE_CREATE_TEMP_TABLE: "CREATE TABLE",
    sqlite3.SQLITE_CREATE_TEMP_TRIGGER: "CREATE TRIGGER",
    sqlite3.SQLITE_CREATE_TEMP_VIEW: "CREATE VIEW",
    sqlite3.SQLITE_CREATE_TRIGGER: "CREATE TRIGGER",
    sqlite3.SQLITE_CREATE_VIEW: "CREATE VIEW",
    sqlite3.SQLITE_DELETE: "DELETE",
    sqlite3.SQLITE_DROP_INDEX: "DROP INDEX",
    sqlite3.SQLITE_DROP_TABLE: "DROP TABLE",
    sqlite3.SQLITE_DROP_TEMP_INDEX: "DROP INDEX",
    sqlite3.SQLITE_DROP_TEMP_TABLE: "DROP TABLE",
    sqlite3.SQLITE_DROP_TEMP_TRIGGER: "DROP TRIGGER",
    sqlite3.SQLITE_DROP_TEMP_VIEW: "DROP VIEW",
    sqlite3.SQLITE_DROP_TRIGGER: "DROP TRIGGER",
    sqlite3.SQLITE_DROP_VIEW: "DROP VIEW",
    sqlite3.SQLITE_INSERT: "INSERT",
    sqlite3.SQLITE_TRANSACTION: "a transaction",
    sqlite3.SQLITE_UPDATE: "UPDATE",
    sqlite3.SQLITE_ALTER_TABLE: "ALTER TABLE",
    sqlite3.SQLITE_REINDEX: "REINDEX",
    sqlite3.SQLITE_ANALYZE: "ANALYZE",
    sqlite3.SQLITE_CREATE_VTABLE: "CREATE VIRTUAL TABLE",
    sqlite3.SQLITE_DROP_VTABLE: "DROP VIRTUAL TABLE",
    sqlite3.SQLITE_SAVEPOINT: "SAVEPOINT",
}


# Never allowed, not even in the user schema: a transaction left open on a shared connection.
_NEVER_WRITTEN = frozenset({sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT})
_CREATE_DROP = {
    sqlite3.SQLITE_CREATE_INDEX,
    sqlite3.SQLITE_CREATE_TABLE,
    sqlite3.SQLITE_CREATE_TRIGGER,
    sqlite3.SQLITE_CREATE_VIEW,
    sqlite3.SQLITE_DROP_INDEX,
    sqlite3.SQLITE_DROP_TABLE,
    sqlite3.SQLITE_DROP_TRIGGER,
    sqlite3.SQLITE_DROP_VIEW,
}


def _write_named(action: int, arg1: str | None, arg2: str | None, db: str | None) -> str:
    """A refused write of ``--write`` in words: what, on which object of which schema."""
    name = _WRITE_ACTIONS[action]
    where = "in the store" if db == "main" else ("TEMP" if db == "temp" else f"in {db}")
    if action == sqlite3.SQLITE_ALTER_TABLE:
        return f"ALTER TABLE {arg2} " + ("in the store" if arg1 == "main" else f"in {arg1}")
    if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE):
        if (arg1 or "").startswith("sqlite_"):
            return f"creating, changing or dropping an object {where}"
        return f"{name} on {arg1} {where}"
    if action in _CREATE_DROP or action in (
        sqlite3.SQLITE_CREATE_TEMP_INDEX,
        sqlite3.SQLITE_CREATE_TEMP_TABLE,
        sqlite3.SQLITE_CREATE_TEMP_TRIGGER,
        sqlite3.SQLITE_CREATE_TEMP_VIEW,
        sqlite3.SQLITE_DROP_TEMP_INDEX,
        sqlite3.SQLITE_DROP_TEMP_TABLE,
        sqlite3.SQLITE_DROP_TEMP_TRIGGER,
        sqlite3.SQLITE_DROP_TEMP_VIEW,
    ):
        on = f" on {arg2}" if arg2 else ""
        return f"{name} {arg1}{on} {where}"
    return f"{name} {where}"


# -- the text of a condition -----------------------------------------------------------------------
def _outside_literals(text: str) -> Iterator[tuple[int, str]]:
    """The characters of ``text`` outside string literals and quoted names, with positions.

    Raises InputError for a literal or quoted name that is never closed.
    """
    closers = {"'": "'", '"': '"', "`": "`", "[": "]"}
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in closers:
            close = closers[ch]
            j = i + 1
            while True:
                j = text.find(close, j)
                if j < 0:
                    raise InputError(
                        f"the condition {text!r} has an unclosed {ch}…{close} at character {i + 1}",
                        hint="close the string or the quoted name",
                    )
                if close != "]" and text.startswith(close * 2, j):
                    j += 2  # a doubled quote is a quote inside the literal
                    continue
                break
            i = j + 1
            continue
        yield i, ch
        i += 1


def check_where(text: str, *, what: str = "--where") -> None:
    """Refuse a condition that could reach outside the ``WHERE (…)`` it is put into.

    A condition is one expression: its parentheses balance, and it holds no ``;`` and no
    comment (``--`` or ``/* */``), which could hide the rest of the statement around it.
    """
    depth = 0
    prev = ""
    for i, ch in _outside_literals(text):
        two = prev + ch
        if two in ("--", "/*"):
            raise InputError(
                f"{what} {text!r} holds a comment ({two} at character {i}): not allowed in a condition",
                hint="remove the comment",
            )
        if ch == ";":
            raise InputError(
                f"{what} {text!r} holds a ';' at character {i + 1}: a condition is one expression",
                hint="remove the ';'",
            )
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise InputError(
                    f"{what} {text!r} closes a parenthesis it did not open (character {i + 1})",
                    hint="balance the parentheses of the condition",
                )
        prev = ch
    if depth:
        raise InputError(
            f"{what} {text!r} leaves {depth} parenthesis(es) open",
            hint="balance the parentheses of the condition",
        )


def where_error(where: str, exc: Exception) -> InputError:
    """The error of a ``--where`` on ``v_images`` that SQLite refused, with the columns to use."""
    return InputError(
        f"the selection --where {where!r} is not valid SQL here: {exc}",
        hint="write a condition on the columns of v_images (pool, relpath, key, booru, fid, width, "
        "height, format, mode, phash, status), e.g. \"booru = 'danbooru' AND width >= 512\"",
    )


def has_subquery(text: str) -> bool:
    """Whether a condition holds a sub-select (the only way a condition runs unbounded work)."""
    outside = "".join(ch for _, ch in _outside_literals(text))
    return re.search(r"(?i)\b(select|with|values)\b", outside) is not None


# -- the authorizer --------------------------------------------------------------------------------
@dataclass
class _Authorizer:
    """Allows reads only (and with ``write_schema``, writes to that schema alone); remembers
    what it refused and whether the statement reads or writes anything."""

    refused: list[tuple[str, bool]] = field(default_factory=list)  # (what, is_write)
    reads: bool = False
    write_schema: str | None = None
    writes: bool = False

    def _writes_own(self, action: int, arg1: str | None, db: str | None) -> bool:
        """Whether a write ``action`` stays inside :attr:`write_schema`."""
        if self.write_schema is None or action not in _WRITE_ACTIONS or action in _NEVER_WRITTEN:
            return False
        schema = arg1 if action == sqlite3.SQLITE_ALTER_TABLE else db
        return schema == self.write_schema

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, src: str | None
    ) -> int:
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
            self.reads = True
            return sqlite3.SQLITE_OK
        if self._writes_own(action, arg1, db):
            self.writes = True
            return sqlite3.SQLITE_OK
        if self.write_schema is not None and action in _WRITE_ACTIONS and action not in _NEVER_WRITTEN:
            self.refused.append((_write_named(action, arg1, arg2, db), True))
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION:
            if (arg2 or "").lower() in _DENIED_FUNCTIONS:
                self.refused.append((f"the function {arg2}()", False))
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            if name in _PRAGMAS_DESCRIBE or (name in _PRAGMAS_READ and arg2 is None):
                self.reads = True
                return sqlite3.SQLITE_OK
            what = f"PRAGMA {arg1}" + (f" = {arg2}" if arg2 is not None else "")
            self.refused.append((what, arg2 is not None and name in _PRAGMAS_READ))
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_ATTACH:
            self.refused.append((f"ATTACH {arg1!r}", False))
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_DETACH:
            self.refused.append(("DETACH", False))
            return sqlite3.SQLITE_DENY
        name = _WRITE_ACTIONS.get(action, f"action {action}")
        if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE):
            name = "changing the schema" if (arg1 or "").startswith("sqlite_") else f"{name} on {arg1}"
        self.refused.append((name, action in _WRITE_ACTIONS))
        return sqlite3.SQLITE_DENY


def _refusal(auth: _Authorizer, what: str, hint: str) -> Exception:
    if auth.write_schema is not None and auth.refused:
        names = ", ".join(dict.fromkeys(w for w, _ in auth.refused))
        schema = auth.write_schema
        return UsageError(
            f"{what} writes only the {schema} schema; the store's tables are read-only: {names} is not allowed",
            hint=f"name your own objects {schema}.NAME (CREATE TABLE {schema}.flags AS SELECT key FROM v_images …)",
        )
    if not auth.refused:
        return InputError(
            f"{what} reads nothing: only queries that read the store are allowed (VACUUM, "
            "ATTACH and the like are not)",
            hint=hint,
        )
    names = ", ".join(dict.fromkeys(w for w, _ in auth.refused))
    if all(is_write for _, is_write in auth.refused):
        return UsageError(f"{what} is read-only: {names} is not allowed", hint=hint)
    return InputError(f"{what}: {names} is not allowed (queries only read the store)", hint=hint)


def _compile(
    conn: sqlite3.Connection, text: str, params: Sequence[Any], auth: _Authorizer, what: str, hint: str
) -> None:
    explain = text if re.match(r"(?i)\s*explain\b", text) else "EXPLAIN " + text
    try:
        conn.execute(explain, tuple(params)).fetchall()  # compiles only: runs nothing
    except sqlite3.DatabaseError as exc:
        if auth.refused or "not authorized" in str(exc):
            raise _refusal(auth, what, hint) from exc
        raise
    if not auth.reads and not auth.writes:
        raise _refusal(auth, what, hint)


def authorize(
    conn: sqlite3.Connection,
    sql: str,
    params: Sequence[Any] = (),
    *,
    what: str = "the query",
    hint: str = "the views are v_images, v_labels, v_detections",
    write_schema: str | None = None,
) -> None:
    """Compile ``sql`` (without running it) under the read-only authorizer (``write_schema``:
    writes to that attached schema are allowed too).

    Raises UsageError/InputError for what is not allowed; a statement SQLite refuses raises
    its ``sqlite3.Error``. A statement that passes may then run on any connection to the store.
    """
    auth = _Authorizer(write_schema=write_schema)
    conn.set_authorizer(auth)
    try:
        _compile(conn, sql.strip(), params, auth, what, hint)
    finally:
        conn.set_authorizer(None)


# -- running ------------------------------------------------------------------------------------------
class QueryInterrupted(Exception):
    """Internal: why a statement was stopped (turned into Cancelled or InputError)."""


@dataclass
class Limits:
    """How long a statement may run and how it is cancelled.

    ``timeout``: seconds (None: no limit); ``cancel``: a token the caller sets from another
    thread (the app's Esc); ``on_slow``: called once when the statement has run
    :data:`SLOW_AFTER_S`; ``timeout_hint``: what the user can do about a time-out;
    ``sigint``: turn Ctrl+C into a cancel while the statement runs (main thread only).
    """

    timeout: float | None = CLI_TIMEOUT_S
    cancel: CancelToken | None = None
    on_slow: Callable[[], None] | None = None
    timeout_hint: str = "narrow the query"
    sigint: bool = False


@contextlib.contextmanager
def guard(
    conn: sqlite3.Connection,
    sql: str,
    params: Sequence[Any] = (),
    *,
    limits: Limits | None = None,
    what: str = "the query",
    hint: str = "the views are v_images, v_labels, v_detections",
    write_schema: str | None = None,
) -> Iterator[sqlite3.Cursor]:
    """Compile ``sql`` under the read-only authorizer, run it, and yield the cursor.

    ``write_schema``: the name of an attached schema the statement may also write (create,
    change and drop tables, views, indexes and triggers there; insert, update, delete); a
    write anywhere else, a transaction, a pragma setting and an ATTACH are still refused.

    Rows must be fetched inside the ``with`` block: the deadline and the cancel flag apply
    while they are read. Raises UsageError/InputError for what is not allowed, InputError at
    the deadline, Cancelled when cancelled, InputError for a statement SQLite refuses.
    """
    limits = limits or Limits()
    auth = _Authorizer(write_schema=write_schema)
    stopped: list[str] = []
    started = time.monotonic()
    deadline = None if limits.timeout is None else started + limits.timeout
    slow_said = limits.on_slow is None
    interrupted = threading.Event()

    def progress() -> int:
        nonlocal slow_said
        if interrupted.is_set() or (limits.cancel is not None and limits.cancel.cancelled):
            stopped.append("cancel")
            return 1
        now = time.monotonic()
        if deadline is not None and now > deadline:
            stopped.append("timeout")
            return 1
        if not slow_said and now - started >= SLOW_AFTER_S:
            slow_said = True
            assert limits.on_slow is not None
            limits.on_slow()
        return 0

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted.set()
        conn.interrupt()

    old_handler: Any = None
    if limits.sigint and threading.current_thread() is threading.main_thread():
        old_handler = signal.getsignal(signal.SIGINT)
        if old_handler is signal.SIG_IGN:  # started with Ctrl+C ignored (a background job): keep it so
            old_handler = None
        else:
            signal.signal(signal.SIGINT, on_sigint)
    conn.set_authorizer(auth)
    conn.set_progress_handler(progress, PROGRESS_STEPS)
    try:
        text = sql.strip()
        _compile(conn, text, params, auth, what, hint)
        try:
            cur = conn.execute(text, tuple(params))
            yield cur
            if interrupted.is_set():  # Ctrl+C between two checks of a statement that then ended
                raise QueryInterrupted("cancel")
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc) and (stopped or interrupted.is_set()):
                raise QueryInterrupted(stopped[0] if stopped else "cancel") from exc
            if auth.refused:
                raise _refusal(auth, what, hint) from exc
            raise
    except QueryInterrupted as exc:
        if str(exc) == "timeout":
            raise InputError(
                f"{what} was stopped after its time limit of {limits.timeout:g} s",
                hint=limits.timeout_hint,
            ) from None
        raise Cancelled(f"{what} was cancelled") from None
    finally:
        conn.set_progress_handler(None, 0)
        conn.set_authorizer(None)
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)


def frame_of(cur: sqlite3.Cursor) -> pl.DataFrame:
    """A cursor's rows as a polars frame (a duplicate column name gets a suffix)."""
    import polars as pl

    if cur.description is None:
        cur.fetchall()
        return pl.DataFrame()
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    seen: dict[str, int] = {}
    unique = []
    for n in names:  # duplicate column names (e.g. two `id`s in a join) get a suffix
        k = seen.get(n, 0)
        seen[n] = k + 1
        unique.append(n if k == 0 else f"{n}_{k}")
    return pl.DataFrame(rows, schema=unique, orient="row", infer_schema_length=None)


def read_frame(
    conn: sqlite3.Connection,
    sql: str,
    params: Sequence[Any] = (),
    *,
    limits: Limits | None = None,
    what: str = "the query",
    hint: str = "the views are v_images, v_labels, v_detections",
    write_schema: str | None = None,
) -> pl.DataFrame:
    """Run user SQL under :func:`guard` and return its rows as a polars frame.

    A statement SQLite refuses (a syntax error, an unknown column) raises InputError.
    """
    try:
        with guard(conn, sql, params, limits=limits, what=what, hint=hint, write_schema=write_schema) as cur:
            return frame_of(cur)
    except (sqlite3.Error, sqlite3.Warning) as exc:
        raise InputError(f"SQL error: {exc}", hint=hint) from exc
