"""Writing a mix's output folder (images, labels of each format, manifest) and checking one."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, UsageError
from tuiops.fsutil import (
    create_temp_dir,
    disk_error,
    display_path,
    replace_folder,
    sha256_file,
)
from tuiops.ops.base import Reporter
from tuiops.ops.projects.classmap import ClassMap
from tuiops.ops.projects.mixmodel import MANIFEST, MIX_KIND, SPLITS, ProjectBuild

if TYPE_CHECKING:
    import polars as pl

    from tuiops.workspace import Workspace


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an output folder that is a file, or holds something else than a mix (unless ``overwrite``)."""
    if out.is_file() or (out.is_symlink() and not out.is_dir()):
        raise UsageError(f"{display_path(out)} is a file; give a folder for the mixed dataset")
    if not out.exists():
        return
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            kind = json.loads(manifest.read_text(encoding="utf-8")).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind == MIX_KIND:
            return
    if overwrite or not any(out.iterdir()):
        return
    raise ConflictError(
        f"{display_path(out)} exists and is not a mixed dataset (no {MANIFEST} of a mix)",
        hint="choose a new or empty folder, or pass --overwrite to replace its content",
    )


def _place_image(src: Path, dst: Path, reencode: bool) -> str | None:
    """Link (or copy) ``src`` to ``dst``; re-encode as JPEG when asked. Returns the new SHA-256 if re-encoded."""
    if reencode:
        from PIL import Image

        with Image.open(src) as im:
            buf = io.BytesIO()
            im.convert("RGB").save(buf, format="JPEG", quality=95)
        data = buf.getvalue()
        dst.write_bytes(data)
        return hashlib.sha256(data).hexdigest()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
    return None


def write_output(
    staging: Path,
    fmt: str,
    kept: pl.DataFrame,
    boxes: pl.DataFrame,
    builds: dict[str, ProjectBuild],
    names: Sequence[str],
    voc_year: str | None,
    yaml_path: str | None,
    rep: Reporter,
) -> tuple[pl.DataFrame, dict[str, str], str]:
    """Write every file of the dataset below ``staging``; returns the kept images with
    ``file_rel``/``out_sha256``/``label_rel``/``label_sha256``, the other files' SHA-256 and the layout root."""
    import polars as pl

    from tuiops.formats.voc import labelmap_text
    from tuiops.ops.projects import mixfiles as mf

    root_rel = f"VOCdevkit/VOC{voc_year}" if (fmt == "voc" and voc_year) else ""
    root = staging / root_rel if root_rel else staging
    root.mkdir(parents=True, exist_ok=True)
    others: dict[str, str] = {}

    def rel(p: Path) -> str:
        return p.relative_to(staging).as_posix()

    def put_text(p: Path, data: bytes) -> str:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    if fmt == "voc":
        img_dir = {s: root / "JPEGImages" for s in SPLITS}
        texts = mf.voc_docs(kept, boxes, f"VOC{voc_year}" if voc_year else "JPEGImages")
        lab_dir = {s: root / "Annotations" for s in SPLITS}
        lab_ext = ".xml"
    elif fmt == "yolo":
        img_dir = {s: root / "images" / s for s in SPLITS}
        texts = mf.yolo_texts(kept, boxes)
        lab_dir = {s: root / "labels" / s for s in SPLITS}
        lab_ext = ".txt"
    else:
        img_dir = {s: root / "images" / s for s in SPLITS}
        texts = kept.select("idx", pl.lit(None, pl.String).alias("text"))
        lab_dir = {}
        lab_ext = ""
    for d in [*img_dir.values(), *lab_dir.values()]:
        d.mkdir(parents=True, exist_ok=True)
    rows = kept.join(texts, on="idx", how="left").sort("idx")
    file_rel: list[str] = []
    out_sha: list[str] = []
    label_rel: list[str | None] = []
    label_sha: list[str | None] = []
    for r in rows.iter_rows(named=True):
        b = builds[r["project"]]
        src = b.build_dir / r["image"]
        dst = img_dir[r["split"]] / r["file"]
        new_sha = _place_image(src, dst, r["file"] != r["stem"] + r["ext"])
        file_rel.append(rel(dst))
        out_sha.append(new_sha or r["sha256"])
        if lab_dir:
            lp = lab_dir[r["split"]] / (r["stem"] + lab_ext)
            label_sha.append(put_text(lp, (r["text"] or "").encode("utf-8")))
            label_rel.append(rel(lp))
        else:
            label_rel.append(None)
            label_sha.append(None)
        rep.advance(1, f"writing {r['file']}")
    kept = rows.drop("text").with_columns(
        pl.Series("file_rel", file_rel, pl.String),
        pl.Series("out_sha256", out_sha, pl.String),
        pl.Series("label_rel", label_rel, pl.String),
        pl.Series("label_sha256", label_sha, pl.String),
    )
    if fmt == "voc":
        sets = root / "ImageSets" / "Main"
        for s in (*SPLITS, "trainval"):
            stems = kept.filter(pl.col("split") == s) if s != "trainval" else kept
            text = "".join(f"{x}\n" for x in sorted(stems["stem"].to_list()))
            p = sets / f"{s}.txt"
            others[rel(p)] = put_text(p, text.encode("utf-8"))
        p = root / "classes.txt"
        others[rel(p)] = put_text(p, "".join(f"{n}\n" for n in names).encode("utf-8"))
        p = root / "labelmap.txt"
        others[rel(p)] = put_text(p, labelmap_text(names).encode("utf-8"))
    elif fmt == "yolo":
        has_val = kept.filter(pl.col("split") == "val").height > 0
        p = root / "data.yaml"
        others[rel(p)] = put_text(p, mf.data_yaml(names, has_val, yaml_path))
    else:
        coco = kept.with_columns(pl.int_range(1, pl.len() + 1).alias("image_id"))
        for s in SPLITS:
            part = coco.filter(pl.col("split") == s)
            sb = boxes.join(part.select("idx"), on="idx", how="semi")
            p = root / "annotations" / f"instances_{s}.json"
            others[rel(p)] = put_text(p, mf.coco_doc(part, sb, names))
    return kept, others, root_rel or "."


def verify_output(out: str | os.PathLike[str]) -> list[str]:
    """Check a mixed dataset against its manifest; returns the problems (empty when it is intact)."""
    root = Path(out)
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{display_path(root / MANIFEST)}: cannot read it: {exc}"]
    if manifest.get("kind") != MIX_KIND:
        return [f"{display_path(root / MANIFEST)} is not the manifest of a mix"]
    expected: dict[str, str] = dict(manifest.get("files", {}))
    for im in manifest.get("images", []):
        expected[im["file"]] = im["sha256"]
        if im.get("label"):
            expected[im["label"]] = im["label_sha256"]
    problems = []
    for rel, sha in sorted(expected.items()):
        p = root / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif sha256_file(p) != sha:
            problems.append(f"{rel}: SHA-256 differs from the manifest")
    listed = set(expected) | {MANIFEST}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.relative_to(root).as_posix() not in listed:
            problems.append(f"{p.relative_to(root).as_posix()}: not in the manifest")
    return problems


def class_counts(
    kept: pl.DataFrame, kept_boxes: pl.DataFrame, names: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Boxes per class and split."""
    import polars as pl

    per_class = (
        kept_boxes.join(kept.select("idx", "split"), on="idx")
        .group_by("class", "split")
        .agg(pl.len().alias("n"))
        .sort("class", "split")
    )
    class_counts = {n: {s: 0 for s in SPLITS} for n in names}
    for c, s, n in per_class.iter_rows():
        class_counts[c][s] = n
    return class_counts


def mix_manifest(
    fmt: str,
    root_rel: str,
    cmap: ClassMap,
    params: dict[str, Any],
    builds: Sequence[ProjectBuild],
    imgs: pl.DataFrame,
    kept: pl.DataFrame,
    kept_boxes: pl.DataFrame,
    others: dict[str, Any],
    counts: dict[str, Any],
    lost: list[dict[str, Any]],
) -> dict[str, Any]:
    """The mix's ``manifest.json``: classes, parameters, the builds read, counts, every image and file."""
    import polars as pl

    return {
        "kind": MIX_KIND,
        "version": 1,
        "format": fmt,
        "root": root_rel,
        "classes": cmap.names,
        "class_map": cmap.sources,
        "params": {k: v for k, v in params.items() if k not in ("out", "projects")},
        "projects": [
            {
                "name": b.name,
                "build_json_sha256": b.build_sha256,
                "script_sha256": b.info.get("script_sha256"),
                "inputs_sha256": b.info.get("inputs_sha256"),
                "created": b.info.get("created"),
                "host": b.info.get("host"),
                "seed": b.info.get("seed"),
                "count": b.info.get("count"),
                "images": len(b.files),
            }
            for b in builds
        ],
        "counts": counts,
        "not_carried": lost,
        "images": kept.sort("idx")
        .select(
            pl.col("file_rel").alias("file"),
            "split",
            "project",
            "stem",
            pl.col("image").alias("source"),
            pl.col("out_sha256").alias("sha256"),
            "objects",
            pl.col("label_rel").alias("label"),
            pl.col("label_sha256"),
            pl.col("reason"),
        )
        .to_dicts(),
        "dropped": imgs.filter(pl.col("split") == "dropped")
        .select("project", "stem", "dup_of", "distance")
        .to_dicts(),
        "files": dict(sorted(others.items())),
    }


def stage_output(
    target: Path,
    overwrite: bool,
    fmt: str,
    imgs: pl.DataFrame,
    kept: pl.DataFrame,
    kept_boxes: pl.DataFrame,
    builds: Sequence[ProjectBuild],
    cmap: ClassMap,
    params: dict[str, Any],
    voc_year: str | None,
    yaml_path: str | None,
    found: dict[str, Any],
    lost: list[dict[str, Any]],
    rep: Reporter,
) -> tuple[pl.DataFrame, str, dict[str, Any], str]:
    """Write the dataset and its manifest in a temporary folder beside ``target``, then put it in place.

    ``found``: the ``leaks``, ``moved``, ``clipped`` and ``not_carried`` counts. Returns the
    kept images with their output files, the dataset's root, the manifest's counts and its SHA-256.
    """
    import polars as pl

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging = Path(create_temp_dir(target.parent, f".{target.name}.tmp-"))
    except OSError as exc:
        raise disk_error(target.parent, exc, "create a folder in") from exc
    staged_in_place = False
    try:
        try:
            kept, others, root_rel = write_output(
                staging,
                fmt,
                kept,
                kept_boxes,
                {b.name: b for b in builds},
                cmap.names,
                voc_year,
                yaml_path,
                rep,
            )
        except OSError as exc:
            raise disk_error(staging, exc) from exc
        by_split = {s: kept.filter(pl.col("split") == s).height for s in SPLITS}
        counts = {
            "images": kept.height,
            **by_split,
            "dropped": imgs.height - kept.height,
            "boxes": kept_boxes.height,
            "leaks": found["leaks"],
            "moved": found["moved"],
            "clipped": found["clipped"],
            "per_class": class_counts(kept, kept_boxes, cmap.names),
            "split": found["split"],
            "not_carried": found["not_carried"],
        }
        manifest = mix_manifest(
            fmt, root_rel, cmap, params, builds, imgs, kept, kept_boxes, others, counts, lost
        )
        mbytes = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            (staging / MANIFEST).write_bytes(mbytes)
        except OSError as exc:
            raise disk_error(staging / MANIFEST, exc) from exc
        manifest_sha = hashlib.sha256(mbytes).hexdigest()
        rep.check()
        check_out(target, overwrite)
        replace_folder(staging, target)
        staged_in_place = True
    finally:
        if not staged_in_place:
            shutil.rmtree(staging, ignore_errors=True)
    return kept, root_rel, counts, manifest_sha


def record_mix(
    ws: Workspace,
    target: Path,
    params: dict[str, Any],
    names: Sequence[str],
    imgs: pl.DataFrame,
    kept: pl.DataFrame,
    counts: dict[str, Any],
    manifest_sha: str,
    tarball: tuple[Path | None, str | None, int | None],
) -> int:
    """The mix's row in ``project_mixes`` and one row per image (kept or dropped) in ``project_mix_images``.

    ``tarball``: the tarball's path, SHA-256 and size (``None`` each without one).
    """
    tar_path, tar_sha, tar_size = tarball
    import polars as pl

    from tuiops.store.db import utcnow

    images_rows = imgs.select(
        "project",
        "stem",
        "split",
        "draw",
        "mgroup",
        "phash",
        "sha256",
        "objects",
        "reason",
        "dup_of",
        "distance",
    ).join(
        kept.select("project", "stem", pl.col("file_rel").alias("file")),
        on=["project", "stem"],
        how="left",
    )
    with ws.store.bulk() as tx:
        mix_id = tx.one(
            "INSERT INTO project_mixes(name, out, format, projects, classes, params, images, train, val, "
            "dropped, leaks, boxes, manifest_sha256, tar_path, tar_sha256, tar_size, created, split_table) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                target.name,
                str(target),
                params["format"],
                json.dumps(list(params["projects"])),
                json.dumps(list(names), ensure_ascii=False),
                json.dumps(params, ensure_ascii=False),
                kept.height,
                counts["train"],
                counts["val"],
                counts["dropped"],
                counts["leaks"],
                counts["boxes"],
                manifest_sha,
                str(tar_path) if tar_path else None,
                tar_sha,
                tar_size,
                utcnow(),
                json.dumps(counts.get("split", []), ensure_ascii=False),
            ),
        )
        tx.ingest("project_mix_images", images_rows.with_columns(pl.lit(mix_id, pl.Int64).alias("mix_id")))
    return int(mix_id)
