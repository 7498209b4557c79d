"""The performance benchmark: simulator reports at several scales through the exporter's real paths.

    .venv/bin/python bench/run.py                 # full run, prints the table
    .venv/bin/python bench/run.py --write bench/README.md   # and rewrites the results block there
    .venv/bin/python bench/run.py --smoke         # seconds; what CI runs (no numbers are asserted)

Per scale it measures: report size; the floor, orjson.loads of the same line; ingest CPU per report
through Ingestor.on_line (decode, prune, validate, reduce, publish) and its ratio to the floor; the
/metrics scrape latency of the real daemon over real HTTP (median, p99), its size and series. For the
target scale it also measures resident memory after 1,000 and 10,000 reports (App in a fresh process,
with a scrape every 15 reports) and the daemon's steady-state CPU share running the simulator at one
report per second with one scrape every 15 s. Benchmarks are not tests: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from exporter.exposition import Store  # noqa: E402
from exporter.health import Health  # noqa: E402
from exporter.ingest import Ingestor  # noqa: E402
from exporter.simulator import Simulator  # noqa: E402
from exporter.state import State  # noqa: E402

FULL_SCALES = [
    ("inf2.48xlarge", [1, 8, 32, 64, 128]),
    ("trn1.32xlarge", [1, 8, 32, 64, 128]),
    ("trn2.48xlarge", [1, 8, 32, 64, 128]),
]
SMOKE_SCALES = [("inf2.48xlarge", [1]), ("trn2.48xlarge", [8])]
TARGET = ("trn2.48xlarge", 64)
PORT_LINE = re.compile(rb"serving /metrics on port (\d+)")


@dataclass
class Row:
    """One scale's results."""

    shape: str
    runtimes: int
    size: int
    floor_ms: float
    ingest_ms: float
    scrape_median_ms: float
    scrape_p99_ms: float
    scrape_bytes: int
    series: int

    def cells(self) -> list[str]:
        """The row as table cells."""
        return [
            self.shape,
            str(self.runtimes),
            f"{self.size / 1024:,.0f} KiB",
            f"{self.floor_ms:.2f}",
            f"{self.ingest_ms:.2f}",
            f"{self.ingest_ms / self.floor_ms:.2f}",
            f"{self.ingest_ms * 1000 / self.runtimes:,.0f}",
            f"{self.scrape_median_ms:.1f}",
            f"{self.scrape_p99_ms:.1f}",
            f"{self.scrape_bytes / 1024:,.0f} KiB",
            f"{self.series:,}",
        ]


HEADER = [
    "shape",
    "runtimes",
    "report",
    "floor: orjson.loads ms",
    "ingest CPU ms",
    "ingest / floor",
    "ingest µs per runtime",
    "scrape p50 ms",
    "scrape p99 ms",
    "/metrics size",
    "series",
]


def lines_for(shape: str, runtimes: int, count: int) -> list[bytes]:
    """`count` consecutive simulator reports (every group, period 1 s, 2 models per runtime)."""
    sim = Simulator(shape, config=REPO / "examples" / "mon.json", runtimes=runtimes, models_per_runtime=2)
    return [sim.line(index) for index in range(count)]


def cpu_per_call(func: object, items: list[bytes], passes: int) -> float:
    """Median over passes of the process CPU seconds per item."""
    results = []
    for _ in range(passes):
        start = time.process_time()
        for item in items:
            func(item)  # type: ignore[operator]
        results.append((time.process_time() - start) / len(items))
    return statistics.median(results)


def ingest_cost(lines: list[bytes], passes: int) -> float:
    """CPU seconds per report through the real ingest path."""
    ingestor = Ingestor(Store(State()), Health(stale_after=None))
    ingestor.on_line(lines[0])  # warm up: first-time imports and validator set-up
    return cpu_per_call(ingestor.on_line, lines, passes)


class Daemon:
    """The real neuron-exporter, started for one measurement."""

    def __init__(self, *args: str) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exporter.cli", "--web.listen-address", "127.0.0.1:0", *args],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while True:
            self.log.seek(0)
            match = PORT_LINE.search(self.log.read())
            if match:
                self.port = int(match.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the daemon did not start")
            time.sleep(0.05)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def scrape(self) -> tuple[float, bytes]:
        """One GET /metrics on a kept-alive connection: seconds and body."""
        start = time.perf_counter()
        self.conn.request("GET", "/metrics")
        body = self.conn.getresponse().read()
        return time.perf_counter() - start, body

    def cpu_seconds(self) -> float:
        """The daemon's own user+system CPU (children excluded)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def scrape_cost(lines: list[bytes], scrapes: int) -> tuple[float, float, int, int]:
    """Median and p99 latency of GET /metrics on the daemon replaying `lines`, its size and series."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as capture:
        capture.write(b"".join(lines))
        capture.flush()
        daemon = Daemon("--replay", capture.name)
        try:
            daemon.scrape()
            timings, body = [], b""
            for _ in range(scrapes):
                seconds, body = daemon.scrape()
                timings.append(seconds)
        finally:
            daemon.stop()
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return statistics.median(timings), p99, len(body), series


MEMORY_PROBE = """
import sys
sys.path.insert(0, {repo!r})
from exporter.app import App
from exporter.cli import build_parser, settings_from_args
app = App(settings_from_args(build_parser().parse_args(["--replay", {capture!r}])))
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
marks, n = {marks!r}, 0
while n < max(marks):
    with open({capture!r}, "rb") as capture:  # one line in memory at a time, as from the pipe
        for line in capture:
            n += 1
            app.ingestor.on_line(line)
            if n % 15 == 0:
                app.render()
            if n in marks:
                print(n, rss(), flush=True)
            if n == max(marks):
                break
"""


def memory(lines: list[bytes], marks: list[int]) -> dict[int, int]:
    """Resident bytes of a fresh exporter process after each mark's number of reports."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as capture:
        capture.write(b"".join(lines))
        capture.flush()
        probe = MEMORY_PROBE.format(repo=str(REPO), capture=capture.name, marks=marks)
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    return {int(n): int(rss) for n, rss in (line.split() for line in result.stdout.decode().splitlines())}


def steady_state(shape: str, runtimes: int, seconds: float) -> float:
    """The daemon's CPU share of one core, simulator at 1 report/s, one scrape every 15 s."""
    daemon = Daemon(
        "--config",
        str(REPO / "examples" / "mon.json"),
        "--simulate",
        shape,
        "--simulate-runtimes",
        str(runtimes),
    )
    try:
        deadline = time.monotonic() + 60
        while b"neuron_exporter_reports_total 0.0" in daemon.scrape()[1]:
            if time.monotonic() > deadline:
                raise RuntimeError("no report from the simulator")
            time.sleep(0.2)
        cpu0, wall0 = daemon.cpu_seconds(), time.monotonic()
        next_scrape = wall0 + 15
        while time.monotonic() - wall0 < seconds:
            if time.monotonic() >= next_scrape:
                daemon.scrape()
                next_scrape += 15
            time.sleep(0.1)
        return (daemon.cpu_seconds() - cpu0) / (time.monotonic() - wall0)
    finally:
        daemon.stop()


def machine() -> str:
    """One line describing where the numbers were taken."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"orjson {orjson.__version__}, {time.strftime('%Y-%m-%d')}"
    )


def table(rows: list[list[str]], header: list[str]) -> str:
    """A Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def main() -> int:
    """Run the benchmark and print (and optionally write) the results."""
    parser = argparse.ArgumentParser(prog="bench/run.py")
    parser.add_argument("--smoke", action="store_true", help="tiny scales and counts, for CI")
    parser.add_argument("--write", type=Path, help="replace the results block in this Markdown file")
    args = parser.parse_args()
    smoke = args.smoke
    scales = SMOKE_SCALES if smoke else FULL_SCALES
    reports, passes, scrapes = (4, 1, 5) if smoke else (20, 3, 200)

    rows: list[Row] = []
    for shape, counts in scales:
        for runtimes in counts:
            lines = lines_for(shape, runtimes, reports)
            floor = cpu_per_call(orjson.loads, lines, passes)
            ingest = ingest_cost(lines, passes)
            median, p99, size, series = scrape_cost(lines, scrapes)
            row = Row(
                shape,
                runtimes,
                len(lines[-1]),
                floor * 1e3,
                ingest * 1e3,
                median * 1e3,
                p99 * 1e3,
                size,
                series,
            )
            rows.append(row)
            print(" | ".join(row.cells()), flush=True)

    shape, runtimes = (SMOKE_SCALES[-1][0], SMOKE_SCALES[-1][1][0]) if smoke else TARGET
    marks = [10, 20] if smoke else [1000, 10000]
    rss = memory(lines_for(shape, runtimes, 5 if smoke else 20), marks)
    cpu = steady_state(shape, runtimes, 3 if smoke else 120)
    summary = [
        f"Machine: {machine()}.",
        "",
        table([row.cells() for row in rows], HEADER),
        "",
        f"{shape} with {runtimes} runtimes: resident memory "
        + ", ".join(f"{rss[m] / 2**20:.1f} MiB after {m:,} reports" for m in marks)
        + f"; steady-state CPU {cpu * 100:.2f} % of one core at 1 report/s with a scrape every 15 s"
        + (" (smoke run: short)" if smoke else "")
        + ".",
    ]
    text = "\n".join(summary)
    print(text)
    if args.write:
        doc = args.write.read_text()
        begin, end = "<!-- BEGIN RESULTS -->\n", "<!-- END RESULTS -->"
        head, rest = doc.split(begin, 1)
        args.write.write_text(head + begin + text + "\n" + end + rest.split(end, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
