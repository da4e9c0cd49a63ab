"""Batch file operations (`tuiops.ops.fileops`): plans, conflicts and policies, labels
alongside, store records that follow, undo, and the faults a real pool has."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from tests.conftest import CLASSES, draw_image
from tests.test_fileops_support import files_rows, make_pool, mount_works, scan_pool, tmpfs, tree
from tuiops import fsutil
from tuiops.cli import run
from tuiops.errors import ConflictError, DiskError, UsageError
from tuiops.ops import fileops as fo
from tuiops.ops.fileops import actions, journal
from tuiops.ops.select import SelectionSpec

ALL = SelectionSpec(where="1")


@pytest.fixture
def pool(ws, tmp_path):
    root = make_pool(tmp_path / "pool", 6)
    scan_pool(ws, root)
    return root


def test_copy_mirror_with_labels_and_undo(ws, pool, tmp_path):
    before = tree(pool)
    plan, res = fo.copy_files(ws, ALL, tmp_path / "out", layout="mirror")
    assert res is not None and res.status == "done" and res.failed == 0
    assert plan.images == 6 and plan.by_action["copy"] == 12 and plan.by_action["write"] == 1
    out = tree(tmp_path / "out")
    for rel, digest in before.items():
        assert out[rel] == digest, rel
    assert tree(pool) == before
    state = ws.store.execute("SELECT status, done, total FROM jobs WHERE id = ?", (plan.job_id,)).fetchone()
    assert state == ("done", 15, 15)
    u = fo.undo_job(ws, plan.job_id)
    assert u.status == "undone"
    assert not (tmp_path / "out").exists()
    assert tree(pool) == before


def test_undo_keeps_a_copy_changed_since_even_with_its_time_set_back(ws, pool, tmp_path):
    """A copy records its identity (inode, size, modification and change time): a copy
    written to since the job stays, also when its modification time is put back."""
    out = tmp_path / "out"
    plan, res = fo.copy_files(ws, ALL, out, layout="mirror")
    assert res is not None and res.status == "done"
    kinds = {
        h.split(":", 1)[0]
        for (h,) in ws.store.execute(
            "SELECT hash FROM job_actions WHERE job_id = ? AND action = 'copy'", (plan.job_id,)
        )
    }
    assert kinds == {"stat"}
    edited, touched = out / "danbooru_0.txt", out / "sub" / "danbooru_1.jpg"
    st = edited.stat()
    edited.write_text("0 0.5 0.5 0.3 0.3\n", encoding="utf-8")  # same length, other content
    os.utime(edited, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.chmod(touched, 0o600)  # a change of its metadata only
    u = fo.undo_job(ws, plan.job_id)
    left = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert left == {"danbooru_0.txt", "sub/danbooru_1.jpg"}
    assert sum("changed since the job" in e["error"] for e in u.errors) == 2


def test_copy_falls_back_to_reads_where_the_kernel_cannot_copy(ws, pool, tmp_path, monkeypatch):
    import errno

    calls = []

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    _, res = fo.copy_files(ws, ALL, tmp_path / "out", layout="mirror")
    assert res is not None and res.status == "done" and calls
    assert tree(tmp_path / "out") == tree(pool)
    # a file system that answers "0 bytes copied" for a file with data
    monkeypatch.setattr(os, "copy_file_range", lambda *args, **kwargs: 0)
    _, res = fo.copy_files(ws, ALL, tmp_path / "out2", layout="mirror")
    assert res is not None and res.status == "done"
    assert tree(tmp_path / "out2") == tree(pool)


def test_link_by_descriptor_falls_back_to_proc_where_the_kernel_refuses(ws, pool, tmp_path, monkeypatch):
    """Before Linux 6.10 linking an unnamed file by its descriptor needs a capability: where
    it is refused the copies are linked through /proc, and the refusal is asked once only."""
    import ctypes
    import errno

    calls = []

    def refuse(*args):  # type: ignore[no-untyped-def]
        calls.append(args)
        ctypes.set_errno(errno.ENOENT)
        return -1

    monkeypatch.setattr(fsutil, "_FLINK", [refuse])
    _, res = fo.copy_files(ws, ALL, tmp_path / "out", layout="mirror", workers=1)
    assert res is not None and res.status == "done" and res.failed == 0
    assert tree(tmp_path / "out") == tree(pool)
    assert len(calls) == 1 and fsutil._FLINK == [None]
    # another error of the call is the copy's error, named by its target
    monkeypatch.setattr(fsutil, "_FLINK", [lambda *args: (ctypes.set_errno(errno.ENOSPC), -1)[1]])
    with pytest.raises(DiskError, match=r"cannot write .*out2/.*the disk is full"):
        fo.copy_files(ws, ALL, tmp_path / "out2", layout="mirror", workers=1)
    assert not [p for p in (tmp_path / "out2").rglob("*") if p.is_file() and p.suffix != ".txt"]


def test_empty_selection_and_unknown_keys(ws, pool, tmp_path, capsys):
    """A selection matching nothing plans nothing; keys that match no image are named, not a crash."""
    plan, res = fo.copy_files(ws, SelectionSpec(where="0"), tmp_path / "out")
    assert plan.images == 0 and res is not None and res.status == "done"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    keys = tmp_path / "keys.txt"
    keys.write_text("nokey_here\n")
    code = run(["-w", str(ws.root), "ops", "copy", "--keys", str(keys), "--to", str(tmp_path / "out2")])
    err = capsys.readouterr().err
    assert code == 6 and "unknown key: nokey_here" in err and "Traceback" not in err
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())


def test_layouts_and_name_templates(ws, pool, tmp_path):
    spec = SelectionSpec(where="1", label_set=None)
    _plan, res = fo.copy_files(
        ws, spec, tmp_path / "out", layout="{booru}/{fid:03d}", name="img_{n}{ext}", labels="none"
    )
    assert res.status == "done"
    # n counts files in selection (file id) order: the top folder first, then sub/
    order = [0, 2, 4, 1, 3, 5]
    assert sorted(tree(tmp_path / "out")) == sorted(
        f"danbooru/{f:03d}/img_{n}.jpg" for n, f in enumerate(order, 1)
    )
    with pytest.raises(UsageError, match="unknown template field"):
        fo.copy_files(ws, spec, tmp_path / "x", name="{nope}{ext}")
    with pytest.raises(UsageError, match="needs --set"):
        fo.copy_files(ws, spec, tmp_path / "x", layout="by-class")
    with pytest.raises(UsageError, match="inside the target"):
        fo.copy_files(ws, spec, tmp_path / "x", layout="../escape")


def test_conflict_policies(ws, pool, tmp_path):
    out = tmp_path / "out"
    fo.copy_files(ws, ALL, out)
    first = tree(out)
    # fail: refused before anything is touched, and recorded
    with pytest.raises(ConflictError, match="refused, nothing was touched") as ei:
        fo.copy_files(ws, ALL, out)
    assert "target exists" in str(ei.value)
    assert tree(out) == first
    refused = fo.list_jobs(ws)[0]
    assert refused["status"] == "refused"
    shown = fo.show_job(ws, refused["id"], actions="conflicts")
    assert shown["conflicts"]["target_exists"] == 12
    # dry run shows the conflicts and stops
    p, r = fo.copy_files(ws, ALL, out, dry_run=True)
    assert r is None and p.conflicts == {"target_exists": 12} and p.status == "refused"
    # skip
    p, r = fo.copy_files(ws, ALL, out, on_conflict="skip")
    assert r.done == 0 and p.skipped == 13 and tree(out) == first
    # rename: image and label get the same new stem
    p, r = fo.copy_files(ws, ALL, out, on_conflict="rename")
    t = tree(out)
    assert (
        t["danbooru_0_1.jpg"] == first["danbooru_0.jpg"] and t["danbooru_0_1.txt"] == first["danbooru_0.txt"]
    )
    assert len(t) == len(first) * 2 - 1  # classes.txt is identical: not copied twice
    fo.undo_job(ws, r.job_id)
    assert tree(out) == first
    # overwrite keeps the old files in the trash; undo brings them back
    (out / "danbooru_0.jpg").write_bytes(b"an older file")
    old = tree(out)
    p, r = fo.copy_files(ws, ALL, out, on_conflict="overwrite")
    assert r.status == "done"
    assert tree(out) == first
    assert any((ws.trash_dir / f"job-{p.job_id}" / "overwritten").iterdir())
    fo.undo_job(ws, p.job_id)
    assert tree(out) == old


def test_duplicate_targets_from_two_pools(ws, tmp_path):
    a = make_pool(tmp_path / "a", 2, sub_every=0)
    b = make_pool(tmp_path / "b", 2, sub_every=0)
    (b / "danbooru_0.jpg").write_bytes((a / "danbooru_0.jpg").read_bytes() + b"x")
    scan_pool(ws, a, "a")
    scan_pool(ws, b, "b")
    with pytest.raises(ConflictError, match="duplicate target"):
        fo.copy_files(ws, ALL, tmp_path / "out")
    _, r = fo.copy_files(ws, ALL, tmp_path / "out", on_conflict="rename")
    assert r.status == "done"
    names = set(tree(tmp_path / "out"))
    assert {"danbooru_0.jpg", "danbooru_0_1.jpg", "danbooru_0.txt", "danbooru_0_1.txt"} <= names
    _p, r = fo.copy_files(ws, ALL, tmp_path / "by-pool", layout="by-pool")
    assert set(tree(tmp_path / "by-pool")) >= {"a/danbooru_0.jpg", "b/danbooru_0.jpg"}


def test_move_store_follows_and_undo(ws, pool, tmp_path):
    before = tree(pool)
    rows_before = files_rows(ws)
    p, r = fo.move_files(ws, SelectionSpec(where="dir = 'sub'"), pool / "moved", layout="flat")
    assert r.status == "done" and p.images == 3
    after = tree(pool)
    assert "moved/danbooru_1.jpg" in after and "sub/danbooru_1.jpg" not in after
    assert after["moved/danbooru_1.jpg"] == before["sub/danbooru_1.jpg"]
    assert after["moved/danbooru_1.txt"] == before["sub/danbooru_1.txt"]
    rows = files_rows(ws)
    assert rows["p/moved/danbooru_1.jpg"][0] == "ok"
    assert "p/sub/danbooru_1.jpg" not in rows
    assert not any(k.endswith(".txt") for k in rows)  # label files are not indexed
    # moved outside every pool: the record says where it went
    p2, _r2 = fo.move_files(ws, SelectionSpec(where="name = 'danbooru_0.jpg'"), tmp_path / "away")
    st, err = ws.store.execute("SELECT status, error FROM files WHERE relpath = 'danbooru_0.jpg'").fetchone()
    assert st == "moved" and "away" in err and f"job {p2.job_id}" in err
    fo.undo_job(ws, p2.job_id)
    fo.undo_job(ws, p.job_id)
    assert tree(pool) == before
    assert files_rows(ws) == rows_before


def test_move_across_file_systems(ws, pool, tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system")
    target = Path(shm / f"tuiops-test-{os.getpid()}-{tmp_path.name}")
    try:
        before = tree(pool)
        p, r = fo.move_files(ws, ALL, target)
        assert r.status == "done"
        moved = tree(target)
        assert moved["danbooru_1.jpg"] == before["sub/danbooru_1.jpg"]
        assert not (pool / "danbooru_0.jpg").exists()
        hashes = ws.store.execute(
            "SELECT count(*) FROM job_actions WHERE job_id = ? AND action = 'move' AND hash IS NOT NULL",
            (p.job_id,),
        ).fetchone()[0]
        assert hashes == 12  # copy → verify → delete records the checksum
        fo.undo_job(ws, p.job_id)
        assert tree(pool) == before
    finally:
        shutil.rmtree(target, ignore_errors=True)


def test_rename_in_place_and_chains(ws, pool, tmp_path):
    before = tree(pool)
    p, r = fo.rename_files(ws, ALL, "{booru}-{fid:04d}{ext}")
    assert r.status == "done"
    t = tree(pool)
    assert t["danbooru-0000.jpg"] == before["danbooru_0.jpg"]
    assert t["sub/danbooru-0001.txt"] == before["sub/danbooru_1.txt"]
    assert ws.store.one("SELECT count(*) FROM files WHERE relpath = 'danbooru-0000.jpg'") == 1
    # renaming to the same name is a no-op, not a conflict
    p2, r2 = fo.rename_files(ws, ALL, "{name}")
    assert r2.done == 0 and p2.conflicts == {}
    fo.undo_job(ws, p.job_id)
    assert tree(pool) == before


def test_rename_chain_is_a_conflict_not_a_loss(ws, tmp_path):
    root = tmp_path / "pool"
    draw_image(root / "danbooru_2.jpg", seed=2)
    draw_image(root / "danbooru_3.jpg", seed=3)
    scan_pool(ws, root)
    before = tree(root)
    # n is 1 for danbooru_2 and 2 for danbooru_3: the second target is the first source
    with pytest.raises(ConflictError, match="target is source"):
        fo.rename_files(ws, ALL, "danbooru_{n}{ext}")
    assert tree(root) == before
    p, r = fo.rename_files(ws, ALL, "danbooru_{n}{ext}", on_conflict="overwrite")
    assert p.conflicts == {"target_is_source": 1} and r.done == 1
    assert set(tree(root)) == {"danbooru_1.jpg", "danbooru_3.jpg"}
    fo.undo_job(ws, p.job_id)
    p, r = fo.rename_files(ws, ALL, "danbooru_{n}{ext}", on_conflict="rename")
    t = tree(root)
    assert (
        t["danbooru_1.jpg"] == before["danbooru_2.jpg"] and t["danbooru_2_1.jpg"] == before["danbooru_3.jpg"]
    )
    fo.undo_job(ws, p.job_id)
    assert tree(root) == before
    with pytest.raises(ConflictError, match="duplicate target"):
        fo.rename_files(ws, ALL, "same{ext}")


def test_delete_goes_to_trash(ws, pool):
    before = tree(pool)
    p, r = fo.delete_files(ws, SelectionSpec(where="fid < 2"))
    assert r.status == "done"
    assert not (pool / "danbooru_0.jpg").exists() and not (pool / "danbooru_0.txt").exists()
    trash = ws.trash_dir / f"job-{p.job_id}" / "p"
    assert (trash / "danbooru_0.jpg").exists() and (trash / "sub" / "danbooru_1.txt").exists()
    assert ws.store.one("SELECT status FROM files WHERE relpath = 'danbooru_0.jpg'") == "trashed"
    sel = fo.select_files(ws, ALL)
    assert sel.count == 4  # trashed files leave the default selection
    fo.undo_job(ws, p.job_id)
    assert tree(pool) == before
    assert ws.store.one("SELECT status FROM files WHERE relpath = 'danbooru_0.jpg'") == "ok"


def test_convert_resizes_and_keeps_labels_right(ws, tmp_path):
    root = tmp_path / "pool"
    for i in range(3):
        draw_image(root / f"danbooru_{i}.png", (200, 100), seed=i)
    scan_pool(ws, root)
    items = ws.store.read_items().rename({"id": "item_id"})
    boxes = pl.DataFrame(
        {
            "item_id": items["item_id"],
            "class_id": [0, 1, 2],
            "x1": [10.0, 20.0, 30.0],
            "y1": [10.0, 10.0, 10.0],
            "x2": [110.0, 120.0, 130.0],
            "y2": [60.0, 60.0, 60.0],
        }
    )
    ws.store.create_label_set("gt", boxes, items.select("item_id"))
    conv = fo.ConvertOptions(format="jpeg", quality=80, max_side=50)
    p, r = fo.convert_files(ws, ALL, tmp_path / "small", conv, labels="both", label_set="gt")
    assert r.status == "done"
    with Image.open(tmp_path / "small" / "danbooru_0.jpg") as im:
        assert im.format == "JPEG" and im.size == (50, 25)
    yolo = (tmp_path / "small" / "danbooru_0.txt").read_text()
    assert yolo.split()[0] == "0" and abs(float(yolo.split()[1]) - 0.3) < 1e-6
    voc = (tmp_path / "small" / "danbooru_0.xml").read_text()
    assert "<width>50</width>" in voc and "<xmin>2</xmin>" in voc and "<xmax>28</xmax>" in voc
    assert (tmp_path / "small" / "classes.txt").read_text().splitlines() == CLASSES
    # carried VOC files cannot follow a resize
    (root / "danbooru_0.xml").write_text("<annotation/>")
    with pytest.raises(UsageError, match="VOC"):
        fo.convert_files(ws, ALL, tmp_path / "small2", conv)
    fo.undo_job(ws, p.job_id)
    assert not (tmp_path / "small").exists()


def test_labels_written_from_store_yolo(ws, pool, tmp_path):
    items = ws.store.read_items().rename({"id": "item_id"})
    keep = items.filter(pl.col("fid") < 3)
    boxes = pl.DataFrame(
        {
            "item_id": keep["item_id"],
            "class_id": [3] * 3,
            "x1": [0.0] * 3,
            "y1": [0.0] * 3,
            "x2": [16.0] * 3,
            "y2": [12.0] * 3,
        }
    )
    ws.store.create_label_set("gt", boxes, keep.select("item_id"))
    _p, _r = fo.copy_files(ws, SelectionSpec(where="1", label_set="gt"), tmp_path / "y", labels="yolo")
    t = tree(tmp_path / "y")
    assert "danbooru_0.txt" in t and "danbooru_4.txt" not in t  # only images of the set get a file
    assert (tmp_path / "y" / "danbooru_0.txt").read_text() == "3 0.250000 0.250000 0.500000 0.500000\n"
    assert (tmp_path / "y" / "classes.txt").read_text().splitlines() == CLASSES


def test_source_deleted_between_plan_and_run(ws, pool, tmp_path):
    p, _ = fo.copy_files(ws, ALL, tmp_path / "out", dry_run=True)
    (pool / "danbooru_0.jpg").unlink()
    r = fo.run_job(ws, p.job_id)
    assert r.status == "failed" and r.failed == 2  # the image, and its label that stays with it
    assert "gone" in r.errors[0]["error"]
    assert (tmp_path / "out" / "danbooru_2.jpg").exists() and not (
        tmp_path / "out" / "danbooru_0.txt"
    ).exists()
    draw_image(pool / "danbooru_0.jpg", (32, 24), seed=0)
    r = fo.run_job(ws, p.job_id)
    assert r.status == "done" and (tmp_path / "out" / "danbooru_0.txt").exists()


def test_sources_that_changed_size_between_plan_and_run_are_copied_whole(ws, pool, tmp_path, monkeypatch):
    """A copy planned for one size meets another (grown, shrunk, emptied): the short way
    (one kernel copy of the planned size) gives way and the file is copied as it is now."""
    p, _ = fo.copy_files(ws, ALL, tmp_path / "out", layout="mirror", dry_run=True)
    grown, shrunk, emptied = pool / "danbooru_0.jpg", pool / "sub" / "danbooru_1.jpg", pool / "danbooru_2.jpg"
    grown.write_bytes(grown.read_bytes() + b"\0" * 70_000)
    shrunk.write_bytes(shrunk.read_bytes()[:100])
    emptied.write_bytes(b"")
    fast: list[bool] = []
    real_fast = actions.copy_fast

    def spy(a):  # type: ignore[no-untyped-def]
        out = real_fast(a)
        fast.append(out is not None)
        return out

    monkeypatch.setattr(actions, "copy_fast", spy)
    r = fo.run_job(ws, p.job_id, workers=1)
    assert r.status == "done" and r.failed == 0
    assert tree(tmp_path / "out") == tree(pool)
    sizes = dict(
        ws.store.execute(
            "SELECT dst, size FROM job_actions WHERE job_id = ? AND action = 'copy'", (p.job_id,)
        ).fetchall()
    )
    assert sizes[os.fsencode(tmp_path / "out" / "danbooru_0.jpg")] == grown.stat().st_size
    assert sizes[os.fsencode(tmp_path / "out" / "danbooru_2.jpg")] == 0
    # the three changed images took the general way, the other copies the short one
    assert fast.count(False) == 3 and fast.count(True) == len(fast) - 3


def test_missing_source_at_plan_time(ws, pool, tmp_path):
    (pool / "danbooru_2.jpg").unlink()
    with pytest.raises(ConflictError, match="source missing"):
        fo.copy_files(ws, ALL, tmp_path / "out")
    p, r = fo.copy_files(ws, ALL, tmp_path / "out", on_conflict="skip")
    assert p.conflicts == {"source_missing": 1} and r.status == "done"
    assert not (tmp_path / "out" / "danbooru_2.txt").exists()  # the label stays with its image


def test_read_only_target(ws, pool, tmp_path):
    if mount_works(tmp_path):
        with tmpfs(tmp_path / "ro", ro=True) as ro:
            with pytest.raises(ConflictError, match="read only target"):
                fo.copy_files(ws, ALL, ro / "out")
            p, r = fo.copy_files(ws, ALL, ro / "out", on_conflict="skip")
            assert r.done == 0 and p.conflicts["read_only_target"] == 13
    elif os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(ConflictError, match="read only target"):
                fo.copy_files(ws, ALL, ro / "out")
        finally:
            ro.chmod(0o755)
    else:
        pytest.skip("cannot make a read-only folder as root without mount")


def test_disk_full_mid_copy_then_resume(ws, tmp_path):
    if not mount_works(tmp_path):
        pytest.skip("needs root and tmpfs to fill a disk")
    root = tmp_path / "pool"
    root.mkdir()
    for i in range(4):
        (root / f"danbooru_{i}.bin").write_bytes(os.urandom(60_000))
    scan_pool(ws, root)
    spec = SelectionSpec(where="1", all_statuses=True)
    with tmpfs(tmp_path / "small", size="300k") as small:
        p, _ = fo.copy_files(ws, spec, small / "out", dry_run=True)
        filler = small / "filler"
        filler.write_bytes(b"\0" * 150_000)  # the disk fills up after the plan
        with pytest.raises(DiskError, match="disk is full"):
            fo.run_job(ws, p.job_id)
        job = fo.show_job(ws, p.job_id)
        assert job["status"] == "failed"
        out = small / "out"
        done = {n: (out / n).read_bytes() for n in os.listdir(out)}
        assert not [n for n in done if n.startswith(".tuiops-")]  # no temporary file left
        for n, data in done.items():
            assert data == (root / n).read_bytes()  # nothing half-written
        filler.unlink()
        r = fo.run_job(ws, p.job_id)
        assert r.status == "done"
        assert tree(out) == tree(root)


def test_non_utf8_and_long_names(ws, tmp_path):
    root = tmp_path / "pool"
    root.mkdir()
    raw = os.fsencode(root) + b"/danbooru_7_caf\xe9.jpg"
    draw_image(Path(os.fsdecode(raw)), seed=7)
    with open(raw[:-4] + b".txt", "wb") as fh:
        fh.write(b"0 0.5 0.5 0.1 0.1\n")
    long = "danbooru_8_" + "x" * 236 + ".jpg"
    draw_image(root / long, seed=8)
    scan_pool(ws, root)
    before = tree(root)
    _p, r = fo.copy_files(ws, ALL, tmp_path / "out")
    assert r.status == "done"
    assert tree(tmp_path / "out") == before
    assert os.path.exists(os.fsencode(tmp_path / "out") + b"/danbooru_7_caf\xe9.txt")
    # rename that would make a name too long: refused, then skipped
    with pytest.raises(ConflictError, match="name too long"):
        fo.rename_files(ws, ALL, "{stem}{stem}{ext}")
    p2, r2 = fo.move_files(ws, ALL, root / "moved")
    assert r2.status == "done"
    assert os.path.exists(os.fsencode(root) + b"/moved/danbooru_7_caf\xe9.jpg")
    raw_rel = ws.store.one("SELECT relpath_raw FROM files WHERE relpath LIKE 'moved/danbooru_7%jpg'")
    assert raw_rel == b"moved/danbooru_7_caf\xe9.jpg"
    fo.undo_job(ws, p2.job_id)
    assert tree(root) == before
    assert (
        ws.store.one("SELECT relpath_raw FROM files WHERE relpath LIKE 'danbooru_7%jpg'")
        == b"danbooru_7_caf\xe9.jpg"
    )


def test_symlinks_not_followed_out_of_the_pool(ws, tmp_path):
    outside = draw_image(tmp_path / "elsewhere" / "danbooru_9.jpg", seed=9)
    root = tmp_path / "pool"
    draw_image(root / "danbooru_1.jpg", seed=1)
    draw_image(root / "real" / "danbooru_2.jpg", seed=2)
    scan_pool(ws, root)
    (root / "danbooru_9.jpg").symlink_to(outside)
    (root / "danbooru_3.jpg").symlink_to(root / "real" / "danbooru_2.jpg")
    scan_pool(ws, root)  # the scan skips the outside link
    ws.store.execute(
        "INSERT INTO files(pool_id, relpath, item_id, size, status) SELECT pool_id, 'danbooru_9.jpg', item_id, size, 'ok' "
        "FROM files WHERE relpath = 'danbooru_1.jpg'"
    )
    with pytest.raises(ConflictError, match="symlink outside"):
        fo.copy_files(ws, ALL, tmp_path / "out")
    p, _ = fo.copy_files(ws, ALL, tmp_path / "out", on_conflict="skip")
    assert p.conflicts == {"symlink_outside": 1}
    out = tree(tmp_path / "out")
    assert "danbooru_9.jpg" not in out and out["danbooru_3.jpg"] == out["danbooru_2.jpg"]
    fo.copy_files(ws, SelectionSpec(where="name = 'danbooru_9.jpg'"), tmp_path / "out2", follow_symlinks=True)
    assert (tmp_path / "out2" / "danbooru_9.jpg").read_bytes() == outside.read_bytes()
    # moving a symlink moves the link, never its target
    p, _r = fo.move_files(
        ws, SelectionSpec(where="name = 'danbooru_9.jpg'"), root / "links", follow_symlinks=True
    )
    assert (root / "links" / "danbooru_9.jpg").is_symlink() and outside.exists()


def test_cancel_and_resume(ws, pool, tmp_path):
    from tuiops.errors import Cancelled
    from tuiops.ops.base import CancelToken

    p, _ = fo.copy_files(ws, ALL, tmp_path / "out", dry_run=True)
    tok = CancelToken()

    def stop_soon(ev):  # type: ignore[no-untyped-def]
        if ev.done >= 1:
            tok.cancel()

    with pytest.raises(Cancelled):
        fo.run_job(ws, p.job_id, progress=stop_soon, cancel=tok, workers=1)
    assert fo.show_job(ws, p.job_id)["status"] == "cancelled"
    r = fo.run_job(ws, p.job_id)
    assert r.status == "done"
    assert len(tree(tmp_path / "out")) == 13


def test_job_state_guards(ws, pool, tmp_path):
    p, r = fo.copy_files(ws, ALL, tmp_path / "out")
    again = fo.run_job(ws, p.job_id)
    assert again.status == "done" and again.done == r.done
    fo.undo_job(ws, p.job_id)
    with pytest.raises(UsageError, match="undone"):
        fo.run_job(ws, p.job_id)
    ws.store.execute("UPDATE jobs SET status = 'running', pid = 1 WHERE id = ?", (p.job_id,))
    with pytest.raises(ConflictError, match="running in process 1"):
        fo.undo_job(ws, p.job_id)
    from tuiops.errors import NotFoundError

    with pytest.raises(NotFoundError):
        fo.show_job(ws, 9999)


def test_cli_end_to_end(ws, pool, tmp_path, capsys):
    w = ["-w", str(ws.root)]
    out = str(tmp_path / "out")
    assert run([*w, "ops", "copy", "--where", "fid < 4", "--to", out, "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert plan["dry_run"] and plan["images"] == 4 and not os.path.exists(out)
    assert run([*w, "ops", "resume", str(plan["job_id"]), "-q"]) == 0
    assert "done" in capsys.readouterr().out
    assert len(tree(Path(out))) == 9
    assert run([*w, "ops", "copy", "--where", "fid < 4", "--to", out]) == 6
    err = capsys.readouterr().err
    assert "refused" in err and "Traceback" not in err
    assert run([*w, "ops", "list", "--json"]) == 0
    jobs = json.loads(capsys.readouterr().out)
    assert [j["status"] for j in jobs[:2]] == ["refused", "done"]
    assert run([*w, "ops", "show", str(jobs[0]["id"]), "--conflicts"]) == 0
    assert "target_exists" in capsys.readouterr().out
    assert run([*w, "ops", "undo", str(plan["job_id"])]) == 0
    assert not os.path.exists(out)
    keys = tmp_path / "keys.txt"
    keys.write_text("danbooru_1\ndanbooru_3.jpg\n# comment\n\ndanbooru_404\n")
    assert run([*w, "ops", "move", "--keys", str(keys), "--to", out, "--on-conflict", "skip", "-q"]) == 0
    text = capsys.readouterr().out
    assert "unknown key 1" in text
    assert sorted(tree(Path(out))) == ["danbooru_1.jpg", "danbooru_1.txt", "danbooru_3.jpg", "danbooru_3.txt"]
    assert run([*w, "ops", "delete", "--where", "fid = 0", "-q"]) == 0
    assert (
        run([*w, "ops", "convert", "--where", "fid = 2", "--to", str(tmp_path / "c"), "--format", "png"]) == 0
    )
    assert (tmp_path / "c" / "danbooru_2.png").exists()
    assert run([*w, "ops", "resume", "999"]) == 5
    assert run([*w, "ops", "rename", "--where", "1", "--name", "{nope}"]) == 2


def test_actions_handed_from_the_plan_equal_those_read_back(ws, tmp_path):
    """A run right after its plan takes the actions from the frame the plan wrote: for every
    op and label mode they are the journal's rows, field for field (bytes of non-UTF-8
    names, label data, target pools, conflict outcomes)."""
    root = make_pool(tmp_path / "pool", 4)
    raw = os.fsencode(root) + b"/danbooru_7_caf\xe9.jpg"
    draw_image(Path(os.fsdecode(raw)), seed=7)
    with open(raw[:-4] + b".txt", "wb") as fh:
        fh.write(b"0 0.5 0.5 0.1 0.1\n")
    scan_pool(ws, root)
    items = ws.store.read_items().rename({"id": "item_id"})
    n = items.height
    boxes = pl.DataFrame(
        {"item_id": items["item_id"], "class_id": [i % len(CLASSES) for i in range(n)],
         "x1": [1.0] * n, "y1": [2.0] * n, "x2": [20.0] * n, "y2": [18.0] * n}
    )  # fmt: skip
    ws.store.create_label_set("gt", boxes, items.select("item_id"))
    (tmp_path / "taken").mkdir()
    shutil.copy(root / "danbooru_0.jpg", tmp_path / "taken" / "danbooru_0.jpg")
    plans = [
        ("copy", {"to": tmp_path / "a", "layout": "mirror"}),
        ("copy", {"to": tmp_path / "taken", "on_conflict": "rename"}),
        ("copy", {"to": tmp_path / "taken", "on_conflict": "overwrite"}),
        ("copy", {"to": tmp_path / "taken", "on_conflict": "skip"}),
        ("copy", {"to": tmp_path / "b", "labels": "both", "label_set": "gt"}),
        ("move", {"to": root / "moved"}),
        ("convert", {"to": tmp_path / "c", "convert": fo.ConvertOptions(format="png")}),
        ("rename", {"name": "{booru}_{fid}_x{ext}"}),
        ("delete", {}),
    ]
    seen = []
    for op, kw in plans:
        kept: list[pl.DataFrame] = []
        p = fo.plan(ws, op, SelectionSpec(where="1", label_set="gt"), _keep=kept, **kw)
        assert p.status == "planned" and len(kept) == 1, (op, kw)
        handed = journal.acts_from_journal(kept[0])
        read = journal.load_actions(ws.store, p.job_id)
        assert handed == read, (op, kw)
        assert any(a.action != "mkdir" for a in read)
        seen += read
    # the fields that are easy to get wrong were there to compare
    assert any(a.data for a in seen) and any(a.dst_pool is not None for a in seen)
    assert any(a.conflict for a in seen) and any(a.src and b"\xe9" in a.src for a in seen)
    assert any(a.dst_rel_raw for a in seen) and any(a.bak for a in seen)
    assert any(a.state == "skipped" for a in seen)
    # nothing is handed over for a dry run
    kept = []
    fo.plan(ws, "copy", ALL, to=tmp_path / "d", dry_run=True, _keep=kept)
    assert kept == []


def test_copy_into_a_pool_keeps_how_the_hash_was_made(ws, tmp_path):
    from tuiops.ops.probe import PHASH_METHOD
    from tuiops.ops.scan import scan

    root = make_pool(tmp_path / "pool", 2, sub_every=0, labels=False)
    scan(ws, root, name="p", hash=True)
    _, res = fo.copy_files(ws, ALL, root / "copies", layout="flat")
    assert res is not None and res.status == "done"
    rows = ws.store.execute(
        "SELECT relpath, phash IS NOT NULL, phash_method FROM files ORDER BY relpath"
    ).fetchall()
    assert [r[0] for r in rows] == [
        "copies/danbooru_0.jpg",
        "copies/danbooru_1.jpg",
        "danbooru_0.jpg",
        "danbooru_1.jpg",
    ]
    assert all(r[1] and r[2] == PHASH_METHOD for r in rows)
