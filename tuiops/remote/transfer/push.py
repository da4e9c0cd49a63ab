"""Put: local files and folders into a folder on a host."""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import stat
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    ConflictError,
    InputError,
    RemoteError,
)
from tuiops.fsutil import sha256_file
from tuiops.remote.transfer.engine import TransferJob
from tuiops.remote.transfer.plan import PART_RX, FilePlan, collect_local, part_base, part_name, part_tag
from tuiops.remote.transfer.sftp import (
    file_mode,
    flush_remote,
    gather_all,
    is_transient,
    list_folder,
    remote_disk_error,
    remote_sha256,
    remove_quietly,
    rename_into_place,
    write_requests,
)

if TYPE_CHECKING:
    import asyncssh

    from tuiops.remote.hosts import Connection, Hosts


class PutJob(TransferJob):
    """Put: one run of sending local files into a remote folder."""

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
            if is_transient(exc):
                raise
            attrs = None
            with contextlib.suppress(asyncssh.SFTPError):
                attrs = await sftp.stat(path)
            if attrs is not None:
                if stat.S_ISDIR(file_mode(attrs)):
                    return False
                raise ConflictError(
                    f"cannot create folder {path} on host {self.name}: a file of that name exists"
                ) from exc
            raise await remote_disk_error(sftp, self.name, path, exc, 1) from exc

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
                if not stat.S_ISDIR(file_mode(attrs)):
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
        listings: dict[str, dict[str, asyncssh.SFTPAttrs]] = {f: {} for f in created}
        listings.update(
            zip(existing, await asyncio.gather(*(list_folder(sftp, f) for f in existing)), strict=True)
        )
        return await self._decide(sftp, listings)

    async def _decide(
        self, sftp: asyncssh.SFTPClient, listings: dict[str, dict[str, asyncssh.SFTPAttrs]]
    ) -> list[FilePlan]:
        parts: dict[tuple[str, str], list[tuple[str, str, asyncssh.SFTPAttrs]]] = {}
        for folder, entries in listings.items():
            for fname, attrs in entries.items():
                m = PART_RX.match(fname)
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
                mode = file_mode(entry)
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
            for fname, tag, attrs in parts.get((folder, part_base(base)), []):
                full = posixpath.join(folder, fname)
                usable = tag == p.tag and stat.S_ISREG(file_mode(attrs)) and (attrs.size or 0) <= p.size
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
            await remove_quietly(sftp, full)
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
            if is_transient(exc):
                raise
            raise await remote_disk_error(sftp, self.name, part, exc, plan.size) from exc
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
                    writes = write_requests(fh, sftp, data, pos)
                    if last:
                        closing = True
                        answers = await gather_all(
                            [*writes, fh.setstat(stamp), flush_remote(fh), fh.stat(), fh.close()]
                        )
                        attrs = answers[-2]
                    else:
                        await gather_all(writes)
                    pos += len(data)
                    self.result.sent += len(data)
                    self.credit(plan, pos)
                    if last:
                        break
        except asyncssh.SFTPError as exc:
            if is_transient(exc):
                raise
            if not closing:
                closing = True
                with contextlib.suppress(asyncssh.SFTPError, OSError):
                    await fh.close()
            err = await remote_disk_error(sftp, self.name, plan.dst, exc, plan.size - pos)
            await remove_quietly(sftp, part)
            raise err from exc
        except InputError:
            if not closing:
                closing = True
                with contextlib.suppress(asyncssh.SFTPError, OSError):
                    await fh.close()
            await remove_quietly(sftp, part)
            raise
        except OSError as exc:
            if is_transient(exc):
                raise
            raise InputError(f"cannot read local file {plan.src}: {exc.strerror or exc}") from exc
        finally:
            if not closing:
                with contextlib.suppress(asyncssh.SFTPError, OSError):
                    await fh.close()
        st = os.stat(plan.src)
        if st.st_size != plan.size or st.st_mtime_ns != plan.mtime_ns:
            await remove_quietly(sftp, part)
            raise InputError(f"local file {plan.src} changed while it was being sent; run the command again")
        if attrs is None or attrs.size != plan.size:
            await remove_quietly(sftp, part)
            raise RemoteError(
                f"{plan.dst} on host {self.name} has {attrs.size if attrs else '?'} bytes after the transfer, "
                f"{plan.size} expected; the partial file was removed",
                hint="run the command again",
            )
        if self.verify == "sha256":
            local = await loop.run_in_executor(None, sha256_file, plan.src)
            remote = await remote_sha256(conn, sftp, part, self.chunk, size=plan.size)
            if local != remote:
                await remove_quietly(sftp, part)
                raise RemoteError(
                    f"{plan.dst} on host {self.name}: SHA-256 differs from {plan.src} after the transfer "
                    f"({remote[:12]}… vs {local[:12]}…); the partial file was removed",
                    hint="run the command again; if it happens again, check the host's disk",
                )
        await rename_into_place(sftp, part, plan.dst)
