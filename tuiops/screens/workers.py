"""The one failure policy of the app's workers.

Every worker runs with ``exit_on_error=False`` and only posts messages; a worker that
raises ends in the ERROR state, and the node that started it hands the error to the app's
one handler (:meth:`tuiops.app.TuiopsApp.report_failure`): a :class:`TuiopsError` shows
its message and hint, anything else an error dialog with the traceback.
"""

from __future__ import annotations

from typing import Any

from textual.worker import Worker, WorkerState


class ReportsWorkerFailures:
    """Mixin for a screen, widget or app whose workers follow the failure policy."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        error = event.worker.error
        if event.state is WorkerState.ERROR and error is not None:
            app: Any = self.app  # type: ignore[attr-defined]
            app.report_failure(error)
