"""Writing a mix's output folder (images, labels of each format, manifest) and checking one."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tuiops.fsutil import (
    display_path,
    sha256_file,
)
from tuiops.ops.base import Reporter
from tuiops.ops.projects.mixmodel import MANIFEST, MIX_KIND, SPLITS, ProjectBuild

if TYPE_CHECKING:
    import polars as pl


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
