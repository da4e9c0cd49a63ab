"""`meta import` reading runs of JSON lines as columns gives the same store as reading one
line at a time: posts, tags and their categories, search answers, counts and reports."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.conftest import CLASSES

TAGS = ["1girl", "solo", "long_hair", "smile", "sword", "holding_sword", "hand", "blue_eyes"]
TAGS += [f"t{i}_x" for i in range(40)]
QUERIES = [
    "1girl",
    "1girl solo -smile",
    "~sword ~hand",
    "*_hair",
    "t1*",
    "rating:s",
    "-rating:e score:>3",
    "general:1girl",
    "character:*",
    "artist:*",
    "width:>=1024",
]


def _line(rng: random.Random, fid: int, first: int) -> str | dict[str, object]:
    """One drawn line: mostly plain posts, some with a fault or spelt so that only a line at
    a time reads them."""
    tags = [*rng.sample(TAGS, rng.randrange(0, 7)), f"new{first + rng.randrange(30)}"]
    cats = {k: [] for k in ("general", "character", "artist")}
    for t in tags:
        if rng.random() < 0.8:
            cats[rng.choice(list(cats))].append(t)
    rec: dict[str, object] = {
        "id": fid,
        "tag_string": " ".join(tags),
        **{f"tag_string_{k}": " ".join(v) for k, v in cats.items() if v or rng.random() < 0.3},
        "rating": rng.choice("gsqe"),
        "score": rng.randrange(-2, 9),
        "fav_count": rng.randrange(5),
        "image_width": rng.choice((512, 1024, 2048)),
        "image_height": 768,
        "md5": f"{rng.getrandbits(128):032x}",
        "file_ext": "jpg",
        "file_size": rng.randrange(1000, 9000),
        "created_at": "2024-01-01T00:00:00.000-05:00",
        "media_asset": {"md5": "x", "variants": [{"width": 1, "file_ext": 5}]},
    }
    if rng.random() < 0.7:
        return rec
    roll = rng.random()
    if roll < 0.03:
        return "{not json"
    if roll < 0.05:
        return ""
    if roll < 0.06:
        return "   "
    if roll < 0.07:
        return {**rec, "rating": " Safe"}  # read a line at a time: trimmed and lower-cased
    if roll < 0.08:
        return {**rec, "rating": "x"}
    if roll < 0.09:
        return {**rec, "score": 4.0}
    if roll < 0.10:
        return {**rec, "score": "7"}
    if roll < 0.11:
        return {**rec, "md5": 12345}
    if roll < 0.12:
        return {**rec, "tag_string": "  " + str(rec["tag_string"]).replace(" ", "\t ") + " "}
    if roll < 0.13:
        return {k: v for k, v in rec.items() if k != "tag_string"} | {
            "tags": [{"name": t, "category": rng.choice((0, 1, 4))} for t in tags]
        }
    if roll < 0.14:
        return {**rec, "fav_count": None, "favcount": 3}
    if roll < 0.15:
        return {k: v for k, v in rec.items() if k != "image_width"} | {"width": 640}
    if roll < 0.16:
        return {**rec, "id": -fid}
    if roll < 0.17:
        return {**rec, "tag_string": ""}
    if roll < 0.18:
        return {**rec, "tag_string": True}
    return rec


def dump(path: Path, seed: int, ids: range, first_new: int) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for fid in ids:
            rec = _line(rng, fid if rng.random() > 0.1 else rng.choice(ids), first_new)
            fh.write((rec if isinstance(rec, str) else json.dumps(rec)) + "\n")
    return path


def state(ws) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from tuiops.ops.meta import count_posts, search_posts

    rows = ws.store.execute(
        "SELECT booru, fid, rating, score, fav_count, width, height, md5, file_ext, file_size, "
        "created_at, tags, tag_count, line FROM meta_posts ORDER BY booru, fid"
    ).fetchall()
    tags = ws.store.execute("SELECT name, category FROM meta_tags ORDER BY name").fetchall()
    answers = {}
    for q in QUERIES:
        frame, _ = search_posts(ws.store, q)
        answers[q] = (sorted(frame.get_column("fid").to_list()), count_posts(ws.store, q)[0])
    return {"posts": rows, "tags": tags, "answers": answers}


def summary(s) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {k: v for k, v in s.to_dict().items() if k not in ("elapsed", "import_id")}


def test_runs_read_as_columns_give_the_store_a_line_at_a_time_gives(tmp_path, monkeypatch):
    from tuiops.ops.meta import import_meta, records
    from tuiops.workspace import Workspace

    monkeypatch.setattr(records, "RUN", 16)  # many runs, some plain, some not
    files = [
        dump(tmp_path / "a.jsonl", 1, range(1, 400), 0),
        dump(tmp_path / "b.jsonl", 2, range(200, 600), 20),  # updates, new posts, new tags
        dump(tmp_path / "c.jsonl", 3, range(100, 500), 40),
    ]
    stores = {c: Workspace.init(tmp_path / f"ws{c}", classes=list(CLASSES)) for c in (True, False)}
    try:
        ran_columns = 0
        for k, (src, replace) in enumerate([(files[0], False), (files[1], False), (files[2], True)]):
            got = {}
            for columnar, ws in stores.items():
                if columnar:
                    before = records.rows_from
                    taken = []

                    def counting(*a, _before=before, _taken=taken, **kw):  # type: ignore[no-untyped-def]
                        out = _before(*a, **kw)
                        _taken.append(out is not None)
                        return out

                    monkeypatch.setattr(records, "rows_from", counting)
                    s = import_meta(ws, src, replace=replace, columnar=True)
                    monkeypatch.setattr(records, "rows_from", before)
                    ran_columns += sum(taken)
                    assert not all(taken), "some runs hold a line only a line at a time reads"
                else:
                    s = import_meta(ws, src, replace=replace, columnar=False)
                got[columnar] = (summary(s), state(ws))
            assert got[True][0] == got[False][0], f"import {k}"
            assert got[True][1] == got[False][1], f"import {k}"
            assert got[True][0]["bad_lines"] > 0 and got[True][0]["duplicates"] > 0
            if k:
                assert got[True][0]["updated"] > 0
        assert ran_columns > 5
        tags = dict(stores[True].store.execute("SELECT name, category FROM meta_tags").fetchall())
        assert {"general", "character", "artist"} <= set(tags.values()) and None in tags.values()
    finally:
        for ws in stores.values():
            ws.close()


def test_a_post_given_again_in_a_later_batch_counts_once(ws, tmp_path, monkeypatch):
    from tuiops.ops.meta import importer

    monkeypatch.setattr(importer, "BATCH", 2)  # the repeats land in other batches than the first
    src = tmp_path / "p.jsonl"
    lines = [{"id": 1, "tag_string": "a"}, {"id": 2, "tag_string": "b"}, {"id": 3, "tag_string": "c"}]
    lines += [{"id": 1, "tag_string": "d"}, {"id": 3, "tag_string": "e"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in lines))
    s = importer.import_meta(ws, src, columnar=False)
    assert (s.posts, s.new, s.updated, s.unchanged, s.without_image) == (3, 3, 0, 0, 3)
    # the file again, but post 1 given at last as something else: unchanged, then updated
    lines = [{**r, "tag_string": t} for r, t in zip(lines, "dbege", strict=True)]
    src.write_text("".join(json.dumps(r) + "\n" for r in lines))
    s = importer.import_meta(ws, src, columnar=False)
    assert (s.posts, s.new, s.updated, s.unchanged, s.without_image) == (3, 0, 1, 2, 3)
    assert ws.store.execute("SELECT tags FROM meta_posts ORDER BY fid").fetchall() == [("g",), ("b",), ("e",)]
