"""The store and the disk agree after file operations meet a pool's real life: stale
records, scans running beside a job, files that cannot be decoded, jobs killed while
planning."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import draw_image
from tests.test_fileops_support import files_rows, scan_pool, tree
from tuiops.ops import fileops as fo
from tuiops.ops.select import SelectionSpec


def present_rows(ws) -> set[str]:  # type: ignore[no-untyped-def]
    """pool/relpath of every record the store holds as a file on disk."""
    return {
        k for k, (status, _size) in files_rows(ws).items() if status not in ("missing", "moved", "trashed")
    }


def disk_files(root: Path, pool: str = "p") -> set[str]:
    return {f"{pool}/{rel}" for rel in tree(root)}


def test_undo_of_a_move_replaces_a_stale_record_at_the_old_place(ws, tmp_path):
    root = tmp_path / "pool"
    root.mkdir()
    draw_image(root / "danbooru_100000.jpg", (32, 24), seed=1)
    draw_image(root / "danbooru_100003.jpg", (32, 24), seed=3)
    scan_pool(ws, root)
    before = tree(root)
    plan, res = fo.move_files(ws, SelectionSpec(where="fid = 100000"), root / "sub", layout="flat")
    assert res is not None and res.status == "done"
    # another file takes the old name, is scanned, and is deleted again: its record stays, missing
    shutil.copy(root / "danbooru_100003.jpg", root / "danbooru_100000.jpg")
    scan_pool(ws, root)
    (root / "danbooru_100000.jpg").unlink()
    scan_pool(ws, root)
    assert files_rows(ws)["p/danbooru_100000.jpg"][0] == "missing"
    u = fo.undo_job(ws, plan.job_id)
    assert u.status == "undone"
    assert tree(root) == before
    assert present_rows(ws) == disk_files(root)
    assert files_rows(ws)["p/danbooru_100000.jpg"][0] == "ok"
