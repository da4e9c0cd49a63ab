"""The triage queue: a stored match read page by page, worst images or objects of one category first."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, NotFoundError, StoreError, TuiopsError, UsageError

if TYPE_CHECKING:
    from tuiops.store import Store


#: Queue kinds: the worst images, or the objects of one match category.
KINDS = ("worst", "fp", "fn", "cls", "loc", "dup")


#: Rows fetched per queue page.
PAGE = 100


#: Pages kept in memory per queue.
KEEP_PAGES = 8


#: Pages past the stored worst ranks hold this many times :data:`PAGE` rows (each sorts the match).
FAR_PAGES = 20


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
