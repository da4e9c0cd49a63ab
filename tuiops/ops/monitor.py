"""The training monitor's follower and formatting, kept at their old place: see :mod:`tuiops.ops.train.monitor`."""

from tuiops.ops.train.monitor import (
    COLUMNS,
    ETA_WINDOW,
    HEADER,
    MonitorState,
    Reader,
    ResultsFollower,
    Stat,
    clean_epochs,
    file_reader,
    format_duration,
    format_epoch,
    format_footer,
    parse_results,
    run_follower,
    ssh_reader,
    summarize,
)

__all__ = [
    "COLUMNS",
    "ETA_WINDOW",
    "HEADER",
    "MonitorState",
    "Reader",
    "ResultsFollower",
    "Stat",
    "clean_epochs",
    "file_reader",
    "format_duration",
    "format_epoch",
    "format_footer",
    "parse_results",
    "run_follower",
    "ssh_reader",
    "summarize",
]
