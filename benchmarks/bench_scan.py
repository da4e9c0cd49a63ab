"""Pool indexing, side by side: `tuiops scan` (header-only, and with --hash) vs `exiftool -fast`.

Generates N small JPEG/PNG files in a temporary folder (names like ``danbooru_123.jpg``,
100 per subfolder), then on that same folder times:

* tuiops header-only scan (the op, into a fresh store each time),
* ``exiftool -fast -j -r -q -ImageWidth -ImageHeight -FileType -FileSize DIR``,
* tuiops scan with the perceptual hash (``--hash``),

prints seconds, files/s and ratios, and checks parity: width, height and format of every
file must agree between tuiops and exiftool. Exits 1 when parity fails, 2 when exiftool
is missing (``apt-get install -y libimage-exiftool-perl``).

    python benchmarks/bench_scan.py              # 5000 files
    python benchmarks/bench_scan.py --size 20000 --repeat 3
    python benchmarks/bench_scan.py --quick      # 300 files, a few seconds
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

GOAL = 3.0
EXIFTOOL_ARGS = ["-fast", "-j", "-r", "-q", "-ImageWidth", "-ImageHeight", "-FileType", "-FileSize"]


def generate(folder: Path, n: int, seed: int = 7) -> None:
    """Write ``n`` small JPEG/PNG files (about 1 in 4 a PNG) of varied sizes below ``folder``."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    bases: list[tuple[str, bytes]] = []
    for i in range(48):
        w, h = rng.randrange(96, 640), rng.randrange(96, 640)
        img = Image.new("RGB", (w, h), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        d = ImageDraw.Draw(img)
        for _ in range(6):
            x0, y0 = rng.randrange(w), rng.randrange(h)
            d.rectangle(
                [x0, y0, x0 + rng.randrange(4, w), y0 + rng.randrange(4, h)],
                fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)),
            )
        buf = io.BytesIO()
        if i % 4 == 3:
            img.save(buf, "PNG")
            bases.append((".png", buf.getvalue()))
        else:
            img.save(buf, "JPEG", quality=85)
            bases.append((".jpg", buf.getvalue()))
    boorus = ("danbooru", "gelbooru", "yandere")
    for i in range(n):
        ext, data = bases[i % len(bases)]
        sub = folder / f"{i // 100:04d}"
        if i % 100 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{boorus[i % 3]}_{1000000 + i}{ext}").write_bytes(data)


def run_tuiops(folder: Path, work: Path, *, hash: bool, workers: int | None, tag: str) -> tuple[float, dict]:
    """Scan ``folder`` into a fresh workspace; returns (seconds, relpath → (w, h, format))."""
    from tuiops.ops.scan import scan
    from tuiops.workspace import Workspace

    root = work / f"ws-{tag}"
    if root.exists():
        shutil.rmtree(root)
    ws = Workspace.init(root)
    try:
        ws.store.read_frame("SELECT 1 AS x")  # open the Arrow connection before the clock starts
        t0 = time.perf_counter()
        summary = scan(ws, folder, name="bench", hash=hash, workers=workers)
        elapsed = time.perf_counter() - t0
        rows = ws.store.execute("SELECT relpath, width, height, format, status, phash FROM files").fetchall()
    finally:
        ws.close()
    if summary.bad:
        print(f"warning: tuiops found bad files: {summary.bad}", file=sys.stderr)
    if hash and any(r[5] is None for r in rows):
        print("warning: some files have no hash", file=sys.stderr)
    return elapsed, {r[0]: (r[1], r[2], r[3]) for r in rows}


def run_exiftool(folder: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run(["exiftool", *EXIFTOOL_ARGS, str(folder)], capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        print(
            f"exiftool failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:500]}",
            file=sys.stderr,
        )
        sys.exit(1)
    out = {}
    prefix = str(folder).rstrip("/") + "/"
    for rec in json.loads(proc.stdout):
        rel = rec["SourceFile"][len(prefix) :] if rec["SourceFile"].startswith(prefix) else rec["SourceFile"]
        out[rel] = (rec.get("ImageWidth"), rec.get("ImageHeight"), rec.get("FileType"))
    return elapsed, out


def parity(a: dict, b: dict) -> list[str]:
    problems = []
    for rel in sorted(set(a) | set(b)):
        if rel not in a or rel not in b:
            problems.append(f"{rel}: only in {'tuiops' if rel in a else 'exiftool'}")
        elif a[rel] != b[rel]:
            problems.append(f"{rel}: tuiops {a[rel]} vs exiftool {b[rel]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=5000, help="number of files to generate (default 5000)")
    ap.add_argument("--quick", action="store_true", help="300 files, one repeat: a smoke test")
    ap.add_argument("--repeat", type=int, default=2, help="runs per peer; the best is reported (default 2)")
    ap.add_argument("--workers", type=int, default=None, help="tuiops probe processes (default: every core)")
    ap.add_argument("--dir", help="generate into this folder instead of a temporary one (kept)")
    args = ap.parse_args(argv)
    if shutil.which("exiftool") is None:
        print("exiftool is not installed: apt-get install -y libimage-exiftool-perl", file=sys.stderr)
        return 2
    n = 300 if args.quick else args.size
    repeat = 1 if args.quick else max(1, args.repeat)
    tmp = Path(tempfile.mkdtemp(prefix="bench_scan_"))
    try:
        folder = Path(args.dir).resolve() if args.dir else tmp / "pool"
        t0 = time.perf_counter()
        generate(folder, n)
        print(f"generated {n} files in {folder} ({time.perf_counter() - t0:.1f} s); {os.cpu_count()} cores")
        subprocess.run(["exiftool", "-ver"], capture_output=True, check=False)  # warm the file cache
        t_tui, t_exif, t_hash = [], [], []
        got_tui: dict = {}
        got_exif: dict = {}
        for r in range(repeat):
            sec, got_tui = run_tuiops(folder, tmp, hash=False, workers=args.workers, tag=f"h{r}")
            t_tui.append(sec)
            sec, got_exif = run_exiftool(folder)
            t_exif.append(sec)
            sec, _ = run_tuiops(folder, tmp, hash=True, workers=args.workers, tag=f"p{r}")
            t_hash.append(sec)
        bt, be, bh = min(t_tui), min(t_exif), min(t_hash)
        print()
        print(f"{'peer':<36} {'seconds':>8} {'files/s':>10} {'vs exiftool':>12}")
        print(f"{'exiftool -fast (header)':<36} {be:>8.3f} {n / be:>10.0f} {1.0:>11.2f}x")
        print(f"{'tuiops scan (header-only)':<36} {bt:>8.3f} {n / bt:>10.0f} {be / bt:>11.2f}x")
        print(f"{'tuiops scan --hash':<36} {bh:>8.3f} {n / bh:>10.0f} {be / bh:>11.2f}x")
        ratio = be / bt
        print()
        print(
            f"header-only speed-up over exiftool -fast: {ratio:.2f}x (goal >= {GOAL:.0f}x: "
            f"{'met' if ratio >= GOAL else 'MISSED'})"
        )
        problems = parity(got_tui, got_exif)
        if problems:
            print(f"parity FAILED on {len(problems)} of {n} files:")
            for p in problems[:10]:
                print(f"  {p}")
            return 1
        print(f"parity ok: width, height and format agree on all {len(got_tui)} files")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
