"""A pitstop's comparison of detections with labels, and its report (JSON and Markdown)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tuiops.frames import num_mean
from tuiops.store.frames import BOX

if TYPE_CHECKING:
    import polars as pl


#: How many worst images and largest differences a report lists.
REPORT_TOP = 20


REPORT_PER_CLASS = 5


#: A matched box whose IoU with its label is below this is reported as loose.
LOOSE_IOU = 0.75

#: The per-image columns a worst-list condition (``--worst-by``) can use.
WORST_COLUMNS: dict[str, str] = {
    "key": "the image key",
    "tp": "detections matching a label",
    "fp": "extra detections",
    "fn": "missed labels",
    "wrong_class": "labels detected with another class",
    "labels": "labels compared",
    "detections": "detections compared",
    "errors": "fn + fp + wrong_class",
    "missed_area": "the area of the missed labels (pixels)",
    "precision": "tp / detections (NULL without detections)",
    "recall": "tp / labels (NULL without labels)",
    "f1": "2·tp / (labels + detections)",
}
#: What a worst-list entry shows of its image.
WORST_FIELDS = ("key", "fn", "fp", "wrong_class", "labels", "detections", "missed_area", "errors")


def check_worst_by(where: str) -> None:
    """Refuse a worst-list condition that is not a read-only condition on :data:`WORST_COLUMNS`
    (checked as user SQL, like a selection's ``--where``), before any work is done."""
    import polars as pl

    schema = {c: pl.String if c == "key" else pl.Float64 for c in WORST_COLUMNS}
    worst_rows(pl.DataFrame(schema=schema), where)


def worst_rows(per_img: pl.DataFrame, where: str) -> pl.DataFrame:
    """The rows of ``per_img`` (one per image, :data:`WORST_COLUMNS`) that meet ``where``.

    The condition is user SQL: checked by :mod:`tuiops.ops.usersql` (one expression, read
    only, time-limited) and run on an in-memory table ``images`` of those columns.
    """
    import sqlite3

    import polars as pl

    from tuiops.errors import InputError
    from tuiops.ops.usersql import check_where, frame_of, guard
    from tuiops.store.connections import scratch_database

    what = f"--worst-by {where!r}"
    check_where(where, what="--worst-by")
    cols = list(WORST_COLUMNS)
    with scratch_database() as conn:
        conn.execute(f"CREATE TABLE images ({', '.join(cols)})")
        conn.executemany(
            f"INSERT INTO images VALUES ({', '.join('?' * len(cols))})", per_img.select(cols).iter_rows()
        )
        hint = "a condition on the columns of each image: " + ", ".join(cols) + ', e.g. "f1 < 0.5"'
        try:
            with guard(conn, f"SELECT key FROM images WHERE ({where})", what=what, hint=hint) as cur:
                found = frame_of(cur)
        except (sqlite3.Error, sqlite3.Warning) as exc:
            raise InputError(f"{what} is not a valid condition: {exc}", hint=hint) from exc
    keys = found["key"].to_list() if "key" in found.columns else []
    return per_img.filter(pl.col("key").is_in(keys))


def _greedy_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    """One-to-one pairs (``lid``, ``did``, ``iou``) chosen greedily by IoU, in rounds.

    In each round every pair that is the best remaining one for both its label and its
    detection (order: IoU descending, then label id, then detection id) is taken, and
    the pairs of taken boxes leave. This equals the global greedy matching.
    """
    import polars as pl

    taken = []
    left = pairs.sort(["iou", "lid", "did"], descending=[True, False, False])
    while left.height:
        best_l = left.unique("lid", keep="first", maintain_order=True).select("lid", "did")
        best_d = left.unique("did", keep="first", maintain_order=True).select("lid", "did")
        mutual = best_l.join(best_d, on=["lid", "did"], how="inner")
        got = left.join(mutual, on=["lid", "did"], how="semi")
        taken.append(got)
        left = left.join(got.select("lid"), on="lid", how="anti").join(
            got.select("did"), on="did", how="anti"
        )
    if not taken:
        return pairs.head(0)
    return pl.concat(taken)


def _object_schema() -> pl.Schema:
    """The columns of :func:`compare_boxes`' object rows, in their order."""
    import polars as pl

    return pl.Schema(
        {
            "item_id": pl.Int64,
            "kind": pl.String,
            "class_id": pl.Int64,
            "det_class": pl.Int64,
            "label_id": pl.Int64,
            "det_id": pl.Int64,
            "iou": pl.Float64,
            "score": pl.Float64,
            "area": pl.Float64,
            **dict.fromkeys(BOX, pl.Float64),
        }
    )


def _candidates(left: pl.DataFrame, right: pl.DataFrame, same_class: bool, iou: float) -> pl.DataFrame:
    """Label × detection pairs of an image (of one class, or of different classes) at IoU ≥ ``iou``."""
    import polars as pl

    from tuiops import geometry as geo

    if same_class:
        j = left.join(right, left_on=["item_id", "class_id"], right_on=["item_id", "dcls"], how="inner")
        j = j.with_columns(pl.col("class_id").alias("dcls"))
    else:
        j = left.join(right, on="item_id", how="inner").filter(pl.col("class_id") != pl.col("dcls"))
    return j.with_columns(geo.iou("", "_d").alias("iou")).filter(pl.col("iou") >= iou)


def _paired(frame: pl.DataFrame, kind: str, L: pl.DataFrame, D: pl.DataFrame) -> pl.DataFrame:
    """Object rows of matched pairs (``lid``, ``did``, ``iou``): the label's box and class, the detection's score."""
    import polars as pl

    from tuiops import geometry as geo

    return (
        frame.join(L, on="lid")
        .join(D.drop("item_id"), on="did")
        .with_columns(pl.lit(kind).alias("kind"), geo.area().alias("area"))
        .select(
            "item_id",
            "kind",
            "class_id",
            pl.col("dcls").alias("det_class"),
            pl.col("lid").alias("label_id"),
            pl.col("did").alias("det_id"),
            "iou",
            "score",
            "area",
            "x1",
            "y1",
            "x2",
            "y2",
        )
    )


def _unmatched(fn: pl.DataFrame, fp: pl.DataFrame) -> list[pl.DataFrame]:
    """Object rows of the labels no detection matched and of the detections no label matched."""
    import polars as pl

    from tuiops import geometry as geo

    return [
        fn.select(
            "item_id",
            pl.lit("fn").alias("kind"),
            "class_id",
            pl.lit(None, pl.Int64).alias("det_class"),
            pl.col("lid").alias("label_id"),
            pl.lit(None, pl.Int64).alias("det_id"),
            pl.lit(None, pl.Float64).alias("iou"),
            pl.lit(None, pl.Float64).alias("score"),
            geo.area().alias("area"),
            "x1",
            "y1",
            "x2",
            "y2",
        ),
        fp.select(
            "item_id",
            pl.lit("fp").alias("kind"),
            pl.col("dcls").alias("class_id"),
            pl.col("dcls").alias("det_class"),
            pl.lit(None, pl.Int64).alias("label_id"),
            pl.col("did").alias("det_id"),
            pl.lit(None, pl.Float64).alias("iou"),
            "score",
            geo.area("_d").alias("area"),
            pl.col("x1_d").alias("x1"),
            pl.col("y1_d").alias("y1"),
            pl.col("x2_d").alias("x2"),
            pl.col("y2_d").alias("y2"),
        ),
    ]


def compare_boxes(labels: pl.DataFrame, dets: pl.DataFrame, *, iou: float = 0.5) -> pl.DataFrame:
    """Every label and detection as an object row: matched, missed, extra or wrong class.

    ``labels``: id, item_id, class_id, x1…y2; ``dets``: the same plus score. Returns
    ``item_id``, ``kind`` (``tp``, ``fn``, ``fp``, ``class`` — a label and a detection of
    another class at IoU ≥ ``iou``), ``class_id`` (the label's, else the detection's),
    ``det_class``, ``label_id``, ``det_id``, ``iou``, ``score``, ``area`` (of the label,
    else of the detection) and the box (``x1…y2``, the label's where there is one).
    """
    import polars as pl

    L = labels.select(
        pl.col("id").alias("lid"), "item_id", pl.col("class_id").cast(pl.Int64), "x1", "y1", "x2", "y2"
    )
    D = dets.select(
        pl.col("id").alias("did"),
        "item_id",
        pl.col("class_id").cast(pl.Int64).alias("dcls"),
        pl.col("x1").alias("x1_d"),
        pl.col("y1").alias("y1_d"),
        pl.col("x2").alias("x2_d"),
        pl.col("y2").alias("y2_d"),
        "score",
    )
    tp = _greedy_pairs(_candidates(L, D, True, iou).select("lid", "did", "iou"))
    L2 = L.join(tp.select("lid"), on="lid", how="anti")
    D2 = D.join(tp.select("did"), on="did", how="anti")
    wrong = _greedy_pairs(_candidates(L2, D2, False, iou).select("lid", "did", "iou"))
    fn = L2.join(wrong.select("lid"), on="lid", how="anti")
    fp = D2.join(wrong.select("did"), on="did", how="anti")
    parts = [_paired(tp, "tp", L, D), _paired(wrong, "class", L, D), *_unmatched(fn, fp)]
    schema = _object_schema()
    return pl.concat([p.select(list(schema.names())).cast(schema) for p in parts])


def _counts(objs: pl.DataFrame) -> dict[str, Any]:
    """tp/fp/fn/wrong-class counts with precision, recall and mean IoU of the matches."""
    import polars as pl

    k = dict(objs.group_by("kind").len().iter_rows())
    tp, fp, fn, wc = (int(k.get(x, 0)) for x in ("tp", "fp", "fn", "class"))
    n_det = tp + fp + wc
    n_lab = tp + fn + wc
    miou = num_mean(objs.filter(pl.col("kind") == "tp")["iou"])
    return {
        "labels": n_lab,
        "detections": n_det,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "wrong_class": wc,
        "precision": round(tp / n_det, 4) if n_det else None,
        "recall": round(tp / n_lab, 4) if n_lab else None,
        "mean_iou": round(miou, 4) if miou is not None else None,
    }


def worst_images(objs: pl.DataFrame, *, top: int | None, worst_by: str | None) -> list[dict[str, Any]]:
    """A split's worst images from its compared objects (with their image's key): the ``top``
    (None: all) with most errors, or those that meet ``worst_by``, most errors first."""
    import polars as pl

    kind = pl.col("kind")
    per_img = (
        objs.group_by("item_id", "key")
        .agg(
            (kind == "fn").sum().alias("fn"),
            (kind == "fp").sum().alias("fp"),
            (kind == "class").sum().alias("wrong_class"),
            (kind != "fp").sum().alias("labels"),
            (kind != "fn").sum().alias("detections"),
            (kind == "tp").sum().alias("tp"),
            pl.when(kind == "fn").then(pl.col("area")).otherwise(0.0).sum().alias("missed_area"),
        )
        .with_columns((pl.col("fn") + pl.col("fp") + pl.col("wrong_class")).alias("errors"))
        .with_columns(_rates())
    )
    chosen = worst_rows(per_img, worst_by) if worst_by else per_img.filter(pl.col("errors") > 0)
    chosen = chosen.sort(["errors", "missed_area", "key"], descending=[True, True, False])
    return [
        {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()}
        for r in (chosen if top is None else chosen.head(top)).select(WORST_FIELDS).iter_rows(named=True)
    ]


def _rates() -> list[pl.Expr]:
    """An image's precision, recall and F1 from its tp, labels and detections."""
    import polars as pl

    tp, n_lab, n_det = pl.col("tp"), pl.col("labels"), pl.col("detections")
    return [
        pl.when(n_det > 0).then(tp / n_det).otherwise(None).alias("precision"),
        pl.when(n_lab > 0).then(tp / n_lab).otherwise(None).alias("recall"),
        pl.when(n_lab + n_det > 0).then(2 * tp / (n_lab + n_det)).otherwise(1.0).alias("f1"),
    ]


def pitstop_report(
    objs: pl.DataFrame,
    images: pl.DataFrame,
    classes: Sequence[str],
    *,
    previous: Mapping[str, Any] | None = None,
    top: int | None = REPORT_TOP,
    per_class: int = REPORT_PER_CLASS,
    worst_by: str | None = None,
) -> dict[str, Any]:
    """The pitstop report's content from the compared objects.

    ``images``: item_id, key, split (every compared image, also those with no boxes).
    For each split: totals, per-class counts, the change since ``previous`` (an earlier
    report's summary), the worst images (most missed + extra + wrong-class objects) and
    per class the largest missed and extra objects and the loosest boxes.

    The worst images are the ``top`` (None: all) images with most errors, or, with
    ``worst_by`` (a SQL condition on :data:`WORST_COLUMNS`, e.g. ``f1 < 0.5``), those that
    meet it, most errors first.
    """
    import polars as pl

    def cname(c: int | None) -> str | None:
        if c is None:
            return None
        return classes[c] if 0 <= c < len(classes) else str(c)

    objs = objs.join(images.select("item_id", "key", "split"), on="item_id", how="inner")
    out: dict[str, Any] = {"splits": {}, "worst": {"by": worst_by, "top": top}}
    if worst_by:
        check_worst_by(worst_by)
    for split in ("train", "val"):
        imgs = images.filter(pl.col("split") == split)
        o = objs.filter(pl.col("split") == split)
        totals = {"images": imgs.height, **_counts(o)}
        classes_out = {}
        for cid in sorted(set(o["class_id"].drop_nulls().to_list())):
            classes_out[cname(cid)] = _counts(o.filter(pl.col("class_id") == cid))
        worst = worst_images(o, top=top, worst_by=worst_by)
        diffs: dict[str, Any] = {}
        for cid in sorted(set(o["class_id"].drop_nulls().to_list())):
            oc = o.filter(pl.col("class_id") == cid)

            def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
                return [
                    {
                        "key": r["key"],
                        "box": [round(r[c], 1) for c in ("x1", "y1", "x2", "y2")],
                        "area": round(r["area"], 1),
                        **({"score": round(r["score"], 3)} if r["score"] is not None else {}),
                        **({"iou": round(r["iou"], 3)} if r["iou"] is not None else {}),
                        **({"detected_as": cname(r["det_class"])} if r["kind"] == "class" else {}),
                    }
                    for r in frame.iter_rows(named=True)
                ]

            diffs[cname(cid) or str(cid)] = {
                "missed": rows(
                    oc.filter(pl.col("kind") == "fn").sort("area", descending=True).head(per_class)
                ),
                "extra": rows(
                    oc.filter(pl.col("kind") == "fp").sort("area", descending=True).head(per_class)
                ),
                "wrong_class": rows(
                    oc.filter(pl.col("kind") == "class").sort("area", descending=True).head(per_class)
                ),
                "loose": rows(
                    oc.filter((pl.col("kind") == "tp") & (pl.col("iou") < LOOSE_IOU))
                    .sort("iou")
                    .head(per_class)
                ),
            }
        change = None
        if previous:
            prev = (previous.get("splits") or {}).get(split) or {}
            pt = prev.get("totals") or {}
            change = {
                k: (None if totals.get(k) is None or pt.get(k) is None else round(totals[k] - pt[k], 4))
                for k in ("tp", "fp", "fn", "wrong_class", "precision", "recall", "mean_iou")
            }
            pc = prev.get("classes") or {}
            change["classes"] = {
                c: {
                    k: (
                        None
                        if v.get(k) is None or (pc.get(c) or {}).get(k) is None
                        else round(v[k] - pc[c][k], 4)
                    )
                    for k in ("fn", "fp", "recall", "precision")
                }
                for c, v in classes_out.items()
            }
        out["splits"][split] = {
            "totals": totals,
            "classes": classes_out,
            "change": change,
            "worst_images": worst,
            "largest_differences": diffs,
        }
    return out


def report_markdown(head: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    """The report as Markdown, for reading in a terminal or an editor."""
    lines = [
        f"# Pitstop {head['idx']} of training run {head['train']} (epoch {head['epoch']}/{head['epochs']})",
        "",
        f"- weights: `{head['weights']}` (sha256 {head['weights_sha256'][:16]}…, best epoch {head['best_epoch']})",
        f"- detection run: `{head['run']}` (stored at conf ≥ {head.get('stored_conf', head['conf'])}, "
        f"compared at conf ≥ {head['conf']}), matched at IoU ≥ {head['match_iou']}",
        f"- label set: `{head['label_set']}`, dataset `{head['dataset']}`",
        "",
    ]
    for w in head.get("warnings") or []:
        lines += [f"> **WARNING** {w}", ""]

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    def delta(v: Any) -> str:
        if v is None:
            return ""
        return f" ({v:+.3f})" if isinstance(v, float) else f" ({v:+d})"

    for split, s in body["splits"].items():
        t = s["totals"]
        ch = s.get("change") or {}
        lines += [
            f"## {split}: {t['images']} images, {t['labels']} labels, {t['detections']} detections",
            "",
            "| | count | since last pitstop |",
            "|---|---|---|",
        ]
        for k in ("tp", "fp", "fn", "wrong_class", "precision", "recall", "mean_iou"):
            lines.append(f"| {k} | {fmt(t.get(k))} | {delta(ch.get(k)).strip(' ()') if ch else ''} |")
        lines += [
            "",
            "| class | labels | tp | fp | fn | wrong class | precision | recall |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c, v in s["classes"].items():
            cc = (ch.get("classes") or {}).get(c, {}) if ch else {}
            lines.append(
                f"| {c} | {v['labels']} | {v['tp']} | {v['fp']}{delta(cc.get('fp'))} | {v['fn']}{delta(cc.get('fn'))} "
                f"| {v['wrong_class']} | {fmt(v['precision'])} | {fmt(v['recall'])}{delta(cc.get('recall'))} |"
            )
        by = (body.get("worst") or {}).get("by")
        lines += [
            "",
            f"### worst {split} images" + (f" ({by})" if by else ""),
            "",
            "| image | missed | extra | wrong class | labels | detections |",
            "|---|---|---|---|---|---|",
        ]
        for w in s["worst_images"]:
            lines.append(
                f"| {w['key']} | {w['fn']} | {w['fp']} | {w['wrong_class']} | {w['labels']} | {w['detections']} |"
            )
        lines += ["", f"### largest object differences per class ({split})", ""]
        for c, d in s["largest_differences"].items():
            parts = []
            for kind in ("missed", "extra", "wrong_class", "loose"):
                for r in d[kind]:
                    extra = "".join(f" {k}={r[k]}" for k in ("score", "iou", "detected_as") if k in r)
                    parts.append(f"- {kind}: {r['key']} box {r['box']} area {r['area']}{extra}")
            if parts:
                lines += [f"**{c}**", "", *parts, ""]
        lines.append("")
    if body.get("compare"):
        from tuiops.ops.analysis import compare_markdown

        lines += compare_markdown(body["compare"])
    return "\n".join(lines).rstrip() + "\n"
