"""Migrations of the batch file-operation tables (selections, plans, journal)."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = []
