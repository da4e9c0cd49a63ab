"""`tuiops train status|watch|report`: where a training run is, its epochs as they come, and its
last pitstop done again."""

from __future__ import annotations

from typing import Any

from tuiops.commands import (
    CommandContext,
    Float,
    FloatRange,
    IntRange,
    Param,
    PathType,
    Result,
    command,
    json_param,
)
from tuiops.commands.training import render_train


def _render_status(d: dict[str, Any]) -> str:
    from tuiops.ops.monitor import format_footer

    lines = [
        f"training {d['name']}: {d['status']}, epoch {d['epoch']}/{d['epochs']}, pitstops {d['pitstops']}",
        f"  data        {d['data']}" + (f" (dataset {d['dataset']})" if d["dataset"] else ""),
        f"  model       {d['model']}",
        f"  folder      {d['save_dir']}",
        f"  checkpoint  {d['checkpoint'] or '-'}",
        f"  best        {d['best_weights'] or '-'}",
        f"  log         {d['log']}",
    ]
    m = d["monitor"]
    best = m.get("best") or {}
    if best:
        lines.append(
            f"  best epoch  {best['epoch']}: mAP50 {best.get('map50', 0):.3f}, mAP50-95 {best.get('map50_95', 0):.3f}"
        )
    for p in d["pitstops_done"]:
        lines.append(
            f"  pitstop {p['idx']}   epoch {p['epoch']}  run {p['run'] or '-'}  report {p['report']}"
        )
        for w in p.get("warnings") or []:
            lines.append(f"    WARNING: {w}")
        for split, t in (p.get("totals") or {}).items():
            if t:
                lines.append(
                    f"    {split:<5} tp {t['tp']}, fp {t['fp']}, fn {t['fn']}, wrong class {t['wrong_class']}"
                )
    if d["error"]:
        lines.append(f"  error       {d['error']}")
    lines.append("  " + format_footer(m))
    if d["next"]:
        lines.append(f"  next: {d['next']}")
    return "\n".join(lines)


@command("train status", Param("run"), json_param())
def train_status_cmd(ctx: CommandContext, run: str | None, as_json: bool) -> Result:
    """Show where RUN is (epoch, pitstops and their reports, best epoch, ETA), or list every run."""
    from tuiops.ops.train import list_runs, train_status

    ws = ctx.workspace
    if run is None:
        rows = list_runs(ws)
        text = "\n".join(
            f"{r['name']:<20} {r['status']:<11} epoch {r['epoch']:>4}/{r['epochs']:<4} "
            f"pitstops {r['pitstops']} done {r['pitstops_done']}  {r['updated'] or '-'}"
            for r in rows
        )
        return Result(rows, text or "(no training runs)")
    d = train_status(ws, run)
    return Result(d, lambda: _render_status(d))


@command(
    "train watch",
    Param("run"),
    Param(
        "follow",
        ("-f", "--follow"),
        is_flag=True,
        help="Keep following while the run trains (Ctrl+C stops watching).",
    ),
    Param(
        "interval",
        ("--interval",),
        type=FloatRange(min=0.2),
        default=2.0,
        show_default=True,
        help="Seconds between polls.",
    ),
    Param(
        "file_",
        ("--file",),
        type=PathType(dir_okay=False),
        help="Follow this results.csv instead of a run's.",
    ),
    Param("host", ("--host",), help="Read --file on this [hosts.NAME] machine over SSH."),
)
def train_watch_cmd(
    ctx: CommandContext, run: str | None, follow: bool, interval: float, file_: str | None, host: str | None
) -> Result:
    """Print RUN's epochs from its results.csv: losses, P, R, mAP50, mAP50-95, lr, time, ETA.

    Copes with a run that was resumed (repeated or restarted epochs), a half-written
    last line, and a results.csv on a remote host (--host with --file).

    \b
    Examples:
      tuiops train watch v1 --follow
      tuiops train watch --host gpu1 --file /data/tuiops/training/v1/results.csv
    """
    import time

    from tuiops.errors import UsageError
    from tuiops.ops.monitor import (
        HEADER,
        ResultsFollower,
        file_reader,
        format_epoch,
        format_footer,
        ssh_reader,
    )

    if host is not None and file_ is None:
        raise UsageError("--host needs --file (the results.csv path on that host)")
    ws = ctx.workspace
    plan: dict[str, Any] = {}
    train_run = None
    if file_ is None:
        if run is None:
            raise UsageError("give a training run, or --file RESULTS.CSV")
        from tuiops.ops.monitor import run_follower
        from tuiops.ops.train import get_run

        train_run = get_run(ws.store, run)
        follower = run_follower(ws, train_run.name)
    elif host is not None:
        follower = ResultsFollower(*ssh_reader(ws, host, file_))
    else:
        follower = ResultsFollower(*file_reader(file_))

    def current_plan() -> dict[str, Any]:
        if train_run is None:
            return {}
        from tuiops.ops.train import monitor_plan

        return monitor_plan(ws.store, train_run.name)

    printed: dict[int, float] = {}
    ctx.echo(HEADER)
    try:
        while True:
            changed = follower.poll()
            plan = current_plan()
            if changed or not printed:
                state = follower.state(**plan)
                best = state.best.get("epoch")
                for row in state.epochs.sort("epoch").iter_rows(named=True):
                    e = row["epoch"]
                    if printed.get(e) == row["time"]:
                        continue
                    if printed and e <= max(printed):
                        ctx.echo(f"{'':>9} ↻ resumed: epoch {e} again")
                        for k in [k for k in printed if k >= e]:
                            del printed[k]
                    printed[e] = row["time"]
                    ctx.echo(
                        format_epoch(
                            row,
                            state.epochs_total,
                            best=(e == best),
                            pitstop=e in (plan.get("pitstops_done") or []),
                        )
                    )
            running = plan.get("status") == "running"
            if not follow or (train_run is not None and not running and not changed):
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    footer = format_footer(follower.state(**plan))
    return Result({"epochs": sorted(printed), "footer": footer}, footer + "\n", raw=True)


@command(
    "train report",
    Param("run", required=True),
    Param("conf", ("--conf",), type=Float(), help="Confidence of the detections (default: the run's)."),
    Param(
        "worst_by",
        ("--worst-by",),
        help="The worst lists hold the images that meet this SQL condition, most errors first, e.g. "
        '"f1 < 0.5" (columns: tp, fp, fn, wrong_class, labels, detections, errors, missed_area, '
        "precision, recall, f1, key). Without --worst-by and --worst-top: the run's own, from `train start`.",
    ),
    Param(
        "worst_top",
        ("--worst-top",),
        type=IntRange(min=1),
        help="The worst lists hold at most this many images (default: 20; with --worst-by: all that meet it).",
    ),
    Param("quiet", ("-q", "--quiet"), is_flag=True, help="No progress output on stderr."),
    json_param(),
)
def train_report_cmd(
    ctx: CommandContext,
    run: str,
    conf: float | None,
    worst_by: str | None,
    worst_top: int | None,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Redo RUN's last pitstop: detect with its best weights, compare, and write the report again."""
    from tuiops.ops.train import get_run, run_pitstop

    ws = ctx.workspace
    r = get_run(ws.store, run)
    opts = dict(r.args.get("_pitstop") or {})
    if conf is not None:
        opts["conf"] = conf
    if worst_by is not None or worst_top is not None:  # else the lists the run was started with
        opts.update(worst_by=worst_by, worst_top=worst_top)
    with ctx.progress("pitstop", quiet=quiet) as on_progress:
        d = run_pitstop(ws, run, progress=on_progress, **opts)
    summary = {
        "name": run,
        "status": r.status,
        "epoch": r.epoch,
        "epochs": r.epochs,
        "seconds": 0.0,
        "started_epoch": r.epoch,
        "save_dir": str(r.save_dir),
        "pitstop": d,
    }
    return Result(d, lambda: render_train(summary))
