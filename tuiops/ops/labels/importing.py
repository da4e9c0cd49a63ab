"""Importing labels and detections: the format detected, the files read, prepared and stored as a label set or a run."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, InputError, UsageError
from tuiops.formats import FORMATS, ReadResult
from tuiops.fsutil import display_path
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job
from tuiops.ops.labels.model import DET_FORMATS, OUTSIDE, ImportRejected, ImportResult, Tolerance
from tuiops.ops.labels.prepare import prepare_import

if TYPE_CHECKING:
    from tuiops.store import Store
    from tuiops.workspace import Workspace


_SUFFIX = {"yolo": ".txt", "voc": ".xml", "coco": ".json"}


# -- import -----------------------------------------------------------------------------------------
def detect_format(src: str | Path) -> str:
    """Guess a source's format: ``.json`` → coco, ``.xml`` → voc, ``.txt`` → yolo; a folder by its files."""
    p = Path(src)
    if not p.exists():
        raise InputError(f"{display_path(p)} does not exist", hint="check the path")
    if p.is_file():
        fmt = {".json": "coco", ".xml": "voc", ".txt": "yolo"}.get(p.suffix.lower())
        if fmt is None:
            raise UsageError(
                f"cannot tell the format of {display_path(p)}", hint="give --format yolo|voc|coco"
            )
        return fmt
    has_xml = has_txt = False
    for _folder, _dirs, names in os.walk(p):
        for n in names:
            low = n.lower()
            has_xml |= low.endswith(".xml")
            has_txt |= low.endswith(".txt") and low != "classes.txt"
        if has_xml and has_txt:
            break
    if has_xml and not has_txt:
        return "voc"
    if has_txt and not has_xml:
        return "yolo"
    raise UsageError(
        f"cannot tell the format of the folder {display_path(p)} ({'both .xml and .txt' if has_xml else 'no .xml or .txt'} files)",
        hint="give --format yolo|voc|coco",
    )


def import_labels(
    ws: Workspace,
    src: str | Path,
    name: str,
    fmt: str | None = None,
    *,
    classes_file: str | Path | None = None,
    add_classes: bool = False,
    strict: bool = False,
    replace: bool = False,
    tolerance: Tolerance | None = None,
    note: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ImportResult:
    """Import a label set from YOLO txt (+ classes.txt / data.yaml), VOC XML or COCO JSON.

    ``classes_file`` names the YOLO ids (default: ``classes.txt`` or ``data.yaml`` in the
    folder; without one, ids are workspace class ids). A class name the workspace map
    lacks is an error, unless ``add_classes`` or the map is empty: then the names file's
    (or the COCO categories') missing names are appended in the file's order, or for VOC
    the missing names in the order they first appear. Raises :class:`ImportRejected` when
    ``strict`` and a problem was found; nothing is stored then.
    """
    return _import(
        ws,
        "labels",
        src,
        name,
        fmt,
        classes_file=classes_file,
        images_file=None,
        add_classes=add_classes,
        strict=strict,
        replace=replace,
        tolerance=tolerance or Tolerance(),
        note=note,
        lineage={},
        covers=None,
        progress=progress,
        cancel=cancel,
    )


def import_detections(
    ws: Workspace,
    src: str | Path,
    name: str,
    fmt: str | None = None,
    *,
    images_file: str | Path | None = None,
    classes_file: str | Path | None = None,
    add_classes: bool = False,
    strict: bool = False,
    replace: bool = False,
    tolerance: Tolerance | None = None,
    outside: str = "keep",
    weights: str | Path | None = None,
    conf: float | None = None,
    iou: float | None = None,
    epoch: int | None = None,
    covers: str | None = None,
    note: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ImportResult:
    """Import a detection run from YOLO txt with a confidence column, or COCO results JSON.

    ``images_file``: the COCO file with the images and categories a results list refers
    to. ``weights`` (its path and sha256), ``conf``, ``iou`` and ``epoch`` are recorded as
    the run's lineage. ``covers`` names a label set whose every image the run processed:
    its images without a detections file join the run with no detections.

    ``outside``: what happens to a detection that lies outside its image by more than
    ``tolerance``: ``keep`` stores it as written (a detection is a measurement; the
    result counts them), ``clip`` clips every detection to its image (those changed are
    counted; one left empty is reported and skipped), ``drop`` reports and skips it.
    """
    return _import(
        ws,
        "dets",
        src,
        name,
        fmt,
        classes_file=classes_file,
        images_file=images_file,
        add_classes=add_classes,
        strict=strict,
        replace=replace,
        tolerance=tolerance or Tolerance(),
        outside=outside,
        note=note,
        lineage={"weights": weights, "conf": conf, "iou": iou, "epoch": epoch},
        covers=covers,
        progress=progress,
        cancel=cancel,
    )


def _exists(store: Store, kind: str, name: str) -> bool:
    table = "label_sets" if kind == "labels" else "runs"
    return store.one(f"SELECT 1 FROM {table} WHERE name = ?", (name,)) is not None


def _import(
    ws: Workspace,
    kind: str,
    src: str | Path,
    name: str,
    fmt: str | None,
    *,
    classes_file: str | Path | None,
    images_file: str | Path | None,
    add_classes: bool,
    strict: bool,
    replace: bool,
    tolerance: Tolerance,
    note: str | None,
    lineage: dict[str, Any],
    outside: str = "drop",
    covers: str | None,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> ImportResult:
    src_path = Path(src)
    fmt = _checked_args(
        ws.store, kind, src_path, name, fmt, classes_file, images_file, outside, replace, covers
    )
    store = ws.store
    warnings: list[str] = []
    weights_sha = _weights_lineage(lineage, warnings)
    params = {
        "src": str(src_path),
        "name": name,
        "format": fmt,
        "strict": strict,
        "replace": replace,
        "tolerance": str(tolerance),
        "add_classes": add_classes,
    }
    if kind == "dets":
        params["outside"] = outside
    op = f"{kind}.import"
    with job(store, op, params) as jh:
        rep = Reporter(op, progress, cancel, job_id=jh.id)

        def on_file(done: int, total: int) -> None:
            rep.update(done, "reading", total=total)

        rr = _read(fmt, src_path, kind == "dets", classes_file, images_file, on_file, coco_cache(ws))
        rep.check()
        result = ImportResult(
            kind=kind,
            name=name,
            fmt=fmt,
            source=display_path(src_path),
            found=rr.found,
            names_file=rr.names_source,
            strict=strict,
            warnings=warnings + rr.warnings,
            outside=outside if kind == "dets" else "drop",
        )
        prepared = prepare_import(ws, rr, fmt, kind == "dets", tolerance, add_classes, result)
        rep.check()
        if strict and result.problem_count:
            jh.result = result.to_dict(max_problems=20)
            raise ImportRejected(result)
        if prepared.images.height == 0:
            if not rr.found:
                raise InputError(
                    f"nothing to import from {display_path(src_path)}: no {_SUFFIX[fmt]} label files found",
                    hint="check the path and --format",
                )
            jh.result = result.to_dict(max_problems=20)
            raise ImportRejected(
                result,
                f"nothing to import from {display_path(src_path)}: all {rr.found} file(s) have problems",
                hint="see the problems above",
            )
        images = prepared.images
        if covers is not None:
            images = _with_covered(store, covers, images, prepared.no_box_items)
        if prepared.new_classes:
            result.added_classes = ws.add_classes(prepared.new_classes)
        rep.update(rep.done, "storing", force=True)
        run_params = {
            "tolerance": str(tolerance),
            "outside": outside,
            **({"covers": covers} if covers else {}),
        }
        _store(
            store,
            kind,
            name,
            prepared.boxes,
            images,
            src_path,
            fmt,
            note,
            replace,
            rr,
            lineage,
            weights_sha,
            run_params,
        )
        result.images = images.height
        result.boxes = prepared.boxes.height
        result.imported = True
        jh.result = result.to_dict(max_problems=20)
    return result


def _checked_args(
    store: Store,
    kind: str,
    src_path: Path,
    name: str,
    fmt: str | None,
    classes_file: str | Path | None,
    images_file: str | Path | None,
    outside: str,
    replace: bool,
    covers: str | None,
) -> str:
    """The import's format, once its arguments are checked (an error names the one at fault)."""
    if not name or not name.strip():
        raise UsageError("the name must not be empty")
    fmt = (fmt or detect_format(src_path)).lower()
    allowed = FORMATS if kind == "labels" else DET_FORMATS
    if fmt not in allowed:
        raise UsageError(f"format {fmt!r} is not supported here; use one of {', '.join(allowed)}")
    if outside not in OUTSIDE:
        raise UsageError(f"outside must be one of {', '.join(OUTSIDE)}, not {outside!r}")
    if classes_file is not None and fmt != "yolo":
        raise UsageError(f"--classes is for YOLO files; {fmt.upper()} files name their classes themselves")
    if images_file is not None and fmt != "coco":
        raise UsageError("--images is for COCO results files")
    if not src_path.exists():
        raise InputError(f"{display_path(src_path)} does not exist", hint="check the path")
    if _exists(store, kind, name) and not replace:
        what = "label set" if kind == "labels" else "detection run"
        raise ConflictError(
            f"a {what} named {name!r} exists already",
            hint="choose another name, or pass --replace to replace it",
        )
    if covers is not None:
        store.label_set_id(covers)
    return fmt


def _weights_lineage(lineage: dict[str, Any], warnings: list[str]) -> str | None:
    """The SHA-256 of the weights file ``lineage`` names (its path made absolute there), or
    None with a warning when the file is not here."""
    weights_sha = None
    weights = lineage.get("weights")
    if weights is not None:
        wp = Path(weights)
        if wp.is_file():
            weights_sha = _sha256(wp)
            lineage["weights"] = str(wp.resolve())
        else:
            warnings.append(f"weights file {display_path(wp)} not found here: its sha256 is not recorded")
            lineage["weights"] = str(weights)
    return weights_sha


def _with_covered(store: Store, covers: str, images: Any, no_box_items: list[int]) -> Any:
    """``images`` and the images of the label set ``covers`` that the run lacks (with no
    detections), except those left out for want of a valid box."""
    import polars as pl

    extra_imgs = store.read_set_images(covers).select("item_id")
    extra_imgs = extra_imgs.join(images.select("item_id"), on="item_id", how="anti").filter(
        ~pl.col("item_id").is_in(no_box_items)
    )
    images = pl.concat(
        [
            images,
            extra_imgs.with_columns(
                pl.lit(None, pl.String).alias("source"), pl.lit(None, pl.String).alias("meta")
            ),
        ]
    )
    return images


def _store(
    store: Store,
    kind: str,
    name: str,
    boxes: Any,
    images: Any,
    src_path: Path,
    fmt: str,
    note: str | None,
    replace: bool,
    rr: ReadResult,
    lineage: dict[str, Any],
    weights_sha: str | None,
    run_params: dict[str, Any],
) -> None:
    """Store the prepared boxes and images as the label set or run ``name`` (a run with its
    lineage and ``run_params``)."""
    if kind == "labels":
        store.create_label_set(
            name,
            boxes,
            images,
            source=str(src_path.resolve()),
            fmt=fmt,
            note=note,
            replace=replace,
            meta=rr.source_meta,
        )
    else:
        store.create_run(
            name,
            boxes,
            images,
            source=str(src_path.resolve()),
            fmt=fmt,
            weights=lineage.get("weights"),
            weights_sha256=weights_sha,
            epoch=lineage.get("epoch"),
            conf=lineage.get("conf"),
            iou=lineage.get("iou"),
            params=run_params,
            note=note,
            replace=replace,
            meta=rr.source_meta,
        )


def coco_cache(ws: Workspace) -> Path:
    """The folder where a workspace keeps the image tables of the COCO files it read, so that
    ``dets import --images FILE`` does not parse a file a labels import read already."""
    return ws.root / ".cache" / "coco"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise InputError(f"cannot read the weights file {display_path(path)}: {exc.strerror}") from exc
    return h.hexdigest()


def _read(
    fmt: str,
    src: Path,
    with_score: bool,
    classes_file: str | Path | None,
    images_file: str | Path | None,
    on_file: Callable[[int, int], None],
    head_cache: Path | None = None,
) -> ReadResult:
    if fmt == "yolo":
        from tuiops.formats.classes import find_names_file, read_names_file
        from tuiops.formats.yolo import read_yolo

        names_path = Path(classes_file) if classes_file is not None else find_names_file(src)
        names = read_names_file(names_path) if names_path is not None else None
        rr = read_yolo(src, with_score=with_score, on_file=on_file)
        rr.names = names
        rr.names_source = display_path(names_path) if names_path is not None else None
        return rr
    if fmt == "voc":
        from tuiops.formats.voc import read_voc

        return read_voc(src, on_file=on_file)
    from tuiops.formats.coco import read_coco

    if src.is_dir():
        raise UsageError(f"{display_path(src)} is a folder; COCO labels are one JSON file")
    return read_coco(
        src,
        with_score=with_score,
        images_path=Path(images_file) if images_file else None,
        head_cache=head_cache,
    )
