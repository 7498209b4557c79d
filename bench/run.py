"""The performance benchmark: simulator reports at several scales through the exporter's real paths.

    .venv/bin/python bench/run.py                 # full run, prints the table
    .venv/bin/python bench/run.py --write bench/README.md   # and rewrites the results block there
    .venv/bin/python bench/run.py --smoke         # seconds; what CI runs (no numbers are asserted)
    .venv/bin/python bench/run.py --only load --write bench/README.md   # one section, merged in
    .venv/bin/python bench/run.py --only http --write bench/README.md   # likewise

Per scale it measures: report size; the floor, orjson.loads of the same line; ingest CPU per report
through Ingestor.on_line (decode, prune, validate, reduce, publish) and its ratio to the floor; the
/metrics scrape latency of the real daemon over real HTTP (median, p99; the render cache serves all
but the first), the render cost of a state not rendered before (the first scrape after a report), and
the page's size and series. For the
target scale it also measures resident memory after 1,000 and 10,000 reports (App in a fresh process,
with a scrape every 15 reports) and the daemon's steady-state CPU share running the simulator at one
report per second with one scrape every 15 s. The load section runs the daemon with the simulator at
10 reports/s under 50 concurrent scrapers for 30 s (bench/load.py checks every body). The HTTP
section times the cached and the first-after-report scrape through the exporter's HTTP layer
(bench/http_scrape.py). Benchmarks are not tests: nothing here asserts a time.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import anyio
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.http_scrape import fed_app, http_scrape_cost  # noqa: E402
from bench.load import OPENMETRICS_ACCEPT, LoadResult, run_load  # noqa: E402
from exporter.app import App  # noqa: E402
from exporter.cli import build_parser, settings_from_args  # noqa: E402
from exporter.exposition import Store  # noqa: E402
from exporter.health import Health  # noqa: E402
from exporter.ingest import Ingestor  # noqa: E402
from exporter.memtune import keep_large_blocks_in_mmap  # noqa: E402
from exporter.model.state import State  # noqa: E402
from exporter.simulator import Simulator  # noqa: E402
from tests.fakes import FRACTIONAL, write_config  # noqa: E402

MODELS = 2
"""Models loaded per runtime in the scale rows."""
FULL_SCALES = [
    *((shape, count, MODELS) for count in (1, 8, 32, 64, 128) for shape in ("inf2.48xlarge",)),
    *(("trn1.32xlarge", count, MODELS) for count in (1, 8, 32, 64, 128)),
    # The real trn1n.32xlarge capture's shape: 32 single-core runtimes, 20 models each with full
    # subgraph breakdowns (~540 KiB a line).
    ("trn1.32xlarge", 32, 20),
    *(("trn2.48xlarge", count, MODELS) for count in (1, 8, 32, 64, 128)),
]
SMOKE_SCALES = [("inf2.48xlarge", 1, MODELS), ("trn1.32xlarge", 4, 20), ("trn2.48xlarge", 8, MODELS)]
TARGET = ("trn2.48xlarge", 64)
LOAD_TARGET = ("trn2.48xlarge", 8)
"""The load section's node. With 64 runtimes this 2-core machine cannot hold it: the daemon needs most
of a core at 10 reports/s (ingest ~48 ms plus a text and an OpenMetrics render ~20 ms each per report)
and checking every distinct body takes the client ~150 ms per report and format, so the two share too
little CPU (one 30 s try: 89 % of the reports ingested, daemon at 78 % of a core, 21 scrapes/s). With
8 runtimes (~100 KiB, ~1,000 series per body) both fit, and the numbers describe the exporter."""
LOAD_PERIOD = 0.1
"""The load section's report period: 10 reports per second."""
LOAD_FULL = (50, 30.0)
LOAD_SMOKE = (5, 1.0)
"""Scrapers and seconds of the load section, in a full and in a smoke run."""
LOAD_LINE = "Load: "
"""How the load section's paragraph starts, so `--only load` can find and replace it."""
HTTP_LINE = "HTTP layer: "
"""How the HTTP section's paragraph starts, so `--only http` can find and replace it."""
HTTP_TARGET = ("trn2.48xlarge", 64)
HTTP_REQUESTS = (300, 5)
"""Rounds of the HTTP section in a full and in a smoke run."""
PORT_LINE = re.compile(rb"serving /metrics on port (\d+)")


@dataclass
class Row:
    """One scale's results."""

    shape: str
    runtimes: int
    models: int
    size: int
    floor_ms: float
    ingest_ms: float
    ingest_ratio: float
    scrape_median_ms: float
    scrape_p99_ms: float
    text_render_ms: float
    openmetrics_render_ms: float
    openmetrics_render_p99_ms: float
    scrape_bytes: int
    series: int

    def cells(self) -> list[str]:
        """The row as table cells."""
        return [
            self.shape,
            str(self.runtimes),
            str(self.models),
            f"{self.size / 1024:,.0f} KiB",
            f"{self.floor_ms:.2f}",
            f"{self.ingest_ms:.2f}",
            f"{self.ingest_ratio:.2f}",
            f"{self.ingest_ms * 1000 / self.runtimes:,.0f}",
            f"{self.scrape_median_ms:.1f}",
            f"{self.scrape_p99_ms:.1f}",
            f"{self.text_render_ms:.1f}",
            f"{self.openmetrics_render_ms:.1f}",
            f"{self.openmetrics_render_p99_ms:.1f}",
            f"{self.openmetrics_render_ms / self.text_render_ms:.2f}",
            f"{self.scrape_bytes / 1024:,.0f} KiB",
            f"{self.series:,}",
        ]


HEADER = [
    "shape",
    "runtimes",
    "models each",
    "report",
    "floor: orjson.loads ms",
    "ingest CPU ms",
    "ingest ÷ orjson.loads",
    "ingest µs per runtime",
    "scrape p50 ms",
    "scrape p99 ms",
    "new-report render text p50 ms",
    "new-report render OpenMetrics p50 ms",
    "new-report render OpenMetrics p99 ms",
    "OpenMetrics ÷ text",
    "/metrics size",
    "series",
]

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
"""The Accept header of a Prometheus 2 scrape: OpenMetrics first, which is what nearly every scrape gets."""


def lines_for(shape: str, runtimes: int, count: int, models: int = MODELS) -> list[bytes]:
    """`count` consecutive simulator reports (every group, period 1 s, `models` per runtime)."""
    sim = Simulator(
        shape, config=REPO / "examples" / "mon.json", runtimes=runtimes, models_per_runtime=models
    )
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


def ingest_cost(lines: list[bytes], passes: int) -> tuple[float, float, float]:
    """The floor and the ingest CPU seconds per report, and ingest as a multiple of the floor.

    Floor and ingest are timed one after the other in each pass and the multiple is the median of
    the passes' own multiples: this machine's speed drifts by tens of percent between seconds, and
    a ratio of two numbers taken in the same pass cancels most of that drift.
    """
    ingestor = Ingestor(Store(State()), Health(stale_after=None))
    ingestor.on_line(lines[0])  # warm up: first-time imports and validator set-up
    floors, ingests = [], []
    for _ in range(passes):
        floors.append(cpu_per_call(orjson.loads, lines, 1))
        ingests.append(cpu_per_call(ingestor.on_line, lines, 1))
    ratio = statistics.median(i / f for i, f in zip(ingests, floors, strict=True))
    return statistics.median(floors), statistics.median(ingests), ratio


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

    def ready(self) -> bool:
        """Whether /-/ready answers 200 (fresh data)."""
        self.conn.request("GET", "/-/ready")
        response = self.conn.getresponse()
        response.read()
        return response.status == 200

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


@contextmanager
def capture_file(lines: list[bytes]) -> Iterator[IO[bytes]]:
    """The lines as a JSON-lines capture on disk (what --replay reads), removed afterwards."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as capture:
        capture.write(b"".join(lines))
        capture.flush()
        yield capture


def median_p99(timings: list[float]) -> tuple[float, float]:
    """Median and nearest-rank 99th percentile."""
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def scrape_cost(lines: list[bytes], scrapes: int) -> tuple[float, float, int, int]:
    """Median and p99 latency of GET /metrics on the daemon replaying `lines`, its size and series."""
    with capture_file(lines) as capture:
        daemon = Daemon("--replay", capture.name)
        try:
            daemon.scrape()
            timings, body = [], b""
            for _ in range(scrapes):
                seconds, body = daemon.scrape()
                timings.append(seconds)
        finally:
            daemon.stop()
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return *median_p99(timings), len(body), series


def render_cost(lines: list[bytes], renders: int) -> tuple[float, float, float]:
    """Rendering /metrics for a state not rendered before: text median, OpenMetrics median and p99.

    A replaying daemon serves every scrape after the first from the render cache, so the HTTP columns
    measure the cached path; this is the cost of the first scrape after each report, measured in
    process on the same App with its cache emptied before each render. OpenMetrics is asked for with
    Prometheus's own Accept header; the two formats alternate, so drift touches both alike.
    """
    with capture_file(lines) as capture:
        app = App(settings_from_args(build_parser().parse_args(["--replay", capture.name])))
        anyio.run(app.replay)
    timings: dict[str | None, list[float]] = {None: [], PROMETHEUS_ACCEPT: []}
    for _ in range(renders):
        for accept, taken in timings.items():
            app.exposition.rendered.clear()
            start = time.perf_counter()
            app.render(accept)
            taken.append(time.perf_counter() - start)
    text, _ = median_p99(timings[None])
    return (text, *median_p99(timings[PROMETHEUS_ACCEPT]))


MEMORY_PROBE = """
import sys
sys.path.insert(0, {repo!r})
from exporter.app import App
from exporter.cli import build_parser, settings_from_args
from exporter.memtune import keep_large_blocks_in_mmap
keep_large_blocks_in_mmap()  # as exporter.cli.main does at start-up
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
    with capture_file(lines) as capture:
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


def load(shape: str, runtimes: int, scrapers: int, seconds: float) -> str:
    """The load section's paragraph: the daemon at 10 reports/s while `scrapers` hammer /metrics.

    Half the scrapers ask for the text format and half for OpenMetrics (each has its own cached device
    part), all with gzip, as Prometheus servers do. Readiness and freshness are held to the exporter's
    default of 3 periods.
    """
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), f"{LOAD_PERIOD}s")
        daemon = Daemon(
            "--config", str(config), FRACTIONAL, "--simulate", shape, "--simulate-runtimes", str(runtimes)
        )
        try:
            deadline = time.monotonic() + 60
            while not daemon.ready():
                if time.monotonic() > deadline:
                    raise RuntimeError("no report from the simulator")
                time.sleep(0.1)
            cpu0, wall0 = daemon.cpu_seconds(), time.monotonic()
            result = run_load(
                f"http://127.0.0.1:{daemon.port}",
                scrapers,
                seconds,
                accepts=(None, OPENMETRICS_ACCEPT),
                stale_after=3 * LOAD_PERIOD,
            )
            cpu = (daemon.cpu_seconds() - cpu0) / (time.monotonic() - wall0)
        finally:
            daemon.stop()
    return load_paragraph(shape, runtimes, scrapers, seconds, result, cpu)


def load_paragraph(
    shape: str, runtimes: int, scrapers: int, seconds: float, result: LoadResult, cpu: float
) -> str:
    """The load results in one sentence, starting with LOAD_LINE."""
    ingested, window = result.ingested()
    expected = window / LOAD_PERIOD
    failures = ", ".join(f"{count} {reason}" for reason, count in sorted(result.failures.items()))
    return (
        f"{LOAD_LINE}{shape} with {runtimes} runtimes at {1 / LOAD_PERIOD:.0f} reports/s, {scrapers} "
        f"scrapers on kept-alive connections for {seconds:.0f} s (half text, half OpenMetrics, gzip): "
        f"{result.scrapes:,} scrapes ({result.scrapes_per_second:.1f}/s, {result.in_flight:.1f} in "
        f"flight on average), latency p50 {result.percentile(50) * 1e3:.1f} ms, p99 "
        f"{result.percentile(99) * 1e3:.1f} ms; failed scrapes and readiness probes: "
        f"{failures or 'none'} (of {result.scrapes:,} scrapes and {result.ready_probes:,} probes); "
        f"{ingested:.0f} reports ingested in {window:.1f} s between the first and last scrape, "
        f"{expected:.0f} expected ({ingested / expected * 100 if expected else 0:.0f} %); freshness lag "
        f"at most {result.max_lag * 1e3:.0f} ms; daemon CPU {cpu * 100:.0f} % of one core."
    )


def http_layer(shape: str, runtimes: int, requests: int) -> str:
    """The HTTP section's paragraph: cached, fresh and tiny requests through HttpServer."""
    lines = lines_for(shape, runtimes, 3)
    with capture_file(lines) as capture:
        app = fed_app(App(settings_from_args(build_parser().parse_args(["--replay", capture.name]))))
        timings = http_scrape_cost(app, requests)
    parts = []
    for kind, taken in timings.items():
        median, p99 = median_p99(taken)
        parts.append(f"{kind} p50 {median * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms")
    return (
        f"{HTTP_LINE}{shape} with {runtimes} runtimes, {requests} rounds on one kept-alive connection "
        f"with Prometheus's headers (OpenMetrics, gzip): {'; '.join(parts)}."
    )


def merge_paragraph(block: str, prefix: str, paragraph: str) -> str:
    """A results block with its paragraph starting with `prefix` replaced by (or extended with) this one."""
    kept = [part for part in block.split("\n\n") if not part.startswith(prefix)]
    return "\n\n".join([*kept, paragraph])


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
    parser.add_argument(
        "--only",
        choices=("load", "http"),
        help="run one section; with --write, replace just its part of the results block",
    )
    args = parser.parse_args()
    keep_large_blocks_in_mmap()  # measure ingest with malloc tuned as the daemon has it
    smoke = args.smoke
    shape, runtimes = SMOKE_SCALES[-1][:2] if smoke else TARGET
    scrapers, seconds = LOAD_SMOKE if smoke else LOAD_FULL
    http_requests = HTTP_REQUESTS[1] if smoke else HTTP_REQUESTS[0]
    if args.only is not None:
        prefix, paragraph = (
            (LOAD_LINE, load(*LOAD_TARGET, scrapers, seconds))
            if args.only == "load"
            else (HTTP_LINE, http_layer(*HTTP_TARGET, http_requests))
        )
        print(paragraph)
        if args.write:
            note = f" Measured on its own (`--only {args.only}`), {time.strftime('%Y-%m-%d')}."
            write_results(args.write, lambda block: merge_paragraph(block, prefix, paragraph + note))
        return 0

    scales = SMOKE_SCALES if smoke else FULL_SCALES
    reports, passes, scrapes = (4, 1, 5) if smoke else (20, 7, 200)

    rows: list[Row] = []
    for scale_shape, count, models in scales:
        lines = lines_for(scale_shape, count, reports, models)
        floor, ingest, ratio = ingest_cost(lines, passes)
        median, p99, size, series = scrape_cost(lines, scrapes)
        text_render, om_render, om_p99 = render_cost(lines, scrapes)
        row = Row(
            scale_shape,
            count,
            models,
            len(lines[-1]),
            floor * 1e3,
            ingest * 1e3,
            ratio,
            median * 1e3,
            p99 * 1e3,
            text_render * 1e3,
            om_render * 1e3,
            om_p99 * 1e3,
            size,
            series,
        )
        rows.append(row)
        print(" | ".join(row.cells()), flush=True)

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
        "",
        load(*LOAD_TARGET, scrapers, seconds),
        "",
        http_layer(*(SMOKE_SCALES[-1][:2] if smoke else HTTP_TARGET), http_requests),
    ]
    text = "\n".join(summary)
    print(text)
    if args.write:
        write_results(args.write, lambda block: text)
    return 0


def write_results(path: Path, update: Callable[[str], str]) -> None:
    """Replace the block between the results markers of a Markdown file with `update(old block)`."""
    doc = path.read_text()
    begin, end = "<!-- BEGIN RESULTS -->\n", "\n<!-- END RESULTS -->"
    head, rest = doc.split(begin, 1)
    block, tail = rest.split(end, 1)
    path.write_text(head + begin + update(block) + end + tail)


if __name__ == "__main__":
    sys.exit(main())
