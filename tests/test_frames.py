"""Typed summaries of numeric columns: a number of the column's own kind, None when empty."""

from __future__ import annotations

import polars as pl
import pytest

from tuiops.frames import num_max, num_mean, num_min


def test_integer_columns_give_ints_and_keep_large_values_exact():
    s = pl.Series("id", [3, 2**62 + 1, None], dtype=pl.Int64)
    assert num_max(s) == 2**62 + 1
    assert isinstance(num_max(s), int)
    assert num_min(s) == 3


def test_float_columns_give_floats_and_means():
    s = pl.Series("iou", [0.25, 0.75])
    assert num_max(s) == 0.75
    assert num_mean(s) == 0.5


def test_empty_or_all_null_columns_give_none():
    assert num_max(pl.Series("x", [], dtype=pl.Int64)) is None
    assert num_min(pl.Series("x", [None, None], dtype=pl.Float64)) is None
    assert num_mean(pl.Series("x", [], dtype=pl.Float64)) is None


def test_a_text_column_is_refused_with_its_name():
    with pytest.raises(TypeError, match="'name' is not numeric"):
        num_max(pl.Series("name", ["a", "b"]))
