"""Scrape-time rendering: the current State through the enabled collectors into an exposition.

One read of `store.current` per scrape, so a scrape never mixes two reports. A collector that raises
costs only its own families and shows as `neuron_exporter_collector_success{collector} 0`. The text
format is written by our families directly (fast path); OpenMetrics, and the process/Python metrics,
go through prometheus_client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import Collector, Family
from exporter.collectors.self import SPECS as SELF_SPECS
from exporter.collectors.self import fill_self
from exporter.gcpause import gc_paused
from exporter.health import Health
from exporter.state import State

log = logging.getLogger(__name__)

OPENMETRICS = "application/openmetrics-text"


@dataclass
class Store:
    """Holder of the latest State; the ingest path replaces `current` with one reference swap."""

    current: State


class NeuronCollector:
    """Every enabled collector over the store, then the exporter's own health."""

    def __init__(self, store: Store, health: Health, collectors: Sequence[Collector]) -> None:
        self.store = store
        self.health = health
        self.collectors = collectors
        self._failed_once: set[str] = set()

    def families(self) -> list[Family]:
        """This scrape's families, from one read of the current state."""
        state = self.store.current
        success: dict[str, bool] = {}
        out: list[Family] = []
        for collector in self.collectors:
            try:
                families = collector.collect(state)
            except Exception:
                success[collector.name] = False
                if collector.name not in self._failed_once:
                    self._failed_once.add(collector.name)
                    log.exception(
                        "collector %s failed; its metrics are left out of this scrape", collector.name
                    )
                continue
            success[collector.name] = True
            out.extend(families)
        own = {spec.name: spec.family() for spec in SELF_SPECS}
        fill_self(self.health, success, own)
        out.extend(family for family in own.values() if family.samples)
        return out

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's collector protocol (used for OpenMetrics)."""
        for family in self.families():
            yield family.to_metric()


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

    def collect(self) -> Iterator[Metric]:
        """Everything, as prometheus_client Metrics."""
        yield from self.collector.collect()
        if self.process is not None:
            yield from self.process.collect()

    def text(self) -> bytes:
        """Prometheus text format 0.0.4."""
        out: list[str] = []
        with gc_paused():
            for family in self.collector.families():
                family.text_lines(out)
            body = "".join(out).encode()
        if self.process is not None:
            body += generate_latest(self.process)
        return body

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition in the format the Accept header asks for (OpenMetrics or text 0.0.4)."""
        encoder, content_type = choose_encoder(accept or "")
        if content_type.startswith(OPENMETRICS):
            return encoder(self), content_type
        return self.text(), CONTENT_TYPE_PLAIN_0_0_4
