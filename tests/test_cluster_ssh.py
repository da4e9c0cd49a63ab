"""``--cluster ssh:…`` against two real sshd on 127.0.0.1 (two hosts): the rows of a plain run;
an unknown host key, a changed one and a host without the packages are refused before any work."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from tests.conftest import CLASSES
from tests.sshd import Sshd, generate_key, sshd_unavailable
from tests.test_cluster import KW, N, _same_rows
from tests.test_train_support import draw_scene, index_pool, make_random_model
from tuiops.errors import RemoteError
from tuiops.ops.cluster import ClusterOptions
from tuiops.ops.detect import detect
from tuiops.ops.remote import add_host, open_hosts
from tuiops.remote import run_sync
from tuiops.remote.errors import HostKeyChanged, HostKeyUnknown
from tuiops.workspace import Workspace

_why = sshd_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")
REPO = Path(__file__).resolve().parents[1]
PYTHON = f"env PYTHONPATH={REPO} {sys.executable}"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("model") / "rand.pt", list(CLASSES))


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[tuple[Workspace, list[Sshd]]]:
    key = generate_key(tmp_path / "client" / "id_ed25519")
    servers = [Sshd(tmp_path / f"sshd-{n}", [key]).start() for n in ("a", "b")]
    ws = Workspace.init(tmp_path / "ws", classes=list(CLASSES))
    hosts = None
    try:
        for name, s in zip(("a", "b"), servers, strict=True):
            add_host(ws, name, "127.0.0.1", port=s.port, user=s.user, key_file=str(key), home=str(tmp_path))
        hosts = open_hosts(ws)
        for name, s in zip(("a", "b"), servers, strict=True):
            hosts.record_key(hosts.get(name), asyncssh.import_public_key(s.host_key_pub()))
            ws.config.hosts[name].extra["python"] = PYTHON
        pool = tmp_path / "pool"
        for i in range(N):
            draw_scene(pool / f"danbooru_{i}.png", i, (80, 64))
        (pool / "danbooru_901.png").write_bytes(b"not an image at all")
        index_pool(ws, pool)
        yield ws, servers
    finally:
        ws.close()
        for s in servers:
            s.stop()


def _images(ws: Workspace, run: str) -> int:
    return int(
        ws.store.one(
            "SELECT count(*) FROM run_images r JOIN runs u ON u.id = r.run_id WHERE u.name = ?", (run,)
        )
    )


def test_ssh_cluster_of_two_hosts_gives_the_rows_of_a_plain_run(two_hosts, model_path):
    ws, _ = two_hosts
    detect(ws, model_path, "plain", **KW)
    res = detect(ws, model_path, "dist", cluster=ClusterOptions("ssh:a,b", task_images=3), **KW)
    assert res.processed == N and res.cluster is not None
    assert set(res.cluster["per_worker"]) == {"a", "b"}
    _same_rows(ws, "plain", "dist")


def test_a_host_that_drops_mid_run_loses_only_its_tasks(two_hosts, model_path):
    """Host b goes down (its sshd and everything it runs killed, as a power loss would) after
    the first task is written: host a does the rest, and every image is written once."""
    ws, servers = two_hosts
    detect(ws, model_path, "plain", **KW)
    dropped: list[bool] = []

    def drop_b(ev) -> None:
        if ev.done and not dropped:
            servers[1].kill()
            dropped.append(True)

    res = detect(
        ws, model_path, "dist", cluster=ClusterOptions("ssh:a,b", task_images=2), progress=drop_b, **KW
    )
    assert dropped and res.processed == N and res.cluster is not None
    assert "a" in res.cluster["per_worker"]
    _same_rows(ws, "plain", "dist")


def test_unknown_and_changed_host_keys_and_missing_packages_are_refused(two_hosts, model_path, tmp_path):
    from tuiops.remote.commands import check_host

    ws, servers = two_hosts
    key = tmp_path / "client" / "id_ed25519"
    with Sshd(tmp_path / "sshd-c", [key]) as third:  # a host whose key was never recorded
        add_host(ws, "c", "127.0.0.1", port=third.port, user=third.user, key_file=str(key))
        ws.config.hosts["c"].extra["python"] = PYTHON
        with pytest.raises(HostKeyUnknown, match="c"):
            detect(ws, model_path, "u", cluster=ClusterOptions("ssh:a,c"), **KW)
    assert _images(ws, "u") == 0
    servers[1].stop()
    servers[1].start(new_host_key=True)
    with pytest.raises(HostKeyChanged, match="b"):
        detect(ws, model_path, "k", cluster=ClusterOptions("ssh:a,b"), **KW)
    assert _images(ws, "k") == 0
    ws.config.hosts["a"].extra["python"] = f"{sys.executable} -S"  # no site-packages: no Dask there
    with pytest.raises(RemoteError, match=r"host a cannot run the work: its python lacks .*distributed"):
        detect(ws, model_path, "m", cluster=ClusterOptions("ssh:a"), **KW)
    assert _images(ws, "m") == 0
    # `hosts check` names what the host lacks
    res = run_sync(check_host(open_hosts(ws), "a"))
    (item,) = [i for i in res.items if i.name == "packages"]
    assert not item.ok and "distributed" in item.detail and not res.ok
