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
from tuiops.store.user import USER_DB, USER_SCHEMA, broken_views, user_connection, user_db_path, user_objects

__all__ = [
    "BOX",
    "BOX_COLUMNS",
    "COCO_LABEL_COLUMNS",
    "USER_DB",
    "USER_SCHEMA",
    "BulkTx",
    "Store",
    "box_schema",
    "broken_views",
    "file_schema",
    "image_size_schema",
    "item_schema",
    "user_connection",
    "user_db_path",
    "user_objects",
    "utcnow",
]
