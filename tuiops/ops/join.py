"""Joining part detections (head, upper body, lower body, …) into one object per character.

Parts are class names ordered top to bottom. Two part detections of one image are
linked when

* they are of different parts,
* their boxes, each grown by ``margin`` × its own height on every side, touch or
  overlap (closed intervals in x and in y), and
* they are vertically ordered: the centre of the box of the earlier part (higher in the
  list) lies strictly above the centre of the later part's box.

The joined objects are the connected components of that graph (a detection with no
link is an object of one member). Each object stores the union box of its members'
(ungrown) boxes, the number of members, a bitmask of the parts present (bit k = the
k-th part), the member ids, ``score`` = the mean of the members' scores and
``min_score`` = the lowest. Components are found with vectorised min-label
propagation (with pointer jumping) over the edge table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from tuiops import geometry as geo
from tuiops.errors import ConflictError, NotFoundError, UsageError
from tuiops.ops.base import CancelToken, ProgressFn, Reporter, job
from tuiops.ops.nms import sweep_pairs
from tuiops.store import utcnow
from tuiops.store.frames import BOX

if TYPE_CHECKING:
    from tuiops.workspace import Workspace


def connected_components(
    edges: pl.DataFrame,
    nodes: pl.Series | None = None,
    *,
    src: str = "u",
    dst: str = "v",
    reporter: Reporter | None = None,
) -> pl.DataFrame:
    """Connected components of an undirected graph: a frame ``node``, ``component``.

    ``component`` is the smallest node id of the component. ``nodes`` adds isolated
    nodes. Each round takes, for every node, the smallest label among itself and its
    neighbours, then jumps each label to its own label; it stops when nothing changes.
    """
    e = edges.select(pl.col(src).alias("u"), pl.col(dst).alias("v"))
    dtype = e.schema["u"] if nodes is None else nodes.dtype
    e = (
        pl.concat([e, e.select(pl.col("v").alias("u"), pl.col("u").alias("v"))])
        .filter(pl.col("u") != pl.col("v"))
        .unique()
        .cast(dtype)
    )
    all_nodes = [e["u"]]
    if nodes is not None:
        all_nodes.append(nodes.cast(dtype))
    labels = (
        pl.concat(all_nodes).unique().sort().to_frame("node").with_columns(pl.col("node").alias("component"))
    )
    while e.height:
        if reporter is not None:
            reporter.check()
        low = (
            e.join(labels, left_on="u", right_on="node")
            .group_by("v")
            .agg(pl.col("component").min().alias("_m"))
        )
        new = (
            labels.join(low, left_on="node", right_on="v", how="left", maintain_order="left")
            .with_columns(pl.min_horizontal("component", "_m").alias("component"))
            .drop("_m")
        )
        jump = new.select(pl.col("node").alias("component"), pl.col("component").alias("_j"))
        new = (
            new.join(jump, on="component", how="left", maintain_order="left")
            .with_columns(pl.min_horizontal("component", "_j").alias("component"))
            .drop("_j")
        )
        changed = (new["component"] != labels["component"]).sum()
        labels = new
        if not changed:
            break
    return labels


def part_edges(parts: pl.DataFrame, margin: float) -> pl.DataFrame:
    """Links between part detections of one image (see the module docstring).

    ``parts``: _p (row position), item_id, part (0 = top), x1, y1, x2, y2. Returns u, v positions.
    """
    grown = parts.with_columns(
        (pl.col("y2") - pl.col("y1")).clip(lower_bound=0.0).mul(margin).alias("_m")
    ).select(
        "_p",
        "item_id",
        "part",
        (pl.col("x1") - pl.col("_m")).alias("gx1"),
        (pl.col("y1") - pl.col("_m")).alias("gy1"),
        (pl.col("x2") + pl.col("_m")).alias("gx2"),
        (pl.col("y2") + pl.col("_m")).alias("gy2"),
        geo.center_y().alias("cy"),
    )
    cand = sweep_pairs(grown, "gx1", "gx2", group="item_id", index="_p")
    if cand.height == 0:
        return pl.DataFrame(schema={"u": pl.Int64, "v": pl.Int64})
    cols: dict[str, pl.Series] = {"u": cand["i"], "v": cand["j"]}
    for c in ("part", "gx1", "gy1", "gx2", "gy2", "cy"):
        s = grown[c]
        cols[c] = s.gather(cand["i"])
        cols[f"{c}_b"] = s.gather(cand["j"])
    pairs = pl.DataFrame(cols)
    touch = (pl.max_horizontal("gx1", "gx1_b") <= pl.min_horizontal("gx2", "gx2_b")) & (
        pl.max_horizontal("gy1", "gy1_b") <= pl.min_horizontal("gy2", "gy2_b")
    )
    ordered = (
        pl.when(pl.col("part") < pl.col("part_b"))
        .then(pl.col("cy") < pl.col("cy_b"))
        .otherwise(pl.col("cy_b") < pl.col("cy"))
    )
    return pairs.filter((pl.col("part") != pl.col("part_b")) & touch & ordered).select("u", "v")


def join_frame(
    dets: pl.DataFrame, part_ids: Sequence[int], margin: float = 0.05
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Join the part detections of a frame (id, item_id, class_id, x1…y2, score).

    Returns ``(objects, members)``: objects with a running ``obj`` number, item_id, the
    union box, members, parts_mask, score, min_score, member_ids (JSON); members with
    obj, det_id, part. Objects are ordered by image, then top to bottom, then left to right.
    """
    rank = pl.DataFrame(
        {"class_id": list(part_ids), "part": list(range(len(part_ids)))},
        schema={"class_id": pl.Int32, "part": pl.Int64},
    )
    parts = (
        dets.with_columns(pl.col("class_id").cast(pl.Int32))
        .join(rank, on="class_id", how="inner")
        .sort("item_id", "id")
        .with_row_index("_p")
        .with_columns(pl.col("_p").cast(pl.Int64))
    )
    edges = part_edges(parts, margin)
    comps = connected_components(edges, parts["_p"])
    tagged = parts.join(comps, left_on="_p", right_on="node", how="left")
    objects = (
        tagged.group_by("component")
        .agg(
            pl.col("item_id").first(),
            pl.col("x1").min(),
            pl.col("y1").min(),
            pl.col("x2").max(),
            pl.col("y2").max(),
            pl.len().cast(pl.Int64).alias("members"),
            (pl.lit(2.0) ** pl.col("part")).cast(pl.Int64).unique().sum().alias("parts_mask"),
            pl.col("score").mean().alias("score"),
            pl.col("score").min().alias("min_score"),
            pl.format("[{}]", pl.col("id").sort().cast(pl.String).str.join(",")).alias("member_ids"),
        )
        .sort("item_id", "y1", "x1", "component")
        .with_row_index("obj")
        .with_columns(pl.col("obj").cast(pl.Int64))
    )
    members = tagged.join(objects.select("component", "obj"), on="component").select(
        "obj", pl.col("id").alias("det_id"), "part"
    )
    return objects.drop("component"), members.sort("obj", "det_id")


@dataclass
class JoinResult:
    """What :func:`join_parts` stored."""

    name: str
    run: str
    parts: list[str]
    margin: float
    detections: int
    objects: int
    joined: int
    by_members: dict[int, int] = field(default_factory=dict)
    by_parts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "run": self.run,
            "parts": self.parts,
            "margin": self.margin,
            "part_detections": self.detections,
            "objects": self.objects,
            "joined": self.joined,
            "by_members": {str(k): v for k, v in self.by_members.items()},
            "by_parts": self.by_parts,
        }


def parse_parts(ws: Workspace, parts: Sequence[str] | str) -> tuple[list[str], list[int]]:
    """Part class names (a list or ``a,b,c``) → names and class ids, checked against the class map."""
    names = [p.strip() for p in (parts.split(",") if isinstance(parts, str) else parts) if p.strip()]
    if len(names) < 2:
        raise UsageError(f"give at least two part classes, top to bottom (got {', '.join(names) or 'none'})")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"part classes repeat: {', '.join(dup)}")
    unknown = [n for n in names if n not in ws.classes]
    if unknown:
        raise NotFoundError(
            f"no class named {', '.join(repr(u) for u in unknown)} in the class map",
            hint=f"known classes: {', '.join(ws.classes) or 'none'}",
        )
    return names, [ws.classes.index(n) for n in names]


def join_parts(
    ws: Workspace,
    run: str,
    parts: Sequence[str] | str,
    into: str,
    *,
    margin: float = 0.05,
    replace: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> JoinResult:
    """Join the part detections of ``run`` into objects stored as the join ``into``."""
    if not 0.0 <= margin <= 10.0:
        raise UsageError(f"margin is a fraction of the box height; {margin} is outside 0…10")
    if not into.strip():
        raise UsageError("the join needs a name (--into)")
    names, ids = parse_parts(ws, parts)
    store = ws.store
    rid = store.run_id(run)
    old = store.one("SELECT id FROM joins WHERE name = ?", (into,))
    if old is not None and not replace:
        raise ConflictError(
            f"a join named {into!r} exists already",
            hint="choose another name, or pass --replace to replace it",
        )
    reporter = Reporter("join", progress, cancel)
    params = {"run": run, "parts": names, "margin": margin, "into": into}
    with job(store, "join", params) as j:
        dets = store.read_detections(run)
        reporter.update(0, "linking parts", total=dets.height)
        objects, members = join_frame(dets, ids, margin)
        reporter.check()
        with store.bulk() as tx:
            if old is not None:
                tx.execute("DELETE FROM joins WHERE id = ?", (int(old),))
            join_id = int(
                tx.one(
                    "INSERT INTO joins(name, run_id, parts, margin, created, params) VALUES (?, ?, ?, ?, ?, ?) "
                    "RETURNING id",
                    (into, rid, json.dumps(names), margin, utcnow(), json.dumps(params)),
                )
            )
            base = int(tx.one("SELECT COALESCE(MAX(id), 0) FROM joined_objects") or 0) + 1
            tx.ingest(
                "joined_objects",
                objects.select(
                    (pl.col("obj") + base).alias("id"),
                    pl.lit(join_id, pl.Int64).alias("join_id"),
                    "item_id",
                    "x1",
                    "y1",
                    "x2",
                    "y2",
                    "members",
                    "parts_mask",
                    "score",
                    "min_score",
                    "member_ids",
                ),
            )
            tx.ingest(
                "joined_members",
                members.select(
                    pl.lit(join_id, pl.Int64).alias("join_id"),
                    "det_id",
                    (pl.col("obj") + base).alias("object_id"),
                    "part",
                ),
            )
        by_members = dict(objects.group_by("members").len().sort("members").iter_rows())
        by_mask = objects.group_by("parts_mask").len().sort("parts_mask")
        by_parts = {
            "+".join(n for k, n in enumerate(names) if mask & (1 << k)): int(count)
            for mask, count in by_mask.iter_rows()
        }
        result = JoinResult(
            name=into,
            run=run,
            parts=names,
            margin=margin,
            detections=members.height,
            objects=objects.height,
            joined=int((objects["members"] > 1).sum()),
            by_members={int(k): int(v) for k, v in by_members.items()},
            by_parts=by_parts,
        )
        j.result = result.to_dict()
        reporter.update(dets.height, "done", force=True)
    return result


def read_join(ws: Workspace, name: str) -> pl.DataFrame:
    """The objects of a stored join: id, key, item_id, x1…y2, members, parts_mask, score, min_score, member_ids."""
    jid = ws.store.one("SELECT id FROM joins WHERE name = ?", (name,))
    if jid is None:
        known = [r[0] for r in ws.store.execute("SELECT name FROM joins ORDER BY name")]
        raise NotFoundError(f"no join named {name!r}", hint=f"known joins: {', '.join(known) or 'none'}")
    return ws.store.read_frame(
        "SELECT o.id, i.key, o.item_id, o.x1, o.y1, o.x2, o.y2, o.members, o.parts_mask, o.score, "
        "o.min_score, o.member_ids FROM joined_objects o JOIN items i ON i.id = o.item_id "
        "WHERE o.join_id = ? ORDER BY o.id",
        (int(jid),),
        {
            "id": pl.Int64,
            "key": pl.String,
            "item_id": pl.Int64,
            **dict.fromkeys(BOX, pl.Float64),
            "members": pl.Int64,
            "parts_mask": pl.Int64,
            "score": pl.Float64,
            "min_score": pl.Float64,
            "member_ids": pl.String,
        },
    )
