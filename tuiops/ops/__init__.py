"""Operations: the product. Each op is a function with typed parameters, a progress
callback and a cancel check; the CLI, the TUI and `tuiops run` scripts are thin faces.

This package never imports textual, click or tuiops.screens.
"""
