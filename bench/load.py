"""A closed-loop load driver for /metrics: N scrapers on kept-alive HTTP connections, every body checked.

It starts nothing: the caller owns the exporter (the end-to-end load test and the benchmark's `load`
section start it differently) and passes its base URL. Each scraper is a thread with its own
http.client connection that requests /metrics again as soon as its last body has been checked, as a
Prometheus server with a very short interval would. A scrape fails unless the body is complete and
self-consistent: status 200, Content-Length equal to the bytes received, parsable by prometheus_client,
newline-terminated (OpenMetrics: exactly one `# EOF`, at the end), no series twice, the expected series
present, and no `_total` counter below that scraper's previous scrape. Alongside, one prober polls
/-/ready, and every scrape's `neuron_exporter_reports_total` and last-report timestamp are recorded, so
the caller can judge whether ingest kept up while it was being scraped.

Parsing is the client's main cost: prometheus_client's parser takes 20-150 ms per body, many times
what the exporter spends serving one. So it runs in checker processes (one per format) at low CPU
priority, and each distinct family block is parsed once (see _PARSED). In the scraper threads, the GIL
queue would add hundreds of milliseconds to every measured latency; at normal priority the client
would take the CPU the exporter and its neuron-monitor need, and "ingest fell behind" would measure
the client. The threads only do HTTP, so latencies are close to what the exporter costs, though on a
shared machine still an upper bound. The scrape rate is the lower of what the exporter serves and
what the checkers verify; `LoadResult.in_flight` shows how many requests the exporter had at once.
"""

from __future__ import annotations

import gzip
import http.client
import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

OPENMETRICS_ACCEPT = "application/openmetrics-text; version=1.0.0"
REPORTS = "neuron_exporter_reports_total"
LAST_REPORT = "neuron_exporter_last_report_timestamp_seconds"
MONITOR_UP = "neuron_monitor_up"
EXPECTED = (REPORTS, LAST_REPORT, MONITOR_UP)
"""Series every scrape of a serving exporter has, whatever the collectors."""
EXAMPLES_KEPT = 20
"""Detailed failure messages kept (the counts by reason are complete)."""
CHECKER_NICENESS = 10
"""Checkers yield the CPU to the exporter and neuron-monitor (a tenth of their weight), yet still make
progress on a machine busy with other work; at 19 they all but stopped under two CPU hogs."""

Series = tuple[str, frozenset[tuple[str, str]]]


@dataclass
class LoadResult:
    """What the scrapers saw: counts, failures by reason, latencies, and ingest progress over time."""

    seconds: float = 0.0
    scrapes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    """Failed scrapes and readiness probes by reason (`status 500`, `counter went backwards`, ...)."""
    examples: list[str] = field(default_factory=list)
    """The first few failures in detail."""
    latencies: list[float] = field(default_factory=list)
    """Seconds from sending a request to having its whole body, one per response read."""
    reports: list[tuple[float, float]] = field(default_factory=list)
    """(seconds from the start to the request, neuron_exporter_reports_total) per good scrape, in order."""
    max_lag: float = 0.0
    """Largest age of the last report when a request was sent, over the good scrapes.

    A lower bound on the age of the data served (it was rendered after the request was sent); the
    scrape latency bounds it from above."""
    ready_probes: int = 0
    fewest: int = 0
    """The fewest scrapes any one scraper completed (each compares its bodies pairwise)."""

    @property
    def failed(self) -> int:
        """How many scrapes and probes failed."""
        return sum(self.failures.values())

    @property
    def in_flight(self) -> float:
        """Requests the exporter had open on average (time spent waiting for it / run time)."""
        return sum(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def scrapes_per_second(self) -> float:
        """Completed scrapes (failed ones included) per second of the run."""
        return self.scrapes / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100, nearest rank) of scrape latency in seconds; 0 without scrapes."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]

    def ingested(self) -> tuple[float, float]:
        """(reports ingested, seconds) between the first and the last good scrape.

        Ingest kept up when the first is about the second times the report rate.
        """
        if len(self.reports) < 2:
            return 0.0, 0.0
        (t0, first), (t1, last) = self.reports[0], self.reports[-1]
        return last - first, t1 - t0

    def fail(self, reason: str, detail: str = "") -> None:
        """Count one failure; keep its detail while there is room."""
        self.failures[reason] += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(f"{reason}: {detail}" if detail else reason)

    def merge(self, other: LoadResult) -> None:
        """Fold one scraper's (or the prober's) observations into this result."""
        self.scrapes += other.scrapes
        self.failures.update(other.failures)
        self.examples.extend(other.examples[: max(0, EXAMPLES_KEPT - len(self.examples))])
        self.latencies.extend(other.latencies)
        self.reports.extend(other.reports)
        self.reports.sort()
        self.max_lag = max(self.max_lag, other.max_lag)
        self.ready_probes += other.ready_probes

    def summary(self) -> str:
        """One line for logs and assertion messages."""
        ingested, window = self.ingested()
        return (
            f"{self.scrapes} scrapes in {self.seconds:.1f} s ({self.scrapes_per_second:.1f}/s, "
            f"{self.in_flight:.1f} in flight), "
            f"p50 {self.percentile(50) * 1e3:.1f} ms, p99 {self.percentile(99) * 1e3:.1f} ms, "
            f"{self.failed} failed {dict(self.failures)}, {ingested:.0f} reports in {window:.1f} s, "
            f"max lag {self.max_lag:.2f} s, {self.ready_probes} readiness probes, "
            f"fewest scrapes by one scraper {self.fewest}; "
            f"examples: {self.examples[:3]}"
        )


@dataclass(frozen=True)
class Target:
    """Where and how to scrape, and what a good body must contain."""

    host: str
    port: int
    accept: str | None
    gzip: bool
    expected: frozenset[str]
    stale_after: float | None
    timeout: float

    def connect(self) -> http.client.HTTPConnection:
        """A new connection; http.client reopens it by itself after a `Connection: close`."""
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def headers(self) -> dict[str, str]:
        """What a Prometheus server sends: the format it wants and, usually, gzip."""
        headers = {"Accept-Encoding": "gzip" if self.gzip else "identity"}
        if self.accept is not None:
            headers["Accept"] = self.accept
        return headers


@dataclass
class _Window:
    """The run's time window, shared by its threads; they wait for `go` before reading it."""

    go: threading.Event
    done: threading.Event
    """Set when every scraper has finished; the readiness prober runs until then."""
    min_scrapes: int
    start: float = 0.0
    deadline: float = 0.0
    """Scrapers stop at the first scrape after this, once they have `min_scrapes`..."""
    overtime: float = 0.0
    """...or at this, whatever they have."""

    def running(self, scrapes: int) -> bool:
        """Whether a scraper that has completed `scrapes` goes on."""
        now = time.monotonic()
        return now < self.deadline or (scrapes < self.min_scrapes and now < self.overtime)


def run_load(
    base_url: str,
    scrapers: int,
    seconds: float,
    *,
    accepts: Sequence[str | None] = (None,),
    use_gzip: bool = True,
    expected: Iterable[str] = (),
    stale_after: float | None = None,
    ready_interval: float | None = 0.1,
    timeout: float = 30.0,
    min_scrapes: int = 1,
    overtime: float = 60.0,
) -> LoadResult:
    """Hammer `base_url`/metrics with `scrapers` concurrent keep-alive clients for `seconds`.

    Scraper i asks for format `accepts[i % len(accepts)]` (None: the text format). `expected` names
    series every body must have, on top of the exporter's own. With `stale_after`, a scrape fails if
    neuron_monitor_up is not 1 or the last report was older than that when the request was sent.
    With `ready_interval`, /-/ready is probed that often and anything but 200 is a failure.
    Each format has one checker process: one memo then serves all its scrapers, so each report's
    families are parsed once per format, and formats are checked in parallel. A scraper that has
    fewer than `min_scrapes` at the end goes on for up to `overtime` more seconds to reach them, so
    that on a slow or busy machine every scraper still compares bodies (see LoadResult.fewest).

    Multiprocessing starts the checkers with `spawn`, which imports the caller's main module again:
    a script calling this needs the usual `if __name__ == "__main__":` guard.
    """
    url = urlsplit(base_url)
    if url.scheme != "http" or url.hostname is None or url.port is None:
        raise ValueError(f"expected http://host:port, got {base_url!r}")
    wanted = frozenset(EXPECTED) | frozenset(expected)
    targets = [
        Target(url.hostname, url.port, accept, use_gzip, wanted, stale_after, timeout) for accept in accepts
    ]
    # spawn, not fork: forking a process that runs threads can deadlock the child.
    context = multiprocessing.get_context("spawn")
    with ExitStack() as stack:
        pools = [
            stack.enter_context(ProcessPoolExecutor(1, mp_context=context, initializer=_lower_priority))
            for _ in targets
        ]
        for started in [pool.submit(_ready) for pool in pools]:
            started.result()  # the checkers' start-up (imports) stays out of the measured window
        window = _Window(threading.Event(), threading.Event(), min_scrapes)
        parts = [LoadResult() for _ in range(scrapers + 1)]
        threads = [
            threading.Thread(
                target=_scrape_until,
                args=(targets[i % len(targets)], window, pools[i % len(pools)], parts[i]),
                daemon=True,
            )
            for i in range(scrapers)
        ]
        if ready_interval is not None:
            threads.append(
                threading.Thread(
                    target=_probe_until, args=(targets[0], window, ready_interval, parts[-1]), daemon=True
                )
            )
        for thread in threads:
            thread.start()
        # The clock starts once every thread exists, so all of them run for the whole window.
        start = window.start = time.monotonic()
        window.deadline = start + seconds
        window.overtime = window.deadline + overtime
        window.go.set()
        for thread in threads[:scrapers]:
            thread.join()
        window.done.set()
        for thread in threads[scrapers:]:
            thread.join()
    result = LoadResult(seconds=time.monotonic() - start)
    for part in parts:
        result.merge(part)
    result.fewest = min((part.scrapes for part in parts[:scrapers]), default=0)
    return result


def _lower_priority() -> None:
    os.nice(CHECKER_NICENESS)


def _ready() -> None:
    """A no-op run in each checker once, to wait for its start-up."""


def _scrape_until(target: Target, window: _Window, pool: ProcessPoolExecutor, out: LoadResult) -> None:
    """One scraper: request, read, check, repeat until the deadline."""
    conn = target.connect()
    previous: dict[Series, float] = {}
    headers = target.headers()
    window.go.wait()
    try:
        while window.running(out.scrapes):
            sent_at, elapsed = time.time(), time.monotonic() - window.start
            began = time.perf_counter()
            try:
                conn.request("GET", "/metrics", headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                out.scrapes += 1
                out.fail("connection", repr(exc))
                conn.close()  # the next request opens a new one
                continue
            out.latencies.append(time.perf_counter() - began)
            out.scrapes += 1
            try:
                head = {name.lower(): value for name, value in response.getheaders()}
                checked = pool.submit(check_body, response.status, head, raw, target.expected).result()
                previous = _judge(target, checked, previous, sent_at, elapsed, out)
            except ScrapeFailed as failure:
                out.fail(failure.reason, failure.detail)
            except Exception as exc:  # a bug in the checks must show, not end the thread silently
                out.fail("checker error", repr(exc))
    finally:
        conn.close()


class ScrapeFailed(Exception):
    """A scrape's first problem: a short reason to count by, and a detail to show."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Checked:
    """A structurally sound body's counters and the unlabelled values the load is judged by."""

    counters: dict[Series, float]
    values: dict[str, float]


def check_body(status: int, headers: dict[str, str], raw: bytes, expected: frozenset[str]) -> Checked:
    """Raise ScrapeFailed unless the response is whole and self-consistent (runs in a checker process)."""
    if status != 200:
        raise ScrapeFailed(f"status {status}", raw[:200].decode(errors="replace"))
    length = headers.get("content-length")
    if length is None or int(length) != len(raw):
        raise ScrapeFailed("content-length", f"header {length}, body {len(raw)} bytes")
    if headers.get("content-encoding") == "gzip":
        raw = gzip.decompress(raw)
    text = raw.decode()
    if not text.endswith("\n"):
        raise ScrapeFailed("no final newline", repr(text[-80:]))
    openmetrics = headers.get("content-type", "").startswith("application/openmetrics-text")
    if openmetrics and (not text.endswith(EOF) or text.count("# EOF") != 1):
        raise ScrapeFailed("openmetrics # EOF", f"{text.count('# EOF')} of them, ends {text[-40:]!r}")
    names: set[str] = set()
    counters: dict[Series, float] = {}
    values: dict[str, float] = {}
    for block in family_blocks(text):
        parsed = _parse_block(block, openmetrics)
        if not names.isdisjoint(parsed.names):
            raise ScrapeFailed("family repeated", ", ".join(sorted(names & parsed.names)))
        names |= parsed.names
        counters.update(parsed.counters)
        values.update(parsed.values)
    missing = expected - names
    if missing:
        raise ScrapeFailed("missing series", ", ".join(sorted(missing)))
    return Checked(counters, values)


EOF = "# EOF\n"
BLOCKS_KEPT = 4096
"""Parsed family blocks remembered per checker; cleared when full (a report changes only some)."""


def family_blocks(text: str) -> list[str]:
    """An exposition cut before each `# HELP` line: one family per block; joined, they are `text`."""
    pieces = text.split("\n# HELP ")
    blocks = [pieces[0] + "\n", *(f"# HELP {piece}\n" for piece in pieces[1:])]
    blocks[-1] = blocks[-1][:-1]  # the text's own final newline is already in the last piece
    return blocks


@dataclass(frozen=True)
class _Block:
    """One parsed family block: its sample names, counters, and unlabelled values."""

    names: frozenset[str]
    counters: dict[Series, float]
    values: dict[str, float]


_PARSED: dict[tuple[bool, str], _Block] = {}
"""The memo of parsed blocks.

Between two reports every scrape carries the same device families (the exporter renders them once
per report), and only the exporter's own and the process metrics differ from scrape to scrape.
Parsing each distinct block once and everything else per scrape gives the same verdict as parsing
every body whole, at a fraction of the cost, so the checkers keep up with the scrapers; a torn body
differs in its last block, which is therefore parsed afresh.
"""


def _parse_block(block: str, openmetrics: bool) -> _Block:
    """A block through prometheus_client's parser (memoised); ScrapeFailed if it does not parse cleanly."""
    memo_key = (openmetrics, block)
    parsed = _PARSED.get(memo_key)
    if parsed is not None:
        return parsed
    try:
        if openmetrics:
            # The OpenMetrics parser wants the terminator; only the body's last block has it.
            text = block if block.endswith(EOF) else block + EOF
            families = list(parse_openmetrics(text))  # type: ignore[no-untyped-call]  # not annotated
        else:
            families = list(parse_text(block))
    except Exception as exc:  # prometheus_client raises ValueError and others for a torn body
        raise ScrapeFailed("unparsable", repr(exc)) from None
    seen: set[Series] = set()
    counters: dict[Series, float] = {}
    values: dict[str, float] = {}
    for family in families:
        is_counter = family.type == "counter"
        for sample in family.samples:
            series = (sample.name, frozenset(sample.labels.items()))
            if series in seen:
                raise ScrapeFailed("duplicate series", f"{sample.name}{sample.labels}")
            seen.add(series)
            if not sample.labels:
                values[sample.name] = sample.value
            if is_counter and sample.name.endswith("_total"):
                counters[series] = sample.value
    parsed = _Block(frozenset(name for name, _ in seen), counters, values)
    if len(_PARSED) >= BLOCKS_KEPT:
        _PARSED.clear()
    _PARSED[memo_key] = parsed
    return parsed


def _judge(
    target: Target,
    checked: Checked,
    previous: dict[Series, float],
    sent_at: float,
    elapsed: float,
    out: LoadResult,
) -> dict[Series, float]:
    """Compare a checked body with the same scraper's previous one and record progress; its counters."""
    for key, value in checked.counters.items():
        before = previous.get(key)
        if before is not None and value < before:
            raise ScrapeFailed("counter went backwards", f"{key[0]}{dict(key[1])} {before} -> {value}")
    values = checked.values
    out.reports.append((elapsed, values[REPORTS]))
    lag = sent_at - values[LAST_REPORT]
    out.max_lag = max(out.max_lag, lag)
    if target.stale_after is not None:
        # Counted, but the body is sound: its counters still become the baseline for the next one.
        if values[MONITOR_UP] != 1:
            out.fail("neuron_monitor_up 0")
        elif lag > target.stale_after:
            out.fail("stale", f"last report {lag:.2f} s before the request")
    return checked.counters


def _probe_until(target: Target, window: _Window, interval: float, out: LoadResult) -> None:
    """Readiness must hold all along: /-/ready every `interval` seconds, anything but 200 a failure."""
    conn = target.connect()
    window.go.wait()
    try:
        next_probe = window.start
        while not window.done.is_set():
            try:
                conn.request("GET", "/-/ready")
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    out.fail(f"ready {response.status}", body.decode(errors="replace").strip())
            except (OSError, http.client.HTTPException) as exc:
                out.fail("ready connection", repr(exc))
                conn.close()
            out.ready_probes += 1
            next_probe += interval
            window.done.wait(max(0.0, next_probe - time.monotonic()))
    finally:
        conn.close()
