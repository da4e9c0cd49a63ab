"""`tuiops match`, `tuiops eval` and `tuiops compare`: compare a label set with detection runs."""

from __future__ import annotations

import os
from typing import Any

from tuiops.commands import (
    Choice,
    CommandContext,
    Float,
    FloatRange,
    Int,
    IntRange,
    Param,
    PathType,
    Result,
    command,
    json_param,
    quiet_param,
)

_SPLIT_FILE_HELP = (
    "Images of a split: a text file with one key or file name per line, optionally followed by "
    "its split name; give [SPLIT=]FILE to name the split of lines without one (default train). "
    "Repeatable."
)
_SPLIT_DIR_HELP = (
    "An ultralytics dataset folder (images/train, images/val … or train/images …): each image's "
    "split is the folder it lies in."
)
SPLIT_PARAMS = (
    Param("split_files", ("--split-file",), multiple=True, help=_SPLIT_FILE_HELP),
    Param("split_dir", ("--split-from",), type=PathType(file_okay=False), help=_SPLIT_DIR_HELP),
)
IMAGES_PARAM = Param(
    "images",
    ("--images",),
    type=Choice(("processed", "all")),
    default="processed",
    show_default=True,
    help="Which images of the set: those the run processed, or all (the labels of one it never "
    "processed count as misses). `match` and `eval` take the same choice.",
)


def _read_splits(ws: Any, split_files: tuple[str, ...], split_dir: str | None) -> Any:
    """The split frame (key, split) from the command line, or None."""
    import polars as pl

    from tuiops.ops.match import splits_from_dir, splits_from_file

    frames = []
    for spec in split_files:
        name, path = "train", spec
        head, sep, tail = spec.partition("=")
        if sep and head and not os.path.exists(spec) and head.replace("-", "").replace("_", "").isalnum():
            name, path = head, tail
        frames.append(splits_from_file(ws, path, split=name))
    if split_dir:
        frames.append(splits_from_dir(ws, split_dir))
    return pl.concat(frames) if frames else None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "-" if v is None else str(v)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    cells = [headers, *[[_fmt(v) for v in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  "
        + "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    )


@command(
    "match",
    Param("set_name", ("--set",), required=True, help="The label set (ground truth)."),
    Param("run_name", ("--run",), required=True, help="The detection run to compare with it."),
    Param(
        "iou",
        ("--iou",),
        type=Float(),
        default=0.5,
        show_default=True,
        help="IoU threshold t of a match (tp, cls, dup).",
    ),
    Param(
        "low",
        ("--low",),
        type=Float(),
        default=0.1,
        show_default=True,
        help="Lowest IoU of a localisation error (loc: IoU in [low, t)).",
    ),
    Param(
        "conf",
        ("--conf",),
        type=Float(),
        default=0.25,
        show_default=True,
        help="Score from which a detection is confident (counts as tp/cls/loc/dup/fp).",
    ),
    Param(
        "name", ("--name",), help="Name of the stored match (default SET__RUN); an existing one is replaced."
    ),
    *SPLIT_PARAMS,
    IMAGES_PARAM,
    Param(
        "top",
        ("--top",),
        type=Int(),
        default=10,
        show_default=True,
        help="How many of the worst images to print.",
    ),
    quiet_param(),
    json_param(),
)
def match_cmd(
    ctx: CommandContext,
    set_name: str,
    run_name: str,
    iou: float,
    low: float,
    conf: float,
    name: str | None,
    split_files: tuple[str, ...],
    split_dir: str | None,
    images: str,
    top: int,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Compare a label set with a detection run object by object; store and summarise the result.

    With --images processed (the default) the set's images that the run processed are
    compared; with --images all every image of the set, those the run never processed
    with all their labels fn (as `tuiops eval` takes the same choice). Per image and class, detections
    take labels greedily by score as COCO does (IoU ≥ t). Each object gets a category:

    \b
      tp   label found by a confident detection of its class (IoU ≥ t)
      cls  label found by a confident detection of another class (IoU ≥ t)
      loc  label found by a confident detection of its class with IoU in [low, t)
      dup  second confident detection of an already found object (IoU ≥ t)
      fp   confident detection with no label (a missing label?)
      fn   label no confident detection found (a spurious label?)

    Cost of an object (bigger = worse): 1 − IoU for tp and loc; the score for cls, dup
    and fp; 1 for fn, or 1 − score of a below-conf detection that matched it. Per image:
    precision = tp / confident detections, recall = tp / labels, f1 = 2·tp / (labels +
    confident detections), cost = the sum of its objects' costs. The worst images are
    ORDER BY f1, cost DESC; stored in match_images, match_objects (views
    v_match_images, v_match_objects for `tuiops query`). Splits keep train and val apart.

    \b
    Examples:
      tuiops match --set master --run v41
      tuiops match --set master --run v41 --iou 0.6 --conf 0.3 --split-from datasets/v41
      tuiops query "SELECT * FROM v_match_objects WHERE match='master__v41' AND category='fn' ORDER BY cost DESC LIMIT 20"
    """
    from tuiops.ops.match import match

    ws = ctx.workspace
    splits = _read_splits(ws, split_files, split_dir)
    with ctx.progress("match", quiet=quiet or as_json) as progress:
        res = match(
            ws,
            set_name,
            run_name,
            iou=iou,
            low=low,
            conf=conf,
            name=name,
            splits=splits,
            worst=top,
            images=images,
            progress=progress,
        )

    def text() -> str:
        lines = [
            f"match {res.name!r}: label set {res.set_name!r} × run {res.run_name!r} "
            f"(iou {res.iou:g}, low {res.low:g}, conf {res.conf:g})",
            f"  {res.images:,} image(s) compared (--images {res.images_from}); {res.set_only:,} of the set "
            + (
                "never processed by the run, left out"
                if res.images_from == "processed"
                else "never processed by the run, their labels fn"
            )
            + f"; {res.run_only:,} only in the run",
        ]
        if res.split_overlap:
            lines.append(f"  warning: {res.split_overlap:,} image(s) are in two splits; counted as train")
        cols = [
            "images",
            "labels",
            "dets",
            "tp",
            "loc",
            "cls",
            "dup",
            "fp",
            "fn",
            "precision",
            "recall",
            "f1",
        ]
        rows = [[split, *[c[k] for k in cols]] for split, c in res.splits.items()]
        rows = [
            [("n/a" if v is None else v) for v in r] for r in rows
        ]  # precision with no confident detection
        lines += ["", _table(["split", *cols], rows)]
        if res.worst is not None and res.worst.height:
            lines += ["", "worst images (f1 ascending, then cost descending):"]
            wcols = ["rank", "key", "f1", "cost", "n_labels", "n_dets", "tp", "loc", "cls", "dup", "fp", "fn"]
            wrows = [[r["split"], *[r[k] for k in wcols]] for r in res.worst.iter_rows(named=True)]
            lines.append(_table(["split", *wcols], wrows))
        return "\n".join(lines)

    return Result(res.to_dict(), text)


_COCO_LINES = (
    ("Average Precision", "(AP)", "0.50:0.95", "all", 100),
    ("Average Precision", "(AP)", "0.50", "all", 100),
    ("Average Precision", "(AP)", "0.75", "all", 100),
    ("Average Precision", "(AP)", "0.50:0.95", "small", 100),
    ("Average Precision", "(AP)", "0.50:0.95", "medium", 100),
    ("Average Precision", "(AP)", "0.50:0.95", "large", 100),
    ("Average Recall", "(AR)", "0.50:0.95", "all", 1),
    ("Average Recall", "(AR)", "0.50:0.95", "all", 10),
    ("Average Recall", "(AR)", "0.50:0.95", "all", 100),
    ("Average Recall", "(AR)", "0.50:0.95", "small", 100),
    ("Average Recall", "(AR)", "0.50:0.95", "medium", 100),
    ("Average Recall", "(AR)", "0.50:0.95", "large", 100),
)


@command(
    "eval",
    Param("set_name", ("--set",), required=True, help="The label set (ground truth)."),
    Param("run_name", ("--run",), required=True, help="The detection run to evaluate."),
    *SPLIT_PARAMS,
    Param("only_split", ("--split",), help="Evaluate only the images of this split (e.g. val)."),
    IMAGES_PARAM,
    Param(
        "tide",
        ("--tide",),
        is_flag=True,
        help="Add TIDE's error breakdown: the AP50 points each error type costs (classification, "
        "localisation, both, duplicate, background, missed) and all false positives / negatives.",
    ),
    Param(
        "calibration",
        ("--calibration",),
        is_flag=True,
        help="Add the calibration of the scores: reliability table, ECE and MCE, overall and per class.",
    ),
    Param(
        "bins",
        ("--bins",),
        type=IntRange(min=1),
        default=10,
        show_default=True,
        help="Equal score bins of --calibration.",
    ),
    Param(
        "by",
        ("--by",),
        metavar="SLICING",
        help="Add the summary per slice of images: booru, split, size (longer side < 640, < 1280, "
        'larger), aspect (portrait < 0.8 ≤ square ≤ 1.25 < landscape), "tag:QUERY | QUERY2" (booru '
        "tag searches; an image goes to the first that finds its post) or a SQL expression over the "
        "image's key, booru, fid, width, height. A pitstop's run is sliced by split unless given.",
    ),
    quiet_param(),
    json_param(),
)
def eval_cmd(
    ctx: CommandContext,
    set_name: str,
    run_name: str,
    split_files: tuple[str, ...],
    split_dir: str | None,
    only_split: str | None,
    images: str,
    tide: bool,
    calibration: bool,
    bins: int,
    by: str | None,
    quiet: bool,
    as_json: bool,
) -> Result:
    """COCO mAP of a detection run against a label set, equal to pycocotools' COCOeval (bbox).

    mAP@[.5:.95], AP50, AP75, AP small/medium/large (area in pixels: ≤ 32², 32²–96², ≥ 96²),
    AR@1/10/100, AR small/medium/large and AP per class. The images are the label set's
    that the run processed (--images processed, the default, as `tuiops match` compares)
    or all of the set's (--images all: the labels of an image the run never processed are
    misses); detections on other images are left out (as pycocotools does). A class without labels
    has AP −1 and is left out of the means. --json keys: map, map50, map75, map_small,
    map_medium, map_large, ar1, ar10, ar100, ar_small, ar_medium, ar_large, per_class.

    \b
    Examples:
      tuiops eval --set master --run v41
      tuiops eval --set master --run v41 --split-from datasets/v41 --split val --json
    """
    from tuiops.errors import UsageError
    from tuiops.ops.evaluate import evaluate

    ws = ctx.workspace
    items = None
    splits = _read_splits(ws, split_files, split_dir)
    if only_split is not None:
        if splits is None:
            raise UsageError("--split needs --split-file or --split-from to know the splits")
        from tuiops.ops.labels import lookup_items

        chosen = splits.filter(splits["split"] == only_split)
        if chosen.height == 0:
            known = sorted(set(splits["split"].to_list()))
            raise UsageError(f"no image is in split {only_split!r}", hint=f"splits found: {', '.join(known)}")
        items = lookup_items(ws.store, chosen["key"].unique().to_list())["item_id"].to_numpy()
    elif splits is not None and by != "split":
        raise UsageError(
            "--split-file/--split-from need --split NAME to choose the images to evaluate (or --by split)"
        )
    with ctx.progress("eval", quiet=quiet or as_json) as progress:
        res = evaluate(ws, set_name, run_name, items=items, images=images, progress=progress)
        extra = _analysis(ws, res, items, images, tide, bins if calibration else None, by, splits, progress)

    def text() -> str:
        lines = [
            f"COCO bbox: label set {res.set_name!r} × run {res.run_name!r}"
            + (f" (split {only_split})" if only_split else ""),
            f"  {res.images:,} image(s), {res.labels:,} label(s), {res.dets:,} detection(s)",
        ]
        if res.images_from == "all":
            lines.append(
                f"  images: all of the set's (--images all); {res.images_not_in_run:,} never processed by the run, "
                "their labels count as misses"
            )
        else:
            lines.append(
                f"  images: the set's that the run processed (--images processed); "
                f"{res.images_not_in_run:,} never processed, left out"
            )
        if res.dets_outside_set:
            lines.append(f"  {res.dets_outside_set:,} detection(s) on images outside the set are left out")
        for (title, kind, iou, area, max_dets), value in zip(_COCO_LINES, res.stats.values(), strict=True):
            lines.append(
                f" {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6s} | maxDets={max_dets:>3d} ] = {value:0.3f}"
            )
        lines.append("AP@[.5:.95] per class:")
        width = max((len(k) for k in res.per_class), default=0)
        for cls, ap in res.per_class.items():
            lines.append(f"  {cls:<{width}}  {ap:0.3f}" if ap >= 0 else f"  {cls:<{width}}  -  (no labels)")
        return "\n".join(lines + _analysis_lines(extra, res.stats["map"]))

    return Result({**res.to_dict(), **extra}, text)


def _analysis(
    ws: Any,
    res: Any,
    items: Any,
    images: str,
    tide: bool,
    bins: int | None,
    by: str | None,
    splits: Any,
    progress: Any,
) -> dict[str, Any]:
    """`eval`'s extra answers (TIDE, calibration, slices) as a dict; empty when none is asked or due."""
    import polars as pl

    from tuiops.ops.analysis import analyse

    split_items = None
    if splits is not None:
        from tuiops.ops.labels import lookup_items

        found = lookup_items(ws.store, splits["key"].unique().to_list())
        split_items = splits.join(found.select("key", "item_id"), on="key").select(
            pl.col("item_id").cast(pl.Int64), "split"
        )
    return analyse(
        ws,
        res.set_name,
        res.run_name,
        items=items,
        images=images,
        tide=tide,
        bins=bins,
        by=by,
        splits=split_items,
        progress=progress,
    ).to_dict()


def _analysis_lines(extra: dict[str, Any], coco_map: float) -> list[str]:
    from tuiops.commands.analysis_text import calibration_lines, slice_lines, tide_lines

    lines: list[str] = []
    if "tide" in extra:
        lines += ["", *tide_lines(extra["tide"], coco_map)]
    if "calibration" in extra:
        lines += ["", *calibration_lines(extra["calibration"])]
    if "slices" in extra:
        lines += ["", *slice_lines(extra["by"], extra["slices"])]
    return lines


@command(
    "compare",
    Param("set_name", ("--set",), required=True, help="The label set (ground truth)."),
    Param(
        "runs",
        ("--run",),
        multiple=True,
        required=True,
        help="The two detection runs: --run A (before) --run B (after).",
    ),
    *SPLIT_PARAMS,
    Param("only_split", ("--split",), help="Compare only on the images of this split (e.g. val)."),
    IMAGES_PARAM,
    Param(
        "samples",
        ("--samples",),
        type=IntRange(min=0),
        default=200,
        show_default=True,
        help="Bootstrap resamplings of the images for the confidence intervals (0: none).",
    ),
    Param("seed", ("--seed",), type=Int(), default=0, show_default=True, help="Seed of the bootstrap."),
    Param(
        "confidence",
        ("--confidence",),
        type=FloatRange(0.0, 1.0, min_open=True, max_open=True),
        default=0.95,
        show_default=True,
        help="Confidence level of the intervals.",
    ),
    Param(
        "conf",
        ("--conf",),
        type=Float(),
        default=0.25,
        show_default=True,
        help="Score from which a detection counts in the per-image match (as `tuiops match --conf`).",
    ),
    Param(
        "top",
        ("--top",),
        type=IntRange(min=0),
        default=20,
        show_default=True,
        help="How many of the images whose match changed most to list.",
    ),
    quiet_param(),
    json_param(),
)
def compare_cmd(
    ctx: CommandContext,
    set_name: str,
    runs: tuple[str, ...],
    split_files: tuple[str, ...],
    split_dir: str | None,
    only_split: str | None,
    images: str,
    samples: int,
    seed: int,
    confidence: float,
    conf: float,
    top: int,
    quiet: bool,
    as_json: bool,
) -> Result:
    """What got better and what got worse from run A to run B on one label set.

    Both runs are evaluated on the same images (those of the set that both processed,
    with --images processed). Prints the COCO numbers of each and their difference with a
    bootstrap confidence interval over images (seeded: --samples, --seed), the AP of each
    class before and after (what got worse first), the change of TIDE's error breakdown,
    and the images whose match changed most (per-image F1 and cost as `tuiops match`
    computes them). The numbers and their differences equal hotcoco's `compare` (the
    intervals come from tuiops' own seeded resampling). --json keys: set, run_a, run_b,
    images, stats_a, stats_b, deltas, ci, per_class, tide_a, tide_b, tide_deltas,
    changed_images.

    \b
    Examples:
      tuiops compare --set master --run v40 --run v41
      tuiops compare --set master --run v40 --run v41 --split-from datasets/v41 --split val --json
    """
    from tuiops.commands.analysis_text import compare_text
    from tuiops.errors import UsageError
    from tuiops.ops.analysis import compare_runs

    if len(runs) != 2:
        raise UsageError(f"compare takes two runs, got {len(runs)}", hint="give --run A --run B")
    ws = ctx.workspace
    items = _split_items(ws, split_files, split_dir, only_split)
    with ctx.progress("compare", quiet=quiet or as_json) as progress:
        res = compare_runs(
            ws,
            set_name,
            runs[0],
            runs[1],
            items=items,
            images=images,
            samples=samples,
            seed=seed,
            confidence=confidence,
            conf=conf,
            top=top,
            progress=progress,
        )
    data = res.to_dict()
    return Result(data, lambda: compare_text(data))


def _split_items(ws: Any, split_files: tuple[str, ...], split_dir: str | None, only_split: str | None) -> Any:
    """The item ids of split ``only_split`` (None: every image)."""
    from tuiops.errors import UsageError

    splits = _read_splits(ws, split_files, split_dir)
    if only_split is None:
        if splits is not None:
            raise UsageError("--split-file/--split-from need --split NAME to choose the images")
        return None
    if splits is None:
        raise UsageError("--split needs --split-file or --split-from to know the splits")
    from tuiops.ops.labels import lookup_items

    chosen = splits.filter(splits["split"] == only_split)
    if chosen.height == 0:
        known = sorted(set(splits["split"].to_list()))
        raise UsageError(f"no image is in split {only_split!r}", hint=f"splits found: {', '.join(known)}")
    return lookup_items(ws.store, chosen["key"].unique().to_list())["item_id"].to_numpy()
