"""`tuiops dataset`, `tuiops train` (with pitstops, resume, status, watch, report) and `tuiops detect`."""

from __future__ import annotations

from typing import Any

import click

from tuiops.cli import TuiopsGroup, cli, emit, get_workspace, json_option, progress_reporter
from tuiops.cli.build import add
from tuiops.commands.training import render_train


# -- dataset -----------------------------------------------------------------------------------------
@cli.group("dataset", cls=TuiopsGroup)
def dataset_group() -> None:
    """Build ultralytics datasets from label sets, with a split that stays put."""


add(dataset_group, "dataset build")
add(dataset_group, "dataset list")


# -- train -------------------------------------------------------------------------------------------
class TrainGroup(TuiopsGroup):
    """`tuiops train DATA …` starts a run; `tuiops train resume|status|watch|report RUN` act on one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


@cli.group("train", cls=TrainGroup)
def train_group() -> None:
    """Train YOLO with pitstops, resume after fixing labels, and follow a run.

    `tuiops train DATA …` is `tuiops train start DATA …`.

    \b
    The improvement cycle:
      tuiops dataset build --set GT --to datasets/gt
      tuiops train datasets/gt --model yolov8n.yaml --epochs 100 --pitstops 0.4,0.7 --name v1
      tuiops train status v1          # read the pitstop report, fix labels in the store
      tuiops train resume v1 --exclude @training/v1/tuiops/pitstop-1-worst-train.txt
      tuiops detect --weights training/v1/weights/best.pt --run v1-pool
    """


add(train_group, "train start")
add(train_group, "train resume")


@train_group.command("status")
@click.argument("run", required=False)
@json_option
def train_status_cmd(run: str | None, as_json: bool) -> None:
    """Show where RUN is (epoch, pitstops and their reports, best epoch, ETA), or list every run."""
    from tuiops.ops.monitor import format_footer
    from tuiops.ops.train import list_runs, train_status

    ws = get_workspace()
    if run is None:
        rows = list_runs(ws)
        text = "\n".join(
            f"{r['name']:<20} {r['status']:<11} epoch {r['epoch']:>4}/{r['epochs']:<4} "
            f"pitstops {r['pitstops']} done {r['pitstops_done']}  {r['updated'] or '-'}"
            for r in rows
        )
        emit(rows, as_json, text=text or "(no training runs)")
        return
    d = train_status(ws, run)
    if as_json:
        emit(d, True)
        return
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
    click.echo("\n".join(lines))


@train_group.command("watch")
@click.argument("run", required=False)
@click.option(
    "-f", "--follow", is_flag=True, help="Keep following while the run trains (Ctrl+C stops watching)."
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=2.0,
    show_default=True,
    help="Seconds between polls.",
)
@click.option(
    "--file", "file_", type=click.Path(dir_okay=False), help="Follow this results.csv instead of a run's."
)
@click.option("--host", help="Read --file on this [hosts.NAME] machine over SSH.")
def train_watch_cmd(
    run: str | None, follow: bool, interval: float, file_: str | None, host: str | None
) -> None:
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
    ws = get_workspace()
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
    click.echo(HEADER)
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
                        click.echo(f"{'':>9} ↻ resumed: epoch {e} again")
                        for k in [k for k in printed if k >= e]:
                            del printed[k]
                    printed[e] = row["time"]
                    click.echo(
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
    click.echo(format_footer(follower.state(**plan)))


@train_group.command("report")
@click.argument("run")
@click.option("--conf", type=float, default=None, help="Confidence of the detections (default: the run's).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output on stderr.")
@json_option
def train_report_cmd(run: str, conf: float | None, quiet: bool, as_json: bool) -> None:
    """Redo RUN's last pitstop: detect with its best weights, compare, and write the report again."""
    from tuiops.ops.train import get_run, run_pitstop

    ws = get_workspace()
    r = get_run(ws.store, run)
    opts = dict(r.args.get("_pitstop") or {})
    if conf is not None:
        opts["conf"] = conf
    with progress_reporter("pitstop", quiet=quiet) as on_progress:
        d = run_pitstop(ws, run, progress=on_progress, **opts)
    emit(
        d,
        as_json,
        text=None
        if as_json
        else render_train(
            {
                "name": run,
                "status": r.status,
                "epoch": r.epoch,
                "epochs": r.epochs,
                "seconds": 0.0,
                "started_epoch": r.epoch,
                "save_dir": str(r.save_dir),
                "pitstop": d,
            }
        ),
    )


# -- detect ------------------------------------------------------------------------------------------
add(cli, "detect")
