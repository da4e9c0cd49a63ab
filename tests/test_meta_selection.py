"""`--tags` wherever a selection is: `select`, the file `ops` and `dataset build` take the images
whose posts a booru search finds — the same images a plain evaluation of the posts finds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import draw_image
from tuiops.errors import InputError

VOCAB = ["1girl", "solo", "monochrome", "long_hair", "short_hair", "holding_sword", "smile"]
N = 24


def _tags(fid: int) -> list[str]:
    rnd = random.Random(fid)
    return sorted(rnd.sample(VOCAB, rnd.randint(1, 4)))


@pytest.fixture
def tagged(ws, tmp_path):  # type: ignore[no-untyped-def]
    from tuiops.ops.meta import import_meta
    from tuiops.ops.scan import scan

    pool = tmp_path / "pool"
    for fid in range(1, N + 1):
        draw_image(pool / f"danbooru_{fid}.jpg", seed=fid)
    scan(ws, pool, hash=True)
    src = tmp_path / "posts.jsonl"
    rows = [{"id": f, "tag_string": " ".join(_tags(f)), "rating": "sq"[f % 2]} for f in range(1, N + 1)]
    rows.append(
        {"id": 999, "tag_string": "1girl solo", "rating": "s"}
    )  # a post whose image is not in the pool
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_meta(ws, src)
    items = dict(ws.store.execute("SELECT fid, id FROM items").fetchall())
    labels = pl.DataFrame(
        [(items[f], 0, 4.0, 4.0, 30.0, 30.0) for f in range(1, N + 1)],
        schema=["item_id", "class_id", "x1", "y1", "x2", "y2"],
        orient="row",
    )
    ws.store.create_label_set("gt", labels, pl.DataFrame({"item_id": [items[f] for f in range(1, N + 1)]}))
    return ws


def _expected(must: set[str], never: set[str], rating: str | None = None) -> list[int]:
    return [
        f
        for f in range(1, N + 1)
        if must <= set(_tags(f)) and not never & set(_tags(f)) and (rating is None or "sq"[f % 2] == rating)
    ]


def _fids(keys: list[str]) -> list[int]:
    return sorted(int(k.split("_")[1]) for k in keys)


def test_select_takes_the_images_a_plain_evaluation_finds(tagged, capsys, tmp_path):
    from tuiops.cli import run

    root = str(tagged.root)
    for query, must, never, rating in (
        ("1girl -monochrome", {"1girl"}, {"monochrome"}, None),
        ("solo long_hair", {"solo", "long_hair"}, set(), None),
        ("-smile rating:s", set(), {"smile"}, "s"),
    ):
        want = _expected(must, never, rating)
        assert want, query
        keys = tmp_path / "keys.txt"
        assert run(["-w", root, "select", "--tags", query, "--keys-out", str(keys), "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["files"] == len(want) and out["warnings"] == []
        assert _fids(keys.read_text().split()) == want
    # ANDed with --where; a tag no post has is said, not silently an empty selection
    assert run(["-w", root, "select", "--tags", "1girl holding_swrod", "--where", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files"] == 0
    assert out["warnings"] == ["--tags '1girl holding_swrod': no tag matches 'holding_swrod'"]


def test_ops_copy_takes_the_tagged_images_and_a_saved_search_replans(tagged, capsys, tmp_path):
    from tuiops.cli import run

    root = str(tagged.root)
    dest = tmp_path / "out"
    assert run(["-w", root, "ops", "copy", "--tags", "1girl -monochrome", "--to", str(dest), "--json"]) == 0
    json.loads(capsys.readouterr().out)
    copied = sorted(int(p.stem.split("_")[1]) for p in dest.iterdir() if p.suffix == ".jpg")
    assert copied == _expected({"1girl"}, {"monochrome"})
    # the job records the query itself, so a job killed while planning is planned again from it
    params = json.loads(tagged.store.one("SELECT params FROM jobs ORDER BY id DESC LIMIT 1"))
    assert params["selection"] == {"tags": "1girl -monochrome"}


def test_dataset_build_keeps_its_tag_search_for_rebuilds(tagged, capsys, tmp_path):
    from tuiops.ops.dataset import build_dataset

    want = _expected({"solo"}, set())
    res = build_dataset(tagged, "gt", tmp_path / "ds", tags="solo", val=0.0)
    listed = sorted(int(Path(p).stem.split("_")[1]) for p in (tmp_path / "ds" / "images" / "train").iterdir())
    assert listed == want and res.warnings == []
    # a rebuild without --tags keeps it; "" drops it
    again = build_dataset(tagged, "gt", tmp_path / "ds")
    assert again.to_dict()["images"] == len(want)
    whole = build_dataset(tagged, "gt", tmp_path / "ds", tags="")
    assert whole.to_dict()["images"] == N
    with pytest.raises(InputError, match="--tags 'nosuchtag solo': no tag matches 'nosuchtag'"):
        build_dataset(tagged, "gt", tmp_path / "ds", tags="nosuchtag solo")
    # the warning comes with a dataset that is written too
    some = build_dataset(tagged, "gt", tmp_path / "ds", tags="solo ~nosuchtag ~smile")
    assert some.warnings == ["--tags 'solo ~nosuchtag ~smile': no tag matches 'nosuchtag'"]


def test_the_image_info_shows_its_post_with_tags_by_category(ws, tmp_path):
    """The quick view and the viewer show an image's post: rating, score and its tags,
    character/copyright/artist first as on the booru's post page."""
    from tuiops.ops.browse import image_info
    from tuiops.ops.meta import import_meta
    from tuiops.ops.scan import scan

    draw_image(tmp_path / "pool" / "danbooru_5.jpg", seed=5)
    draw_image(tmp_path / "pool" / "danbooru_6.jpg", seed=6)
    scan(ws, tmp_path / "pool")
    src = tmp_path / "posts.jsonl"
    rec = {
        "id": 5,
        "tag_string": "1girl hatsune_miku solo vocaloid highres",
        "tag_string_general": "1girl solo",
        "tag_string_character": "hatsune_miku",
        "tag_string_copyright": "vocaloid",
        "tag_string_meta": "highres",
        "rating": "s",
        "score": 42,
    }
    src.write_text(json.dumps(rec) + "\n")
    import_meta(ws, src)
    info = image_info(ws.store, key="danbooru_5")
    lines = [
        (k, v) for k, v in info.meta_lines() if k in ("post", "character", "copyright", "general", "meta")
    ]
    assert lines == [
        ("post", "danbooru #5 · rating s · score 42"),
        ("character", "hatsune_miku"),
        ("copyright", "vocaloid"),
        ("general", "1girl solo"),
        ("meta", "highres"),
    ]
    assert image_info(ws.store, key="danbooru_6").post == {}
