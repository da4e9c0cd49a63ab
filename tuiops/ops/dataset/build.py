"""Building a dataset: settings, split, exclusions, checks, the folder written and the record in the store."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, InputError, NotFoundError, TuiopsError, UsageError
from tuiops.fsutil import atomic_write_text, create_temp_dir, disk_error, display_path, replace_folder
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job
from tuiops.ops.dataset.catalog import dataset_info
from tuiops.ops.dataset.checks import check_boxes, yolo_lines
from tuiops.ops.dataset.draws import near_duplicate_pairs, split_draw
from tuiops.ops.dataset.model import (
    DATA_YAML,
    EXAMPLES,
    FIXES,
    LINK_MODES,
    MANIFEST,
    TRAIN_FORMATS,
    CheckReport,
    DatasetInfo,
    DatasetResult,
)

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace


# -- reading ---------------------------------------------------------------------------------------
def _read_keys(values: Iterable[str]) -> list[str]:
    """Image keys from values that are keys or ``@FILE`` (one key per line, ``#`` comments)."""
    import re

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
                # a key is the whole line (an unkeyed image's key may hold a space or a '#');
                # a comment is a line of its own or follows the key after a space
                line = re.split(r"\s#", line, maxsplit=1)[0].strip()
                if line and not line.startswith("#"):
                    keys.append(line)
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
    where: str,
) -> list[str]:
    """Warnings for --exclude/--include keys that change nothing: not an image of the set, or
    one of its images that the filters (``where``: the options, as said) leave out of this
    dataset (the exclusion is not kept)."""
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
                f"{len(outside)} key(s) given to {option} are images of {label_set!r} that {where} "
                "leaves out of this dataset, so nothing changes for them: " + ", ".join(outside[:5])
            )
    return out


def _images_of_set(
    store: Store, set_id: int, where: str | None, tags: str | None = None, warnings: list[str] | None = None
) -> pl.DataFrame:
    """Every image of the set with its chosen pool file (or none), size, hash and path; a
    hash made by an older method than a scan's now is left out (null). ``tags``: only the
    images whose post the booru search finds (its notes go to ``warnings``)."""
    import polars as pl

    from tuiops.ops.probe import PHASH_METHOD

    sql = (
        "SELECT s.item_id, i.key, i.width AS item_w, i.height AS item_h, f.id AS file_id, "
        "f.width AS file_w, f.height AS file_h, "
        f"CASE WHEN f.phash_method = {PHASH_METHOD} THEN f.phash END AS phash, "
        "p.root, f.relpath, f.relpath_raw "
        "FROM set_images s JOIN items i ON i.id = s.item_id "
        "LEFT JOIN files f ON f.id = (SELECT MIN(f2.id) FROM files f2 "
        "WHERE f2.item_id = s.item_id AND f2.status = 'ok') "
        "LEFT JOIN pools p ON p.id = f.pool_id WHERE s.set_id = ?"
    )
    if where:
        sql += f" AND s.item_id IN (SELECT item_id FROM v_images WHERE status = 'ok' AND ({where}))"
    args: list[Any] = [set_id]
    if tags and tags.strip():
        from tuiops.ops.meta import items_sql

        with store.connection() as conn:
            tag_sql, tag_params, notes = items_sql(conn, tags)
        sql += f" AND s.item_id IN ({tag_sql})"
        args += tag_params
        if warnings is not None:
            warnings.extend(f"--tags {tags!r}: {n}" for n in notes)
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
                authorize(conn, sql, args, what=f"--where {where!r}")
        frame = store.read_frame(sql + " ORDER BY s.item_id", args, schema)
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
    tags = old.get("tags") if g["tags"] is None else (g["tags"].strip() or None)
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
        "tags": tags,
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
    label_set = params["label_set"]
    filters = [f"--where {params['where']!r}"] if params["where"] else []
    filters += [f"--tags {params['tags']!r}"] if params.get("tags") else []
    where = " and ".join(filters) or "--where"
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
        {"key": r["key"], "reason": r["skip"]} for r in skipped.head(EXAMPLES).iter_rows(named=True)
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
                f"{need.height} image(s) had no stored perceptual hash (or one of an older method) "
                "and were hashed now; "
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
            .head(EXAMPLES)
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
    emp_rep.examples = [{"key": k} for k in empty["key"].head(EXAMPLES).to_list()]
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
        tag_notes = [w for w in result.warnings if w.startswith("--tags ")]
        raise InputError(
            f"no image of label set {label_set!r} can go into the dataset"
            + (f" (skipped: {result.skipped})" if result.skipped else "")
            + "".join(f"; {w}" for w in tag_notes),
            hint="scan the pool that holds the images (`tuiops scan`), or check --where and --tags "
            '(--tags "" drops a kept tag search)',
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
    tags: str | None = None,
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
        "tags": tags,
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
        imgs = _images_of_set(store, set_id, params["where"], params["tags"], result.warnings)
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

    from tuiops.ops.probe import phash_file

    ids: list[int] = []
    hashes: list[int | None] = []
    for item_id, src in frame.select("item_id", "src").iter_rows():
        try:
            hashes.append(phash_file(src))
        except Exception:
            hashes.append(None)
        ids.append(item_id)
        reporter.check()
    return pl.DataFrame(
        {"item_id": ids, "phash_c": hashes}, schema={"item_id": pl.Int64, "phash_c": pl.Int64}
    )
