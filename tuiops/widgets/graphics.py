"""Which way the terminal shows pictures: Kitty's graphics protocol, Sixel, or half blocks.

``tuiops tui --images auto`` (the default) asks the terminal once, before the app starts:
a Kitty graphics query followed by the primary device attributes request (DA1). Every
terminal answers DA1; one that speaks Kitty's protocol answers the graphics query first,
and one that draws Sixel lists attribute 4 in its DA1 answer. Sixel is preferred when both
are offered (WezTerm and Konsole answer the Kitty query but do not draw its Unicode
placeholders, which the app uses; Kitty itself has no Sixel). Half blocks are used in tmux
and screen (which answer for themselves, whatever the terminal outside can do), where
stdin or stdout is not a terminal, where the terminal does not answer, and in tests.

:func:`protocol_from_reply` is the decision on a recorded answer; :func:`query_terminal`
sends the query and reads the answer.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Mapping

#: The choices of ``--images``.
IMAGE_CHOICES = ("auto", "kitty", "sixel", "halfblock")
#: The ways a picture can be shown.
PROTOCOLS = ("kitty", "sixel", "halfblock")

#: A 1×1 RGB Kitty graphics query (``a=q``: nothing is stored or shown), then DA1.
KITTY_QUERY = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
DA1_QUERY = "\x1b[c"
QUERY = KITTY_QUERY + DA1_QUERY

_KITTY_REPLY = re.compile(r"\x1b_Gi=31;([^\x1b]*)\x1b\\")
_DA1_REPLY = re.compile(r"\x1b\[\?([\d;]*)c")

#: Seconds to wait for the answer to DA1 (every terminal answers it at once; only a
#: terminal that answers nothing makes the app wait this long, once, at start).
REPLY_TIMEOUT = 1.0


def protocol_from_reply(reply: str) -> str:
    """The protocol a terminal's ``reply`` to :data:`QUERY` offers: ``sixel`` where DA1 lists
    attribute 4, else ``kitty`` where the graphics query answered ``OK``, else ``halfblock``
    (also when there is no DA1 answer: the reply was cut short or is not a terminal's)."""
    da1 = _DA1_REPLY.search(reply)
    if da1 is None:
        return "halfblock"
    if "4" in da1.group(1).split(";"):
        return "sixel"
    kitty = _KITTY_REPLY.search(reply[: da1.start()])
    if kitty is not None and kitty.group(1) == "OK":
        return "kitty"
    return "halfblock"


def reply_complete(reply: str) -> bool:
    """Whether ``reply`` holds the DA1 answer, the last thing a terminal sends back."""
    return _DA1_REPLY.search(reply) is not None


def multiplexed(environ: Mapping[str, str]) -> bool:
    """Whether the app runs inside tmux or screen."""
    term = environ.get("TERM", "")
    return bool(environ.get("TMUX") or environ.get("STY")) or term.startswith(("screen", "tmux"))


def choose_protocol(
    choice: str,
    *,
    environ: Mapping[str, str] | None = None,
    is_terminal: bool | None = None,
    ask: Callable[[], str] | None = None,
) -> tuple[str, str]:
    """The protocol for ``--images CHOICE`` and why: a named one is taken as it is; ``auto``
    asks the terminal (``ask`` returns its reply) unless it is tmux/screen, not a terminal,
    or ``TERM`` is ``dumb`` or ``linux``."""
    if choice not in IMAGE_CHOICES:
        from tuiops.errors import UsageError

        raise UsageError(
            f"--images must be one of {', '.join(IMAGE_CHOICES)}, not {choice!r}",
            hint="tuiops tui --images auto",
        )
    if choice != "auto":
        return choice, f"--images {choice}"
    env = os.environ if environ is None else environ
    if is_terminal is None:
        is_terminal = sys.stdin.isatty() and sys.stdout.isatty()
    if not is_terminal:
        return "halfblock", "not a terminal"
    if multiplexed(env):
        return "halfblock", "inside tmux or screen"
    if env.get("TERM", "") in ("dumb", "linux", ""):
        return "halfblock", f"TERM={env.get('TERM', '')!r}"
    reply = (ask or query_terminal)()
    protocol = protocol_from_reply(reply)
    if not reply_complete(reply):
        return protocol, "the terminal did not answer"
    return protocol, "the terminal's answer"


def query_terminal(timeout: float = REPLY_TIMEOUT) -> str:
    """Send :data:`QUERY` to the terminal and return what it answers, up to its DA1 answer
    (or what came before ``timeout`` seconds). The terminal is put in cbreak mode meanwhile;
    where that cannot be done (no POSIX terminal), nothing is asked and the answer is empty."""
    from tuiops.fsutil import readable

    try:
        import termios
        import tty
    except ImportError:
        return ""

    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(fd_in)
    reply = b""
    try:
        tty.setcbreak(fd_in, termios.TCSANOW)
        os.write(fd_out, QUERY.encode())
        deadline = time.monotonic() + timeout
        while not reply_complete(reply.decode("latin-1")):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not readable(fd_in, left):
                break
            chunk = os.read(fd_in, 1024)
            if not chunk:
                break
            reply += chunk
    finally:
        termios.tcsetattr(fd_in, termios.TCSANOW, saved)
    return reply.decode("latin-1")


def prepare(protocol: str) -> None:
    """Load what ``protocol`` draws with while the terminal can still be asked (before the app
    starts reading stdin): textual-image asks the terminal for its cell size in pixels."""
    if protocol in ("kitty", "sixel"):
        import textual_image.widget  # noqa: F401 - measures the cell size once, now


def cell_size() -> tuple[int, int]:
    """A cell's width and height in pixels, as textual-image measured them at start (the
    terminal's window size in pixels, else 10×20); pictures are drawn to this size so that
    textual-image shows them unscaled."""
    # textual-image exports no public name for the size it scales pictures to
    from textual_image._terminal import get_cell_size

    cell = get_cell_size()
    return max(1, cell.width), max(1, cell.height)
