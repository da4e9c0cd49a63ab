"""Sending one image with its labels from triage to a review folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuiops.errors import NotFoundError

if TYPE_CHECKING:
    from tuiops.ops.base import ProgressFn
    from tuiops.workspace import Workspace


def send_to_review(
    ws: Workspace,
    label_set: str,
    item_id: int,
    *,
    to: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Copy one image with its labels (YOLO, from ``label_set``) into a review folder.

    The folder (default ``review/triage-SET`` in the workspace) gathers every image sent
    from a triage of that set; the copy is a planned, journaled file operation; an image
    sent before is left as it is. Returns the folder.
    """
    from tuiops.ops import fileops
    from tuiops.ops.select import SelectionSpec

    store = ws.store
    store.label_set_id(label_set)
    key = store.one("SELECT key FROM items WHERE id = ?", (item_id,))
    if key is None:
        raise NotFoundError(f"no image with item id {item_id} in the store")
    if store.one("SELECT 1 FROM files WHERE item_id = ? AND status = 'ok' LIMIT 1", (item_id,)) is None:
        raise NotFoundError(
            f"image {key} has no readable file in any pool",
            hint="scan the pool that holds it (`tuiops scan`)",
        )
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label_set)
    folder = Path(to) if to is not None else ws.root / "review" / f"triage-{safe}"
    res = fileops.plan(
        ws,
        "copy",
        SelectionSpec(keys=[str(key)]),
        to=folder,
        labels="yolo",
        label_set=label_set,
        on_conflict="skip",
        progress=progress,
    )
    fileops.run_job(ws, res.job_id, progress=progress)
    return folder
