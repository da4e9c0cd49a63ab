"""`tuiops report`: PNG charts and one HTML page of a label set against a detection run."""

from __future__ import annotations

import click

from tuiops.cli import cli, emit, get_workspace, json_option, progress_reporter


@cli.command("report")
@click.option("--set", "set_name", required=True, help="The label set (ground truth).")
@click.option("--run", "run_name", required=True, help="The detection run to report on.")
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(),
    help="Folder to write into: new, empty or an earlier report (which is replaced).",
)
@click.option(
    "--iou",
    type=float,
    default=0.5,
    show_default=True,
    help="IoU threshold of a match, for the confusion matrix, histograms and worst images.",
)
@click.option(
    "--conf",
    type=float,
    default=0.25,
    show_default=True,
    help="Score from which a detection is confident (confusion matrix, histograms, worst images).",
)
@click.option(
    "--top",
    type=int,
    default=24,
    show_default=True,
    help="How many worst images to paint (per split of a stored match with splits, unless --split).",
)
@click.option(
    "--split",
    help="Only this split of the stored match (e.g. val); its images also restrict the COCO numbers.",
)
@click.option("--force", is_flag=True, help="Write into a non-empty folder that holds no earlier report.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@json_option
def report_cmd(
    set_name: str,
    run_name: str,
    to: str,
    iou: float,
    conf: float,
    top: int,
    split: str | None,
    force: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Pictures of a label set against a detection run: PNG charts and one HTML page.

    Writes into --to: ap_per_class.png (AP@[.5:.95] and AP50 per class), pr_curves.png
    (precision-recall at IoU 0.5 per class and the all-class mean, from the same
    accumulation as `tuiops eval`), confusion.png (rows: label class, dup, extra;
    columns: detected class, loc, missed), scores.png (scores of tp vs fp detections),
    iou.png (IoU of matched pairs), worst/NN_KEY.jpg (the worst images with their boxes),
    report.json and index.html (written last; open it in a browser).

    The confusion matrix, histograms and worst images come from the stored match
    SET__RUN when it was made with the same --iou and --conf, else from a fresh match
    computed in memory (not stored). --split needs a stored match with splits (`tuiops
    match --split-from …`). --json prints the paths and the headline numbers.

    \b
    Examples:
      tuiops report --set master --run v41 --to reports/v41
      tuiops report --set master --run v41 --to reports/v41-val --split val --top 48
      tuiops report --set master --run v41 --to reports/v41 --conf 0.4 --json
    """
    from tuiops.ops.report import report

    ws = get_workspace()
    with progress_reporter("report", quiet=quiet or as_json) as progress:
        res = report(
            ws,
            set_name,
            run_name,
            to,
            iou=iou,
            conf=conf,
            top=top,
            split=split,
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
        f"  {len(res.files):,} file(s), {len(res.worst):,} worst image(s)",
        f"  open {res.index}",
    ]
    emit(res.to_dict(), as_json, text="\n".join(lines))
