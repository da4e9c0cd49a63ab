"""YOLO txt: one file per image, one box per line ``class cx cy w h`` (normalised 0..1).

Detections add a sixth column, the confidence (``class cx cy w h conf``, as
ultralytics' ``save_conf`` writes it). Every file's text is read in Python; all lines
of all files are then split, parsed and checked at once in polars.

Round trips are byte-identical for files whose numbers have a fixed precision
(labelImg's ``%.6f``) or are written without trailing zeros (``%g``): the reader records
each file's style in its meta (see :mod:`tuiops.formats`), and a line the writer would
not reproduce (``.5``, ``5e-1``, tabs, extra spaces) keeps its text in the box's extra.
Blank lines are dropped. An empty file is an image with no boxes (a negative) and is
written back as an empty file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from tuiops.formats import (
    ReadResult,
    decimals_of,
    decode_utf8,
    find_label_files,
    format_decimal,
    problems_frame,
    read_all,
)
from tuiops.formats.classes import CLASSES_TXT

if TYPE_CHECKING:
    from polars.expr.whenthen import ChainedThen, Then

DEFAULT_DECIMALS = 6
LABEL_FIELDS = 5
DET_FIELDS = 6


def read_yolo(
    src: Path, *, with_score: bool = False, on_file: Callable[[int, int], None] | None = None
) -> ReadResult:
    """Read every ``*.txt`` under ``src`` (except ``classes.txt``) as YOLO boxes.

    ``boxes``: file_idx, line, loc, cls (Int64, the file's class id), cx, cy, w, h
    [, score], extra. ``files``: file_idx, path, meta.
    """
    found = find_label_files(src, ".txt", exclude=[CLASSES_TXT])
    paths = [p for p, _ in found]
    rels = [r for _, r in found]
    datas, errors = read_all(paths, on_file)
    bad: list[tuple[str, int | None, str]] = []
    idx: list[int] = []
    texts: list[str] = []
    for i, (data, err) in enumerate(zip(datas, errors, strict=True)):
        if data is None:
            bad.append((rels[i], None, err or "cannot read the file"))
            continue
        text, derr = decode_utf8(data)
        if text is None:
            bad.append((rels[i], None, derr or "not UTF-8"))
            continue
        idx.append(i)
        texts.append(text)
    del datas
    files = pl.DataFrame(
        {"file_idx": idx, "path": [rels[i] for i in idx], "text": texts},
        schema={"file_idx": pl.Int64, "path": pl.String, "text": pl.String},
    )
    boxes, meta, problems = parse_yolo_texts(files, with_score=with_score)
    files = files.drop("text").join(meta, on="file_idx", how="left")
    return ReadResult(
        files=files,
        boxes=boxes,
        problems=pl.concat([problems_frame(bad), problems]),
        found=len(paths),
    )


def parse_yolo_texts(
    files: pl.DataFrame, *, with_score: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Parse the texts of many YOLO files at once.

    ``files`` has file_idx, path, text. Returns ``(boxes, meta, problems)``: the boxes of
    the lines that parse (file_idx, line, loc, cls, cx, cy, w, h [, score], extra); each
    file's meta JSON (file_idx, meta); and the problems of the lines that do not.
    """
    nf = DET_FIELDS if with_score else LABEL_FIELDS
    text = pl.col("text")
    base = files.select(
        "file_idx",
        text.str.starts_with("\ufeff").alias("bom"),
        text.str.ends_with("\n").alias("nl"),
        text.str.strip_prefix("\ufeff").str.split("\n").alias("body"),
    )
    lines = (
        base.select("file_idx", "body", pl.int_ranges(1, pl.col("body").list.len() + 1).alias("line"))
        .explode(["body", "line"])
        .with_columns(
            pl.col("body").str.ends_with("\r").alias("cr"),
            pl.col("body").str.strip_suffix("\r"),
            pl.col("line").cast(pl.Int64),
        )
    )
    per_file = base.select("file_idx", "bom", "nl").join(
        lines.group_by("file_idx").agg(pl.col("cr").any().alias("crlf")), on="file_idx", how="left"
    )
    tok = pl.col("tokens")
    parsed = (
        lines.lazy()
        .filter(pl.col("body").str.strip_chars() != "")
        .select("file_idx", "line", "body", pl.col("body").str.extract_all(r"\S+").alias("tokens"))
        .with_columns(
            tok.list.len().alias("nf"),
            *[tok.list.get(i, null_on_oob=True).alias(f"t{i}") for i in range(nf)],
        )
        .drop("tokens")
        .with_columns(pl.col(f"t{i}").cast(pl.Float64, strict=False).alias(f"v{i}") for i in range(nf))
    )
    v = [pl.col(f"v{i}") for i in range(nf)]
    finite = pl.all_horizontal([x.is_finite() for x in v])
    ok = (
        (pl.col("nf") == nf)
        & pl.all_horizontal([x.is_not_null() for x in v])
        & finite
        & (v[0] == v[0].floor())
        & (v[0] >= 0)
        & (v[3] > 0)
        & (v[4] > 0)
    )
    if with_score:
        ok = ok & (v[5] >= 0) & (v[5] <= 1)
    lines = parsed.with_columns(ok.fill_null(False).alias("ok")).collect()
    paths = files.select("file_idx", pl.col("path").alias("file"))
    problems = (
        lines.filter(~pl.col("ok"))
        .select("file_idx", "line", _line_message(nf, with_score).alias("message"))
        .join(paths, on="file_idx", how="left", maintain_order="left")
        .select("file", "line", "message")
    )
    nums = range(1, nf)
    good = lines.filter(pl.col("ok")).with_columns(
        *[decimals_of(pl.col(f"t{i}")).alias(f"d{i}") for i in nums],
        *[
            (pl.col(f"t{i}").str.ends_with("0") & pl.col(f"t{i}").str.contains(".", literal=True)).alias(
                f"z{i}"
            )
            for i in nums
        ],
        *[pl.col(f"t{i}").str.contains(_FIXED_RX).alias(f"s{i}") for i in nums],
    )
    style = _file_style(good, with_score)
    good = good.join(style, on="file_idx", how="left", maintain_order="left")
    canonical = _is_canonical(nf, with_score)
    good = good.with_columns(canonical.alias("canonical"))
    odd = good.filter(~pl.col("canonical"))
    if odd.height:
        canon = yolo_line(
            v[0],
            v[1],
            v[2],
            v[3],
            v[4],
            v[5] if with_score else None,
            pl.col("p"),
            pl.col("trim"),
            pl.col("sp"),
            pl.col("strim"),
        )
        odd = odd.select(
            "file_idx",
            "line",
            pl.struct(pl.struct(pl.col("body").alias("raw"), canon.alias("canon")).alias("yolo"))
            .struct.json_encode()
            .alias("extra"),
        )
        good = good.join(odd, on=["file_idx", "line"], how="left", maintain_order="left")
    else:
        good = good.with_columns(pl.lit(None, pl.String).alias("extra"))
    cols = [
        "file_idx",
        "line",
        pl.lit(None, pl.String).alias("loc"),
        v[0].cast(pl.Int64).alias("cls"),
        v[1].alias("cx"),
        v[2].alias("cy"),
        v[3].alias("w"),
        v[4].alias("h"),
    ]
    if with_score:
        cols.append(v[5].alias("score"))
    cols.append(pl.col("extra"))
    boxes = good.select(cols).sort(["file_idx", "line"], maintain_order=True)
    meta = per_file.join(style, on="file_idx", how="left").select(
        "file_idx", _meta_json(with_score).alias("meta")
    )
    return boxes, meta, problems


def _line_message(nf: int, with_score: bool) -> pl.Expr:
    """Why a line is not a box (the first reason that applies)."""
    v = [pl.col(f"v{i}") for i in range(nf)]
    t = [pl.col(f"t{i}") for i in range(nf)]
    n = pl.col("nf")
    fields = "class cx cy w h conf" if with_score else "class cx cy w h"
    head = f"expected {nf} fields ({fields}), found {{}}"
    msg: Then | ChainedThen = pl.when(n == (LABEL_FIELDS if with_score else DET_FIELDS)).then(
        pl.format(head + ": no confidence column (a label file?)", n)
        if with_score
        else pl.format(head + ": a detections file? import it with `tuiops dets import`", n)
    )
    msg = (
        msg.when((n > DET_FIELDS) & (n % 2 == 1))
        .then(pl.format(head + ": a segmentation polygon? only boxes are read", n))
        .when(n != nf)
        .then(pl.format(head, n))
    )
    for i in range(nf):
        msg = msg.when(v[i].is_null()).then(pl.format("field {} is not a number: '{}'", pl.lit(i + 1), t[i]))
    msg = (
        msg.when(~pl.all_horizontal([x.is_finite() for x in v]))
        .then(pl.lit("NaN or infinite number"))
        .when((v[0] != v[0].floor()) | (v[0] < 0))
        .then(pl.format("class id '{}' is not a whole number ≥ 0", t[0]))
        .when((v[3] <= 0) | (v[4] <= 0))
        .then(pl.format("width and height must be positive (w={}, h={})", t[3], t[4]))
    )
    if with_score:
        msg = msg.when((v[5] < 0) | (v[5] > 1)).then(pl.format("confidence {} is outside 0..1", t[5]))
    return msg.otherwise(pl.lit("not a box"))


def _file_style(good: pl.DataFrame, with_score: bool) -> pl.DataFrame:
    """Each file's number style: p decimals, trim (``%g``-like), and the same for the confidence.

    ``good`` has the decimals ``d1..`` and trailing-zero flags ``z1..`` of every number.
    """
    dec = [pl.col(f"d{i}") for i in range(1, 5)]
    aggs = [
        pl.max_horizontal(dec).max().alias("p"),
        pl.min_horizontal(dec).min().alias("pmin"),
        pl.any_horizontal([pl.col(f"z{i}") for i in range(1, 5)]).any().alias("tz"),
    ]
    if with_score:
        aggs += [
            pl.col("d5").max().alias("sp"),
            pl.col("d5").min().alias("spmin"),
            pl.col("z5").any().alias("stz"),
        ]
    else:
        aggs += [
            pl.lit(None, pl.Int64).alias("sp"),
            pl.lit(None, pl.Int64).alias("spmin"),
            pl.lit(False).alias("stz"),
        ]
    style = good.group_by("file_idx").agg(*aggs, pl.len().alias("boxes"))
    return style.with_columns(
        _is_trim("p", "pmin", "tz").alias("trim"), _is_trim("sp", "spmin", "stz").alias("strim")
    ).with_columns(
        pl.when(pl.col("trim"))
        .then(pl.max_horizontal("p", pl.lit(DEFAULT_DECIMALS)))
        .otherwise(pl.col("p"))
        .fill_null(DEFAULT_DECIMALS)
        .alias("p"),
        pl.when(pl.col("strim"))
        .then(pl.max_horizontal("sp", pl.lit(DEFAULT_DECIMALS)))
        .otherwise(pl.col("sp"))
        .fill_null(DEFAULT_DECIMALS)
        .alias("sp"),
    )


_FIXED_RX = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"


def _is_canonical(nf: int, with_score: bool) -> pl.Expr:
    """True where the writer reproduces the line's text exactly from its values.

    Checked on the text, not by formatting: single spaces, a plain class id, and every
    number in the file's style (plain digits: no exponent, ``+``, leading zeros, bare
    point or ``-0``; the file's decimals, or no trailing zero in a ``%g``-like file) with
    at most 15 significant digits.
    """

    def number_ok(i: int, p: pl.Expr, trim: pl.Expr) -> pl.Expr:
        t, v = pl.col(f"t{i}"), pl.col(f"v{i}")
        style = pl.when(trim).then(~pl.col(f"z{i}")).otherwise(pl.col(f"d{i}") == p)
        small = v.abs() * pl.lit(10.0).pow(p) < 1e15
        neg_zero = t.str.starts_with("-") & (v == 0)
        return pl.col(f"s{i}") & style & small & ~neg_zero

    p, trim = pl.col("p"), pl.col("trim")
    parts = [
        pl.col("body").str.contains(r"^\S+( \S+)*$"),
        pl.col("t0").str.contains(r"^(0|[1-9][0-9]*)$"),
        *[number_ok(i, p, trim) for i in range(1, 5)],
    ]
    if with_score:
        parts.append(number_ok(5, pl.col("sp"), pl.col("strim")))
    return pl.all_horizontal(parts).fill_null(False)


def _is_trim(p: str, pmin: str, tz: str) -> pl.Expr:
    """A file's numbers are ``%g``-like (trailing zeros dropped) unless they all have the same
    number of decimals and that number is 6 or more or some number ends in a zero."""
    fixed = (pl.col(p) == pl.col(pmin)) & ((pl.col(p) >= DEFAULT_DECIMALS) | pl.col(tz).fill_null(False))
    return (~fixed).fill_null(False)


def _meta_json(with_score: bool) -> pl.Expr:
    p, sp = pl.col("p"), pl.col("sp")
    parts = [
        pl.when(p.is_not_null() & (p != DEFAULT_DECIMALS)).then(pl.format('"p":{}', p)),
        pl.when(pl.col("trim").fill_null(False)).then(pl.lit('"trim":true')),
    ]
    if with_score:
        parts += [
            pl.when(sp.is_not_null() & (sp != DEFAULT_DECIMALS)).then(pl.format('"sp":{}', sp)),
            pl.when(pl.col("strim").fill_null(False)).then(pl.lit('"strim":true')),
        ]
    parts += [
        pl.when(pl.col("crlf").fill_null(False)).then(pl.lit('"crlf":true')),
        pl.when(~pl.col("nl") & (pl.col("boxes").fill_null(0) > 0)).then(pl.lit('"nl":false')),
        pl.when(pl.col("bom")).then(pl.lit('"bom":true')),
    ]
    inner = pl.concat_str(parts, separator=",", ignore_nulls=True)
    return pl.when(inner.fill_null("") != "").then(pl.lit('{"yolo":{') + inner + pl.lit("}}")).otherwise(None)


def yolo_line(
    cls: pl.Expr,
    cx: pl.Expr,
    cy: pl.Expr,
    w: pl.Expr,
    h: pl.Expr,
    score: pl.Expr | None,
    p: pl.Expr,
    trim: pl.Expr,
    sp: pl.Expr | None = None,
    strim: pl.Expr | None = None,
) -> pl.Expr:
    """The text of one YOLO line from normalised values, in a file's number style."""
    parts = [
        cls.cast(pl.Int64).cast(pl.String),
        format_decimal(cx, p, trim),
        format_decimal(cy, p, trim),
        format_decimal(w, p, trim),
        format_decimal(h, p, trim),
    ]
    if score is not None:
        parts.append(
            format_decimal(
                score,
                sp if sp is not None else pl.lit(DEFAULT_DECIMALS),
                strim if strim is not None else pl.lit(False),
            )
        )
    return pl.concat_str(parts, separator=" ")


def xyxy_line(width: pl.Expr, height: pl.Expr, decimals: int = 6) -> pl.Expr:
    """A YOLO line (``class cx cy w h``, normalised, fixed decimals) from the pixel box
    columns ``class_id, x1, y1, x2, y2`` and the image's ``width`` and ``height``."""
    w = width.cast(pl.Float64)
    h = height.cast(pl.Float64)
    return pl.concat_str(
        [
            pl.col("class_id").cast(pl.String),
            format_decimal((pl.col("x1") + pl.col("x2")) / 2.0 / w, decimals),
            format_decimal((pl.col("y1") + pl.col("y2")) / 2.0 / h, decimals),
            format_decimal((pl.col("x2") - pl.col("x1")) / w, decimals),
            format_decimal((pl.col("y2") - pl.col("y1")) / h, decimals),
        ],
        separator=" ",
    )


def meta_style(meta: pl.Expr) -> list[pl.Expr]:
    """Columns p, trim, sp, strim, crlf, nl, bom from a meta JSON column (defaults where absent)."""

    def flag(name: str, default: bool) -> pl.Expr:
        return (meta.str.json_path_match(f"$.yolo.{name}") == "true").fill_null(default).alias(name)

    return [
        meta.str.json_path_match("$.yolo.p")
        .cast(pl.Int64, strict=False)
        .fill_null(DEFAULT_DECIMALS)
        .alias("p"),
        flag("trim", False),
        meta.str.json_path_match("$.yolo.sp")
        .cast(pl.Int64, strict=False)
        .fill_null(DEFAULT_DECIMALS)
        .alias("sp"),
        flag("strim", False),
        flag("crlf", False),
        (meta.str.json_path_match("$.yolo.nl") != "false").fill_null(True).alias("nl"),
        flag("bom", False),
    ]


def yolo_texts(boxes: pl.DataFrame, images: pl.DataFrame, *, with_score: bool = False) -> pl.DataFrame:
    """The text of every image's YOLO file.

    ``boxes``: item_id, class_id, x1, y1, x2, y2 [, score], extra, in file order.
    ``images``: item_id, width, height, meta — every image, also those with no boxes.
    Returns item_id, text (an image without boxes gets an empty text).
    """
    styled = images.lazy().select("item_id", "width", "height", *meta_style(pl.col("meta")))
    b = boxes.lazy()
    if "extra" not in boxes.columns:
        b = b.with_columns(pl.lit(None, pl.String).alias("extra"))
    b = b.join(styled, on="item_id", how="inner", maintain_order="left")
    W = pl.col("width").cast(pl.Float64)
    H = pl.col("height").cast(pl.Float64)
    canon = yolo_line(
        pl.col("class_id"),
        (pl.col("x1") + pl.col("x2")) / 2.0 / W,
        (pl.col("y1") + pl.col("y2")) / 2.0 / H,
        (pl.col("x2") - pl.col("x1")) / W,
        (pl.col("y2") - pl.col("y1")) / H,
        pl.col("score") if with_score else None,
        pl.col("p"),
        pl.col("trim"),
        pl.col("sp"),
        pl.col("strim"),
    )
    extra = pl.col("extra")
    line = (
        pl.when(extra.str.json_path_match("$.yolo.canon") == canon)
        .then(extra.str.json_path_match("$.yolo.raw"))
        .otherwise(canon)
    )
    bodies = (
        b.with_columns(line.alias("line"))
        .group_by("item_id", maintain_order=True)
        .agg(pl.col("line").str.join("\n").alias("body"))
    )
    out = styled.join(bodies, on="item_id", how="left", maintain_order="left").select(
        "item_id",
        pl.when(pl.col("body").is_null())
        .then(pl.lit(""))
        .otherwise(
            pl.concat_str(
                [
                    pl.when(pl.col("bom")).then(pl.lit("\ufeff")).otherwise(pl.lit("")),
                    pl.when(pl.col("crlf"))
                    .then(pl.col("body").str.replace_all("\n", "\r\n", literal=True))
                    .otherwise(pl.col("body")),
                    pl.when(~pl.col("nl"))
                    .then(pl.lit(""))
                    .when(pl.col("crlf"))
                    .then(pl.lit("\r\n"))
                    .otherwise(pl.lit("\n")),
                ]
            )
        )
        .alias("text"),
    )
    return out.collect()
