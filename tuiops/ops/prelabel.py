"""Pre-annotation of a review folder, and the accounting of what the reviewer did with it.

Export
    :func:`prelabel_actions` gives every exported image that has no box in the label set
    (a member without boxes, or an image the set does not hold) the detections of a run
    as its label file (YOLO txt or Pascal VOC XML), so labelImg opens it pre-filled: the
    detections at or above ``conf``, after greedy NMS per class at ``nms`` when given.
    The boxes written are recorded in ``tuiops-prelabel.json`` beside the manifest.

Import
    :func:`prelabel_accounting` compares each pre-labelled file as it came back with the
    proposals written into it, box by box, per class of the proposal:

    - **accepted**: a box of the same class whose every coordinate is within
      :data:`tuiops.ops.review.SAME_PX` (0.51 px) of the proposal: what writing and reading
      the file can change (VOC holds whole pixels, a change of at most 0.5 px; YOLO's six
      decimals far less), so the reviewer left it as proposed;
    - **moved**: same class, a coordinate changed beyond that rounding. Any drag in labelImg
      moves an edge by at least a whole pixel, so every edit of the geometry counts; the box
      is still the proposal while its IoU with it is at least
      :data:`tuiops.ops.review.PAIR_IOU` (0.5);
    - **re-classed**: paired as above (same box or IoU >= 0.5), another class;
    - **deleted**: a proposal with no box paired to it;
    - **added**: a box paired with no proposal (counted under its own class).

    The pairing is :func:`tuiops.ops.review.diff_boxes`, the one a review import uses
    against the label set. A pre-labelled file identical to its export was not reviewed:
    it is counted as ``untouched`` and, like every file identical to its export, changes
    nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, InputError, UsageError
from tuiops.fsutil import display_path

if TYPE_CHECKING:
    import polars as pl

    from tuiops.workspace import Workspace

PRELABEL_FILE = "tuiops-prelabel.json"
#: The score below which a detection is no proposal unless ``--conf`` says otherwise (ultralytics'
#: own default for predictions; a run is often stored from 0.001, far too many boxes to review).
PRELABEL_CONF = 0.25
#: What a proposal became, in the order the summary lists them.
OUTCOMES = ("accepted", "moved", "recls", "deleted", "added")
_G_RECORD = 2**62 + 1_000_003


def proposals(
    ws: Workspace, run: str, items: pl.DataFrame, *, conf: float, nms: float | None
) -> pl.DataFrame:
    """The run's boxes of ``items`` (item_id) at or above ``conf``, after NMS per class at ``nms``.

    Returns item_id, class_id, x1, y1, x2, y2, score, best score first within an image.
    """
    import polars as pl

    if nms is not None and not 0.0 < nms <= 1.0:
        raise UsageError(f"--nms must be an IoU in (0, 1], not {nms}")
    boxes = ws.store.read_detections(run).filter(pl.col("score") >= conf)
    boxes = boxes.join(items.select("item_id").unique(), on="item_id", how="semi")
    if nms is not None and boxes.height:
        from tuiops.ops.nms import nms_frame

        boxes = nms_frame(boxes, iou=nms).filter(pl.col("keep"))
    return boxes.sort(["item_id", "score", "id"], descending=[False, True, False]).select(
        "item_id", pl.col("class_id").cast(pl.Int64), "x1", "y1", "x2", "y2", "score"
    )


def prelabel_actions(
    ws: Workspace,
    img: pl.DataFrame,
    label_set: str,
    run: str,
    fmt: str,
    *,
    conf: float,
    nms: float | None,
) -> pl.DataFrame:
    """File actions writing the run's proposals as the label files of ``img``'s unlabelled images.

    ``img``: the export job's image rows (g, item_id, key, ldst_dir, dst_stem, dst_name,
    width, height, img_w, img_h, mode, _esc). Returns ``write`` actions of role ``label``
    (which take the place of the empty label files the set would give those images) and
    one writing :data:`PRELABEL_FILE`; an empty frame when no image is unlabelled.
    """
    import polars as pl

    store = ws.store
    labelled = store.read_labels(label_set).select("item_id").unique()
    bare = img.with_columns(
        pl.col("img_w").fill_null(pl.col("width")).alias("_w"),
        pl.col("img_h").fill_null(pl.col("height")).alias("_h"),
    ).join(labelled, on="item_id", how="anti")
    if bare.height == 0:
        return pl.DataFrame()
    props = proposals(ws, run, bare, conf=conf, nms=nms)
    classes = list(ws.classes)
    top = props["class_id"].max() if props.height else None
    if isinstance(top, int) and top >= len(classes):
        raise InputError(
            f"detection run {run!r} has class id {top}, beyond the workspace class map",
            hint="restore the class map in tuiops.toml",
        )
    rows = bare
    if fmt == "yolo":
        from tuiops.formats.yolo import yolo_texts

        imgs = bare.unique("item_id").select("item_id", pl.col("_w").alias("width"), pl.col("_h").alias("height"),
                           pl.lit(None, pl.String).alias("meta"))  # fmt: skip
        texts = yolo_texts(props.drop("score"), imgs)
        acts = rows.join(texts, on="item_id", how="left").select(
            "g",
            pl.lit(1).alias("ord"),
            (pl.col("ldst_dir") + "/" + pl.col("dst_stem") + ".txt").alias("dst"),
            pl.lit(".txt").alias("dst_ext"),
            pl.col("text").fill_null("").cast(pl.Binary).alias("data"),
            "item_id",
            "ldst_dir",
            "dst_stem",
            "_esc",
        )
    else:
        acts = _voc_actions(rows, bare, props, classes)
    acts = acts.select(
        "g",
        "ord",
        pl.lit("write").alias("action"),
        pl.lit("label").alias("role"),
        "item_id",
        "dst",
        pl.col("ldst_dir").alias("dst_dir"),
        "dst_stem",
        "dst_ext",
        "data",
        "_esc",
    )
    per_key: dict[str, Any] = {}
    grouped = {item: g for (item,), g in props.group_by("item_id")}
    for key, item in bare.unique("item_id", maintain_order=True).select("key", "item_id").iter_rows():
        g = grouped.get(item)
        per_key[key] = {
            "item_id": item,
            "boxes": [] if g is None else [list(r) for r in g.select("class_id", "x1", "y1", "x2", "y2", "score").rows()],
        }  # fmt: skip
    root = img["dst_dir"][0]
    record = {"tuiops_prelabel": 1, "run": run, "conf": conf, "nms": nms, "format": fmt,
              "classes": classes, "images": per_key}  # fmt: skip
    rec = pl.DataFrame(
        {
            "g": [_G_RECORD],
            "ord": [9],
            "action": ["write"],
            "role": ["manifest"],
            "dst": [root + "/" + PRELABEL_FILE],
            "dst_dir": [root],
            "dst_stem": [PRELABEL_FILE.rsplit(".", 1)[0]],
            "dst_ext": [".json"],
            "data": [json.dumps(record, indent=1, ensure_ascii=False).encode("utf-8")],
            "_esc": [False],
        },
        schema_overrides={"g": pl.Int64, "data": pl.Binary},
    )
    out = pl.concat([acts, rec], how="diagonal_relaxed")
    return out.with_columns(
        pl.col("data").bin.size().cast(pl.Int64).alias("size"), pl.lit("file").alias("_kind")
    )


def prelabelled(
    ws: Workspace,
    img: pl.DataFrame,
    lab: pl.DataFrame,
    label_set: str,
    run: str,
    fmt: str,
    *,
    conf: float,
    nms: float | None,
    rest: Callable[[pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    """The pre-labelling actions of an export job and ``rest(label actions)``, its other extra actions.

    ``rest`` sees the plan's label actions with the pre-labelled files in place of the ones
    at their paths (the review manifest records the checksums of the files as written).
    """
    import polars as pl

    pre = prelabel_actions(ws, img, label_set, run, fmt, conf=conf, nms=nms)
    if pre.height == 0:
        return rest(lab)
    labels = pre.filter(pl.col("role") == "label")
    if lab.height:
        labels = pl.concat(
            [lab.join(labels.select("dst"), on="dst", how="anti"), labels], how="diagonal_relaxed"
        )
    return pl.concat([pre, rest(labels)], how="diagonal_relaxed")


def read_prelabel(folder: Path) -> dict[str, Any] | None:
    """The pre-labelling record of a review folder, or None when it has none."""
    path = folder / PRELABEL_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{display_path(path)} is not a pre-labelling record: {exc}") from exc
    if (
        not isinstance(data, dict)
        or data.get("tuiops_prelabel") != 1
        or not isinstance(data.get("images"), dict)
    ):
        raise InputError(f"{display_path(path)} is not a pre-labelling record written by tuiops")
    return data


def prelabel_accounting(
    record: dict[str, Any],
    new: pl.DataFrame,
    reviewed: list[str],
    untouched: int,
    left_out: int,
    classes: list[str],
) -> dict[str, Any]:
    """Per class, what became of the proposals in the ``reviewed`` pre-labelled files.

    ``new``: the boxes read back (key, ord, class_id, x1..y2). Returns run, files,
    reviewed, untouched, left_out, ``classes`` (one row per class: class, predicted and
    the :data:`OUTCOMES`) and ``totals``.
    """
    import polars as pl

    from tuiops.ops.review import diff_boxes

    images = record["images"]
    keys = [k for k in reviewed if k in images]
    item = {k: i for i, k in enumerate(keys)}
    prop_rows = [
        (item[k], n, int(b[0]), float(b[1]), float(b[2]), float(b[3]), float(b[4]))
        for k in keys
        for n, b in enumerate(images[k]["boxes"])
    ]
    schema = {"item_id": pl.Int64, "ord": pl.Int64, "class_id": pl.Int64,
              "x1": pl.Float64, "y1": pl.Float64, "x2": pl.Float64, "y2": pl.Float64}  # fmt: skip
    old = pl.DataFrame(prop_rows, schema=schema, orient="row")
    key_ids = pl.DataFrame(
        {"key": keys, "item_id": range(len(keys))}, schema={"key": pl.String, "item_id": pl.Int64}
    )
    got = (
        new.drop("item_id")
        .join(key_ids, on="key", how="inner")
        .select(
            "item_id",
            "ord",
            pl.col("class_id").cast(pl.Int64),
            *[pl.col(c).cast(pl.Float64) for c in ("x1", "y1", "x2", "y2")],
        )
    )
    d = diff_boxes(old, got)
    d = (
        d.join(old.select("item_id", pl.col("ord").alias("old_ord"), pl.col("class_id").alias("c_old")),
               on=["item_id", "old_ord"], how="left")
        .join(got.select("item_id", pl.col("ord").alias("new_ord"), pl.col("class_id").alias("c_new")),
              on=["item_id", "new_ord"], how="left")
        .with_columns(
            pl.coalesce("c_old", "c_new").alias("class_id"),
            pl.col("change").replace({"unchanged": "accepted", "removed": "deleted"}),
        )
    )  # fmt: skip
    counts = d.group_by("class_id", "change").len()
    table: dict[int, dict[str, int]] = {}
    for c, change, n in counts.iter_rows():
        table.setdefault(int(c), dict.fromkeys(OUTCOMES, 0))[change] = int(n)
    rows: list[dict[str, Any]] = []
    for c in sorted(table):
        t = table[c]
        predicted = sum(t[o] for o in OUTCOMES if o != "added")
        name = classes[c] if 0 <= c < len(classes) else str(c)
        rows.append({"class": name, "predicted": predicted, **t})
    totals = {o: sum(r[o] for r in rows) for o in ("predicted", *OUTCOMES)}
    return {
        "run": record.get("run"),
        "files": len(images),
        "reviewed": len(keys),
        "untouched": untouched,
        "left_out": left_out,
        "classes": rows,
        "totals": totals,
    }


def accounting_lines(acc: dict[str, Any], indent: str = "  ") -> list[str]:
    """The readable table of a pre-labelling accounting (per class, then all)."""
    head = f"{'class':<16} {'predicted':>9} {'accepted':>8} {'moved':>6} {'re-class':>8} {'deleted':>7} {'added':>6}"
    lines = [indent + head]
    for r in [*acc["classes"], {"class": "all", **acc["totals"]}]:
        lines.append(
            indent + f"{r['class']:<16} {r['predicted']:>9} {r['accepted']:>8} {r['moved']:>6} "
            f"{r['recls']:>8} {r['deleted']:>7} {r['added']:>6}"
        )
    return lines


def revision_accounts(store: Any, label_set: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The pre-labelling accounting of those of revisions ``ids`` of ``label_set`` that have one."""
    if not ids:
        return {}
    sid = store.label_set_id(label_set)
    rows = store.execute(
        "SELECT id, json_extract(changes, '$.prelabel') FROM revisions "
        f"WHERE set_id = ? AND id IN ({', '.join('?' * len(ids))}) "
        "AND json_extract(changes, '$.prelabel') IS NOT NULL",
        (sid, *ids),
    ).fetchall()
    return {int(i): json.loads(a) for i, a in rows}


def check_still_bare(ws: Workspace, label_set: str, touched: pl.DataFrame, pre_keys: set[str]) -> None:
    """Refuse when an image that went out pre-labelled (without boxes in the set) has boxes now."""
    import polars as pl

    pre = touched.filter(pl.col("key").is_in(list(pre_keys)))
    if pre.height == 0:
        return
    boxes = ws.store.read_labels(label_set).select("item_id").unique()
    gained = pre.join(boxes, on="item_id", how="semi")["key"].to_list()
    if gained:
        raise ConflictError(
            f"the label set {label_set!r} has boxes in the store for {len(gained)} image(s) that went out "
            f"pre-labelled without any, e.g. {sorted(gained)[0]}",
            hint="pass --force to apply the folder's boxes anyway (the store's newer ones are replaced)",
        )


def account_import(
    folder: Path,
    touched: pl.DataFrame,
    files: pl.DataFrame,
    bad: set[str],
    boxes: pl.DataFrame,
    classes: list[str],
) -> tuple[dict[str, Any] | None, set[str]]:
    """A review import's pre-labelling accounting (None without a record) and the pre-labelled keys.

    ``touched``/``files``: key of the files that differ from their export / that can be
    applied; ``bad``: the names of the files left out; ``boxes``: the boxes read back.
    """
    import polars as pl

    record = read_prelabel(folder)
    if record is None:
        return None, set()
    pre_keys = set(record["images"])
    reviewed = [k for k in touched["key"].to_list() if k in pre_keys]
    untouched = files.filter(pl.col("key").is_in(list(pre_keys)))["key"].n_unique() - len(reviewed)
    left_out = len({f.rsplit(".", 1)[0] for f in bad} & pre_keys)
    return prelabel_accounting(record, boxes, reviewed, untouched, left_out, classes), pre_keys


def _voc_actions(
    rows: pl.DataFrame, bare: pl.DataFrame, props: pl.DataFrame, classes: list[str]
) -> pl.DataFrame:
    """The VOC label files of the unlabelled images ``bare``, holding the proposals ``props``."""
    import polars as pl

    from tuiops.formats.voc import VocBox, VocHeader, mode_depth, voc_document
    from tuiops.fsutil import display_path as shown
    from tuiops.ops.fileops.model import unesc

    by_item: dict[int, list[VocBox]] = {}
    for item, c, x1, y1, x2, y2, _s in props.iter_rows():
        by_item.setdefault(item, []).append(VocBox(classes[c], x1, y1, x2, y2))
    docs = []
    for item, dd, dname, w, h, mode in bare.select(
        "item_id", "ldst_dir", "dst_name", "_w", "_h", "mode"
    ).iter_rows():
        header = VocHeader(
            shown(unesc(dd.rsplit("/", 1)[-1])),
            shown(unesc(dname)),
            shown(unesc(dd + "/" + dname)),
            int(w or 0),
            int(h or 0),
            mode_depth(mode),
        )
        docs.append(voc_document(None, by_item.get(item, []), header))
    acts = rows.with_columns(pl.Series("data", docs, dtype=pl.Binary)).select(
        "g",
        pl.lit(2).alias("ord"),
        (pl.col("ldst_dir") + "/" + pl.col("dst_stem") + ".xml").alias("dst"),
        pl.lit(".xml").alias("dst_ext"),
        "data",
        "item_id",
        "ldst_dir",
        "dst_stem",
        "_esc",
    )
    return acts
