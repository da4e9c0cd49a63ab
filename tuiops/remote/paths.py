"""Remote paths: resolved against the host's home and confined to it.

A relative remote path is taken from the host's home (``home`` in its table, else
the login folder). Every path is normalised (``..`` folded) and then resolved on
the server (symbolic links followed, for the part that exists); the result must lie
inside the resolved home unless the caller allows paths outside it.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from tuiops.errors import RemoteError
from tuiops.remote.errors import OutsideHome

if TYPE_CHECKING:
    import asyncssh

    from tuiops.workspace import HostConfig


def normalize(path: str, base: str) -> str:
    """``path`` joined to ``base`` (when relative) with ``.``, ``..`` and repeated ``/`` folded."""
    joined = path if path.startswith("/") else posixpath.join(base, path)
    norm = posixpath.normpath(joined)
    return "/" + norm.lstrip("/")


def is_within(path: str, root: str) -> bool:
    """Whether the normalised ``path`` is ``root`` or lies below it."""
    root = root.rstrip("/") or "/"
    return root == "/" or path == root or path.startswith(root + "/")


async def realpath(sftp: asyncssh.SFTPClient, path: str) -> str:
    """``path`` with symbolic links resolved on the server, for as much of it as exists."""
    import asyncssh

    rest: list[str] = []
    current = path
    while True:
        try:
            resolved = await sftp.realpath(current)
            break
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath, asyncssh.SFTPFailure):
            parent = posixpath.dirname(current)
            if parent == current:
                return path
            rest.insert(0, posixpath.basename(current))
            current = parent
    resolved = resolved.decode() if isinstance(resolved, bytes) else str(resolved)
    return normalize(posixpath.join(resolved, *rest), "/") if rest else normalize(resolved, "/")


async def resolve_home(sftp: asyncssh.SFTPClient, host: HostConfig) -> str:
    """The host's home on the server: configured ``home`` (``~`` = login folder) or the login folder."""
    login = await sftp.realpath(".")
    login = login.decode() if isinstance(login, bytes) else str(login)
    home = host.home or login
    if home == "~" or home.startswith("~/"):
        home = login + home[1:]
    home = normalize(home, login)
    return await realpath(sftp, home)


async def confine(
    sftp: asyncssh.SFTPClient, host_name: str, home: str, path: str, *, allow_outside: bool = False
) -> str:
    """The absolute remote path for ``path``; OutsideHome when it leaves ``home``.

    The check is made on the normalised path and again after symbolic links are
    resolved, so neither ``../..`` nor a link pointing out of the home escapes it.
    Returns the normalised path (links unresolved), which is what gets opened.
    """
    if not path:
        raise RemoteError(f"an empty remote path was given for host {host_name}")
    if "\x00" in path:
        raise RemoteError(f"remote path {path!r} for host {host_name} contains a NUL byte")
    norm = normalize(path, home)
    if allow_outside:
        return norm
    hint = "give a path inside the home, change home in tuiops.toml, or pass --outside-home to allow it"
    if not is_within(norm, home):
        raise OutsideHome(f"remote path {path} is outside the home {home} of host {host_name}", hint=hint)
    real = await realpath(sftp, norm)
    if not is_within(real, home):
        raise OutsideHome(
            f"remote path {path} on host {host_name} resolves to {real}, outside its home {home} "
            "(through a symbolic link)",
            hint=hint,
        )
    return norm
