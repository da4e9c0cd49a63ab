"""Workspace commands: init, classes, demo."""

from __future__ import annotations

import click

from tuiops.cli import cli, emit, get_workspace, json_option


@cli.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--name", help="Workspace name (default: the folder's name).")
@click.option("--classes", "classes", help="Comma-separated class names, in class-id order.")
@click.option("--key-pattern", help="Regex with (?P<booru>…) and (?P<fid>…) applied to file stems.")
@json_option
def init_cmd(
    directory: str, name: str | None, classes: str | None, key_pattern: str | None, as_json: bool
) -> None:
    """Create a workspace: tuiops.toml (pools, image-key pattern, class map, hosts) and tuiops.db."""
    from tuiops.workspace import Workspace

    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else []
    ws = Workspace.init(directory, name=name, classes=names, key_pattern=key_pattern)
    try:
        emit(
            {
                "workspace": str(ws.root),
                "config": str(ws.config_path),
                "store": str(ws.db_path),
                "classes": ws.classes,
            },
            as_json,
            text=f"workspace ready: {ws.root}\n  config {ws.config_path}\n  store  {ws.db_path}",
        )
    finally:
        ws.close()


@cli.group("classes")
def classes_group() -> None:
    """Show or extend the workspace's class map (append-only: ids never change)."""


@classes_group.command("list")
@json_option
def classes_list(as_json: bool) -> None:
    """List the class map: id and name."""
    ws = get_workspace()
    rows = [{"id": i, "name": n} for i, n in enumerate(ws.classes)]
    emit(rows, as_json, text="\n".join(f"{r['id']:>4}  {r['name']}" for r in rows) or "(no classes)")


@classes_group.command("add")
@click.argument("names", nargs=-1, required=True)
@json_option
def classes_add(names: tuple[str, ...], as_json: bool) -> None:
    """Append class names to the class map (existing names are left where they are)."""
    ws = get_workspace()
    from tuiops.workspace import Config

    trial = [*ws.classes, *[n for n in names if n not in ws.classes]]
    Config.from_toml({"classes": {"names": trial}}, ws.config_path)  # validate names
    added = ws.add_classes(list(names))
    emit(
        {"added": added, "classes": ws.classes},
        as_json,
        text=f"added {len(added)}: {', '.join(added) or '-'}",
    )


@cli.command("demo")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--images",
    "n_images",
    type=click.IntRange(1, 100_000),
    default=200,
    show_default=True,
    help="How many images to draw.",
)
@click.option(
    "--seed", type=int, default=7, show_default=True, help="Random seed (the same seed draws the same demo)."
)
@click.option(
    "--open/--no-open",
    "open_app",
    default=None,
    help="Open the terminal app when done (default: when on a terminal).",
)
@json_option
def demo_cmd(directory: str, n_images: int, seed: int, open_app: bool | None, as_json: bool) -> None:
    """Make a ready demo workspace in DIRECTORY: a drawn booru-like pool, a label set `master`
    and a detection run `v1` with realistic errors (missed, extra, wrong class, badly placed boxes).

    Nothing is downloaded. Then try `tuiops -w DIRECTORY query "SELECT * FROM v_labels LIMIT 5"`.
    """
    import sys

    from tuiops.cli import progress_reporter
    from tuiops.ops.demo import make_demo

    with progress_reporter("demo", quiet=as_json) as progress:
        summary = make_demo(directory, images=n_images, seed=seed, progress=progress)
    data = summary.to_dict()
    steps = data["steps"]
    scan, labels, dets = steps.get("scan", {}), steps.get("labels", {}), steps.get("detections", {})
    bad = ", ".join(f"{k} {v}" for k, v in scan.get("bad", {}).items()) or "none"
    text = (
        f"demo workspace ready: {summary.workspace}\n"
        f"  pool 'pool'       {scan.get('total', 0)} files indexed: {scan.get('status', {}).get('ok', 0)} ok, "
        f"bad {bad}, {scan.get('unkeyed', 0)} without an image key\n"
        f"  label set 'master' {labels.get('boxes', 0)} boxes in {labels.get('images', 0)} images\n"
        f"  run 'v1'           {dets.get('boxes', 0)} detections in {dets.get('images', 0)} images; injected errors: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary.errors.items())
        + f"\nnext: cd {summary.workspace} && tuiops"
    )
    emit(data, as_json, text=text)
    if open_app is None:
        open_app = sys.stdin.isatty() and sys.stdout.isatty() and not as_json
    tui = cli.commands.get("tui")
    if open_app and tui is not None:
        ctx = click.get_current_context()
        ctx.find_root().obj["workspace"] = summary.workspace
        ctx.invoke(tui)
