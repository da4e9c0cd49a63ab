"""The charts of a report, drawn with matplotlib into PNG bytes."""

from __future__ import annotations

import contextlib
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.ops.report.model import ReportData

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType


# -- charts ---------------------------------------------------------------------------------------
_RC: dict[RcKeyType, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
}
_TP, _FP, _LOC, _CLS = "#2e9d4a", "#d64541", "#e0a21b", "#7b61c9"


@contextlib.contextmanager
def _figure(w: float, h: float) -> Any:
    """A matplotlib figure on the Agg canvas (no pyplot, no global backend)."""
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with mpl.rc_context(_RC):
        fig = Figure(figsize=(w, h), layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def chart_frame(w: float, h: float) -> contextlib.AbstractContextManager[Any]:
    """A matplotlib figure on the Agg canvas in the report's style (for charts drawn elsewhere)."""
    return _figure(w, h)


def png_of(fig: Any) -> bytes:
    """The figure as PNG bytes."""
    return _png(fig)


def title_of(data: ReportData, what: str) -> str:
    """A chart's title: what it shows, for which set and run."""
    return _title(data, what)


def _title(data: ReportData, what: str) -> str:
    split = f" [{data.split}]" if data.split else ""
    return f"{what}: {data.set_name} × {data.run_name}{split}"


def chart_ap(data: ReportData) -> bytes:
    """Horizontal bars: AP@[.5:.95] and AP50 per class (classes without labels say so)."""
    pc = data.per_class
    n = max(pc.height, 1)
    with _figure(8, 1.2 + 0.38 * n) as fig:
        ax = fig.add_subplot()
        y = np.arange(pc.height)
        ap = np.clip(pc["ap"].to_numpy(), 0, None)
        ap50 = np.clip(pc["ap50"].to_numpy(), 0, None)
        ax.barh(y - 0.2, ap50, height=0.4, color="#8fb8e8", label="AP50")
        ax.barh(y + 0.2, ap, height=0.4, color="#1f5fa8", label="AP@[.5:.95]")
        for i, r in enumerate(pc.iter_rows(named=True)):
            if r["ap"] < 0:
                ax.text(0.01, i, "no labels", va="center", color="#777")
            else:
                ax.text(max(r["ap50"], r["ap"]) + 0.01, i, f"{r['ap']:.3f} / {r['ap50']:.3f}", va="center")
        ax.set_yticks(y, pc["class"].to_list())
        ax.invert_yaxis()
        ax.set_xlim(0, 1.12)
        ax.set_xlabel("average precision")
        s = data.stats
        ax.set_title(_title(data, f"AP per class (mAP {s['map']:.3f}, mAP50 {s['map50']:.3f})"))
        fig.legend(loc="outside lower center", ncols=2, title="numbers: AP@[.5:.95] / AP50")
        return _png(fig)


def chart_pr(data: ReportData) -> bytes:
    """Precision–recall at IoU 0.5, one line per class with labels, plus the all-class means."""
    import matplotlib as mpl

    r = data.recall_points
    with _figure(8, 6) as fig:
        ax = fig.add_subplot()
        cmap = mpl.colormaps["tab20"]
        ks = data.pr_classes()
        for j, k in enumerate(ks):
            p = data.pr50[k]
            ax.plot(r, p, lw=1.2, color=cmap(j % 20), label=f"{data.class_names[k]} (AP50 {p.mean():.3f})")
        if ks:
            mean50 = data.pr50[ks].mean(axis=0)
            mean_all = data.pr_mean[ks].mean(axis=0)
            ax.plot(r, mean50, lw=2.6, color="black", label=f"all classes (mAP50 {mean50.mean():.3f})")
            ax.plot(
                r,
                mean_all,
                lw=1.6,
                ls="--",
                color="black",
                label=f"all classes, IoU .50:.95 (mAP {mean_all.mean():.3f})",
            )
        else:
            ax.text(0.5, 0.5, "no labels: no curve", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision (interpolated, COCO)")
        ax.set_title(_title(data, "Precision–recall at IoU 0.5"))
        if ks:
            ax.legend(loc="lower left", fontsize=8)
        return _png(fig)


def chart_confusion(data: ReportData) -> bytes:
    """The confusion matrix: counts, coloured by the share of each row."""
    rows, cols, m = data.confusion_view()
    n = len(rows)
    side = min(max(5.0, 0.55 * n + 2.5), 30.0)
    with _figure(side + 1, side) as fig:
        ax = fig.add_subplot()
        ax.grid(False)
        share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        if n <= 40:
            for i in range(n):
                for j in range(n):
                    if m[i, j]:
                        color = "white" if share[i, j] > 0.55 else "black"
                        ax.text(j, i, f"{m[i, j]:,}", ha="center", va="center", fontsize=8, color=color)
        ax.set_xticks(np.arange(n), cols, rotation=45, ha="right")
        ax.set_yticks(np.arange(n), rows)
        ax.set_xlabel("detected class (loc: found but badly placed, missed: fn)")
        ax.set_ylabel("label class (dup: second detection, extra: fp)")
        ax.set_title(
            _title(data, f"Confusion at IoU {data.iou:g}, conf {data.conf:g}") + f"\n{data.match_source}"
        )
        fig.colorbar(im, ax=ax, shrink=0.7, label="share of the row")
        return _png(fig)


def chart_scores(data: ReportData) -> bytes:
    """Histogram of the scores of tp and fp detections."""
    e = data.score_edges
    with _figure(8, 4.5) as fig:
        ax = fig.add_subplot()
        w = (e[1] - e[0]) * 0.45
        mid = e[:-1]
        ax.bar(
            mid + w * 0.1,
            data.score_tp,
            width=w,
            align="edge",
            color=_TP,
            label=f"tp ({int(data.score_tp.sum()):,})",
        )
        ax.bar(
            mid + w * 1.1,
            data.score_fp,
            width=w,
            align="edge",
            color=_FP,
            label=f"fp ({int(data.score_fp.sum()):,})",
        )
        ax.axvline(data.conf, color="#444", ls=":", label=f"conf {data.conf:g}")
        ax.set_xlim(0, 1)
        ax.set_xlabel("detection score")
        ax.set_ylabel("detections")
        ax.set_title(_title(data, f"Scores of tp and fp detections (IoU {data.iou:g})"))
        ax.legend()
        return _png(fig)


def chart_iou(data: ReportData) -> bytes:
    """Stacked histogram of the IoU of matched pairs: tp, cls, loc."""
    e = data.iou_edges
    with _figure(8, 4.5) as fig:
        ax = fig.add_subplot()
        bottom = np.zeros(len(e) - 1)
        for name, color in (("tp", _TP), ("cls", _CLS), ("loc", _LOC)):
            counts = data.iou_counts[name]
            ax.bar(
                e[:-1],
                counts,
                width=e[1] - e[0],
                align="edge",
                bottom=bottom,
                color=color,
                edgecolor="white",
                label=f"{name} ({int(counts.sum()):,})",
            )
            bottom = bottom + counts
        ax.axvline(data.iou, color="#444", ls=":", label=f"iou {data.iou:g}")
        ax.axvline(data.low, color="#999", ls=":", label=f"low {data.low:g}")
        ax.set_xlim(0, 1)
        ax.set_xlabel("IoU of label and detection")
        ax.set_ylabel("pairs")
        ax.set_title(_title(data, f"IoU of matched pairs (conf {data.conf:g})"))
        ax.legend()
        return _png(fig)


CHART_FUNCS = (chart_ap, chart_pr, chart_confusion, chart_scores, chart_iou)
