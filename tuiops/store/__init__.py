"""The SQLite store: schema, migrations, Arrow/polars bulk I/O, and the schemas of its frames."""

from tuiops.store.db import BulkTx, Store, utcnow
from tuiops.store.frames import (
    BOX,
    BOX_COLUMNS,
    COCO_LABEL_COLUMNS,
    box_schema,
    file_schema,
    image_size_schema,
    item_schema,
)

__all__ = [
    "BOX",
    "BOX_COLUMNS",
    "COCO_LABEL_COLUMNS",
    "BulkTx",
    "Store",
    "box_schema",
    "file_schema",
    "image_size_schema",
    "item_schema",
    "utcnow",
]
