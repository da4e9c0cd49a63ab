"""The SQLite store: schema, migrations, Arrow/polars bulk I/O."""

from tuiops.store.db import BulkTx, Store, utcnow

__all__ = ["BulkTx", "Store", "utcnow"]
