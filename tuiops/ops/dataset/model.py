"""A dataset build's names and results: the files it writes, its checks and fixes, what it found."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "tuiops_dataset.json"
DATA_YAML = "data.yaml"
FIXES = ("duplicates", "outside", "leaks", "empty")
LINK_MODES = ("symlink", "hardlink", "copy")
SPLITS = ("train", "val")

#: Image formats (by file extension) ultralytics trains on without extra packages.
TRAIN_FORMATS = frozenset({"bmp", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"})

#: How many examples a check reports.
EXAMPLES = 10


# -- results ---------------------------------------------------------------------------------------
@dataclass
class CheckReport:
    """One check: how many it found, whether it was fixed, a few examples."""

    found: int = 0
    images: int = 0
    fixed: bool = False
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DatasetResult:
    """What a dataset build wrote and found."""

    name: str
    root: str
    label_set: str
    data_yaml: str
    images: int = 0
    train: int = 0
    val: int = 0
    boxes: int = 0
    excluded: int = 0
    new_images: int = 0
    kept_split: int = 0
    moved_to_train: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_examples: list[dict[str, Any]] = field(default_factory=list)
    checks: dict[str, CheckReport] = field(default_factory=dict)
    per_class: dict[str, dict[str, int]] = field(default_factory=dict)
    #: boxes per attribute of their source (VOC flags and tags, COCO crowds and segmentations)
    #: that YOLO label files cannot hold
    not_carried: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DatasetInfo:
    """A built dataset as the store knows it."""

    id: int
    name: str
    root: Path
    label_set: str
    params: dict[str, Any]
    built: str | None

    @property
    def data_yaml(self) -> Path:
        return self.root / DATA_YAML
