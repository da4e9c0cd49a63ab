"""Triage: step through the differences of a stored match and decide each with one key.

Queue
    :func:`open_queue` reads a stored match of a label set × detection run
    (:mod:`tuiops.ops.match`) as a queue: ``worst`` — the images in the worst-first order
    (``f1`` ascending, then ``cost`` descending), each with its mismatched objects
    costliest first; ``fp``, ``fn``, ``cls``, ``loc``, ``dup`` — the objects of that
    category, costliest first. The queue fetches pages lazily with ``LIMIT``/``OFFSET``:
    positions within the match's stored ``worst_rank`` rows read a short index range,
    later positions sort the match once per page. It never holds the whole match.

Decisions
    Each decision is one store transaction on the label set and one ``revisions`` row
    that keeps the affected label rows before and after (see
    :mod:`tuiops.store.schema_triage`); label ids stay stable (a new label takes the
    next free position of its image), so the match's label ids stay valid while a
    queue is worked on.

    - ``accept``: the detection becomes the label — a label it was paired with takes the
      detection's box and class; a detection without a label (fp, dup) is added as a
      new label.
    - ``delete``: the object's label is removed.
    - ``reclass``: the object's label takes another class (a detection without a label
      is added as a label of that class).
    - ``bad``: the image is marked bad (excluded from training: ``dataset build`` leaves
      it out), or, when marked already, marked good again.
    - ``box``: the object's label takes a new box (its class stays): an edge or the whole
      box nudged, or snapped to the detection's (:mod:`tuiops.ops.triage.edits`).

    A decision is refused (:class:`ConflictError`) when the image's labels differ from
    those the caller last saw (``expect``): another process changed the set meanwhile.

Undo
    :func:`undo` applies the inverse of a revision (by default the newest triage
    decision of the set not undone yet) as a new revision, after checking that the
    affected rows still hold exactly what the decision wrote; otherwise it refuses and
    names the image.

Review folder
    :func:`send_to_review` copies the image with its labels (YOLO) into
    ``review/triage-SET/`` of the workspace through the journaled file-operation engine.
"""

from tuiops.ops.triage.decisions import ACTIONS, Decision, decide
from tuiops.ops.triage.edits import BOX_PARTS, nudged_box, part_axis, snapped_box, step_size
from tuiops.ops.triage.queue import (
    KINDS,
    Entry,
    TriageObject,
    TriageQueue,
    open_queue,
    queue_counts,
    resolve_match,
)
from tuiops.ops.triage.review_folder import send_to_review
from tuiops.ops.triage.revisions import excluded_items, list_revisions, undo
from tuiops.ops.triage.view import ImageView, LabelRow, image_view

__all__ = [
    "ACTIONS",
    "BOX_PARTS",
    "KINDS",
    "Decision",
    "Entry",
    "ImageView",
    "LabelRow",
    "TriageObject",
    "TriageQueue",
    "decide",
    "excluded_items",
    "image_view",
    "list_revisions",
    "nudged_box",
    "open_queue",
    "part_axis",
    "queue_counts",
    "resolve_match",
    "send_to_review",
    "snapped_box",
    "step_size",
    "undo",
]
