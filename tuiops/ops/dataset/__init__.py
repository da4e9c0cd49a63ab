"""Ultralytics datasets built from a label set: images linked or copied, YOLO labels from
the store, ``data.yaml`` with the workspace class map, and a split that stays put.

Layout of a dataset folder::

    DIR/data.yaml                      path, train, val, nc, names (the workspace class map)
    DIR/images/{train,val}/KEY.ext     links to (or copies of) the pool files
    DIR/labels/{train,val}/KEY.txt     "class cx cy w h", normalised, 6 decimals
    DIR/tuiops_dataset.json            what was built, from what, with which checks

Stable split: an image keeps the split it had in the previous build of the dataset
(``dataset_images`` in the store); a new image gets one from a stable hash of its key
and the seed (``val`` is the chance of landing in val), so rebuilding never shuffles
images between train and val unless ``resplit`` asks for it. Excluded images keep the
split ``excluded`` until they are included again; images marked bad in the label set
(triage, table ``set_exclusions``) are always excluded.

Checks run before anything is written, each reported with counts and examples and
fixed only when asked (``fix``):

``duplicates``
    boxes repeated within an image (same class, IoU above ``dup_iou``; NMS in file
    order, the earlier box wins) — the fix drops the repeats.
``outside``
    boxes reaching more than ``tol`` pixels outside the image, or with no area — the
    fix clips them to the image and drops those left with no area. (Boxes within
    ``tol`` are always clipped: ultralytics rejects a whole image for one coordinate
    above 1.)
``leaks``
    val images that are near-duplicates (perceptual hash within ``phash_distance``
    bits) of a train image — the fix moves them to train, which the store remembers.
``empty``
    images without boxes (kept as background images) — the fix leaves them out.

Images without a readable pool file, without a known size, or in a format ultralytics
cannot train on are always left out and reported.
"""

from tuiops.ops.dataset.build import build_dataset
from tuiops.ops.dataset.catalog import (
    dataset_images,
    dataset_info,
    delete_label_caches,
    effective_labels,
    find_dataset,
    list_datasets,
)
from tuiops.ops.dataset.checks import check_boxes, yolo_lines
from tuiops.ops.dataset.draws import near_duplicate_pairs, split_draw
from tuiops.ops.dataset.model import (
    DATA_YAML,
    EXAMPLES,
    FIXES,
    LINK_MODES,
    MANIFEST,
    SPLITS,
    TRAIN_FORMATS,
    CheckReport,
    DatasetInfo,
    DatasetResult,
)

__all__ = [
    "DATA_YAML",
    "EXAMPLES",
    "FIXES",
    "LINK_MODES",
    "MANIFEST",
    "SPLITS",
    "TRAIN_FORMATS",
    "CheckReport",
    "DatasetInfo",
    "DatasetResult",
    "build_dataset",
    "check_boxes",
    "dataset_images",
    "dataset_info",
    "delete_label_caches",
    "effective_labels",
    "find_dataset",
    "list_datasets",
    "near_duplicate_pairs",
    "split_draw",
    "yolo_lines",
]
