"""Our text writer is byte-identical to prometheus_client's generate_latest, escapes and odd values included;
the per-report render cache changes nothing in the body and keeps the exporter's own series live."""

from __future__ import annotations

import dataclasses
import math
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors import COLLECTORS
from exporter.collectors.base import Collector, Family, MetricSpec, Options
from exporter.exposition import Exposition, NeuronCollector, Store
from exporter.health import Health
from exporter.ingest import Ingestor
from exporter.model.attribution import DeviceGrant, Owner, allocations_from
from exporter.model.state import State, with_allocations
from tests.reports import core_counters, memory, report, runtime
from tests.test_state import Pipeline

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


def _labelled_report(tag: str, model: str, pod: str) -> dict[str, object]:
    """A report whose runtime tag, model name and k8s pod name are the given strings."""
    ref = {"pod_name": pod, "namespace": pod[::-1], "container_name": [model]}
    loaded = [{"name": model, "uuid": tag, "model_id": 10001, "is_running": True}]
    doc = report(
        runtime(
            tag,
            neuroncore_counters=core_counters({0: 40}),
            memory_used={**memory({0: 100}), "loaded_models": loaded},
        )
    )
    doc["neuron_k8s_info"] = {
        "period": 1.0,
        "neuroncores_k8s_info": {"0": ref},
        "neurondevices_k8s_info": {"0": ref},
    }
    return doc


def _rendered_label_values(tag: str, model: str, pod: str, *, kubelet: bool) -> tuple[bytes, bytes]:
    """The text and OpenMetrics bodies of a node whose neuron-monitor (and kubelet) names are these."""
    pipeline = Pipeline(Options(per_model=True))
    pipeline.feed(_labelled_report(tag, model, pod))
    if kubelet:
        owner = Owner(namespace=model, pod=pod, container=tag)
        grants = allocations_from([DeviceGrant(owner, "aws.amazon.com/neuroncore", ("0",))])
        pipeline.store.current = with_allocations(pipeline.store.current, grants)
    text = pipeline.exposition.render(None)[0]
    openmetrics_body = pipeline.exposition.render("application/openmetrics-text; version=1.0.0")[0]
    return text, openmetrics_body


def _label_values(families: Iterable[Metric]) -> set[str]:
    return {value for family in families for sample in family.samples for value in sample.labels.values()}


HOSTILE = st.text(
    alphabet=st.sampled_from('\n\\"{}=,# \t\r\x00a\u00e9\u2028\U0001f600'), min_size=1, max_size=12
)


@settings(max_examples=150, deadline=None)
@given(tag=HOSTILE, model=HOSTILE, pod=HOSTILE)
def test_names_from_neuron_monitor_and_the_kubelet_survive_both_writers(
    tag: str, model: str, pod: str
) -> None:
    """Whatever a tag, model name or pod name holds, both formats parse and give it back unchanged,
    from neuron-monitor's k8s info and from the kubelet alike."""
    for kubelet in (False, True):
        text, openmetrics_body = _rendered_label_values(tag, model, pod, kubelet=kubelet)
        expected = {tag, model, pod, pod[::-1] if not kubelet else model}
        assert expected <= _label_values(text_string_to_metric_families(text.decode()))
        assert expected <= _label_values(openmetrics_families(openmetrics_body.decode()))


NASTY = ["line\nbreak", 'quo"te', "back\\slash", "\\n literal", "end\\", '{a="b"}\n# EOF\n', "é\u2028😀"]


def test_promtool_accepts_every_nasty_name_in_the_text_format() -> None:
    """promtool is stricter than prometheus_client's parser: one unescaped newline fails the whole page."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: `make tools` installs Debian's prometheus package"
    for tag, model, pod in zip(NASTY, NASTY[1:] + NASTY[:1], NASTY[2:] + NASTY[:2], strict=True):
        for kubelet in (False, True):
            text, _ = _rendered_label_values(tag, model, pod, kubelet=kubelet)
            result = subprocess.run(
                [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60
            )
            assert result.returncode == 0, (tag, model, pod, result.stdout.decode(), result.stderr.decode())
