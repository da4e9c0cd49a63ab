"""Workspace commands: `tuiops init` and `tuiops classes list|add`."""

from __future__ import annotations

from tuiops.commands import CommandContext, Param, PathType, Result, command, json_param


@command(
    "init",
    Param("directory", default=".", type=PathType(file_okay=False)),
    Param("name", ("--name",), help="Workspace name (default: the folder's name)."),
    Param("classes", ("--classes",), help="Comma-separated class names, in class-id order."),
    Param(
        "key_pattern",
        ("--key-pattern",),
        help="Regex with (?P<booru>…) and (?P<fid>…) applied to file stems.",
    ),
    json_param(),
)
def init_cmd(
    ctx: CommandContext,
    directory: str,
    name: str | None,
    classes: str | None,
    key_pattern: str | None,
    as_json: bool,
) -> Result:
    """Create a workspace: tuiops.toml (pools, image-key pattern, class map, hosts) and tuiops.db."""
    from tuiops.workspace import Workspace

    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else []
    ws = Workspace.init(directory, name=name, classes=names, key_pattern=key_pattern)
    try:
        return Result(
            {
                "workspace": str(ws.root),
                "config": str(ws.config_path),
                "store": str(ws.db_path),
                "classes": ws.classes,
            },
            f"workspace ready: {ws.root}\n  config {ws.config_path}\n  store  {ws.db_path}",
        )
    finally:
        ws.close()


@command("classes list", json_param())
def classes_list(ctx: CommandContext, as_json: bool) -> Result:
    """List the class map: id and name."""
    ws = ctx.workspace
    rows = [{"id": i, "name": n} for i, n in enumerate(ws.classes)]
    return Result(rows, "\n".join(f"{r['id']:>4}  {r['name']}" for r in rows) or "(no classes)")


@command("classes add", Param("names", required=True, nargs=-1), json_param())
def classes_add(ctx: CommandContext, names: tuple[str, ...], as_json: bool) -> Result:
    """Append class names to the class map (existing names are left where they are)."""
    ws = ctx.workspace
    from tuiops.workspace import Config

    trial = [*ws.classes, *[n for n in names if n not in ws.classes]]
    Config.from_toml({"classes": {"names": trial}}, ws.config_path)  # validate names
    added = ws.add_classes(list(names))
    return Result({"added": added, "classes": ws.classes}, f"added {len(added)}: {', '.join(added) or '-'}")
