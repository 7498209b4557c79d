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
    assert "| trn2.48xlarge | 8 | 2 |" in result.stdout
    assert "| trn1.32xlarge | 4 | 20 |" in result.stdout  # the real trn1 capture's shape, small
    assert "resident memory" in result.stdout and "steady-state CPU" in result.stdout
    assert "Load: trn2.48xlarge with 8 runtimes at 10 reports/s, 5 scrapers" in result.stdout
