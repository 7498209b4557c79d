"""Fault injection end to end: the real daemon as a subprocess, neuron-monitor misbehaving in one way per
test (the simulator's fault switches or a small fake script), scraped over real HTTP; no mocks.

Each test checks that the fault moved the right self-metric under the right reason, that /metrics kept
answering, that the good reports around the fault were still ingested and are served with their values,
and what readiness says meanwhile. Waits are on conditions (wait_for), never on guessed sleeps.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from prometheus_client.parser import text_string_to_metric_families

from tests.daemon import Daemon, sample_value, wait_for
from tests.fakes import REPO, fake_monitor, simulator_monitor, write_config

FIXTURE = REPO / "tests" / "fixtures" / "reports" / "real__inf1.xlarge_2023-02_with-runtime.jsonl"
TAG = "15439"
"""The runtime tag (and pid) of the fixture's one runtime."""
MIB = 1024 * 1024
DEEP = 1000
"""Nesting within orjson's limit of 1024 levels, but as deep as Python's default recursion limit."""
SELF_PREFIXES = ("neuron_exporter_", "neuron_monitor_up", "process_", "python_")
"""Series about the exporter itself rather than the data neuron-monitor reported."""
QUIET_UNTIL_ORPHANED = "while os.getppid() == PARENT:\n    time.sleep(0.1)\n"
"""Stay alive and silent like neuron-monitor between periods; leave once the exporter is gone."""


# --- reading the exporter --------------------------------------------------------------------------


def value(text: str, name: str, **labels: str) -> float:
    """A series' value in an exposition, 0 when absent (a bad-line reason appears on first use)."""
    return sample_value(text, name, **labels) or 0.0


def scrape(d: Daemon, name: str, **labels: str) -> float:
    """One series from a fresh scrape (which also asserts /metrics answered 200)."""
    return value(d.metrics(), name, **labels)


Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""An exposition's samples by name and sorted labels."""


def all_series(text: str) -> Series:
    """Every sample of an exposition, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def device_series(text: str) -> Series:
    """The series carrying neuron-monitor data (not the exporter's own health or process metrics)."""
    return {key: v for key, v in all_series(text).items() if not key[0].startswith(SELF_PREFIXES)}


def clean_replay(tmp_path: Path, lines: Sequence[bytes]) -> Series:
    """What the exporter serves for exactly these good lines and nothing else (`--replay --once`).

    Comparing the daemon's data series with this shows that a fault cost nothing but its own line.
    """
    capture = tmp_path / "clean.jsonl"
    capture.write_bytes(b"".join(line.rstrip(b"\n") + b"\n" for line in lines))
    result = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "--replay", str(capture), "--once"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return device_series(result.stdout.decode())


def children(d: Daemon) -> list[int]:
    """PIDs of the daemon's child processes (the running neuron-monitor)."""
    found = subprocess.run(["pgrep", "-P", str(d.proc.pid)], capture_output=True, text=True).stdout
    return [int(pid) for pid in found.split()]


def peak_rss(pid: int) -> int:
    """The process's resident-memory high-water mark (VmHWM) in bytes: catches a transient spike too."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def status_ids(pid: int) -> dict[str, str]:
    """The Uid, Gid and Groups lines of /proc/PID/status."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, v in (line.split(":", 1) for line in lines) if k in ("Uid", "Gid", "Groups")}


# --- playing neuron-monitor ------------------------------------------------------------------------


def quiet_monitor(tmp_path: Path, data: bytes) -> Path:
    """neuron-monitor that writes `data` to stdout as is, then stays alive and silent."""
    feed = tmp_path / "prepared.out"
    feed.write_bytes(data)
    return fake_monitor(
        tmp_path,
        "PARENT = os.getppid()\n"
        f"sys.stdout.buffer.write(open({str(feed)!r}, 'rb').read())\n"
        "sys.stdout.buffer.flush()\n" + QUIET_UNTIL_ORPHANED,
    )


def looping_monitor(tmp_path: Path, prelude: str = "", name: str = "neuron-monitor") -> Path:
    """neuron-monitor printing the fixture report every 0.2 s after `prelude`, until orphaned."""
    line = FIXTURE.read_text().strip()
    return fake_monitor(
        tmp_path,
        f"PARENT = os.getppid()\n{prelude}\n"
        f"while os.getppid() == PARENT:\n    print({line!r}, flush=True)\n    time.sleep(0.2)\n",
        name,
    )


def simulator_runs_monitor(tmp_path: Path, runs: Sequence[Sequence[str]], gate: Path | None = None) -> Path:
    """neuron-monitor that runs the simulator once per flag list, one after another, then stays silent.

    A single child for the whole sequence, so the counts are exact (a child that exits would be
    restarted and print everything again). With `gate`, nothing is printed until that file exists.
    """
    wait = f"while not os.path.exists({str(gate)!r}):\n    time.sleep(0.02)\n" if gate else ""
    command = [sys.executable, "-m", "exporter.simulator"]
    return fake_monitor(
        tmp_path,
        "import subprocess\nPARENT = os.getppid()\n"
        + wait
        + f"for flags in {[list(run) for run in runs]!r}:\n"
        f"    subprocess.run([*{command!r}, *flags, *sys.argv[1:]], check=True)\n" + QUIET_UNTIL_ORPHANED,
    )


def simulated(config: Path, *flags: str) -> list[bytes]:
    """The report lines the simulator prints with these flags (it is deterministic for a seed)."""
    result = subprocess.run(
        [sys.executable, "-m", "exporter.simulator", *flags, "-c", str(config)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return result.stdout.splitlines()


def _shift_periods(node: Any, shift: float) -> None:
    if isinstance(node, dict):
        for key, item in node.items():
            if key == "period" and isinstance(item, (int, float)):
                node[key] = item + shift
            else:
                _shift_periods(item, shift)
    elif isinstance(node, list):
        for item in node:
            _shift_periods(item, shift)


def report(
    completed: int,
    shift: float,
    *,
    pid: int = int(TAG),
    generic: int = 0,
    context_switches: int = 1978,
    ecc: int = 0,
    memory_total: int = 8033951744,
    runtimes: bool = True,
) -> bytes:
    """The fixture's report (runtime tag 15439) with chosen per-period counts, as one line.

    `shift` moves every group's `period`, so each report is a new sample: a sample repeated to the
    letter is rightly not counted twice, which would blur what these tests count.
    """
    doc = orjson.loads(FIXTURE.read_bytes())
    runtime = doc["neuron_runtime_data"][0]
    runtime["pid"] = pid
    stats = runtime["report"]["execution_stats"]
    stats["execution_summary"]["completed"] = completed
    stats["error_summary"]["generic"] = generic
    system = doc["system_data"]
    system["vcpu_usage"]["context_switch_count"] = context_switches
    system["neuron_hw_counters"]["neuron_devices"][0]["mem_ecc_corrected"] = ecc
    system["memory_info"]["memory_total_bytes"] = memory_total
    if not runtimes:
        doc["neuron_runtime_data"] = []
    _shift_periods(doc, shift)
    return orjson.dumps(doc) + b"\n"


def _runtime_entry(pid: int, report_body: dict[str, Any]) -> dict[str, Any]:
    return {"pid": pid, "neuron_runtime_tag": TAG, "error": "", "report": report_body}


# --- the faults ------------------------------------------------------------------------------------


def test_monitor_failing_at_start_is_retried_with_growing_backoff(tmp_path: Path) -> None:
    """neuron-monitor exiting at once (no device, driver missing) must neither stop the exporter nor make
    it spin: each exit is a counted restart after a growing delay, the child's reason reaches the log,
    /metrics answers, and with no data at all the node is down and not ready (but alive)."""
    monitor = simulator_monitor(tmp_path, "--exit-code-at-start", "4")
    config = write_config(tmp_path)
    with Daemon(tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor)) as d:
        wait_for(lambda: scrape(d, "neuron_exporter_monitor_restarts_total") >= 3, 30, "three restarts")
        delays = [float(x) for x in re.findall(rb"exited with code 4; restarting in ([0-9.]+) s", d.log())]
        # Equal jitter: the n-th delay lies in [0.25, 0.5] * 2**n s, so they never shrink.
        assert len(delays) >= 3 and delays == sorted(delays), delays
        assert delays[0] <= 0.5 and delays[2] >= 1.0, delays
        assert b"no Neuron devices found" in d.log()
        text = d.metrics()
        assert value(text, "neuron_monitor_up") == 0
        assert value(text, "neuron_exporter_reports_total") == 0
        status, _, body = d.get("/-/ready")
        assert status == 503 and b"no report yet" in body
        assert d.get("/-/healthy")[0] == 200
        assert d.stop() == 0


def test_hung_monitor_is_killed_and_restarted(tmp_path: Path) -> None:
    """A child alive but silent is as useless as a dead one: after the hang timeout (max(5 s, hang
    periods x period) = 5 s here) it is stopped, reaped and replaced, the restart is counted, and data
    becomes fresh again. Staleness (3 periods) shows first, so readiness drops while it hangs."""
    monitor = simulator_monitor(tmp_path, "--shape", "inf1.xlarge", "--hang-after", "2")
    config = write_config(tmp_path, "1s")
    args = ("--config", str(config), "--neuron-monitor-path", str(monitor), "--hang-periods", "1")
    with Daemon(tmp_path, *args) as d:
        wait_for(
            lambda: scrape(d, "neuron_exporter_reports_total") >= 2 and d.get("/-/ready")[0] == 200,
            20,
            "two reports",
        )
        [hung] = children(d)
        wait_for(lambda: d.get("/-/ready")[0] == 503, 10, "staleness while the child is silent")
        assert scrape(d, "neuron_monitor_up") == 0
        wait_for(lambda: scrape(d, "neuron_exporter_monitor_restarts_total") >= 1, 15, "the restart")
        assert re.search(rb"\(pid %d\) produced no output for [0-9.]+ s; stopping it" % hung, d.log())
        assert not Path(f"/proc/{hung}").exists()  # stopped and reaped before its successor started
        wait_for(
            lambda: scrape(d, "neuron_exporter_reports_total") >= 3 and d.get("/-/ready")[0] == 200,
            20,
            "fresh data from the new child",
        )
        assert scrape(d, "neuron_monitor_up") == 1
        assert d.stop() == 0


def test_garbage_lines_are_counted_and_reports_around_them_kept(tmp_path: Path) -> None:
    """Stray stdout text (a torn line, binary noise, a log line) between reports is counted as
    not_json and costs only itself: every report is ingested, and the data served equals a clean
    replay of the reports alone."""
    config = write_config(tmp_path)
    flags = ("--shape", "inf1.xlarge", "--count", "6", "--no-sleep", "--seed", "3")
    monitor = simulator_runs_monitor(tmp_path, [[*flags, "--garbage-every", "2"]])
    args = ("--config", str(config), "--neuron-monitor-path", str(monitor))
    with Daemon(tmp_path, *args, "--hang-periods", "1000", "--stale-periods", "30") as d:
        wait_until_counted(d, reports=6, reason="not_json", bad=3, timeout=30)
        text = d.metrics()
        assert value(text, "neuron_exporter_bad_lines_total", reason="schema") == 0
        assert value(text, "neuron_exporter_bad_lines_total", reason="too_long") == 0
        assert device_series(text) == clean_replay(tmp_path, simulated(config, *flags))
        assert value(text, "neuron_monitor_up") == 1 and d.get("/-/ready")[0] == 200
        assert d.stop() == 0


def wait_until_counted(d: Daemon, reports: int, reason: str, bad: int, timeout: float) -> None:
    """Until the daemon has ingested `reports` reports and dropped `bad` lines for `reason`."""

    def counted() -> bool:
        text = d.metrics()
        return (
            value(text, "neuron_exporter_reports_total") == reports
            and value(text, "neuron_exporter_bad_lines_total", reason=reason) == bad
        )

    wait_for(counted, timeout, f"{reports} reports and {bad} lines dropped as {reason}")


def test_oversized_lines_are_dropped_with_bounded_memory(tmp_path: Path) -> None:
    """Lines of 20 MiB against a 1 MiB bound are counted as too_long and never held whole: the
    reports after them are ingested, and the exporter's resident memory (and its high-water mark)
    grows by less than 3 line bounds although 60 MiB of oversized lines went through."""
    config = write_config(tmp_path)
    gate = tmp_path / "go"
    runs = [
        ("--shape", "inf1.xlarge", "--count", "2", "--no-sleep", "--seed", str(seed)) for seed in (1, 2, 3)
    ]
    oversized = ("--oversized-line-after", "1", "--oversized-bytes", str(20 * MIB))
    monitor = simulator_runs_monitor(tmp_path, [[*run, *oversized] for run in runs], gate=gate)
    args = ("--config", str(config), "--neuron-monitor-path", str(monitor), "--max-line-bytes", str(MIB))
    with Daemon(tmp_path, *args, "--hang-periods", "1000", "--stale-periods", "30") as d:
        for _ in range(3):  # warm the scrape path before taking the baseline
            d.metrics()
        baseline = scrape(d, "process_resident_memory_bytes")
        baseline_peak = peak_rss(d.proc.pid)
        gate.touch()

        wait_until_counted(d, reports=6, reason="too_long", bad=3, timeout=60)
        text = d.metrics()
        assert value(text, "process_resident_memory_bytes") < baseline + 3 * MIB
        assert peak_rss(d.proc.pid) < baseline_peak + 3 * MIB
        assert b"longer than the bound was dropped (20971520 bytes)" in d.log()
        good = [line for run in runs for line in simulated(config, *run)]
        assert device_series(text) == clean_replay(tmp_path, good)
        assert value(text, "neuron_monitor_up") == 1 and d.get("/-/ready")[0] == 200
        assert d.stop() == 0


def _deep_list() -> bytes:
    return b"[" * DEEP + b"]" * DEEP


INPUT_FAULTS: list[tuple[str, bytes, tuple[str, str]]] = [
    # (what, the line, how it is counted: bad line by reason, invalid group, monitor error, or ok)
    ("truncated JSON", FIXTURE.read_bytes()[:300], ("bad", "not_json")),
    ("binary bytes", b"\x00\xff\xfe\x1b[0m\x80\x81 binary noise \xc3\x28", ("bad", "not_json")),
    ("invalid UTF-8 in a string", b'{"instance_info": {"instance_id": "i-\xff\xfe"}}', ("bad", "not_json")),
    ("100k [", b"[" * 100_000, ("bad", "not_json")),
    ("100k objects deep", b'{"a":' * 100_000, ("bad", "not_json")),
    ("a list nested 1000 deep", _deep_list(), ("bad", "schema")),
    ("a JSON list", b"[1, 2, 3]", ("bad", "schema")),
    ("a JSON number", b"42", ("bad", "schema")),
    ("a JSON string", b'"neuron-monitor"', ("bad", "schema")),
    ("JSON null", b"null", ("bad", "schema")),
    ("1e999", b'{"system_data": {"memory_info": {"memory_total_bytes": 1e999}}}', ("bad", "not_json")),
    ("-1e999", b'{"system_data": {"memory_info": {"memory_used_bytes": -1e999}}}', ("bad", "not_json")),
    ("NaN", b'{"system_data": {"memory_info": {"memory_used_bytes": NaN}}}', ("bad", "not_json")),
    ("Infinity", b'{"system_data": {"memory_info": {"memory_used_bytes": Infinity}}}', ("bad", "not_json")),
    ("-Infinity", b'{"system_data": {"memory_info": {"swap_used_bytes": -Infinity}}}', ("bad", "not_json")),
    (
        "a 30-digit integer as a device index",
        b'{"system_data": {"neuron_hw_counters": {"neuron_devices": '
        b'[{"neuron_device_index": 123456789012345678901234567890, "mem_ecc_corrected": 1}]}}}',
        ("invalid", "neuron_hw_counters"),
    ),
    (
        "a negative execution count",
        orjson.dumps(
            {
                "neuron_runtime_data": [
                    _runtime_entry(
                        int(TAG), {"execution_stats": {"period": 9.0, "execution_summary": {"completed": -5}}}
                    )
                ]
            }
        ),
        ("invalid", "execution_stats"),
    ),
    (
        "a negative context switch count",
        b'{"system_data": {"vcpu_usage": {"period": 9.0, "context_switch_count": -1}}}',
        ("invalid", "vcpu_usage"),
    ),
    (
        "the same process twice (same tag and pid; workers sharing a tag have their own pids)",
        orjson.dumps(
            {
                "neuron_runtime_data": [
                    _runtime_entry(
                        pid,
                        {
                            "neuron_runtime_vcpu_usage": {
                                "period": 9.0,
                                "vcpu_usage": {"user": user, "system": 1},
                            }
                        },
                    )
                    for pid, user in ((int(TAG), 50), (int(TAG), 70))
                ]
            }
        ),
        ("invalid", "neuron_runtime_data"),
    ),
    (
        "an error member nested 1000 deep",
        b'{"neuron_k8s_info": {"error": ' + _deep_list() + b"}}",
        ("error", "neuron_k8s_info"),
    ),
    (
        "an error text of 1 MiB",
        b'{"system_data": {"memory_info": {"error": "' + b"e" * MIB + b'"}}}',
        ("error", "memory_info"),
    ),
    # A non-numeric ECC member is dropped before validation; the report is otherwise fine...
    (
        "an ECC member nested 1000 deep",
        b'{"system_data": {"neuron_hw_counters": {"neuron_devices": [{"neuron_device_index": 0, "junk": '
        + _deep_list()
        + b"}]}}}",
        ("ok", ""),
    ),
    # ...and the same again: this used to crash the daemon with RecursionError, when the member was
    # kept and Python < 3.12 compared the two copies.
    (
        "the same ECC member again",
        b'{"system_data": {"neuron_hw_counters": {"neuron_devices": [{"neuron_device_index": 0, "junk": '
        + _deep_list()
        + b"}]}}}",
        ("ok", ""),
    ),
]


def test_malformed_input_is_counted_by_reason_and_the_next_report_served(tmp_path: Path) -> None:
    """Whatever neuron-monitor's stdout carries (torn, binary, absurdly nested, not an object,
    out-of-range or non-finite numbers, negative counts, a runtime listed twice, a huge or deeply
    nested error), each line is counted under its reason, the process survives, log lines stay
    bounded, and the good report that follows is served exactly as a clean replay would serve it."""
    first, last = report(14, 0.0), report(5, 0.5, context_switches=100, ecc=2, memory_total=4 * 1024**3)
    lines = [first, *(line for _, line, _ in INPUT_FAULTS), last]
    assert all(b"\n" not in line.rstrip(b"\n") for line in lines)
    monitor = quiet_monitor(tmp_path, b"".join(line.rstrip(b"\n") + b"\n" for line in lines))
    config = write_config(tmp_path)
    expected: dict[tuple[str, str], int] = {}
    for _, _, outcome in INPUT_FAULTS:
        expected[outcome] = expected.get(outcome, 0) + 1
    reports = 2 + sum(n for (kind, _), n in expected.items() if kind != "bad")
    bad = sum(n for (kind, _), n in expected.items() if kind == "bad")
    args = ("--config", str(config), "--neuron-monitor-path", str(monitor))
    with Daemon(tmp_path, *args, "--hang-periods", "1000", "--stale-periods", "30") as d:

        def ingested() -> bool:
            text = d.metrics()
            dropped = sum(
                value(text, "neuron_exporter_bad_lines_total", reason=r) for r in ("not_json", "schema")
            )
            return value(text, "neuron_exporter_reports_total") == reports and dropped == bad

        wait_for(ingested, 30, f"{reports} reports and {bad} dropped lines")
        text = d.metrics()
        family = {
            "bad": ("neuron_exporter_bad_lines_total", "reason"),
            "invalid": ("neuron_exporter_invalid_groups_total", "group"),
            "error": ("neuron_exporter_monitor_errors_total", "group"),
        }
        for (kind, label), count in expected.items():
            if kind != "ok":
                name, key = family[kind]
                assert value(text, name, **{key: label}) == count, (kind, label)
        assert value(text, "neuron_exporter_bad_lines_total", reason="too_long") == 0
        assert device_series(text) == clean_replay(tmp_path, [first, last])
        assert value(text, "neuron_execution_status_total", runtime_tag=TAG, status="completed") == 14 + 5
        assert value(text, "neuron_monitor_up") == 1 and d.get("/-/ready")[0] == 200
        assert d.proc.poll() is None and b"Traceback" not in d.log()
        assert max(len(line) for line in d.log().splitlines()) < 4096  # a 1 MiB error is not echoed
        assert d.stop() == 0


def test_exported_counters_never_decrease(tmp_path: Path) -> None:
    """neuron-monitor's counts are per period, so a count smaller than the last one, a runtime
    restarted under the same tag with a new pid, or one that leaves and comes back must never turn
    an exported *_total backwards: each series is checked against its highest value so far, one
    scrape after every report, which the test feeds one at a time through a FIFO."""
    fifo = tmp_path / "reports.fifo"
    os.mkfifo(fifo)
    monitor = fake_monitor(
        tmp_path,
        "PARENT = os.getppid()\n"
        f"with open({str(fifo)!r}, 'rb', buffering=0) as feed:\n"
        "    while chunk := feed.read(65536):\n"
        "        sys.stdout.buffer.write(chunk)\n"
        "        sys.stdout.buffer.flush()\n" + QUIET_UNTIL_ORPHANED,
    )
    steps = [
        report(50, 0.1, generic=5, context_switches=2000, ecc=3),
        report(10, 0.2, generic=1, context_switches=100, ecc=1),  # every count smaller than before
        report(2, 0.3, pid=4242, context_switches=5),  # the runtime restarted: same tag, new pid
        report(0, 0.4, context_switches=7, runtimes=False),  # ...then left for a period
        report(1, 0.5, pid=5151, context_switches=1, ecc=1),  # ...and came back
    ]
    config = write_config(tmp_path)
    args = ("--config", str(config), "--neuron-monitor-path", str(monitor))
    with Daemon(tmp_path, *args, "--hang-periods", "1000", "--stale-periods", "30") as d:

        def writer() -> int | None:
            try:
                return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: the fake has not opened its end yet
                return None

        def reports_are(count: int) -> bool:
            return scrape(d, "neuron_exporter_reports_total") == count

        fd = wait_for(writer, 20, "the fake neuron-monitor to open the FIFO")
        highest: Series = {}
        try:
            os.set_blocking(fd, True)
            for number, line in enumerate(steps, 1):
                os.write(fd, line)
                wait_for(functools.partial(reports_are, number), 20, f"report {number}")
                text = d.metrics()
                for key, sample in all_series(text).items():
                    if key[0].endswith("_total"):  # device counters and the exporter's own alike
                        assert sample >= highest.get(key, sample), (number, key)
                        highest[key] = sample
                if number == 3:
                    assert value(text, "neuron_runtime_info", pid="4242", runtime_tag=TAG) == 1
                    assert sample_value(text, "neuron_runtime_info", pid=TAG, runtime_tag=TAG) is None
                if number == 4:
                    assert (
                        sample_value(
                            text, "neuron_execution_status_total", runtime_tag=TAG, status="completed"
                        )
                        is None
                    )
        finally:
            os.close(fd)
        completed = ("neuron_execution_status_total", (("runtime_tag", TAG), ("status", "completed")))
        assert highest[completed] == 50 + 10 + 2 + 0 + 1
        assert highest[("neuron_system_context_switches_total", ())] == 2000 + 100 + 5 + 7 + 1
        assert (
            highest[("neuron_execution_errors_total", (("error_type", "generic"), ("runtime_tag", TAG)))] == 6
        )
        assert d.stop() == 0


def test_sigterm_with_a_child_ignoring_sigterm(tmp_path: Path) -> None:
    """A neuron-monitor that ignores SIGTERM must not keep the exporter from stopping, nor outlive it:
    the exporter exits 0 within 5 s, having sent SIGKILL once the 3 s grace ran out, and the child
    (and its process group) is gone, reaped rather than left a zombie."""
    pidfile = tmp_path / "child.pid"
    monitor = looping_monitor(
        tmp_path,
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))",
    )
    config = write_config(tmp_path)
    with Daemon(tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor)) as d:
        wait_for(lambda: d.get("/-/ready")[0] == 200, 20, "readiness")
        child = int(pidfile.read_text())
        started = time.monotonic()
        assert d.stop(signal.SIGTERM, timeout=30) == 0
        elapsed = time.monotonic() - started
        assert 2.5 <= elapsed < 5, elapsed  # it waited out the grace, then killed
        assert b"sending SIGKILL" in d.log()
        assert not Path(f"/proc/{child}").exists()
        with pytest.raises(ProcessLookupError):
            os.killpg(child, 0)


def test_monitor_executable_vanishing_is_retried_until_it_returns(tmp_path: Path) -> None:
    """If the neuron-monitor binary disappears (a package upgrade) and the running one exits, the
    exporter keeps retrying with backoff, says why in the log, keeps serving /metrics, and recovers
    on its own once the file is back, without a restart of the exporter."""
    pidfile = tmp_path / "pids"
    monitor = looping_monitor(tmp_path, f"open({str(pidfile)!r}, 'a').write(f'{{os.getpid()}}\\n')")
    script, mode = monitor.read_bytes(), monitor.stat().st_mode
    config = write_config(tmp_path)
    with Daemon(tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor)) as d:
        wait_for(lambda: d.get("/-/ready")[0] == 200, 20, "readiness")
        [first] = [int(pid) for pid in pidfile.read_text().split()]
        monitor.unlink()
        os.kill(first, signal.SIGTERM)
        failure = b"cannot start neuron-monitor " + str(monitor).encode() + b": No such file or directory"
        wait_for(lambda: d.log().count(failure) >= 2, 20, "two failed starts in the log")
        assert d.proc.poll() is None
        assert scrape(d, "neuron_exporter_monitor_restarts_total") == 0  # failed starts are no restarts
        assert (scrape(d, "neuron_exporter_monitor_start_failures_total") or 0) >= 2
        # Put it back atomically, so no attempt can see a half-written script.
        staged = tmp_path / "staged"
        staged.write_bytes(script)
        staged.chmod(mode)
        staged.rename(monitor)
        wait_for(lambda: len(pidfile.read_text().split()) == 2, 20, "a new child")
        wait_for(
            lambda: scrape(d, "neuron_exporter_monitor_restarts_total") == 1 and d.get("/-/ready")[0] == 200,
            20,
            "recovery",
        )
        assert scrape(d, "neuron_monitor_up") == 1
        assert b"Traceback" not in d.log()
        assert d.stop() == 0


def test_paths_with_shell_metacharacters_are_passed_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """neuron-monitor is started from an argument list, never through a shell: a config path and an
    executable path full of shell syntax reach the child byte for byte, and nothing they spell out
    runs (no PWNED file appears, here or in the working directory)."""
    monkeypatch.chdir(tmp_path)  # where a shell would have run `touch PWNED`
    evil = tmp_path / "dir with spaces $(touch PWNED) ; `touch PWNED2` 'sq' \"dq\" & | <x>"
    evil.mkdir()
    config = evil / "mon $(touch PWNED3); `touch PWNED4`.json"
    config.write_text(write_config(tmp_path).read_text())
    argv_file = tmp_path / "argv.json"
    monitor = looping_monitor(
        evil,
        f"import json\nopen({str(argv_file)!r}, 'w').write(json.dumps(sys.argv))",
        name="neuron-monitor; touch PWNED5 && echo `touch PWNED6` '$(touch PWNED7)'",
    )
    with Daemon(tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor)) as d:
        wait_for(lambda: d.get("/-/ready")[0] == 200, 20, "readiness")
        assert orjson.loads(argv_file.read_bytes()) == [str(monitor), "-c", str(config)]
        assert scrape(d, "neuron_monitor_up") == 1
        assert d.stop() == 0
    assert not list(tmp_path.rglob("PWNED*"))
    assert not list(REPO.glob("PWNED*"))


class _CommandDaemon(Daemon):
    """A Daemon started by an explicit command (another user, another interpreter) with an exact env."""

    def __init__(self, tmp_path: Path, command: Sequence[str], *args: str, env: dict[str, str]) -> None:
        self._start(tmp_path, [*command, "--web.listen-address", "127.0.0.1:0", *args], env, cwd="/")


SYSTEM_PYTHON = Path("/usr/bin/python3.11")
NOBODY = 65534


@pytest.fixture
def root_owned_dir() -> Iterator[Path]:
    """A root-owned 0755 directory outside pytest's 0700 tmp tree, so another user can reach it."""
    path = Path(tempfile.mkdtemp(prefix="neuron-exporter-faults-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to uid 65534 needs root")
@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason=f"{SYSTEM_PYTHON} is absent")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is absent")
def test_runs_as_nobody_with_a_read_only_config(tmp_path: Path, root_owned_dir: Path) -> None:
    """The exporter needs no privilege of its own: as uid/gid 65534 with no groups, with a config it
    can only read (0444, owned by root, in a root-owned 0755 directory), it runs neuron-monitor,
    serves its data, and leaves the config untouched. The venv's python lives under /root (0700), so
    the system python 3.11 runs the exporter with the venv's packages on PYTHONPATH."""
    config = write_config(root_owned_dir)
    config.chmod(0o444)
    # The clone and its venv may sit where nobody cannot enter (a 0700 directory): everything the
    # exporter imports is laid out here instead.
    site = root_owned_dir / "site"
    copy_runtime_packages(site)
    monitor = root_owned_dir / "neuron-monitor"
    monitor.write_text(f'#!/bin/sh\nexec {SYSTEM_PYTHON} -m exporter.simulator --shape inf1.xlarge "$@"\n')
    monitor.chmod(0o755)
    before = config.read_bytes(), config.stat()
    command = [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        str(SYSTEM_PYTHON),
        "-m",
        "exporter.cli",
    ]
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(site),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    args = ("--config", str(config), "--neuron-monitor-path", str(monitor))
    with _CommandDaemon(tmp_path, command, *args, env=env) as d:
        wait_for(lambda: d.get("/-/ready")[0] == 200, 30, "readiness")
        text = d.metrics()
        assert value(text, "neuron_monitor_up") == 1
        assert value(text, "neuron_instance_info", **_instance_labels(text)) == 1
        for pid in (d.proc.pid, *children(d)):
            ids = status_ids(pid)
            assert ids["Uid"].split() == [str(NOBODY)] * 4 and ids["Gid"].split() == [str(NOBODY)] * 4
            assert ids["Groups"] == ""
        assert d.stop() == 0
    after = config.read_bytes(), config.stat()
    assert after[0] == before[0]
    for field in ("st_mode", "st_uid", "st_gid", "st_mtime_ns", "st_size"):
        assert getattr(after[1], field) == getattr(before[1], field), field


def copy_runtime_packages(dest: Path) -> None:
    """The exporter package and every installed distribution it needs at run time, copied to `dest`
    (world-readable), found through the installed metadata rather than listed by hand."""
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    shutil.copytree(REPO / "exporter", dest / "exporter", ignore=shutil.ignore_patterns("__pycache__"))
    seen: set[str] = set()
    todo = [Requirement(r) for r in metadata.requires("neuron-exporter") or [] if "extra ==" not in r]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or (requirement.marker is not None and not requirement.marker.evaluate()):
            continue
        seen.add(name)
        dist = metadata.distribution(name)
        for file in dist.files or []:
            source = Path(str(file.locate())).resolve()
            if source.is_file() and source.is_relative_to(purelib) and "__pycache__" not in source.parts:
                target = dest / source.relative_to(purelib)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        todo.extend(Requirement(r) for r in dist.requires or [] if "extra ==" not in r)
    for path in (dest, *dest.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _instance_labels(text: str) -> dict[str, str]:
    """The labels of the one neuron_instance_info series (present once a report was served)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "neuron_instance_info":
                return dict(sample.labels)
    raise AssertionError("no neuron_instance_info")
