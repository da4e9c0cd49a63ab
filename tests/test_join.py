"""Torso components joiner: crafted stacks, side-by-side characters, gaps, order; connected components."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from tests.conftest import add_items
from tuiops.cli import run as cli_run
from tuiops.errors import ConflictError, NotFoundError, UsageError
from tuiops.ops.join import connected_components, join_frame, join_parts, read_join

HEAD, UPPER, LOWER, HAND = 0, 1, 2, 3


def stack(dx: float, gap: float = 5.0) -> list[tuple[int, float, float, float, float, float]]:
    """A head, ``gap`` pixels over an upper body, 5 pixels over a lower body, shifted by ``dx``."""
    return [
        (HEAD, 100 + dx, 100, 160 + dx, 160, 0.9),
        (UPPER, 90 + dx, 160 + gap, 180 + dx, 300, 0.6),
        (LOWER, 95 + dx, 305, 175 + dx, 450, 0.3),
    ]


def frame(rows, item_id: int = 1, first_id: int = 1) -> pl.DataFrame:
    return pl.DataFrame(
        [(first_id + k, item_id, c, x1, y1, x2, y2, s) for k, (c, x1, y1, x2, y2, s) in enumerate(rows)],
        schema={
            "id": pl.Int64,
            "item_id": pl.Int64,
            "class_id": pl.Int32,
            "x1": pl.Float64,
            "y1": pl.Float64,
            "x2": pl.Float64,
            "y2": pl.Float64,
            "score": pl.Float64,
        },
        orient="row",
    )


def test_two_characters_side_by_side_become_two_objects():
    dets = frame(stack(0) + stack(300) + [(HAND, 120, 200, 140, 220, 0.99)])
    objects, members = join_frame(dets, [HEAD, UPPER, LOWER], margin=0.05)
    assert objects.height == 2
    assert objects["members"].to_list() == [3, 3]
    assert objects["parts_mask"].to_list() == [7, 7]
    first = objects.row(0, named=True)
    assert (first["x1"], first["y1"], first["x2"], first["y2"]) == (90.0, 100.0, 180.0, 450.0)
    assert first["score"] == pytest.approx(0.6) and first["min_score"] == pytest.approx(0.3)
    assert json.loads(first["member_ids"]) == [1, 2, 3]
    assert members.height == 6 and 7 not in members["det_id"].to_list()  # the hand is no part


def test_a_gap_larger_than_the_margin_splits():
    # upper body 40 px below the head: the grown boxes (3 px and 7 px) do not touch
    dets = frame(stack(0, gap=40))
    objects, _ = join_frame(dets, [HEAD, UPPER, LOWER], margin=0.05)
    assert sorted(objects["members"].to_list()) == [1, 2]
    # a larger margin bridges it (24 px around the head, 40 px around the upper body)
    objects, _ = join_frame(dets, [HEAD, UPPER, LOWER], margin=0.4)
    assert objects["members"].to_list() == [3]


def test_touching_edges_join_and_vertical_order_matters():
    touching = frame([(HEAD, 0, 0, 50, 50, 0.5), (UPPER, 0, 50, 50, 150, 0.5)])
    objects, _ = join_frame(touching, [HEAD, UPPER], margin=0.0)
    assert objects["members"].to_list() == [2]
    # a head below the upper body is not its head
    upside_down = frame([(HEAD, 0, 150, 50, 200, 0.5), (UPPER, 0, 50, 50, 150, 0.5)])
    objects, _ = join_frame(upside_down, [HEAD, UPPER], margin=0.05)
    assert objects["members"].to_list() == [1, 1]
    # two heads on each other are never linked to each other, only through a body
    heads = frame([(HEAD, 0, 0, 50, 50, 0.5), (HEAD, 10, 10, 60, 60, 0.5)])
    objects, _ = join_frame(heads, [HEAD, UPPER], margin=0.05)
    assert objects.height == 2


def test_parts_in_different_images_never_join():
    dets = pl.concat([frame(stack(0)[:1], item_id=1), frame(stack(0)[1:], item_id=2, first_id=10)])
    objects, _ = join_frame(dets, [HEAD, UPPER, LOWER])
    assert sorted(objects["members"].to_list()) == [1, 2]


def union_find_components(n: int, edges: pl.DataFrame) -> dict[int, int]:
    """node → smallest node of its component, by a plain union-find."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges.iter_rows():
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(find(x), []).append(x)
    return {x: min(group) for group in groups.values() for x in group}


def test_connected_components_match_union_find():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        n = 300
        edges = pl.DataFrame({"u": rng.integers(0, n, 250), "v": rng.integers(0, n, 250)})
        got = connected_components(edges, pl.Series(np.arange(n)))
        assert dict(got.iter_rows()) == union_find_components(n, edges)
    # a long chain needs many rounds of propagation
    chain = pl.DataFrame({"u": np.arange(0, 199), "v": np.arange(1, 200)})
    got = connected_components(chain.sample(fraction=1.0, shuffle=True, seed=2))
    assert set(got["component"].to_list()) == {0} and got.height == 200


def test_join_parts_stores_objects_and_members(ws):
    items = add_items(ws, ["danbooru_1", "danbooru_2"], width=1000, height=1000)
    i1, i2 = items["item_id"].to_list()
    rows = frame(stack(0) + stack(300), item_id=i1).vstack(frame(stack(0, gap=60), item_id=i2))
    ws.store.create_run("v1", rows.drop("id"), items.select("item_id"))
    res = join_parts(ws, "v1", "head,upper_body,lower_body", "torso")
    assert res.objects == 4 and res.joined == 3 and res.by_members == {1: 1, 2: 1, 3: 2}
    assert res.by_parts == {"head": 1, "upper_body+lower_body": 1, "head+upper_body+lower_body": 2}
    objs = read_join(ws, "torso")
    assert objs["key"].to_list() == ["danbooru_1", "danbooru_1", "danbooru_2", "danbooru_2"]
    members = ws.store.read_frame("SELECT det_id, object_id, part FROM joined_members ORDER BY det_id")
    assert members.height == 9
    dets = ws.store.read_detections("v1")
    assert sorted(members["det_id"].to_list()) == sorted(dets["id"].to_list())
    first = objs.row(0, named=True)
    assert (
        json.loads(first["member_ids"])
        == members.filter(pl.col("object_id") == first["id"])["det_id"].to_list()
    )
    view = ws.store.read_frame("SELECT join_name, run, members FROM v_joined_objects ORDER BY id")
    assert view["join_name"].unique().to_list() == ["torso"] and view["run"][0] == "v1"
    with pytest.raises(ConflictError):
        join_parts(ws, "v1", ["head", "upper_body"], "torso")
    res = join_parts(ws, "v1", ["head", "upper_body"], "torso", replace=True)
    assert res.detections == 6
    assert ws.store.one("SELECT count(*) FROM joined_members") == 6
    ws.store.drop_run("v1")
    assert ws.store.one("SELECT count(*) FROM joins") == 0
    assert ws.store.one("SELECT count(*) FROM joined_objects") == 0
    assert ws.store.one("SELECT count(*) FROM joined_members") == 0


def test_bad_parts(ws):
    items = add_items(ws, ["danbooru_1"])
    ws.store.create_run(
        "v1", frame(stack(0), item_id=items["item_id"][0]).drop("id"), items.select("item_id")
    )
    with pytest.raises(NotFoundError, match="'torso'"):
        join_parts(ws, "v1", "head,torso", "x")
    with pytest.raises(UsageError, match="at least two"):
        join_parts(ws, "v1", "head", "x")
    with pytest.raises(UsageError, match="repeat"):
        join_parts(ws, "v1", "head,head", "x")
    with pytest.raises(UsageError, match="margin"):
        join_parts(ws, "v1", "head,upper_body", "x", margin=-1)


def test_join_cli(ws, capsys):
    items = add_items(ws, ["danbooru_1"], width=1000, height=1000)
    ws.store.create_run(
        "v1", frame(stack(0) + stack(300), item_id=items["item_id"][0]).drop("id"), items.select("item_id")
    )
    root = str(ws.root)
    assert (
        cli_run(
            ["-w", root, "join", "--run", "v1", "--parts", "head,upper_body,lower_body", "--into", "t", "-q"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 objects from 6 part detections" in out and "head+upper_body+lower_body" in out
    assert (
        cli_run(
            [
                "-w",
                root,
                "join",
                "--run",
                "v1",
                "--parts",
                "head,upper_body",
                "--into",
                "t",
                "--replace",
                "--margin",
                "0.1",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["margin"] == 0.1
    assert cli_run(["-w", root, "join", "--run", "v1", "--parts", "head,nose", "--into", "u"]) == 5
    assert "known classes" in capsys.readouterr().err
    assert cli_run(["-w", root, "join", "--run", "v1", "--parts", "head", "--into", "u"]) == 2
    assert cli_run(["-w", root, "join", "--run", "v1", "--parts", "head,upper_body", "--into", "t"]) == 6
