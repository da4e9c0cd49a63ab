"""The projects screen: the workspace's dataset projects, hosts and mixes, and keys to build, mix and push.

Ctrl+B (or ``projects`` on the command line) opens it. Three tables: the projects (state
current / stale / never built, images, classes, the last build's time and host), the
hosts (address, the python a build runs there) and the mixes (images, train/val,
tarball, pushes), with the ratio table per project and class of the mix under the
cursor. The keys run tuiops commands as jobs of the app, so their progress shows in the
jobs pane (F12) and their output in the output screen (Ctrl+O): ``b`` builds the
project under the cursor here, ``h`` builds it on the host under the cursor of the
hosts table, ``space`` marks projects and ``m`` mixes the marked ones (or the one under
the cursor) into ``mixes/NAME`` with ``--build`` (stale builds are rebuilt first),
``p`` pushes the mix under the cursor to the host under the cursor (into
``datasets``), ``c`` checks that host. The tables are read in a worker, again after
each job and on ``r``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from tuiops.screens.host import tuiops_app
from tuiops.screens.workers import ReportsWorkerFailures

PROJECT_COLUMNS = ("", "project", "state", "images", "masters", "classes", "built", "host")
HOST_COLUMNS = ("host", "address", "python")
MIX_COLUMNS = ("mix", "projects", "images", "train", "val", "tar", "pushes")


class ProjectsScreen(ReportsWorkerFailures, Screen[None]):
    """The workspace's projects, hosts and mixes."""

    CSS_PATH = "projects.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f10", "close", "Close", id="projects-close", tooltip="Back to the panels"),
        Binding("r,ctrl+r", "reread", "Reread", id="projects-reread", tooltip="Read the projects again"),
        Binding("b", "build_here", "Build", id="projects-build", tooltip="Build the project here"),
        Binding("h", "build_on_host", "On host", id="projects-build-host", tooltip="Build it on the host"),
        Binding("space", "mark", "Mark", id="projects-mark", tooltip="Mark the project for a mix"),
        Binding("m", "mix", "Mix", id="projects-mix", tooltip="Mix the marked projects"),
        Binding("p", "push", "Push", id="projects-push", tooltip="Push the mix to the host"),
        Binding("c", "check_host", "Check", id="projects-check", tooltip="Check the host"),
    ]

    class Loaded(Message):
        """A worker read the overview."""

        def __init__(self, data: dict[str, Any]) -> None:
            super().__init__()
            self.data = data

    def __init__(self) -> None:
        super().__init__(classes="projects-screen")
        self.data: dict[str, Any] = {"projects": [], "hosts": [], "mixes": []}
        self.marked: set[str] = set()
        #: How many reads finished (tests wait on them).
        self.loads = 0
        self._tasks_running = 0

    def compose(self) -> ComposeResult:
        yield Static("projects", id="projects-title", markup=False)
        yield DataTable(id="projects-table", cursor_type="row", zebra_stripes=False)
        with Horizontal(id="projects-lower"):
            with Vertical(id="projects-left"):
                yield Static("hosts", classes="projects-heading", markup=False)
                yield DataTable(id="hosts-table", cursor_type="row", zebra_stripes=False)
                yield Static("mixes", classes="projects-heading", markup=False)
                yield DataTable(id="mixes-table", cursor_type="row", zebra_stripes=False)
            yield Static("", id="mix-detail", markup=False)
        yield Static(
            " Esc close  r reread  b build here  h build on host  Space mark  m mix  p push mix  c check host "
            "│ Tab next table │ F12 jobs  Ctrl+O output",
            id="projects-keys",
        )

    def on_mount(self) -> None:
        for table_id, cols in (
            ("#projects-table", PROJECT_COLUMNS),
            ("#hosts-table", HOST_COLUMNS),
            ("#mixes-table", MIX_COLUMNS),
        ):
            table = self.query_one(table_id, DataTable)
            for c in cols:
                table.add_column(c, key=c or "mark", width=1 if not c else None)
        self.query_one("#projects-table", DataTable).focus()
        self.reread()
        self.set_interval(1.0, self._watch_tasks)

    # -- reading ------------------------------------------------------------------------------
    def reread(self) -> None:
        self._load_worker()

    @work(thread=True, group="projects", exclusive=True, exit_on_error=False)
    def _load_worker(self) -> None:
        from tuiops.ops.project import projects_overview

        self.post_message(self.Loaded(projects_overview(tuiops_app(self).ws)))

    @on(Loaded)
    def _loaded(self, msg: Loaded) -> None:
        self.data = msg.data
        self.loads += 1
        self._fill()

    def _fill(self) -> None:
        projects = self.query_one("#projects-table", DataTable)
        keep = projects.cursor_row
        projects.clear()
        colors = {"current": "green", "stale": "yellow", "never built": "grey50", "error": "red"}
        self.marked &= {p["name"] for p in self.data["projects"]}
        for p in self.data["projects"]:
            if p["state"] == "error":
                projects.add_row(
                    "", p["name"], Text("error", style="red"), "", "", p["error"], "", "", key=p["name"]
                )
                continue
            projects.add_row(
                "*" if p["name"] in self.marked else "",
                p["name"],
                Text(p["state"], style=colors.get(p["state"], "")),
                str(p["images"]),
                str(p["masters"]),
                ", ".join(p["classes"]),
                (p["built"] or "-")[:19],
                p["host"] or "-",
                key=p["name"],
            )
        if projects.row_count:
            projects.move_cursor(row=min(keep, projects.row_count - 1))
        hosts = self.query_one("#hosts-table", DataTable)
        hosts.clear()
        for h in self.data["hosts"]:
            hosts.add_row(h["name"], h["address"], h["python"], key=h["name"])
        mixes = self.query_one("#mixes-table", DataTable)
        mixes.clear()
        for m in self.data["mixes"]:
            mixes.add_row(
                m["name"],
                ", ".join(m["projects"]),
                str(m["images"]),
                str(m["train"]),
                str(m["val"]),
                "yes" if m["tar"] else "-",
                f"{m['pushes']} ({m['last_push']})" if m["pushes"] else "0",
                key=str(m["id"]),
            )
        title = (
            f"projects: {len(self.data['projects'])}   hosts: {len(self.data['hosts'])}   "
            f"mixes: {len(self.data['mixes'])}"
        )
        self.query_one("#projects-title", Static).update(title)
        self._show_mix()

    def _show_mix(self) -> None:
        mix = self._current("mixes")
        detail = self.query_one("#mix-detail", Static)
        if mix is None:
            detail.update("no mix yet: mark projects with Space and press m")
            return
        lines = [f"mix {mix['name']} ({mix['format']}): {', '.join(mix['projects'])}", ""]
        lines.append(f"{'project / class':<26} {'images':>6} {'train':>6} {'val':>5} {'val %':>6}")
        for r in mix["split_table"]:
            name = r["project"] if r["class"] is None else f"  {r['class']}"
            lines.append(
                f"{name[:26]:<26} {r['images']:>6} {r['train']:>6} {r['val']:>5} {100 * r['val_share']:>6.1f}"
            )
        detail.update("\n".join(lines))

    @on(DataTable.RowHighlighted, "#mixes-table")
    def _mix_moved(self) -> None:
        self._show_mix()

    def _watch_tasks(self) -> None:
        """Read again when a job of the app has ended."""
        running = len(tuiops_app(self).running_tasks())
        if running < self._tasks_running:
            self.reread()
        self._tasks_running = running

    # -- what is under the cursors ---------------------------------------------------------------
    def _current(self, what: str) -> dict[str, Any] | None:
        table = self.query_one(f"#{what}-table", DataTable)
        rows = self.data[what]
        if not rows or table.row_count == 0:
            return None
        return rows[min(table.cursor_row, len(rows) - 1)]

    def _need(self, what: str) -> dict[str, Any] | None:
        row = self._current(what)
        if row is None:
            self.notify(f"no {what[:-1]} here", severity="warning")
        return row

    # -- actions ---------------------------------------------------------------------------------
    def action_close(self) -> None:
        self.app.pop_screen()

    def action_reread(self) -> None:
        self.reread()

    def action_build_here(self) -> None:
        p = self._need("projects")
        if p is not None:
            tuiops_app(self).run_tuiops(["project", "build", p["name"]])

    def action_build_on_host(self) -> None:
        p, h = self._need("projects"), self._need("hosts")
        if p is not None and h is not None:
            tuiops_app(self).run_tuiops(["project", "build", p["name"], "--on", h["name"]])

    def action_mark(self) -> None:
        p = self._current("projects")
        if p is None:
            return
        self.marked ^= {p["name"]}
        table = self.query_one("#projects-table", DataTable)
        table.update_cell(p["name"], "mark", "*" if p["name"] in self.marked else "")
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def mix_argv(self) -> list[str] | None:
        """The command ``m`` runs: the marked projects (or the one under the cursor) into mixes/NAME."""
        names = [p["name"] for p in self.data["projects"] if p["name"] in self.marked]
        if not names:
            p = self._need("projects")
            if p is None:
                return None
            names = [p["name"]]
        out = tuiops_app(self).ws.root / "mixes" / "-".join(names)
        return ["project", "mix", *names, "--out", str(out), "--build", "--tar", f"{out}.tar.gz"]

    def action_mix(self) -> None:
        argv = self.mix_argv()
        if argv is not None:
            tuiops_app(self).run_tuiops(argv)

    def action_push(self) -> None:
        mix, h = self._need("mixes"), self._need("hosts")
        if mix is None or h is None:
            return
        from tuiops.ops.project import mix_argv

        argv = mix_argv(mix["params"], tar=mix["tar"] or f"{mix['out']}.tar.gz")
        tuiops_app(self).run_tuiops([*argv, "--push", f"{h['name']}:datasets"])

    def action_check_host(self) -> None:
        h = self._need("hosts")
        if h is not None:
            tuiops_app(self).run_tuiops(["hosts", "check", h["name"]])


def open_projects(app: Any) -> None:
    """Open the projects screen."""
    app.push_screen(ProjectsScreen())
