"""Triage decisions: each one store transaction on the label set with one revision."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, InputError, NotFoundError, StoreError, UsageError
from tuiops.ops.triage.queue import TriageObject
from tuiops.ops.triage.view import LabelRow, label_rows

if TYPE_CHECKING:
    from tuiops.store import Store


#: Decisions a revision can record.
ACTIONS = ("accept", "delete", "reclass", "bad", "good", "box")


@dataclass
class Decision:
    """What one decision (or undo) wrote: the revision and the affected label rows."""

    revision: int
    action: str
    label_set: str
    item_id: int
    key: str
    before: list[LabelRow] = field(default_factory=list)
    after: list[LabelRow] = field(default_factory=list)
    excluded: tuple[bool, bool] | None = None
    undoes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for a notification."""
        what = {
            "accept": "detection accepted as label",
            "delete": "label deleted",
            "reclass": "class changed",
            "bad": "image marked bad (excluded from training)",
            "good": "image marked good again",
        }.get(self.action, self.action)
        if self.undoes is not None:
            return f"undid revision {self.undoes} on {self.key} (revision {self.revision})"
        if self.action == "box" and self.after:
            x1, y1, x2, y2 = self.after[0][2:6]
            what = f"label box now {x1:g},{y1:g} – {x2:g},{y2:g}"
        return f"{what} on {self.key} (revision {self.revision})"


def decide(
    store: Store,
    label_set: str,
    action: str,
    obj: TriageObject | None = None,
    *,
    item_id: int | None = None,
    class_id: int | None = None,
    box: tuple[float, float, float, float] | None = None,
    expect: list[LabelRow] | None = None,
    classes: list[str] | None = None,
    match: str | None = None,
    note: str | None = None,
) -> Decision:
    """Apply one decision to the label set as one transaction with a revision; see the module doc.

    ``obj`` is the object decided on (not needed for ``bad``/``good``, which take
    ``item_id``); ``class_id`` is the new class of ``reclass``; ``expect`` is the image's
    label rows as the caller last read them (:func:`image_view`): when the store holds
    others, the decision is refused. ``classes`` (the workspace class map) checks
    ``class_id``. ``box`` (x1, y1, x2, y2 in the image's pixels) is the object's label's
    new box of ``box``: its class stays.
    """
    from tuiops.store.db import utcnow

    item_id = _checked_decision(action, obj, item_id, class_id, classes)
    if action == "box":
        box = checked_box(box)
    sid = store.label_set_id(label_set)
    key = store.one("SELECT key FROM items WHERE id = ?", (item_id,))
    if key is None:
        raise NotFoundError(f"no image with item id {item_id} in the store")
    with store_errors(store), store.transaction() as conn:
        image = _Image(sid, label_set, item_id, str(key))
        _read_image(conn, image, obj, expect)
        change = _change(conn, image, action, obj, class_id, box)
        changes = _revision_changes(change, image, obj, match)
        rev = record_revision(conn, sid, utcnow(), note or f"triage {change.action} {key}", changes)
        write_revision(conn, sid, item_id, change.before, change.after, change.excluded, rev, utcnow())
    c = change
    return Decision(rev, c.action, label_set, item_id, str(key), c.before, c.after, c.excluded)


def _checked_decision(
    action: str,
    obj: TriageObject | None,
    item_id: int | None,
    class_id: int | None,
    classes: list[str] | None,
) -> int:
    """The image a decision is on, once the decision is one that can be made; else the error."""
    if action not in ACTIONS:
        raise UsageError(f"the decision must be one of {', '.join(ACTIONS)}, not {action!r}")
    if obj is not None:
        item_id = obj.item_id
    if item_id is None:
        raise UsageError(f"the decision {action!r} needs an object or an image")
    if action in ("accept", "delete", "reclass", "box") and obj is None:
        raise UsageError(f"the decision {action!r} needs an object of the queue")
    if action == "reclass":
        if class_id is None:
            raise UsageError("changing the class needs the new class")
        if classes is not None and not 0 <= class_id < len(classes):
            raise InputError(
                f"class id {class_id} is not in the workspace class map (0…{len(classes) - 1})",
                hint="pick a class of the map, or add one to [classes] names in tuiops.toml",
            )
    return item_id


@dataclass
class _Image:
    """What a decision reads of its image inside the transaction."""

    sid: int
    label_set: str
    item_id: int
    key: str
    label: LabelRow | None = None
    det: Any = None
    #: The id a new label takes; None when the image has as many labels as it can.
    next_id: int | None = None


def _read_image(conn: Any, image: _Image, obj: TriageObject | None, expect: list[LabelRow] | None) -> None:
    """Read the object's label and detection into ``image``, and the id a new label takes;
    refused when the image's label rows are not those the caller saw."""
    from tuiops.store.db import MAX_ORD, id_range

    sid, label_set, item_id, key = image.sid, image.label_set, image.item_id, image.key
    if not conn.execute(
        "SELECT 1 FROM set_images WHERE set_id = ? AND item_id = ?", (sid, item_id)
    ).fetchone():
        raise NotFoundError(f"image {key} is not in label set {label_set!r}")
    current = label_rows(conn, sid, item_id)
    if expect is not None and [tuple(r) for r in expect] != current:
        raise ConflictError(
            f"the labels of image {key} in set {label_set!r} changed since they were shown "
            "(another process or window edited the set)",
            hint="the image is read again; look at it and decide again",
        )
    by_id = {r[0]: r for r in current}
    label = by_id.get(obj.label_id) if obj is not None and obj.label_id is not None else None
    if obj is not None and obj.label_id is not None and label is None:
        raise ConflictError(
            f"label {obj.label_id} of image {key} is no longer in set {label_set!r} "
            "(deleted since the match was made)",
            hint=f"undo that change, or match again: `tuiops match --set {label_set}`",
        )
    det = None
    if obj is not None and obj.det_id is not None:
        det = conn.execute(
            "SELECT class_id, x1, y1, x2, y2, score FROM detections WHERE id = ?", (obj.det_id,)
        ).fetchone()
    if label is None and det is not None:
        label = _accepted_label(current, det)
    lo, _hi = id_range(sid, item_id)
    next_id = max(lo - 1, max(by_id, default=lo - 1), _highest_written(conn, sid, item_id)) + 1
    image.label, image.det = label, det
    image.next_id = next_id if next_id - lo <= MAX_ORD else None


@dataclass
class _Change:
    """The rows a decision removes and adds, and the image's exclusion before and after."""

    action: str
    before: list[LabelRow] = field(default_factory=list)
    after: list[LabelRow] = field(default_factory=list)
    excluded: tuple[bool, bool] | None = None


def _change(
    conn: Any,
    image: _Image,
    action: str,
    obj: TriageObject | None,
    class_id: int | None,
    box: tuple[float, float, float, float] | None = None,
) -> _Change:
    """What ``action`` changes on the image."""
    if action == "accept":
        return _accept(image, obj)
    if action == "delete":
        if image.label is None:
            raise UsageError(
                f"this {obj.category if obj else ''} object of {image.key} has no label to delete",
                hint="accept the detection (a) or go on (n)",
            )
        return _Change(action, before=[image.label])
    if action == "reclass":
        assert class_id is not None
        return _reclass(image, class_id)
    if action == "box":
        assert box is not None
        return _rebox(image, obj, box)
    return _mark(conn, image, action)


def _new_label(image: _Image, class_id: int, box: Any) -> LabelRow:
    """A label added to the image, of ``class_id`` with ``box`` (x1, y1, x2, y2)."""
    from tuiops.store.db import MAX_ORD

    if image.next_id is None:
        raise InputError(f"image {image.key} has {MAX_ORD + 1} labels in set {image.label_set!r} already")
    return (image.next_id, class_id, float(box[0]), float(box[1]), float(box[2]), float(box[3]), None)


def _accept(image: _Image, obj: TriageObject | None) -> _Change:
    """The detection becomes the label: the object's label takes its box and class, or a new one is added."""
    if image.det is None:
        raise UsageError(
            f"this {obj.category if obj else ''} object of {image.key} has no detection to accept",
            hint="delete the label (d) or keep it (n)",
        )
    cls, x1, y1, x2, y2, _score = image.det
    label = image.label
    if label is not None:
        new = (label[0], int(cls), float(x1), float(y1), float(x2), float(y2), label[6])
        if new == label:
            raise UsageError(f"the label of {image.key} equals the detection already; nothing to accept")
        return _Change("accept", [label], [new])
    return _Change("accept", after=[_new_label(image, int(cls), (x1, y1, x2, y2))])


def _reclass(image: _Image, class_id: int) -> _Change:
    """The object's label takes the class, or its detection becomes a label of that class."""
    label = image.label
    if label is not None:
        if label[1] == class_id:
            raise UsageError(f"the label of {image.key} has that class already")
        return _Change("reclass", [label], [(label[0], class_id, *label[2:])])
    if image.det is not None:
        return _Change("reclass", after=[_new_label(image, class_id, image.det[1:5])])
    raise UsageError(f"this object of {image.key} has neither a label nor a detection")


def checked_box(box: Any) -> tuple[float, float, float, float]:
    """A label's new box as four floats, once it is a box: finite, x1 < x2 and y1 < y2."""
    if box is None:
        raise UsageError("moving a label's box needs the new box")
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"a box is four numbers x1, y1, x2, y2, not {box!r}") from exc
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or not (x1 < x2 and y1 < y2):
        raise InputError(f"box {x1:g},{y1:g} – {x2:g},{y2:g} is empty or not finite (needs x1 < x2, y1 < y2)")
    return x1, y1, x2, y2


def _rebox(image: _Image, obj: TriageObject | None, box: tuple[float, float, float, float]) -> _Change:
    """The object's label takes the box; its class stays."""
    label = image.label
    if label is None:
        raise UsageError(
            f"this {obj.category if obj else ''} object of {image.key} has no label to move",
            hint="accept the detection (a) first, then move its box",
        )
    new = (label[0], label[1], *box, label[6])
    if new == label:
        raise UsageError(f"the label of {image.key} has that box already")
    return _Change("box", [label], [new])


def _mark(conn: Any, image: _Image, action: str) -> _Change:
    """The image marked bad (excluded from training), or good again; ``bad`` on a bad image
    marks it good."""
    sql = "SELECT 1 FROM set_exclusions WHERE set_id = ? AND item_id = ?"
    was = conn.execute(sql, (image.sid, image.item_id)).fetchone() is not None
    if action == "bad" and was:
        action = "good"
    elif action == "good" and not was:
        raise UsageError(f"image {image.key} is not marked bad")
    return _Change(action, excluded=(was, action == "bad"))


def _revision_changes(
    change: _Change, image: _Image, obj: TriageObject | None, match: str | None
) -> dict[str, Any]:
    """The revision's record of a decision (what an undo reads back)."""
    changes: dict[str, Any] = {"kind": "triage", "action": change.action, "item_id": image.item_id}
    changes.update(key=image.key, before=change.before, after=change.after)
    if change.excluded is not None:
        changes["excluded"] = list(change.excluded)
    if obj is not None:
        changes["object"] = {"id": obj.id, "category": obj.category, "label": obj.label_id, "det": obj.det_id}
    if match:
        changes["match"] = match
    return changes


def _accepted_label(current: list[LabelRow], det: Any) -> LabelRow | None:
    """The label that holds a detection's very box: the detection was accepted before.

    A detection without a label in the match (fp, dup) that was accepted since has that
    label now; deciding on it again works on that label instead of adding a second one.
    """
    box = tuple(float(v) for v in det[1:5])
    return next((r for r in current if (r[2], r[3], r[4], r[5]) == box), None)


def _highest_written(conn: Any, sid: int, item_id: int) -> int:
    """The highest label id the set's triage revisions of the image wrote or removed (−1: none).

    New labels take ids above it, so a label deleted by triage never has its id taken by
    another one: the match's label ids and an undo keep meaning the label they named.
    """
    row = conn.execute(
        "SELECT MAX(json_extract(j.value, '$[0]')) FROM revisions r, "
        "(SELECT '$.before' AS path UNION ALL SELECT '$.after') p, json_each(r.changes, p.path) j "
        "WHERE r.set_id = ? AND r.source = 'triage' AND json_extract(r.changes, '$.item_id') = ?",
        (sid, item_id),
    ).fetchone()
    return -1 if row is None or row[0] is None else int(row[0])


@contextlib.contextmanager
def store_errors(store: Store) -> Iterator[None]:
    """SQLite errors of a decision (a store locked by another process) as a :class:`StoreError`."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        hint = "another tuiops process holds the store; decide again when it is done"
        raise StoreError(f"store {store.path}: the decision was not written: {exc}", hint=hint) from exc


def record_revision(conn: Any, sid: int, now: str, note: str, changes: dict[str, Any]) -> int:
    """Add a triage revision of the set with its ``changes``; its id."""
    cur = conn.execute(
        "INSERT INTO revisions(set_id, created, source, note, changes) VALUES (?, ?, 'triage', ?, ?)",
        (sid, now, note, json.dumps(changes)),
    )
    return int(cur.lastrowid)


def write_revision(
    conn: Any,
    sid: int,
    item_id: int,
    before: list[LabelRow],
    after: list[LabelRow],
    excluded: tuple[bool, bool] | None,
    rev: int,
    now: str,
) -> None:
    """Replace an image's label rows ``before`` by ``after`` and set its exclusion, under revision ``rev``."""
    for r in before:
        conn.execute("DELETE FROM labels WHERE id = ?", (r[0],))
    conn.executemany(
        "INSERT INTO labels(id, class_id, x1, y1, x2, y2, extra) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [tuple(r) for r in after],
    )
    if excluded is not None and excluded[0] != excluded[1]:
        if excluded[1]:
            conn.execute(
                "INSERT INTO set_exclusions(set_id, item_id, reason, revision_id, created) VALUES (?, ?, 'bad', ?, ?)",
                (sid, item_id, rev, now),
            )
        else:
            conn.execute("DELETE FROM set_exclusions WHERE set_id = ? AND item_id = ?", (sid, item_id))
