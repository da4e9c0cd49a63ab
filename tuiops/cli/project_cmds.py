"""Dataset projects: `tuiops project …` (new, build, list, show)."""

from __future__ import annotations

import click

from tuiops.cli import cli, emit, get_workspace, json_option, progress_reporter


@cli.group("project")
def project_group() -> None:
    """Dataset projects: master images and VOC annotations plus an augmentation script.

    A project lives in projects/NAME/ of the workspace; a build runs its augmentation
    (here or on a host over SSH) into projects/NAME/build/, and a mix joins the builds
    of several projects into one VOC, YOLO or COCO dataset.
    """


def _split(value: str) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()]


@project_group.command("new")
@click.argument("name")
@click.option(
    "--classes", required=True, help="The project's class names, comma-separated (VOC <name> values)."
)
@click.option(
    "--count", type=int, default=200, show_default=True, help="Default number of images a build makes."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Default random seed of a build.")
@click.option(
    "--augment",
    default=None,
    help="The augmentation command instead of the generated augment.py "
    "({out}, {count} and {seed} are substituted, shell-quoted).",
)
@json_option
def project_new(name: str, classes: str, count: int, seed: int, augment: str | None, as_json: bool) -> None:
    """Create projects/NAME/: master/images, master/annotations, project.toml, augment.py, .gitignore.

    The generated augment.py pastes the annotated master objects onto drawn
    backgrounds (projects/common/paste.py, copied into the workspace when missing).
    Put source images into master/images and their VOC annotations (same stem) into
    master/annotations, then build.

    \b
    Examples:
      tuiops project new close_button --classes close_button
      tuiops project new ui --classes ok,cancel --augment "python gen.py -o {out} -n {count}"
    """
    from tuiops.ops.project import new_project

    p = new_project(get_workspace(), name, classes=_split(classes), count=count, seed=seed, augment=augment)
    emit(p.to_dict(), as_json, f"created project {p.name} in {p.root}")


@project_group.command("build")
@click.argument("name")
@click.option("--on", "host", default=None, help="Run the augmentation on this host ([hosts.NAME]) over SSH.")
@click.option("--count", type=int, default=None, help="Number of images to generate (default: project.toml).")
@click.option("--seed", type=int, default=None, help="Random seed (default: project.toml).")
@click.option("--force", is_flag=True, help="Build even when the last build is up to date.")
@click.option(
    "--timeout",
    type=float,
    default=3600.0,
    show_default=True,
    help="Stop the augmentation after this many seconds (0: no limit).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@json_option
def project_build(
    name: str,
    host: str | None,
    count: int | None,
    seed: int | None,
    force: bool,
    timeout: float,
    quiet: bool,
    as_json: bool,
) -> None:
    """Build projects/NAME/build/: run the augmentation, validate, name and annotate the outputs.

    Generated images become build/JPEGImages/NAME_000001.jpg … with VOC annotations
    in build/Annotations/ and build.json (hashes of the inputs, count, seed, host).
    Every output is checked (the image opens fully, boxes inside it within 1 px,
    classes from project.toml); a bad one fails the build and the previous build
    stays. An unchanged project (same inputs, count and seed) is not built again.
    With --on HOST the project is sent to the host, run there and fetched back; a
    build cut off by a lost connection resumes its transfers when run again. There,
    `python` in the command is the interpreter named by python = "…" in
    [hosts.HOST] of tuiops.toml when set (else python, else python3 on the host).

    \b
    Examples:
      tuiops project build close_button --count 50
      tuiops project build kanji --on gpu1 --timeout 600
    """
    from tuiops.ops.project import build_project

    ws = get_workspace()
    with progress_reporter(f"build {name}", quiet=quiet or as_json) as prog:
        res = build_project(
            ws, name, host=host, count=count, seed=seed, force=force, timeout=timeout or None, progress=prog
        )
    if res.status == "up to date":
        text = (
            f"{name}: up to date ({res.images} images, built {res.created} on {res.host}); --force rebuilds"
        )
    else:
        per = ", ".join(f"{k} {v}" for k, v in res.class_counts.items())
        text = (
            f"{name}: built {res.images} images with {res.objects} objects ({per}) on {res.host} "
            f"in {res.elapsed:.1f} s → {res.path}"
        )
    emit(res.to_dict(), as_json, text)


@project_group.command("list")
@json_option
def project_list(as_json: bool) -> None:
    """List the workspace's projects with their classes, masters and build state."""
    from tuiops.ops.project import list_projects

    rows = list_projects(get_workspace())
    if as_json:
        emit(rows, True)
        return
    if not rows:
        click.echo("no projects (create one with `tuiops project new NAME --classes …`)")
        return
    for r in rows:
        if "error" in r:
            click.echo(f"{r['name']:<20} error: {r['error']}")
            continue
        built = f"{r['images']} images on {r['host']} at {r['built']}" if r["built"] else "-"
        click.echo(
            f"{r['name']:<20} {r['build']:<10} masters {r['masters']:<4} classes {','.join(r['classes'])}  "
            f"build: {built}"
        )


@project_group.command("show")
@click.argument("name")
@json_option
def project_show(name: str, as_json: bool) -> None:
    """Show one project: settings, inputs hash, build state and the recorded builds."""
    from tuiops.ops.project import show_project

    info = show_project(get_workspace(), name)
    if as_json:
        emit(info, True)
        return
    for k in ("name", "root", "classes", "augment", "count", "seed", "masters", "build", "inputs_sha256"):
        v = info[k]
        click.echo(f"{k:<14} {', '.join(v) if isinstance(v, list) else v}")
    last = info["last_build"]
    if last:
        click.echo(
            f"{'last build':<14} {last['images']} images, {last['objects']} objects on {last['host']} at {last['created']}"
        )
    for b in info["builds"]:
        click.echo(
            f"  #{b['id']:<4} {b['created']}  {b['host']:<12} count {b['count']} seed {b['seed']}  {b['images']} images"
        )
