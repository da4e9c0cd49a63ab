"""Ultralytics datasets built from a label set: images linked or copied, YOLO labels from
the store, ``data.yaml`` with the workspace class map, and a split that stays put.

Layout of a dataset folder::

    DIR/data.yaml                      path, train, val, nc, names (the workspace class map)
    DIR/images/{train,val}/KEY.ext     links to (or copies of) the pool files
    DIR/labels/{train,val}/KEY.txt     "class cx cy w h", normalised, 6 decimals
    DIR/tuiops_dataset.json            what was built, from what, with which checks

Stable split: an image keeps the split it had in the previous build of the dataset
(``dataset_images`` in the store); a new image gets one from a stable hash of its key
and the seed (``val`` is the chance of landing in val), so rebuilding never shuffles
images between train and val unless ``resplit`` asks for it. Excluded images keep the
split ``excluded`` until they are included again; images marked bad in the label set
(triage, table ``set_exclusions``) are always excluded.

Checks run before anything is written, each reported with counts and examples and
fixed only when asked (``fix``):

``duplicates``
    boxes repeated within an image (same class, IoU above ``dup_iou``; NMS in file
    order, the earlier box wins) — the fix drops the repeats.
``outside``
    boxes reaching more than ``tol`` pixels outside the image, or with no area — the
    fix clips them to the image and drops those left with no area. (Boxes within
    ``tol`` are always clipped: ultralytics rejects a whole image for one coordinate
    above 1.)
``leaks``
    val images that are near-duplicates (perceptual hash within ``phash_distance``
    bits) of a train image — the fix moves them to train, which the store remembers.
``empty``
    images without boxes (kept as background images) — the fix leaves them out.

Images without a readable pool file, without a known size, or in a format ultralytics
cannot train on are always left out and reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, InputError, NotFoundError, TuiopsError, UsageError
from tuiops.fsutil import atomic_write_text, create_temp_dir, disk_error, display_path, replace_folder
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace

MANIFEST = "tuiops_dataset.json"
DATA_YAML = "data.yaml"
FIXES = ("duplicates", "outside", "leaks", "empty")
LINK_MODES = ("symlink", "hardlink", "copy")
SPLITS = ("train", "val")

#: Image formats (by file extension) ultralytics trains on without extra packages.
TRAIN_FORMATS = frozenset({"bmp", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"})

_EXAMPLES = 10


# -- stable split --------------------------------------------------------------------------------
def _fnv1a(keys: pl.Series) -> np.ndarray:
    """64-bit FNV-1a of every string's UTF-8 bytes, vectorised over the strings."""
    import numpy as np
    import pyarrow as pa

    arr = keys.cast(str).to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_binary())
    n = len(arr)
    h = np.full(n, 0xCBF29CE484222325, dtype=np.uint64)
    if n == 0:
        return h
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    prime = np.uint64(0x100000001B3)
    for j in range(int(lengths.max()) if n else 0):
        live = lengths > j
        idx = np.nonzero(live)[0]
        byte = data[starts[idx] + j].astype(np.uint64)
        h[idx] = (h[idx] ^ byte) * prime
    return h


def _splitmix(x: np.ndarray) -> np.ndarray:
    import numpy as np

    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def split_draw(keys: pl.Series, seed: int) -> pl.Series:
    """A number in [0, 1) per image key, stable across runs, machines and versions."""
    import numpy as np
    import polars as pl

    with np.errstate(over="ignore"):
        h = _fnv1a(keys) ^ _splitmix(np.array([seed & 0xFFFF_FFFF_FFFF_FFFF], dtype=np.uint64))[0]
        u = (_splitmix(h) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return pl.Series("draw", u, dtype=pl.Float64)


# -- near-duplicate images -----------------------------------------------------------------------
def near_duplicate_pairs(left: pl.DataFrame, right: pl.DataFrame, max_distance: int) -> pl.DataFrame:
    """Pairs of ``left`` × ``right`` images whose 64-bit perceptual hashes differ in at most
    ``max_distance`` bits (:func:`tuiops.ops.similar.hash_pairs` over both, kept across).

    Both frames have ``item_id`` and ``phash`` (signed Int64). Returns ``item_id``,
    ``item_id_right``, ``distance``.
    """
    import polars as pl

    from tuiops.ops.similar import hash_pairs

    out_schema = pl.Schema({"item_id": pl.Int64, "item_id_right": pl.Int64, "distance": pl.Int64})
    if max_distance < 0 or left.height == 0 or right.height == 0:
        return pl.DataFrame(schema=out_schema)
    side = pl.concat(
        [
            left.select("item_id", "phash", pl.lit(0, pl.Int8).alias("side")),
            right.select("item_id", "phash", pl.lit(1, pl.Int8).alias("side")),
        ]
    ).with_row_index("node")
    nodes = side.select(
        pl.col("node").cast(pl.Int64), pl.col("phash").cast(pl.Int64).reinterpret(signed=False).alias("h")
    )
    pairs = hash_pairs(nodes, max_distance)
    ends = side.select(pl.col("node").cast(pl.Int64), "item_id", "side")
    joined = pairs.join(ends.rename({"node": "u", "item_id": "iu", "side": "su"}), on="u").join(
        ends.rename({"node": "v", "item_id": "iv", "side": "sv"}), on="v"
    )
    cross = joined.filter(pl.col("su") != pl.col("sv"))
    return (
        cross.select(
            pl.when(pl.col("su") == 0).then(pl.col("iu")).otherwise(pl.col("iv")).alias("item_id"),
            pl.when(pl.col("su") == 0).then(pl.col("iv")).otherwise(pl.col("iu")).alias("item_id_right"),
            pl.col("distance").cast(pl.Int64),
        )
        .sort("item_id", "distance", "item_id_right")
        .cast(out_schema)
    )


# -- results ---------------------------------------------------------------------------------------
@dataclass
class CheckReport:
    """One check: how many it found, whether it was fixed, a few examples."""

    found: int = 0
    images: int = 0
    fixed: bool = False
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DatasetResult:
    """What a dataset build wrote and found."""

    name: str
    root: str
    label_set: str
    data_yaml: str
    images: int = 0
    train: int = 0
    val: int = 0
    boxes: int = 0
    excluded: int = 0
    new_images: int = 0
    kept_split: int = 0
    moved_to_train: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_examples: list[dict[str, Any]] = field(default_factory=list)
    checks: dict[str, CheckReport] = field(default_factory=dict)
    per_class: dict[str, dict[str, int]] = field(default_factory=dict)
    #: boxes per attribute of their source (VOC flags and tags, COCO crowds and segmentations)
    #: that YOLO label files cannot hold
    not_carried: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DatasetInfo:
    """A built dataset as the store knows it."""

    id: int
    name: str
    root: Path
    label_set: str
    params: dict[str, Any]
    built: str | None

    @property
    def data_yaml(self) -> Path:
        return self.root / DATA_YAML


# -- reading ---------------------------------------------------------------------------------------
def dataset_info(store: Store, name: str) -> DatasetInfo:
    """The dataset called ``name``; NotFoundError naming the known ones otherwise."""
    row = store.execute(
        "SELECT id, name, root, label_set, params, built FROM datasets WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        known = [r[0] for r in store.execute("SELECT name FROM datasets ORDER BY name")]
        raise NotFoundError(
            f"no dataset named {name!r}",
            hint=f"known datasets: {', '.join(known) or 'none'}; build one with `tuiops dataset build`",
        )
    return DatasetInfo(int(row[0]), row[1], Path(row[2]), row[3], json.loads(row[4] or "{}"), row[5])


def find_dataset(store: Store, data: str | os.PathLike[str]) -> DatasetInfo | None:
    """The tuiops dataset a data.yaml (or its folder) belongs to, or None for a foreign one."""
    p = Path(data).expanduser().resolve()
    folder = p if p.is_dir() else p.parent
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    try:
        name = json.loads(manifest.read_text(encoding="utf-8"))["dataset"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        info = dataset_info(store, name)
    except NotFoundError:
        return None
    return info if info.root.resolve() == folder else None


def list_datasets(ws: Workspace) -> list[dict[str, Any]]:
    """Every dataset with its label set, folder, build time and split counts."""
    rows = ws.store.execute(
        "SELECT d.name, d.label_set, d.root, d.built, "
        "SUM(di.split = 'train' AND di.name IS NOT NULL), SUM(di.split = 'val' AND di.name IS NOT NULL), "
        "SUM(di.split = 'excluded') "
        "FROM datasets d LEFT JOIN dataset_images di ON di.dataset_id = d.id GROUP BY d.id ORDER BY d.name"
    ).fetchall()
    return [
        {
            "name": r[0],
            "label_set": r[1],
            "root": r[2],
            "built": r[3],
            "train": int(r[4] or 0),
            "val": int(r[5] or 0),
            "excluded": int(r[6] or 0),
        }
        for r in rows
    ]


def dataset_images(store: Store, name: str, splits: Sequence[str] = SPLITS) -> pl.DataFrame:
    """The images written into a dataset: item_id, key, split, path (absolute), width, height."""
    import polars as pl

    info = dataset_info(store, name)
    frame = store.read_frame(
        "SELECT di.item_id, i.key, di.split, di.name, i.width, i.height FROM dataset_images di "
        "JOIN items i ON i.id = di.item_id WHERE di.dataset_id = ? AND di.name IS NOT NULL ORDER BY di.item_id",
        (info.id,),
        {
            "item_id": pl.Int64,
            "key": pl.String,
            "split": pl.String,
            "name": pl.String,
            "width": pl.Int64,
            "height": pl.Int64,
        },
    )
    root = str(info.root)
    return frame.filter(pl.col("split").is_in(list(splits))).select(
        "item_id",
        "key",
        "split",
        (pl.lit(root + os.sep) + pl.col("name")).alias("path"),
        "width",
        "height",
    )


def _read_keys(values: Iterable[str]) -> list[str]:
    """Image keys from values that are keys or ``@FILE`` (one key per line, ``#`` comments)."""
    keys: list[str] = []
    for v in values:
        if v.startswith("@"):
            path = Path(v[1:]).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise InputError(f"cannot read the key list {display_path(path)}: {exc.strerror}") from exc
            except UnicodeDecodeError as exc:
                raise InputError(f"the key list {display_path(path)} is not UTF-8 text") from exc
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    keys.append(line.split()[0])
        elif v.strip():
            keys.append(v.strip())
    return keys


def _key_warnings(
    store: Store,
    set_id: int,
    label_set: str,
    imgs: pl.DataFrame,
    ex_keys: Sequence[str],
    in_keys: Sequence[str],
    where: str | None,
) -> list[str]:
    """Warnings for --exclude/--include keys that change nothing: not an image of the set, or
    one of its images that --where leaves out of this dataset (the exclusion is not kept)."""
    given = set(ex_keys) | set(in_keys)
    chosen = set(imgs["key"].to_list())
    if given <= chosen:
        return []
    in_set = {
        str(r[0])
        for r in store.execute(
            "SELECT i.key FROM set_images s JOIN items i ON i.id = s.item_id WHERE s.set_id = ?", (set_id,)
        )
    }
    out = []
    for option, keys in (("--exclude", ex_keys), ("--include", in_keys)):
        missing = sorted(set(keys) - in_set)
        if missing:
            out.append(
                f"{len(missing)} key(s) given to {option} are not images of {label_set!r}: "
                + ", ".join(missing[:5])
                + (" …" if len(missing) > 5 else "")
            )
        outside = sorted((set(keys) & in_set) - chosen)
        if outside:
            out.append(
                f"{len(outside)} key(s) given to {option} are images of {label_set!r} that --where {where!r} "
                "leaves out of this dataset, so nothing changes for them: " + ", ".join(outside[:5])
            )
    return out


def _images_of_set(store: Store, set_id: int, where: str | None) -> pl.DataFrame:
    """Every image of the set with its chosen pool file (or none), size, hash and path."""
    import polars as pl

    sql = (
        "SELECT s.item_id, i.key, i.width AS item_w, i.height AS item_h, f.id AS file_id, "
        "f.width AS file_w, f.height AS file_h, f.phash, p.root, f.relpath, f.relpath_raw "
        "FROM set_images s JOIN items i ON i.id = s.item_id "
        "LEFT JOIN files f ON f.id = (SELECT MIN(f2.id) FROM files f2 "
        "WHERE f2.item_id = s.item_id AND f2.status = 'ok') "
        "LEFT JOIN pools p ON p.id = f.pool_id WHERE s.set_id = ?"
    )
    if where:
        sql += f" AND s.item_id IN (SELECT item_id FROM v_images WHERE status = 'ok' AND ({where}))"
    schema = {
        "item_id": pl.Int64,
        "key": pl.String,
        "item_w": pl.Int64,
        "item_h": pl.Int64,
        "file_id": pl.Int64,
        "file_w": pl.Int64,
        "file_h": pl.Int64,
        "phash": pl.Int64,
        "root": pl.String,
        "relpath": pl.String,
        "relpath_raw": pl.Binary,
    }
    try:
        if where:
            from tuiops.ops.usersql import authorize, check_where

            check_where(where)
            with store.connection() as conn:
                authorize(conn, sql, (set_id,), what=f"--where {where!r}")
        frame = store.read_frame(sql + " ORDER BY s.item_id", (set_id,), schema)
    except TuiopsError:
        raise
    except Exception as exc:
        if where:
            from tuiops.ops.usersql import where_error

            raise where_error(where, exc) from exc
        raise
    root = pl.col("root").cast(pl.Binary)
    rel = pl.coalesce(pl.col("relpath_raw"), pl.col("relpath").cast(pl.Binary))
    return frame.with_columns(
        pl.concat_str([root.bin.encode("hex"), pl.lit("2f"), rel.bin.encode("hex")])
        .str.decode("hex")
        .alias("src"),
        pl.coalesce("item_w", "file_w").alias("w"),
        pl.coalesce("item_h", "file_h").alias("h"),
        pl.col("relpath").str.extract(r"\.([^./]+)$").str.to_lowercase().alias("ext"),
    )


# -- box checks -------------------------------------------------------------------------------------
def check_boxes(
    labels: pl.DataFrame,
    sizes: pl.DataFrame,
    *,
    fix: Sequence[str],
    dup_iou: float = 0.9,
    tol: float = 1.0,
) -> tuple[pl.DataFrame, dict[str, CheckReport]]:
    """Find duplicate and outside boxes; returns the boxes to write and the two reports.

    ``labels``: id, item_id, class_id, x1, y1, x2, y2. ``sizes``: item_id, w, h, key.
    Boxes within ``tol`` pixels of the image are clipped silently.
    """
    import polars as pl

    from tuiops import geometry as geo
    from tuiops.ops.nms import nms_frame

    reports: dict[str, CheckReport] = {}
    boxes = labels.join(sizes.select("item_id", "key", "w", "h"), on="item_id", how="inner")
    if boxes.height:
        res = nms_frame(boxes.with_columns(pl.lit(0.0).alias("_score")), dup_iou, score="_score")
        dup = res.filter(~pl.col("keep"))
    else:
        res = boxes.with_columns(pl.lit(True).alias("keep"))
        dup = res.head(0)
    rep = CheckReport(
        found=dup.height,
        images=dup["item_id"].n_unique() if dup.height else 0,
        fixed="duplicates" in fix and dup.height > 0,
    )
    rep.examples = [
        {
            "key": r["key"],
            "label_id": r["id"],
            "repeats": r["suppressed_by"],
            "iou": round(r["suppressed_iou"], 3),
        }
        for r in dup.head(_EXAMPLES).iter_rows(named=True)
    ]
    reports["duplicates"] = rep
    if "duplicates" in fix:
        boxes = res.filter(pl.col("keep"))
    boxes = boxes.select("id", "item_id", "key", "class_id", "x1", "y1", "x2", "y2", "w", "h").with_columns(
        pl.col("w").cast(pl.Float64).alias("img_w"), pl.col("h").cast(pl.Float64).alias("img_h")
    )
    boxes = boxes.with_columns(geo.inside_image(tol, img_w="img_w", img_h="img_h").alias("_in"))
    bad = boxes.filter(~pl.col("_in"))
    rep = CheckReport(
        found=bad.height,
        images=bad["item_id"].n_unique() if bad.height else 0,
        fixed="outside" in fix and bad.height > 0,
    )
    rep.examples = [
        {
            "key": r["key"],
            "label_id": r["id"],
            "box": [r["x1"], r["y1"], r["x2"], r["y2"]],
            "image": [r["w"], r["h"]],
        }
        for r in bad.head(_EXAMPLES).iter_rows(named=True)
    ]
    reports["outside"] = rep
    clip_to = pl.col("_in") | pl.lit("outside" in fix)
    boxes = boxes.with_columns(
        pl.when(clip_to).then(pl.col(c).clip(0.0, pl.col(lim))).otherwise(pl.col(c)).alias(c)
        for c, lim in (("x1", "img_w"), ("y1", "img_h"), ("x2", "img_w"), ("y2", "img_h"))
    )
    if "outside" in fix:
        boxes = boxes.filter((pl.col("x2") - pl.col("x1") >= 0.5) & (pl.col("y2") - pl.col("y1") >= 0.5))
    boxes = boxes.drop("_in")
    return boxes.drop("img_w", "img_h"), reports


def yolo_lines(boxes: pl.DataFrame) -> pl.DataFrame:
    """``item_id`` → the text of its YOLO label file (normalised cx cy w h, 6 decimals)."""
    import polars as pl

    from tuiops.formats.yolo import xyxy_line

    line = xyxy_line(pl.col("w"), pl.col("h"))
    return (
        boxes.sort("item_id", "id")
        .with_columns(line.alias("line"))
        .group_by("item_id", maintain_order=True)
        .agg(pl.col("line").str.join("\n").alias("text"))
        .with_columns(pl.col("text") + "\n")
    )


def effective_labels(ws: Workspace, name: str) -> pl.DataFrame:
    """The boxes a dataset's label files hold now, recomputed from the store with its fixes.

    Columns: id, item_id, class_id, x1, y1, x2, y2 (pixels in the item's frame), for the
    dataset's written images.
    """
    import polars as pl

    info = dataset_info(ws.store, name)
    imgs = dataset_images(ws.store, name).select(
        "item_id", "key", pl.col("width").alias("w"), pl.col("height").alias("h")
    )
    labels = ws.store.read_labels(info.label_set).join(imgs.select("item_id"), on="item_id", how="semi")
    params = info.params
    boxes, _ = check_boxes(
        labels,
        imgs,
        fix=params.get("fix", []),
        dup_iou=params.get("dup_iou", 0.9),
        tol=params.get("tol", 1.0),
    )
    return boxes.select("id", "item_id", "class_id", "x1", "y1", "x2", "y2")


# -- writing ---------------------------------------------------------------------------------------
def _place(src: bytes, dst_path: Path, mode: str) -> None:
    dst = os.fsencode(dst_path)
    if mode == "symlink":
        os.symlink(src, dst)
    elif mode == "hardlink":
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    else:
        shutil.copyfile(src, dst)


def _data_yaml(root: Path, classes: Sequence[str], has_val: bool) -> str:
    import yaml

    doc = {
        "path": str(root),
        "train": "images/train",
        "val": "images/val" if has_val else "images/train",
        "nc": len(classes),
        "names": dict(enumerate(classes)),
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _check_target(target: Path, name: str, overwrite: bool) -> None:
    if target.is_file():
        raise UsageError(f"{display_path(target)} is a file; give a folder for the dataset")
    if not target.exists():
        return
    manifest = target / MANIFEST
    if manifest.is_file():
        try:
            owner = json.loads(manifest.read_text(encoding="utf-8")).get("dataset")
        except (OSError, ValueError):
            owner = None
        if owner == name or overwrite:
            return
        raise ConflictError(
            f"{display_path(target)} holds the dataset {owner!r}, not {name!r}",
            hint="choose another folder, pass --name to rebuild that one, or --overwrite",
        )
    if any(target.iterdir()) and not overwrite:
        raise ConflictError(
            f"{display_path(target)} exists and is not empty",
            hint="choose a new or empty folder, or pass --overwrite to replace its content",
        )


def _settings(
    store: Store,
    label_set: str,
    to: str | os.PathLike[str] | None,
    name: str | None,
    resplit: bool,
    given: dict[str, Any],
) -> tuple[DatasetInfo | None, Path, str, dict[str, Any]]:
    """The previous build (if any), the folder, the name and the settings of a build: each setting
    as ``given`` (None: as the previous build had it, else its default), checked."""
    if to is None and name is None:
        raise UsageError("give the dataset folder (--to DIR) or the name of a built dataset (--name)")
    prior = None
    if name is not None:
        with contextlib.suppress(NotFoundError):
            prior = dataset_info(store, name)
    target = Path(to).expanduser().resolve() if to is not None else (prior.root if prior else None)
    assert target is not None
    name = name or target.name
    if prior is None:
        with contextlib.suppress(NotFoundError):
            prior = dataset_info(store, name)
    old = prior.params if prior is not None else {}
    if prior is not None and prior.label_set != label_set and not resplit:
        raise ConflictError(
            f"dataset {name!r} was built from label set {prior.label_set!r}, not {label_set!r}",
            hint="pass --name to build another dataset, or --resplit to rebuild it from the new set",
        )
    g = given
    val = float(old.get("val", 0.2)) if g["val"] is None else float(g["val"])
    seed = int(old.get("seed", 0)) if g["seed"] is None else int(g["seed"])
    link = str(old.get("link", "symlink")) if g["link"] is None else g["link"]
    fix = list(old.get("fix", [])) if g["fix"] is None else list(g["fix"])
    dup_iou = float(old.get("dup_iou", 0.9)) if g["dup_iou"] is None else float(g["dup_iou"])
    phash_distance = (
        int(old.get("phash_distance", 4)) if g["phash_distance"] is None else int(g["phash_distance"])
    )
    if phash_distance > 32:
        raise UsageError(
            f"--phash-distance must be at most 32 bits (got {phash_distance}); -1 turns the check off"
        )
    tol = float(old.get("tol", 1.0)) if g["tol"] is None else float(g["tol"])
    where = old.get("where") if g["where"] is None else (g["where"] or None)
    if not 0.0 <= val < 1.0:
        raise UsageError(f"--val must be a fraction in [0, 1) (got {val})")
    if link not in LINK_MODES:
        raise UsageError(f"--link must be one of {', '.join(LINK_MODES)} (got {link!r})")
    if "all" in fix:
        fix = list(FIXES)
    bad_fix = [f for f in fix if f not in FIXES]
    if bad_fix:
        raise UsageError(f"unknown fix {bad_fix[0]!r}: choose from {', '.join(FIXES)} or all")
    if not 0.0 < dup_iou <= 1.0:
        raise UsageError(f"--dup-iou must lie in (0, 1] (got {dup_iou})")
    params = {
        "label_set": label_set,
        "where": where,
        "val": val,
        "seed": seed,
        "link": link,
        "fix": sorted(fix),
        "dup_iou": dup_iou,
        "phash_distance": phash_distance,
        "tol": tol,
    }
    return prior, target, name, params


def _drawn(val: float) -> pl.Expr:
    """The split an image's stable draw gives it."""
    import polars as pl

    return pl.when(pl.col("draw") < val).then(pl.lit("val")).otherwise(pl.lit("train"))


def _active() -> pl.Expr:
    """True for an image that goes into the dataset unless a check's fix leaves it out."""
    import polars as pl

    return pl.col("skip").is_null() & (pl.col("split") != "excluded")


def _with_split(imgs: pl.DataFrame, where: pl.Expr, split: pl.Expr) -> pl.DataFrame:
    import polars as pl

    return imgs.with_columns(pl.when(where).then(split).otherwise(pl.col("split")).alias("split"))


def _split(
    store: Store, imgs: pl.DataFrame, prior: DatasetInfo | None, params: dict[str, Any], resplit: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every image's split (the previous build's, else its stable draw) and the previous build's splits."""
    import polars as pl

    prev = (
        store.read_frame(
            "SELECT item_id, split AS prev FROM dataset_images WHERE dataset_id = ?",
            (prior.id,),
            {"item_id": pl.Int64, "prev": pl.String},
        )
        if prior is not None
        else pl.DataFrame(schema={"item_id": pl.Int64, "prev": pl.String})
    )
    imgs = imgs.join(prev, on="item_id", how="left").with_columns(split_draw(imgs["key"], params["seed"]))
    drawn = _drawn(params["val"])
    split = drawn if resplit else pl.coalesce("prev", drawn)
    return imgs.with_columns(split.alias("split")), prev


def _exclusions(
    store: Store,
    set_id: int,
    imgs: pl.DataFrame,
    params: dict[str, Any],
    exclude: Sequence[str],
    include: Sequence[str],
    result: DatasetResult,
) -> pl.DataFrame:
    """The split ``excluded`` for the images excluded (by key, or marked bad in the label set),
    and a drawn split again for an excluded image that is included."""
    import polars as pl

    ex_keys = _read_keys(exclude)
    in_keys = _read_keys(include)
    both = set(ex_keys) & set(in_keys)
    if both:
        raise UsageError(f"image {sorted(both)[0]!r} is both excluded and included")
    label_set, where = params["label_set"], params["where"]
    result.warnings += _key_warnings(store, set_id, label_set, imgs, ex_keys, in_keys, where)
    if in_keys:
        back = pl.col("key").is_in(in_keys) & (pl.col("split") == "excluded")
        imgs = _with_split(imgs, back, _drawn(params["val"]))
    if ex_keys:
        imgs = _with_split(imgs, pl.col("key").is_in(ex_keys), pl.lit("excluded"))
    marked_bad = store.read_frame(
        "SELECT item_id FROM set_exclusions WHERE set_id = ?", (set_id,), {"item_id": pl.Int64}
    )
    if marked_bad.height:
        imgs = _with_split(imgs, pl.col("item_id").is_in(marked_bad["item_id"].implode()), pl.lit("excluded"))
    return imgs


def _skip_unusable(imgs: pl.DataFrame, result: DatasetResult) -> pl.DataFrame:
    """``skip``: why an image cannot go in (no readable file, size unknown, a format ultralytics
    cannot train on), counted with examples in ``result``."""
    import polars as pl

    reason = (
        pl.when(pl.col("file_id").is_null())
        .then(pl.lit("no readable pool file"))
        .when(pl.col("w").is_null() | pl.col("h").is_null() | (pl.col("w") <= 0) | (pl.col("h") <= 0))
        .then(pl.lit("size unknown"))
        .when(~pl.col("ext").is_in(list(TRAIN_FORMATS)) | pl.col("ext").is_null())
        .then(pl.lit("format ultralytics cannot train on"))
        .otherwise(None)
    )
    imgs = imgs.with_columns(reason.alias("skip"))
    skipped = imgs.filter(pl.col("skip").is_not_null() & (pl.col("split") != "excluded"))
    result.skipped = {str(k): int(v) for k, v in skipped.group_by("skip").len().iter_rows()}
    result.skipped_examples = [
        {"key": r["key"], "reason": r["skip"]} for r in skipped.head(_EXAMPLES).iter_rows(named=True)
    ]
    result.excluded = int((imgs["split"] == "excluded").sum())
    return imgs


def _checked_boxes(
    store: Store, imgs: pl.DataFrame, params: dict[str, Any], result: DatasetResult
) -> pl.DataFrame:
    """The label set's boxes of the images that go in, after the box checks (and their fixes);
    what YOLO files cannot hold of them is counted in ``result``."""

    from tuiops.ops.labels import not_carried

    sizes = imgs.filter(_active()).select("item_id", "key", "w", "h")
    labels = store.read_labels(params["label_set"], with_extra=True).join(
        sizes.select("item_id"), on="item_id", how="semi"
    )
    result.not_carried = not_carried(labels, "yolo")
    if result.not_carried:
        lost = ", ".join(f"{k} {n}" for k, n in result.not_carried.items())
        result.warnings.append(
            f"YOLO label files cannot hold what some boxes' source states; not written: {lost} (box counts)"
        )
    boxes, box_reports = check_boxes(
        labels.drop("extra"), sizes, fix=params["fix"], dup_iou=params["dup_iou"], tol=params["tol"]
    )
    result.checks.update(box_reports)
    return boxes


def _check_leaks(
    imgs: pl.DataFrame, params: dict[str, Any], reporter: Reporter, result: DatasetResult
) -> pl.DataFrame:
    """The leaks check: val images that are near-duplicates of train images (moved to train
    when ``fix`` says ``leaks``)."""
    import polars as pl

    leak_rep = CheckReport()
    moved = pl.DataFrame(schema={"item_id": pl.Int64})
    phash_distance = params["phash_distance"]
    if phash_distance >= 0:
        cand = imgs.filter(_active())
        need = cand.filter(pl.col("phash").is_null())
        if need.height:
            computed = _compute_phashes(need, reporter)
            cand = (
                cand.join(computed, on="item_id", how="left", suffix="_c")
                .with_columns(pl.coalesce("phash", "phash_c").alias("phash"))
                .drop("phash_c")
            )
            result.warnings.append(
                f"{need.height} image(s) had no stored perceptual hash and were hashed now; "
                "`tuiops scan --hash` stores them"
            )
        hashed = cand.filter(pl.col("phash").is_not_null())
        pairs = near_duplicate_pairs(
            hashed.filter(pl.col("split") == "val").select("item_id", "phash"),
            hashed.filter(pl.col("split") == "train").select("item_id", "phash"),
            phash_distance,
        )
        keys = imgs.select("item_id", "key")
        leak_rep.found = pairs.height
        leak_rep.images = pairs["item_id"].n_unique() if pairs.height else 0
        leak_rep.examples = [
            {"val": r["key"], "train": r["key_right"], "distance": r["distance"]}
            for r in pairs.join(keys, on="item_id")
            .join(keys.rename({"item_id": "item_id_right", "key": "key_right"}), on="item_id_right")
            .head(_EXAMPLES)
            .iter_rows(named=True)
        ]
        if "leaks" in params["fix"] and pairs.height:
            leak_rep.fixed = True
            moved = pairs.select("item_id").unique()
            imgs = _with_split(imgs, pl.col("item_id").is_in(moved["item_id"].implode()), pl.lit("train"))
    result.checks["leaks"] = leak_rep
    result.moved_to_train = moved.height
    return imgs


def _written_images(
    imgs: pl.DataFrame, boxes: pl.DataFrame, params: dict[str, Any], strict: bool, result: DatasetResult
) -> pl.DataFrame:
    """The images that go in after the empty-images check; refuses when ``strict`` and a check
    found a problem that is not fixed, or when no image is left."""
    import polars as pl

    fix, label_set = params["fix"], params["label_set"]
    with_boxes = boxes.select("item_id").unique()
    empty = imgs.filter(_active()).join(with_boxes, on="item_id", how="anti")
    emp_rep = CheckReport(found=empty.height, images=empty.height, fixed="empty" in fix and empty.height > 0)
    emp_rep.examples = [{"key": k} for k in empty["key"].head(_EXAMPLES).to_list()]
    result.checks["empty"] = emp_rep
    written = imgs.filter(_active())
    if "empty" in fix:
        written = written.join(with_boxes, on="item_id", how="semi")
    unfixed = [k for k, r in result.checks.items() if r.found and not r.fixed and k != "empty"]
    if strict and unfixed:
        raise InputError(
            f"dataset checks found problems in {label_set!r}: "
            + ", ".join(f"{result.checks[k].found} {k}" for k in unfixed),
            hint=f"fix them in the label set, or pass --fix {','.join(unfixed)}",
        )
    if result.checks["outside"].found and "outside" not in fix:
        result.warnings.append(
            f"{result.checks['outside'].images} image(s) have boxes outside the image; ultralytics "
            "ignores such images: pass --fix outside to clip the boxes"
        )
    if written.height == 0:
        raise InputError(
            f"no image of label set {label_set!r} can go into the dataset"
            + (f" (skipped: {result.skipped})" if result.skipped else ""),
            hint="scan the pool that holds the images (`tuiops scan`), or check --where",
        )
    return written.with_columns(
        (pl.lit("images/") + pl.col("split") + "/" + pl.col("key") + "." + pl.col("ext")).alias("name"),
        (pl.lit("labels/") + pl.col("split") + "/" + pl.col("key") + ".txt").alias("label_name"),
    )


def _count(ws: Workspace, written: pl.DataFrame, boxes: pl.DataFrame, result: DatasetResult) -> None:
    """The counts of images, splits and boxes (per class and split) written."""
    per_class = (
        boxes.join(written.select("item_id", "split"), on="item_id").group_by("class_id", "split").len()
    )
    result.per_class = {}
    for cid, split, n in per_class.sort("class_id", "split").iter_rows():
        cname = ws.classes[cid] if 0 <= cid < len(ws.classes) else str(cid)
        result.per_class.setdefault(cname, {"train": 0, "val": 0})[split] = int(n)
    result.images = written.height
    result.train = int((written["split"] == "train").sum())
    result.val = int((written["split"] == "val").sum())
    result.boxes = boxes.height


def _write_staging(
    ws: Workspace,
    target: Path,
    name: str,
    params: dict[str, Any],
    texts: pl.DataFrame,
    has_val: bool,
    reporter: Reporter,
    result: DatasetResult,
) -> tuple[Path, str]:
    """The dataset written into a new folder beside ``target`` (images, labels, data.yaml and
    the manifest); returns that folder and the time of the build. Nothing is left behind on
    failure."""
    from tuiops.store.db import utcnow

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging = Path(create_temp_dir(target.parent, f".{target.name}.build-"))
    except OSError as exc:
        raise disk_error(target.parent, exc, "write into") from exc
    try:
        for sub in ("images/train", "images/val", "labels/train", "labels/val"):
            (staging / sub).mkdir(parents=True, exist_ok=True)
        rows_iter = texts.select("name", "label_name", "src", "text").iter_rows()
        for done, (name_, label_name, src, text) in enumerate(rows_iter, 1):
            _place(src, staging / name_, params["link"])
            with open(staging / label_name, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            if done % 256 == 0:
                reporter.update(done)
        atomic_write_text(staging / DATA_YAML, _data_yaml(target, ws.classes, has_val))
        built = utcnow()
        manifest = {
            "dataset": name,
            "workspace": str(ws.root),
            "label_set": params["label_set"],
            "built": built,
            "params": params,
            "classes": list(ws.classes),
            "counts": {
                "images": result.images,
                "train": result.train,
                "val": result.val,
                "boxes": result.boxes,
            },
        }
        atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise disk_error(getattr(exc, "filename", None) or staging, exc) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, built


def _record(
    store: Store,
    prior: DatasetInfo | None,
    name: str,
    target: Path,
    built: str,
    params: dict[str, Any],
    summary: dict[str, Any],
    rows: pl.DataFrame,
) -> None:
    """The build in the store: the dataset's row and every image's split (``rows``)."""
    import polars as pl

    label_set = params["label_set"]
    with store.bulk() as tx:
        if prior is None:
            did = int(
                tx.one(
                    "INSERT INTO datasets(name, root, label_set, created, built, params, summary) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (name, str(target), label_set, built, built, json.dumps(params), json.dumps(summary)),
                )
            )
        else:
            did = prior.id
            tx.execute(
                "UPDATE datasets SET root = ?, label_set = ?, built = ?, params = ?, summary = ? WHERE id = ?",
                (str(target), label_set, built, json.dumps(params), json.dumps(summary), did),
            )
            tx.execute("DELETE FROM dataset_images WHERE dataset_id = ?", (did,))
        tx.ingest("dataset_images", rows.with_columns(pl.lit(did, pl.Int64).alias("dataset_id")))


def build_dataset(
    ws: Workspace,
    label_set: str,
    to: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    where: str | None = None,
    val: float | None = None,
    seed: int | None = None,
    link: str | None = None,
    resplit: bool = False,
    exclude: Sequence[str] = (),
    include: Sequence[str] = (),
    fix: Sequence[str] | None = None,
    dup_iou: float | None = None,
    phash_distance: int | None = None,
    tol: float | None = None,
    strict: bool = False,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DatasetResult:
    """Build (or rebuild) an ultralytics dataset from ``label_set`` into folder ``to``.

    ``name`` (default: the folder's name) identifies the dataset in the store; a rebuild
    of a known dataset reuses its folder and settings unless given again. ``exclude`` /
    ``include`` take image keys or ``@FILE`` lists. ``strict`` refuses to write anything
    when a check finds a problem that is not fixed.
    """
    import polars as pl

    store = ws.store
    set_id = store.label_set_id(label_set)
    given = {
        "where": where,
        "val": val,
        "seed": seed,
        "link": link,
        "fix": fix,
        "dup_iou": dup_iou,
        "phash_distance": phash_distance,
        "tol": tol,
    }
    prior, target, name, params = _settings(store, label_set, to, name, resplit, given)
    _check_target(target, name, overwrite)
    result = DatasetResult(
        name=name, root=str(target), label_set=label_set, data_yaml=str(target / DATA_YAML)
    )
    reporter = Reporter("dataset", progress, cancel)
    with job(store, "dataset", {"op": "dataset build", "name": name, **params}) as j:
        imgs = _images_of_set(store, set_id, params["where"])
        reporter.update(0, f"{imgs.height} images in {label_set}", force=True)
        imgs, prev = _split(store, imgs, prior, params, resplit)
        result.new_images = int(imgs["prev"].is_null().sum())
        result.kept_split = imgs.height - result.new_images
        imgs = _exclusions(store, set_id, imgs, params, exclude, include, result)
        imgs = _skip_unusable(imgs, result)
        reporter.check()
        boxes = _checked_boxes(store, imgs, params, result)
        reporter.check()
        imgs = _check_leaks(imgs, params, reporter, result)
        written = _written_images(imgs, boxes, params, strict, result)
        boxes = boxes.join(written.select("item_id"), on="item_id", how="semi")
        texts = (
            written.select("item_id", "name", "label_name", "src")
            .join(yolo_lines(boxes), on="item_id", how="left")
            .with_columns(pl.col("text").fill_null(""))
        )
        reporter.update(0, "writing", total=texts.height, force=True)
        has_val = bool((written["split"] == "val").any())
        if not has_val and params["val"] > 0:
            result.warnings.append("the val split is empty; data.yaml validates on the train images")
        _count(ws, written, boxes, result)
        staging, built = _write_staging(ws, target, name, params, texts, has_val, reporter, result)
        reporter.check()
        replace_folder(staging, target)
        rows = imgs.join(written.select("item_id", "name"), on="item_id", how="left").select(
            "item_id", "split", "file_id", "name"
        )
        # images outside this build's selection keep the split they had, for a later build
        kept = prev.join(rows.select("item_id"), on="item_id", how="anti").select(
            "item_id",
            pl.col("prev").alias("split"),
            pl.lit(None, pl.Int64).alias("file_id"),
            pl.lit(None, pl.String).alias("name"),
        )
        summary = {k: v for k, v in result.to_dict().items() if k not in ("checks", "skipped_examples")}
        summary["checks"] = {k: {"found": r.found, "fixed": r.fixed} for k, r in result.checks.items()}
        _record(store, prior, name, target, built, params, summary, pl.concat([rows, kept]))
        reporter.update(texts.height, "done", force=True)
        j.result = summary
    return result


def _compute_phashes(frame: pl.DataFrame, reporter: Reporter) -> pl.DataFrame:
    """Perceptual hashes of images that have none stored (one decode per file)."""
    import polars as pl
    from PIL import Image

    from tuiops.ops.probe import phash_int

    ids: list[int] = []
    hashes: list[int | None] = []
    for item_id, src in frame.select("item_id", "src").iter_rows():
        try:
            with Image.open(src) as im:
                hashes.append(phash_int(im))
        except Exception:
            hashes.append(None)
        ids.append(item_id)
        reporter.check()
    return pl.DataFrame(
        {"item_id": ids, "phash_c": hashes}, schema={"item_id": pl.Int64, "phash_c": pl.Int64}
    )


def delete_label_caches(root: str | os.PathLike[str]) -> list[Path]:
    """Delete ultralytics' label caches (``*.cache``) under a dataset folder; returns those removed."""
    removed = []
    for p in Path(root).rglob("*.cache"):
        if p.is_file():
            try:
                p.unlink()
            except OSError as exc:
                raise disk_error(p, exc, "delete") from exc
            removed.append(p)
    return removed
