"""The worst images of a report, painted with their labels and detections."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.ops.base import Reporter
from tuiops.ops.report.model import CATEGORIES, WORST_SIDE, ReportData

if TYPE_CHECKING:
    from tuiops.store import Store
    from tuiops.workspace import Workspace


# -- worst images ---------------------------------------------------------------------------------
def _safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:120] or "image"


def paint_worst(ws: Workspace, data: ReportData, out: Path, rep: Reporter) -> list[dict[str, Any]]:
    """Paint the worst images (labels solid, confident detections dashed) into ``out``."""
    import polars as pl

    from tuiops.imaging import render
    from tuiops.ops.match import read_dets, read_labels

    worst = data.worst
    if worst.height == 0:
        return []
    st = ws.store
    set_id, run_id = st.label_set_id(data.set_name), st.run_id(data.run_name)
    ids = worst["item_id"].to_list()
    files = _image_files(st, ids)
    dims = st.read_frame(
        "SELECT id AS item_id, width, height FROM items WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(ids),),
        {"item_id": pl.Int64, "width": pl.Int64, "height": pl.Int64},
    )
    size = {r[0]: (r[1], r[2]) for r in dims.iter_rows()}
    digits = max(2, len(str(worst.height)))
    names = [*data.class_names]
    out_rows: list[dict[str, Any]] = []
    for n, row in enumerate(worst.iter_rows(named=True), start=1):
        rep.check()
        item = int(row["item_id"])
        lab = read_labels(st, set_id, item, item)
        det = read_dets(st, run_id, item, item).filter(pl.col("score") >= data.conf)
        w, h = size.get(item, (None, None))
        image, note = _load_image(files.get(item, []), w, h)
        spec = {
            "w": w,
            "h": h,
            "names": names,
            "l": [[int(r[0]), *r[1:]] for r in lab.select("class_id", "x1", "y1", "x2", "y2").iter_rows()],
            "d": [
                [int(r[0]), *r[1:]]
                for r in det.select("class_id", "score", "x1", "y1", "x2", "y2").iter_rows()
            ],
        }
        rel = f"worst/{n:0{digits}d}_{_safe_name(str(row['key']))}.jpg"
        (out / Path(rel).name).write_bytes(render(image, json.dumps(spec).encode()))
        out_rows.append(
            {
                "file": rel,
                "rank": row["rank"],
                "key": row["key"],
                "split": row["split"],
                "note": note,
                **{
                    c: row[c]
                    for c in ("n_labels", "n_dets", *CATEGORIES, "precision", "recall", "f1", "cost")
                },
            }
        )
        rep.advance(message=str(row["key"]))
    return out_rows


def _image_files(st: Store, ids: list[int]) -> dict[int, list[bytes]]:
    """Paths of the files of each item, good files first."""
    import polars as pl

    frame = st.read_frame(
        "SELECT f.item_id, p.root, f.relpath, f.relpath_raw, f.status FROM files f JOIN pools p ON p.id = f.pool_id "
        "WHERE f.item_id IN (SELECT value FROM json_each(?)) AND f.status NOT IN ('moved', 'trashed') "
        "ORDER BY f.item_id, (f.status = 'ok') DESC, f.id",
        (json.dumps(ids),),
        {"item_id": pl.Int64, "root": pl.String, "relpath": pl.String, "relpath_raw": pl.Binary},
    )
    out: dict[int, list[bytes]] = {}
    for item, root, rel, raw, _status in frame.iter_rows():
        path = os.fsencode(root) + b"/" + (raw if raw is not None else os.fsencode(rel))
        out.setdefault(int(item), []).append(path)
    return out


def _load_image(paths: list[bytes], w: int | None, h: int | None) -> tuple[bytes, str | None]:
    """The first readable file, shrunk to :data:`WORST_SIDE`, as PNG bytes; else a grey canvas and why."""
    from PIL import Image, UnidentifiedImageError

    why = "no file of this image in a pool"
    for p in paths:
        try:
            with Image.open(p) as src:
                src.draft("RGB", (WORST_SIDE, WORST_SIDE))
                im = src.convert("RGB")
                im.thumbnail((WORST_SIDE, WORST_SIDE))
                buf = io.BytesIO()
                im.save(buf, format="PNG")
                return buf.getvalue(), None
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            why = f"cannot read {os.fsdecode(p)}: {type(exc).__name__}"
    cw, ch = w or 640, h or 480
    scale = min(1.0, WORST_SIDE / max(cw, ch))
    canvas = Image.new("RGB", (max(1, round(cw * scale)), max(1, round(ch * scale))), (96, 96, 96))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue(), why
