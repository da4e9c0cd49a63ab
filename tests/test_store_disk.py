"""The store on a full file system: exit code 10 and "the disk is full", never a bare I/O error.

Each test mounts its own small tmpfs (root only; skipped elsewhere) and fills it.
"""

from __future__ import annotations

import errno
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sshd import can_mount_tmpfs, mount_tmpfs, umount
from tuiops.errors import EXIT_CODES, DiskError

README = Path(__file__).resolve().parents[1] / "README.md"


def _mount(folder: Path, size: str) -> None:
    why = can_mount_tmpfs(folder.parent)
    if why:
        pytest.skip(f"cannot fake a full disk: {why}")
    mount_tmpfs(folder, size)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of the test's own, unmounted after it."""
    folder = tmp_path / "fs"
    _mount(folder, "4m")
    try:
        yield folder
    finally:
        umount(folder)


def fill(folder: Path) -> Path:
    """Write zeros into ``folder`` until its file system is full; returns the filler file."""
    filler = folder / "filler"
    block = b"\0" * 4096
    with open(filler, "wb", buffering=0) as fh:
        while True:
            try:
                fh.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    return filler


def tuiops(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own: a fresh process opens the store from scratch."""
    return subprocess.run(["tuiops", *args], capture_output=True, text=True, timeout=120)


def test_a_full_disk_at_open_is_disk_full(small_fs):
    ws = small_fs / "ws"
    assert tuiops("init", str(ws), "--classes", "a").returncode == 0
    filler = fill(small_fs)
    for args in (["pools"], ["query", "SELECT count(*) FROM items"]):
        res = tuiops("-w", str(ws), *args)
        assert res.returncode == DiskError.exit_code == 10, res.stderr
        assert f"cannot open store {ws / 'tuiops.db'}: the disk is full" in res.stderr
        assert "I/O error" not in res.stderr and "damaged" not in res.stderr
        assert "hint: free space" in res.stderr
    filler.unlink()
    res = tuiops("-w", str(ws), "query", "SELECT name FROM classes")
    assert res.returncode == 0 and "a" in res.stdout, res.stderr


def test_a_full_disk_while_creating_the_store_is_disk_full(tmp_path):
    folder = tmp_path / "tiny"
    _mount(folder, "512k")
    try:
        res = tuiops("init", str(folder / "ws"), "--classes", "a")
        assert res.returncode == 10, res.stderr
        assert "the disk is full" in res.stderr and "migration" not in res.stderr
    finally:
        umount(folder)


def test_a_full_disk_in_a_write_transaction_is_disk_full(small_fs):
    from tuiops.workspace import Workspace

    ws = Workspace.init(small_fs / "ws", classes=["a"])
    try:
        with ws.store.transaction() as conn:
            conn.execute("CREATE TABLE filler (b BLOB)")
        with pytest.raises(DiskError, match="the disk is full"), ws.store.transaction() as conn:
            for _ in range(200):
                conn.execute("INSERT INTO filler VALUES (zeroblob(65536))")
        assert ws.store.one("SELECT count(*) FROM filler") == 0  # rolled back whole
        with ws.store.transaction() as conn:
            conn.execute("INSERT INTO filler VALUES (zeroblob(16))")
        assert ws.store.one("SELECT count(*) FROM filler") == 1
    finally:
        ws.close()


def test_readme_lists_every_exit_code():
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Exit codes") :]
    listed = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| (.+) \|$", table, re.M)}
    assert set(EXIT_CODES.values()) | {0, 2} <= set(listed)
    assert "disk full" in listed[DiskError.exit_code]
