"""What label import and export know and answer: formats, id and outside choices, tolerances, results."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuiops.errors import InputError, UsageError

if TYPE_CHECKING:
    pass


DET_FORMATS = ("yolo", "coco")
#: COCO export ids: the imported file's (``source``) or tuiops' numbering (``tuiops``, alias ``item``).
ID_CHOICES = ("source", "tuiops", "item")
#: What `dets import` does with a detection outside its image: keep it as written, clip it, drop it.
OUTSIDE = ("keep", "clip", "drop")


# -- options ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """How far a box may lie outside its image and still be accepted (as written).

    The allowance on each side is the larger of ``pct`` percent of that side and ``px``
    pixels. The default, 0.5 % or 2 px, absorbs rounding in normalised coordinates.
    """

    pct: float = 0.5
    px: float = 2.0

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """Parse ``"0.5%"``, ``"2px"``, ``"2"`` (pixels) or both, ``"0.5%,2px"``."""
        pct = px = 0.0
        parts = [p.strip().lower() for p in text.replace(" ", "").split(",") if p.strip()]
        if not parts:
            raise UsageError(f"invalid tolerance {text!r}", hint="use e.g. 0.5%, 2px or 0.5%,2px")
        for part in parts:
            m = re.fullmatch(r"([0-9]*\.?[0-9]+)(%|px)?", part)
            if m is None:
                raise UsageError(f"invalid tolerance {text!r}", hint="use e.g. 0.5%, 2px or 0.5%,2px")
            value = float(m.group(1))
            if m.group(2) == "%":
                pct = value
            else:
                px = value
        return cls(pct=pct, px=px)

    def __str__(self) -> str:
        return f"{self.pct:g}%,{self.px:g}px"


# -- results ----------------------------------------------------------------------------------------
@dataclass
class ImportResult:
    """What an import found and stored."""

    kind: str
    name: str
    fmt: str
    source: str
    found: int = 0
    images: int = 0
    boxes: int = 0
    files_skipped: int = 0
    boxes_skipped: int = 0
    boxes_outside: int = 0
    boxes_clipped: int = 0
    outside: str = "keep"
    problems: Any = None
    added_classes: list[str] = field(default_factory=list)
    classes_adopted: bool = False
    images_without_boxes: int = 0
    names_file: str | None = None
    strict: bool = False
    imported: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def problem_count(self) -> int:
        return 0 if self.problems is None else int(self.problems.height)

    def problem_lines(self, limit: int | None = None) -> list[str]:
        """Problems as ``file:line: message`` lines (``file: message`` without a line)."""
        if self.problems is None or self.problems.height == 0:
            return []
        rows = self.problems if limit is None else self.problems.head(limit)
        return [
            f"{f}:{ln}: {m}" if ln is not None else f"{f}: {m}"
            for f, ln, m in rows.select("file", "line", "message").iter_rows()
        ]

    def to_dict(self, max_problems: int | None = None) -> dict[str, Any]:
        """A JSON-ready summary (all problems unless ``max_problems``)."""
        rows = self.problems
        if rows is not None and max_problems is not None:
            rows = rows.head(max_problems)
        return {
            "kind": self.kind,
            "set" if self.kind == "labels" else "run": self.name,
            "format": self.fmt,
            "source": self.source,
            "imported": self.imported,
            "strict": self.strict,
            "files": self.found,
            "files_skipped": self.files_skipped,
            "images": self.images,
            "boxes": self.boxes,
            "boxes_skipped": self.boxes_skipped,
            "images_without_boxes": self.images_without_boxes,
            **(
                {
                    "outside": self.outside,
                    "boxes_outside": self.boxes_outside,
                    "boxes_clipped": self.boxes_clipped,
                }
                if self.kind == "dets"
                else {}
            ),
            "problem_count": self.problem_count,
            "problems": [] if rows is None or not len(rows) else rows.to_dicts(),
            "added_classes": self.added_classes,
            "classes_adopted": self.classes_adopted,
            "names_file": self.names_file,
            "warnings": self.warnings,
        }


class ImportRejected(InputError):
    """An import stored nothing because of its problems (strict, or nothing was left).

    ``result`` lists the problems.
    """

    def __init__(self, result: ImportResult, message: str | None = None, hint: str | None = None) -> None:
        what = "label set" if result.kind == "labels" else "detection run"
        super().__init__(
            message
            or (
                f"{result.problem_count} problem(s) in {result.source}; nothing imported "
                f"(--strict rejects the whole {what} {result.name!r})"
            ),
            hint=hint or "fix the files, or import without --strict to skip the bad lines",
        )
        self.result = result


@dataclass
class ExportResult:
    """What an export wrote."""

    kind: str
    name: str
    fmt: str
    target: str
    files: int = 0
    images: int = 0
    boxes: int = 0
    written: list[str] = field(default_factory=list)
    #: boxes per attribute of their source (VOC flags and tags, COCO crowds and segmentations)
    #: that the format cannot hold, so the files written do not state it
    not_carried: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "set" if self.kind == "labels" else "run": self.name,
            "format": self.fmt,
            "target": self.target,
            "files": self.files,
            "images": self.images,
            "boxes": self.boxes,
            "not_carried": self.not_carried,
            "written": self.written[:20],
        }
