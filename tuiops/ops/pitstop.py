"""A pitstop's comparison and report writing, kept at its old place: see :mod:`tuiops.ops.train.pitstop`."""

from tuiops.ops.train.pitstop import (
    STORE_CONF,
    pitstop_compare,
    run_pitstop,
    write_worst_lists,
)

__all__ = [
    "STORE_CONF",
    "pitstop_compare",
    "run_pitstop",
    "write_worst_lists",
]
