"""Augmentation of the close-button project: master buttons pasted onto drawn backgrounds.

``python augment.py --master master --out OUT --count N --seed S`` writes
``OUT/aug_NNNNNN.jpg`` and ``OUT/boxes.json`` (see ``common/paste.py``).
"""

from __future__ import annotations

import sys

from common.paste import main

if __name__ == "__main__":
    sys.exit(main(size=(640, 480), per_image=(1, 3), scale=(0.8, 2.5), classes=["close_button"]))
