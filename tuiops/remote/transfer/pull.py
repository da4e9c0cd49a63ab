"""Get: files and folders of a host into a local folder."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import posixpath
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    ConflictError,
    NotFoundError,
    RemoteError,
    UsageError,
)
from tuiops.fsutil import display_path, sha256_file
from tuiops.remote.transfer.engine import TransferJob
from tuiops.remote.transfer.plan import PART_RX, FilePlan, part_base, part_name, part_tag
from tuiops.remote.transfer.sftp import (
    file_mode,
    gather_all,
    join_reads,
    list_folder,
    read_requests,
    remote_sha256,
)

if TYPE_CHECKING:
    import asyncssh

    from tuiops.remote.hosts import Connection, Hosts


class GetJob(TransferJob):
    """Get: one run of fetching remote files into a local folder."""

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
        entries = await list_folder(sftp, folder)
        for fname in sorted(entries):
            attrs = entries[fname]
            full = posixpath.join(folder, fname)
            sub = posixpath.join(rel, fname)
            mode = file_mode(attrs)
            if stat.S_ISLNK(mode):
                try:
                    attrs = await sftp.stat(full)
                except asyncssh.SFTPError:
                    self.notes.append({"src": display_path(full), "status": "skipped", "note": "broken link"})
                    continue
                mode = file_mode(attrs)
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
                if stat.S_ISDIR(file_mode(attrs)):
                    await self._walk(sftp, home, path, base, plans)
                elif stat.S_ISREG(file_mode(attrs)):
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
                m = PART_RX.match(fname)
                if not m or m.group("base") != part_base(dst.name):
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
                    reads = read_requests(fh, sftp, n, pos)
                    last = pos + n >= plan.size
                    if last:
                        closing = True
                        answers = await gather_all([*reads, fh.stat(), fh.close()])
                        attrs = answers[-2]
                        data = join_reads(answers[:-2], sftp, n)
                    else:
                        data = join_reads(await gather_all(reads), sftp, n)
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
