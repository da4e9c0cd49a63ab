"""Conflicts found while planning, decided by the policy; the free-space check."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tuiops.fsutil import display_path
from tuiops.ops.fileops.model import CONFLICTS, NAME_CONFLICTS, NAME_MAX, PATH_MAX, RENAME_TRIES, unesc
from tuiops.ops.fileops.survey import Survey, is_writable, nearest_existing

if TYPE_CHECKING:
    import polars as pl


def find_conflicts(acts: pl.DataFrame, survey: Survey, op: str, follow_symlinks: bool) -> pl.DataFrame:
    """Mark each action's conflict (the first that applies)."""
    import polars as pl

    moving = op in ("move", "rename", "delete") or bool(acts.height and (acts["action"] == "reencode").any())
    dst_dirs = acts["dst_dir"].unique().to_list()
    survey.look_frame(
        acts.select(
            pl.col("dst_dir").alias("dir"),
            pl.col("dst").str.strip_prefix(pl.col("dst_dir") + "/").alias("name"),
        )
    )
    kind = survey.frame().rename({"_d": "dst_dir", "_n": "_dn", "_kind": "_dkind"})
    writable = {d: is_writable(unesc(d)) for d in dst_dirs}
    src_dirs = acts.select(pl.col("src_dir").drop_nulls().unique())["src_dir"].to_list() if moving else []
    src_writable = {d: is_writable(unesc(d)) for d in src_dirs}
    acts = acts.with_columns(pl.col("dst").str.strip_prefix(pl.col("dst_dir") + "/").alias("_dn"))
    acts = acts.join(kind, on=["dst_dir", "_dn"], how="left", maintain_order="left")
    sources = acts["src"].drop_nulls() if moving else pl.Series("src", [], dtype=pl.String)
    long_dirs = [
        d for d in dst_dirs if any(len(c.encode("utf-8", "surrogatepass")) > NAME_MAX for c in d.split("/"))
    ]
    long_name = (pl.col("dst").str.len_bytes() - pl.col("dst_dir").str.len_bytes() - 1 > NAME_MAX) | pl.col(
        "dst_dir"
    ).is_in(long_dirs)
    same = pl.col("src").is_not_null() & (pl.col("src") == pl.col("dst"))
    exists = pl.col("_dkind").is_not_null() & ~same.fill_null(False)
    src_ok = pl.col("_kind").is_in(["file", "symlink_in"]) | (
        (pl.col("_kind") == "symlink_out") & pl.lit(follow_symlinks)
    )
    is_file_action = pl.col("action").is_in(["copy", "move", "convert", "paint", "reencode"])
    label_shared = (
        pl.lit(moving)
        & (pl.col("role") == "label")
        & pl.col("src").is_not_null()
        & ~pl.col("src").is_first_distinct()
    )
    conflict = (
        pl.when(same & (pl.col("action") != "reencode"))
        .then(pl.lit("unchanged"))
        .when(is_file_action & pl.col("_kind").is_null() | (pl.col("status") == "missing"))
        .then(pl.lit("source_missing"))
        .when(is_file_action & (pl.col("_kind") == "symlink_out") & ~pl.lit(follow_symlinks))
        .then(pl.lit("symlink_outside"))
        .when(is_file_action & ~src_ok)
        .then(pl.lit("source_missing"))
        .when(pl.col("dst_dir").replace_strict(writable, default=True, return_dtype=pl.Boolean).not_())
        .then(pl.lit("read_only_target"))
        .when(
            pl.lit(moving)
            & pl.col("src").is_not_null()
            & pl.col("src_dir").replace_strict(src_writable, default=True, return_dtype=pl.Boolean).not_()
        )
        .then(pl.lit("read_only_source"))
        .when((pl.col("dst").str.len_bytes() > PATH_MAX) | long_name)
        .then(pl.lit("name_too_long"))
        .when(label_shared)
        .then(pl.lit("shared_label"))
        .when((pl.col("role") == "classes") & exists)
        .then(pl.lit("classes_same"))
        .when(exists & pl.col("dst").is_in(sources.implode()))
        .then(pl.lit("target_is_source"))
        .when(exists)
        .then(pl.lit("target_exists"))
        .when(~pl.col("dst").is_first_distinct())
        .then(pl.lit("duplicate_target"))
        .otherwise(None)
    )
    acts = acts.with_columns(conflict.alias("conflict"))
    same_classes = acts.filter(pl.col("conflict") == "classes_same")
    if same_classes.height:
        keep = []
        for dst, data in same_classes.select("dst", "data").iter_rows():
            try:
                with open(unesc(dst), "rb") as fh:
                    keep.append(fh.read() != data)
            except OSError:
                keep.append(True)
        differ = same_classes.with_columns(pl.Series("_differ", keep)).filter("_differ")["dst"]
        acts = acts.with_columns(
            pl.when(pl.col("conflict") == "classes_same")
            .then(
                pl.when(pl.col("dst").is_in(differ.implode()))
                .then(pl.lit("classes_differ"))
                .otherwise(pl.lit("identical"))
            )
            .otherwise(pl.col("conflict"))
            .alias("conflict")
        )
    return acts.drop("_dn", "_dkind")


def _group_any(g: Any, flag: Any) -> Any:
    """Per row: does any row of its group (``g`` sorted) have ``flag``? (numpy, no window)."""
    import numpy as np

    g = np.asarray(g)
    flag = np.asarray(flag, dtype=np.int64)
    if len(g) == 0:
        return np.zeros(0, dtype=bool)
    starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
    sums = np.add.reduceat(flag, starts)
    sizes = np.diff(np.append(starts, len(g)))
    return np.repeat(sums > 0, sizes)


def apply_policy(acts: pl.DataFrame, survey: Survey, policy: str) -> tuple[pl.DataFrame, dict[str, str]]:
    """Decide every conflict by the policy.

    The conflicts of one member decide for the whole group (an image and its label
    files): ``skip`` skips the group; ``rename`` gives a group whose conflicts are all
    name conflicts a free stem; ``overwrite`` runs a group whose conflicts are all
    ``target_exists``, keeping the old targets in the trash. Other groups are skipped.
    Adds ``_keep`` (run it despite a conflict), ``_overwrite``, ``_skip`` and ``_note``.
    ``acts`` is sorted by group.
    """
    import polars as pl

    resolved = {k: ("fail" if policy == "fail" else "skip") for k in CONFLICTS}
    quiet = pl.col("conflict").is_in(["unchanged", "identical"])
    acts = acts.with_columns(
        pl.when(quiet).then(pl.lit(None, pl.String)).otherwise(pl.col("conflict")).alias("conflict"),
        pl.when(quiet).then(pl.col("conflict")).otherwise(pl.lit(None, pl.String)).alias("_note"),
        pl.lit(False).alias("_keep"),
        pl.lit(False).alias("_overwrite"),
    )
    if policy == "fail":
        return acts.with_columns(pl.col("conflict").is_not_null().alias("_skip")), resolved
    conf = pl.col("conflict")
    g = acts["g"].to_numpy()

    def group_any(expr: pl.Expr) -> pl.Series:
        return pl.Series(_group_any(g, acts.select(expr.fill_null(False)).to_series().to_numpy()))

    has_conf = group_any(conf.is_not_null())
    if policy == "overwrite":
        resolved["target_exists"] = "overwrite"
        resolved["classes_differ"] = "overwrite"
        other = group_any(conf.is_not_null() & ~conf.is_in(["target_exists", "classes_differ"]))
        ok = pl.lit(has_conf & ~other)
        acts = acts.with_columns(
            (ok & conf.is_in(["target_exists", "classes_differ"]).fill_null(False)).alias("_overwrite"),
            ok.alias("_keep"),
        )
    elif policy == "rename":
        for k in NAME_CONFLICTS:
            resolved[k] = "rename"
        other = group_any(conf.is_not_null() & ~conf.is_in(NAME_CONFLICTS))
        ok = pl.lit(has_conf & ~other) & (pl.col("role") != "classes")
        acts = _rename_groups(acts.with_columns(ok.alias("_fix")), survey).drop("_fix")
    group_skip = pl.lit(has_conf) & ~pl.col("_keep")
    acts = acts.with_columns(
        pl.when(group_skip & pl.col("conflict").is_null() & pl.col("_note").is_null())
        .then(pl.lit("skipped with its image"))
        .otherwise(pl.col("_note"))
        .alias("_note"),
        group_skip.alias("_skip"),
    )
    return acts, resolved


def _rename_groups(acts: pl.DataFrame, survey: Survey) -> pl.DataFrame:
    """Give each group marked ``_fix`` a free stem ``STEM_N`` (the image and its labels alike)."""
    import polars as pl

    todo = acts.filter(pl.col("_fix"))
    if todo.height == 0:
        return acts
    taken = set(acts.filter(~pl.col("_fix") & pl.col("conflict").is_null())["dst"].to_list())
    by_g: dict[int, list[tuple[int, str, str, str]]] = {}
    for g, o, d, st, ext in todo.select("g", "ord", "dst_dir", "dst_stem", "dst_ext").iter_rows():
        by_g.setdefault(g, []).append((o, d, st, ext or ""))
    new: list[tuple[int, int, str, str]] = []
    for g, members in by_g.items():
        for n in range(1, RENAME_TRIES + 1):
            cands = []
            for o, d, stem, ext in members:
                suffix = f"_{n}"
                while len(unesc(f"{stem}{suffix}{ext}")) > NAME_MAX and stem:
                    stem = stem[:-1]
                cands.append((o, d, f"{stem}{suffix}", f"{stem}{suffix}{ext}"))
            wanted: dict[str, set[str]] = {}
            for _, d, _, nm in cands:
                wanted.setdefault(d, set()).add(nm)
            survey.look(wanted)
            if all(f"{d}/{nm}" not in taken and survey.kind(d, nm) is None for _, d, _, nm in cands):
                for o, d, st, nm in cands:
                    new.append((g, o, f"{d}/{nm}", st))
                    taken.add(f"{d}/{nm}")
                break
    fixed = pl.DataFrame(
        new, schema={"g": pl.Int64, "ord": pl.Int64, "_new": pl.String, "_stem": pl.String}, orient="row"
    )
    acts = acts.join(fixed, on=["g", "ord"], how="left", maintain_order="left")
    renamed = pl.lit(_group_any(acts["g"].to_numpy(), acts["_new"].is_not_null().to_numpy()))
    return acts.with_columns(
        pl.col("_new").fill_null(pl.col("dst")).alias("dst"),
        pl.col("_stem").fill_null(pl.col("dst_stem")).alias("dst_stem"),
        (pl.col("_keep") | renamed).alias("_keep"),
        pl.when(renamed & pl.col("conflict").is_null())
        .then(pl.lit("renamed"))
        .otherwise(pl.col("_note"))
        .alias("_note"),
    ).drop("_new", "_stem")


def space_check(acts: pl.DataFrame, op: str) -> str | None:
    """A message when the bytes to write exceed the free space of a target file system."""
    import polars as pl

    if op in ("rename", "delete") or acts.height == 0:
        return None
    writes = acts.filter(pl.col("action").is_in(["copy", "convert", "move", "write", "paint", "reencode"]))
    by_dir = writes.group_by("dst_dir").agg(pl.col("size").fill_null(0).sum(), pl.col("src").first())
    need: dict[int, int] = {}
    free: dict[int, tuple[int, str]] = {}
    for d, size, src in by_dir.iter_rows():
        base = nearest_existing(unesc(d))
        try:
            st = os.stat(base)
            vfs = os.statvfs(base)
        except OSError:
            continue
        if op == "move" and src is not None:
            try:
                if os.stat(os.path.dirname(unesc(src))).st_dev == st.st_dev:
                    continue
            except OSError:
                pass
        need[st.st_dev] = need.get(st.st_dev, 0) + int(size)
        free[st.st_dev] = (vfs.f_bavail * vfs.f_frsize, display_path(base))
    for dev, n in need.items():
        avail, where = free[dev]
        if n > avail:
            return f"{n / 1e6:.1f} MB to write but only {avail / 1e6:.1f} MB free on {where}"
    return None
