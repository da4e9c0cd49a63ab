"""The catalog's dataset projects, hosts and mixes, and what their entries open into.

``projects`` lists every project with its state (current, stale, never built), images,
masters, classes and last build (time and host); ``hosts`` every configured host with the
python its builds run and what its last ``tuiops hosts check`` found (no connection is made
here); ``mixes`` every recorded mix (projects, images, train/val, tarball, pushes), each
opening into ``mix:ID``, its ratio table per project and class.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from tuiops.errors import NotFoundError, UsageError
from tuiops.ops.browse.spec import KIND_ENTRY, ROW_KIND, ROW_ORDER, ROW_TARGET, Column, Spec, table_exists
from tuiops.ops.browse.tables import MemorySource

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace

#: Catalog kinds that need no name (``projects``, not ``projects:NAME``).
NAMELESS = ("projects", "hosts", "mixes")


def _need(ws: Workspace | None, what: str) -> Workspace:
    if ws is None:
        raise UsageError(f"the {what} panel needs the workspace")
    return ws


def count_projects(ws: Workspace) -> int:
    """How many project folders (with a project.toml) the workspace has; nothing is read from them."""
    from tuiops.ops.projects.model import RESERVED, projects_dir

    base = projects_dir(ws)
    if not base.is_dir():
        return 0
    return sum(
        1 for d in base.iterdir() if d.is_dir() and d.name not in RESERVED and (d / "project.toml").is_file()
    )


def count_mixes(store: Store) -> int:
    """How many mixes the store records."""
    if not table_exists(store, "project_mixes"):
        return 0
    return int(store.one("SELECT count(*) FROM project_mixes") or 0)


def catalog_entries(store: Store, ws: Workspace | None) -> list[tuple[Any, ...]]:
    """The catalog's rows for projects, hosts and mixes (each only where there is one):
    name, kind, images, boxes, target, row kind."""
    from tuiops.ops.browse.spec import KIND_DIR

    if ws is None:
        return []
    rows: list[tuple[Any, ...]] = []
    n = count_projects(ws)
    if n:
        rows.append(("projects", f"{n} proj", None, None, "projects", KIND_DIR))
    if ws.config.hosts:
        rows.append(("hosts", f"{len(ws.config.hosts)} hosts", None, None, "hosts", KIND_DIR))
    m = count_mixes(store)
    if m:
        rows.append(("mixes", f"{m} mixes", None, None, "mixes", KIND_DIR))
    return rows


def _frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


class ProjectsSource(MemorySource):
    """The workspace's projects: state, images, masters, classes, last build time and host."""

    kind = "projects"

    def __init__(self, spec: Spec, ws: Workspace | None) -> None:
        super().__init__(spec)
        self.ws = ws
        self.columns = [
            Column("name", "Project", "name", None, "name"),
            Column("state", "State", "text", 11, "state"),
            Column("images", "Images", "int", 6, "images"),
            Column("classes", "Classes", "text", 10, "classes"),
            Column("built", "Built", "text", 11, "built_at"),
            Column("host", "Host", "text", 6, "host"),
        ]

    @property
    def title(self) -> str:
        return "projects"

    def build(self, store: Store) -> pl.DataFrame:
        import polars as pl

        from tuiops.ops.projects import projects_overview

        ws = _need(self.ws, "projects")
        rows = []
        for p in projects_overview(ws, mixes=False)["projects"]:
            error = p.get("error")
            built_at = (p.get("built") or "")[:19].replace("T", " ")
            rows.append(
                {
                    "name": p["name"],
                    "state": p["state"],
                    "images": None if error else p["images"],
                    "masters": None if error else p["masters"],
                    "classes": error or ", ".join(p["classes"]),
                    "built": built_at[5:16] or "-",
                    "built_at": built_at or None,
                    "host": p.get("host") or ("-" if not error else ""),
                    "why": "; ".join(p.get("stale_why") or []),
                }
            )
        schema = {
            "name": pl.String,
            "state": pl.String,
            "images": pl.Int64,
            "masters": pl.Int64,
            "classes": pl.String,
            "built": pl.String,
            "built_at": pl.String,
            "host": pl.String,
            "why": pl.String,
        }
        return _frame(rows, schema).with_columns(pl.col("name").alias(ROW_ORDER))


class HostsSource(MemorySource):
    """The configured hosts: address, the python a build runs there, and the last check's outcome."""

    kind = "hosts"

    def __init__(self, spec: Spec, ws: Workspace | None) -> None:
        super().__init__(spec)
        self.ws = ws
        self.columns = [
            Column("name", "Host", "name", None, "name"),
            Column("address", "Address", "text", 16, "address"),
            Column("reachable", "Reachable", "text", 9, "reachable"),
            Column("python", "Python", "text", 16, "python"),
            Column("checked", "Checked", "text", 11, "checked_at"),
        ]

    @property
    def title(self) -> str:
        return "hosts"

    def build(self, store: Store) -> pl.DataFrame:
        import polars as pl

        from tuiops.ops.remote import last_checks

        ws = _need(self.ws, "hosts")
        seen = last_checks(ws)
        rows = []
        for name, h in sorted(ws.config.hosts.items()):
            last = seen.get(name) or {}
            py = h.extra.get("python")
            configured = py if isinstance(py, str) and py else "python (or python3)"
            if not last:
                reach = "not checked"
            elif last.get("reachable"):
                reach = "yes" if last.get("ok") else "yes, BAD " + ",".join(last.get("failed") or [])
            else:
                reach = "no"
            user = f"{h.user}@" if h.user else ""
            checked = str(last.get("checked") or "")[:19].replace("T", " ")
            rows.append(
                {
                    "name": name,
                    "address": f"{user}{h.address}:{h.port}",
                    "reachable": reach,
                    "python": last.get("python") or configured,
                    "checked": checked[5:16] or "-",
                    "checked_at": checked or None,
                }
            )
        schema = dict.fromkeys(("name", "address", "reachable", "python", "checked", "checked_at"), pl.String)
        return _frame(rows, schema).with_columns(pl.col("name").alias(ROW_ORDER))


class MixesSource(MemorySource):
    """The recorded mixes, newest first: projects, images, train/val, tarball and pushes;
    each opens into its ratio table (``mix:ID``)."""

    kind = "mixes"

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.columns = [
            Column("name", "Mix", "name", None, "name"),
            Column("projects", "Projects", "text", 10, "projects"),
            Column("images", "Images", "int", 6, "images"),
            Column("train", "Train", "int", 5, "train"),
            Column("val", "Val", "int", 4, "val"),
            Column("tar", "Tar", "text", 10, "tar"),
            Column("pushes", "Push", "int", 4, "pushes"),
        ]

    @property
    def title(self) -> str:
        return "mixes"

    def build(self, store: Store) -> pl.DataFrame:
        import polars as pl

        from tuiops.ops.projects import recorded_mixes

        rows = []
        for m in recorded_mixes(store) if table_exists(store, "project_mixes") else []:
            rows.append(
                {
                    "name": m["name"],
                    "projects": ", ".join(m["projects"]),
                    "images": m["images"],
                    "train": m["train"],
                    "val": m["val"],
                    "tar": PurePath(m["tar"]).name if m["tar"] else "-",
                    "tar_path": m["tar"],
                    "pushes": m["pushes"],
                    "last_push": m["last_push"] or "-",
                    "created": str(m["created"] or "")[:19].replace("T", " "),
                    ROW_TARGET: f"mix:{m['id']}",
                    ROW_KIND: KIND_ENTRY,
                    ROW_ORDER: f"{m['id']:012d}",
                }
            )
        schema = {
            "name": pl.String,
            "projects": pl.String,
            "images": pl.Int64,
            "train": pl.Int64,
            "val": pl.Int64,
            "tar": pl.String,
            "tar_path": pl.String,
            "pushes": pl.Int64,
            "last_push": pl.String,
            "created": pl.String,
            ROW_TARGET: pl.String,
            ROW_KIND: pl.String,
            ROW_ORDER: pl.String,
        }
        return _frame(rows, schema)


class MixSource(MemorySource):
    """One mix's ratio table (``mix:ID``): images, train, val, val's share and its target per
    project, and per project and class under it."""

    kind = "mix"

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.name = spec.name
        self.columns = [
            Column("project", "Project / class", "name", None, "project"),
            Column("images", "Images", "int", 6, "images"),
            Column("train", "Train", "int", 5, "train"),
            Column("val", "Val", "int", 4, "val"),
            Column("val_pct", "Val %", "float", 5, "val_pct"),
            Column("target", "Target", "text", 6, "target"),
            Column("groups", "Masters", "int", 7, "groups"),
        ]

    @property
    def title(self) -> str:
        return f"mix {self.name}"

    def build(self, store: Store) -> pl.DataFrame:
        import polars as pl

        from tuiops.ops.projects import recorded_mixes

        if not self.spec.name.isdigit():
            raise UsageError(
                f"mix:{self.spec.name} names no mix", hint="open one from the mixes entry of the catalog"
            )
        found = (
            [m for m in recorded_mixes(store, mix_id=int(self.spec.name))]
            if table_exists(store, "project_mixes")
            else []
        )
        if not found:
            raise NotFoundError(
                f"no mix with id {self.spec.name} in the store", hint="run `tuiops project mix` first"
            )
        mix = found[0]
        self.name = str(mix["name"])
        rows = []
        for r in mix["split_table"]:
            target = r.get("target")
            rows.append(
                {
                    "project": r["project"] if r.get("class") is None else f"  {r['project']} / {r['class']}",
                    "images": r["images"],
                    "train": r["train"],
                    "val": r["val"],
                    "val_pct": round(100.0 * float(r.get("val_share") or 0.0), 1),
                    "target": "-" if target is None else str(target),
                    "groups": r.get("groups"),
                }
            )
        schema = {
            "project": pl.String,
            "images": pl.Int64,
            "train": pl.Int64,
            "val": pl.Int64,
            "val_pct": pl.Float64,
            "target": pl.String,
            "groups": pl.Int64,
        }
        return _frame(rows, schema)
