"""Small executable stand-ins for neuron-monitor, written into a test's tmp folder."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fake_monitor(tmp_path: Path, body: str, name: str = "neuron-monitor") -> Path:
    """An executable Python script run as neuron-monitor; `body` sees `sys.argv` as neuron-monitor would."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport sys, os, time\nsys.path.insert(0, {str(REPO)!r})\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def simulator_monitor(tmp_path: Path, *flags: str) -> Path:
    """neuron-monitor played by the built-in simulator with extra flags (faults, shape, runtimes)."""
    args = ["-m", "exporter.simulator", *flags]
    return fake_monitor(
        tmp_path,
        f"os.execv(sys.executable, [sys.executable, *{args!r}, *sys.argv[1:]])",
    )


FRACTIONAL = "--config.allow-fractional-periods"
"""What an exporter given a sub-second period needs: the simulator honours "0.2s", neuron-monitor may not."""


def write_config(tmp_path: Path, period: str = "1s") -> Path:
    """A neuron-monitor config with every group at the given period."""
    text = (REPO / "examples" / "mon.json").read_text().replace('"period": "1s"', f'"period": "{period}"')
    path = tmp_path / "mon.json"
    path.write_text(text)
    return path
