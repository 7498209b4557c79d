"""Scrape-time rendering: the current State through the enabled collectors into an exposition.

One read of `store.current` per scrape, so a scrape never mixes two reports. A collector that raises
costs only its own families and shows as `neuron_exporter_collector_success{collector} 0`. The text
format, OpenMetrics under the legacy-name escapings, and the process/Python metrics are written by our
own writers (fast path); other escapings, and any process metric they cannot write, go through
prometheus_client.

The device part of a body depends on nothing but the State, which is immutable and replaced whole per
report, so it is rendered once per (state, format) and reused by every scrape until the next report;
the exporter's own series and the process metrics, which move between reports, are rendered per scrape
and appended. The body is byte-identical to rendering everything at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import Collector, Family, add_owner_labels, owner_labels
from exporter.collectors.self import SPECS as SELF_SPECS
from exporter.collectors.self import fill_self
from exporter.gcpause import gc_paused
from exporter.health import Health
from exporter.model.state import State

log = logging.getLogger(__name__)

OPENMETRICS = "application/openmetrics-text"
EOF_LINE = b"# EOF\n"
"""OpenMetrics' terminator: exactly one, at the very end, so a cached part is stored without it."""


class Store:
    """Holder of the latest State; the ingest path replaces `current` with one reference swap.

    Each swap bumps `generation`, which is what the render cache compares: holding the rendered
    State itself would keep a whole second state alive between reports just to compare identity.
    """

    def __init__(self, current: State) -> None:
        self._current = current
        self.generation = 0

    @property
    def current(self) -> State:
        """The latest state."""
        return self._current

    @current.setter
    def current(self, state: State) -> None:
        self._current = state
        self.generation += 1


class NeuronCollector:
    """Every enabled collector over the store, then the exporter's own health."""

    def __init__(self, store: Store, health: Health, collectors: Sequence[Collector]) -> None:
        self.store = store
        self.health = health
        self.collectors = collectors
        self._failed_once: set[str] = set()
        self._problems_logged: set[tuple[str, str]] = set()

    def device_families(self, state: State) -> tuple[list[Family], dict[str, bool]]:
        """The enabled collectors' families for `state`, and which collectors succeeded; per-core and
        per-runtime series get their owner's labels under pod attribution (Collector.attributed).

        A function of the state alone (collectors are pure), which is what makes it cacheable.
        """
        success: dict[str, bool] = {}
        out: list[Family] = []
        owners = owner_labels(state)
        for collector in self.collectors:
            try:
                families = collector.collect(state)
                if owners is not None and collector.attributed:
                    add_owner_labels(families, owners)
            except Exception:
                success[collector.name] = False
                if collector.name not in self._failed_once:
                    self._failed_once.add(collector.name)
                    log.exception(
                        "collector %s failed; its metrics are left out of this scrape", collector.name
                    )
                continue
            problem = collector.problem(state)
            success[collector.name] = problem is None
            if problem is not None and (collector.name, problem) not in self._problems_logged:
                self._problems_logged.add((collector.name, problem))
                log.warning("collector %s: %s", collector.name, problem)
            out.extend(families)
        return out, success

    def self_families(self, success: Mapping[str, bool]) -> list[Family]:
        """The exporter's own series as of now (they change between reports, so never cached)."""
        own = {spec.name: spec.family() for spec in SELF_SPECS}
        fill_self(self.health, success, own)
        return [family for family in own.values() if family.samples]


@dataclass(frozen=True, slots=True)
class Rendered:
    """The device part of a body for one state in one format, and the collector outcomes behind it.

    `generation` is the Store's count of swaps when it was rendered: unlike an id(), it is never
    reused, and unlike the State object, it does not keep an old state alive.
    """

    generation: int
    content_type: str
    body: bytes
    success: Mapping[str, bool]


class _Metrics:
    """prometheus_client's registry protocol over a fixed list of Metrics, for its encoders."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


Encoder = Callable[[_Metrics], bytes]


class Exposition:
    """Renders /metrics: our families, then (for a serving daemon) process and Python metrics."""

    def __init__(self, collector: NeuronCollector, *, process_metrics: bool) -> None:
        self.collector = collector
        self.process: CollectorRegistry | None = None
        if process_metrics:
            self.process = CollectorRegistry(auto_describe=False)
            ProcessCollector(registry=self.process)
            PlatformCollector(registry=self.process)
            GCCollector(registry=self.process)
        self.rendered: dict[str, Rendered] = {}
        """The latest device part per format ("text", "openmetrics"): one entry each, so memory is
        bounded by two bodies however many Accept variants scrapers send."""

    def device_part(self, kind: str, content_type: str, render: Callable[[list[Family]], bytes]) -> Rendered:
        """The current state's device part in one format: from the cache, or rendered and cached.

        The state is read once here; the caller renders the self series with the outcomes stored
        alongside, so `collector_success` always describes the families actually in the body.
        """
        store = self.collector.store
        state, generation = store.current, store.generation
        cached = self.rendered.get(kind)
        if cached is not None and cached.generation == generation and cached.content_type == content_type:
            return cached
        families, success = self.collector.device_families(state)
        entry = Rendered(generation, content_type, render(families), success)
        self.rendered[kind] = entry
        return entry

    def text(self) -> bytes:
        """Prometheus text format 0.0.4."""
        with gc_paused():
            device = self.device_part("text", CONTENT_TYPE_PLAIN_0_0_4, _text)
            body = device.body + _text(self.collector.self_families(device.success))
        if self.process is not None:
            ours, theirs = _split_process(self.process.collect())
            body += _text(ours) + generate_latest(_Metrics(theirs))
        return body

    def openmetrics(self, encoder: Encoder, content_type: str) -> bytes:
        """OpenMetrics: the cached device part (without `# EOF`), then the live part, which ends it.

        Prometheus asks for OpenMetrics first, so this is the format of nearly every real scrape.
        Our families are written by our own writer for the escapings that leave legacy names as
        they are (`underscores`, Prometheus 2's default, and `allow-utf-8`); any other escaping, and
        the process metrics, go through prometheus_client's encoder. The key includes the content
        type because the Accept header picks the version and escaping.
        """
        fast = _escaping(content_type) in FAST_ESCAPINGS

        def render(families: list[Family]) -> bytes:
            if fast:
                return _openmetrics(families)
            body = encoder(_Metrics([family.to_metric() for family in families]))
            if not body.endswith(EOF_LINE):
                raise RuntimeError("prometheus_client's OpenMetrics encoder no longer ends with # EOF")
            return body[: -len(EOF_LINE)]

        with gc_paused():
            device = self.device_part("openmetrics", content_type, render)
        own = self.collector.self_families(device.success)
        process: list[Metric] = list(self.process.collect()) if self.process is not None else []
        if fast:
            ours, theirs = _split_process(process)
            return device.body + _openmetrics([*own, *ours]) + encoder(_Metrics(theirs))
        live = [family.to_metric() for family in own] + process
        return device.body + encoder(_Metrics(live))

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition in the format the Accept header asks for (OpenMetrics or text 0.0.4)."""
        encoder, content_type = choose_encoder(accept or "")
        if content_type.startswith(OPENMETRICS):
            return self.openmetrics(encoder, content_type), content_type
        return self.text(), CONTENT_TYPE_PLAIN_0_0_4


FAST_ESCAPINGS = frozenset({"underscores", "allow-utf-8"})
"""OpenMetrics escapings under which prometheus_client writes legacy names unchanged."""


def _escaping(content_type: str) -> str:
    """The `escaping` parameter of an OpenMetrics content type; prometheus_client's default without one."""
    for part in content_type.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "escaping":
            return value
    return "underscores"


def _split_process(metrics: Iterable[Metric]) -> tuple[list[Family], list[Metric]]:
    """Process and Python metrics our writers can write (as Families, in order), and those they cannot.

    prometheus_client's encoders spend about 0.1 ms per scrape on these dozen families; ours a tenth.
    The ones left to prometheus_client are written after ours, so the order holds when there are none
    (there are none from its own process, platform and GC collectors today; tested).
    """
    ours: list[Family] = []
    theirs: list[Metric] = []
    for metric in metrics:
        family = Family.of_metric(metric) if not theirs else None
        if family is None:
            theirs.append(metric)
        else:
            ours.append(family)
    return ours, theirs


def _openmetrics(families: Iterable[Family]) -> bytes:
    """Families in OpenMetrics, through our fast writer (no `# EOF`)."""
    out: list[str] = []
    for family in families:
        family.openmetrics_lines(out)
    return "".join(out).encode()


def _text(families: Iterable[Family]) -> bytes:
    """Families in the text format, through our fast writer."""
    out: list[str] = []
    for family in families:
        family.text_lines(out)
    return "".join(out).encode()
