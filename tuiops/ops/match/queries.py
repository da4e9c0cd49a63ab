"""Reading a stored match: its id, the list of matches, the worst images and objects, an image's objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuiops.errors import NotFoundError, UsageError
from tuiops.ops.match.model import CATEGORIES, OBJ_ITEM_SHIFT, OBJ_MATCH_SHIFT, TOP_RANKED

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store


# -- reading results back -----------------------------------------------------------------------
def match_id(store: Store, name: str) -> int:
    """The id of a stored match, or :class:`NotFoundError` naming the known ones."""
    mid = store.one("SELECT id FROM matches WHERE name = ?", (name,))
    if mid is None:
        known = [r[0] for r in store.execute("SELECT name FROM matches ORDER BY name")]
        raise NotFoundError(
            f"no match named {name!r}",
            hint=f"known matches: {', '.join(known) or 'none'}; make one with `tuiops match --set S --run R`",
        )
    return int(mid)


def list_matches(store: Store) -> pl.DataFrame:
    """Every stored match: name, set, run, iou, low, conf, created, images."""
    import polars as pl

    return store.read_frame(
        'SELECT name, set_name AS "set", run_name AS run, iou, low, conf, created, '
        "json_extract(counts, '$.all.images') AS images FROM matches ORDER BY name",
        (),
        {"iou": pl.Float64, "low": pl.Float64, "conf": pl.Float64, "images": pl.Int64},
    )


_IMAGE_COLS = (
    "mi.item_id, i.key, mi.split, mi.n_labels, mi.n_dets, mi.tp, mi.fp, mi.fn, mi.loc, mi.cls, mi.dup, "
    "mi.precision, mi.recall, mi.f1, mi.cost, mi.worst_cost"
)


def worst_images(store: Store, name: str, *, n: int = 10, split: str | None = None) -> pl.DataFrame:
    """The ``n`` worst images of a match per split (``ORDER BY f1, cost DESC``), with a ``rank`` column.

    With ``split`` only that split (``""`` for images without one).
    """

    mid = match_id(store, name)
    where, params = _split_where(split)
    if n <= TOP_RANKED:
        sql = (
            f"SELECT mi.worst_rank AS rank, {_IMAGE_COLS} FROM match_images mi JOIN items i ON i.id = mi.item_id "
            f"WHERE mi.match_id = ? AND mi.worst_rank <= ?{where} ORDER BY mi.split, mi.worst_rank"
        )
        args: tuple[Any, ...] = (mid, n, *params)
    else:
        sql = (
            f"SELECT * FROM (SELECT ROW_NUMBER() OVER (PARTITION BY mi.split ORDER BY mi.f1, mi.cost DESC, "
            f"mi.item_id) AS rank, {_IMAGE_COLS} FROM match_images mi JOIN items i ON i.id = mi.item_id "
            f"WHERE mi.match_id = ?{where}) WHERE rank <= ? ORDER BY split, rank"
        )
        args = (mid, *params, n)
    return store.read_frame(sql, args, image_schema())


def worst_objects(
    store: Store, name: str, *, n: int = 10, category: str | None = None, split: str | None = None
) -> pl.DataFrame:
    """The ``n`` biggest differences of each category (``ORDER BY cost DESC``) per split, with ``rank``."""
    import polars as pl

    if category is not None and category not in CATEGORIES:
        raise UsageError(f"unknown category {category!r}", hint=f"one of {', '.join(CATEGORIES)}")
    mid = match_id(store, name)
    where, params = _split_where(split)
    cat_where = " AND o.category = ?" if category else ""
    cat_params = (category,) if category else ()
    cols = (
        "o.item_id, i.key, mi.split, o.category, o.cost, o.iou, o.score, o.class_id, o.det_class_id, "
        "o.label_id, o.det_id"
    )
    joins = (
        "FROM match_objects o JOIN items i ON i.id = o.item_id "
        "JOIN match_images mi ON mi.match_id = o.match_id AND mi.item_id = o.item_id"
    )
    if n <= TOP_RANKED:
        cats = [category] if category else list(CATEGORIES)
        frames = [
            store.read_frame(
                f"SELECT o.worst_rank AS rank, {cols} {joins} WHERE o.match_id = ? AND o.category = ? "
                f"AND o.worst_rank <= ?{where} ORDER BY mi.split, o.worst_rank",
                (mid, c, n, *params),
                _object_schema(),
            )
            for c in cats
        ]
        out = pl.concat(frames)
    else:
        out = store.read_frame(
            f"SELECT * FROM (SELECT ROW_NUMBER() OVER (PARTITION BY mi.split, o.category ORDER BY o.cost DESC, "
            f"o.id) AS rank, {cols} {joins} WHERE o.match_id = ?{cat_where}{where}) WHERE rank <= ? "
            "ORDER BY split, category, rank",
            (mid, *cat_params, *params, n),
            _object_schema(),
        )
    return out


def image_objects(store: Store, name: str, item_id: int) -> pl.DataFrame:
    """Every compared object of one image in a match (label rows in file order, then detections)."""
    mid = match_id(store, name)
    lo = (mid << OBJ_MATCH_SHIFT) | (item_id << OBJ_ITEM_SHIFT)
    return store.read_frame(
        "SELECT o.id, o.category, o.cost, o.iou, o.score, o.class_id, o.det_class_id, o.label_id, o.det_id "
        "FROM match_objects o WHERE o.id BETWEEN ? AND ? ORDER BY o.id",
        (lo, lo + (1 << OBJ_ITEM_SHIFT) - 1),
        _object_schema(),
    )


def _split_where(split: str | None) -> tuple[str, tuple[Any, ...]]:
    if split is None:
        return "", ()
    if split == "":
        return " AND mi.split IS NULL", ()
    return " AND mi.split = ?", (split,)


def image_schema() -> dict[str, Any]:
    import polars as pl

    return {
        "rank": pl.Int64,
        "item_id": pl.Int64,
        "key": pl.String,
        "split": pl.String,
        **{c: pl.Int64 for c in ("n_labels", "n_dets", *CATEGORIES)},
        **{c: pl.Float64 for c in ("precision", "recall", "f1", "cost", "worst_cost")},
    }


def _object_schema() -> dict[str, Any]:
    import polars as pl

    return {
        "rank": pl.Int64,
        "id": pl.Int64,
        "item_id": pl.Int64,
        "key": pl.String,
        "split": pl.String,
        "category": pl.String,
        "cost": pl.Float64,
        "iou": pl.Float64,
        "score": pl.Float64,
        "class_id": pl.Int64,
        "det_class_id": pl.Int64,
        "label_id": pl.Int64,
        "det_id": pl.Int64,
    }
