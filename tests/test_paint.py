"""Detections painter (`tuiops.ops.paint`, `tuiops paint`): label boxes solid, detection
boxes dashed with class and score, as a journaled, resumable, undoable job."""

from __future__ import annotations

import json

import polars as pl
import pytest
from PIL import Image

from tests.test_fileops_support import make_pool, scan_pool, tree
from tuiops.cli import run
from tuiops.errors import UsageError
from tuiops.imaging import PALETTE, render
from tuiops.ops import fileops as fo
from tuiops.ops.paint import drawings, paint
from tuiops.ops.select import SelectionSpec


@pytest.fixture
def painted_ws(ws, tmp_path):
    from PIL import ImageDraw

    root = make_pool(tmp_path / "pool", 3, size=(200, 160), labels=False, sub_every=0)
    for p in root.glob("*.jpg"):  # plain grey images, so drawn pixels are easy to find
        img = Image.new("RGB", (200, 160), (128, 128, 128))
        ImageDraw.Draw(img)
        img.save(p, quality=95)
    scan_pool(ws, root)
    items = ws.store.read_items().rename({"id": "item_id"}).filter(pl.col("fid").is_not_null()).sort("fid")
    ids = items["item_id"].to_list()
    labels = pl.DataFrame(
        {"item_id": [ids[0]], "class_id": [1], "x1": [20.0], "y1": [40.0], "x2": [120.0], "y2": [140.0]}
    )
    ws.store.create_label_set("gt", labels, items.select("item_id"))
    dets = pl.DataFrame(
        {
            "item_id": [ids[0], ids[1]],
            "class_id": [2, 0],
            "x1": [60.0, 10.0],
            "y1": [10.0, 10.0],
            "x2": [180.0, 50.0],
            "y2": [100.0, 50.0],
            "score": [0.87, 0.2],
        }
    )
    ws.store.create_run("r", dets, items.select("item_id"))
    return root


def near(px: tuple[int, int, int], color: tuple[int, int, int], tol: int = 60) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(px, color, strict=True))


def test_paint_draws_both_styles(ws, painted_ws, tmp_path):
    p, r = paint(ws, SelectionSpec(where="1"), tmp_path / "out", label_set="gt", run="r")
    assert r.status == "done" and p.by_action["paint"] == 3
    assert sorted(tree(tmp_path / "out")) == ["danbooru_0.jpg", "danbooru_1.jpg", "danbooru_2.jpg"]
    with Image.open(tmp_path / "out" / "danbooru_0.jpg") as im:
        img = im.convert("RGB")
    assert img.size == (200, 160)
    # the label's left edge is solid in its class colour all the way down
    solid = [near(img.getpixel((20, y)), PALETTE[1]) for y in range(60, 130)]
    assert all(solid)
    # the detection's right edge is dashed: some of it in its class colour, some of it not
    dashed = [near(img.getpixel((180, y)), PALETTE[2]) for y in range(20, 90)]
    assert 0.2 < sum(dashed) / len(dashed) < 0.8
    with Image.open(tmp_path / "out" / "danbooru_2.jpg") as im:  # nothing to draw: the image as it is
        assert near(im.convert("RGB").getpixel((100, 80)), (128, 128, 128), 4)
    fo.undo_job(ws, p.job_id)
    assert not (tmp_path / "out").exists()


def test_drawings_and_conf(ws, painted_ws):
    items = (
        ws.store.read_items()
        .filter(pl.col("fid").is_not_null())
        .sort("fid")
        .select(pl.col("id").alias("item_id"))
    )
    specs = [json.loads(b) for b in drawings(ws, items, label_set="gt", run="r", conf=0.5).to_list()]
    assert specs[0]["l"] == [[1, 20.0, 40.0, 120.0, 140.0]]
    assert specs[0]["d"] == [[2, 0.87, 60.0, 10.0, 180.0, 100.0]]
    assert specs[1]["d"] == []  # below --conf
    assert specs[0]["w"] == 200 and specs[0]["names"][1] == "upper_body"
    raw = (painted_ws / "danbooru_0.jpg").read_bytes()
    first = render(raw, json.dumps(specs[0]).encode())
    assert render(raw, json.dumps(specs[0]).encode()) == first  # deterministic: resume can verify it


def test_paint_resumes_after_a_kill_between_actions(ws, painted_ws, tmp_path):
    p, _ = paint(ws, SelectionSpec(where="1"), tmp_path / "out", label_set="gt", run="r", dry_run=True)
    ws.store.execute(
        "UPDATE job_actions SET state = 'started' WHERE job_id = ? AND action = 'paint'", (p.job_id,)
    )
    # a half-written temporary file and one finished picture the journal never heard of
    acts = ws.store.execute(
        "SELECT seq, src, dst, data FROM job_actions WHERE job_id = ? AND action = 'paint' ORDER BY seq",
        (p.job_id,),
    ).fetchall()
    (tmp_path / "out").mkdir()
    with open(fo.tmp_path(acts[0][2], p.job_id, acts[0][0]), "wb") as fh:
        fh.write(b"\xff\xd8 partial")
    with open(acts[1][1], "rb") as fh:
        finished = render(fh.read(), acts[1][3])
    with open(acts[1][2], "wb") as fh:
        fh.write(finished)
    r = fo.run_job(ws, p.job_id)
    assert r.status == "done" and r.failed == 0
    assert sorted(tree(tmp_path / "out")) == ["danbooru_0.jpg", "danbooru_1.jpg", "danbooru_2.jpg"]


def test_paint_cli(ws, painted_ws, tmp_path, capsys):
    w = ["-w", str(ws.root)]
    out = str(tmp_path / "p")
    assert (
        run([*w, "paint", "--where", "fid < 2", "--set", "gt", "--run", "r", "--to", out, "--json", "-q"])
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert d["run"]["status"] == "done" and d["plan"]["images"] == 2
    assert run([*w, "paint", "--where", "1", "--to", out]) == 2
    assert "nothing to paint" in capsys.readouterr().err
    assert run([*w, "paint", "--set", "gt", "--to", out]) == 2
    with pytest.raises(UsageError):
        paint(ws, SelectionSpec(where="1"), tmp_path / "x", run="r", conf=2.0)
