"""Migrations of pool indexing.

- ``pools.scan_options``: the options a pool is scanned with (JSON: ``hash``, ``exif``,
  ``verify``), remembered from the scans that asked for them, so a plain rescan gives
  new files what the old ones have.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0800_pool_scan_options",
        """
        ALTER TABLE pools ADD COLUMN scan_options TEXT;
        """,
    ),
]
