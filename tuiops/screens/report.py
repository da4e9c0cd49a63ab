"""The report of a label set against a detection run, as charts that fit in a terminal.

Six tabs: AP per class (bars), the precision–recall curve of one class at IoU 0.5 with
the all-class mean (Braille dots; ``[``/``]`` choose the class), the confusion matrix (a
table coloured by the share of each row), the score and IoU histograms (block
characters), the worst images, and the errors: TIDE's breakdown, the reliability of the
scores and, given an earlier run (by default the previous pitstop's), what got better and
worse since. The numbers come from
:func:`tuiops.ops.report.report_data`, computed in a worker on a read-only store; the
screen draws only.

Open it with ``app.push_screen(ReportScreen(ws, "master", "v41"))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane

from tuiops.errors import TuiopsError
from tuiops.screens.workers import ReportsWorkerFailures

if TYPE_CHECKING:
    from tuiops.ops.report import ReportData
    from tuiops.workspace import Workspace

TABS = ("ap", "pr", "confusion", "hist", "worst", "errors")
_EIGHTHS = " ▏▎▍▌▋▊▉█"
_LEVELS = " ▁▂▃▄▅▆▇█"
_PALETTE = ("#ff3838", "#32cd32", "#1e90ff", "#ffb21d", "#cf52ff", "#00d4bb", "#ff69b4", "#92cc17")
_BRAILLE = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int64)


@dataclass
class ReportLoaded(Message):
    """The worker's answer: the report's numbers, or the error to show."""

    data: ReportData | None
    error: TuiopsError | None = None


# -- charts as rich renderables ---------------------------------------------------------------------
def _color(k: int) -> str:
    return _PALETTE[k % len(_PALETTE)]


def hbar(value: float, width: int) -> str:
    """A horizontal bar of ``value`` ∈ [0, 1] in ``width`` cells (eighths of a cell)."""
    eighths = round(max(0.0, min(1.0, value)) * width * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[rest] if rest else "")).ljust(width)


def ap_bars(data: ReportData, width: int = 40) -> Table:
    """AP@[.5:.95] and AP50 per class as bars."""
    t = Table(box=None, padding=(0, 1), show_header=True, header_style="bold")
    t.add_column("class", no_wrap=True)
    t.add_column("AP@[.5:.95]", no_wrap=True)
    t.add_column("", justify="right")
    t.add_column("AP50", no_wrap=True)
    t.add_column("", justify="right")
    for r in data.per_class.iter_rows(named=True):
        if r["ap"] < 0:
            t.add_row(r["class"], Text("no labels", style="dim"), "", "", "")
            continue
        t.add_row(
            r["class"],
            Text(hbar(r["ap"], width), style="#1e90ff"),
            f"{r['ap']:.3f}",
            Text(hbar(r["ap50"], width // 2), style="#55ffff"),
            f"{r['ap50']:.3f}",
        )
    return t


def braille_plot(curves: list[tuple[np.ndarray, str]], width: int = 60, height: int = 16) -> list[Text]:
    """Curves ``y(x)`` sampled at equal steps over x ∈ [0, 1], y ∈ [0, 1], drawn in Braille dots.

    Each curve is a (values, style) pair; a cell takes the style of the last curve in it.
    Returns one Text per row, top row first.
    """
    px_w, px_h = width * 2, height * 4
    bits = np.zeros((height, width), dtype=np.int64)
    owner = np.full((height, width), -1, dtype=np.int64)
    for ci, (values, _style) in enumerate(curves):
        v = np.asarray(values, dtype=np.float64)
        if len(v) == 0:
            continue
        xs = np.arange(px_w)
        idx = np.round(xs / max(px_w - 1, 1) * (len(v) - 1)).astype(np.int64)
        ys = np.round((1.0 - np.clip(v[idx], 0.0, 1.0)) * (px_h - 1)).astype(np.int64)
        prev = np.concatenate(([ys[0]], ys[:-1]))
        lo, hi = np.minimum(prev, ys), np.maximum(prev, ys)
        span = hi - lo + 1
        col = np.repeat(xs, span)
        row = np.repeat(lo, span) + (np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
        cy, cx = row // 4, col // 2
        flat = cy * width + cx
        np.bitwise_or.at(bits.reshape(-1), flat, _BRAILLE[row % 4, col % 2])
        owner.reshape(-1)[flat] = ci
    lines = []
    for y in range(height):
        t = Text()
        for x in range(width):
            b = int(bits[y, x])
            t.append(chr(0x2800 + b) if b else " ", style=curves[owner[y, x]][1] if b else "")
        lines.append(t)
    return lines


def pr_chart(data: ReportData, k: int | None, width: int = 60, height: int = 16) -> Group:
    """The precision–recall curve of class ``k`` at IoU 0.5 and the all-class means."""
    ks = data.pr_classes()
    if not ks:
        return Group(Text("no labels: no precision–recall curve", style="dim"))
    mean50 = data.pr50[ks].mean(axis=0)
    curves: list[tuple[np.ndarray, str]] = [
        (data.pr_mean[ks].mean(axis=0), "#888888"),
        (mean50, "bold white"),
    ]
    head = Text()
    if k is not None and k in ks:
        curves.append((data.pr50[k], _color(k)))
        head.append(f"■ {data.class_names[k]} (AP50 {data.pr50[k].mean():.3f})  ", style=_color(k))
    head.append(f"■ all classes (mAP50 {mean50.mean():.3f})  ", style="bold white")
    head.append(f"■ all, IoU .50:.95 (mAP {data.pr_mean[ks].mean():.3f})", style="#888888")
    rows = braille_plot(curves, width, height)
    out = [head, Text("precision")]
    for i, r in enumerate(rows):
        label = (
            "1.0 ┤" if i == 0 else "0.5 ┤" if i == height // 2 else "0.0 ┤" if i == height - 1 else "    │"
        )
        out.append(Text(label) + r)
    out.append(Text("    └" + "─" * width))
    out.append(Text("     0" + "recall".center(width - 2) + "1"))
    return Group(*out)


def confusion_table(data: ReportData) -> Table:
    """The confusion matrix: counts, the background by the share of the row."""
    rows, cols, m = data.confusion_view()
    t = Table(
        title=f"rows: label class · columns: detected class — {data.match_source}, "
        f"IoU {data.iou:g}, conf {data.conf:g}",
        title_justify="left",
        header_style="bold",
        show_lines=False,
    )
    t.add_column("label \\ det", no_wrap=True)
    for c in cols:
        t.add_column(c, justify="right", no_wrap=True)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    for i, name in enumerate(rows):
        cells: list[Any] = [Text(name, style="bold")]
        for j in range(len(cols)):
            v = int(m[i, j])
            if not v:
                cells.append(Text("·", style="dim"))
                continue
            level = round(float(share[i, j]) * 255)
            good = i == j and i < len(rows) - 2
            bg = f"rgb(0,{level // 2 + 40},0)" if good else f"rgb({level // 2 + 50},0,{level // 3})"
            cells.append(Text(f"{v:,}", style=f"bold white on {bg}"))
        t.add_row(*cells)
    return t


def histogram(counts: np.ndarray, edges: np.ndarray, style: str, height: int = 6, title: str = "") -> Group:
    """A vertical histogram in block characters: one column of two cells per bin."""
    counts = np.asarray(counts, dtype=np.int64)
    top = int(counts.max(initial=0))
    eighths = np.zeros(len(counts), dtype=np.int64) if top == 0 else np.round(counts / top * height * 8)
    out = [Text(f"{title}  (max {top:,} per bin)", style="bold")]
    for row in range(height):
        base = (height - 1 - row) * 8
        fill = np.clip(eighths - base, 0, 8).astype(np.int64)
        out.append(Text("│") + Text("".join(_LEVELS[f] * 2 for f in fill), style=style))
    out.append(Text("└" + "─" * (2 * len(counts))))
    n = 2 * len(counts)
    out.append(Text(f"{edges[0]:g}".ljust(n // 2) + f"{edges[-1]:g}".rjust(n - n // 2 + 1)))
    return Group(*out)


def worst_table(data: ReportData) -> Table:
    """The worst images: rank, key, split and their counts and metrics."""
    t = Table(header_style="bold", box=None, padding=(0, 1))
    cols = ("rank", "key", "split", "f1", "cost", "n_labels", "n_dets", "tp", "loc", "cls", "dup", "fp", "fn")
    for c in cols:
        t.add_column(c, justify="left" if c in ("key", "split") else "right", no_wrap=True)
    for r in data.worst.iter_rows(named=True):
        t.add_row(
            *[f"{r[c]:.3f}" if isinstance(r[c], float) else "" if r[c] is None else str(r[c]) for c in cols]
        )
    return t


def headline(data: ReportData) -> Text:
    s = data.stats
    t = Text()
    t.append(f"{data.set_name} × {data.run_name}", style="bold")
    if data.split:
        t.append(f" [{data.split}]")
    t.append(
        f"   mAP {s['map']:.3f}  mAP50 {s['map50']:.3f}  mAP75 {s['map75']:.3f}  AR@100 {s['ar100']:.3f}"
        f"   {data.eval.images:,} images, {data.eval.labels:,} labels, {data.eval.dets:,} dets"
    )
    return t


# -- the screen -----------------------------------------------------------------------------------
class ReportScreen(ReportsWorkerFailures, Screen[None]):
    """Charts of a label set against a detection run (see the module doc)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", id="report-close"),
        Binding("1", "tab('ap')", "AP per class", id="report-tab-ap"),
        Binding("2", "tab('pr')", "PR curve", id="report-tab-pr"),
        Binding("3", "tab('confusion')", "Confusion", id="report-tab-confusion"),
        Binding("4", "tab('hist')", "Histograms", id="report-tab-hist"),
        Binding("5", "tab('worst')", "Worst images", id="report-tab-worst"),
        Binding("6", "tab('errors')", "Errors and comparison", id="report-tab-errors"),
        Binding("right_square_bracket,n", "pr_class(1)", "Next class", id="report-next-class"),
        Binding("left_square_bracket,p", "pr_class(-1)", "Previous class", id="report-prev-class"),
    ]

    CSS_PATH = "report.tcss"

    def __init__(
        self,
        ws: Workspace,
        set_name: str,
        run_name: str,
        *,
        iou: float = 0.5,
        conf: float = 0.25,
        top: int = 24,
        split: str | None = None,
        compare_with: str | None = None,
    ) -> None:
        super().__init__(classes="report-screen")
        self.compare_with = compare_with
        self.ws = ws
        self.set_name = set_name
        self.run_name = run_name
        self.iou, self.conf, self.top, self.split = iou, conf, top, split
        self.data: ReportData | None = None
        self.error: TuiopsError | None = None
        self.pr_index = 0

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.set_name} × {self.run_name}: computing…"), id="report-head")
        with TabbedContent(initial="ap", id="report-tabs"):
            for tab, title in zip(
                TABS,
                ("1 AP per class", "2 PR curve", "3 Confusion", "4 Histograms", "5 Worst images", "6 Errors"),
                strict=True,
            ):
                with TabPane(title, id=tab), VerticalScroll():
                    yield Static("", id=f"report-{tab}")
        yield Static(" Esc close  1-6 tabs  [ ] class of the PR curve ", id="report-keys")

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="report", exit_on_error=False)
    def _load(self) -> None:
        from tuiops.ops.report import report_data
        from tuiops.store import Store

        app: Any = self.app
        reader = getattr(app, "reader", None)
        store = reader() if reader is not None else Store(self.ws.db_path, readonly=True)
        try:
            data = report_data(
                self.ws,
                self.set_name,
                self.run_name,
                iou=self.iou,
                conf=self.conf,
                top=self.top,
                split=self.split,
                store=store,
                compare_with=self.compare_with,
            )
            self.post_message(ReportLoaded(data))
        except TuiopsError as exc:
            self.post_message(ReportLoaded(None, exc))
        finally:
            if reader is not None:
                app.release(store)
            else:
                store.close()

    @on(ReportLoaded)
    def _loaded(self, msg: ReportLoaded) -> None:
        self.data, self.error = msg.data, msg.error
        if msg.error is not None:
            text = msg.error.message + (f"\nhint: {msg.error.hint}" if msg.error.hint else "")
            self.query_one("#report-head", Static).update(Text(text, style="bold red"))
            show = getattr(self.app, "show_error", None)
            if show is not None:
                show(msg.error)
            return
        data = msg.data
        assert data is not None
        self.query_one("#report-head", Static).update(headline(data))
        self.query_one("#report-ap", Static).update(ap_bars(data))
        self.query_one("#report-confusion", Static).update(confusion_table(data))
        self.query_one("#report-hist", Static).update(
            Group(
                histogram(data.score_tp, data.score_edges, "#32cd32", title="scores of tp detections"),
                Text(""),
                histogram(data.score_fp, data.score_edges, "#ff3838", title="scores of fp detections"),
                Text(""),
                histogram(
                    np.sum(list(data.iou_counts.values()), axis=0),
                    data.iou_edges,
                    "#ffb21d",
                    title=f"IoU of matched pairs (tp, cls, loc; iou {data.iou:g}, low {data.low:g})",
                ),
            )
        )
        self.query_one("#report-worst", Static).update(worst_table(data))
        from tuiops.screens.report_errors import errors_view

        self.query_one("#report-errors", Static).update(errors_view(data))
        self._draw_pr()

    def _draw_pr(self) -> None:
        if self.data is None:
            return
        ks = self.data.pr_classes()
        k = ks[self.pr_index % len(ks)] if ks else None
        self.query_one("#report-pr", Static).update(pr_chart(self.data, k))

    @property
    def pr_class(self) -> str | None:
        """The class whose precision–recall curve is shown."""
        if self.data is None or not self.data.pr_classes():
            return None
        ks = self.data.pr_classes()
        return self.data.class_names[ks[self.pr_index % len(ks)]]

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_pr_class(self, step: int) -> None:
        self.pr_index += step
        self.query_one(TabbedContent).active = "pr"
        self._draw_pr()

    def action_close(self) -> None:
        self.dismiss(None)
