"""Migrations of the training tables (training runs, pitstops)."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = []
