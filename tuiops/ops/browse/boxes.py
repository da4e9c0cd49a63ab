"""The boxes of a label set or a detection run as a source, and the per-item box counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.ops.browse.source import (
    Opened,
    Source,
    align,
    empty_display,
    in_chunks,
    no_fixed,
    order_by_ids,
)
from tuiops.ops.browse.spec import (
    KIND_ROW,
    ROW_ID,
    ROW_ITEM,
    ROW_KEY,
    ROW_KIND,
    ROW_ORDER,
    ROW_TARGET,
    Column,
    Owner,
    Spec,
)
from tuiops.store.db import ITEM_SHIFT, MAX_ORD, OWNER_SHIFT

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store


def box_counts(store: Store, table: str, owner: Owner, items: pl.Series) -> pl.Series:
    """Boxes per image of a set or run, for every row of ``items`` (0 where none).

    The set's box ids come in id order, so their item ids are sorted: the counts are the
    run lengths, found with numpy, and looked up for ``items`` by binary search. The ids
    are read in slices of :data:`COUNT_SLICE` images' id ranges (short queries, so other
    readers of the store get their turn).
    """
    import polars as pl

    want = items.fill_null(-1).cast(pl.Int64).to_numpy()
    real = want[want >= 0]
    if len(real) == 0:
        return pl.Series(np.zeros(len(items), dtype=np.int64))
    first, last = int(real.min()), int(real.max())
    uniq_parts: list[np.ndarray] = []
    count_parts: list[np.ndarray] = []
    for a in range(first, last + 1, COUNT_SLICE):
        b = min(last, a + COUNT_SLICE - 1)
        frame = store.read_frame(
            f"SELECT id FROM {table} WHERE id BETWEEN ? AND ? ORDER BY id",
            (owner.lo + (a << ITEM_SHIFT), owner.lo + (b << ITEM_SHIFT) + MAX_ORD),
            {"id": pl.Int64},
        )
        box_items = (frame["id"].to_numpy() >> ITEM_SHIFT) & ((1 << (OWNER_SHIFT - ITEM_SHIFT)) - 1)
        if len(box_items) == 0:
            continue
        starts = np.concatenate([[0], np.flatnonzero(np.diff(box_items)) + 1])
        uniq_parts.append(box_items[starts])
        count_parts.append(np.diff(np.concatenate([starts, [len(box_items)]])))
    if not uniq_parts:
        return pl.Series(np.zeros(len(items), dtype=np.int64))
    per_item = pl.DataFrame(
        {
            "item": np.concatenate(uniq_parts).astype(np.int64),
            "n": np.concatenate(count_parts).astype(np.int64),
        }
    )
    # a join (not numpy's fancy indexing): polars lets the UI thread run meanwhile
    looked = pl.DataFrame({"item": pl.Series(want, dtype=pl.Int64)}).join(
        per_item, on="item", how="left", maintain_order="left"
    )
    return looked.select(pl.col("n").fill_null(0))["n"]


#: Images per query when box counts are read (about 1.5 boxes an image: ~100k ids a query).
COUNT_SLICE = 65_536


class BoxSource(Source):
    """The boxes of one label set (``labels:SET``) or detection run (``run:RUN``), in id order.

    Fields: id, item_id, key, class_id, class, x1, y1, x2, y2, w, h, area (and score for runs).
    """

    name_field = None

    def __init__(self, spec: Spec, store: Store) -> None:
        super().__init__(spec)
        self.is_run = spec.kind == "run"
        self.table = "detections" if self.is_run else "labels"
        oid = store.run_id(spec.name) if self.is_run else store.label_set_id(spec.name)
        self.owner = Owner(spec.name, oid)
        self.class_names = store.class_names()
        self.columns = [
            Column("key", "Key", "name", None, "key"),
            Column("class", "Class", "text", 10, "class_id"),
            *([Column("score", "Score", "score", 5, "score")] if self.is_run else []),
            Column("x1", "x1", "coord", 6, "x1"),
            Column("y1", "y1", "coord", 6, "y1"),
            Column("w", "w", "coord", 6, "w"),
            Column("h", "h", "coord", 6, "h"),
        ]
        self.fields = {
            "id": "box id",
            "item_id": "the image's item id",
            "key": "image key",
            "class_id": "class id in the workspace class map",
            "class": "class name",
            **({"score": "detection confidence"} if self.is_run else {}),
            "x1": "left edge (pixels)",
            "y1": "top edge (pixels)",
            "x2": "right edge (pixels)",
            "y2": "bottom edge (pixels)",
            "w": "width (pixels)",
            "h": "height (pixels)",
            "area": "area (square pixels)",
        }

    @property
    def title(self) -> str:
        return f"{'run' if self.is_run else 'labels'}:{self.spec.name}"

    def preload_fields(self) -> list[str]:
        return ["class_id", *(["score"] if self.is_run else []), "x1", "y1", "w", "h"]

    def open(self, store: Store, n: int) -> Opened:
        head = self.fetch(store, self.ids_page(store, n))
        count = head.height if head.height < n else None
        return Opened(no_fixed(), head, count)

    def count(self, store: Store) -> int:
        return int(
            store.one(
                f"SELECT count(*) FROM {self.table} WHERE id BETWEEN ? AND ?", (self.owner.lo, self.owner.hi)
            )
            or 0
        )

    def ids_page(
        self,
        store: Store,
        limit: int,
        *,
        offset: int = 0,
        after: Any = None,
        before: Any = None,
        from_end: bool = False,
    ) -> np.ndarray:
        lo, hi = self.owner.lo, self.owner.hi
        if after is not None:
            lo = max(lo, int(after) + 1)
        if before is not None:
            hi = min(hi, int(before) - 1)
        desc = from_end or before is not None
        sql = (
            f"SELECT id FROM {self.table} WHERE id BETWEEN ? AND ? ORDER BY id {'DESC' if desc else 'ASC'} "
            f"LIMIT {int(limit)} OFFSET {int(offset)}"
        )
        ids = np.fromiter((r[0] for r in store.execute(sql, (lo, hi))), dtype=np.int64)
        return ids[::-1].copy() if desc else ids

    def load_ids(self, store: Store) -> np.ndarray:
        import polars as pl

        frame = store.read_frame(
            f"SELECT id FROM {self.table} WHERE id BETWEEN ? AND ? ORDER BY id",
            (self.owner.lo, self.owner.hi),
            {"id": pl.Int64},
        )
        return frame["id"].to_numpy().astype(np.int64, copy=False)

    def _load_fields(self, store: Store, names: list[str], ids: np.ndarray) -> dict[str, pl.Series]:
        import polars as pl

        from tuiops.store.db import item_of

        want = set(names)
        raw = ["class_id", "x1", "y1", "x2", "y2"] + (["score"] if self.is_run else [])
        need = sorted(
            {c for c in want if c in raw}
            | ({"x1", "x2"} if want & {"w", "area"} else set())
            | ({"y1", "y2"} if want & {"h", "area"} else set())
            | ({"class_id"} if "class" in want else set())
        )
        frame = pl.DataFrame({"id": pl.Series(ids, dtype=pl.Int64)})
        if need:
            # the ids are the whole set in id order: the rows come back aligned
            loaded = store.read_frame(
                f"SELECT {', '.join(need)} FROM {self.table} WHERE id BETWEEN ? AND ? ORDER BY id",
                (self.owner.lo, self.owner.hi),
            )
            frame = (
                frame.with_columns(loaded.select(need))
                if loaded.height == len(ids)
                else frame.join(
                    store.read_frame(
                        f"SELECT id, {', '.join(need)} FROM {self.table} WHERE id BETWEEN ? AND ?",
                        (self.owner.lo, self.owner.hi),
                    ),
                    on="id",
                    how="left",
                    maintain_order="left",
                )
            )
        out: dict[str, pl.Series] = {}
        for n in names:
            if n == "id":
                out[n] = frame["id"]
            elif n == "item_id":
                out[n] = frame.select(item_of(pl.col("id")).alias("item_id"))["item_id"]
            elif n in raw:
                out[n] = frame[n]
            elif n == "w":
                out[n] = (frame["x2"] - frame["x1"]).alias("w")
            elif n == "h":
                out[n] = (frame["y2"] - frame["y1"]).alias("h")
            elif n == "area":
                out[n] = ((frame["x2"] - frame["x1"]) * (frame["y2"] - frame["y1"])).alias("area")
            elif n == "class":
                out[n] = (
                    frame["class_id"]
                    .cast(pl.Int64)
                    .replace_strict(
                        list(range(len(self.class_names))),
                        self.class_names,
                        default=None,
                        return_dtype=pl.String,
                    )
                    .alias("class")
                )
            elif n == "key":
                items = frame.select(item_of(pl.col("id")).alias("item_id"))["item_id"]
                keys = store.read_frame(
                    f"SELECT id AS item_id, key FROM items WHERE id IN (SELECT item_id FROM "
                    f"{'run_images WHERE run_id' if self.is_run else 'set_images WHERE set_id'} = ?)",
                    (self.owner.id,),
                    {"item_id": pl.Int64, "key": pl.String},
                )
                out[n] = align(items.to_numpy(), keys, "item_id", ["key"])["key"]
        return out

    def fetch(self, store: Store, ids: np.ndarray) -> pl.DataFrame:
        import polars as pl

        schema = {
            "key": pl.String,
            "class": pl.String,
            "class_id": pl.Int64,
            "x1": pl.Float64,
            "y1": pl.Float64,
            "x2": pl.Float64,
            "y2": pl.Float64,
            "w": pl.Float64,
            "h": pl.Float64,
        }
        if self.is_run:
            schema["score"] = pl.Float64
        if len(ids) == 0:
            return empty_display(schema)
        frames = []
        score = ", b.score" if self.is_run else ""
        mask = (1 << (OWNER_SHIFT - ITEM_SHIFT)) - 1
        for chunk in in_chunks(ids):
            sql = (
                f"SELECT b.id, i.key, i.id, c.name, b.class_id, b.x1, b.y1, b.x2, b.y2{score} "
                f"FROM {self.table} b LEFT JOIN items i ON i.id = ((b.id >> {ITEM_SHIFT}) & {mask}) "
                f"LEFT JOIN classes c ON c.id = b.class_id WHERE b.id IN ({', '.join('?' * len(chunk))})"
            )
            rows = store.execute(sql, chunk).fetchall()
            cols = [ROW_ID, "key", ROW_ITEM, "class", "class_id", "x1", "y1", "x2", "y2"] + (
                ["score"] if self.is_run else []
            )
            frames.append(pl.DataFrame(rows, schema=cols, orient="row", infer_schema_length=None))
        frame = pl.concat(frames, how="vertical_relaxed").with_columns(
            pl.col(ROW_ID).cast(pl.Int64),
            pl.col(ROW_ITEM).cast(pl.Int64),
            pl.col("key").cast(pl.String),
            pl.col("class").cast(pl.String),
            pl.col("class_id").cast(pl.Int64),
            *[
                pl.col(c).cast(pl.Float64)
                for c in ("x1", "y1", "x2", "y2", *(["score"] if self.is_run else []))
            ],
        )
        frame = frame.with_columns(
            pl.col("key").alias(ROW_KEY),
            pl.col(ROW_ID).cast(pl.String).alias(ROW_ORDER),
            pl.lit(KIND_ROW).alias(ROW_KIND),
            pl.lit(None, pl.String).alias(ROW_TARGET),
            (pl.col("x2") - pl.col("x1")).alias("w"),
            (pl.col("y2") - pl.col("y1")).alias("h"),
        )
        return order_by_ids(frame, ids)
