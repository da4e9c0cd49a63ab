"""The boxes an analysis reads: a label set and a run from the store, chosen as `eval` chooses them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiops.frames import num_max
from tuiops.ops.matching import member

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store
    from tuiops.workspace import Workspace


@dataclass
class EvalInputs:
    """Labels, detections, the images (sorted item ids) and classes of one evaluation, with pycocotools' tie order."""

    set_name: str
    run_name: str
    set_id: int
    labels: pl.DataFrame
    dets: pl.DataFrame
    items: np.ndarray
    class_ids: np.ndarray
    class_names: list[str]
    image_order: np.ndarray | None
    not_in_run: int
    dets_outside: int

    def subset(self, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The images ``sel`` (a mask over :attr:`items`) and their tie order."""
        return self.items[sel], None if self.image_order is None else self.image_order[sel]


def load_inputs(
    ws: Workspace,
    set_name: str,
    run_name: str,
    *,
    items: Any = None,
    images: str = "processed",
    also_processed_by: tuple[str, ...] = (),
) -> EvalInputs:
    """The boxes of ``set_name`` × ``run_name`` on the images `eval` takes (see :func:`tuiops.ops.evaluate.evaluate`).

    ``also_processed_by``: other runs that must have processed an image too (with
    ``images="processed"``), so that runs compared with each other see the same images.
    """
    from tuiops.ops.evaluate import source_image_order
    from tuiops.ops.match import check_images_choice, item_ids, read_boxes

    check_images_choice(images)
    store = ws.store
    set_id = store.label_set_id(set_name)
    run_id = store.run_id(run_name)
    set_items = item_ids(store, "set", set_id)
    if items is not None:
        set_items = set_items[member(set_items, np.unique(np.asarray(items, dtype=np.int64)))]
    processed = member(set_items, item_ids(store, "run", run_id))
    for other in also_processed_by:
        processed &= member(set_items, item_ids(store, "run", store.run_id(other)))
    not_in_run = int((~processed).sum())
    if images == "processed":
        set_items = set_items[processed]
    labels, dets = read_boxes(store, set_id, run_id, coco_extra=True)
    classes = ws.classes
    n_cls = int(num_max(labels["class_id"]) or 0) + 1 if labels.height else 0
    class_ids = np.arange(max(len(classes), n_cls))
    return EvalInputs(
        set_name=set_name,
        run_name=run_name,
        set_id=set_id,
        labels=labels,
        dets=dets,
        items=set_items,
        class_ids=class_ids,
        class_names=[classes[i] if i < len(classes) else str(i) for i in class_ids.tolist()],
        image_order=source_image_order(store, set_id, set_items),
        not_in_run=not_in_run,
        dets_outside=int((~member(dets["item_id"].to_numpy(), set_items)).sum()),
    )


def pitstop_splits(store: Store, run_name: str) -> pl.DataFrame | None:
    """``item_id, split`` of the dataset a pitstop's run was made on; None when the run is not a pitstop's."""
    import polars as pl

    row = store.execute(
        "SELECT tr.dataset FROM train_pitstops tp JOIN train_runs tr ON tr.id = tp.train_id "
        "WHERE tp.run_name = ? AND tr.dataset IS NOT NULL LIMIT 1",
        (run_name,),
    ).fetchone()
    if row is None:
        return None
    return store.read_frame(
        "SELECT di.item_id, di.split FROM dataset_images di JOIN datasets d ON d.id = di.dataset_id "
        "WHERE d.name = ? ORDER BY di.item_id",
        (row[0],),
        {"item_id": pl.Int64, "split": pl.String},
    )


def previous_pitstop_run(store: Store, run_name: str) -> str | None:
    """The run of the pitstop before the one that made ``run_name`` (same training), if both are stored."""
    row = store.execute(
        "SELECT prev.run_name FROM train_pitstops cur JOIN train_pitstops prev "
        "ON prev.train_id = cur.train_id AND prev.idx < cur.idx "
        "JOIN runs r ON r.name = prev.run_name "
        "WHERE cur.run_name = ? AND prev.run_name IS NOT NULL ORDER BY prev.idx DESC LIMIT 1",
        (run_name,),
    ).fetchone()
    return None if row is None else str(row[0])
