"""Messages of refused file operations name the file each conflict is about."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_fileops_support import make_pool, scan_pool
from tuiops.errors import ConflictError
from tuiops.ops import fileops as fo
from tuiops.ops.select import SelectionSpec

ALL = SelectionSpec(where="1")


def test_a_refused_conflict_names_the_target_that_exists_and_its_source(ws, tmp_path):
    pool = make_pool(tmp_path / "pool", 3)
    scan_pool(ws, pool)
    out = tmp_path / "out"
    fo.copy_files(ws, ALL, out)
    with pytest.raises(ConflictError) as ei:
        fo.copy_files(ws, ALL, out)
    message = ei.value.message
    example = message.split("e.g. target exists: ", 1)[1]
    target, source = example.split(" (from ", 1)
    assert out in Path(target).parents and Path(target).is_file(), message
    assert pool in Path(source.rstrip(")")).parents, message


def test_a_disk_error_names_a_file_whose_name_is_not_utf8(tmp_path):
    import errno
    import os

    from tuiops.fsutil import disk_error

    name = os.fsencode(tmp_path) + b"/caf\xe9.jpg"
    err = disk_error(name, OSError(errno.ENOSPC, "No space left on device", name))
    assert err.message.startswith(f"cannot write {os.fsdecode(name)}: the disk is full"), err.message
    assert os.fsencode(err.message.split(": ", 1)[0].removeprefix("cannot write ")) == name
