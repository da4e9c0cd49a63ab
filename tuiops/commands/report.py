"""`tuiops report`: PNG charts and one HTML page of a label set against a detection run."""

from __future__ import annotations

from tuiops.commands import (
    CommandContext,
    Float,
    Int,
    Param,
    PathType,
    Result,
    command,
    json_param,
    quiet_param,
)


@command(
    "report",
    Param("set_name", ("--set",), required=True, help="The label set (ground truth)."),
    Param("run_name", ("--run",), required=True, help="The detection run to report on."),
    Param(
        "to",
        ("--to",),
        required=True,
        type=PathType(),
        help="Folder to write into: new, empty or an earlier report (which is replaced).",
    ),
    Param(
        "iou",
        ("--iou",),
        type=Float(),
        default=0.5,
        show_default=True,
        help="IoU threshold of a match, for the confusion matrix, histograms and worst images.",
    ),
    Param(
        "conf",
        ("--conf",),
        type=Float(),
        default=0.25,
        show_default=True,
        help="Score from which a detection is confident (confusion matrix, histograms, worst images).",
    ),
    Param(
        "top",
        ("--top",),
        type=Int(),
        default=24,
        show_default=True,
        help="How many worst images to paint (per split of a stored match with splits, unless --split).",
    ),
    Param(
        "split",
        ("--split",),
        help="Only this split of the stored match (e.g. val); its images also restrict the COCO numbers.",
    ),
    Param(
        "compare_with",
        ("--compare",),
        metavar="RUN",
        help="An earlier run to compare with (as `tuiops compare --run RUN --run R`): compare.png and its section.",
    ),
    Param(
        "force",
        ("--force",),
        is_flag=True,
        help="Write into a non-empty folder that holds no earlier report.",
    ),
    quiet_param(),
    json_param(),
)
def report_cmd(
    ctx: CommandContext,
    set_name: str,
    run_name: str,
    to: str,
    iou: float,
    conf: float,
    top: int,
    split: str | None,
    compare_with: str | None,
    force: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Pictures of a label set against a detection run: PNG charts and one HTML page.

    Writes into --to: ap_per_class.png (AP@[.5:.95] and AP50 per class), pr_curves.png
    (precision-recall at IoU 0.5 per class and the all-class mean, from the same
    accumulation as `tuiops eval`), confusion.png (rows: label class, dup, extra;
    columns: detected class, loc, missed), scores.png (scores of tp vs fp detections),
    iou.png (IoU of matched pairs), tide.png (TIDE's error breakdown: the AP50 points each
    error type costs), reliability.png (the calibration of the scores), with --compare RUN
    compare.png (AP per class before and after with bootstrap intervals, and the change
    of TIDE's errors), worst/NN_KEY.jpg (the worst images with their boxes), report.json
    and index.html (written last; open it in a browser).

    The confusion matrix, histograms and worst images come from the stored match
    SET__RUN when it was made with the same --iou and --conf, else from a fresh match
    computed in memory (not stored). --split needs a stored match with splits (`tuiops
    match --split-from …`). --json prints the paths and the headline numbers.

    \b
    Examples:
      tuiops report --set master --run v41 --to reports/v41
      tuiops report --set master --run v41 --to reports/v41-val --split val --top 48
      tuiops report --set master --run v41 --to reports/v41 --conf 0.4 --json
      tuiops report --set master --run v41 --to reports/v41 --compare v40
    """
    from tuiops.ops.report import report

    with ctx.progress("report", quiet=quiet or as_json) as progress:
        res = report(
            ctx.workspace,
            set_name,
            run_name,
            to,
            iou=iou,
            conf=conf,
            top=top,
            split=split,
            compare_with=compare_with,
            force=force,
            progress=progress,
        )
    d = res.data
    s = d.stats
    t = d.totals
    lines = [
        f"report: label set {d.set_name!r} × run {d.run_name!r}" + (f" (split {d.split})" if d.split else ""),
        f"  mAP {s['map']:.3f}  mAP50 {s['map50']:.3f}  mAP75 {s['map75']:.3f}  AR@100 {s['ar100']:.3f}",
        f"  {d.match_source}, iou {d.iou:g}, conf {d.conf:g}: tp {t['tp']:,}  loc {t['loc']:,}  "
        f"cls {t['cls']:,}  dup {t['dup']:,}  fp {t['fp']:,}  fn {t['fn']:,}",
        *(
            [
                f"  TIDE: AP50 {d.tide.ap:.3f}; "
                + ", ".join(f"{k} {100 * v:.2f}" for k, v in d.tide.delta_ap.items())
            ]
            if d.tide is not None
            else []
        ),
        *([f"  vs {d.compare.run_a!r}: mAP {d.compare.deltas['map']:+.3f}"] if d.compare is not None else []),
        f"  {len(res.files):,} file(s), {len(res.worst):,} worst image(s)",
        f"  open {res.index}",
    ]
    return Result(res.to_dict(), "\n".join(lines))
