"""Reusable Textual widgets: the virtual table, the image (half blocks, or real pixels where the
terminal shows them: :mod:`tuiops.widgets.graphics`), the F-key bar."""
