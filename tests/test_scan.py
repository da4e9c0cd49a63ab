"""Pool indexing (`tuiops.ops.scan`): statuses of a real, messy pool, incremental
re-scans, hashes, EXIF, full decodes, process pool, cancellation, pool registration."""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import draw_image
from tuiops.errors import Cancelled, ConflictError, NotFoundError
from tuiops.ops.base import CancelToken, ProgressEvent
from tuiops.ops.probe import (
    CHECK_ALL,
    CHECK_HASH,
    CHECK_VERIFY,
    PHASH_METHOD,
    hash_pixels,
    phash_batch,
    phash_file,
    phash_hex,
    phash_int,
)
from tuiops.ops.scan import list_pools, scan

NON_UTF8 = b"caf\xe9_menu.jpg"
LONG = "danbooru_6_" + "x" * 230 + ".jpg"


def files_of(ws, pool: str | None = None) -> dict[str, dict]:
    """relpath → row of the files table (with its item's key, booru, fid)."""
    sql = (
        "SELECT f.*, i.key, i.booru, i.fid FROM files f JOIN pools p ON p.id = f.pool_id "
        "LEFT JOIN items i ON i.id = f.item_id" + (" WHERE p.name = ?" if pool else "")
    )
    cur = ws.store.execute(sql, (pool,) if pool else ())
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    return {r["relpath"]: r for r in rows}


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` (a tiny, undecodable body)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def make_messy_pool(root: Path) -> Path:
    """A pool with good images of every common format and every kind of bad file."""
    root.mkdir(parents=True, exist_ok=True)
    draw_image(root / "danbooru_1.jpg", (320, 240), seed=1)
    draw_image(root / "sub" / "gelbooru-2.png", (200, 100), seed=2)
    draw_image(root / "sub" / "deep" / "yandere_3_extra.webp", (120, 90), seed=3)
    frames = [Image.new("P", (40, 30), i * 40) for i in range(3)]
    frames[0].save(root / "konachan_4.gif", save_all=True, append_images=frames[1:])
    (root / "zero.jpg").write_bytes(b"")
    full = draw_image(root / "_tmp.jpg", (640, 480), seed=5).read_bytes()
    (root / "_tmp.jpg").unlink()
    (root / "danbooru_10.jpg").write_bytes(full[: len(full) * 2 // 3])
    png = draw_image(root / "_tmp.png", (300, 200), seed=6).read_bytes()
    (root / "_tmp.png").unlink()
    (root / "danbooru_11.png").write_bytes(png[: len(png) // 2])
    good = draw_image(root / "_tmp2.jpg", (160, 120), seed=7).read_bytes()
    (root / "_tmp2.jpg").unlink()
    (root / "danbooru_12.jpg").write_bytes(good[:4] + b"\x12\x34\x56\x78" * 16 + good[68:])
    draw_image(root / "danbooru_13.jpg", (50, 40), fmt="PNG", seed=8)
    (root / "danbooru_14.jpg").write_text("<html>rate limited</html>\n")
    with open(os.path.join(os.fsencode(root), NON_UTF8), "wb") as fh:
        fh.write(good)
    draw_image(root / LONG, (30, 20), seed=9)
    draw_image(root / "cover.png", (10, 10), seed=10)
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return root


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    return make_messy_pool(tmp_path / "pool")


EXPECTED = {
    "danbooru_1.jpg": ("ok", 320, 240, "JPEG"),
    "sub/gelbooru-2.png": ("ok", 200, 100, "PNG"),
    "sub/deep/yandere_3_extra.webp": ("ok", 120, 90, "WEBP"),
    "konachan_4.gif": ("ok", 40, 30, "GIF"),
    "zero.jpg": ("empty", None, None, None),
    "danbooru_10.jpg": ("truncated", 640, 480, "JPEG"),
    "danbooru_11.png": ("truncated", 300, 200, "PNG"),
    "danbooru_12.jpg": ("corrupt", None, None, "JPEG"),
    "danbooru_13.jpg": ("wrong_ext", 50, 40, "PNG"),
    "danbooru_14.jpg": ("not_image", None, None, None),
    "caf\\xe9_menu.jpg": ("ok", 160, 120, "JPEG"),
    LONG: ("ok", 30, 20, "JPEG"),
    "cover.png": ("ok", 10, 10, "PNG"),
}


def test_messy_pool_statuses(ws, messy):
    summary = scan(ws, messy)
    rows = files_of(ws)
    got = {k: (r["status"], r["width"], r["height"], r["format"]) for k, r in rows.items()}
    assert got == EXPECTED
    for rel, r in rows.items():
        assert r["item_id"] is not None, rel
        if r["status"] != "ok":
            assert r["error"], rel
    assert "FFD9" in rows["danbooru_10.jpg"]["error"]
    assert "IEND" in rows["danbooru_11.png"]["error"]
    assert "PNG content but extension '.jpg'" in rows["danbooru_13.jpg"]["error"]
    assert "not an image" in rows["danbooru_14.jpg"]["error"]
    # the non-UTF-8 name: an escaped display path plus its exact bytes
    odd = rows["caf\\xe9_menu.jpg"]
    assert odd["relpath_raw"] == NON_UTF8 and rows["danbooru_1.jpg"]["relpath_raw"] is None
    # keys: booru + fid where the name has one; the stem otherwise
    assert (rows["sub/gelbooru-2.png"]["key"], rows["sub/gelbooru-2.png"]["fid"]) == ("gelbooru_2", 2)
    assert rows["sub/deep/yandere_3_extra.webp"]["key"] == "yandere_3"
    assert rows[LONG]["key"] == "danbooru_6" and rows[LONG]["keyed"] == 1
    assert (rows["cover.png"]["key"], rows["cover.png"]["booru"], rows["cover.png"]["keyed"]) == (
        "cover",
        None,
        0,
    )
    assert ws.store.one("SELECT width FROM items WHERE key = 'danbooru_1'") == 320

    assert summary.total == len(EXPECTED) == summary.new == summary.probed
    assert (summary.changed, summary.unchanged, summary.deleted) == (0, 0, 0)
    assert summary.bad == {"wrong_ext": 1, "truncated": 2, "corrupt": 1, "empty": 1, "not_image": 1}
    assert summary.status["ok"] == 7
    unkeyed = {r for r, row in rows.items() if not row["keyed"]}
    assert unkeyed == {"zero.jpg", "cover.png", "caf\\xe9_menu.jpg"}
    assert summary.unkeyed == 3 and set(summary.unkeyed_examples) == unkeyed
    assert summary.skipped == {"hidden": 1}
    d = summary.to_dict()
    assert json.loads(json.dumps(d))["bad_total"] == 6 and d["files_per_s"] > 0
    # the pool is registered in the store and in tuiops.toml
    assert ws.store.one("SELECT root FROM pools WHERE name = 'pool'") == str(messy.resolve())
    assert ws.config.pools["pool"] == str(messy.resolve())
    assert "[pools.pool]" in ws.config_path.read_text()
    assert ws.store.one("SELECT status FROM jobs WHERE kind = 'scan'") == "done"


def test_pool_inside_the_workspace_is_stored_relative(ws):
    pool = ws.root / "images"
    draw_image(pool / "danbooru_1.jpg")
    summary = scan(ws, ws.root)  # the workspace folder itself: its own files are not indexed
    assert set(files_of(ws)) == {"images/danbooru_1.jpg"}
    assert summary.skipped == {}
    assert ws.config.pools[ws.root.name] == "."
    scan(ws, pool, name="imgs")
    assert ws.config.pools["imgs"] == "images"
    from tuiops.workspace import Workspace

    again = Workspace.open(ws.root)
    assert again.config.pools == {ws.root.name: ".", "imgs": "images"}


def test_incremental_rescan(ws, tmp_path):
    pool = tmp_path / "pool"
    for i in range(6):
        draw_image(pool / f"danbooru_{i}.jpg", seed=i)
    first = scan(ws, pool)
    assert (first.new, first.probed) == (6, 6)
    before = files_of(ws)

    touched = pool / "danbooru_1.jpg"
    draw_image(touched, (80, 60), seed=99)
    os.utime(touched, ns=(before["danbooru_1.jpg"]["mtime_ns"] + 10**9,) * 2)
    (pool / "danbooru_2.jpg").unlink()
    draw_image(pool / "danbooru_9.jpg", seed=9)
    second = scan(ws, pool)
    assert (second.total, second.new, second.changed, second.unchanged, second.deleted) == (6, 1, 1, 4, 1)
    assert second.probed == 2
    after = files_of(ws)
    assert after["danbooru_1.jpg"]["width"] == 80
    gone = after["danbooru_2.jpg"]
    assert gone["status"] == "missing" and gone["item_id"] == before["danbooru_2.jpg"]["item_id"]
    assert gone["width"] == 64  # what was known about it is kept
    for rel in ("danbooru_0.jpg", "danbooru_3.jpg"):
        assert after[rel]["scanned"] == before[rel]["scanned"] and after[rel]["id"] == before[rel]["id"]
    assert second.status["missing"] == 1 and "missing" not in second.bad

    third = scan(ws, pool)
    assert (third.probed, third.deleted, third.new, third.changed) == (0, 0, 0, 0)

    draw_image(pool / "danbooru_2.jpg", seed=2)  # it comes back
    fourth = scan(ws, pool)
    assert (fourth.changed, fourth.probed) == (1, 1)
    assert files_of(ws)["danbooru_2.jpg"]["status"] == "ok"
    assert ws.store.one("SELECT count(*) FROM jobs WHERE kind = 'scan' AND status = 'done'") == 4


def test_rescan_by_name_and_pool_conflicts(ws, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    draw_image(a / "danbooru_1.jpg")
    draw_image(b / "danbooru_2.jpg")
    scan(ws, a, name="main")
    assert scan(ws, None, name="main").total == 1
    with pytest.raises(ConflictError, match="root of pool 'main'"):
        scan(ws, a, name="other")
    with pytest.raises(ConflictError, match="pool 'main' is"):
        scan(ws, b, name="main")
    with pytest.raises(NotFoundError, match="no pool named 'nope'"):
        scan(ws, None, name="nope")
    with pytest.raises(NotFoundError, match="does not exist"):
        scan(ws, tmp_path / "absent")
    scan(ws, b)
    pools = {p["name"]: p for p in list_pools(ws)}
    assert set(pools) == {"main", "b"} and pools["main"]["files"] == 1 and pools["b"]["ok"] == 1
    # the same item in two pools: one item, two files
    draw_image(b / "danbooru_1.png")
    scan(ws, b)
    assert (
        ws.store.one(
            "SELECT count(*) FROM files WHERE item_id = (SELECT id FROM items WHERE key = 'danbooru_1')"
        )
        == 2
    )


def test_hash_equal_for_identical_images_and_different_otherwise(ws, tmp_path):
    import imagehash

    pool = tmp_path / "pool"
    a = draw_image(pool / "danbooru_1.png", (200, 150), seed=1)
    shutil.copy(a, pool / "danbooru_2.png")
    draw_image(pool / "danbooru_3.png", (200, 150), seed=40)
    big = draw_image(pool / "danbooru_4.jpg", (2400, 1800), seed=1)
    scan(ws, pool, hash=True)
    rows = files_of(ws)
    h = {k: r["phash"] for k, r in rows.items()}
    assert all(isinstance(v, int) for v in h.values())
    assert h["danbooru_1.png"] == h["danbooru_2.png"] != h["danbooru_3.png"]
    assert phash_hex(h["danbooru_1.png"]) == str(imagehash.phash(Image.open(a)))
    # a big JPEG is hashed from a reduced grey decode (draft at 1/8), close to the full-size hash
    with Image.open(big) as img:
        img.draft("L", (32, 32))
        assert img.size == (300, 225) and img.mode == "L"
        assert h["danbooru_4.jpg"] == phash_int(img) == phash_file(big)
    assert ws.store.one("SELECT DISTINCT phash_method FROM files") == PHASH_METHOD
    full = imagehash.phash(Image.open(big))
    assert full - imagehash.hex_to_hash(phash_hex(h["danbooru_4.jpg"])) <= 6
    assert all(r["checks"] & CHECK_HASH for r in rows.values())


def test_batched_hash_equals_imagehash_phash(tmp_path):
    import imagehash
    import numpy as np

    rng = np.random.default_rng(3)
    images = []
    for i in range(300):
        w, h = (int(v) for v in rng.integers(8, 400, 2))
        base = rng.integers(0, 256, (max(1, h // 16), max(1, w // 16), 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR)
        images.append(img.convert(["RGB", "L", "RGBA", "P"][i % 4]))
    images.append(Image.new("RGB", (64, 64), (9, 9, 9)))  # flat: every coefficient ties
    ours = phash_batch([hash_pixels(img) for img in images])
    assert [phash_hex(v) for v in ours] == [str(imagehash.phash(img)) for img in images]
    assert ours == [phash_int(img) for img in images]


def test_rescan_hashes_again_what_an_older_method_hashed(ws, tmp_path):
    pool = tmp_path / "pool"
    for i in range(3):
        draw_image(pool / f"danbooru_{i}.jpg", (640, 480), seed=i)
    scan(ws, pool, hash=True)
    new = dict(ws.store.execute("SELECT relpath, phash FROM files"))
    # as a store written before the method was recorded: the migration marks its hashes 1
    ws.store.execute("UPDATE files SET phash = 7, phash_method = 1 WHERE relpath = 'danbooru_1.jpg'")
    # a hash whose method was not recorded is not trusted either
    ws.store.execute("UPDATE files SET phash = 9, phash_method = NULL WHERE relpath = 'danbooru_2.jpg'")
    again = scan(ws, pool)  # the pool is scanned with hashes: a plain rescan keeps hashing
    assert again.probed == 2 and again.unchanged == 3
    rows = dict(ws.store.execute("SELECT relpath, phash FROM files"))
    assert rows == new
    assert ws.store.one("SELECT count(*) FROM files WHERE phash_method IS NOT ?", (PHASH_METHOD,)) == 0


def test_hash_requested_later_probes_only_what_lacks_it(ws, tmp_path):
    pool = tmp_path / "pool"
    for i in range(4):
        draw_image(pool / f"danbooru_{i}.jpg", seed=i)
    (pool / "empty.jpg").write_bytes(b"")
    scan(ws, pool, exif=True)
    assert ws.store.one("SELECT count(*) FROM files WHERE phash IS NOT NULL") == 0
    second = scan(ws, pool, hash=True)
    assert second.probed == 4  # the empty file has nothing to hash
    rows = files_of(ws)
    assert all(rows[f"danbooru_{i}.jpg"]["phash"] is not None for i in range(4))
    assert rows["danbooru_0.jpg"]["exif"] == "{}"  # kept from the first scan
    assert scan(ws, pool, hash=True, exif=True).probed == 0


def test_exif_from_a_pillow_jpeg(ws, tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    img = Image.new("RGB", (64, 48), (10, 20, 30))
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS 5D"
    exif[0x0112] = 6
    exif[0x0131] = "GIMP 2.10"
    exif[0x0132] = "2021:03:04 05:06:07"
    img.save(pool / "danbooru_1.jpg", exif=exif.tobytes())
    img.save(pool / "danbooru_2.jpg")
    (pool / "danbooru_3.gif").write_bytes(b"")
    scan(ws, pool, exif=True)
    rows = files_of(ws)
    data = json.loads(rows["danbooru_1.jpg"]["exif"])
    assert data == {
        "make": "Canon",
        "model": "EOS 5D",
        "orientation": 6,
        "software": "GIMP 2.10",
        "datetime": "2021-03-04 05:06:07",
    }
    assert json.loads(rows["danbooru_2.jpg"]["exif"]) == {}
    assert rows["danbooru_3.gif"]["exif"] is None
    assert scan(ws, pool, exif=True).probed == 0


def test_verify_decodes_in_full(ws, tmp_path):
    pool = tmp_path / "pool"
    good = draw_image(pool / "danbooru_1.jpg", (400, 300), seed=1).read_bytes()
    (pool / "danbooru_2.jpg").write_bytes(good + b"PK\x03\x04 appended archive" * 4)
    (pool / "danbooru_3.jpg").write_bytes(good[: len(good) * 3 // 4])
    first = scan(ws, pool)
    rows = files_of(ws)
    assert rows["danbooru_2.jpg"]["status"] == "truncated"  # the tail alone cannot tell
    assert first.bad == {"truncated": 2}
    second = scan(ws, pool, verify=True)
    assert second.probed == 3
    rows = files_of(ws)
    assert rows["danbooru_1.jpg"]["status"] == "ok"
    assert rows["danbooru_2.jpg"]["status"] == "ok" and "decodes fully" in rows["danbooru_2.jpg"]["error"]
    assert rows["danbooru_3.jpg"]["status"] == "truncated"
    assert "image file is truncated" in rows["danbooru_3.jpg"]["error"]
    assert all(r["checks"] & CHECK_VERIFY for r in rows.values())
    assert second.notes == 1
    # a later header-only or hash scan keeps what the full decode found
    third = scan(ws, pool, hash=True)
    assert third.probed == 2
    rows = files_of(ws)
    assert rows["danbooru_2.jpg"]["status"] == "ok" and rows["danbooru_2.jpg"]["phash"] is not None
    assert rows["danbooru_2.jpg"]["checks"] & CHECK_VERIFY
    assert scan(ws, pool, verify=True).probed == 0


def test_decompression_bombs_are_recorded_not_decoded(ws, tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    png_header_only(pool / "danbooru_1.png", 12_000, 12_000)  # over the warning limit
    png_header_only(pool / "danbooru_2.png", 20_000, 20_000)  # over the error limit
    summary = scan(ws, pool, hash=True, verify=True)
    rows = files_of(ws)
    warn = rows["danbooru_1.png"]
    assert (warn["status"], warn["width"], warn["height"]) == ("ok", 12_000, 12_000)
    assert "decompression bomb" in warn["error"] and warn["phash"] is None
    err = rows["danbooru_2.png"]
    assert err["status"] == "unreadable" and "decompression bomb" in err["error"]
    assert summary.notes == 1 and summary.bad == {"unreadable": 1}


def test_symlinks_stay_inside_the_pool_unless_followed(ws, tmp_path):
    outside = draw_image(tmp_path / "elsewhere" / "danbooru_7.jpg")
    pool = tmp_path / "pool"
    draw_image(pool / "danbooru_1.jpg")
    os.symlink(outside, pool / "danbooru_7.jpg")
    os.symlink(pool / "danbooru_1.jpg", pool / "alias_1.jpg")
    os.symlink(tmp_path / "elsewhere", pool / "linked_dir")
    os.symlink(tmp_path / "nothing.jpg", pool / "dangling.jpg")
    summary = scan(ws, pool)
    assert set(files_of(ws)) == {"danbooru_1.jpg", "alias_1.jpg"}
    assert summary.skipped == {"broken_symlink": 1, "symlink_outside": 2}
    assert any("danbooru_7.jpg" in e for e in summary.skipped_examples)
    followed = scan(ws, pool, follow_symlinks=True)
    assert set(files_of(ws)) == {
        "danbooru_1.jpg",
        "alias_1.jpg",
        "danbooru_7.jpg",
        "linked_dir/danbooru_7.jpg",
    }
    assert followed.skipped == {"broken_symlink": 1}


def _permissions_apply(folder: Path) -> bool:
    try:
        os.listdir(folder)
    except PermissionError:
        return True
    return False


def test_unreadable_folder_is_reported_not_fatal(ws, tmp_path):
    pool = tmp_path / "pool"
    draw_image(pool / "danbooru_1.jpg")
    draw_image(pool / "locked" / "danbooru_2.jpg")
    draw_image(pool / "danbooru_3.jpg")
    os.chmod(pool / "danbooru_3.jpg", 0)
    scan(ws, pool)
    os.chmod(pool / "locked", 0)
    try:
        if not _permissions_apply(pool / "locked"):
            pytest.skip("permissions do not apply to this user (root)")
        summary = scan(ws, pool)
        assert summary.unreadable_dirs and summary.unreadable_dirs[0].startswith("locked")
        rows = files_of(ws)
        assert rows["locked/danbooru_2.jpg"]["status"] == "ok"  # not counted as deleted
        assert summary.deleted == 0
        assert rows["danbooru_3.jpg"]["status"] == "unreadable"
        assert "Permission denied" in rows["danbooru_3.jpg"]["error"]
    finally:
        os.chmod(pool / "locked", 0o755)
        os.chmod(pool / "danbooru_3.jpg", 0o644)
    # once readable again, the file is probed again although its size and mtime did not change
    assert scan(ws, pool).status == {"ok": 3}


def test_process_pool_gives_the_same_result(ws, tmp_path, messy):
    for i in range(40):
        draw_image(messy / "many" / f"danbooru_{100 + i}.jpg", seed=i)
    scan(ws, messy, name="inproc", workers=1, hash=True)
    ws2_root = tmp_path / "ws2"
    from tuiops.workspace import Workspace

    with Workspace.init(ws2_root) as ws2:
        summary = scan(ws2, messy, name="inproc", workers=2, hash=True)
        assert summary.total == len(EXPECTED) + 40
        keep = (
            "status",
            "width",
            "height",
            "format",
            "mode",
            "phash",
            "error",
            "checks",
            "key",
            "relpath_raw",
        )
        one = {k: tuple(r[c] for c in keep) for k, r in files_of(ws).items()}
        two = {k: tuple(r[c] for c in keep) for k, r in files_of(ws2).items()}
        assert one == two


def test_cancelled_scan_keeps_what_it_did_and_a_rescan_completes_it(ws, tmp_path):
    pool = tmp_path / "pool"
    for i in range(60):
        draw_image(pool / f"danbooru_{i}.png", (48, 32), seed=i)
    token = CancelToken()
    events: list[ProgressEvent] = []

    def on_progress(ev: ProgressEvent) -> None:
        events.append(ev)
        if ev.total:  # the walk is done and probing starts: cancel after the first chunk
            token.cancel()

    with pytest.raises(Cancelled):
        scan(ws, pool, hash=True, workers=1, progress=on_progress, cancel=token)
    done = ws.store.one("SELECT count(*) FROM files")
    assert 0 < done < 60
    assert ws.store.one("SELECT count(*) FROM files WHERE phash IS NULL OR item_id IS NULL") == 0
    assert ws.store.one("SELECT status FROM jobs ORDER BY id DESC LIMIT 1") == "cancelled"
    assert ws.store.one("SELECT scanned FROM pools") is None
    again = scan(ws, pool, hash=True)
    assert (again.new, again.unchanged, again.total) == (60 - done, done, 60)
    assert again.probed == 60 - done
    assert ws.store.one("SELECT count(*) FROM files WHERE status = 'ok' AND phash IS NOT NULL") == 60
    assert ws.store.one("SELECT scanned FROM pools") is not None


def test_checks_of_bad_files_need_no_rescan(ws, messy):
    scan(ws, messy)
    rows = files_of(ws)
    assert rows["zero.jpg"]["checks"] == CHECK_ALL
    assert rows["danbooru_14.jpg"]["checks"] == CHECK_ALL
    again = scan(ws, messy, verify=True)
    # good files and those only suspected truncated are decoded; definite failures are not
    assert again.probed == 7 + 1 + 2
    rows = files_of(ws)
    assert rows["danbooru_11.png"]["status"] == "truncated"
    assert rows["danbooru_10.jpg"]["status"] == "truncated"


def test_name_collision_of_escaped_non_utf8_name(ws, tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    draw_image(pool / "a\\xff.png")
    with open(os.path.join(os.fsencode(pool), b"a\xff.png"), "wb") as fh:
        fh.write((pool / "a\\xff.png").read_bytes())
    scan(ws, pool)
    rows = files_of(ws)
    assert set(rows) == {"a\\xff.png", "a\\xff.png#61ff2e706e67"}
    assert rows["a\\xff.png#61ff2e706e67"]["relpath_raw"] == b"a\xff.png"
    assert scan(ws, pool).probed == 0


def test_non_utf8_folder_names_survive(ws, tmp_path):
    pool = tmp_path / "pool"
    sub = os.path.join(os.fsencode(pool), b"d\xfcr")
    os.makedirs(sub)
    img = draw_image(tmp_path / "src.png", (33, 22))
    shutil.copy(img, os.path.join(sub, b"danbooru_20.png"))
    summary = scan(ws, pool, hash=True)
    rows = files_of(ws)
    assert set(rows) == {"d\\xfcr/danbooru_20.png"}
    row = rows["d\\xfcr/danbooru_20.png"]
    assert row["relpath_raw"] == b"d\xfcr/danbooru_20.png"
    assert (row["status"], row["width"], row["key"], row["keyed"]) == ("ok", 33, "danbooru_20", 1)
    assert summary.probed == 1 and scan(ws, pool).probed == 0
    os.unlink(os.path.join(sub, b"danbooru_20.png"))
    assert scan(ws, pool).deleted == 1
