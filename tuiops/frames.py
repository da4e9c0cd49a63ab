"""Typed summaries of numeric polars columns, and a pause of the garbage collector while the
many small objects that go into or come out of a big frame are made.

``Series.max()`` and friends return any Python scalar (a date, a string, …) as far as a type
checker knows; these return a number, or None for an empty or all-null column, and refuse a
column that is not numeric.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl


def _number(value: object, s: pl.Series) -> int | float | None:
    if value is None or isinstance(value, int | float):
        return value
    raise TypeError(f"column {s.name!r} is not numeric ({s.dtype})")


def num_max(s: pl.Series) -> int | float | None:
    """The largest value of a numeric column (None when it holds no value)."""
    return _number(s.max(), s)


def num_min(s: pl.Series) -> int | float | None:
    """The smallest value of a numeric column (None when it holds no value)."""
    return _number(s.min(), s)


def num_mean(s: pl.Series) -> float | None:
    """The mean of a numeric column (None when it holds no value)."""
    value = _number(s.mean(), s)
    return None if value is None else float(value)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection while a burst of objects that live on is made (parsed JSON, a
    job's actions): each collection it would set off walks every object of the process (a
    whole terminal app's), and none of these objects are garbage."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
