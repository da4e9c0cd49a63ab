"""Every benchmark runs in its quick mode and its parity checks pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.glob("bench_*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_quick(script: Path) -> None:
    env = {**os.environ, "YOLO_OFFLINE": "true"}
    out = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=600, env=env
    )
    assert out.returncode == 0, f"{script.name} --quick failed:\n{out.stdout}\n{out.stderr}"
    assert "MISMATCH" not in out.stdout
