"""The report screen's errors tab: TIDE's bars, the reliability table and the comparison with an earlier run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tuiops.screens.report import hbar

if TYPE_CHECKING:
    from tuiops.ops.report import ReportData

_LABELS = {
    "cls": "classification",
    "loc": "localisation",
    "both": "both",
    "dupe": "duplicate",
    "bkg": "background",
    "miss": "missed",
    "fp": "all false positives",
    "fn": "all false negatives",
}


def tide_bars(data: ReportData, width: int = 40) -> Table:
    """The AP50 points each error type costs, as bars (their scale: the largest)."""
    tide = data.tide
    t = Table(box=None, padding=(0, 1), header_style="bold", title_justify="left")
    t.title = f"TIDE errors: AP50 {100 * tide.ap:.2f}, dAP in AP50 points if fixed" if tide else "TIDE errors"
    t.add_column("error", no_wrap=True)
    t.add_column("dAP", no_wrap=True)
    t.add_column("", justify="right", no_wrap=True)
    t.add_column("count", justify="right", no_wrap=True)
    if tide is None:
        return t
    top = max(max(tide.delta_ap.values()), 1e-9)
    for k, label in _LABELS.items():
        v = tide.delta_ap[k]
        c = tide.counts.get(k)
        t.add_row(
            label,
            Text(hbar(v / top, width), style="#ff3838" if k in ("fp", "fn") else "#ffb21d"),
            f"{100 * v:.2f}",
            "" if c is None else f"{c:,}",
        )
    return t


def reliability_table(data: ReportData, width: int = 30) -> RenderableType:
    """Accuracy against mean score per score bin, with ECE and MCE."""
    cal = data.calibration
    if cal is None:
        return Text("calibration: " + ("; ".join(data.analysis_notes) or "not computed"), style="dim")
    t = Table(box=None, padding=(0, 1), header_style="bold", title_justify="left")
    t.title = (
        f"calibration at IoU {cal.iou:g}: ECE {cal.ece:.4f}, MCE {cal.mce:.4f} ({cal.n_dets:,} detections)"
    )
    for c in ("score", "dets", "accuracy", "", "mean score"):
        t.add_column(c, justify="left" if c in ("score", "accuracy") else "right", no_wrap=True)
    for b in cal.bins:
        has = b["count"] > 0
        t.add_row(
            f"{b['lower']:.2f}–{b['upper']:.2f}",
            f"{b['count']:,}",
            Text(hbar(b["accuracy"], width), style="#1e90ff") if has else "",
            f"{b['accuracy']:.3f}" if has else "–",
            f"{b['confidence']:.3f}" if has else "–",
        )
    return t


def compare_table(data: ReportData, width: int = 24) -> RenderableType:
    """AP per class before and after (what got worse first), TIDE's changes and the images that changed most."""
    cmp = data.compare
    if cmp is None:
        return Text(
            "no earlier run to compare with (a pitstop's run is compared with the previous pitstop's)",
            style="dim",
        )
    iv = cmp.ci.get("map")
    head = Text(
        f"{cmp.run_a} → {cmp.run_b}: mAP {cmp.stats_a['map']:.3f} → {cmp.stats_b['map']:.3f} "
        f"({cmp.deltas['map']:+.3f}"
        + (
            f", {round(100 * cmp.confidence)}% interval [{iv['lower']:+.3f}, {iv['upper']:+.3f}]"
            if iv
            else ""
        )
        + f") on {cmp.images:,} images",
        style="bold",
    )
    t = Table(box=None, padding=(0, 1), header_style="bold")
    for c in ("class", "A", "B", "B − A", "", "interval"):
        t.add_column(c, justify="left" if c in ("class", "") else "right", no_wrap=True)
    scale = max((abs(r["delta"]) for r in cmp.per_class), default=1.0) or 1.0
    for r in sorted(cmp.per_class, key=lambda r: r["delta"]):
        ci = r.get("ci")
        t.add_row(
            r["class"],
            "–" if r["ap_a"] < 0 else f"{r['ap_a']:.3f}",
            "–" if r["ap_b"] < 0 else f"{r['ap_b']:.3f}",
            f"{r['delta']:+.3f}",
            Text(hbar(abs(r["delta"]) / scale, width), style="#ff3838" if r["delta"] < 0 else "#32cd32"),
            "" if not ci or ci["lower"] != ci["lower"] else f"[{ci['lower']:+.3f}, {ci['upper']:+.3f}]",
        )
    td = Table(box=None, padding=(0, 1), header_style="bold", title="TIDE dAP, A → B", title_justify="left")
    for c in ("error", "A", "B", "change"):
        td.add_column(c, justify="left" if c == "error" else "right", no_wrap=True)
    if cmp.tide_a is not None and cmp.tide_b is not None:
        for k, label in _LABELS.items():
            td.add_row(
                label,
                f"{100 * cmp.tide_a.delta_ap[k]:.2f}",
                f"{100 * cmp.tide_b.delta_ap[k]:.2f}",
                f"{100 * cmp.tide_deltas[k]:+.2f}",
            )
    ti = Table(
        box=None, padding=(0, 1), header_style="bold", title="images that changed most", title_justify="left"
    )
    for c in ("key", "f1 A", "f1 B", "cost A", "cost B"):
        ti.add_column(c, justify="left" if c == "key" else "right", no_wrap=True)
    for r in cmp.changed:
        ti.add_row(
            str(r["key"]), f"{r['f1_a']:.3f}", f"{r['f1_b']:.3f}", f"{r['cost_a']:.2f}", f"{r['cost_b']:.2f}"
        )
    return Group(head, t, Text(""), td, Text(""), ti)


def errors_view(data: ReportData) -> Group:
    """The whole errors tab."""
    return Group(tide_bars(data), Text(""), reliability_table(data), Text(""), compare_table(data))
