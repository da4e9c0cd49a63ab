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

A JSON-lines file is read in runs of lines: a run whose every line is a plain post (the
fields above as JSON text and integers, ratings as spelt above) is parsed whole by polars
into columns (:class:`PostRows`); any other run is read one line at a time, as :func:`post_from`
reads a record, so that each line that is not a post is reported with its number. Both
give the same posts.

Each may be gzipped (``.gz``). A file that cannot be read to its end (a truncated ``.gz``) is
refused with the line where it stops, and nothing of it is stored.

A line that cannot be read is a :class:`BadLine` with its 1-based line number (a
``json`` entry: its 1-based position in the array).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import polars as pl

from tuiops.errors import InputError
from tuiops.ops.meta.syntax import CATEGORIES, RATINGS

FORMATS = ("danbooru-jsonl", "csv", "json")

#: Danbooru's tag category numbers.
CATEGORY_CODES = {"0": "general", "1": "artist", "3": "copyright", "4": "character", "5": "meta"}


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
    #: The decoded record, read again for the tags' categories when a tag is new.
    rec: dict[str, Any]

    def categories(self, names: set[str] | None = None) -> dict[str, str]:
        """Tag → category, as the record gives them (older dumps' tag objects, tag_string_*)."""
        return categories_of(self.rec, names)


@dataclass(slots=True)
class PostRows:
    """The posts of a run of JSON lines, all of them posts, as columns (row ``i`` is line
    ``lines[i]``); ``frame`` holds their ``tag_string`` and ``tag_string_<category>`` fields,
    tags separated by spaces only."""

    booru: str
    lines: list[int]
    fids: list[int]
    #: rating, score, fav_count, width, height, md5, file_ext, file_size, created_at per post
    base: list[tuple[Any, ...]]
    frame: pl.DataFrame


@dataclass(frozen=True, slots=True)
class RunEnd:
    """The end of a run of lines given one at a time."""


RUN_END = RunEnd()


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


def _tags(rec: dict[str, Any]) -> list[str]:
    raw = rec.get("tag_string")
    if raw is None:
        raw = rec.get("tags")
    if type(raw) is str:
        return raw.split()
    if isinstance(raw, list):
        tags = []
        for t in raw:
            if isinstance(t, dict) and isinstance(t.get("name"), str):
                tags.append(t["name"])
            elif isinstance(t, str):
                tags.append(t)
            else:
                raise _Bad(f"tag {t!r} is neither text nor a {{name, category}} object")
        return tags
    if raw is None:
        raise _Bad("no tag_string or tags")
    raise _Bad(f"tags {raw!r} are not text")


_CATEGORY_FIELDS = tuple((f"tag_string_{cat}", cat) for cat in CATEGORIES)


def categories_of(rec: dict[str, Any], names: set[str] | None = None) -> dict[str, str]:
    """Tag → category from a record: tag objects' ``category`` codes, then ``tag_string_*``;
    only for ``names`` when given."""
    cats: dict[str, str] = {}
    raw = rec.get("tags")
    if isinstance(raw, list) and "tag_string" not in rec:
        for t in raw:
            if isinstance(t, dict) and isinstance(t.get("name"), str):
                code = CATEGORY_CODES.get(str(t.get("category")))
                if code and (names is None or t["name"] in names):
                    cats.setdefault(t["name"], code)
    for key, cat in _CATEGORY_FIELDS:
        part = rec.get(key)
        if part and type(part) is str:
            for t in part.split() if names is None else names.intersection(part.split()):
                if t not in cats:
                    cats[t] = cat
    return cats


def _int_field(rec: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for k in keys:
        if k in rec:
            v = rec[k]
            return v if type(v) is int else _int(v, keys[0])
    return None


def post_from(
    rec: Any, line: int, booru: str, key: Callable[[dict[str, Any]], tuple[str, int]] | None
) -> Post:
    """A :class:`Post` from one decoded record; raises ``ValueError`` with the reason."""
    if not isinstance(rec, dict):
        raise _Bad(f"not an object but {type(rec).__name__}")
    if key is not None:
        booru, fid = key(rec)
    else:
        fid_v = rec.get("id")
        fid_i = fid_v if type(fid_v) is int else _int(fid_v, "id")
        if fid_i is None:
            raise _Bad("no id")
        fid = fid_i
    if fid < 0:
        raise _Bad(f"id {fid} is negative")
    tags = _tags(rec)
    rating_raw = rec.get("rating")
    rating = None
    if rating_raw is not None and rating_raw != "":
        rating = RATINGS.get(rating_raw) if type(rating_raw) is str else None
        if rating is None:
            text = _text(rating_raw, "rating") or ""
            rating = RATINGS.get(text.strip().lower())
            if rating is None:
                raise _Bad(f"rating {rating_raw!r} is not one of g, s, q, e")
    return Post(
        line,
        booru,
        fid,
        rating,
        _int_field(rec, ("score",)),
        _int_field(rec, ("fav_count", "favcount", "fav_num")),
        _int_field(rec, ("image_width", "width")),
        _int_field(rec, ("image_height", "height")),
        _text(rec.get("md5"), "md5"),
        _text(rec.get("file_ext"), "file_ext"),
        _int_field(rec, ("file_size", "filesize")),
        _text(rec.get("created_at"), "created_at"),
        tags,
        rec,
    )


@contextlib.contextmanager
def open_source(path: Path) -> Iterator[tuple[BinaryIO, Callable[[], int | None]]]:
    """The file's bytes (a ``.gz`` file decompressed as it is read) and how far into the
    file on disk reading has come (None where that cannot be told, as for a pipe)."""
    with path.open("rb") as raw:

        def where() -> int | None:
            try:
                return raw.tell()
            except OSError:
                return None

        if path.name.lower().endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield io.BufferedReader(gz), where
        else:
            yield raw, where


#: Lines read together as one run of a JSON-lines file.
RUN = 20_000

_INT = pl.Int64
_STR = pl.String
#: The top-level fields a run is parsed for (others are skipped).
_RUN_SCHEMA: dict[str, Any] = {
    "id": _INT,
    "tag_string": _STR,
    "rating": _STR,
    "score": _INT,
    "fav_count": _INT,
    "favcount": _INT,
    "fav_num": _INT,
    "image_width": _INT,
    "width": _INT,
    "image_height": _INT,
    "height": _INT,
    "md5": _STR,
    "file_ext": _STR,
    "file_size": _INT,
    "filesize": _INT,
    "created_at": _STR,
    **{key: _STR for key, _ in _CATEGORY_FIELDS},
}
#: Fields read under another name where the first is missing (as :func:`_int_field` does).
_ALIASES = (
    ("fav_count", "favcount", "fav_num"),
    ("image_width", "width"),
    ("image_height", "height"),
    ("file_size", "filesize"),
)
#: Text as polars makes it of a JSON number, true, false, a list or an object (a JSON string
#: that reads so is read a line at a time too, to the same post).
_NOT_TEXT = r"^(?:-?[0-9][0-9.eE+-]*|true|false|\[.*|\{.*)$"
#: White space other than a plain space (Python's ``str.split`` splits on it too).
_OTHER_SPACE = r"[^\S ]|[\x1c-\x1f]"
#: A surrogate escape, which orjson refuses alone and polars does not.
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _irregular(df: pl.DataFrame, plain: bool) -> bool:
    """Whether any post of a parsed run needs reading a line at a time to be read as that
    reads it (see :func:`rows_from`); ``plain``: the run's bytes are ASCII without escapes,
    so no white space but spaces can be in its text."""
    ids, rating = pl.col("id"), pl.col("rating")
    tag_fields = ["tag_string", *(key for key, _ in _CATEGORY_FIELDS)]
    text_fields = [*tag_fields, "rating", "md5", "file_ext", "created_at"]
    tag_string = pl.col("tag_string")
    letters = rating.replace_strict(RATINGS, default=None, return_dtype=pl.String)
    checks = [
        ids.is_null().any() | (ids < 0).any() | tag_string.is_null().any(),
        # a number, true or false, a list or an object where text belongs: polars gives text
        pl.any_horizontal(pl.col(text_fields).str.contains(_NOT_TEXT).any()),
        # white space other than single spaces between tags (a line at a time splits on any)
        pl.lit(False) if plain else pl.any_horizontal(pl.col(tag_fields).str.contains(_OTHER_SPACE).any()),
        (tag_string.str.contains("  ", literal=True) | tag_string.str.starts_with(" ")).any(),
        tag_string.str.ends_with(" ").any(),
        # a rating spelt otherwise than RATINGS has it (trimmed or cased) is read a line at a time
        (rating.is_not_null() & (rating != "") & letters.is_null()).any(),
        *(
            # the first name absent or null and another given: a line at a time tells which
            (pl.col(first).is_null() & pl.any_horizontal([pl.col(o).is_not_null() for o in others])).any()
            for first, *others in _ALIASES
        ),
    ]
    return any(df.select(c.alias(f"c{k}") for k, c in enumerate(checks)).row(0))


def rows_from(lines: list[bytes], numbers: list[int], booru: str) -> PostRows | None:
    """The posts of a run of non-blank JSON lines as columns, or None where any line is not
    a plain post (then the run is read a line at a time, which tells each line's fault)."""
    data = b"".join(lines)
    if b"\\u" in data and _SURROGATE.search(data):
        return None
    try:
        df = pl.read_ndjson(io.BytesIO(data), schema=_RUN_SCHEMA)
    except pl.exceptions.PolarsError:
        return None
    if df.height != len(lines) or _irregular(df, b"\\" not in data and data.isascii()):
        return None
    cols = [
        pl.col("rating").replace_strict(RATINGS, default=None, return_dtype=pl.String),
        *(pl.col(c) for c in ("score", "fav_count", "image_width", "image_height", "md5", "file_ext")),
        *(pl.col(c) for c in ("file_size", "created_at")),
    ]
    base = df.select(cols)
    return PostRows(
        booru,
        numbers,
        df.get_column("id").to_list(),
        list(zip(*(c.to_list() for c in base.iter_columns()), strict=True)),
        df.select("tag_string", *(key for key, _ in _CATEGORY_FIELDS)),
    )


def _post_of_line(raw: bytes, n: int, booru: str) -> Post | BadLine:
    try:
        return post_from(orjson.loads(raw), n, booru, None)
    except orjson.JSONDecodeError as exc:
        return BadLine(n, f"not JSON: {exc}")
    except ValueError as exc:
        return BadLine(n, str(exc))


def read_jsonl(
    path: Path, booru: str, on_bytes: Callable[[int], None], *, columnar: bool = True
) -> Iterator[PostRows | Post | BadLine | RunEnd]:
    """Posts of a JSON-lines file (or ``.gz``); blank lines are skipped, ``on_bytes`` hears how
    far it read. The file is read in runs of :data:`RUN` non-blank lines: a run that is all
    posts comes as :class:`PostRows` (with ``columnar``), any other as its lines one at a
    time followed by :data:`RUN_END` (so that an import writes the same batches either way). A file that cannot be read to its end
    (a truncated ``.gz``) raises :class:`~tuiops.errors.InputError` naming where, so that its
    import stores nothing."""
    done = 0
    n = 0
    with open_source(path) as (fh, where):
        lines = iter(fh)
        run: list[bytes] = []
        numbers: list[int] = []
        ended = False
        while not ended:
            try:
                raw = next(lines)
            except StopIteration:
                ended = True
            except (OSError, EOFError) as exc:
                raise InputError(
                    f"{path}:{n + 1}: the file cannot be read to its end ({exc}); nothing was imported",
                    hint="fetch or unpack the file again",
                ) from exc
            else:
                n += 1
                done += len(raw)
                if n % 4096 == 0:
                    on_bytes(where() or done)
                if raw.strip():
                    run.append(raw if raw.endswith(b"\n") else raw + b"\n")
                    numbers.append(n)
            if run and (ended or len(run) >= RUN):
                rows = rows_from(run, numbers, booru) if columnar else None
                if rows is not None:
                    yield rows
                else:
                    for raw_line, k in zip(run, numbers, strict=True):
                        yield _post_of_line(raw_line, k, booru)
                    yield RUN_END
                run, numbers = [], []
        on_bytes(where() or done)


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
    with open_source(path) as (raw, where):
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
            except (OSError, EOFError) as exc:
                raise InputError(
                    f"{path}:{n + 1}: the file cannot be read to its end ({exc}); nothing was imported",
                    hint="fetch or unpack the file again",
                ) from exc
            except (csv.Error, UnicodeDecodeError) as exc:
                yield BadLine(reader.line_num or n + 1, f"not CSV: {exc}")
                break
            n = reader.line_num
            if n % 4096 == 0:
                on_bytes(where() or 0)
            if _EXTRA in rec:
                yield BadLine(
                    n, f"{len(header) + len(rec[_EXTRA])} fields where the header has {len(header)}"
                )
                continue
            try:
                yield post_from(rec, n, booru, key)
            except ValueError as exc:
                yield BadLine(n, str(exc))
        on_bytes(where() or 0)


def read_json(
    path: Path,
    booru: str,
    parse_key: Callable[[str], tuple[str | None, int | None]],
    on_bytes: Callable[[int], None],
) -> Iterator[Post | BadLine]:
    """Posts of a JSON array (or ``{"post": [...]}``), read whole."""
    try:
        with open_source(path) as (fh, _):
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise InputError(
            f"{path}: the file cannot be read to its end ({exc}); nothing was imported",
            hint="fetch or unpack the file again",
        ) from exc
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
    on_bytes(path.stat().st_size)


__all__ = [
    "CATEGORY_CODES",
    "FORMATS",
    "RUN",
    "RUN_END",
    "BadLine",
    "Post",
    "PostRows",
    "RunEnd",
    "categories_of",
    "post_from",
    "read_csv",
    "read_json",
    "read_jsonl",
    "rows_from",
]
