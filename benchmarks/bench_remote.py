"""Remote transfers: tuiops put/get (asyncssh, SFTP) vs OpenSSH scp, side by side.

Starts its own sshd on 127.0.0.1 (as the tests do), generates a folder of many
small files and one large file, and moves the same data with each tool:

* ``tuiops put`` / ``tuiops get``: the library (temporary names, verification,
  parallel files over several SFTP channels);
* ``scp``: OpenSSH's scp (SFTP protocol, the default since OpenSSH 9.0);
* ``scp -O``: scp with the legacy SCP protocol.

Prints seconds, files/s and MB/s per case and tool, the ratio of tuiops's speed
to scp's, and a parity check (every copy's SHA-256 tree equals the source);
exits with status 1 when parity fails.

    python benchmarks/bench_remote.py            # 2000 files of ~24 KB + one 256 MB file
    python benchmarks/bench_remote.py --quick    # a few seconds
    python benchmarks/bench_remote.py --files 5000 --file-kb 50 --big-mb 1024
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sshd import Sshd, generate_key, sshd_unavailable  # noqa: E402


def make_data(folder: Path, files: int, file_kb: int, big_mb: int, seed: int = 1) -> tuple[Path, Path]:
    rng = random.Random(seed)
    small = folder / "small"
    for i in range(files):
        sub = small / f"d{i % 16:02}"
        sub.mkdir(parents=True, exist_ok=True)
        size = max(1, int(file_kb * 1024 * rng.uniform(0.5, 1.5)))
        (sub / f"danbooru_{100000 + i}.jpg").write_bytes(rng.randbytes(size))
    big = folder / "big"
    big.mkdir(parents=True)
    with open(big / "dataset.tar", "wb") as fh:
        block = rng.randbytes(1 << 20)
        for i in range(big_mb):
            fh.write(block[i % 997 :] + block[: i % 997])
    return small, big


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def stats(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000, help="number of small files")
    ap.add_argument("--file-kb", type=int, default=24, help="mean size of a small file in KiB")
    ap.add_argument("--big-mb", type=int, default=256, help="size of the large file in MiB")
    ap.add_argument("--concurrency", type=int, default=8, help="tuiops: files in flight")
    ap.add_argument("--channels", type=int, default=4, help="tuiops: SFTP channels")
    ap.add_argument("--quick", action="store_true", help="small data for a smoke test (a few seconds)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    if args.quick:
        args.files, args.file_kb, args.big_mb = 100, 8, 8
    why = sshd_unavailable() or (
        "scp is not installed (apt-get install -y openssh-client)" if shutil.which("scp") is None else None
    )
    if why:
        print(f"bench_remote: skipped: {why}")
        return 0

    import asyncssh

    from tuiops.remote import run_sync, transfer
    from tuiops.remote.hosts import Hosts
    from tuiops.workspace import HostConfig

    tmp = Path(tempfile.mkdtemp(prefix="bench_remote_"))
    try:
        key = generate_key(tmp / "client" / "id_ed25519")
        server = Sshd(tmp / "server", [key]).start()
        try:
            home = tmp / "home"
            home.mkdir()
            small, big = make_data(tmp / "src", args.files, args.file_kb, args.big_mb)
            known = tmp / "known_hosts"
            hosts = Hosts(
                {"bench": HostConfig("bench", "127.0.0.1", server.port, server.user, str(key), str(home))},
                root=tmp,
                known_hosts=str(known),
            )
            hosts.record_key(hosts.get("bench"), asyncssh.import_public_key(server.host_key_pub()))
            ssh_opts = [
                "-q",
                "-r",
                "-P",
                str(server.port),
                "-i",
                str(key),
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                f"UserKnownHostsFile={known}",
            ]
            remote = f"{server.user}@127.0.0.1"

            def tuiops_put(src: Path, dest: str) -> None:
                run_sync(
                    transfer.put(
                        hosts, "bench", [src], dest, concurrency=args.concurrency, channels=args.channels
                    )
                )

            def tuiops_get(src: str, dest: Path) -> None:
                run_sync(
                    transfer.get(
                        hosts, "bench", [src], dest, concurrency=args.concurrency, channels=args.channels
                    )
                )

            def scp(extra: list[str], src: str, dest: str) -> None:
                (home / "scp").mkdir(exist_ok=True)
                subprocess.run(["scp", *ssh_opts, *extra, src, dest], check=True)

            rows = []
            parity_ok = True
            for case, slug, src in (("many small files", "small", small), ("one large file", "large", big)):
                n, size = stats(src)
                want = tree_digest(src)
                runs = {
                    "put tuiops": (
                        lambda s=src, c=slug: tuiops_put(s, f"t/{c}"),
                        home / "t" / slug / src.name,
                    ),
                    "put scp": (
                        lambda s=src, c=slug: (
                            (home / "scp" / c).mkdir(parents=True, exist_ok=True),
                            scp([], str(s), f"{remote}:{home}/scp/{c}/"),
                        ),
                        home / "scp" / slug / src.name,
                    ),
                    "put scp -O": (
                        lambda s=src, c=slug: (
                            (home / "scpO" / c).mkdir(parents=True, exist_ok=True),
                            scp(["-O"], str(s), f"{remote}:{home}/scpO/{c}/"),
                        ),
                        home / "scpO" / slug / src.name,
                    ),
                    "get tuiops": (
                        lambda s=src, c=slug: tuiops_get(f"t/{c}/{s.name}", tmp / "back_t" / c),
                        tmp / "back_t" / slug / src.name,
                    ),
                    "get scp": (
                        lambda s=src, c=slug: (
                            (tmp / "back_s" / c).mkdir(parents=True, exist_ok=True),
                            scp([], f"{remote}:{home}/scp/{c}/{s.name}", str(tmp / "back_s" / c)),
                        ),
                        tmp / "back_s" / slug / src.name,
                    ),
                }
                times = {}
                for tool, (fn, out) in runs.items():
                    t0 = time.perf_counter()
                    fn()
                    times[tool] = time.perf_counter() - t0
                    same = tree_digest(out) == want
                    parity_ok &= same
                    rows.append((case, tool, n, size, times[tool], same))
                for direction in ("put", "get"):
                    ratio = times[f"{direction} scp"] / times[f"{direction} tuiops"]
                    rows.append((case, f"{direction}: tuiops speed / scp speed", None, None, ratio, None))
        finally:
            server.stop()
        print(
            f"\nremote transfers over 127.0.0.1 ({args.files} small files of ~{args.file_kb} KiB, "
            f"one {args.big_mb} MiB file; tuiops concurrency {args.concurrency}, channels {args.channels})\n"
        )
        print(
            f"{'case':<18} {'tool':<34} {'files':>6} {'MB':>8} {'seconds':>8} {'files/s':>9} {'MB/s':>8}  parity"
        )
        for case, tool, n, size, secs, same in rows:
            if n is None:
                print(f"{case:<18} {tool:<34} {'':>6} {'':>8} {'':>8} {'':>9} {secs:>7.2f}x")
                continue
            mb = size / 1e6
            print(
                f"{case:<18} {tool:<34} {n:>6} {mb:>8.1f} {secs:>8.2f} {n / secs:>9.1f} {mb / secs:>8.1f}  "
                f"{'ok' if same else 'MISMATCH'}"
            )
        print(f"\nparity: {'ok' if parity_ok else 'FAILED'}")
        return 0 if parity_ok else 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
