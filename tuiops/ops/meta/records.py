"""Reading post metadata files into posts, one record at a time (bounded memory).

Formats:

- ``danbooru-jsonl``: one JSON object per line, as the public Danbooru metadata dumps and
  its API write them: ``id``, ``tag_string`` (or ``tags``: a string, or a list of
  ``{"name", "category"}`` objects as in the older dumps), ``tag_string_general``,
  ``…_artist``, ``…_copyright``, ``…_character``, ``…_meta`` (the tags' categories),
  ``rating``, ``score``, ``fav_count``, ``image_width``, ``image_height``, ``md5``,
  ``file_ext``, ``file_size``, ``created_at``. Numbers may be JSON numbers or digit strings.
- ``csv``: a header row, a key column (``id``: the booru's post id, or ``key``: an image
  key or file name, parsed with the workspace's key pattern) and a ``tags`` column of
  space-separated tags; the other columns above are read where present (``width`` and
  ``height`` also name the size).
- ``json``: a JSON array of such objects (or an object holding it under ``post`` or
  ``posts``, as Gelbooru's API answers), read whole.

A line that cannot be read is a :class:`BadLine` with its 1-based line number (a
``json`` entry: its 1-based position in the array).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tuiops.ops.meta.syntax import CATEGORIES, RATINGS

FORMATS = ("danbooru-jsonl", "csv", "json")

#: Danbooru's tag category numbers.
CATEGORY_CODES = {"0": "general", "1": "artist", "3": "copyright", "4": "character", "5": "meta"}

_INT_FIELDS = (
    ("score", ("score",)),
    ("fav_count", ("fav_count", "favcount", "fav_num")),
    ("width", ("image_width", "width")),
    ("height", ("image_height", "height")),
    ("file_size", ("file_size", "filesize")),
)


@dataclass(slots=True)
class Post:
    """One post as read: its key, fields and tags (with the categories the file gave)."""

    line: int
    booru: str
    fid: int
    rating: str | None
    score: int | None
    fav_count: int | None
    width: int | None
    height: int | None
    md5: str | None
    file_ext: str | None
    file_size: int | None
    created_at: str | None
    tags: list[str]
    categories: dict[str, str]


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line (or array entry) that is not a post, and why."""

    line: int
    message: str


_EXTRA = "\0extra"


class _Bad(ValueError):
    pass


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _Bad(f"{name} {value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _Bad(f"{name} {value!r} is not an integer")


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Bad(f"{name} {value!r} is not text")


def _tags(rec: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    cats: dict[str, str] = {}
    raw = rec.get("tag_string", rec.get("tags"))
    if isinstance(raw, list):
        tags = []
        for t in raw:
            if isinstance(t, dict) and isinstance(t.get("name"), str):
                tags.append(t["name"])
                code = CATEGORY_CODES.get(str(t.get("category")))
                if code:
                    cats[t["name"]] = code
            elif isinstance(t, str):
                tags.append(t)
            else:
                raise _Bad(f"tag {t!r} is neither text nor a {{name, category}} object")
    elif isinstance(raw, str):
        tags = raw.split()
    elif raw is None:
        raise _Bad("no tag_string or tags")
    else:
        raise _Bad(f"tags {raw!r} are not text")
    for cat in CATEGORIES:
        part = rec.get(f"tag_string_{cat}")
        if isinstance(part, str):
            for t in part.split():
                cats.setdefault(t, cat)
    return tags, cats


def post_from(
    rec: Any, line: int, booru: str, key: Callable[[dict[str, Any]], tuple[str, int]] | None
) -> Post:
    """A :class:`Post` from one decoded record; raises ``ValueError`` with the reason."""
    if not isinstance(rec, dict):
        raise _Bad(f"not an object but {type(rec).__name__}")
    if key is not None:
        booru, fid = key(rec)
    else:
        fid_v = _int(rec.get("id"), "id")
        if fid_v is None:
            raise _Bad("no id")
        fid = fid_v
    if fid < 0:
        raise _Bad(f"id {fid} is negative")
    tags, cats = _tags(rec)
    rating_raw = _text(rec.get("rating"), "rating")
    rating = None
    if rating_raw:
        rating = RATINGS.get(rating_raw.strip().lower())
        if rating is None:
            raise _Bad(f"rating {rating_raw!r} is not one of g, s, q, e")
    ints = {}
    for name, keys in _INT_FIELDS:
        value = next((rec[k] for k in keys if k in rec), None)
        ints[name] = _int(value, keys[0])
    ext = _text(rec.get("file_ext"), "file_ext")
    return Post(
        line,
        booru,
        fid,
        rating,
        ints["score"],
        ints["fav_count"],
        ints["width"],
        ints["height"],
        _text(rec.get("md5"), "md5"),
        ext,
        ints["file_size"],
        _text(rec.get("created_at"), "created_at"),
        tags,
        cats,
    )


def read_jsonl(path: Path, booru: str, on_bytes: Callable[[int], None]) -> Iterator[Post | BadLine]:
    """Posts of a JSON-lines file; blank lines are skipped, ``on_bytes`` hears how far it read."""
    done = 0
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            done += len(raw)
            if n % 4096 == 0:
                on_bytes(done)
            if not raw.strip():
                continue
            try:
                yield post_from(orjson.loads(raw), n, booru, None)
            except orjson.JSONDecodeError as exc:
                yield BadLine(n, f"not JSON: {exc}")
            except ValueError as exc:
                yield BadLine(n, str(exc))
    on_bytes(done)


def _csv_key(
    parse_key: Callable[[str], tuple[str | None, int | None]], booru: str
) -> Callable[[dict[str, Any]], tuple[str, int]]:
    def key(rec: dict[str, Any]) -> tuple[str, int]:
        if rec.get("key"):
            b, fid = parse_key(str(rec["key"]))
            if b is None or fid is None:
                raise _Bad(f"key {rec['key']!r} is not BOORU_FID")
            return b, fid
        fid_v = _int(rec.get("id"), "id")
        if fid_v is None:
            raise _Bad("no id or key")
        return booru, fid_v

    return key


def read_csv(
    path: Path,
    booru: str,
    parse_key: Callable[[str], tuple[str | None, int | None]],
    on_bytes: Callable[[int], None],
) -> Iterator[Post | BadLine]:
    """Posts of a CSV file with a header (``id`` or ``key``, ``tags``, other columns)."""
    key = _csv_key(parse_key, booru)
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="", errors="strict")
        reader = csv.DictReader(text, restkey=_EXTRA)
        header = reader.fieldnames or []
        if not ({"id", "key"} & set(header)) or not ({"tags", "tag_string"} & set(header)):
            yield BadLine(1, f"the header {header!r} needs an id or key column and a tags column")
            return
        n = 0
        while True:
            try:
                rec = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                yield BadLine(reader.line_num or n + 1, f"not CSV: {exc}")
                break
            n = reader.line_num
            if n % 4096 == 0:
                on_bytes(raw.tell())
            if _EXTRA in rec:
                yield BadLine(
                    n, f"{len(header) + len(rec[_EXTRA])} fields where the header has {len(header)}"
                )
                continue
            try:
                yield post_from(rec, n, booru, key)
            except ValueError as exc:
                yield BadLine(n, str(exc))
        on_bytes(raw.tell())


def read_json(
    path: Path,
    booru: str,
    parse_key: Callable[[str], tuple[str | None, int | None]],
    on_bytes: Callable[[int], None],
) -> Iterator[Post | BadLine]:
    """Posts of a JSON array (or ``{"post": [...]}``), read whole."""
    data = path.read_bytes()
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield BadLine(1, f"not JSON: {exc}")
        return
    if isinstance(doc, dict):
        doc = doc.get("post", doc.get("posts"))
    if not isinstance(doc, list):
        yield BadLine(1, "not a JSON array of posts (nor an object with post or posts)")
        return
    key = _csv_key(parse_key, booru)
    for n, rec in enumerate(doc, 1):
        try:
            yield post_from(rec, n, booru, key)
        except ValueError as exc:
            yield BadLine(n, str(exc))
    on_bytes(len(data))


__all__ = ["CATEGORY_CODES", "FORMATS", "BadLine", "Post", "post_from", "read_csv", "read_json", "read_jsonl"]
