"""Analysis commands: `tuiops nms`, `quality`, `join`, `similar`, `dupes`."""

from __future__ import annotations

from typing import Any

from tuiops.commands import (
    CommandContext,
    Float,
    FloatRange,
    Int,
    IntRange,
    Param,
    Result,
    command,
    json_param,
    quiet_param,
)
from tuiops.errors import UsageError


def text_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A plain aligned text table of dict rows."""
    if not rows:
        return "(none)"
    cols = columns or list(rows[0])

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


@command(
    "nms",
    Param(
        "runs", ("--run",), multiple=True, help="Detection run to suppress in; repeat to merge several runs."
    ),
    Param("label_set", ("--set",), help="Label set to check for boxes labelled twice (with --dedupe)."),
    Param(
        "dedupe",
        ("--dedupe",),
        is_flag=True,
        help="Flag near-identical labels of --set (the set is not changed).",
    ),
    Param(
        "into",
        ("--into",),
        help="Name of the new run (required with --run); with --set, a cleaned copy of the set.",
    ),
    Param(
        "iou",
        ("--iou",),
        type=FloatRange(0.0, 1.0),
        default=None,
        help="Suppress when IoU is greater than this (default 0.5 for runs, 0.9 for --dedupe).",
    ),
    Param(
        "agnostic",
        ("--agnostic",),
        is_flag=True,
        help="Suppress across classes (default: only within a class).",
    ),
    Param("replace", ("--replace",), is_flag=True, help="Replace an existing run or set named by --into."),
    quiet_param(),
    json_param(),
)
def nms_cmd(
    ctx: CommandContext,
    runs: tuple[str, ...],
    label_set: str | None,
    dedupe: bool,
    into: str | None,
    iou: float | None,
    agnostic: bool,
    replace: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Greedy non-maximum suppression, as torchvision's batched_nms, over whole runs at once.

    With one --run the kept detections become the run --into; with several runs
    their detections are merged first (equal scores prefer the run given first). With
    --set and --dedupe, labels overlapping an earlier label of the same image with
    IoU above the threshold are flagged in label_flags (see the view v_label_flags).

    \b
    Examples:
      tuiops nms --run v41 --into v41-nms --iou 0.6
      tuiops nms --run v41 --run v42 --into v41+v42 --agnostic
      tuiops nms --set master --dedupe --iou 0.9
    """
    ws = ctx.workspace
    if label_set is not None:
        if runs:
            raise UsageError("give either --run or --set, not both")
        if not dedupe:
            raise UsageError("--set checks a label set for duplicates: add --dedupe")
        from tuiops.ops.nms import dedupe_labels

        with ctx.progress("dedupe", quiet=quiet or as_json) as progress:
            res = dedupe_labels(
                ws,
                label_set,
                iou=0.9 if iou is None else iou,
                class_agnostic=agnostic,
                into=into,
                replace=replace,
                progress=progress,
            )
        d = res.to_dict()
        text = (
            f"{res.label_set}: {res.flagged} of {res.labels} labels flagged at IoU > {res.iou}"
            + (f" ({', '.join(f'{k} {v}' for k, v in sorted(res.by_flag.items()))})" if res.by_flag else "")
            + (f"\ncleaned copy written as label set {res.into!r}" if res.into else "")
        )
        if res.examples:
            text += "\n" + text_table(res.examples)
        return Result(d, text)
    if dedupe:
        raise UsageError("--dedupe needs --set")
    if not runs:
        raise UsageError("give --run (one or more) or --set with --dedupe")
    if not into:
        raise UsageError("give --into NAME for the new run")
    from tuiops.ops.nms import merge_runs

    with ctx.progress("nms", quiet=quiet or as_json) as progress:
        result = merge_runs(
            ws,
            list(runs),
            into=into,
            iou=0.5 if iou is None else iou,
            class_agnostic=agnostic,
            replace=replace,
            progress=progress,
        )
    text = (
        f"{result.into}: kept {result.kept} of {result.boxes_in} detections "
        f"({result.suppressed} suppressed at IoU > {result.iou}"
        + (", class-agnostic" if result.class_agnostic else "")
        + ")"
    )
    if len(result.sources) > 1:
        text += "\n" + "\n".join(f"  from {k}: {v}" for k, v in result.by_source.items())
    return Result(result.to_dict(), text)


@command(
    "dupes",
    Param(
        "max_distance",
        ("--max-distance",),
        type=IntRange(0, 32),
        default=4,
        show_default=True,
        help="Largest Hamming distance of the perceptual hashes that counts as a duplicate.",
    ),
    Param("pool", ("--pool",), help="Only this pool (default: every pool)."),
    Param(
        "distinct_keys",
        ("--distinct-keys",),
        is_flag=True,
        help="Only groups spanning two or more image keys (leak check).",
    ),
    Param(
        "limit",
        ("--limit",),
        type=IntRange(min=0),
        default=50,
        show_default=True,
        help="Print at most this many groups (0: all); --json always has all.",
    ),
    quiet_param(),
    json_param(),
)
def dupes_cmd(
    ctx: CommandContext,
    max_distance: int,
    pool: str | None,
    distinct_keys: bool,
    limit: int,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Find near-duplicate images by perceptual hash, reported as groups.

    Pairs are found by splitting the 64-bit hash into chunks and joining on them (no
    comparison of all pairs), verified by popcount, then grouped so that every two files
    of a group are within --max-distance and each file is in one group at most: the hash
    with the most near-duplicates (ties: the file indexed first) is a group's
    representative, listed first, and takes its near-duplicates not yet grouped, nearest
    first, each only if it is within the distance of every file taken before; then the
    next such hash. `distance` is the Hamming distance to the representative. A file
    whose near-duplicates all went to groups it does not fit is counted as left out and
    listed with its nearest group (--json: left_out_files). Hashes made by an older tuiops
    are not compared with today's: they are counted (--json: older_hashes) until a
    `tuiops scan --hash` of their pool makes them again.

    \b
    Examples:
      tuiops dupes --max-distance 4
      tuiops dupes --pool incoming --distinct-keys --json
    """
    from tuiops.ops.similar import find_dupes

    ws = ctx.workspace
    with ctx.progress("dupes", quiet=quiet or as_json) as progress:
        res = find_dupes(
            ws, max_distance=max_distance, pool=pool, distinct_keys=distinct_keys, progress=progress
        )

    def text() -> str:
        lines = [
            f"{res.groups} groups, {res.files_in_groups} files (of {res.files} hashed) within {res.max_distance} bits"
        ]
        summary = res.summary()
        shown = summary if limit == 0 else summary.head(limit)
        for g in shown.iter_rows(named=True):
            lines.append(
                f"\ngroup {g['group']}: {g['size']} files, {g['keys']} keys, max distance {g['max_distance']}"
            )
            lines.append(text_table(g["files"], ["distance", "pool", "relpath", "key", "phash"]))
        if shown.height < summary.height:
            lines.append(f"\n… {summary.height - shown.height} more groups (--limit 0 or --json shows all)")
        if res.left_out.height:
            lines.append(
                f"\n{res.left_out.height} files left out: each is within {res.max_distance} bits of a file in a "
                "group but not of all its files (--json lists them with the nearest group)"
            )
        if res.older_hashes:
            lines.append(
                f"\n{res.older_hashes} files have a hash made by an older method and were not compared: "
                "`tuiops scan --hash` on their pool hashes them again"
            )
        return "\n".join(lines)

    return Result(res.to_dict(), text)


@command(
    "quality",
    Param("run", ("--run",), required=True, help="Detection run to flag."),
    Param(
        "from_set", ("--from-set",), help="Learn each class's aspect range from this label set's quantiles."
    ),
    Param(
        "min_score", ("--min-score",), type=Float(), help="Flag scores below this (default 0.3 or [quality])."
    ),
    Param(
        "min_pct",
        ("--min-pct",),
        type=Float(),
        help="Flag boxes under this % of the image area (default 0.05).",
    ),
    Param(
        "max_pct", ("--max-pct",), type=Float(), help="Flag boxes over this % of the image area (default 90)."
    ),
    Param(
        "border",
        ("--border",),
        type=Float(),
        help="Pixels from an image edge counted as at the border (default 2).",
    ),
    Param(
        "quantiles",
        ("--quantiles",),
        nargs=2,
        type=Float(),
        help="Low and high quantile of the learned aspect range (default 0.01 0.99).",
    ),
    Param(
        "min_support",
        ("--min-support",),
        type=Int(),
        help="Labels a class needs to learn its range (default 20).",
    ),
    Param(
        "min_ratio",
        ("--min-ratio",),
        type=Float(),
        help="Narrowest learned range, as high / low aspect (default 2.0): a narrower one is widened evenly.",
    ),
    quiet_param(),
    json_param(),
)
def quality_cmd(
    ctx: CommandContext,
    run: str,
    from_set: str | None,
    min_score: float | None,
    min_pct: float | None,
    max_pct: float | None,
    border: float | None,
    quantiles: tuple[float, float] | None,
    min_support: int | None,
    min_ratio: float | None,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Flag doubtful detections: disproportional, at the border, low score, too small/large, degenerate.

    Flags are stored per detection in det_quality (view v_det_quality) and counted
    here per class. Aspect ranges come from --from-set and/or [quality.aspect] in
    tuiops.toml; thresholds default to [quality] in tuiops.toml. A learned range is the
    --quantiles of the class's label aspects, widened to at least --min-ratio (high /
    low) so that labels of one fixed shape do not flag every detection; a class with
    fewer than --min-support labels learns none, with a warning.

    \b
    Examples:
      tuiops quality --run v41 --from-set master
      tuiops quality --run v41 --min-score 0.5 --max-pct 80 --json
      tuiops query "SELECT key, class, score FROM v_det_quality WHERE disproportional"
    """
    from tuiops.ops.quality import quality_run

    ws = ctx.workspace
    with ctx.progress("quality", quiet=quiet or as_json) as progress:
        res = quality_run(
            ws,
            run,
            from_set=from_set,
            min_score=min_score,
            min_pct=min_pct,
            max_pct=max_pct,
            border=border,
            quantiles=quantiles or None,
            min_support=min_support,
            min_ratio=min_ratio,
            progress=progress,
        )
    rows = list(res.counts)
    if rows:
        total: dict[str, Any] = {"class": "total"}
        for k in rows[0]:
            if k != "class":
                total[k] = sum(int(r[k]) for r in rows)
        rows.append(total)
    text = f"{res.run}: {res.flagged} of {res.detections} detections flagged\n" + text_table(rows)
    if res.ranges:
        text += "\n\naspect ranges (width / height):\n" + text_table(res.ranges)
    if res.warnings:
        text += "\n\n" + "\n".join(f"warning: {w}" for w in res.warnings)
    return Result(res.to_dict(), text)


@command(
    "join",
    Param("run", ("--run",), required=True, help="Detection run holding the part detections."),
    Param(
        "parts",
        ("--parts",),
        required=True,
        help="Part classes, top to bottom, comma-separated (head,upper_body,lower_body).",
    ),
    Param("into", ("--into",), required=True, help="Name of the join (the table of joined objects)."),
    Param(
        "margin",
        ("--margin",),
        type=Float(),
        default=0.05,
        show_default=True,
        help="Grow each box by this fraction of its height before testing contact.",
    ),
    Param("replace", ("--replace",), is_flag=True, help="Replace an existing join of that name."),
    quiet_param(),
    json_param(),
)
def join_cmd(
    ctx: CommandContext,
    run: str,
    parts: str,
    into: str,
    margin: float,
    replace: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Join part detections of one character (head, upper body, lower body…) into one object.

    Parts that touch or overlap after the margin and are vertically ordered (the upper
    part's centre above the lower's) form connected components; each becomes an object
    with the union box, its members and score = mean of the members' scores (view
    v_joined_objects).

    \b
    Examples:
      tuiops join --run v41 --parts head,upper_body,lower_body --into torso-v41
      tuiops join --run v41 --parts head,upper_body --into heads --margin 0.1 --replace
    """
    from tuiops.ops.join import join_parts

    ws = ctx.workspace
    with ctx.progress("join", quiet=quiet or as_json) as progress:
        res = join_parts(ws, run, parts, into, margin=margin, replace=replace, progress=progress)
    text = (
        f"{res.name}: {res.objects} objects from {res.detections} part detections of {res.run} "
        f"({res.joined} with two or more parts)\n"
        + text_table(
            [{"parts": k, "objects": v} for k, v in sorted(res.by_parts.items(), key=lambda kv: -kv[1])]
        )
    )
    return Result(res.to_dict(), text)


@command(
    "similar",
    Param("key", required=True),
    Param("label_set", ("--set",), help="Compare the layouts of this label set."),
    Param("run", ("--run",), help="Compare the layouts of this detection run."),
    Param(
        "top",
        ("--top",),
        type=IntRange(min=1),
        default=10,
        show_default=True,
        help="How many images to list.",
    ),
    Param(
        "min_score", ("--min-score",), type=Float(), help="With --run, ignore detections scored below this."
    ),
    json_param(),
)
def similar_cmd(
    ctx: CommandContext,
    key: str,
    label_set: str | None,
    run: str | None,
    top: int,
    min_score: float | None,
    as_json: bool,
) -> Result:
    """List the images whose box layout is most like image KEY's.

    distance = class_term + box_term: the normalised L1 distance of the class
    multisets plus the mean distance of every box to the nearest box of its class in
    the other image (centre and size in image units); 0 means the same layout.

    \b
    Examples:
      tuiops similar danbooru_4512345 --set master --top 20
      tuiops similar danbooru_4512345 --run v41 --min-score 0.4 --json
    """
    from tuiops.ops.similar import similar_images

    ws = ctx.workspace
    res = similar_images(ws, key, label_set=label_set, run=run, top=top, min_score=min_score)
    text = f"{res.key} ({res.boxes} boxes) vs {res.candidates} images of {res.source}\n" + text_table(
        res.results.to_dicts()
    )
    return Result(res.to_dict(), text)
