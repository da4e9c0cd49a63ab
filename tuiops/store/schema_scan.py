"""Migrations of pool indexing.

- ``pools.scan_options``: the options a pool is scanned with (JSON: ``hash``, ``exif``,
  ``verify``), remembered from the scans that asked for them, so a plain rescan gives
  new files what the old ones have.
- ``files.phash_method``: how a stored perceptual hash was made (``PHASH_METHOD`` in
  ``tuiops.ops.probe``); the hashes stored before it have method 1.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0800_pool_scan_options",
        """
        ALTER TABLE pools ADD COLUMN scan_options TEXT;
        """,
    ),
    (
        "0830_files_phash_method",
        """
        ALTER TABLE files ADD COLUMN phash_method INTEGER;
        UPDATE files SET phash_method = 1 WHERE phash IS NOT NULL;
        """,
    ),
]
