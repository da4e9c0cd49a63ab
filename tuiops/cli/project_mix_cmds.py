"""`tuiops project mix`: several project builds into one dataset."""

from __future__ import annotations

import click

from tuiops.cli import emit, get_workspace, json_option, progress_reporter
from tuiops.cli.project_cmds import project_group


@project_group.command("mix")
@click.argument("projects", nargs=-1, required=True)
@click.option(
    "--out",
    "-o",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder (built beside it, then renamed into place).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["voc", "yolo", "coco"]),
    default="voc",
    show_default=True,
    help="Dataset layout to write.",
)
@click.option(
    "--val", type=float, default=0.2, show_default=True, help="Share of each project's images drawn into val."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the stable split (same seed, same split)."
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="[PROJECT:]OLD=NEW",
    help="Rename a class (of one project, or of all); repeatable, e.g. --map kanji:ka=hiragana_ka.",
)
@click.option(
    "--classes",
    "classes_file",
    type=click.Path(dir_okay=False),
    help="Class names in order (classes.txt or data.yaml); every class of the mix must be in it.",
)
@click.option("--merge", is_flag=True, help="Allow --map to send two different classes onto one name.")
@click.option(
    "--max-distance",
    type=click.IntRange(0, 32),
    default=4,
    show_default=True,
    help="Perceptual-hash Hamming distance up to which two images are near-duplicates.",
)
@click.option(
    "--dupes",
    type=click.Choice(["drop", "group"]),
    default="drop",
    show_default=True,
    help="Near-duplicates: keep one of each group (drop), or keep all in one split (group).",
)
@click.option(
    "--strict", is_flag=True, help="Fail when near-duplicates straddle train and val instead of fixing."
)
@click.option(
    "--voc-year",
    type=click.Choice(["2007", "2008", "2009", "2010", "2011", "2012"]),
    help="VOC only: write the VOCdevkit/VOC<year>/ layout torchvision's VOCDetection reads.",
)
@click.option(
    "--yaml-path", help="YOLO only: the `path` written into data.yaml (default: none, the yaml's own folder)."
)
@click.option("--overwrite", is_flag=True, help="Replace an output folder that is not a mix.")
@click.option(
    "--tar",
    type=click.Path(dir_okay=False),
    help="Also write the output as FILE.tar.gz (reproducible, written under a temporary name).",
)
@click.option(
    "--push",
    metavar="HOST:PATH",
    help="Send the tarball into folder PATH on HOST (resumable) and check its SHA-256 there.",
)
@click.option("--replace-remote", is_flag=True, help="With --push: replace a different tarball of that name.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@json_option
def mix_cmd(
    projects: tuple[str, ...],
    out: str,
    fmt: str,
    val: float,
    seed: int,
    maps: tuple[str, ...],
    classes_file: str | None,
    merge: bool,
    max_distance: int,
    dupes: str,
    strict: bool,
    voc_year: str | None,
    yaml_path: str | None,
    overwrite: bool,
    tar: str | None,
    push: str | None,
    replace_remote: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Mix the builds of PROJECTS into one VOC, YOLO or COCO dataset.

    One class map across projects (same name, same class; a name that looks like
    another, or a --map merge without --merge, is an error), a stable split per image,
    near-duplicates dropped and train/val leaks fixed by perceptual hash, and a
    manifest.json with every file's SHA-256.

    \b
    Examples:
      tuiops project mix close_button kanji --out mixes/ui --val 0.2 --seed 1
      tuiops project mix close_button kanji --out mixes/ui --format yolo --tar mixes/ui.tar.gz
      tuiops project mix a b --out mixes/ab --voc-year 2012 --map b:Button=button --merge
      tuiops project mix a b --out mixes/ab --format yolo --push gpu1:datasets
    """
    from tuiops.ops.project_mix import mix_projects

    ws = get_workspace()
    with progress_reporter("mix", quiet=quiet or as_json) as prog:
        res = mix_projects(
            ws,
            list(projects),
            out,
            fmt=fmt,
            val=val,
            seed=seed,
            maps=list(maps),
            classes_file=classes_file,
            merge=merge,
            max_distance=max_distance,
            dupes=dupes,
            strict=strict,
            voc_year=voc_year,
            yaml_path=yaml_path,
            overwrite=overwrite,
            tar=tar,
            push=push,
            replace_remote=replace_remote,
            progress=prog,
        )
    for w in res.warnings:
        click.secho(f"tuiops: warning: {w}", err=True, fg="yellow")
    lines = [
        f"mixed {', '.join(res.projects)} into {res.out} ({res.format})",
        f"images    {res.images} (train {res.train}, val {res.val}), {res.boxes} boxes, "
        f"{len(res.classes)} classes",
        f"dupes     {res.dropped} dropped in {res.duplicate_groups} group(s); {res.leaks} train/val leak(s), "
        f"{res.moved} image(s) moved",
        f"manifest  sha256 {res.manifest_sha256}",
    ]
    for g in res.duplicates[:5]:
        what = "dropped" if res.dropped else "kept with it"
        lines.append(f"  {g['kept']}: {what} {', '.join(g['others'])} (distance ≤ {g['max_distance']})")
    if len(res.duplicates) > 5:
        lines.append(f"  … and {res.duplicate_groups - 5} more group(s) (--json lists them)")
    if res.clipped:
        lines.append(f"clipped   {res.clipped} box(es) to their image")
    if res.not_carried:
        what = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in res.not_carried.items())
        lines.append(f"not kept  VOC object flags/tags that {res.format.upper()} cannot hold: {what} box(es)")
    if res.tar:
        lines.append(f"tarball   {res.tar}{' (unchanged)' if res.tar_reused else ''}")
        lines.append(f"sha256    {res.tar_sha256}")
    if res.push:
        how = "resumed" if res.push.resumed else ("already there" if res.push.skipped else "sent")
        lines.append(f"pushed    {res.push.host}:{res.push.path} ({how}), sha256 verified on the host")
    emit(res.to_dict(), as_json, "\n".join(lines))
