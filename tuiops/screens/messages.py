"""Messages that workers post to the screens: small dataclasses, handled on the UI thread.

Every panel message carries the panel's ``token`` at the time the work started; a panel
drops messages whose token is stale (the user navigated elsewhere meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    from PIL import Image

    from tuiops.errors import TuiopsError
    from tuiops.ops.browse import ImageInfo, JobRow, Opened, Order, Selection, Source


@dataclass
class SourceOpened(Message):
    token: int
    source: Source
    opened: Opened
    focus: str | None
    cursor: int


@dataclass
class SourceCounted(Message):
    token: int
    total: int


@dataclass
class FixedRows(Message):
    token: int
    fixed: pl.DataFrame


@dataclass
class BaseLoaded(Message):
    token: int
    ids: np.ndarray


@dataclass
class FieldsLoaded(Message):
    token: int
    names: list[str]
    done: bool


@dataclass
class OrderReady(Message):
    token: int
    seq: int
    ids: np.ndarray
    order: Order | None


@dataclass
class MaskDone(Message):
    token: int
    selection: Selection
    before: Selection
    mode: str
    what: str


@dataclass
class PanelFailed(Message):
    token: int
    error: TuiopsError
    what: str


@dataclass
class PanelBusy(Message):
    token: int
    text: str


@dataclass
class InfoReady(Message):
    seq: int
    info: ImageInfo | None
    image: Image.Image | None
    marks: list[Any]
    error: TuiopsError | None = None


@dataclass
class TaskUpdate(Message):
    task_id: int
    changes: dict[str, Any]


@dataclass
class JobsSnapshot(Message):
    jobs: list[JobRow]


@dataclass
class FileOpPlanned(Message):
    seq: int
    preview: Any
    error: TuiopsError | None = None


@dataclass
class TaskOutput(Message):
    """Lines a task wrote (a command's stdout and stderr, as they arrive)."""

    task_id: int
    lines: list[str]


@dataclass
class Notice(Message):
    """A note for the user from a worker (the app shows it)."""

    text: str
    severity: str = "information"


@dataclass
class JobsStale(Message):
    """The store's jobs changed: read them again."""


@dataclass
class FolderMade(Message):
    spec: Any
    name: str


@dataclass
class Replan(Message):
    """Plan a file operation again (after its previous plan was discarded)."""

    request: Any
