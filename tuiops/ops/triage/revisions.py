"""Undo of triage decisions and review imports, and the revisions and exclusions of a label set."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, NotFoundError, StoreError, UsageError
from tuiops.ops.triage.decisions import Decision, record_revision, store_errors, write_revision
from tuiops.ops.triage.view import LabelRow, label_rows

if TYPE_CHECKING:
    import polars as pl

    from tuiops.store import Store


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
    with store_errors(store), store.transaction() as conn:
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
        current = {r[0]: r for r in label_rows(conn, sid, item_id)}
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
        new = record_revision(conn, sid, now, note or f"undo of revision {rid}", inverse)
        write_revision(conn, sid, item_id, after, before, excluded, new, now)
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
