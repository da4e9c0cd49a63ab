"""Read-only SQL over the store, with export to CSV/JSON/Parquet/XLSX."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from tuiops.errors import InputError, UsageError
from tuiops.fsutil import atomic_writer

if TYPE_CHECKING:
    import polars as pl

    from tuiops.workspace import Workspace


def run_query(ws: Workspace, sql: str) -> pl.DataFrame:
    """Run ``sql`` on a read-only connection and return the result as a polars frame."""
    import polars as pl

    if not ws.db_path.exists():
        raise InputError(f"the store {ws.db_path} does not exist", hint="run `tuiops init` first")
    from tuiops.store import Store

    store = Store(ws.db_path, readonly=True)
    conn = store.conn
    try:
        try:
            cur = conn.execute(sql)
        except sqlite3.Error as exc:
            msg = str(exc)
            if "readonly" in msg or "read-only" in msg or "attempt to write" in msg:
                raise UsageError(f"`tuiops query` is read-only: {msg}") from exc
            raise InputError(
                f"SQL error: {msg}", hint="the views are v_images, v_labels, v_detections"
            ) from exc
        if cur.description is None:
            return pl.DataFrame()
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        store.close()
    seen: dict[str, int] = {}
    unique = []
    for n in names:  # duplicate column names (e.g. two `id`s in a join) get a suffix
        k = seen.get(n, 0)
        seen[n] = k + 1
        unique.append(n if k == 0 else f"{n}_{k}")
    return pl.DataFrame(rows, schema=unique, orient="row", infer_schema_length=None)


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
