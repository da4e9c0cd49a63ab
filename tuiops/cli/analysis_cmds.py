"""Analysis commands: `tuiops nms`, `quality`, `join`, `similar`, `dupes` (nms and dupes built from
:mod:`tuiops.commands.analysis`)."""

from __future__ import annotations

from typing import Any

import click

from tuiops.cli import cli, emit, get_workspace, json_option, progress_reporter
from tuiops.cli.build import add
from tuiops.commands.analysis import text_table

add(cli, "nms")


@cli.command("quality")
@click.option("--run", required=True, help="Detection run to flag.")
@click.option("--from-set", help="Learn each class's aspect range from this label set's quantiles.")
@click.option(
    "--min-score", type=float, default=None, help="Flag scores below this (default 0.3 or [quality])."
)
@click.option(
    "--min-pct", type=float, default=None, help="Flag boxes under this % of the image area (default 0.05)."
)
@click.option(
    "--max-pct", type=float, default=None, help="Flag boxes over this % of the image area (default 90)."
)
@click.option(
    "--border",
    type=float,
    default=None,
    help="Pixels from an image edge counted as at the border (default 2).",
)
@click.option(
    "--quantiles",
    nargs=2,
    type=float,
    default=None,
    help="Low and high quantile of the learned aspect range (default 0.01 0.99).",
)
@click.option(
    "--min-support", type=int, default=None, help="Labels a class needs to learn its range (default 20)."
)
@click.option(
    "--min-ratio",
    type=float,
    default=None,
    help="Narrowest learned range, as high / low aspect (default 2.0): a narrower one is widened evenly.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@json_option
def quality_cmd(
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
) -> None:
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

    ws = get_workspace()
    with progress_reporter("quality", quiet=quiet or as_json) as progress:
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
    emit(res.to_dict(), as_json, text)


@cli.command("join")
@click.option("--run", required=True, help="Detection run holding the part detections.")
@click.option(
    "--parts",
    required=True,
    help="Part classes, top to bottom, comma-separated (head,upper_body,lower_body).",
)
@click.option("--into", required=True, help="Name of the join (the table of joined objects).")
@click.option(
    "--margin",
    type=float,
    default=0.05,
    show_default=True,
    help="Grow each box by this fraction of its height before testing contact.",
)
@click.option("--replace", is_flag=True, help="Replace an existing join of that name.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@json_option
def join_cmd(
    run: str, parts: str, into: str, margin: float, replace: bool, quiet: bool, as_json: bool
) -> None:
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

    ws = get_workspace()
    with progress_reporter("join", quiet=quiet or as_json) as progress:
        res = join_parts(ws, run, parts, into, margin=margin, replace=replace, progress=progress)
    text = (
        f"{res.name}: {res.objects} objects from {res.detections} part detections of {res.run} "
        f"({res.joined} with two or more parts)\n"
        + text_table(
            [{"parts": k, "objects": v} for k, v in sorted(res.by_parts.items(), key=lambda kv: -kv[1])]
        )
    )
    emit(res.to_dict(), as_json, text)


@cli.command("similar")
@click.argument("key")
@click.option("--set", "label_set", help="Compare the layouts of this label set.")
@click.option("--run", help="Compare the layouts of this detection run.")
@click.option(
    "--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many images to list."
)
@click.option(
    "--min-score", type=float, default=None, help="With --run, ignore detections scored below this."
)
@json_option
def similar_cmd(
    key: str, label_set: str | None, run: str | None, top: int, min_score: float | None, as_json: bool
) -> None:
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

    ws = get_workspace()
    res = similar_images(ws, key, label_set=label_set, run=run, top=top, min_score=min_score)
    text = f"{res.key} ({res.boxes} boxes) vs {res.candidates} images of {res.source}\n" + text_table(
        res.results.to_dicts()
    )
    emit(res.to_dict(), as_json, text)


add(cli, "dupes")
