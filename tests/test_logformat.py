"""--log.format and --log.level, on the running daemon's own stderr."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon import Daemon, wait_for
from tests.fakes import REPO, fake_monitor, write_config

LOGFMT_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def daemon_log(tmp_path: Path, *flags: str) -> list[str]:
    """The stderr lines of a daemon whose neuron-monitor says something on stderr and then reports."""
    monitor = fake_monitor(
        tmp_path,
        "sys.stderr.write('level=error msg=\"no device\"\\n'); sys.stderr.flush()\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'exporter.simulator', *sys.argv[1:]])",
    )
    config = write_config(tmp_path)
    with Daemon(tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor), *flags) as daemon:
        wait_for(lambda: b"no device" in daemon.log(), 30, "neuron-monitor's stderr in the log")
        assert daemon.stop() == 0
        return daemon.log().decode().splitlines()


def test_json_logs_are_one_object_per_line_with_the_same_fields(tmp_path: Path) -> None:
    lines = daemon_log(tmp_path, "--log.format", "json")
    records = [json.loads(line) for line in lines]
    assert all(set(r) == {"time", "level", "logger", "msg"} for r in records), records
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in records)
    child = [r for r in records if r["logger"] == "exporter.neuron_monitor"]
    assert child and child[0]["level"] == "error" and 'msg="no device"' in child[0]["msg"]
    assert any(r["level"] == "info" and "serving /metrics on port" in r["msg"] for r in records)


def test_logfmt_logs_parse_as_key_value_pairs(tmp_path: Path) -> None:
    lines = daemon_log(tmp_path, "--log.format", "logfmt")
    for line in lines:
        pairs = dict(LOGFMT_PAIR.findall(line))
        assert list(pairs)[:4] == ["time", "level", "logger", "msg"], line
        assert LOGFMT_PAIR.sub("", line).strip() == "", f"not only key=value pairs: {line}"
    assert any("logger=exporter.neuron_monitor" in line and "level=error" in line for line in lines)


@pytest.mark.parametrize(("level", "shown"), [("warning", True), ("error", False)])
def test_log_level_decides_what_is_shown(tmp_path: Path, level: str, shown: bool) -> None:
    """A config warning (an unknown group) shows at level warning, not at level error."""
    config = tmp_path / "mon.json"
    config.write_text('{"period": "1s", "system_metrics": [{"type": "gpu_usage"}]}')
    capture = REPO / "tests/fixtures/reports/real__wandb-test_trainium-MOCK_DATA_trn1.2xlarge.jsonl"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "exporter.cli", "--replay", str(capture), "--config", str(config)),
            *("--log.level", level, "--log.format", "json", "--once"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    records = [json.loads(line) for line in result.stderr.splitlines()]
    warned = [
        r for r in records if r["level"] == "warning" and "unknown metric group 'gpu_usage'" in r["msg"]
    ]
    assert bool(warned) is shown and len(records) == len(warned), records
