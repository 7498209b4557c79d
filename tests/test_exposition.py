"""Our text writer is byte-identical to prometheus_client's generate_latest, escapes and odd values included;
the per-report render cache changes nothing in the body and keeps the exporter's own series live."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import ClassVar

from prometheus_client.exposition import generate_latest

from exporter.collectors.base import Collector, Family, MetricSpec, Options
from exporter.exposition import Exposition, NeuronCollector, Store
from exporter.health import Health
from exporter.state import State

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


def test_text_matches_prometheus_client() -> None:
    families = []
    for kind, name in (("gauge", "x_ratio"), ("counter", "y_total"), ("info", "z_info")):
        family = MetricSpec(name, kind, 'help with \\ and\nnewline and "quotes"', (), "-").family()  # type: ignore[arg-type]
        for labels in LABELS:
            for value in VALUES:
                family.add(labels, value)
        families.append(family)
    ours: list[str] = []
    for family in families:
        family.text_lines(ours)
    theirs = generate_latest(Registry([family.to_metric() for family in families]))  # type: ignore[arg-type]
    assert "".join(ours).encode() == theirs


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
