"""The frame schemas of ``tuiops.store.frames`` are those of the store's tables, and the store reads with them."""

from __future__ import annotations

import sqlite3

import polars as pl
import pytest

from tuiops.store.frames import BOX, BOX_COLUMNS, box_schema, file_schema, image_size_schema, item_schema

#: polars dtype of each SQLite column affinity the store declares.
AFFINITY = {"INTEGER": pl.Int64, "REAL": pl.Float64, "TEXT": pl.String, "BLOB": pl.Binary}


def _declared(ws, table: str) -> dict[str, str]:
    with sqlite3.connect(ws.store.path) as conn:
        return {r[1]: r[2].upper() for r in conn.execute(f"PRAGMA table_info({table})")}


@pytest.mark.parametrize(
    ("table", "schema"),
    [
        ("labels", box_schema(extra=True)),
        ("detections", box_schema(score=True, extra=True)),
        ("items", item_schema()),
        ("files", file_schema()),
    ],
)
def test_schemas_name_the_tables_columns_with_their_types(ws, table, schema):
    declared = _declared(ws, table)
    missing = [c for c in schema if c not in declared and c != "item_id"]
    assert not missing, f"{table} has no column {missing}"
    for col, dtype in schema.items():
        if col in declared and col != "class_id":  # a class id is read narrower than it is stored
            assert dtype == AFFINITY[declared[col]], (table, col)


def test_the_store_reads_boxes_and_images_with_the_schemas(ws):
    items = pl.DataFrame({"item_id": [0], "key": ["danbooru_1"], "width": [64], "height": [48]})
    boxes = pl.DataFrame(
        {
            "item_id": [0],
            "class_id": [1],
            "x1": [1.0],
            "y1": [2.0],
            "x2": [30.5],
            "y2": [40.0],
            "score": [0.9],
        }
    )
    ws.store.create_label_set("gt", boxes.drop("score"), items.select("item_id"))
    ws.store.create_run("r", boxes, items.select("item_id"))
    assert dict(ws.store.read_labels("gt", with_extra=True).schema) == box_schema(extra=True)
    assert dict(ws.store.read_detections("r").schema) == box_schema(score=True)
    assert dict(ws.store.read_set_images("gt").schema) == image_size_schema()
    assert dict(ws.store.read_items().schema) == item_schema()
    assert ("item_id", "class_id", *BOX) == BOX_COLUMNS
    assert list(box_schema(stored=False, score=True)) == [*BOX_COLUMNS, "score"]
