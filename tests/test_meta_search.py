"""The booru search syntax against a plain Python evaluation of the same query on drawn posts."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

#: Tags with the characters that SQL LIKE, GLOB, FTS5 and quoting treat specially.
ADVERSARIAL = [
    "100%",
    "a_b",
    "a%b",
    "_",
    "it's",
    '"quoted"',
    "back\\slash",
    "日本語",
    "ｆｕｌｌ",
    "[x]",
    "a?b",
    "x'_OR_1=1_--",
    ":d",
    "re:zero",
    "AND",
    "NOT",
    "t1",
    "^_^",
    "Café",
    "café",
]
PLAIN = [
    "1girl",
    "solo",
    "long_hair",
    "short_hair",
    "blue_hair",
    "smile",
    "sword",
    "holding_sword",
    "hand",
    "hat",
]
VOCAB = PLAIN + ADVERSARIAL
CATEGORY = {t: random.Random(t).choice(["general", "general", "character", "artist", None]) for t in VOCAB}
RATINGS = ["g", "s", "q", "e", None]


def draw_posts(n: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for fid in range(1, n + 1):
        tags = rnd.sample(VOCAB, rnd.randint(0, 6))
        rec: dict = {"id": fid, "tag_string": " ".join(tags)}
        for cat in ("general", "character", "artist"):
            rec[f"tag_string_{cat}"] = " ".join(t for t in tags if CATEGORY[t] == cat)
        if (r := rnd.choice(RATINGS)) is not None:
            rec["rating"] = r
        if rnd.random() < 0.8:
            rec["score"] = rnd.randint(-3, 30)
        if rnd.random() < 0.8:
            rec["image_width"] = rnd.choice([512, 1024, 2048])
        out.append(rec)
    return out


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):  # type: ignore[no-untyped-def]
    from tuiops.ops.meta import import_meta
    from tuiops.workspace import Workspace

    root = tmp_path_factory.mktemp("search")
    ws = Workspace.init(root / "ws", classes=["hand"])
    rows = draw_posts(400, seed=7)
    src = root / "posts.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    s = import_meta(ws, src)
    assert s.posts == 400 and s.bad_lines == 0
    yield ws, rows
    ws.close()


# -- the independent evaluation ----------------------------------------------------------------------
def tag_matches(pattern: str, category: str | None, tags: list[str]) -> bool:
    rx = re.compile("".join(".*" if ch == "*" else re.escape(ch) for ch in pattern), re.S)
    return any(rx.fullmatch(t) and (category is None or CATEGORY[t] == category) for t in tags)


def meta_holds(term: tuple, rec: dict) -> bool:
    name, op, *vals = term
    col = {"score": "score", "width": "image_width", "id": "id", "rating": "rating", "tagcount": None}[name]
    v = len(rec["tag_string"].split()) if name == "tagcount" else rec.get(col)
    if v is None:
        return False
    if op == "in":
        return v in vals
    if op == "between":
        return vals[0] <= v <= vals[1]
    return {"=": v == vals[0], ">": v > vals[0], ">=": v >= vals[0], "<": v < vals[0], "<=": v <= vals[0]}[op]


def evaluate(q: dict, rec: dict) -> bool:
    tags = rec["tag_string"].split()
    if not all(tag_matches(p, c, tags) for p, c in q["must"]):
        return False
    if any(tag_matches(p, c, tags) for p, c in q["not"]):
        return False
    if q["any"] and not any(tag_matches(p, c, tags) for p, c in q["any"]):
        return False
    if not all(meta_holds(t, rec) for t in q["meta"]):
        return False
    return not any(meta_holds(t, rec) for t in q["meta_not"])


# -- drawing queries -----------------------------------------------------------------------------------
def draw_tag(rnd: random.Random) -> tuple[str, str | None, str]:
    tag = rnd.choice([*VOCAB, "missing_tag"])
    kind = rnd.random()
    if kind < 0.2 and len(tag) > 1:
        cut = rnd.randint(1, len(tag) - 1)
        pattern = rnd.choice([tag[:cut] + "*", "*" + tag[cut:], "*" + tag[cut - 1 : cut] + "*"])
    else:
        pattern = tag
    category = rnd.choice(["character", "general", "artist"]) if rnd.random() < 0.15 else None
    text = f"{category}:{pattern}" if category else pattern
    return pattern, category, text


def draw_meta(rnd: random.Random) -> tuple[tuple, str]:
    name = rnd.choice(["score", "width", "id", "rating", "tagcount"])
    if name == "rating":
        vals = sorted(set(rnd.sample("gsqe", rnd.randint(1, 2))))
        return ("rating", "in", *vals), "rating:" + ",".join(vals)
    n = rnd.randint(-2, 30) if name != "width" else rnd.choice([512, 1024, 2048, 1000])
    op = rnd.choice(["=", ">", ">=", "<", "<=", "between", "lo..", "..hi"])
    if op == "between":
        m = n + rnd.randint(0, 10)
        return (name, "between", n, m), f"{name}:{n}..{m}"
    if op == "lo..":
        return (name, ">=", n), f"{name}:{n}.."
    if op == "..hi":
        return (name, "<=", n), f"{name}:..{n}"
    return (name, op, n), f"{name}:{'' if op == '=' and rnd.random() < 0.5 else op}{n}"


def draw_query(rnd: random.Random) -> tuple[dict, str]:
    q: dict = {"must": [], "not": [], "any": [], "meta": [], "meta_not": []}
    parts = []
    for _ in range(rnd.randint(0, 5)):
        r = rnd.random()
        if r < 0.6:
            p, c, text = draw_tag(rnd)
            sign = rnd.choice(["", "", "-", "~"])
            q[{"": "must", "-": "not", "~": "any"}[sign]].append((p, c))
            parts.append(sign + text)
        else:
            term, text = draw_meta(rnd)
            neg = rnd.random() < 0.3
            q["meta_not" if neg else "meta"].append(term)
            parts.append(("-" if neg else "") + text)
    rnd.shuffle(parts)
    return q, rnd.choice([" ", "  ", "\t"]).join(parts)


def search(ws, query: str) -> list[int]:  # type: ignore[no-untyped-def]
    from tuiops.ops.meta import search_posts

    frame, _ = search_posts(ws.store, query)
    return frame.get_column("fid").to_list()


def test_drawn_queries_find_what_a_plain_evaluation_finds(drawn):
    from tuiops.ops.meta import count_posts

    ws, rows = drawn
    rnd = random.Random(2024)
    nonempty = 0
    for _ in range(400):
        q, text = draw_query(rnd)
        want = sorted((r["id"] for r in rows if evaluate(q, r)), reverse=True)  # default order: id_desc
        got = search(ws, text)
        assert got == want, text
        assert count_posts(ws.store, text)[0] == len(want), text
        nonempty += bool(want)
    assert nonempty > 100


@pytest.mark.parametrize("tag", ADVERSARIAL)
def test_each_adversarial_tag_is_found_exactly_and_as_a_pattern(drawn, tag):
    ws, rows = drawn
    want = sorted((r["id"] for r in rows if tag in r["tag_string"].split()), reverse=True)
    assert want, tag
    assert search(ws, tag) == want
    assert search(ws, f"-{tag}") == sorted((r["id"] for r in rows if r["id"] not in want), reverse=True)
    if len(tag) > 1:
        prefix = tag[:-1] + "*"
        assert search(ws, prefix) == sorted(
            (r["id"] for r in rows if any(t.startswith(tag[:-1]) for t in r["tag_string"].split())),
            reverse=True,
        )


def test_sql_and_glob_characters_are_only_themselves(drawn):
    ws, rows = drawn
    assert search(ws, "%") == [] and search(ws, "_*") == search(ws, "_")  # only the tag "_" starts with "_"
    assert search(ws, "a?b") == search(ws, "a?b")
    assert set(search(ws, "a*b")) == {
        r["id"] for r in rows if any(re.fullmatch(r"a.*b", t, re.S) for t in r["tag_string"].split())
    }
    assert search(ws, "x'") == [] and search(ws, "' OR '1'='1") == []


def test_orders(drawn):
    ws, rows = drawn

    def key_desc(col: str):  # type: ignore[no-untyped-def]
        return lambda r: (r.get(col) is None, -(r.get(col) or 0), r["id"])

    want = [r["id"] for r in sorted(rows, key=key_desc("score"))]
    assert search(ws, "order:score") == want
    asc = [
        r["id"] for r in sorted(rows, key=lambda r: (r.get("score") is None, r.get("score") or 0, r["id"]))
    ]
    assert search(ws, "order:score_asc") == asc
    assert search(ws, "order:id") == sorted(r["id"] for r in rows)
    assert search(ws, "") == search(ws, "   ") == sorted((r["id"] for r in rows), reverse=True)


@pytest.mark.parametrize(
    ("query", "column", "what"),
    [
        ("1girl -", 6, "'-' needs a tag after it"),
        ("~", 0, "'~' needs a tag after it"),
        ("a -~b", 3, "one of - or ~ per term"),
        ("solo rating:x", 12, "'x' is not a rating"),
        ("rating:s,z", 9, "'z' is not a rating"),
        ("score:>", 6, "'>' is not a number or range"),
        ("score:1..2..3", 6, "is not a number or range"),
        ("width:", 6, "width: needs a value"),
        ("order:bogus", 6, "'bogus' is not an order"),
        ("order:id order:score", 9, "one order: per query"),
        ("-order:score", 0, "order: cannot take '-'"),
        ("~rating:s", 0, "rating: cannot be OR-ed"),
        ("md5:xyz", 4, "is not an md5"),
        ("character:", 10, "character: needs a tag"),
        ("has:boxes", 4, "has:boxes is not known"),
    ],
)
def test_errors_point_at_the_column(query, column, what):
    from tuiops.ops.meta import QuerySyntaxError, parse

    with pytest.raises(QuerySyntaxError) as info:
        parse(query)
    assert info.value.position == column and what in info.value.what
    assert info.value.exit_code == 4
    assert ("\n  " + query + "\n  " + " " * column + "^") in str(info.value)


def test_unknown_tags_and_prefixes_read_as_tags(drawn):
    from tuiops.ops.meta import parse

    ws, rows = drawn
    q = parse("re:zero :d foo:bar")
    assert [t.pattern for t in q.must] == ["re:zero", ":d", "foo:bar"]
    from tuiops.ops.meta import count_posts

    n, c = count_posts(ws.store, "solo missing_tag")
    assert n == 0 and c.warnings == ["no tag matches 'missing_tag'"]
    n, _ = count_posts(ws.store, "solo -missing_tag")
    assert n == sum("solo" in r["tag_string"].split() for r in rows)


def test_only_bound_parameters_carry_the_users_text(drawn):
    from tuiops.ops.meta import compile_query

    ws, _ = drawn
    text = "it's \"quoted\" 100% -a_b ~日本語 ~x'* booru:o'neil filetype:'; md5:" + "A" * 32
    with ws.store.connection() as conn:
        c = compile_query(conn, text)
    for piece in ("it's", "quoted", "100", "日本語", "o'neil", "aaaa"):
        assert piece not in c.where.lower()
    assert "o'neil" in c.params and "a" * 32 in c.params


def test_images_of_the_posts_found_become_a_selection(ws, tmp_path):
    from tests.conftest import draw_image
    from tuiops.cli import run
    from tuiops.ops.meta import import_meta
    from tuiops.ops.scan import scan
    from tuiops.ops.select import SelectionSpec, load_selection, resolve_spec

    pool = tmp_path / "pool"
    for fid in (1, 2, 3):
        draw_image(pool / f"danbooru_{fid}.jpg", seed=fid)
    scan(ws, pool)
    src = Path(tmp_path / "p.jsonl")
    src.write_text(
        "".join(
            json.dumps({"id": i, "tag_string": t, "rating": "s"}) + "\n"
            for i, t in [(1, "1girl solo"), (2, "1girl solo monochrome"), (3, "1boy"), (4, "1girl solo")]
        )
    )
    import_meta(ws, src)
    assert (
        run(["-w", str(ws.root), "meta", "search", "1girl solo -monochrome rating:s", "--save", "picks"]) == 0
    )
    assert load_selection(ws, "picks").tags == "1girl solo -monochrome rating:s"
    assert resolve_spec(ws, SelectionSpec(name="picks")).keys == ["danbooru_1"]
    assert ws.store.execute("SELECT key FROM v_images WHERE tags LIKE '%monochrome%'").fetchall() == [
        ("danbooru_2",)
    ]


def test_a_selection_takes_a_booru_search(ws, tmp_path):
    from tests.conftest import draw_image
    from tuiops.ops.meta import import_meta
    from tuiops.ops.scan import scan
    from tuiops.ops.select import SelectionSpec, save_selection, select_files

    pool = tmp_path / "pool"
    for fid in (1, 2, 3, 5):
        draw_image(pool / f"danbooru_{fid}.jpg", seed=fid)
    scan(ws, pool)
    src = tmp_path / "p.jsonl"
    src.write_text(
        "".join(
            json.dumps({"id": i, "tag_string": t, "rating": r}) + "\n"
            for i, t, r in [(1, "1girl solo", "s"), (2, "1girl solo monochrome", "s"), (3, "1girl solo", "e")]
        )
    )
    import_meta(ws, src)

    def keys(spec: SelectionSpec) -> list[str]:
        return sorted(select_files(ws, spec).frame.get_column("key").to_list())

    assert keys(SelectionSpec(tags="1girl solo -monochrome rating:s")) == ["danbooru_1"]
    assert keys(SelectionSpec(tags="1girl", where="fid >= 2")) == ["danbooru_2", "danbooru_3"]
    assert keys(SelectionSpec(tags="-monochrome")) == ["danbooru_1", "danbooru_3"]  # 5 has no post
    save_selection(ws, "solo", SelectionSpec(tags="solo"))
    assert keys(SelectionSpec(name="solo", tags="rating:e")) == ["danbooru_3"]
