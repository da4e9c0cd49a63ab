"""The plan as one frame of file actions, built step by step and written as the job's journal."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from tuiops.errors import DiskError, UsageError
from tuiops.fsutil import display_path
from tuiops.ops.base import Reporter
from tuiops.ops.fileops.conflicts import apply_policy, find_conflicts, space_check
from tuiops.ops.fileops.labelplan import label_candidates, label_targets
from tuiops.ops.fileops.model import ConvertOptions, PlanResult, esc, esc_path, unesc
from tuiops.ops.fileops.survey import Survey
from tuiops.ops.fileops.templates import field_value, render_template, stem_expr
from tuiops.ops.procs import fault
from tuiops.ops.select import Selection

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace


def build_plan(
    ws: Workspace,
    job_id: int,
    op: str,
    sel: Selection,
    frame: pl.DataFrame,
    to: str | os.PathLike[str] | None,
    layout_parts: list[tuple[str, str | None, int | None]],
    name_parts: list[tuple[str, str | None, int | None]],
    fields: list[str],
    labels: str,
    label_set: str | None,
    policy: str,
    convert: ConvertOptions | None,
    follow_symlinks: bool,
    dry_run: bool,
    rep: Reporter,
    image_data: Callable[[pl.DataFrame], pl.Series] | None = None,
    extra_actions: Callable[[pl.DataFrame, pl.DataFrame, int], pl.DataFrame] | None = None,
    *,
    in_place: bool = False,
    label_layout: str = "beside",
    keep: list[pl.DataFrame] | None = None,
) -> PlanResult:
    """Plan ``op`` on the selected ``frame`` as job ``job_id``: every file action, its conflicts
    decided by the policy, written as the job's journal (see :func:`tuiops.ops.fileops.plan`)."""
    store = ws.store
    res = PlanResult(job_id=job_id, op=op, status="planned", policy=policy, dry_run=dry_run)
    trash_esc, trash_flag = esc_path(ws.trash_dir.resolve() / f"job-{job_id}")
    to_esc, to_flag = esc_path(os.path.abspath(os.fspath(to))) if to is not None else ("", False)
    to_esc = to_esc.rstrip("/") or "/"
    pools = store.execute("SELECT id, name, root FROM pools").fetchall()
    pool_name = {pid: pname for pid, pname, _ in pools}
    pool_roots = {pid: esc_path(root) for pid, _, root in pools}
    f = _sources(frame, op, convert, pool_roots, pool_name, to_flag=to_flag, trash_flag=trash_flag)
    f = _targets(
        f,
        op,
        fields,
        layout_parts,
        name_parts,
        to_esc=to_esc,
        trash_esc=trash_esc,
        in_place=in_place,
        label_layout=label_layout,
    )
    rep.update(0, "looking at the disk", force=True)
    img, lab, survey = _label_files(ws, f, labels, label_set, op, convert, rep)
    rep.check()
    acts, resolved_by = _file_actions(
        img, lab, job_id, op, survey, policy, follow_symlinks, image_data, extra_actions, in_place=in_place
    )
    rep.check()
    acts, allrows = _folders_and_backups(acts, pool_roots, trash_esc=trash_esc, in_place=in_place)
    counts, space = _results(res, sel, img, acts, allrows, resolved_by, policy, op)
    _write_plan(store, res, allrows, job_id, counts, space, rep, keep=keep, dry_run=dry_run)
    return res


def _sources(
    frame: pl.DataFrame,
    op: str,
    convert: ConvertOptions | None,
    pool_roots: dict[int, tuple[str, bool]],
    pool_name: dict[int, str],
    *,
    to_flag: bool,
    trash_flag: bool,
) -> pl.DataFrame:
    """The selected files as sources: path, folder, name, stem, extension, pool."""
    import polars as pl

    f = frame if frame["file_id"].is_sorted() else frame.sort("file_id")
    raw_rel = [None if r is None else esc(r) for r in f["relpath_raw"].to_list()] if f.height else []
    f = f.with_columns(
        pl.coalesce(pl.lit(pl.Series("_rel", raw_rel, dtype=pl.String)), pl.col("relpath")).alias("_rel"),
        pl.col("relpath_raw").is_not_null().alias("_esc"),
        pl.col("pool_id")
        .replace_strict({k: v[0] for k, v in pool_roots.items()}, default=None)
        .alias("_root"),
        pl.col("pool_id")
        .replace_strict({k: v[1] for k, v in pool_roots.items()}, default=False)
        .alias("_root_esc"),
        pl.col("pool_id").replace_strict(pool_name, default=None).alias("pool"),
    )
    f = f.with_columns(pl.col("_rel").str.split("/").list.last().alias("name")).with_columns(
        (pl.col("_root") + "/" + pl.col("_rel")).alias("src"),
        pl.col("_rel").str.strip_suffix(pl.col("name")).str.strip_suffix("/").alias("dir"),
        stem_expr(pl.col("name")).alias("stem"),
        (
            pl.col("_esc") | pl.col("_root_esc") | pl.lit(to_flag) | pl.lit(op == "delete" and trash_flag)
        ).alias("_esc"),
        pl.int_range(1, pl.len() + 1).alias("n"),
    )
    f = f.with_columns(
        pl.col("name").str.strip_prefix(pl.col("stem")).alias("ext"),
        pl.when(pl.col("dir") == "")
        .then(pl.col("_root"))
        .otherwise(pl.col("_root") + "/" + pl.col("dir"))
        .alias("src_dir"),
    )
    if op == "convert":
        assert convert is not None
        f = f.with_columns(pl.lit(convert.ext).alias("ext"))
    return f


def _targets(
    f: pl.DataFrame,
    op: str,
    fields: list[str],
    layout_parts: list[tuple[str, str | None, int | None]],
    name_parts: list[tuple[str, str | None, int | None]],
    *,
    to_esc: str,
    trash_esc: str,
    in_place: bool,
    label_layout: str,
) -> pl.DataFrame:
    """Each source's target (folder, name, stem) by the templates, and its label files' folder."""
    import polars as pl

    field_cols = []
    for fld in fields:
        if fld == "relpath":
            field_cols.append(pl.col("_rel").alias("_f_relpath"))
        elif fld in f.columns:
            field_cols.append(field_value(fld, f.schema[fld]).alias(f"_f_{fld}"))
    f = f.with_columns(field_cols)
    slashy = {"dir", "relpath"}
    name_simple = not any("/" in lit for lit, _, _ in name_parts) and not any(
        fld in slashy for _, fld, _ in name_parts
    )
    if op == "delete":
        f = f.with_columns(
            (
                pl.lit(trash_esc)
                + "/"
                + pl.col("pool")
                + pl.when(pl.col("dir") == "").then(pl.lit("")).otherwise("/" + pl.col("dir"))
            ).alias("dst_dir"),
            pl.col("name").alias("dst_name"),
        )
    elif op == "rename" or in_place:
        f = f.with_columns(pl.col("src_dir").alias("dst_dir"), render_template(name_parts).alias("dst_name"))
    else:
        lay = render_template(layout_parts)
        if any(fld in slashy for _, fld, _ in layout_parts) or any(
            lit.startswith("/") or lit.endswith("/") or "//" in lit for lit, _, _ in layout_parts
        ):
            lay = lay.str.replace_all("/+", "/").str.strip_chars("/")
        base = to_esc.rstrip("/")
        if label_layout == "sibling":
            base = f"{base}/images"
        if layout_parts and any(lit or fld for lit, fld, _ in layout_parts):
            dst_dir = pl.when(lay == "").then(pl.lit(base)).otherwise(pl.lit(base) + "/" + lay)
        else:
            dst_dir = pl.lit(base)
        f = f.with_columns(dst_dir.alias("dst_dir"), render_template(name_parts).alias("dst_name"))
    if not name_simple:
        full = (pl.col("dst_dir") + "/" + pl.col("dst_name")).str.replace_all("/+", "/")
        f = (
            f.with_columns(full.alias("dst"))
            .with_columns(pl.col("dst").str.split("/").list.last().alias("dst_name"))
            .with_columns(
                pl.col("dst").str.strip_suffix(pl.col("dst_name")).str.strip_suffix("/").alias("dst_dir")
            )
        )
    f = f.with_columns(
        (pl.col("dst_dir") + "/" + pl.col("dst_name")).alias("dst"),
        stem_expr(pl.col("dst_name")).alias("dst_stem"),
    )
    if label_layout == "sibling":
        # the same path under TO/labels as the image has under TO/images (a name template
        # with folders in it moves both alike)
        images = to_esc.rstrip("/") + "/images"
        f = f.with_columns(
            (pl.lit(to_esc.rstrip("/") + "/labels") + pl.col("dst_dir").str.strip_prefix(images)).alias(
                "ldst_dir"
            )
        )
    else:
        f = f.with_columns(pl.col("dst_dir").alias("ldst_dir"))
    bad = f.filter((pl.col("dst_name").str.len_bytes() == 0) | pl.col("dst_name").is_in([".", ".."]))
    if bad.height:
        raise UsageError(
            f"the templates give a bad target for {display_path(unesc(bad['src'][0]))}: {bad['dst'][0]!r}",
            hint="a template must give a file name and stay inside the target folder",
        )
    return f


def _label_files(
    ws: Workspace,
    f: pl.DataFrame,
    labels: str,
    label_set: str | None,
    op: str,
    convert: ConvertOptions | None,
    rep: Reporter,
) -> tuple[pl.DataFrame, pl.DataFrame, Survey]:
    """The images as the disk has them, their label-file actions, and the survey that looked."""
    import polars as pl

    img = f.select(
        pl.int_range(pl.len()).alias("g"),
        "file_id",
        "item_id",
        "key",
        "pool_id",
        "_root",
        "src",
        "src_dir",
        "name",
        "stem",
        "dst",
        "dst_dir",
        "ldst_dir",
        "dst_name",
        "dst_stem",
        "size",
        "width",
        "height",
        "img_w",
        "img_h",
        "mode",
        "status",
        "_esc",
    )
    survey = Survey()
    lab = label_candidates(img, labels, op)
    roots = img.select("g", pl.col("_root").alias("root"))
    survey.look_frame(
        pl.concat(
            [
                img.select(pl.col("src_dir").alias("dir"), "name", pl.col("_root").alias("root")),
                lab.join(roots, on="g", how="left").select(
                    pl.col("src_dir").alias("dir"), pl.col("src_name").alias("name"), "root"
                ),
            ]
        )
    )
    kind = survey.frame()
    img = img.join(kind, left_on=["src_dir", "name"], right_on=["_d", "_n"], how="left").sort("g")
    if lab.height:
        lab = (
            lab.join(kind, left_on=["src_dir", "src_name"], right_on=["_d", "_n"], how="left")
            .filter(pl.col("_kind").is_in(["file", "symlink_in"]) | (pl.col("_kind") == "symlink_out"))
            .sort("g", "ord")
        )
    lab = label_targets(ws, img, lab, labels, label_set, op, convert, rep)
    return img, lab, survey


def _file_actions(
    img: pl.DataFrame,
    lab: pl.DataFrame,
    job_id: int,
    op: str,
    survey: Survey,
    policy: str,
    follow_symlinks: bool,
    image_data: Callable[[pl.DataFrame], pl.Series] | None,
    extra_actions: Callable[[pl.DataFrame, pl.DataFrame, int], pl.DataFrame] | None,
    *,
    in_place: bool,
) -> tuple[pl.DataFrame, dict[str, str]]:
    """One frame of every file action, its conflicts decided by the policy (and how each kind was)."""
    import polars as pl

    if extra_actions is not None:
        extra = extra_actions(img, lab, job_id)
        if extra.height:
            if lab.height and "role" in extra.columns:  # an extra label file replaces the plan's at its path
                lab = lab.join(extra.filter(pl.col("role") == "label").select("dst"), on="dst", how="anti")
            lab = pl.concat([lab, extra], how="diagonal_relaxed") if lab.height else extra
    action = {
        "copy": "copy", "move": "move", "rename": "move", "delete": "move", "convert": "convert", "paint": "paint",
    }[op] if not in_place else "reencode"  # fmt: skip
    data = image_data(img) if image_data is not None else pl.lit(None, pl.Binary)
    img_actions = img.select(
        "g",
        pl.lit(0).alias("ord"),
        pl.lit(action).alias("action"),
        pl.lit("image").alias("role"),
        "file_id",
        "item_id",
        "src",
        "src_dir",
        "dst",
        "dst_dir",
        "dst_stem",
        pl.col("dst_name").str.strip_prefix(pl.col("dst_stem")).alias("dst_ext"),
        data.alias("data"),
        "size",
        "_kind",
        "_esc",
        pl.col("status"),
    )
    acts = pl.concat([img_actions, lab], how="diagonal_relaxed").sort("g", "ord")
    acts = acts.with_columns(pl.lit(None, pl.String).alias("conflict"))
    acts = find_conflicts(acts, survey, op, follow_symlinks)
    acts, resolved_by = apply_policy(acts, survey, policy)
    return acts, resolved_by


def _folders_and_backups(
    acts: pl.DataFrame,
    pool_roots: dict[int, tuple[str, bool]],
    *,
    trash_esc: str,
    in_place: bool,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The folders to make first, then every action numbered, with its backup and its state:
    (the file actions, all rows of the plan)."""
    import polars as pl

    live = acts.filter(~pl.col("_skip"))
    dirs = sorted(set(live["dst_dir"].to_list()))
    if live.filter(pl.col("_overwrite")).height:
        dirs.append(trash_esc + "/overwritten")
    if in_place and live.height:
        dirs.append(trash_esc + "/originals")
    needed: list[str] = []
    seen: set[str] = set()
    for d in dirs:
        chain = []
        p = d
        while p and p not in seen and not os.path.isdir(unesc(p)):
            chain.append(p)
            seen.add(p)
            parent = p.rsplit("/", 1)[0]
            if parent == p:
                break
            p = parent
        needed.extend(reversed(chain))
    needed = sorted(dict.fromkeys(needed), key=lambda p: (p.count("/"), p))
    mk = pl.DataFrame(
        {
            "action": ["mkdir"] * len(needed),
            "role": ["dir"] * len(needed),
            "dst": needed,
            "_esc": [any(0xF780 <= ord(c) <= 0xF7FF for c in p) for p in needed],
        },
        schema={"action": pl.String, "role": pl.String, "dst": pl.String, "_esc": pl.Boolean},
    )
    nmk = mk.height
    acts = acts.with_columns((pl.int_range(pl.len()) + nmk).alias("seq"))
    parent_seq = acts.filter(pl.col("ord") == 0).select("g", pl.col("seq").alias("parent"))
    acts = acts.join(parent_seq, on="g", how="left", maintain_order="left").with_columns(
        pl.when(pl.col("ord") == 0).then(None).otherwise(pl.col("parent")).alias("parent")
    )
    acts = acts.with_columns(
        pl.lit(None, pl.String).alias("tmp"),
        pl.when(pl.col("_overwrite"))
        .then(pl.lit(trash_esc + "/overwritten/") + pl.col("seq").cast(pl.String))
        .when(pl.col("action") == "reencode")
        .then(pl.lit(trash_esc + "/originals/") + pl.col("seq").cast(pl.String))
        .otherwise(None)
        .alias("bak"),
        pl.when(pl.col("_skip") | pl.col("_note").is_in(["unchanged", "identical"]).fill_null(False))
        .then(pl.lit("skipped"))
        .otherwise(pl.lit("planned"))
        .alias("state"),
    )
    acts = _dst_pools(acts, pool_roots)
    mk = mk.with_columns(pl.int_range(pl.len()).alias("seq"), pl.lit("planned").alias("state"))
    allrows = pl.concat([mk, acts], how="diagonal_relaxed").sort("seq")
    return acts, allrows


def _results(
    res: PlanResult,
    sel: Selection,
    img: pl.DataFrame,
    acts: pl.DataFrame,
    allrows: pl.DataFrame,
    resolved_by: dict[str, str],
    policy: str,
    op: str,
) -> tuple[dict[str, int], str | None]:
    """Fill ``res`` with the plan's counts, examples and status: (conflicts per kind, space warning)."""
    import polars as pl

    conflicted = acts.filter(pl.col("conflict").is_not_null())
    n_unknown = len(sel.unknown_keys)
    n_nofile = len(sel.keys_without_files)
    res.images = img.height
    res.labels = acts.filter(pl.col("role") != "image").height
    res.actions = allrows.height
    res.by_action = dict(allrows.group_by("action").len().sort("action").iter_rows())
    res.skipped = allrows.filter(pl.col("state") == "skipped").height
    res.to_do = allrows.height - res.skipped
    res.bytes = int(acts.filter(pl.col("state") == "planned")["size"].fill_null(0).sum())
    counts = dict(conflicted.group_by("conflict").len().sort("conflict").iter_rows())
    if n_unknown:
        counts["unknown_key"] = n_unknown
    if n_nofile:
        counts["no_file"] = n_nofile
    res.conflicts = counts
    res.unknown_keys = sel.unknown_keys[:20]
    res.conflict_examples = [
        {
            "conflict": c,
            "src": display_path(unesc(s)) if s else "",
            "dst": display_path(unesc(d)),
            "resolution": resolved_by.get(c, "skip"),
        }
        for c, s, d in conflicted.select("conflict", "src", "dst").head(20).iter_rows()
    ]
    res.conflict_examples += [
        {"conflict": "unknown_key", "src": k, "dst": "", "resolution": "skip"} for k in sel.unknown_keys[:5]
    ]
    res.sample = [
        {"action": a, "src": display_path(unesc(s)) if s else "", "dst": display_path(unesc(d)), "state": st}
        for a, s, d, st in allrows.select("action", "src", "dst", "state").head(20).iter_rows()
    ]
    if counts and policy == "fail":
        res.status = "refused"
    space = space_check(acts.filter(pl.col("state") == "planned"), op)
    if space:
        res.warnings.append(space)
        if policy != "fail" or not counts:
            res.status = "refused"
    return counts, space


def _write_plan(
    store: Store,
    res: PlanResult,
    allrows: pl.DataFrame,
    job_id: int,
    counts: dict[str, int],
    space: str | None,
    rep: Reporter,
    *,
    keep: list[pl.DataFrame] | None,
    dry_run: bool,
) -> None:
    """Write the plan into the journal and the job's result (a plan refused for space raises)."""
    rep.update(0, "writing the plan", force=True)
    fault("plan")
    rows = _to_journal(allrows, job_id)
    result_json = {k: v for k, v in res.to_dict().items() if k not in ("sample",)}
    status = res.status
    error = None
    if status == "refused":
        error = "conflicts: " + ", ".join(f"{n} {k}" for k, n in counts.items()) if counts else space
    with store.bulk() as tx:
        tx.ingest("job_actions", rows)
        if keep is not None and status == "planned" and not dry_run:
            keep.append(rows)
        tx.execute(
            "UPDATE jobs SET status = ?, total = ?, done = 0, result = ?, error = ?, message = ? WHERE id = ?",
            (
                status,
                res.to_do,
                json.dumps(result_json, default=str),
                error,
                "dry run" if dry_run else None,
                job_id,
            ),
        )
    if space and status == "refused" and not dry_run and not counts:
        raise DiskError(
            f"job {job_id} refused, nothing was touched: {space}", hint="free space or choose another --to"
        )


def _dst_pools(acts: pl.DataFrame, pool_roots: dict[int, tuple[str, bool]]) -> pl.DataFrame:
    """Which pool (if any) each image target lands in, and its path inside it."""
    import polars as pl

    acts = acts.with_columns(pl.lit(None, pl.Int64).alias("dst_pool"), pl.lit(None, pl.String).alias("_drel"))
    for pid, (root, _) in sorted(pool_roots.items(), key=lambda kv: len(kv[1][0])):
        prefix = root.rstrip("/") + "/"
        inside = pl.col("role").is_in(["image", "label"]) & pl.col("dst").str.starts_with(prefix)
        acts = acts.with_columns(
            pl.when(inside).then(pl.lit(pid, pl.Int64)).otherwise(pl.col("dst_pool")).alias("dst_pool"),
            pl.when(inside)
            .then(pl.col("dst").str.slice(len(prefix)))
            .otherwise(pl.col("_drel"))
            .alias("_drel"),
        )
    return acts


def _to_journal(rows: pl.DataFrame, job_id: int) -> pl.DataFrame:
    """The ``job_actions`` rows of a plan: strings back to path bytes."""
    import polars as pl

    cols = {
        "parent": pl.Int64,
        "file_id": pl.Int64,
        "item_id": pl.Int64,
        "src": pl.String,
        "tmp": pl.String,
        "bak": pl.String,
        "data": pl.Binary,
        "conflict": pl.String,
        "size": pl.Int64,
        "dst_pool": pl.Int64,
        "_drel": pl.String,
        "_note": pl.String,
        "_esc": pl.Boolean,
    }
    rows = rows.with_columns([pl.lit(None, t).alias(c) for c, t in cols.items() if c not in rows.columns])
    esc_rows = rows["_esc"].fill_null(False)

    def to_bytes(name: str) -> pl.Series:
        s = rows[name]
        plain = s.cast(pl.Binary)
        if not esc_rows.any():
            return plain
        fixed = [
            unesc(v) if (e and v is not None) else None
            for v, e in zip(s.to_list(), esc_rows.to_list(), strict=True)
        ]
        return pl.Series(name, fixed, dtype=pl.Binary).fill_null(plain)

    drel = rows["_drel"]
    if not esc_rows.any():
        # no escaped paths: the relative paths are text as they are (no loop over the rows)
        drel_text = drel.cast(pl.String).alias("dst_rel")
        drel_raw_s = pl.repeat(None, rows.height, dtype=pl.Binary, eager=True).alias("dst_rel_raw")
        return _journal_frame(rows, job_id, to_bytes, drel_text, drel_raw_s)
    drel_raw = (
        [
            (unesc(v) if e and v is not None and any(0xF780 <= ord(c) <= 0xF7FF for c in v) else None)
            for v, e in zip(drel.to_list(), esc_rows.to_list(), strict=True)
        ]
        if esc_rows.any()
        else [None] * rows.height
    )
    drel_raw_s = pl.Series("dst_rel_raw", drel_raw, dtype=pl.Binary)
    drel_text = pl.Series(
        "dst_rel",
        [
            d.decode("utf-8", "backslashreplace") if d is not None else v
            for v, d in zip(drel.to_list(), drel_raw, strict=True)
        ],
        dtype=pl.String,
    )
    return _journal_frame(rows, job_id, to_bytes, drel_text, drel_raw_s)


def _journal_frame(
    rows: pl.DataFrame,
    job_id: int,
    to_bytes: Callable[[str], pl.Series],
    drel_text: pl.Series,
    drel_raw_s: pl.Series,
) -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(
        {
            "job_id": pl.repeat(job_id, rows.height, dtype=pl.Int64, eager=True),
            "seq": rows["seq"].cast(pl.Int64),
            "action": rows["action"],
            "role": rows["role"],
            "parent": rows["parent"].cast(pl.Int64),
            "file_id": rows["file_id"].cast(pl.Int64),
            "item_id": rows["item_id"].cast(pl.Int64),
            "src": to_bytes("src"),
            "dst": to_bytes("dst"),
            "tmp": to_bytes("tmp"),
            "bak": to_bytes("bak"),
            "data": rows["data"],
            "state": rows["state"],
            "conflict": rows["conflict"],
            "size": rows["size"].cast(pl.Int64),
            "dst_pool": rows["dst_pool"].cast(pl.Int64),
            "dst_rel": drel_text,
            "dst_rel_raw": drel_raw_s,
            "error": rows["_note"],
        }
    )
