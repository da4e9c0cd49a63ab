"""`gather` on a drawn pool: good, bad and new samples, quotas per class, reasons, exclusions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

HEAD, UPPER, LOWER, HAND = 0, 1, 2, 3


def noise_image(path: Path, seed: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(small).resize((128, 96), Image.Resampling.NEAREST).save(path)
    return path


#: item fid → detections (class, x1, y1, x2, y2, score) in a 128×96 image
DETS = {
    1: [(HEAD, 10, 10, 40, 40, 0.90)],
    2: [(HEAD, 10, 10, 40, 40, 0.95), (HAND, 60, 30, 80, 50, 0.80)],
    3: [(HEAD, 10, 10, 40, 40, 0.90), (HEAD, 60, 30, 80, 50, 0.30)],
    4: [(HEAD, 10, 10, 40, 40, 0.90), (HAND, 12, 12, 40, 40, 0.85)],
    5: [(HEAD, 10, 10, 14, 60, 0.90)],
    6: [(HEAD, 10, 10, 40, 40, 0.92)],  # the same picture as 1
    7: [(HEAD, 10, 10, 40, 40, 0.90)],  # already labelled
    8: [(HEAD, 10, 10, 40, 40, 0.05)],
    9: [(HAND, 0, 30, 20, 50, 0.90)],
    10: [(HEAD, 0, 10, 30, 40, 0.90)],
    11: [],
    12: [(HEAD, 0, 10, 30, 40, 0.90)],
}
TAGS = {
    9: "holding_sword hand",
    10: "holding_sword 1girl",
    11: "holding_sword",
    12: "1girl",
    13: "holding_sword",
}


@pytest.fixture
def drawn(ws, tmp_path):  # type: ignore[no-untyped-def]
    from tuiops.ops.meta import import_meta
    from tuiops.ops.scan import scan

    pool = tmp_path / "pool"
    for fid in DETS:
        if fid != 6:
            noise_image(pool / f"danbooru_{fid}.png", seed=fid)
    shutil.copy(pool / "danbooru_1.png", pool / "danbooru_6.png")
    scan(ws, pool, hash=True)
    items = dict(ws.store.execute("SELECT fid, id FROM items").fetchall())
    rows = [
        (items[f], c, float(a), float(b), float(x), float(y), s)
        for f, ds in DETS.items()
        for c, a, b, x, y, s in ds
    ]
    dets = pl.DataFrame(rows, schema=["item_id", "class_id", "x1", "y1", "x2", "y2", "score"], orient="row")
    ws.store.create_run("v1", dets, pl.DataFrame({"item_id": list(items.values())}))
    labels = pl.DataFrame(
        [(items[7], HEAD, 10.0, 10.0, 40.0, 40.0)],
        schema=["item_id", "class_id", "x1", "y1", "x2", "y2"],
        orient="row",
    )
    ws.store.create_label_set("gt", labels, pl.DataFrame({"item_id": [items[7]]}))
    ws.config.raw["quality"] = {"aspect": {"head": [0.5, 2.0]}}
    src = tmp_path / "posts.jsonl"
    src.write_text(
        "".join(json.dumps({"id": f, "tag_string": t, "score": f}) + "\n" for f, t in TAGS.items())
    )
    import_meta(ws, src)
    return ws


def picked(res) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[int]] = {}
    for r in res.picks.iter_rows(named=True):
        out.setdefault(r["kind"], []).append(int(r["key"].split("_")[1]))
    return out


def test_good_bad_and_new_samples_with_their_reasons(drawn):
    from tuiops.ops.meta.gather import gather

    res = gather(drawn, run="v1", label_set="gt", new="holding_sword", missing=["hand"], save="next")
    assert picked(res) == {"good": [6, 2], "bad": [5, 4, 3], "new": [11, 10]}
    assert res.near_duplicates == 1  # 1 is the picture of 6, which ranks higher
    reasons = {r["key"]: r["reason"] for r in res.picks.iter_rows(named=True)}
    assert reasons["danbooru_6"] == "good: 1 detections, all ≥ 0.5 and in shape (lowest 0.92)"
    assert reasons["danbooru_3"] == "bad: low head 0.3"
    assert reasons["danbooru_4"].startswith("bad: conflict head/hand iou 0.8")
    assert reasons["danbooru_5"] == "bad: disproportional head aspect 0.08 outside 0.5–2.0"
    assert reasons["danbooru_11"] == "new: tags match 'holding_sword'; no hand detection"
    # the conflict score is IoU × the lower score
    iou = (28 * 28) / (30 * 30)
    rank = res.picks.filter(pl.col("key") == "danbooru_4")["rank"].item()
    assert rank == pytest.approx(iou * 0.85)
    stored = drawn.store.execute(
        "SELECT key, kind, reason FROM gather_picks WHERE selection = 'next'"
    ).fetchall()
    assert {k for k, _, _ in stored} == set(reasons) and ("danbooru_3", "bad", "bad: low head 0.3") in stored
    from tuiops.ops.select import load_selection

    assert sorted(load_selection(drawn, "next").keys or []) == sorted(reasons)


def test_quotas_are_filled_per_class_in_turn(drawn):
    from tuiops.ops.meta.gather import gather

    res = gather(drawn, run="v1", label_set="gt", kinds=["bad"], quota=5, per_class=1)
    assert picked(res) == {"bad": [5, 4]}  # head: the best (5); hand: its only one (4)
    assert res.over_quota == 1
    res = gather(drawn, run="v1", label_set="gt", kinds=["good", "bad"], quota=1)
    assert picked(res) == {"good": [6], "bad": [5]}
    res = gather(drawn, run="v1", kinds=["good"], max_distance=-1)
    # no set to leave out, no collapsing; head: 6, 1, 7, 2 and hand: 2, drawn in turn
    assert picked(res) == {"good": [6, 2, 1, 7]}


def test_new_without_a_missing_class_wants_no_detection_at_all(drawn):
    from tuiops.ops.meta.gather import gather

    res = gather(drawn, run="v1", kinds=["new"], new="holding_sword -hand")
    assert picked(res) == {"new": [11]}
    res = gather(drawn, kinds=["new"], new="holding_sword")
    assert picked(res) == {"new": [11, 10, 9]}  # without a run nothing is detected


def test_gather_on_the_command_line(drawn, capsys):
    from tuiops.cli import run

    root = str(drawn.root)
    with open(drawn.config_path, "a", encoding="utf-8") as fh:
        fh.write("\n[quality.aspect]\nhead = [0.5, 2.0]\n")
    assert (
        run(
            [
                "-w",
                root,
                "gather",
                "--run",
                "v1",
                "--set",
                "gt",
                "--good",
                "--bad",
                "--save",
                "cycle",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["per_kind"] == {"good": 2, "bad": 3} and data["saved"] == "cycle"
    assert run(["-w", root, "gather", "--quota", "3"]) == 2
    assert "nothing to gather" in capsys.readouterr().err
    assert run(["-w", root, "gather", "--new", "x", "--missing-class", "tail"]) == 2
    assert run(["-w", root, "select", "--drop", "cycle"]) == 0
    assert drawn.store.one("SELECT count(*) FROM gather_picks") == 0
