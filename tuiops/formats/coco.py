"""COCO JSON: instances (``images``, ``annotations``, ``categories``) and results lists.

An annotation's ``bbox`` is ``[x, y, width, height]`` in pixels. The reader keeps each
image entry as written in the image's meta, and an annotation's ``id``, ``bbox``,
``area``, ``iscrowd`` and every other key (``segmentation`` …) in the box's extra; the
writer gives them back for a box that did not move (a moved box gets ``area`` =
width × height and loses its stale ``segmentation``).

A detection results file is a list of ``{image_id, category_id, bbox, score}``; the
images and categories it refers to come from a COCO file beside it (``--images``), or
the file is a full COCO dict whose annotations carry a ``score``.

Written files: category ids are the workspace class ids + 1 (COCO's 1-based
convention; names are the workspace's), image ids are item ids (the same in every set
and run of a workspace, so an exported label set and run pair up in pycocotools) or,
on request, the ids of the imported file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from tuiops.errors import InputError, UsageError
from tuiops.formats import ReadResult, problems_frame
from tuiops.fsutil import display_path

_RESULT_CORE = ("id", "image_id", "category_id", "bbox", "score")
_CORE = ("id", "image_id", "category_id", "bbox", "score", "area", "iscrowd", "segmentation")


def load_json(path: Path) -> Any:
    """Load a JSON file, turning every failure into an :class:`InputError` naming the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {display_path(path)}: {exc.strerror}") from exc
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{display_path(path)}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            hint="save it as UTF-8",
        ) from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{display_path(path)}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})",
            hint="is it a COCO JSON file?",
        ) from exc


def _id(v: Any) -> int | str | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | str):
        return v
    return None


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def read_coco(path: Path, *, with_score: bool = False, images_path: Path | None = None) -> ReadResult:
    """Read a COCO instances file (or, for detections, a results list with ``images_path``).

    ``files``: one row per image entry: file_idx (its index in ``images``), path (the
    ``file_name``), width, height (as written, or null), meta.
    ``boxes``: file_idx, line (null), loc (``annotations[i]``), name (the category's name),
    x, y, bw, bh [, score], extra.
    """
    label = display_path(path)
    doc = load_json(path)
    if isinstance(doc, list):
        if not with_score:
            raise InputError(
                f"{label} is a list (a COCO results file?), not a COCO instances dict",
                hint="import detections with `tuiops dets import`; labels need images, annotations, categories",
            )
        if images_path is None:
            raise UsageError(
                f"{label} is a COCO results list: it needs the images and categories it refers to",
                hint="give the COCO file that lists them with --images FILE",
            )
        anns: Any = doc
        ann_key = "results"
    elif isinstance(doc, dict):
        anns = doc.get("annotations")
        ann_key = "annotations"
        if not isinstance(anns, list):
            raise InputError(f"{label}: no `annotations` list", hint="is it a COCO instances file?")
    else:
        raise InputError(f"{label}: not a COCO file (the top level is neither a dict nor a list)")
    head = load_json(images_path) if images_path is not None else doc
    head_label = display_path(images_path) if images_path is not None else label
    if not isinstance(head, dict):
        raise InputError(f"{head_label}: not a COCO dict with images and categories")
    images = head.get("images")
    cats = head.get("categories")
    if not isinstance(images, list):
        raise InputError(f"{head_label}: no `images` list")
    if not isinstance(cats, list):
        raise InputError(f"{head_label}: no `categories` list")

    bad: list[tuple[str, int | None, str]] = []
    cat_name: dict[int | str, str] = {}
    seen_names: dict[str, int | str] = {}
    for i, c in enumerate(cats):
        cid = _id(c.get("id")) if isinstance(c, dict) else None
        name = c.get("name") if isinstance(c, dict) else None
        if cid is None or not isinstance(name, str) or not name.strip():
            raise InputError(f"{head_label}: categories[{i}] needs an id and a name")
        name = name.strip()
        if cid in cat_name:
            raise InputError(f"{head_label}: categories[{i}]: category id {cid!r} repeats")
        if name in seen_names:
            raise InputError(
                f"{head_label}: categories[{i}]: name {name!r} repeats (ids {seen_names[name]!r} and {cid!r})"
            )
        cat_name[cid] = name
        seen_names[name] = cid

    f_idx: list[int] = []
    f_path: list[str] = []
    f_w: list[int | None] = []
    f_h: list[int | None] = []
    f_meta: list[str] = []
    by_id: dict[int | str, int] = {}
    for i, im in enumerate(images):
        where = f"images[{i}]"
        if not isinstance(im, dict):
            bad.append((head_label, None, f"{where}: not an object"))
            continue
        iid = _id(im.get("id"))
        fname = im.get("file_name")
        if iid is None:
            bad.append((head_label, None, f"{where}: no id"))
            continue
        if not isinstance(fname, str) or not fname.strip():
            bad.append((head_label, None, f"{where} (id {iid!r}): no file_name"))
            continue
        if iid in by_id:
            bad.append((head_label, None, f"{where}: image id {iid!r} repeats images[{by_id[iid]}]; skipped"))
            continue
        w, h = im.get("width"), im.get("height")
        by_id[iid] = i
        f_idx.append(i)
        f_path.append(fname)
        f_w.append(int(w) if _num(w) else None)
        f_h.append(int(h) if _num(h) else None)
        f_meta.append(json.dumps({"coco": im}, ensure_ascii=False, separators=(",", ":")))
    files = pl.DataFrame(
        {"file_idx": f_idx, "path": f_path, "size_w": f_w, "size_h": f_h, "meta": f_meta},
        schema={
            "file_idx": pl.Int64,
            "path": pl.String,
            "size_w": pl.Int64,
            "size_h": pl.Int64,
            "meta": pl.String,
        },
    )

    cols: dict[str, list[Any]] = {
        k: [] for k in ("file_idx", "loc", "name", "x", "y", "bw", "bh", "score", "extra")
    }
    bad_files: list[int] = []
    for i, a in enumerate(anns):
        where = f"{ann_key}[{i}]"
        if not isinstance(a, dict):
            bad.append((label, None, f"{where}: not an object"))
            continue
        if "id" in a:
            where += f" (id {a['id']!r})"
        iid = _id(a.get("image_id"))
        fi = by_id.get(iid) if iid is not None else None
        bb = a.get("bbox")
        if not (isinstance(bb, list) and len(bb) == 4 and all(_num(v) for v in bb)):
            bad.append(
                (
                    label,
                    None,
                    f"{where}: bbox must be [x, y, width, height] numbers, got {json.dumps(bb)[:60]}",
                )
            )
            bad_files.extend([fi] if fi is not None else [])
            continue
        if fi is None:
            bad.append((label, None, f"{where}: image_id {a.get('image_id')!r} is not in images"))
            continue
        cid = _id(a.get("category_id"))
        name = cat_name.get(cid) if cid is not None else None
        if name is None:
            bad.append((label, None, f"{where}: category_id {a.get('category_id')!r} is not in categories"))
            bad_files.append(fi)
            continue
        score = a.get("score")
        if with_score and not _num(score):
            bad.append((label, None, f"{where}: no numeric score"))
            bad_files.append(fi)
            continue
        if with_score:
            rest = {k: v for k, v in a.items() if k not in _RESULT_CORE}
            extra: dict[str, Any] = {}
            if "id" in a:
                extra["coco_id"] = a["id"]
            if rest:
                extra["coco"] = rest
        else:
            rest = {k: v for k, v in a.items() if k not in _CORE}
            extra = {k: a[k] for k in ("iscrowd", "area") if k in a}
            if "id" in a:
                extra["coco_id"] = a["id"]
            extra["coco_bbox"] = bb
            if "segmentation" in a:
                extra["coco_seg"] = a["segmentation"]
            if rest:
                extra["coco"] = rest
        cols["file_idx"].append(fi)
        cols["loc"].append(where)
        cols["name"].append(name)
        cols["x"].append(float(bb[0]))
        cols["y"].append(float(bb[1]))
        cols["bw"].append(float(bb[2]))
        cols["bh"].append(float(bb[3]))
        cols["score"].append(float(score) if with_score else None)
        cols["extra"].append(json.dumps(extra, ensure_ascii=False, separators=(",", ":")) if extra else None)
    boxes = pl.DataFrame(
        cols,
        schema={
            "file_idx": pl.Int64,
            "loc": pl.String,
            "name": pl.String,
            "x": pl.Float64,
            "y": pl.Float64,
            "bw": pl.Float64,
            "bh": pl.Float64,
            "score": pl.Float64,
            "extra": pl.String,
        },
    ).with_columns(pl.lit(None, pl.Int64).alias("line"))
    if not with_score:
        boxes = boxes.drop("score")
    return ReadResult(
        files=files,
        boxes=boxes,
        problems=problems_frame(bad),
        names=list(cat_name.values()),
        names_source=head_label,
        found=len(images),
        bad_boxes=sum(1 for _f, _l, m in bad if m.startswith(ann_key)),
        bad_box_files=bad_files,
    )


# -- writing ----------------------------------------------------------------------------------------
def categories(names: Sequence[str]) -> list[dict[str, Any]]:
    """COCO categories for the workspace class map: id = class id + 1."""
    return [{"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(names)]


def _num_text(e: pl.Expr) -> pl.Expr:
    return e.round(6).cast(pl.String)


def annotation_texts(boxes: pl.DataFrame, *, with_score: bool = False, source_ids: bool = False) -> pl.Series:
    """The JSON text of every box as a COCO annotation (or, ``with_score``, a result).

    ``boxes``: image_id_json (the image id as JSON text), class_id, x1, y1, x2, y2
    [, score], extra. Rows come out in the same order.
    """
    x1, y1, x2, y2 = (pl.col(c) for c in ("x1", "y1", "x2", "y2"))
    extra = pl.col("extra")
    fresh_bbox = pl.concat_str(
        [
            pl.lit("["),
            _num_text(x1),
            pl.lit(","),
            _num_text(y1),
            pl.lit(","),
            _num_text(x2 - x1),
            pl.lit(","),
            _num_text(y2 - y1),
            pl.lit("]"),
        ]
    )
    cat = (pl.col("class_id") + 1).cast(pl.String)
    rest = extra.str.json_path_match("$.coco")
    rest_inner = (
        pl.when(rest.is_not_null() & (rest != "{}"))
        .then(pl.lit(",") + rest.str.strip_prefix("{").str.strip_suffix("}"))
        .otherwise(pl.lit(""))
    )
    if with_score:
        text = pl.concat_str(
            [
                pl.lit('{"image_id":'),
                pl.col("image_id_json"),
                pl.lit(',"category_id":'),
                cat,
                pl.lit(',"bbox":'),
                fresh_bbox,
                pl.lit(',"score":'),
                pl.col("score").cast(pl.String),
                rest_inner,
                pl.lit("}"),
            ]
        )
        return boxes.select(text.alias("text")).to_series()
    stored = extra.str.json_path_match("$.coco_bbox")
    sb = stored.str.json_decode(pl.List(pl.Float64))
    same = (
        stored.is_not_null()
        & (sb.list.len() == 4)
        & (sb.list.get(0, null_on_oob=True) == x1)
        & (sb.list.get(1, null_on_oob=True) == y1)
        & ((sb.list.get(0, null_on_oob=True) + sb.list.get(2, null_on_oob=True)) == x2)
        & ((sb.list.get(1, null_on_oob=True) + sb.list.get(3, null_on_oob=True)) == y2)
    ).fill_null(False)
    area = extra.str.json_path_match("$.area")
    seg = extra.str.json_path_match("$.coco_seg")
    iscrowd = extra.str.json_path_match("$.iscrowd").fill_null("0")
    text = pl.concat_str(
        [
            pl.lit('{"id":'),
            pl.col("ann_id").cast(pl.String),
            pl.lit(',"image_id":'),
            pl.col("image_id_json"),
            pl.lit(',"category_id":'),
            cat,
            pl.lit(',"bbox":'),
            pl.when(same).then(stored).otherwise(fresh_bbox),
            pl.lit(',"area":'),
            pl.when(same & area.is_not_null()).then(area).otherwise(_num_text((x2 - x1) * (y2 - y1))),
            pl.lit(',"iscrowd":'),
            iscrowd,
            pl.when(same & seg.is_not_null()).then(pl.lit(',"segmentation":') + seg).otherwise(pl.lit("")),
            rest_inner,
            pl.lit("}"),
        ]
    )
    frame = boxes.with_columns(_ann_ids(source_ids).alias("ann_id"))
    return frame.select(text.alias("text")).to_series()


def _ann_ids(source_ids: bool) -> pl.Expr:
    seq = pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    if not source_ids:
        return seq
    sid = pl.col("extra").str.json_path_match("$.coco_id").cast(pl.Int64, strict=False)
    dup = sid.is_duplicated() & ~sid.is_first_distinct()
    sid = pl.when(dup).then(None).otherwise(sid)
    fresh = sid.max().fill_null(0) + pl.when(sid.is_null()).then(1).otherwise(0).cum_sum()
    return pl.when(sid.is_null()).then(fresh).otherwise(sid)


def image_entries(images: pl.DataFrame, *, source_ids: bool = False) -> tuple[list[str], list[str]]:
    """The JSON text of every image entry and of its id, in ``images`` order.

    ``images``: item_id, width, height, meta, file_name (the name to write when the meta
    has none). With ``source_ids`` an image keeps the id of the file it was imported from
    (images without one get ids above the largest).
    """
    metas = images["meta"].to_list()
    items = images["item_id"].to_list()
    ws = images["width"].to_list()
    hs = images["height"].to_list()
    names = images["file_name"].to_list()
    entries: list[dict[str, Any]] = []
    taken: set[Any] = set()
    pending: list[int] = []
    for k, (meta, item, w, h, fname) in enumerate(zip(metas, items, ws, hs, names, strict=True)):
        src: dict[str, Any] = {}
        if meta:
            try:
                parsed = json.loads(meta)
                if isinstance(parsed, dict) and isinstance(parsed.get("coco"), dict):
                    src = dict(parsed["coco"])
            except ValueError:
                src = {}
        entry: dict[str, Any] = {"id": item}
        if source_ids:
            sid = _id(src.get("id"))
            if sid is not None and sid not in taken:
                entry["id"] = sid
                taken.add(sid)
            else:
                pending.append(k)
        entry["file_name"] = src.get("file_name") or fname
        entry["width"] = w
        entry["height"] = h
        for key, v in src.items():
            if key not in entry:
                entry[key] = v
        entries.append(entry)
    if pending:
        top = max((v for v in taken if isinstance(v, int)), default=0)
        for n, k in enumerate(pending, start=1):
            entries[k]["id"] = top + n
    texts = [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in entries]
    ids = [json.dumps(e["id"], ensure_ascii=False) for e in entries]
    return texts, ids


def instances_bytes(image_texts: Sequence[str], ann_texts: Sequence[str], names: Sequence[str]) -> bytes:
    """A COCO instances document from pre-encoded image and annotation entries."""
    cats = json.dumps(categories(names), ensure_ascii=False, separators=(",", ":"))
    parts = [
        '{"images":[',
        ",".join(image_texts),
        '],"annotations":[',
        ",".join(ann_texts),
        '],"categories":',
        cats,
        "}\n",
    ]
    return "".join(parts).encode("utf-8")


def results_bytes(result_texts: Sequence[str]) -> bytes:
    """A COCO results list from pre-encoded results."""
    return ("[" + ",".join(result_texts) + "]\n").encode("utf-8")
