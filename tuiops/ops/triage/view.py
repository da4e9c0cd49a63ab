"""What one image shows in triage: its labels, detections and whether it is marked bad."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuiops.errors import NotFoundError

if TYPE_CHECKING:
    from tuiops.store import Store


#: A label row as stored in a revision: id, class_id, x1, y1, x2, y2, extra.
LabelRow = tuple[int, int, float, float, float, float, "str | None"]


@dataclass
class ImageView:
    """The label set's and the run's boxes of one image, and whether it is marked bad."""

    item_id: int
    key: str
    width: int | None
    height: int | None
    labels: list[LabelRow]
    dets: list[tuple[int, int, float, float, float, float, float]]
    excluded: bool
    reason: str | None = None


def image_view(store: Store, label_set: str, run: str, item_id: int) -> ImageView:
    """Read one image's labels (of ``label_set``), detections (of ``run``) and exclusion flag."""
    from tuiops.store.db import id_range

    sid = store.label_set_id(label_set)
    rid = store.run_id(run)
    row = store.execute("SELECT key, width, height FROM items WHERE id = ?", (item_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no image with item id {item_id} in the store")
    labels = label_rows(store, sid, item_id)
    dets = [
        tuple(r)
        for r in store.execute(
            "SELECT id, class_id, x1, y1, x2, y2, score FROM detections WHERE id BETWEEN ? AND ? ORDER BY id",
            id_range(rid, item_id),
        ).fetchall()
    ]
    ex = store.execute(
        "SELECT reason FROM set_exclusions WHERE set_id = ? AND item_id = ?", (sid, item_id)
    ).fetchone()
    return ImageView(
        item_id,
        str(row[0]),
        row[1],
        row[2],
        labels,
        dets,
        ex is not None,
        ex[0] if ex else None,
    )


def label_rows(store_or_conn: Any, sid: int, item_id: int) -> list[LabelRow]:
    """The label rows of one image in the label set of id ``sid``, by label id."""
    from tuiops.store.db import id_range

    return [
        (int(r[0]), int(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]), r[6])
        for r in store_or_conn.execute(
            "SELECT id, class_id, x1, y1, x2, y2, extra FROM labels WHERE id BETWEEN ? AND ? ORDER BY id",
            id_range(sid, item_id),
        ).fetchall()
    ]
