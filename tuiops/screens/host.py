"""The running :class:`~tuiops.app.TuiopsApp`, typed, for the screens and panels that call into it."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from tuiops.app import TuiopsApp


def tuiops_app(node: DOMNode) -> TuiopsApp:
    """The app ``node`` runs in (the screens run only inside a TuiopsApp)."""
    return cast("TuiopsApp", node.app)
