"""Workspace commands: `tuiops init`, `tuiops classes list|add`, `tuiops demo` and `tuiops tui`
(the terminal app over the workspace, opened by the face that can: the command line)."""

from __future__ import annotations

from tuiops.commands import (
    Choice,
    CommandContext,
    Int,
    IntRange,
    Param,
    PathType,
    Result,
    command,
    json_param,
)


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


@command(
    "demo",
    Param("directory", required=True, type=PathType(file_okay=False)),
    Param(
        "n_images",
        ("--images",),
        type=IntRange(1, 100_000),
        default=200,
        show_default=True,
        help="How many images to draw.",
    ),
    Param(
        "seed",
        ("--seed",),
        type=Int(),
        default=7,
        show_default=True,
        help="Random seed (the same seed draws the same demo).",
    ),
    Param(
        "open_app",
        ("--open",),
        is_flag=True,
        secondary=("--no-open",),
        help="Open the terminal app when done (default: when on a terminal).",
    ),
    json_param(),
)
def demo_cmd(
    ctx: CommandContext, directory: str, n_images: int, seed: int, open_app: bool | None, as_json: bool
) -> Result:
    """Make a ready demo workspace in DIRECTORY: a drawn booru-like pool, a label set `master`
    and a detection run `v1` with realistic errors (missed, extra, wrong class, badly placed boxes).

    Nothing is downloaded. Then try `tuiops -w DIRECTORY query "SELECT * FROM v_labels LIMIT 5"`.
    """
    import sys

    from tuiops.ops.demo import make_demo

    with ctx.progress("demo", quiet=as_json) as progress:
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
    warnings = []
    if open_app and ctx.open_app is None:
        warnings.append("--open: the terminal app opens from the command line only; it was not opened")
    if open_app is None:
        open_app = sys.stdin.isatty() and sys.stdout.isatty() and not as_json
    app = ctx.open_app if open_app else None

    def open_it() -> None:
        from tuiops.workspace import Workspace

        assert app is not None
        ws = Workspace.find(str(summary.workspace))
        try:
            app(ws)
        finally:
            ws.close()

    return Result(data, text, warnings=warnings, after=open_it if app is not None else None)


@command(
    "tui",
    Param(
        "left",
        ("--left",),
        metavar="SOURCE",
        help="What the left panel shows: catalog, pool:NAME[/FOLDER], labels:SET, run:RUN, match:NAME "
        "or query:SQL (default: the first pool).",
    ),
    Param("right", ("--right",), metavar="SOURCE", help="What the right panel shows (default: the catalog)."),
    Param(
        "images",
        ("--images",),
        type=Choice(("auto", "kitty", "sixel", "halfblock")),
        default="auto",
        show_default=True,
        help="How the viewer, the quick view and triage show pictures: Kitty graphics, Sixel or "
        "half blocks; auto asks the terminal at start (half blocks inside tmux or screen, or when "
        "the terminal does not answer).",
    ),
)
def tui_cmd(ctx: CommandContext, left: str | None, right: str | None, images: str = "auto") -> Result:
    """Open the terminal app: two FAR-style panels over the workspace.

    Browse pools, label sets, runs and matches as in FAR Manager: F3 views an image with its
    boxes, F5/F6 copy/move with the label files, Ctrl+Q opens the quick view, + selects by
    mask, / filters with SQL, letters typed go to the command line, Alt+letter is the quick
    search, F10 (or q on the command line) quits, F1 lists every key. [tui.keymap] in
    tuiops.toml changes keys by action id (view = "f3,ctrl+v"). Pictures are shown in real
    pixels where the terminal can (Kitty graphics or Sixel: kitty, WezTerm, foot, iTerm2,
    Windows Terminal), in half blocks elsewhere.

    \b
    Examples:
      tuiops
      tuiops tui --left pool:pool/review --right labels:master
      tuiops tui --images halfblock
    """
    from tuiops.errors import UsageError
    from tuiops.ops.browse import Spec

    for value in (left, right):
        if value:
            Spec.parse(value)
    ws = ctx.workspace
    if ctx.open_app is None:
        raise UsageError(
            "the terminal app opens from the command line only", hint="run `tuiops tui` in a terminal"
        )
    ctx.open_app(ws, left=left, right=right, images=images)
    return Result(None, None, raw=True)
