"""A reusable line chart: series over a shared x axis, with vertical markers.

Drawn by textual-plotext (braille lines, axes with ticks, a legend). Give it the data
with :meth:`LineChart.set_data`; it redraws to its size. Missing values (None, NaN) are
left out of a series' line. Vertical markers (e.g. pitstops, the best epoch) are lines
across the plot in their own colour, named after the title (unless ``marker_legend``
is off, for charts side by side that share a legend elsewhere).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from textual_plotext import PlotextPlot


@dataclass(frozen=True)
class Marker:
    """A vertical line at ``x``: ``label`` names it in the subtitle."""

    x: float
    label: str
    color: str = "orange"


#: Colours given to series in order (plotext colour names).
PALETTE = ("cyan", "orange", "magenta", "green", "red", "blue", "yellow", "white")


def _points(xs: Sequence[float], ys: Sequence[float | None]) -> tuple[list[float], list[float]]:
    px, py = [], []
    for x, y in zip(xs, ys, strict=False):
        if y is None or (isinstance(y, float) and math.isnan(y)):
            continue
        px.append(float(x))
        py.append(float(y))
    return px, py


class LineChart(PlotextPlot):
    """Line series over a shared x axis, with vertical markers and an empty-state text."""

    DEFAULT_CSS = """
    LineChart {
        width: 1fr;
        height: 1fr;
        min-height: 6;
    }
    """

    def __init__(
        self,
        title: str = "",
        *,
        xlabel: str = "",
        y_range: tuple[float, float] | None = None,
        empty: str = "no data yet",
        marker_legend: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.title = title
        self.xlabel = xlabel
        self.y_range = y_range
        self.empty = empty
        self.marker_legend = marker_legend
        #: The series shown now, by label (for tests and the help line).
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.markers: list[Marker] = []
        self._draw([], {}, [])

    def set_data(
        self,
        xs: Sequence[float],
        series: Mapping[str, Sequence[float | None]],
        *,
        markers: Sequence[Marker] = (),
        colors: Mapping[str, str] | None = None,
    ) -> None:
        """Show ``series`` (label → y per x) over ``xs`` with vertical ``markers``, and redraw."""
        self._draw(xs, series, markers, colors or {})
        self.refresh()

    def _draw(
        self,
        xs: Sequence[float],
        series: Mapping[str, Sequence[float | None]],
        markers: Sequence[Marker],
        colors: Mapping[str, str] | None = None,
    ) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.title(self.title)
        if self.xlabel:
            plt.xlabel(self.xlabel)
        self.series = {}
        self.markers = list(markers)
        drawn = False
        for i, (label, ys) in enumerate(series.items()):
            px, py = _points(xs, ys)
            self.series[label] = list(zip(px, py, strict=True))
            if not px:
                continue
            color = (colors or {}).get(label, PALETTE[i % len(PALETTE)])
            if len(px) == 1:
                plt.scatter(px, py, label=label, color=color, marker="braille")
            else:
                plt.plot(px, py, label=label, color=color, marker="braille")
            drawn = True
        if not drawn:
            plt.title(f"{self.title} — {self.empty}" if self.title else self.empty)
            return
        allx = [x for pts in self.series.values() for x, _ in pts]
        lo, hi = min(allx), max(allx)
        seen: dict[str, str] = {}
        for m in markers:
            plt.vline(m.x, m.color)
            seen.setdefault(m.label, m.color)
            lo, hi = min(lo, m.x), max(hi, m.x)
        if hi == lo:
            hi = lo + 1
        plt.xlim(lo, hi)
        if self.y_range is not None:
            plt.ylim(*self.y_range)
        if seen and self.marker_legend:
            plt.title(f"{self.title}  ({', '.join(f'{c}: {lab}' for lab, c in seen.items())})")
