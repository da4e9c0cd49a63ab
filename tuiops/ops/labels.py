"""Import and export label sets and detection runs: YOLO txt, Pascal VOC XML, COCO JSON.

Import
    A label file's image is found by its key (the file's stem, or a COCO entry's
    ``file_name``, through the workspace's key pattern); the image must be in the store
    (a scanned pool) with its size. Class names map to the workspace class map by name;
    the map is never re-ordered by a file (an empty map takes the first file's classes,
    in the file's order). Every line/object is checked (field count,
    numbers, NaN/inf, class id, width/height > 0, inside the image within a tolerance;
    coordinates within the tolerance are kept as written, never clipped). A detection
    outside its image is a measurement, not a mistake: it is kept as written and
    counted, unless the import asks to clip or drop such detections. Problems are
    reported per file and line: by default the bad lines and files are skipped and the
    rest is stored; with ``strict`` any problem rejects the whole import. A file (or a
    COCO image) whose every box had a problem is left out, listed and counted apart: only
    an empty file (or one of blank lines, or a COCO image without annotations) is an image
    with no objects. Either way an import is one transaction: it is stored completely or
    not at all.

Export
    Writes the files of a set or run: YOLO (one ``.txt`` per image of the set, also
    empty ones, plus ``classes.txt`` from the workspace map), VOC (one ``.xml`` per
    image), COCO (one JSON file). A folder export is staged and renamed into place, so
    a failure leaves nothing new behind; existing files are never overwritten unless
    asked.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, InputError, UsageError
from tuiops.formats import FORMATS, ReadResult, check_relpath, concat_problems
from tuiops.frames import num_max
from tuiops.fsutil import atomic_writer, display_path
from tuiops.keys import parse_keys
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job

if TYPE_CHECKING:
    import polars as pl
    from polars.expr.whenthen import ChainedThen, Then

    from tuiops.store import Store
    from tuiops.workspace import Workspace

DET_FORMATS = ("yolo", "coco")
#: COCO export ids: the imported file's (``source``) or tuiops' numbering (``tuiops``, alias ``item``).
ID_CHOICES = ("source", "tuiops", "item")
#: What `dets import` does with a detection outside its image: keep it as written, clip it, drop it.
OUTSIDE = ("keep", "clip", "drop")
_SUFFIX = {"yolo": ".txt", "voc": ".xml", "coco": ".json"}


# -- options ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """How far a box may lie outside its image and still be accepted (as written).

    The allowance on each side is the larger of ``pct`` percent of that side and ``px``
    pixels. The default, 0.5 % or 2 px, absorbs rounding in normalised coordinates.
    """

    pct: float = 0.5
    px: float = 2.0

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """Parse ``"0.5%"``, ``"2px"``, ``"2"`` (pixels) or both, ``"0.5%,2px"``."""
        pct = px = 0.0
        parts = [p.strip().lower() for p in text.replace(" ", "").split(",") if p.strip()]
        if not parts:
            raise UsageError(f"invalid tolerance {text!r}", hint="use e.g. 0.5%, 2px or 0.5%,2px")
        for part in parts:
            m = re.fullmatch(r"([0-9]*\.?[0-9]+)(%|px)?", part)
            if m is None:
                raise UsageError(f"invalid tolerance {text!r}", hint="use e.g. 0.5%, 2px or 0.5%,2px")
            value = float(m.group(1))
            if m.group(2) == "%":
                pct = value
            else:
                px = value
        return cls(pct=pct, px=px)

    def __str__(self) -> str:
        return f"{self.pct:g}%,{self.px:g}px"


# -- results ----------------------------------------------------------------------------------------
@dataclass
class ImportResult:
    """What an import found and stored."""

    kind: str
    name: str
    fmt: str
    source: str
    found: int = 0
    images: int = 0
    boxes: int = 0
    files_skipped: int = 0
    boxes_skipped: int = 0
    boxes_outside: int = 0
    boxes_clipped: int = 0
    outside: str = "keep"
    problems: Any = None
    added_classes: list[str] = field(default_factory=list)
    classes_adopted: bool = False
    images_without_boxes: int = 0
    names_file: str | None = None
    strict: bool = False
    imported: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def problem_count(self) -> int:
        return 0 if self.problems is None else int(self.problems.height)

    def problem_lines(self, limit: int | None = None) -> list[str]:
        """Problems as ``file:line: message`` lines (``file: message`` without a line)."""
        if self.problems is None or self.problems.height == 0:
            return []
        rows = self.problems if limit is None else self.problems.head(limit)
        return [
            f"{f}:{ln}: {m}" if ln is not None else f"{f}: {m}"
            for f, ln, m in rows.select("file", "line", "message").iter_rows()
        ]

    def to_dict(self, max_problems: int | None = None) -> dict[str, Any]:
        """A JSON-ready summary (all problems unless ``max_problems``)."""
        rows = self.problems
        if rows is not None and max_problems is not None:
            rows = rows.head(max_problems)
        return {
            "kind": self.kind,
            "set" if self.kind == "labels" else "run": self.name,
            "format": self.fmt,
            "source": self.source,
            "imported": self.imported,
            "strict": self.strict,
            "files": self.found,
            "files_skipped": self.files_skipped,
            "images": self.images,
            "boxes": self.boxes,
            "boxes_skipped": self.boxes_skipped,
            "images_without_boxes": self.images_without_boxes,
            **(
                {
                    "outside": self.outside,
                    "boxes_outside": self.boxes_outside,
                    "boxes_clipped": self.boxes_clipped,
                }
                if self.kind == "dets"
                else {}
            ),
            "problem_count": self.problem_count,
            "problems": [] if rows is None or not len(rows) else rows.to_dicts(),
            "added_classes": self.added_classes,
            "classes_adopted": self.classes_adopted,
            "names_file": self.names_file,
            "warnings": self.warnings,
        }


class ImportRejected(InputError):
    """An import stored nothing because of its problems (strict, or nothing was left).

    ``result`` lists the problems.
    """

    def __init__(self, result: ImportResult, message: str | None = None, hint: str | None = None) -> None:
        what = "label set" if result.kind == "labels" else "detection run"
        super().__init__(
            message
            or (
                f"{result.problem_count} problem(s) in {result.source}; nothing imported "
                f"(--strict rejects the whole {what} {result.name!r})"
            ),
            hint=hint or "fix the files, or import without --strict to skip the bad lines",
        )
        self.result = result


@dataclass
class ExportResult:
    """What an export wrote."""

    kind: str
    name: str
    fmt: str
    target: str
    files: int = 0
    images: int = 0
    boxes: int = 0
    written: list[str] = field(default_factory=list)
    #: boxes per attribute of their source (VOC flags and tags, COCO crowds and segmentations)
    #: that the format cannot hold, so the files written do not state it
    not_carried: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "set" if self.kind == "labels" else "run": self.name,
            "format": self.fmt,
            "target": self.target,
            "files": self.files,
            "images": self.images,
            "boxes": self.boxes,
            "not_carried": self.not_carried,
            "written": self.written[:20],
        }


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
    store = ws.store
    if _exists(store, kind, name) and not replace:
        what = "label set" if kind == "labels" else "detection run"
        raise ConflictError(
            f"a {what} named {name!r} exists already",
            hint="choose another name, or pass --replace to replace it",
        )
    if covers is not None:
        store.label_set_id(covers)
    weights_sha = None
    warnings: list[str] = []
    weights = lineage.get("weights")
    if weights is not None:
        wp = Path(weights)
        if wp.is_file():
            weights_sha = _sha256(wp)
            lineage["weights"] = str(wp.resolve())
        else:
            warnings.append(f"weights file {display_path(wp)} not found here: its sha256 is not recorded")
            lineage["weights"] = str(weights)
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

        rr = _read(fmt, src_path, kind == "dets", classes_file, images_file, on_file)
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
        prepared = _prepare(ws, rr, fmt, kind == "dets", tolerance, add_classes, result)
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
            import polars as pl

            extra_imgs = store.read_set_images(covers).select("item_id")
            extra_imgs = extra_imgs.join(images.select("item_id"), on="item_id", how="anti").filter(
                ~pl.col("item_id").is_in(prepared.no_box_items)
            )
            images = pl.concat(
                [
                    images,
                    extra_imgs.with_columns(
                        pl.lit(None, pl.String).alias("source"), pl.lit(None, pl.String).alias("meta")
                    ),
                ]
            )
        if prepared.new_classes:
            result.added_classes = ws.add_classes(prepared.new_classes)
        rep.update(rep.done, "storing", force=True)
        if kind == "labels":
            store.create_label_set(
                name,
                prepared.boxes,
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
                prepared.boxes,
                images,
                source=str(src_path.resolve()),
                fmt=fmt,
                weights=lineage.get("weights"),
                weights_sha256=weights_sha,
                epoch=lineage.get("epoch"),
                conf=lineage.get("conf"),
                iou=lineage.get("iou"),
                params={
                    "tolerance": str(tolerance),
                    "outside": outside,
                    **({"covers": covers} if covers else {}),
                },
                note=note,
                replace=replace,
                meta=rr.source_meta,
            )
        result.images = images.height
        result.boxes = prepared.boxes.height
        result.imported = True
        jh.result = result.to_dict(max_problems=20)
    return result


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
    return read_coco(src, with_score=with_score, images_path=Path(images_file) if images_file else None)


@dataclass
class _Prepared:
    boxes: Any
    images: Any
    new_classes: list[str]
    #: images left out because every box of their file had a problem
    no_box_items: list[int] = field(default_factory=list)


def lookup_items(store: Store, keys: list[str]) -> pl.DataFrame:
    """The items of ``keys``: key, item_id, width, height (keys not in the store are absent)."""
    import polars as pl

    schema = {"key": pl.String, "item_id": pl.Int64, "width": pl.Int64, "height": pl.Int64}
    uniq = pl.DataFrame({"key": keys}, schema={"key": pl.String}).unique()
    if uniq.height == 0:
        return pl.DataFrame(schema=schema)
    with store.bulk() as tx:
        tx.ingest("_tuiops_label_keys", uniq, temporary=True, mode="replace")
        found = tx.read_frame(
            "SELECT i.key AS key, i.id AS item_id, i.width AS width, i.height AS height "
            "FROM items i JOIN temp._tuiops_label_keys k ON k.key = i.key"
        )
        tx.execute("DROP TABLE temp._tuiops_label_keys")
    if found.height == 0:
        return pl.DataFrame(schema=schema)
    return found.select([pl.col(k).cast(v) for k, v in schema.items()])


def _prepare(
    ws: Workspace,
    rr: ReadResult,
    fmt: str,
    with_score: bool,
    tol: Tolerance,
    add_classes: bool,
    result: ImportResult,
) -> _Prepared:
    import polars as pl

    files = rr.files
    keys = parse_keys(files["path"].to_list(), ws.key_rx)
    files = files.with_columns(keys["key"], keys["keyed"])
    items = lookup_items(ws.store, files["key"].unique().to_list())
    files = files.join(items, on="key", how="left", maintain_order="left")
    if "size_w" not in files.columns:
        files = files.with_columns(
            pl.lit(None, pl.Int64).alias("size_w"), pl.lit(None, pl.Int64).alias("size_h")
        )
    files = files.sort("path", maintain_order=True).with_columns(
        pl.col("path").first().over("item_id").alias("first_path"),
        (pl.int_range(pl.len()).over("item_id") == 0).alias("first"),
    )
    sw, sh = pl.col("size_w"), pl.col("size_h")
    W, H = pl.col("width"), pl.col("height")
    swapped = (sw == H) & (sh == W)
    size_given = sw.is_not_null() & sh.is_not_null() & (sw > 0) & (sh > 0)
    key_note = pl.when(pl.col("keyed")).then(pl.lit("")).otherwise(pl.lit(" (the name has no image key)"))
    fmsg = (
        pl.when(pl.col("item_id").is_null())
        .then(
            pl.format(
                "label without an image: no image with key '{}' in the store{}; scan the pool that holds it first (`tuiops scan`)",
                pl.col("key"),
                key_note,
            )
        )
        .when(W.is_null() | H.is_null() | (W <= 0) | (H <= 0))
        .then(
            pl.format(
                "label without an image: the size of image '{}' is unknown; scan its pool first (`tuiops scan`)",
                pl.col("key"),
            )
        )
        .when(~pl.col("first"))
        .then(
            pl.format(
                "another label file has the same image key '{}': {} (this one is skipped)",
                pl.col("key"),
                pl.col("first_path"),
            )
        )
        .when(size_given & ((sw != W) | (sh != H)))
        .then(
            pl.format(
                "size {}x{} in the file differs from the pool image's {}x{}{}",
                sw,
                sh,
                W,
                H,
                pl.when(swapped)
                .then(pl.lit(" (rotated? check the image's EXIF orientation)"))
                .otherwise(pl.lit("")),
            )
        )
        .otherwise(None)
    )
    files = files.with_columns(fmsg.alias("fmsg"))
    rejected = files.filter(pl.col("fmsg").is_not_null())
    accepted = files.filter(pl.col("fmsg").is_null())
    if fmt == "coco":
        file_problems = rejected.select(
            pl.lit(rr.names_source or result.source).alias("file"),
            pl.lit(None, pl.Int64).alias("line"),
            pl.format("image '{}': {}", pl.col("path"), pl.col("fmsg")).alias("message"),
        )
    else:
        file_problems = rejected.select(
            pl.col("path").alias("file"),
            pl.lit(None, pl.Int64).alias("line"),
            pl.col("fmsg").alias("message"),
        )
    read_problems = rr.problems.filter(
        ~(pl.col("line").is_not_null() & pl.col("file").is_in(rejected["path"].to_list()))
    )
    boxes = rr.boxes.join(
        accepted.select("file_idx", "path", "item_id", "width", "height"),
        on="file_idx",
        how="inner",
        maintain_order="left",
    )
    skipped_in_files = rr.boxes.height - boxes.height

    # classes
    new_classes: list[str] = []
    ws_classes = list(ws.classes)
    name_col: pl.Expr | None = None
    if fmt == "yolo" and rr.names is not None:
        name_col = pl.col("cls").replace_strict(
            dict(enumerate(rr.names)), default=None, return_dtype=pl.String
        )
        boxes = boxes.with_columns(name_col.alias("name"))
    if "name" in boxes.columns:
        used = (
            boxes.filter(pl.col("name").is_not_null())
            .group_by("name", maintain_order=True)
            .agg(pl.len().alias("n"), pl.col("path").first().alias("first"))
        )
        known = {n: i for i, n in enumerate(ws_classes)}
        unknown = used.filter(~pl.col("name").is_in(list(known)))
        if unknown.height:
            # an empty map adopts the first file's classes; after that it only grows on request
            result.classes_adopted = not ws_classes
            if not (add_classes or result.classes_adopted):
                shown = "; ".join(
                    f"{n!r} ({c} box{'es' if c != 1 else ''}, first in {f})"
                    for n, c, f in unknown.head(10).iter_rows()
                )
                more = f" and {unknown.height - 10} more" if unknown.height > 10 else ""
                raise InputError(
                    f"class names not in the workspace class map: {shown}{more}",
                    hint="pass --add-classes to append them to the map (ids never change), "
                    "or fix the names; `tuiops classes list` shows the map",
                )
            new_classes = unknown["name"].to_list()
            if rr.names is not None:
                new_classes = [n for n in dict.fromkeys(rr.names) if n not in known]
            for n in new_classes:
                known[n] = len(known)
        boxes = boxes.with_columns(
            pl.col("name").replace_strict(known, default=None, return_dtype=pl.Int64).alias("class_id")
        )
    else:
        boxes = boxes.with_columns(pl.col("cls").alias("class_id"))

    # pixels
    Wf, Hf = pl.col("width").cast(pl.Float64), pl.col("height").cast(pl.Float64)
    checks: list[tuple[pl.Expr, pl.Expr]] = []
    if fmt == "yolo":
        boxes = boxes.with_columns(
            ((pl.col("cx") - pl.col("w") / 2.0) * Wf).alias("x1"),
            ((pl.col("cy") - pl.col("h") / 2.0) * Hf).alias("y1"),
            ((pl.col("cx") + pl.col("w") / 2.0) * Wf).alias("x2"),
            ((pl.col("cy") + pl.col("h") / 2.0) * Hf).alias("y2"),
        )
        if rr.names is not None:
            checks.append(
                (
                    pl.col("name").is_null(),
                    pl.format(
                        "class id {} is not in {} (ids 0..{})",
                        pl.col("cls"),
                        pl.lit(Path(rr.names_source or "the names file").name),
                        pl.lit(len(rr.names) - 1),
                    ),
                )
            )
        else:
            checks.append(
                (
                    pl.col("class_id") >= len(ws_classes),
                    pl.format(
                        "unknown class id {}: the workspace class map has {} (`tuiops classes list`); "
                        "give the file's classes.txt with --classes",
                        pl.col("class_id"),
                        pl.lit(f"ids 0..{len(ws_classes) - 1}" if ws_classes else "no classes"),
                    ),
                )
            )
    elif fmt == "voc":
        from tuiops.formats.voc import COORDS

        checks.append((pl.col("name").is_null() | (pl.col("name") == ""), pl.lit("the object has no <name>")))
        for tag in COORDS:
            checks.append((pl.col(tag).is_null(), pl.lit(f"the object has no <bndbox><{tag}>")))
            checks.append(
                (
                    pl.col(tag).cast(pl.Float64, strict=False).is_null(),
                    pl.format(f"<{tag}> is not a number: '{{}}'", pl.col(tag)),
                )
            )
        boxes = boxes.with_columns(
            pl.col("xmin").cast(pl.Float64, strict=False).alias("x1"),
            pl.col("ymin").cast(pl.Float64, strict=False).alias("y1"),
            pl.col("xmax").cast(pl.Float64, strict=False).alias("x2"),
            pl.col("ymax").cast(pl.Float64, strict=False).alias("y2"),
        )
    else:
        boxes = boxes.with_columns(
            pl.col("x").alias("x1"),
            pl.col("y").alias("y1"),
            (pl.col("x") + pl.col("bw")).alias("x2"),
            (pl.col("y") + pl.col("bh")).alias("y2"),
        )
    x1, y1, x2, y2 = (pl.col(c) for c in ("x1", "y1", "x2", "y2"))
    tx = pl.max_horizontal(pl.lit(tol.px), Wf * (tol.pct / 100.0))
    ty = pl.max_horizontal(pl.lit(tol.px), Hf * (tol.pct / 100.0))
    finite = x1.is_finite() & y1.is_finite() & x2.is_finite() & y2.is_finite()
    if with_score:
        checks.append((~pl.col("score").is_finite(), pl.lit("the confidence is NaN or infinite")))
        checks.append(
            (
                (pl.col("score") < 0) | (pl.col("score") > 1),
                pl.format("confidence {} is outside 0..1", pl.col("score")),
            )
        )
    coords = pl.format("({}, {}, {}, {})", x1.round(2), y1.round(2), x2.round(2), y2.round(2))
    checks.append((~finite, pl.lit("NaN or infinite coordinate")))
    checks.append(
        ((x2 <= x1) | (y2 <= y1), pl.format("empty or inverted box {}: needs x1 < x2 and y1 < y2", coords))
    )
    beyond = (x1 < -tx) | (y1 < -ty) | (x2 > Wf + tx) | (y2 > Hf + ty)
    if with_score and result.outside != "drop":
        beyond = pl.lit(False)
    checks.append(
        (
            beyond,
            pl.format(
                "box {} lies outside the {}x{} image by more than the tolerance ({}); fix the box or pass --tolerance",
                coords,
                pl.col("width"),
                pl.col("height"),
                pl.lit(str(tol)),
            ),
        )
    )
    cond0, msg0 = checks[0]
    chain: Then | ChainedThen = pl.when(cond0).then(msg0)
    for cond, msg in checks[1:]:
        chain = chain.when(cond).then(msg)
    cmsg = chain.otherwise(pl.lit("invalid box"))
    loc = pl.col("loc")
    boxes = boxes.with_columns(pl.any_horizontal([c for c, _ in checks]).fill_null(True).alias("bad"))
    box_problems = boxes.filter(pl.col("bad")).select(
        (pl.lit(result.source) if fmt == "coco" else pl.col("path")).alias("file"),
        pl.col("line"),
        pl.when(loc.is_not_null()).then(pl.format("{}: {}", loc, cmsg)).otherwise(cmsg).alias("message"),
    )
    good = boxes.filter(~pl.col("bad"))
    if with_score and result.outside != "drop":
        good, clip_problems = _outside_detections(good, tol, result)
        box_problems = pl.concat([box_problems, clip_problems])
    crowded = _crowded_files(good, accepted, result.source if fmt == "coco" else None, with_score)
    if crowded.height:
        file_problems = concat_problems([file_problems, crowded.drop("file_idx", "n")])
        accepted = accepted.join(crowded.select("file_idx"), on="file_idx", how="anti")
        good = good.join(crowded.select("file_idx"), on="file_idx", how="anti")
    problems = concat_problems([read_problems, file_problems, box_problems])
    src = Path(result.source)
    prefix = result.source if result.source.endswith("/") else result.source + "/"
    if fmt != "coco":
        # name files as the user can open them: the source folder joined with the relative path
        if src.is_dir():
            problems = problems.with_columns((pl.lit(prefix) + pl.col("file")).alias("file"))
        else:
            problems = problems.with_columns(pl.lit(result.source).alias("file"))
    result.files_skipped = rr.found - accepted.height
    no_box = _files_without_valid_boxes(rr, accepted, read_problems, boxes.filter(pl.col("bad")), good)
    if no_box.height:
        if fmt == "coco":
            where = pl.lit(result.source)
            what = pl.format("image '{}': {}", pl.col("path"), pl.lit(_NO_VALID_BOX))
        else:
            where = pl.lit(prefix) + pl.col("path") if src.is_dir() else pl.lit(result.source)
            what = pl.lit(_NO_VALID_BOX)
        no_box_problems = no_box.select(
            where.alias("file"), pl.lit(None, pl.Int64).alias("line"), what.alias("message")
        )
        problems = concat_problems([problems, no_box_problems])
        accepted = accepted.join(no_box.select("file_idx"), on="file_idx", how="anti")
    result.images_without_boxes = no_box.height
    result.problems = problems
    result.boxes_skipped = (
        int(read_problems["line"].is_not_null().sum())
        + rr.bad_boxes
        + box_problems.height
        + skipped_in_files
        + int(crowded["n"].sum())
    )
    out_cols = ["item_id", "class_id", "x1", "y1", "x2", "y2"]
    if with_score:
        out_cols.append("score")
    out_cols.append("extra")
    out_boxes = good.select(out_cols)
    images = accepted.sort("file_idx").select(
        "item_id", pl.col("path").alias("source"), pl.col("meta").cast(pl.String)
    )
    return _Prepared(out_boxes, images, new_classes, no_box["item_id"].to_list())


def _crowded_files(
    good: pl.DataFrame, accepted: pl.DataFrame, coco_file: str | None, with_score: bool
) -> pl.DataFrame:
    """The files whose image has more valid boxes than the store holds per image, as
    problems (file, line, message) with their file_idx and box count ``n``; a COCO
    image's problem names ``coco_file`` and the image."""
    import polars as pl

    from tuiops.store.db import MAX_ORD

    limit = MAX_ORD + 1
    counts = good.group_by("file_idx").agg(pl.len().alias("n")).filter(pl.col("n") > limit)
    what = (
        f"boxes; a detection run holds at most {limit} per image: the image is skipped "
        "(run NMS or raise the confidence threshold first)"
        if with_score
        else f"boxes; a label set holds at most {limit} per image: the image is skipped"
    )
    rows = counts.join(accepted.select("file_idx", "path"), on="file_idx").sort("file_idx")
    message = pl.format("{} " + what, pl.col("n"))
    if coco_file is not None:
        message = pl.format("image '{}' has {}", pl.col("path"), message)
    else:
        message = pl.format("the image has {}", message)
    return rows.select(
        "file_idx",
        "n",
        (pl.col("path") if coco_file is None else pl.lit(coco_file)).alias("file"),
        pl.lit(None, pl.Int64).alias("line"),
        message.alias("message"),
    )


_NO_VALID_BOX = (
    "no valid box: every box had a problem (listed), so the image is not added; "
    "an empty label file (or only blank lines) marks an image with no objects"
)


def _files_without_valid_boxes(
    rr: ReadResult, accepted: pl.DataFrame, read_problems: pl.DataFrame, bad: pl.DataFrame, good: pl.DataFrame
) -> pl.DataFrame:
    """The accepted files (file_idx, path, item_id) that had a box with a problem and kept none.

    A box's problem is known by its file: a reader's problem with a line in that file, a
    reader's ``bad_box_files`` (where its problems name no image file, as in COCO), or a
    box that failed the checks here. A file with no box and no problem is an image with
    no objects and stays.
    """
    import polars as pl

    lines = read_problems.filter(pl.col("line").is_not_null()).select(pl.col("file").alias("path")).unique()
    had_bad = pl.concat(
        [
            accepted.join(lines, on="path", how="semi")["file_idx"],
            bad["file_idx"],
            pl.Series("file_idx", rr.bad_box_files, dtype=pl.Int64),
        ]
    ).unique()
    return accepted.filter(
        pl.col("file_idx").is_in(had_bad.implode())
        & ~pl.col("file_idx").is_in(good["file_idx"].unique().implode())
    ).select("file_idx", "path", "item_id")


def _outside_detections(
    good: pl.DataFrame, tol: Tolerance, result: ImportResult
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Count the detections outside their image beyond ``tol``; with ``clip``, clip every
    detection to its image (a box left empty is reported and skipped)."""
    import polars as pl

    Wf, Hf = pl.col("width").cast(pl.Float64), pl.col("height").cast(pl.Float64)
    x1, y1, x2, y2 = (pl.col(c) for c in ("x1", "y1", "x2", "y2"))
    tx = pl.max_horizontal(pl.lit(tol.px), Wf * (tol.pct / 100.0))
    ty = pl.max_horizontal(pl.lit(tol.px), Hf * (tol.pct / 100.0))
    beyond = (x1 < -tx) | (y1 < -ty) | (x2 > Wf + tx) | (y2 > Hf + ty)
    result.boxes_outside = int(good.select(beyond.sum()).item() or 0)
    empty = pl.DataFrame(schema={"file": pl.String, "line": pl.Int64, "message": pl.String})
    if result.outside != "clip":
        return good, empty
    crossing = (x1 < 0) | (y1 < 0) | (x2 > Wf) | (y2 > Hf)
    clipped = good.with_columns(
        crossing.alias("_crossing"),
        x1.clip(0.0, Wf).alias("_x1"),
        y1.clip(0.0, Hf).alias("_y1"),
        x2.clip(0.0, Wf).alias("_x2"),
        y2.clip(0.0, Hf).alias("_y2"),
    )
    nothing = (pl.col("_x2") <= pl.col("_x1")) | (pl.col("_y2") <= pl.col("_y1"))
    coords = pl.format("({}, {}, {}, {})", x1.round(2), y1.round(2), x2.round(2), y2.round(2))
    gone = clipped.filter(nothing)
    problems = gone.select(
        (pl.lit(result.source) if result.fmt == "coco" else pl.col("path")).alias("file"),
        pl.col("line"),
        pl.format(
            "{}box {} lies entirely outside the {}x{} image: clipping leaves nothing (skipped)",
            pl.when(pl.col("loc").is_not_null()).then(pl.col("loc") + pl.lit(": ")).otherwise(pl.lit("")),
            coords,
            pl.col("width"),
            pl.col("height"),
        ).alias("message"),
    )
    kept = clipped.filter(~nothing)
    result.boxes_clipped = int(kept["_crossing"].sum())
    kept = kept.with_columns(
        pl.col("_x1").alias("x1"),
        pl.col("_y1").alias("y1"),
        pl.col("_x2").alias("x2"),
        pl.col("_y2").alias("y2"),
    ).drop("_crossing", "_x1", "_y1", "_x2", "_y2")
    return kept, problems


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


_DEPTH = {
    "1": 1,
    "L": 1,
    "P": 3,
    "RGB": 3,
    "RGBA": 4,
    "CMYK": 4,
    "LA": 2,
    "I;16": 1,
    "I": 1,
    "F": 1,
    "YCbCr": 3,
}


def _voc_payload(
    images: pl.DataFrame, boxes: pl.DataFrame, classes: list[str], names: str, rep: Reporter
) -> list[tuple[str, bytes]]:
    from tuiops.formats.voc import VocBox, VocHeader, voc_document

    by_item: dict[int, list[VocBox]] = {}
    cols = boxes.select("item_id", "class_id", "x1", "y1", "x2", "y2", "extra")
    for item, cid, x1, y1, x2, y2, extra in cols.iter_rows():
        by_item.setdefault(item, []).append(VocBox(classes[cid], x1, y1, x2, y2, extra))
    rels = _target_names(images, ".xml", names)
    out: list[tuple[str, bytes]] = []
    rows = images.select("item_id", "key", "width", "height", "meta", "relpath", "root", "mode").iter_rows()
    for n, (rel, (item, key, w, h, meta, relpath, root, mode)) in enumerate(zip(rels, rows, strict=True)):
        if relpath:
            img = PurePosixPath(relpath)
            folder = img.parent.name or (Path(root).name if root else "")
            fname = img.name
            full = str(Path(root) / relpath) if root else relpath
        else:
            folder, fname, full = "", f"{key}.jpg", f"{key}.jpg"
        header = VocHeader(folder, fname, full, int(w or 0), int(h or 0), _DEPTH.get(mode or "RGB", 3))
        out.append((rel, voc_document(meta, by_item.get(item, []), header)))
        if n % 256 == 0:
            rep.check()
    return out


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


__all__ = [
    "ExportResult",
    "ImportRejected",
    "ImportResult",
    "Tolerance",
    "detect_format",
    "export_detections",
    "export_labels",
    "import_detections",
    "import_labels",
    "lookup_items",
]
