"""A job's journal: its actions read back, grouped by image, and their outcomes written in batches."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from tuiops.frames import gc_paused
from tuiops.ops.fileops.acts import ACT_COLS, ACT_NAMES, Action, JobContext, Outcome
from tuiops.ops.fileops.model import FLUSH_ROWS, FLUSH_SECONDS
from tuiops.ops.fileops.records import store_backward, store_forward
from tuiops.ops.procs import fault

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store


def load_actions(store: Store, job_id: int) -> list[Action]:
    """A job's actions in order (``tmp`` NULL in the journal means the default temporary name)."""
    with gc_paused():
        rows = store.execute(
            f"SELECT {ACT_COLS} FROM job_actions WHERE job_id = ? ORDER BY seq", (job_id,)
        ).fetchall()
        hi = store.one("SELECT hi FROM job_marks WHERE job_id = ?", (job_id,))
        hi = -1 if hi is None else int(hi)
        acts = [Action(*r) for r in rows]
    for a in acts:
        a.resumed = a.state == "started" or (a.state == "planned" and a.seq <= hi)
    return acts


def acts_from_journal(rows: pl.DataFrame) -> list[Action]:
    """The actions of a plan from the journal frame it has just written: the same as
    :func:`load_actions` reads back for a job not yet run, without the read."""
    if not rows["seq"].is_sorted():
        rows = rows.sort("seq")
    n = rows.height
    with gc_paused():
        cols = [rows[c].to_list() if c in rows.columns else [None] * n for c in ACT_NAMES]
        return [Action(*r) for r in zip(*cols, strict=True)] if n else []


def group_actions(acts: list[Action]) -> list[list[Action]]:
    """Actions grouped by image (an image row, then the label rows whose parent it is)."""
    groups: list[list[Action]] = []
    index: dict[int, list[Action]] = {}
    for a in acts:
        if a.parent is not None and a.parent in index:
            index[a.parent].append(a)
            continue
        g = [a]
        groups.append(g)
        index[a.seq] = g
    return groups


def is_plain(a: Action, out: Outcome, op: str, undo: bool) -> bool:
    """Whether an outcome changes only its journal row (state, size, hash): a forward
    action done where it was planned, with no store records to follow it."""
    return (
        not undo
        and out.state == "done"
        and (out.dst is None or out.dst == a.dst)
        and (out.bak is None or out.bak == a.bak)
        and (a.file_id is None or not (op in ("move", "rename", "delete") or a.dst_pool is not None))
    )


class Journal:
    """Batched journal updates from the main thread (one transaction per flush)."""

    def __init__(self, store: Store, ctx: JobContext, acts: dict[int, Action], undo: bool) -> None:
        self.store = store
        self.ctx = ctx
        self.acts = acts
        self.undo = undo
        self.buffer: list[Outcome] = []
        # plain outcomes packed by worker processes: JSON arrays of [seq, size, hash]
        self.packed: list[str] = []
        self.n_packed = 0
        self.last = time.monotonic()
        self.counted = 0

    def mark(self, seqs: list[int], state: str) -> None:
        """Set the state of ``seqs`` before (or after) they run.

        ``started`` is the write-ahead mark of a forward run: one update of the job's
        mark (the highest seq that may touch the disk) instead of a row per action; an
        action still ``planned`` at or below the mark is settled from the disk on resume.
        Other states are written to the rows (runs of consecutive seqs as one range).
        """
        if not seqs:
            return
        if state == "started":
            with self.store.transaction() as conn:
                conn.execute(
                    "INSERT INTO job_marks(job_id, hi) VALUES (?, ?) "
                    "ON CONFLICT(job_id) DO UPDATE SET hi = max(hi, excluded.hi)",
                    (self.ctx.job_id, max(seqs)),
                )
            for s in seqs:
                self.acts[s].state = state
            return
        if state == "planned":
            fresh = [s for s in seqs if self.acts[s].state == "started"]
            for s in fresh:
                self.acts[s].state = state
            return
        runs: list[tuple[int, int]] = []
        for s in sorted(seqs):
            if runs and s == runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], s)
            else:
                runs.append((s, s))
        with self.store.transaction() as conn:
            conn.executemany(
                "UPDATE job_actions SET state = ? WHERE job_id = ? AND seq BETWEEN ? AND ?",
                [(state, self.ctx.job_id, lo, hi) for lo, hi in runs],
            )
        for s in seqs:
            self.acts[s].state = state

    def add(self, outs: list[Outcome], packed: str = "", n_packed: int = 0) -> None:
        self.buffer.extend(outs)
        if n_packed:
            self.packed.append(packed)
            self.n_packed += n_packed
        if len(self.buffer) + self.n_packed >= FLUSH_ROWS or time.monotonic() - self.last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.buffer and not self.packed:
            return
        outs, self.buffer = self.buffer, []
        packed, self.packed = self.packed, []
        done, self.n_packed = self.n_packed, 0
        rows = []
        plain: list[tuple[int, int | None, str | None]] = []
        op = self.ctx.op
        with self.store.transaction() as conn:
            for out in outs:
                a = self.acts[out.seq]
                if is_plain(a, out, op, self.undo):
                    # the common case: only the outcome changes (no store records follow)
                    done += 1
                    plain.append((out.seq, out.size, out.hash))
                    a.state, a.error = "done", None
                    a.size = out.size if out.size is not None else a.size
                    a.hash = out.hash if out.hash is not None else a.hash
                    continue
                prev, new_id = a.prev, a.new_file_id
                if not self.undo and out.state == "done" and a.state != "done":
                    p, n = store_forward(conn, self.ctx, a, out)
                    if p is not None or n is not None:
                        prev, new_id = p, n
                if self.undo and out.state == "undone" and a.state != "undone":
                    store_backward(conn, a)
                if out.state in ("done", "undone"):
                    done += 1
                rows.append(
                    (
                        out.state,
                        out.size,
                        out.hash,
                        out.error,
                        out.dst or a.dst,
                        out.bak or a.bak,
                        prev,
                        new_id,
                        self.ctx.job_id,
                        out.seq,
                    )
                )
                a.state, a.prev, a.new_file_id, a.error = out.state, prev, new_id, out.error
                a.size = out.size if out.size is not None else a.size
                a.hash = out.hash if out.hash is not None else a.hash
                a.bak = out.bak or a.bak
            if plain or packed:
                # the batch goes in as one JSON text and is applied by one statement: SQLite
                # walks it without handing the GIL back and forth with the workers per row
                if plain:
                    packed.append(json.dumps(plain))
                text = "[" + ",".join(p[1:-1] for p in packed if len(p) > 2) + "]"
                conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS _fo_out(seq INTEGER PRIMARY KEY, size INTEGER, hash TEXT)"
                )
                conn.execute(
                    "INSERT INTO temp._fo_out SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
                    (text,),
                )
                conn.execute(
                    "UPDATE job_actions SET state = 'done', "
                    "size = coalesce((SELECT o.size FROM temp._fo_out o WHERE o.seq = job_actions.seq), size), "
                    "hash = coalesce((SELECT o.hash FROM temp._fo_out o WHERE o.seq = job_actions.seq), hash), "
                    "error = NULL WHERE job_id = ? AND seq IN (SELECT seq FROM temp._fo_out)",
                    (self.ctx.job_id,),
                )
                conn.execute("DELETE FROM temp._fo_out")
            if rows:
                conn.executemany(
                    "UPDATE job_actions SET state = ?, size = coalesce(?, size), hash = coalesce(?, hash), "
                    "error = ?, dst = ?, bak = ?, prev = ?, new_file_id = ? WHERE job_id = ? AND seq = ?",
                    rows,
                )
            self.counted += done
            conn.execute("UPDATE jobs SET done = done + ? WHERE id = ?", (done, self.ctx.job_id))
            fault("flush")
