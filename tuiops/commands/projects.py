"""Dataset projects: `tuiops project new|build|list|show|mix`."""

from __future__ import annotations

from typing import Any

from tuiops.commands import (
    Choice,
    CommandContext,
    Float,
    Int,
    IntRange,
    Param,
    PathType,
    Result,
    command,
    json_param,
    quiet_param,
)


def _split(value: str) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()]


def split_lines(table: list[dict[str, Any]]) -> list[str]:
    """The split per project and class as text lines (a project's row, then its classes indented)."""
    if not table:
        return []
    lines = [
        f"{'split':<9} {'project / class':<28} {'images':>6} {'train':>6} {'val':>5} {'val %':>6} {'groups':>6}"
    ]
    for r in table:
        name = r["project"] if r["class"] is None else f"  {r['class']}"
        share = f"{100 * r['val_share']:.1f}"
        lines.append(
            f"{'':<9} {name:<28} {r['images']:>6} {r['train']:>6} {r['val']:>5} {share:>6} {r['groups']:>6}"
        )
    return lines


@command(
    "project new",
    Param("name", required=True),
    Param(
        "classes",
        ("--classes",),
        help="The project's class names, comma-separated (VOC <name> values); needed unless adopting "
        "a folder whose master annotations name them.",
    ),
    Param(
        "count",
        ("--count",),
        type=Int(),
        default=200,
        show_default=True,
        help="Default number of images a build makes.",
    ),
    Param(
        "seed", ("--seed",), type=Int(), default=0, show_default=True, help="Default random seed of a build."
    ),
    Param(
        "augment",
        ("--augment",),
        help="The augmentation command instead of the generated augment.py "
        "({out}, {count} and {seed} are substituted, shell-quoted).",
    ),
    Param(
        "adopt",
        ("--adopt",),
        type=PathType(file_okay=False),
        help="Adopt this existing folder as the project (copied into projects/NAME unless it is that "
        "folder): its files are kept, what the layout lacks is added.",
    ),
    json_param(),
)
def project_new(
    ctx: CommandContext,
    name: str,
    classes: str | None,
    count: int,
    seed: int,
    augment: str | None,
    adopt: str | None,
    as_json: bool,
) -> Result:
    """Create projects/NAME/: master/images, master/annotations, project.toml, augment.py, .gitignore.

    The generated augment.py pastes the annotated master objects onto drawn
    backgrounds (projects/common/paste.py, copied into the workspace when missing).
    Put source images into master/images and their VOC annotations (same stem) into
    master/annotations, then build. The script's contract (arguments, environment,
    time limit, the three forms of its output) is in its docstring and in
    docs/augmentation.md. An empty projects/NAME folder is made anew; --adopt DIR
    takes a folder you already have (project.toml written when missing, with the
    classes of its master annotations unless --classes names them).

    \b
    Examples:
      tuiops project new close_button --classes close_button
      tuiops project new ui --classes ok,cancel --augment "python gen.py -o {out} -n {count}"
      tuiops project new shots --adopt ~/labelling/shots
    """
    from tuiops.errors import UsageError
    from tuiops.ops.project import adopt_project, new_project

    if adopt is not None:
        res = adopt_project(
            ctx.workspace,
            name,
            adopt,
            classes=_split(classes or ""),
            count=count,
            seed=seed,
            augment=augment,
        )
        p = res.project
        where = f" (copied from {res.copied_from})" if res.copied_from else ""
        added = f"; added {', '.join(res.added)}" if res.added else "; nothing added"
        return Result(
            {**p.to_dict(), "copied_from": res.copied_from, "added": res.added},
            f"adopted project {p.name} in {p.root}{where}{added}; classes {', '.join(p.classes)}",
        )
    if not _split(classes or ""):
        raise UsageError("a project needs at least one class", hint="`tuiops project new NAME --classes a,b`")
    p = new_project(
        ctx.workspace, name, classes=_split(classes or ""), count=count, seed=seed, augment=augment
    )
    return Result(p.to_dict(), f"created project {p.name} in {p.root}")


@command(
    "project examples",
    Param("folder", type=PathType(file_okay=False)),
    json_param(),
)
def project_examples(ctx: CommandContext, folder: str | None, as_json: bool) -> Result:
    """Copy the shipped example projects (close_button, kanji and common/) into a workspace.

    FOLDER is the workspace folder (its projects/ gets them; default: this workspace).
    Projects that exist there already are left alone; builds are not copied.

    \b
    Examples:
      tuiops project examples
      tuiops project examples ~/work/ui-dataset
    """
    from pathlib import Path

    from tuiops.ops.project import copy_examples_to
    from tuiops.ops.projects.model import PROJECTS

    base = Path(folder).expanduser().absolute() if folder else ctx.workspace.root
    copied = copy_examples_to(base / PROJECTS)
    text = (
        f"copied {', '.join(copied)} into {base / PROJECTS}"
        if copied
        else f"nothing to copy into {base / PROJECTS}"
    )
    return Result({"folder": str(base / PROJECTS), "copied": copied}, text)


@command(
    "project build",
    Param("name", required=True),
    Param("host", ("--on",), help="Run the augmentation on this host ([hosts.NAME]) over SSH."),
    Param("count", ("--count",), type=Int(), help="Number of images to generate (default: project.toml)."),
    Param("seed", ("--seed",), type=Int(), help="Random seed (default: project.toml)."),
    Param("force", ("--force",), is_flag=True, help="Build even when the last build is up to date."),
    Param(
        "timeout",
        ("--timeout",),
        type=Float(),
        default=3600.0,
        show_default=True,
        help="Stop the augmentation after this many seconds (0: no limit).",
    ),
    quiet_param(),
    json_param(),
)
def project_build(
    ctx: CommandContext,
    name: str,
    host: str | None,
    count: int | None,
    seed: int | None,
    force: bool,
    timeout: float,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Build projects/NAME/build/: run the augmentation, validate, name and annotate the outputs.

    The masters are checked first: every master image has its VOC annotation and
    every annotation its image, the XML parses, its <size> is the image's, and every
    box has a project class and lies inside the image; a problem is named with its
    file and line and nothing runs.
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

    ws = ctx.workspace
    with ctx.progress(f"build {name}", quiet=quiet or as_json) as prog:
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
    return Result(res.to_dict(), text)


@command(
    "project clean",
    Param("name", required=True),
    Param("host", ("--on",), help="Also remove the project's build folders left on this host."),
    json_param(),
)
def project_clean(ctx: CommandContext, name: str, host: str | None, as_json: bool) -> Result:
    """Remove what failed or interrupted builds of NAME left (kept so their logs can be read).

    Here: projects/NAME/build.tmp-* (with augment.log and the outputs); with --on
    HOST also .tuiops-builds/NAME-* on the host. A successful build removes them too.

    \b
    Examples:
      tuiops project clean kanji
      tuiops project clean kanji --on gpu1
    """
    from tuiops.ops.project import clean_project

    res = clean_project(ctx.workspace, name, host=host)
    gone = [*res["local"], *(f"{host}:{p}" for p in res["remote"])]
    text = f"removed {', '.join(gone)}" if gone else f"{name}: nothing to clean"
    return Result(res, text)


@command(
    "project label",
    Param("name", required=True),
    Param("host", ("--on",), help="Send the master scenes and annotations to this labelling host."),
    Param("folder", ("--dir",), help="The folder on the host (default: labelling/NAME under its home)."),
    Param(
        "fetch",
        ("--fetch",),
        is_flag=True,
        help="Bring back the VOC files edited on the host and commit them.",
    ),
    Param("dry_run", ("--dry-run",), is_flag=True, help="With --fetch: show the diff, commit nothing."),
    Param(
        "undo", ("--undo",), is_flag=True, help="Put back the master annotations the last --fetch replaced."
    ),
    quiet_param(),
    json_param(),
)
def project_label(
    ctx: CommandContext,
    name: str,
    host: str | None,
    folder: str | None,
    fetch: bool,
    dry_run: bool,
    undo: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Label a project's masters on a labelling host and bring the VOC files back.

    --on HOST puts master/images, master/annotations and classes.txt side by side
    into a folder on the host (open it there with `labelImg DIR DIR/classes.txt`).
    --fetch brings back the *.xml of that folder, checks each against its master
    image (size, boxes inside it) and the project's classes, prints what changed per
    file, and commits the changed files as the project's master annotations in one
    revision; a file with a problem is left out and named with its line (exit 4).
    --undo puts back what the last --fetch replaced.

    \b
    Examples:
      tuiops project label kanji --on labeller
      tuiops project label kanji --fetch --dry-run
      tuiops project label kanji --fetch
      tuiops project label kanji --undo
    """
    from tuiops.errors import UsageError
    from tuiops.ops.project import fetch_labels, send_for_labelling, undo_labels

    ws = ctx.workspace
    if sum((host is not None, fetch, undo)) != 1:
        raise UsageError(
            "give one of --on HOST, --fetch or --undo", hint="`tuiops project label NAME --on HOST`"
        )
    if undo:
        res = undo_labels(ws, name)
        return Result(
            res, f"{name}: revision {res['revision']} undone; restored {', '.join(res['restored'])}"
        )
    if host is not None:
        with ctx.progress(f"label {name}", quiet=quiet or as_json) as prog:
            sent = send_for_labelling(ws, name, host, folder=folder, progress=prog)
        return Result(
            sent,
            f"{name}: sent {sent['images']} master image(s) and {sent['annotations']} annotation(s) to "
            f"{host}:{sent['path']}; label there, then `tuiops project label {name} --fetch`",
        )
    with ctx.progress(f"fetch {name}", quiet=quiet or as_json) as prog:
        res = fetch_labels(ws, name, dry_run=dry_run, progress=prog)
    lines = []
    for fname, d in res["changed"].items():
        what = "new file, " if d["new_file"] else ""
        lines.append(
            f"  {fname}: {what}{d['objects_before']} → {d['objects_after']} objects "
            f"(+{len(d['added'])} −{len(d['removed'])})"
        )
        lines += [f"    + {b[0]} ({', '.join(map(str, b[1:]))})" for b in d["added"]]
        lines += [f"    - {b[0]} ({', '.join(map(str, b[1:]))})" for b in d["removed"]]
    if res["revision"] is not None:
        head = f"{name}: revision {res['revision']} commits {len(res['changed'])} changed annotation(s)"
    elif res["changed"]:
        head = f"{name}: {len(res['changed'])} annotation(s) would change (--dry-run: nothing written)"
    else:
        head = f"{name}: nothing changed"
    lines.insert(0, f"{head}; {res['unchanged']} unchanged, {len(res['left_out'])} left out")
    from tuiops.errors import InputError

    return Result(
        res,
        "\n".join(lines),
        warnings=list(res["left_out"]),
        exit_code=InputError.exit_code if res["left_out"] else 0,
    )


@command("project list", json_param())
def project_list(ctx: CommandContext, as_json: bool) -> Result:
    """List the workspace's projects with their classes, masters and build state."""
    from tuiops.ops.project import list_projects

    rows = list_projects(ctx.workspace)

    def text() -> str:
        if not rows:
            return "no projects (create one with `tuiops project new NAME --classes …`)"
        lines = []
        for r in rows:
            if "error" in r:
                lines.append(f"{r['name']:<20} error: {r['error']}")
                continue
            built = f"{r['images']} images on {r['host']} at {r['built']}" if r["built"] else "-"
            why = f" ({'; '.join(r['stale_why'])})" if r.get("stale_why") else ""
            lines.append(
                f"{r['name']:<20} {r['build']:<10} masters {r['masters']:<4} classes {','.join(r['classes'])}  "
                f"build: {built}{why}"
            )
        return "\n".join(lines)

    return Result(rows, text)


@command("project show", Param("name", required=True), json_param())
def project_show(ctx: CommandContext, name: str, as_json: bool) -> Result:
    """Show one project: settings, inputs hash, build state and the recorded builds."""
    from tuiops.ops.project import show_project

    info = show_project(ctx.workspace, name)

    def text() -> str:
        lines = []
        for k in ("name", "root", "classes", "augment", "count", "seed", "masters", "build", "inputs_sha256"):
            v = info[k]
            lines.append(f"{k:<14} {', '.join(v) if isinstance(v, list) else v}")
            if k == "build" and info.get("stale_why"):
                lines[-1] += f" ({'; '.join(info['stale_why'])})"
        last = info["last_build"]
        if last:
            lines.append(
                f"{'last build':<14} {last['images']} images, {last['objects']} objects on {last['host']} at {last['created']}"
            )
        for b in info["builds"]:
            lines.append(
                f"  #{b['id']:<4} {b['created']}  {b['host']:<12} count {b['count']} seed {b['seed']}  {b['images']} images"
            )
        return "\n".join(lines)

    return Result(info, text)


@command(
    "project mix",
    Param("projects", required=True, nargs=-1),
    Param(
        "out",
        ("--out", "-o"),
        required=True,
        type=PathType(file_okay=False),
        help="Output folder (built beside it, then renamed into place).",
    ),
    Param(
        "fmt",
        ("--format",),
        type=Choice(("voc", "yolo", "coco")),
        default="voc",
        show_default=True,
        help="Dataset layout to write.",
    ),
    Param(
        "val",
        ("--val",),
        type=Float(),
        default=0.2,
        show_default=True,
        help="Share of each project's and each class's images drawn into val (by master group).",
    ),
    Param(
        "seed",
        ("--seed",),
        type=Int(),
        default=0,
        show_default=True,
        help="Seed of the stable split (same seed, same split).",
    ),
    Param(
        "maps",
        ("--map",),
        multiple=True,
        metavar="[PROJECT:]OLD=NEW",
        help="Rename a class (of one project, or of all); repeatable, e.g. --map kanji:ka=hiragana_ka.",
    ),
    Param(
        "classes_file",
        ("--classes",),
        type=PathType(dir_okay=False),
        help="Class names in order (classes.txt or data.yaml); every class of the mix must be in it.",
    ),
    Param(
        "merge", ("--merge",), is_flag=True, help="Allow --map to send two different classes onto one name."
    ),
    Param(
        "max_distance",
        ("--max-distance",),
        type=IntRange(0, 32),
        default=4,
        show_default=True,
        help="Perceptual-hash Hamming distance up to which two images are near-duplicates.",
    ),
    Param(
        "dupes",
        ("--dupes",),
        type=Choice(("drop", "group")),
        default="drop",
        show_default=True,
        help="Near-duplicates across masters: drop the repeats of an earlier master's images (drop), "
        "or keep them in that master's split (group). Variants of one master are never dropped.",
    ),
    Param(
        "strict",
        ("--strict",),
        is_flag=True,
        help="With --dupes group: fail on near-duplicates across masters instead of keeping them in one split.",
    ),
    Param(
        "voc_year",
        ("--voc-year",),
        type=Choice(("2007", "2008", "2009", "2010", "2011", "2012")),
        help="VOC only: write the VOCdevkit/VOC<year>/ layout torchvision's VOCDetection reads.",
    ),
    Param(
        "yaml_path",
        ("--yaml-path",),
        help="YOLO only: the `path` written into data.yaml (default: none, the yaml's own folder).",
    ),
    Param("overwrite", ("--overwrite",), is_flag=True, help="Replace an output folder that is not a mix."),
    Param(
        "tar",
        ("--tar",),
        type=PathType(dir_okay=False),
        help="Also write the output as FILE.tar.gz (reproducible, written under a temporary name).",
    ),
    Param(
        "push",
        ("--push",),
        metavar="HOST:PATH",
        help="Send the tarball into folder PATH on HOST (resumable) and check its SHA-256 there.",
    ),
    Param(
        "replace_remote",
        ("--replace-remote",),
        is_flag=True,
        help="With --push: replace a different tarball of that name.",
    ),
    Param(
        "allow_stale",
        ("--allow-stale",),
        is_flag=True,
        help="Mix a stale build (its masters, script, count or seed changed since) instead of refusing it.",
    ),
    Param(
        "build",
        ("--build",),
        is_flag=True,
        help="Build the projects that are stale or were never built (here) before mixing.",
    ),
    quiet_param(),
    json_param(),
)
def mix_cmd(
    ctx: CommandContext,
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
    allow_stale: bool,
    build: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Mix the builds of PROJECTS into one VOC, YOLO or COCO dataset.

    One class map across projects (same name, same class; a name that looks like
    another, or a --map merge without --merge, is an error); a split by master group
    (the variants a build made of one master stay in one split) drawn per project and
    per class, so each has its share of val (within one image where each master gave
    one image; at least one val image for a project or class of 4 or more);
    near-duplicates across masters dropped or kept together by perceptual hash; the
    split table per project and class printed and stored in manifest.json, with
    every file's SHA-256. A stale build (masters, script, count or seed changed
    since, as `project list` says) is refused: --build rebuilds it first,
    --allow-stale mixes it as it is.

    \b
    Examples:
      tuiops project mix close_button kanji --out mixes/ui --val 0.2 --seed 1
      tuiops project mix close_button kanji --out mixes/ui --format yolo --tar mixes/ui.tar.gz
      tuiops project mix a b --out mixes/ab --voc-year 2012 --map b:Button=button --merge
      tuiops project mix a b --out mixes/ab --format yolo --push gpu1:datasets
    """
    from tuiops.ops.project_mix import mix_projects

    ws = ctx.workspace
    with ctx.progress("mix", quiet=quiet or as_json) as prog:
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
            allow_stale=allow_stale,
            build=build,
            progress=prog,
        )
    lines = [
        *([f"rebuilt   {', '.join(res.rebuilt)} (stale or never built)"] if res.rebuilt else []),
        f"mixed {', '.join(res.projects)} into {res.out} ({res.format})"
        + (" — unchanged since the last mix, reused" if res.reused else ""),
        f"images    {res.images} (train {res.train}, val {res.val}), {res.boxes} boxes, "
        f"{len(res.classes)} classes",
        f"dupes     {res.dropped} dropped in {res.duplicate_groups} group(s); {res.leaks} train/val leak(s), "
        f"{res.moved} image(s) moved",
        f"manifest  sha256 {res.manifest_sha256}",
        *split_lines(res.split_table),
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
    return Result(res.to_dict(), "\n".join(lines), warnings=list(res.warnings))
