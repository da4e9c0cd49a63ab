"""Selections (`tuiops.ops.select` and `tuiops select`): the view's columns, per-image
label/detection/match columns, key lists, saved selections and bad input."""

from __future__ import annotations

import json
import os

import polars as pl
import pytest
from click.testing import CliRunner

from tests.test_fileops_support import make_pool, scan_pool
from tuiops.cli import cli, run
from tuiops.errors import ConflictError, InputError, NotFoundError, UsageError
from tuiops.ops.select import (
    COLUMNS,
    MATCH_COLUMNS,
    RUN_COLUMNS,
    SET_COLUMNS,
    SelectionSpec,
    drop_selection,
    list_selections,
    save_selection,
    select_files,
    summarize,
)


@pytest.fixture
def pool(ws, tmp_path):
    root = make_pool(tmp_path / "pool", 6)
    scan_pool(ws, root)
    items = ws.store.read_items().rename({"id": "item_id"}).filter(pl.col("fid").is_not_null()).sort("fid")
    ids = items["item_id"].to_list()
    labels = pl.DataFrame(
        {
            "item_id": [ids[0], ids[0], ids[0], ids[1]],
            "class_id": [3, 0, 3, 1],
            "x1": [0.0, 1.0, 2.0, 3.0],
            "y1": [0.0, 1.0, 2.0, 3.0],
            "x2": [10.0, 11.0, 12.0, 13.0],
            "y2": [10.0, 11.0, 12.0, 13.0],
        }
    )
    ws.store.create_label_set("gt", labels, items.head(4).select("item_id"))
    dets = labels.head(2).with_columns(pl.Series("score", [0.9, 0.4]))
    dets = pl.concat(
        [
            dets,
            dets.head(1).with_columns(pl.lit(ids[2], pl.Int64).alias("item_id"), pl.lit(0.5).alias("score")),
        ]
    )
    ws.store.create_run("r1", dets.sort("item_id"), items.head(4).select("item_id"))
    return root


def test_view_columns_and_order(ws, pool):
    f = select_files(ws, SelectionSpec(where="1")).frame
    assert set(COLUMNS) <= set(f.columns)
    assert f["file_id"].is_sorted()
    row = f.filter(pl.col("relpath") == "sub/danbooru_1.jpg").row(0, named=True)
    assert (row["dir"], row["name"], row["ext"], row["key"], row["booru"], row["fid"]) == (
        "sub",
        "danbooru_1.jpg",
        ".jpg",
        "danbooru_1",
        "danbooru",
        1,
    )
    assert row["path"] == f"{pool}/sub/danbooru_1.jpg" and row["width"] == 32 and row["status"] == "ok"
    top = f.filter(pl.col("relpath") == "danbooru_0.jpg")["dir"][0]
    assert top == ""
    # label files and classes.txt are not indexed; other files than images are not_image,
    # left out unless asked
    (pool / "danbooru_0.bin").write_bytes(b"not an image")
    scan_pool(ws, pool)
    assert select_files(ws, SelectionSpec(where="1")).frame.height == 6
    everything = select_files(ws, SelectionSpec(where="1", all_statuses=True)).frame
    assert everything.height == 7 and set(everything["status"]) == {"ok", "not_image"}


def test_set_run_and_match_columns(ws, pool):
    from tuiops.ops.match import match

    spec = SelectionSpec(where="1", label_set="gt", run="r1")
    f = select_files(ws, spec).frame.sort("fid")
    assert set(SET_COLUMNS) | set(RUN_COLUMNS) <= set(f.columns)
    assert f["in_set"].to_list() == [1, 1, 1, 1, 0, 0]
    assert f["n_labels"].to_list() == [3, 1, 0, 0, 0, 0]
    assert f["label_classes"][0] == "head,hand"  # class-map order
    assert f["top_class"][0] == "hand"
    assert f["n_dets"].to_list() == [2, 0, 1, 0, 0, 0]
    assert f["max_score"][0] == pytest.approx(0.9) and f["max_score"][4] is None
    assert f["n_flagged"].null_count() == 6  # no quality flags computed yet
    n = select_files(ws, SelectionSpec(where="n_labels = 0 AND in_set = 1", label_set="gt")).count
    assert n == 2
    match(ws, "gt", "r1", name="m")
    m = select_files(ws, SelectionSpec(where="in_match = 1", match="m")).frame.sort("fid")
    assert set(MATCH_COLUMNS) <= set(m.columns)
    assert m["fn"].to_list()[:2] == [1, 1] and m["category"][0] == "fn"
    assert m["category"][2] == "fp"
    with pytest.raises(NotFoundError, match="no match named"):
        select_files(ws, SelectionSpec(where="1", match="nope"))
    with pytest.raises(NotFoundError, match="no label set"):
        select_files(ws, SelectionSpec(where="1", label_set="nope"))


def test_key_lists_and_unknown_keys(ws, pool, tmp_path):
    from tuiops.ops.select import read_keys

    keys_file = tmp_path / "keys.txt"
    keys_file.write_bytes(
        b"\xef\xbb\xbfdanbooru_1\r\n/some/where/danbooru_2.jpg\n# a comment\n\n  danbooru_3.png  \ndanbooru_77\n"
    )
    keys = read_keys(keys_file, ws)
    assert keys == ["danbooru_1", "danbooru_2", "danbooru_3", "danbooru_77"]
    sel = select_files(ws, SelectionSpec(keys=keys))
    assert sorted(sel.frame["key"].to_list()) == ["danbooru_1", "danbooru_2", "danbooru_3"]
    assert sel.unknown_keys == ["danbooru_77"]
    sel = select_files(ws, SelectionSpec(keys=keys, where="fid > 1"))
    assert sel.keys_without_files == ["danbooru_1"]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(InputError, match="names no image"):
        read_keys(empty, ws)
    with pytest.raises(InputError, match="cannot read"):
        read_keys(tmp_path / "missing.txt", ws)


def test_saved_selections(ws, pool):
    save_selection(ws, "small", SelectionSpec(where="fid < 4", label_set="gt"), note="first four")
    with pytest.raises(ConflictError, match="exists already"):
        save_selection(ws, "small", SelectionSpec(where="1"))
    assert select_files(ws, SelectionSpec(name="small")).count == 4
    both = select_files(ws, SelectionSpec(name="small", where="n_labels > 0"))
    assert both.count == 2  # conditions are ANDed; the saved context (--set) comes along
    save_selection(ws, "keys", SelectionSpec(keys=["danbooru_0", "danbooru_5"]))
    assert select_files(ws, SelectionSpec(name="keys", keys=["danbooru_5", "danbooru_4"])).count == 1
    names = [s["name"] for s in list_selections(ws)]
    assert names == ["keys", "small"]
    drop_selection(ws, "small")
    with pytest.raises(NotFoundError, match="no saved selection"):
        select_files(ws, SelectionSpec(name="small"))
    with pytest.raises(UsageError, match="nothing to save"):
        save_selection(ws, "x", SelectionSpec())


def test_bad_where_is_a_clear_error_and_never_writes(ws, pool):
    with pytest.raises(InputError, match="no such column: n_labels") as ei:
        select_files(ws, SelectionSpec(where="n_labels = 0"))
    assert "--set" in str(ei.value.hint)
    with pytest.raises(InputError, match="not valid"):
        select_files(ws, SelectionSpec(where="width <"))
    before = ws.store.one("SELECT count(*) FROM files")
    with pytest.raises(InputError):
        select_files(ws, SelectionSpec(where="1; DELETE FROM files"))
    with pytest.raises(InputError):
        select_files(ws, SelectionSpec(where="1) UNION SELECT * FROM (SELECT 1"))
    assert ws.store.one("SELECT count(*) FROM files") == before
    with pytest.raises(UsageError, match="no selection"):
        select_files(ws, SelectionSpec())


def test_non_utf8_names_are_selectable(ws, tmp_path):
    from tests.conftest import draw_image

    root = tmp_path / "pool"
    root.mkdir()
    draw_image(__import__("pathlib").Path(os.fsdecode(os.fsencode(root) + b"/danbooru_5_\xff.jpg")))
    scan_pool(ws, root)
    f = select_files(ws, SelectionSpec(where="key = 'danbooru_5'")).frame
    assert f["relpath"][0] == "danbooru_5_\\xff.jpg" and f["relpath_raw"][0] == b"danbooru_5_\xff.jpg"


def test_summary(ws, pool):
    s = summarize(ws, SelectionSpec(where="1", label_set="gt"), sample=3)
    assert s["files"] == 6 and s["images"] == 6 and s["by_pool"] == {"p": 6}
    assert len(s["sample"]) == 3 and "n_labels" in s["sample"][0]


def test_select_cli(ws, pool, tmp_path, capsys):
    w = ["-w", str(ws.root)]
    assert run([*w, "select", "--where", "fid >= 3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files"] == 3
    assert run([*w, "select", "--set", "gt", "--where", "n_labels > 0", "--save", "labelled"]) == 0
    text = capsys.readouterr().out
    assert "2 file(s)" in text and "saved as 'labelled'" in text
    assert run([*w, "select", "--list"]) == 0
    assert "labelled" in capsys.readouterr().out
    assert run([*w, "select", "--selection", "labelled", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 2
    assert run([*w, "select", "--drop", "labelled"]) == 0
    assert run([*w, "select", "--where", "nope = 1"]) == 4
    err = capsys.readouterr().err
    assert "no such column" in err and "Traceback" not in err
    res = CliRunner().invoke(cli, [*w, "select", "--keys", "-", "--json"], input="danbooru_2\ndanbooru_9\n")
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert got["files"] == 1 and got["unknown_keys"] == 1
    help_text = CliRunner().invoke(cli, ["select", "--help"]).output
    for col in [*COLUMNS, *SET_COLUMNS, *RUN_COLUMNS, *MATCH_COLUMNS]:
        assert col in help_text, f"`tuiops select --help` does not document {col}"
