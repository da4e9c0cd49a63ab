"""Quick search (FAR's Alt+letter): the row of a panel whose name starts with what was typed.

Names are matched as FAR matches them: case-insensitively, ``*`` and ``?`` as wildcards,
the typed text being a prefix. The folder rows come first, then the view (filtered and
sorted) in its order; one vectorised pass over the loaded name column finds every hit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuiops.errors import UsageError
from tuiops.ops.browse.order import mask_expr

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from tuiops.ops.browse.order import Order
    from tuiops.ops.browse.source import Source
    from tuiops.store import Store


def search_mask(text: str) -> str:
    """The FAR mask of a quick search for ``text``: a prefix (``gel`` → ``gel*``); commas match
    literally here (``*``/``?`` stay wildcards)."""
    text = text.replace(",", "?")
    return text if text.endswith("*") else text + "*"


def find_rows(
    source: Source,
    store: Store,
    fixed: pl.DataFrame,
    base_ids: np.ndarray,
    order: Order | None,
    text: str,
) -> np.ndarray:
    """Row indexes (fixed rows counted first, ``..`` never) whose name starts with ``text``."""
    import numpy as np
    import polars as pl

    if not text:
        return np.empty(0, dtype=np.int64)
    name = source.name_field or (source.columns[0].field if source.columns else None)
    if name is None:
        raise UsageError(f"{source.title} has no name column to search")
    expr = mask_expr(search_mask(text))
    hits = []
    if fixed.height and "name" in fixed.columns:
        names = fixed["name"].cast(pl.String).str.to_lowercase()
        ok = _hits(names, expr)
        ok &= (names != "..").fill_null(True).to_numpy()
        hits.append(np.flatnonzero(ok).astype(np.int64))
    if len(base_ids):
        ok = _hits(source.lowered(store, name, base_ids), expr)
        if order is not None and order.positions is not None:
            ok = ok[order.positions]  # base order → the view's (a boolean gather, not of strings)
        hits.append(np.flatnonzero(ok).astype(np.int64) + fixed.height)
    return np.concatenate(hits) if hits else np.empty(0, dtype=np.int64)


def _hits(names: pl.Series, expr: pl.Expr) -> np.ndarray:
    """``expr`` over lower-cased names as a boolean array (a constant one, ``*``, broadcast)."""
    import polars as pl

    return pl.DataFrame({"v": names}).with_columns(expr.fill_null(False).alias("hit"))["hit"].to_numpy()


def pick_row(rows: np.ndarray, cursor: int, step: int) -> int | None:
    """The hit to go to from ``cursor``: the first (``step`` 0), the next after the cursor (1)
    or the one before it (-1), wrapping round; None when there is no hit."""
    import numpy as np

    if len(rows) == 0:
        return None
    if step == 0:
        return int(rows[0])
    if step > 0:
        i = int(np.searchsorted(rows, cursor, side="right"))
        return int(rows[i % len(rows)])
    i = int(np.searchsorted(rows, cursor, side="left")) - 1
    return int(rows[i % len(rows)])
