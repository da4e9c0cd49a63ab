"""Scans of pools as they are in real life: label files beside the images, non-image
siblings of an image, rescans that keep a pool's options, workers that die with the scan."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import CLASSES, draw_image
from tuiops.ops.labels import import_labels
from tuiops.ops.scan import scan


def item_sizes(ws) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    return {k: (w, h) for k, w, h in ws.store.execute("SELECT key, width, height FROM items")}


def test_a_non_image_sibling_never_takes_the_image_size(ws, tmp_path):
    """``danbooru_1.bin`` sorts before ``danbooru_1.jpg`` in a batch: the item's size is the image's."""
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(4):
        draw_image(pool / f"danbooru_{i}.jpg", (40 + i, 30), seed=i)
        (pool / f"danbooru_{i}.bin").write_bytes(b"not an image at all")
    scan(ws, pool, name="p")
    sizes = item_sizes(ws)
    assert all(sizes[f"danbooru_{i}"] == (40 + i, 30) for i in range(4)), sizes
    # YOLO labels need the image's size: every image's labels are imported
    labels = tmp_path / "labels"
    labels.mkdir()
    for i in range(4):
        (labels / f"danbooru_{i}.txt").write_text("0 0.5 0.5 0.25 0.25\n", encoding="utf-8")
    (labels / "classes.txt").write_text("".join(f"{c}\n" for c in CLASSES), encoding="utf-8")
    import_labels(ws, labels, "gt", "yolo")
    assert ws.store.one("SELECT count(*) FROM labels") == 4


def test_a_rescan_repairs_items_left_without_a_size(ws, tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    draw_image(pool / "danbooru_7.jpg", (50, 20), seed=7)
    scan(ws, pool, name="p")
    with ws.store.transaction() as conn:  # the defect older scans left in stores
        conn.execute("UPDATE items SET width = NULL, height = NULL")
    s = scan(ws, pool, name="p")
    assert item_sizes(ws)["danbooru_7"] == (50, 20)
    assert s.sizes_filled == 1 and s.probed == 0


def labelimg_folder(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        draw_image(root / f"danbooru_{i}.jpg", (32, 24), seed=i)
        (root / f"danbooru_{i}.xml").write_text("<annotation></annotation>\n", encoding="utf-8")
        (root / f"danbooru_{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n", encoding="utf-8")
    (root / "classes.txt").write_text("a\nb\n", encoding="utf-8")
    (root / "instances.json").write_text("{}", encoding="utf-8")
    return root


def test_label_files_are_neither_images_nor_errors(ws, tmp_path):
    from click.testing import CliRunner

    from tuiops.cli import cli

    pool = labelimg_folder(tmp_path / "review", 3)
    s = scan(ws, pool, name="p")
    assert s.bad == {} and s.total == 3 and s.label_files == 8
    rels = {r for (r,) in ws.store.execute("SELECT relpath FROM files")}
    assert rels == {f"danbooru_{i}.jpg" for i in range(3)}
    out = CliRunner().invoke(cli, ["-w", str(ws.root), "scan", "--name", "p"])
    assert out.exit_code == 0, out.output
    assert "label files" in out.output and "not_image" not in out.output


def test_a_rescan_drops_label_records_an_older_scan_made(ws, tmp_path):
    pool = labelimg_folder(tmp_path / "review", 2)
    scan(ws, pool, name="p")
    pool_id = ws.store.pool_id("p")
    with ws.store.transaction() as conn:  # what older scans recorded for a labelImg folder
        conn.execute(
            "INSERT INTO files(pool_id, relpath, keyed, size, mtime_ns, status, error, scanned, checks) "
            "VALUES (?, 'danbooru_0.xml', 0, 10, 1, 'not_image', 'not an image', '2020', 15)",
            (pool_id,),
        )
    s = scan(ws, pool, name="p")
    assert s.label_records_dropped == 1 and s.deleted == 0 and s.bad == {}
    assert "missing" not in s.status


def test_a_plain_rescan_keeps_the_pools_options(ws, tmp_path):
    from click.testing import CliRunner

    from tuiops.cli import cli

    pool = tmp_path / "pool"
    pool.mkdir()
    draw_image(pool / "danbooru_1.jpg", (40, 30), seed=1)
    scan(ws, pool, name="p", hash=True)
    draw_image(pool / "danbooru_2.jpg", (40, 30), seed=2)
    out = CliRunner().invoke(cli, ["-w", str(ws.root), "scan", "--name", "p"])
    assert out.exit_code == 0, out.output
    assert "--hash (as the pool was scanned before; --no-hash to stop)" in out.output
    hashed = dict(ws.store.execute("SELECT relpath, phash IS NOT NULL FROM files"))
    assert hashed == {"danbooru_1.jpg": 1, "danbooru_2.jpg": 1}
    # an explicit flag changes what the pool remembers
    draw_image(pool / "danbooru_3.jpg", (40, 30), seed=3)
    s = scan(ws, pool, name="p", hash=False)
    assert s.options == {"hash": False, "exif": False, "verify": False} and s.remembered == []
    s = scan(ws, pool, name="p")
    assert s.remembered == [] and s.probed == 0
    assert dict(ws.store.execute("SELECT relpath, phash IS NOT NULL FROM files"))["danbooru_3.jpg"] == 0


def test_a_killed_scan_takes_its_worker_processes_along(ws, tmp_path):
    """kill -9 of a scan: its workers die too, so a pipe reading its output (``| tee``) ends."""
    import os
    import signal
    import subprocess
    import sys

    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(120):
        draw_image(pool / f"danbooru_{i}.jpg", (64, 48), seed=i)
    env = {**os.environ, "TUIOPS_FAULT": "probed:1"}
    cli = "import sys; from tuiops.cli import main; sys.argv[0] = 'tuiops'; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", cli, "-w", str(ws.root), "scan", str(pool), "--hash", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # the pipes end only when every process holding them is gone; before, the workers kept
    # them open for minutes (the limit here only stops a failing test from hanging)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the scan's workers outlived it, holding its output open") from None
    assert proc.returncode == -signal.SIGKILL
