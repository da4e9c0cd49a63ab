"""``fsutil.readable``: waiting on a descriptor numbered past 1023, where ``select`` fails (a
long-lived process that keeps its store connections open gets such numbers)."""

from __future__ import annotations

import os
import resource

import pytest

from tuiops.fsutil import readable


def test_a_descriptor_past_1023_is_waited_on():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    high = 1500
    if soft <= high:
        if hard != resource.RLIM_INFINITY and hard <= high:
            pytest.skip(f"this user may open at most {hard} files")
        resource.setrlimit(resource.RLIMIT_NOFILE, (high + 100, hard))
    r, w = os.pipe()
    try:
        os.dup2(r, high)
        assert not readable(high, 0.05)
        os.write(w, b"x")
        assert readable(high, 5)
        assert os.read(high, 1) == b"x"
        os.close(w)
        w = -1
        assert readable(high, 5)  # the writer gone: readable, and reads the end
        assert os.read(high, 1) == b""
    finally:
        for fd in (r, w, high):
            if fd >= 0:
                os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
