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

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, InputError, NotFoundError, StoreError, TuiopsError, UsageError

if TYPE_CHECKING:
    import polars as pl

    from tuiops.ops.base import ProgressFn
    from tuiops.store import Store
    from tuiops.workspace import Workspace

#: Queue kinds: the worst images, or the objects of one match category.
KINDS = ("worst", "fp", "fn", "cls", "loc", "dup")
#: Decisions a revision can record.
ACTIONS = ("accept", "delete", "reclass", "bad", "good")
#: Rows fetched per queue page.
PAGE = 100
#: Pages kept in memory per queue.
KEEP_PAGES = 8
#: Pages past the stored worst ranks hold this many times :data:`PAGE` rows (each sorts the match).
FAR_PAGES = 20

#: A label row as stored in a revision: id, class_id, x1, y1, x2, y2, extra.
LabelRow = tuple[int, int, float, float, float, float, "str | None"]


# -- the queue ----------------------------------------------------------------------------------------
@dataclass
class TriageObject:
    """One compared object of a match (see :mod:`tuiops.ops.match` for the categories)."""

    id: int
    item_id: int
    category: str
    cost: float
    iou: float | None
    score: float | None
    class_id: int | None
    det_class_id: int | None
    label_id: int | None
    det_id: int | None


@dataclass
class Entry:
    """One queue position: an image and the objects to decide on it (costliest first)."""

    position: int
    item_id: int
    key: str
    split: str | None
    objects: list[TriageObject] | None = None
    f1: float | None = None
    cost: float | None = None


class TriageQueue:
    """A lazily paged queue over a stored match; see the module doc."""

    def __init__(
        self,
        match: str,
        match_id: int,
        label_set: str,
        run: str,
        kind: str,
        total: int,
        split: str | None = None,
        page: int = PAGE,
        single: bool = False,
    ) -> None:
        self.match = match
        self.match_id = match_id
        self.label_set = label_set
        self.run = run
        self.kind = kind
        self.total = total
        self.split = split
        self.page = page
        #: The stored worst ranks are one order over the whole queue (one split, or a split chosen).
        self.single = single
        self._pages: dict[int, list[Entry]] = {}

    def __len__(self) -> int:
        return self.total

    def entry(self, store: Store, position: int) -> Entry:
        """The entry at ``position`` (0-based), with its objects; reads its page when needed."""
        if not 0 <= position < self.total:
            raise UsageError(f"queue position {position + 1} is outside 1…{self.total}")
        number, start, size = self._page_of(position)
        rows = self._pages.get(number)
        if rows is None:
            rows = self._read_page(store, number, start, size)
            self._pages[number] = rows
            while len(self._pages) > KEEP_PAGES:
                self._pages.pop(next(iter(self._pages)))
        index = position - start
        if index >= len(rows):
            raise StoreError(
                f"match {self.match!r} has fewer {self.kind} rows than its counts say ({position + 1})",
                hint="run `tuiops match` again",
            )
        entry = rows[index]
        if entry.objects is None:
            entry.objects = self._image_objects(store, entry.item_id)
        return entry

    def _split_sql(self) -> tuple[str, tuple[Any, ...]]:
        if self.split is None:
            return "", ()
        if self.split == "":
            return " AND mi.split IS NULL", ()
        return " AND mi.split = ?", (self.split,)

    def _page_of(self, position: int) -> tuple[int, int, int]:
        """The page holding ``position``: its number, first position and size.

        Pages within the stored worst ranks hold :attr:`page` rows; later pages, each of
        which sorts the match, hold :data:`FAR_PAGES` times as many.
        """
        from tuiops.ops.match import TOP_RANKED

        ranked_end = (TOP_RANKED // self.page) * self.page
        if position < ranked_end:
            number = position // self.page
            return number, number * self.page, self.page
        far = self.page * FAR_PAGES
        k = (position - ranked_end) // far
        return ranked_end // self.page + k, ranked_end + k * far, far

    def _read_page(self, store: Store, number: int, start: int, size: int) -> list[Entry]:
        from tuiops.ops.match import OBJ_MATCH_SHIFT, TOP_RANKED

        ranked = start + size <= TOP_RANKED
        split_sql, split_args = self._split_sql()
        prev = self._pages.get(number - 1)
        after = prev[-1] if prev and not ranked and prev[-1].position == start - 1 else None
        offset = 0 if after is not None else start
        if self.kind == "worst":
            cols = "mi.item_id, i.key, mi.split, mi.f1, mi.cost"
            if ranked and self.single:
                sql = (
                    f"SELECT {cols} FROM match_images mi JOIN items i ON i.id = mi.item_id "
                    f"WHERE mi.match_id = ? AND mi.worst_rank BETWEEN ? AND ?{split_sql} ORDER BY mi.worst_rank"
                )
                args: tuple[Any, ...] = (self.match_id, start + 1, start + size, *split_args)
            else:
                index = " INDEXED BY match_images_worst" if ranked else ""
                where = "mi.match_id = ?" + (" AND mi.worst_rank IS NOT NULL" if ranked else "")
                keyset = ""
                key_args: tuple[Any, ...] = ()
                if after is not None:
                    keyset = " AND (mi.f1 > ? OR (mi.f1 = ? AND (mi.cost < ? OR (mi.cost = ? AND mi.item_id > ?))))"
                    key_args = (after.f1, after.f1, after.cost, after.cost, after.item_id)
                order = "ORDER BY mi.f1, mi.cost DESC, mi.item_id"
                sql = (
                    f"SELECT {cols} FROM (SELECT mi.item_id, mi.split, mi.f1, mi.cost FROM match_images mi{index} "
                    f"WHERE {where}{split_sql}{keyset} {order} LIMIT ? OFFSET ?) mi "
                    f"JOIN items i ON i.id = mi.item_id {order}"
                )
                args = (self.match_id, *split_args, *key_args, size, offset)
            rows = store.execute(sql, args).fetchall()
            return [
                Entry(start + n, int(r[0]), str(r[1]), r[2], None, r[3], r[4]) for n, r in enumerate(rows)
            ]
        split_join = (
            " JOIN match_images mi ON mi.match_id = ? AND mi.item_id = o.item_id"
            if self.split is not None
            else ""
        )
        join_args: tuple[Any, ...] = (self.match_id,) if self.split is not None else ()
        if ranked and self.single:
            inner = (
                f"SELECT {_OBJ_COLS} FROM match_objects o{split_join} WHERE o.match_id = ? AND o.category = ? "
                f"AND o.worst_rank BETWEEN ? AND ?{split_sql} ORDER BY o.worst_rank"
            )
            args = (*join_args, self.match_id, self.kind, start + 1, start + size, *split_args)
        else:
            lo = self.match_id << OBJ_MATCH_SHIFT
            where = (
                "o.match_id = ? AND o.category = ? AND o.worst_rank IS NOT NULL"
                if ranked
                else "o.id BETWEEN ? AND ? AND o.category = ?"
            )
            where_args: tuple[Any, ...] = (
                (self.match_id, self.kind) if ranked else (lo, lo + (1 << OBJ_MATCH_SHIFT) - 1, self.kind)
            )
            keyset, key_args = "", ()
            if after is not None and after.objects:
                keyset = " AND (o.cost < ? OR (o.cost = ? AND o.id > ?))"
                key_args = (after.cost, after.cost, after.objects[0].id)
            inner = (
                f"SELECT {_OBJ_COLS} FROM match_objects o{split_join} WHERE {where}{split_sql}{keyset} "
                "ORDER BY o.cost DESC, o.id LIMIT ? OFFSET ?"
            )
            args = (*join_args, *where_args, *split_args, *key_args, size, offset)
        outer_cols = ", ".join(c.replace("o.", "s.") for c in _OBJ_COLS.split(", "))
        rows = store.execute(
            f"SELECT {outer_cols}, i.key FROM ({inner}) s JOIN items i ON i.id = s.item_id "
            "ORDER BY s.cost DESC, s.id",
            args,
        ).fetchall()
        return [
            Entry(start + n, int(r[1]), str(r[10]), self.split, [_object(r[:10])], None, float(r[3]))
            for n, r in enumerate(rows)
        ]

    def _image_objects(self, store: Store, item_id: int) -> list[TriageObject]:
        from tuiops.ops.match import OBJ_ITEM_SHIFT, OBJ_MATCH_SHIFT

        lo = (self.match_id << OBJ_MATCH_SHIFT) | (item_id << OBJ_ITEM_SHIFT)
        rows = store.execute(
            f"SELECT {_OBJ_COLS} FROM match_objects o WHERE o.id BETWEEN ? AND ? ORDER BY o.cost DESC, o.id",
            (lo, lo + (1 << OBJ_ITEM_SHIFT) - 1),
        ).fetchall()
        objs = [_object(r) for r in rows]
        wrong = [o for o in objs if o.category != "tp"]
        return wrong or objs


_OBJ_COLS = (
    "o.id, o.item_id, o.category, o.cost, o.iou, o.score, o.class_id, o.det_class_id, o.label_id, o.det_id"
)


def _object(r: Any) -> TriageObject:
    return TriageObject(
        int(r[0]),
        int(r[1]),
        str(r[2]),
        float(r[3]),
        r[4],
        r[5],
        None if r[6] is None else int(r[6]),
        None if r[7] is None else int(r[7]),
        None if r[8] is None else int(r[8]),
        None if r[9] is None else int(r[9]),
    )


def resolve_match(
    store: Store, label_set: str | None = None, run: str | None = None, match: str | None = None
) -> tuple[str, str, str]:
    """The stored match to triage, as (name, label set, run).

    ``match`` names it outright (a given set or run must then be the one it compares);
    otherwise it is the match of ``label_set`` × ``run``: the one named ``SET__RUN`` (as
    `tuiops match` names it) or else the only one stored of that pair, whatever its name
    (a pitstop stores its match under the run's name, ``TRAIN.pitstopN``).
    """
    try:
        if match is not None:
            row = store.execute(
                "SELECT name, set_name, run_name FROM matches WHERE name = ?", (match,)
            ).fetchone()
            if row is None:
                known = [r[0] for r in store.execute("SELECT name FROM matches ORDER BY id DESC LIMIT 5")]
                raise NotFoundError(
                    f"no stored match {match!r}",
                    hint=f"stored matches: {', '.join(known)}"
                    if known
                    else "make one with `tuiops match --set SET --run RUN`",
                )
            name, m_set, m_run = row
            if (label_set is not None and label_set != m_set) or (run is not None and run != m_run):
                raise UsageError(
                    f"match {match!r} compares {m_set!r} with {m_run!r}, not {label_set or m_set!r} with {run or m_run!r}",
                    hint="leave out --set and --run, or name the match of this set and run",
                )
            return str(name), str(m_set), str(m_run)
        if label_set is None or run is None:
            raise UsageError("triage needs a stored match: give --match NAME, or --set SET and --run RUN")
        store.label_set_id(label_set)
        store.run_id(run)
        rows = store.execute(
            "SELECT name FROM matches WHERE set_name = ? AND run_name = ? ORDER BY id", (label_set, run)
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"store {store.path}: cannot read the stored matches: {exc}") from exc
    names = [str(r[0]) for r in rows]
    default = f"{label_set}__{run}"
    if default in names:
        return default, label_set, run
    if len(names) == 1:
        return names[0], label_set, run
    if not names:
        raise NotFoundError(
            f"no stored match {default!r}, nor any other of label set {label_set!r} and run {run!r}",
            hint=f"make it first: `tuiops match --set {label_set} --run {run}`",
        )
    raise UsageError(
        f"label set {label_set!r} and run {run!r} have {len(names)} stored matches: {', '.join(names)}",
        hint="name one with --match NAME",
    )


def open_queue(
    store: Store,
    label_set: str | None,
    run: str | None,
    kind: str = "worst",
    *,
    match: str | None = None,
    split: str | None = None,
    page: int = PAGE,
) -> TriageQueue:
    """The triage queue of a stored match (``kind``: see :data:`KINDS`).

    The match is found by :func:`resolve_match`: by its name ``match``, or by
    ``label_set`` × ``run``. ``split`` keeps to one split (``""``: images without one).
    """
    if kind not in KINDS:
        raise UsageError(f"the triage kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if page < 1:
        raise UsageError("the queue page size must be at least 1")
    name, label_set, run = resolve_match(store, label_set, run, match)
    sid = store.label_set_id(label_set)
    rid = store.run_id(run)
    try:
        row = store.execute(
            "SELECT id, set_id, run_id, set_name, run_name, counts FROM matches WHERE name = ?", (name,)
        ).fetchone()
    except Exception as exc:
        raise StoreError(f"store {store.path}: cannot read the stored matches: {exc}") from exc
    if row is None:
        raise NotFoundError(
            f"no stored match {name!r} of label set {label_set!r} and run {run!r}",
            hint=f"make it first: `tuiops match --set {label_set} --run {run}`",
        )
    mid, m_sid, m_rid, _m_set, _m_run, counts = row
    if m_sid != sid or m_rid != rid:
        raise ConflictError(
            f"the label set {label_set!r} or the run {run!r} was replaced after match {name!r} was made",
            hint=f"match again: `tuiops match --set {label_set} --run {run}`",
        )
    try:
        totals = json.loads(counts or "{}")
    except ValueError:
        totals = {}
    group = "all" if split is None else ("none" if split == "" else split)
    figures = totals.get(group) or {}
    if split is not None and not figures:
        known = sorted(k for k in totals if k != "all")
        raise NotFoundError(
            f"match {name!r} has no split {split!r}", hint=f"its splits: {', '.join(known) or 'none'}"
        )
    total = int(figures.get("images" if kind == "worst" else kind, 0))
    single = split is not None or len([k for k in totals if k != "all"]) <= 1
    return TriageQueue(name, int(mid), label_set, run, kind, total, split, page, single)


def queue_counts(
    store: Store,
    label_set: str | None,
    run: str | None,
    *,
    match: str | None = None,
    split: str | None = None,
) -> dict[str, int]:
    """How long each queue kind of the stored match is (``worst``: its images); empty when there is none.

    The match is found as :func:`open_queue` finds it; then one primary-key read of its
    stored counts: cheap enough for a menu.
    """
    try:
        name = resolve_match(store, label_set, run, match)[0]
    except TuiopsError:
        return {}
    try:
        text = store.one("SELECT counts FROM matches WHERE name = ?", (name,))
        totals = json.loads(text) if text else {}
    except (sqlite3.DatabaseError, ValueError):
        return {}
    group = "all" if split is None else ("none" if split == "" else split)
    figures = totals.get(group) or {}
    out: dict[str, int] = {}
    for kind in KINDS:
        value = figures.get("images" if kind == "worst" else kind)
        if isinstance(value, int | float):
            out[kind] = int(value)
    return out


# -- what one image shows ---------------------------------------------------------------------------
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
    labels = _label_rows(store, sid, item_id)
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


def _label_rows(store_or_conn: Any, sid: int, item_id: int) -> list[LabelRow]:
    from tuiops.store.db import id_range

    return [
        (int(r[0]), int(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]), r[6])
        for r in store_or_conn.execute(
            "SELECT id, class_id, x1, y1, x2, y2, extra FROM labels WHERE id BETWEEN ? AND ? ORDER BY id",
            id_range(sid, item_id),
        ).fetchall()
    ]


# -- decisions --------------------------------------------------------------------------------------
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
        return f"{what} on {self.key} (revision {self.revision})"


def decide(
    store: Store,
    label_set: str,
    action: str,
    obj: TriageObject | None = None,
    *,
    item_id: int | None = None,
    class_id: int | None = None,
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
    ``class_id``.
    """
    from tuiops.store.db import utcnow

    item_id = _checked_decision(action, obj, item_id, class_id, classes)
    sid = store.label_set_id(label_set)
    key = store.one("SELECT key FROM items WHERE id = ?", (item_id,))
    if key is None:
        raise NotFoundError(f"no image with item id {item_id} in the store")
    with _store_errors(store), store.transaction() as conn:
        image = _Image(sid, label_set, item_id, str(key))
        _read_image(conn, image, obj, expect)
        change = _change(conn, image, action, obj, class_id)
        changes = _revision_changes(change, image, obj, match)
        rev = _record(conn, sid, utcnow(), note or f"triage {change.action} {key}", changes)
        _write(conn, sid, item_id, change.before, change.after, change.excluded, rev, utcnow())
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
    if action in ("accept", "delete", "reclass") and obj is None:
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
    current = _label_rows(conn, sid, item_id)
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


def _change(conn: Any, image: _Image, action: str, obj: TriageObject | None, class_id: int | None) -> _Change:
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
def _store_errors(store: Store) -> Iterator[None]:
    """SQLite errors of a decision (a store locked by another process) as a :class:`StoreError`."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        hint = "another tuiops process holds the store; decide again when it is done"
        raise StoreError(f"store {store.path}: the decision was not written: {exc}", hint=hint) from exc


def _record(conn: Any, sid: int, now: str, note: str, changes: dict[str, Any]) -> int:
    cur = conn.execute(
        "INSERT INTO revisions(set_id, created, source, note, changes) VALUES (?, ?, 'triage', ?, ?)",
        (sid, now, note, json.dumps(changes)),
    )
    return int(cur.lastrowid)


def _write(
    conn: Any,
    sid: int,
    item_id: int,
    before: list[LabelRow],
    after: list[LabelRow],
    excluded: tuple[bool, bool] | None,
    rev: int,
    now: str,
) -> None:
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


# -- undo and revisions ---------------------------------------------------------------------------
def _rows(value: Any) -> list[LabelRow]:
    return [
        (int(r[0]), int(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]), r[6]) for r in value or []
    ]


def undo(store: Store, label_set: str, revision: int | None = None, *, note: str | None = None) -> Decision:
    """Undo a triage decision or review import of ``label_set`` (default: the newest one not undone yet).

    The inverse is written as a new revision. Refused when the set's rows touched by the
    revision no longer hold what it wrote (a later change would be lost), when the
    revision was undone already, or when it is neither a triage decision nor a review import.
    """
    from tuiops.store.db import utcnow

    sid = store.label_set_id(label_set)
    with _store_errors(store), store.transaction() as conn:
        undone = {
            int(r[0])
            for r in conn.execute(
                "SELECT json_extract(changes, '$.undoes') FROM revisions WHERE set_id = ? "
                "AND json_extract(changes, '$.kind') = 'undo'",
                (sid,),
            ).fetchall()
            if r[0] is not None
        }
        if revision is None:
            row = None
            for rid, text in conn.execute(
                "SELECT id, changes FROM revisions WHERE set_id = ? "
                "AND json_extract(changes, '$.kind') IN ('triage', 'review') ORDER BY id DESC",
                (sid,),
            ):
                if int(rid) not in undone:
                    row = (rid, text)
                    break
            if row is None:
                raise NotFoundError(
                    f"label set {label_set!r} has no triage decision left to undo, nor any review import"
                )
        else:
            row = conn.execute(
                "SELECT id, changes FROM revisions WHERE set_id = ? AND id = ?", (sid, revision)
            ).fetchone()
            if row is None:
                raise NotFoundError(
                    f"label set {label_set!r} has no revision {revision}",
                    hint=f"list them with `tuiops labels revisions --set {label_set}`",
                )
        rid = int(row[0])
        try:
            changes = json.loads(row[1] or "{}")
        except ValueError as exc:
            raise StoreError(f"revision {rid} of set {label_set!r} has unreadable changes") from exc
        if rid in undone:
            raise ConflictError(f"revision {rid} of set {label_set!r} was undone already")
        if changes.get("kind") == "review":
            from tuiops.ops.review import undo_review

            new, n = undo_review(conn, sid, label_set, rid, changes, utcnow(), note)
            return Decision(new, "review", label_set, 0, f"{n} image(s)", undoes=rid)
        if changes.get("kind") != "triage":
            raise UsageError(
                f"revision {rid} of set {label_set!r} is not a triage decision, nor a review import "
                "that recorded its label rows (one written by an older tuiops); it cannot be undone",
            )
        item_id = int(changes["item_id"])
        key = str(changes.get("key"))
        before, after = _rows(changes.get("before")), _rows(changes.get("after"))
        current = {r[0]: r for r in _label_rows(conn, sid, item_id)}
        for r in after:
            if current.get(r[0]) != r:
                raise ConflictError(
                    f"label {r[0]} of image {key} changed after revision {rid}; undoing it would lose that change",
                    hint=f"undo the later revisions first (`tuiops labels revisions --set {label_set}`)",
                )
        gone = {r[0] for r in before} - {r[0] for r in after}
        back = [i for i in gone if i in current]
        if back:
            raise ConflictError(
                f"label {back[0]} of image {key} was written again after revision {rid}; undo refused",
                hint=f"undo the later revisions first (`tuiops labels revisions --set {label_set}`)",
            )
        excluded = None
        if "excluded" in changes:
            was, now_ex = (bool(x) for x in changes["excluded"])
            is_ex = (
                conn.execute(
                    "SELECT 1 FROM set_exclusions WHERE set_id = ? AND item_id = ?", (sid, item_id)
                ).fetchone()
                is not None
            )
            if is_ex != now_ex:
                raise ConflictError(
                    f"image {key} was marked {'bad' if is_ex else 'good'} again after revision {rid}; undo refused"
                )
            excluded = (now_ex, was)
        inverse: dict[str, Any] = {
            "kind": "undo",
            "action": changes.get("action"),
            "undoes": rid,
            "item_id": item_id,
            "key": key,
            "before": after,
            "after": before,
        }
        if excluded is not None:
            inverse["excluded"] = list(excluded)
        now = utcnow()
        new = _record(conn, sid, now, note or f"undo of revision {rid}", inverse)
        _write(conn, sid, item_id, after, before, excluded, new, now)
    return Decision(new, str(changes.get("action")), label_set, item_id, key, after, before, excluded, rid)


def list_revisions(store: Store, label_set: str, *, limit: int = 100) -> pl.DataFrame:
    """The newest ``limit`` revisions of a label set: id, created, source, action, key, note, undone_by."""
    import polars as pl

    sid = store.label_set_id(label_set)
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, not {limit}")
    frame = store.read_frame(
        "SELECT r.id, r.created, r.source, json_extract(r.changes, '$.kind') AS kind, "
        "json_extract(r.changes, '$.action') AS action, json_extract(r.changes, '$.key') AS key, r.note, "
        "(SELECT MIN(u.id) FROM revisions u WHERE u.set_id = r.set_id "
        " AND json_extract(u.changes, '$.kind') = 'undo' AND json_extract(u.changes, '$.undoes') = r.id) AS undone_by "
        "FROM revisions r WHERE r.set_id = ? ORDER BY r.id DESC LIMIT ?",
        (sid, limit),
        {
            "id": pl.Int64,
            "created": pl.String,
            "source": pl.String,
            "kind": pl.String,
            "action": pl.String,
            "key": pl.String,
            "note": pl.String,
            "undone_by": pl.Int64,
        },
    )
    return frame


def excluded_items(store: Store, label_set: str) -> pl.DataFrame:
    """The images of a label set marked bad: item_id, key, reason, revision_id, created."""
    import polars as pl

    sid = store.label_set_id(label_set)
    return store.read_frame(
        "SELECT e.item_id, i.key, e.reason, e.revision_id, e.created FROM set_exclusions e "
        "JOIN items i ON i.id = e.item_id WHERE e.set_id = ? ORDER BY e.item_id",
        (sid,),
        {
            "item_id": pl.Int64,
            "key": pl.String,
            "reason": pl.String,
            "revision_id": pl.Int64,
            "created": pl.String,
        },
    )


# -- review folder --------------------------------------------------------------------------------
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
