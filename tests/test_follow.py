"""Sidecar mode for real: writer processes that stop, come back and write garbage, into a FIFO, a file
and the daemon's stdin, read by the real daemon and checked over HTTP."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon import PORT_LINE, Daemon, sample_value, stop_process, wait_for
from tests.fakes import FRACTIONAL, write_config

WRITER = """
import sys, time
from exporter.simulator import Simulator
sim = Simulator("inf1.xlarge", config={config!r})
with open({target!r}, {mode!r}) as out:
    for index in range({start}, {start} + {count}):
        out.write(sim.line(index).decode())
        out.flush()
    out.write({tail!r})
    out.flush()
"""


def write_reports(target: Path, start: int, count: int, *, mode: str = "w", tail: str = "") -> None:
    """A separate writer process that opens `target`, writes `count` simulator reports, then `tail`, and exits."""
    config = str(target.parent / "mon.json")
    code = WRITER.format(config=config, target=str(target), mode=mode, start=start, count=count, tail=tail)
    subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=60, cwd=Path(__file__).resolve().parents[1]
    )


def metric(daemon: Daemon, name: str, **labels: str) -> float:
    return sample_value(daemon.metrics(), name, **labels) or 0.0


def test_a_fifo_whose_writer_leaves_and_returns_is_reopened(tmp_path: Path) -> None:
    config = write_config(tmp_path, period="0.2s")
    fifo = tmp_path / "reports.fifo"
    os.mkfifo(fifo)
    with Daemon(tmp_path, "--input", str(fifo), "--config", str(config), FRACTIONAL) as daemon:
        assert daemon.get("/-/ready")[0] == 503
        write_reports(fifo, 0, 5, tail='{"neuron_runtime_data": [{"pid": 1, "rep')  # dies mid-line
        wait_for(lambda: metric(daemon, "neuron_exporter_reports_total") == 5, 30, "five reports")
        wait_for(lambda: metric(daemon, "neuron_monitor_up") == 0, 30, "up 0 once the writer left")
        assert metric(daemon, "neuron_exporter_bad_lines_total", reason="not_json") == 1  # the torn line
        write_reports(fifo, 5, 3, tail="garbage, not a report\n")
        wait_for(
            lambda: metric(daemon, "neuron_exporter_reports_total") == 8, 30, "the second writer's reports"
        )
        text = daemon.metrics()
        assert sample_value(text, "neuron_exporter_bad_lines_total", reason="not_json") == 2
        assert sample_value(text, "neuron_exporter_monitor_restarts_total") == 1  # the writer came back
        assert sample_value(text, "neuron_instance_info", **_instance(text)) == 1
        assert daemon.stop() == 0


def test_a_followed_file_is_read_as_it_grows_and_from_the_start_when_truncated(tmp_path: Path) -> None:
    config = write_config(tmp_path, period="0.2s")
    capture = tmp_path / "reports.jsonl"
    write_reports(capture, 0, 4)  # history from before the exporter started: not replayed
    with Daemon(tmp_path, "--input", str(capture), "--config", str(config), FRACTIONAL) as daemon:
        write_reports(capture, 4, 3, mode="a")
        wait_for(lambda: metric(daemon, "neuron_exporter_reports_total") == 3, 30, "the appended reports")
        write_reports(capture, 7, 2, mode="w")  # truncated and rewritten
        wait_for(
            lambda: metric(daemon, "neuron_exporter_reports_total") == 5, 30, "the rewritten file's reports"
        )
        assert metric(daemon, "neuron_monitor_up") == 1
        assert daemon.stop() == 0


def test_eof_on_stdin_ends_the_input_not_the_exporter(tmp_path: Path) -> None:
    """A pipeline `neuron-monitor | neuron-exporter --input -`: when the writer closes the pipe, the
    exporter keeps serving (stale, up 0, not ready) rather than exiting or restarting anything."""
    config = write_config(tmp_path, period="0.2s")
    repo = Path(__file__).resolve().parents[1]
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter.simulator",
            "-c",
            str(config),
            "--shape",
            "inf1.xlarge",
            "--count",
            "4",
            "--no-sleep",
        ],
        stdout=subprocess.PIPE,
        cwd=repo,
    )
    log = (tmp_path / "exporter.log").open("wb")
    exporter = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter.cli",
            "--web.listen-address",
            "127.0.0.1:0",
            "--input",
            "-",
            "--config",
            str(config),
            FRACTIONAL,
        ],
        stdin=simulator.stdout,
        stdout=subprocess.DEVNULL,
        stderr=log,
        cwd=repo,
    )
    assert simulator.stdout is not None
    simulator.stdout.close()  # the exporter holds the only read end now
    try:
        match = wait_for(
            lambda: PORT_LINE.search((tmp_path / "exporter.log").read_bytes()), 30, "the exporter to listen"
        )
        daemon = Daemon.__new__(Daemon)
        daemon.port, daemon.proc, daemon.log_path = int(match.group(1)), exporter, tmp_path / "exporter.log"
        wait_for(lambda: metric(daemon, "neuron_exporter_reports_total") == 4, 30, "four reports from stdin")
        assert simulator.wait(30) == 0
        wait_for(lambda: b"stdin closed" in daemon.log(), 30, "the exporter to notice EOF")
        wait_for(lambda: daemon.get("/-/ready")[0] == 503, 30, "readiness to fail once data is stale")
        assert metric(daemon, "neuron_monitor_up") == 0
        assert exporter.poll() is None  # still serving
        assert daemon.stop() == 0
    finally:
        stop_process(exporter, grace=10)
        stop_process(simulator, grace=10)  # type: ignore[arg-type]
        log.close()


def _instance(text: str) -> dict[str, str]:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "neuron_instance_info":
                return dict(sample.labels)
    raise AssertionError("no neuron_instance_info")


def test_a_fifo_made_after_the_exporter_started_is_read(tmp_path: Path) -> None:
    """In the sidecar pod the FIFO may appear after the exporter starts (another container makes it)."""
    config = write_config(tmp_path, period="0.2s")
    fifo = tmp_path / "later.fifo"
    with Daemon(tmp_path, "--input", str(fifo), "--config", str(config), FRACTIONAL) as daemon:
        assert metric(daemon, "neuron_exporter_reports_total") == 0
        waiting = f"waiting for --input {fifo}: it does not exist (yet)".encode()
        wait_for(lambda: waiting in daemon.log(), 30, "a log line naming the missing input")
        assert daemon.log().count(waiting) == 1, "once a minute, not once per poll"
        os.mkfifo(fifo)
        write_reports(fifo, 0, 3)
        wait_for(
            lambda: metric(daemon, "neuron_exporter_reports_total") == 3, 30, "reports through the new FIFO"
        )
        assert daemon.stop() == 0


def unreadable_path(tmp_path: Path) -> Path:
    """A regular file this process may not read: mode 000 for a user, a write-only sysctl for root
    (root reads any mode-000 file, but /proc/sys honours the mode for root too)."""
    if os.geteuid() != 0:
        path = tmp_path / "secret.jsonl"
        path.write_text("")
        path.chmod(0)
        return path
    path = Path("/proc/sys/vm/compact_memory")
    if not path.exists():
        pytest.skip("no file here that root may not read")
    return path


@pytest.mark.parametrize("kind", ["directory", "unreadable", "socket"])
def test_an_input_that_cannot_work_is_one_line_and_exit_2(tmp_path: Path, kind: str) -> None:
    if kind == "directory":
        path, message = tmp_path, "is a directory; give the FIFO or file neuron-monitor writes"
    elif kind == "unreadable":
        path, message = unreadable_path(tmp_path), "cannot read: Permission denied"
    else:
        path, message = tmp_path / "s.sock", "is neither a FIFO nor a regular file"
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))  # the socket file stays when the socket is closed
    result = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "--input", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == f"neuron-exporter: --input {path} {message}\n".replace(
        f"{path} cannot", f"{path}: cannot"
    )


def test_checking_a_fifo_at_start_does_not_release_a_waiting_writer(tmp_path: Path) -> None:
    """neuron-monitor's shell waits in open(fifo) for a reader; a check that opened and closed the
    FIFO would let it through only to meet its first write with SIGPIPE."""
    fifo = tmp_path / "reports.fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"echo report > {fifo}"])
    try:
        result = subprocess.run(
            [sys.executable, "-m", "exporter.cli", "--input", str(fifo), "--stale-periods", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2 and "--stale-periods" in result.stderr  # it got past the input check
        with pytest.raises(subprocess.TimeoutExpired):
            writer.wait(timeout=1)  # still waiting for a reader
    finally:
        writer.kill()
        writer.wait()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_a_fifo_the_exporter_may_not_read_is_exit_2(tmp_path: Path) -> None:
    """As the sidecar overlay runs it: root without capabilities, and a FIFO of another user, mode 0600."""
    fifo = tmp_path / "reports.fifo"
    os.mkfifo(fifo, 0o600)
    os.chown(fifo, 10001, 10001)
    result = subprocess.run(
        [
            "setpriv",
            "--bounding-set=-all",
            "--inh-caps=-all",
            "--",
            sys.executable,
            "-m",
            "exporter.cli",
            "--input",
            str(fifo),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == f"neuron-exporter: --input {fifo}: cannot read: Permission denied\n"
