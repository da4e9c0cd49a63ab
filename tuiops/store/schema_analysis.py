"""Migrations of the analysis tables (NMS flags, quality, joins) (appended after the core migrations)."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = []
