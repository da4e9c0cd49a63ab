"""In-place conversion (`ops convert --in-place`), the ultralytics sibling label layout,
purging a job's backups, and the unnamed-file placement of copies."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from tests.conftest import CLASSES, draw_image
from tests.test_fileops_kill import KILLS, cli, leftovers
from tests.test_fileops_support import files_rows, make_pool, scan_pool, tree
from tuiops.cli import run
from tuiops.errors import UsageError
from tuiops.ops import fileops as fo
from tuiops.ops.select import SelectionSpec

ALL = SelectionSpec(where="1")


def png_pool(root: Path, n: int, size: tuple[int, int] = (40, 30)) -> Path:
    """``n`` PNGs (every third in sub/) with a YOLO label file beside each."""
    for i in range(n):
        folder = root / "sub" if i % 3 == 2 else root
        p = draw_image(folder / f"danbooru_{i}.png", size, seed=i)
        p.with_suffix(".txt").write_text(f"{i % len(CLASSES)} 0.5 0.5 0.25 0.25\n", encoding="utf-8")
    return root


def record(ws, rel: str) -> dict:  # type: ignore[no-untyped-def]
    row = ws.store.execute(
        "SELECT relpath, size, width, height, format, phash FROM files WHERE relpath = ?", (rel,)
    ).fetchone()
    return (
        dict(zip(("relpath", "size", "width", "height", "format", "phash"), row, strict=True)) if row else {}
    )


# -- convert in place -----------------------------------------------------------------------------------
def test_convert_in_place_new_extension_store_follows_and_undo(ws, tmp_path):
    root = png_pool(tmp_path / "pool", 4, size=(80, 40))
    scan_pool(ws, root)
    before = tree(root)
    records = files_rows(ws)
    conv = fo.ConvertOptions(format="jpeg", quality=85, max_side=40)
    p, r = fo.convert_in_place(ws, SelectionSpec(where="format = 'PNG'"), conv)
    assert r is not None and r.status == "done", r.errors
    assert p.by_action["reencode"] == 4 and p.labels == 0
    after = tree(root)
    assert "danbooru_0.png" not in after and "danbooru_0.jpg" in after and "sub/danbooru_2.jpg" in after
    for rel in ("danbooru_0.txt", "sub/danbooru_2.txt"):
        assert after[rel] == before[rel], "label files are left alone"
    with Image.open(root / "danbooru_0.jpg") as im:
        assert im.format == "JPEG" and im.size == (40, 20)
    rec = record(ws, "danbooru_0.jpg")
    assert rec["format"] == "JPEG" and (rec["width"], rec["height"]) == (40, 20)
    assert rec["size"] == (root / "danbooru_0.jpg").stat().st_size and rec["phash"] is None
    assert not record(ws, "danbooru_0.png")
    originals = ws.trash_dir / f"job-{p.job_id}" / "originals"
    assert len(os.listdir(originals)) == 4
    # the selection sees the new files; no file is planned twice
    assert (
        fo.plan(ws, "copy", SelectionSpec(where="format = 'JPEG'"), to=tmp_path / "x", dry_run=True).images
        == 4
    )

    u = fo.undo_job(ws, p.job_id)
    assert u.status == "undone", u.errors
    assert tree(root) == before, "the original bytes are back at their paths"
    assert files_rows(ws) == records
    assert record(ws, "danbooru_0.png")["format"] == "PNG"
    assert not originals.exists()


def test_convert_in_place_same_path_purge_and_refusals(ws, tmp_path):
    root = tmp_path / "pool"
    for i in range(3):
        draw_image(root / f"danbooru_{i}.jpg", (64, 48), seed=i)
    scan_pool(ws, root)
    before = tree(root)
    conv = fo.ConvertOptions(format="jpeg", quality=20)
    p, r = fo.convert_in_place(ws, ALL, conv)
    assert r.status == "done" and p.by_action["reencode"] == 3 and r.done == p.to_do
    after = tree(root)
    assert set(after) == set(before) and all(after[k] != before[k] for k in before)
    assert record(ws, "danbooru_0.jpg")["size"] == (root / "danbooru_0.jpg").stat().st_size
    # purge: the backups go, and so does the way back
    out = fo.purge_job(ws, p.job_id)
    assert out["files"] == 3 and not (ws.trash_dir / f"job-{p.job_id}").exists()
    with pytest.raises(UsageError, match="purged"):
        fo.undo_job(ws, p.job_id)
    assert tree(root) == after
    # refusals: a target folder, an overwrite policy, another op
    with pytest.raises(UsageError, match="leave out --to"):
        fo.convert_files(ws, ALL, tmp_path / "out", conv, in_place=True)
    with pytest.raises(UsageError, match="does not overwrite"):
        fo.convert_in_place(ws, ALL, conv, on_conflict="overwrite")
    with pytest.raises(UsageError, match="for `ops convert` only"):
        fo.copy_files(ws, ALL, tmp_path / "out", in_place=True)


def test_convert_in_place_name_taken_and_broken_image(ws, tmp_path):
    root = png_pool(tmp_path / "pool", 3)
    (root / "danbooru_1.jpg").write_bytes(b"not mine")  # the new name of danbooru_1.png is taken
    (root / "danbooru_0.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # a broken file
    scan_pool(ws, root)
    before = tree(root)
    p, r = fo.convert_in_place(
        ws, SelectionSpec(where="relpath LIKE '%.png'", all_statuses=True), on_conflict="skip"
    )
    assert p.conflicts == {"target_exists": 1}
    assert r.status == "failed" and r.failed == 1 and "cannot convert" in r.errors[0]["error"]
    now = tree(root)
    assert (
        now["danbooru_1.jpg"] == before["danbooru_1.jpg"]
        and now["danbooru_1.png"] == before["danbooru_1.png"]
    )
    assert now["danbooru_0.png"] == before["danbooru_0.png"], "a file that cannot be decoded stays as it is"
    assert "sub/danbooru_2.jpg" in now and "sub/danbooru_2.png" not in now
    assert fo.undo_job(ws, p.job_id).status == "undone"
    assert tree(root) == before


def check_no_png_lost(root: Path, before: dict[str, str]) -> None:
    """Every PNG of ``before`` is still there, or as its WebP (both, for a moment, is allowed)."""
    now = tree(root)
    for rel in before:
        if rel.endswith(".png"):
            assert rel in now or rel[:-4] + ".webp" in now, f"{rel} is lost"


def test_kill_during_convert_in_place_then_resume_and_undo(ws, tmp_path):
    rng = random.Random(5)
    root = png_pool(tmp_path / "pool", 24)
    scan_pool(ws, root)
    before = tree(root)
    KILLS.clear()
    p, _ = fo.convert_in_place(ws, ALL, fo.ConvertOptions(format="webp", quality=70), dry_run=True)
    for point in ("placed", "action", "flush"):
        n = 1 if point == "flush" else rng.randint(1, 6)
        cli(ws.root, "ops", "resume", str(p.job_id), fault=f"{point}:{n}")
        check_no_png_lost(root, before)
    ws.store.close()
    ws._store = None
    r = fo.run_job(ws, p.job_id)
    assert r.status == "done", r.errors
    now = tree(root)
    assert not [k for k in now if k.endswith(".png")] and len([k for k in now if k.endswith(".webp")]) == 24
    assert not leftovers(root)
    images = [k for k in files_rows(ws) if not k.endswith(".txt")]
    assert all(k.endswith(".webp") for k in images) and len(images) == 24, images
    for point in ("placed", "undo"):
        n = rng.randint(1, 6)
        cli(ws.root, "ops", "undo", str(p.job_id), fault=f"{point}:{n}")
        check_no_png_lost(root, before)
    ws.store.close()
    ws._store = None
    u = fo.undo_job(ws, p.job_id)
    assert u.status == "undone", u.errors
    assert tree(root) == before
    assert sorted(k for k in files_rows(ws) if not k.endswith(".txt")) == sorted(
        f"p/{k}" for k in before if k.endswith(".png")
    )
    assert KILLS.count(-signal.SIGKILL) == 5, KILLS


# -- the ultralytics sibling layout ------------------------------------------------------------------------
def test_sibling_layout_carried_and_from_store(ws, tmp_path):
    root = make_pool(tmp_path / "pool", 6)
    scan_pool(ws, root)
    out = tmp_path / "ds"
    p, r = fo.copy_files(ws, ALL, out, layout="mirror", label_layout="sibling")
    assert r.status == "done", r.errors
    t = tree(out)
    assert "images/danbooru_0.jpg" in t and "images/sub/danbooru_1.jpg" in t
    assert t["labels/danbooru_0.txt"] == tree(root)["danbooru_0.txt"]
    assert "labels/sub/danbooru_1.txt" in t and "labels/classes.txt" in t
    assert not [k for k in t if k.startswith("images/") and k.endswith(".txt")]
    fo.undo_job(ws, p.job_id)
    assert not out.exists()

    # from the store, by booru, YOLO and VOC: both under labels/
    items = ws.store.read_items().rename({"id": "item_id"})
    boxes = pl.DataFrame(
        {"item_id": items["item_id"], "class_id": [1] * items.height, "x1": [0.0] * items.height,
         "y1": [0.0] * items.height, "x2": [16.0] * items.height, "y2": [12.0] * items.height}
    )  # fmt: skip
    ws.store.create_label_set("gt", boxes, items.select("item_id"))
    spec = SelectionSpec(where="1", label_set="gt")
    _p, r = fo.copy_files(
        ws, spec, out, layout="by-booru", labels="both", label_set="gt", label_layout="sibling"
    )
    assert r.status == "done", r.errors
    t = tree(out)
    assert "images/danbooru/danbooru_3.jpg" in t
    assert (out / "labels/danbooru/danbooru_3.txt").read_text() == "1 0.250000 0.250000 0.500000 0.500000\n"
    voc = (out / "labels/danbooru/danbooru_3.xml").read_text()
    assert "<filename>danbooru_3.jpg</filename>" in voc and "images/danbooru" in voc
    assert (out / "labels/danbooru/classes.txt").read_text().splitlines() == CLASSES
    # ultralytics' own rule finds every label: replace /images/ by /labels/ and the suffix by .txt
    for k in t:
        if k.startswith("images/"):
            assert "labels/" + k[len("images/") : -len(".jpg")] + ".txt" in t


def test_sibling_layout_round_trip_and_cli(ws, tmp_path):
    root = make_pool(tmp_path / "pool", 4, sub_every=0)
    scan_pool(ws, root)
    first = tmp_path / "ds1"
    fo.copy_files(ws, ALL, first, label_layout="sibling")
    scan_pool(ws, first, name="ds1")
    # a dataset in the sibling layout carries its labels/ files into another one
    second = tmp_path / "ds2"
    code = run(
        [
            "-w",
            str(ws.root),
            "ops",
            "copy",
            "--where",
            "1",
            "--pool",
            "ds1",
            "--to",
            str(second),
            "--label-layout",
            "sibling",
            "-q",
        ]
    )
    assert code == 0
    assert tree(second) == tree(first)
    with pytest.raises(UsageError, match="sibling"):
        fo.rename_files(ws, ALL, "{stem}_x{ext}", label_layout="sibling")


# -- copies: unnamed files linked into place ----------------------------------------------------------------
def test_copy_leaves_no_temporary_names_and_refuses_late_targets(ws, tmp_path):
    root = make_pool(tmp_path / "pool", 6)
    scan_pool(ws, root)
    out = tmp_path / "out"
    p, _ = fo.copy_files(ws, ALL, out, layout="mirror", dry_run=True)
    out.mkdir()
    (out / "danbooru_0.jpg").write_bytes(b"someone else's")  # appears after planning
    r = fo.run_job(ws, p.job_id)
    assert r.status == "failed" and "appeared after planning" in r.errors[0]["error"]
    assert (out / "danbooru_0.jpg").read_bytes() == b"someone else's", "never clobbered"
    assert not [k for k in tree(out) if ".tuiops-" in k]
    (out / "danbooru_0.jpg").unlink()
    assert fo.run_job(ws, p.job_id).status == "done"
    assert tree(out) == tree(root)


def test_durable_copy_and_resume_after_kill(ws, tmp_path):
    root = make_pool(tmp_path / "pool", 30, sub_every=3)
    scan_pool(ws, root)
    source = tree(root)
    out = tmp_path / "out"
    KILLS.clear()
    p, _ = fo.copy_files(ws, ALL, out, layout="mirror", durable=True, dry_run=True)
    assert fo.show_job(ws, p.job_id)["params"]["durable"] is True
    cli(ws.root, "ops", "resume", str(p.job_id), fault="placed:7")
    assert KILLS == [-signal.SIGKILL]
    got = tree(out)
    assert 0 < len(got) < len(source)
    assert all(got[k] == source[k] for k in got)
    ws.store.close()
    ws._store = None
    r = fo.run_job(ws, p.job_id)
    assert r.status == "done" and tree(out) == source


def test_cli_purge_and_in_place(ws, tmp_path, capsys):
    root = png_pool(tmp_path / "pool", 2)
    scan_pool(ws, root)
    w = ["-w", str(ws.root)]
    assert run([*w, "ops", "convert", "--where", "1", "--in-place", "--format", "jpeg", "-q"]) == 0
    job = fo.list_jobs(ws)[0]["id"]
    assert sorted(tree(root)) == ["danbooru_0.jpg", "danbooru_0.txt", "danbooru_1.jpg", "danbooru_1.txt"]
    capsys.readouterr()
    assert run([*w, "ops", "purge", str(job)]) == 0
    assert "purged job" in capsys.readouterr().out
    assert run([*w, "ops", "undo", str(job)]) != 0
    assert (
        run([*w, "ops", "convert", "--where", "1", "--format", "png", "-q"]) != 0
    )  # neither --to nor --in-place
