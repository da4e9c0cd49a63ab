"""Workspace commands: init, classes (built from :mod:`tuiops.commands.workspace`), demo."""

from __future__ import annotations

import click

from tuiops.cli import cli, emit, json_option
from tuiops.cli.build import add

add(cli, "init")


@cli.group("classes")
def classes_group() -> None:
    """Show or extend the workspace's class map (append-only: ids never change)."""


add(classes_group, "classes list")
add(classes_group, "classes add")


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
