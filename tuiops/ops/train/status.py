"""What a training run is doing: the list of runs, one run's status, the monitor's plan."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from tuiops.ops.base import pid_alive
from tuiops.ops.train.monitor import ResultsFollower
from tuiops.ops.train.records import ACTIVE, RUN_COLS, get_run, run_from_row, update_run

if TYPE_CHECKING:
    from tuiops.store import Store
    from tuiops.workspace import Workspace


def monitor_plan(store: Store, name: str) -> dict[str, Any]:
    """What the monitor needs of run ``name`` besides its results.csv, as keywords of
    :func:`tuiops.ops.train.monitor.summarize`: epochs, pitstops planned and done, status and
    the epochs its sessions started from."""
    run = get_run(store, name)
    done, warnings = [], []
    for idx, epoch, summary in store.execute(
        "SELECT idx, epoch, summary FROM train_pitstops WHERE train_id = ? ORDER BY idx", (run.id,)
    ):
        done.append(int(epoch))
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            for w in (json.loads(summary or "{}").get("head") or {}).get("warnings") or []:
                warnings.append(f"pitstop {idx}: {str(w).split(' (')[0]}")  # the headline, for one line
    return {
        "epochs_total": run.epochs,
        "pitstops": run.pitstops,
        "pitstops_done": done,
        "status": run.status,
        "starts": run.starts,
        "warnings": warnings,
    }


def list_runs(ws: Workspace, *, store: Store | None = None) -> list[dict[str, Any]]:
    """Every training run: name, status, epoch/epochs, pitstops (planned and done), data, host, updated.

    ``store``: read through this store instead of the workspace's (e.g. a read-only one).
    """
    store = store if store is not None else ws.store
    rows = store.execute(f"SELECT {RUN_COLS} FROM train_runs ORDER BY id").fetchall()
    out = []
    for r in rows:
        run = run_from_row(r)
        done = [
            int(x[0])
            for x in store.execute(
                "SELECT epoch FROM train_pitstops WHERE train_id = ? ORDER BY idx", (run.id,)
            )
        ]
        out.append(
            {
                "name": run.name,
                "status": run.status,
                "epoch": run.epoch,
                "epochs": run.epochs,
                "pitstops": run.pitstops,
                "pitstops_done": done,
                "dataset": run.dataset,
                "data": str(run.data),
                "updated": run.updated,
                "host": run.host,
            }
        )
    return out


def train_status(ws: Workspace, name: str) -> dict[str, Any]:
    """Where a run is: its record, its pitstops with their reports, and its results.csv state."""

    store = ws.store
    run = get_run(store, name)
    status = run.status
    if status in ACTIVE and run.pid is not None and not pid_alive(run.pid):
        status = "interrupted"
        update_run(store, run.id, status=status, pid=None, error="the training process is gone")
    pits = []
    for idx, epoch, report, summary in store.execute(
        "SELECT idx, epoch, report, summary FROM train_pitstops WHERE train_id = ? ORDER BY idx", (run.id,)
    ):
        s = json.loads(summary or "{}")
        body = s.get("body") or {}
        pits.append(
            {
                "idx": idx,
                "epoch": epoch,
                "report": report,
                "run": (s.get("head") or {}).get("run"),
                "totals": {k: v.get("totals") for k, v in (body.get("splits") or {}).items()},
                "worst_lists": s.get("worst_lists"),
                "warnings": (s.get("head") or {}).get("warnings") or [],
            }
        )
    follower = ResultsFollower.for_path(run.results_csv)
    follower.poll()
    state = follower.state(
        epochs_total=run.epochs,
        pitstops=run.pitstops,
        pitstops_done=[p["epoch"] for p in pits],
        status=status,
    )
    nxt = {
        "pitstop": f"look at the report, fix labels, then `tuiops train resume {name}`",
        "paused": f"`tuiops train resume {name}`",
        "interrupted": f"`tuiops train resume {name}` continues from the last checkpoint",
        "failed": f"see {run.log}; then `tuiops train resume {name}`",
        "running": f"`tuiops train watch {name}`",
        "done": f"best weights: {run.save_dir / 'weights' / 'best.pt'}; reprocess with `tuiops detect`",
    }.get(status, "")
    return {
        "name": run.name,
        "status": status,
        "epoch": run.epoch,
        "epochs": run.epochs,
        "pitstops": run.pitstops,
        "pitstops_done": pits,
        "next_pitstop": state.next_pitstop,
        "data": str(run.data),
        "dataset": run.dataset,
        "model": run.model,
        "save_dir": str(run.save_dir),
        "checkpoint": str(run.checkpoint) if run.checkpoint else None,
        "best_weights": str(run.save_dir / "weights" / "best.pt")
        if (run.save_dir / "weights" / "best.pt").is_file()
        else None,
        "log": str(run.log),
        "created": run.created,
        "updated": run.updated,
        "error": run.error,
        "monitor": state.to_dict(),
        "next": nxt,
    }
