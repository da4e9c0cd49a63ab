"""Training on a remote host, kept at its old place: see :mod:`tuiops.ops.train.remote`."""

from tuiops.ops.train.remote import (
    POLL_S,
    REMOTE_ROOT,
    fetch_results,
    host_python,
    probe_host,
    resume_remote,
    train_remote,
)

__all__ = [
    "POLL_S",
    "REMOTE_ROOT",
    "fetch_results",
    "host_python",
    "probe_host",
    "resume_remote",
    "train_remote",
]
