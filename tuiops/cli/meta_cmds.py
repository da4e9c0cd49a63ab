"""Imageboard post metadata: `tuiops meta …` (import, search, tags), built from their
descriptions in :mod:`tuiops.commands.meta`."""

from __future__ import annotations

from tuiops.cli import cli
from tuiops.cli.build import add


@cli.group("meta")
def meta_group() -> None:
    """Imageboard post metadata: tags, rating, score and md5 per BOORU+FID, searched with the
    booru syntax (1girl solo -monochrome rating:s)."""


for _name in ("import", "search", "tags"):
    add(meta_group, ("meta", _name))

add(cli, ("gather",))
