"""Scrape-time rendering: the current State through the enabled collectors into Prometheus text.

One read of `store.current` per scrape, so a scrape never mixes two reports. A collector that raises
costs only its own families and shows as `neuron_exporter_collector_success{collector} 0`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import Collector
from exporter.collectors.self import SPECS as SELF_SPECS
from exporter.collectors.self import fill_self
from exporter.health import Health
from exporter.state import State

log = logging.getLogger(__name__)


@dataclass
class Store:
    """Holder of the latest State; the ingest path replaces `current` with one reference swap."""

    current: State


class NeuronCollector:
    """prometheus_client collector over the store: device collectors, then the exporter's own health."""

    def __init__(self, store: Store, health: Health, collectors: Sequence[Collector]) -> None:
        self.store = store
        self.health = health
        self.collectors = collectors
        self._failed_once: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        """Every enabled collector's families for the current state."""
        state = self.store.current
        success: dict[str, bool] = {}
        for collector in self.collectors:
            try:
                metrics = list(collector.collect(state))
            except Exception:
                success[collector.name] = False
                if collector.name not in self._failed_once:
                    self._failed_once.add(collector.name)
                    log.exception(
                        "collector %s failed; its metrics are left out of this scrape", collector.name
                    )
                continue
            success[collector.name] = True
            yield from metrics
        families = {spec.name: spec.family() for spec in SELF_SPECS}
        fill_self(self.health, success, families)
        for family in families.values():
            if family.metric.samples:
                yield family.metric


def build_registry(collector: NeuronCollector, *, process_metrics: bool) -> CollectorRegistry:
    """A fresh registry with our collector and, for a serving daemon, process/Python metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    if process_metrics:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The exposition in the format the Accept header asks for (OpenMetrics or text 0.0.4)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
