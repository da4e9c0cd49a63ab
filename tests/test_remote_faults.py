"""Faults against a real sshd: changed host key, wrong key, server killed mid-transfer, full/read-only disk.

Each test owns its sshd, since the faults (a new host key, a killed server) change it.

Full and read-only remote folders are small tmpfs mounts (``mount -t tmpfs -o
size=1m`` and ``-o ro``): ``chmod 555`` does not stop root, a read-only mount does.
Where mounting is not permitted (no root, or a container without CAP_SYS_ADMIN)
those tests are skipped with that reason.
"""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from tests.sshd import FAST_RETRY, generate_key, mount_tmpfs, sha, sshd_unavailable, umount, use_key
from tests.sshd import run_cli as cli

_why = sshd_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


def put_lib(ws, files, remote_dir, **kw):  # type: ignore[no-untyped-def]
    from tuiops.remote import run_sync, transfer
    from tuiops.remote.hosts import Hosts, RetryPolicy

    hosts = Hosts.from_workspace(ws, retry=RetryPolicy(**FAST_RETRY))
    return run_sync(transfer.put(hosts, "test", files, remote_dir, progress_interval=0, **kw))


def get_lib(ws, files, local_dir, **kw):  # type: ignore[no-untyped-def]
    from tuiops.remote import run_sync, transfer
    from tuiops.remote.hosts import Hosts, RetryPolicy

    hosts = Hosts.from_workspace(ws, retry=RetryPolicy(**FAST_RETRY))
    return run_sync(transfer.get(hosts, "test", files, local_dir, progress_interval=0, **kw))


def test_changed_host_key_is_refused(own, capsys):
    s, _key, ws = own
    old = s.host_key_pub()
    assert cli(ws, "remote", "run", "test", "--", "true") == 0
    s.kill()
    s.start(new_host_key=True)
    assert s.host_key_pub() != old
    assert cli(ws, "remote", "run", "test", "--", "true") == 8
    err = capsys.readouterr().err
    assert "has CHANGED" in err and "test" in err
    import asyncssh

    fp_old = asyncssh.import_public_key(old).get_fingerprint("sha256")
    fp_new = asyncssh.import_public_key(s.host_key_pub()).get_fingerprint("sha256")
    assert fp_old in err and fp_new in err
    assert "tuiops hosts trust test --replace" in err
    # trust refuses a changed key without --replace, even with --yes
    assert cli(ws, "hosts", "trust", "test", "--yes") == 8
    assert "has CHANGED" in capsys.readouterr().err
    assert cli(ws, "hosts", "check", "test", "--json") == 8
    (res,) = json.loads(capsys.readouterr().out)
    assert [(i["name"], i["ok"]) for i in res["items"]] == [("reachable", True), ("host key", False)]
    assert cli(ws, "hosts", "trust", "test", "--yes", "--replace", "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "replaced"
    known = (ws.root / ".tuiops" / "known_hosts").read_text()
    assert old.split()[1] not in known and s.host_key_pub().split()[1] in known
    assert cli(ws, "remote", "run", "test", "--", "true") == 0


def test_wrong_client_key_is_refused(own, tmp_path, capsys):
    from tuiops.ops.remote import add_host

    _s, _key, ws = own
    stranger = generate_key(tmp_path / "stranger" / "id_ed25519")
    host = ws.config.hosts["test"]
    use_key(ws, stranger)
    assert cli(ws, "remote", "run", "test", "--", "true") == 8
    err = capsys.readouterr().err
    assert "login to test" in err and "was refused" in err and str(stranger) in err
    assert "authorized_keys" in err
    assert cli(ws, "hosts", "check", "test", "--json") == 8
    (res,) = json.loads(capsys.readouterr().out)
    assert res["items"][-1]["name"] == "login" and not res["items"][-1]["ok"]
    # a key file that does not exist, or is not a key
    add_host(ws, "test", host.address, port=host.port, user=host.user, key_file="nope/id", replace=True)
    assert cli(ws, "remote", "run", "test", "--", "true") == 4
    assert "does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk_key"
    junk.write_text("not a key\n")
    add_host(ws, "test", host.address, port=host.port, user=host.user, key_file=str(junk), replace=True)
    assert cli(ws, "remote", "run", "test", "--", "true") == 4
    assert "cannot load the key file" in capsys.readouterr().err


def test_server_killed_mid_transfer_then_resumed(own, tmp_path):
    from tuiops.remote.errors import ConnectionDropped

    s, _key, ws = own
    data = random.Random(7).randbytes(12_000_000)
    small = tmp_path / "src" / "a_small.txt"
    small.parent.mkdir()
    small.write_text("small and first")
    big = tmp_path / "src" / "big.bin"
    big.write_bytes(data)
    dest = tmp_path / "home" / "in"
    killed = []

    def kill_at_4mb(ev):  # type: ignore[no-untyped-def]
        if not killed and ev.done >= 4_000_000:
            killed.append(ev.done)
            s.kill()

    with pytest.raises(ConnectionDropped, match="run the same command again"):
        put_lib(ws, [small, big], "in", chunk=1 << 20, concurrency=1, progress=kill_at_4mb)
    assert killed
    parts = list(dest.glob("big.bin.*.part"))
    assert len(parts) == 1 and not (dest / "big.bin").exists()
    partial = parts[0].read_bytes()
    assert 0 < len(partial) < len(data)
    assert data.startswith(partial[: max(0, len(partial) - (1 << 20))])
    s.start()
    res = put_lib(ws, [small, big], "in", chunk=1 << 20)
    assert res.files == 1 and res.skipped == 1 and res.resumed == 1
    assert res.sent < len(data)
    assert sha(dest / "big.bin") == hashlib.sha256(data).hexdigest()
    assert sorted(p.name for p in dest.iterdir()) == ["a_small.txt", "big.bin"]


def test_dropped_connections_are_retried_with_backoff(own, tmp_path):
    s, _key, ws = own
    data = random.Random(8).randbytes(9_000_000)
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(data)
    for i in range(12):
        (src / f"f{i:02}.txt").write_text(f"file {i}\n" * (i + 1))
    drops: list[int] = []

    def drop_twice(ev):  # type: ignore[no-untyped-def]
        if len(drops) < 2 and ev.done >= (len(drops) + 1) * 3_000_000:
            drops.append(s.drop_connections())

    res = put_lib(ws, [src], "in", chunk=1 << 20, progress=drop_twice)
    assert len(drops) == 2 and all(drops)
    assert res.retries >= 1 and res.files + res.skipped == 13
    dest = tmp_path / "home" / "in" / "src"
    assert {p.name: sha(p) for p in dest.iterdir()} == {p.name: sha(p) for p in src.iterdir()}
    drops.clear()
    res = get_lib(ws, ["in/src"], tmp_path / "back", chunk=1 << 20, progress=drop_twice)
    assert len(drops) == 2 and res.retries >= 1
    back = tmp_path / "back" / "src"
    assert {p.name: sha(p) for p in back.iterdir()} == {p.name: sha(p) for p in src.iterdir()}


def test_full_remote_disk_gives_a_clear_error_and_no_part(own, tmp_path, mountable, capsys):
    _s, _key, ws = own
    full = tmp_path / "home" / "full"
    mount_tmpfs(full, "1m")
    try:
        f = tmp_path / "big.bin"
        f.write_bytes(random.Random(9).randbytes(3_000_000))
        assert cli(ws, "remote", "put", "test", str(f), "full", "-q") == 8
        err = capsys.readouterr().err
        assert "the remote disk is full" in err and "on host test" in err
        assert list(full.iterdir()) == []
        # a file that fits still goes
        small = tmp_path / "small.txt"
        small.write_text("fits")
        assert cli(ws, "remote", "put", "test", str(small), "full", "-q") == 0
        assert (full / "small.txt").read_text() == "fits"
    finally:
        umount(full)


def test_read_only_remote_folder_gives_a_clear_error(own, tmp_path, mountable, capsys):
    _s, _key, ws = own
    ro = tmp_path / "home" / "ro"
    mount_tmpfs(ro, "1m", readonly=True)
    try:
        f = tmp_path / "a.txt"
        f.write_text("x")
        assert cli(ws, "remote", "put", "test", str(f), "ro", "-q") == 8
        assert "read-only" in capsys.readouterr().err
        assert cli(ws, "remote", "put", "test", str(f), "ro/sub", "-q") == 8
        assert "read-only" in capsys.readouterr().err
        assert list(ro.iterdir()) == []
        assert cli(ws, "hosts", "check", "--json") == 0
    finally:
        umount(ro)


def test_full_local_disk_on_get(own, tmp_path, mountable, capsys):
    _s, _key, ws = own
    data = random.Random(10).randbytes(3_000_000)
    (tmp_path / "home" / "big.bin").write_bytes(data)
    local = tmp_path / "localfull"
    mount_tmpfs(local, "1m")
    try:
        assert cli(ws, "remote", "get", "test", "big.bin", str(local), "-q") == 10
        assert "disk is full" in capsys.readouterr().err
        assert list(local.iterdir()) == []
    finally:
        umount(local)
