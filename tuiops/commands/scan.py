"""`tuiops scan` (index an image folder as a pool) and `tuiops pools` (list them)."""

from __future__ import annotations

from typing import Any

from tuiops.commands import CommandContext, IntRange, Param, PathType, Result, command, json_param
from tuiops.commands.cluster import cluster_params


@command(
    "scan",
    Param("directory", type=PathType(file_okay=False)),
    Param(
        "name", ("--name",), help="Pool name (default: the folder's name). Alone, re-scans that known pool."
    ),
    Param(
        "do_hash",
        ("--hash",),
        secondary=("--no-hash",),
        is_flag=True,
        help=(
            "Also compute a 64-bit perceptual hash (phash; a JPEG is decoded in grey at the smallest "
            "scale the hash needs); hashes an older tuiops made are made again. "
            "Default: as the pool was last scanned."
        ),
    ),
    Param(
        "do_exif",
        ("--exif",),
        secondary=("--no-exif",),
        is_flag=True,
        help="Also read EXIF (make, model, dates, orientation, …). Default: as the pool was last scanned.",
    ),
    Param(
        "verify",
        ("--verify",),
        secondary=("--no-verify",),
        is_flag=True,
        help="Also decode every image in full, to find truncation and corruption exactly. "
        "Default: as the pool was last scanned.",
    ),
    Param(
        "workers",
        ("--workers",),
        type=IntRange(min=1),
        help="Processes that probe files (default: every core; small scans run in-process).",
    ),
    Param(
        "follow_symlinks",
        ("--follow-symlinks",),
        is_flag=True,
        help="Follow symbolic links, also to files and folders outside the pool.",
    ),
    *cluster_params(ship=False),
    Param("quiet", ("-q", "--quiet"), is_flag=True, help="No progress output on stderr."),
    json_param(),
)
def scan_cmd(
    ctx: CommandContext,
    directory: str | None,
    name: str | None,
    do_hash: bool | None,
    do_exif: bool | None,
    verify: bool | None,
    workers: int | None,
    follow_symlinks: bool,
    cluster: str | None,
    path_map: tuple[str, ...],
    scheduler_host: str | None,
    task_images: int | None,
    quiet: bool,
    as_json: bool,
) -> Result:
    """Index an image folder as a pool: size, mtime, width, height, format, mode and status.

    Incremental: a re-scan opens only new and changed files and marks vanished ones as
    missing. Corrupt, truncated, empty, wrong-extension and non-image files are recorded
    with the reason; files whose name holds no image key are indexed and counted as
    unkeyed. A pool remembers --hash, --exif and --verify: a plain re-scan gives new
    files what the pool's other files have (--no-hash and the like stop it).

    With --cluster the files are probed and hashed by the workers of a Dask cluster
    (they open them where --path-map says); this process walks the folder and writes.

    \b
    Examples:
      tuiops scan /data/pool
      tuiops scan /data/pool --name danbooru --hash --exif
      tuiops scan --name danbooru --verify
      tuiops scan /data/pool --hash --cluster ssh:aug1,train1 --path-map /data/pool=/mnt/pool
    """
    import os

    from tuiops.commands.cluster import options_from
    from tuiops.ops.scan import scan

    cluster_opts = options_from(
        {
            "cluster": cluster,
            "path_map": path_map,
            "scheduler_host": scheduler_host,
            "task_images": task_images,
        }
    )

    ws = ctx.workspace
    with ctx.progress("scan", quiet=quiet) as on_progress:
        summary = scan(
            ws,
            os.path.abspath(directory) if directory else None,
            name=name,
            hash=do_hash,
            exif=do_exif,
            verify=verify,
            workers=workers,
            follow_symlinks=follow_symlinks,
            cluster=cluster_opts,
            progress=on_progress,
        )
    result = summary.to_dict()
    return Result(result, lambda: render_summary(result))


def render_summary(s: dict[str, Any]) -> str:
    """The readable form of a scan summary (``ScanSummary.to_dict()``)."""
    lines = [f"pool {s['pool']}  {s['root']}"]
    if s.get("remembered"):
        flags = " ".join(f"--{k}" for k in s["remembered"])
        undo = " ".join(f"--no-{k}" for k in s["remembered"])
        lines.append(f"  options    {flags} (as the pool was scanned before; {undo} to stop)")
    lines.append(
        f"  files      {s['total']:>8}  (new {s['new']}, changed {s['changed']}, "
        f"unchanged {s['unchanged']}, deleted {s['deleted']}; probed {s['probed']})"
    )
    for status, count in s["status"].items():
        lines.append(f"  {status:<10} {count:>8}")
        for example in s.get("bad_examples", {}).get(status, [])[:3]:
            lines.append(f"               {example}")
    if s["unkeyed"]:
        shown = ", ".join(s["unkeyed_examples"][:3])
        more = ", …" if s["unkeyed"] > 3 else ""
        lines.append(f"  unkeyed    {s['unkeyed']:>8}  e.g. {shown}{more}")
    if s["notes"]:
        lines.append(f"  with notes {s['notes']:>8}  (ok files with a remark in files.error)")
    if s.get("label_files"):
        lines.append(
            f"  label files {s['label_files']:>7}  (.txt, .xml, .json beside the images; not indexed)"
        )
    if s.get("label_records_dropped"):
        lines.append(
            f"  dropped    {s['label_records_dropped']:>8}  (records of label files an older scan had as not_image)"
        )
    if s.get("sizes_filled"):
        lines.append(
            f"  sized      {s['sizes_filled']:>8}  (items that lacked a width and height, from their image)"
        )
    if s["skipped"]:
        parts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s["skipped"].items())
        lines.append(f"  skipped    {sum(s['skipped'].values()):>8}  ({parts})")
        for example in s["skipped_examples"][:3]:
            lines.append(f"               {example}")
    for d in s["unreadable_dirs"]:
        lines.append(f"  unreadable folder: {d}")
    lines.append(f"  {s['total']} files in {s['elapsed']:.2f} s ({s['files_per_s']:.0f} files/s)")
    return "\n".join(lines)


@command("pools", json_param())
def pools_cmd(ctx: CommandContext, as_json: bool) -> Result:
    """List the pools with their file counts (present, ok, bad, missing, unkeyed, hashed) and
    the scan options each remembers (--hash, --exif, --verify)."""
    from tuiops.ops.scan import list_pools

    rows = list_pools(ctx.workspace)

    def text() -> str:
        if not rows:
            return "(no pools; index one with `tuiops scan DIR`)"
        width = max(4, *(len(r["name"]) for r in rows))
        lines = [
            f"{'pool':<{width}}  {'files':>8} {'ok':>8} {'bad':>6} {'missing':>7} {'unkeyed':>7} {'hashed':>8}  {'options':<17}  scanned               root"
        ]
        for r in rows:
            lines.append(
                f"{r['name']:<{width}}  {r['files']:>8} {r['ok']:>8} {r['bad']:>6} {r['missing']:>7} "
                f"{r['unkeyed']:>7} {r['hashed']:>8}  {','.join(r['options']) or '-':<17}  "
                f"{r['scanned'] or 'never':<20}  {r['root']}"
            )
        return "\n".join(lines)

    return Result(rows, text)
