"""Review subsets for labelImg: export the worst cases of a match, import what was edited.

Export
    ``review_export`` picks the images of a label set × detection run match with the
    biggest differences of one kind (``fp``, ``fn``, ``cls``, ``loc``, ``dup``: the images
    of the costliest such objects; ``worst-images``: lowest F1, then highest cost) and
    writes a flat folder labelImg opens directly: the images (named ``KEY.ext``), the label
    set's boxes as YOLO txt (with the workspace's ``classes.txt``) or Pascal VOC XML, the
    run's detections as a separate YOLO file set with scores (``detections/``) and/or as
    drawn overlays (``overlays/``), and ``tuiops-review.json``, the manifest: which set,
    run and images, and a checksum of every label file as exported. The export is a file
    operation (:mod:`tuiops.ops.fileops`): journaled, resumable, undoable.

Import
    ``review_import`` reads the label files back, compares them with the label set box by
    box and reports per image the boxes added, removed, moved and re-classed (an unchanged
    box keeps its stored coordinates and extras exactly, a box moved or re-classed in a
    YOLO file keeps its stored extras; a file identical to its export is skipped). A
    ``classes.txt`` whose lines re-order or rename the workspace's classes is refused;
    new names appended at its end are accepted with ``add_classes``. A label file with
    any error (a line that does not parse, a class id outside the class map, a class
    the map lacks, no image of its key) is listed with its line and left out: its image
    keeps its boxes, never loses them. Every label file is counted once: unchanged,
    changed or left out. An image whose boxes changed in the store since the export is
    refused unless ``force``. The changes go into the set in one transaction with a
    ``revisions`` record that keeps each changed image's label rows before and after, so
    ``labels undo`` (:func:`undo_review`) can take it back while those rows are unchanged.

Open
    ``review_open`` starts the configured label editor (``[editor] command`` in
    ``tuiops.toml``; default ``labelImg {dir} {classes} {dir}``) on the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, InputError, NotFoundError, UsageError
from tuiops.fsutil import display_path
from tuiops.ops.base import CancelToken, ProgressFn
from tuiops.store.frames import BOX

if TYPE_CHECKING:
    import polars as pl

    from tuiops.ops.fileops import PlanResult, RunResult
    from tuiops.workspace import Workspace

KINDS = ("fp", "fn", "cls", "loc", "dup", "worst-images")
FORMATS = ("yolo", "voc")
DETS = ("files", "overlays", "both", "none")
MANIFEST = "tuiops-review.json"
DET_DIR = "detections"
OVERLAY_DIR = "overlays"
#: Coordinates within this many pixels count as the same box (VOC files hold whole pixels).
SAME_PX = 0.51
#: Boxes overlapping at least this much are one box moved or re-classed.
PAIR_IOU = 0.5


@dataclass
class ExportResult:
    """A review export: the images chosen, and the file job that wrote the folder."""

    to: str
    kind: str
    match: str
    images: int
    keys: list[str]
    plan: dict[str, Any]
    run: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImportResult:
    """A review import: the diff per image and whether it was applied."""

    folder: str
    label_set: str
    files: int = 0
    changed_images: int = 0
    unchanged_files: int = 0
    error_files: int = 0
    added: int = 0
    removed: int = 0
    moved: int = 0
    recls: int = 0
    per_image: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    added_classes: list[str] = field(default_factory=list)
    applied: bool = False
    revision: int | None = None
    prelabel: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- export ----------------------------------------------------------------------------------------
def _match_name(ws: Workspace, label_set: str, run: str, match: str | None) -> str:
    from tuiops.ops.match import match as do_match

    name = match or f"{label_set}__{run}"
    if ws.store.one("SELECT 1 FROM matches WHERE name = ?", (name,)) is None:
        if match is not None:
            raise NotFoundError(
                f"no match named {match!r}", hint="make one with `tuiops match` or leave out --match"
            )
        do_match(ws, label_set, run, name=name)
    return name


def pick_items(ws: Workspace, match: str, kind: str, top: int, split: str | None = None) -> list[int]:
    """The item ids to review, worst first."""
    from tuiops.ops.match import OBJ_MATCH_SHIFT, match_id

    if kind not in KINDS:
        raise UsageError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if top < 1:
        raise UsageError(f"--top must be at least 1, not {top}")
    store = ws.store
    mid = match_id(store, match)
    split_sql = ""
    split_args: tuple[str | None, ...] = ()
    if split is not None:
        split_sql = " AND mi.split IS ?" if split == "" else " AND mi.split = ?"
        split_args = (None,) if split == "" else (split,)
    if kind == "worst-images":
        rows = store.execute(
            f"SELECT mi.item_id FROM match_images mi WHERE mi.match_id = ?{split_sql} "
            "ORDER BY mi.f1, mi.cost DESC, mi.item_id LIMIT ?",
            (mid, *split_args, top),
        ).fetchall()
    else:
        lo = mid << OBJ_MATCH_SHIFT
        hi = lo + (1 << OBJ_MATCH_SHIFT) - 1
        rows = store.execute(
            "SELECT o.item_id FROM match_objects o "
            "JOIN match_images mi ON mi.match_id = ? AND mi.item_id = o.item_id "
            f"WHERE o.id BETWEEN ? AND ? AND o.category = ?{split_sql} "
            "GROUP BY o.item_id ORDER BY max(o.cost) DESC, o.item_id LIMIT ?",
            (mid, lo, hi, kind, *split_args, top),
        ).fetchall()
    return [int(r[0]) for r in rows]


def review_export(
    ws: Workspace,
    label_set: str,
    run: str,
    *,
    kind: str,
    to: str | os.PathLike[str],
    top: int = 50,
    fmt: str = "yolo",
    dets: str = "files",
    match: str | None = None,
    split: str | None = None,
    conf: float | None = None,
    prelabel: str | None = None,
    nms: float | None = None,
    on_conflict: str = "fail",
    dry_run: bool = False,
    workers: int = 4,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ExportResult:
    """Write a labelImg folder with the ``top`` images of ``kind`` of the set × run match.

    The match named ``match`` (default ``SET__RUN``, made now when missing) decides which
    images; ``fmt`` is the label format; ``dets`` adds the run's detections as YOLO files
    with scores (``files``), drawn overlays (``overlays``), ``both`` or ``none``.
    ``prelabel``: a run pre-labelling the images without boxes (:mod:`tuiops.ops.prelabel`);
    ``conf`` (default: 0, and :data:`~tuiops.ops.prelabel.PRELABEL_CONF` for the pre-labels).
    """
    import polars as pl

    from tuiops.ops.fileops import plan, run_job
    from tuiops.ops.select import Selection, SelectionSpec, select_files

    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if dets not in DETS:
        raise UsageError(f"--dets must be one of {', '.join(DETS)}, not {dets!r}")
    store = ws.store
    store.label_set_id(label_set)
    store.run_id(run)
    if prelabel is not None:
        store.run_id(prelabel)
    elif nms is not None:
        raise UsageError("--nms applies to the pre-labels: give --prelabel RUN with it")
    mname = _match_name(ws, label_set, run, match)
    items = pick_items(ws, mname, kind, top, split)
    if not items:
        raise NotFoundError(f"match {mname!r} has no {kind} to review", hint="try another --kind or --split")
    keys = store.read_frame(
        f"SELECT id AS item_id, key FROM items WHERE id IN ({', '.join('?' * len(items))})",
        items,
        {"item_id": pl.Int64, "key": pl.String},
    )
    order = pl.DataFrame(
        {"item_id": items, "rank": range(len(items))}, schema={"item_id": pl.Int64, "rank": pl.Int64}
    )
    keys = order.join(keys, on="item_id", how="left").sort("rank")
    sel = select_files(ws, SelectionSpec(keys=keys["key"].to_list(), label_set=label_set))
    frame = sel.frame.sort("file_id").unique("item_id", keep="first", maintain_order=True)
    if frame.height == 0:
        raise NotFoundError(
            f"none of the {len(items)} images to review has a file on disk",
            hint="scan the pools that hold them (`tuiops scan`)",
        )
    selection = Selection(frame, sel.spec, sel.unknown_keys, [])

    def extras(img: pl.DataFrame, lab: pl.DataFrame, job_id: int) -> pl.DataFrame:
        def rest(lab: pl.DataFrame) -> pl.DataFrame:
            return _extra_actions(ws, img, lab, job_id, label_set, run, mname, kind, fmt, dets, conf or 0.0)

        if prelabel is None:
            return rest(lab)
        from tuiops.ops.prelabel import PRELABEL_CONF, prelabelled

        pconf = PRELABEL_CONF if conf is None else conf
        return prelabelled(ws, img, lab, label_set, prelabel, fmt, conf=pconf, nms=nms, rest=rest)

    p: PlanResult = plan(
        ws,
        "copy",
        selection,
        to=to,
        name="{key}{ext}",
        labels=fmt,
        label_set=label_set,
        on_conflict=on_conflict,
        dry_run=dry_run,
        extra_actions=extras,
        job_params={"review": {"set": label_set, "run": run, "match": mname, "kind": kind, "top": top}},
        progress=progress,
        cancel=cancel,
    )
    r: RunResult | None = None
    if not dry_run and p.status == "planned":
        r = run_job(ws, p.job_id, workers=workers, progress=progress, cancel=cancel)
    return ExportResult(
        to=display_path(os.path.abspath(os.fspath(to))),
        kind=kind,
        match=mname,
        images=frame.height,
        keys=frame["key"].to_list(),
        plan=p.to_dict(),
        run=r.to_dict() if r else None,
    )


def _file_action(g: int, role: str, dst_dir: str, name: str, data: bytes) -> pl.DataFrame:
    """One file of the export job written whole (``dst_dir/name``), ordered by ``g``."""
    import polars as pl

    stem, dot, ext = name.rpartition(".")
    return pl.DataFrame(
        {
            "g": [g],
            "ord": [9],
            "action": ["write"],
            "role": [role],
            "dst": [dst_dir + "/" + name],
            "dst_dir": [dst_dir],
            "dst_stem": [stem],
            "dst_ext": [dot + ext],
            "data": [data],
            "_esc": [False],
        },
        schema_overrides={"g": pl.Int64, "data": pl.Binary},
    )


def _detection_files(
    ws: Workspace, img: pl.DataFrame, base: pl.DataFrame, root: str, run: str, conf: float
) -> list[pl.DataFrame]:
    """The run's detections of every image as a YOLO file (with scores) in ``DET_DIR``, and its classes.txt."""
    import polars as pl

    from tuiops.formats.classes import classes_txt_bytes
    from tuiops.formats.yolo import yolo_texts

    store = ws.store
    boxes = store.read_detections(run, with_extra=True).filter(pl.col("score") >= conf)
    boxes = boxes.join(img.select("item_id"), on="item_id", how="semi")
    meta = store.read_frame(
        "SELECT r.item_id, r.meta FROM run_images r WHERE r.run_id = ?",
        (store.run_id(run),),
        {"item_id": pl.Int64, "meta": pl.String},
    )
    imgs = (
        img.select("item_id", pl.col("img_w").fill_null(pl.col("width")).alias("width"),
                   pl.col("img_h").fill_null(pl.col("height")).alias("height"))
        .unique("item_id")
        .join(meta, on="item_id", how="left")
    )  # fmt: skip
    texts = yolo_texts(boxes.drop("id"), imgs, with_score=True)
    d = base.join(texts, on="item_id", how="left").select(
        "g",
        pl.lit(10).alias("ord"),
        pl.lit("write").alias("action"),
        pl.lit("detections").alias("role"),
        "item_id",
        (pl.lit(root + "/" + DET_DIR + "/") + pl.col("dst_stem") + ".txt").alias("dst"),
        pl.lit(root + "/" + DET_DIR).alias("dst_dir"),
        "dst_stem",
        pl.lit(".txt").alias("dst_ext"),
        pl.col("text").fill_null("").cast(pl.Binary).alias("data"),
        "_esc",
    )
    classes = _file_action(
        2**62 + 1_000_000, "classes", root + "/" + DET_DIR, "classes.txt", classes_txt_bytes(ws.classes)
    )
    return [d, classes]


def _overlays(
    ws: Workspace, img: pl.DataFrame, base: pl.DataFrame, root: str, label_set: str, run: str, conf: float
) -> pl.DataFrame:
    """Every image painted with its boxes and detections, in ``OVERLAY_DIR``."""
    import polars as pl

    from tuiops.ops.paint import drawings

    return base.select(
        "g",
        pl.lit(11).alias("ord"),
        pl.lit("paint").alias("action"),
        pl.lit("overlay").alias("role"),
        "item_id",
        "src",
        "src_dir",
        (pl.lit(root + "/" + OVERLAY_DIR + "/") + pl.col("dst_stem") + ".jpg").alias("dst"),
        pl.lit(root + "/" + OVERLAY_DIR).alias("dst_dir"),
        "dst_stem",
        pl.lit(".jpg").alias("dst_ext"),
        drawings(ws, img, label_set=label_set, run=run, conf=conf),
        "_kind",
        "_esc",
    )


def _manifest(
    ws: Workspace,
    img: pl.DataFrame,
    lab: pl.DataFrame,
    job_id: int,
    label_set: str,
    run: str,
    match: str,
    kind: str,
    fmt: str,
) -> bytes:
    """The export's manifest: what it was made from, and each image's label file with its SHA-256."""
    import polars as pl

    files: dict[str, Any] = {}
    ext = ".txt" if fmt == "yolo" else ".xml"
    label_rows = lab.filter(pl.col("role") == "label") if lab.height else lab
    digests = {}
    if label_rows.height:
        for item, data in label_rows.select("item_id", "data").iter_rows():
            digests[item] = hashlib.sha256(data or b"").hexdigest()
    for key, item, stem in img.select("key", "item_id", "dst_stem").iter_rows():
        files[key] = {"item_id": item, "labels": stem + ext, "sha256": digests.get(item)}
    manifest = {
        "tuiops_review": 1,
        "set": label_set,
        "run": run,
        "match": match,
        "kind": kind,
        "format": fmt,
        "job": job_id,
        "classes": list(ws.classes),
        "images": files,
    }
    return json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8")


def _extra_actions(
    ws: Workspace,
    img: pl.DataFrame,
    lab: pl.DataFrame,
    job_id: int,
    label_set: str,
    run: str,
    match: str,
    kind: str,
    fmt: str,
    dets: str,
    conf: float,
) -> pl.DataFrame:
    """Detection files, overlays and the manifest, as actions of the export job."""
    import polars as pl

    from tuiops.formats.classes import classes_txt_bytes

    out: list[pl.DataFrame] = []
    root = img["dst_dir"][0] if img.height else ""
    base = img.select("g", "item_id", "key", "src", "src_dir", "dst_stem", "_esc", "_kind")
    if dets in ("files", "both"):
        out += _detection_files(ws, img, base, root, run, conf)
    if dets in ("overlays", "both"):
        out.append(_overlays(ws, img, base, root, label_set, run, conf))
    if fmt == "voc":  # labelImg's list of classes to pick from (YOLO exports write it already)
        out.append(
            _file_action(2**62 + 1_000_002, "classes", root, "classes.txt", classes_txt_bytes(ws.classes))
        )
    data = _manifest(ws, img, lab, job_id, label_set, run, match, kind, fmt)
    out.append(_file_action(2**62 + 1_000_001, "manifest", root, MANIFEST, data))
    frame = pl.concat(out, how="diagonal_relaxed")
    return frame.with_columns(
        pl.col("data").bin.size().cast(pl.Int64).alias("size"),
        pl.col("_kind").fill_null("file") if "_kind" in frame.columns else pl.lit("file").alias("_kind"),
    )


# -- import ----------------------------------------------------------------------------------------
def _read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{display_path(path)} is not a review manifest: {exc}") from exc
    if not isinstance(data, dict) or data.get("tuiops_review") != 1:
        raise InputError(f"{display_path(path)} is not a review manifest written by tuiops")
    return data


def check_classes(folder: Path, workspace: list[str]) -> list[str]:
    """The classes a folder's classes.txt appends to the workspace map (refusing any other change)."""
    from tuiops.formats.classes import CLASSES_TXT, read_classes_txt

    path = folder / CLASSES_TXT
    if not path.is_file():
        return []
    names = read_classes_txt(path)
    for i, (have, want) in enumerate(zip(names, workspace, strict=False)):
        if have != want:
            moved = f" (it is line {workspace.index(have) + 1} in the workspace)" if have in workspace else ""
            raise InputError(
                f"{display_path(path)}:{i + 1}: {have!r} where the workspace has {want!r}{moved}; "
                "classes.txt re-orders or renames classes, so its ids cannot be trusted",
                hint="restore the file (one workspace class per line, in order); new classes go at the end",
            )
    if len(names) < len(workspace):
        return []
    return names[len(workspace) :]


@dataclass
class _Folder:
    """The top-level label files of a review folder, read and mapped to workspace class ids."""

    boxes: pl.DataFrame
    files: pl.DataFrame
    problems: list[str]
    bad_files: set[str]
    found: int
    new_classes: list[str]


def _folder_boxes(
    ws: Workspace, folder: Path, fmt: str, classes: list[str], *, add_voc_names: bool = False
) -> _Folder:
    """Boxes of the top-level label files of a folder, in pixels and workspace class ids.

    ``boxes``: key, item_id, file, ord, class_id, x1..y2, extra; ``files``: key, item_id,
    file, sha256 of the files that can be applied. A file with any problem (a line that
    does not parse, a class id outside the class map, a class name the map lacks, no
    image of its key in the store) is named in ``problems`` and ``bad_files`` and none
    of its boxes is used: its image keeps the set's boxes. New VOC names are appended to
    ``classes`` (and listed in ``new_classes``) when ``add_voc_names``.
    """
    import polars as pl

    from tuiops.formats.classes import map_names

    if fmt == "yolo":
        from tuiops.formats.yolo import read_yolo

        rr = read_yolo(folder)
    else:
        from tuiops.formats.voc import read_voc

        rr = read_voc(folder)
    top = ~pl.col("path").str.contains("/", literal=True)
    files = rr.files.filter(top)
    read_problems = rr.problems.filter(~pl.col("file").str.contains("/", literal=True))
    problems = [
        f"{f}:{ln}: {m}; the file is left out" if ln is not None else f"{f}: {m}; the file is left out"
        for f, ln, m in read_problems.iter_rows()
    ]
    bad: set[str] = set(read_problems["file"].to_list())
    found = len(set(files["path"].to_list()) | bad)
    files = files.with_columns(
        pl.col("path").str.replace(r"\.[^.]*$", "").alias("key"),
    )
    digests = []
    for path in files["path"].to_list():
        with open(folder / path, "rb") as fh:
            digests.append(hashlib.sha256(fh.read()).hexdigest())
    files = files.with_columns(pl.Series("sha256", digests, dtype=pl.String))
    b = rr.boxes.join(
        files.select("file_idx", "key", pl.col("path").alias("file")), on="file_idx", how="inner"
    )
    b = b.with_columns(pl.int_range(pl.len()).over("file_idx").alias("ord"))
    keys = files["key"].unique().to_list()
    items = ws.store.read_frame(
        f"SELECT key, id AS item_id, width, height FROM items WHERE key IN ({', '.join('?' * len(keys))})",
        keys,
        {"key": pl.String, "item_id": pl.Int64, "width": pl.Int64, "height": pl.Int64},
    ) if keys else pl.DataFrame(schema={"key": pl.String, "item_id": pl.Int64, "width": pl.Int64, "height": pl.Int64})  # fmt: skip
    unknown = files.join(items, on="key", how="anti")["path"].to_list()
    problems += [
        f"{p}: no image with key {p.rsplit('.', 1)[0]!r} in the store; the file is left out" for p in unknown
    ]
    bad |= set(unknown)
    b = b.join(items, on="key", how="inner")
    new_classes: list[str] = []
    if fmt == "yolo":
        n = len(classes)
        outside = b.filter((pl.col("cls") < 0) | (pl.col("cls") >= n))
        problems += [
            f"{f}:{ln}: class id {c} is outside the class map (classes.txt has {n} classes, ids 0..{n - 1}); "
            "the file is left out and its image keeps its boxes"
            for f, ln, c in outside.select("file", "line", "cls").iter_rows()
        ]
        bad |= set(outside["file"].to_list())
        W, H = pl.col("width").cast(pl.Float64), pl.col("height").cast(pl.Float64)
        b = b.with_columns(
            pl.col("cls").cast(pl.Int64).alias("class_id"),
            ((pl.col("cx") - pl.col("w") / 2) * W).alias("x1"),
            ((pl.col("cy") - pl.col("h") / 2) * H).alias("y1"),
            ((pl.col("cx") + pl.col("w") / 2) * W).alias("x2"),
            ((pl.col("cy") + pl.col("h") / 2) * H).alias("y2"),
        )
    else:
        names = b["name"].drop_nulls().unique(maintain_order=True).to_list()
        known, missing = map_names(names, classes)
        if missing and add_voc_names:
            new_classes = missing
            known, missing = map_names(names, [*classes, *new_classes])
        lacking = b.filter(pl.col("name").is_null() | pl.col("name").is_in(missing))
        problems += [
            f"{f}:{ln}: class {nm!r} is not in the workspace class map; the file is left out "
            "and its image keeps its boxes"
            for f, ln, nm in lacking.select("file", "line", "name").iter_rows()
        ]
        bad |= set(lacking["file"].to_list())
        b = b.with_columns(
            pl.col("name").replace_strict(known, default=None, return_dtype=pl.Int64).alias("class_id"),
            *[
                pl.col(s).cast(pl.Float64, strict=False).alias(d)
                for s, d in (("xmin", "x1"), ("ymin", "y1"), ("xmax", "x2"), ("ymax", "y2"))
            ],
        )
        nan = b.filter(pl.any_horizontal(pl.col(*BOX).is_null()) & pl.col("class_id").is_not_null())
        problems += [
            f"{f}:{ln}: a <bndbox> coordinate is missing or not a number; the file is left out"
            for f, ln in nan.select("file", "line").iter_rows()
        ]
        bad |= set(nan["file"].to_list())
    b = b.filter(~pl.col("file").is_in(list(bad)))
    boxes = b.select(
        "key", "item_id", "file", "ord", "class_id", "x1", "y1", "x2", "y2", pl.col("extra").cast(pl.String)
    )
    files = (
        files.join(items, on="key", how="inner")
        .filter(~pl.col("path").is_in(list(bad)))
        .select("key", "item_id", pl.col("path").alias("file"), "sha256")
    )
    return _Folder(boxes, files, problems, bad, found, new_classes)


def diff_boxes(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """Pair the boxes of each image one to one: unchanged, moved, re-classed; the rest added/removed.

    ``old``/``new``: item_id, ord, class_id, x1, y1, x2, y2. Returns one row per old or new
    box: item_id, old_ord, new_ord, change (unchanged, moved, recls, added, removed) and
    ``same_box`` (the coordinates agree within :data:`SAME_PX`).
    Greedy by priority (same box first, then the highest IoU), in rounds of mutual best
    choices: a loop over rounds, not over images or boxes.
    """
    import polars as pl

    from tuiops.geometry import iou

    o = old.select(
        "item_id",
        pl.col("ord").alias("o"),
        pl.col("class_id").alias("c_o"),
        *[pl.col(c).alias(f"{c}_o") for c in BOX],
    )
    n = new.select(
        "item_id",
        pl.col("ord").alias("n"),
        pl.col("class_id").alias("c_n"),
        *[pl.col(c).alias(f"{c}_n") for c in BOX],
    )
    pairs = o.join(n, on="item_id", how="inner").with_columns(iou("_o", "_n").alias("iou"))
    near = pl.max_horizontal(*[(pl.col(f"{c}_o") - pl.col(f"{c}_n")).abs() for c in BOX]) <= SAME_PX
    pairs = pairs.with_columns(
        pl.when(near & (pl.col("c_o") == pl.col("c_n"))).then(pl.lit(3))
        .when(near).then(pl.lit(2))
        .when(pl.col("iou") >= PAIR_IOU).then(pl.lit(1))
        .otherwise(pl.lit(0)).alias("prio"),
    ).filter(pl.col("prio") > 0).with_columns((pl.col("prio") * 2 + pl.col("iou")).alias("score"))  # fmt: skip
    chosen: list[pl.DataFrame] = []
    while pairs.height:
        best_o = pairs.sort(["score", "n"], descending=[True, False]).unique(["item_id", "o"], keep="first")
        best_n = pairs.sort(["score", "o"], descending=[True, False]).unique(["item_id", "n"], keep="first")
        mutual = best_o.join(best_n.select("item_id", "o", "n"), on=["item_id", "o", "n"], how="inner")
        if mutual.height == 0:
            break
        chosen.append(mutual)
        pairs = pairs.join(mutual.select("item_id", "o"), on=["item_id", "o"], how="anti").join(
            mutual.select("item_id", "n"), on=["item_id", "n"], how="anti"
        )
    schema = pl.Schema(
        {
            "item_id": pl.Int64,
            "old_ord": pl.Int64,
            "new_ord": pl.Int64,
            "change": pl.String,
            "same_box": pl.Boolean,
        }
    )
    if chosen:
        m = pl.concat(chosen).select(
            "item_id",
            pl.col("o").alias("old_ord"),
            pl.col("n").alias("new_ord"),
            pl.when(pl.col("c_o") != pl.col("c_n")).then(pl.lit("recls"))
            .when(pl.col("prio") == 3).then(pl.lit("unchanged"))
            .otherwise(pl.lit("moved")).alias("change"),
            (pl.col("prio") >= 2).alias("same_box"),
        )  # fmt: skip
    else:
        m = pl.DataFrame(schema=schema)
    removed = o.join(
        m.select("item_id", pl.col("old_ord").alias("o")), on=["item_id", "o"], how="anti"
    ).select(
        "item_id",
        pl.col("o").alias("old_ord"),
        pl.lit(None, pl.Int64).alias("new_ord"),
        pl.lit("removed").alias("change"),
        pl.lit(False).alias("same_box"),
    )
    added = n.join(m.select("item_id", pl.col("new_ord").alias("n")), on=["item_id", "n"], how="anti").select(
        "item_id",
        pl.lit(None, pl.Int64).alias("old_ord"),
        pl.col("n").alias("new_ord"),
        pl.lit("added").alias("change"),
        pl.lit(False).alias("same_box"),
    )
    return pl.concat([m.cast(schema), removed.cast(schema), added.cast(schema)])


def review_import(
    ws: Workspace,
    folder: str | os.PathLike[str],
    *,
    label_set: str | None = None,
    fmt: str | None = None,
    add_classes: bool = False,
    force: bool = False,
    dry_run: bool = False,
    note: str | None = None,
) -> ImportResult:
    """Read back an edited review folder, diff it with the label set and (unless ``dry_run``) apply it."""
    import polars as pl

    root = Path(folder)
    if not root.is_dir():
        raise InputError(
            f"{display_path(root)} is not a folder", hint="give the folder `tuiops review export` wrote"
        )
    manifest = _read_manifest(root)
    label_set = label_set or (manifest or {}).get("set")
    if not label_set:
        raise UsageError("which label set? give --set NAME (the folder has no tuiops-review.json)")
    store = ws.store
    sid = store.label_set_id(label_set)
    if fmt is None:
        fmt = (manifest or {}).get("format")
    if fmt is None:
        fmt = "voc" if any(p.suffix.lower() == ".xml" for p in root.iterdir()) else "yolo"
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    new_classes = check_classes(root, list(ws.classes)) if fmt == "yolo" else []
    res = ImportResult(folder=display_path(root), label_set=label_set)
    if new_classes and not add_classes:
        raise InputError(
            f"classes.txt adds classes the workspace lacks: {', '.join(new_classes)}",
            hint="pass --add-classes to append them to the workspace class map",
        )
    classes = list(ws.classes) + new_classes
    found = _folder_boxes(ws, root, fmt, classes, add_voc_names=add_classes)
    if fmt == "voc":
        new_classes = found.new_classes
        unknown = [p for p in found.problems if "is not in the workspace class map" in p]
        if unknown and not add_classes:
            raise InputError(unknown[0], hint="pass --add-classes to append new classes to the workspace map")
    boxes, files, bad = found.boxes, found.files, set(found.bad_files)
    res.problems = list(found.problems)
    res.files = found.found
    images = manifest.get("images", {}) if manifest else {}
    exported = {k: v.get("sha256") for k, v in images.items()}
    if manifest:
        foreign = files.filter(~pl.col("key").is_in(list(images)))["file"].to_list()
        res.problems += [
            f"{f}: not part of this review export ({MANIFEST} does not list it); the file is left out"
            for f in foreign
        ]
        bad |= set(foreign)
        files = files.filter(pl.col("key").is_in(list(images)))
    res.error_files = len(bad)
    touched = files.filter(
        pl.col("sha256") != pl.col("key").replace_strict(exported, default=None, return_dtype=pl.String)
    ) if exported else files  # fmt: skip
    item_ids = touched["item_id"].to_list()
    res.unchanged_files = files.height - touched.height
    from tuiops.ops.prelabel import account_import

    res.prelabel, pre_keys = (
        account_import(root, touched, files, bad, boxes, classes) if manifest else (None, set())
    )
    if not item_ids:
        return res
    old = store.read_labels(label_set, with_extra=True).filter(pl.col("item_id").is_in(item_ids))
    old = old.with_columns(pl.int_range(pl.len()).over("item_id").alias("ord"))
    if manifest and not force:
        _check_store_unchanged(ws, label_set, fmt, touched, images, pre_keys)
    new = boxes.filter(pl.col("item_id").is_in(item_ids))
    d = diff_boxes(old, new)
    keys = touched.select("item_id", "key")
    per = (
        keys.join(
            d.group_by("item_id").agg(
                [
                    (pl.col("change") == c).sum().alias(c)
                    for c in ("added", "removed", "moved", "recls", "unchanged")
                ]
            ),
            on="item_id",
            how="left",
        )
        .with_columns(pl.col("added", "removed", "moved", "recls", "unchanged").fill_null(0))
        .sort("key")
    )
    changed = per.filter(pl.sum_horizontal("added", "removed", "moved", "recls") > 0)
    res.unchanged_files += per.height - changed.height  # saved again with the same boxes
    res.per_image = changed.select("key", "added", "removed", "moved", "recls", "unchanged").to_dicts()
    res.changed_images = changed.height
    for c in ("added", "removed", "moved", "recls"):
        setattr(res, c, int(changed[c].sum()) if changed.height else 0)
    if dry_run or changed.height == 0:
        return res
    _apply(ws, res, sid, fmt, manifest, d, old, new, changed, keys, new_classes, note)
    return res


def _apply(
    ws: Workspace,
    res: ImportResult,
    sid: int,
    fmt: str,
    manifest: dict[str, Any] | None,
    d: pl.DataFrame,
    old: pl.DataFrame,
    new: pl.DataFrame,
    changed: pl.DataFrame,
    keys: pl.DataFrame,
    new_classes: list[str],
    note: str | None,
) -> None:
    """Write the changed images' boxes and the revision in one transaction."""
    import polars as pl

    from tuiops.store import utcnow
    from tuiops.store.db import box_frame, id_range

    store = ws.store
    # the new boxes of each changed image, in file order; unchanged boxes keep their stored values
    ch_ids = changed["item_id"].to_list()
    # a YOLO file cannot state a box's VOC flags or tags: a box it moved or re-classed keeps them
    paired = d.filter(pl.col("same_box") | pl.lit(fmt == "yolo")).filter(
        pl.col("old_ord").is_not_null() & pl.col("new_ord").is_not_null()
    )
    keep = paired.select("item_id", pl.col("new_ord").alias("ord"), "old_ord", "same_box")
    oldv = old.select(
        "item_id",
        pl.col("ord").alias("old_ord"),
        *[pl.col(c).alias(f"{c}_s") for c in ("class_id", "x1", "y1", "x2", "y2", "extra")],
    )
    same = pl.col("same_box").fill_null(False)
    nb = (
        new.filter(pl.col("item_id").is_in(ch_ids))
        .join(keep, on=["item_id", "ord"], how="left")
        .join(oldv, on=["item_id", "old_ord"], how="left")
        .sort("item_id", "ord")
        .select(
            "item_id",
            pl.col("class_id").cast(pl.Int64),
            *[pl.when(same).then(pl.col(f"{c}_s")).otherwise(pl.col(c)).alias(c) for c in BOX],
            pl.when(pl.col("old_ord").is_not_null()).then(pl.col("extra_s")).otherwise(pl.col("extra")).alias("extra"),
        )
    )  # fmt: skip
    rows = box_frame(sid, nb, BOX)
    before = old.filter(pl.col("item_id").is_in(ch_ids)).join(keys, on="item_id", how="left")
    changes = {
        "kind": "review",
        "source": res.folder,
        "job": (manifest or {}).get("job"),
        "totals": {c: getattr(res, c) for c in ("added", "removed", "moved", "recls")},
        "prelabel": res.prelabel,
        "images": res.per_image,
        "before": {
            k: g.select("class_id", "x1", "y1", "x2", "y2", "extra").rows()
            for (k,), g in before.group_by("key", maintain_order=True)
        },
        "rows": _revision_rows(before, rows, keys),
    }
    if new_classes:
        res.added_classes = ws.add_classes(new_classes)
    with store.bulk() as tx:
        for item in ch_ids:
            tx.execute("DELETE FROM labels WHERE id BETWEEN ? AND ?", id_range(sid, item))
        tx.ingest("labels", rows)
        rev = tx.one(
            "INSERT INTO revisions(set_id, created, source, note, changes) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (
                sid,
                utcnow(),
                res.folder,
                note or f"review import of {res.changed_images} image(s)",
                json.dumps(changes, default=str),
            ),
        )
    res.applied = True
    res.revision = int(rev)


def _revision_rows(before: pl.DataFrame, after: pl.DataFrame, keys: pl.DataFrame) -> list[dict[str, Any]]:
    """Per changed image: item id, key and its label rows (id, class, x1..y2, extra) before and after."""
    import polars as pl

    from tuiops.store.db import item_of

    cols = ("id", "class_id", "x1", "y1", "x2", "y2", "extra")
    a = after.with_columns(item_of(pl.col("id")).alias("item_id"))
    out = []
    for item, key in keys.sort("key").iter_rows():
        b_rows = before.filter(pl.col("item_id") == item).sort("id").select(cols).rows()
        a_rows = a.filter(pl.col("item_id") == item).sort("id").select(cols).rows()
        if b_rows or a_rows:
            out.append({"item_id": item, "key": key, "before": b_rows, "after": a_rows})
    return out


def undo_review(
    conn: Any, sid: int, label_set: str, rid: int, changes: dict[str, Any], now: str, note: str | None
) -> tuple[int, int]:
    """Undo review-import revision ``rid`` inside the open transaction ``conn``; returns (revision, images).

    Every image the import changed must still hold exactly the rows it wrote; otherwise
    nothing is changed and the first such image is named.
    """
    from tuiops.store.db import id_range

    per = changes.get("rows")
    if not isinstance(per, list):
        raise UsageError(
            f"revision {rid} of set {label_set!r} is a review import recorded without its label rows "
            "(written by an older tuiops); it cannot be undone"
        )

    def norm(rows: Any) -> list[tuple[Any, ...]]:
        return [(int(r[0]), int(r[1]), *(float(v) for v in r[2:6]), r[6]) for r in rows or []]

    for rec in per:
        current = [
            (int(r[0]), int(r[1]), *(float(v) for v in r[2:6]), r[6])
            for r in conn.execute(
                "SELECT id, class_id, x1, y1, x2, y2, extra FROM labels WHERE id BETWEEN ? AND ? ORDER BY id",
                id_range(sid, int(rec["item_id"])),
            ).fetchall()
        ]
        if current != norm(rec.get("after")):
            raise ConflictError(
                f"the labels of image {rec.get('key')} in set {label_set!r} changed after revision {rid} "
                "(a review import); undoing it would lose that change",
                hint=f"undo the later revisions first (`tuiops labels revisions --set {label_set}`)",
            )
    inverse = [
        {"item_id": r["item_id"], "key": r.get("key"), "before": r.get("after"), "after": r.get("before")}
        for r in per
    ]
    cur = conn.execute(
        "INSERT INTO revisions(set_id, created, source, note, changes) VALUES (?, ?, 'undo', ?, ?)",
        (
            sid,
            now,
            note or f"undo of revision {rid}",
            json.dumps({"kind": "undo", "action": "review", "undoes": rid, "rows": inverse}),
        ),
    )
    for rec in per:
        conn.execute("DELETE FROM labels WHERE id BETWEEN ? AND ?", id_range(sid, int(rec["item_id"])))
        conn.executemany(
            "INSERT INTO labels(id, class_id, x1, y1, x2, y2, extra) VALUES (?, ?, ?, ?, ?, ?, ?)",
            norm(rec.get("before")),
        )
    return int(cur.lastrowid), len(per)


def _check_store_unchanged(
    ws: Workspace, label_set: str, fmt: str, touched: pl.DataFrame, images: dict[str, Any], pre_keys: set[str]
) -> None:
    """Refuse when the set's boxes of an edited image (a pre-labelled one: any box) changed since the export."""
    import polars as pl

    from tuiops.ops.prelabel import check_still_bare

    store = ws.store
    check_still_bare(ws, label_set, touched, pre_keys)
    touched = touched.filter(~pl.col("key").is_in(list(pre_keys)))
    ids = touched["item_id"].to_list()
    sid = store.label_set_id(label_set)
    boxes = store.read_labels(label_set, with_extra=True).filter(pl.col("item_id").is_in(ids))
    meta = store.read_frame(
        "SELECT s.item_id, s.meta, i.width, i.height, i.key FROM set_images s JOIN items i ON i.id = s.item_id "
        "WHERE s.set_id = ?",
        (sid,),
        {"item_id": pl.Int64, "meta": pl.String, "width": pl.Int64, "height": pl.Int64, "key": pl.String},
    ).filter(pl.col("item_id").is_in(ids))
    if fmt != "yolo":
        return
    from tuiops.formats.yolo import yolo_texts

    texts = yolo_texts(boxes.drop("id"), meta.select("item_id", "width", "height", "meta")).join(
        meta.select("item_id", "key"), on="item_id"
    )
    stale = [
        k
        for k, t in texts.select("key", "text").iter_rows()
        if images.get(k, {}).get("sha256") not in (None, hashlib.sha256(t.encode("utf-8")).hexdigest())
    ]
    if stale:
        raise ConflictError(
            f"the label set {label_set!r} changed in the store since the export for {len(stale)} image(s), "
            f"e.g. {stale[0]}",
            hint="pass --force to apply the folder's boxes anyway (the store's newer ones are replaced)",
        )
