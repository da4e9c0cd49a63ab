"""The terminal app: FAR-style panels over a workspace, thin like the CLI.

Screens read through :mod:`tuiops.ops.browse` (never SQL of their own); anything longer
than a page read runs in a thread worker with its own read-only store connection and
posts a message back. Commands typed on the command line run as ``tuiops`` subprocesses
that report progress, result and error as JSON events on a pipe of their own
(:mod:`tuiops.events`): progress shows in the jobs pane, errors show the same message and
hint as the CLI, and what the command prints shows in the output screen (Ctrl+O).

Workers only post messages and run with ``exit_on_error=False``; one handler
(:meth:`TuiopsApp.report_failure`) reports what a worker raises.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType

from tuiops.errors import TuiopsError
from tuiops.events import EVENTS_FD_ENV, read_event
from tuiops.screens.jobs import JobsPane, Task
from tuiops.screens.messages import JobsSnapshot, JobsStale, Notice, TaskOutput, TaskUpdate
from tuiops.screens.workers import ReportsWorkerFailures

if TYPE_CHECKING:
    from tuiops.ops.browse import Context, JobRow, Source, Spec
    from tuiops.screens.fileops_bridge import PlanPreview
    from tuiops.screens.main import MainScreen
    from tuiops.store import Store
    from tuiops.workspace import Workspace


#: Pool folders and box tables kept loaded for reopening (each may hold a few columns of 4M rows).
SHARED_SOURCES = 3


class TuiopsApp(ReportsWorkerFailures, App[None], inherit_bindings=False):
    """tuiops' terminal app on one workspace."""

    # the gallery's styles are read with the app's, so that opening it restyles nothing
    CSS_PATH: ClassVar[list[str | PurePath]] = ["app.tcss", "screens/gallery.tcss"]
    TITLE = "tuiops"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "quit_now", "Quit", show=False, priority=True, id="app-quit"),
    ]

    def __init__(
        self,
        ws: Workspace,
        *,
        left: Spec | None = None,
        right: Spec | None = None,
        ctx: Context | None = None,
        poll_interval: float = 1.0,
        image_protocol: str = "halfblock",
    ) -> None:
        super().__init__()
        #: How pictures are shown: "halfblock", "kitty" or "sixel" (see tuiops.widgets.graphics).
        self.image_protocol = image_protocol
        from tuiops.ops.browse import Spec, default_context, first_pool
        from tuiops.screens.actions import keymap_from_config
        from tuiops.store import Store

        self.ws = ws
        #: The keys of ``[tui.keymap]`` in tuiops.toml (action id → keys), checked before start.
        self.user_keymap: dict[str, str] = keymap_from_config(ws.config.raw, str(ws.config_path))
        self._pool: list[Store] = []
        self._pool_lock = threading.Lock()
        self._sources: dict[Any, Source] = {}
        self._sources_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.ui_store: Store = Store(ws.db_path, readonly=True)
        self.ui_store.adbc  # noqa: B018 - both SQLite libraries open before any worker runs
        self.ctx: Context = ctx or default_context(self.ui_store)
        pool = first_pool(self.ui_store)
        self.left_spec = left or (Spec("pool", pool) if pool else Spec("catalog"))
        self.right_spec = right or Spec("catalog")
        self.poll_interval = poll_interval
        self._task_seq = 0
        from tuiops.script.record import Recorder

        #: What this session did, for "Save as script" (commands and file operations).
        self.recorder = Recorder()
        self._poll_timer: Any = None
        self.main_screen: MainScreen | None = None

    # -- set-up -------------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.user_keymap:
            self.set_keymap(self.user_keymap)

    def pick_only_context(self) -> bool:
        """Count the workspace's only label set and only run in the pool panels when none is
        chosen (or the chosen one is gone); True when the context changed."""
        from dataclasses import replace

        store = self.ui_store
        changes: dict[str, str | None] = {}
        for field, table in (("label_set", "label_sets"), ("run", "runs")):
            names = [r[0] for r in store.execute(f"SELECT name FROM {table} ORDER BY name LIMIT 2")]
            current = getattr(self.ctx, field)
            if current is not None and current in names:
                continue
            if current is not None and store.one(f"SELECT 1 FROM {table} WHERE name = ?", (current,)):
                continue
            wanted = names[0] if len(names) == 1 else None
            if wanted != current:
                changes[field] = wanted
        if not changes:
            return False
        self.ctx = replace(self.ctx, **changes)
        return True

    def on_ready(self) -> None:
        # what start-up made (modules, widgets, styles) lives as long as the app: kept out of the
        # collector's full passes, which otherwise stop every thread for a few hundred ms
        import gc

        gc.freeze()

    def get_default_screen(self) -> MainScreen:
        from tuiops.screens.main import MainScreen

        self.main_screen = MainScreen(self.left_spec, self.right_spec)
        return self.main_screen

    def reader(self) -> Store:
        """A read-only store for one worker; give it back with :meth:`release`, never close it.

        Connections are pooled and kept open until the app exits: the store mixes two SQLite
        libraries (Python's and the ADBC driver's), and one of them opening its first or
        closing its last connection to the file while the other is in use resets the shared
        WAL index and drops the other's file locks. So the app opens both at start-up (the
        UI store) and closes nothing before it quits.
        """
        from tuiops.store import Store

        with self._pool_lock:
            if self._pool:
                return self._pool.pop()
        return Store(self.ws.db_path, readonly=True)

    def source_for(self, store: Store, spec: Spec, *, ws: Workspace | None = None) -> Source:
        """The source for ``spec``: pool folders and box tables are shared between the panels
        (and kept for the last few), so their loaded columns are loaded once."""
        from tuiops.ops.browse import make_source

        if spec.kind not in ("pool", "labels", "run"):
            # the catalog, projects and hosts read the workspace's files and tuiops.toml, not its store
            return make_source(store, spec, self.ctx, ws_name=self.ws.config.name, ws=ws or self.ws)
        key = (spec, self.ctx)
        with self._sources_lock:
            source = self._sources.pop(key, None)
            if source is not None:
                self._sources[key] = source
                return source
        source = make_source(store, spec, self.ctx, ws_name=self.ws.config.name, ws=ws)
        with self._sources_lock:
            source = self._sources.setdefault(key, source)
            while len(self._sources) > SHARED_SOURCES:
                self._sources.pop(next(iter(self._sources)))
        return source

    def forget_sources(self, spec: Spec | None = None) -> None:
        """Drop shared sources (of ``spec``, or all) so that the next open reads the store again."""
        with self._sources_lock:
            if spec is None:
                self._sources.clear()
            else:
                for key in [k for k in self._sources if k[0] == spec]:
                    del self._sources[key]

    def release(self, store: Store) -> None:
        """Give back a store from :meth:`reader`."""
        with self._pool_lock:
            self._pool.append(store)

    @contextlib.contextmanager
    def writing(self) -> Iterator[Workspace]:
        """The workspace with its writable store, for one writing task at a time."""
        with self._write_lock:
            yield self.ws

    def on_unmount(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, []
        for store in pool:
            store.close()
        self.ui_store.close()

    def show_error(self, exc: TuiopsError) -> None:
        """The CLI's message and hint, as a notification."""
        text = exc.message + (f"\nhint: {exc.hint}" if exc.hint else "")
        self.notify(text, title=type(exc).__name__, severity="error", timeout=10, markup=False)

    def report_failure(self, error: BaseException) -> None:
        """The one handler of what a worker raised: a :class:`TuiopsError` shows its message
        and hint; anything else is a bug, shown in an error dialog with its traceback."""
        if isinstance(error, TuiopsError):
            self.show_error(error)
            return
        import traceback

        from tuiops.screens.dialogs import MessageDialog

        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.push_screen(MessageDialog(f"Unexpected error: {type(error).__name__}", Text(text)))

    @on(Notice)
    def _notice(self, msg: Notice) -> None:
        self.notify(msg.text, severity=msg.severity, markup=False)  # type: ignore[arg-type]

    @property
    def jobs_pane(self) -> JobsPane | None:
        if self.main_screen is None:
            return None
        try:
            return self.main_screen.query_one(JobsPane)
        except Exception:
            return None

    # -- quitting -----------------------------------------------------------------------------
    def running_tasks(self) -> list[Task]:
        pane = self.jobs_pane
        return [t for t in pane.tasks.values() if t.running] if pane else []

    def request_quit(self) -> None:
        running = self.running_tasks()
        if not running:
            self.exit()
            return
        from tuiops.screens.dialogs import ConfirmDialog

        def done(ok: bool | None) -> None:
            if ok:
                for t in running:
                    self._cancel_task(t)
                self.exit()

        names = ", ".join(t.label for t in running[:5])
        self.push_screen(
            ConfirmDialog(
                "Quit",
                f"{len(running)} job(s) still run: {names}.\nQuitting cancels them (what they did is journaled).",
                yes="Quit",
            ),
            done,
        )

    def action_quit_now(self) -> None:
        self.request_quit()

    # -- tasks: tuiops commands and file operations ----------------------------------------
    def _new_task(self, label: str) -> Task:
        self._task_seq += 1
        task = Task(self._task_seq, label)
        pane = self.jobs_pane
        if pane is not None:
            pane.tasks[task.id] = task
            pane.refresh()
        return task

    def run_tuiops(self, argv: list[str]) -> Task:
        """Run ``tuiops ARGV`` in this workspace as a job of the app."""
        task = self._new_task(" ".join(argv)[:40])
        self.recorder.add_command(argv, key=("task", task.id))
        self.notify(f"started: tuiops {' '.join(argv)}", timeout=3)
        self._command_worker(task.id, list(argv))
        return task

    @work(thread=True, group="tasks", exit_on_error=False)
    def _command_worker(self, task_id: int, argv: list[str]) -> None:
        """Run the command with an events pipe; post its output, progress and end."""
        cmd = [sys.executable, "-m", "tuiops", "-w", str(self.ws.root), *argv]
        events_r, events_w = os.pipe()
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(events_w,),
                env={**os.environ, EVENTS_FD_ENV: str(events_w)},
                start_new_session=True,
            )
        except OSError as exc:
            os.close(events_r)
            self.post_message(
                TaskUpdate(
                    task_id,
                    {
                        "status": "failed",
                        "error": f"cannot start {cmd[0]}: {exc}",
                        "finished": time.monotonic(),
                    },
                )
            )
            return
        finally:
            os.close(events_w)
        self.post_message(TaskUpdate(task_id, {"pid": proc.pid, "proc": proc}))
        end: dict[str, Any] = {}
        progress_events = 0
        assert proc.stdout is not None and proc.stderr is not None
        streams = {proc.stdout.fileno(): "out", proc.stderr.fileno(): "out", events_r: "events"}
        try:
            for kind, items in _pump(streams):
                if kind == "out":
                    self.post_message(TaskOutput(task_id, items))
                    continue
                progress: dict[str, Any] | None = None
                for ev in items:
                    if ev["event"] == "progress":
                        progress_events += 1
                        progress = {"done": ev.get("done") or 0, "message": ev.get("message") or ""}
                        if ev.get("total") is not None:
                            progress["total"] = ev["total"]
                    elif ev["event"] == "error":
                        end.update(
                            error=ev.get("message"), hint=ev.get("hint"), traceback=ev.get("traceback")
                        )
                    elif ev["event"] == "result":
                        end["result"] = ev.get("result")
                if progress is not None:
                    self.post_message(TaskUpdate(task_id, {**progress, "progress_events": progress_events}))
        except Exception as exc:
            proc.kill()
            end.update(_unexpected(exc))
        finally:
            proc.stdout.close()
            proc.stderr.close()
        rc = proc.wait()
        if rc != 0 and not end.get("error"):
            end["error"] = f"exited with code {rc} (o in the jobs pane shows its output)"
        status = "done" if rc == 0 else ("cancelled" if rc == 130 else "failed")
        end.update(status=status, exit_code=rc, finished=time.monotonic(), proc=None)
        self.post_message(TaskUpdate(task_id, end))

    def run_file_op(self, preview: PlanPreview) -> Task:
        """Run a confirmed copy/move/delete plan as a job of the app."""
        from tuiops.ops.base import CancelToken

        req = preview.request
        task = self._new_task(f"{req.op} {len(req.file_ids):,} files")
        task.cancel = CancelToken()
        task.total = len(req.file_ids)
        self.recorder.add_file_op(
            req.op, req.file_ids, req.pool, req.target, req.on_conflict, key=("task", task.id)
        )
        self._file_op_worker(task.id, preview, task.cancel)
        return task

    @work(thread=True, group="tasks", exit_on_error=False)
    def _file_op_worker(self, task_id: int, preview: PlanPreview, cancel: Any) -> None:
        from tuiops.errors import Cancelled
        from tuiops.ops.base import ProgressEvent
        from tuiops.screens.fileops_bridge import execute

        def progress(ev: ProgressEvent) -> None:
            changes: dict[str, Any] = {"done": ev.done, "message": ev.message}
            if ev.total is not None:
                changes["total"] = ev.total
            self.post_message(TaskUpdate(task_id, changes))

        with self.writing() as ws:
            try:
                result = execute(ws, preview, progress=progress, cancel=cancel)
                changes: dict[str, Any] = {"status": "done", "output": str(result)}
            except Cancelled as exc:
                changes = {"status": "cancelled", "error": exc.message}
            except TuiopsError as exc:
                changes = {"status": "failed", "error": exc.message, "hint": exc.hint}
            except Exception as exc:
                changes = _unexpected(exc)
        changes["finished"] = time.monotonic()
        self.post_message(TaskUpdate(task_id, changes))

    def run_edit_selection(self, file_ids: Any, pool: str | None) -> Task:
        """Copy the selected images with their labels into a review folder of the workspace and
        open the label editor there (``tuiops review import`` brings the edits back)."""
        task = self._new_task(f"edit {len(file_ids):,} images")
        task.total = len(file_ids)
        self._edit_worker(task.id, file_ids, pool)
        return task

    @work(thread=True, group="tasks", exit_on_error=False)
    def _edit_worker(self, task_id: int, file_ids: Any, pool: str | None) -> None:
        from tuiops.ops.base import ProgressEvent
        from tuiops.ops.browse import edit_files

        def progress(ev: ProgressEvent) -> None:
            changes: dict[str, Any] = {"done": ev.done, "message": ev.message}
            if ev.total is not None:
                changes["total"] = ev.total
            self.post_message(TaskUpdate(task_id, changes))

        changes: dict[str, Any]
        with self.writing() as ws:
            try:
                folder = edit_files(ws, file_ids, pool, self.ctx.label_set, progress=progress)
                changes = {
                    "status": "done",
                    "message": f"editing {folder.relative_to(ws.root)}",
                    "output": f"review folder: {folder}\nbring the edits back with "
                    f"`tuiops review import {folder} --set {self.ctx.label_set or 'SET'}`",
                }
            except TuiopsError as exc:
                changes = {"status": "failed", "error": exc.message, "hint": exc.hint}
            except Exception as exc:
                changes = _unexpected(exc)
        changes["finished"] = time.monotonic()
        self.post_message(TaskUpdate(task_id, changes))

    @on(TaskUpdate)
    def _task_update(self, msg: TaskUpdate) -> None:
        pane = self.jobs_pane
        if pane is None or msg.task_id not in pane.tasks:
            return
        task = pane.tasks[msg.task_id]
        was_running = task.running
        task.apply(msg.changes)
        pane.refresh()
        for screen in self._output_screens(task.id):
            screen.refresh_status()
        if was_running and not task.running:
            if task.status != "done":
                self.recorder.discard(("task", task.id))
            if task.status == "done":
                self.notify(f"done: {task.label}", timeout=4)
            elif task.status == "cancelled":
                self.notify(f"cancelled: {task.label}", severity="warning", timeout=6)
            elif task.traceback:
                from tuiops.screens.dialogs import MessageDialog

                body = Text(f"{task.error}\n\n{task.traceback}")
                self.push_screen(MessageDialog(f"Unexpected error: {task.label}", body))
            else:
                text = (task.error or "failed") + (f"\nhint: {task.hint}" if task.hint else "")
                self.notify(text, title=f"failed: {task.label}", severity="error", timeout=10, markup=False)
            self.forget_sources()
            self.pick_only_context()
            for side in ("left", "right"):
                if self.main_screen is not None:
                    panel = self.main_screen.panel(side)
                    if panel.spec is not None and panel.spec.kind in ("catalog", "pool", "selection"):
                        panel.reread(forget=False)

    @on(TaskOutput)
    def _task_output(self, msg: TaskOutput) -> None:
        pane = self.jobs_pane
        if pane is None or msg.task_id not in pane.tasks:
            return
        pane.tasks[msg.task_id].add_lines(msg.lines)
        for screen in self._output_screens(msg.task_id):
            screen.add_lines(msg.lines)

    def _output_screens(self, task_id: int) -> list[Any]:
        from tuiops.screens.output import OutputScreen

        return [s for s in self.screen_stack if isinstance(s, OutputScreen) and s.job.id == task_id]

    def show_output(self, task_id: int | None = None) -> None:
        """Open the output screen of a task (default: the one picked in the jobs pane if it is
        shown, else the last one started)."""
        from tuiops.screens.output import OutputScreen

        pane = self.jobs_pane
        if pane is None or not pane.tasks:
            self.notify("no command has run in this app yet (: runs one)", severity="warning")
            return
        if task_id is None:
            row = pane.current() if pane.display else None
            task_id = row[1].id if row is not None and row[0] == "task" else max(pane.tasks)
        self.push_screen(OutputScreen(pane.tasks[task_id]))

    def save_script(self, path: str) -> Any:
        """Write the recorded actions of this session as a script (validated); returns its path."""
        return self.recorder.save(self.ws.resolve(path), workspace=str(self.ws.root))

    def _cancel_task(self, task: Task) -> None:
        if task.cancel is not None:
            task.cancel.cancel()
        if task.proc is not None and task.proc.poll() is None:
            task.proc.send_signal(signal.SIGINT)

    def cancel_work(self, kind: str, row: Any) -> None:
        """Cancel a task of this app, or a job of the store (any process)."""
        if kind == "task":
            if row.running:
                self._cancel_task(row)
                self.notify(f"cancelling {row.label}…", timeout=3)
            return
        self._cancel_job_worker(row.id)

    @work(thread=True, group="cancel", exit_on_error=False)
    def _cancel_job_worker(self, job_id: int) -> None:
        from tuiops.ops.browse import cancel_job

        try:
            with self.writing() as ws:
                self.post_message(Notice(cancel_job(ws.store, job_id)))
        finally:
            self.post_message(JobsStale())

    @on(JobsStale)
    def _jobs_stale(self, msg: JobsStale) -> None:
        self._poll_jobs()

    def show_work_details(self, kind: str, row: Any) -> None:
        from tuiops.screens.dialogs import MessageDialog

        body = Text()
        if kind == "task":
            body.append(f"{row.label}\nstatus: {row.status}\n")
            if row.error:
                body.append(f"error: {row.error}\n", "red")
            if row.hint:
                body.append(f"hint: {row.hint}\n")
            if row.output:
                body.append("\n" + row.output[-6000:])
        else:
            job: JobRow = row
            body.append(f"job {job.id}: {job.kind}\nstatus: {job.status}\nstarted: {job.started}\n")
            if job.finished:
                body.append(f"finished: {job.finished}\n")
            body.append(f"progress: {job.done:,}" + (f"/{job.total:,}" if job.total else "") + "\n")
            if job.message:
                body.append(f"message: {job.message}\n")
            if job.error:
                body.append(f"error: {job.error}\n", "red")
        self.push_screen(MessageDialog("Job details", body))

    # -- jobs of the store ----------------------------------------------------------------------
    def set_jobs_visible(self, visible: bool) -> None:
        if visible:
            self._poll_jobs()
            if self._poll_timer is None:
                self._poll_timer = self.set_interval(self.poll_interval, self._poll_jobs)
        elif self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None

    @work(thread=True, exclusive=True, group="jobs-poll", exit_on_error=False)
    def _poll_jobs(self) -> None:
        from tuiops.ops.browse import list_jobs

        store = self.reader()
        try:
            self.post_message(JobsSnapshot(list_jobs(store)))
        except TuiopsError:
            pass
        finally:
            self.release(store)

    @on(JobsSnapshot)
    def _jobs_snapshot(self, msg: JobsSnapshot) -> None:
        pane = self.jobs_pane
        if pane is not None:
            pane.jobs = msg.jobs
            pane.refresh()


def _unexpected(exc: BaseException) -> dict[str, Any]:
    """A task's end on an unexpected exception (shown with its traceback)."""
    import traceback

    return {
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


def _pump(streams: dict[int, str]) -> Iterator[tuple[str, list[Any]]]:
    """Read the pipes ``streams`` (fd → "out" or "events") until each ends; closes them.

    Yields ``("out", lines)`` for what the process printed (stdout and stderr, decoded, in
    the order they arrive) and ``("events", events)`` for the JSON events of its channel.
    """
    sel = selectors.DefaultSelector()
    partial = dict.fromkeys(streams, b"")
    for fd in streams:
        sel.register(fd, selectors.EVENT_READ)
    try:
        while sel.get_map():
            for key, _mask in sel.select():
                fd = key.fd
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    *raw, partial[fd] = (partial[fd] + chunk).split(b"\n")
                else:
                    sel.unregister(fd)
                    raw = [partial[fd]] if partial[fd] else []
                if not raw:
                    continue
                if streams[fd] == "events":
                    events = [e for e in map(read_event, raw) if e is not None]
                    if events:
                        yield "events", events
                else:
                    yield "out", [line.decode("utf-8", "replace").rstrip("\r") for line in raw]
    finally:
        sel.close()
        for fd in streams:
            if streams[fd] == "events":
                os.close(fd)


def run_app(
    ws: Workspace, *, left: str | None = None, right: str | None = None, images: str = "auto"
) -> None:
    """Run the app in this terminal until the user quits; ``images`` chooses how pictures
    are shown (``auto`` asks the terminal first)."""
    from tuiops.ops.browse import Spec
    from tuiops.widgets.graphics import choose_protocol, prepare

    protocol, _why = choose_protocol(images)
    prepare(protocol)
    app = TuiopsApp(
        ws,
        left=Spec.parse(left) if left else None,
        right=Spec.parse(right) if right else None,
        image_protocol=protocol,
    )
    app.run()
