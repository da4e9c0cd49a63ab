"""Remote hosts over SSH: `tuiops hosts …` (list, add, remove, trust, check) and `tuiops remote …`
(run, put, get), built from their descriptions in :mod:`tuiops.commands.remote`."""

from __future__ import annotations

from tuiops.cli import cli
from tuiops.cli.build import add


@cli.group("hosts")
def hosts_group() -> None:
    """Remote hosts ([hosts.NAME] in tuiops.toml): list, add, remove, trust their keys, check them.

    Keys come from key_file or the SSH agent; a password only from
    TUIOPS_SSH_PASSWORD_<NAME>, TUIOPS_SSH_PASSWORD or a prompt, never from the file.
    """


for _name in ("list", "add", "remove", "trust", "check"):
    add(hosts_group, ("hosts", _name))


@cli.group("remote")
def remote_group() -> None:
    """Run commands on hosts and move files to and from them (over SSH/SFTP)."""


for _name in ("run", "put", "get"):
    add(remote_group, ("remote", _name))
