"""One image: its boxes, its metadata and its preview with the boxes drawn."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import NotFoundError
from tuiops.ops.browse.spec import Context, table_exists
from tuiops.store.db import id_range
from tuiops.store.frames import BOX

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store


def image_boxes(store: Store, item_id: int) -> pl.DataFrame:
    """Every box of one image: source (set or run name), kind (label/det), class, score, x1…y2."""
    import polars as pl

    rows: list[tuple[Any, ...]] = []
    classes = store.class_names()
    for sid, name in store.execute("SELECT id, name FROM label_sets ORDER BY name").fetchall():
        lo, hi = id_range(sid, item_id)
        for cid, x1, y1, x2, y2 in store.execute(
            "SELECT class_id, x1, y1, x2, y2 FROM labels WHERE id BETWEEN ? AND ? ORDER BY id", (lo, hi)
        ):
            rows.append(
                (
                    name,
                    "label",
                    cid,
                    classes[cid] if 0 <= cid < len(classes) else str(cid),
                    None,
                    x1,
                    y1,
                    x2,
                    y2,
                )
            )
    for rid, name in store.execute("SELECT id, name FROM runs ORDER BY name").fetchall():
        lo, hi = id_range(rid, item_id)
        for cid, x1, y1, x2, y2, score in store.execute(
            "SELECT class_id, x1, y1, x2, y2, score FROM detections WHERE id BETWEEN ? AND ? ORDER BY id",
            (lo, hi),
        ):
            rows.append(
                (
                    name,
                    "det",
                    cid,
                    classes[cid] if 0 <= cid < len(classes) else str(cid),
                    score,
                    x1,
                    y1,
                    x2,
                    y2,
                )
            )
    return pl.DataFrame(
        rows,
        schema={
            "source": pl.String,
            "kind": pl.String,
            "class_id": pl.Int64,
            "class": pl.String,
            "score": pl.Float64,
            **dict.fromkeys(BOX, pl.Float64),
        },
        orient="row",
    )


@dataclass
class ImageInfo:
    """What the quick view and the viewer show of one image."""

    key: str | None
    item_id: int | None
    file_id: int | None = None
    pool: str | None = None
    relpath: str | None = None
    path: Path | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    mode: str | None = None
    status: str | None = None
    error: str | None = None
    phash: str | None = None
    exif: dict[str, Any] = field(default_factory=dict)
    boxes: pl.DataFrame | None = None
    match: dict[str, Any] = field(default_factory=dict)
    overlap: dict[str, Any] = field(default_factory=dict)
    #: The image's imageboard post (``meta import``): booru, id, rating, score, and its tags
    #: by category (character, copyright, artist first, then general and meta).
    post: dict[str, Any] = field(default_factory=dict)

    def meta_lines(self) -> list[tuple[str, str]]:
        """(label, value) pairs for display, in a fixed order."""
        out: list[tuple[str, str]] = [("key", self.key or "—")]
        if self.pool is not None:
            out.append(("file", f"{self.pool}:/{self.relpath}"))
        if self.size is not None:
            out.append(("size", f"{human_size(self.size)} ({self.size:,} B)"))
        if self.width and self.height:
            out.append(("dims", f"{self.width}×{self.height}"))
        if self.format:
            out.append(("format", f"{self.format} {self.mode or ''}".strip()))
        if self.status and self.status != "ok":
            out.append(("status", f"{self.status}{': ' + self.error if self.error else ''}"))
        if self.phash:
            out.append(("phash", self.phash))
        for k, v in list(self.exif.items())[:8]:
            out.append((f"exif {k}", str(v)[:40]))
        if self.boxes is not None:
            counts = self.boxes.group_by(["kind", "source"]).len().rows()
            for kind, src, n in sorted(counts, key=lambda r: (r[0] != "label", r[1])):
                out.append((f"{'labels' if kind == 'label' else 'dets'} {src}", str(n)))
        if self.post:
            p = self.post
            head = f"{p['booru']} #{p['fid']}"
            head += f" · rating {p['rating']}" if p.get("rating") else ""
            head += f" · score {p['score']}" if p.get("score") is not None else ""
            out.append(("post", head))
            for cat, tags in p["tags"].items():
                out.append((cat, " ".join(tags)))
        for k, v in self.overlap.items():
            out.append((k, str(v)))
        for k, v in self.match.items():
            out.append((f"match {k}", f"{v:.3f}" if isinstance(v, float) else str(v)))
        return out


#: The order tag categories are shown in (as Danbooru's post page does); others follow.
TAG_CATEGORY_ORDER = ("character", "copyright", "artist", "general", "meta")


def post_info(store: Store, item_id: int) -> dict[str, Any]:
    """The imageboard post of an image (empty when none was imported): booru, fid, rating,
    score and its tags grouped by category, in :data:`TAG_CATEGORY_ORDER`."""
    row = store.execute(
        "SELECT p.booru, p.fid, p.rating, p.score, p.tags FROM items i "
        "JOIN meta_posts p ON p.booru = i.booru AND p.fid = i.fid WHERE i.id = ?",
        (item_id,),
    ).fetchone()
    if row is None:
        return {}
    booru, fid, rating, score, tags = row
    names = tags.split()
    cats: dict[str, str] = {}
    for i in range(0, len(names), 500):
        chunk = names[i : i + 500]
        marks = ", ".join("?" for _ in chunk)
        cats.update(
            store.execute(f"SELECT name, category FROM meta_tags WHERE name IN ({marks})", chunk).fetchall()
        )
    grouped: dict[str, list[str]] = {}
    for t in names:
        grouped.setdefault(cats.get(t) or "tags", []).append(t)
    order = {c: n for n, c in enumerate(TAG_CATEGORY_ORDER)}
    by_cat = dict(sorted(grouped.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
    return {"booru": booru, "fid": fid, "rating": rating, "score": score, "tags": by_cat}


def human_size(n: int | float | None) -> str:
    """1536 → '1.5K' (binary units, FAR-style short form)."""
    if n is None:
        return ""
    n = float(n)
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{int(n)}" if unit == "" else f"{n:.1f}{unit}" if n < 100 else f"{n:.0f}{unit}"
        n /= 1024
    return f"{n:.0f}T"


def image_info(
    store: Store,
    *,
    file_id: int | None = None,
    item_id: int | None = None,
    key: str | None = None,
    ctx: Context | None = None,
) -> ImageInfo:
    """Metadata, boxes and match figures of one image (by file id, item id or key)."""
    row = None
    cols = (
        "f.id, p.name, f.relpath, p.root, f.size, f.width, f.height, f.format, f.mode, f.status, "
        "f.error, f.phash, f.exif, f.item_id, i.key"
    )
    base = (
        f"SELECT {cols} FROM files f JOIN pools p ON p.id = f.pool_id LEFT JOIN items i ON i.id = f.item_id"
    )
    if file_id is not None:
        row = store.execute(f"{base} WHERE f.id = ?", (file_id,)).fetchone()
    else:
        if item_id is None and key is not None:
            item_id = store.one("SELECT id FROM items WHERE key = ?", (key,))
            if item_id is None:
                raise NotFoundError(f"no image with key {key!r} in the store")
        if item_id is not None:
            row = store.execute(
                f"{base} WHERE f.item_id = ? ORDER BY (f.status = 'ok') DESC, f.id LIMIT 1", (item_id,)
            ).fetchone()
    if row is None:
        if item_id is None:
            raise NotFoundError("no such image in the store")
        irow = store.execute("SELECT key, width, height FROM items WHERE id = ?", (item_id,)).fetchone()
        if irow is None:
            raise NotFoundError(f"no image with item id {item_id} in the store")
        info = ImageInfo(irow[0], int(item_id), width=irow[1], height=irow[2])
    else:
        fid, pool, relpath, root, size, w, h, fmt, mode, status, error, phash, exif, iid, k = row
        exif_d: dict[str, Any] = {}
        if exif:
            with contextlib.suppress(ValueError, TypeError):
                loaded = json.loads(exif)
                if isinstance(loaded, dict):
                    exif_d = loaded
        info = ImageInfo(
            k,
            iid,
            fid,
            pool,
            relpath,
            Path(root) / relpath,
            size,
            w,
            h,
            fmt,
            mode,
            status,
            error,
            f"{phash & 0xFFFF_FFFF_FFFF_FFFF:016x}" if phash is not None else None,
            exif_d,
        )
        if info.width is None and iid is not None:
            dims = store.execute("SELECT width, height FROM items WHERE id = ?", (iid,)).fetchone()
            if dims:
                info.width, info.height = dims
    if info.item_id is not None:
        info.boxes = image_boxes(store, info.item_id)
        info.post = post_info(store, info.item_id)
        if ctx is not None and ctx.label_set and ctx.run:
            info.overlap = overlap_summary(info.boxes, ctx.label_set, ctx.run)
        if ctx is not None and ctx.match and table_exists(store, "match_images"):
            with contextlib.suppress(Exception):
                cur = store.execute(
                    "SELECT mi.* FROM match_images mi JOIN matches m ON m.id = mi.match_id "
                    "WHERE m.name = ? AND mi.item_id = ?",
                    (ctx.match, info.item_id),
                )
                mrow = cur.fetchone()
                if mrow is not None:
                    names = [d[0] for d in cur.description]
                    info.match = {
                        n: v
                        for n, v in zip(names, mrow, strict=True)
                        if n not in ("match_id", "item_id") and v is not None
                    }
    return info


def overlap_summary(boxes: pl.DataFrame, label_set: str, run: str, iou: float = 0.5) -> dict[str, Any]:
    """How well a run's boxes cover a set's on one image: labels with a same-class detection
    of IoU ≥ ``iou``, detections with such a label, and the mean best IoU of the labels."""
    import polars as pl

    from tuiops.geometry import pairs

    labels = boxes.filter((pl.col("kind") == "label") & (pl.col("source") == label_set)).with_row_index("li")
    dets = boxes.filter((pl.col("kind") == "det") & (pl.col("source") == run)).with_row_index("di")
    if labels.height == 0 and dets.height == 0:
        return {}
    both = pairs(
        labels.select("li", "class_id", "x1", "y1", "x2", "y2").lazy(),
        dets.select("di", "class_id", "x1", "y1", "x2", "y2").lazy(),
        on="class_id",
    ).collect()
    hit = both.filter(pl.col("iou") >= iou)
    best = both.group_by("li").agg(pl.col("iou").max())
    found = hit["li"].n_unique()
    right = hit["di"].n_unique()
    mean_iou = float(best["iou"].sum() / labels.height) if labels.height else 0.0
    return {
        f"labels found@{iou:g}": f"{found}/{labels.height}",
        f"dets right@{iou:g}": f"{right}/{dets.height}",
        "mean best IoU": f"{mean_iou:.2f}",
    }
