"""Similar layouts (ranking on crafted layouts, distance vs brute force) and near-duplicates by phash."""

from __future__ import annotations

import json

import imagehash
import numpy as np
import polars as pl
import pytest
from PIL import Image

from tests.conftest import add_items, draw_image
from tuiops.cli import run as cli_run
from tuiops.errors import NotFoundError, UsageError
from tuiops.ops.probe import PHASH_METHOD, phash_int
from tuiops.ops.similar import find_dupes, hash_pairs, layout_distances, plan_chunks, similar_images

HEAD, UPPER, LOWER = 0, 1, 2


def boxes_frame(layouts: dict[int, list[tuple[int, float, float, float, float]]]) -> pl.DataFrame:
    rows = [(item, c, x1, y1, x2, y2) for item, bs in layouts.items() for c, x1, y1, x2, y2 in bs]
    return pl.DataFrame(
        rows,
        schema={
            "item_id": pl.Int64,
            "class_id": pl.Int64,
            "x1": pl.Float64,
            "y1": pl.Float64,
            "x2": pl.Float64,
            "y2": pl.Float64,
        },
        orient="row",
    )


def brute_distance(q: list[tuple], c: list[tuple]) -> float:
    """The documented distance, one pair of images at a time (features: class, cx, cy, w, h)."""
    classes = {b[0] for b in q} | {b[0] for b in c}
    l1 = sum(abs(sum(b[0] == k for b in q) - sum(b[0] == k for b in c)) for k in classes)
    total = len(q) + len(c)
    class_term = l1 / total if total else 0.0

    def cost(a, b):
        return sum(abs(x - y) for x, y in zip(a[1:], b[1:], strict=True)) / 4

    near = []
    for mine, other in ((q, c), (c, q)):
        for b in mine:
            same = [o for o in other if o[0] == b[0]]
            if same:
                near.append(min(cost(b, o) for o in same))
    box_term = sum(near) / len(near) if near else 0.0
    return class_term + box_term


def test_layout_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    for seed in range(6):
        rng = np.random.default_rng(seed)
        nq = int(rng.integers(0, 6))
        query = [(int(rng.integers(0, 3)), *rng.random(4)) for _ in range(nq)]
        cands = {
            i: [(int(rng.integers(0, 3)), *rng.random(4)) for _ in range(int(rng.integers(0, 6)))]
            for i in range(40)
        }
        qf = (
            pl.DataFrame(query, schema=["class_id", "cx", "cy", "w", "h"], orient="row").with_columns(
                pl.col("class_id").cast(pl.Int32)
            )
            if query
            else pl.DataFrame(
                schema={
                    "class_id": pl.Int32,
                    "cx": pl.Float64,
                    "cy": pl.Float64,
                    "w": pl.Float64,
                    "h": pl.Float64,
                }
            )
        )
        cf = pl.DataFrame(
            [(i, *b) for i, bs in cands.items() for b in bs],
            schema=["item_id", "class_id", "cx", "cy", "w", "h"],
            orient="row",
        )
        got = layout_distances(qf, cf, pl.Series(list(cands)), chunk_rows=7)
        got = dict(zip(got["item_id"].to_list(), got["distance"].to_list(), strict=True))
        for i, bs in cands.items():
            assert got[i] == pytest.approx(brute_distance(query, bs)), (seed, i)


def test_similar_ranks_crafted_layouts(ws):
    keys = ["danbooru_1", "danbooru_2", "danbooru_3", "danbooru_4", "danbooru_5", "danbooru_6"]
    items = add_items(ws, keys, width=1000, height=1000)
    ids = dict(zip(keys, items["item_id"].to_list(), strict=True))
    person = [(HEAD, 100, 100, 200, 200), (UPPER, 80, 200, 220, 400), (LOWER, 90, 400, 210, 700)]
    shifted = [(c, x1 + 20, y1 + 10, x2 + 20, y2 + 10) for c, x1, y1, x2, y2 in person]
    mirrored = [(c, 1000 - x2, y1, 1000 - x1, y2) for c, x1, y1, x2, y2 in person]
    two = person + [(c, x1 + 500, y1, x2 + 500, y2) for c, x1, y1, x2, y2 in person]
    other = [(3, 100, 100, 200, 200), (4, 300, 300, 400, 400)]
    layouts = {
        ids["danbooru_1"]: person,
        ids["danbooru_2"]: mirrored,
        ids["danbooru_3"]: shifted,
        ids["danbooru_4"]: two,
        ids["danbooru_5"]: other,
    }
    ws.store.create_label_set("gt", boxes_frame(layouts), items.select("item_id"))
    res = similar_images(ws, "danbooru_1", label_set="gt", top=10)
    ranked = res.results["key"].to_list()
    assert ranked == ["danbooru_3", "danbooru_2", "danbooru_4", "danbooru_5", "danbooru_6"]
    d = dict(zip(ranked, res.results["distance"].to_list(), strict=True))
    assert d["danbooru_3"] < 0.02
    assert d["danbooru_5"] == pytest.approx(1.0) and d["danbooru_6"] == pytest.approx(1.0)
    assert res.results.filter(pl.col("key") == "danbooru_4")["class_term"].item() == pytest.approx(1 / 3)
    # the distance is symmetric
    back = similar_images(ws, "danbooru_2", label_set="gt")
    assert back.results.filter(pl.col("key") == "danbooru_1")["distance"].item() == pytest.approx(
        d["danbooru_2"]
    )
    assert similar_images(ws, "danbooru_1", label_set="gt", top=2).results.height == 2


def test_similar_from_a_run_and_errors(ws, capsys):
    items = add_items(ws, ["danbooru_1", "danbooru_2", "danbooru_3"])
    ids = items["item_id"].to_list()
    dets = boxes_frame(
        {
            ids[0]: [(0, 10, 10, 50, 50)],
            ids[1]: [(0, 12, 10, 52, 50), (1, 0, 0, 5, 5)],
            ids[2]: [(0, 12, 10, 52, 50)],
        }
    )
    ws.store.create_run(
        "r", dets.with_columns(score=pl.Series([0.9, 0.9, 0.1, 0.9])), items.select("item_id")
    )
    res = similar_images(ws, "danbooru_1", run="r", min_score=0.5)
    assert res.results["distance"][0] == res.results["distance"][1]  # the low-scored box is ignored
    assert res.results["key"].to_list() == ["danbooru_2", "danbooru_3"]  # ties broken by key
    with pytest.raises(UsageError, match="exactly one"):
        similar_images(ws, "danbooru_1")
    with pytest.raises(NotFoundError, match="no image with key"):
        similar_images(ws, "danbooru_99", run="r")
    add_items(ws, ["danbooru_77"])
    with pytest.raises(NotFoundError, match="is not in run r"):
        similar_images(ws, "danbooru_77", run="r")
    root = str(ws.root)
    assert cli_run(["-w", root, "similar", "danbooru_1", "--run", "r", "--top", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["similar"]) == 1 and out["similar"][0]["rank"] == 1
    assert cli_run(["-w", root, "similar", "danbooru_1", "--run", "r"]) == 0
    assert "distance" in capsys.readouterr().out
    assert cli_run(["-w", root, "similar", "danbooru_1"]) == 2
    assert cli_run(["-w", root, "similar", "danbooru_1", "--set", "nope"]) == 5


# -- near-duplicates -----------------------------------------------------------------------------
def planted_hashes(rng: np.random.Generator, n: int, max_flip: int) -> np.ndarray:
    base = rng.integers(0, 2**63, n // 2, dtype=np.int64).astype(np.uint64) * np.uint64(2) + rng.integers(
        0, 2, n // 2
    ).astype(np.uint64)
    copies = base.copy()
    for k in range(len(copies)):
        bits = rng.choice(64, int(rng.integers(0, max_flip + 1)), replace=False)
        for b in bits:
            copies[k] ^= np.uint64(1) << np.uint64(b)
    return np.concatenate([base, copies])


def brute_pairs(h: np.ndarray, d: int) -> set[tuple[int, int, int]]:
    out = set()
    for i in range(len(h)):
        x = np.bitwise_xor(h[i], h[i + 1 :])
        dist = np.array([bin(int(v)).count("1") for v in x])
        for j in np.flatnonzero(dist <= d):
            out.add((i, i + 1 + int(j), int(dist[j])))
    return out


@pytest.mark.parametrize("d", [0, 2, 4])
def test_hash_pairs_match_brute_force_for_every_chunking(d):
    rng = np.random.default_rng(d)
    h = planted_hashes(rng, 300, max_flip=6)
    frame = pl.DataFrame(
        {"node": np.arange(len(h), dtype=np.int64), "h": h}, schema={"node": pl.Int64, "h": pl.UInt64}
    )
    want = brute_pairs(h, d)
    assert want
    for m in sorted({1, 2, 3, d + 1} & set(range(1, d + 2))):
        if d == 4 and m == 1:
            continue  # 64 choose ≤4 variants per hash: too many for a unit test
        got = set(hash_pairs(frame, d, chunks=m).iter_rows())
        assert got == want, (d, m)
    assert set(hash_pairs(frame, d).iter_rows()) == want


def test_plan_chunks_prefers_fewer_chunks_for_big_pools():
    assert plan_chunks(1000, 4) == 5
    assert plan_chunks(4_000_000, 4) < 5
    assert plan_chunks(10, 0) == 1


def _add_files(ws, pool: str, rows: list[tuple[str, int | None, int | None]]) -> None:
    """Insert files (relpath, item_id, phash) of a pool directly, as a scan would."""
    store = ws.store
    pid = store.one("SELECT id FROM pools WHERE name = ?", (pool,))
    if pid is None:
        store.execute("INSERT INTO pools(name, root, created) VALUES (?, ?, 'now')", (pool, f"/data/{pool}"))
        pid = store.one("SELECT id FROM pools WHERE name = ?", (pool,))
    for relpath, item_id, ph in rows:
        store.execute(
            "INSERT INTO files(pool_id, relpath, item_id, phash, phash_method) VALUES (?, ?, ?, ?, ?)",
            (pid, relpath, item_id, ph, None if ph is None else PHASH_METHOD),
        )


def signed(u: int) -> int:
    return u - (1 << 64) if u >= 1 << 63 else u


def test_find_dupes_groups_set_hashes(ws, capsys):
    items = add_items(ws, [f"danbooru_{i}" for i in range(6)])
    ids = items["item_id"].to_list()
    a = 0xF0F0_F0F0_0F0F_0F0F
    b = 0x1234_5678_9ABC_DEF0
    c = 0xFFFF_FFFF_FFFF_FFFF
    _add_files(
        ws,
        "main",
        [
            ("a.jpg", ids[0], signed(a)),
            ("a_copy.jpg", ids[1], signed(a ^ 0b101)),  # 2 bits away
            ("a_far.jpg", ids[2], signed(a ^ 0xFF)),  # 8 bits away
            ("b.jpg", ids[3], signed(b)),
            ("white.png", ids[4], signed(c)),
            ("nohash.png", ids[5], None),
        ],
    )
    _add_files(ws, "backup", [("b.jpg", ids[3], signed(b)), ("white.png", ids[4], signed(c ^ 1))])
    _add_files(ws, "old", [("gone.jpg", ids[0], signed(a))])
    ws.store.execute("UPDATE files SET status = 'missing' WHERE relpath = 'gone.jpg'")
    res = find_dupes(ws, max_distance=4)
    assert res.files == 7 and res.groups == 3 and res.files_in_groups == 6
    groups = res.to_dict()["dupes"]
    by_first = {g["files"][0]["relpath"]: g for g in groups}
    assert [f["relpath"] for f in by_first["a.jpg"]["files"]] == ["a.jpg", "a_copy.jpg"]
    assert (
        by_first["a.jpg"]["max_distance"] == 2
        and by_first["a.jpg"]["files"][0]["phash"] == "f0f0f0f00f0f0f0f"
    )
    assert by_first["white.png"]["files"][1]["phash"] == "fffffffffffffffe"
    assert by_first["b.jpg"]["keys"] == 1 and by_first["b.jpg"]["max_distance"] == 0
    # the same image in two pools is one key: not a leak
    leaks = find_dupes(ws, max_distance=4, distinct_keys=True)
    assert leaks.groups == 1 and leaks.table["key"].to_list() == ["danbooru_0", "danbooru_1"]
    assert (
        find_dupes(ws, max_distance=8).table.filter(pl.col("relpath") == "a_far.jpg")["distance"].item() == 8
    )
    assert find_dupes(ws, max_distance=4, pool="backup").groups == 0
    root = str(ws.root)
    assert cli_run(["-w", root, "dupes", "--max-distance", "4", "-q"]) == 0
    out = capsys.readouterr().out
    assert "3 groups, 6 files (of 7 hashed)" in out and "a_copy.jpg" in out
    assert cli_run(["-w", root, "dupes", "--limit", "1", "-q"]) == 0
    assert "2 more groups" in capsys.readouterr().out
    assert cli_run(["-w", root, "dupes", "--distinct-keys", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"] == 1
    assert cli_run(["-w", root, "dupes", "--pool", "nope"]) == 5
    assert cli_run(["-w", root, "dupes", "--max-distance", "40"]) == 2


def test_find_dupes_on_real_images(ws, tmp_path):
    paths = {
        "orig": draw_image(tmp_path / "img" / "danbooru_1.png", size=(256, 192), seed=1),
        "other": draw_image(tmp_path / "img" / "danbooru_3.png", size=(256, 192), seed=7),
    }
    Image.open(paths["orig"]).convert("RGB").resize((200, 150)).save(
        tmp_path / "img" / "danbooru_2.jpg", quality=70
    )
    paths["resized"] = tmp_path / "img" / "danbooru_2.jpg"
    # a wholly different picture
    noise = np.random.default_rng(3).integers(0, 255, (192, 256, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "img" / "danbooru_4.png")
    paths["noise"] = tmp_path / "img" / "danbooru_4.png"
    items = add_items(ws, ["danbooru_1", "danbooru_2", "danbooru_3", "danbooru_4"])
    key_item = dict(
        zip(["danbooru_1", "danbooru_2", "danbooru_3", "danbooru_4"], items["item_id"].to_list(), strict=True)
    )
    rows = []
    for p in paths.values():
        with Image.open(p) as img:
            ph = phash_int(img)
        assert format(ph & (2**64 - 1), "016x") == str(imagehash.phash(Image.open(p)))
        rows.append((p.name, key_item[p.stem], ph))
    _add_files(ws, "img", rows)
    res = find_dupes(ws, max_distance=6)
    grouped = set(res.table["relpath"].to_list())
    assert {"danbooru_1.png", "danbooru_2.jpg"} <= grouped
    assert "danbooru_4.png" not in grouped


def _check_groups(h: np.ndarray, groups: dict[int, list[int]], left: set[int], d: int) -> None:
    """Every pair of a group is within d; each hash in one group; no two left-out hashes are near.

    A group of one distinct hash is a group of identical files."""
    seen = [i for g in groups.values() for i in g]
    assert len(seen) == len(set(seen))
    for g in groups.values():
        hs = h[g]
        assert np.bitwise_count(hs[:, None] ^ hs[None, :]).max() <= d
    pairs = brute_pairs(h, d)
    near = {i for i, j, _ in pairs} | {j for i, j, _ in pairs}
    multi = {i for g in groups.values() if len(g) > 1 for i in g}
    assert multi | left <= near <= set(seen) | left
    assert not any(i in left and j in left for i, j, _ in pairs)


def test_find_dupes_groups_are_cliques_not_chains(ws, capsys):
    # a chain: each hash 2 bits from the next, so the ends are 2 × 29 bits apart
    chain = [((1 << (2 * k)) - 1) for k in range(30)]
    items = add_items(ws, [f"danbooru_{i}" for i in range(len(chain))])
    ids = items["item_id"].to_list()
    _add_files(ws, "main", [(f"c{k:02d}.jpg", ids[k], signed(v)) for k, v in enumerate(chain)])
    res = find_dupes(ws, max_distance=4)
    summary = res.summary()
    assert summary["max_distance"].max() <= 4
    h = np.array(chain, dtype=np.uint64)
    rows = res.table.with_columns(pl.col("relpath").str.slice(1, 2).cast(pl.Int64).alias("k"))
    groups = {g: [int(k) for k in ks] for g, ks in rows.group_by("group").agg("k").iter_rows()}
    left = {int(r[2][1:3]) for r in res.left_out.iter_rows()}
    _check_groups(h, groups, left, 4)
    # every group holds two or three consecutive links, around a middle one when three
    assert all(max(g) - min(g) <= 2 for g in groups.values())
    assert res.files_in_groups + res.left_out.height == len(chain)
    assert res.to_dict()["left_out"] == res.left_out.height
    assert cli_run(["-w", str(ws.root), "dupes", "-q", "--limit", "0"]) == 0
    out = capsys.readouterr().out
    assert "max distance 6" not in out and f"{res.groups} groups" in out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_find_dupes_groups_on_planted_clusters_match_brute_force(ws, seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**63, 30, dtype=np.uint64)
    walk = []
    for b in base:  # random walks: clusters that chain
        v = int(b)
        for _ in range(int(rng.integers(1, 12))):
            walk.append(v)
            for bit in rng.choice(64, int(rng.integers(0, 3)), replace=False):
                v ^= 1 << int(bit)
    h = np.array(walk, dtype=np.uint64)
    items = add_items(ws, [f"danbooru_{i}" for i in range(len(h))])
    ids = items["item_id"].to_list()
    _add_files(ws, "main", [(f"{k:04d}.jpg", ids[k], signed(int(v))) for k, v in enumerate(h)])
    res = find_dupes(ws, max_distance=3)
    # identical hashes share a node: check on the distinct hashes, each named by its first file
    first = {}
    for k, v in enumerate(h):
        first.setdefault(int(v), k)
    uniq = np.array(sorted(first, key=first.get), dtype=np.uint64)
    index = {int(v): i for i, v in enumerate(uniq)}
    rows = res.table.with_columns(pl.col("relpath").str.slice(0, 4).cast(pl.Int64).alias("k"))
    groups = {}
    for g, ks in rows.group_by("group").agg("k").iter_rows():
        groups[g] = sorted({index[int(h[k])] for k in ks})
    left = {index[int(h[int(r[2][:4])])] for r in res.left_out.iter_rows()}
    _check_groups(uniq, groups, left, 3)
    # the result does not depend on the order the pool was indexed in beyond the documented ties
    again = find_dupes(ws, max_distance=3)
    assert again.table.equals(res.table) and again.left_out.equals(res.left_out)


def reference_cliques(h: np.ndarray, first: list[int], d: int) -> dict[int, int]:
    """The documented grouping rule, one hash at a time over all pairs: node → representative."""
    n = len(h)

    def dist(i: int, j: int) -> int:
        return bin(int(h[i]) ^ int(h[j])).count("1")

    adj = {i: [j for j in range(n) if j != i and dist(i, j) <= d] for i in range(n)}
    order = sorted(range(n), key=lambda i: (-len(adj[i]), first[i], i))
    rank = {i: r for r, i in enumerate(order)}
    rep: dict[int, int] = {}
    for c in order:
        if c in rep or not adj[c]:
            continue
        members = [c]
        for x in sorted((j for j in adj[c] if j not in rep), key=lambda j: (dist(c, j), rank[j])):
            if all(dist(x, m) <= d for m in members):
                members.append(x)
        if len(members) > 1:
            for m in members:
                rep[m] = c
    return rep


@pytest.mark.parametrize("seed", [3, 4])
def test_clique_groups_follow_the_documented_rule(seed):
    from tuiops.ops.similar import clique_groups

    rng = np.random.default_rng(seed)
    walk = []
    for b in rng.integers(0, 2**63, 25, dtype=np.uint64):
        v = int(b)
        for _ in range(int(rng.integers(1, 15))):
            walk.append(v)
            for bit in rng.choice(64, int(rng.integers(1, 3)), replace=False):
                v ^= 1 << int(bit)
    h = np.unique(np.array(walk, dtype=np.uint64))
    first = rng.permutation(len(h)).tolist()  # the tie-break, e.g. the lowest file id of the hash
    nodes = pl.DataFrame(
        {"node": np.arange(len(h)), "h": h, "first": first},
        schema={"node": pl.Int64, "h": pl.UInt64, "first": pl.Int64},
    )
    got = clique_groups(nodes, hash_pairs(nodes, 4), 4)
    want = reference_cliques(h, first, 4)
    assert dict(got.select("node", "rep").iter_rows()) == want
    assert len(set(want.values())) > 5


def test_dupes_never_compare_hashes_of_two_methods(ws, capsys):
    items = add_items(ws, [f"danbooru_{i}" for i in range(3)])
    ids = items["item_id"].to_list()
    _add_files(ws, "pool", [("a.jpg", ids[0], 1234), ("b.jpg", ids[1], 1234)])
    ws.store.execute(
        "INSERT INTO files(pool_id, relpath, item_id, phash, phash_method) "
        "SELECT pool_id, 'old.jpg', ?, 1234, 1 FROM files LIMIT 1",
        (ids[2],),
    )
    res = find_dupes(ws, max_distance=4)
    assert res.files == 2 and res.groups == 1 and res.older_hashes == 1
    assert sorted(res.table["relpath"].to_list()) == ["a.jpg", "b.jpg"]
    assert cli_run(["-w", str(ws.root), "dupes"]) == 0
    assert "1 files have a hash made by an older method and were not compared" in capsys.readouterr().out
