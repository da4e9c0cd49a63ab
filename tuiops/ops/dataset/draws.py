"""The stable split draw of an image key, and near-duplicate pairs of perceptual hashes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


# -- stable split --------------------------------------------------------------------------------
def _fnv1a(keys: pl.Series) -> np.ndarray:
    """64-bit FNV-1a of every string's UTF-8 bytes, vectorised over the strings."""
    import numpy as np
    import pyarrow as pa

    arr = keys.cast(str).to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_binary())
    n = len(arr)
    h = np.full(n, 0xCBF29CE484222325, dtype=np.uint64)
    if n == 0:
        return h
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    prime = np.uint64(0x100000001B3)
    for j in range(int(lengths.max()) if n else 0):
        live = lengths > j
        idx = np.nonzero(live)[0]
        byte = data[starts[idx] + j].astype(np.uint64)
        h[idx] = (h[idx] ^ byte) * prime
    return h


def _splitmix(x: np.ndarray) -> np.ndarray:
    import numpy as np

    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def split_draw(keys: pl.Series, seed: int) -> pl.Series:
    """A number in [0, 1) per image key, stable across runs, machines and versions."""
    import numpy as np
    import polars as pl

    with np.errstate(over="ignore"):
        h = _fnv1a(keys) ^ _splitmix(np.array([seed & 0xFFFF_FFFF_FFFF_FFFF], dtype=np.uint64))[0]
        u = (_splitmix(h) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return pl.Series("draw", u, dtype=pl.Float64)


# -- near-duplicate images -----------------------------------------------------------------------
def near_duplicate_pairs(left: pl.DataFrame, right: pl.DataFrame, max_distance: int) -> pl.DataFrame:
    """Pairs of ``left`` × ``right`` images whose 64-bit perceptual hashes differ in at most
    ``max_distance`` bits (:func:`tuiops.ops.similar.hash_pairs` over both, kept across).

    Both frames have ``item_id`` and ``phash`` (signed Int64). Returns ``item_id``,
    ``item_id_right``, ``distance``.
    """
    import polars as pl

    from tuiops.ops.similar import hash_pairs

    out_schema = pl.Schema({"item_id": pl.Int64, "item_id_right": pl.Int64, "distance": pl.Int64})
    if max_distance < 0 or left.height == 0 or right.height == 0:
        return pl.DataFrame(schema=out_schema)
    side = pl.concat(
        [
            left.select("item_id", "phash", pl.lit(0, pl.Int8).alias("side")),
            right.select("item_id", "phash", pl.lit(1, pl.Int8).alias("side")),
        ]
    ).with_row_index("node")
    nodes = side.select(
        pl.col("node").cast(pl.Int64), pl.col("phash").cast(pl.Int64).reinterpret(signed=False).alias("h")
    )
    pairs = hash_pairs(nodes, max_distance)
    ends = side.select(pl.col("node").cast(pl.Int64), "item_id", "side")
    joined = pairs.join(ends.rename({"node": "u", "item_id": "iu", "side": "su"}), on="u").join(
        ends.rename({"node": "v", "item_id": "iv", "side": "sv"}), on="v"
    )
    cross = joined.filter(pl.col("su") != pl.col("sv"))
    return (
        cross.select(
            pl.when(pl.col("su") == 0).then(pl.col("iu")).otherwise(pl.col("iv")).alias("item_id"),
            pl.when(pl.col("su") == 0).then(pl.col("iv")).otherwise(pl.col("iu")).alias("item_id_right"),
            pl.col("distance").cast(pl.Int64),
        )
        .sort("item_id", "distance", "item_id_right")
        .cast(out_schema)
    )
