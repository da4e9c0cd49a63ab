"""Preparing an import: the files read matched to the store's images, their boxes checked against the tolerances."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import InputError
from tuiops.formats import ReadResult, concat_problems
from tuiops.keys import parse_keys
from tuiops.ops.labels.model import ImportResult, Tolerance
from tuiops.store import COCO_LABEL_COLUMNS

if TYPE_CHECKING:
    import polars as pl
    from polars.expr.whenthen import ChainedThen, Then

    from tuiops.store import Store
    from tuiops.workspace import Workspace


@dataclass
class _Prepared:
    boxes: Any
    images: Any
    new_classes: list[str]
    #: images left out because every box of their file had a problem
    no_box_items: list[int] = field(default_factory=list)


def lookup_items(store: Store, keys: list[str]) -> pl.DataFrame:
    """The items of ``keys``: key, item_id, width, height (keys not in the store are absent).

    Keys that are a good part of the store's items (a quarter or more) are joined with the
    whole items table read at once; fewer are looked up through the key index.
    """
    import polars as pl

    schema = {"key": pl.String, "item_id": pl.Int64, "width": pl.Int64, "height": pl.Int64}
    uniq = pl.DataFrame({"key": keys}, schema={"key": pl.String}).unique()
    if uniq.height == 0:
        return pl.DataFrame(schema=schema)
    top = store.one("SELECT max(id) FROM items") or 0
    if uniq.height * 4 >= top:
        every = store.read_frame("SELECT key, id AS item_id, width, height FROM items", (), schema)
        return every.join(uniq, on="key", how="semi")
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


def prepare_import(
    ws: Workspace,
    rr: ReadResult,
    fmt: str,
    with_score: bool,
    tol: Tolerance,
    add_classes: bool,
    result: ImportResult,
) -> _Prepared:
    """What an import stores: the files read matched to the store's images, their classes
    mapped to the workspace's, their boxes in pixels and checked; every file and box left
    out is in ``result.problems`` and counted in ``result``."""
    import polars as pl

    accepted, rejected, file_problems = _match_files(ws, rr, fmt, result)
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
    boxes, new_classes = _class_ids(ws, rr, fmt, boxes, add_classes, result)
    boxes, checks = _in_pixels(ws, rr, fmt, boxes)
    checks += _box_checks(with_score, tol, result)
    boxes, box_problems = _box_problems(boxes, checks, fmt, result)
    good = boxes.filter(~pl.col("bad"))
    if with_score and result.outside != "drop":
        good, clip_problems = _outside_detections(good, tol, result)
        box_problems = pl.concat([box_problems, clip_problems])
    crowded = _crowded_files(good, accepted, result.source if fmt == "coco" else None, with_score)
    if crowded.height:
        file_problems = concat_problems([file_problems, crowded.drop("file_idx", "n")])
        accepted = accepted.join(crowded.select("file_idx"), on="file_idx", how="anti")
        good = good.join(crowded.select("file_idx"), on="file_idx", how="anti")
    problems = _named_files(concat_problems([read_problems, file_problems, box_problems]), fmt, result)
    result.files_skipped = rr.found - accepted.height
    no_box = _files_without_valid_boxes(rr, accepted, read_problems, boxes.filter(pl.col("bad")), good)
    if no_box.height:
        problems = concat_problems([problems, _no_box_problems(no_box, fmt, result)])
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
    out_cols += [c for c in COCO_LABEL_COLUMNS if c in good.columns]
    out_boxes = good.select(out_cols)
    images = accepted.sort("file_idx").select(
        "item_id", pl.col("path").alias("source"), pl.col("meta").cast(pl.String)
    )
    return _Prepared(out_boxes, images, new_classes, no_box["item_id"].to_list())


def _match_files(
    ws: Workspace, rr: ReadResult, fmt: str, result: ImportResult
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The files read matched to the store's images by their image key: those accepted
    (with item_id, width, height), those rejected, and the problems of the rejected."""
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
    files = files.sort("path", maintain_order=True)
    matched = files["item_id"].drop_nulls()
    if matched.n_unique() == matched.len():
        # one file per image (the common case): each is its image's first
        files = files.with_columns(pl.col("path").alias("first_path"), pl.lit(True).alias("first"))
    else:
        files = files.with_columns(
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
    return accepted, rejected, file_problems


def _class_ids(
    ws: Workspace, rr: ReadResult, fmt: str, boxes: pl.DataFrame, add_classes: bool, result: ImportResult
) -> tuple[pl.DataFrame, list[str]]:
    """``boxes`` with the workspace ``class_id`` of each, and the class names to add to the map.

    A name the map lacks is an error unless ``add_classes`` or the map is empty."""
    import polars as pl

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

    return boxes, new_classes


def _in_pixels(
    ws: Workspace, rr: ReadResult, fmt: str, boxes: pl.DataFrame
) -> tuple[pl.DataFrame, list[tuple[pl.Expr, pl.Expr]]]:
    """``boxes`` with ``x1, y1, x2, y2`` in pixels from the format's own columns, and the
    format's checks (condition of a bad box, its message)."""
    import polars as pl

    ws_classes = list(ws.classes)
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
    return boxes, checks


def _box_checks(with_score: bool, tol: Tolerance, result: ImportResult) -> list[tuple[pl.Expr, pl.Expr]]:
    """The checks of every box in pixels (condition of a bad box, its message): the score's,
    finite coordinates, not empty, inside the image within ``tol`` (a detection's only when
    ``outside`` is ``drop``)."""
    import polars as pl

    Wf, Hf = pl.col("width").cast(pl.Float64), pl.col("height").cast(pl.Float64)
    checks: list[tuple[pl.Expr, pl.Expr]] = []
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
    return checks


def _box_problems(
    boxes: pl.DataFrame, checks: list[tuple[pl.Expr, pl.Expr]], fmt: str, result: ImportResult
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``boxes`` with ``bad`` (a check failed), and a problem for each bad box naming the
    first check it failed."""
    import polars as pl

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
    return boxes, box_problems


def _named_files(problems: pl.DataFrame, fmt: str, result: ImportResult) -> pl.DataFrame:
    """``problems`` naming files as the user can open them: for YOLO and VOC the source
    folder joined with the relative path (or the source file itself)."""
    import polars as pl

    if fmt == "coco":
        return problems
    if Path(result.source).is_dir():
        return problems.with_columns((pl.lit(_prefix(result)) + pl.col("file")).alias("file"))
    return problems.with_columns(pl.lit(result.source).alias("file"))


def _prefix(result: ImportResult) -> str:
    return result.source if result.source.endswith("/") else result.source + "/"


def _no_box_problems(no_box: pl.DataFrame, fmt: str, result: ImportResult) -> pl.DataFrame:
    """A problem for each file whose every box had a problem."""
    import polars as pl

    if fmt == "coco":
        where = pl.lit(result.source)
        what = pl.format("image '{}': {}", pl.col("path"), pl.lit(_NO_VALID_BOX))
    else:
        where = (
            pl.lit(_prefix(result)) + pl.col("path")
            if Path(result.source).is_dir()
            else pl.lit(result.source)
        )
        what = pl.lit(_NO_VALID_BOX)
    return no_box.select(where.alias("file"), pl.lit(None, pl.Int64).alias("line"), what.alias("message"))


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
