"""Following a training run's ``results.csv`` while it trains.

Ultralytics appends one line per finished epoch: ``epoch`` (1-based), ``time`` (seconds
since that training session started), losses, precision, recall, mAP50, mAP50-95,
validation losses and learning rates. Following it live means coping with:

- a half-written last line (the writer is in the middle of it): only lines ending in a
  newline count, and a line with the wrong number of fields or a non-number is skipped;
- a resumed run: ``time`` starts again from zero (a new *session*), and epochs that
  were logged but not checkpointed before a kill are logged again. The latest line of
  an epoch wins, and a restart from an earlier epoch drops the stale lines after it
  (a line counts only when no later line has an epoch at or below its own). Where the
  store knows the epochs a run was resumed from (``starts``), a session begins exactly
  there, so that a session of one epoch (whose clock need not go back) is told apart;
- a file rewritten shorter (a resume trims it to the checkpoint's epoch) or replaced:
  the follower notices and reads it again from the start;
- a run on another machine: the follower reads through any ``read(offset) → bytes``
  function, e.g. :func:`ssh_reader` over SFTP.

The state (rows, best epoch, time per epoch, ETA) is what the plain-text ``tuiops train
watch`` prints and what the TUI's training pane charts.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.frames import num_max, num_mean
from tuiops.ops.train.records import get_run

if TYPE_CHECKING:
    import polars as pl

    from tuiops.workspace import Workspace

#: results.csv column → short name.
COLUMNS = {
    "epoch": "epoch",
    "time": "time",
    "train/box_loss": "box_loss",
    "train/cls_loss": "cls_loss",
    "train/dfl_loss": "dfl_loss",
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
    "metrics/mAP50(B)": "map50",
    "metrics/mAP50-95(B)": "map50_95",
    "val/box_loss": "val_box_loss",
    "val/cls_loss": "val_cls_loss",
    "val/dfl_loss": "val_dfl_loss",
    "lr/pg0": "lr",
}

#: How many recent epochs the ETA averages.
ETA_WINDOW = 5

Reader = Callable[[int], bytes | None]
"""Returns the file's bytes from an offset to its end (``b""`` when nothing new), or None when it does not exist."""


# -- parsing ----------------------------------------------------------------------------------------
def parse_results(text: str) -> pl.DataFrame:
    """The complete lines of a results.csv as a frame, in file order, with short column names.

    A last line without a newline is ignored (it is being written); lines with the wrong
    number of fields, repeated header lines and lines with a non-number are skipped.
    Adds ``row`` (the line's position among the kept lines).
    """
    import polars as pl

    lines = text.split("\n")
    lines = lines[:-1]  # the part after the last newline is incomplete (or empty)
    lines = [ln.rstrip("\r") for ln in lines if ln.strip()]
    if not lines:
        return _empty()
    header = [h.strip() for h in lines[0].split(",")]
    if "epoch" not in header:
        return _empty()
    n = len(header)
    body = [ln for ln in lines[1:] if ln.count(",") == n - 1 and ln.split(",", 1)[0].strip() != "epoch"]
    if not body:
        return _empty(header)
    raw = pl.read_csv(
        io.StringIO("\n".join([",".join(header), *body]) + "\n"),
        infer_schema=False,
        has_header=True,
    )
    frame = raw.select(pl.col(c).str.strip_chars().cast(pl.Float64, strict=False) for c in raw.columns)
    ok = pl.all_horizontal(pl.col(c).is_not_null() for c in frame.columns)
    frame = frame.filter(ok)
    rename = {c: COLUMNS.get(c, c) for c in frame.columns}
    frame = frame.rename(rename).with_columns(pl.col("epoch").cast(pl.Int64))
    return frame.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))


def _empty(header: Sequence[str] = ()) -> pl.DataFrame:
    import polars as pl

    cols: dict[str, type[pl.DataType]] = {"row": pl.Int64, "epoch": pl.Int64}
    for h in header or COLUMNS:
        name = COLUMNS.get(h, h)
        if name not in cols:
            cols[name] = pl.Float64
    return pl.DataFrame(schema=cols)


def clean_epochs(raw: pl.DataFrame, starts: Sequence[int] = ()) -> pl.DataFrame:
    """One row per epoch that counts now, with ``session``, ``epoch_s`` and ``fitness``.

    A row counts when no later row has an epoch at or below its own (a resumed or
    restarted run logs its epochs again; the latest wins). A new session starts where
    the epoch does not grow, where the session clock goes back, and at the first epoch
    after each of ``starts`` (the finished-epoch counts a run was started or resumed
    from, as the store records them). Sessions are numbered 0, 1, … over the rows kept.
    ``epoch_s`` is the time the epoch took (for a session's first epoch: the time since
    the session started). ``fitness`` is ultralytics' 0.1 × mAP50 + 0.9 × mAP50-95.
    """
    import polars as pl

    if raw.height == 0:
        return raw.with_columns(
            pl.lit(None, pl.Int64).alias("session"),
            pl.lit(None, pl.Float64).alias("epoch_s"),
            pl.lit(None, pl.Float64).alias("fitness"),
        )
    later_min = pl.col("epoch").reverse().cum_min().reverse().shift(-1)
    boundary = (pl.col("epoch") <= pl.col("epoch").shift(1)) | (pl.col("time") < pl.col("time").shift(1))
    resumed = sorted({int(s) for s in starts if int(s) > 0})
    if resumed:
        boundary = boundary | (pl.col("epoch") - 1).is_in(resumed)
    frame = raw.with_columns(
        boundary.fill_null(False).cum_sum().cast(pl.Int64).alias("session"),
        (later_min.is_null() | (pl.col("epoch") < later_min)).alias("_keep"),
    )
    frame = frame.with_columns(
        pl.when(pl.col("session") == pl.col("session").shift(1))
        .then(pl.col("time") - pl.col("time").shift(1))
        .otherwise(pl.col("time"))
        .alias("epoch_s")
    )
    fit = (
        0.1 * pl.col("map50") + 0.9 * pl.col("map50_95")
        if {"map50", "map50_95"} <= set(frame.columns)
        else pl.lit(None, pl.Float64)
    )
    kept = frame.filter("_keep").drop("_keep")
    return kept.with_columns(
        (pl.col("session").rank("dense") - 1).cast(pl.Int64).alias("session"), fit.alias("fitness")
    )


@dataclass
class MonitorState:
    """Where a training run stands, from its results.csv (and the store, for the plan)."""

    epochs: pl.DataFrame
    epochs_total: int | None = None
    pitstops: list[int] = field(default_factory=list)
    pitstops_done: list[int] = field(default_factory=list)
    status: str | None = None
    lines_read: int = 0
    superseded: int = 0
    starts: list[int] = field(default_factory=list)
    exists: bool = True
    #: Warnings of the pitstops done (e.g. one with no detection at its conf).
    warnings: list[str] = field(default_factory=list)

    @property
    def epoch(self) -> int:
        return int(num_max(self.epochs["epoch"]) or 0) if self.epochs.height else 0

    @property
    def sessions(self) -> int:
        return int(self.epochs["session"].n_unique()) if self.epochs.height else 0

    @property
    def last(self) -> dict[str, Any]:
        return self.epochs.row(-1, named=True) if self.epochs.height else {}

    @property
    def best(self) -> dict[str, Any]:
        """The epoch with the highest fitness (the earliest of equals), as ultralytics picks best.pt."""
        import polars as pl

        if not self.epochs.height or self.epochs["fitness"].null_count() == self.epochs.height:
            return {}
        top = self.epochs.filter(pl.col("fitness") == pl.col("fitness").max()).sort("epoch")
        return top.row(0, named=True)

    @property
    def seconds_per_epoch(self) -> float | None:
        """The mean duration of the last few epochs."""
        if not self.epochs.height:
            return None
        recent = self.epochs.sort("epoch").tail(ETA_WINDOW)["epoch_s"].drop_nulls()
        return num_mean(recent)

    @property
    def eta_seconds(self) -> float | None:
        """Time until the last epoch at the recent pace (until the next pitstop: :attr:`eta_pitstop`)."""
        spe = self.seconds_per_epoch
        if spe is None or self.epochs_total is None:
            return None
        return max(0, self.epochs_total - self.epoch) * spe

    @property
    def next_pitstop(self) -> int | None:
        ahead = [p for p in self.pitstops if p > self.epoch]
        return min(ahead) if ahead else None

    @property
    def eta_pitstop(self) -> float | None:
        spe = self.seconds_per_epoch
        nxt = self.next_pitstop
        return None if spe is None or nxt is None else (nxt - self.epoch) * spe

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "epochs": self.epochs_total,
            "status": self.status,
            "sessions": self.sessions,
            "superseded_lines": self.superseded,
            "last": self.last,
            "best": self.best,
            "seconds_per_epoch": self.seconds_per_epoch,
            "eta_seconds": self.eta_seconds,
            "pitstops": self.pitstops,
            "pitstops_done": self.pitstops_done,
            "next_pitstop": self.next_pitstop,
            "eta_pitstop_seconds": self.eta_pitstop,
            "starts": self.starts,
            "exists": self.exists,
            "warnings": self.warnings,
        }


def summarize(
    text: str,
    *,
    epochs_total: int | None = None,
    pitstops: Sequence[int] = (),
    pitstops_done: Sequence[int] = (),
    status: str | None = None,
    starts: Sequence[int] = (),
    exists: bool = True,
    warnings: Sequence[str] = (),
) -> MonitorState:
    """The monitor state of a results.csv's text (``starts``: see :func:`clean_epochs`)."""
    raw = parse_results(text)
    clean = clean_epochs(raw, starts)
    return MonitorState(
        epochs=clean,
        epochs_total=epochs_total,
        pitstops=list(pitstops),
        pitstops_done=list(pitstops_done),
        status=status,
        lines_read=raw.height,
        superseded=raw.height - clean.height,
        starts=list(starts),
        exists=exists,
        warnings=list(warnings),
    )


# -- following --------------------------------------------------------------------------------------
Stat = Callable[[], "tuple[int, Any] | None"]
"""Returns the file's size and an identity (an inode; None where unknown), or None when it does not exist."""


def file_reader(path: str | os.PathLike[str]) -> tuple[Reader, Stat]:
    """A reader and a stat function of a local file."""
    p = Path(path)

    def read(offset: int) -> bytes | None:
        try:
            with open(p, "rb") as fh:
                fh.seek(offset)
                return fh.read()
        except FileNotFoundError:
            return None

    def stat() -> tuple[int, Any] | None:
        try:
            st = p.stat()
        except FileNotFoundError:
            return None
        return st.st_size, (st.st_dev, st.st_ino)

    return read, stat


class ResultsFollower:
    """Reads a growing results.csv incrementally (only the new bytes on each poll).

    It starts again from the beginning when the file got shorter or was replaced
    (another identity), and forgets it when it disappears.
    """

    def __init__(self, read: Reader, stat: Stat) -> None:
        self._read = read
        self._stat = stat
        self._data = b""
        self._offset = 0
        self._ident: Any = None
        self.resets = 0
        self.exists = False

    @classmethod
    def for_path(cls, path: str | os.PathLike[str]) -> ResultsFollower:
        return cls(*file_reader(path))

    def _reset(self) -> None:
        self._data = b""
        self._offset = 0
        self.resets += 1

    def poll(self) -> bool:
        """Read what was appended since the last poll; True when the text changed."""
        st = self._stat()
        self.exists = st is not None
        if st is None:
            changed = bool(self._offset)
            if changed:
                self._reset()
            self._ident = None
            return changed
        size, ident = st
        changed = False
        if size < self._offset or (self._ident is not None and ident is not None and ident != self._ident):
            self._reset()
            changed = True
        self._ident = ident
        if size == self._offset:
            return changed
        new = self._read(self._offset)
        if not new:
            return changed
        self._data += new
        self._offset += len(new)
        return True

    @property
    def text(self) -> str:
        return self._data.decode("utf-8", errors="replace")

    def state(self, **plan: Any) -> MonitorState:
        """The monitor state of what was read so far (``plan``: :func:`summarize`'s keywords)."""
        return summarize(self.text, exists=self.exists, **plan)


def ssh_reader(ws: Workspace, host: str, path: str) -> tuple[Reader, Stat]:
    """A reader and a stat function for a file on a ``[hosts.NAME]`` machine, over SFTP.

    A relative ``path`` is taken from the host's ``home``. Each call opens its own
    connection (a monitor polls every few seconds; nothing stays open between polls).
    """
    from tuiops.remote import run_sync
    from tuiops.remote.hosts import Hosts
    from tuiops.remote.paths import normalize

    hosts = Hosts.from_workspace(ws)
    cfg = hosts.get(host)
    remote = normalize(path, cfg.home or ".") if not path.startswith("/") else path

    async def _read(offset: int) -> bytes | None:
        import asyncssh

        async with await hosts.connect(host) as conn, conn.conn.start_sftp_client() as sftp:
            try:
                async with sftp.open(remote, "rb") as fh:
                    # asyncssh annotates read() with an unbound AnyStr; a file opened "rb" reads bytes
                    return await fh.read(-1, offset)  # type: ignore[return-value]
            except asyncssh.SFTPNoSuchFile:
                return None

    async def _stat() -> tuple[int, Any] | None:
        import asyncssh

        async with await hosts.connect(host) as conn, conn.conn.start_sftp_client() as sftp:
            try:
                attrs = await sftp.stat(remote)
            except asyncssh.SFTPNoSuchFile:
                return None
            return int(attrs.size or 0), None

    return (lambda offset: run_sync(_read(offset))), (lambda: run_sync(_stat()))


def run_follower(ws: Workspace, name: str, *, store: Any = None) -> ResultsFollower:
    """A follower of training run ``name``'s results.csv: the local file, or over SSH for a
    run training on a ``[hosts.NAME]`` machine (once it stopped, the copy fetched back;
    ``store``: the store to read the run from, by default the workspace's)."""

    run = get_run(store if store is not None else ws.store, name)
    remote = (run.args.get("_remote") or {}).get("results")
    if run.host and remote and (run.status in ("running", "starting") or not run.results_csv.is_file()):
        return ResultsFollower(*ssh_reader(ws, run.host, str(remote)))
    return ResultsFollower(*file_reader(run.results_csv))


# -- plain text ---------------------------------------------------------------------------------------
HEADER = (
    f"{'epoch':>9} {'box':>7} {'cls':>7} {'dfl':>7} {'P':>6} {'R':>6} {'mAP50':>6} {'mAP50-95':>8} "
    f"{'lr':>9} {'s/epoch':>8}"
)


def format_duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``12s`` (``-`` when unknown)."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def format_epoch(row: dict[str, Any], total: int | None, *, best: bool = False, pitstop: bool = False) -> str:
    """One epoch as a line of the plain-text monitor."""

    def num(key: str, fmt: str, width: int) -> str:
        v = row.get(key)
        return f"{v:{width}{fmt}}" if isinstance(v, int | float) else f"{'-':>{width}}"

    ep = f"{row['epoch']}/{total}" if total else str(row["epoch"])
    marks = (" *best" if best else "") + (" ◆ pitstop" if pitstop else "")
    return (
        f"{ep:>9} {num('box_loss', '.4f', 7)} {num('cls_loss', '.4f', 7)} {num('dfl_loss', '.4f', 7)} "
        f"{num('precision', '.3f', 6)} {num('recall', '.3f', 6)} {num('map50', '.3f', 6)} "
        f"{num('map50_95', '.3f', 8)} {num('lr', '.2e', 9)} {format_duration(row.get('epoch_s')):>8}{marks}"
    )


def format_footer(state: MonitorState | Mapping[str, Any]) -> str:
    """The status line under the table (from a state or its ``to_dict()``): epoch, best, pace, ETA."""
    d = state.to_dict() if isinstance(state, MonitorState) else state
    total = d.get("epochs")
    parts = [f"epoch {d.get('epoch', 0)}" + (f"/{total}" if total else "")]
    if not d.get("epoch"):
        parts.append(
            "waiting for the first epoch" + ("" if d.get("exists", True) else " (no results.csv yet)")
        )
    if d.get("status"):
        parts.append(str(d["status"]))
    best = d.get("best") or {}
    if best:
        parts.append(f"best epoch {best['epoch']} (mAP50-95 {best.get('map50_95') or 0:.3f})")
    if d.get("seconds_per_epoch") is not None:
        parts.append(f"{format_duration(d['seconds_per_epoch'])}/epoch")
    if d.get("next_pitstop") is not None:
        parts.append(
            f"next pitstop at epoch {d['next_pitstop']} in {format_duration(d.get('eta_pitstop_seconds'))}"
        )
    if d.get("eta_seconds") is not None and total and d.get("epoch", 0) < total:
        parts.append(f"ETA {format_duration(d['eta_seconds'])}")
    if (d.get("sessions") or 0) > 1:
        parts.append(f"{d['sessions']} sessions")
    for w in d.get("warnings") or []:
        parts.append(f"WARNING {w}")
    return " · ".join(parts)
