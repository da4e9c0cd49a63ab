"""Exporting a label set or a run: YOLO txt, Pascal VOC XML or COCO JSON, and what a format cannot hold."""

from __future__ import annotations

import posixpath
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, InputError, UsageError
from tuiops.formats import FORMATS, check_relpath
from tuiops.frames import num_max
from tuiops.fsutil import atomic_writer, display_path
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job
from tuiops.ops.labels.model import DET_FORMATS, ID_CHOICES, ExportResult

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace


# -- export -----------------------------------------------------------------------------------------
def _export_images(store: Store, kind: str, name: str) -> pl.DataFrame:
    import polars as pl

    if kind == "labels":
        hid = store.label_set_id(name)
        table, fk = "set_images", "set_id"
    else:
        hid = store.run_id(name)
        table, fk = "run_images", "run_id"
    sql = (
        f"SELECT s.item_id, i.key, i.width, i.height, s.source, s.meta, f.relpath, p.root, f.mode "
        f"FROM {table} s JOIN items i ON i.id = s.item_id "
        "LEFT JOIN files f ON f.id = (SELECT min(g.id) FROM files g WHERE g.item_id = s.item_id) "
        "LEFT JOIN pools p ON p.id = f.pool_id "
        f"WHERE s.{fk} = ? ORDER BY s.item_id"
    )
    schema = {
        "item_id": pl.Int64,
        "key": pl.String,
        "width": pl.Int64,
        "height": pl.Int64,
        "source": pl.String,
        "meta": pl.String,
        "relpath": pl.String,
        "root": pl.String,
        "mode": pl.String,
    }
    return store.read_frame(sql, (hid,), schema)


def _target_names(images: pl.DataFrame, suffix: str, names: str) -> list[str]:
    """Relative output paths: the stored source path (suffix replaced) or the key."""
    out: list[str] = []
    for key, source in zip(images["key"].to_list(), images["source"].to_list(), strict=True):
        rel = None
        if names == "source" and source:
            base, ext = posixpath.splitext(source.replace("\\", "/"))
            cand = (base if ext else source) + suffix
            if check_relpath(cand):
                rel = cand
        out.append(rel or f"{key}{suffix}")
    return out


def export_labels(
    ws: Workspace,
    name: str,
    fmt: str,
    to: str | Path,
    *,
    overwrite: bool = False,
    names: str = "source",
    ids: str = "source",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ExportResult:
    """Write a label set as YOLO txt (folder), Pascal VOC XML (folder) or COCO JSON (file).

    ``names``: ``source`` names each file after the file it was imported from (keeping its
    sub-folder), falling back to the image key; ``key`` always uses the key. ``ids``
    (COCO): ``source`` keeps the image, category and annotation ids of the imported COCO
    file (tuiops' numbering for what has none); ``tuiops`` (or ``item``) numbers them:
    item ids, class id + 1, 1..N (see :mod:`tuiops.formats.coco`).
    """
    return _export(ws, "labels", name, fmt, Path(to), overwrite, names, ids, None, progress, cancel)


def export_detections(
    ws: Workspace,
    name: str,
    fmt: str,
    to: str | Path,
    *,
    overwrite: bool = False,
    names: str = "source",
    ids: str = "source",
    images_to: str | Path | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ExportResult:
    """Write a detection run as YOLO txt with a confidence column (folder) or COCO results JSON.

    COCO also writes the images and categories the results refer to, to ``images_to``
    (default: beside the results, ``<name>_images.json``). ``ids`` as for
    :func:`export_labels`: by default a run imported from COCO results goes back out with
    the image and category ids of its COCO file, so pycocotools reads it with the
    user's own ground truth; a run from other files takes the ids of the label set
    imported from COCO that shares the most images with it (the newest on a tie).
    """
    return _export(ws, "dets", name, fmt, Path(to), overwrite, names, ids, images_to, progress, cancel)


def _export(
    ws: Workspace,
    kind: str,
    name: str,
    fmt: str,
    to: Path,
    overwrite: bool,
    names: str,
    ids: str,
    images_to: str | Path | None,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> ExportResult:
    from tuiops.formats import write_tree

    fmt = fmt.lower()
    allowed = FORMATS if kind == "labels" else DET_FORMATS
    if fmt not in allowed:
        raise UsageError(f"format {fmt!r} is not supported here; use one of {', '.join(allowed)}")
    if names not in ("source", "key"):
        raise UsageError(f"--names must be source or key, not {names!r}")
    if ids not in ID_CHOICES:
        raise UsageError(f"--ids must be one of {', '.join(ID_CHOICES)}, not {ids!r}")
    store = ws.store
    images = _export_images(store, kind, name)
    boxes = (
        store.read_labels(name, with_extra=True)
        if kind == "labels"
        else store.read_detections(name, with_extra=True)
    )
    classes = list(ws.classes)
    top = num_max(boxes["class_id"])
    if top is not None and top >= len(classes):
        raise InputError(
            f"{name!r} has boxes of class id {top}, beyond the workspace class map",
            hint="restore the class map in tuiops.toml",
        )
    op = f"{kind}.export"
    result = ExportResult(kind, name, fmt, display_path(to), images=images.height, boxes=boxes.height)
    if kind == "labels":
        result.not_carried = not_carried(boxes, fmt)
    params = {"name": name, "format": fmt, "to": str(to), "overwrite": overwrite}
    with job(store, op, params, total=images.height) as jh:
        rep = Reporter(op, progress, cancel, total=images.height, job_id=jh.id)

        def on_file(done: int, total: int) -> None:
            rep.update(done, "writing", total=total)

        if fmt == "coco":
            from tuiops.ops.coco_source import borrow_coco_ids, source_meta

            source = source_meta(store, kind, name) if ids == "source" else {}
            if kind == "dets" and ids == "source" and not source:
                source, images = borrow_coco_ids(store, name, images)
            written = _export_coco(kind, images, boxes, classes, to, overwrite, ids, images_to, source)
        else:
            if fmt == "yolo":
                from tuiops.formats.classes import CLASSES_TXT, classes_txt_bytes
                from tuiops.formats.yolo import yolo_texts

                texts = yolo_texts(boxes, images, with_score=kind == "dets")
                rels = _target_names(images, ".txt", names)
                payload = [
                    (rel, t.encode("utf-8")) for rel, t in zip(rels, texts["text"].to_list(), strict=True)
                ]
                if any(r.lower() == CLASSES_TXT for r in rels):
                    raise ConflictError(
                        f"an image would be written to {CLASSES_TXT}; export with --names key"
                    )
                payload.append((CLASSES_TXT, classes_txt_bytes(classes)))
            else:
                payload = _voc_payload(images, boxes, classes, names, rep)
            rep.check()
            written = write_tree(to, payload, overwrite=overwrite, on_file=on_file)
        result.files = len(written)
        result.written = [display_path(p) for p in written[:20]]
        jh.result = result.to_dict()
    return result


def not_carried(boxes: pl.DataFrame, fmt: str) -> dict[str, int]:
    """Boxes (with their ``extra``) per attribute of their source that ``fmt`` cannot hold: the
    VOC flags and other tags of boxes from VOC (a COCO export writes none of them), and a COCO
    box's crowd flag and segmentation outside COCO. Nothing for the format a box came from."""
    import polars as pl

    from tuiops.formats.voc import uncarried

    ex = pl.col("extra")
    checks = uncarried(ex, flags_held=False) if fmt != "voc" else {}
    if fmt != "coco":
        seg = ex.str.json_path_match("$.coco_seg")
        checks["iscrowd"] = (ex.str.json_path_match("$.iscrowd") == "1").fill_null(False)
        checks["segmentation"] = (seg.is_not_null() & (seg != "[]")).fill_null(False)
    if not checks or boxes.height == 0:
        return {}
    counts = boxes.select(*[e.sum().alias(k) for k, e in checks.items()]).row(0, named=True)
    return {k: int(n) for k, n in counts.items() if n}


def _voc_payload(
    images: pl.DataFrame, boxes: pl.DataFrame, classes: list[str], names: str, rep: Reporter
) -> list[tuple[str, bytes]]:
    import polars as pl

    from tuiops.formats.voc import mode_depth, voc_documents

    rels = _target_names(images, ".xml", names)
    heads: list[tuple[str, str, str, int]] = []
    for key, relpath, root, mode in images.select("key", "relpath", "root", "mode").iter_rows():
        if relpath:
            img = PurePosixPath(relpath)
            folder = img.parent.name or (Path(root).name if root else "")
            full = str(Path(root) / relpath) if root else relpath
            heads.append((folder, img.name, full, mode_depth(mode)))
        else:
            heads.append(("", f"{key}.jpg", f"{key}.jpg", mode_depth(mode)))
    docs = images.select("item_id", "meta", "width", "height").hstack(
        pl.DataFrame(
            heads,
            schema={"folder": pl.String, "filename": pl.String, "path": pl.String, "depth": pl.Int64},
            orient="row",
        )
    )
    objects = boxes.select(
        "item_id",
        pl.col("class_id").replace_strict(dict(enumerate(classes)), return_dtype=pl.String).alias("name"),
        "x1",
        "y1",
        "x2",
        "y2",
        "extra",
    )
    datas = voc_documents(docs, objects, check=rep.check, every=256)
    return list(zip(rels, datas, strict=True))


def _export_coco(
    kind: str,
    images: pl.DataFrame,
    boxes: pl.DataFrame,
    classes: list[str],
    to: Path,
    overwrite: bool,
    ids: str,
    images_to: str | Path | None,
    source: dict[str, Any],
) -> list[str]:
    import polars as pl

    from tuiops.formats import check_target_file
    from tuiops.formats.coco import (
        annotation_texts,
        image_entries,
        instances_bytes,
        results_bytes,
        source_categories,
    )

    file_name = (
        pl.when(pl.col("relpath").is_not_null())
        .then(pl.col("relpath").str.split("/").list.last())
        .otherwise(pl.col("key") + ".jpg")
    )
    imgs = images.with_columns(file_name.alias("file_name"))
    img_texts, img_ids = image_entries(imgs, source_ids=ids == "source")
    id_map = pl.DataFrame(
        {"item_id": imgs["item_id"], "image_id_json": img_ids},
        schema={"item_id": pl.Int64, "image_id_json": pl.String},
    )
    b = boxes.join(id_map, on="item_id", how="left", maintain_order="left")
    with_score = kind == "dets"
    used = boxes["class_id"].unique().to_list() if boxes.height else []
    cat_entries, cat_ids = source_categories(classes, source.get("categories"), used)
    head: dict[str, Any] = {k: source[k] for k in ("info", "licenses") if k in source}
    anns = annotation_texts(
        b, with_score=with_score, source_ids=ids == "source", category_ids=cat_ids
    ).to_list()
    if not with_score:
        check_target_file(to, overwrite)
        with atomic_writer(to) as fh:
            fh.write(instances_bytes(img_texts, anns, classes, cat_entries=cat_entries, head=head))
        return [display_path(to)]
    img_path = Path(images_to) if images_to is not None else to.with_name(f"{to.stem}_images.json")
    if img_path.resolve() == to.resolve():
        raise UsageError("the results and the images file must be two different files")
    check_target_file(to, overwrite)
    check_target_file(img_path, overwrite)
    with atomic_writer(img_path) as fh:
        fh.write(instances_bytes(img_texts, [], classes, cat_entries=cat_entries, head=head))
    with atomic_writer(to) as fh:
        fh.write(results_bytes(anns))
    return [display_path(to), display_path(img_path)]
