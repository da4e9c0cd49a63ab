"""The error analyses a report shows: TIDE's breakdown, the calibration of the scores and the comparison with another run.

:func:`analysis_parts` computes them (from :mod:`tuiops.ops.analysis`, the same numbers as
``tuiops eval --tide --calibration`` and ``tuiops compare``); :func:`chart_tide`,
:func:`chart_reliability` and :func:`chart_compare` draw them; :func:`analysis_html` is
their part of the page.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import TuiopsError
from tuiops.ops.report.charts import chart_frame, png_of, title_of
from tuiops.ops.report.model import ReportData

if TYPE_CHECKING:
    from tuiops.workspace import Workspace

#: The compare chart's file (written when the report compares with another run).
COMPARE_CHART = "compare.png"
TIDE_LABELS = {
    "cls": "classification",
    "loc": "localisation",
    "both": "both",
    "dupe": "duplicate",
    "bkg": "background",
    "miss": "missed",
    "fp": "all false pos.",
    "fn": "all false neg.",
}


def analysis_parts(
    ws: Workspace,
    set_name: str,
    run_name: str,
    *,
    items: Any = None,
    compare_with: str | None = None,
    samples: int = 200,
) -> tuple[Any, Any, Any, list[str]]:
    """TIDE, calibration (10 bins) and the comparison with run ``compare_with`` (or None); notes on what was left out."""
    from tuiops.ops.analysis import calibration, coco_cells, compare_runs, load_inputs, tide_errors

    notes: list[str] = []
    inp = load_inputs(ws, set_name, run_name, items=items)
    cells = coco_cells(
        inp.labels, inp.dets, image_ids=inp.items, class_ids=inp.class_ids, image_order=inp.image_order
    )
    tide = tide_errors(cells, class_names=inp.class_names)
    cal = None
    try:
        cal = calibration(cells, 10, class_names=inp.class_names)
    except TuiopsError as exc:
        notes.append(f"no calibration: {exc.message}")
    cmp = None
    if compare_with is not None:
        cmp = compare_runs(ws, set_name, compare_with, run_name, items=items, samples=samples, top=12)
    return tide, cal, cmp, notes


def chart_tide(data: ReportData) -> bytes:
    """Horizontal bars: the AP50 points each error type costs (TIDE), and the two oracles apart."""
    with chart_frame(8, 4.2) as fig:
        ax = fig.add_subplot()
        tide = data.tide
        keys = list(TIDE_LABELS)
        vals = np.array([100 * tide.delta_ap[k] if tide is not None else 0.0 for k in keys])
        colors = ["#7b61c9", "#e0a21b", "#b0579b", "#4b8bbe", "#d64541", "#777777", "#aa3333", "#555555"]
        y = np.arange(len(keys))
        ax.barh(y, vals, color=colors)
        for yi, v, k in zip(y, vals, keys, strict=True):
            count = "" if tide is None else tide.counts.get(k)
            ax.text(
                v,
                yi,
                f" {v:.2f}" + (f"  ({count:,})" if isinstance(count, int) else ""),
                va="center",
                fontsize=8,
            )
        ax.set_yticks(y, [TIDE_LABELS[k] for k in keys])
        ax.invert_yaxis()
        ax.axhline(5.5, color="#999", lw=0.8)
        ax.set_xlabel("dAP: AP50 points gained if fixed (count of errors)")
        base = "" if tide is None else f", AP50 {100 * tide.ap:.1f}"
        ax.set_title(title_of(data, f"TIDE errors (fg IoU 0.5, bg 0.1{base})"))
        ax.set_xlim(0, max(1.0, float(vals.max()) * 1.25))
        return png_of(fig)


def chart_reliability(data: ReportData) -> bytes:
    """Reliability diagram: accuracy per score bin against the diagonal, detections per bin below."""
    with chart_frame(6.5, 6) as fig:
        top, bottom = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
        cal = data.calibration
        top.plot([0, 1], [0, 1], color="#999", ls=":", label="perfect calibration")
        if cal is not None:
            bins = cal.bins
            lo = np.array([b["lower"] for b in bins])
            w = np.array([b["upper"] - b["lower"] for b in bins])
            acc = np.array([b["accuracy"] for b in bins])
            conf = np.array([b["confidence"] for b in bins])
            count = np.array([b["count"] for b in bins])
            has = count > 0
            top.bar(
                lo[has],
                acc[has],
                width=w[has],
                align="edge",
                color="#4b8bbe",
                edgecolor="white",
                label="accuracy",
            )
            top.hlines(conf[has], lo[has], lo[has] + w[has], colors="#d64541", lw=2.5, label="mean score")
            bottom.bar(lo, count, width=w, align="edge", color="#777", edgecolor="white")
            top.set_title(title_of(data, f"Reliability at IoU 0.5: ECE {cal.ece:.3f}, MCE {cal.mce:.3f}"))
        else:
            top.set_title(title_of(data, "Reliability: scores outside [0, 1]"))
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_ylabel("share of true positives")
        top.legend(loc="upper left")
        bottom.set_xlabel("detection score")
        bottom.set_ylabel("detections")
        return png_of(fig)


def chart_compare(data: ReportData) -> bytes:
    """The comparison with another run: AP per class before and after with the difference and its interval, and TIDE's changes."""
    cmp = data.compare
    rows = [] if cmp is None else sorted(cmp.per_class, key=lambda r: r["delta"])
    n = max(len(rows), 1)
    with chart_frame(11, 1.6 + 0.36 * n) as fig:
        left, right = fig.subplots(1, 2, width_ratios=(3, 2))
        y = np.arange(len(rows))
        d = np.array([100 * r["delta"] for r in rows])
        lo = np.array([100 * r["ci"]["lower"] if "ci" in r else np.nan for r in rows])
        hi = np.array([100 * r["ci"]["upper"] if "ci" in r else np.nan for r in rows])
        left.barh(y, d, color=np.where(d < 0, "#d64541", "#2e9d4a"))
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            left.errorbar(
                d[ok],
                y[ok],
                xerr=np.vstack((d[ok] - lo[ok], hi[ok] - d[ok])),
                fmt="none",
                ecolor="#333",
                capsize=2,
            )
        left.set_yticks(
            y, [f"{r['class']} ({100 * max(r['ap_a'], 0):.1f} → {100 * max(r['ap_b'], 0):.1f})" for r in rows]
        )
        left.invert_yaxis()
        left.axvline(0, color="#333", lw=0.8)
        left.set_xlabel("AP@[.5:.95] points, B − A (bootstrap interval)")
        title = (
            "Run vs run" if cmp is None else f"{cmp.run_a} → {cmp.run_b}: mAP {cmp.deltas['map'] * 100:+.2f}"
        )
        left.set_title(title)
        keys = list(TIDE_LABELS)
        td = (
            np.array([100 * cmp.tide_deltas.get(k, 0.0) for k in keys])
            if cmp is not None
            else np.zeros(len(keys))
        )
        yy = np.arange(len(keys))
        right.barh(yy, td, color=np.where(td > 0, "#d64541", "#2e9d4a"))
        right.set_yticks(yy, [TIDE_LABELS[k] for k in keys])
        right.invert_yaxis()
        right.axvline(0, color="#333", lw=0.8)
        right.set_xlabel("dAP change (AP50 points; > 0: costs more)")
        right.set_title("TIDE, B − A")
        return png_of(fig)


def _f(v: float, digits: int = 3) -> str:
    return "–" if v != v or v < -0.5 else f"{v:.{digits}f}"


def analysis_html(data: ReportData) -> list[str]:
    """The page's sections on TIDE, calibration and the comparison (with their charts)."""
    e = html.escape
    out: list[str] = []
    tide = data.tide
    if tide is not None:
        out.append('<h2 id="tide">Errors (TIDE)</h2>')
        out.append(
            f"<p>AP50 {100 * tide.ap:.2f}. dAP: the AP50 points gained if every error of the type were fixed "
            "(foreground IoU 0.5, background 0.1), equal to hotcoco's <code>tide_errors</code>.</p>"
        )
        out.append('<table id="tide-table"><tr><th class="name">error</th><th>dAP</th><th>count</th></tr>')
        for k, label in TIDE_LABELS.items():
            c = tide.counts.get(k)
            out.append(
                f'<tr data-key="{k}"><td class="name">{e(label)}</td><td>{100 * tide.delta_ap[k]:.2f}</td>'
                f"<td>{'' if c is None else f'{c:,}'}</td></tr>"
            )
        out.append("</table>")
        out.append(
            '<figure><img class="chart" src="tide.png" alt="TIDE errors"><figcaption>TIDE errors</figcaption></figure>'
        )
    cal = data.calibration
    out.append('<h2 id="calibration">Calibration</h2>')
    if cal is not None:
        out.append(
            f"<p>{cal.n_dets:,} detection(s) at IoU {cal.iou:g}: ECE {cal.ece:.4f}, MCE {cal.mce:.4f}.</p>"
            '<table id="reliability"><tr><th class="name">score</th><th>dets</th><th>confidence</th>'
            "<th>accuracy</th></tr>"
        )
        for b in cal.bins:
            out.append(
                f'<tr><td class="name">{b["lower"]:.2f}–{b["upper"]:.2f}</td><td>{b["count"]:,}</td>'
                f"<td>{_f(b['confidence']) if b['count'] else '–'}</td><td>{_f(b['accuracy']) if b['count'] else '–'}</td></tr>"
            )
        out.append("</table>")
    out.append(
        '<figure><img class="chart" src="reliability.png" alt="Reliability diagram">'
        "<figcaption>Reliability diagram</figcaption></figure>"
    )
    out += [f"<p class=muted>{e(n)}</p>" for n in data.analysis_notes]
    cmp = data.compare
    if cmp is not None:
        out.append(f'<h2 id="compare">Run vs run: {e(cmp.run_a)} → {e(cmp.run_b)}</h2>')
        ci = cmp.ci.get("map")
        out.append(
            f"<p>{cmp.images:,} image(s) both runs processed. mAP {_f(cmp.stats_a['map'])} → {_f(cmp.stats_b['map'])} "
            f"({cmp.deltas['map']:+.4f}"
            + (
                f"; {round(100 * cmp.confidence)}% interval [{ci['lower']:+.4f}, {ci['upper']:+.4f}] over "
                f"{cmp.samples} bootstrap resamplings of the images, seed {cmp.seed}"
                if ci
                else ""
            )
            + ").</p>"
        )
        out.append(
            '<table id="compare-classes"><tr><th class="name">class</th><th>AP A</th><th>AP B</th><th>B − A</th>'
            "<th>interval</th></tr>"
        )
        for r in sorted(cmp.per_class, key=lambda r: r["delta"]):
            iv = r.get("ci")
            interval = (
                "" if not iv or iv["lower"] != iv["lower"] else f"[{iv['lower']:+.3f}, {iv['upper']:+.3f}]"
            )
            out.append(
                f'<tr data-class="{e(r["class"])}"><td class="name">{e(r["class"])}</td><td>{_f(r["ap_a"])}</td>'
                f"<td>{_f(r['ap_b'])}</td><td>{r['delta']:+.3f}</td><td>{interval}</td></tr>"
            )
        out.append("</table>")
        out.append(
            f'<figure><img class="chart" src="{COMPARE_CHART}" alt="Run vs run">'
            "<figcaption>AP per class, B − A, and the change of TIDE's errors</figcaption></figure>"
        )
        if cmp.changed:
            out.append(
                '<table id="changed-images"><tr><th class="name">image</th><th>f1 A</th><th>f1 B</th><th>cost A</th><th>cost B</th></tr>'
            )
            for r in cmp.changed:
                out.append(
                    f'<tr><td class="name">{e(str(r["key"]))}</td><td>{r["f1_a"]:.3f}</td><td>{r["f1_b"]:.3f}</td>'
                    f"<td>{r['cost_a']:.3f}</td><td>{r['cost_b']:.3f}</td></tr>"
                )
            out.append("</table>")
    return out
