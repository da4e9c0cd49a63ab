"""Following a results.csv on a remote host over SSH (a real OpenSSH sshd on 127.0.0.1)."""

from __future__ import annotations

import pytest

from tests.sshd import sshd_unavailable
from tests.test_monitor import CSV_HEADER, line
from tuiops.cli import run
from tuiops.ops.monitor import ResultsFollower, ssh_reader

_why = sshd_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


def test_follow_a_remote_results_file(host_ws, capsys):
    ws, home = host_ws
    run_dir = home / "training" / "v1"
    run_dir.mkdir(parents=True)
    csv = run_dir / "results.csv"
    follower = ResultsFollower(*ssh_reader(ws, "test", "training/v1/results.csv"))
    assert follower.poll() is False  # not there yet
    csv.write_text(CSV_HEADER + "\n" + line(1, 10) + "\n" + line(2, 20)[:9], encoding="utf-8")
    assert follower.poll() is True
    assert follower.state().epoch == 1
    with open(csv, "a", encoding="utf-8") as fh:
        fh.write(line(2, 20)[9:] + "\n" + line(3, 30) + "\n")
    assert follower.poll() is True
    assert follower.state(epochs_total=5).epochs["epoch"].to_list() == [1, 2, 3]
    csv.write_text(CSV_HEADER + "\n" + line(1, 10) + "\n", encoding="utf-8")  # trimmed by a resume
    assert follower.poll() is True and follower.state().epoch == 1
    assert run(["-w", str(ws.root), "train", "watch", "--host", "test", "--file", str(csv)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in out[1:-1]] == ["1"]
    assert run(["-w", str(ws.root), "train", "watch", "--host", "nohost", "--file", str(csv)]) == 5
