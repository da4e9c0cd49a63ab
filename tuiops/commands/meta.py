"""Imageboard post metadata: `tuiops meta import|search|tags`."""

from __future__ import annotations

from typing import Any

from tuiops.commands import (
    Choice,
    CommandContext,
    FloatRange,
    IntRange,
    Param,
    PathType,
    Result,
    command,
    json_param,
    quiet_param,
)

_SHOWN_PROBLEMS = 20


def _problems_text(problems: list[str]) -> list[str]:
    lines = problems[:_SHOWN_PROBLEMS]
    if len(problems) > _SHOWN_PROBLEMS:
        lines.append(f"… and {len(problems) - _SHOWN_PROBLEMS} more (all of them with --json)")
    return lines


@command(
    "meta import",
    Param("source", type=PathType(exists=True, dir_okay=False), required=True, metavar="FILE"),
    Param(
        "booru",
        ("--booru",),
        default="danbooru",
        show_default=True,
        help="The booru the posts' ids belong to (the BOORU of the images' keys).",
    ),
    Param(
        "fmt",
        ("--format",),
        type=Choice(("danbooru-jsonl", "csv", "json")),
        help="The file's format (default: from its name; .csv, .json, else JSON lines).",
    ),
    Param(
        "replace",
        ("--replace",),
        is_flag=True,
        help="Remove the booru's stored posts that the file does not hold (default: update and add only).",
    ),
    Param(
        "md5",
        ("--md5",),
        is_flag=True,
        secondary=("--no-md5",),
        default=True,
        show_default=True,
        help="Read the pool's files to compare their md5 with the posts' (--no-md5: sizes only).",
    ),
    quiet_param(),
    json_param(),
)
def meta_import(
    ctx: CommandContext,
    source: str,
    booru: str,
    fmt: str | None,
    replace: bool,
    md5: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Import imageboard post metadata (tags, rating, score, size, md5) keyed by BOORU+FID.

    Formats: Danbooru-style JSON lines (the public metadata dumps and the API: id,
    tag_string, tag_string_general|artist|copyright|character|meta, rating, score,
    fav_count, image_width, image_height, md5, file_ext, file_size, created_at); CSV
    with a header, an id (or key) column and a tags column of space-separated tags
    (gelbooru, yandere); a JSON array of posts; each may be gzipped (.gz). The file is
    streamed and imported in one transaction: an interrupted import, or a file that
    cannot be read to its end, leaves the store as it was. A post already
    stored is updated when the file says otherwise; --replace also removes the booru's
    posts the file does not hold. Lines that are not posts are listed as FILE:LINE and
    left out; an id given twice keeps its later line. Posts whose image is not in the
    pool are kept and counted. Where a scanned file of the post's image exists, its
    size and md5 are compared with the post's (a re-encoded or wrong file is listed and
    recorded in meta_checks).

    \b
    Examples:
      tuiops meta import posts.jsonl.gz --booru danbooru
      tuiops meta import gelbooru.csv --booru gelbooru --no-md5
    """
    from tuiops.ops.meta import import_meta

    with ctx.progress("meta import", quiet=quiet or as_json) as prog:
        s = import_meta(ctx.workspace, source, booru=booru, fmt=fmt, replace=replace, md5=md5, progress=prog)

    def text() -> str:
        lines = [
            f"{s.source}: {s.posts} posts of {s.booru} in {s.elapsed:.1f} s: {s.new} new, "
            f"{s.updated} updated, {s.unchanged} unchanged"
            + (f", {s.removed} removed" if s.replace_used else ""),
            f"  {s.with_image} with an image in the pool, {s.without_image} without (kept)",
            f"  {s.bad_lines} bad lines left out, {s.duplicates} ids given twice (later line kept), "
            f"{s.new_tags} new tags",
            f"  {s.checked_files} files checked: {s.size_mismatches} size and {s.md5_mismatches} md5 mismatches",
        ]
        return "\n".join(lines)

    return Result(s.to_dict(), text, warnings=_problems_text(s.problems))


@command(
    "meta search",
    Param("query", required=True, metavar="QUERY"),
    Param("limit", ("--limit",), type=IntRange(min=0), default=20, show_default=True, help="Posts to show."),
    Param(
        "save_name",
        ("--save",),
        help="Save the search as a selection of this name (ops, review): its images are found anew each time.",
    ),
    Param(
        "replace", ("--replace",), is_flag=True, help="With --save: replace a saved selection of that name."
    ),
    json_param(),
)
def meta_search(
    ctx: CommandContext, query: str, limit: int, save_name: str | None, replace: bool, as_json: bool
) -> Result:
    """Find posts with the booru search syntax: count them, show the first, save their images.

    Space is AND, -tag is NOT, ~a ~b is a OR b, * matches any text (*_hair, long_*);
    metatags: rating:g|s|q|e (or a list: rating:q,e), score:>10, favcount:, width:>=1024,
    height:, id:, tagcount:, filesize: (N, >N, >=N, <N, <=N, A..B), md5:, booru:,
    filetype:, has:image, order:score|score_asc|favcount|tagcount|id|id_desc|random;
    categories: character:saber, artist:, copyright:, general:, meta:. Tags match
    exactly as imported; errors point at the column.

    \b
    Examples:
      tuiops meta search "1girl solo -monochrome rating:s"
      tuiops meta search "holding_sword ~1girl ~1boy score:>10 order:score" --save swords
    """
    from tuiops.ops.meta import count_posts, items_sql, search_posts

    ws = ctx.workspace
    store = ws.store
    total, compiled = count_posts(store, query)
    posts, _ = search_posts(store, query, limit=limit)
    data: dict[str, Any] = {
        "query": query,
        "posts": total,
        "shown": posts.to_dicts(),
        "warnings": compiled.warnings,
    }
    with store.connection() as conn:
        sql, params, _ = items_sql(conn, query)
        keys = [r[0] for r in conn.execute(f"SELECT DISTINCT key FROM items WHERE id IN ({sql})", params)]
    data["images"] = len(keys)
    if save_name:
        from tuiops.ops.select import SelectionSpec, save_selection

        if not keys:
            from tuiops.errors import NotFoundError

            raise NotFoundError(
                f"no image in the pool matches {query!r}; nothing saved",
                hint="check the query with `tuiops meta search` and scan the pool first",
            )
        save_selection(ws, save_name, SelectionSpec(tags=query), replace=replace, note=f"meta search {query}")
        data["saved"] = save_name

    def text() -> str:
        lines = [f"{total} posts, {len(keys)} of their images in the pool"]
        for r in data["shown"]:
            tags = r["tags"] if len(r["tags"]) <= 80 else r["tags"][:77] + "…"
            lines.append(
                f"  {r['booru']} {r['fid']:>9}  {r['rating'] or '-'}  score {r['score'] if r['score'] is not None else '-':>5}  {tags}"
            )
        if save_name:
            lines.append(f"saved as selection {save_name!r} ({len(keys)} images now)")
        return "\n".join(lines)

    return Result(data, text, warnings=compiled.warnings)


@command(
    "meta tags",
    Param("query", required=False, metavar="[QUERY]"),
    Param("limit", ("--limit",), type=IntRange(min=1), default=50, show_default=True, help="Tags to list."),
    json_param(),
)
def meta_tags(ctx: CommandContext, query: str | None, limit: int, as_json: bool) -> Result:
    """The most frequent tags, with their category and post count: of every post, or of the
    posts a booru search QUERY finds.

    \b
    Examples:
      tuiops meta tags
      tuiops meta tags "holding_sword rating:s" --limit 20
    """
    from tuiops.ops.meta import tag_counts

    frame = tag_counts(ctx.workspace.store, query, limit=limit)
    rows = frame.to_dicts()

    def text() -> str:
        if not rows:
            return "(no tags; import post metadata with `tuiops meta import`)"
        width = max(len(r["tag"]) for r in rows)
        return "\n".join(
            f"{r['posts']:>9}  {r['tag']:<{width}}  {r['category'] or ''}".rstrip() for r in rows
        )

    return Result(rows, text)


@command(
    "gather",
    Param("run", ("--run",), help="The detection run whose detections make good and bad samples."),
    Param(
        "label_set",
        ("--set",),
        help="The label set being grown: its images are left out, its labels give the aspect ranges.",
    ),
    Param(
        "good", ("--good",), is_flag=True, help="Gather good samples: every detection confident and in shape."
    ),
    Param(
        "bad",
        ("--bad",),
        is_flag=True,
        help="Gather bad samples: low-probability detections, adjacent-class conflicts, disproportional boxes.",
    ),
    Param(
        "new",
        ("--new",),
        metavar="QUERY",
        help="Gather new samples: images whose tags match this booru search.",
    ),
    Param(
        "missing",
        ("--missing-class",),
        multiple=True,
        help="With --new: only images with no detection of this class (repeatable; default: no detection at all).",
    ),
    Param(
        "quota", ("--quota",), type=IntRange(min=1), default=100, show_default=True, help="Images per kind."
    ),
    Param("per_class", ("--per-class",), type=IntRange(min=1), help="Images per class within a kind."),
    Param(
        "exclude_sets",
        ("--exclude-set",),
        multiple=True,
        help="Leave out this label set's images (repeatable).",
    ),
    Param(
        "conf",
        ("--conf",),
        type=FloatRange(0.0, 1.0),
        default=0.5,
        show_default=True,
        help="Confident: good samples' detections and disproportional bad ones score at least this.",
    ),
    Param(
        "low",
        ("--low",),
        type=FloatRange(0.0, 1.0),
        default=0.4,
        show_default=True,
        help="Low probability: a detection scoring below this (and at least --floor) is a bad sample.",
    ),
    Param(
        "floor",
        ("--floor",),
        type=FloatRange(0.0, 1.0),
        default=0.1,
        show_default=True,
        help="Detections scoring below this are ignored.",
    ),
    Param(
        "conflict_iou",
        ("--conflict-iou",),
        type=FloatRange(0.0, 1.0),
        default=0.5,
        show_default=True,
        help="Two detections of different classes overlapping at least this much conflict.",
    ),
    Param(
        "max_distance",
        ("--max-distance",),
        type=IntRange(-1, 32),
        default=4,
        show_default=True,
        help="Near-duplicates: perceptual hashes within this many bits (-1: no collapsing).",
    ),
    Param("save_name", ("--save",), help="Save the images as a selection of this name (ops copy, review)."),
    Param(
        "replace", ("--replace",), is_flag=True, help="With --save: replace a saved selection of that name."
    ),
    quiet_param(),
    json_param(),
)
def gather_cmd(
    ctx: CommandContext,
    run: str | None,
    label_set: str | None,
    good: bool,
    bad: bool,
    new: str | None,
    missing: tuple[str, ...],
    quota: int,
    per_class: int | None,
    exclude_sets: tuple[str, ...],
    conf: float,
    low: float,
    floor: float,
    conflict_iou: float,
    max_distance: int,
    save_name: str | None,
    replace: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Gather images for the next labelling cycle: good, bad and new samples, each with its reason.

    good: images whose every detection (at or above --floor) scores at least --conf and
    passes the quality checks (not disproportional, not at the border, neither too
    small nor too large). bad: a low-probability detection (--floor ≤ score < --low),
    an adjacent-class conflict (two detections of different classes with IoU ≥
    --conflict-iou; conflict score = IoU × the lower of the two scores), or a confident
    disproportional box. new: images whose post metadata matches the booru search
    --new and that have no detection of --missing-class. Images of --set and
    --exclude-set are left out, near-duplicates collapsed to the best ranked, and each
    kind fills --quota images, drawing the classes in turn (--per-class caps each). The
    reasons are kept with the saved selection (table gather_picks).

    \b
    Examples:
      tuiops gather --run v41 --set master --good --bad --quota 200 --save next
      tuiops gather --run v41 --new "holding_sword" --missing-class hand --save swords
      tuiops ops copy --selection next --to review/next
    """
    from tuiops.ops.meta.gather import gather

    kinds = [k for k, on in (("good", good), ("bad", bad), ("new", bool(new))) if on]
    with ctx.progress("gather", quiet=quiet or as_json) as prog:
        res = gather(
            ctx.workspace,
            run=run,
            label_set=label_set,
            kinds=kinds,
            new=new,
            missing=missing,
            quota=quota,
            per_class=per_class,
            exclude_sets=exclude_sets,
            conf=conf,
            low=low,
            floor=floor,
            conflict_iou=conflict_iou,
            max_distance=max_distance,
            save=save_name,
            replace=replace,
            progress=prog,
        )
    data = res.to_dict()

    def text() -> str:
        per = ", ".join(f"{k} {data['per_kind'].get(k, 0)} of {n}" for k, n in res.candidates.items())
        lines = [
            f"gathered {res.picks.height} images ({per} candidates); {res.near_duplicates} near-duplicates "
            f"collapsed, {res.over_quota} over the quota"
        ]
        for r in data["picks"][:50]:
            lines.append(f"  {r['key']:<24} {r['kind']:<4} {r['class'] or '-':<12} {r['reason']}")
        if len(data["picks"]) > 50:
            lines.append(f"  … {len(data['picks']) - 50} more (all of them with --json)")
        if res.saved:
            lines.append(
                f"saved as selection {res.saved!r}: `tuiops ops copy --selection {res.saved} --to DIR`"
            )
        return "\n".join(lines)

    return Result(data, text, warnings=res.warnings)
