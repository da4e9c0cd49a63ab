"""Files to and from a host over SFTP: temporary names, verification, resume, retries.

Each file is written under a temporary name beside its target,
``NAME.<tag>.part``, given its source's mode and modification time, flushed to
disk, and renamed into place only after its size (and, when asked, its SHA-256) is
verified, so a reader never sees half a file. The tag is derived
from the source's size and modification time: a ``.part`` whose tag matches the
unchanged source is continued from where it stopped (less one chunk, so that a
write still in flight when the connection died is made again); one whose source
has changed since is removed and the file starts over.

Many files move at once: ``concurrency`` files in flight, spread over ``channels``
SFTP channels of one connection (each channel is one SFTP server process on the
host; OpenSSH allows ``MaxSessions`` = 10 per connection by default). A dropped
connection is re-opened with exponential back-off and the transfer continues with
the files not yet done. On a full or read-only remote disk the ``.part`` is removed
(freeing the space) and the error says which it was.

Targets that exist already are left alone when identical (same size and
modification time); otherwise ``existing`` decides: ``error`` (the default: refuse
before anything is sent), ``skip`` or ``overwrite``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import posixpath
import re
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    Cancelled,
    ConflictError,
    InputError,
    NotFoundError,
    RemoteError,
    TuiopsError,
    UsageError,
)
from tuiops.fsutil import display_path, sha256_file
from tuiops.progress import CancelToken, ProgressFn, Reporter
from tuiops.remote.errors import ConnectionDropped, HostUnreachable, RemoteDiskError
from tuiops.remote.hosts import NO_RETRY, RetryPolicy

if TYPE_CHECKING:
    import asyncssh

    from tuiops.remote.hosts import Connection, Hosts

CHUNK = 2 * 1024 * 1024
TAG_LEN = 10
EXISTING = ("error", "skip", "overwrite")
VERIFY = ("size", "sha256")
MAX_CHANNELS = 8
HASH_EXEC_MIN = 8 * 1024 * 1024
_PART_RX = re.compile(r"^(?P<base>.+)\.(?P<tag>[0-9a-f]{10})\.part$")
_ST_RDONLY = 1


def part_tag(size: int, mtime_ns: int) -> str:
    """The tag of a ``.part``: identifies the source version (size and modification time)."""
    return hashlib.sha1(f"{size}:{mtime_ns}".encode()).hexdigest()[:TAG_LEN]


def _part_base(name: str) -> str:
    """The part of a ``.part`` name before its tag (the target name, shortened if need be)."""
    return part_name(name, "0" * TAG_LEN)[: -(TAG_LEN + 6)]


def part_name(name: str, tag: str) -> str:
    """``NAME.<tag>.part``, shortened so that it stays within 255 bytes."""
    suffix = f".{tag}.part"
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) + len(suffix) > 255:
        name = raw[: 255 - len(suffix)].decode("utf-8", "ignore")
    return name + suffix


@dataclass
class FilePlan:
    """One file of a transfer: where from, where to, and how far it got."""

    src: str
    dst: str
    rel: str
    size: int
    mtime: float
    mtime_ns: int
    tag: str
    mode: int = 0o644
    status: str = "pending"
    offset: int = 0
    resumed_from: int = 0
    credited: int = 0
    note: str = ""


@dataclass
class TransferResult:
    """What a put or get did."""

    host: str
    direction: str
    target: str = ""
    files: int = 0
    skipped: int = 0
    bytes: int = 0
    sent: int = 0
    resumed: int = 0
    retries: int = 0
    dirs: int = 0
    elapsed: float = 0.0
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, *, with_items: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not with_items:
            d.pop("items")
        return d


# -- local side ----------------------------------------------------------------------------------
def collect_local(paths: list[str | os.PathLike[str]]) -> tuple[list[tuple[Path, str]], list[str], list[str]]:
    """Expand local files and folders into (path, relative name) pairs, folders and skipped notes.

    A folder ``x`` arrives as ``REMOTE_DIR/x/…``; symbolic links to files are
    followed, links to folders and special files are skipped (and reported).
    """
    if not paths:
        raise UsageError("no local files given")
    files: list[tuple[Path, str]] = []
    dirs: list[str] = []
    skipped: list[str] = []
    for raw in paths:
        p = Path(raw).expanduser()
        try:
            st = p.stat()
        except FileNotFoundError as exc:
            raise NotFoundError(f"local file {p} does not exist", hint="check the path") from exc
        except OSError as exc:
            raise InputError(f"cannot read local file {p}: {exc.strerror}") from exc
        if stat.S_ISDIR(st.st_mode):
            base = p.resolve().name if p.name in ("", ".", "..") else p.name
            dirs.append(base)
            for root, dnames, fnames in os.walk(p, followlinks=False):
                dnames.sort()
                rel_root = os.path.relpath(root, p)
                prefix = base if rel_root == "." else posixpath.join(base, *Path(rel_root).parts)
                for d in list(dnames):
                    full = Path(root, d)
                    if full.is_symlink():
                        skipped.append(f"{full} (a link to a folder)")
                        dnames.remove(d)
                    else:
                        dirs.append(posixpath.join(prefix, d))
                for f in sorted(fnames):
                    full = Path(root, f)
                    try:
                        fst = full.stat()
                    except OSError:
                        skipped.append(f"{full} (a broken link or unreadable)")
                        continue
                    if not stat.S_ISREG(fst.st_mode):
                        skipped.append(f"{full} (not a regular file)")
                        continue
                    files.append((full, posixpath.join(prefix, f)))
        elif stat.S_ISREG(st.st_mode):
            files.append((p, p.name))
        else:
            raise InputError(f"local file {p} is not a regular file or a folder")
    seen: dict[str, Path] = {}
    for path, rel in files:
        if rel in seen:
            raise ConflictError(f"{seen[rel]} and {path} would both arrive as {rel}")
        seen[rel] = path
    return files, dirs, skipped


# -- remote helpers ------------------------------------------------------------------------------
def _is_transient(exc: BaseException) -> bool:
    import asyncssh

    if isinstance(exc, (ConnectionDropped, HostUnreachable)):
        return True
    if isinstance(exc, (asyncssh.PermissionDenied, asyncssh.HostKeyNotVerifiable)):
        return False
    return isinstance(
        exc,
        (
            asyncssh.ConnectionLost,
            asyncssh.DisconnectError,
            asyncssh.SFTPConnectionLost,
            asyncssh.SFTPNoConnection,
            ConnectionResetError,
            ConnectionAbortedError,
            BrokenPipeError,
            TimeoutError,
        ),
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TuiopsError):
        return exc.message
    return str(getattr(exc, "reason", "") or exc) or type(exc).__name__


async def _remote_disk_error(
    sftp: asyncssh.SFTPClient, host: str, path: str, exc: BaseException, need: int
) -> RemoteDiskError:
    """Explain a failed remote write: read-only, full, permission denied, or what the server said."""
    import asyncssh

    reason = f"the server said: {_reason(exc)}"
    hint = "check the folder on the host, or choose another target"
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        reason = "permission denied"
        hint = "check the folder's owner and permissions on the host, or choose another target"
    folder = posixpath.dirname(path) or "/"
    while True:
        try:
            vfs = await sftp.statvfs(folder)
            break
        except asyncssh.SFTPNoSuchFile:
            parent = posixpath.dirname(folder)
            if parent == folder:
                vfs = None
                break
            folder = parent
        except (asyncssh.SFTPError, OSError):
            vfs = None
            break
    if vfs is not None:
        free = vfs.bavail * vfs.frsize
        if vfs.flags & _ST_RDONLY:
            reason = "the remote file system is read-only"
            hint = "choose a writable target folder on the host"
        elif isinstance(exc, (asyncssh.SFTPFailure, asyncssh.SFTPNoSpaceOnFilesystem)) and free < max(
            need, 1
        ):
            reason = f"the remote disk is full ({free} bytes free, {need} more needed)"
            hint = "free space on the host (or choose another target) and run the command again"
        elif isinstance(exc, asyncssh.SFTPFailure) and not vfs.favail:
            reason = "the remote file system has no free inodes"
            hint = "free space on the host (or choose another target) and run the command again"
    return RemoteDiskError(f"cannot write {path} on host {host}: {reason}", hint=hint)


async def remote_sha256(
    conn: Connection, sftp: asyncssh.SFTPClient, path: str, chunk: int = CHUNK, *, size: int | None = None
) -> str:
    """SHA-256 of a remote file: ``sha256sum`` on the host for large files, else read back over SFTP.

    Starting a command costs a session set-up on the host (tens of milliseconds), so
    files below :data:`HASH_EXEC_MIN` are read back instead; so is any file when the
    host has no ``sha256sum``.
    """
    import shlex

    import asyncssh

    if size is None or size >= HASH_EXEC_MIN:
        try:
            res = await conn.conn.run(f"sha256sum -- {shlex.quote(path)}", check=False, encoding=None)
            out = res.stdout if isinstance(res.stdout, bytes) else b""
            if res.exit_status == 0 and re.match(rb"^[0-9a-f]{64}", out):
                return out[:64].decode()
        except asyncssh.ChannelOpenError:
            pass
    digest = hashlib.sha256()
    async with sftp.open(path, "rb", encoding=None, block_size=0) as fh:
        pos = 0
        while True:
            data = await _pread(fh, sftp, chunk, pos)
            if not data:
                break
            digest.update(data)
            pos += len(data)
    return digest.hexdigest()


def _block(sftp: asyncssh.SFTPClient, read: bool) -> int:
    """The request size the server accepts (its limits@openssh.com answer, else 16 KiB)."""
    limits = sftp.limits
    size = limits.max_read_len if read else limits.max_write_len
    return int(size) if size else 16384


async def _gather_all(coros: list[Any]) -> list[Any]:
    """Await all ``coros`` together; every outcome is collected, then the first error is raised."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def _write_requests(
    fh: asyncssh.SFTPClientFile, sftp: asyncssh.SFTPClient, data: bytes, pos: int
) -> list[Any]:
    """Write requests for ``data`` at ``pos``, one per block the server accepts (not yet awaited)."""
    block = _block(sftp, read=False)
    view = memoryview(data)
    return [fh.write(bytes(view[i : i + block]), pos + i) for i in range(0, len(data), block)]


def _read_requests(fh: asyncssh.SFTPClientFile, sftp: asyncssh.SFTPClient, size: int, pos: int) -> list[Any]:
    """Read requests for ``size`` bytes at ``pos``, one per block the server accepts (not yet awaited)."""
    block = _block(sftp, read=True)
    return [fh.read(min(block, size - i), pos + i) for i in range(0, size, block)]


def _join(parts: list[bytes], sftp: asyncssh.SFTPClient, size: int) -> bytes:
    """The answers of :func:`_read_requests` as one piece, up to the first short answer."""
    block = _block(sftp, read=True)
    out = bytearray()
    for i, part in enumerate(parts):
        out += part
        if len(part) < min(block, size - i * block):
            break
    return bytes(out)


async def _pread(fh: asyncssh.SFTPClientFile, sftp: asyncssh.SFTPClient, size: int, pos: int) -> bytes:
    """Read up to ``size`` bytes at ``pos`` as parallel requests; stops at the first short answer."""
    return _join(await _gather_all(_read_requests(fh, sftp, size, pos)), sftp, size)


def _mode(attrs: asyncssh.SFTPAttrs) -> int:
    return attrs.permissions or 0


async def _listdir(sftp: asyncssh.SFTPClient, path: str) -> dict[str, asyncssh.SFTPAttrs]:
    import asyncssh

    try:
        names = await sftp.readdir(path)
    except asyncssh.SFTPNoSuchFile:
        return {}
    out: dict[str, asyncssh.SFTPAttrs] = {}
    for n in names:
        fname = n.filename.decode("utf-8", "surrogateescape") if isinstance(n.filename, bytes) else n.filename
        if fname not in (".", ".."):
            out[fname] = n.attrs
    return out


async def _fsync(fh: asyncssh.SFTPClientFile) -> None:
    """Flush a remote file to its disk (fsync@openssh.com), where the server offers it."""
    import asyncssh

    with contextlib.suppress(asyncssh.SFTPOpUnsupported):
        await fh.fsync()


async def _rename(sftp: asyncssh.SFTPClient, src: str, dst: str) -> None:
    import asyncssh

    try:
        await sftp.posix_rename(src, dst)
    except asyncssh.SFTPOpUnsupported:
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await sftp.remove(dst)
        await sftp.rename(src, dst)


async def _remove_quietly(sftp: asyncssh.SFTPClient, path: str) -> None:
    import asyncssh

    with contextlib.suppress(asyncssh.SFTPError, OSError):
        await sftp.remove(path)


# -- the engine ------------------------------------------------------------------------------------
class _Transfer:
    """Shared machinery of put and get: retry loop, worker pool, progress."""

    direction = ""

    def __init__(
        self,
        hosts: Hosts,
        name: str,
        *,
        allow_outside: bool,
        existing: str,
        verify: str,
        concurrency: int,
        channels: int,
        chunk: int,
        progress: ProgressFn | None,
        cancel: CancelToken | None,
        retry: RetryPolicy | None,
        progress_interval: float = 0.1,
    ) -> None:
        if existing not in EXISTING:
            raise UsageError(f"existing must be one of {', '.join(EXISTING)}, not {existing!r}")
        if verify not in VERIFY:
            raise UsageError(f"verify must be one of {', '.join(VERIFY)}, not {verify!r}")
        if concurrency < 1 or channels < 1:
            raise UsageError("concurrency and channels must be at least 1")
        if chunk < 4096:
            raise UsageError("chunk must be at least 4096 bytes")
        self.hosts = hosts
        self.name = name
        self.host = hosts.get(name)
        self.allow_outside = allow_outside
        self.existing = existing
        self.verify = verify
        self.concurrency = concurrency
        self.channels = min(channels, concurrency, MAX_CHANNELS)
        self.chunk = chunk
        self.retry = retry or hosts.retry
        self.rep = Reporter(f"remote.{self.direction}", progress, cancel, interval=progress_interval)
        self.result = TransferResult(host=name, direction=self.direction)
        self.plans: list[FilePlan] = []
        self.notes: list[dict[str, Any]] = []
        self.t0 = time.monotonic()

    # progress ---------------------------------------------------------------------------------
    def credit(self, plan: FilePlan, pos: int) -> None:
        """Count bytes of ``plan`` up to ``pos`` as done (each byte once, however often it is sent)."""
        gain = pos - plan.credited
        if gain > 0:
            plan.credited = pos
            done_files = self.result.files + self.result.skipped
            self.rep.advance(gain, f"{done_files}/{len(self.plans)} files {display_path(plan.rel)}")
        else:
            self.rep.check()

    # the loop ----------------------------------------------------------------------------------
    async def run(self) -> TransferResult:
        connected = False
        failures = 0
        while True:
            mark = self.rep.done
            try:
                conn = await self.hosts.connect(self.name, retry=NO_RETRY if connected else None)
            except (HostUnreachable, ConnectionDropped) as exc:
                if not connected:
                    raise
                failures += 1
                if failures >= self.retry.attempts:
                    raise self._dropped(exc) from exc
                await asyncio.sleep(self.retry.delay(failures))
                continue
            connected = True
            try:
                async with conn:
                    await self.session(conn)
                break
            except BaseException as exc:
                if not _is_transient(exc):
                    raise
                if self.rep.done > mark:
                    failures = 0
                failures += 1
                self.result.retries += 1
                if failures >= self.retry.attempts:
                    raise self._dropped(exc) from exc
                await asyncio.sleep(self.retry.delay(failures))
        self.result.elapsed = round(time.monotonic() - self.t0, 3)
        self.result.items = [
            {
                "src": display_path(p.src),
                "dst": display_path(p.dst),
                "size": p.size,
                "status": p.status,
                "resumed_from": p.resumed_from,
                **({"note": p.note} if p.note else {}),
            }
            for p in self.plans
        ] + self.notes
        self.rep.update(self.rep.done, "done", force=True)
        return self.result

    def _dropped(self, exc: BaseException) -> ConnectionDropped:
        done = sum(1 for p in self.plans if p.status in ("done", "skipped"))
        return ConnectionDropped(
            f"the connection to {self.name} was lost during the {self.direction} and did not come back "
            f"after {self.retry.attempts} tries ({done} of {len(self.plans) or '?'} files done): {_reason(exc)}",
            hint="run the same command again when the host is back: finished files are skipped and "
            "partial ones continue from their .part",
        )

    async def session(self, conn: Connection) -> None:
        import asyncssh

        sftps: list[asyncssh.SFTPClient] = []
        try:
            try:
                sftps.append(await conn.sftp())
            except (asyncssh.ChannelOpenError, asyncssh.SFTPError) as exc:
                if _is_transient(exc):
                    raise
                raise RemoteError(
                    f"host {self.name} refused to open an SFTP channel: {_reason(exc)}",
                    hint="is the sftp subsystem enabled in the host's sshd_config?",
                ) from exc
            todo = await self.plan(conn, sftps[0])
            extra = min(self.channels, len(todo)) - 1
            if extra > 0:
                opened = await asyncio.gather(*(conn.sftp() for _ in range(extra)), return_exceptions=True)
                for item in opened:
                    if isinstance(item, BaseException):
                        if _is_transient(item):
                            raise item
                    else:
                        sftps.append(item)
            await self._pool(conn, sftps, todo)
        finally:
            for s in sftps:
                s.exit()

    async def _pool(self, conn: Connection, sftps: list[asyncssh.SFTPClient], todo: list[FilePlan]) -> None:
        queue: asyncio.Queue[FilePlan] = asyncio.Queue()
        for p in todo:
            queue.put_nowait(p)

        async def worker(i: int) -> None:
            sftp = sftps[i % len(sftps)]
            while True:
                try:
                    plan = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self.transfer_one(conn, sftp, plan)
                plan.status = "done"
                self.result.files += 1
                self.result.bytes += plan.size
                if plan.resumed_from:
                    self.result.resumed += 1

        n = min(self.concurrency, max(1, len(todo)))
        tasks = [asyncio.create_task(worker(i)) for i in range(n)]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        errors = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
        if errors:
            raise _most_telling(errors)

    async def plan(self, conn: Connection, sftp: asyncssh.SFTPClient) -> list[FilePlan]:
        raise NotImplementedError

    async def transfer_one(self, conn: Connection, sftp: asyncssh.SFTPClient, plan: FilePlan) -> None:
        raise NotImplementedError


def _most_telling(errors: list[BaseException]) -> BaseException:
    """The error to report when several workers failed: a cancel, then a non-transient one."""
    for e in errors:
        if isinstance(e, Cancelled):
            return e
    for e in errors:
        if not _is_transient(e):
            return e
    return errors[0]


# -- put ---------------------------------------------------------------------------------------------
class _Put(_Transfer):
    direction = "put"

    def __init__(
        self, hosts: Hosts, name: str, local: list[str | os.PathLike[str]], remote_dir: str, **kw: Any
    ):
        super().__init__(hosts, name, **kw)
        self.local_files, self.local_dirs, skipped = collect_local(local)
        self.remote_dir = remote_dir
        self.skipped_local = skipped
        self.rep.total = 0
        for path, rel in self.local_files:
            st = path.stat()
            self.plans.append(
                FilePlan(
                    src=str(path),
                    dst=rel,
                    rel=rel,
                    size=st.st_size,
                    mtime=st.st_mtime,
                    mtime_ns=st.st_mtime_ns,
                    tag=part_tag(st.st_size, st.st_mtime_ns),
                    mode=stat.S_IMODE(st.st_mode) & 0o777,
                )
            )
            self.rep.total += st.st_size

    async def _ensure_dir(self, sftp: asyncssh.SFTPClient, path: str) -> bool:
        """Make sure folder ``path`` exists (its parent does); True when it was created now."""
        import asyncssh

        try:
            await sftp.mkdir(path)
            return True
        except asyncssh.SFTPError as exc:
            if _is_transient(exc):
                raise
            attrs = None
            with contextlib.suppress(asyncssh.SFTPError):
                attrs = await sftp.stat(path)
            if attrs is not None:
                if stat.S_ISDIR(_mode(attrs)):
                    return False
                raise ConflictError(
                    f"cannot create folder {path} on host {self.name}: a file of that name exists"
                ) from exc
            raise await _remote_disk_error(sftp, self.name, path, exc, 1) from exc

    async def plan(self, conn: Connection, sftp: asyncssh.SFTPClient) -> list[FilePlan]:
        import asyncssh

        from tuiops.remote.errors import OutsideHome
        from tuiops.remote.paths import confine, is_within, realpath, resolve_home

        home = await resolve_home(sftp, self.host)
        target = await confine(sftp, self.name, home, self.remote_dir, allow_outside=self.allow_outside)
        self.result.target = target
        folders = {target}
        folders.update(posixpath.join(target, d) for d in self.local_dirs)
        for p in self.plans:
            p.dst = posixpath.join(target, p.rel)
            folders.add(posixpath.dirname(p.dst))
        ordered = sorted(folders)
        if not self.allow_outside:
            reals = await asyncio.gather(*(realpath(sftp, f) for f in ordered))
            for folder, real in zip(ordered, reals, strict=True):
                if not is_within(real, home):
                    raise OutsideHome(
                        f"remote folder {folder} on host {self.name} resolves to {real}, outside its home "
                        f"{home} (through a symbolic link)",
                        hint="remove the link on the host, or pass --outside-home to allow it",
                    )
        # the target's missing ancestors first, then every folder level by level (parents first)
        missing: list[str] = []
        probe = target
        while True:
            try:
                attrs = await sftp.stat(probe)
                if not stat.S_ISDIR(_mode(attrs)):
                    raise ConflictError(
                        f"cannot create folder {probe} on host {self.name}: a file of that name exists"
                    )
                break
            except asyncssh.SFTPNoSuchFile:
                missing.insert(0, probe)
                parent = posixpath.dirname(probe)
                if parent == probe:
                    break
                probe = parent
        created: set[str] = set()
        for folder in missing[:-1]:
            if await self._ensure_dir(sftp, folder):
                created.add(folder)
        by_depth: dict[int, list[str]] = {}
        for f in ordered:
            by_depth.setdefault(f.count("/"), []).append(f)
        for depth in sorted(by_depth):
            level = by_depth[depth]
            made = await asyncio.gather(*(self._ensure_dir(sftp, f) for f in level))
            created.update(f for f, new in zip(level, made, strict=True) if new)
        self.result.dirs = len(folders)
        existing = [f for f in ordered if f not in created]
        listings = {f: {} for f in created}
        listings.update(
            zip(existing, await asyncio.gather(*(_listdir(sftp, f) for f in existing)), strict=True)
        )
        return await self._decide(sftp, listings)

    async def _decide(
        self, sftp: asyncssh.SFTPClient, listings: dict[str, dict[str, asyncssh.SFTPAttrs]]
    ) -> list[FilePlan]:
        parts: dict[tuple[str, str], list[tuple[str, str, asyncssh.SFTPAttrs]]] = {}
        for folder, entries in listings.items():
            for fname, attrs in entries.items():
                m = _PART_RX.match(fname)
                if m:
                    parts.setdefault((folder, m.group("base")), []).append((fname, m.group("tag"), attrs))
        conflicts: list[str] = []
        todo: list[FilePlan] = []
        stale: list[str] = []
        for p in self.plans:
            if p.status in ("done", "skipped"):
                continue
            folder, base = posixpath.split(p.dst)
            entry = listings.get(folder, {}).get(base)
            p.offset = 0
            if entry is not None:
                mode = _mode(entry)
                if stat.S_ISDIR(mode):
                    conflicts.append(f"{p.dst} (a folder)")
                    continue
                identical = stat.S_ISREG(mode) and entry.size == p.size and entry.mtime == int(p.mtime)
                if identical or self.existing == "skip":
                    p.status = "skipped"
                    p.note = "identical" if identical else "exists"
                    self.result.skipped += 1
                    self.credit(p, p.size)
                    continue
                if self.existing == "error":
                    conflicts.append(p.dst)
                    continue
            for fname, tag, attrs in parts.get((folder, _part_base(base)), []):
                full = posixpath.join(folder, fname)
                usable = tag == p.tag and stat.S_ISREG(_mode(attrs)) and (attrs.size or 0) <= p.size
                if usable:
                    p.offset = max(0, (attrs.size or 0) - self.chunk)
                    p.resumed_from = max(p.resumed_from, p.offset) if p.offset else p.resumed_from
                else:
                    stale.append(full)
            todo.append(p)
        if conflicts:
            shown = "\n  ".join(conflicts[:10]) + (
                f"\n  … and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
            )
            raise ConflictError(
                f"{len(conflicts)} target(s) on host {self.name} exist already and differ:\n  {shown}",
                hint="pass --existing overwrite to replace them or --existing skip to leave them; nothing was sent",
            )
        for full in stale:
            await _remove_quietly(sftp, full)
        return todo

    async def transfer_one(self, conn: Connection, sftp: asyncssh.SFTPClient, plan: FilePlan) -> None:
        """Send one file: write ``.part`` from its offset, stamp and check it, rename it.

        The last chunk's writes go out together with the requests that finish the
        file (set mode and time, flush to disk, stat, close): a server handles the
        requests on one handle in order, so a small file costs three round trips
        (open; write+stamp+flush+stat+close; rename).
        """
        import asyncssh

        folder, base = posixpath.split(plan.dst)
        part = posixpath.join(folder, part_name(base, plan.tag))
        loop = asyncio.get_running_loop()
        pos = plan.offset
        self.credit(plan, pos)
        try:
            fh = await sftp.open(
                part,
                asyncssh.FXF_WRITE | asyncssh.FXF_CREAT,
                asyncssh.SFTPAttrs(permissions=plan.mode | 0o200),
                encoding=None,
                block_size=0,
            )
        except asyncssh.SFTPError as exc:
            if _is_transient(exc):
                raise
            raise await _remote_disk_error(sftp, self.name, part, exc, plan.size) from exc
        stamp = asyncssh.SFTPAttrs(permissions=plan.mode, atime=int(plan.mtime), mtime=int(plan.mtime))
        closing = False
        attrs = None
        try:
            with open(plan.src, "rb") as src:
                src.seek(pos)
                while True:
                    n = min(self.chunk, plan.size - pos)
                    data = b""
                    if n:
                        data = src.read(n) if n <= 65536 else await loop.run_in_executor(None, src.read, n)
                        if not data:
                            raise InputError(
                                f"local file {plan.src} shrank while it was being sent; run the command again"
                            )
                    last = pos + len(data) >= plan.size
                    writes = _write_requests(fh, sftp, data, pos)
                    if last:
                        closing = True
                        answers = await _gather_all(
                            [*writes, fh.setstat(stamp), _fsync(fh), fh.stat(), fh.close()]
                        )
                        attrs = answers[-2]
                    else:
                        await _gather_all(writes)
                    pos += len(data)
                    self.result.sent += len(data)
                    self.credit(plan, pos)
                    if last:
                        break
        except asyncssh.SFTPError as exc:
            if _is_transient(exc):
                raise
            if not closing:
                closing = True
                with contextlib.suppress(asyncssh.SFTPError, OSError):
                    await fh.close()
            err = await _remote_disk_error(sftp, self.name, plan.dst, exc, plan.size - pos)
            await _remove_quietly(sftp, part)
            raise err from exc
        except InputError:
            if not closing:
                closing = True
                with contextlib.suppress(asyncssh.SFTPError, OSError):
                    await fh.close()
            await _remove_quietly(sftp, part)
            raise
        except OSError as exc:
            if _is_transient(exc):
                raise
            raise InputError(f"cannot read local file {plan.src}: {exc.strerror or exc}") from exc
        finally:
            if not closing:
                with contextlib.suppress(asyncssh.SFTPError, OSError):
                    await fh.close()
        st = os.stat(plan.src)
        if st.st_size != plan.size or st.st_mtime_ns != plan.mtime_ns:
            await _remove_quietly(sftp, part)
            raise InputError(f"local file {plan.src} changed while it was being sent; run the command again")
        if attrs is None or attrs.size != plan.size:
            await _remove_quietly(sftp, part)
            raise RemoteError(
                f"{plan.dst} on host {self.name} has {attrs.size if attrs else '?'} bytes after the transfer, "
                f"{plan.size} expected; the partial file was removed",
                hint="run the command again",
            )
        if self.verify == "sha256":
            local = await loop.run_in_executor(None, sha256_file, plan.src)
            remote = await remote_sha256(conn, sftp, part, self.chunk, size=plan.size)
            if local != remote:
                await _remove_quietly(sftp, part)
                raise RemoteError(
                    f"{plan.dst} on host {self.name}: SHA-256 differs from {plan.src} after the transfer "
                    f"({remote[:12]}… vs {local[:12]}…); the partial file was removed",
                    hint="run the command again; if it happens again, check the host's disk",
                )
        await _rename(sftp, part, plan.dst)


# -- get ---------------------------------------------------------------------------------------------
class _Get(_Transfer):
    direction = "get"

    def __init__(
        self, hosts: Hosts, name: str, remote: list[str], local_dir: str | os.PathLike[str], **kw: Any
    ):
        super().__init__(hosts, name, **kw)
        if not remote:
            raise UsageError("no remote files given")
        self.remote = list(remote)
        self.local_dir = Path(local_dir).expanduser()
        if self.local_dir.exists() and not self.local_dir.is_dir():
            raise ConflictError(f"local target {self.local_dir} exists and is not a folder")
        self.rep.total = None
        self.dirs: list[str] = []
        self.planned = False

    async def _walk(
        self, sftp: asyncssh.SFTPClient, home: str, folder: str, rel: str, out: list[FilePlan]
    ) -> None:
        import asyncssh

        from tuiops.remote.paths import is_within, realpath

        self.dirs.append(rel)
        entries = await _listdir(sftp, folder)
        for fname in sorted(entries):
            attrs = entries[fname]
            full = posixpath.join(folder, fname)
            sub = posixpath.join(rel, fname)
            mode = _mode(attrs)
            if stat.S_ISLNK(mode):
                try:
                    attrs = await sftp.stat(full)
                except asyncssh.SFTPError:
                    self.notes.append({"src": display_path(full), "status": "skipped", "note": "broken link"})
                    continue
                mode = _mode(attrs)
                if stat.S_ISDIR(mode):
                    self.notes.append(
                        {"src": display_path(full), "status": "skipped", "note": "link to a folder"}
                    )
                    continue
                if not self.allow_outside and not is_within(await realpath(sftp, full), home):
                    self.notes.append(
                        {"src": display_path(full), "status": "skipped", "note": "link out of the home"}
                    )
                    continue
            if stat.S_ISDIR(mode):
                await self._walk(sftp, home, full, sub, out)
            elif stat.S_ISREG(mode):
                out.append(self._file_plan(full, sub, attrs))

    def _file_plan(self, src: str, rel: str, attrs: asyncssh.SFTPAttrs) -> FilePlan:
        size = attrs.size or 0
        mtime = int(attrs.mtime or 0)
        return FilePlan(
            src=src,
            dst=str(self.local_dir.joinpath(*rel.split("/"))),
            rel=rel,
            size=size,
            mtime=float(mtime),
            mtime_ns=mtime * 1_000_000_000,
            tag=part_tag(size, mtime * 1_000_000_000),
            mode=(attrs.permissions or 0o644) & 0o777,
        )

    async def plan(self, conn: Connection, sftp: asyncssh.SFTPClient) -> list[FilePlan]:
        import asyncssh

        from tuiops.remote.paths import confine, resolve_home

        if not self.planned:
            home = await resolve_home(sftp, self.host)
            self.result.target = str(self.local_dir)
            plans: list[FilePlan] = []
            for raw in self.remote:
                path = await confine(sftp, self.name, home, raw, allow_outside=self.allow_outside)
                try:
                    attrs = await sftp.stat(path)
                except asyncssh.SFTPNoSuchFile as exc:
                    raise NotFoundError(f"no such file on host {self.name}: {path}") from exc
                except asyncssh.SFTPPermissionDenied as exc:
                    raise RemoteError(f"cannot read {path} on host {self.name}: permission denied") from exc
                base = posixpath.basename(path.rstrip("/")) or "root"
                if stat.S_ISDIR(_mode(attrs)):
                    await self._walk(sftp, home, path, base, plans)
                elif stat.S_ISREG(_mode(attrs)):
                    plans.append(self._file_plan(path, base, attrs))
                else:
                    raise RemoteError(f"{path} on host {self.name} is not a regular file or a folder")
            seen: dict[str, str] = {}
            for p in plans:
                if p.dst in seen:
                    raise ConflictError(
                        f"{seen[p.dst]} and {p.src} on host {self.name} would both arrive as {p.dst}"
                    )
                seen[p.dst] = p.src
            self.plans = plans
            self.rep.total = sum(p.size for p in plans)
            self.planned = True
            try:
                self.local_dir.mkdir(parents=True, exist_ok=True)
                for d in sorted(set(self.dirs)):
                    self.local_dir.joinpath(*d.split("/")).mkdir(parents=True, exist_ok=True)
            except FileExistsError as exc:
                raise ConflictError(
                    f"cannot create local folder {exc.filename}: a file of that name exists"
                ) from exc
            except OSError as exc:
                from tuiops.fsutil import disk_error

                raise disk_error(exc.filename or self.local_dir, exc, "create") from exc
            self.result.dirs = len(set(self.dirs))
        return self._decide()

    def _decide(self) -> list[FilePlan]:
        conflicts: list[str] = []
        todo: list[FilePlan] = []
        listings: dict[str, list[str]] = {}
        for p in self.plans:
            if p.status in ("done", "skipped"):
                continue
            dst = Path(p.dst)
            p.offset = 0
            try:
                st = dst.lstat()
            except FileNotFoundError:
                st = None
            if st is not None:
                if stat.S_ISDIR(st.st_mode):
                    conflicts.append(f"{dst} (a folder)")
                    continue
                identical = (
                    stat.S_ISREG(st.st_mode) and st.st_size == p.size and int(st.st_mtime) == int(p.mtime)
                )
                if identical or self.existing == "skip":
                    p.status = "skipped"
                    p.note = "identical" if identical else "exists"
                    self.result.skipped += 1
                    self.credit(p, p.size)
                    continue
                if self.existing == "error":
                    conflicts.append(str(dst))
                    continue
            folder = str(dst.parent)
            if folder not in listings:
                try:
                    listings[folder] = os.listdir(folder)
                except OSError:
                    listings[folder] = []
            for fname in listings[folder]:
                m = _PART_RX.match(fname)
                if not m or m.group("base") != _part_base(dst.name):
                    continue
                full = dst.parent / fname
                try:
                    pst = full.lstat()
                except OSError:
                    continue
                if m.group("tag") == p.tag and stat.S_ISREG(pst.st_mode) and pst.st_size <= p.size:
                    p.offset = max(0, pst.st_size - self.chunk)
                    if p.offset:
                        p.resumed_from = max(p.resumed_from, p.offset)
                else:
                    with contextlib.suppress(OSError):
                        full.unlink()
            todo.append(p)
        if conflicts:
            shown = "\n  ".join(conflicts[:10]) + (
                f"\n  … and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
            )
            raise ConflictError(
                f"{len(conflicts)} local target(s) exist already and differ:\n  {shown}",
                hint="pass --existing overwrite to replace them or --existing skip to leave them; nothing was fetched",
            )
        return todo

    async def transfer_one(self, conn: Connection, sftp: asyncssh.SFTPClient, plan: FilePlan) -> None:
        """Fetch one file into its local ``.part``, flush and check it, then rename it.

        The last chunk's reads go out together with stat and close (two round trips
        for a small file); the local file work runs in a worker thread, so one
        file's disk flush overlaps the next file's transfer.
        """
        import asyncssh

        from tuiops.fsutil import disk_error

        dst = Path(plan.dst)
        part = dst.parent / part_name(dst.name, plan.tag)
        loop = asyncio.get_running_loop()
        pos = plan.offset
        self.credit(plan, pos)
        try:
            fd = await loop.run_in_executor(None, lambda: os.open(part, os.O_WRONLY | os.O_CREAT, 0o644))
        except OSError as exc:
            raise disk_error(part, exc) from exc
        try:
            try:
                fh = await sftp.open(plan.src, "rb", encoding=None, block_size=0)
            except asyncssh.SFTPNoSuchFile as exc:
                raise NotFoundError(
                    f"{plan.src} vanished from host {self.name} before it was fetched"
                ) from exc
            except asyncssh.SFTPPermissionDenied as exc:
                raise RemoteError(f"cannot read {plan.src} on host {self.name}: permission denied") from exc
            closing = False
            attrs = None
            try:
                while True:
                    n = min(self.chunk, plan.size - pos)
                    reads = _read_requests(fh, sftp, n, pos)
                    last = pos + n >= plan.size
                    if last:
                        closing = True
                        answers = await _gather_all([*reads, fh.stat(), fh.close()])
                        attrs = answers[-2]
                        data = _join(answers[:-2], sftp, n)
                    else:
                        data = _join(await _gather_all(reads), sftp, n)
                    if len(data) < n:
                        raise RemoteError(
                            f"{plan.src} on host {self.name} shrank while it was being fetched; run the command again"
                        )
                    if data:
                        try:
                            if len(data) <= 65536:
                                os.pwrite(fd, data, pos)
                            else:
                                await loop.run_in_executor(None, os.pwrite, fd, data, pos)
                        except OSError as exc:
                            err = disk_error(part, exc)
                            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                                os.close(fd)
                                fd = -1
                                with contextlib.suppress(OSError):
                                    part.unlink()
                            raise err from exc
                    pos += len(data)
                    self.result.sent += len(data)
                    self.credit(plan, pos)
                    if last:
                        break
            finally:
                if not closing:
                    with contextlib.suppress(asyncssh.SFTPError, OSError):
                        await fh.close()
            try:
                size = await loop.run_in_executor(None, _flush_local, fd, plan.size)
            except OSError as exc:
                raise disk_error(part, exc) from exc
        finally:
            if fd >= 0:
                os.close(fd)
        if size != plan.size:
            part.unlink()
            raise RemoteError(f"{dst} has the wrong size after the transfer; run the command again")
        if attrs is None or (attrs.size or 0) != plan.size or int(attrs.mtime or 0) != int(plan.mtime):
            part.unlink()
            raise RemoteError(
                f"{plan.src} on host {self.name} changed while it was being fetched; run the command again"
            )
        if self.verify == "sha256":
            local = await loop.run_in_executor(None, sha256_file, part)
            remote = await remote_sha256(conn, sftp, plan.src, self.chunk, size=plan.size)
            if local != remote:
                part.unlink()
                raise RemoteError(
                    f"{dst}: SHA-256 differs from {plan.src} on host {self.name} after the transfer; "
                    "the partial file was removed",
                    hint="run the command again",
                )
        try:
            await loop.run_in_executor(None, _place_local, part, dst, plan.mode, plan.mtime)
        except OSError as exc:
            raise disk_error(dst, exc) from exc


def _flush_local(fd: int, size: int) -> int:
    """Cut a local ``.part`` to ``size``, flush it to disk and return its size."""
    os.ftruncate(fd, size)
    os.fsync(fd)
    return os.fstat(fd).st_size


def _place_local(part: Path, dst: Path, mode: int, mtime: float) -> None:
    """Give a finished local ``.part`` its mode and time and rename it into place."""
    os.chmod(part, mode)
    os.utime(part, (mtime, mtime))
    os.replace(part, dst)


# -- entry points ----------------------------------------------------------------------------------
async def put(
    hosts: Hosts,
    name: str,
    local_paths: list[str | os.PathLike[str]],
    remote_dir: str,
    *,
    allow_outside: bool = False,
    existing: str = "error",
    verify: str = "size",
    concurrency: int = 8,
    channels: int = 4,
    chunk: int = CHUNK,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    retry: RetryPolicy | None = None,
    progress_interval: float = 0.1,
) -> TransferResult:
    """Send local files and folders into ``remote_dir`` on host ``name`` (created if missing).

    ``remote_dir`` is taken from the host's home when relative and must stay inside
    it unless ``allow_outside``. Progress counts bytes.
    """
    job = _Put(
        hosts,
        name,
        local_paths,
        remote_dir,
        allow_outside=allow_outside,
        existing=existing,
        verify=verify,
        concurrency=concurrency,
        channels=channels,
        chunk=chunk,
        progress=progress,
        cancel=cancel,
        retry=retry,
        progress_interval=progress_interval,
    )
    job.notes.extend({"src": display_path(note), "status": "skipped"} for note in job.skipped_local)
    return await job.run()


async def get(
    hosts: Hosts,
    name: str,
    remote_paths: list[str],
    local_dir: str | os.PathLike[str],
    *,
    allow_outside: bool = False,
    existing: str = "error",
    verify: str = "size",
    concurrency: int = 8,
    channels: int = 4,
    chunk: int = CHUNK,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    retry: RetryPolicy | None = None,
    progress_interval: float = 0.1,
) -> TransferResult:
    """Fetch remote files and folders from host ``name`` into ``local_dir`` (created if missing)."""
    job = _Get(
        hosts,
        name,
        remote_paths,
        local_dir,
        allow_outside=allow_outside,
        existing=existing,
        verify=verify,
        concurrency=concurrency,
        channels=channels,
        chunk=chunk,
        progress=progress,
        cancel=cancel,
        retry=retry,
        progress_interval=progress_interval,
    )
    return await job.run()


__all__ = [
    "CHUNK",
    "EXISTING",
    "VERIFY",
    "FilePlan",
    "TransferResult",
    "collect_local",
    "get",
    "part_name",
    "part_tag",
    "put",
    "remote_sha256",
    "sha256_file",
]
