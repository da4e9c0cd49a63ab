"""Pool indexing: walk an image folder, probe new and changed files on every core, and
record them in the store's ``files`` and ``items`` tables.

A scan is incremental: a file whose size and mtime are what the store has is not opened
again (unless the scan asks for something it lacks: a hash, EXIF, a full decode); a
file that disappeared is kept with status ``missing`` so its labels stay reachable; a
file that comes back is probed again. Results are written in batches, each in one
transaction, so a killed or cancelled scan keeps what it committed and the next scan
carries on from there.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from array import array
from collections import Counter, deque
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import Cancelled, ConflictError, InputError, NotFoundError, UsageError
from tuiops.ops.base import CancelToken, ProgressEvent, ProgressFn, Reporter, job
from tuiops.ops.poollock import scan_lock
from tuiops.ops.probe import (
    BAD_STATUSES,
    CHECK_ALL,
    CHECK_HASH,
    PHASH_METHOD,
    RESULT_FIELDS,
    STATUSES,
    ProbeOptions,
    probe_chunk,
    probe_ping,
)
from tuiops.ops.procs import die_with_parent, fault
from tuiops.store.db import utcnow
from tuiops.store.frames import file_schema, item_schema

if TYPE_CHECKING:
    import polars as pl

    from tuiops.ops.cluster import ClusterOptions
    from tuiops.store import BulkTx, Store
    from tuiops.workspace import Workspace

#: Files of the workspace itself, never indexed when the workspace lies inside a pool.
_WORKSPACE_FILES = (
    b"tuiops.toml",
    b"tuiops.db",
    b"tuiops.db-wal",
    b"tuiops.db-shm",
    b"tuiops.db-journal",
    b".tuiops",
    b".trash",
)

#: With ``workers=None``, scans probing fewer files than this run in-process: starting
#: worker processes costs about what probing this many files does.
IN_PROCESS_BELOW = {"header": 3000, "exif": 1000, "decode": 100}

#: Probe results are committed every this many files or seconds, whichever comes first.
FLUSH_ROWS = 5000
FLUSH_SECONDS = 3.0

_EXAMPLES = 5

#: Label files (YOLO txt and classes.txt, Pascal VOC XML, COCO JSON): they lie beside the
#: images of a labelled folder and are neither images nor bad files, so a scan leaves them
#: out and counts them apart.
LABEL_SUFFIXES = (b".txt", b".xml", b".json")
_LABEL_RE = r"\.(" + "|".join(x[1:].decode() for x in LABEL_SUFFIXES) + ")$"


def _result_schema() -> dict[str, Any]:
    """Dtypes of a probe row (:data:`tuiops.ops.probe.RESULT_FIELDS`, then key, booru, fid)."""
    items = item_schema()
    return file_schema(*RESULT_FIELDS) | {c: items[c] for c in ("key", "booru", "fid")}


@dataclass
class ScanSummary:
    """What a scan found and did."""

    pool: str
    root: str
    total: int = 0
    """Files present in the pool now."""
    new: int = 0
    changed: int = 0
    """Files whose size or mtime changed, or that came back after being missing."""
    unchanged: int = 0
    deleted: int = 0
    """Files that disappeared since the last scan (now ``missing``)."""
    probed: int = 0
    """Files opened by this scan (new, changed, and unchanged ones lacking a requested check)."""
    status: dict[str, int] = field(default_factory=dict)
    """Files of the pool per status after the scan (``missing`` included)."""
    bad: dict[str, int] = field(default_factory=dict)
    """Present files per bad status (corrupt, truncated, empty, not_image, wrong_ext, unreadable)."""
    bad_examples: dict[str, list[str]] = field(default_factory=dict)
    unkeyed: int = 0
    unkeyed_examples: list[str] = field(default_factory=list)
    notes: int = 0
    """Good files with a remark (a decompression bomb left undecoded, data after the end marker)."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Entries not indexed, per reason (hidden, symlink_outside, broken_symlink, …)."""
    skipped_examples: list[str] = field(default_factory=list)
    options: dict[str, bool] = field(default_factory=dict)
    """The options of this scan (hash, exif, verify), which the pool remembers."""
    remembered: list[str] = field(default_factory=list)
    """Options this scan took from the pool's earlier scans (none given explicitly)."""
    label_files: int = 0
    """Label files (.txt, .xml, .json) found beside the images: not indexed."""
    label_records_dropped: int = 0
    """Records of label files that an earlier scan had indexed as not_image, removed."""
    sizes_filled: int = 0
    """Items whose width and height were unknown and now come from their image file."""
    unreadable_dirs: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    job_id: int | None = None

    @property
    def files_per_s(self) -> float:
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def bad_total(self) -> int:
        return sum(self.bad.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["elapsed"] = round(self.elapsed, 3)
        d["files_per_s"] = round(self.files_per_s, 1)
        d["bad_total"] = self.bad_total
        return d


@dataclass
class _Listing:
    """The files one walk found, plus what it skipped: paths as bytes, sizes and mtimes
    as flat arrays, made columns at once by :meth:`frame`."""

    rels: list[bytes] = field(default_factory=list)
    size: array = field(default_factory=lambda: array("q"))
    mtime_ns: array = field(default_factory=lambda: array("q"))
    skipped: Counter = field(default_factory=Counter)
    skipped_examples: list[str] = field(default_factory=list)
    label_files: int = 0
    unreadable_dirs: list[str] = field(default_factory=list)
    partial_dirs: list[str] = field(default_factory=list)
    """Folders (display relpaths) not listed in full: what was under them is not 'missing'."""

    def skip(self, reason: str, rel: bytes) -> None:
        self.skipped[reason] += 1
        if reason != "hidden" and len(self.skipped_examples) < _EXAMPLES:
            self.skipped_examples.append(f"{_display(rel)} ({reason.replace('_', ' ')})")

    def add(self, rel: bytes, st: os.stat_result) -> None:
        self.rels.append(rel)
        self.size.append(st.st_size)
        self.mtime_ns.append(st.st_mtime_ns)

    def frame(self) -> pl.DataFrame:
        """The image files found (label files counted and left out), sorted by relpath:
        relpath, relpath_raw (the bytes of a name that is not UTF-8), size, mtime_ns."""
        import polars as pl

        raw = pl.Series("path", self.rels, dtype=pl.Binary)
        self.rels = []
        try:
            text = raw.cast(pl.String)
            odd = pl.Series("relpath_raw", [None] * len(raw), dtype=pl.Binary)
        except pl.exceptions.ComputeError:  # a name that is not UTF-8: shown with \xNN escapes
            names = [(r, _decode(r)) for r in raw]
            text = pl.Series([t if t is not None else _display(r) for r, t in names], dtype=pl.String)
            odd = pl.Series("relpath_raw", [r if t is None else None for r, t in names], dtype=pl.Binary)
        del raw  # the bytes of the files to probe are made again from the relpaths (see _plan)
        frame = pl.DataFrame(
            {"relpath": text, "relpath_raw": odd, "size": self.size, "mtime_ns": self.mtime_ns},
            schema=file_schema("relpath", "relpath_raw", "size", "mtime_ns"),
        )
        label = pl.col("relpath").str.to_lowercase().str.contains(_LABEL_RE)
        self.label_files = int(frame.select(label.sum()).item())
        frame = frame.filter(~label)
        # A name that is not UTF-8 is shown with \xNN escapes; should that collide with a
        # real name, the escaped one gets its bytes in hex appended, so relpaths stay unique.
        clash = pl.col("relpath").is_duplicated() & pl.col("relpath_raw").is_not_null()
        frame = frame.with_columns(
            pl.when(clash)
            .then(pl.col("relpath") + "#" + pl.col("relpath_raw").bin.encode("hex"))
            .otherwise(pl.col("relpath"))
            .alias("relpath")
        )
        return frame.sort("relpath")


def _decode(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _display(raw: bytes) -> str:
    return raw.decode("utf-8", errors="backslashreplace")


def _walk(
    root: bytes,
    *,
    follow_symlinks: bool,
    skip_in: bytes | None,
    rep: Reporter,
) -> _Listing:
    """List every regular file below ``root`` (bytes paths, so any name survives)."""
    out = _Listing()
    root_real = os.path.realpath(root)
    visited: set[tuple[int, int]] = set()
    st_root = os.stat(root)
    visited.add((st_root.st_dev, st_root.st_ino))
    stack: list[bytes] = [b""]
    rels_append, size_append, mtime_append = out.rels.append, out.size.append, out.mtime_ns.append
    while stack:
        rel = stack.pop()
        here = os.path.join(root, rel) if rel else root
        try:
            it = os.scandir(here)
        except OSError as exc:
            if not rel:
                raise InputError(
                    f"cannot read the pool folder {_display(root)}: {exc.strerror}",
                    hint="check its permissions",
                ) from exc
            out.unreadable_dirs.append(f"{_display(rel)} ({exc.strerror})")
            out.partial_dirs.append(_display(rel))
            continue
        try:
            with it:
                for entry in it:
                    name = entry.name
                    relp = rel + b"/" + name if rel else name
                    if skip_in is not None and rel == skip_in and name in _WORKSPACE_FILES:
                        continue
                    if name.startswith(b"."):
                        out.skip("hidden", relp)
                        continue
                    try:
                        if entry.is_file(follow_symlinks=False):  # a regular file: the common case
                            st = entry.stat(follow_symlinks=False)
                            rels_append(relp)
                            size_append(st.st_size)
                            mtime_append(st.st_mtime_ns)
                        else:
                            _walk_entry(entry, relp, root_real, follow_symlinks, visited, stack, out)
                    except OSError:
                        out.skip("unreadable_entry", relp)
        except OSError as exc:
            out.unreadable_dirs.append(f"{_display(rel) or '.'} ({exc.strerror}, listed in part)")
            out.partial_dirs.append(_display(rel))
        rep.update(len(out.rels), "listing files")
    return out


def _walk_entry(
    entry: os.DirEntry[bytes],
    relp: bytes,
    root_real: bytes,
    follow: bool,
    visited: set[tuple[int, int]],
    stack: list[bytes],
    out: _Listing,
) -> None:
    if entry.is_symlink():
        try:
            st = os.stat(entry.path)
        except OSError:
            out.skip("broken_symlink", relp)
            return
        real = os.path.realpath(entry.path)
        inside = real == root_real or real.startswith(root_real + b"/")
        if stat.S_ISDIR(st.st_mode):
            if not follow:
                out.skip("symlinked_folder" if inside else "symlink_outside", relp)
                return
            if (st.st_dev, st.st_ino) in visited:
                out.skip("folder_loop", relp)
                return
            visited.add((st.st_dev, st.st_ino))
            stack.append(relp)
        elif stat.S_ISREG(st.st_mode):
            if not inside and not follow:
                out.skip("symlink_outside", relp)
                return
            out.add(relp, st)
        else:
            out.skip("special", relp)
    elif entry.is_dir(follow_symlinks=False):
        if follow:
            st = entry.stat(follow_symlinks=False)
            if (st.st_dev, st.st_ino) in visited:
                out.skip("folder_loop", relp)
                return
            visited.add((st.st_dev, st.st_ino))
        stack.append(relp)
    elif entry.is_file(follow_symlinks=False):
        out.add(relp, entry.stat(follow_symlinks=False))
    else:
        out.skip("special", relp)


# -- pools --------------------------------------------------------------------------------------
def _resolve_root(ws: Workspace, root: str | os.PathLike[str] | None, name: str | None) -> tuple[Path, str]:
    if root is None:
        if not name:
            raise UsageError("give the folder to scan, or --name of a known pool")
        known = ws.config.pools.get(name)
        if known is None:
            stored = ws.store.one("SELECT root FROM pools WHERE name = ?", (name,))
            if stored is None:
                ws.store.pool_id(name)  # raises NotFoundError listing the known pools
            known = stored
        root = ws.resolve(known)
    path = ws.resolve(root)
    try:
        path = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise NotFoundError(f"folder {path} does not exist", hint="check the path") from exc
    if not path.is_dir():
        raise InputError(f"{path} is not a folder", hint="scan the folder that holds the images")
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"the pool folder {_display(os.fsencode(path))} has a name that is not valid UTF-8",
            hint="rename the folder (its files may have any names)",
        ) from exc
    pool_name = (name if name is not None else path.name).strip()
    if not pool_name or any(ord(c) < 32 for c in pool_name):
        raise UsageError(f"invalid pool name {pool_name!r}", hint="pass --name NAME")
    return path, pool_name


def _register_pool(ws: Workspace, name: str, root: Path) -> int:
    """Find or create the pool row and its tuiops.toml entry; refuse clashes."""
    store = ws.store
    root_s = str(root)

    def same(p: str) -> bool:
        return os.path.realpath(ws.resolve(p)) == root_s

    for other, p in ws.config.pools.items():
        if other != name and same(p):
            raise ConflictError(
                f"{root} is the root of pool {other!r} already",
                hint=f"scan it as --name {other}, or remove that pool from tuiops.toml first",
            )
    if name in ws.config.pools and not same(ws.config.pools[name]):
        raise ConflictError(
            f"pool {name!r} is {ws.resolve(ws.config.pools[name])}, not {root}",
            hint="choose another --name for this folder",
        )
    with store.transaction() as conn:
        rows = conn.execute("SELECT id, name, root FROM pools").fetchall()
        pool_id = None
        for pid, pname, proot in rows:
            if pname == name:
                if os.path.realpath(proot) != root_s and proot != root_s:
                    raise ConflictError(
                        f"pool {name!r} is {proot}, not {root}", hint="choose another --name for this folder"
                    )
                pool_id = int(pid)
            elif proot == root_s:
                raise ConflictError(
                    f"{root} is the root of pool {pname!r} already",
                    hint=f"scan it as --name {pname}",
                )
        if pool_id is None:
            cur = conn.execute(
                "INSERT INTO pools(name, root, created) VALUES (?, ?, ?)", (name, root_s, utcnow())
            )
            pool_id = int(cur.lastrowid or 0)
    try:
        stored = str(root.relative_to(ws.root))
    except ValueError:
        stored = root_s
    if ws.config.pools.get(name) != stored:
        ws.config.pools[name] = stored
        ws.save_config()
    return pool_id


def _pool_options(store: Store, pool_id: int, **given: bool | None) -> tuple[bool, bool, bool, list[str]]:
    """The options of this scan: those given, the pool's remembered ones for the rest.

    Records them as the pool's options; returns (hash, exif, verify, names taken from memory).
    """
    import json

    with store.transaction() as conn:
        row = conn.execute("SELECT scan_options FROM pools WHERE id = ?", (pool_id,)).fetchone()
        known = json.loads(row[0]) if row and row[0] else {}
        now = {k: bool(known.get(k, False)) if v is None else bool(v) for k, v in given.items()}
        conn.execute("UPDATE pools SET scan_options = ? WHERE id = ?", (json.dumps(now), pool_id))
    taken = [k for k, v in given.items() if v is None and now[k]]
    return now["hash"], now["exif"], now["verify"], taken


# -- probing ------------------------------------------------------------------------------------
def _mp_context(hash: bool = False) -> Any:
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        # hashing workers start with numpy and the DCT imported once, in the server
        ctx.set_forkserver_preload(["tuiops.ops.probe", *(["numpy", "scipy.fftpack"] if hash else [])])
        return ctx
    return mp.get_context("spawn")


def _chunk_size(opts: ProbeOptions) -> int:
    if opts.hash or opts.verify:
        return 24
    return 64 if opts.exif else 160


def _probe_stream(
    root: bytes,
    paths: list[bytes],
    sizes: list[int],
    displays: list[str],
    opts: ProbeOptions,
    workers: int,
    crash_row: Any,
) -> Generator[tuple[int, list[tuple[Any, ...]]], None, None]:
    """Probe every file; yields ``(start index, rows)`` per chunk as chunks finish.

    With more than one worker the chunks run in a process pool. Should a worker die (a
    decoder crash, the out-of-memory killer), the files of the chunks in flight are
    probed again one at a time, so that the file that killed it is recorded as corrupt
    and the others get their real result. Should worker processes not work at all here,
    the rest is probed in this process.
    """
    n = len(paths)
    size = _chunk_size(opts)
    chunks = deque((a, min(a + size, n)) for a in range(0, n, size))

    def here(a: int, b: int) -> list[tuple[Any, ...]]:
        return probe_chunk(root, paths[a:b], sizes[a:b], displays[a:b], opts)

    if workers <= 1:
        for a, b in chunks:
            yield a, here(a, b)
        return
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    workers = max(1, min(workers, len(chunks)))
    ctx = _mp_context(opts.hash)
    ex = _process_pool(workers, ctx)
    suspects: deque[tuple[int, int]] = deque()
    pending: dict[Any, tuple[int, int, bool]] = {}
    try:
        while chunks or suspects or pending:
            if suspects:
                if not pending:
                    a, b = suspects.popleft()
                    pending[ex.submit(probe_chunk, root, paths[a:b], sizes[a:b], displays[a:b], opts)] = (
                        a,
                        b,
                        True,
                    )
            else:
                while chunks and len(pending) < workers * 2:
                    a, b = chunks.popleft()
                    pending[ex.submit(probe_chunk, root, paths[a:b], sizes[a:b], displays[a:b], opts)] = (
                        a,
                        b,
                        False,
                    )
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            crashed: list[int] = []
            broken = False
            for fut in done:
                a, b, suspect = pending.pop(fut)
                try:
                    rows = fut.result()
                except BrokenProcessPool:
                    broken = True
                    if suspect:
                        crashed.append(a)
                    else:
                        suspects.extend((i, i + 1) for i in range(a, b))
                    continue
                yield a, rows
            if not broken:
                continue
            for a, b, suspect in pending.values():
                if suspect:
                    suspects.appendleft((a, b))
                else:
                    suspects.extend((i, i + 1) for i in range(a, b))
            pending.clear()
            ex.shutdown(wait=True, cancel_futures=True)
            ex = _process_pool(workers, ctx)
            if crashed and not _pool_works(ex):
                # not the file's fault: worker processes cannot run here at all
                ex.shutdown(wait=True, cancel_futures=True)
                for a, b in [*((i, i + 1) for i in crashed), *suspects, *chunks]:
                    yield a, here(a, b)
                return
            for a in crashed:
                yield a, [crash_row(a)]
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _process_pool(workers: int, ctx: Any) -> Any:
    """Worker processes that die with this one (a killed scan leaves none holding its output)."""
    import functools
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=functools.partial(die_with_parent, direct=False),
        initargs=(os.getpid(),),
    )


def _pool_works(ex: Any) -> bool:
    """Whether a fresh process pool can run a trivial task."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return bool(ex.submit(probe_ping).result(timeout=120))
    except (BrokenProcessPool, TimeoutError, OSError):
        return False


# -- the store ---------------------------------------------------------------------------------
_UPSERT = """
INSERT INTO files(pool_id, relpath, relpath_raw, item_id, keyed, size, mtime_ns, width, height,
                  format, mode, phash, phash_method, exif, status, error, scanned, checks)
SELECT ?, relpath, relpath_raw, item_id, keyed, size, mtime_ns, width, height,
       format, mode, phash, CASE WHEN phash IS NULL THEN NULL ELSE {method} END,
       exif, status, error, ?, checks
FROM temp._scan_batch WHERE true
ON CONFLICT(pool_id, relpath) DO UPDATE SET
    relpath_raw = excluded.relpath_raw,
    item_id = excluded.item_id,
    keyed = excluded.keyed,
    width = excluded.width,
    height = excluded.height,
    format = excluded.format,
    mode = excluded.mode,
    phash = CASE WHEN {good} AND (excluded.checks & 2) = 0 THEN files.phash ELSE excluded.phash END,
    phash_method = CASE WHEN {good} AND (excluded.checks & 2) = 0 THEN files.phash_method
                        ELSE excluded.phash_method END,
    exif = CASE WHEN {good} AND (excluded.checks & 4) = 0 THEN files.exif ELSE excluded.exif END,
    status = CASE WHEN {keep} THEN files.status ELSE excluded.status END,
    error = CASE WHEN {keep} THEN files.error ELSE excluded.error END,
    checks = CASE WHEN {good} THEN (excluded.checks | files.checks) ELSE excluded.checks END,
    size = excluded.size,
    mtime_ns = excluded.mtime_ns,
    scanned = excluded.scanned
"""
# "same": the stored row describes this very file (a re-probe for a check it lacked);
# "good": and it was a readable image then, so what this probe did not look at (a hash,
# EXIF) is kept. A status found by a full decode outranks the header's guess.
_SAME = (
    "(files.size = excluded.size AND files.mtime_ns = excluded.mtime_ns "
    "AND files.status NOT IN ('missing', 'unreadable') AND excluded.status <> 'unreadable')"
)
_GOOD = f"({_SAME} AND files.status IN ('ok', 'wrong_ext'))"
_KEEP = f"({_SAME} AND (files.checks & 8) <> 0 AND (excluded.checks & 8) = 0)"
UPSERT_SQL = _UPSERT.format(good=_GOOD, keep=_KEEP, method=PHASH_METHOD)


def _write_batch(store: Store, pool_id: int, batch: pl.DataFrame, now: str) -> None:
    """Commit one batch of probed files (and their items) in one transaction."""
    import polars as pl

    keyed = batch.with_columns(keyed=pl.col("booru").is_not_null().cast(pl.Int64))
    with store.bulk() as tx:
        items = store.ensure_items(keyed.select("key", "booru", "fid", "width", "height"), tx).select(
            "key", "item_id"
        )
        rows = keyed.join(items.unique("key"), on="key", how="left").select(
            "relpath",
            "relpath_raw",
            "item_id",
            "keyed",
            "size",
            "mtime_ns",
            "width",
            "height",
            "format",
            "mode",
            "phash",
            "exif",
            "status",
            "error",
            "checks",
        )
        tx.ingest("_scan_batch", rows, temporary=True, mode="replace")
        tx.execute(UPSERT_SQL, (pool_id, now))
        tx.execute("DROP TABLE temp._scan_batch")


def _mark_missing(tx: BulkTx, ids: pl.DataFrame, now: str) -> None:
    tx.ingest("_scan_gone", ids, temporary=True, mode="replace")
    tx.execute(
        "UPDATE files SET status = 'missing', scanned = ? WHERE id IN (SELECT id FROM temp._scan_gone)",
        (now,),
    )
    tx.execute("DROP TABLE temp._scan_gone")


# -- the op ----------------------------------------------------------------------------------------
def scan(
    ws: Workspace,
    root: str | os.PathLike[str] | None,
    *,
    name: str | None = None,
    hash: bool | None = None,
    exif: bool | None = None,
    verify: bool | None = None,
    workers: int | None = None,
    follow_symlinks: bool = False,
    cluster: ClusterOptions | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ScanSummary:
    """Index the image folder ``root`` as the pool ``name`` (default: the folder's name).

    Header-only by default (size, format, mode and a truncation check from the file's
    tail); ``hash`` adds a 64-bit perceptual hash, ``exif`` the useful EXIF tags and
    ``verify`` a full decode. A pool remembers these options: one left at None is what
    the pool was last scanned with (so a plain rescan hashes new files of a hashed pool),
    True or False sets it for this scan and the next ones. ``root`` may be None to re-scan the known pool ``name``; a
    relative ``root`` is taken relative to the workspace folder.

    ``workers`` processes probe in parallel (default: every core; small scans run
    in-process). They are started with multiprocessing's forkserver, so a script that
    calls this with more than one worker must guard its entry point with
    ``if __name__ == "__main__":``.

    With ``cluster`` the files are probed (and hashed) by the workers of a Dask cluster,
    which open them below the pool's folder as ``--path-map`` maps it; this process walks
    the folder and writes the store.

    Raises :class:`~tuiops.errors.Cancelled` when ``cancel`` fires, after committing
    what was probed; the next scan carries on from there.
    """
    t0 = time.perf_counter()
    path, pool_name = _resolve_root(ws, root, name)
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    if cluster is not None and cluster.ship:
        raise UsageError(
            "scan cannot --ship files to a cluster", hint="give the workers' path with --path-map"
        )
    pool_id = _register_pool(ws, pool_name, path)
    store = ws.store
    hash, exif, verify, remembered = _pool_options(store, pool_id, hash=hash, exif=exif, verify=verify)
    opts = ProbeOptions(hash=hash, exif=exif, verify=verify, key_pattern=ws.config.key_pattern)
    params = {
        "pool": pool_name,
        "root": str(path),
        "hash": hash,
        "exif": exif,
        "verify": verify,
        "follow_symlinks": follow_symlinks,
    }
    summary = ScanSummary(pool=pool_name, root=str(path))
    summary.options = {"hash": hash, "exif": exif, "verify": verify}
    summary.remembered = remembered
    with (
        scan_lock(ws, pool_id, pool_name, str(path)),
        job(store, "scan", params) as handle,
        _interrupt_is_cancel(),
    ):
        summary.job_id = handle.id
        rep = Reporter("scan", progress, cancel, None, job_id=handle.id)
        root_b = os.fsencode(path)
        try:
            inner = os.fsencode(ws.root.resolve().relative_to(path))
            skip_in: bytes | None = b"" if inner == b"." else inner
        except ValueError:
            skip_in = None
        listing = _walk(root_b, follow_symlinks=follow_symlinks, skip_in=skip_in, rep=rep)
        summary.skipped = dict(sorted(listing.skipped.items()))
        summary.skipped_examples = listing.skipped_examples
        summary.unreadable_dirs = listing.unreadable_dirs
        todo = _plan(store, pool_id, listing, opts.wanted, summary)
        summary.label_files = listing.label_files
        if workers is None:
            kind = "decode" if hash or verify else "exif" if exif else "header"
            workers = 1 if todo.height < IN_PROCESS_BELOW[kind] else (os.cpu_count() or 1)
        _probe_and_store(ws, pool_id, root_b, todo, opts, workers, rep, handle.id, summary, cluster)
        summary.sizes_filled = _fill_item_sizes(store, pool_id)
        with store.transaction() as conn:
            conn.execute("UPDATE pools SET scanned = ? WHERE id = ?", (utcnow(), pool_id))
        _fill_counts(store, pool_id, summary)
        summary.elapsed = time.perf_counter() - t0
        handle.result = summary.to_dict()
    if progress is not None:
        progress(ProgressEvent("scan", todo.height, todo.height, "done", summary.job_id))
    return summary


@contextlib.contextmanager
def _interrupt_is_cancel() -> Iterator[None]:
    """Ctrl+C cancels the scan like a CancelToken does (the job is recorded as cancelled)."""
    try:
        yield
    except KeyboardInterrupt:
        raise Cancelled(
            "interrupted; the files probed so far are recorded and the next scan carries on"
        ) from None


def _plan(store: Store, pool_id: int, listing: _Listing, want: int, summary: ScanSummary) -> pl.DataFrame:
    """Compare the walk with the store: count new/changed/unchanged, mark vanished files
    missing, and return the files to probe (relpath, relpath_raw, path, size, mtime_ns)."""
    import polars as pl

    found = listing.frame()
    summary.total = found.height
    old = store.read_frame(
        "SELECT id, relpath, size AS old_size, mtime_ns AS old_mtime, status AS old_status, "
        "checks AS old_checks, CASE WHEN phash IS NOT NULL THEN coalesce(phash_method, 0) END AS old_method "
        "FROM files WHERE pool_id = ?",
        (pool_id,),
        {
            "id": pl.Int64,
            "relpath": pl.String,
            "old_size": pl.Int64,
            "old_mtime": pl.Int64,
            "old_status": pl.String,
            "old_checks": pl.Int64,
            "old_method": pl.Int64,
        },
    )
    is_new = pl.col("id").is_null()
    is_changed = ~is_new & (
        (pl.col("size") != pl.col("old_size"))
        | (pl.col("mtime_ns") != pl.col("old_mtime"))
        | (pl.col("old_status") == "missing")
    )
    lacks = (pl.col("old_status") == "unreadable") | ((pl.col("old_checks") & want) != want)
    if want & CHECK_HASH:  # a hash made by an older (or an unrecorded) method is made again
        lacks = lacks | (pl.col("old_method") != PHASH_METHOD).fill_null(False)
    both = found.join(old, on="relpath", how="left").with_columns(new=is_new, changed=is_changed)
    both = both.with_columns(todo=pl.col("new") | pl.col("changed") | lacks)
    counts = both.select(pl.col("new").sum(), pl.col("changed").sum()).row(0)
    summary.new, summary.changed = int(counts[0]), int(counts[1])
    summary.unchanged = summary.total - summary.new - summary.changed

    gone = old.join(found.select("relpath"), on="relpath", how="anti")
    labels = gone.filter(
        pl.col("relpath").str.to_lowercase().str.contains(_LABEL_RE)
        & pl.col("old_status").is_in(["not_image", "empty", "missing"])
    )
    if labels.height:  # indexed by an older scan as bad images: label files are not indexed
        with store.bulk() as tx:
            tx.ingest("_scan_labels", labels.select("id"), temporary=True, mode="replace")
            tx.execute("DELETE FROM files WHERE id IN (SELECT id FROM temp._scan_labels)")
            tx.execute("DROP TABLE temp._scan_labels")
        summary.label_records_dropped = labels.height
        gone = gone.join(labels.select("id"), on="id", how="anti")
    gone = gone.filter(pl.col("old_status") != "missing")
    if "" in listing.partial_dirs:  # the pool's own folder was listed in part: trust nothing
        gone = gone.clear()
    elif listing.partial_dirs:
        under = [pl.col("relpath").str.starts_with(d + "/") for d in listing.partial_dirs]
        gone = gone.filter(~pl.any_horizontal(under))
    if gone.height:
        with store.bulk() as tx:
            _mark_missing(tx, gone.select("id"), utcnow())
    summary.deleted = gone.height
    return both.filter("todo").select(
        "relpath",
        "relpath_raw",
        pl.coalesce(pl.col("relpath_raw"), pl.col("relpath").cast(pl.Binary)).alias("path"),
        "size",
        "mtime_ns",
    )


def _probe_and_store(
    ws: Workspace,
    pool_id: int,
    root: bytes,
    todo: pl.DataFrame,
    opts: ProbeOptions,
    workers: int,
    rep: Reporter,
    job_id: int,
    summary: ScanSummary,
    cluster: ClusterOptions | None = None,
) -> None:
    """Probe ``todo`` and commit the results in batches (every FLUSH_ROWS files or
    FLUSH_SECONDS); on cancel, commit what was probed before giving up."""
    import polars as pl

    store = ws.store
    n = todo.height
    rep.update(0, f"probing {n} files", total=n, force=True)
    paths = todo["path"].to_list()
    sizes = todo["size"].to_list()
    displays = todo["relpath"].to_list()
    schema = _result_schema()
    parts: list[tuple[int, list[tuple[Any, ...]]]] = []
    buffered = 0
    last_flush = time.monotonic()

    def crash_row(i: int) -> tuple[Any, ...]:
        k = ws.parse_key(displays[i])
        message = "the worker process probing this file died (a decoder crash, or out of memory)"
        return ("corrupt", None, None, None, None, None, None, message, CHECK_ALL, k.key, k.booru, k.fid)

    def flush() -> None:
        nonlocal buffered, last_flush
        if not parts:
            return
        frames = [
            pl.concat(
                [
                    todo.slice(a, len(rows)).select("relpath", "relpath_raw", "size", "mtime_ns"),
                    pl.DataFrame(rows, schema=schema, orient="row"),
                ],
                how="horizontal",
            )
            for a, rows in parts
        ]
        _write_batch(store, pool_id, pl.concat(frames), utcnow())
        summary.probed += buffered
        parts.clear()
        buffered = 0
        last_flush = time.monotonic()
        store.job_progress(job_id, summary.probed, n)

    if cluster is not None:
        from tuiops.ops.cluster import probe_on_cluster

        stream = probe_on_cluster(ws, cluster, root, paths, sizes, displays, opts, rep, cluster.task_images)
    else:
        stream = _probe_stream(root, paths, sizes, displays, opts, workers, crash_row)
    try:
        for a, rows in stream:
            fault("probed")  # TUIOPS_FAULT=probed:N kills the scan at the N-th chunk probed
            parts.append((a, rows))
            buffered += len(rows)
            if buffered >= FLUSH_ROWS or time.monotonic() - last_flush >= FLUSH_SECONDS:
                flush()
            rep.advance(len(rows))
    except (Cancelled, KeyboardInterrupt):
        stream.close()
        flush()  # keep what was probed: the next scan carries on from there
        raise
    finally:
        stream.close()
    flush()


def _fill_item_sizes(store: Store, pool_id: int) -> int:
    """Give the items of the pool that have no size yet the size of their image file."""
    with store.transaction() as conn:
        cur = conn.execute(
            "UPDATE items SET width = s.width, height = s.height FROM ("
            "  SELECT f.item_id, f.width, f.height FROM files f JOIN items i ON i.id = f.item_id"
            "  WHERE f.pool_id = ? AND i.width IS NULL AND f.width IS NOT NULL"
            "  AND f.status IN ('ok', 'wrong_ext') GROUP BY f.item_id"
            ") s WHERE items.id = s.item_id",
            (pool_id,),
        )
        return max(cur.rowcount, 0)


def _fill_counts(store: Store, pool_id: int, summary: ScanSummary) -> None:
    by_status = dict(
        store.execute("SELECT status, count(*) FROM files WHERE pool_id = ? GROUP BY status", (pool_id,))
    )
    summary.status = {s: int(by_status[s]) for s in STATUSES if s in by_status}
    summary.bad = {s: int(by_status[s]) for s in BAD_STATUSES if by_status.get(s)}
    for s in summary.bad:
        rows = store.execute(
            "SELECT relpath, error FROM files WHERE pool_id = ? AND status = ? ORDER BY relpath LIMIT ?",
            (pool_id, s, _EXAMPLES),
        )
        summary.bad_examples[s] = [f"{r}: {e}" if e else r for r, e in rows]
    summary.unkeyed = int(
        store.one(
            "SELECT count(*) FROM files WHERE pool_id = ? AND keyed = 0 AND status <> 'missing'", (pool_id,)
        )
    )
    summary.unkeyed_examples = [
        r[0]
        for r in store.execute(
            "SELECT relpath FROM files WHERE pool_id = ? AND keyed = 0 AND status <> 'missing' "
            "ORDER BY relpath LIMIT ?",
            (pool_id, _EXAMPLES),
        )
    ]
    summary.notes = int(
        store.one(
            "SELECT count(*) FROM files WHERE pool_id = ? AND status = 'ok' AND error IS NOT NULL", (pool_id,)
        )
    )


def list_pools(ws: Workspace) -> list[dict[str, Any]]:
    """Every pool (from the store and tuiops.toml) with its file counts per status and the
    scan options it remembers."""
    import json

    store = ws.store
    rows = store.execute(
        """
        SELECT p.name, p.root, p.scanned,
               count(f.id) - coalesce(sum(f.status = 'missing'), 0) AS files,
               coalesce(sum(f.status = 'ok'), 0) AS ok,
               coalesce(sum(f.status NOT IN ('ok', 'missing')), 0) AS bad,
               coalesce(sum(f.status = 'missing'), 0) AS missing,
               coalesce(sum(f.keyed = 0 AND f.status <> 'missing'), 0) AS unkeyed,
               coalesce(sum(f.phash IS NOT NULL AND f.status <> 'missing'), 0) AS hashed,
               p.scan_options
        FROM pools p LEFT JOIN files f ON f.pool_id = p.id
        GROUP BY p.id ORDER BY p.name
        """
    ).fetchall()
    cols = ("name", "root", "scanned", "files", "ok", "bad", "missing", "unkeyed", "hashed", "options")
    out = [dict(zip(cols, r, strict=True)) for r in rows]
    for r in out:
        r["options"] = [k for k, v in json.loads(r["options"] or "{}").items() if v]
    known = {r["name"] for r in out}
    for pname, p in sorted(ws.config.pools.items()):
        if pname not in known:
            out.append(
                {"name": pname, "root": str(ws.resolve(p)), "scanned": None}
                | dict.fromkeys(cols[3:-1], 0)
                | {"options": []}
            )
    return out
