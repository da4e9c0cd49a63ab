"""A mix's output as one reproducible gzip tarball."""

from __future__ import annotations

import contextlib
import datetime as _dt
import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

from tuiops.fsutil import (
    create_temp_file,
    disk_error,
    sha256_file,
)


def tar_epoch(created: Any) -> int:
    """A build's creation time (ISO 8601) as seconds since the epoch; 0 when it is not one."""
    try:
        return int(_dt.datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def write_tarball(src: Path, tar_path: Path, *, arcroot: str, mtime: int = 0) -> tuple[str, int, bool]:
    """Tar ``src`` as ``arcroot/…`` into ``tar_path`` (gzip), reproducibly and atomically.

    Members are sorted, owned by 0:0 with no names, mode 644 (755 for folders) and time
    ``mtime``; the gzip header has no name and time 0. When ``tar_path`` already holds
    the same bytes it is kept as it is (so a push of it can resume). Returns the SHA-256,
    the size and whether the existing file was kept.
    """
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = create_temp_file(tar_path.parent, f".{tar_path.name[:80]}.", ".part")
        entries: list[tuple[str, Path]] = []
        for folder, dirs, files in os.walk(src):
            dirs.sort()
            rel = Path(folder).relative_to(src).as_posix()
            base = arcroot if rel == "." else f"{arcroot}/{rel}"
            entries.append((base, Path(folder)))
            entries.extend((f"{base}/{f}", Path(folder) / f) for f in sorted(files))
        entries.sort(key=lambda e: e[0])
        digest = hashlib.sha256()

        class _Hashing(io.RawIOBase):
            def __init__(self, fh: Any) -> None:
                self.fh = fh

            def writable(self) -> bool:
                return True

            def write(self, b: Any) -> int:
                digest.update(b)
                return self.fh.write(b)

        with os.fdopen(fd, "wb") as raw:
            sink = _Hashing(raw)
            with (
                gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=6) as gz,
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf,
            ):
                for name, path in entries:
                    ti = tarfile.TarInfo(name)
                    ti.uid = ti.gid = 0
                    ti.uname = ti.gname = ""
                    ti.mtime = mtime
                    if path.is_dir():
                        ti.type = tarfile.DIRTYPE
                        ti.mode = 0o755
                        tf.addfile(ti)
                    else:
                        ti.mode = 0o644
                        ti.size = path.stat().st_size
                        with open(path, "rb") as fh:
                            tf.addfile(ti, fh)
            raw.flush()
            os.fsync(raw.fileno())
            size = raw.tell()
        sha = digest.hexdigest()
        if tar_path.is_file() and tar_path.stat().st_size == size and sha256_file(tar_path) == sha:
            return sha, size, True
        os.replace(tmp, tar_path)
        tmp = None
        return sha, size, False
    except OSError as exc:
        raise disk_error(tar_path, exc) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
