"""Text of the error analyses (TIDE, calibration, slices, run vs run) as `eval` and `compare` print them."""

from __future__ import annotations

from typing import Any

#: How the error types are named in the text.
ERROR_LABELS = {
    "cls": "classification",
    "loc": "localisation",
    "both": "both (cls + loc)",
    "dupe": "duplicate",
    "bkg": "background",
    "miss": "missed",
    "fp": "false positives (all)",
    "fn": "false negatives (all)",
}


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    out = ["  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    out += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return out


def _pts(v: float) -> str:
    """A dAP in AP points (0–100), signed."""
    return f"{100 * v:+.2f}"


def tide_lines(tide: dict[str, Any], coco_map: float | None = None) -> list[str]:
    """TIDE's table: each error's dAP (AP@50 points) and count."""
    lines = [
        f"TIDE (foreground IoU {tide['fg_iou']:g}, background {tide['bg_iou']:g}): AP50 {100 * tide['ap50']:.2f}"
        + (f", mAP@[.5:.95] {100 * coco_map:.2f}" if coco_map is not None and coco_map >= 0 else "")
        + "; dAP = AP50 points gained if the error were fixed"
    ]
    rows = []
    for k, label in ERROR_LABELS.items():
        count = tide["counts"].get(k)
        rows.append([label, _pts(tide["delta_ap"][k]), "-" if count is None else f"{count:,}"])
    return lines + _table(["error", "dAP", "count"], rows)


def calibration_lines(cal: dict[str, Any]) -> list[str]:
    """The reliability table and ECE/MCE, overall and per class."""
    lines = [
        f"calibration at IoU {cal['iou']:g} over {cal['dets']:,} detection(s): "
        f"ECE {cal['ece']:.4f}, MCE {cal['mce']:.4f}"
    ]
    rows = [
        [
            f"[{b['lower']:.2f}, {b['upper']:.2f}" + ("]" if b["upper"] >= 1 else ")"),
            f"{b['count']:,}",
            f"{b['confidence']:.3f}" if b["count"] else "-",
            f"{b['accuracy']:.3f}" if b["count"] else "-",
        ]
        for b in cal["bins"]
    ]
    lines += _table(["score", "dets", "confidence", "accuracy"], rows)
    if cal["per_class"]:
        lines.append("  per class:")
        lines += _table(
            ["class", "dets", "ECE", "MCE"],
            [
                [k, f"{v['dets']:,}", f"{v['ece']:.4f}", f"{v['mce']:.4f}"]
                for k, v in cal["per_class"].items()
            ],
        )
    return lines


def _ap(v: float) -> str:
    return "-" if v < 0 else f"{v:.3f}"


def slice_lines(by: str, slices: list[dict[str, Any]]) -> list[str]:
    """One row per slice: its size and the main COCO numbers."""
    lines = [f"by {by}:"]
    rows = [
        [
            s["slice"],
            f"{s['images']:,}",
            f"{s['labels']:,}",
            f"{s['dets']:,}",
            _ap(s["map"]),
            _ap(s["map50"]),
            _ap(s["map75"]),
            _ap(s["ar100"]),
        ]
        for s in slices
    ]
    return lines + _table(["slice", "images", "labels", "dets", "mAP", "AP50", "AP75", "AR100"], rows)


def compare_text(d: dict[str, Any]) -> str:
    """`tuiops compare`'s text: summary, classes (worst change first), TIDE changes, changed images."""
    a, b = d["run_a"], d["run_b"]
    lines = [f"compare on label set {d['set']!r}: A = {a!r}, B = {b!r}, {d['images']:,} image(s)"]
    ci = d["ci"]
    pct = round(100 * d["confidence"])
    rows = []
    for k, label in (("map", "mAP@[.5:.95]"), ("map50", "AP50"), ("map75", "AP75"), ("ar100", "AR100")):
        row = [label, _ap(d["stats_a"][k]), _ap(d["stats_b"][k]), f"{d['deltas'][k]:+.3f}"]
        iv = ci.get(k)
        row.append(
            f"[{iv['lower']:+.3f}, {iv['upper']:+.3f}]  P(B better) {iv['prob_better']:.2f}" if iv else ""
        )
        rows.append(row)
    lines += _table(
        ["", "A", "B", "B − A", f"{pct}% CI ({d['samples']} resamplings, seed {d['seed']})"], rows
    )
    if d["per_class"]:
        lines.append("AP@[.5:.95] per class, what got worse first:")
        cls_rows = []
        for r in sorted(d["per_class"], key=lambda r: r["delta"]):
            iv = r.get("ci")
            cls_rows.append(
                [
                    r["class"],
                    _ap(r["ap_a"]),
                    _ap(r["ap_b"]),
                    f"{r['delta']:+.3f}",
                    f"[{iv['lower']:+.3f}, {iv['upper']:+.3f}]" if iv and iv["lower"] == iv["lower"] else "",
                ]
            )
        lines += _table(["class", "A", "B", "B − A", f"{pct}% CI"], cls_rows)
    if d.get("tide_deltas"):
        lines.append("TIDE dAP (AP50 points) and counts, A → B:")
        ta, tb = d["tide_a"], d["tide_b"]
        t_rows = []
        for k, label in ERROR_LABELS.items():
            ca, cb = ta["counts"].get(k), tb["counts"].get(k)
            t_rows.append(
                [
                    label,
                    _pts(ta["delta_ap"][k]),
                    _pts(tb["delta_ap"][k]),
                    _pts(d["tide_deltas"][k]),
                    "" if ca is None else f"{ca:,} → {cb:,}",
                ]
            )
        lines += _table(["error", "A", "B", "change", "count"], t_rows)
    if d["changed_images"]:
        lines.append("images whose match changed most (F1 at IoU 0.5, A → B):")
        lines += _table(
            ["key", "f1", "tp", "fp", "fn", "cost"],
            [
                [
                    str(r["key"]),
                    f"{r['f1_a']:.2f} → {r['f1_b']:.2f}",
                    f"{r['tp_a']} → {r['tp_b']}",
                    f"{r['fp_a']} → {r['fp_b']}",
                    f"{r['fn_a']} → {r['fn_b']}",
                    f"{r['cost_a']:.2f} → {r['cost_b']:.2f}",
                ]
                for r in d["changed_images"]
            ],
        )
    return "\n".join(lines)
