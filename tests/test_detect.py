"""Detection into the store: streaming batches, resume after a kill, bad images, lineage, selections."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import CLASSES
from tests.test_train_support import draw_scene, index_pool, make_random_model
from tuiops.cli import run
from tuiops.errors import Cancelled, ConflictError, InputError, UsageError
from tuiops.ops import detect as detect_mod
from tuiops.ops.base import CancelToken
from tuiops.ops.detect import class_mapping, detect, load_image

N = 14
KW = {"conf": 1e-5, "imgsz": 64, "batch": 4, "max_det": 5}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("model") / "rand.pt", list(CLASSES))


@pytest.fixture
def pool_ws(ws, tmp_path):
    pool = tmp_path / "pool"
    for i in range(N):
        draw_scene(pool / f"danbooru_{i}.png", i, (80, 64))
    (pool / "danbooru_900.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)  # a JPEG cut short
    (pool / "danbooru_901.png").write_bytes(b"not an image at all")
    index_pool(ws, pool)
    # the store believes these two are fine (a pool changed since its scan)
    ws.store.execute("UPDATE files SET status = 'ok'")
    return ws


def _dets(ws, name: str) -> pl.DataFrame:
    return (
        ws.store.read_detections(name)
        .drop("id")
        .sort("item_id", "score", "x1", descending=[False, True, False])
    )


def test_whole_pool_with_lineage_and_bad_images(pool_ws, model_path):
    ws = pool_ws
    res = detect(ws, model_path, "v1", **KW)
    assert res.selected == N + 2 and res.processed == N and res.errors == 2
    assert res.detections == N * 5
    assert ws.store.one("SELECT count(*) FROM run_images") == N
    errs = dict(ws.store.execute("SELECT key, error FROM v_detect_errors").fetchall())
    assert set(errs) == {"danbooru_900", "danbooru_901"}
    assert "corrupt or truncated" in errs["danbooru_900"] and "not an image" in errs["danbooru_901"]
    row = ws.store.execute(
        "SELECT weights, weights_sha256, conf, iou, params, source FROM runs WHERE name='v1'"
    ).fetchone()
    assert row[0] == str(model_path.resolve())
    assert row[1] == hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert row[2] == pytest.approx(1e-5) and row[3] == pytest.approx(0.7)
    assert json.loads(row[4])["imgsz"] == 64 and row[5] == "detect"
    d = ws.store.read_detections("v1")
    assert d["class_id"].is_between(0, len(CLASSES) - 1).all()
    assert (d["x1"] >= 0).all() and (d["x2"] <= 80.001).all() and (d["y2"] <= 64.001).all()
    # boxes of one image come in score order, ids contiguous per image
    first = d.filter(pl.col("item_id") == d["item_id"][0])
    assert first["score"].is_sorted(descending=True)
    # nothing left to do; bad images are not retried unless asked
    again = detect(ws, model_path, "v1", **KW)
    assert again.processed == 0 and again.errors == 0 and again.already_done == N + 2 and again.resumed
    retry = detect(ws, model_path, "v1", retry_errors=True, **KW)
    assert retry.processed == 0 and retry.errors == 2
    assert ws.store.one("SELECT count(*) FROM detect_errors") == 2


def test_resume_after_cancel_and_interrupt_equals_one_run(pool_ws, model_path, monkeypatch):
    ws = pool_ws
    monkeypatch.setattr(detect_mod, "FLUSH_IMAGES", 4)
    whole = detect(ws, model_path, "whole", **KW)
    token = CancelToken()

    def cancel_soon(ev):
        if ev.done >= 4:
            token.cancel()

    with pytest.raises(Cancelled):
        detect(ws, model_path, "parts", progress=cancel_soon, cancel=token, **KW)
    done1 = ws.store.one(
        "SELECT count(*) FROM run_images r JOIN runs u ON u.id = r.run_id WHERE u.name='parts'"
    )
    assert 4 <= done1 < N
    job = ws.store.execute("SELECT status FROM jobs WHERE kind='detect' ORDER BY id DESC LIMIT 1").fetchone()
    assert job[0] == "cancelled"

    def interrupt(ev):
        if ev.done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        detect(ws, model_path, "parts", progress=interrupt, **KW)
    done2 = ws.store.one(
        "SELECT count(*) FROM run_images r JOIN runs u ON u.id = r.run_id WHERE u.name='parts'"
    )
    assert done1 < done2 < N
    last = detect(ws, model_path, "parts", **KW)
    assert last.resumed and last.already_done == done2
    assert last.processed + last.errors == N + 2 - done2
    assert _dets(ws, "parts").equals(_dets(ws, "whole"))
    assert whole.detections == N * 5


def test_limit_leaves_the_rest_for_later(pool_ws, model_path):
    ws = pool_ws
    res = detect(ws, model_path, "v1", limit=5, **KW)
    assert res.processed + res.errors == 5
    rest = detect(ws, model_path, "v1", **KW)
    assert rest.processed + rest.errors == N + 2 - 5
    assert ws.store.one("SELECT count(*) FROM run_images") == N


def test_conflicts_and_replace(pool_ws, model_path, tmp_path):
    ws = pool_ws
    detect(ws, model_path, "v1", where="fid < 3", **KW)
    other = make_random_model(tmp_path / "other.pt", list(CLASSES[::-1]))
    with pytest.raises(ConflictError, match="other weights"):
        detect(ws, other, "v1", **KW)
    with pytest.raises(ConflictError, match="other settings"):
        detect(ws, model_path, "v1", **{**KW, "conf": 0.5})
    res = detect(ws, other, "v1", replace=True, where="fid < 2", **KW)
    assert res.processed == 2 and not res.resumed
    assert ws.store.one("SELECT count(*) FROM run_images") == 2
    # the reversed class names are mapped by name onto the workspace's class map
    assert set(ws.store.read_detections("v1")["class_id"].to_list()) <= set(range(len(CLASSES)))


def test_selection_by_where_and_pool(pool_ws, model_path):
    ws = pool_ws
    res = detect(ws, model_path, "small", where="fid < 5 AND width = 80", pool="pool", **KW)
    assert res.selected == 5 and res.processed == 5
    with pytest.raises(InputError, match="not valid SQL"):
        detect(ws, model_path, "bad", where="no_such_column = 1", **KW)
    with pytest.raises(UsageError):
        detect(
            ws, model_path, "bad", where="fid < 1", images=pl.DataFrame({"item_id": [1], "path": ["x"]}), **KW
        )


def test_boxes_are_scaled_into_the_item_frame(pool_ws, model_path):
    ws = pool_ws
    # the item was first indexed from a copy twice as large: boxes belong in that frame
    ws.store.execute("UPDATE items SET width = 160, height = 128")
    detect(ws, model_path, "big", where="fid < 4", **KW)
    d = ws.store.read_detections("big")
    assert d["x2"].max() > 81 and d["x2"].max() <= 160.001 and d["y2"].max() <= 128.001


def test_class_map():
    assert class_mapping({0: "hand", 1: "head"}, CLASSES).tolist() == [3, 0]
    assert class_mapping({0: "x", 1: "y"}, CLASSES, "index").tolist() == [0, 1]
    with pytest.raises(InputError, match="not in the workspace class map"):
        class_mapping({0: "cat"}, CLASSES)
    with pytest.raises(InputError, match="class index 9"):
        class_mapping({9: "x"}, CLASSES, "index")


def test_load_image_never_raises(tmp_path):
    assert load_image(tmp_path / "missing.png")[1].startswith("cannot read")
    (tmp_path / "e.png").write_bytes(b"")
    assert load_image(tmp_path / "e.png")[1] == "the file is empty"
    p = tmp_path / "ok.png"
    draw_scene(p, 1, (30, 20))
    arr, err = load_image(str(p))
    assert err is None and arr.shape == (20, 30, 3)
    from PIL import Image

    Image.new("RGB", (12, 10), (1, 2, 3)).save(tmp_path / "a.gif")
    arr, err = load_image(tmp_path / "a.gif")
    assert err is None and arr.shape == (10, 12, 3)


def test_cli_detect(pool_ws, model_path, capsys):
    ws = pool_ws
    args = [
        "-w",
        str(ws.root),
        "detect",
        "--weights",
        str(model_path),
        "--run",
        "cli",
        "--conf",
        "0.00001",
        "--imgsz",
        "64",
        "--batch",
        "8",
        "--max-det",
        "3",
        "-q",
    ]
    assert run([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["processed"] == N and out["errors"] == 2 and out["detections"] == 3 * N
    assert 0.0 <= out["outside_model_share"] <= 1.0 and out["images_per_s"] > 0
    assert run(args) == 0
    text = capsys.readouterr().out
    assert "0 images" in text and f"{N + 2} of {N + 2} were done before" in text
    assert run([*args[:-1], "--where", "nonsense ("]) == 4
    assert "leaves 1 parenthesis(es) open" in capsys.readouterr().err
    assert run([*args[:-1], "--where", "nonsense"]) == 4
    assert "not valid SQL" in capsys.readouterr().err
    assert run(["-w", str(ws.root), "detect", "--weights", str(ws.root / "none.pt"), "--run", "x"]) == 5


def test_ultralytics_output_copes_with_a_closed_log_stream(capsys):
    """ultralytics' handler may hold the stdout of an earlier in-process command, closed since."""
    import io
    import logging

    from tuiops.ops.detect import ultralytics_output

    logger = logging.getLogger("ultralytics")
    old = io.StringIO()
    handler = logging.StreamHandler(old)
    logger.addHandler(handler)
    old.close()
    try:
        with ultralytics_output(None):
            logger.warning("loading weights")
        assert handler.stream is old
    finally:
        logger.removeHandler(handler)
    assert "loading weights" in capsys.readouterr().err
