"""The store and the disk agree after file operations meet a pool's real life: stale
records, scans running beside a job, files that cannot be decoded, jobs killed while
planning."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from tests.conftest import draw_image
from tests.test_fileops_support import files_rows, scan_pool, tree
from tuiops.ops import fileops as fo
from tuiops.ops.base import CancelToken
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


def test_an_image_that_cannot_be_decoded_fails_its_own_action_only(ws, tmp_path, capsys):
    """A decompression bomb fails its own conversion with a named reason; the job goes on,
    ``ops resume`` does not stop on it either, and ``ops show`` lists it."""
    from tests.test_scan import png_header_only
    from tuiops.cli import run

    root = tmp_path / "pool"
    root.mkdir()
    for i in range(3):
        draw_image(root / f"danbooru_{i}.png", (40, 30), seed=i)
    png_header_only(root / "danbooru_9.png", 20_000, 20_000)  # over Pillow's error limit
    scan_pool(ws, root)
    conv = fo.ConvertOptions(format="jpeg", quality=80)
    plan, res = fo.convert_files(ws, SelectionSpec(where="1"), tmp_path / "out", conv, labels="none")
    assert res is not None and res.status == "failed" and res.failed == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"danbooru_{i}.jpg" for i in range(3)]
    again = fo.run_job(ws, plan.job_id)
    assert again.status == "failed" and again.failed == 1
    shown = fo.show_job(ws, plan.job_id, actions="errors")
    (err,) = [a["error"] for a in shown["actions"]]
    assert "danbooru_9.png" in err and "decompression bomb" in err
    assert run(["-w", str(ws.root), "ops", "show", str(plan.job_id), "--errors"]) == 0
    assert "decompression bomb" in capsys.readouterr().out


def test_a_job_killed_while_planning_is_planned_again_by_resume(ws, tmp_path, capsys):
    import signal

    from tests.test_fileops_kill import cli
    from tests.test_fileops_support import make_pool
    from tuiops.cli import run

    root = make_pool(tmp_path / "pool", 6)
    scan_pool(ws, root)
    before = tree(root)
    out = tmp_path / "out"
    rc = cli(ws.root, "ops", "copy", "--where", "1", "--to", str(out), fault="plan:1")
    assert rc == -signal.SIGKILL
    (job,) = fo.list_jobs(ws)
    assert job["status"] == "interrupted"
    assert f"`tuiops ops resume {job['id']}` plans it again" in job["error"]
    assert not out.exists() and tree(root) == before  # planning touches nothing
    assert run(["-w", str(ws.root), "ops", "list"]) == 0
    assert "plans it again" in capsys.readouterr().out
    res = fo.run_job(ws, job["id"])
    assert res.status == "done" and res.failed == 0
    assert sorted(tree(out).values()) == sorted(before.values()) and tree(root) == before
    assert fo.list_jobs(ws)[0]["status"] == "done"


class Gate(CancelToken):
    """A cancel token that holds the op at its first check until the test opens it: the
    op is then under way (inside its lock) for as long as the test needs."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = threading.Event()
        self.open = threading.Event()

    def check(self) -> None:
        if not self.reached.is_set():
            self.reached.set()
            assert self.open.wait(60), "the test never opened the gate"
        super().check()


def in_thread(fn, *args, **kwargs) -> tuple[threading.Thread, list]:  # type: ignore[no-untyped-def]
    out: list = []

    def target() -> None:
        try:
            out.append(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the test
            out.append(exc)

    t = threading.Thread(target=target)
    t.start()
    return t, out


def store_matches_disk(ws, root: Path) -> None:  # type: ignore[no-untyped-def]
    rows = files_rows(ws)
    present = {k for k, (status, _) in rows.items() if status not in ("missing", "moved", "trashed")}
    images = {f"p/{rel}" for rel in tree(root) if rel.endswith(".jpg")}
    assert present == images
    assert all(status == "ok" for k, (status, _) in rows.items() if k in present)


def moving_pool(ws, tmp_path):  # type: ignore[no-untyped-def]
    from tests.test_fileops_support import make_pool

    root = make_pool(tmp_path / "pool", 12, sub_every=0)
    scan_pool(ws, root)
    return root


def test_a_move_waits_for_no_scan_and_a_scan_for_no_move(ws, tmp_path):
    """A scan under way: a move of the same pool is refused, touching nothing; a move under
    way: a scan is refused. Afterwards the store and the disk agree."""
    from tuiops.errors import ConflictError
    from tuiops.ops.scan import scan
    from tuiops.workspace import Workspace

    root = moving_pool(ws, tmp_path)
    where = SelectionSpec(where="fid < 6")
    # a scan first (another workspace handle, as another process would have)
    other = Workspace.open(ws.root)
    gate = Gate()
    t, out = in_thread(scan, other, root, name="p", hash=True, verify=True, workers=1, cancel=gate)
    assert gate.reached.wait(60)
    with pytest.raises(ConflictError, match="is being scanned: job"):
        fo.move_files(ws, where, root / "moved")
    gate.open.set()
    t.join()
    assert not isinstance(out[0], BaseException), out
    assert not (root / "moved").exists()
    store_matches_disk(ws, root)
    # a move first
    planned = fo.plan(ws, "move", where, to=root / "moved")
    gate = Gate()
    t, out = in_thread(fo.run_job, other, planned.job_id, cancel=gate)
    assert gate.reached.wait(60)
    with pytest.raises(ConflictError, match="in use by a file operation: job"):
        scan(ws, root, name="p", hash=True, verify=True)
    gate.open.set()
    t.join()
    assert out[0].status == "done", out
    other.close()
    scan(ws, root, name="p")
    store_matches_disk(ws, root)
    assert len(list((root / "moved").glob("*.jpg"))) == 6


def test_a_scan_refuses_a_pool_with_files_of_an_interrupted_job(ws, tmp_path):
    """kill -9 in the middle of a move: a scan would record its files where they no longer
    are, so it refuses until the job is finished; then the store and the disk agree."""
    import signal

    from tests.test_fileops_kill import cli
    from tuiops.errors import ConflictError
    from tuiops.ops.scan import scan

    root = moving_pool(ws, tmp_path)
    rc = cli(ws.root, "ops", "move", "--where", "fid < 6", "--to", str(root / "moved"), fault="action:4")
    assert rc == -signal.SIGKILL
    (job,) = fo.list_jobs(ws)
    assert job["status"] == "interrupted"
    with pytest.raises(ConflictError, match=f"files of job {job['id']} .*interrupted") as err:
        scan(ws, root, name="p")
    assert f"tuiops ops resume {job['id']}" in (err.value.hint or "")
    assert fo.run_job(ws, job["id"]).status == "done"
    scan(ws, root, name="p")
    store_matches_disk(ws, root)
    assert len(list((root / "moved").glob("*.jpg"))) == 6


def test_a_move_after_a_killed_scan_and_a_rescan_agree_with_the_disk(ws, tmp_path):
    """kill -9 of a scan part-way lets go of its pool: a move runs, and the next scan
    finds the store and the disk in agreement."""
    import signal

    from tests.test_fileops_kill import cli
    from tuiops.ops.scan import scan

    root = moving_pool(ws, tmp_path)
    for i in range(12, 40):
        draw_image(root / f"danbooru_{i}.jpg", (32, 24), seed=i)
    rc = cli(ws.root, "scan", str(root), "--name", "p", "--hash", "--workers", "1", fault="probed:1")
    assert rc == -signal.SIGKILL
    _plan, res = fo.move_files(ws, SelectionSpec(where="fid < 6"), root / "moved")
    assert res is not None and res.status == "done"
    scan(ws, root, name="p")
    store_matches_disk(ws, root)
    assert len(list((root / "moved").glob("*.jpg"))) == 6
