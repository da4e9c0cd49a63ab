"""`tuiops match`: categories, costs, image metrics, splits, storage, reports and the CLI."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import polars as pl
import pytest

from tests.conftest import add_items, draw_image
from tuiops.errors import Cancelled, InputError, NotFoundError, UsageError
from tuiops.ops import match as match_mod
from tuiops.ops.base import CancelToken
from tuiops.ops.match import (
    image_objects,
    list_matches,
    match,
    match_frames,
    splits_from_dir,
    splits_from_file,
    worst_images,
    worst_objects,
)

HEAD, UPPER, LOWER, HAND, TEXT = range(5)


def _boxes(rows: list[tuple], score: bool = False) -> pl.DataFrame:
    cols = ["item_id", "class_id", "x1", "y1", "x2", "y2", *(["score"] if score else [])]
    return pl.DataFrame(rows, schema=cols, orient="row").with_columns(
        pl.col("item_id").cast(pl.Int64),
        pl.col("class_id").cast(pl.Int64),
        *[pl.col(c).cast(pl.Float64) for c in cols[2:]],
    )


@pytest.fixture
def scene(ws):
    """One image with one object of every category, an empty image, and images only in one side."""
    items = add_items(ws, ["danbooru_1", "danbooru_2", "danbooru_3", "danbooru_4"], width=800, height=800)
    a, b, c, d = items["item_id"].to_list()
    labels = _boxes(
        [
            (a, HEAD, 0, 0, 100, 100),  # L0 tp
            (a, HAND, 200, 200, 300, 300),  # L1 cls (found as upper_body)
            (a, TEXT, 400, 0, 500, 100),  # L2 loc (IoU 0.25)
            (a, LOWER, 0, 300, 100, 400),  # L3 fn, nothing near
            (a, HEAD, 300, 0, 350, 50),  # L4 fn, found only below conf
            (c, HEAD, 0, 0, 10, 10),  # only in the set
        ]
    )
    dets = _boxes(
        [
            (a, HEAD, 0, 0, 100, 100, 0.9),  # D0 tp
            (a, UPPER, 200, 200, 300, 300, 0.8),  # D1 cls
            (a, TEXT, 460, 0, 560, 100, 0.7),  # D2 loc
            (a, HEAD, 0, 0, 100, 98, 0.6),  # D3 dup of L0
            (a, HAND, 600, 600, 650, 650, 0.5),  # D4 fp
            (a, HEAD, 300, 0, 350, 50, 0.1),  # D5 weak match of L4
            (a, LOWER, 700, 700, 720, 720, 0.05),  # D6 below conf, unmatched: no row
            (d, HEAD, 0, 0, 10, 10, 0.9),  # only in the run
        ],
        score=True,
    )
    ws.store.create_label_set("gt", labels, pl.DataFrame({"item_id": [a, b, c]}))
    ws.store.create_run("r", dets, pl.DataFrame({"item_id": [a, b, d]}))
    return {"a": a, "b": b, "c": c, "d": d}


def test_every_category_with_its_cost(ws, scene):
    res = match(ws, "gt", "r")
    assert res.name == "gt__r" and res.images == 2 and res.set_only == 1 and res.run_only == 1
    objs = ws.store.read_frame(
        "SELECT item_id, category, label_id, det_id, class_id, det_class_id, iou, score, cost, id "
        "FROM match_objects ORDER BY id"
    )
    lab_ids = ws.store.read_labels("gt")["id"].to_list()
    det_ids = ws.store.read_detections("r")["id"].to_list()
    got = [(r["category"], r["label_id"], r["det_id"]) for r in objs.iter_rows(named=True)]
    assert got == [
        ("tp", lab_ids[0], det_ids[0]),
        ("cls", lab_ids[1], det_ids[1]),
        ("loc", lab_ids[2], det_ids[2]),
        ("fn", lab_ids[3], None),
        ("fn", lab_ids[4], det_ids[5]),
        ("dup", lab_ids[0], det_ids[3]),
        ("fp", None, det_ids[4]),
    ]
    by = {(r["category"], r["det_id"]): r for r in objs.iter_rows(named=True)}
    assert by[("tp", det_ids[0])]["cost"] == 0.0 and by[("tp", det_ids[0])]["iou"] == 1.0
    assert by[("cls", det_ids[1])]["cost"] == pytest.approx(0.8)
    assert by[("cls", det_ids[1])]["class_id"] == HAND and by[("cls", det_ids[1])]["det_class_id"] == UPPER
    assert by[("loc", det_ids[2])]["iou"] == pytest.approx(0.25) and by[("loc", det_ids[2])][
        "cost"
    ] == pytest.approx(0.75)
    assert by[("dup", det_ids[3])]["iou"] == pytest.approx(0.98) and by[("dup", det_ids[3])][
        "cost"
    ] == pytest.approx(0.6)
    assert by[("fp", det_ids[4])]["cost"] == pytest.approx(0.5) and by[("fp", det_ids[4])]["class_id"] is None
    assert by[("fn", None)]["cost"] == 1.0
    assert by[("fn", det_ids[5])]["cost"] == pytest.approx(0.9) and by[("fn", det_ids[5])][
        "score"
    ] == pytest.approx(0.1)
    # Rows owning a label are keyed by the label's place in its file, detection-only rows after them.
    assert (objs["id"].to_numpy() & 8191).tolist() == [0, 1, 2, 3, 4, 4096 + 3, 4096 + 4]
    assert set(objs["item_id"].to_list()) == {scene["a"]}

    img = ws.store.read_frame("SELECT * FROM match_images ORDER BY item_id").to_dicts()
    assert [r["item_id"] for r in img] == [scene["a"], scene["b"]]
    a, b = img
    assert (a["n_labels"], a["n_dets"], a["tp"], a["fp"], a["fn"], a["loc"], a["cls"], a["dup"]) == (
        5,
        5,
        1,
        1,
        2,
        1,
        1,
        1,
    )
    assert (
        a["precision"] == pytest.approx(0.2)
        and a["recall"] == pytest.approx(0.2)
        and a["f1"] == pytest.approx(0.2)
    )
    assert a["cost"] == pytest.approx(0.8 + 0.75 + 0.6 + 0.5 + 1 + 0.9) and a["worst_cost"] == 1.0
    assert (b["n_labels"], b["n_dets"], b["f1"], b["cost"]) == (0, 0, 1.0, 0.0)
    assert (a["worst_rank"], b["worst_rank"]) == (1, 2)
    counts = res.splits["all"]
    assert (counts["tp"], counts["fn"], counts["fp"], counts["images"]) == (1, 2, 1, 2)
    assert json.loads(ws.store.one("SELECT counts FROM matches"))["all"]["dup"] == 1


def test_rerun_replaces_the_match_atomically(ws, scene):
    match(ws, "gt", "r")
    first_id = ws.store.one("SELECT id FROM matches")
    res = match(ws, "gt", "r", conf=0.01)
    assert ws.store.one("SELECT count(*) FROM matches") == 1
    assert ws.store.one("SELECT id FROM matches") != first_id
    assert ws.store.one("SELECT count(*) FROM match_objects WHERE match_id = ?", (first_id,)) == 0
    cats = dict(ws.store.execute("SELECT category, count(*) FROM match_objects GROUP BY category").fetchall())
    assert cats == {"tp": 2, "cls": 1, "loc": 1, "dup": 1, "fp": 2, "fn": 1}  # D5 found L4; D6 is an fp
    assert res.splits["all"]["dets"] == 7
    assert ws.store.one("SELECT count(*) FROM match_images") == 2
    match(ws, "gt", "r", name="other")
    assert list_matches(ws.store)["name"].to_list() == ["gt__r", "other"]
    match_mod.drop_match(ws, "other")
    assert list_matches(ws.store)["name"].to_list() == ["gt__r"]


def test_cancelled_match_leaves_nothing(ws, scene):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        match(ws, "gt", "r", cancel=token)
    assert ws.store.one("SELECT count(*) FROM matches") == 0
    assert ws.store.one("SELECT count(*) FROM match_objects") == 0
    assert ws.store.one("SELECT status FROM jobs WHERE kind = 'match'") == "cancelled"


def test_bad_parameters_and_names(ws, scene):
    with pytest.raises(UsageError, match="--low"):
        match(ws, "gt", "r", iou=0.5, low=0.6)
    with pytest.raises(UsageError, match="--iou"):
        match(ws, "gt", "r", iou=0.0)
    with pytest.raises(UsageError, match="--conf"):
        match(ws, "gt", "r", conf=1.5)
    with pytest.raises(NotFoundError, match="no detection run named 'nope'"):
        match(ws, "gt", "nope")
    with pytest.raises(NotFoundError, match="no match named"):
        worst_images(ws.store, "nothing")
    empty = add_items(ws, ["gelbooru_9"])
    ws.store.create_run("elsewhere", _boxes([], score=True), empty.select("item_id"))
    with pytest.raises(InputError, match="no image in common"):
        match(ws, "gt", "elsewhere")


def test_splits_are_stored_and_reported_apart(ws, scene):
    res = match(ws, "gt", "r", splits={"danbooru_1": "val", "danbooru_2": "train", "danbooru_99": "val"})
    assert set(res.splits) == {"train", "val", "all"}
    assert res.splits["val"]["images"] == 1 and res.splits["train"]["images"] == 1
    assert res.splits["val"]["fn"] == 2 and res.splits["train"]["fn"] == 0
    rows = dict(ws.store.execute("SELECT item_id, split FROM match_images").fetchall())
    assert rows == {scene["a"]: "val", scene["b"]: "train"}
    worst = worst_images(ws.store, "gt__r", n=5, split="val")
    assert worst["key"].to_list() == ["danbooru_1"]
    # Item ids work as well as keys; an image in train and val counts as train.
    frame = pl.DataFrame({"item_id": [scene["a"], scene["a"], scene["b"]], "split": ["val", "train", "val"]})
    res = match(ws, "gt", "r", splits=frame)
    assert res.split_overlap == 1
    assert dict(ws.store.execute("SELECT item_id, split FROM match_images").fetchall())[scene["a"]] == "train"


def test_split_sources(ws, tmp_path):
    f = tmp_path / "train.txt"
    f.write_text(
        "# trained on\ndanbooru_1\n./images/train/danbooru_2.jpg\ndanbooru_3, val\n\n", encoding="utf-8"
    )
    frame = splits_from_file(ws, f)
    assert frame.rows() == [("danbooru_1", "train"), ("danbooru_2", "train"), ("danbooru_3", "val")]
    bad = tmp_path / "bad.txt"
    bad.write_text("danbooru_1 train extra\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.txt:1: expected KEY \[SPLIT\]"):
        splits_from_file(ws, bad)
    with pytest.raises(InputError, match="does not exist"):
        splits_from_file(ws, tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("danbooru_1 \xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        splits_from_file(ws, tmp_path / "latin1.txt")

    ds = tmp_path / "ds"
    draw_image(ds / "images" / "train" / "danbooru_1.jpg")
    draw_image(ds / "images" / "val" / "sub" / "danbooru_2.png")
    (ds / "labels" / "train").mkdir(parents=True)
    (ds / "labels" / "train" / "danbooru_1.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    draw_image(ds / "test" / "images" / "danbooru_5.jpg")
    frame = splits_from_dir(ws, ds).sort("key")
    assert frame.rows() == [("danbooru_1", "train"), ("danbooru_2", "val"), ("danbooru_5", "test")]
    with pytest.raises(InputError, match="neither images"):
        splits_from_dir(ws, tmp_path / "ds" / "labels")


def test_chunked_matching_equals_one_chunk(ws):
    rng = np.random.default_rng(5)
    n = 40
    items = add_items(ws, [f"danbooru_{i}" for i in range(n)])
    ids = items["item_id"].to_numpy()
    nl = 200
    li = np.sort(rng.choice(ids, nl))
    x1, y1 = rng.uniform(0, 400, nl), rng.uniform(0, 400, nl)
    w, h = rng.uniform(10, 150, nl), rng.uniform(10, 150, nl)
    labels = pl.DataFrame(
        {"item_id": li, "class_id": rng.integers(0, 3, nl), "x1": x1, "y1": y1, "x2": x1 + w, "y2": y1 + h}
    )
    src = rng.integers(0, nl, 300)
    dets = pl.DataFrame(
        {
            "item_id": li[src],
            "class_id": np.where(
                rng.random(300) < 0.2, rng.integers(0, 3, 300), labels["class_id"].to_numpy()[src]
            ),
            "x1": x1[src] + rng.normal(0, 15, 300),
            "y1": y1[src] + rng.normal(0, 15, 300),
            "x2": (x1 + w)[src] + rng.normal(0, 15, 300),
            "y2": (y1 + h)[src] + rng.normal(0, 15, 300),
            "score": rng.random(300).round(2),
        }
    ).sort("item_id", maintain_order=True)
    ws.store.create_label_set("gt", labels, items.select("item_id"))
    ws.store.create_run("r", dets, items.select("item_id"))
    match(ws, "gt", "r", name="one")
    match(ws, "gt", "r", name="many", chunk_items=3)
    q = (
        "SELECT id & ((1 << 44) - 1) AS k, label_id, det_id, class_id, det_class_id, category, iou, score, cost, worst_rank "
        "FROM match_objects WHERE match_id = (SELECT id FROM matches WHERE name = ?) ORDER BY k"
    )
    one, many = ws.store.read_frame(q, ("one",)), ws.store.read_frame(q, ("many",))
    assert one.height > 200 and one.equals(many)
    cols = "item_id, split, n_labels, n_dets, tp, fp, fn, loc, cls, dup, precision, recall, f1, cost, worst_cost, worst_rank"
    qi = f"SELECT {cols} FROM match_images WHERE match_id = (SELECT id FROM matches WHERE name = ?) ORDER BY item_id"
    assert ws.store.read_frame(qi, ("one",)).equals(ws.store.read_frame(qi, ("many",)))


def test_tp_at_conf_zero_equals_cocoeval_matches(ws):
    """With conf 0 the tp pairs are pycocotools' matches at IoU .5 (area all, ≤ 100 detections)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(9)
    nl, nd = 120, 200
    li = np.sort(rng.integers(1, 15, nl))
    x1, y1 = rng.integers(0, 10, nl) * 20.0, rng.integers(0, 10, nl) * 20.0
    labels = pl.DataFrame(
        {
            "id": np.arange(1, nl + 1),
            "item_id": li,
            "class_id": rng.integers(0, 2, nl),
            "x1": x1,
            "y1": y1,
            "x2": x1 + 60,
            "y2": y1 + 60,
        }
    )
    src = rng.integers(0, nl, nd)
    dets = pl.DataFrame(
        {
            "id": np.arange(1, nd + 1),
            "item_id": li[src],
            "class_id": labels["class_id"].to_numpy()[src],
            "x1": x1[src] + rng.integers(-2, 3, nd) * 10.0,
            "y1": y1[src] + rng.integers(-2, 3, nd) * 10.0,
            "x2": x1[src] + 60,
            "y2": y1[src] + 60,
            "score": rng.integers(1, 5, nd) / 5,
        }
    ).sort("item_id", maintain_order=True)
    objs = match_frames(labels, dets, iou=0.5, low=0.1, conf=0.0)
    ours = {(r["label_id"], r["det_id"]) for r in objs.filter(pl.col("category") == 0).iter_rows(named=True)}

    gt = {
        "images": [{"id": i} for i in range(1, 15)],
        "categories": [{"id": 0}, {"id": 1}],
        "annotations": [
            {
                "id": r["id"],
                "image_id": r["item_id"],
                "category_id": r["class_id"],
                "bbox": [r["x1"], r["y1"], 60.0, 60.0],
                "area": 3600.0,
                "iscrowd": 0,
            }
            for r in labels.iter_rows(named=True)
        ],
    }
    res = [
        {
            "image_id": r["item_id"],
            "category_id": r["class_id"],
            "bbox": [r["x1"], r["y1"], r["x2"] - r["x1"], r["y2"] - r["y1"]],
            "score": r["score"],
        }
        for r in dets.iter_rows(named=True)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        cd = cg.loadRes(res)
        ev = COCOeval(cg, cd, "bbox")
        ev.evaluate()
    det_id_of_ann = dict(zip(range(1, nd + 1), dets["id"].to_list(), strict=True))
    theirs = set()
    for e in ev.evalImgs:
        if e is None or e["aRng"] != [0, 1e10]:
            continue
        for dt, gtm in zip(e["dtIds"], e["dtMatches"][0], strict=True):
            if gtm > 0:
                theirs.add((int(gtm), det_id_of_ann[dt]))
    assert ours == theirs


def test_worst_reports_use_the_ranks_and_the_fallback(ws, scene, monkeypatch):
    match(ws, "gt", "r")
    top = worst_objects(ws.store, "gt__r", n=1)
    assert top.filter(pl.col("category") == "fn")["cost"].to_list() == [1.0]
    assert set(top["category"].to_list()) == {"tp", "cls", "loc", "dup", "fp", "fn"}
    fn = worst_objects(ws.store, "gt__r", n=5, category="fn")
    assert fn["cost"].to_list() == pytest.approx([1.0, 0.9])
    with pytest.raises(UsageError, match="unknown category"):
        worst_objects(ws.store, "gt__r", category="bad")
    for mod in (match_mod, match_mod.tables, match_mod.queries):  # the package and the modules that rank
        monkeypatch.setattr(mod, "TOP_RANKED", 1)
    match(ws, "gt", "r")
    assert ws.store.one("SELECT count(*) FROM match_objects WHERE worst_rank IS NOT NULL") == 6
    slow = worst_objects(ws.store, "gt__r", n=5, category="fn")  # more than is ranked: sorted query
    assert slow["cost"].to_list() == pytest.approx([1.0, 0.9])
    images = worst_images(ws.store, "gt__r", n=5)
    assert images["key"].to_list() == ["danbooru_1", "danbooru_2"] and images["rank"].to_list() == [1, 2]
    one = image_objects(ws.store, "gt__r", scene["a"])
    assert one.height == 7 and one["category"].to_list()[0] == "tp"


def test_match_cli(ws, scene, tmp_path, capsys):
    from tuiops.cli import run

    split = tmp_path / "val.txt"
    split.write_text("danbooru_1\n", encoding="utf-8")
    w = ["-w", str(ws.root)]
    assert run([*w, "match", "--set", "gt", "--run", "r", "--split-file", f"val={split}", "-q"]) == 0
    out = capsys.readouterr().out
    assert "match 'gt__r'" in out and "worst images" in out and "danbooru_1" in out
    firsts = [line.split()[0] for line in out.splitlines() if line.startswith("  ") and line.split()]
    assert firsts.index("val") < firsts.index("all")
    assert run([*w, "match", "--set", "gt", "--run", "r", "--name", "n2", "--json", "-q"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (
        data["name"] == "n2" and data["splits"]["all"]["fn"] == 2 and data["worst"][0]["key"] == "danbooru_1"
    )
    assert run([*w, "match", "--set", "gt", "--run", "r", "--low", "0.9"]) == 2
    assert "--low must be in" in capsys.readouterr().err
    assert run([*w, "match", "--set", "gt", "--run", "r", "--split-file", str(tmp_path / "nope.txt")]) == 4
    assert (
        run(
            [
                *w,
                "query",
                "SELECT category, count(*) AS n FROM v_match_objects WHERE match = 'n2' GROUP BY category",
            ]
        )
        == 0
    )
    assert "cls" in capsys.readouterr().out


def test_a_run_with_no_confident_detection_has_no_precision(ws, scene, capsys):
    from tuiops.cli import run

    images = ws.store.read_set_images("gt")
    ws.store.create_run(
        "empty",
        pl.DataFrame(schema=ws.store.read_detections("r").drop("id").schema),
        images.select("item_id"),
    )
    res = match(ws, "gt", "empty")
    assert res.splits["all"]["dets"] == 0 and res.splits["all"]["precision"] is None
    assert res.splits["all"]["recall"] == 0.0
    assert run(["-w", str(ws.root), "match", "--set", "gt", "--run", "empty", "-q"]) == 0
    out = capsys.readouterr().out
    row = next(ln for ln in out.splitlines() if ln.strip().startswith("all"))
    assert "n/a" in row.split() and "1.000" not in row, out
    assert run(["-w", str(ws.root), "match", "--set", "gt", "--run", "empty", "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["all"]["precision"] is None
