"""A training run's record in the store (``train_runs``): its row, its sessions, its result."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    NotFoundError,
)
from tuiops.fsutil import disk_error

if TYPE_CHECKING:
    from tuiops.store import Store


TRAIN_DIR = "training"


RESUME_NAME = "resume.pt"


LOG_NAME = "train.log"


NAME_RX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


ACTIVE = ("running",)


RESUMABLE = ("pitstop", "paused", "interrupted", "failed")


@dataclass
class TrainRun:
    """A training run as the store records it."""

    id: int
    name: str
    status: str
    data: Path
    dataset: str | None
    model: str
    epochs: int
    epoch: int
    pitstops: list[int]
    save_dir: Path
    checkpoint: Path | None
    nc: int | None
    args: dict[str, Any]
    created: str
    updated: str | None
    error: str | None
    pid: int | None
    host: str | None = None

    @property
    def starts(self) -> list[int]:
        """The finished-epoch counts each training session started from (0, then each resume's)."""
        return [int(x) for x in self.args.get("_sessions") or []]

    @property
    def results_csv(self) -> Path:
        return self.save_dir / "results.csv"

    @property
    def tuiops_dir(self) -> Path:
        return self.save_dir / "tuiops"

    @property
    def log(self) -> Path:
        return self.tuiops_dir / LOG_NAME


#: The columns of ``train_runs`` that :func:`run_from_row` reads, in its order.
RUN_COLS = (
    "id, name, status, data, dataset, model, epochs, epoch, pitstops, save_dir, checkpoint, nc, args, "
    "created, updated, error, pid, host"
)


def run_from_row(r: Sequence[Any]) -> TrainRun:
    """The run of a ``train_runs`` row selected with :data:`RUN_COLS`."""
    return TrainRun(
        id=int(r[0]),
        name=r[1],
        status=r[2],
        data=Path(r[3]),
        dataset=r[4],
        model=r[5],
        epochs=int(r[6]),
        epoch=int(r[7]),
        pitstops=[int(x) for x in json.loads(r[8] or "[]")],
        save_dir=Path(r[9]),
        checkpoint=Path(r[10]) if r[10] else None,
        nc=r[11],
        args=json.loads(r[12] or "{}"),
        created=r[13],
        updated=r[14],
        error=r[15],
        pid=r[16],
        host=r[17],
    )


def get_run(store: Store, name: str) -> TrainRun:
    """The training run ``name``; NotFoundError naming the known ones otherwise."""
    row = store.execute(f"SELECT {RUN_COLS} FROM train_runs WHERE name = ?", (name,)).fetchone()
    if row is None:
        known = [r[0] for r in store.execute("SELECT name FROM train_runs ORDER BY id")]
        raise NotFoundError(
            f"no training run named {name!r}",
            hint=f"known runs: {', '.join(known) or 'none'}; start one with `tuiops train DATA`",
        )
    return run_from_row(row)


def update_run(store: Store, run_id: int, **values: Any) -> None:
    """Set columns of a run's record (and its ``updated`` time) in one transaction."""
    from tuiops.store.db import utcnow

    values["updated"] = utcnow()
    cols = ", ".join(f"{k} = ?" for k in values)
    with store.transaction() as conn:
        conn.execute(f"UPDATE train_runs SET {cols} WHERE id = ?", (*values.values(), run_id))


def record_session(store: Store, run_id: int, start_epoch: int) -> None:
    """Add a training session's starting point (finished epochs) to the run's ``_sessions``."""
    row = store.execute("SELECT args FROM train_runs WHERE id = ?", (run_id,)).fetchone()
    args = json.loads((row[0] if row else None) or "{}")
    sessions = [int(x) for x in args.get("_sessions") or []]
    if start_epoch == 0:
        sessions = []
    sessions.append(int(start_epoch))
    args["_sessions"] = sessions
    update_run(store, run_id, args=json.dumps(args, default=str))


@dataclass
class TrainResult:
    """Where a training call left the run."""

    name: str
    status: str
    epoch: int
    epochs: int
    save_dir: str
    checkpoint: str | None
    best_weights: str | None
    seconds: float
    started_epoch: int = 0
    pitstop: dict[str, Any] | None = None
    next_pitstop: int | None = None
    dataset: dict[str, Any] | None = None
    caches_removed: list[str] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 2)
        return d


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy a file under a temporary name and rename it, so ``dst`` is whole or absent."""
    tmp = dst.with_name(f".{dst.name}.part")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise disk_error(dst, exc) from exc


def default_run_name(store: Store, base: str) -> str:
    """A run name made of ``base`` that no run has yet (``BASE``, ``BASE-2``, ...)."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", base)[:56].lstrip("._-") or "run"
    taken = {r[0] for r in store.execute("SELECT name FROM train_runs")}
    if base not in taken:
        return base
    i = 2
    while f"{base}-{i}" in taken:
        i += 1
    return f"{base}-{i}"
