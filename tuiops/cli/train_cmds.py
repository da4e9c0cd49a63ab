"""Commands (filled in by their modules)."""

from __future__ import annotations
