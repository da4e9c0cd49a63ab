"""`meta import`: posts into a real store, streamed in one transaction, every line accounted for."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import draw_image

REPO = Path(__file__).resolve().parents[1]


def post(fid: int, tags: str, **kw: object) -> dict[str, object]:
    return {"id": fid, "tag_string": tags, "rating": "s", "score": fid % 7, **kw}


def write_jsonl(path: Path, rows: list[object]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


def posts(ws) -> list[tuple]:  # type: ignore[no-untyped-def]
    return ws.store.execute(
        "SELECT booru, fid, rating, score, tags FROM meta_posts ORDER BY booru, fid"
    ).fetchall()


def found(ws, query: str) -> list[int]:  # type: ignore[no-untyped-def]
    from tuiops.ops.meta import search_posts

    frame, _ = search_posts(ws.store, query)
    return sorted(frame.get_column("fid").to_list())


def test_bad_lines_are_reported_with_file_and_line_and_the_rest_is_kept(ws, tmp_path):
    from tuiops.ops.meta import import_meta

    src = write_jsonl(
        tmp_path / "posts.jsonl",
        [
            post(1, "1girl solo"),
            "{not json",
            {"tag_string": "no_id"},
            post(2, "1boy", rating="x"),
            post(3, "1girl", score="many"),
            [1, 2],
            "",
            post(4, "1boy solo", score="12"),
        ],
    )
    s = import_meta(ws, src)
    assert (s.posts, s.new, s.bad_lines) == (2, 2, 5)
    bad = [p.split(": ", 1)[0] for p in s.problems]
    assert bad == [f"{src}:{n}" for n in (2, 3, 4, 5, 6)]
    assert "rating 'x'" in s.problems[2] and "score 'many'" in s.problems[3]
    assert all(p.endswith("left out") for p in s.problems)
    assert posts(ws) == [("danbooru", 1, "s", 1, "1girl solo"), ("danbooru", 4, "s", 12, "1boy solo")]


def test_an_id_given_twice_keeps_the_later_line_and_is_reported(ws, tmp_path, monkeypatch):
    from tuiops.ops.meta import importer

    monkeypatch.setattr(importer, "BATCH", 2)  # the repeat lands in another batch than the first
    src = write_jsonl(
        tmp_path / "p.jsonl",
        [post(1, "old_tag"), post(2, "a"), post(3, "b"), post(1, "new_tag"), post(3, "c"), post(3, "d")],
    )
    s = importer.import_meta(ws, src)
    assert s.duplicates == 3 and s.posts == 3
    assert [p.split(": ", 1)[0] for p in s.problems] == [f"{src}:{n}" for n in (4, 5, 6)]
    assert [r[4] for r in posts(ws)] == ["new_tag", "a", "d"]
    assert found(ws, "old_tag") == [] and found(ws, "new_tag") == [1]
    assert found(ws, "b") == [] and found(ws, "c") == [] and found(ws, "d") == [3]


def _pool(ws, tmp_path: Path, fids: list[int]) -> dict[int, Path]:  # type: ignore[no-untyped-def]
    from tuiops.ops.scan import scan

    root = tmp_path / "pool"
    files = {fid: draw_image(root / f"danbooru_{fid}.jpg", seed=fid) for fid in fids}
    scan(ws, root)
    return files


def test_posts_without_images_are_kept_and_counted_and_md5_and_size_are_checked(ws, tmp_path):
    from tuiops.ops.meta import import_meta

    files = _pool(ws, tmp_path, [1, 2, 3, 4])
    good = files[1].read_bytes()
    rows = [
        post(1, "a", md5=hashlib.md5(good).hexdigest(), file_size=len(good)),
        post(2, "a", md5="0" * 32),
        post(3, "a", file_size=files[3].stat().st_size + 1),
        post(4, "a"),
        post(5, "a", md5="f" * 32, file_size=1),
        post(6, "b"),
    ]
    s = import_meta(ws, write_jsonl(tmp_path / "p.jsonl", rows))
    assert (s.posts, s.with_image, s.without_image) == (6, 4, 2)
    assert (s.md5_mismatches, s.size_mismatches, s.checked_files) == (1, 1, 3)
    text = "\n".join(s.problems)
    assert f"p.jsonl:2: {files[2]} has md5" in text and "says 00000000" in text
    assert f"p.jsonl:3: {files[3]} has {files[3].stat().st_size} bytes" in text
    checks = ws.store.execute(
        "SELECT p.fid, c.kind FROM meta_checks c JOIN meta_posts p ON p.id = c.post_id ORDER BY p.fid"
    ).fetchall()
    assert checks == [(2, "md5"), (3, "size")]
    assert len(posts(ws)) == 6
    # the images' metadata shows in v_images
    tags = ws.store.execute("SELECT fid, tags, rating FROM v_images ORDER BY fid").fetchall()
    assert tags == [(1, "a", "s"), (2, "a", "s"), (3, "a", "s"), (4, "a", "s")]
    # without reading files, only the size is compared
    s2 = import_meta(ws, tmp_path / "p.jsonl", md5=False)
    assert (s2.md5_mismatches, s2.size_mismatches, s2.unchanged) == (0, 1, 6)


def test_a_re_import_changes_nothing_an_update_moves_the_tags_and_replace_removes(ws, tmp_path):
    from tuiops.ops.meta import import_meta

    rows = [post(i, f"t{i % 5} common", created_at="2024") for i in range(1, 41)]
    src = write_jsonl(tmp_path / "p.jsonl", rows)
    s1 = import_meta(ws, src)
    before = posts(ws)
    s2 = import_meta(ws, src)
    assert (s1.new, s2.new, s2.updated, s2.unchanged) == (40, 0, 0, 40)
    assert posts(ws) == before and len(found(ws, "common")) == 40
    rows[0] = post(1, "moved common")
    rows[1] = post(2, "t2 common", rating="e")
    s3 = import_meta(ws, write_jsonl(tmp_path / "p.jsonl", rows))
    assert (s3.new, s3.updated, s3.unchanged) == (0, 2, 38)
    assert found(ws, "moved") == [1] and 1 not in found(ws, "t1") and found(ws, "rating:e") == [2]
    # a second booru is left alone by --replace of the first
    import_meta(ws, write_jsonl(tmp_path / "g.jsonl", [post(1, "common")]), booru="gelbooru")
    s4 = import_meta(ws, write_jsonl(tmp_path / "few.jsonl", rows[:3]), replace=True)
    assert (s4.removed, s4.unchanged) == (37, 3)
    assert [r[:2] for r in posts(ws)] == [("danbooru", 1), ("danbooru", 2), ("danbooru", 3), ("gelbooru", 1)]
    assert found(ws, "common") == [1, 1, 2, 3]
    assert found(ws, "t4") == []
    ws.store.execute("INSERT INTO meta_fts(meta_fts) VALUES ('integrity-check')")


def test_csv_and_json_of_other_boorus(ws, tmp_path):
    from tuiops.ops.meta import import_meta

    csv = tmp_path / "y.csv"
    csv.write_text(
        'id,tags,rating,score,width,height\n7,"tag_a tag_b",questionable,3,800,600\n8,tag_b,safe,,,\nx,tag_c,s,,,\n'
        "9,tag_d,s,1,2,3,4\n",
        encoding="utf-8",
    )
    s = import_meta(ws, csv, booru="yandere")
    assert (s.posts, s.bad_lines) == (2, 2)
    assert [p.split(": ", 1)[0] for p in s.problems] == [f"{csv}:4", f"{csv}:5"]
    keyed = tmp_path / "k.json"
    keyed.write_text(json.dumps({"post": [{"key": "gelbooru_5.jpg", "tags": "tag_b"}, {"key": "x"}]}))
    s2 = import_meta(ws, keyed)
    assert (s2.posts, s2.bad_lines) == (1, 1)
    assert posts(ws) == [
        ("gelbooru", 5, None, None, "tag_b"),
        ("yandere", 7, "q", 3, "tag_a tag_b"),
        ("yandere", 8, "s", None, "tag_b"),
    ]


def _events(fd: int):  # type: ignore[no-untyped-def]
    with os.fdopen(fd, "rb") as f:
        for line in f:
            yield json.loads(line)


def test_a_killed_import_leaves_the_store_as_it_was(ws, tmp_path):
    """The import reads from a pipe: half the file is written, the import reports its
    progress, it is killed while waiting for the rest; nothing of it is in the store."""
    from tuiops.events import EVENTS_FD_ENV
    from tuiops.ops.meta import import_meta, importer

    import_meta(ws, write_jsonl(tmp_path / "first.jsonl", [post(1, "kept")]))
    ws.close()
    fifo = tmp_path / "posts.jsonl"
    os.mkfifo(fifo)
    r, w = os.pipe()
    env = {**os.environ, EVENTS_FD_ENV: str(w), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "tuiops", "-w", str(ws.root), "meta", "import", str(fifo), "--replace"]
    proc = subprocess.Popen(cmd, pass_fds=(w,), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(w)

    def feed() -> None:
        try:
            with fifo.open("w") as fh:
                # past the first batch and then two more, so a progress event comes after it
                for i in range(2, 3 * importer.BATCH + 2):
                    fh.write(json.dumps(post(i, "lost")) + "\n")
                fh.flush()
                proc.wait()  # the file stays open (unfinished) until the import is gone
        except BrokenPipeError:
            pass

    # killed once it has read past its first batch of posts (written, not committed)
    past_first_batch = sum(len(json.dumps(post(i, "lost"))) + 1 for i in range(2, importer.BATCH + 3000))
    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    # an import that never reports reading past its first batch is stopped, and the test fails
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    killed_past_first_batch = False
    try:
        # the events end when the process does: a failure to start cannot hang the test
        for ev in _events(r):
            if ev["event"] == "progress" and ev["done"] >= past_first_batch:
                proc.send_signal(signal.SIGKILL)
                killed_past_first_batch = True
                break
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        # a writer still waiting for a reader is let go
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.join()
    assert killed_past_first_batch and proc.returncode == -signal.SIGKILL
    from tuiops.workspace import Workspace

    again = Workspace.open(ws.root)
    try:
        assert posts(again) == [("danbooru", 1, "s", 1, "kept")]
        assert again.store.one("SELECT count(*) FROM meta_imports") == 1
        assert found(again, "kept") == [1] and found(again, "lost") == []
    finally:
        again.close()


def test_meta_import_on_the_command_line(ws, tmp_path, capsys):
    from tuiops.cli import run

    src = write_jsonl(tmp_path / "p.jsonl", [post(1, "a b"), "oops", post(2, "b")])
    assert run(["-w", str(ws.root), "meta", "import", str(src), "--json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert (data["posts"], data["bad_lines"], data["without_image"]) == (2, 1, 2)
    assert f"{src}:2: not JSON" in out.err
    assert run(["-w", str(ws.root), "meta", "search", "b -a", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["posts"] == 1
    assert run(["-w", str(ws.root), "meta", "search", "rating:z"]) == 4
    err = capsys.readouterr().err
    assert "'z' is not a rating (g, s, q, e) at column 8" in err and "\n         ^" in err


@pytest.mark.parametrize("fmt", ["danbooru-jsonl"])
def test_older_dumps_with_tag_objects_and_digit_strings(ws, tmp_path, fmt):
    from tuiops.ops.meta import import_meta, tag_counts

    rec = {
        "id": "12",
        "tags": [
            {"id": "1", "name": "saber", "category": "4"},
            {"id": "2", "name": "sword", "category": "0"},
        ],
        "rating": "s",
        "score": "4",
        "image_width": "800",
        "image_height": "600",
    }
    s = import_meta(ws, write_jsonl(tmp_path / "old.jsonl", [rec]), fmt=fmt)
    assert s.posts == 1 and s.bad_lines == 0
    assert ws.store.execute("SELECT fid, score, width, tags FROM meta_posts").fetchall() == [
        (12, 4, 800, "saber sword")
    ]
    counts = tag_counts(ws.store).to_dicts()
    assert {(r["tag"], r["category"], r["posts"]) for r in counts} == {
        ("saber", "character", 1),
        ("sword", "general", 1),
    }


def test_a_tag_without_a_category_takes_one_from_a_later_import(ws, tmp_path):
    from tuiops.ops.meta import import_meta

    csv = tmp_path / "g.csv"
    csv.write_text("id,tags\n1,saber sword\n", encoding="utf-8")
    import_meta(ws, csv, booru="gelbooru")
    assert found(ws, "character:saber") == []
    rec = post(2, "saber armor", tag_string_character="saber", tag_string_general="armor")
    import_meta(ws, write_jsonl(tmp_path / "d.jsonl", [rec]))
    cats = dict(ws.store.execute("SELECT name, category FROM meta_tags").fetchall())
    assert cats == {"saber": "character", "sword": None, "armor": "general"}
    assert found(ws, "character:saber") == [1, 2] and found(ws, "general:s*") == []


def test_a_gzipped_dump_is_read_as_it_is_and_a_truncated_one_refused(ws, tmp_path):
    import gzip

    from tuiops.errors import InputError
    from tuiops.ops.meta import import_meta

    rows = [post(i, f"tag{i % 3} common") for i in range(1, 2001)]
    plain = write_jsonl(tmp_path / "posts.jsonl", rows)
    packed = tmp_path / "posts.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    s = import_meta(ws, packed)
    assert (s.format, s.posts, s.bad_lines) == ("danbooru-jsonl", 2000, 0)
    assert import_meta(ws, plain).unchanged == 2000
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    with pytest.raises(InputError, match=r"cut.jsonl.gz:\d+: the file cannot be read to its end") as info:
        import_meta(ws, cut, replace=True)
    assert info.value.exit_code == 4
    assert ws.store.one("SELECT count(*) FROM meta_posts") == 2000
