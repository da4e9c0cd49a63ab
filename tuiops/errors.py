"""One error hierarchy and one exit-code map for every face of tuiops.

Operations raise a :class:`TuiopsError` subclass whose message tells the user what
went wrong and what to do; the CLI maps the class to an exit code and prints the
message to stderr, the TUI shows the same message.
"""

from __future__ import annotations


class TuiopsError(Exception):
    """Base class of every error a user can act on."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(TuiopsError):
    """A command or parameter was used wrongly."""

    exit_code = 2


class WorkspaceError(TuiopsError):
    """No workspace found, or its tuiops.toml is invalid."""

    exit_code = 3


class InputError(TuiopsError):
    """An input file or value is malformed (labels, images, scripts, config values)."""

    exit_code = 4


class NotFoundError(TuiopsError):
    """A named thing (label set, run, pool, image key, job, host) does not exist."""

    exit_code = 5


class ConflictError(TuiopsError):
    """The target exists already, or two inputs claim the same place."""

    exit_code = 6


class StoreError(TuiopsError):
    """The SQLite store cannot be opened, is locked, or is from a newer tuiops."""

    exit_code = 7


class RemoteError(TuiopsError):
    """A remote host is unreachable, refused login, or a remote command failed."""

    exit_code = 8


class ExternalToolError(TuiopsError):
    """An external program (label editor, training backend) failed or is missing."""

    exit_code = 9


class DiskError(TuiopsError):
    """A file could not be written: disk full, read-only folder, permission denied."""

    exit_code = 10


class Cancelled(TuiopsError):
    """The user cancelled the operation; what was done is journaled."""

    exit_code = 130


EXIT_CODES: dict[str, int] = {
    cls.__name__: cls.exit_code
    for cls in (
        TuiopsError,
        UsageError,
        WorkspaceError,
        InputError,
        NotFoundError,
        ConflictError,
        StoreError,
        RemoteError,
        ExternalToolError,
        DiskError,
        Cancelled,
    )
}
