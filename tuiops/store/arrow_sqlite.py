"""The ADBC SQLite driver through the driver manager's own API, with polars on the Arrow side.

The driver manager's DB-API layer imports ``pyarrow.dataset`` (and with it pandas) when it is
imported: one to two seconds of every command that touches the store. Its core API takes
and hands out Arrow C streams, which polars writes and reads without pyarrow, so the store
talks to the driver through this small cursor instead.

A statement's result is read to the end when it runs (:meth:`Cursor.execute`), so no
statement and no read transaction outlives the call: the store's gate rules (see
:mod:`tuiops.store.connections`) hold by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

#: Ingest modes (``mode=``) and the driver's names for them.
INGEST_MODES = {
    "append": "adbc.ingest.mode.append",
    "create": "adbc.ingest.mode.create",
    "replace": "adbc.ingest.mode.replace",
    "create_append": "adbc.ingest.mode.create_append",
}


class Connection:
    """One ADBC connection to a SQLite file (autocommit: transactions are explicit SQL)."""

    def __init__(self, uri: str) -> None:
        import adbc_driver_manager
        import adbc_driver_sqlite

        self._statement = adbc_driver_manager.AdbcStatement
        self._db = adbc_driver_sqlite.connect(uri)
        try:
            self._conn = adbc_driver_manager.AdbcConnection(self._db)
        except BaseException:
            self._db.close()
            raise

    def cursor(self) -> Cursor:
        return Cursor(self)

    def statement(self) -> Any:
        return self._statement(self._conn)

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._db.close()


def _param(i: int, value: Any) -> pl.Series:
    import polars as pl

    name = f"p{i}"
    if value is None:  # a typed null: the driver cannot bind Arrow's null type
        return pl.Series(name, [None], dtype=pl.String)
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, memoryview | bytearray):
        value = bytes(value)
    return pl.Series(name, [value])


class Cursor:
    """Statements on a :class:`Connection`; each result is read whole when it runs."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._options: dict[str, str] = {}
        self._frame: pl.DataFrame | None = None

    def set_options(self, **options: str) -> None:
        """Statement options (such as ``adbc.sqlite.query.batch_rows``) for what runs next."""
        self._options.update(options)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run ``sql`` with its ``?`` parameters and read its result (rows of a query, or
        nothing) to the end."""
        import polars as pl

        stmt = self._conn.statement()
        try:
            if self._options:
                stmt.set_options(**self._options)
            stmt.set_sql_query(sql)
            if params:
                bound = pl.DataFrame([_param(i, v) for i, v in enumerate(params)])
                stmt.bind_stream(bound.__arrow_c_stream__())
            stream, _ = stmt.execute_query()
            self._frame = pl.DataFrame(stream)
        finally:
            stmt.close()

    def fetch_frame(self) -> pl.DataFrame:
        """The last statement's result as a polars frame."""
        import polars as pl

        frame, self._frame = self._frame, None
        return frame if frame is not None else pl.DataFrame()

    def fetchall(self) -> list[tuple[Any, ...]]:
        """The last statement's rows as tuples."""
        return self.fetch_frame().rows()

    def ingest(
        self, table: str, frame: pl.DataFrame, *, mode: str = "append", temporary: bool = False
    ) -> int:
        """Write ``frame`` into ``table`` (columns by name) in bulk; returns the rows written."""
        stmt = self._conn.statement()
        try:
            stmt.set_options(
                **{
                    "adbc.ingest.target_table": table,
                    "adbc.ingest.mode": INGEST_MODES[mode],
                    "adbc.ingest.temporary": "true" if temporary else "false",
                }
            )
            stmt.bind_stream(frame.__arrow_c_stream__())
            stmt.execute_update()
        finally:
            stmt.close()
        return frame.height

    def close(self) -> None:
        self._frame = None


def connect(uri: str) -> Connection:
    """A connection to ``uri`` (a path, or ``file:PATH?mode=ro``)."""
    return Connection(uri)
