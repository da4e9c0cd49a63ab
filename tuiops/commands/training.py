"""`tuiops dataset build|list` and `tuiops detect`."""

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
)


def names(text: str | None) -> list[str] | None:
    """Comma-separated names as a list (None stays None)."""
    if text is None:
        return None
    return [x.strip() for x in text.split(",") if x.strip()]


def _quiet() -> Param:
    return Param("quiet", ("-q", "--quiet"), is_flag=True, help="No progress output on stderr.")


@command(
    "dataset build",
    Param("label_set", ("--set",), required=True, help="The label set whose images and boxes go in."),
    Param(
        "to", ("--to",), type=PathType(file_okay=False), help="Dataset folder (a rebuild may leave it out)."
    ),
    Param("name", ("--name",), help="Dataset name in the store (default: the folder's name)."),
    Param("where", ("--where",), help="Only images whose pool file matches this SQL condition on v_images."),
    Param("val", ("--val",), type=Float(), help="Share of new images that go to val (default 0.2)."),
    Param("seed", ("--seed",), type=Int(), help="Seed of the stable split draw (default 0)."),
    Param(
        "link",
        ("--link",),
        type=Choice(("symlink", "hardlink", "copy")),
        help="How images get into the dataset (default symlink).",
    ),
    Param(
        "resplit", ("--resplit",), is_flag=True, help="Draw every image's split again instead of keeping it."
    ),
    Param(
        "exclude",
        ("--exclude",),
        multiple=True,
        help="Leave out an image key, or @FILE of keys (repeatable).",
    ),
    Param(
        "include",
        ("--include",),
        multiple=True,
        help="Take back an excluded key, or @FILE of keys (repeatable).",
    ),
    Param(
        "fix",
        ("--fix",),
        help="Comma-separated fixes: duplicates, outside, leaks, empty, or all (default: report only).",
    ),
    Param(
        "dup_iou", ("--dup-iou",), type=Float(), help="IoU above which a box repeats another (default 0.9)."
    ),
    Param(
        "phash_distance",
        ("--phash-distance",),
        type=Int(),
        help="Hash bits within which a val image is a near-duplicate of a train image (default 4; -1: no check).",
    ),
    Param(
        "strict",
        ("--strict",),
        is_flag=True,
        help="Write nothing when a check finds a problem that is not fixed.",
    ),
    Param("overwrite", ("--overwrite",), is_flag=True, help="Replace a folder that is not this dataset."),
    _quiet(),
    json_param(),
)
def dataset_build_cmd(
    ctx: CommandContext,
    label_set: str,
    to: str | None,
    name: str | None,
    where: str | None,
    val: float | None,
    seed: int | None,
    link: str | None,
    resplit: bool,
    exclude: tuple[str, ...],
    include: tuple[str, ...],
    fix: str | None,
    dup_iou: float | None,
    phash_distance: int | None,
    strict: bool,
    overwrite: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Write an ultralytics dataset (images, YOLO labels, data.yaml) from a label set.

    Checks run first and are reported: duplicate boxes, boxes outside the image,
    near-duplicate images across train and val, images without boxes. --fix fixes them.
    A rebuild keeps every image's split (and the dataset's settings) unless told.

    \b
    Examples:
      tuiops dataset build --set GT --to datasets/gt --val 0.2 --seed 7
      tuiops dataset build --set GT --to datasets/gt --fix duplicates,outside,leaks
      tuiops dataset build --set GT --name gt --exclude @worst-train.txt
    """
    from tuiops.ops.dataset import build_dataset

    ws = ctx.workspace
    with ctx.progress("dataset", quiet=quiet) as on_progress:
        res = build_dataset(
            ws,
            label_set,
            to,
            name=name,
            where=where,
            val=val,
            seed=seed,
            link=link,
            resplit=resplit,
            exclude=exclude,
            include=include,
            fix=names(fix),
            dup_iou=dup_iou,
            phash_distance=phash_distance,
            strict=strict,
            overwrite=overwrite,
            progress=on_progress,
        )
    d = res.to_dict()
    return Result(d, lambda: render_dataset(d))


def render_dataset(d: dict[str, Any]) -> str:
    """The readable form of a dataset build result."""
    lines = [
        f"dataset {d['name']}  {d['root']}",
        f"  images   {d['images']:>7}  (train {d['train']}, val {d['val']}; new {d['new_images']}, "
        f"kept split {d['kept_split']}, excluded {d['excluded']})",
        f"  boxes    {d['boxes']:>7}",
        f"  data     {d['data_yaml']}",
        "  checks",
    ]
    for k, c in d["checks"].items():
        state = "fixed" if c["fixed"] else ("ok" if not c["found"] else "reported")
        lines.append(f"    {k:<11} {c['found']:>6} in {c['images']} image(s)  {state}")
        for ex in c["examples"][:3]:
            lines.append("      " + ", ".join(f"{a}={b}" for a, b in ex.items()))
    for reason, n in d["skipped"].items():
        lines.append(f"  skipped  {n:>7}  {reason}")
    if d["moved_to_train"]:
        lines.append(f"  moved    {d['moved_to_train']:>7}  val image(s) to train (near-duplicates)")
    for w in d["warnings"]:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


@command("dataset list", json_param())
def dataset_list_cmd(ctx: CommandContext, as_json: bool) -> Result:
    """List the built datasets: label set, folder, split counts, build time."""
    from tuiops.ops.dataset import list_datasets

    rows = list_datasets(ctx.workspace)
    text = "\n".join(
        f"{r['name']:<20} {r['label_set']:<16} train {r['train']:>7}  val {r['val']:>6}  "
        f"excluded {r['excluded']:>5}  {r['built'] or '-'}  {r['root']}"
        for r in rows
    )
    return Result(rows, text or "(no datasets)")


@command(
    "detect",
    Param(
        "weights", ("--weights",), required=True, type=PathType(dir_okay=False), help="YOLO weights (.pt)."
    ),
    Param("run", ("--run",), required=True, help="Detection run to write (continued when it exists)."),
    Param("where", ("--where",), help="Only images whose file matches this SQL condition on v_images."),
    Param("pool", ("--pool",), help="Only images of this pool."),
    Param(
        "batch",
        ("--batch",),
        type=IntRange(min=1),
        default=16,
        show_default=True,
        help="Images per model call.",
    ),
    Param("conf", ("--conf",), type=Float(), default=0.25, show_default=True, help="Confidence threshold."),
    Param("iou", ("--iou",), type=Float(), default=0.7, show_default=True, help="NMS IoU threshold."),
    Param(
        "imgsz",
        ("--imgsz",),
        type=IntRange(min=32),
        default=640,
        show_default=True,
        help="Inference image size.",
    ),
    Param(
        "max_det",
        ("--max-det",),
        type=IntRange(min=1),
        default=300,
        show_default=True,
        help="Boxes per image at most.",
    ),
    Param("device", ("--device",), help="Device: cpu, 0 … (default: ultralytics' choice)."),
    Param(
        "threads",
        ("--threads",),
        type=IntRange(min=1),
        help="CPU threads of the model (default: ultralytics' 1).",
    ),
    Param(
        "class_map",
        ("--class-map",),
        type=Choice(("name", "index")),
        default="name",
        show_default=True,
        help="Map the model's classes to the class map by name or keep their indices.",
    ),
    Param(
        "limit", ("--limit",), type=IntRange(min=1), help="Stop after this many images (the rest stay to do)."
    ),
    Param("replace", ("--replace",), is_flag=True, help="Start the run again from nothing."),
    Param(
        "retry_errors",
        ("--retry-errors",),
        is_flag=True,
        help="Try again the images the run could not read before.",
    ),
    _quiet(),
    json_param(),
)
def detect_cmd(
    ctx: CommandContext,
    weights: str,
    run: str,
    where: str | None,
    pool: str | None,
    batch: int,
    conf: float,
    iou: float,
    imgsz: int,
    max_det: int,
    device: str | None,
    threads: int | None,
    class_map: str,
    limit: int | None,
    replace: bool,
    retry_errors: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Run YOLO weights over the pool (or a selection) and store every detection.

    Streams in batches and commits as it goes: after a kill or Ctrl+C the same command
    continues with the images not yet done, without duplicating any. Unreadable images
    are recorded (v_detect_errors) and skipped.

    \b
    Examples:
      tuiops detect --weights training/v1/weights/best.pt --run v1-pool
      tuiops detect --weights best.pt --run v1-dan --where "booru = 'danbooru'" --batch 32 --conf 0.1
    """
    from tuiops.ops.detect import detect

    ws = ctx.workspace
    with ctx.progress("detect", quiet=quiet) as on_progress:
        res = detect(
            ws,
            weights,
            run,
            where=where,
            pool=pool,
            batch=batch,
            conf=conf,
            iou=iou,
            imgsz=imgsz,
            max_det=max_det,
            device=device,
            threads=threads,
            class_map=class_map,
            limit=limit,
            replace=replace,
            retry_errors=retry_errors,
            progress=on_progress,
        )
    d = res.to_dict()
    text = (
        f"run {d['run']}: {d['processed']} images, {d['detections']} detections, {d['errors']} unreadable "
        f"({d['already_done']} of {d['selected']} were done before)\n"
        f"  {d['images_per_s']} images/s, {100 * d['outside_model_share']:.1f}% of the time outside the model"
    )
    for ex in d["error_examples"][:5]:
        text += f"\n  unreadable: {ex['path']}: {ex['error']}"
    return Result(d, text)
