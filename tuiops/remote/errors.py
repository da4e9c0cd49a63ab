"""What can go wrong with a remote host: :class:`~tuiops.errors.RemoteError` subclasses.

They keep RemoteError's exit code; the subclass tells a caller (and a test) which
case it was without parsing the message. Every message names the host.
"""

from __future__ import annotations

from tuiops.errors import InputError, RemoteError


class HostUnreachable(RemoteError):
    """No SSH server answered at the host's address and port (refused, no route, timeout)."""


class HostKeyUnknown(RemoteError):
    """The host's key is not in known_hosts yet: `tuiops hosts trust NAME` records it."""


class HostKeyChanged(RemoteError):
    """The host presented a key other than the one recorded in known_hosts."""


class LoginFailed(RemoteError):
    """The server refused every key (and password) offered for the user."""


class KeyFileUnusable(InputError):
    """The host's key file cannot be loaded here (no passphrase for an encrypted key, not a key):
    nothing was sent to the host."""

    def __init__(self, message: str, *, hint: str | None = None, encrypted: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.encrypted = encrypted


class ConnectionDropped(RemoteError):
    """The connection was lost and did not come back within the retries."""


class CommandTimeout(RemoteError):
    """A remote command did not finish within its time limit (it was stopped)."""


class RemoteDiskError(RemoteError):
    """A remote file could not be written: disk full, read-only or permission denied."""


class OutsideHome(RemoteError):
    """A remote path lies outside the host's configured home."""
