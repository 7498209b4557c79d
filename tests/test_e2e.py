"""End to end: the real daemon as a subprocess, neuron-monitor played by the simulator or a fake script,
scraped over real HTTP."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon import Daemon, sample_value, wait_for
from tests.fakes import REPO, fake_monitor, simulator_monitor, write_config

FIXTURE = REPO / "tests" / "fixtures" / "reports" / "real__inf1.xlarge_2023-02_with-runtime.jsonl"


def reports_total(daemon: Daemon) -> float:
    return sample_value(daemon.metrics(), "neuron_exporter_reports_total") or 0


def test_simulated_trn2_is_served_and_counters_only_grow(tmp_path: Path) -> None:
    config = write_config(tmp_path, "1s")
    with Daemon(
        tmp_path, "--config", str(config), "--simulate", "trn2.48xlarge", "--simulate-runtimes", "4"
    ) as d:
        wait_for(lambda: d.get("/-/ready")[0] == 200, 30, "readiness")
        first = d.metrics()
        assert sample_value(first, "neuron_monitor_up") == 1
        assert sample_value(first, "neuron_devices") == 16
        utilization = [
            line for line in first.splitlines() if line.startswith("neuron_neuroncore_utilization_ratio{")
        ]
        assert len(utilization) == 64  # every logical core exactly once: owned by one runtime, or idle
        assert "neuron_neuroncore_physical_utilization_ratio{" in first
        seen = reports_total(d)
        wait_for(lambda: reports_total(d) >= seen + 2, 30, "two more reports")
        second = d.metrics()
        for line in first.splitlines():
            if line.startswith("neuron_execution_status_total{"):
                series, value = line.rsplit(" ", 1)
                later = [x for x in second.splitlines() if x.startswith(series + " ")]
                if later:
                    assert float(later[0].rsplit(" ", 1)[1]) >= float(value)
        assert d.stop() == 0


def test_http_endpoints_and_openmetrics(tmp_path: Path) -> None:
    with Daemon(tmp_path, "--replay", str(FIXTURE)) as d:
        status, _, body = d.get("/")
        assert status == 200 and b'href="/metrics"' in body
        assert d.get("/-/healthy")[0] == 200
        assert d.get("/-/ready")[0] == 200  # replayed data is never stale
        assert d.get("/nope")[0] == 404
        status, headers, body = d.get("/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
        assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text")
        assert body.endswith(b"# EOF\n")
        status, headers, body = d.get("/metrics", {"Accept-Encoding": "gzip"})
        assert headers.get("Content-Encoding") == "gzip" and b"neuron_instance_info{" in body
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert "process_resident_memory_bytes" in d.metrics()


def test_not_ready_until_first_report_then_stale_when_silent(tmp_path: Path) -> None:
    line = FIXTURE.read_text().strip()
    monitor = fake_monitor(tmp_path, f"time.sleep(1.5)\nprint({line!r}, flush=True)\ntime.sleep(3600)")
    config = write_config(tmp_path, "1s")
    with Daemon(
        tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor), "--hang-periods", "1000"
    ) as d:
        status, _, body = d.get("/-/ready")
        assert status == 503 and b"no report yet" in body
        wait_for(lambda: d.get("/-/ready")[0] == 200, 20, "the first report")
        assert sample_value(d.metrics(), "neuron_monitor_up") == 1
        # Period 1 s, stale after 3 periods without a report.
        wait_for(lambda: d.get("/-/ready")[0] == 503, 20, "staleness")
        assert sample_value(d.metrics(), "neuron_monitor_up") == 0
        assert b"stale" in d.get("/-/ready")[2]


def test_child_stderr_is_logged_and_sigterm_stops_child(tmp_path: Path) -> None:
    monitor = simulator_monitor(tmp_path, "--shape", "inf1.xlarge", "--stderr-noise")
    config = write_config(tmp_path, "1s")
    with Daemon(tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor)) as d:
        wait_for(lambda: d.get("/-/ready")[0] == 200, 30, "readiness")
        wait_for(
            lambda: b"neuron-monitor" in d.log() and b"WARNING" in d.log(), 20, "child stderr in the log"
        )
        children = subprocess.run(
            ["pgrep", "-P", str(d.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert children
        assert d.stop(signal.SIGTERM, timeout=30) == 0
        for pid in children:
            assert (
                not Path(f"/proc/{pid}").exists()
                or "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
            )


def test_sigint_exits_zero(tmp_path: Path) -> None:
    with Daemon(tmp_path, "--replay", str(FIXTURE)) as d:
        assert d.stop(signal.SIGINT, timeout=30) == 0


def test_replay_once_prints_final_state() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter.cli",
            "--replay",
            str(REPO / "tests/fixtures/reports/real__wandb-test_trainium-MOCK_DATA_trn1.2xlarge.jsonl"),
            "--once",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    text = result.stdout.decode()
    assert sample_value(text, "neuron_exporter_reports_total") == 3
    # The capture's first report is from runtime 1337, the next two from 16851: only 16851 remains.
    assert 'runtime_tag="1337"' not in text
    assert sample_value(text, "neuron_execution_errors_total", error_type="generic", runtime_tag="16851") == (
        23692 + 23749
    )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter.cli", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"system_metrics": [{"type": "cpu_usage"}]}', "'cpu_usage' was renamed 'vcpu_usage'"),
        ('{"period": "1.0s"}', 'write "1s"'),
        ('{"neuron_runtimes": [{"tag_filter": "(?!test).*"}]}', "look-around"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "mon.json"
    config.write_text(content)
    result = run_cli("--config", str(config), "--simulate", "inf1.xlarge")
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
@pytest.mark.parametrize("flag", ["--stale-periods", "--hang-periods"])
def test_periods_flags_that_cannot_work_exit_2_with_one_line(flag: str, value: str) -> None:
    result = run_cli("--simulate", "inf1.xlarge", flag, value)
    assert result.returncode == 2
    assert result.stderr.startswith(f"neuron-exporter: {flag} must be a number of periods above 0")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("content", [b"", b"\n\n", b"not json\n", b"[1, 2]\n", b'{"unrelated": 1}\n'])
def test_a_replay_capture_without_a_report_exits_2(tmp_path: Path, content: bytes) -> None:
    capture = tmp_path / "empty.jsonl"
    capture.write_bytes(content)
    result = run_cli("--replay", str(capture), "--once")
    assert result.returncode == 2
    assert (
        result.stderr
        == f"neuron-exporter: replay file {capture} holds no neuron-monitor report (one JSON object per line)\n"
    )


def test_strict_config_refuses_an_unknown_group_that_is_otherwise_passed_on(tmp_path: Path) -> None:
    config = tmp_path / "mon.json"
    config.write_text('{"period": "1s", "system_metrics": [{"type": "memory_info"}, {"type": "gpu_usage"}]}')
    refused = run_cli("--config", str(config), "--simulate", "inf1.xlarge", "--config.strict")
    assert refused.returncode == 2 and "unknown metric group 'gpu_usage'" in refused.stderr
    assert "refused: --config.strict" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    argv_file = tmp_path / "argv.json"
    monitor = fake_monitor(
        tmp_path,
        f"import json; json.dump(sys.argv[1:], open({str(argv_file)!r}, 'w')); time.sleep(60)",
    )
    with Daemon(tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor)) as daemon:
        wait_for(argv_file.exists, 30, "neuron-monitor to start with the config")
        assert json.loads(argv_file.read_text()) == ["-c", str(config)]
        log = daemon.log().decode()
        assert f"neuron-monitor config {config}: system_metrics[1]: unknown metric group 'gpu_usage'" in log
        assert log.count("unknown metric group") == 1


def test_missing_neuron_monitor_exits_2(tmp_path: Path) -> None:
    result = run_cli(
        "--config", str(write_config(tmp_path)), "--neuron-monitor-path", str(tmp_path / "missing")
    )
    assert result.returncode == 2 and "neuron-monitor not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_non_executable_neuron_monitor_exits_2(tmp_path: Path) -> None:
    monitor = tmp_path / "neuron-monitor"
    monitor.write_text("#!/bin/sh\n")
    monitor.chmod(0o644)
    result = run_cli("--config", str(write_config(tmp_path)), "--neuron-monitor-path", str(monitor))
    assert result.returncode == 2
    assert result.stderr == f"neuron-exporter: neuron-monitor at {monitor} is not executable\n"


def test_default_neuron_monitor_lookup_explains_itself(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "--config", str(write_config(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(tmp_path), "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2 and "/opt/aws/neuron/bin/neuron-monitor" in result.stderr


def test_address_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("--replay", str(FIXTURE), "--web.listen-address", f"127.0.0.1:{port}")
    assert result.returncode == 2 and str(port) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_collectors_switch_off_by_flag() -> None:
    result = run_cli(
        "--replay", str(FIXTURE), "--once", "--no-collector.memory_used", "--no-collector.vcpu_usage"
    )
    assert result.returncode == 0
    assert "neuron_runtime_memory_used_bytes" not in result.stdout
    assert "neuron_system_vcpu_average_usage_ratio" not in result.stdout
    assert 'collector="memory_used"' not in result.stdout
    assert 'neuron_exporter_collector_success{collector="neuroncore_counters"} 1.0' in result.stdout


def test_once_without_replay_is_a_usage_error() -> None:
    result = run_cli("--once")
    assert result.returncode == 2 and "--once needs --replay" in result.stderr


def test_sighup_reloads_a_valid_config_and_keeps_running_on_an_invalid_one(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    line = FIXTURE.read_text().strip()
    monitor = fake_monitor(
        tmp_path,
        f"open({str(starts)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        f"while True:\n    print({line!r}, flush=True)\n    time.sleep(0.2)",
    )
    config = write_config(tmp_path, "1s")
    with Daemon(tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor)) as d:
        wait_for(lambda: d.get("/-/ready")[0] == 200, 30, "readiness")
        assert starts.read_text().splitlines() == [f"-c {config}"]
        good = config.read_text()
        config.write_text("{broken")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: b"keeping the running configuration" in d.log(), 20, "the rejection in the log")
        assert len(starts.read_text().splitlines()) == 1 and d.proc.poll() is None
        config.write_text(good)
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(starts.read_text().splitlines()) == 2, 20, "neuron-monitor restarted")
        wait_for(
            lambda: sample_value(d.metrics(), "neuron_exporter_monitor_restarts_total") == 1,
            20,
            "restart count",
        )


def test_crashing_monitor_is_restarted_and_counted(tmp_path: Path) -> None:
    monitor = simulator_monitor(tmp_path, "--shape", "inf1.xlarge", "--crash-after", "2")
    config = write_config(tmp_path, "1s")
    with Daemon(tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor)) as d:
        wait_for(
            lambda: (sample_value(d.metrics(), "neuron_exporter_monitor_restarts_total") or 0) >= 2,
            60,
            "two restarts",
        )
        assert d.get("/metrics")[0] == 200  # served throughout
        assert d.stop() == 0
