"""The main screen: two panels side by side, the command line, the jobs pane and the F-key bar."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input, Label

from tuiops.errors import TuiopsError, UsageError
from tuiops.screens.actions import (
    ACTIONS,
    SORT_FIELDS,
    alt_letter,
    bindings,
    command_words,
    fkey_bar,
    keys_display,
)
from tuiops.screens.dialogs import ConfirmDialog, InputDialog, MenuDialog
from tuiops.screens.host import tuiops_app
from tuiops.screens.jobs import JobsPane
from tuiops.screens.messages import FileOpPlanned, FolderMade, Notice, Replan
from tuiops.screens.panel import Panel, QuickSearch
from tuiops.screens.quickview import ImageCard, row_target
from tuiops.screens.workers import ReportsWorkerFailures
from tuiops.widgets.keybar import KeyBar, KeyBarItem
from tuiops.widgets.vtable import VirtualTable

if TYPE_CHECKING:
    from tuiops.ops.browse import Spec
    from tuiops.screens.fileops_bridge import PlanPreview


class MainScreen(ReportsWorkerFailures, Screen[None]):
    """FAR-style panels over the workspace."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("main")

    def __init__(self, left: Spec, right: Spec) -> None:
        super().__init__(id="main")
        self.initial = (left, right)
        self.active_side = "left"
        self.quick = False
        self.sync = False
        self._sync_key: str | None = None
        self._plan_seq = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="panels"):
            yield ImageCard(id="quick-left", classes="quick")
            yield Panel("left")
            yield Panel("right")
            yield ImageCard(id="quick-right", classes="quick")
        with Vertical(id="bottom"):
            yield JobsPane(id="jobs")
            with Horizontal(id="cmdline"):
                yield Label("tuiops›", id="prompt")
                yield Input(
                    placeholder="type: where … │ SELECT … │ cd … │ tuiops … │ q   (Alt+letter: quick search)",
                    id="command",
                    select_on_focus=False,
                )
            keymap = getattr(self.app, "user_keymap", None)
            yield KeyBar([KeyBarItem(n, a.label, a.action) for n, a in fkey_bar(keymap)], id="keybar")

    def on_mount(self) -> None:
        left, right = self.initial
        self.panel("left").open(left)
        self.panel("right").open(right)
        self.panel("left").add_class("-active")
        self.panel("left").table.focus()

    # -- helpers --------------------------------------------------------------------------------
    def panel(self, side: str) -> Panel:
        return self.query_one(f"#panel-{side}", Panel)

    @property
    def active(self) -> Panel:
        return self.panel(self.active_side)

    @property
    def other(self) -> Panel:
        return self.panel("right" if self.active_side == "left" else "left")

    @property
    def other_side(self) -> str:
        return "right" if self.active_side == "left" else "left"

    def quick_card(self, side: str) -> ImageCard:
        return self.query_one(f"#quick-{side}", ImageCard)

    def on_key(self, event: events.Key) -> None:
        """FAR's typing in a panel: a character no key is bound to goes to the command line,
        and Alt+letter opens the panel's quick search with that letter."""
        if not isinstance(self.focused, VirtualTable) or event.key in self.active_bindings:
            return
        letter = alt_letter(event.key)
        if letter is not None:
            event.stop()
            event.prevent_default()
            self.active.start_search(letter)
            return
        plain = "+" not in event.key or event.key.startswith("shift+")
        if event.character is None or not event.is_printable or not plain:
            return
        event.stop()
        event.prevent_default()
        command = self.query_one("#command", Input)
        self.set_focus(command)  # at once: the keys already read go on the command line
        command.insert_text_at_cursor(event.character)

    @on(VirtualTable.CursorMoved)
    def _cursor_moved(self, event: VirtualTable.CursorMoved) -> None:
        side = "left" if event.table.id == "table-left" else "right"
        if side != self.active_side:
            return
        if self.quick:
            self.quick_card(self.other_side).show(row_target(event.row), _row_title(event.row))
        if self.sync:
            self._follow(event.row)

    def on_descendant_focus(self, event: Any) -> None:
        widget = event.widget
        if isinstance(widget, VirtualTable):
            side = "left" if widget.id == "table-left" else "right"
            if side != self.active_side:
                self.active_side = side
                for s in ("left", "right"):
                    self.panel(s).set_class(s == side, "-active")

    def _follow(self, row: dict[str, Any] | None) -> None:
        from tuiops.ops.browse import Spec

        key = row.get("_key") if row else None
        if key and key != self._sync_key and not self.quick:
            self._sync_key = key
            self.other.open(Spec("image", str(key)))

    # -- panels -------------------------------------------------------------------------------
    def action_switch_panel(self) -> None:
        if self.quick:
            self.active.table.focus()
            return
        self.other.table.focus()

    def action_open(self) -> None:
        from tuiops.ops.browse import Spec

        panel = self.active
        row = panel.table.current_row()
        if row is None:
            return
        target = row.get("_target")
        if target:
            focus = None
            if row.get("_kind") == "up" and panel.spec is not None:
                focus = _leaf(panel.spec)
            try:
                panel.open(Spec.parse(target), focus=focus)
            except TuiopsError as exc:
                tuiops_app(self).show_error(exc)
            return
        if row_target(row) is not None:
            self.action_view()

    def action_parent(self) -> None:
        from tuiops.ops.browse import Spec

        panel = self.active
        spec = panel.spec
        if spec is None:
            return
        if spec.kind == "pool" and spec.folder:
            parent = "/".join(spec.folder.rstrip("/").split("/")[:-1])
            panel.open(Spec("pool", spec.name, f"{parent}/" if parent else ""), focus=_leaf(spec))
        elif spec.kind != "catalog":
            panel.open(Spec("catalog"), focus=spec.name if spec.kind != "query" else None)

    def action_quick_view(self) -> None:
        self.quick = not self.quick
        side = self.other_side
        self.panel(side).display = not self.quick
        self.quick_card(side).display = self.quick
        self.quick_card(self.active_side).display = False
        self.panel(self.active_side).display = True
        if self.quick:
            row = self.active.table.current_row()
            self.quick_card(side).show(row_target(row), _row_title(row))
        self.active.table.focus()

    def action_sync_panels(self) -> None:
        self.sync = not self.sync
        self._sync_key = None
        self.notify("panels follow the image under the cursor" if self.sync else "panels are independent")
        if self.sync:
            self._follow(self.active.table.current_row())

    def action_reread(self) -> None:
        self.active.reread()

    def action_swap_panels(self) -> None:
        left, right = self.panel("left"), self.panel("right")
        ls, rs = left.spec, right.spec
        if ls is not None and rs is not None:
            left.open(rs)
            right.open(ls)

    def action_catalog_left(self) -> None:
        from tuiops.ops.browse import Spec

        self.panel("left").open(Spec("catalog"))
        self.panel("left").table.focus()

    def action_catalog_right(self) -> None:
        from tuiops.ops.browse import Spec

        self.panel("right").open(Spec("catalog"))
        self.panel("right").table.focus()

    def action_jobs(self) -> None:
        jobs = self.query_one(JobsPane)
        jobs.display = not jobs.display
        tuiops_app(self).set_jobs_visible(jobs.display)
        if jobs.display:
            jobs.focus()
        else:
            self.active.table.focus()

    def action_output(self) -> None:
        tuiops_app(self).show_output()

    def action_monitor(self) -> None:
        from tuiops.screens.monitor import open_monitor

        open_monitor(self.app)

    def action_projects(self) -> None:
        from tuiops.screens.projects import open_projects

        open_projects(self.app)

    def action_gallery(self) -> None:
        from tuiops.screens.gallery import open_panel_gallery

        try:
            open_panel_gallery(self.app, self.active, self.other)
        except TuiopsError as exc:
            tuiops_app(self).show_error(exc)

    # -- viewing and editing ------------------------------------------------------------------
    def action_view(self) -> None:
        from tuiops.screens.viewer import ViewerScreen

        row = self.active.table.current_row()
        if row_target(row) is None:
            self.notify("no image under the cursor", severity="warning")
            return
        self.app.push_screen(ViewerScreen(self.active))

    def action_edit(self) -> None:
        import numpy as np

        from tuiops.ops.browse import PoolSource, SelectionSource

        panel = self.active
        source = panel.source
        if (
            panel.selection is not None
            and len(panel.selection) > 1
            and isinstance(source, PoolSource | SelectionSource)
        ):
            ids = panel.selection.ids
            pool: str | None = source.spec.name
            if isinstance(source, SelectionSource):
                ids = np.asarray(source.file_ids(ids), dtype=np.int64)
                pool = None
            tuiops_app(self).run_edit_selection(ids, pool)
            return
        row = self.active.table.current_row()
        target = row_target(row)
        if target is None:
            self.notify("no image under the cursor", severity="warning")
            return
        self._edit_worker(target)

    @work(thread=True, exclusive=True, group="edit", exit_on_error=False)
    def _edit_worker(self, target: dict[str, Any]) -> None:
        from tuiops.ops.browse import image_info, launch_editor

        app: Any = self.app
        store = app.reader()
        try:
            info = image_info(store, **target)
            if info.path is None:
                raise UsageError(
                    f"image {info.key} has no file in a pool", hint="scan the pool that holds it"
                )
            proc = launch_editor(app.ws, info.path)
        finally:
            app.release(store)
        self.post_message(
            Notice(f"started {app.ws.config.editor.split()[0]} (pid {proc.pid}) on {info.relpath}")
        )

    # -- selection -------------------------------------------------------------------------------
    def action_toggle_select(self) -> None:
        self.active.toggle_current()

    def _mask(self, mode: str, title: str) -> None:
        panel = self.active

        def done(mask: str | None) -> None:
            if mask:
                panel.select_by(mode, mask)

        from tuiops.ops.browse import mask_regex

        def check(text: str) -> None:
            mask_regex(text)

        self.app.push_screen(
            InputDialog(title, "Mask (comma-separated; * any run of characters, ? one):", "*", check=check),
            done,
        )

    def action_select_mask(self) -> None:
        self._mask("add", "Select")

    def action_deselect_mask(self) -> None:
        self._mask("remove", "Deselect")

    def action_invert_selection(self) -> None:
        self.active.select_by("invert")

    def action_select_all(self) -> None:
        self.active.select_by("all")

    def action_clear_selection(self) -> None:
        self.active.clear_selection()

    # -- sorting and filtering ------------------------------------------------------------------
    def _sort_by(self, action_id: str) -> None:
        panel = self.active
        if panel.source is None:
            return
        for name in SORT_FIELDS[action_id]:
            if name in panel.source.fields:
                panel.set_sort(name)
                return
        self.notify(f"{panel.source.title} has no field to sort that way", severity="warning")

    def action_sort_name(self) -> None:
        self._sort_by("sort-name")

    def action_sort_ext(self) -> None:
        self._sort_by("sort-ext")

    def action_sort_time(self) -> None:
        self._sort_by("sort-time")

    def action_sort_size(self) -> None:
        self._sort_by("sort-size")

    def action_sort_unsorted(self) -> None:
        self.active.set_sort(None)

    def action_sort_menu(self) -> None:
        panel = self.active
        if panel.source is None:
            return
        entries = []
        for c in panel.source.columns:
            if c.field and c.field in panel.source.fields:
                entries.append((c.field, f"{c.title:<8} {panel.source.fields[c.field]}"))
        shown = {e[0] for e in entries}
        for f, what in panel.source.fields.items():
            if f not in shown:
                entries.append((f, f"{f:<8} {what}"))
        current = panel.sort[0][0] if panel.sort else None

        def done(field: str | None) -> None:
            if field:
                panel.set_sort(field)

        self.app.push_screen(MenuDialog("Sort by (again: reverse)", entries, highlight=current), done)

    def action_filter(self) -> None:
        command = self.query_one("#command", Input)
        command.value = "where " + (self.active.where or "")
        command.focus()
        command.cursor_position = len(command.value)

    def action_clear_filter(self) -> None:
        if isinstance(self.focused, QuickSearch):
            self.active.end_search()
            return
        command = self.query_one("#command", Input)
        if command.has_focus:
            command.value = ""
            self.active.table.focus()
            return
        if self.active.cancel_open():
            return
        if self.active.where:
            self.active.set_filter(None)

    def action_command_line(self) -> None:
        self.query_one("#command", Input).focus()

    @on(Input.Submitted, "#command")
    def _command(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.value = ""
        self.active.table.focus()
        if not text:
            return
        try:
            self.run_command_line(text)
        except TuiopsError as exc:
            tuiops_app(self).show_error(exc)

    def run_command_line(self, text: str) -> None:
        """Execute one command line (see the help screen for what it accepts)."""
        from tuiops.ops.browse import Spec

        panel = self.active
        if text.startswith(":"):
            text = text[1:].strip()
        low = text.lower()
        words = command_words()
        if low in words:
            self.call_later(self.run_action, words[low].action)
            return
        if text.startswith("/"):
            panel.set_filter(text[1:])
            return
        if low == "where" or low.startswith("where "):
            panel.set_filter(text[5:])
            return
        first = low.split(None, 1)[0]
        if first in ("select", "with", "values"):
            panel.open(Spec("query", text))
            return
        if first == "cd":
            arg = text[2:].strip()
            panel.open(self._cd_target(arg))
            return
        if first == "open":
            panel.open(Spec.parse(text[4:].strip()))
            return
        if first == "set":
            self._set_context(text[3:].strip())
            return
        if first == "projects":
            self.action_projects()
            return
        if first == "gallery":
            self.action_gallery()
            return
        if first == "monitor":
            from tuiops.screens.monitor import open_monitor

            open_monitor(self.app, text[7:].strip() or None)
            return
        if first == "triage":
            from tuiops.screens.triage import parse_command, start_triage

            start_triage(self.app, **parse_command(text))
            return
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            raise UsageError(f"cannot read the command line: {exc}") from exc
        if argv and argv[0] == "tuiops":
            argv = argv[1:]
        if not argv or not argv[0][:1].isalpha():
            raise UsageError(
                f"unknown command {text.split()[0]!r}",
                hint="type where …, SELECT …, cd …, set …, or a tuiops command (F1 lists them)",
            )
        # Anything else is a tuiops command: the command itself says if it is not one.
        if argv[0] == "tui":
            raise UsageError("the terminal app is running already")
        tuiops_app(self).run_tuiops(argv)

    def _cd_target(self, arg: str) -> Spec:
        from tuiops.ops.browse import Spec, normalise_folder

        spec = self.active.spec
        if not arg or arg in ("/", "\\"):
            if spec is not None and spec.kind == "pool":
                return Spec("pool", spec.name, "")
            return Spec("catalog")
        if ":" in arg:
            return Spec.parse(arg)
        if spec is None or spec.kind != "pool":
            raise UsageError(f"cd {arg}: the panel is not a pool folder", hint="use cd pool:NAME/FOLDER")
        base = "" if arg.startswith("/") else spec.folder
        parts = [p for p in (base + arg).split("/") if p and p != "."]
        out: list[str] = []
        for p in parts:
            if p == "..":
                if out:
                    out.pop()
            else:
                out.append(p)
        return Spec("pool", spec.name, normalise_folder("/".join(out)))

    def _set_context(self, text: str) -> None:
        from dataclasses import replace

        parts = text.split(None, 1)
        if len(parts) != 2 or parts[0] not in ("labels", "run", "match"):
            raise UsageError("use: set labels SET, set run RUN or set match NAME (- for none)")
        what, name = parts[0], parts[1].strip()
        value = None if name == "-" else name
        app: Any = self.app
        store = app.ui_store
        if value is not None:
            if what == "labels":
                store.label_set_id(value)
            elif what == "run":
                store.run_id(value)
        field = {"labels": "label_set", "run": "run", "match": "match"}[what]
        app.ctx = replace(app.ctx, **{field: value})
        for side in ("left", "right"):
            p = self.panel(side)
            if p.spec is not None and p.spec.kind == "pool":
                p.reread(forget=False)
        self.notify(f"{what}: {value or 'none'}")

    # -- file operations ----------------------------------------------------------------------
    def _file_op(self, op: str) -> None:
        import numpy as np

        from tuiops.ops.browse import PoolSource, SelectionSource
        from tuiops.screens.fileops_bridge import FileOpRequest

        panel = self.active
        source = panel.source
        if not isinstance(source, PoolSource | SelectionSource):
            self.notify(
                "copy, move and delete work on the files of a pool or selection panel", severity="warning"
            )
            return
        rows = panel.selected_ids()
        if len(rows) == 0:
            self.notify("nothing selected (Ins selects, + selects by mask)", severity="warning")
            return
        pool: str | None = source.spec.name
        ids = rows
        if isinstance(source, SelectionSource):
            ids = np.asarray(source.file_ids(rows), dtype=np.int64)
            pool = None
        if op == "delete":
            self._plan(FileOpRequest(op, ids, pool))
            return
        other = self.other.source
        default = ""
        if isinstance(other, PoolSource):
            default = str(other.root / other.folder).rstrip("/")

        def done(target: str | None) -> None:
            if target and target.strip():
                self._plan(FileOpRequest(op, ids, pool, target.strip()))

        verb = "Copy" if op == "copy" else "Move"
        what = f"{len(ids):,} file{'s' if len(ids) != 1 else ''}"
        self.app.push_screen(
            InputDialog(f"{verb} {what}", "to folder (label files beside the images go along):", default),
            done,
        )

    def _plan(self, request: Any) -> None:
        self._plan_seq += 1
        self._plan_worker(self._plan_seq, request)

    @work(thread=True, exclusive=True, group="plan", exit_on_error=False)
    def _plan_worker(self, seq: int, request: Any) -> None:
        from tuiops.screens.fileops_bridge import plan

        app: Any = self.app
        with app.writing() as ws:
            try:
                preview = plan(ws, request)
                self.post_message(FileOpPlanned(seq, preview))
            except TuiopsError as exc:
                self.post_message(FileOpPlanned(seq, None, exc))

    @work(thread=True, group="plan-discard", exit_on_error=False)
    def _discard_worker(self, preview: Any, then: Any = None) -> None:
        from tuiops.screens.fileops_bridge import discard

        app: Any = self.app
        try:
            with app.writing() as ws:
                discard(ws, preview)
        finally:
            if then is not None:
                self.post_message(Replan(then))

    @on(Replan)
    def _replan(self, msg: Replan) -> None:
        self._plan(msg.request)

    @on(FileOpPlanned)
    def _planned(self, msg: FileOpPlanned) -> None:
        from dataclasses import replace

        if msg.seq != self._plan_seq:
            return
        if msg.error is not None:
            tuiops_app(self).show_error(msg.error)
            return
        preview: PlanPreview = msg.preview
        req = preview.request
        body = Text()
        body.append(f"{req.op} {len(req.file_ids):,} file(s)")
        if req.target:
            body.append(f" to {req.target}")
        body.append(f"\nconflict policy: {req.on_conflict}   (job {preview.job_id})\n\n")
        for line in preview.summary_lines():
            body.append(line + "\n", "bold red" if line.startswith("conflicts") else "")
        if req.op in ("copy", "move") and "label files" not in preview.counts:
            body.append("label files: none beside these images\n")
        if preview.blocked:
            entries = [
                ("skip", "Skip the files in conflict, do the rest"),
                ("rename", "Rename the new files (NAME_1.ext …)"),
                ("overwrite", "Overwrite (the old files go to the workspace trash)"),
                ("cancel", "Cancel: touch nothing"),
            ]

            def chosen(policy: str | None) -> None:
                if policy in ("skip", "rename", "overwrite"):
                    self._discard_worker(preview, replace(req, on_conflict=policy))
                else:
                    self._discard_worker(preview)

            self.app.push_screen(MenuDialog(f"{req.op.capitalize()}: conflicts", entries, body=body), chosen)
            return

        def done(ok: bool | None) -> None:
            if ok:
                self.active.clear_selection()
                tuiops_app(self).run_file_op(preview)
            else:
                self._discard_worker(preview)

        self.app.push_screen(ConfirmDialog(req.op.capitalize(), body, yes=req.op.capitalize()), done)

    def action_copy(self) -> None:
        self._file_op("copy")

    def action_move(self) -> None:
        self._file_op("move")

    def action_delete(self) -> None:
        self._file_op("delete")

    def action_mkdir(self) -> None:
        panel = self.active
        spec = panel.spec
        if spec is None or spec.kind != "pool":
            self.notify("folders are made in a pool folder panel", severity="warning")
            return

        def done(name: str | None) -> None:
            if name:
                self._mkdir_worker(spec, name.strip())

        self.app.push_screen(InputDialog("Make folder", f"in {spec.name}:/{spec.folder}", ""), done)

    @work(thread=True, exclusive=True, group="mkdir", exit_on_error=False)
    def _mkdir_worker(self, spec: Spec, name: str) -> None:
        from tuiops.ops.browse import make_folder

        app: Any = self.app
        store = app.reader()
        try:
            make_folder(store, spec.name, spec.folder, name)
        finally:
            app.release(store)
        self.post_message(FolderMade(spec, name))

    @on(FolderMade)
    def _after_mkdir(self, msg: FolderMade) -> None:
        spec, name = msg.spec, msg.name
        tuiops_app(self).forget_sources(spec)
        for side in ("left", "right"):
            p = self.panel(side)
            if p.spec == spec:
                p.open(spec, focus=name if side == self.active_side else None)
        self.notify(f"made folder {name}")

    # -- app ----------------------------------------------------------------------------------
    def action_help(self) -> None:
        from tuiops.ops.browse import describe_fields
        from tuiops.screens.help import HelpScreen

        source = self.active.source
        fields = describe_fields(source) if source is not None else ""
        keymap = getattr(self.app, "user_keymap", None)
        self.app.push_screen(HelpScreen(fields, source.title if source is not None else "", keymap))

    def action_menu(self) -> None:
        keymap = getattr(self.app, "user_keymap", None)
        entries = [
            (a.id, f"{a.label:<8} {keys_display(a, keymap):<18} {a.description}")
            for a in ACTIONS
            if a.scope == "main" and a.menu and a.id != "menu"
        ]

        def done(action_id: str | None) -> None:
            if action_id:
                self.call_later(self.run_action, action_id.replace("-", "_"))

        self.app.push_screen(MenuDialog("Menu", entries), done)

    def action_triage(self) -> None:
        from tuiops.screens.triage import start_triage

        try:
            start_triage(self.app)
        except TuiopsError as exc:
            tuiops_app(self).show_error(exc)

    def action_report(self) -> None:
        from tuiops.screens.report import ReportScreen

        app: Any = self.app
        if not app.ctx.label_set or not app.ctx.run:
            app.show_error(
                UsageError(
                    "the report needs a label set and a run",
                    hint="type `set labels SET` and `set run RUN` on the command line (:)",
                )
            )
            return
        from tuiops.ops.analysis import previous_pitstop_run

        earlier = previous_pitstop_run(app.ws.store, app.ctx.run)
        app.push_screen(ReportScreen(app.ws, app.ctx.label_set, app.ctx.run, compare_with=earlier))

    def action_save_script(self) -> None:
        app: Any = self.app
        if not len(app.recorder):
            self.notify(
                "nothing recorded yet: run commands (:) or copy/move/delete files first", severity="warning"
            )
            return

        def done(path: str | None) -> None:
            if not path or not path.strip():
                return
            try:
                written = app.save_script(path.strip())
            except TuiopsError as exc:
                app.show_error(exc)
                return
            self.notify(f"saved {len(app.recorder)} steps to {written}; run it with `tuiops run {written}`")

        self.app.push_screen(
            InputDialog(
                "Save as script",
                f"{len(app.recorder)} recorded actions; script file (relative to the workspace):",
                "scripts/session.yaml",
            ),
            done,
        )

    def action_quit(self) -> None:
        tuiops_app(self).request_quit()


def _leaf(spec: Spec) -> str | None:
    if spec.kind == "pool":
        parts = [p for p in spec.folder.split("/") if p]
        return parts[-1] if parts else None
    return spec.name


def _row_title(row: dict[str, Any] | None) -> str:
    if row is None:
        return ""
    return str(row.get("relpath") or row.get("name") or row.get("_key") or "")
