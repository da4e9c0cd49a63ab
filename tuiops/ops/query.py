"""Read-only SQL over the store, with export to CSV/JSON/Parquet/XLSX."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuiops.errors import InputError, UsageError
from tuiops.fsutil import atomic_writer
from tuiops.ops.usersql import Limits, read_frame

if TYPE_CHECKING:
    import polars as pl

    from tuiops.workspace import Workspace


def run_query(ws: Workspace, sql: str, *, limits: Limits | None = None) -> pl.DataFrame:
    """Run ``sql`` on a read-only connection and return the result as a polars frame.

    The statement may only read (see :mod:`tuiops.ops.usersql`); ``limits`` sets its time
    limit and how it is cancelled.
    """
    if not ws.db_path.exists():
        raise InputError(f"the store {ws.db_path} does not exist", hint="run `tuiops init` first")
    from tuiops.store import Store

    store = Store(ws.db_path, readonly=True)
    try:
        with store.connection() as conn:
            return read_frame(conn, sql, limits=limits, what="`tuiops query`")
    finally:
        store.close()


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
