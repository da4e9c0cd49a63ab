"""What a match knows: its categories, limits and object ids, its parameters checked, its summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuiops.errors import UsageError

if TYPE_CHECKING:
    import polars as pl


#: Object categories, in report order; their codes are the positions.
CATEGORIES = ("tp", "loc", "cls", "dup", "fp", "fn")
TP, LOC, CLS, DUP, FP, FN = range(6)

#: ``worst_rank`` is stored (and indexed) for this many rows per split (and category).
TOP_RANKED = 10_000
#: Images compared per chunk (bounds memory; the next chunk is read while one is matched).
CHUNK_ITEMS = 250_000

#: Object ids: ``(match_id << OBJ_MATCH_SHIFT) | (item_id << OBJ_ITEM_SHIFT) | ord``.
OBJ_MATCH_SHIFT = 44
OBJ_ITEM_SHIFT = 13
DET_ORD_BASE = 4096


# -- results ------------------------------------------------------------------------------------
@dataclass
class MatchSummary:
    """What `match` stored: counts per split and category, the worst images, timings."""

    name: str
    match_id: int
    set_name: str
    run_name: str
    iou: float
    low: float
    conf: float
    images: int
    set_only: int
    run_only: int
    splits: dict[str, dict[str, Any]]
    #: Which images were compared: ``processed`` (the set's that the run processed) or ``all``.
    images_from: str = "processed"
    worst: pl.DataFrame | None = None
    split_overlap: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "set": self.set_name,
            "run": self.run_name,
            "iou": self.iou,
            "low": self.low,
            "conf": self.conf,
            "images": self.images,
            "images_from": self.images_from,
            "set_only_images": self.set_only,
            "run_only_images": self.run_only,
            "split_overlap": self.split_overlap,
            "splits": self.splits,
            "worst": [] if self.worst is None else self.worst.to_dicts(),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def check_params(iou: float, low: float, conf: float) -> None:
    if not (0.0 < iou <= 1.0):
        raise UsageError(f"--iou must be in (0, 1], got {iou}")
    if not (0.0 < low <= iou):
        raise UsageError(f"--low must be in (0, iou], got {low} with iou {iou}")
    if not (0.0 <= conf <= 1.0):
        raise UsageError(f"--conf must be in [0, 1], got {conf}")


#: Which images of a label set `match` and `eval` compare (the first is the default).
IMAGE_CHOICES = ("processed", "all")


def check_images_choice(images: str) -> None:
    """Refuse an ``images`` choice that is not one of :data:`IMAGE_CHOICES`."""
    if images not in IMAGE_CHOICES:
        raise UsageError(f"--images must be one of {', '.join(IMAGE_CHOICES)}, not {images!r}")
