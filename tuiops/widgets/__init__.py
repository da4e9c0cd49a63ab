"""Reusable Textual widgets: the virtual table, the half-block image, the F-key bar."""
