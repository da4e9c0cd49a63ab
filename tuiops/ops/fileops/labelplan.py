"""The label files of a plan: carried from disk beside their images, or written from a label set."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tuiops.errors import InputError, UsageError
from tuiops.frames import num_max
from tuiops.fsutil import display_path
from tuiops.ops.base import Reporter
from tuiops.ops.fileops.model import ConvertOptions, unesc

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace


def label_candidates(img: pl.DataFrame, labels: str, op: str) -> pl.DataFrame:
    """Label files that may lie beside each image (carry mode): ``src_dir``, ``src_name``, ``kind``."""
    import polars as pl

    schema = {"g": pl.Int64, "ord": pl.Int64, "src_dir": pl.String, "src_name": pl.String, "lkind": pl.String}
    if labels != "carry" or img.height == 0:
        return pl.DataFrame(schema=schema)
    beside = [
        img.select(
            "g",
            pl.lit(o).alias("ord"),
            "src_dir",
            (pl.col("stem") + suffix).alias("src_name"),
            pl.lit(k).alias("lkind"),
        )
        for o, suffix, k in ((1, ".txt", "yolo"), (2, ".xml", "voc"))
    ]
    sib = (
        img.filter(pl.col("src_dir").str.contains("images", literal=True))
        .filter(pl.col("src_dir").str.contains("(^|/)images(/|$)"))
        .select(
            "g",
            pl.lit(3).alias("ord"),
            pl.col("src_dir").str.replace(r"(.*)(^|/)images(/|$)", "${1}${2}labels${3}").alias("src_dir"),
            (pl.col("stem") + ".txt").alias("src_name"),
            pl.lit("yolo").alias("lkind"),
        )
    )
    out = pl.concat([*beside, sib]).cast(schema)  # type: ignore[arg-type]
    return out.filter(pl.col("src_name") != "classes.txt")


def label_targets(
    ws: Workspace,
    img: pl.DataFrame,
    lab: pl.DataFrame,
    labels: str,
    label_set: str | None,
    op: str,
    convert: ConvertOptions | None,
    rep: Reporter,
) -> pl.DataFrame:
    """The label-file actions of each image (carried or written from the store), plus classes.txt."""
    import polars as pl

    action = {
        "copy": "copy",
        "move": "move",
        "rename": "move",
        "delete": "move",
        "convert": "copy",
        "paint": "copy",
    }[op]
    if labels == "none" or img.height == 0:
        return pl.DataFrame()
    if labels == "carry":
        if lab.height == 0:
            return pl.DataFrame()
        lab = (
            lab.filter(pl.col("ord") == 1)
            .vstack(lab.filter(pl.col("ord") == 2))
            .vstack(
                lab.filter(
                    (pl.col("ord") == 3) & ~pl.col("g").is_in(lab.filter(pl.col("ord") == 1)["g"].implode())
                )
            )
        )
        if convert is not None and convert.max_side and lab.filter(pl.col("lkind") == "voc").height:
            first = lab.filter(pl.col("lkind") == "voc").row(0, named=True)
            raise UsageError(
                f"--max-side changes pixel sizes, so the carried VOC file {display_path(unesc(first['src_dir']))}/"
                f"{display_path(unesc(first['src_name']))} would no longer fit its image",
                hint="write the labels from the store instead: --labels voc --set NAME (boxes are scaled)",
            )
        g = img.select("g", pl.col("ldst_dir").alias("dst_dir"), "dst_stem", "_esc", "item_id")
        out = lab.join(g, on="g", how="left").select(
            "g",
            "ord",
            pl.lit(action).alias("action"),
            pl.lit("label").alias("role"),
            "item_id",
            (pl.col("src_dir") + "/" + pl.col("src_name")).alias("src"),
            (
                pl.col("dst_dir")
                + "/"
                + pl.col("dst_stem")
                + pl.when(pl.col("lkind") == "voc").then(pl.lit(".xml")).otherwise(pl.lit(".txt"))
            ).alias("dst"),
            "dst_dir",
            "dst_stem",
            pl.when(pl.col("lkind") == "voc").then(pl.lit(".xml")).otherwise(pl.lit(".txt")).alias("dst_ext"),
            pl.lit(None, pl.Binary).alias("data"),
            "_kind",
            "_esc",
            "src_dir",
            "lkind",
        )
        out = _label_file_ids(ws.store, out, img)
        return pl.concat([out.drop("lkind"), _carried_classes(out, action)], how="diagonal_relaxed")
    assert label_set is not None
    return _store_labels(ws, img, labels, label_set, convert, rep)


def _label_file_ids(store: Store, lab: pl.DataFrame, img: pl.DataFrame) -> pl.DataFrame:
    """The ``files`` records of carried label files that a scan indexed (so they follow too)."""
    import polars as pl

    roots = img.select("g", "pool_id", "_root")
    lab = lab.join(roots, on="g", how="left", maintain_order="left")
    inside = pl.col("src").str.starts_with(pl.col("_root") + "/")
    lab = lab.with_columns(
        pl.when(inside).then(pl.col("src").str.slice(pl.col("_root").str.len_chars() + 1)).alias("_lrel")
    )
    if lab["_esc"].any():
        shown = [
            unesc(r).decode("utf-8", "backslashreplace") if (e and r is not None) else r
            for r, e in zip(lab["_lrel"].to_list(), lab["_esc"].to_list(), strict=True)
        ]
        lab = lab.with_columns(pl.Series("_lrel", shown, dtype=pl.String))
    keys = (
        lab.select(pl.col("pool_id").cast(pl.Int64), pl.col("_lrel").alias("relpath")).drop_nulls().unique()
    )
    if keys.height == 0:
        return lab.with_columns(pl.lit(None, pl.Int64).alias("file_id")).drop("pool_id", "_root", "_lrel")
    with store.bulk() as tx:
        tx.ingest("_fo_labels", keys, temporary=True, mode="replace")
        found = tx.read_frame(
            "SELECT k.pool_id, k.relpath, f.id AS file_id FROM temp._fo_labels k "
            "JOIN files f ON f.pool_id = k.pool_id AND f.relpath = k.relpath"
        )
        tx.execute("DROP TABLE temp._fo_labels")
    found = found.select(
        pl.col("pool_id").cast(pl.Int64),
        pl.col("relpath").cast(pl.String).alias("_lrel"),
        pl.col("file_id").cast(pl.Int64),
    )
    lab = lab.with_columns(pl.col("pool_id").cast(pl.Int64)).join(
        found, on=["pool_id", "_lrel"], how="left", maintain_order="left"
    )
    return lab.drop("pool_id", "_root", "_lrel")


def _carried_classes(lab: pl.DataFrame, action: str) -> pl.DataFrame:
    """classes.txt of the source folders of carried YOLO files, once per target folder."""
    import polars as pl

    yolo = (
        lab.filter(pl.col("lkind") == "yolo").select("src_dir", "dst_dir", "_esc").unique(maintain_order=True)
    )
    rows: list[dict[str, Any]] = []
    contents: dict[str, bytes | None] = {}
    for sd, dd, e in yolo.iter_rows():
        if sd not in contents:
            try:
                with open(os.path.join(unesc(sd), b"classes.txt"), "rb") as fh:
                    contents[sd] = fh.read()
            except OSError:
                contents[sd] = None
        data = contents[sd]
        if data is None:
            continue
        rows.append(
            {
                "g": -1,
                "ord": 9,
                "action": "write",
                "role": "classes",
                "src": sd + "/classes.txt",
                "src_dir": sd,
                "dst": dd + "/classes.txt",
                "dst_dir": dd,
                "dst_stem": "classes",
                "dst_ext": ".txt",
                "data": data,
                "size": len(data),
                "_kind": "file",
                "_esc": e,
            }
        )
    if not rows:
        return pl.DataFrame()
    frame = pl.DataFrame(rows).unique(["dst", "data"], keep="first", maintain_order=True)
    return frame.with_columns((pl.lit(2**62) + pl.int_range(pl.len())).alias("g"))


def _store_labels(
    ws: Workspace,
    img: pl.DataFrame,
    labels: str,
    label_set: str,
    convert: ConvertOptions | None,
    rep: Reporter,
) -> pl.DataFrame:
    """Label files written from a label set: YOLO text and/or VOC documents, plus classes.txt."""
    import polars as pl

    from tuiops.formats.classes import classes_txt_bytes

    store = ws.store
    sid = store.label_set_id(label_set)
    images = store.read_frame(
        "SELECT s.item_id, s.meta FROM set_images s WHERE s.set_id = ?",
        (sid,),
        {"item_id": pl.Int64, "meta": pl.String},
    )
    first = img.unique("item_id", keep="first", maintain_order=True)
    members = img.join(images, on="item_id", how="inner").sort("g")
    boxes = store.read_labels(label_set, with_extra=True).join(
        first.select("item_id"), on="item_id", how="semi"
    )
    classes = list(ws.classes)
    top = num_max(boxes["class_id"])
    if top is not None and top >= len(classes):
        raise InputError(
            f"label set {label_set!r} has class id {top}, beyond the workspace class map",
            hint="restore the class map in tuiops.toml",
        )
    scale = pl.lit(1.0)
    if convert is not None and convert.max_side:
        side = pl.max_horizontal(pl.col("width"), pl.col("height")).cast(pl.Float64)
        scale = pl.when(side > convert.max_side).then(convert.max_side / side).otherwise(1.0)
    members = members.with_columns(
        pl.col("img_w").fill_null(pl.col("width")).alias("img_w"),
        pl.col("img_h").fill_null(pl.col("height")).alias("img_h"),
        scale.alias("_scale"),
    ).with_columns(
        (pl.col("width").fill_null(pl.col("img_w")) * pl.col("_scale"))
        .round()
        .clip(lower_bound=1)
        .cast(pl.Int64)
        .alias("_nw"),
        (pl.col("height").fill_null(pl.col("img_h")) * pl.col("_scale"))
        .round()
        .clip(lower_bound=1)
        .cast(pl.Int64)
        .alias("_nh"),
    )
    out: list[pl.DataFrame] = []
    common: list[pl.Expr | str] = [
        pl.col("g"),
        pl.lit("write").alias("action"),
        pl.lit("label").alias("role"),
        "item_id",
        pl.col("ldst_dir").alias("dst_dir"),
        "dst_stem",
        "_esc",
    ]
    if labels in ("yolo", "both") and members.height:
        from tuiops.formats.yolo import yolo_texts

        imgs = members.unique("item_id", keep="first").select(
            "item_id", pl.col("img_w").alias("width"), pl.col("img_h").alias("height"), "meta"
        )
        texts = yolo_texts(boxes.drop("id"), imgs)
        y = members.join(texts, on="item_id", how="left").select(
            *common,
            pl.lit(1).alias("ord"),
            (pl.col("ldst_dir") + "/" + pl.col("dst_stem") + ".txt").alias("dst"),
            pl.lit(".txt").alias("dst_ext"),
            pl.col("text").fill_null("").cast(pl.Binary).alias("data"),
        )
        out.append(y)
        dirs = y.select("dst_dir", "_esc").unique("dst_dir", maintain_order=True)
        ct = classes_txt_bytes(classes)
        out.append(
            dirs.select(
                (pl.lit(2**62) + pl.int_range(pl.len())).alias("g"),
                pl.lit(9).alias("ord"),
                pl.lit("write").alias("action"),
                pl.lit("classes").alias("role"),
                (pl.col("dst_dir") + "/classes.txt").alias("dst"),
                "dst_dir",
                pl.lit("classes").alias("dst_stem"),
                pl.lit(".txt").alias("dst_ext"),
                pl.lit(ct, pl.Binary).alias("data"),
                "_esc",
            )
        )
    if labels in ("voc", "both") and members.height:
        out.append(
            _voc_docs(members, boxes, classes, convert, rep).select(*common, "ord", "dst", "dst_ext", "data")
        )
    if not out:
        return pl.DataFrame()
    frame = pl.concat(out, how="diagonal_relaxed")
    return frame.with_columns(pl.col("data").bin.size().alias("size"), pl.lit("file").alias("_kind"))


def _voc_docs(
    members: pl.DataFrame,
    boxes: pl.DataFrame,
    classes: list[str],
    convert: ConvertOptions | None,
    rep: Reporter,
) -> pl.DataFrame:
    import polars as pl

    from tuiops.formats.voc import mode_depth, voc_documents

    resized = convert is not None and bool(convert.max_side)
    heads: list[tuple[str, str, str, int, float, float]] = []
    for dd, nw, nh, iw, ih, mode, dname in members.select(
        "dst_dir", "_nw", "_nh", "img_w", "img_h", "mode", "dst_name"
    ).iter_rows():
        folder = dd.rsplit("/", 1)[-1]
        heads.append(
            (
                display_path(unesc(folder)),
                display_path(unesc(dname)),
                display_path(unesc(dd + "/" + dname)),
                mode_depth(mode),
                nw / iw if resized and iw else 1.0,
                nh / ih if resized and ih else 1.0,
            )
        )
    schema = {"folder": pl.String, "filename": pl.String, "path": pl.String, "depth": pl.Int64}
    docs = members.select(
        "item_id",
        pl.lit(None, pl.String).alias("meta") if resized else pl.col("meta"),
        pl.col("_nw").alias("width"),
        pl.col("_nh").alias("height"),
    ).hstack(
        pl.DataFrame(heads, schema={**schema, "scale_x": pl.Float64, "scale_y": pl.Float64}, orient="row")
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
    datas = voc_documents(docs, objects, check=rep.check, every=512)
    return members.with_columns(
        pl.lit(2).alias("ord"),
        (pl.col("ldst_dir") + "/" + pl.col("dst_stem") + ".xml").alias("dst"),
        pl.lit(".xml").alias("dst_ext"),
        pl.Series("data", datas, dtype=pl.Binary),
    )
