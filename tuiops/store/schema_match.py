"""Migrations of the match tables (appended after the core migrations)."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = []
