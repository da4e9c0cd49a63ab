"""`tuiops scan` and `tuiops pools` through the real CLI, asserting through the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_scan import EXPECTED, make_messy_pool
from tuiops.cli import cli, run
from tuiops.store import Store


@pytest.fixture
def setup(tmp_path: Path) -> tuple[str, Path]:
    w = str(tmp_path / "ws")
    assert run(["init", w]) == 0
    return w, make_messy_pool(tmp_path / "pool")


def invoke(*args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_scan_prints_a_summary_and_fills_the_store(setup):
    w, pool = setup
    res = invoke("-w", w, "scan", str(pool))
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert f"pool pool  {pool.resolve()}" in out
    assert "files" in out and "(new 13, changed 0, unchanged 0, deleted 0; probed 13)" in out
    for line in ("ok                7", "truncated         2", "not_image         1", "wrong_ext         1"):
        assert line in out
    assert "danbooru_10.jpg: truncated: no JPEG end marker" in out
    assert "unkeyed           3  e.g." in out and "cover.png" in out
    assert "skipped           1  (hidden 1)" in out
    assert "files/s)" in out
    with Store(Path(w) / "tuiops.db") as store:
        assert store.one("SELECT count(*) FROM files") == len(EXPECTED)
        assert store.one("SELECT status FROM files WHERE relpath = 'danbooru_12.jpg'") == "corrupt"


def test_plain_progress_lines_when_not_a_terminal(setup):
    w, pool = setup
    res = invoke("-w", w, "scan", str(pool))
    lines = res.stderr.strip().splitlines()
    assert lines and all(line.startswith("scan: ") for line in lines)
    assert lines[-1] == "scan: 13/13 (100%) done"
    quiet = invoke("-w", w, "scan", str(pool), "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_scan_json_and_rescan_by_name(setup):
    w, pool = setup
    res = invoke("-w", w, "scan", str(pool), "--hash", "--exif", "--json", "-q")
    data = json.loads(res.stdout)
    assert data["total"] == 13 and data["bad_total"] == 6 and data["unkeyed"] == 3
    assert data["bad"]["truncated"] == 2 and data["status"]["ok"] == 7
    assert data["skipped"] == {"hidden": 1} and isinstance(data["files_per_s"], float)
    (pool / "danbooru_1.jpg").unlink()
    again = json.loads(invoke("-w", w, "scan", "--name", "pool", "--json", "-q").stdout)
    assert (again["deleted"], again["probed"], again["status"]["missing"]) == (1, 0, 1)
    with Store(Path(w) / "tuiops.db") as store:
        assert store.one("SELECT count(*) FROM files WHERE phash IS NOT NULL") == 8


def test_relative_folder_is_taken_from_the_current_folder(setup, monkeypatch):
    w, pool = setup
    monkeypatch.chdir(pool.parent)
    assert invoke("-w", w, "scan", "pool", "--name", "rel", "-q").exit_code == 0
    text = (Path(w) / "tuiops.toml").read_text()
    assert "[pools.rel]" in text and str(pool.resolve()) in text


def test_pools_lists_counts(setup):
    w, pool = setup
    assert invoke("-w", w, "pools").stdout.startswith("(no pools")
    invoke("-w", w, "scan", str(pool), "--name", "main", "-q")
    res = invoke("-w", w, "pools")
    header, row = res.stdout.splitlines()
    assert header.split()[:7] == ["pool", "files", "ok", "bad", "missing", "unkeyed", "hashed"]
    assert row.split()[:7] == ["main", "13", "7", "6", "0", "3", "0"]
    data = json.loads(invoke("-w", w, "pools", "--json").stdout)
    assert data == [
        {
            "name": "main",
            "root": str(pool.resolve()),
            "scanned": data[0]["scanned"],
            "files": 13,
            "ok": 7,
            "bad": 6,
            "missing": 0,
            "unkeyed": 3,
            "hashed": 0,
            "options": [],
        }
    ]
    invoke("-w", w, "scan", "--name", "main", "--hash", "--exif", "-q")
    header, row = invoke("-w", w, "pools").stdout.splitlines()
    assert header.split()[7] == "options" and row.split()[7] == "hash,exif"


def test_user_mistakes_are_clear_errors(setup, capsys, tmp_path):
    w, pool = setup
    assert run(["-w", w, "scan", str(tmp_path / "absent")]) == 5
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert run(["-w", w, "scan", str(pool), "-q"]) == 0
    capsys.readouterr()
    assert run(["-w", w, "scan", str(pool), "--name", "again", "-q"]) == 6
    err = capsys.readouterr().err
    assert "root of pool 'pool'" in err and "--name pool" in err
    assert run(["-w", w, "scan"]) == 2
    assert "give the folder to scan" in capsys.readouterr().err
    assert run(["-w", w, "scan", str(pool), "--workers", "0"]) == 2
    file = pool / "danbooru_1.jpg"
    assert run(["-w", w, "scan", str(file)]) == 2  # click: not a folder
