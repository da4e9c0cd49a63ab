"""Image keys parsed column-wise are the keys parsed name by name."""

from __future__ import annotations

import random
import re

import pytest

from tuiops.keys import DEFAULT_KEY_PATTERN, compile_key_pattern, parse_key, parse_keys

TRICKY = [
    "danbooru_1.jpg",
    "a/b/Gelbooru-123.png",
    "yandere_77_extra.jpeg",
    "DanBooru_0012.JPG",
    "danbooru_5.tar.gz",
    "x/.danbooru_5.jpg",
    ".hidden",
    "..",
    ".",
    "",
    "a.",
    "...jpg",
    "/",
    "a/",
    "dir.d/file",
    "d_1 x",
    "d_1_",
    "x1_2",
    "1x_2",
    "a..b_1",
    "é_1.jpg",
    "İ_1",
    "a_99999999999999999999999.jpg",
    "danbooru_5\n",
    "danbooru_5\n.jpg",
    "a_1\n\n",
    "sub\nx/danbooru_7.png",
]


def _names() -> list[str]:
    rng = random.Random(7)
    alphabet = "aZ_-. /\n09xé.İ"
    return TRICKY + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(5000)]


@pytest.mark.parametrize(
    "pattern", [DEFAULT_KEY_PATTERN, r"^(?P<booru>[a-z]+)(?P<fid>\d+)$", r"(?P<fid>\d+)_(?P<booru>\w+)"]
)
def test_parse_keys_equals_parse_key(pattern: str) -> None:
    rx = compile_key_pattern(pattern)
    names = _names()
    got = parse_keys(names, rx)
    want = [parse_key(n, rx) for n in names]
    assert got["key"].to_list() == [k.key for k in want]
    assert got["keyed"].to_list() == [k.keyed for k in want]


def test_parse_keys_of_the_default_pattern_keep_python_dollar() -> None:
    """Python's ``$`` also matches before a final newline: such a name keeps its key."""
    rx = re.compile(DEFAULT_KEY_PATTERN)
    got = parse_keys(["danbooru_5\n", "gelbooru_6.png"], rx)
    assert got.rows() == [("danbooru_5", True), ("gelbooru_6", True)]
