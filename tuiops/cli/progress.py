"""Progress on the command line: the reporter of :mod:`tuiops.reporting`."""

from __future__ import annotations

from tuiops.reporting import event_writer, progress_reporter, set_event_writer

__all__ = ["event_writer", "progress_reporter", "set_event_writer"]
