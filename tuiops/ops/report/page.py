"""The report's HTML page."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.ops.report.model import CATEGORIES, GENERATOR, MATCH_CHARTS, ReportData

if TYPE_CHECKING:
    pass


# -- the page -------------------------------------------------------------------------------------
_HEAD_LABELS = {
    "map": "mAP@[.5:.95]",
    "map50": "mAP50",
    "map75": "mAP75",
    "map_small": "mAP small",
    "map_medium": "mAP medium",
    "map_large": "mAP large",
    "ar1": "AR@1",
    "ar10": "AR@10",
    "ar100": "AR@100",
    "ar_small": "AR small",
    "ar_medium": "AR medium",
    "ar_large": "AR large",
}
_CSS = """
body{font-family:"DejaVu Sans",system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f3f5f8}td.name,th.name{text-align:left}.muted{color:#777}
img.chart{max-width:100%;border:1px solid #eee}
.worst{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:1em}
.worst figure{margin:0}.worst img{width:100%;border:1px solid #ccc}
.worst figcaption{font-size:.85em}
"""


def _num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and (np.isnan(v) or v < 0)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return f"{int(v):,}"


def _head(data: ReportData) -> list[str]:
    """The page's head and title, and the table of COCO metrics."""
    e = html.escape
    s = data.stats
    title = f"{data.set_name} × {data.run_name}" + (f" [{data.split}]" if data.split else "")
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta name="generator" content="{GENERATOR}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>tuiops report: {e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Label set <q>{e(data.set_name)}</q> × detection run <q>{e(data.run_name)}</q>"
        + (f" — split <q>{e(data.split)}</q>" if data.split else "")
        + "</h1>",
        '<h2 id="metrics">COCO metrics</h2>',
        '<table id="headline"><tr>'
        + "".join(f'<th data-key="{k}">{e(v)}</th>' for k, v in _HEAD_LABELS.items())
        + "</tr><tr>"
        + "".join(f'<td data-key="{k}">{_num(s[k])}</td>' for k in _HEAD_LABELS)
        + "</tr></table>",
    ]


def _notes(data: ReportData) -> list[str]:
    """What was evaluated and left out, and what the match counted."""
    e = html.escape
    ev = data.eval
    notes = [
        f"{ev.images:,} image(s), {ev.labels:,} label(s), {ev.dets:,} detection(s) evaluated "
        "(COCO bbox, equal to pycocotools; – where nothing is measured)."
    ]
    if ev.images_not_in_run:
        notes.append(
            f"The run did not process {ev.images_not_in_run:,} image(s) of the set: "
            + (
                "their labels count as missed."
                if ev.images_from == "all"
                else "they are left out, as in the match."
            )
        )
    if ev.dets_outside_set:
        notes.append(f"{ev.dets_outside_set:,} detection(s) on images outside the set are left out.")
    t = data.totals
    notes.append(
        f"Confusion, histograms and worst images: {e(data.match_source)} at IoU {data.iou:g} "
        f"(loc from {data.low:g}), conf {data.conf:g}, over {data.compared_images:,} image(s) in both the set "
        f"and the run: tp {t['tp']:,}, loc {t['loc']:,}, cls {t['cls']:,}, dup {t['dup']:,}, fp {t['fp']:,}, "
        f"fn {t['fn']:,}."
    )
    return [f"<p>{n if n.startswith('Confusion') else e(n)}</p>" for n in notes]


def _splits_table(data: ReportData) -> list[str]:
    """The stored match's counts per split (nothing without splits)."""
    e = html.escape
    if not data.splits:
        return []
    cols = ("images", "labels", "dets", *CATEGORIES, "precision", "recall", "f1")
    out = [
        '<h2 id="splits">Per split (stored match)</h2><table id="split-table"><tr><th class="name">split</th>'
    ]
    out.append("".join(f"<th>{c}</th>" for c in cols) + "</tr>")
    for name, c in data.splits.items():
        out.append(
            f'<tr><td class="name">{e(str(name))}</td>'
            + "".join(f"<td>{_num(c.get(k))}</td>" for k in cols)
            + "</tr>"
        )
    out.append("</table>")
    return out


def _charts() -> list[str]:
    """Every chart with its caption."""
    e = html.escape
    captions = {
        "ap_per_class.png": "AP@[.5:.95] and AP50 per class",
        "pr_curves.png": "Precision–recall curves at IoU 0.5 (COCO's 101-point interpolated precision), "
        "with the all-class means",
        "confusion.png": "Confusion matrix of the match: rows are label classes, columns detected classes",
        "scores.png": "Scores of true-positive and false-positive detections",
        "iou.png": "IoU of matched label–detection pairs",
    }
    out = ['<h2 id="charts">Charts</h2>']
    for name in MATCH_CHARTS:
        out.append(
            f'<figure><img class="chart" src="{name}" alt="{e(captions[name])}">'
            f"<figcaption>{e(captions[name])}</figcaption></figure>"
        )
    return out


def _per_class_table(data: ReportData) -> list[str]:
    """AP, match counts, precision and recall per class."""
    e = html.escape
    pcols = (
        "labels",
        "dets",
        "ap",
        "ap50",
        "ap75",
        "tp",
        "loc",
        "cls",
        "fn",
        "fp",
        "dup",
        "precision",
        "recall",
    )
    out = ['<h2 id="classes">Per class</h2><table id="per-class"><tr><th class="name">class</th>']
    out.append("".join(f"<th>{c}</th>" for c in pcols) + "</tr>")
    for r in data.per_class.iter_rows(named=True):
        out.append(
            f'<tr data-class="{e(r["class"])}"><td class="name">{e(r["class"])}</td>'
            + "".join(f'<td data-key="{c}">{_num(r[c])}</td>' for c in pcols)
            + "</tr>"
        )
    out.append("</table>")
    out.append(
        "<p class=muted>dets: confident detections (score ≥ conf) of the class; cls: labels of the class found "
        "as another class; precision and recall at the match's IoU and conf.</p>"
    )
    return out


def _worst_images(worst: list[dict[str, Any]]) -> list[str]:
    """The worst images painted, each with its counts."""
    e = html.escape
    out = [f'<h2 id="worst">Worst images ({len(worst)})</h2>']
    if not worst:
        return [*out, "<p>None.</p>"]
    out.append(
        "<p class=muted>f1 ascending, then cost descending. Labels solid with the class on top; "
        "confident detections dashed with class and score.</p><div class=worst>"
    )
    for w in worst:
        split = f" · {e(str(w['split']))}" if w.get("split") else ""
        note = f'<br><span class="muted">{e(w["note"])}</span>' if w.get("note") else ""
        out.append(
            f'<figure><a href="{e(w["file"])}"><img src="{e(w["file"])}" alt="{e(str(w["key"]))}" '
            'loading="lazy"></a>'
            f"<figcaption><b>#{w['rank']} {e(str(w['key']))}</b>{split}<br>"
            f"f1 {w['f1']:.3f} · precision {w['precision']:.3f} · recall {w['recall']:.3f} · "
            f"cost {w['cost']:.3f}<br>labels {w['n_labels']} · dets {w['n_dets']} · tp {w['tp']} · "
            f"loc {w['loc']} · cls {w['cls']} · dup {w['dup']} · fp {w['fp']} · fn {w['fn']}{note}"
            "</figcaption></figure>"
        )
    out.append("</div>")
    return out


def render_html(data: ReportData, worst: list[dict[str, Any]]) -> str:
    """The report page: head numbers, every chart, the per-class table, the error analysis and the worst
    images."""
    from tuiops.ops.report.analysis import analysis_html

    out = [
        *_head(data),
        *_notes(data),
        *_splits_table(data),
        *_charts(),
        *_per_class_table(data),
        *analysis_html(data),
        *_worst_images(worst),
        "</body></html>\n",
    ]
    return "\n".join(out)
