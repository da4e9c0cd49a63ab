"""The training monitor: a run's results.csv followed live, as a table and charts.

Ctrl+W on the panels, or ``monitor [RUN]`` on the command line, opens it for a
training run of the store (picked from a list when there are several). A timer starts a
thread worker every few seconds; the worker reads only what was appended to the run's
results.csv (:class:`tuiops.ops.monitor.ResultsFollower`: the local file, or over SSH for
a run on a remote host) and the run's plan from the store, and posts the new state; the
handler redraws. The state copes with resumed runs (repeated or restarted epochs, one
session per resume), a half-written last line and a file that does not exist yet.

Shown: a header (run, status, epoch i/N, best epoch, time per epoch, ETA to the end and
to the next pitstop), charts of the losses, mAP50 and mAP50-95, and precision/recall
over the epochs with the pitstops and the best epoch as vertical lines, and a table of
every epoch with the best one highlighted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from tuiops.errors import TuiopsError
from tuiops.screens.workers import ReportsWorkerFailures
from tuiops.widgets.chart import LineChart, Marker

if TYPE_CHECKING:
    from textual.app import App

    from tuiops.ops.monitor import MonitorState, ResultsFollower

#: Table columns: (heading, state column, number format).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("box", "box_loss", ".4f"),
    ("cls", "cls_loss", ".4f"),
    ("dfl", "dfl_loss", ".4f"),
    ("val box", "val_box_loss", ".4f"),
    ("val cls", "val_cls_loss", ".4f"),
    ("val dfl", "val_dfl_loss", ".4f"),
    ("P", "precision", ".3f"),
    ("R", "recall", ".3f"),
    ("mAP50", "map50", ".3f"),
    ("mAP50-95", "map50_95", ".3f"),
    ("lr", "lr", ".2e"),
)

PITSTOP_COLOR = "orange"
BEST_COLOR = "green"


@dataclass
class Target:
    """What a monitor follows: a training run of the store, or a results.csv (maybe on a host)."""

    run: str | None = None
    path: str | None = None
    host: str | None = None

    @property
    def title(self) -> str:
        if self.run is not None:
            return f"training {self.run}" + (f" on {self.host}" if self.host else "")
        name = Path(self.path or "").name or "results.csv"
        return f"{name} on {self.host}" if self.host else name


class MonitorScreen(ReportsWorkerFailures, Screen[None]):
    """A training run's epochs, live."""

    CSS_PATH = "monitor.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f10", "close", "Close", id="monitor-close", tooltip="Back to the panels"),
        Binding("r,ctrl+r", "reread", "Reread", id="monitor-reread", tooltip="Read results.csv now"),
        Binding("end", "last_epoch", "Last", id="monitor-last", tooltip="Go to the last epoch"),
        Binding("b", "best_epoch", "Best", id="monitor-best", tooltip="Go to the best epoch"),
    ]

    class Updated(Message):
        """A worker read the run again: the new state (or the error that stopped it)."""

        def __init__(self, state: MonitorState | None, error: TuiopsError | None = None) -> None:
            super().__init__()
            self.state = state
            self.error = error

    def __init__(
        self,
        run: str | None = None,
        *,
        path: str | None = None,
        host: str | None = None,
        interval: float = 2.0,
    ) -> None:
        super().__init__(classes="monitor-screen")
        if run is None and path is None:
            raise ValueError("give a training run or a results.csv path")
        self.target = Target(run, path, host)
        self.interval = interval
        self.state: MonitorState | None = None
        #: How many reads finished, and how many of them brought a new state (tests wait on them).
        self.polls = 0
        self.updates = 0
        self._polling = False
        self._poll_again = False
        self.error: TuiopsError | None = None
        self._follower: ResultsFollower | None = None
        self._plan: dict[str, Any] | None = None
        self._shown = False

    def compose(self) -> ComposeResult:
        yield Static(self.target.title, id="monitor-title", markup=False)
        yield Static("reading…", id="monitor-header", markup=False)
        with Horizontal(id="monitor-charts"):
            opts: dict[str, Any] = {"xlabel": "epoch", "empty": "waiting", "marker_legend": False}
            yield LineChart("losses", id="chart-loss", **opts)
            yield LineChart("mAP50, mAP50-95", y_range=(0, 1), id="chart-map", **opts)
            yield LineChart("precision, recall", y_range=(0, 1), id="chart-pr", **opts)
        yield DataTable(id="monitor-table", cursor_type="row", zebra_stripes=False)
        yield Static(
            " Esc close  r read now  End last epoch  b best epoch │ ★ best  ◆ pitstop  ↻ resumed │ "
            "charts: orange pitstop, green best",
            id="monitor-keys",
        )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("epoch", key="epoch")
        for head, key, _ in COLUMNS:
            table.add_column(head, key=key)
        table.add_column("s/epoch", key="epoch_s")
        table.add_column("", key="mark")
        table.focus()
        self.poll_now()
        self.set_interval(self.interval, self.poll_now)

    # -- reading ------------------------------------------------------------------------------
    def poll_now(self) -> None:
        """Read results.csv (what was appended) and the run's plan in a worker.

        One read at a time (the follower keeps an offset): a read asked for while one
        runs happens right after it.
        """
        if self._polling:
            self._poll_again = True
            return
        self._polling = True
        self._poll_worker()

    @work(thread=True, group="monitor", exit_on_error=False)
    def _poll_worker(self) -> None:
        from tuiops.ops.monitor import ResultsFollower, file_reader, run_follower, ssh_reader
        from tuiops.ops.train import monitor_plan

        app: Any = self.app
        store = app.reader()
        try:
            t = self.target
            if self._follower is None:
                if t.run is not None:
                    self._follower = run_follower(app.ws, t.run, store=store)
                elif t.host is not None:
                    self._follower = ResultsFollower(*ssh_reader(app.ws, t.host, t.path or ""))
                else:
                    self._follower = ResultsFollower(*file_reader(t.path or ""))
            changed = self._follower.poll()
            plan = monitor_plan(store, t.run) if t.run is not None else {}
            state = None
            if changed or plan != self._plan or not self._shown:
                self._plan = plan
                self._shown = True
                state = self._follower.state(**plan)
            self.post_message(self.Updated(state))
        except TuiopsError as exc:
            self.post_message(self.Updated(None, exc))
        except Exception as exc:
            self.post_message(self.Updated(None, TuiopsError(f"{type(exc).__name__}: {exc}")))
        finally:
            app.release(store)

    @on(Updated)
    def _updated(self, message: Updated) -> None:
        self.polls += 1
        self._polling = False
        if self._poll_again:
            self._poll_again = False
            self.poll_now()
        if message.error is not None:
            if self.error is None or self.error.message != message.error.message:
                self.app.notify(
                    message.error.message + (f"\nhint: {message.error.hint}" if message.error.hint else ""),
                    title="monitor",
                    severity="error",
                    timeout=8,
                    markup=False,
                )
            self.error = message.error
            self.query_one("#monitor-header", Static).update(f"cannot read: {message.error.message}")
            return
        recovered = self.error is not None
        self.error = None
        if message.state is None:
            if recovered and self.state is not None:
                self._show(self.state)
            return
        self.state = message.state
        self.updates += 1
        self._show(message.state)

    # -- drawing ------------------------------------------------------------------------------
    def header_text(self, state: MonitorState) -> str:
        """The header line: epoch i/N, status, best epoch, pace, ETA, next pitstop, sessions."""
        from tuiops.ops.monitor import format_footer

        return format_footer(state)

    def _show(self, state: MonitorState) -> None:
        self.query_one("#monitor-header", Static).update(self.header_text(state))
        ep = state.epochs.sort("epoch")
        xs = ep["epoch"].to_list()
        best = state.best.get("epoch")
        markers = [Marker(p, "pitstop", PITSTOP_COLOR) for p in state.pitstops]
        if best is not None:
            markers.append(Marker(best, "best", BEST_COLOR))

        def col(name: str) -> list[float | None]:
            return ep[name].to_list() if name in ep.columns else [None] * len(xs)

        self.query_one("#chart-loss", LineChart).set_data(
            xs,
            {
                "box": col("box_loss"),
                "cls": col("cls_loss"),
                "dfl": col("dfl_loss"),
                "val box": col("val_box_loss"),
            },
            markers=markers,
        )
        self.query_one("#chart-map", LineChart).set_data(
            xs, {"mAP50": col("map50"), "mAP50-95": col("map50_95")}, markers=markers
        )
        self.query_one("#chart-pr", LineChart).set_data(
            xs, {"P": col("precision"), "R": col("recall")}, markers=markers
        )
        self._fill_table(state, best)

    def _fill_table(self, state: MonitorState, best: int | None) -> None:
        from tuiops.ops.monitor import format_duration

        table = self.query_one(DataTable)
        at_end = table.row_count == 0 or table.cursor_row >= table.row_count - 1
        keep = table.cursor_row
        table.clear()
        total = state.epochs_total
        done = set(state.pitstops_done) | set(state.pitstops)
        rows = state.epochs.sort("epoch").iter_rows(named=True)
        prev_session = None
        for row in rows:
            e = int(row["epoch"])
            is_best = e == best
            style = "bold #000000 on #55ff55" if is_best else ""
            marks = ("★ " if is_best else "") + ("◆ " if e in done else "")
            if prev_session is not None and row["session"] != prev_session:
                marks += "↻"
            prev_session = row["session"]
            cells = [Text(f"{e}/{total}" if total else str(e), style=style, justify="right")]
            for _, key, fmt in COLUMNS:
                v = row.get(key)
                txt = f"{v:{fmt}}" if isinstance(v, int | float) else "-"
                cells.append(Text(txt, style=style, justify="right"))
            cells.append(Text(format_duration(row.get("epoch_s")), style=style, justify="right"))
            cells.append(Text(marks.strip(), style=style))
            table.add_row(*cells, key=str(e))
        if table.row_count:
            table.move_cursor(row=table.row_count - 1 if at_end else min(keep, table.row_count - 1))

    # -- actions --------------------------------------------------------------------------------
    def action_close(self) -> None:
        self.dismiss(None)

    def action_reread(self) -> None:
        self.poll_now()

    def action_last_epoch(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            table.move_cursor(row=table.row_count - 1)

    def action_best_epoch(self) -> None:
        if self.state is None:
            return
        best = self.state.best.get("epoch")
        table = self.query_one(DataTable)
        if best is not None and table.row_count:
            table.move_cursor(row=table.get_row_index(str(best)))


def open_monitor(app: App[Any], run: str | None = None) -> None:
    """Open the monitor on ``run``; without one, on the only training run or one picked from a list."""
    from tuiops.ops.train import list_runs

    ws: Any = getattr(app, "ws", None)
    store = getattr(app, "ui_store", None)
    try:
        runs = list_runs(ws, store=store)
    except TuiopsError as exc:
        app.notify(exc.message, severity="error")
        return
    hosts = {r["name"]: r.get("host") for r in runs}
    if run is not None:
        if run not in hosts:
            known = ", ".join(r["name"] for r in runs) or "none"
            app.notify(f"no training run named {run!r} (known: {known})", severity="error", markup=False)
            return
        app.push_screen(MonitorScreen(run, host=hosts.get(run)))
        return
    if not runs:
        app.notify("no training runs yet: start one with `tuiops train DATA`", severity="warning")
        return
    if len(runs) == 1:
        app.push_screen(MonitorScreen(runs[0]["name"], host=runs[0].get("host")))
        return
    from tuiops.screens.dialogs import MenuDialog

    entries = [
        (
            r["name"],
            f"{r['name']:<24} {r['status']:<11} epoch {r['epoch']}/{r['epochs']}"
            + (f"  on {r['host']}" if r.get("host") else ""),
        )
        for r in sorted(runs, key=lambda r: (r["status"] != "running", r["name"]))
    ]

    def chosen(name: str | None) -> None:
        if name:
            app.push_screen(MonitorScreen(name, host=hosts.get(name)))

    app.push_screen(MenuDialog("Training runs", entries), chosen)
