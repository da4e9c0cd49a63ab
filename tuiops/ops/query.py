"""SQL over the store, read-only to it, with export to CSV/JSON/Parquet/XLSX; with ``write``,
statements that make and change the user's own tables and views (:mod:`tuiops.ops.userdb`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from tuiops.errors import InputError, UsageError
from tuiops.fsutil import atomic_writer
from tuiops.ops.userdb import USER_HINT, check_new_views, explain_missing, open_user, user_view_names
from tuiops.ops.usersql import Limits, read_frame
from tuiops.store import USER_SCHEMA

if TYPE_CHECKING:
    import polars as pl

    from tuiops.workspace import Workspace


def run_query(
    ws: Workspace, sql: str, *, limits: Limits | None = None, write: bool = False, what: str | None = None
) -> pl.DataFrame:
    """Run ``sql`` and return its rows as a polars frame.

    The statement may only read the store (see :mod:`tuiops.ops.usersql`); it sees the
    user's tables (``user.NAME``) and the views of ``tuiops.toml``. With ``write`` it may also
    create, fill, change and drop objects of the ``user`` schema (``user.db`` is made when
    missing); a statement that returns no rows then gives one row: ``changes``, the rows it
    inserted, updated or deleted. ``limits`` sets its time limit and how it is cancelled.
    """
    import polars as pl

    what = what or ("`tuiops query --write`" if write else "`tuiops query`")
    with open_user(ws, write=write) as conn:
        before = conn.total_changes
        views_before = user_view_names(conn)
        try:
            frame = read_frame(
                conn,
                sql,
                limits=limits,
                what=what,
                hint=USER_HINT,
                write_schema=USER_SCHEMA if write else None,
            )
        except UsageError as exc:
            if write:
                raise
            raise UsageError(
                exc.message,
                hint="the store is read-only; `tuiops query --write` makes and changes your own "
                "tables (user.NAME, in user.db)",
            ) from exc.__cause__
        except InputError as exc:
            cause = exc.__cause__
            better = explain_missing(conn, cause) if isinstance(cause, sqlite3.Error) else None
            if better is not None:
                raise better from cause
            raise
        if write:
            check_new_views(conn, views_before)
        if write and not frame.columns:
            return pl.DataFrame({"changes": [conn.total_changes - before]})
        return frame


def write_result(
    frame: pl.DataFrame, fmt: str, output: str | None, *, limit: int | None = None
) -> str | None:
    """Render ``frame`` in ``fmt``; write to ``output`` atomically or return the text."""
    import polars as pl

    if fmt in ("parquet", "xlsx") and not output:
        raise UsageError(f"--format {fmt} writes a binary file: give --output FILE")
    if fmt == "table":
        shown = frame if limit is None else frame.head(limit)
        with pl.Config(
            tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200, tbl_hide_dataframe_shape=True
        ):
            text = str(shown) + f"\n({frame.height} rows)"
    elif fmt == "csv":
        text = frame.write_csv()
    elif fmt == "json":
        text = frame.write_json()
    else:
        text = None
    if output is None:
        return text
    path = Path(output)
    if not path.parent.exists():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    with atomic_writer(path, "wb") as fh:
        if fmt == "parquet":
            frame.write_parquet(fh)
        elif fmt == "xlsx":
            import io

            buf = io.BytesIO()
            frame.write_excel(buf, autofit=True)
            fh.write(buf.getvalue())
        else:
            assert text is not None
            fh.write(text.encode("utf-8"))
    return None
