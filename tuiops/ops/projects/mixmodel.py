"""The names, formats and results of a project mix and of pushing its tarball."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MIX_KIND = "tuiops-project-mix"


MANIFEST = "manifest.json"


FORMATS = ("voc", "yolo", "coco")


DUPES = ("drop", "group")


VOC_YEARS = ("2007", "2008", "2009", "2010", "2011", "2012")


SPLITS = ("train", "val")


#: Image extensions ultralytics reads without extra packages; others are re-encoded as JPEG.
YOLO_EXTS = frozenset({".bmp", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp"})


PROJECT_RX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


MAP_RX = re.compile(r"^(?:(?P<project>[^:=]+):)?(?P<old>[^=]+)=(?P<new>.+)$")


@dataclass
class ProjectBuild:
    """One project's finished build, as its ``build.json`` describes it."""

    name: str
    folder: Path
    build_dir: Path
    classes: list[str]
    info: dict[str, Any]
    build_sha256: str
    files: list[dict[str, Any]]
    declared: list[str] | None = None


@dataclass
class PushResult:
    """A tarball pushed to a host and checked there."""

    host: str
    path: str
    sha256: str
    size: int
    sent: int
    resumed: bool
    skipped: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MixResult:
    """What a mix wrote and found."""

    mix_id: int
    out: str
    root: str
    format: str
    projects: list[str]
    classes: list[str]
    images: int
    train: int
    val: int
    dropped: int
    boxes: int
    leaks: int
    moved: int
    duplicate_groups: int
    clipped: int
    manifest_sha256: str
    not_carried: dict[str, int] = field(default_factory=dict)
    tar: str | None = None
    tar_sha256: str | None = None
    tar_size: int | None = None
    tar_reused: bool = False
    push: PushResult | None = None
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    split_table: list[dict[str, Any]] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    reused: bool = False
    """The output folder held this very mix already (same parameters and builds, unchanged): kept as it was."""
    """The projects rebuilt first because their builds were stale (``build=True``)."""
    """Images per project (``class`` None) and per project and class in train and val."""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["push"] = self.push.to_dict() if self.push else None
        return d
