"""A booru-like pool on disk, measured side by side: first scan, rescans, hashing, memory.

Generates (once; kept and reused with ``--dir``) N files: nested ``booru/xx/yy/`` folders and
one flat folder holding a quarter of them; JPEG, PNG and WebP of 0.3–3 MP; about 2% bad
files (truncated, empty, text named .jpg); a YOLO label file beside every tenth image; and
a folder of 1 MP JPEGs for the hashing goal. Then, in one run:

* the floor: a bare ``os.scandir`` + ``stat`` walk; ``exiftool -fast -j -r`` (header);
* tuiops first header scan, a rescan with nothing changed, one with 1% new, 1% changed and
  1% deleted files (undone afterwards, so the pool stays as generated);
* ``scan --hash`` of the 1 MP JPEGs vs a plain ``imagehash.phash`` loop over them (one process);
* the peak memory of the tuiops process and of its largest worker, and the store's size.

Each tuiops step runs in its own process, so its peak memory is its own. The figures for
4M files are printed as a linear EXTRAPOLATION of the measured size, marked as one.

    python benchmarks/bench_pool.py --files 50000 --dir /tmp/pool50k
    python benchmarks/bench_pool.py --quick      # 300 files, a smoke test
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 4_000_000
BOORUS = ("danbooru", "gelbooru", "yandere", "konachan")


def _bank(rng: random.Random, count: int, quick: bool) -> list[tuple[str, bytes]]:
    """Encoded images (extension, bytes) of 0.3–3 MP (small ones when ``quick``)."""
    import numpy as np
    from PIL import Image

    out = []
    for i in range(count):
        mp = rng.uniform(0.02, 0.06) if quick else rng.uniform(0.3, 3.0)
        w = int((mp * 1e6 * rng.uniform(0.6, 1.6)) ** 0.5)
        h = max(16, int(mp * 1e6 / w))
        small = np.random.default_rng(i).integers(
            0, 256, (max(2, h // 40), max(2, w // 40), 3), dtype=np.uint8
        )
        img = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        ext = (".jpg", ".jpg", ".jpg", ".jpg", ".png", ".webp")[i % 6]
        fmt = {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[ext]
        img.save(buf, fmt, quality=rng.randrange(80, 95)) if fmt != "PNG" else img.save(buf, fmt)
        out.append((ext, buf.getvalue()))
    return out


def _photos() -> list:
    """Photographs shipped with installed packages (RGB), or a synthetic stand-in."""
    import importlib.util

    from PIL import Image

    found = []
    for pkg, rel in (
        ("ultralytics", "assets/bus.jpg"),
        ("ultralytics", "assets/zidane.jpg"),
        ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.origin and (Path(spec.origin).parent / rel).exists():
            found.append(Image.open(Path(spec.origin).parent / rel).convert("RGB"))
    return found or [Image.effect_mandelbrot((1155, 866), (-2.0, -1.2, 1.0, 1.2), 60).convert("RGB")]


def generate(folder: Path, n: int, onemp: int, quick: bool, seed: int = 11) -> bool:
    """Write the pool below ``folder`` unless a pool of this size is there; True if written."""
    mark = folder / f".bench_pool_{n}_{onemp}"
    if mark.exists():
        return False
    from PIL import Image

    if folder.exists():
        shutil.rmtree(folder)
    rng = random.Random(seed)
    bank = _bank(rng, 24, quick)
    pool = folder / "pool"
    for i in range(n):
        fid = 1_000_000 + i
        ext, data = bank[rng.randrange(len(bank))]
        sub = pool / "flat" if i % 4 == 0 else pool / "booru" / f"{fid % 97:02d}" / f"{fid // 97 % 61:02d}"
        if i < 200 or not sub.exists():
            sub.mkdir(parents=True, exist_ok=True)
        name = f"{BOORUS[i % 4]}_{fid}"
        k = i % 50
        if k == 7:  # a truncated image
            data = data[: len(data) // 2]
        elif k == 17:
            data = b""
        elif k == 27:
            ext, data = ".jpg", b"<html>not an image</html>\n"
        (sub / f"{name}{ext}").write_bytes(data)
        if i % 10 == 3:
            (sub / f"{name}.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    one = folder / "onemp"
    one.mkdir(parents=True)
    photos = _photos()
    for i in range(onemp):
        img = photos[i % len(photos)]
        w, h = img.size
        x, y = rng.randrange(w // 5), rng.randrange(h // 5)
        crop = img.crop((x, y, x + w * 4 // 5, y + h * 4 // 5)).resize((1155, 866), Image.Resampling.BICUBIC)
        if i % 2:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=rng.randrange(82, 93))
        (one / f"danbooru_{2_000_000 + i}.jpg").write_bytes(buf.getvalue())
    mark.write_text("complete\n")
    return True


def stat_walk(root: Path) -> tuple[float, int]:
    """The floor: a bare recursive scandir + stat; (seconds, files)."""
    t0 = time.perf_counter()
    n = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                else:
                    e.stat(follow_symlinks=False)
                    n += 1
    return time.perf_counter() - t0, n


def exiftool(root: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        ["exiftool", "-fast", "-j", "-r", "-q", "-ImageWidth", "-ImageHeight", "-FileType", str(root)],
        capture_output=True,
        check=False,
    )
    return time.perf_counter() - t0


def imagehash_loop(root: Path) -> tuple[float, dict[str, str]]:
    """The peer of ``scan --hash``: imagehash.phash of every file, in one process."""
    import imagehash
    from PIL import Image

    t0 = time.perf_counter()
    out = {}
    for p in sorted(root.iterdir()):
        with Image.open(p) as img:
            out[p.name] = str(imagehash.phash(img))
    return time.perf_counter() - t0, out


def decode_floor(root: Path) -> float:
    """The decoder's floor for the hash: open + draft decode (grey, 1/8) of every file, one process."""
    from PIL import Image

    t0 = time.perf_counter()
    for p in sorted(root.iterdir()):
        with Image.open(p) as img:
            img.draft("L", (32, 32))
            img.load()
    return time.perf_counter() - t0


def step(ws: Path, root: Path, name: str, hash: bool, workers: int | None) -> dict:
    """One tuiops scan in its own process: seconds, summary, peak memory (MiB)."""
    code = (
        "import json, resource, sys, time\n"
        "from tuiops.workspace import Workspace\n"
        "from tuiops.ops.scan import scan\n"
        f"ws = Workspace.init({str(ws)!r}) if not __import__('os').path.exists({str(ws)!r}) "
        f"else Workspace.open({str(ws)!r})\n"
        "ws.store.read_frame('SELECT 1 AS x')\n"
        "t0 = time.perf_counter()\n"
        f"s = scan(ws, {str(root)!r}, name={name!r}, hash={hash}, workers={workers})\n"
        "dt = time.perf_counter() - t0\n"
        "ws.close()\n"
        "ru = resource.getrusage\n"
        "print(json.dumps({'seconds': dt, 'summary': s.to_dict(), "
        "'self_mib': ru(resource.RUSAGE_SELF).ru_maxrss / 1024, "
        "'worker_mib': ru(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n"
    )
    import psutil

    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    top, workers = 0.0, 0.0
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        top = max(top, _hwm(proc.pid))
        try:
            for child in ps.children(recursive=True):
                workers = max(workers, _hwm(child.pid))
        except psutil.Error:
            pass
        time.sleep(0.05)  # sampling the high-water marks, not waiting for an event
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        print(stdout, stderr, file=sys.stderr)
        raise SystemExit(f"tuiops scan failed ({proc.returncode})")
    res = json.loads(stdout.strip().splitlines()[-1])
    res["self_mib"] = max(res["self_mib"], top)
    res["worker_mib"] = max(res["worker_mib"], workers)
    return res


def _hwm(pid: int) -> float:
    """A process's peak resident memory so far (VmHWM), MiB; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def churn(pool: Path, side: Path, n: int) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """1% new, 1% changed (rewritten: new mtime), 1% deleted (moved aside); returns what to undo."""
    files = sorted(p for p in (pool / "flat").iterdir() if p.suffix != ".txt")
    k = max(1, n // 100)
    new = []
    for i, p in enumerate(files[:k]):
        q = pool / "flat" / f"danbooru_{9_000_000 + i}{p.suffix}"
        shutil.copyfile(p, q)
        new.append(q)
    for p in files[k : 2 * k]:
        data = p.read_bytes()
        p.write_bytes(data)
        os.utime(p, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    side.mkdir(parents=True, exist_ok=True)
    moved = []
    for p in files[2 * k : 3 * k]:
        q = side / p.name
        p.rename(q)
        moved.append((q, p))
    return new, moved


def store_mib(ws: Path) -> float:
    return sum(p.stat().st_size for p in ws.rglob("*.db*") if p.is_file()) / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20000, help="files in the pool (default 20000)")
    ap.add_argument("--hash-files", type=int, default=2000, help="1 MP JPEGs for the hashing run (2000)")
    ap.add_argument("--dir", help="generate into (and reuse) this folder; kept")
    ap.add_argument("--workers", type=int, default=None, help="tuiops probe processes (default: every core)")
    ap.add_argument("--quick", action="store_true", help="300 small files, 60 to hash: a smoke test")
    args = ap.parse_args(argv)
    if shutil.which("exiftool") is None:
        print("exiftool is not installed: apt-get install -y libimage-exiftool-perl", file=sys.stderr)
        return 2
    n, h = (300, 60) if args.quick else (args.files, args.hash_files)
    tmp = Path(tempfile.mkdtemp(prefix="bench_pool_"))
    try:
        folder = Path(args.dir).resolve() if args.dir else tmp / "data"
        t0 = time.perf_counter()
        made = generate(folder, n, h, args.quick)
        what = "generated" if made else "reused"
        print(
            f"{what} {n} files + {h} 1 MP JPEGs in {folder} ({time.perf_counter() - t0:.1f} s); {os.cpu_count()} cores"
        )
        pool, one, ws = folder / "pool", folder / "onemp", tmp / "ws"
        stat_walk(pool)  # warm the cache of directory entries
        floor, nfiles = min(stat_walk(pool) for _ in range(3))
        t_exif = exiftool(pool)
        first = step(ws, pool, "pool", False, args.workers)
        same = step(ws, pool, "pool", False, args.workers)
        new, moved = churn(pool, folder / "aside", n)
        try:
            churned = step(ws, pool, "pool", False, args.workers)
        finally:
            for q in new:
                q.unlink()
            for q, p in moved:
                q.rename(p)
        t_peer, ref = imagehash_loop(one)
        t_decode = decode_floor(one)
        hashed = step(ws, one, "onemp", True, args.workers)
        rows: list[tuple[str, float, int]] = [
            ("bare scandir+stat walk (floor)", floor, nfiles),
            ("exiftool -fast -j -r (header)", t_exif, nfiles),
            ("tuiops first scan (header)", first["seconds"], nfiles),
            ("tuiops rescan, nothing changed", same["seconds"], nfiles),
            ("tuiops rescan, 1% new/changed/gone", churned["seconds"], nfiles),
            (f"imagehash.phash loop, 1 MP JPEG x{h}", t_peer, h),
            (f"draft decode alone, 1 process, x{h}", t_decode, h),
            (f"tuiops scan --hash, 1 MP JPEG x{h}", hashed["seconds"], h),
        ]
        print(f"\n{'step':<40} {'seconds':>9} {'files/s':>10} {'vs floor':>9} {'at 4M (EXTRAPOLATED)':>22}")
        for label, sec, k in rows:
            print(
                f"{label:<40} {sec:>9.3f} {k / sec:>10.0f} {sec / floor:>8.1f}x {sec * TARGET / k / 60:>17.1f} min"
            )
        s = churned["summary"]
        print(f"\nchurn rescan saw new {s['new']}, changed {s['changed']}, deleted {s['deleted']}")
        print(f"header scan vs exiftool: {t_exif / first['seconds']:.1f}x faster")
        print(f"no-change rescan: {same['seconds'] / floor:.2f}x the stat walk (goal <= 2x)")
        rate = h / hashed["seconds"]
        print(
            f"hashing: {rate:.0f} files/s, {t_peer / hashed['seconds']:.1f}x the imagehash loop (goal >= 1000/s)"
        )
        peak = max(r["self_mib"] for r in (first, same, churned, hashed))
        worker = max(r["worker_mib"] for r in (first, same, churned, hashed))
        size = store_mib(ws)
        print(
            f"peak memory: tuiops process {peak:.0f} MiB, largest worker {worker:.0f} MiB; store {size:.1f} MiB"
        )
        print(
            f"EXTRAPOLATED to {TARGET:,} files (linear in files, not measured): store "
            f"{size * TARGET / (nfiles + h) / 1024:.1f} GiB"
        )
        got = {}
        import sqlite3

        con = sqlite3.connect(ws / "tuiops.db") if (ws / "tuiops.db").exists() else None
        if con is not None:
            from tuiops.ops.probe import phash_hex

            got = {
                r: phash_hex(v)
                for r, v in con.execute("SELECT relpath, phash FROM files WHERE phash IS NOT NULL")
            }
            con.close()
        if got:
            from collections import Counter

            dist = Counter(
                bin(int(v, 16) ^ int(got[k], 16)).count("1") for k, v in ref.items() if got.get(k) is not None
            )
            print(
                "hash vs imagehash.phash of the full decode, Hamming distance: files "
                + ", ".join(f"{d} bits: {c}" for d, c in sorted(dist.items()))
            )
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
