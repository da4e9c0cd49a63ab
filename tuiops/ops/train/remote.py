"""Training on a remote host over SSH: the same run, its work done on a ``[hosts.NAME]`` machine.

``tuiops train DATA --on HOST`` and ``tuiops train resume RUN`` (for a run started with
``--on``) do, in order:

1. probe the host: its Python (``python = "…"`` under ``[hosts.NAME]`` in tuiops.toml,
   default ``python3``) must import tuiops and ultralytics; a clear error says what is
   missing otherwise;
2. make the host's training workspace (``HOME/tuiops-train/ws``, the same class map)
   and upload the dataset folder (``HOME/tuiops-train/datasets/RUN/``; files are sent
   only when their size changed, so a resume after label fixes sends the fixed label
   files), with a ``data.yaml`` whose paths are relative to that folder;
3. run ``tuiops train`` (or ``train resume``) there, in the host's workspace, while the
   host's ``results.csv`` is read over SFTP for progress; a cancel (Ctrl+C, ``jobs
   cancel``, the jobs pane) is passed on as SIGINT, so the host stops within its epoch
   and keeps a resumable checkpoint;
4. fetch ``weights/``, ``results.csv`` and ``args.yaml`` back into the local run folder
   and record the run (its host, epoch, status) in the local store; at a pitstop the
   pitstop's work (detection with the best weights, comparison with the labels, report)
   is done here, where the store and the labels are.

The run record keeps the remote paths (``args._remote``) so that ``tuiops train watch``
and the monitor follow the host's ``results.csv`` over SSH while it trains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import posixpath
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import Cancelled, ExternalToolError, RemoteError, TuiopsError, UsageError
from tuiops.ops.base import CancelToken, ProgressEvent, ProgressFn, Reporter, job
from tuiops.ops.train.monitor import summarize
from tuiops.ops.train.pitstop import run_pitstop
from tuiops.ops.train.records import TRAIN_DIR, TrainResult, TrainRun, get_run, record_session, update_run

if TYPE_CHECKING:
    from tuiops.remote.hosts import Hosts
    from tuiops.store import Store
    from tuiops.workspace import Workspace

#: The host's folder for tuiops training, inside its home.
REMOTE_ROOT = "tuiops-train"
#: Seconds between reads of the host's results.csv while it trains.
POLL_S = 2.0
_CLI = "from tuiops.cli import main; main()"


def host_python(ws: Workspace, host: str) -> str:
    """The Python to run tuiops with on ``host`` (``python`` under ``[hosts.NAME]``, else python3)."""
    cfg = ws.config.hosts.get(host)
    value = (cfg.extra.get("python") if cfg is not None else None) or "python3"
    return str(value)


def probe_host(ws: Workspace, host: str) -> dict[str, str]:
    """Check that ``host`` can train: its Python imports tuiops and ultralytics.

    Returns the versions; ExternalToolError naming what is missing otherwise.
    """
    from tuiops.ops.remote import open_hosts
    from tuiops.remote import commands, run_sync

    hosts = open_hosts(ws)
    hosts.get(host)
    py = host_python(ws, host)
    script = (
        "import sys, importlib.util as u\n"
        "missing = [m for m in ('tuiops', 'ultralytics') if u.find_spec(m) is None]\n"
        "print('missing=' + ','.join(missing))\n"
        "print('python=' + sys.version.split()[0])\n"
        "if not missing:\n"
        "    import tuiops, importlib.metadata as md\n"
        "    print('tuiops=' + tuiops.__version__)\n"
        "    print('ultralytics=' + md.version('ultralytics'))\n"
    )
    res = run_sync(commands.run(hosts, host, [py, "-c", script], timeout=120))
    fix = (
        f'install them there (pip install tuiops ultralytics), or set python = "/path/to/python" '
        f"under [hosts.{host}] in tuiops.toml"
    )
    if res.rc != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or [f"exit code {res.rc}"]
        raise ExternalToolError(
            f"host {host} cannot run {py!r}: {tail[0][:300]}",
            hint=fix,
        )
    info = dict(ln.split("=", 1) for ln in res.stdout.splitlines() if "=" in ln)
    missing = [m for m in info.get("missing", "").split(",") if m]
    if missing:
        raise ExternalToolError(
            f"host {host}: {py} (Python {info.get('python', '?')}) has no {' and no '.join(missing)}",
            hint=fix,
        )
    return {k: v for k, v in info.items() if k != "missing"}


# -- the remote side ----------------------------------------------------------------------------
def _remote_layout(name: str) -> dict[str, str]:
    """Paths on the host, relative to its home."""
    ws_dir = posixpath.join(REMOTE_ROOT, "ws")
    return {
        "ws": ws_dir,
        "datasets": posixpath.join(REMOTE_ROOT, "datasets", name),
        "save_dir": posixpath.join(ws_dir, "training", name),
        "pidfile": posixpath.join(REMOTE_ROOT, f"{name}.pid"),
    }


async def _home(hosts: Hosts, host: str) -> str:
    from tuiops.remote.paths import resolve_home

    conn = await hosts.connect(host)
    try:
        async with await conn.sftp() as sftp:
            home = await resolve_home(sftp, hosts.get(host))
    finally:
        await conn.close()
    return home


def _prepare_host(
    ws: Workspace,
    run_name: str,
    host: str,
    data_yaml: Path,
    *,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> dict[str, str]:
    """Make the host's workspace and upload the dataset; returns the remote paths (absolute)."""
    import yaml

    from tuiops.ops.remote import open_hosts, put_files
    from tuiops.remote import commands, run_sync

    hosts = open_hosts(ws)
    home = run_sync(_home(hosts, host), cancel)
    rel = _remote_layout(run_name)
    absp = {k: posixpath.join(home, v) for k, v in rel.items()}
    py = host_python(ws, host)
    make_ws = (
        "import sys, json\n"
        "from tuiops.workspace import Workspace\n"
        "Workspace.init(sys.argv[1], classes=json.loads(sys.argv[2]), exist_ok=True).close()\n"
    )
    res = run_sync(
        commands.run(hosts, host, [py, "-c", make_ws, absp["ws"], json.dumps(list(ws.classes))], timeout=120),
        cancel,
    )
    if res.rc != 0:
        raise RemoteError(
            f"cannot make the training workspace {absp['ws']} on {host}: "
            f"{(res.stderr or res.stdout).strip()[-300:]}",
            hint=f"check the host's home with `tuiops hosts check {host}`",
        )
    root = data_yaml.parent
    put_files(ws, host, [root], absp["datasets"], existing="overwrite", progress=progress, cancel=cancel)
    try:
        doc = yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read {data_yaml}: {exc}") from exc
    if isinstance(doc, dict):
        doc.pop("path", None)  # ultralytics then takes the yaml's own folder
    with tempfile.TemporaryDirectory(prefix="tuiops-remote-") as tmp:
        local = Path(tmp) / "data.yaml"
        local.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
        remote_root = posixpath.join(absp["datasets"], root.name)
        put_files(ws, host, [local], remote_root, existing="overwrite", verify="sha256", cancel=cancel)
    absp["data"] = posixpath.join(remote_root, "data.yaml")
    absp["results"] = posixpath.join(absp["save_dir"], "results.csv")
    absp["python"] = py
    absp["home"] = home
    return absp


async def _train_there(
    hosts: Hosts,
    host: str,
    argv: list[str],
    remote: Mapping[str, str],
    *,
    epochs: int,
    reporter: Reporter,
    cancel: CancelToken | None,
    starts: Sequence[int],
) -> Any:
    """Run the training command on the host, reading its results.csv for progress meanwhile;
    a cancel is sent on as SIGINT to the training process."""
    import asyncssh

    from tuiops.remote.commands import run_on

    wrapped = ["sh", "-c", 'echo $$ > "$1"; shift; exec "$@"', "sh", remote["pidfile"], *argv]
    conn = await hosts.connect(host)
    try:
        task = asyncio.ensure_future(run_on(conn, wrapped, cwd=remote["home"]))
        signalled = False
        last = -1
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_S)
            if done:
                return task.result()
            if cancel is not None and cancel.cancelled and not signalled:
                signalled = True
                await conn.conn.run(
                    f'kill -INT "$(cat {_sh_quote(remote["pidfile"])})" 2>/dev/null', check=False, timeout=60
                )
                reporter.update(reporter.done, "stopping within the current epoch on the host", force=True)
            with contextlib.suppress(asyncssh.Error, OSError):
                async with conn.conn.start_sftp_client() as sftp, sftp.open(remote["results"], "rb") as fh:
                    data = await fh.read()
                text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)
                state = summarize(text, epochs_total=epochs, starts=starts)
                if state.epoch != last:
                    last = state.epoch
                    m = state.last.get("map50_95")
                    msg = f"epoch {state.epoch}/{epochs} on {host}" + (
                        f" mAP50-95 {m:.3f}" if isinstance(m, float) else ""
                    )
                    reporter.update(state.epoch, msg, force=True)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await conn.close()


def _sh_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


async def _existing(hosts: Hosts, host: str, paths: Sequence[str]) -> list[str]:
    import asyncssh

    conn = await hosts.connect(host)
    try:
        out: list[str] = []
        async with await conn.sftp() as sftp:
            for p in paths:
                with contextlib.suppress(asyncssh.SFTPError):
                    await sftp.stat(p)
                    out.append(p)
    finally:
        await conn.close()
    return out


def fetch_results(ws: Workspace, run: TrainRun, *, cancel: CancelToken | None = None) -> list[str]:
    """Copy a remote run's weights, results.csv and args.yaml into its local folder; returns what came."""
    from tuiops.ops.remote import get_files, open_hosts
    from tuiops.remote import run_sync

    remote = run.args.get("_remote") or {}
    if not run.host or not remote:
        raise UsageError(f"training run {run.name!r} does not run on a remote host")
    hosts = open_hosts(ws)
    save = remote["save_dir"]
    wanted = [posixpath.join(save, x) for x in ("weights", "results.csv", "args.yaml")]
    there = run_sync(_existing(hosts, run.host, wanted), cancel)
    if there:
        run.save_dir.mkdir(parents=True, exist_ok=True)
        get_files(ws, run.host, there, run.save_dir, existing="overwrite", cancel=cancel)
    return there


# -- train / resume -----------------------------------------------------------------------------
def _host_outcome(store: Store, run: TrainRun, host: str, res: Any) -> dict[str, Any]:
    """The JSON result of the host's ``tuiops train``; a pause, an interruption or a failure is
    recorded on the run and raised."""
    out: dict[str, Any] = {}
    if res.rc == 0:
        with contextlib.suppress(ValueError):
            out = json.loads(res.stdout)
    if res.rc == 130 or out.get("status") is None:
        m = re.search(r"paused after epoch (\d+)", res.stderr)
        if res.rc == 130 and m:
            update_run(store, run.id, status="paused", pid=None, epoch=int(m.group(1)))
            raise Cancelled(
                f"training {run.name!r} on {host} paused after epoch {m.group(1)}",
                hint=f"`tuiops train resume {run.name}` continues from there (on {host})",
            )
        if res.rc == 130:
            update_run(store, run.id, status="interrupted", pid=None, error="interrupted on the host")
            raise Cancelled(
                f"training {run.name!r} on {host} was interrupted before it trained",
                hint=f"`tuiops train resume {run.name}` continues from the last checkpoint (on {host})",
            )
        err = [ln for ln in res.stderr.splitlines() if ln.strip()]
        detail = next((ln for ln in err if "error:" in ln), err[-1] if err else f"exit code {res.rc}")
        update_run(store, run.id, status="failed", pid=None, error=detail[:2000])
        raise ExternalToolError(
            f"training {run.name!r} on {host} failed: {detail.strip()[:400]}",
            hint=f"once fixed, `tuiops train resume {run.name}` continues from the host's last checkpoint",
        )
    return out


def _run_remote(
    ws: Workspace,
    run: TrainRun,
    argv_tail: list[str],
    *,
    started_epoch: int,
    job_params: Mapping[str, Any],
    pitstop_opts: Mapping[str, Any],
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> TrainResult:
    """Run ``tuiops ARGV_TAIL`` in the host's workspace as this run's job, then fetch and record."""
    from tuiops.ops.remote import open_hosts
    from tuiops.remote import run_sync

    store = ws.store
    remote = run.args["_remote"]
    host = run.host or ""
    started = time.monotonic()
    hosts = open_hosts(ws)
    argv = [remote["python"], "-c", _CLI, "-w", remote["ws"], *argv_tail, "--json", "-q"]
    with job(store, "train", job_params, total=run.epochs) as j:
        update_run(store, run.id, status="running", pid=os.getpid(), job_id=j.id, error=None)
        record_session(store, run.id, started_epoch)
        starts = get_run(store, run.name).starts

        def on_progress(ev: ProgressEvent) -> None:
            with contextlib.suppress(Exception):
                store.job_progress(j.id, ev.done, ev.total, ev.message)
            if progress is not None:
                progress(ev)

        reporter = Reporter("train", on_progress, None, total=run.epochs)
        reporter.update(started_epoch, f"training on {host} from epoch {started_epoch + 1}", force=True)
        try:
            res = run_sync(
                _train_there(
                    hosts,
                    host,
                    argv,
                    remote,
                    epochs=run.epochs,
                    reporter=reporter,
                    cancel=cancel,
                    starts=starts,
                )
            )
        except BaseException as exc:
            update_run(store, run.id, status="interrupted", pid=None, error=str(exc)[:2000])
            raise
        fetched: list[str] = []
        with contextlib.suppress(TuiopsError):
            fetched = fetch_results(ws, run)
        out = _host_outcome(store, run, host, res)
        status = out["status"]
        epoch = int(out.get("epoch") or 0)
        update_run(
            store,
            run.id,
            status=status,
            pid=None,
            epoch=epoch,
            checkpoint=None,
        )
        best = run.save_dir / "weights" / "best.pt"
        result = TrainResult(
            name=run.name,
            status=status,
            epoch=epoch,
            epochs=run.epochs,
            save_dir=str(run.save_dir),
            checkpoint=out.get("checkpoint"),
            best_weights=str(best) if best.is_file() else None,
            seconds=0.0,
            started_epoch=started_epoch,
            next_pitstop=out.get("next_pitstop"),
        )
        if status == "pitstop":
            there = out.get("pitstop") or {}
            report = run_pitstop(
                ws,
                run.name,
                idx=int(there.get("idx") or len([p for p in run.pitstops if p <= epoch])),
                epoch=epoch,
                best_epoch=there.get("best_epoch"),
                progress=progress,
                cancel=cancel,
                **pitstop_opts,
            )
            result.pitstop = report
            result.message = (
                f"pitstop {report['idx']} after epoch {epoch} on {host}: report {report['report']}; "
                f"fix labels, then `tuiops train resume {run.name}`"
            )
        else:
            result.message = f"training on {host} finished after epoch {epoch}; weights fetched to {best}"
        result.message += f" ({len(fetched)} item(s) fetched from {host})"
        result.seconds = time.monotonic() - started
        j.result = result.to_dict()
    return result


def train_remote(
    ws: Workspace,
    data_yaml: Path,
    dataset: str | None,
    *,
    host: str,
    name: str,
    model: str,
    epochs: int,
    plan: list[int],
    args: Mapping[str, Any],
    nc: int,
    pitstop_opts: Mapping[str, Any],
    replace: bool,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> TrainResult:
    """Start a training run on ``host`` (called by :func:`tuiops.ops.train.train` with ``on=HOST``)."""
    from tuiops.store.db import utcnow

    store = ws.store
    probe = probe_host(ws, host)
    if Path(model).suffix == ".pt":
        raise UsageError(
            "training on a host starts from a model yaml (yolov8n.yaml) for now",
            hint=f"copy the weights to {host} with `tuiops put` and give their path there as --model",
        )
    remote = _prepare_host(ws, name, host, data_yaml, progress=progress, cancel=cancel)
    save_dir = ws.root / TRAIN_DIR / name
    now = utcnow()
    with store.transaction() as conn:
        conn.execute("DELETE FROM train_runs WHERE name = ?", (name,))
        conn.execute(
            "INSERT INTO train_runs(name, created, updated, status, data, dataset, model, epochs, epoch, "
            "pitstops, save_dir, nc, args, pid, host) VALUES (?, ?, ?, 'starting', ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
            (
                name,
                now,
                now,
                str(data_yaml),
                dataset,
                model,
                epochs,
                json.dumps(plan),
                str(save_dir),
                nc,
                json.dumps(
                    {**args, "_pitstop": dict(pitstop_opts), "_remote": {**remote, "probe": probe}},
                    default=str,
                ),
                os.getpid(),
                host,
            ),
        )
    run = get_run(store, name)
    tail = ["train", "start", remote["data"], "--name", name, "--epochs", str(epochs), "--model", model]
    if plan:
        tail += ["--pitstops", ",".join(str(p) for p in plan)]
    for opt, key in (("--imgsz", "imgsz"), ("--batch", "batch"), ("--device", "device")):
        if args.get(key) is not None:
            tail += [opt, str(args[key])]
    if replace:
        tail.append("--replace")
    tail += [
        f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
        for k, v in args.items()
        if k not in ("imgsz", "batch", "device") and not k.startswith("_")
    ]
    params = {
        "op": "train",
        "name": name,
        "host": host,
        "data": str(data_yaml),
        "epochs": epochs,
        "pitstops": plan,
    }
    return _run_remote(
        ws,
        run,
        tail,
        started_epoch=0,
        job_params=params,
        pitstop_opts=pitstop_opts,
        progress=progress,
        cancel=cancel,
    )


def resume_remote(
    ws: Workspace,
    run: TrainRun,
    *,
    dataset_summary: dict[str, Any] | None,
    verbose: bool,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> TrainResult:
    """Continue a run on its host (the dataset, rebuilt here, is uploaded again first)."""

    del verbose
    probe_host(ws, run.host or "")
    remote = _prepare_host(ws, run.name, run.host or "", run.data, progress=progress, cancel=cancel)
    args = dict(run.args)
    args["_remote"] = {**(args.get("_remote") or {}), **remote}
    update_run(ws.store, run.id, args=json.dumps(args, default=str))
    run = get_run(ws.store, run.name)
    pitstop_opts = dict(run.args.get("_pitstop") or {})
    params = {"op": "train resume", "name": run.name, "host": run.host, "from_epoch": run.epoch}
    result = _run_remote(
        ws,
        run,
        ["train", "resume", run.name, "--no-rebuild"],
        started_epoch=run.epoch,
        job_params=params,
        pitstop_opts=pitstop_opts,
        progress=progress,
        cancel=cancel,
    )
    result.dataset = dataset_summary
    return result
