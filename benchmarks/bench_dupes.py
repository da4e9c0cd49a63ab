"""`tuiops dupes` at scale: near-duplicate pairs and their groups over many 64-bit hashes.

1. Generates ``--hashes`` hashes: uniformly random ones, plus about 3% in planted clusters
   made by random walks of 0–2 bit flips per step (clusters that chain, as real pools of
   resized and re-encoded copies do), and runs the chunked join (``hash_pairs``) and the
   grouping (``clique_groups``) at ``--max-distance``, printing the time of each phase and
   the peak memory (``ru_maxrss``).
2. Checks every group over the whole run: every two hashes of a group within the
   distance (a popcount of each member against every other, per group), each hash in one
   group at most, no two hashes left out of all groups near each other.
3. Side by side on a sample (``--sample`` hashes, a brute-force numpy popcount of all
   pairs, the peer): the pairs found by the chunked join equal the brute force's, with
   both times. Exit 1 on any mismatch.

    python benchmarks/bench_dupes.py [--hashes 4000000] [--max-distance 4] [--sample 20000] [--quick]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import polars as pl


def planted(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` hashes, about 3% of them in chained clusters of 2–12."""
    n_walk = n * 3 // 100
    starts = rng.integers(0, 2**64, n_walk // 6 + 1, dtype=np.uint64)
    lengths = rng.integers(2, 13, starts.size)
    owner = np.repeat(np.arange(starts.size), lengths)[:n_walk]
    flips = np.zeros(owner.size, dtype=np.uint64)
    for _ in range(2):  # up to two bit flips per step
        bit = rng.integers(0, 64, owner.size).astype(np.uint64)
        on = rng.random(owner.size) < 0.6
        flips ^= np.where(on, np.left_shift(np.uint64(1), bit), np.uint64(0))
    first = np.r_[True, owner[1:] != owner[:-1]]
    flips[first] = 0
    # a walk: cumulative xor of the flips within each cluster, from its start
    walk = np.bitwise_xor.accumulate(flips)
    walk ^= np.repeat(walk[first], np.diff(np.r_[np.flatnonzero(first), owner.size]))
    walk ^= starts[owner]
    rest = rng.integers(0, 2**64, n - n_walk, dtype=np.uint64)
    return np.concatenate([walk, rest])


def brute_pairs(h: np.ndarray, d: int) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for i in range(h.size - 1):
        near = np.flatnonzero(np.bitwise_count(h[i + 1 :] ^ h[i]) <= d)
        out.update((i, i + 1 + int(j)) for j in near)
    return out


def check_groups(h: np.ndarray, grouped: pl.DataFrame, pairs: pl.DataFrame, d: int) -> list[str]:
    bad = []
    if grouped["node"].n_unique() != grouped.height:
        bad.append("a hash in two groups")
    g = grouped.select("node", "rep").with_columns(pl.Series("h", h[grouped["node"].to_numpy()]))
    worst = (
        g.join(g, on="rep", suffix="_b")
        .select("rep", pl.col("h").xor(pl.col("h_b")).bitwise_count_ones().alias("dist"))
        .group_by("rep")
        .agg(pl.col("dist").max())
    )
    over = worst.filter(pl.col("dist") > d)
    if over.height:
        bad.append(f"{over.height} groups with a pair over {d} bits (worst {over['dist'].max()})")
    left = set(pairs["u"].to_list()) | set(pairs["v"].to_list())
    left -= set(grouped["node"].to_list())
    both = pairs.filter(pl.col("u").is_in(list(left)) & pl.col("v").is_in(list(left)))
    if both.height:
        bad.append(f"{both.height} pairs of near hashes both left out")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hashes", type=int, default=4_000_000)
    ap.add_argument("--max-distance", type=int, default=4)
    ap.add_argument("--sample", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="small sizes for the smoke test")
    a = ap.parse_args()
    if a.quick:
        a.hashes, a.sample = 50_000, 3_000
    from tuiops.ops.similar import clique_groups, hash_pairs, plan_chunks

    rng = np.random.default_rng(a.seed)
    h = np.unique(planted(rng, a.hashes))
    nodes = pl.DataFrame(
        {"node": np.arange(h.size, dtype=np.int64), "h": h, "first": np.arange(h.size, dtype=np.int64)},
        schema={"node": pl.Int64, "h": pl.UInt64, "first": pl.Int64},
    )
    d = a.max_distance
    print(f"{h.size:,} distinct hashes, max distance {d}, {plan_chunks(h.size, d)} chunks")
    t0 = time.perf_counter()
    pairs = hash_pairs(nodes, d)
    t1 = time.perf_counter()
    grouped = clique_groups(nodes, pairs, d)
    t2 = time.perf_counter()
    groups = grouped["rep"].n_unique()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pairs     {pairs.height:>12,}  {t1 - t0:8.2f} s")
    print(f"groups    {groups:>12,}  {t2 - t1:8.2f} s  ({grouped.height:,} hashes grouped)")
    print(f"total                   {t2 - t0:8.2f} s  peak memory {peak:,.0f} MiB")
    bad = check_groups(h, grouped, pairs, d)
    # the peer: brute force over a sample
    idx = np.sort(rng.choice(h.size, min(a.sample, h.size), replace=False))
    sub = nodes[idx].with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("node"))
    t3 = time.perf_counter()
    got = set(hash_pairs(sub, d).select("u", "v").iter_rows())
    t4 = time.perf_counter()
    want = brute_pairs(h[idx], d)
    t5 = time.perf_counter()
    print(
        f"sample of {idx.size:,}: chunked join {t4 - t3:.3f} s, brute-force popcount {t5 - t4:.3f} s, "
        f"ratio {(t5 - t4) / max(t4 - t3, 1e-9):.1f}x, {len(want):,} pairs"
    )
    if got != want:
        bad.append(f"sample pairs differ: {len(got - want)} extra, {len(want - got)} missing")
    for b in bad:
        print("MISMATCH", b)
    if not bad:
        print("parity: ok (every group within the distance, sample pairs equal the brute force)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
