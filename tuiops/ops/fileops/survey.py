"""The file-system survey: what the planner sees on disk, folder by folder."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tuiops.ops.fileops.model import esc, unesc

if TYPE_CHECKING:
    import polars as pl


@dataclass
class Survey:
    """What the planner saw on disk: per folder, the entries it asked about.

    A folder is listed once when it is small or most of it is asked for; otherwise the
    names asked for are looked up one by one (so a few files of a huge folder cost a few
    ``lstat`` calls, and most of a folder costs one listing).
    """

    entries: dict[str, dict[str, str]] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)
    rows: tuple[list[str], list[str], list[str]] = field(default_factory=lambda: ([], [], []))

    def _found(self, folder: str, name: str, kind: str) -> None:
        have = self.entries.setdefault(folder, {})
        if name not in have:
            have[name] = kind
            self.rows[0].append(folder)
            self.rows[1].append(name)
            self.rows[2].append(kind)

    def look_frame(self, frame: pl.DataFrame) -> None:
        """Look up the ``dir``/``name`` pairs of a frame (optional ``root``: for symlink checks)."""
        import polars as pl

        if frame.height == 0:
            return
        has_root = "root" in frame.columns
        g = frame.group_by("dir").agg(
            pl.len().alias("n"),
            (pl.col("root").first() if has_root else pl.lit(None, pl.String)).alias("root"),
        )
        stat_dirs: dict[str, str | None] = {}
        for folder, n, root in g.iter_rows():
            if folder in self.listed:
                continue
            fb = unesc(folder)
            try:
                est = os.stat(fb).st_size // 24
            except OSError:
                self.listed.add(folder)
                self.entries.setdefault(folder, {})
                continue
            if n * 8 >= est or est < 2048:
                self._list(folder, fb, root)
            else:
                stat_dirs[folder] = root
        if stat_dirs:
            sub = frame.filter(pl.col("dir").is_in(list(stat_dirs))).select("dir", "name").unique()
            for folder, name in sub.iter_rows():
                if name in self.entries.get(folder, {}):
                    continue
                path = os.path.join(unesc(folder), unesc(name))
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                self._found(folder, name, _kind_stat(st, path, stat_dirs[folder]))

    def _list(self, folder: str, fb: bytes, root: str | None) -> None:
        self.listed.add(folder)
        have = self.entries.setdefault(folder, {})
        dirs, names, kinds = self.rows
        try:
            with os.scandir(fb) as it:
                for entry in it:
                    name = esc(entry.name)
                    if name in have:
                        continue
                    # a regular file is told from the listing alone; anything else is looked at
                    kind = "file" if entry.is_file(follow_symlinks=False) else _kind(entry, fb, root)
                    have[name] = kind
                    dirs.append(folder)
                    names.append(name)
                    kinds.append(kind)
        except OSError:
            pass

    def look(self, wanted: dict[str, set[str]]) -> None:
        """Look up a few ``{folder: names}`` (for new names while renaming)."""
        for folder, names in wanted.items():
            if folder in self.listed:
                continue
            for n in names:
                if n in self.entries.get(folder, {}):
                    continue
                path = os.path.join(unesc(folder), unesc(n))
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                self._found(folder, n, _kind_stat(st, path, None))

    def kind(self, folder: str, name: str) -> str | None:
        return self.entries.get(folder, {}).get(name)

    def frame(self) -> pl.DataFrame:
        """Everything seen so far: ``_d``, ``_n``, ``_kind``."""
        import polars as pl

        return pl.DataFrame(
            {"_d": self.rows[0], "_n": self.rows[1], "_kind": self.rows[2]},
            schema={"_d": pl.String, "_n": pl.String, "_kind": pl.String},
        )


def _kind(entry: os.DirEntry[bytes], folder: bytes, root: str | None) -> str:
    try:
        if entry.is_symlink():
            return _symlink_kind(os.path.join(folder, entry.name), root)
        if entry.is_dir(follow_symlinks=False):
            return "dir"
        return "file" if entry.is_file(follow_symlinks=False) else "other"
    except OSError:
        return "other"


def _kind_stat(st: os.stat_result, path: bytes, root: str | None) -> str:
    import stat as st_mod

    if st_mod.S_ISLNK(st.st_mode):
        return _symlink_kind(path, root)
    if st_mod.S_ISDIR(st.st_mode):
        return "dir"
    return "file" if st_mod.S_ISREG(st.st_mode) else "other"


def _symlink_kind(path: bytes, root: str | None) -> str:
    try:
        real = os.path.realpath(path)
        if not os.path.isfile(real):
            return "symlink_broken"
    except OSError:
        return "symlink_broken"
    if root is None:
        return "symlink_in"
    rb = os.path.realpath(unesc(root))
    return "symlink_in" if real == rb or real.startswith(rb + b"/") else "symlink_out"


def nearest_existing(folder: bytes) -> bytes:
    p = folder
    while not os.path.exists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return p


def is_writable(folder: bytes) -> bool:
    p = nearest_existing(folder)
    return os.path.isdir(p) and os.access(p, os.W_OK | os.X_OK)
