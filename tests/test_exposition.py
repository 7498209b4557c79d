"""Our text writer is byte-identical to prometheus_client's generate_latest, escapes and odd values included;
the per-report render cache changes nothing in the body and keeps the exporter's own series live."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics import exposition as openmetrics

from exporter.collectors import COLLECTORS
from exporter.collectors.base import Collector, Family, MetricSpec, Options
from exporter.exposition import Exposition, NeuronCollector, Store
from exporter.health import Health
from exporter.ingest import Ingestor
from exporter.model.state import State

SIM_REPORTS = sorted((Path(__file__).parent / "fixtures" / "reports").glob("sim-*.jsonl"))

VALUES = [0.0, -0.0, 1.0, 3, 0.4201, 1e-10, 123456789.0, 1.2e16, 2**53, math.inf, -math.inf, math.nan, -7.5]
LABELS = [
    {},
    {"runtime_tag": "plain", "neuroncore": "3"},
    {"neuroncore": "3", "runtime_tag": "plain"},  # same names, other insertion order
    {"model_name": 'a "quoted"\\path\nwith newline'},
    {"a": "", "b": "é"},
]


class Registry:
    def __init__(self, metrics: list[object]) -> None:
        self.metrics = metrics

    def collect(self) -> list[object]:
        return self.metrics


def odd_families() -> list[Family]:
    """Every kind of family with escapes in help and labels, mixed label sets and odd values."""
    families = []
    for kind, name in (("gauge", "x_ratio"), ("counter", "y_total"), ("info", "z_info")):
        family = MetricSpec(name, kind, 'help with \\ and\nnewline and "quotes"', (), "-").family()  # type: ignore[arg-type]
        for labels in LABELS:
            for value in VALUES:
                family.add(labels, value)
        families.append(family)
    return families


def test_text_matches_prometheus_client() -> None:
    families = odd_families()
    ours: list[str] = []
    for family in families:
        family.text_lines(ours)
    theirs = generate_latest(Registry([family.to_metric() for family in families]))  # type: ignore[arg-type]
    assert "".join(ours).encode() == theirs


@pytest.mark.parametrize("escaping", ["underscores", "allow-utf-8"])
def test_openmetrics_matches_prometheus_client(escaping: str) -> None:
    families = odd_families()
    ours: list[str] = []
    for family in families:
        family.openmetrics_lines(ours)
    registry = Registry([family.to_metric() for family in families])
    theirs = openmetrics.generate_latest(registry, escaping=escaping)  # type: ignore[arg-type]
    assert "".join(ours).encode() + b"# EOF\n" == theirs


PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
"""What Prometheus 2 sends (scrape_protocols default); 3.x adds escaping=allow-utf-8."""


@pytest.mark.parametrize(
    "accept",
    [
        PROMETHEUS_ACCEPT,
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
        "application/openmetrics-text;version=1.0.0;escaping=dots",
        "application/openmetrics-text;version=1.0.0;escaping=values",
        "application/openmetrics-text",
    ],
)
@pytest.mark.parametrize("report", SIM_REPORTS, ids=lambda p: p.stem)
def test_openmetrics_bodies_match_prometheus_client(accept: str, report: Path) -> None:
    """Whole bodies of real fixture states: our writer (or, for other escapings, the fallback) gives
    exactly what prometheus_client's encoder gives for the same families."""
    store = Store(State())
    ingestor = Ingestor(store, Health(stale_after=None, replay=True))
    for line in report.read_bytes().splitlines():
        ingestor.on_line(line)
    collector = NeuronCollector(store, ingestor.health, [cls(Options()) for cls in COLLECTORS])
    body, content_type = Exposition(collector, process_metrics=False).render(accept)
    encoder, expected_type = choose_encoder(accept)
    families, success = collector.device_families(store.current)
    reference = encoder(Registry([f.to_metric() for f in [*families, *collector.self_families(success)]]))  # type: ignore[arg-type]
    assert content_type == expected_type
    assert body == reference


def process_metrics() -> list[Metric]:
    """What the daemon's process, platform and GC collectors give, collected once (values move)."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return list(registry.collect())


def test_our_writers_take_every_process_metric() -> None:
    assert all(Family.of_metric(metric) is not None for metric in process_metrics())


@pytest.mark.parametrize(
    "accept", [None, PROMETHEUS_ACCEPT, "application/openmetrics-text;version=1.0.0;escaping=dots"]
)
@pytest.mark.parametrize("with_unit", [False, True], ids=["plain", "with-unit"])
def test_process_metrics_match_prometheus_client(accept: str | None, with_unit: bool) -> None:
    """Bodies with the process part, written by our writers as far as they can (a metric with a unit
    and all after it go to prometheus_client), are exactly prometheus_client's."""
    metrics = process_metrics()
    if with_unit:
        metrics.insert(3, GaugeMetricFamily("x_seconds", "with a unit", value=1.5, unit="seconds"))
    store = Store(State())
    ingestor = Ingestor(store, Health(stale_after=None, replay=True))
    for line in SIM_REPORTS[0].read_bytes().splitlines():
        ingestor.on_line(line)
    collector = NeuronCollector(store, ingestor.health, [cls(Options()) for cls in COLLECTORS])
    exposition = Exposition(collector, process_metrics=True)
    exposition.process = Registry(metrics)  # type: ignore[assignment]
    body, _ = exposition.render(accept)
    encoder, _ = choose_encoder(accept or "")
    families, success = collector.device_families(store.current)
    ours = [f.to_metric() for f in [*families, *collector.self_families(success)]]
    assert body == encoder(Registry([*ours, *metrics]))  # type: ignore[arg-type]


class Counting(Collector):
    """A collector that counts how often it renders, so a cache hit is visible without timing anything."""

    name = "counting"
    description = "test"
    specs: ClassVar[tuple[MetricSpec, ...]] = (MetricSpec("x_reports_total", "counter", "h", (), "-"),)

    def __init__(self) -> None:
        super().__init__(Options())
        self.calls = 0

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        self.calls += 1
        families["x_reports_total"].add({}, state.reports)


OPENMETRICS_ACCEPT = "application/openmetrics-text; version=1.0.0"


def test_render_cache_reuses_a_state_and_keeps_own_series_live() -> None:
    store = Store(State(reports=1))
    health = Health(stale_after=None, replay=True)
    counting = Counting()
    exposition = Exposition(NeuronCollector(store, health, [counting]), process_metrics=False)

    def uncached(accept: str | None) -> bytes:
        fresh = Exposition(NeuronCollector(store, health, [Counting()]), process_metrics=False)
        return fresh.render(accept)[0]

    first = exposition.render(None)[0]
    health.reports = 7  # the exporter's own series move between reports; the device part does not
    second = exposition.render(None)[0]
    assert counting.calls == 1, "the same state was rendered twice"
    assert b"neuron_exporter_reports_total 7.0\n" in second and second != first
    assert second == uncached(None)

    # OpenMetrics is its own entry (other bytes); the live part carries the only `# EOF`, at the end.
    for _ in range(2):
        body, content_type = exposition.render(OPENMETRICS_ACCEPT)
        assert content_type.startswith("application/openmetrics-text")
        assert body == uncached(OPENMETRICS_ACCEPT)
        assert body.endswith(b"# EOF\n") and body.count(b"# EOF") == 1
    assert counting.calls == 2

    store.current = dataclasses.replace(store.current, reports=2)  # a new report: a new state object
    third = exposition.render(None)[0]
    assert counting.calls == 3
    assert b"x_reports_total 2.0\n" in third and third == uncached(None)
    # Bounded: one entry per format, each for the state (generation) it was last rendered from.
    assert set(exposition.rendered) == {"text", "openmetrics"}
    assert exposition.rendered["text"].generation == store.generation
    assert exposition.rendered["openmetrics"].generation < store.generation
