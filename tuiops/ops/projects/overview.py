"""One look at a workspace's projects, hosts and mixes, as the app's projects screen shows them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tuiops.ops.projects.catalog import list_projects

if TYPE_CHECKING:
    from tuiops.store import Store
    from tuiops.workspace import Workspace


def _hosts(ws: Workspace) -> list[dict[str, Any]]:
    """The configured hosts: address, user and the python a build runs there (no connection is made)."""
    out = []
    for name, h in sorted(ws.config.hosts.items()):
        py = h.extra.get("python")
        user = f"{h.user}@" if h.user else ""
        port = f":{h.port}" if h.port != 22 else ""
        out.append(
            {
                "name": name,
                "address": f"{user}{h.address}{port}",
                "python": py if isinstance(py, str) and py else "python (or python3)",
            }
        )
    return out


def recorded_mixes(store: Store, limit: int = 50, *, mix_id: int | None = None) -> list[dict[str, Any]]:
    """The recorded mixes (or the one of ``mix_id``), newest first: split, tarball, pushes and the
    table per project and class."""
    where = "" if mix_id is None else "WHERE m.id = ? "
    params: tuple[Any, ...] = (limit,) if mix_id is None else (mix_id, limit)
    rows = store.execute(
        "SELECT id, name, out, format, projects, images, train, val, dropped, tar_path, created, split_table, params, "
        "(SELECT count(*) FROM project_mix_pushes p WHERE p.mix_id = m.id), "
        "(SELECT host || ':' || path FROM project_mix_pushes p WHERE p.mix_id = m.id ORDER BY id DESC LIMIT 1) "
        f"FROM project_mixes m {where}ORDER BY id DESC LIMIT ?",
        params,
    ).fetchall()
    keys = (
        "id", "name", "out", "format", "projects", "images", "train", "val", "dropped", "tar", "created",
        "split_table", "params", "pushes", "last_push",
    )  # fmt: skip
    out = []
    for r in rows:
        d = dict(zip(keys, r, strict=True))
        d["projects"] = json.loads(d["projects"])
        d["split_table"] = json.loads(d["split_table"]) if d["split_table"] else []
        d["params"] = json.loads(d["params"])
        out.append(d)
    return out


def mix_argv(params: dict[str, Any], *, tar: str | None = None) -> list[str]:
    """The ``tuiops project mix`` arguments that make the mix of ``params`` (a mix's stored parameters) again."""
    argv = ["project", "mix", *params["projects"], "--out", params["out"], "--format", params["format"]]
    argv += ["--val", str(params["val"]), "--seed", str(params["seed"]), "--dupes", params["dupes"]]
    argv += ["--max-distance", str(params["max_distance"])]
    for rule in params.get("maps") or []:
        argv += ["--map", rule]
    for key, flag in (
        ("classes_file", "--classes"),
        ("voc_year", "--voc-year"),
        ("yaml_path", "--yaml-path"),
    ):
        if params.get(key) is not None:
            argv += [flag, str(params[key])]
    argv += [flag for key, flag in (("merge", "--merge"), ("strict", "--strict")) if params.get(key)]
    return [*argv, "--tar", tar] if tar else argv


def projects_overview(ws: Workspace, *, mixes: bool = True) -> dict[str, Any]:
    """The workspace's projects (state current/stale/never built, images, classes, last build and host),
    its hosts and (unless not ``mixes``) its mixes."""
    projects = []
    for r in list_projects(ws):
        if "error" in r:
            projects.append({"name": r["name"], "state": "error", "error": r["error"]})
            continue
        state = {"up to date": "current", "none": "never built"}.get(r["build"], r["build"])
        projects.append({**r, "state": state})
    return {"projects": projects, "hosts": _hosts(ws), "mixes": recorded_mixes(ws.store) if mixes else []}
