"""Augmentation of the kanji project: brushed glyphs pasted onto drawn backgrounds.

``python augment.py --master master --out OUT --count N --seed S`` writes
``OUT/aug_NNNNNN.jpg`` and ``OUT/boxes.json`` (see ``common/paste.py``).
"""

from __future__ import annotations

import sys

from common.paste import main

CLASSES = ["kanji_ichi", "kanji_juu", "kanji_kuchi"]

if __name__ == "__main__":
    sys.exit(main(size=(512, 384), per_image=(2, 5), scale=(0.6, 1.8), classes=CLASSES))
