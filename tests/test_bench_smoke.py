"""The benchmark keeps working: a smoke run end to end (no time is asserted; numbers are bench's job)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_smoke_run_prints_a_results_table() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "| trn2.48xlarge | 8 |" in result.stdout
    assert "resident memory" in result.stdout and "steady-state CPU" in result.stdout
    assert "Load: trn2.48xlarge with 8 runtimes at 10 reports/s, 5 scrapers" in result.stdout
