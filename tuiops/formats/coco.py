"""COCO JSON: instances (``images``, ``annotations``, ``categories``) and results lists.

An annotation's ``bbox`` is ``[x, y, width, height]`` in pixels. The reader keeps each
image entry as written in the image's meta, and an annotation's ``id``, ``bbox``,
``area``, ``iscrowd`` and every other key (``segmentation`` …) in the box's extra; the
writer gives them back for a box that did not move (a moved box gets ``area`` =
width × height and an empty ``segmentation`` in place of its stale one). Every written
annotation has ``area``, ``iscrowd`` and ``segmentation`` (``[]`` where there is none),
as readers such as Datumaro expect.

A detection results file is a list of ``{image_id, category_id, bbox, score}``; the
images and categories it refers to come from a COCO file beside it (``--images``), or
the file is a full COCO dict whose annotations carry a ``score``.

Written files keep the ids of the imported file by default (``source``): image ids
(from the image's meta), category ids (from the set's or run's meta) and annotation
ids (from the box's extra), so the user's own ground truth and tuiops' exported results
pair up in pycocotools. What has no source id gets tuiops' numbering: an image its item
id (above the file's largest id where the file has some), a class the file lacks
largest id + class id + 1, an annotation ids after the largest. With ``ids="tuiops"``
(or for data from other formats) category ids are the workspace class ids + 1 (COCO's
1-based convention; names are the workspace's), image ids are item ids (the same in
every set and run of a workspace, so an exported label set and run pair up in
pycocotools) and annotation ids run 1..N.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import json.encoder
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tuiops.errors import InputError, UsageError
from tuiops.formats import ReadResult, problems_frame
from tuiops.frames import gc_paused, num_max
from tuiops.fsutil import display_path

_RESULT_CORE = ("id", "image_id", "category_id", "bbox", "score")
_CORE = ("id", "image_id", "category_id", "bbox", "score", "area", "iscrowd", "segmentation")


class _Missing:
    """The value of a key an entry does not have (JSON ``null`` is ``None``)."""


_MISS = _Missing()
_enc = json.encoder.encode_basestring


def _loads(data: bytes | str) -> Any:
    """Parse JSON with orjson (about twice as fast as the standard library).

    What orjson refuses (``NaN`` literals, integers beyond 64 bits, broken text) goes to
    :func:`json.loads`, which accepts the same documents as before and words the errors.
    """
    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def load_json(path: Path) -> Any:
    """Load a JSON file, turning every failure into an :class:`InputError` naming the file."""
    return _parse(path, _read_bytes(path))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {display_path(path)}: {exc.strerror}") from exc


def _parse(path: Path, data: bytes) -> Any:
    """The JSON document ``data`` (the content of ``path``, named in the errors)."""
    try:
        with gc_paused():
            return _loads(data)
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


def _dumps(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


#: Text in orjson's output where :func:`_dumps` may write otherwise: an exponent, a number below
#: 1e-4 (``0.00001``, where the standard library writes ``1e-05``), ``null`` (also NaN and infinity).
_UNSURE = ("e", "E", "0.0000", "null")


def _dumps_exact(v: Any) -> str:
    """:func:`_dumps` of ``v``, byte for byte, made by orjson (several times faster) where its
    text cannot differ (``_UNSURE``)."""
    import orjson

    try:
        text = orjson.dumps(v).decode()
    except TypeError:  # an integer beyond 64 bits, a string that is not UTF-8
        return _dumps(v)
    return _dumps(v) if any(u in text for u in _UNSURE) else text


def _dumps_many(values: list[Any]) -> list[str]:
    """Compact JSON of each value: orjson where it takes them all, else the standard library."""
    import orjson

    try:
        return [orjson.dumps(v).decode() for v in values]
    except TypeError:
        return [_dumps(v) for v in values]


def _column(rows: list[dict[str, Any]], key: str, default: Any = None) -> list[Any]:
    """The value of ``key`` in every row (``default`` where a row lacks it)."""
    return list(map(dict.get, rows, itertools.repeat(key), itertools.repeat(default)))


def _id(v: Any) -> int | str | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | str):
        return v
    return None


def _id_keys(values: list[Any]) -> pl.Series:
    """A join key per COCO id (an int or a string; ``5`` and ``"5"`` differ); null for anything else."""
    if set(map(type, values)) <= {int}:
        with contextlib.suppress(OverflowError, TypeError, ValueError, pl.exceptions.PolarsError):
            return pl.Series(values, dtype=pl.Int64).cast(pl.String)
    return pl.Series(
        [str(v) if type(v) is int else "'" + v if type(v) is str else None for v in values], dtype=pl.String
    )


def _lookup_keys(values: list[Any], keys: pl.Series) -> tuple[pl.Series, pl.Series]:
    """The values (COCO ids) to look up among ``keys`` (:func:`_id_keys` of the ids looked up
    in) and those keys, of the same type: integers where every value is an integer, else the
    keys' text (an id that is not an integer has no integer key: null)."""
    if set(map(type, values)) <= {int}:
        with contextlib.suppress(OverflowError, TypeError, ValueError, pl.exceptions.PolarsError):
            return pl.Series(values, dtype=pl.Int64), keys.cast(pl.Int64, strict=False)
    return _id_keys(values), keys


def _key_map(keys: pl.Series, names: list[str]) -> dict[Any, str]:
    """Key → name, for the keys that are not null."""
    return {k: v for k, v in zip(keys.to_list(), names, strict=True) if k is not None}


def _json_texts(values: list[Any]) -> pl.Series:
    """The JSON text of every value (null where the key is missing), column-wise where the types allow."""
    types = set(map(type, values))
    if types == {_Missing}:
        return pl.repeat(None, len(values), dtype=pl.String, eager=True).alias("")
    with contextlib.suppress(OverflowError, TypeError, ValueError, pl.exceptions.PolarsError):
        if types <= {int}:
            return pl.Series(values, dtype=pl.Int64).cast(pl.String)
        if types <= {int, float, _Missing}:
            present = [None if v is _MISS else v for v in values] if _Missing in types else values
            num = pl.Series(present, dtype=pl.Float64, strict=False)
            if num.is_finite().fill_null(True).all():
                if int not in types:
                    return num.cast(pl.String)
                is_int = pl.Series(list(map(isinstance, values, itertools.repeat(int))), dtype=pl.Boolean)
                if (num_max(num.filter(is_int).abs()) or 0) < 2**53:
                    frame = pl.DataFrame({"n": num, "i": is_int})
                    text = pl.when(pl.col("i")).then(pl.col("n").cast(pl.Int64).cast(pl.String))
                    return frame.select(text.otherwise(pl.col("n").cast(pl.String))).to_series()
        if types <= {str}:
            return pl.Series(list(map(_enc, values)), dtype=pl.String)
        if types <= {str, _Missing}:
            return pl.Series([None if v is _MISS else _enc(v) for v in values], dtype=pl.String)
        if types == {list} and values.count([]) == len(values):
            return pl.Series(["[]"] * len(values), dtype=pl.String)
    return pl.Series([None if v is _MISS else _dumps_exact(v) for v in values], dtype=pl.String)


def _object_texts(
    rows: list[dict[str, Any]], names: Sequence[str], head: str = "{", tail: str = "}"
) -> pl.Series:
    """``{"key":value,…}`` of the keys ``names`` that each row has, in ``names`` order (within
    ``head`` and ``tail``); null for a row with none of them."""
    if not rows or not names:
        return pl.Series([None] * len(rows), dtype=pl.String)
    cols = {f"k{k}": _json_texts(_column(rows, n, _MISS)) for k, n in enumerate(names)}
    frame = pl.DataFrame(cols)
    return frame.select(_extra_text(frame, dict(zip(names, cols, strict=True)), head, tail)).to_series()


def _keys_of(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of the rows, in the order they first appear."""
    return list(dict.fromkeys(itertools.chain.from_iterable(rows)))


def _bbox_columns(bbs: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(valid, xywh, is_int): which values are ``[x, y, w, h]`` numbers, their (n, 4) floats
    (NaN where not valid), and which of the valid values were written as integers (None: none)."""
    n = len(bbs)
    if set(map(type, bbs)) <= {list} and set(map(len, bbs)) <= {4}:
        types = set(map(type, itertools.chain.from_iterable(bbs)))
        if types <= {int, float}:  # every value a number: no per-box checks
            return np.ones(n, bool), *_bbox_numbers(bbs, n, int in types)
        ok, picked = np.ones(n, bool), bbs
    else:
        ok = np.fromiter((type(b) is list and len(b) == 4 for b in bbs), bool, n)
        picked = list(itertools.compress(bbs, ok))
    types = set(map(type, itertools.chain.from_iterable(picked)))
    if not types <= {int, float}:
        good = np.fromiter((all(type(v) in (int, float) for v in b) for b in picked), bool, len(picked))
        idx = np.flatnonzero(ok)
        ok[idx[~good]] = False
        picked = list(itertools.compress(picked, good))
    xywh = np.full((n, 4), np.nan)
    is_int = None
    if picked:
        vals, ints = _bbox_numbers(picked, len(picked), int in types)
        xywh[ok] = vals
        if ints is not None:
            is_int = np.zeros((n, 4), bool)
            is_int[ok] = ints
    return ok, xywh, is_int


def _bbox_numbers(bbs: list[list[Any]], n: int, has_int: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The (n, 4) floats of ``bbs`` (lists of 4 ints and floats), and which were integers
    (None when ``has_int`` says none was)."""
    flat = itertools.chain.from_iterable(bbs)
    try:
        xywh = np.fromiter(flat, np.float64, 4 * n).reshape(n, 4)
    except OverflowError:
        xywh = np.array([float(v) for v in itertools.chain.from_iterable(bbs)]).reshape(n, 4)
    if not has_int:
        return xywh, None
    is_int = itertools.chain.from_iterable(bbs)
    return xywh, np.fromiter(map(isinstance, is_int, itertools.repeat(int)), bool, 4 * n).reshape(n, 4)


def _number_text(values: np.ndarray, is_int: np.ndarray | None) -> pl.Series:
    """The JSON text of each number: as an integer where ``is_int`` says it was written so."""
    frame = pl.DataFrame({"v": pl.Series(values, dtype=pl.Float64)})
    s = pl.col("v").cast(pl.String)
    if is_int is None:
        return frame.select(s).to_series()
    as_int = pl.col("v").cast(pl.Int64, strict=False).cast(pl.String)
    frame = frame.with_columns(pl.Series("i", is_int, dtype=pl.Boolean))
    return frame.select(pl.when(pl.col("i")).then(as_int).otherwise(s)).to_series()


def _categories(cats: list[Any], head_label: str) -> tuple[dict[str, str], list[str]]:
    """Category key → name, and the names in the file's order; a bad category is an error."""
    cat_name: dict[str, str] = {}
    seen: dict[str, Any] = {}
    keys = _id_keys([c.get("id") if isinstance(c, dict) else None for c in cats]).to_list()
    for i, (c, key) in enumerate(zip(cats, keys, strict=True)):
        name = c.get("name") if isinstance(c, dict) else None
        if key is None or not isinstance(name, str) or not name.strip():
            raise InputError(f"{head_label}: categories[{i}] needs an id and a name")
        name = name.strip()
        cid = c["id"]
        if key in cat_name:
            raise InputError(f"{head_label}: categories[{i}]: category id {cid!r} repeats")
        if name in seen:
            raise InputError(
                f"{head_label}: categories[{i}]: name {name!r} repeats (ids {seen[name]!r} and {cid!r})"
            )
        cat_name[key] = name
        seen[name] = cid
    return cat_name, list(cat_name.values())


def _read_images(images: list[Any], head_label: str, bad: list[tuple[str, int | None, str]]) -> pl.DataFrame:
    """The image entries, checked column-wise: file_idx, key (of the id), path, size_w, size_h, meta."""
    n = len(images)
    if set(map(type, images)) <= {dict}:
        rows, is_obj = images, np.ones(n, bool)
    else:
        rows = [im if type(im) is dict else {} for im in images]
        is_obj = np.fromiter((type(im) is dict for im in images), bool, n)
    keys = _id_keys(_column(rows, "id"))
    fnames = _column(rows, "file_name")
    if set(map(type, fnames)) <= {str}:
        path = pl.Series(fnames, dtype=pl.String)
        has_name = np.fromiter(map(bool, map(str.strip, fnames)), bool, n)
    else:
        path = pl.Series([f if type(f) is str else None for f in fnames], dtype=pl.String)
        has_name = np.fromiter((type(f) is str and bool(f.strip()) for f in fnames), bool, n)
    size = [_numbers(_column(rows, k), pl.Float64).cast(pl.Int64, strict=False) for k in ("width", "height")]
    frame = pl.DataFrame(
        {
            "file_idx": np.arange(n, dtype=np.int64),
            "key": keys,
            "path": path,
            "size_w": size[0],
            "size_h": size[1],
            "valid": is_obj & keys.is_not_null().to_numpy() & has_name,
        }
    )
    frame = frame.with_columns(
        pl.col("file_idx").filter(pl.col("valid")).first().over("key").alias("first_idx")
    )
    dup = frame.filter(pl.col("valid") & (pl.col("first_idx") != pl.col("file_idx")))
    for i in np.flatnonzero(~frame["valid"].to_numpy()).tolist():
        where = f"images[{i}]"
        if not is_obj[i]:
            bad.append((head_label, None, f"{where}: not an object"))
        elif keys[i] is None:
            bad.append((head_label, None, f"{where}: no id"))
        else:
            bad.append((head_label, None, f"{where} (id {rows[i]['id']!r}): no file_name"))
    for i, first in dup.select("file_idx", "first_idx").iter_rows():
        bad.append(
            (head_label, None, f"images[{i}]: image id {rows[i]['id']!r} repeats images[{first}]; skipped")
        )
    keep = frame["valid"].to_numpy() & (frame["first_idx"] == frame["file_idx"]).fill_null(False).to_numpy()
    kept_rows = list(itertools.compress(rows, keep))
    meta = _object_texts(kept_rows, _keys_of(kept_rows), '{"coco":{', "}}")
    return (
        frame.filter(pl.Series(keep))
        .with_columns(meta.alias("meta"))
        .select("file_idx", "key", "path", "size_w", "size_h", "meta")
    )


def read_coco(
    path: Path,
    *,
    with_score: bool = False,
    images_path: Path | None = None,
    head_cache: Path | None = None,
) -> ReadResult:
    """Read a COCO instances file (or, for detections, a results list with ``images_path``).

    ``files``: one row per image entry: file_idx (its index in ``images``), path (the
    ``file_name``), width, height (as written, or null), meta.
    ``boxes``: file_idx, line (null), loc (``annotations[i]``), ann_idx (i), name (the
    category's name), x, y, bw, bh [, score], extra.
    ``source_meta``: the categories (and ``info``, ``licenses``) as written.

    Every check runs column-wise over the parsed lists; a bad entry is reported with its
    index and id and skipped.

    ``head_cache``: a folder where the image table and categories read from a COCO file
    are kept (:class:`HeadCache`), so that the file named by ``images_path`` is not parsed
    again when it is the one read before (same size, modification time and SHA-256).
    """
    # the parsed documents live (and are freed) inside: a collection would walk them all
    with gc_paused():
        return _read_coco(path, with_score, images_path, HeadCache(head_cache) if head_cache else None)


@dataclass
class CocoHead:
    """What a COCO file says about its images and categories, checked.

    ``files``: file_idx, key (of the image id), path, size_w, size_h, meta of each kept
    image entry; ``cats``: the categories as written; ``source``: its ``info`` and
    ``licenses``; ``found``: the number of image entries; ``bad``: the messages about the
    image entries that were skipped.
    """

    files: pl.DataFrame
    cats: list[Any]
    source: dict[str, Any]
    found: int
    bad: list[str]


def _head_of(doc: Any, head_label: str) -> CocoHead:
    if not isinstance(doc, dict):
        raise InputError(f"{head_label}: not a COCO dict with images and categories")
    images = doc.get("images")
    cats = doc.get("categories")
    if not isinstance(images, list):
        raise InputError(f"{head_label}: no `images` list")
    if not isinstance(cats, list):
        raise InputError(f"{head_label}: no `categories` list")
    _categories(cats, head_label)
    bad: list[tuple[str, int | None, str]] = []
    files = _read_images(images, head_label, bad)
    source = {k: doc[k] for k in ("info", "licenses") if k in doc}
    return CocoHead(files, cats, source, len(images), [m for _, _, m in bad])


#: The layout of a kept image table; an entry of another layout is not used.
_HEAD_VERSION = 1


class HeadCache:
    """The image tables of COCO files read before, kept in a folder.

    For each file (by its resolved path) ``PATHKEY.json`` records its size, modification
    time and SHA-256 and the categories; the image table is ``SHA256.arrow``. A file is
    taken from the cache only when its size and time are the recorded ones and its
    content hashes to the recorded digest; anything else (no entry, a damaged one, a
    changed file) reads the file. A cache that cannot be written is skipped.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _entry(self, path: Path) -> Path:
        key = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return self.folder / f"{key}.json"

    def load(self, path: Path) -> CocoHead | None:
        """The cached head of ``path`` when it is the same file, else None."""
        try:
            st = path.stat()
            entry = _loads(self._entry(path).read_bytes())
            if entry["version"] != _HEAD_VERSION:
                return None
            if entry["size"] != st.st_size or entry["mtime_ns"] != st.st_mtime_ns:
                return None
            with open(path, "rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
            if digest != entry["sha256"]:
                return None
            files = pl.read_ipc(self.folder / f"{digest}.arrow")
            return CocoHead(files, entry["cats"], entry["source"], int(entry["found"]), list(entry["bad"]))
        except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError):
            return None

    def save(self, path: Path, data: bytes, head: CocoHead) -> None:
        """Keep ``head`` as the head of ``path`` (whose content is ``data``)."""
        with contextlib.suppress(OSError, pl.exceptions.PolarsError):
            st = path.stat()
            if st.st_size != len(data):
                return
            digest = hashlib.sha256(data).hexdigest()
            self.folder.mkdir(parents=True, exist_ok=True)
            entry = {
                "version": _HEAD_VERSION,
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "sha256": digest,
                "cats": head.cats,
                "source": head.source,
                "found": head.found,
                "bad": head.bad,
            }
            table = self.folder / f"{digest}.arrow"
            if not table.exists():
                tmp = table.with_name(f".{table.name}.{os.getpid()}.part")
                head.files.write_ipc(tmp)
                os.replace(tmp, table)
            target = self._entry(path)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
            tmp.write_text(_dumps(entry), encoding="utf-8")
            os.replace(tmp, target)


def _read_coco(path: Path, with_score: bool, images_path: Path | None, cache: HeadCache | None) -> ReadResult:
    label = display_path(path)
    data = _read_bytes(path)
    doc = _parse(path, data)
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
    head_path = images_path if images_path is not None else path
    head_label = display_path(head_path)
    head = cache.load(head_path) if cache is not None and images_path is not None else None
    if head is None:
        head_data = _read_bytes(images_path) if images_path is not None else data
        head = _head_of(_parse(images_path, head_data) if images_path is not None else doc, head_label)
        if cache is not None:
            cache.save(head_path, head_data, head)
    cat_name, names = _categories(head.cats, head_label)
    bad: list[tuple[str, int | None, str]] = [(head_label, None, m) for m in head.bad]
    boxes, bad_boxes, bad_files, ann_ids = _read_annotations(
        anns, ann_key, label, head.files, cat_name, with_score, bad
    )
    source_meta = _dumps({"coco": {"categories": head.cats, **head.source}})
    warnings = _repeated_ids(ann_ids, ann_key, label)
    return ReadResult(
        files=head.files.drop("key"),
        boxes=boxes,
        problems=problems_frame(bad),
        names=names,
        names_source=head_label,
        found=head.found,
        bad_boxes=bad_boxes,
        bad_box_files=bad_files,
        warnings=warnings,
        source_meta=source_meta,
    )


def _repeated_ids(id_texts: pl.Series, ann_key: str, label: str) -> list[str]:
    """A warning for annotation ids that repeat (``id_texts``: the JSON text of every entry's
    id, null where it has none): every such annotation is kept, and an export with the
    source's ids gives each repeat after the first a new id (ids must be unique)."""
    ids = id_texts.alias("id")
    frame = ids.to_frame().with_row_index("i").filter(pl.col("id").is_not_null())
    repeats = frame.filter(pl.col("id").is_duplicated())
    if not repeats.height:
        return []
    first = repeats.group_by("id", maintain_order=True).agg(pl.col("i").head(2)).row(0)
    n = repeats.height - repeats["id"].n_unique()
    return [
        f"{label}: {n} of the {ann_key} repeat{'s' if n == 1 else ''} an earlier one's id "
        f"(e.g. id {first[0]} at {ann_key}[{first[1][0]}] and [{first[1][1]}]); all are kept, "
        "and an export writes each repeat with a new id"
    ]


def _loc_and_extra(
    kept: list[dict[str, Any]],
    keep: np.ndarray,
    ann_key: str,
    xywh: np.ndarray,
    bb_int: np.ndarray | None,
    values: dict[str, list[Any]],
    ids: list[Any],
    id_text: pl.Series,
) -> pl.DataFrame:
    """``loc`` (``annotations[i] (id X)``) and ``extra`` (the box's JSON: ``coco_id``, and for
    labels ``iscrowd``, ``area``, ``coco_bbox``, ``coco_seg``; ``coco`` with every other key)
    of the annotations ``kept`` (their indices ``keep``; ``ids`` and ``id_text``: their ids
    and the ids' JSON texts; ``values``: their ``iscrowd``, ``area`` and ``segmentation``, none
    for results), column-wise."""
    with_score = not values
    id_repr = (
        id_text
        if set(map(type, ids)) <= {int, _Missing}
        else pl.Series([None if v is _MISS else repr(v) for v in ids], dtype=pl.String)
    )
    with_id = pl.concat_str([pl.lit(" (id "), pl.col("id_repr"), pl.lit(")")])  # null without an id
    loc = pl.concat_str([pl.lit(f"{ann_key}["), pl.col("ann_idx"), pl.lit("]"), with_id], ignore_nulls=True)
    core = _RESULT_CORE if with_score else _CORE
    rest_keys = [k for k in _keys_of(kept) if k not in core] if set().union(*kept) - set(core) else []
    rest = None
    if rest_keys:
        rest = _object_texts(kept, rest_keys)
    cols: dict[str, Any] = {
        "ann_idx": pl.Series(keep, dtype=pl.Int64),
        "id_text": id_text,
        "id_repr": id_repr,
    }
    fields = {"coco_id": "id_text"} if with_score else _LABEL_FIELDS
    if rest is not None:
        cols["rest"] = rest
        fields = {**fields, "coco": "rest"}
    if not with_score:
        for j in range(4):
            cols[f"b{j}"] = _number_text(xywh[keep, j], bb_int[keep, j] if bb_int is not None else None)
        cols["iscrowd"] = _json_texts(values["iscrowd"])
        cols["area"] = _json_texts(values["area"])
        cols["seg"] = _json_texts(values["segmentation"])
    frame = pl.DataFrame(cols)
    return frame.select(loc.alias("loc"), _extra_text(frame, fields).alias("extra"))


#: The keys of a label's extra and the columns that give their JSON text (``coco_bbox`` from b0..b3).
_LABEL_FIELDS = {
    "iscrowd": "iscrowd",
    "area": "area",
    "coco_id": "id_text",
    "coco_bbox": "",
    "coco_seg": "seg",
}


def _extra_text(frame: pl.DataFrame, fields: dict[str, str], head: str = "{", tail: str = "}") -> pl.Expr:
    """``{"key":text,…}`` of the ``fields`` (key → column of JSON texts, null where a row lacks
    the key) in that order, within ``head`` and ``tail``; null for a row with none of them."""

    def value(col: str) -> list[pl.Expr]:
        if col:
            return [pl.col(col)]
        return [
            pl.lit("["),
            *itertools.chain.from_iterable((pl.col(f"b{j}"), pl.lit(",]"[j == 3])) for j in range(4)),
        ]

    if not any(frame[c].has_nulls() for c in fields.values() if c):  # every key in every row: one pass
        seq: list[pl.Expr] = []
        for k, (key, col) in enumerate(fields.items()):
            seq += [pl.lit((head if k == 0 else ",") + _enc(key) + ":"), *value(col)]
        return pl.concat_str([*seq, pl.lit(tail)])
    parts = [pl.concat_str([pl.lit(_enc(key) + ":"), *value(col)]) for key, col in fields.items()]
    body = pl.concat_str(parts, separator=",", ignore_nulls=True)
    return pl.when(body != "").then(pl.concat_str([pl.lit(head), body, pl.lit(tail)]))


def _read_annotations(
    anns: list[Any],
    ann_key: str,
    label: str,
    files: pl.DataFrame,
    cat_name: dict[str, str],
    with_score: bool,
    bad: list[tuple[str, int | None, str]],
) -> tuple[pl.DataFrame, int, list[int], pl.Series]:
    """The annotations (or results) as box columns, checked column-wise; bad ones go to ``bad``.

    Also returns the file_idx of the images that had a bad annotation (of a known image),
    and the JSON text of every entry's id (null where it has none).
    """
    n = len(anns)
    if set(map(type, anns)) <= {dict}:
        rows, is_obj = anns, np.ones(n, bool)
    else:
        rows = [a if type(a) is dict else {} for a in anns]
        is_obj = np.fromiter((type(a) is dict for a in anns), bool, n)
    ids = _column(rows, "id", _MISS)
    id_texts = _json_texts(ids)
    bb_ok, xywh, bb_int = _bbox_columns(_column(rows, "bbox"))
    img_key, file_keys = _lookup_keys(_column(rows, "image_id"), files["key"])
    cat_key, cat_keys = _lookup_keys(_column(rows, "category_id"), pl.Series(list(cat_name), dtype=pl.String))
    scores = _column(rows, "score") if with_score else []
    frame = pl.DataFrame({"ann_idx": np.arange(n, dtype=np.int64), "ikey": img_key, "ckey": cat_key})
    frame = frame.join(
        files.select(file_keys.alias("ikey"), "file_idx").drop_nulls("ikey"),
        on="ikey",
        how="left",
        maintain_order="left",
    ).with_columns(
        pl.col("ckey")
        .replace_strict(_key_map(cat_keys, list(cat_name.values())), default=None, return_dtype=pl.String)
        .alias("name")
    )
    fi = frame["file_idx"].fill_null(-1).to_numpy()
    has_img = frame["file_idx"].is_not_null().to_numpy()
    has_cat = frame["name"].is_not_null().to_numpy()
    if with_score:
        if not set(map(type, scores)) <= {int, float}:
            scores = [v if type(v) in (int, float) else None for v in scores]
        score = pl.Series(scores, dtype=pl.Float64, strict=False)
        has_score = score.is_not_null().to_numpy()
    else:
        score = pl.Series([None] * n, dtype=pl.Float64)
        has_score = np.ones(n, bool)
    good = is_obj & bb_ok & has_img & has_cat & has_score
    bad_files = fi[~good & is_obj & has_img].astype(np.int64).tolist()
    for i in np.flatnonzero(~good).tolist():
        a = anns[i]
        where = f"{ann_key}[{i}]"
        if not is_obj[i]:
            bad.append((label, None, f"{where}: not an object"))
            continue
        if "id" in a:
            where += f" (id {a['id']!r})"
        if not bb_ok[i]:
            msg = f"bbox must be [x, y, width, height] numbers, got {json.dumps(a.get('bbox'))[:60]}"
        elif not has_img[i]:
            msg = f"image_id {a.get('image_id')!r} is not in images"
        elif not has_cat[i]:
            msg = f"category_id {a.get('category_id')!r} is not in categories"
        else:
            msg = "no numeric score"
        bad.append((label, None, f"{where}: {msg}"))
    keep = np.flatnonzero(good)
    idx = pl.Series(keep, dtype=pl.Int64)
    values = {} if with_score else {k: _column(rows, k, _MISS) for k in ("iscrowd", "area", "segmentation")}
    if len(keep) == n:  # the texts of the same values: what _json_texts gives depends on them all
        kept, kept_ids, kept_texts = rows, ids, id_texts
    else:
        picks = keep.tolist()
        kept = list(map(rows.__getitem__, picks))
        kept_ids = list(map(ids.__getitem__, picks))
        kept_texts = _json_texts(kept_ids)
        values = {k: list(map(v.__getitem__, picks)) for k, v in values.items()}
    meta_cols = _loc_and_extra(kept, keep, ann_key, xywh, bb_int, values, kept_ids, kept_texts)
    boxes = pl.DataFrame(
        {
            "file_idx": pl.Series(fi[keep], dtype=pl.Int64),
            "line": pl.repeat(None, len(keep), dtype=pl.Int64, eager=True),
            "loc": meta_cols["loc"],
            "ann_idx": idx,
            "name": frame["name"].gather(idx),
            "x": xywh[keep, 0],
            "y": xywh[keep, 1],
            "bw": xywh[keep, 2],
            "bh": xywh[keep, 3],
            "score": score.gather(idx),
            "extra": meta_cols["extra"],
        }
    )
    if not with_score:
        boxes = boxes.drop("score").with_columns(
            _numbers(values["area"], pl.Float64).alias("coco_area"),
            _numbers(values["iscrowd"], pl.Int64).alias("coco_iscrowd"),
        )
    return boxes, int(n - len(keep)), bad_files, id_texts


def _numbers(values: list[Any], dtype: type[pl.Float64] | type[pl.Int64]) -> pl.Series:
    """The values that are JSON numbers (integers only, for ``Int64``) as a column: null for
    any other value, a number out of the type's range or one not finite."""
    kinds = (int, float) if dtype == pl.Float64 else (int,)
    if set(map(type, values)) <= set(kinds):
        picked = values
    else:
        picked = [v if type(v) in kinds else None for v in values]
    try:
        col = pl.Series(picked, dtype=dtype, strict=False)
    except (OverflowError, TypeError, ValueError, pl.exceptions.PolarsError):
        lo, hi = (-(2**1023), 2**1023) if dtype == pl.Float64 else (-(2**63), 2**63 - 1)
        inside = [v if v is None or type(v) is float or lo <= v <= hi else None for v in picked]
        col = pl.Series(inside, dtype=dtype, strict=False)
    if dtype == pl.Float64:
        col = col.to_frame("v").select(pl.when(pl.col("v").is_finite()).then(pl.col("v"))).to_series()
    return col


# -- writing ----------------------------------------------------------------------------------------
def categories(names: Sequence[str]) -> list[dict[str, Any]]:
    """COCO categories for the workspace class map: id = class id + 1."""
    return [{"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(names)]


def source_categories(
    names: Sequence[str], source: Sequence[Any] | None, used: Sequence[int] = ()
) -> tuple[list[dict[str, Any]], list[str]]:
    """The categories to write and the category id (JSON text) of every workspace class.

    Without ``source``: :func:`categories` (id = class id + 1) for every class. With the
    categories of the imported file (``source``, as written): those entries as written,
    and their ids for the classes of the same names; a class the file lacks gets
    largest integer id + class id + 1 (so a set and a run from the same file agree) and,
    when it is in ``used``, an entry after the file's.
    """
    if not source:
        return categories(names), [str(i + 1) for i in range(len(names))]
    entries = [dict(c) for c in source if isinstance(c, dict)]
    by_name = {str(c.get("name", "")).strip(): c.get("id") for c in entries}
    top = max((v for v in by_name.values() if type(v) is int), default=0)
    ids: list[str] = []
    for i, n in enumerate(names):
        cid = by_name.get(n)
        if _id(cid) is None:
            cid = top + i + 1
            if i in used:
                entries.append({"id": cid, "name": n, "supercategory": ""})
        ids.append(_dumps(cid))
    return entries, ids


def _num_text(e: pl.Expr) -> pl.Expr:
    return e.round(6).cast(pl.String)


def _coord_text(value: pl.Expr, exact: pl.Expr | None = None) -> pl.Expr:
    """A coordinate as short as it stays exact: rounded to 6 decimals when that gives back
    ``exact`` (default: the value itself; for a width, the right edge ``x1 + w``), else
    every digit."""
    short = value.round(6)
    same = (short == value) if exact is None else exact
    return pl.when(same).then(short.cast(pl.String)).otherwise(value.cast(pl.String))


def annotation_texts(
    boxes: pl.DataFrame,
    *,
    with_score: bool = False,
    source_ids: bool = False,
    category_ids: Sequence[str] | None = None,
) -> pl.Series:
    """The JSON text of every box as a COCO annotation (or, ``with_score``, a result).

    ``boxes``: image_id_json (the image id as JSON text), class_id, x1, y1, x2, y2
    [, score], extra. ``category_ids``: the category id (JSON text) of each class id
    (default: class id + 1). With ``source_ids`` an annotation keeps the id it was
    imported with (a result too, where it had one). Rows come out in the same order.

    A coordinate is written with 6 decimals when that is exact (``x + w`` gives back
    the stored right edge), else with every digit, so boxes read back unchanged.
    """
    x1, y1, x2, y2 = (pl.col(c) for c in ("x1", "y1", "x2", "y2"))
    extra = pl.col("extra")
    w6, h6 = (x2 - x1).round(6), (y2 - y1).round(6)
    fresh_bbox = pl.concat_str(
        [
            pl.lit("["),
            _coord_text(x1),
            pl.lit(","),
            _coord_text(y1),
            pl.lit(","),
            _coord_text(x2 - x1, x1 + w6 == x2),
            pl.lit(","),
            _coord_text(y2 - y1, y1 + h6 == y2),
            pl.lit("]"),
        ]
    )
    if category_ids is None:
        cat = (pl.col("class_id") + 1).cast(pl.String)
    else:
        cat = pl.col("class_id").replace_strict(
            dict(enumerate(category_ids)), default=None, return_dtype=pl.String
        )
    # every JSON field is extracted once, into a column, before the texts refer to it
    boxes = boxes.with_columns(extra.str.json_path_match("$.coco").alias("_rest"))
    rest = pl.col("_rest")
    rest_inner = (
        pl.when(rest.is_not_null() & (rest != "{}"))
        .then(pl.lit(",") + rest.str.strip_prefix("{").str.strip_suffix("}"))
        .otherwise(pl.lit(""))
    )
    if with_score:
        boxes = boxes.with_columns(
            (extra.str.json_path_match("$.coco_id") if source_ids else pl.lit(None, pl.String)).alias("_rid")
        )
        rid = pl.col("_rid")
        text = pl.concat_str(
            [
                pl.when(rid.is_not_null()).then(pl.lit('{"id":') + rid + pl.lit(",")).otherwise(pl.lit("{")),
                pl.lit('"image_id":'),
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
    boxes = boxes.with_columns(
        extra.str.json_path_match("$.coco_bbox").alias("_stored"),
        extra.str.json_path_match("$.area").alias("_area"),
        extra.str.json_path_match("$.coco_seg").alias("_seg"),
        extra.str.json_path_match("$.iscrowd").fill_null("0").alias("_iscrowd"),
    ).with_columns(pl.col("_stored").str.json_decode(pl.List(pl.Float64)).alias("_sb"))
    stored, sb = pl.col("_stored"), pl.col("_sb")
    boxes = boxes.with_columns(
        (
            stored.is_not_null()
            & (sb.list.len() == 4)
            & (sb.list.get(0, null_on_oob=True) == x1)
            & (sb.list.get(1, null_on_oob=True) == y1)
            & ((sb.list.get(0, null_on_oob=True) + sb.list.get(2, null_on_oob=True)) == x2)
            & ((sb.list.get(1, null_on_oob=True) + sb.list.get(3, null_on_oob=True)) == y2)
        )
        .fill_null(False)
        .alias("_same")
    )
    same, area, seg, iscrowd = pl.col("_same"), pl.col("_area"), pl.col("_seg"), pl.col("_iscrowd")
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
            pl.lit(',"segmentation":'),
            pl.when(same & seg.is_not_null()).then(seg).otherwise(pl.lit("[]")),
            rest_inner,
            pl.lit("}"),
        ]
    )
    if source_ids:
        boxes = boxes.with_columns(
            extra.str.json_path_match("$.coco_id").cast(pl.Int64, strict=False).alias("_sid")
        )
    return _with_ann_ids(boxes, source_ids).select(text.alias("text")).to_series()


def _with_ann_ids(frame: pl.DataFrame, source_ids: bool) -> pl.DataFrame:
    """``frame`` with ``ann_id``: 1..N, or with ``source_ids`` the imported id (``_sid``) where
    it is unique, fresh ids above the largest for the others."""
    if not source_ids:
        return frame.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("ann_id"))
    sid = pl.col("_sid")
    frame = frame.with_columns(
        pl.when(sid.is_duplicated() & ~sid.is_first_distinct()).then(None).otherwise(sid).alias("_sid")
    )
    fresh = sid.max().fill_null(0) + sid.is_null().cast(pl.Int64).cum_sum()
    return frame.with_columns(pl.when(sid.is_null()).then(fresh).otherwise(sid).alias("ann_id"))


def image_entries(images: pl.DataFrame, *, source_ids: bool = False) -> tuple[list[str], list[str]]:
    """The JSON text of every image entry and of its id, in ``images`` order.

    ``images``: item_id, width, height, meta, file_name (the name to write when the meta
    has none). With ``source_ids`` an image keeps the id of the file it was imported from;
    one without gets its item id, above the largest integer id when some images have
    one (so a set and a run from the same file agree). Otherwise the id is the item id.
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
                parsed = _loads(meta)
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
        for k in pending:
            entries[k]["id"] = top + items[k]
    texts = _dumps_many(entries)
    ids = [str(e["id"]) if type(e["id"]) is int else _dumps(e["id"]) for e in entries]
    return texts, ids


def instances_bytes(
    image_texts: Sequence[str],
    ann_texts: Sequence[str],
    names: Sequence[str],
    *,
    cat_entries: Sequence[dict[str, Any]] | None = None,
    head: dict[str, Any] | None = None,
) -> bytes:
    """A COCO instances document from pre-encoded image and annotation entries.

    ``cat_entries``: the categories to write (default: :func:`categories` of ``names``);
    ``head``: top-level keys written first (``info``, ``licenses`` of the imported file).
    """
    cats = _dumps(list(cat_entries) if cat_entries is not None else categories(names))
    first = "".join(f"{_enc(k)}:{_dumps(v)}," for k, v in (head or {}).items())
    parts = [
        "{" + first + '"images":[',
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
