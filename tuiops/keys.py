"""Image keys: the bridge between every incarnation of one image.

A key is ``BOORU_FID`` parsed from a file name's stem by a configurable regular
expression with the named groups ``booru`` and ``fid``. A file whose name has no
key is still indexed: its key is its stem and it is counted as *unkeyed*.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from tuiops.errors import WorkspaceError

#: Accepts ``danbooru_4512345.jpg``, ``gelbooru-123.png``, ``yandere_77_extra.jpeg``.
DEFAULT_KEY_PATTERN = r"^(?P<booru>[A-Za-z][A-Za-z0-9]*)[_-](?P<fid>[0-9]+)(?:[_\-. ].*)?$"


@dataclass(frozen=True, slots=True)
class ImageKey:
    key: str
    booru: str | None
    fid: int | None

    @property
    def keyed(self) -> bool:
        return self.booru is not None


def compile_key_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a key pattern, checking that it has the ``booru`` and ``fid`` groups."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise WorkspaceError(
            f"invalid image-key pattern {pattern!r}: {exc}",
            hint="fix [keys] pattern in tuiops.toml",
        ) from exc
    missing = {"booru", "fid"} - set(rx.groupindex)
    if missing:
        raise WorkspaceError(
            f"image-key pattern {pattern!r} lacks the named group(s) {', '.join(sorted(missing))}",
            hint="use (?P<booru>…) and (?P<fid>…) in [keys] pattern",
        )
    return rx


def stem_of(name: str) -> str:
    """The file name without folders and without its last extension."""
    base = os.path.basename(name)
    stem, _ext = os.path.splitext(base)
    return stem or base


def parse_key(name: str, rx: re.Pattern[str]) -> ImageKey:
    """Parse the key of a file name (with or without folders and extension)."""
    stem = stem_of(name)
    m = rx.match(stem)
    if m is None:
        return ImageKey(stem, None, None)
    booru = m.group("booru").lower()
    fid_text = m.group("fid")
    try:
        fid: int | None = int(fid_text)
    except (TypeError, ValueError):
        fid = None
    return ImageKey(f"{booru}_{fid_text}", booru, fid)
