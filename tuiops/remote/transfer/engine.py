"""What put and get share: the retry loop, the pool of workers over SFTP channels, progress."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from tuiops.errors import (
    Cancelled,
    RemoteError,
    UsageError,
)
from tuiops.fsutil import display_path
from tuiops.progress import CancelToken, ProgressFn, Reporter
from tuiops.remote.errors import ConnectionDropped, HostUnreachable
from tuiops.remote.hosts import NO_RETRY, RetryPolicy
from tuiops.remote.transfer.plan import EXISTING, MAX_CHANNELS, VERIFY, FilePlan, TransferResult
from tuiops.remote.transfer.sftp import error_reason, is_transient

if TYPE_CHECKING:
    import asyncssh

    from tuiops.remote.hosts import Connection, Hosts


class TransferJob:
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
                if not is_transient(exc):
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
            f"after {self.retry.attempts} tries ({done} of {len(self.plans) or '?'} files done): {error_reason(exc)}",
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
                if is_transient(exc):
                    raise
                raise RemoteError(
                    f"host {self.name} refused to open an SFTP channel: {error_reason(exc)}",
                    hint="is the sftp subsystem enabled in the host's sshd_config?",
                ) from exc
            todo = await self.plan(conn, sftps[0])
            extra = min(self.channels, len(todo)) - 1
            if extra > 0:
                opened = await asyncio.gather(*(conn.sftp() for _ in range(extra)), return_exceptions=True)
                for item in opened:
                    if isinstance(item, BaseException):
                        if is_transient(item):
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
        errors = [e for t in done if not t.cancelled() and (e := t.exception()) is not None]
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
        if not is_transient(e):
            return e
    return errors[0]
