"""Shared helpers of the file-operation tests (no tests here): pools of drawn images with labels."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import CLASSES, draw_image


def make_pool(root: Path, n: int = 6, *, sub_every: int = 2, labels: bool = True, size=(32, 24)) -> Path:
    """``n`` drawn JPEGs named danbooru_I.jpg (every other one in sub/), each with a YOLO txt."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        folder = root / "sub" if sub_every and i % sub_every else root
        p = draw_image(folder / f"danbooru_{i}.jpg", size, seed=i)
        if labels:
            p.with_suffix(".txt").write_text(f"{i % len(CLASSES)} 0.5 0.5 0.25 0.25\n", encoding="utf-8")
    if labels:
        (root / "classes.txt").write_text("".join(f"{c}\n" for c in CLASSES), encoding="utf-8")
    return root


def scan_pool(ws, root: Path, name: str = "p"):  # type: ignore[no-untyped-def]
    from tuiops.ops.scan import scan

    return scan(ws, root, name=name, workers=None)


def tree(root: Path) -> dict[str, str]:
    """relative path → sha256 of every file under ``root`` (symlinks as 'link:TARGET')."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    rb = os.fsencode(root)
    for dp, dns, fns in os.walk(rb):
        dns[:] = [d for d in dns if d != b".trash"]
        for fn in fns:
            p = os.path.join(dp, fn)
            rel = os.path.relpath(p, rb).decode("utf-8", "backslashreplace")
            if os.path.islink(p):
                out[rel] = "link:" + os.fsdecode(os.readlink(p))
            else:
                with open(p, "rb") as fh:
                    out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


def files_rows(ws) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    """pool/relpath → (status, size) of every files record."""
    rows = ws.store.execute(
        "SELECT p.name, f.relpath, f.status, f.size FROM files f JOIN pools p ON p.id = f.pool_id"
    ).fetchall()
    return {f"{p}/{r}": (s, z) for p, r, s, z in rows}


def can_mount() -> bool:
    return os.geteuid() == 0 and os.path.exists("/proc/mounts")


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "1m", ro: bool = False) -> Iterator[Path]:
    """A small tmpfs mounted at ``path`` for the test (root only)."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if ro else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def mount_works(tmp: Path) -> bool:
    if not can_mount():
        return False
    probe = tmp / ".mount-probe"
    probe.mkdir(exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True)
    if r.returncode != 0:
        return False
    subprocess.run(["umount", "-l", str(probe)], capture_output=True)
    return True
