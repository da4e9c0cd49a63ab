"""`match`: compare a label set with a detection run, object by object and image by image.

By default only images that are in both the set and the run are compared (an image the
run never processed says nothing about its labels; an image outside the set has no known
labels); ``images="all"`` compares every image of the set, those the run never processed
with all their labels fn — the choice `eval` offers with the same default.
A detection is *confident* when its score is at least ``conf``; ``t`` is the IoU
threshold (``iou``), ``low`` the lower bound of a localisation error.

Matching, in this order (each stage sees only what the earlier ones left):

1. **tp** — per image and class, COCO's greedy rule (:mod:`tuiops.ops.matching`):
   detections by descending score, each takes the still-unmatched label of its class
   with the highest IoU ≥ t. All detections take part, so a confident detection always
   chooses before a low-score one and the confident matches are exactly those of the
   confident detections alone. A label matched by a confident detection is a *tp* row.
   A label matched only by a low-score detection is not found (see *fn*), but that
   detection is remembered with it.
2. **cls** — per image, greedily by score: a confident unmatched detection takes the
   unmatched label *of another class* with the highest IoU ≥ t (the object is found, the
   class differs).
3. **loc** — per image and class, greedily by score: a confident unmatched detection
   takes the unmatched label of its class with the highest IoU ≥ ``low`` (IoU in
   [low, t): found, but boxed differently).
4. **dup** — a confident detection still unpaired whose IoU with a label that another
   detection already explains (tp, cls or loc) is ≥ t, of any class: a second
   detection of one object. The row names that label (the one with the highest IoU).
5. **fp** — every other confident detection: a detection with no label (possibly a
   missing label).
6. **fn** — every label still unpaired: nobody found it (possibly a spurious label). If a
   low-score detection matched it in step 1, the row names that detection, its IoU and
   score.

Detections below ``conf`` never become tp, cls, loc, dup or fp rows: they are not
confident, and there are usually many of them; they only soften an fn (its cost).

Cost of an object (``match_objects.cost``; larger = a bigger difference):

- tp, loc: ``1 − IoU`` (0 = the boxes agree exactly; loc rows lie in (1 − t, 1 − low]);
- cls, dup, fp: the detection's score (how sure the model is of what the labels lack);
- fn: 1, or ``1 − score`` of the low-score detection that matched it (so labels that
  no detection sees at any score come first).

Per image (``match_images``): the counts of each category; ``n_labels``; ``n_dets`` =
confident detections (= tp + cls + loc + dup + fp); ``precision = tp / n_dets`` (1 when
there is no confident detection, for the order; the totals of a split or of the whole
match have no precision — ``None``, printed n/a — when they hold no confident detection), ``recall = tp / n_labels`` (1 when there is no label),
``f1 = 2·tp / (n_labels + n_dets)`` (1 when both are 0); ``cost`` = the sum of its
objects' costs and ``worst_cost`` their maximum. The worst images come first in
``ORDER BY f1 ASC, cost DESC`` (then item id), the biggest differences of a category in
``ORDER BY cost DESC`` (then object id) — and ``worst_rank`` stores those orders for the
first :data:`TOP_RANKED` rows of each split (and category), indexed.

Splits: an optional mapping image → split name (``train``/``val``/…) is stored with each
image; reports keep the splits apart, because scores of images the weights were trained
on mean something different. An image listed in ``train`` and in another split counts as
``train``.
"""

from tuiops.ops.match.compare import image_stats, item_ids, match_frames, read_boxes, read_dets, read_labels
from tuiops.ops.match.model import (
    CATEGORIES,
    CHUNK_ITEMS,
    CLS,
    DET_ORD_BASE,
    DUP,
    FN,
    FP,
    IMAGE_CHOICES,
    LOC,
    OBJ_ITEM_SHIFT,
    OBJ_MATCH_SHIFT,
    TOP_RANKED,
    TP,
    MatchSummary,
    check_images_choice,
    check_params,
)
from tuiops.ops.match.queries import (
    image_objects,
    image_schema,
    list_matches,
    match_id,
    worst_images,
    worst_objects,
)
from tuiops.ops.match.run import match, rows_of_items
from tuiops.ops.match.splits import splits_from_dir, splits_from_file
from tuiops.ops.match.tables import drop_match

__all__ = [
    "CATEGORIES",
    "CHUNK_ITEMS",
    "CLS",
    "DET_ORD_BASE",
    "DUP",
    "FN",
    "FP",
    "IMAGE_CHOICES",
    "LOC",
    "OBJ_ITEM_SHIFT",
    "OBJ_MATCH_SHIFT",
    "TOP_RANKED",
    "TP",
    "MatchSummary",
    "check_images_choice",
    "check_params",
    "drop_match",
    "image_objects",
    "image_schema",
    "image_stats",
    "item_ids",
    "list_matches",
    "match",
    "match_frames",
    "match_id",
    "read_boxes",
    "read_dets",
    "read_labels",
    "rows_of_items",
    "splits_from_dir",
    "splits_from_file",
    "worst_images",
    "worst_objects",
]
