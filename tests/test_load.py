"""Under load: 50 concurrent scrapers while reports arrive 10 times a second, against the real daemon.

The short version of the benchmark's `load` section (bench/run.py; 30 s there). Nothing is timed: the
assertions are about correctness under concurrency (no failed, torn or inconsistent body, counters
never going back in any scraper's view) and about ingest keeping pace with the reports while it is
being scraped. The simulator plays trn1.32xlarge with 4 runtimes: a real node's report (~50 KiB,
~500 series) that a small CI machine ingests at 10/s with CPU to spare for the scrapers' checks.
The load driver's own checks are tested first, on bodies known to be bad, so a pass means something.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.load import EXPECTED, OPENMETRICS_ACCEPT, ScrapeFailed, check_body, family_blocks, run_load
from tests.daemon import Daemon, wait_for
from tests.fakes import FRACTIONAL, write_config

SHAPE, RUNTIMES = "trn1.32xlarge", 4
PERIOD = 0.1
SCRAPERS, SECONDS = 50, 3.0
STALE_PERIODS = 5
"""Readiness and the per-scrape freshness check allow 5 periods (0.5 s): a few reports' worth of
scheduling noise on a shared machine, far less than a stall would take."""


def test_fifty_scrapers_while_reports_arrive_ten_times_a_second(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"{PERIOD}s")
    with Daemon(
        tmp_path,
        "--config",
        str(config),
        FRACTIONAL,
        "--simulate",
        SHAPE,
        "--simulate-runtimes",
        str(RUNTIMES),
        "--stale-periods",
        str(STALE_PERIODS),
    ) as daemon:
        wait_for(lambda: daemon.get("/-/ready")[0] == 200, 30, "the first report")
        result = run_load(
            f"http://127.0.0.1:{daemon.port}",
            SCRAPERS,
            SECONDS,
            accepts=(None, OPENMETRICS_ACCEPT),  # both cached formats, each with its own live part
            expected=("neuron_execution_status_total", "neuron_neuroncore_utilization_ratio"),
            stale_after=STALE_PERIODS * PERIOD,
            min_scrapes=2,  # every scraper compares at least two bodies, however busy the machine
        )
    assert result.failed == 0, result.summary()
    assert result.fewest >= 2, result.summary()
    assert result.ready_probes > 0, result.summary()
    ingested, window = result.ingested()
    assert window >= SECONDS / 2, result.summary()  # long enough to judge ingest by
    assert ingested >= 0.7 * window / PERIOD, f"ingest fell behind: {result.summary()}"


GOOD = (
    "# HELP neuron_exporter_reports_total neuron-monitor reports ingested.\n"
    "# TYPE neuron_exporter_reports_total counter\n"
    "neuron_exporter_reports_total {reports}\n"
    "# HELP neuron_exporter_last_report_timestamp_seconds Unix time of the last report.\n"
    "# TYPE neuron_exporter_last_report_timestamp_seconds gauge\n"
    "neuron_exporter_last_report_timestamp_seconds {now}\n"
    "# HELP neuron_monitor_up 1 if neuron-monitor is up.\n"
    "# TYPE neuron_monitor_up gauge\n"
    "neuron_monitor_up 1.0\n"
)
TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def good(reports: float = 3.0) -> str:
    return GOOD.format(reports=reports, now=time.time())


def verdict(body: str | bytes, content_type: str = TEXT, length: int | None = None, status: int = 200) -> str:
    """The reason check_body fails a response for, or "ok"."""
    raw = body.encode() if isinstance(body, str) else body
    headers = {"content-length": str(len(raw) if length is None else length), "content-type": content_type}
    try:
        check_body(status, headers, raw, frozenset(EXPECTED))
    except ScrapeFailed as failure:
        return failure.reason
    return "ok"


def test_the_checks_pass_a_whole_body_and_catch_torn_or_inconsistent_ones() -> None:
    body = good()
    assert "".join(family_blocks(body)) == body
    assert verdict(body) == "ok"
    assert verdict(body[:-1]) == "no final newline"  # torn inside a line
    assert verdict(body[: body.index("# HELP neuron_monitor_up")]) == "missing series"  # torn at a line end
    assert verdict(body, length=len(body) + 5) == "content-length"
    assert verdict(body, status=500) == "status 500"
    assert verdict(body + 'neuron_monitor_up{x="1"} 1\nneuron_monitor_up{x="1"} 1\n') == "duplicate series"
    assert verdict(body + body.split("neuron_exporter_reports_total 3.0\n")[1]) == "family repeated"
    assert verdict(body.replace("neuron_monitor_up 1.0", "neuron_monitor_up one")) == "unparsable"
    openmetrics = body.replace("_total counter", " counter").replace("reports_total neuron", "reports neuron")
    assert verdict(openmetrics + "# EOF\n", OPENMETRICS) == "ok"
    assert verdict(openmetrics, OPENMETRICS) == "openmetrics # EOF"
    assert verdict(openmetrics + "# EOF\n# EOF\n", OPENMETRICS) == "openmetrics # EOF"


class Regressing(BaseHTTPRequestHandler):
    """Serves a reports counter that drops on the second scrape, gzipped, on kept-alive connections."""

    protocol_version = "HTTP/1.1"
    served = 0

    def do_GET(self) -> None:
        type(self).served += 1
        body = gzip.compress(good(reports=10.0 - type(self).served).encode())
        self.send_response(200)
        self.send_header("Content-Type", TEXT)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the driver's result, not the server's log."""


@pytest.fixture
def regressing_server() -> Iterator[str]:
    Regressing.served = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Regressing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_a_counter_going_backwards_fails_the_scrape(regressing_server: str) -> None:
    result = run_load(regressing_server, 1, 0, min_scrapes=2, ready_interval=None)
    assert result.scrapes == 2
    assert result.failures == {"counter went backwards": 1}, result.summary()
    assert "neuron_exporter_reports_total{} 9.0 -> 8.0" in result.examples[0]
