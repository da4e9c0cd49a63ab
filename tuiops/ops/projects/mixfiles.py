"""The label files of a project mix: VOC documents, YOLO texts, COCO instances, data.yaml.

Each object's VOC flags and tags come from the build's annotations (the ``extra`` of a
box, :mod:`tuiops.formats.voc`); :func:`not_carried` tells what a format cannot hold.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


def voc_docs(kept: pl.DataFrame, boxes: pl.DataFrame, folder: str) -> pl.DataFrame:
    """``idx``, ``text``: the VOC XML of every kept image (labelImg layout, 1 object per box, the
    project named as the source), written by :func:`tuiops.formats.voc.template_documents`."""
    from tuiops.formats.voc import template_documents

    images = kept.select("idx", "file", kept["project"].alias("database"), "width", "height", "depth")
    objects = boxes.select(
        "idx",
        "ord",
        boxes["class"].alias("name"),
        "x1",
        "y1",
        "x2",
        "y2",
        *[boxes[f"t{t}"].alias(t) for t in ("xmin", "ymin", "xmax", "ymax")],
        "extra",
    )
    return template_documents(images, objects, folder)


def yolo_texts(kept: pl.DataFrame, boxes: pl.DataFrame) -> pl.DataFrame:
    """``idx``, ``text``: the YOLO label file of every kept image (empty for no boxes)."""
    import polars as pl

    from tuiops.formats.yolo import xyxy_line

    line = xyxy_line(pl.col("width"), pl.col("height"))
    texts = (
        boxes.join(kept.select("idx", "width", "height"), on="idx")
        .sort("idx", "ord")
        .with_columns((line + "\n").alias("line"))
        .group_by("idx", maintain_order=True)
        .agg(pl.col("line").str.join("").alias("text"))
    )
    return kept.select("idx").join(texts, on="idx", how="left").with_columns(pl.col("text").fill_null(""))


def coco_doc(kept: pl.DataFrame, boxes: pl.DataFrame, names: Sequence[str]) -> bytes:
    """The COCO instances JSON of one split."""
    import polars as pl

    images = kept.sort("idx").select(
        pl.col("image_id").alias("id"), pl.col("file").alias("file_name"), "width", "height"
    )
    anns = (
        boxes.join(kept.select("idx", "image_id"), on="idx")
        .sort("idx", "ord")
        .with_row_index("id", offset=1)
        .select(
            pl.col("id").cast(pl.Int64),
            "image_id",
            (pl.col("class_id") + 1).alias("category_id"),
            pl.concat_list(pl.col("x1"), pl.col("y1"), _extent("x1", "x2"), _extent("y1", "y2")).alias(
                "bbox"
            ),
            ((pl.col("x2") - pl.col("x1")) * (pl.col("y2") - pl.col("y1"))).round(6).alias("area"),
            pl.lit(0).alias("iscrowd"),
            "extra",
        )
    )
    ann_dicts = anns.to_dicts()
    for d in ann_dicts:
        d["segmentation"] = []
        d["attributes"] = coco_attributes(d.pop("extra"))
    doc = {
        "info": {"description": "tuiops project mix"},
        "images": images.to_dicts(),
        "annotations": ann_dicts,
        "categories": [{"id": i + 1, "name": n, "supercategory": n} for i, n in enumerate(names)],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _extent(lo: str, hi: str) -> pl.Expr:
    """A COCO width (height): to 6 decimals where ``lo`` + it still gives ``hi`` exactly, else in full."""
    import polars as pl

    full = pl.col(hi) - pl.col(lo)
    short = full.round(6)
    return pl.when(pl.col(lo) + short == pl.col(hi)).then(short).otherwise(full)


def coco_attributes(extra: str | None) -> dict[str, Any]:
    """A COCO annotation's ``attributes`` for a box's VOC flags, as Datumaro and CVAT write them:
    ``difficult``, ``truncated``, ``occluded`` as booleans (a value other than 0/1 as written)
    and ``pose`` where the object states one."""
    from tuiops.formats.voc import object_flags

    flags = object_flags(extra)
    out: dict[str, Any] = {}
    for k in ("difficult", "truncated", "occluded"):
        v = flags.get(k, 0)
        out[k] = bool(v) if isinstance(v, int) and v in (0, 1) else v
    if "pose" in flags:
        out["pose"] = flags["pose"]
    return out


def not_carried(boxes: pl.DataFrame, fmt: str) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """What of the boxes' VOC flags and tags ``fmt`` cannot hold: counts per flag (and
    ``other_tags``), and per such box its project, stem, object number and what it loses.

    VOC holds everything; COCO holds the flags as attributes but not other tags; YOLO
    holds neither (a stated ``pose`` of ``Unspecified`` and flags of 0 count as nothing).
    """
    import polars as pl

    from tuiops.formats.voc import uncarried

    if fmt == "voc" or boxes.height == 0:
        return {}, []
    checks = uncarried(pl.col("extra"), flags_held=fmt == "coco")
    flagged = boxes.select("project", "stem", "ord", *[e.alias(k) for k, e in checks.items()]).filter(
        pl.any_horizontal(*checks)
    )
    counts = {k: int(flagged[k].sum()) for k in checks if flagged[k].sum()}
    objects = [
        {
            "project": r["project"],
            "stem": r["stem"],
            "object": r["ord"] + 1,
            "lost": [k for k in checks if r[k]],
        }
        for r in flagged.sort("project", "stem", "ord").iter_rows(named=True)
    ]
    return counts, objects


def data_yaml(names: Sequence[str], has_val: bool, yaml_path: str | None) -> bytes:
    """The YOLO dataset's ``data.yaml``: its path, splits and class names."""
    import yaml

    doc: dict[str, Any] = {}
    if yaml_path:
        doc["path"] = yaml_path
    doc.update(
        {
            "train": "images/train",
            "val": "images/val" if has_val else "images/train",
            "nc": len(names),
            "names": dict(enumerate(names)),
        }
    )
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode("utf-8")
