"""`tuiops dataset build|list`, `tuiops train start|resume` and `tuiops detect`."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from tuiops.commands import (
    BadValue,
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
from tuiops.commands.cluster import cluster_params


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
    Param(
        "tags",
        ("--tags",),
        help='Only images whose post a booru tag search finds, e.g. "1girl -monochrome" '
        '(kept for rebuilds; "" drops it).',
    ),
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
    tags: str | None,
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
            tags=tags,
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


def floats(text: str | None) -> list[float]:
    if not text:
        return []
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise BadValue(f"{text!r}: give comma-separated numbers, e.g. 0.4,0.7") from exc


@contextlib.contextmanager
def sigint_cancels() -> Iterator[Any]:
    """A cancel token that Ctrl+C (SIGINT, as `jobs cancel` and the jobs pane send) sets.

    Training then stops within the current epoch and keeps the last finished epoch's
    checkpoint; a second Ctrl+C interrupts at once.
    """
    import signal
    import threading

    from tuiops.ops.base import CancelToken

    token = CancelToken()
    if threading.current_thread() is not threading.main_thread():
        yield token
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        print(
            "tuiops: stopping within the current epoch (Ctrl+C again stops at once)",
            file=sys.stderr,
            flush=True,
        )

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)


def render_train(d: dict[str, Any]) -> str:
    lines = [
        f"training {d['name']}: {d['status']} at epoch {d['epoch']}/{d['epochs']} "
        f"({d['seconds']:.0f}s, from epoch {d['started_epoch'] + 1})",
        f"  folder      {d['save_dir']}",
    ]
    if d.get("checkpoint"):
        lines.append(f"  checkpoint  {d['checkpoint']}")
    if d.get("best_weights"):
        lines.append(f"  best        {d['best_weights']}")
    if d.get("dataset"):
        ds = d["dataset"]
        lines.append(
            f"  dataset     rebuilt: {ds['images']} images (train {ds['train']}, val {ds['val']}, "
            f"excluded {ds['excluded']}), {ds['boxes']} boxes"
        )
    if d.get("caches_removed"):
        lines.append(f"  caches      {len(d['caches_removed'])} label cache(s) deleted")
    p = d.get("pitstop")
    if p:
        lines.append(
            f"  pitstop {p['idx']}   epoch {p['epoch']}, best epoch {p['best_epoch']}, run {p['run']}"
        )
        for w in p.get("warnings") or []:
            lines.append(f"    WARNING: {w}")
        for split, t in (p.get("totals") or {}).items():
            if t:
                lines.append(
                    f"    {split:<5} {t['images']} images: tp {t['tp']}, fp {t['fp']}, fn {t['fn']}, "
                    f"wrong class {t['wrong_class']}, precision {t['precision']}, recall {t['recall']}"
                )
        lines.append(f"    report  {p['report']}")
        for split, path in (p.get("worst_lists") or {}).items():
            lines.append(f"    worst {split}: {path}")
        for n in p.get("notes") or []:
            lines.append(f"    note: {n}")
    if d.get("next_pitstop"):
        lines.append(f"  next pitstop at epoch {d['next_pitstop']}")
    if d.get("message"):
        lines.append(d["message"])
    return "\n".join(lines)


@command(
    "train start",
    Param("data", required=True),
    Param("overrides", nargs=-1),
    Param(
        "model",
        ("--model",),
        default="yolov8n.yaml",
        show_default=True,
        help="Model yaml (from scratch) or .pt weights.",
    ),
    Param(
        "epochs", ("--epochs",), type=IntRange(min=1), default=100, show_default=True, help="Epochs to train."
    ),
    Param(
        "pitstops",
        ("--pitstops",),
        help="Where to stop and report: fractions (0.4,0.7) or epoch numbers (40,70).",
    ),
    Param("name", ("--name",), help="Training run name (default: the dataset's name)."),
    Param("imgsz", ("--imgsz",), type=IntRange(min=32), help="Training image size (ultralytics imgsz)."),
    Param("batch", ("--batch",), type=Int(), help="Batch size (ultralytics batch)."),
    Param("device", ("--device",), help="Device: cpu, 0, 0,1 … (default: ultralytics' choice)."),
    Param(
        "pitstop_conf",
        ("--pitstop-conf",),
        type=Float(),
        default=0.25,
        show_default=True,
        help="Confidence at which a pitstop compares its detections with the labels (its detection run is "
        "stored from conf 0.001, so it is never empty because of this threshold; a split with no detection "
        "at it is reported as a warning and gets no worst list).",
    ),
    Param(
        "match_iou",
        ("--match-iou",),
        type=Float(),
        default=0.5,
        show_default=True,
        help="IoU at which a detection matches.",
    ),
    Param(
        "worst_by",
        ("--worst-by",),
        help="Each pitstop's worst lists hold the images that meet this SQL condition, most errors "
        'first, e.g. "f1 < 0.5" (columns: tp, fp, fn, wrong_class, labels, detections, errors, '
        "missed_area, precision, recall, f1, key).",
    ),
    Param(
        "worst_top",
        ("--worst-top",),
        type=IntRange(min=1),
        help="Each pitstop's worst lists hold at most this many images (default: 20; with --worst-by: "
        "all that meet it).",
    ),
    Param(
        "replace",
        ("--replace",),
        is_flag=True,
        help="Replace a run of the same name (its folder is deleted).",
    ),
    Param(
        "on",
        ("--on",),
        metavar="HOST",
        help="Train on this [hosts.NAME] machine over SSH (it needs python with tuiops and ultralytics).",
    ),
    Param(
        "verbose",
        ("-v", "--verbose"),
        is_flag=True,
        help="Show ultralytics' output on stderr (default: the run's log).",
    ),
    _quiet(),
    json_param(),
)
def train_start_cmd(
    ctx: CommandContext,
    data: str,
    overrides: tuple[str, ...],
    model: str,
    epochs: int,
    pitstops: str | None,
    name: str | None,
    imgsz: int | None,
    batch: int | None,
    device: str | None,
    pitstop_conf: float,
    match_iou: float,
    worst_by: str | None,
    worst_top: int | None,
    replace: bool,
    on: str | None,
    verbose: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Train on DATA (dataset folder, data.yaml or dataset name), stopping at each pitstop.

    Further ultralytics train arguments go after DATA as key=value (lr0=0.005 mosaic=0).
    At a pitstop the run stops cleanly with a resumable checkpoint, runs its best
    weights over train and val into the detection run NAME.pitstopN, compares them with
    the labels and writes a report. Continue with `tuiops train resume NAME`.
    With --on HOST the dataset is uploaded and the run trains there; its weights come
    back at each pitstop and at the end, and the pitstop's report is made here.
    Ctrl+C stops within the current epoch, keeping a resumable checkpoint.

    \b
    Examples:
      tuiops train datasets/gt --model yolov8n.yaml --epochs 100 --pitstops 0.4,0.7
      tuiops train gt --model runs/v0/best.pt --epochs 30 --imgsz 640 lr0=0.002
      tuiops train gt --epochs 100 --pitstops 0.4,0.7 --on gpu1 --name v2
    """
    from tuiops.ops.train import parse_overrides, train

    ws = ctx.workspace
    extra = parse_overrides(overrides)
    with sigint_cancels() as token, ctx.progress("train", quiet=quiet) as on_progress:
        res = train(
            ws,
            data,
            model=model,
            epochs=epochs,
            name=name,
            pitstops=floats(pitstops),
            imgsz=imgsz,
            batch=batch,
            device=device,
            overrides=extra,
            pitstop_conf=pitstop_conf,
            match_iou=match_iou,
            worst_by=worst_by,
            worst_top=worst_top,
            replace=replace,
            verbose=verbose,
            on=on,
            progress=on_progress,
            cancel=token,
        )
    d = res.to_dict()
    return Result(d, lambda: render_train(d))


@command(
    "train resume",
    Param("run", required=True),
    Param(
        "exclude",
        ("--exclude",),
        multiple=True,
        help="Leave an image key, or @FILE of keys, out of the dataset.",
    ),
    Param(
        "include", ("--include",), multiple=True, help="Take back an excluded image key, or @FILE of keys."
    ),
    Param(
        "no_rebuild",
        ("--no-rebuild",),
        is_flag=True,
        help="Keep the dataset's files as they are (labels edited in place) instead of rebuilding from the store.",
    ),
    Param(
        "verbose",
        ("-v", "--verbose"),
        is_flag=True,
        help="Show ultralytics' output on stderr (default: the run's log).",
    ),
    _quiet(),
    json_param(),
)
def train_resume_cmd(
    ctx: CommandContext,
    run: str,
    exclude: tuple[str, ...],
    include: tuple[str, ...],
    no_rebuild: bool,
    verbose: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Continue RUN from its checkpoint, with the labels as they are now.

    The dataset is rebuilt from the store (fixed labels, excluded images; every other
    image keeps its split), ultralytics' label caches are deleted, and training goes on
    to the next pitstop or the end. A dataset with another class count is refused.
    A run started with --on HOST resumes on that host (the dataset is sent again).
    Ctrl+C stops within the current epoch, keeping a resumable checkpoint.

    \b
    Examples:
      tuiops train resume v1
      tuiops train resume v1 --exclude @training/v1/tuiops/pitstop-1-worst-train.txt
    """
    from tuiops.ops.train import resume

    ws = ctx.workspace
    with sigint_cancels() as token, ctx.progress("train", quiet=quiet) as on_progress:
        res = resume(
            ws,
            run,
            rebuild=not no_rebuild,
            exclude=exclude,
            include=include,
            verbose=verbose,
            progress=on_progress,
            cancel=token,
        )
    d = res.to_dict()
    return Result(d, lambda: render_train(d))


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
        help="Images per model call (default: 4 per torch thread, 8 to 32, on the CPU; 32 on a GPU).",
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
        help="torch's CPU threads, at most the cores this process may use (default: the cores, less one "
        "decoding thread in four from 8 cores up, at most 4 with a GPU; on a cluster worker at most its "
        "OMP_NUM_THREADS).",
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
    *cluster_params(ship=True),
    _quiet(),
    json_param(),
)
def detect_cmd(
    ctx: CommandContext,
    weights: str,
    run: str,
    where: str | None,
    pool: str | None,
    batch: int | None,
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
    cluster: str | None,
    path_map: tuple[str, ...],
    scheduler_host: str | None,
    task_images: int | None,
    ship: bool,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Run YOLO weights over the pool (or a selection) and store every detection.

    Streams in batches and commits as it goes: after a kill or Ctrl+C the same command
    continues with the images not yet done, without duplicating any. Unreadable images
    are recorded (v_detect_errors) and skipped.

    With --cluster the images go to the workers of a Dask cluster in tasks of
    --task-images images; this process alone writes their detections, the same rows a
    run here gives. A host's device, batch and threads come from its [hosts.NAME] table.

    \b
    Examples:
      tuiops detect --weights training/v1/weights/best.pt --run v1-pool
      tuiops detect --weights best.pt --run v1-dan --where "booru = 'danbooru'" --batch 32 --conf 0.1
      tuiops detect --weights best.pt --run v2-pool --cluster ssh:gpu1,gpu2 --path-map /data=/mnt/data
    """
    from tuiops.commands.cluster import options_from
    from tuiops.ops.detect import detect

    cluster_opts = options_from(
        {
            "cluster": cluster,
            "path_map": path_map,
            "scheduler_host": scheduler_host,
            "task_images": task_images,
            "ship": ship,
        }
    )

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
            cluster=cluster_opts,
            progress=on_progress,
        )
    d = res.to_dict()
    text = (
        f"run {d['run']}: {d['processed']} images, {d['detections']} detections, {d['errors']} unreadable "
        f"({d['already_done']} of {d['selected']} were done before)\n"
        f"  {d['images_per_s']} images/s, {100 * d['outside_model_share']:.1f}% of the time outside the model"
    )
    if d.get("threads"):
        t = d["threads"]
        text += (
            f"; {t['torch']} torch threads, {t['decode']} decoding, batch {t['batch']} ({t['cores']} cores)"
        )
    if d.get("cluster"):
        c = d["cluster"]
        text += (
            f"\n  cluster {c['spec']}: {c['workers']} workers, {c['tasks']} tasks, "
            f"{100 * c['overhead_share']:.1f}% of worker time outside tasks "
            f"({c['overhead_per_task_ms']} ms per task)"
        )
        for name, w in c["per_worker"].items():
            text += f"\n    {name}: {w['images']} images in {w['tasks']} tasks, {w['images_per_s']} images/s"
    for ex in d["error_examples"][:5]:
        text += f"\n  unreadable: {ex['path']}: {ex['error']}"
    return Result(d, text)
