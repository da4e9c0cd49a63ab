"""Benchmark: `meta import` of a generated Danbooru-style JSON-lines dump and tag searches.

Posts carry about 30 tags drawn from a Zipf-shaped vocabulary (as Danbooru's tag
frequencies are), in the dump's categories. Prints posts/s and the peak resident memory
of the import, the same for polars reading the same file (``scan_ndjson`` and
``read_ndjson``: parsing only, nothing stored), and the time of a few searches against a
plain ``LIKE`` scan and polars ``str.contains`` over the same tags. "store writes alone"
inserts the same rows and index entries, made beforehand, as the import writes them: the
floor of an importer that keeps the FTS5 index; the last line compares the import with
it in time and in CPU per post (polars' threads included).

    python benchmarks/bench_meta.py --posts 1000000

Each side runs in its own process, so each peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CATS = ("general", "general", "general", "general", "character", "copyright", "artist", "meta")
RATINGS = ("g", "s", "q", "e")
#: The import speed asked for.
GOAL_POSTS_S = 200_000


def vocabulary(n: int) -> list[str]:
    """Tag names: the most frequent few are real Danbooru tags, the rest drawn words."""
    head = ["1girl", "solo", "long_hair", "looking_at_viewer", "smile", "blush", "short_hair", "open_mouth"]
    head += [
        "monochrome",
        "holding_sword",
        "hand",
        "blue_eyes",
        "simple_background",
        "1boy",
        "multiple_girls",
    ]
    return head + [f"tag{i}_{'x' * (i % 7)}" for i in range(len(head), n)]


def generate(
    path: Path, posts: int, vocab_size: int = 400_000, tags_per_post: int = 30, seed: int = 0
) -> None:
    """Write ``posts`` Danbooru-style JSON lines with Zipf-distributed tags."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)
    vocab = vocabulary(vocab_size)
    cat_of = ["general" if i < 15 else CATS[i % len(CATS)] for i in range(vocab_size)]
    ranks = np.arange(1, vocab_size + 1, dtype=np.float64)
    p = 1.0 / ranks
    p /= p.sum()
    cdf = np.cumsum(p)
    with path.open("w") as fh:
        for fid in range(1, posts + 1):
            k = max(1, int(rng.normal(tags_per_post, 6)))
            idx = np.unique(np.searchsorted(cdf, rng.random(k)))
            idx = idx[idx < vocab_size]
            tags = [vocab[i] for i in idx]
            rec = {
                "id": fid,
                "tag_string": " ".join(tags),
                "tag_string_general": " ".join(
                    t for t, i in zip(tags, idx, strict=True) if cat_of[i] == "general"
                ),
                "tag_string_character": " ".join(
                    t for t, i in zip(tags, idx, strict=True) if cat_of[i] == "character"
                ),
                "rating": RATINGS[rnd.randrange(4)],
                "score": rnd.randrange(-5, 200),
                "fav_count": rnd.randrange(0, 500),
                "image_width": rnd.choice((512, 800, 1024, 2048)),
                "image_height": rnd.choice((512, 768, 1200)),
                "md5": f"{rnd.getrandbits(128):032x}",
                "file_ext": "jpg",
                "file_size": rnd.randrange(10_000, 5_000_000),
                "created_at": "2024-01-01T00:00:00.000-05:00",
            }
            fh.write(json.dumps(rec) + "\n")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child_import(dump: Path, ws_dir: Path) -> dict[str, float]:
    from tuiops.ops.meta import import_meta
    from tuiops.workspace import Workspace

    ws = Workspace.init(ws_dir, classes=["hand"])
    t0, c0 = time.perf_counter(), _cpu()
    s = import_meta(ws, dump, booru="danbooru", md5=False)
    dt, cpu = time.perf_counter() - t0, _cpu() - c0
    ws.close()
    return {"posts": s.posts, "seconds": dt, "cpu": cpu, "peak_mib": _peak_mib()}


def child_floor(dump: Path, ws_dir: Path) -> dict[str, float]:
    """The store's writes alone: the same posts' rows and index entries, made beforehand
    (tags to ids by a dict), inserted into a fresh store's ``meta_posts`` and ``meta_fts``
    in one transaction, as the import writes them. What any importer that keeps the
    design's FTS5 index pays, however fast it parses."""
    import orjson

    from tuiops.workspace import Workspace

    ws = Workspace.init(ws_dir, classes=["hand"])
    vocab: dict[str, int] = {}
    posts, fts = [], []
    with dump.open("rb") as fh:
        for pid, line in enumerate(fh, 1):
            r = orjson.loads(line)
            tags = r["tag_string"].split()
            tok = " ".join(f"t{vocab.setdefault(t, len(vocab) + 1)}" for t in tags) + f" r{r['rating']}"
            posts.append(
                (pid, "danbooru", r["id"], r["rating"], r["score"], r["fav_count"], r["image_width"],
                 r["image_height"], r["md5"], r["file_ext"], r["file_size"], r["created_at"],
                 r["tag_string"], len(tags), pid)
            )  # fmt: skip
            fts.append((pid, tok))
    tags_rows = [(i, t, None) for t, i in vocab.items()]
    t0, c0 = time.perf_counter(), _cpu()
    with ws.store.transaction() as conn:
        conn.executemany("INSERT INTO meta_tags(id, name, category) VALUES (?, ?, ?)", tags_rows)
        conn.executemany(
            "INSERT INTO meta_posts(id, booru, fid, rating, score, fav_count, width, height, md5, file_ext, "
            "file_size, created_at, tags, tag_count, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            posts,
        )
        conn.executemany("INSERT INTO meta_fts(rowid, tok) VALUES (?, ?)", fts)
    dt, cpu = time.perf_counter() - t0, _cpu() - c0
    ws.close()
    return {"posts": len(posts), "seconds": dt, "cpu": cpu, "peak_mib": _peak_mib()}


def child_polars(dump: Path, how: str) -> dict[str, float]:
    import polars as pl

    t0, c0 = time.perf_counter(), _cpu()
    if how == "scan":
        n = pl.scan_ndjson(dump).select(pl.len()).collect().item()
        # scan + a real use of the tags, so the column is parsed
        n = (
            pl.scan_ndjson(dump).select(pl.col("tag_string").str.split(" ").list.len().sum()).collect().item()
            and n
        )
    else:
        n = pl.read_ndjson(dump).height
    dt, cpu = time.perf_counter() - t0, _cpu() - c0
    return {"posts": n, "seconds": dt, "cpu": cpu, "peak_mib": _peak_mib()}


def searches(ws_dir: Path, dump: Path) -> None:
    import polars as pl

    from tuiops.ops.meta import count_posts
    from tuiops.workspace import Workspace

    ws = Workspace.open(ws_dir)
    count_posts(ws.store, "solo")  # the store opened and the index read once, as in a running app
    queries = ["1girl solo -monochrome", "1girl solo -monochrome rating:s", "*_hair", "long_* score:>100"]
    counts: dict[str, int] = {}
    tags = pl.read_ndjson(dump, schema={"tag_string": pl.String}).get_column("tag_string")
    for q in queries:
        t0 = time.perf_counter()
        n, _ = count_posts(ws.store, q)
        dt = (time.perf_counter() - t0) * 1000
        counts[q] = n
        print(f"  search {q!r:40} {n:>9} posts  {dt:8.1f} ms")
    padded = (" " + tags + " ").to_frame("t")
    t0 = time.perf_counter()
    n = padded.filter(
        pl.col("t").str.contains(" 1girl ", literal=True)
        & pl.col("t").str.contains(" solo ", literal=True)
        & ~pl.col("t").str.contains(" monochrome ", literal=True)
    ).height
    print(
        f"  polars str.contains '1girl solo -monochrome' {n:>9} posts  {(time.perf_counter() - t0) * 1000:8.1f} ms"
    )
    t0 = time.perf_counter()
    n = padded.filter(pl.col("t").str.contains(r" [^ ]*_hair ")).height
    print(
        f"  polars str.contains '*_hair'                {n:>9} posts  {(time.perf_counter() - t0) * 1000:8.1f} ms"
    )
    t0 = time.perf_counter()
    n = ws.store.one(
        "SELECT count(*) FROM meta_posts WHERE ' ' || tags || ' ' LIKE '% 1girl %' "
        "AND ' ' || tags || ' ' LIKE '% solo %' AND ' ' || tags || ' ' NOT LIKE '% monochrome %'"
    )
    print(
        f"  SQLite LIKE '1girl solo -monochrome'        {n:>9} posts  {(time.perf_counter() - t0) * 1000:8.1f} ms"
    )
    ws.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--vocab", type=int, default=400_000)
    ap.add_argument("--child", nargs=2, metavar=("KIND", "PATH"))
    ap.add_argument("--ws")
    ap.add_argument("--quick", action="store_true", help="2,000 posts from 5,000 tags (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.posts, args.vocab = 2000, 5000
    if args.child:
        kind, path = args.child
        if kind == "import":
            out = child_import(Path(path), Path(args.ws))
        elif kind == "floor":
            out = child_floor(Path(path), Path(args.ws))
        else:
            out = child_polars(Path(path), kind)
        print(json.dumps(out))
        return
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "posts.jsonl"
        t0 = time.perf_counter()
        generate(dump, args.posts, vocab_size=args.vocab)
        size = dump.stat().st_size
        print(f"generated {args.posts} posts ({size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s")
        ws_dir = Path(tmp) / "ws"
        env = dict(os.environ)
        results = {}
        for kind in ("import", "floor", "scan", "read"):
            where = ws_dir if kind != "floor" else Path(tmp) / "floor"
            cmd = [sys.executable, __file__, "--child", kind, str(dump), "--ws", str(where)]
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, env=env, text=True).stdout)
            results[kind] = res
            label = {
                "import": "tuiops meta import",
                "floor": "store writes alone",
                "scan": "polars scan_ndjson",
                "read": "polars read_ndjson",
            }[kind]
            rate = res["posts"] / res["seconds"] if res["seconds"] else 0
            print(
                f"{label:22} {rate:>10,.0f} posts/s  {res['seconds']:7.2f} s  (CPU {res['cpu']:6.2f} s, "
                f"{res['posts'] / max(res['cpu'], 1e-9):>9,.0f} posts per CPU-s)  peak RSS {res['peak_mib']:7.0f} MiB"
            )
        print(
            f"import / read_ndjson time ratio: {results['import']['seconds'] / results['read']['seconds']:.1f}x; "
            f"import / store writes alone: {results['import']['seconds'] / results['floor']['seconds']:.1f}x "
            f"in time, {results['import']['cpu'] / results['floor']['cpu']:.2f}x in CPU per post "
            f"(goal: {GOAL_POSTS_S:,} posts/s; the writes alone reach "
            f"{results['floor']['posts'] / results['floor']['seconds']:,.0f})"
        )
        searches(ws_dir, dump)


if __name__ == "__main__":
    main()
