"""Sliced evaluation: the COCO summary of each group of images (COCO's area ranges stay as they are).

A slice groups *images*, never boxes, so each slice's numbers are exactly pycocotools'
(and hotcoco's ``slice_by``) on that slice's images:

- ``booru``: the booru of the image key (``(none)`` for unkeyed images);
- ``split``: the split (from split files, or the pitstop's dataset when the run is a pitstop's);
- ``size``: the image's longer side — ``small`` (< 640 px), ``medium`` (< 1280 px), ``large``;
- ``aspect``: width / height — ``portrait`` (< 0.8), ``square`` (0.8–1.25), ``landscape``;
- ``tag:QUERY``: the images whose imageboard post the booru search ``QUERY`` finds (the
  slice named as the query), the others (``(other)``) and those without a post
  (``(no post)``); ``tag:A | B`` slices by several searches, an image going to the first
  that finds it, as a SQL ``CASE`` would;
- any other text is a SQL expression over the image's columns in ``items`` (``key``,
  ``booru``, ``fid``, ``width``, ``height``), read-only: its value names the slice, e.g.
  ``"width >= 1024"`` or ``"substr(key, 1, 3)"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import UsageError
from tuiops.ops.analysis.inputs import EvalInputs

if TYPE_CHECKING:
    import polars as pl

    from tuiops.workspace import Workspace

#: The named slicings; anything else given to ``--by`` is a SQL expression.
SLICE_KINDS = ("booru", "split", "size", "aspect")
#: Longer side (pixels) below which an image is small, medium.
SIZE_EDGES = (640, 1280)
#: Width / height below which an image is portrait; above the second, landscape.
ASPECT_EDGES = (0.8, 1.25)
NONE = "(none)"


@dataclass
class SliceResult:
    """One slice's COCO summary (the 12 numbers, as `eval`) and what it holds."""

    name: str
    images: int
    labels: int
    dets: int
    stats: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "slice": self.name,
            "images": self.images,
            "labels": self.labels,
            "dets": self.dets,
            **self.stats,
        }


def _item_columns(ws: Workspace, items: np.ndarray) -> pl.DataFrame:
    import polars as pl

    frame = ws.store.read_frame(
        "SELECT id AS item_id, booru, width, height FROM items ORDER BY id",
        (),
        {"item_id": pl.Int64, "booru": pl.String, "width": pl.Int64, "height": pl.Int64},
    )
    return pl.DataFrame({"item_id": items}, schema={"item_id": pl.Int64}).join(
        frame, on="item_id", how="left", maintain_order="left"
    )


def _by_expression(ws: Workspace, expr: str, items: np.ndarray) -> np.ndarray:
    import polars as pl

    from tuiops.ops.usersql import Limits, check_where, read_frame
    from tuiops.store import Store

    check_where(expr, what="--by")
    hint = "--by takes booru, split, size, aspect or a SQL expression over key, booru, fid, width, height"
    ws.store  # noqa: B018 - the schema is migrated before a read-only connection opens
    store = Store(ws.db_path, readonly=True)
    try:
        with store.connection() as conn:
            frame = read_frame(
                conn,
                f"SELECT id AS item_id, ({expr}) AS slice FROM items",
                limits=Limits(),
                what="--by",
                hint=hint,
            )
    finally:
        store.close()
    frame = frame.with_columns(pl.col("item_id").cast(pl.Int64), pl.col("slice").cast(pl.String))
    got = pl.DataFrame({"item_id": items}, schema={"item_id": pl.Int64}).join(
        frame, on="item_id", how="left", maintain_order="left"
    )
    return got["slice"].fill_null(NONE).to_numpy().astype(object)


#: The slice of an image whose post no search of ``tag:`` finds, and of one without a post.
OTHER, NO_POST = "(other)", "(no post)"


def _by_tags(ws: Workspace, by: str, items: np.ndarray) -> np.ndarray:
    from tuiops.ops.meta import items_sql

    queries = [q.strip() for q in by[len("tag:") :].split("|")]
    if not all(queries):
        raise UsageError(
            f"--by {by!r}: a tag search is empty", hint='give --by "tag:QUERY" or --by "tag:QUERY1 | QUERY2"'
        )
    if len(set(queries)) < len(queries):
        raise UsageError(f"--by {by!r}: a tag search is given twice")
    store = ws.store
    if not store.one("SELECT count(*) FROM (SELECT 1 FROM meta_posts LIMIT 1)"):
        raise UsageError(
            f"--by {by}: this workspace holds no imageboard tags to search",
            hint="load the posts' metadata first (`tuiops meta import FILE`)",
        )
    out = np.full(len(items), OTHER, dtype=object)
    with store.connection() as conn:
        posted = {
            r[0]
            for r in conn.execute(
                "SELECT i.id FROM items i JOIN meta_posts p ON p.booru = i.booru AND p.fid = i.fid"
            )
        }
        out[~np.isin(items, np.fromiter(posted, dtype=np.int64, count=len(posted)))] = NO_POST
        free = out == OTHER
        for q in queries:
            sql, params, notes = items_sql(conn, q)
            if notes:  # a misspelt tag would be an empty slice that is not shown
                raise UsageError(f"--by {by!r}: {notes[0]}", hint="`tuiops meta tags PATTERN` lists the tags")
            found = np.fromiter((r[0] for r in conn.execute(sql, params)), dtype=np.int64)
            hit = free & np.isin(items, found)
            out[hit] = q
            free &= ~hit
    return out


def slice_names(ws: Workspace, inp: EvalInputs, by: str, splits: pl.DataFrame | None = None) -> np.ndarray:
    """The slice of each image of ``inp.items`` (an object array of names)."""
    import polars as pl

    if by.startswith("tag:"):
        return _by_tags(ws, by, inp.items)
    items = inp.items
    if by == "split":
        if splits is None:
            raise UsageError(
                "--by split needs the splits",
                hint="give --split-file or --split-from (a pitstop's run has them)",
            )
        got = pl.DataFrame({"item_id": items}, schema={"item_id": pl.Int64}).join(
            splits.select(pl.col("item_id").cast(pl.Int64), pl.col("split").cast(pl.String)).unique(
                "item_id", keep="first", maintain_order=True
            ),
            on="item_id",
            how="left",
            maintain_order="left",
        )
        return got["split"].fill_null(NONE).to_numpy().astype(object)
    if by not in SLICE_KINDS:
        return _by_expression(ws, by, items)
    cols = _item_columns(ws, items)
    if by == "booru":
        return cols["booru"].fill_null(NONE).to_numpy().astype(object)
    w = cols["width"].cast(float).fill_null(np.nan).to_numpy()
    h = cols["height"].cast(float).fill_null(np.nan).to_numpy()
    known = np.isfinite(w) & np.isfinite(h) & (w > 0) & (h > 0)
    out = np.full(len(items), "(unknown size)", dtype=object)
    if by == "size":
        side = np.fmax(w, h)
        out[known] = np.where(
            side[known] < SIZE_EDGES[0], "small", np.where(side[known] < SIZE_EDGES[1], "medium", "large")
        )
    else:
        ratio = np.divide(w, h, out=np.zeros_like(w), where=known)
        out[known] = np.where(
            ratio[known] < ASPECT_EDGES[0],
            "portrait",
            np.where(ratio[known] <= ASPECT_EDGES[1], "square", "landscape"),
        )
    return out


def sliced_eval(inp: EvalInputs, names: np.ndarray) -> list[SliceResult]:
    """The COCO summary of each slice (sorted by name) of ``inp``'s images."""
    from tuiops.ops.evaluate import STAT_KEYS, coco_evaluate

    out = []
    for name in sorted(set(names.tolist())):
        sel = names == name
        ids, order = inp.subset(sel)
        res = coco_evaluate(inp.labels, inp.dets, image_ids=ids, class_ids=inp.class_ids, image_order=order)
        out.append(
            SliceResult(
                name=str(name),
                images=len(ids),
                labels=res.n_labels,
                dets=res.n_dets,
                stats={k: float(v) for k, v in zip(STAT_KEYS, res.stats, strict=True)},
            )
        )
    return out
