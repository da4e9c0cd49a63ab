"""Run vs run: what got better and what got worse between two detection runs on one label set.

Both runs are evaluated on the same images (with ``images="processed"``, those of the
set that *both* runs processed). The answer holds:

- the 12 COCO numbers of each run and their differences, and the AP@[.5:.95] of each
  class in each run with its difference — equal to hotcoco's ``compare``;
- a paired bootstrap over images (``samples`` resamplings with replacement, seeded):
  for mAP, AP50 and each class's AP, the confidence interval of the difference, the
  share of resamplings where B is better and the standard error. A resampled image
  counts as many times as it was drawn (its detections and labels weigh that much);
- the TIDE breakdown of each run and the change of each error's dAP;
- the images whose match changed most: the per-image F1 of `tuiops match` (IoU 0.5,
  localisation from 0.1, detections from ``conf``) before and after, largest change first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.errors import UsageError
from tuiops.ops.analysis.cells import REC_POINTS, Cells, coco_cells
from tuiops.ops.analysis.inputs import EvalInputs, load_inputs
from tuiops.ops.analysis.tide import TideResult, tide_errors
from tuiops.ops.base import CancelToken, ProgressFn, Reporter

if TYPE_CHECKING:
    import polars as pl

    from tuiops.workspace import Workspace

#: COCO's IoU thresholds .50:.05:.95.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


@dataclass
class CompareResult:
    """The comparison of run ``run_a`` (before) with ``run_b`` (after); see the module doc."""

    set_name: str
    run_a: str
    run_b: str
    images: int
    stats_a: dict[str, float]
    stats_b: dict[str, float]
    per_class: list[dict[str, Any]]
    ci: dict[str, dict[str, float]]
    samples: int
    seed: int
    confidence: float
    tide_a: TideResult | None = None
    tide_b: TideResult | None = None
    changed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def deltas(self) -> dict[str, float]:
        return {k: self.stats_b[k] - self.stats_a[k] for k in self.stats_a}

    @property
    def tide_deltas(self) -> dict[str, float]:
        if self.tide_a is None or self.tide_b is None:
            return {}
        return {k: self.tide_b.delta_ap[k] - self.tide_a.delta_ap[k] for k in self.tide_a.delta_ap}

    def to_dict(self) -> dict[str, Any]:
        return {
            "set": self.set_name,
            "run_a": self.run_a,
            "run_b": self.run_b,
            "images": self.images,
            "stats_a": self.stats_a,
            "stats_b": self.stats_b,
            "deltas": self.deltas,
            "ci": self.ci,
            "samples": self.samples,
            "seed": self.seed,
            "confidence": self.confidence,
            "per_class": self.per_class,
            "tide_a": None if self.tide_a is None else self.tide_a.to_dict(),
            "tide_b": None if self.tide_b is None else self.tide_b.to_dict(),
            "tide_deltas": self.tide_deltas,
            "changed_images": self.changed,
        }


class _Weighted:
    """Per-class AP of one run's outcomes at one threshold with images weighted (a bootstrap resampling).

    Only counted detections (true or false positives) are kept: an ignored one changes no
    count. The precision envelope peaks at true positives and a recall point is first
    reached at one, so precision is read at the true positives alone, from the running
    weighted counts of all counted detections.
    """

    def __init__(self, cells: Cells) -> None:
        self.n_cat = k = len(cells.cats)
        keep = np.flatnonzero(cells.d_tp | cells.d_fp)
        cls = cells.d_cls[keep]
        self.img = np.searchsorted(cells.imgs, cells.d_item[keep])
        self.is_tp = cells.d_tp[keep]
        self.tp_pos = np.flatnonzero(self.is_tp)
        self.tp_cls = cls[self.tp_pos]
        starts = np.searchsorted(cls, np.arange(k + 1))
        self.before = starts[:-1] - 1  # the last counted detection before each class (−1: none)
        tp_starts = np.searchsorted(self.tp_cls, np.arange(k + 1))
        self.tp_ends = tp_starts[1:]
        self.tp_count = np.diff(tp_starts)
        counted = cells.g_counted
        self.g_img = np.searchsorted(cells.imgs, cells.g_item[counted])
        self.g_cls = cells.g_cls[counted]
        self.key = (REC_POINTS[None, :] + 2.0 * np.arange(k)[:, None]).ravel()
        self.off = 2.0 * (k - self.tp_cls)

    def class_ap(self, w: np.ndarray) -> np.ndarray:
        """AP of each class (−1 without labels) with image weights ``w``."""
        npig = np.bincount(self.g_cls, weights=w[self.g_img], minlength=self.n_cat)
        out = np.where(npig > 0, 0.0, -1.0)
        n = len(self.tp_pos)
        if n == 0:
            return out
        wd = w[self.img]
        all_cum = np.cumsum(wd)
        tp_cum = np.cumsum(wd * self.is_tp)

        def base(cum: np.ndarray) -> np.ndarray:
            at = cum[np.maximum(self.before, 0)]
            return np.repeat(np.where(self.before >= 0, at, 0.0), self.tp_count)

        tp = tp_cum[self.tp_pos] - base(tp_cum)
        seen = all_cum[self.tp_pos] - base(all_cum)
        pr = tp / (seen + np.spacing(1))
        npd = npig[self.tp_cls]
        rc = np.divide(tp, npd, out=np.zeros(n), where=npd > 0)
        # The envelope inside each class: a running maximum from the right, kept from leaking
        # across classes by an offset that grows towards the first class.
        env = np.maximum.accumulate((pr + self.off)[::-1])[::-1] - self.off
        at = np.searchsorted(rc + 2.0 * self.tp_cls, self.key, side="left").reshape(self.n_cat, -1)
        q = np.where(at < self.tp_ends[:, None], env[np.minimum(at, n - 1)], 0.0)
        has = npig > 0
        out[has] = q[has].mean(axis=1)
        return out


def _mean_defined(ap: np.ndarray) -> float:
    v = ap[ap > -1]
    return float(v.mean()) if v.size else -1.0


def bootstrap(
    cells_a: list[Cells], cells_b: list[Cells], *, samples: int, seed: int, confidence: float
) -> tuple[dict[str, dict[str, float]], dict[int, dict[str, float]]]:
    """Paired bootstrap over images of mAP, AP50 and per-class AP differences (B − A).

    ``cells_a``/``cells_b``: each run's outcomes at COCO's 10 thresholds, on the same images.
    Returns the intervals of the summary numbers and of each class (by class index).
    """
    wa = [_Weighted(c) for c in cells_a]
    wb = [_Weighted(c) for c in cells_b]
    n_img = len(cells_a[0].imgs)
    n_cat = len(cells_a[0].cats)
    rng = np.random.default_rng(seed)
    d_map = np.full(samples, np.nan)
    d_50 = np.full(samples, np.nan)
    d_cls = np.full((samples, n_cat), np.nan)
    for s in range(samples):
        w = (
            np.bincount(rng.integers(0, n_img, n_img), minlength=n_img).astype(np.float64)
            if n_img
            else np.zeros(0)
        )
        ap_a = np.stack([x.class_ap(w) for x in wa])
        ap_b = np.stack([x.class_ap(w) for x in wb])
        has = (ap_a[0] > -1) & (ap_b[0] > -1)
        if not has.any():
            continue
        ma, mb = ap_a[:, has].mean(axis=0), ap_b[:, has].mean(axis=0)
        d_map[s] = mb.mean() - ma.mean()
        d_50[s] = _mean_defined(ap_b[0]) - _mean_defined(ap_a[0])
        d_cls[s, has] = mb - ma
    summary = {"map": _interval(d_map, confidence), "map50": _interval(d_50, confidence)}
    per_class = {k: _interval(d_cls[:, k], confidence) for k in range(n_cat)}
    return (
        {k: v for k, v in summary.items() if v is not None},
        {k: v for k, v in per_class.items() if v is not None},
    )


def _interval(d: np.ndarray, confidence: float) -> dict[str, float] | None:
    """The interval of the differences ``d`` (NaN: a resampling without labels); None without any."""
    d = d[np.isfinite(d)]
    if d.size == 0:
        return None
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(d, [tail, 1.0 - tail])
    return {
        "lower": float(lo),
        "upper": float(hi),
        "prob_better": float((d > 0).mean()),
        "std_err": float(d.std(ddof=1)) if d.size > 1 else 0.0,
    }


def _image_changes(
    ws: Workspace, a: EvalInputs, b: EvalInputs, *, conf: float, top: int
) -> list[dict[str, Any]]:
    """The images whose match F1 changed most from run A to run B (ties: larger cost change first)."""
    import polars as pl

    from tuiops.ops.match import image_stats, match_frames
    from tuiops.ops.matching import member

    items = a.items
    labels = a.labels.filter(pl.Series(member(a.labels["item_id"].to_numpy(), items)))
    per_run = []
    for inp in (a, b):
        dets = inp.dets.filter(pl.Series(member(inp.dets["item_id"].to_numpy(), items)))
        objs = match_frames(labels, dets, iou=0.5, low=0.1, conf=conf)
        per_run.append(image_stats(objs, labels, dets, items, conf=conf))
    sa, sb = per_run
    keys = ws.store.read_frame(
        "SELECT id AS item_id, key FROM items ORDER BY id", (), {"item_id": pl.Int64, "key": pl.String}
    )
    cols = ["f1", "cost", "tp", "fp", "fn", "n_dets"]
    both = (
        sa.select("item_id", "n_labels", *cols)
        .join(sb.select("item_id", *cols), on="item_id", suffix="_b")
        .rename({c: f"{c}_a" for c in cols})
        .with_columns(
            (pl.col("f1_b") - pl.col("f1_a")).alias("d_f1"),
            (pl.col("cost_b") - pl.col("cost_a")).alias("d_cost"),
        )
        .filter((pl.col("d_f1") != 0) | (pl.col("d_cost") != 0))
        .sort([pl.col("d_f1").abs(), pl.col("d_cost").abs(), "item_id"], descending=[True, True, False])
        .head(top)
        .join(keys, on="item_id", how="left", maintain_order="left")
    )
    return both.to_dicts()


def compare_runs(
    ws: Workspace,
    set_name: str,
    run_a: str,
    run_b: str,
    *,
    items: Any = None,
    images: str = "processed",
    samples: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    conf: float = 0.25,
    top: int = 20,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> CompareResult:
    """Compare run ``run_b`` with run ``run_a`` on label set ``set_name`` (module doc)."""
    from tuiops.ops.evaluate import STAT_KEYS, coco_evaluate

    if run_a == run_b:
        raise UsageError(f"--run {run_a} is given twice", hint="compare two different runs: --run A --run B")
    if samples < 0:
        raise UsageError(f"--samples {samples}: must be ≥ 0", hint="e.g. --samples 200 (0: no intervals)")
    if not 0 < confidence < 1:
        raise UsageError(f"--confidence {confidence}: must be in (0, 1)", hint="e.g. --confidence 0.95")
    rep = Reporter("compare", progress, cancel, total=4)
    a = load_inputs(ws, set_name, run_a, items=items, images=images, also_processed_by=(run_b,))
    b = load_inputs(ws, set_name, run_b, items=items, images=images, also_processed_by=(run_a,))
    rep.update(1, "read", force=True)
    stats, per_class_ap, cells = [], [], []
    for inp in (a, b):
        res = coco_evaluate(
            inp.labels, inp.dets, image_ids=inp.items, class_ids=inp.class_ids, image_order=inp.image_order
        )
        stats.append({k: float(v) for k, v in zip(STAT_KEYS, res.stats, strict=True)})
        per_class_ap.append(res.per_class_ap)
        cells.append(
            [
                coco_cells(
                    inp.labels,
                    inp.dets,
                    image_ids=inp.items,
                    class_ids=inp.class_ids,
                    image_order=inp.image_order,
                    threshold=float(t),
                )
                for t in IOU_THRESHOLDS
            ]
        )
        rep.check()
    rep.update(2, "evaluated", force=True)
    ci: dict[str, dict[str, float]] = {}
    per_ci: dict[int, dict[str, float]] = {}
    if samples and len(a.items):
        ci, per_ci = bootstrap(cells[0], cells[1], samples=samples, seed=seed, confidence=confidence)
    rep.update(3, "bootstrap", force=True)
    per_class = []
    for k, name in enumerate(a.class_names):
        ap_a, ap_b = float(per_class_ap[0][k]), float(per_class_ap[1][k])
        if ap_a < 0 and ap_b < 0:
            continue
        row: dict[str, Any] = {"class": name, "ap_a": ap_a, "ap_b": ap_b, "delta": ap_b - ap_a}
        if k in per_ci:
            row["ci"] = per_ci[k]
        per_class.append(row)
    tide_a = tide_errors(cells[0][0], class_names=a.class_names)
    tide_b = tide_errors(cells[1][0], class_names=b.class_names)
    changed = _image_changes(ws, a, b, conf=conf, top=top) if top > 0 else []
    rep.update(4, "done", force=True)
    return CompareResult(
        set_name=set_name,
        run_a=run_a,
        run_b=run_b,
        images=len(a.items),
        stats_a=stats[0],
        stats_b=stats[1],
        per_class=per_class,
        ci=ci,
        samples=samples,
        seed=seed,
        confidence=confidence,
        tide_a=tide_a,
        tide_b=tide_b,
        changed=changed,
    )


def split_comparison(
    ws: Workspace,
    set_name: str,
    run_a: str,
    run_b: str,
    splits: pl.DataFrame,
    *,
    samples: int = 200,
    top: int = 10,
    conf: float = 0.25,
) -> dict[str, Any]:
    """Run B against run A on each split apart (``splits``: item_id, split), as a pitstop's report shows it.

    Returns ``{"against": run_a, "splits": {split: CompareResult.to_dict()}}``.
    """
    out: dict[str, Any] = {"against": run_a, "splits": {}}
    for split in sorted(set(splits["split"].to_list())):
        items = splits.filter(splits["split"] == split)["item_id"].to_numpy()
        res = compare_runs(ws, set_name, run_a, run_b, items=items, samples=samples, top=top, conf=conf)
        out["splits"][split] = res.to_dict()
    return out


def compare_markdown(comparison: dict[str, Any]) -> list[str]:
    """A pitstop report's section on what changed since the previous pitstop (Markdown lines)."""
    lines = [f"## since the previous pitstop (run `{comparison['against']}`)", ""]
    for split, d in comparison["splits"].items():
        ci = d["ci"].get("map")
        interval = (
            f", {round(100 * d['confidence'])}% interval [{ci['lower']:+.3f}, {ci['upper']:+.3f}]"
            if ci
            else ""
        )
        lines += [
            f"### {split}: mAP {d['stats_a']['map']:.3f} → {d['stats_b']['map']:.3f} "
            f"({d['deltas']['map']:+.3f}{interval}), {d['images']} images",
            "",
            "| class | AP before | AP now | change | interval |",
            "|---|---|---|---|---|",
        ]
        for r in sorted(d["per_class"], key=lambda r: r["delta"]):
            iv = r.get("ci")
            span = "" if not iv or iv["lower"] != iv["lower"] else f"[{iv['lower']:+.3f}, {iv['upper']:+.3f}]"
            lines.append(f"| {r['class']} | {r['ap_a']:.3f} | {r['ap_b']:.3f} | {r['delta']:+.3f} | {span} |")
        if d.get("tide_deltas"):
            worse = sorted(d["tide_deltas"].items(), key=lambda kv: -kv[1])
            lines += [
                "",
                "TIDE dAP change (AP50 points; > 0: the error costs more now): "
                + ", ".join(f"{k} {100 * v:+.2f}" for k, v in worse),
            ]
        if d["changed_images"]:
            lines += ["", "| image | f1 before | f1 now | missed | extra |", "|---|---|---|---|---|"]
            for r in d["changed_images"]:
                lines.append(
                    f"| {r['key']} | {r['f1_a']:.3f} | {r['f1_b']:.3f} | {r['fn_a']} → {r['fn_b']} | {r['fp_a']} → {r['fp_b']} |"
                )
        lines.append("")
    return lines
