"""YOLO txt reader and writer: vectorised parsing, number styles, byte-identical writing."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tuiops.formats import format_decimal
from tuiops.formats.yolo import parse_yolo_texts, read_yolo, yolo_texts

W, H = 640, 480


def _parse(texts: list[str], *, with_score: bool = False):
    files = pl.DataFrame(
        {
            "file_idx": list(range(len(texts))),
            "path": [f"f{i}.txt" for i in range(len(texts))],
            "text": texts,
        },
        schema={"file_idx": pl.Int64, "path": pl.String, "text": pl.String},
    )
    return parse_yolo_texts(files, with_score=with_score)


def _write_back(texts: list[str], *, with_score: bool = False) -> list[str]:
    """Parse, convert to pixels as the import does, and write again."""
    boxes, meta, problems = _parse(texts, with_score=with_score)
    assert problems.height == 0, problems
    px = boxes.with_columns(
        pl.col("file_idx").alias("item_id"),
        pl.col("cls").alias("class_id"),
        ((pl.col("cx") - pl.col("w") / 2) * W).alias("x1"),
        ((pl.col("cy") - pl.col("h") / 2) * H).alias("y1"),
        ((pl.col("cx") + pl.col("w") / 2) * W).alias("x2"),
        ((pl.col("cy") + pl.col("h") / 2) * H).alias("y2"),
    )
    images = meta.select(pl.col("file_idx").alias("item_id"), "meta").with_columns(
        pl.lit(W).alias("width"), pl.lit(H).alias("height")
    )
    out = yolo_texts(px, images, with_score=with_score).sort("item_id")
    return out["text"].to_list()


@pytest.mark.parametrize("decimals", [0, 1, 3, 6, 8])
def test_format_decimal_matches_printf(decimals):
    rng = np.random.default_rng(decimals)
    values = np.concatenate(
        [rng.random(2000), rng.random(200) * 5000, -rng.random(50), [0.0, 1.0, 0.5, 1e-9]]
    )
    got = pl.select(format_decimal(pl.lit(pl.Series(values)), decimals)).to_series().to_list()
    want = ["%.*f" % (decimals, v) for v in values]  # noqa: UP031 - printf is the reference
    want = [w[1:] if w.startswith("-") and float(w) == 0 else w for w in want]
    assert got == want


def test_format_decimal_trim_reproduces_g_style():
    values = [0.5, 1.0, 0.25, 0.123457, 0.0123457, 0.1]
    got = pl.select(format_decimal(pl.lit(pl.Series(values)), 7, True)).to_series().to_list()
    assert got == ["%g" % v for v in values]  # noqa: UP031 - printf is the reference


def test_parse_positions_and_negatives():
    boxes, meta, problems = _parse(
        ["0 0.500000 0.500000 0.100000 0.200000\n3 0.250000 0.750000 0.100000 0.100000\n", ""]
    )
    assert problems.height == 0
    assert boxes.select("file_idx", "line", "cls").rows() == [(0, 1, 0), (0, 2, 3)]
    assert boxes["cx"].to_list() == [0.5, 0.25]
    assert meta.sort("file_idx")["meta"].to_list() == [None, None]


BAD_LINES = [
    ("0 0.5 0.5 0.1", "expected 5 fields"),
    ("0 0.5 0.5 0.1 0.1 0.9", "a detections file?"),
    ("0 0.1 0.1 0.2 0.2 0.3 0.3", "segmentation polygon"),
    ("0 abc 0.5 0.1 0.1", "field 2 is not a number: 'abc'"),
    ("0 nan 0.5 0.1 0.1", "NaN or infinite"),
    ("0 0.5 inf 0.1 0.1", "NaN or infinite"),
    ("-1 0.5 0.5 0.1 0.1", "class id '-1'"),
    ("1.5 0.5 0.5 0.1 0.1", "class id '1.5'"),
    ("0 0.5 0.5 0 0.1", "width and height must be positive"),
    ("0 0.5 0.5 0.1 -0.2", "width and height must be positive"),
]


@pytest.mark.parametrize("line, message", BAD_LINES)
def test_bad_lines_are_problems_with_file_and_line(line, message):
    boxes, _meta, problems = _parse([f"0 0.5 0.5 0.1 0.1\n{line}\n1 0.5 0.5 0.2 0.2\n"])
    assert boxes["line"].to_list() == [1, 3]
    assert problems.rows() == [("f0.txt", 2, problems["message"][0])]
    assert message in problems["message"][0]


def test_detection_lines_need_the_confidence_column():
    boxes, _meta, problems = _parse(
        ["0 0.5 0.5 0.1 0.1 0.91\n0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.1 0.1 1.5\n"], with_score=True
    )
    assert boxes["score"].to_list() == [0.91]
    assert [m.split(":")[0] for m in problems["message"]] == [
        "expected 6 fields (class cx cy w h conf), found 5",
        "confidence 1.5 is outside 0..1",
    ]


def test_styles_recorded_only_when_not_default():
    texts = [
        "0 0.500000 0.500000 0.100000 0.200000\n",  # labelImg %.6f
        "0 0.5 0.5 1 1\n",  # %g
        "0 0.123 0.456 0.100 0.200\r\n1 0.500 0.500 0.100 0.100\r\n",  # 3 decimals, CRLF
        "\ufeff0 0.500000 0.500000 0.100000 0.200000",  # BOM, no final newline
    ]
    _b, meta, _p = _parse(texts)
    got = dict(meta.sort("file_idx").rows())
    assert got[0] is None
    assert got[1] == '{"yolo":{"trim":true}}'
    assert got[2] == '{"yolo":{"p":3,"crlf":true}}'
    assert got[3] == '{"yolo":{"nl":false,"bom":true}}'


def test_blank_lines_are_skipped():
    boxes, _meta, problems = _parse(["\n0 0.5 0.5 0.1 0.1\n   \n\n1 0.5 0.5 0.1 0.1\n"])
    assert problems.height == 0
    assert boxes["line"].to_list() == [2, 5]


ROUND_TRIP = [
    "0 0.500000 0.500000 0.100000 0.200000\n1 0.250000 0.250000 0.100000 0.100000\n",
    "",
    "0 0.5 0.5 1 1\n2 0.0123457 0.5 0.1 0.1\n",
    "0 0.123 0.456 0.100 0.200\r\n1 0.500 0.500 0.100 0.100\r\n",
    "\ufeff0 0.500000 0.500000 0.100000 0.200000",
    "0 .5 .5 .1 .1\n1  0.5\t0.5 0.1 0.1\n2 5e-1 0.5 0.1 0.1\n-0 0.5 0.5 0.1 0.1\n3.0 0.5 0.5 0.1 0.1\n",
    "0 0.49999999 0.50000001 0.10000000 0.20000000\n",
]


def test_write_reproduces_every_style_byte_for_byte():
    assert _write_back(ROUND_TRIP) == ROUND_TRIP


def test_detections_write_back_with_confidence():
    texts = [
        "0 0.5 0.5 0.1 0.1 0.912345\n3 0.25 0.75 0.2 0.2 0.5\n",
        "1 0.500000 0.500000 0.100000 0.100000 0.870000\n",
    ]
    assert _write_back(texts, with_score=True) == texts


def test_a_moved_box_is_written_in_the_file_style_not_as_raw():
    boxes, meta, _p = _parse(["0 .5 .5 .1 .1\n"])
    assert boxes["extra"][0] is not None
    moved = boxes.with_columns(
        pl.lit(0, pl.Int64).alias("item_id"),
        pl.col("cls").alias("class_id"),
        pl.lit(100.0).alias("x1"),
        pl.lit(100.0).alias("y1"),
        pl.lit(164.0).alias("x2"),
        pl.lit(148.0).alias("y2"),
    )
    images = pl.DataFrame({"item_id": [0], "meta": [meta["meta"][0]], "width": [W], "height": [H]})
    assert yolo_texts(moved, images)["text"].to_list() == ["0 0.20625 0.258333 0.1 0.1\n"]


def test_read_yolo_reports_unreadable_files(tmp_path):
    (tmp_path / "danbooru_1.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (tmp_path / "danbooru_2.txt").write_bytes(b"0 0.5 0.5 0.1 0.1\n\xff\xfe garbage\n")
    (tmp_path / "classes.txt").write_text("head\n")
    (tmp_path / ".hidden.txt").write_text("junk\n")
    sub = tmp_path / "val"
    sub.mkdir()
    (sub / "danbooru_3.txt").write_text("")
    rr = read_yolo(tmp_path)
    assert rr.found == 3
    assert rr.files["path"].to_list() == ["danbooru_1.txt", "val/danbooru_3.txt"]
    assert rr.problems["file"].to_list() == ["danbooru_2.txt"]
    assert "not UTF-8 text: byte 0xff" in rr.problems["message"][0]
