"""`tuiops report`: PNG charts, painted worst images and one HTML page of a set against a run."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from PIL import Image

from tests.conftest import add_items
from tuiops.cli import run
from tuiops.errors import Cancelled, ConflictError, DiskError, UsageError
from tuiops.ops.base import CancelToken, ProgressEvent
from tuiops.ops.report import CHARTS, is_report, report, report_data
from tuiops.workspace import Workspace


# -- helpers --------------------------------------------------------------------------------------
class Page(HTMLParser):
    """What a test needs from the page: image sources, links, cells with data-key, text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.head: dict[str, str] = {}
        self.classes: dict[str, dict[str, str]] = {}
        self.text: list[str] = []
        self.meta: dict[str, str] = {}
        self.title = ""
        self._cell: tuple[str, str | None] | None = None
        self._row_class: str | None = None
        self._table: str | None = None
        self._in_title = False
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag not in ("img", "meta", "br", "link"):
            self.stack.append(tag)
        if tag == "img":
            self.srcs.append(a["src"] or "")
        elif tag == "a":
            self.hrefs.append(a["href"] or "")
        elif tag == "meta" and a.get("name"):
            self.meta[a["name"] or ""] = a.get("content") or ""
        elif tag == "table":
            self._table = a.get("id")
        elif tag == "tr":
            self._row_class = a.get("data-class")
        elif tag == "td" and a.get("data-key"):
            self._cell = (a["data-key"] or "", self._row_class)
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()
        if tag == "td":
            self._cell = None
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_title:
            self.title += data
        if self._cell is not None:
            key, cls = self._cell
            if self._table == "headline":
                self.head[key] = data
            elif self._table == "per-class" and cls is not None:
                self.classes.setdefault(cls, {})[key] = data


def parse(folder: Path) -> Page:
    page = Page()
    page.feed((folder / "index.html").read_text(encoding="utf-8"))
    page.close()
    assert page.stack == []
    return page


def number(cell: str) -> float:
    return -1.0 if cell == "–" else float(cell.replace(",", ""))


def cli_json(capsys: Any, *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert run(list(args)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo workspace (drawn pool, label set ``master``, run ``v1``) with a stored match with splits."""
    from tuiops.ops.demo import make_demo

    root = tmp_path_factory.mktemp("report") / "demo"
    make_demo(root, images=30)
    with Workspace.open(root) as ws:
        keys = ws.store.read_set_images("master")["key"].to_list()
    val = root / "val.txt"
    val.write_text("\n".join(keys[::3]) + "\n", encoding="utf-8")
    train = root / "train.txt"
    train.write_text("\n".join(k for i, k in enumerate(keys) if i % 3) + "\n", encoding="utf-8")
    w = ["-w", str(root)]
    split_args = ["--split-file", f"val={val}", "--split-file", f"train={train}"]
    assert run([*w, "match", "--set", "master", "--run", "v1", *split_args, "-q"]) == 0
    return root


@pytest.fixture
def scene(ws):  # type: ignore[no-untyped-def]
    """Three images without files: labels of classes 0 and 1 only; run ``r`` also detects class 3."""
    items = add_items(ws, ["danbooru_1", "danbooru_2", "danbooru_3"])
    a, b, c = items["item_id"].to_list()
    labels = pl.DataFrame(
        {
            "item_id": [a, a, b, c],
            "class_id": [0, 1, 0, 1],
            "x1": [10.0, 200.0, 50.0, 300.0],
            "y1": [10.0, 100.0, 50.0, 300.0],
            "x2": [110.0, 320.0, 150.0, 400.0],
            "y2": [110.0, 260.0, 150.0, 420.0],
        }
    )
    images = items.select("item_id")
    ws.store.create_label_set("gt", labels, images)
    dets = pl.DataFrame(
        {
            "item_id": [a, a, b, c, c],
            "class_id": [0, 0, 1, 1, 3],
            "x1": [12.0, 10.0, 50.0, 300.0, 500.0],
            "y1": [10.0, 12.0, 50.0, 300.0, 20.0],
            "x2": [110.0, 108.0, 150.0, 400.0, 600.0],
            "y2": [112.0, 110.0, 150.0, 420.0, 90.0],
            "score": [0.9, 0.8, 0.7, 0.6, 0.5],
        }
    )
    ws.store.create_run("r", dets, images)
    ws.store.create_run("empty", dets.head(0), images)
    return {"a": a, "b": b, "c": c}


# -- the files ------------------------------------------------------------------------------------
def test_report_files_page_and_numbers(demo, tmp_path, capsys):
    w = ["-w", str(demo)]
    out = tmp_path / "rep"
    res = cli_json(
        capsys, *w, "report", "--set", "master", "--run", "v1", "--to", str(out), "--top", "6", "--json"
    )
    ev = cli_json(capsys, *w, "eval", "--set", "master", "--run", "v1", "--json")
    assert res["index"] == str(out / "index.html") and res["folder"] == str(out)
    for name in CHARTS:
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.width >= 500 and 250 <= im.height <= 4000
    worst = sorted((out / "worst").iterdir())
    assert len(worst) == 12  # 6 of each split of the stored match
    assert [p.name[:3] for p in worst] == [f"{i:02d}_" for i in range(1, 13)]
    assert [x["split"] for x in res["worst"]] == ["train"] * 6 + ["val"] * 6
    for p in worst:
        with Image.open(p) as im:
            assert im.format == "JPEG" and im.width >= 100
    assert all(x["note"] is None for x in res["worst"])  # painted on the pool's own images
    assert sorted(res["files"]) == sorted(
        [*CHARTS, *(f"worst/{p.name}" for p in worst), "report.json", "index.html"]
    )
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    page = parse(out)
    assert page.meta["generator"] == "tuiops report"
    for name in [*CHARTS, *(f"worst/{p.name}" for p in worst)]:
        assert name in page.srcs
    assert all(
        not s.startswith(("/", "http", "file:")) and (out / s).is_file() for s in page.srcs + page.hrefs
    )
    keys = ("map", "map50", "map75", "map_small", "map_medium", "map_large")
    for k in (*keys, "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large"):
        assert number(page.head[k]) == pytest.approx(ev[k], abs=6e-5) if ev[k] >= 0 else page.head[k] == "–"
        assert res[k] == pytest.approx(ev[k], abs=1e-12)
    for cls, ap in ev["per_class"].items():
        assert number(page.classes[cls]["ap"]) == pytest.approx(ap, abs=6e-5) if ap >= 0 else True
    assert res["match"]["source"] == "stored match 'master__v1'"
    text = " ".join(page.text)
    assert "Per split" in text and "val" in text
    meta = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert meta["generator"] == "tuiops report" and meta["map"] == pytest.approx(ev["map"])
    assert is_report(out)


def test_confusion_equals_the_stored_match(demo):
    with Workspace.open(demo) as ws:
        data = report_data(ws, "master", "v1", top=5)
        counts = json.loads(ws.store.one("SELECT counts FROM matches WHERE name = 'master__v1'"))["all"]
        rows = ws.store.execute(
            "SELECT category, class_id, det_class_id, count(*) FROM v_match_objects "
            "WHERE match = 'master__v1' GROUP BY 1, 2, 3"
        ).fetchall()
        k = len(data.class_names)
        m = data.confusion
        assert data.match_name == "master__v1" and data.compared_images == counts["images"]
        for cat in ("tp", "loc", "cls", "dup", "fp", "fn"):
            assert data.totals[cat] == counts[cat], cat
        assert m[:k, :k].sum() - np.trace(m[:k, :k]) == counts["cls"]
        assert m[:k, k + 1].sum() == counts["fn"] and m[k + 1, :k].sum() == counts["fp"]
        for cat, c, d, n in rows:
            if cat == "cls":
                assert m[c, d] == n
            elif cat == "fn":
                assert m[c, k + 1] == n
            elif cat == "fp":
                assert m[k + 1, d] == n
        # a label class's row adds up to its labels; the per-class table agrees
        labels = ws.store.read_labels("master").group_by("class_id").len()
        for cid, n in labels.iter_rows():
            assert m[cid].sum() == n
            assert data.per_class.filter(pl.col("class_id") == cid)["labels"][0] == n
        assert data.score_tp.sum() == counts["tp"] and data.score_fp.sum() == counts["fp"]
        assert data.iou_counts["tp"].sum() == counts["tp"] and data.iou_counts["cls"].sum() == counts["cls"]
        # the per-split worst images of the stored match
        assert set(data.worst["split"].to_list()) == {"train", "val"}

        # a fresh match (other conf) equals a stored one made with that conf
        fresh = report_data(ws, "master", "v1", conf=0.4, top=5)
        assert fresh.match_name is None and "fresh match" in fresh.match_source
        from tuiops.ops.match import match, worst_images

        match(ws, "master", "v1", conf=0.4, name="master__v1__c4")
        stored = json.loads(ws.store.one("SELECT counts FROM matches WHERE name = 'master__v1__c4'"))["all"]
        assert all(fresh.totals[c] == stored[c] for c in fresh.totals)
        want = worst_images(ws.store, "master__v1__c4", n=5)
        assert fresh.worst["item_id"].to_list() == want["item_id"].to_list()
        assert fresh.worst["key"].to_list() == want["key"].to_list()


def test_pr_curves_come_from_the_eval_accumulation(demo):
    from tuiops.ops.evaluate import evaluate

    with Workspace.open(demo) as ws:
        data = report_data(ws, "master", "v1", top=0)
        ev = evaluate(ws, "master", "v1")
    ks = data.pr_classes()
    assert ks and data.worst.height == 0
    assert data.pr50[ks].mean() == pytest.approx(ev.stats["map50"], abs=1e-12)
    assert data.pr_mean[ks].mean() == pytest.approx(ev.stats["map"], abs=1e-12)
    for k in ks:
        assert data.pr_mean[k].mean() == pytest.approx(ev.per_class[data.class_names[k]], abs=1e-12)
        assert data.per_class["ap50"][k] == pytest.approx(data.pr50[k].mean())
    assert np.array_equal(data.pr50[ks[0]], ev.coco.precision[0, :, ks[0], 0])


def test_split_keeps_one_split(demo, tmp_path, capsys):
    w = ["-w", str(demo)]
    out = tmp_path / "val"
    res = cli_json(
        capsys, *w, "report", "--set", "master", "--run", "v1", "--to", str(out), "--split", "val", "--json"
    )
    val = demo / "val.txt"
    ev = cli_json(
        capsys,
        *w,
        "eval",
        "--set",
        "master",
        "--run",
        "v1",
        "--split-file",
        f"val={val}",
        "--split",
        "val",
        "--json",
    )
    assert res["map"] == pytest.approx(ev["map"], abs=1e-12) and res["images"] == ev["images"]
    assert {x["split"] for x in res["worst"]} == {"val"}
    with Workspace.open(demo) as ws:
        counts = json.loads(ws.store.one("SELECT counts FROM matches WHERE name = 'master__v1'"))["val"]
    assert all(res["match"][c] == counts[c] for c in ("tp", "loc", "cls", "dup", "fp", "fn"))
    assert "[val]" in parse(out).title
    capsys.readouterr()
    assert (
        run([*w, "report", "--set", "master", "--run", "v1", "--to", str(tmp_path / "x"), "--split", "test"])
        == 2
    )
    assert "no split 'test'" in capsys.readouterr().err


# -- awkward inputs -------------------------------------------------------------------------------
def test_empty_run_and_classes_without_labels(ws, scene, tmp_path):
    res = report(ws, "gt", "empty", tmp_path / "empty", top=3)
    d = res.data
    assert d.stats["map"] == 0.0 and d.totals["fn"] == 4 and d.totals["tp"] == d.totals["fp"] == 0
    assert d.score_tp.sum() == 0 and all(c.sum() == 0 for c in d.iou_counts.values())
    assert d.pr_classes() == [0, 1] and (d.pr50[[0, 1]] == 0).all()
    page = parse(tmp_path / "empty")
    assert page.classes["upper_body"]["ap"] == "0.0000" and page.classes["hand"]["ap"] == "–"
    for name in CHARTS:
        with Image.open(tmp_path / "empty" / name) as im:
            im.verify()
    # the images have no files: drawn on a grey canvas, and the page says why
    assert len(res.worst) == 3 and all(w["note"] == "no file of this image in a pool" for w in res.worst)

    res = report(ws, "gt", "r", tmp_path / "r", top=3)
    d = res.data
    assert d.per_class["ap"].to_list()[2:] == [-1.0, -1.0, -1.0]
    assert d.pr_classes() == [0, 1]
    k = len(d.class_names)
    assert d.confusion[k + 1, 3] == 1  # the hand detection without a label is extra
    assert d.totals == {"tp": 2, "loc": 0, "cls": 1, "dup": 1, "fp": 1, "fn": 1}
    rows, cols, _ = d.confusion_view()
    assert rows == ["head", "upper_body", "hand", "dup", "extra"] and cols[-2:] == ["loc", "missed"]


def test_names_with_markup_characters_are_escaped(ws, scene, tmp_path):
    boxes = ws.store.read_labels("gt").drop("id")
    images = ws.store.read_set_images("gt").select("item_id")
    odd_set, odd_run = 'gt <&> "q"', "r&<b>x</b>"
    ws.store.create_label_set(odd_set, boxes, images)
    ws.store.create_run(odd_run, ws.store.read_detections("r").drop("id"), images)
    ws.add_classes(["a<b>&c"])
    res = report(ws, odd_set, odd_run, tmp_path / "odd", top=2)
    raw = (tmp_path / "odd" / "index.html").read_text(encoding="utf-8")
    assert "<b>x</b>" not in raw and "<&>" not in raw
    page = parse(tmp_path / "odd")
    assert page.title == f"tuiops report: {odd_set} × {odd_run}"
    assert "a<b>&c" in page.classes
    assert res.data.set_name == odd_set


def test_target_folder_rules(ws, scene, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ConflictError, match="not empty and holds no earlier report"):
        report(ws, "gt", "r", other)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    (other / "worst").mkdir()
    (other / "worst" / "keep.jpg").write_bytes(b"mine")
    with pytest.raises(ConflictError, match="worst exists and belongs to no earlier report"):
        report(ws, "gt", "r", other, force=True)
    (other / "worst" / "keep.jpg").unlink()
    (other / "worst").rmdir()
    report(ws, "gt", "r", other, force=True, top=1)
    assert (other / "notes.txt").read_text(encoding="utf-8") == "mine" and (other / "index.html").is_file()
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ConflictError, match="is a file"):
        report(ws, "gt", "r", tmp_path / "file")

    # an earlier report is replaced: its worst images go
    out = tmp_path / "rep"
    report(ws, "gt", "r", out, top=3)
    assert len(list((out / "worst").iterdir())) == 3
    report(ws, "gt", "r", out, top=1)
    assert len(list((out / "worst").iterdir())) == 1
    assert len(parse(out).srcs) == len(CHARTS) + 1
    with pytest.raises(UsageError, match="--top"):
        report(ws, "gt", "r", out, top=-1)
    with pytest.raises(UsageError, match="--iou"):
        report(ws, "gt", "r", out, iou=0)


def test_cancel_midway_leaves_the_earlier_report_whole(ws, scene, tmp_path):
    out = tmp_path / "rep"
    report(ws, "gt", "r", out, top=3)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    token = CancelToken()

    def progress(ev: ProgressEvent) -> None:
        if ev.message == "confusion.png":
            token.cancel()

    with pytest.raises(Cancelled):
        report(ws, "gt", "empty", out, top=1, progress=progress, cancel=token)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    status = ws.store.execute(
        "SELECT status FROM jobs WHERE kind = 'report' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert status == ("cancelled",)

    fresh = tmp_path / "fresh"
    token = CancelToken()
    with pytest.raises(Cancelled):
        report(ws, "gt", "r", fresh, top=1, progress=progress, cancel=token)
    assert list(fresh.iterdir()) == []


def test_read_only_target_is_refused_with_nothing_written(ws, scene, tmp_path, capsys):
    from tests.test_fileops_support import mount_works, tmpfs

    if not mount_works(tmp_path):
        pytest.skip("needs root and tmpfs for a read-only folder")
    with tmpfs(tmp_path / "ro", ro=True) as ro:
        with pytest.raises(DiskError) as err:
            report(ws, "gt", "r", ro)
        assert str(ro) in str(err.value) and "read-only" in str(err.value)
        with pytest.raises(DiskError, match=str(ro / "sub")):
            report(ws, "gt", "r", ro / "sub")
        assert list(ro.iterdir()) == []
        capsys.readouterr()
        rc = run(["-w", str(ws.root), "report", "--set", "gt", "--run", "r", "--to", str(ro), "-q"])
        err_text = capsys.readouterr().err
        assert rc == 10 and f"cannot write into {ro}" in err_text and "Traceback" not in err_text


def test_cli_text_quiet_and_unknown_names(ws, scene, tmp_path, capsys):
    w = ["-w", str(ws.root)]
    capsys.readouterr()
    assert run([*w, "report", "--set", "gt", "--run", "r", "--to", str(tmp_path / "t"), "-q"]) == 0
    out = capsys.readouterr()
    assert "mAP" in out.out and f"open {tmp_path / 't' / 'index.html'}" in out.out and out.err == ""
    assert run([*w, "report", "--set", "gt", "--run", "nope", "--to", str(tmp_path / "u")]) == 5
    assert "no detection run named 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()
    assert (
        run([*w, "report", "--set", "gt", "--run", "r", "--to", str(tmp_path / "v"), "--split", "val"]) == 2
    )
    assert "--split needs a stored match" in capsys.readouterr().err
