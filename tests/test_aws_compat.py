"""The AWS-compatible mode against real expositions of AWS's neuron-monitor-prometheus.py (SCHEMA.md §6).

tests/fixtures/aws/expositions/*.prom are byte copies of ../shared/neuron-monitor/samples/aws-exposition;
their neuron-monitor inputs are not published, so tests/fixtures/aws/*.jsonl are inputs of our own
shaped after them (see the README there). Each exposition is compared family by family (name, TYPE,
HELP, label-name sets) and sample by sample with what the compat mode renders from its input.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import make_collectors
from exporter.cli import build_parser, settings_from_args
from exporter.collectors import COLLECTORS, Options
from exporter.collectors.aws_compat import AWS_COLLECTORS
from exporter.exposition import Exposition, NeuronCollector, Store
from exporter.health import Health
from exporter.ingest import Ingestor
from exporter.model.state import State

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
EXPOSITIONS = FIXTURES / "expositions"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "neuron-monitor"

INSTANCE = frozenset(
    {"instance_name", "instance_id", "instance_type", "availability_zone", "region", "subnet_id"}
)
MEMORY_CATEGORIES = ("constants", "model_code", "model_shared_scratchpad", "runtime_memory", "tensors")
ADDED_IN_2_19 = frozenset(
    {"neuron_hardware_info", *(f"neuroncore_memory_usage_{c}" for c in MEMORY_CATEGORIES)}
)
"""Families the script gained in Neuron 2.19 (RN: memory usage metrics and device count); the 2023
expositions predate them although neuron-monitor already reported their data."""

CASES = {
    "real-i_inf1.xlarge_2023-02-1.prom": ("real-i-1_inf1.xlarge_no-runtime.jsonl", {"neuron_hardware_info"}),
    "real-i_inf1.xlarge_2023-02-2.prom": ("real-i-2_inf1.xlarge_with-runtime.jsonl", ADDED_IN_2_19),
    "datadog-fixture_inf1.xlarge_2024-07.prom": ("datadog_inf1.xlarge_2024-07.jsonl", frozenset()),
}
"""AWS exposition -> (our input, families we render that the script of that time did not)."""

GRAFANA_QUERIES = (
    "instance_info",
    "count(instance_info)",
    "sum (system_vcpu_count)",
    "avg(sum by (instance_id) (system_vcpu_usage_ratio))",
    "avg(system_memory_used_bytes / system_memory_total_bytes)",
    "count(neuroncore_utilization_ratio > 0)",
    "avg(neuroncore_utilization_ratio)",
    'sum(rate(execution_status_total{status_type="completed"}[1m]))',
    'sum(rate(execution_status_total{status_type!="completed"}[1m]))',
    "avg by (percentile) (execution_latency_seconds)",
    "avg by (neuroncore) (neuroncore_utilization_ratio)",
    "avg by (usage_type) (neuron_runtime_vcpu_usage_ratio)",
    "avg by (memory_location) (sum by (instance_id, memory_location) (neuron_runtime_memory_used_bytes))",
    "avg by (usage_type) (system_vcpu_usage_ratio)",
    "avg(system_memory_used_bytes)",
)
"""Every distinct PromQL query of AWS's dashboard (upstream/aws-neuron-sdk/neuron-monitor-grafana.json)."""


# --- rendering and reading expositions -----------------------------------------------------------


def render_aws(lines: Iterable[bytes]) -> str:
    """The compat-mode exposition after ingesting the lines, through the same path as the daemon."""
    store = Store(State())
    health = Health(stale_after=None, replay=True)
    ingestor = Ingestor(store, health, prune_idle_cores=False)
    for line in lines:
        ingestor.on_line(line)
    collector = NeuronCollector(store, health, [cls(Options()) for cls in AWS_COLLECTORS])
    return Exposition(collector, process_metrics=False).render(None)[0].decode()


def fixture_lines(name: str) -> list[bytes]:
    """The report lines of one of our inputs."""
    return (FIXTURES / name).read_bytes().splitlines()


def render_docs(*docs: Mapping[str, Any]) -> str:
    """The compat-mode exposition after ingesting report documents."""
    return render_aws(json.dumps(doc).encode() for doc in docs)


def compared(name: str) -> bool:
    """Whether a family takes part in the comparison (not prometheus_client's or our own health)."""
    return not (
        name.endswith("_created")
        or name.startswith(("python_", "process_", "neuron_exporter_"))
        or name == "neuron_monitor_up"
    )


@dataclass(frozen=True)
class Shape:
    """What a family must agree on: TYPE, HELP, and the label-name set of each of its series."""

    type: str
    help: str
    label_sets: frozenset[frozenset[str]]


def shapes(text: str) -> dict[str, Shape]:
    """Family name -> shape, for the compared families."""
    out: dict[str, Shape] = {}
    for family in text_string_to_metric_families(text):
        if compared(family.name):
            label_sets = frozenset(
                frozenset(s.labels) for s in family.samples if not s.name.endswith("_created")
            )
            out[family.name] = Shape(family.type, family.documentation, label_sets)
    return out


Key = tuple[str, frozenset[tuple[str, str]]]


def samples(text: str, families: Iterable[str] | None = None) -> dict[Key, float]:
    """(sample name, labels) -> value, for the compared families (or only those named)."""
    wanted = None if families is None else set(families)
    out: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        if not compared(family.name) or (wanted is not None and family.name not in wanted):
            continue
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    """The one sample of `name` whose labels include `labels`."""
    found = [v for (n, ls), v in samples(text).items() if n == name and set(labels.items()) <= set(ls)]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


def series(text: str, name: str) -> list[dict[str, str]]:
    """The label sets of every sample of `name`."""
    return [dict(ls) for (n, ls) in samples(text) if n == name]


# --- each real exposition against ours -----------------------------------------------------------


@pytest.mark.parametrize("exposition", sorted(CASES))
def test_families_types_help_and_label_sets_match_aws(exposition: str) -> None:
    source, added_later = CASES[exposition]
    theirs = shapes((EXPOSITIONS / exposition).read_text())
    ours = shapes(render_aws(fixture_lines(source)))
    assert set(ours) - set(theirs) == set(added_later)
    assert set(theirs) - set(ours) == set()
    for name, shape in theirs.items():
        assert ours[name] == shape, name


@pytest.mark.parametrize("exposition", sorted(CASES))
def test_every_sample_matches_aws(exposition: str) -> None:
    source, _ = CASES[exposition]
    theirs = samples((EXPOSITIONS / exposition).read_text())
    ours = samples(render_aws(fixture_lines(source)), families=shapes((EXPOSITIONS / exposition).read_text()))
    assert set(ours) == set(theirs)
    for key, expected in theirs.items():
        assert ours[key] == pytest.approx(expected, rel=1e-12, abs=1e-15), key


def test_declared_specs_are_what_the_datadog_exposition_shows() -> None:
    theirs = shapes((EXPOSITIONS / "datadog-fixture_inf1.xlarge_2024-07.prom").read_text())
    declared = {}
    for collector in AWS_COLLECTORS:
        for spec in collector.specs:
            name = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
            kind = "gauge" if spec.kind == "info" else spec.kind
            declared[name] = (kind, spec.help, frozenset(spec.labels))
    assert set(declared) == set(theirs)
    for name, shape in theirs.items():
        assert declared[name] == (shape.type, shape.help, frozenset().union(*shape.label_sets)), name


def test_copies_of_the_aws_expositions_are_exact() -> None:
    originals = SHARED / "samples" / "aws-exposition"
    if not originals.is_dir():
        pytest.skip("../shared/neuron-monitor is not checked out next to the repository")
    for copy_ in sorted(EXPOSITIONS.glob("*.prom")):
        assert copy_.read_bytes() == (originals / copy_.name).read_bytes(), copy_.name


# --- values computed the way §6 describes, from real reports -------------------------------------


def real(name: str) -> dict[str, Any]:
    """One of the verbatim real reports: the first line of our inf1 inputs."""
    doc: dict[str, Any] = json.loads(fixture_lines(name)[0])
    return doc


NO_RUNTIME = "real-i-1_inf1.xlarge_no-runtime.jsonl"
WITH_RUNTIME = "real-i-2_inf1.xlarge_with-runtime.jsonl"


def test_system_groups_of_a_real_report() -> None:
    doc = real(NO_RUNTIME)
    text = render_docs(doc)
    average = doc["system_data"]["vcpu_usage"]["average_usage"]
    assert (
        value(text, "system_vcpu_usage_ratio", usage_type="user") == (average["user"] + average["nice"]) / 100
    )
    assert (
        value(text, "system_vcpu_usage_ratio", usage_type="system")
        == (average["system"] + average["io_wait"] + average["irq"] + average["soft_irq"]) / 100
    )
    assert value(text, "system_vcpu_count") == len(doc["system_data"]["vcpu_usage"]["usage_data"]) == 4
    assert value(text, "system_memory_total_bytes") == 8033951744
    assert value(text, "system_memory_used_bytes") == 7020883968
    assert value(text, "system_swap_total_bytes") == value(text, "system_swap_used_bytes") == 0
    assert {s["event_type"] for s in series(text, "hardware_ecc_events_total")} == {
        "mem_ecc_corrected",
        "mem_ecc_uncorrected",
        "sram_ecc_corrected",
        "sram_ecc_uncorrected",
    }
    assert not any("runtime_tag" in labels for shape in shapes(text).values() for labels in shape.label_sets)
    hw = series(text, "neuron_hardware_info")
    assert hw == [
        {
            "availability_zone": "us-east-2a",
            "instance_id": "i-0823d657f57057590",
            "instance_name": "",
            "instance_type": "inf1.xlarge",
            "region": "us-east-2",
            "subnet_id": "subnet-dd4589b6",
            "neuron_device_count": "1",
            "neuroncore_per_device_count": "4",
        }
    ]


def test_runtime_groups_of_a_real_report() -> None:
    doc = real(WITH_RUNTIME)
    report = doc["neuron_runtime_data"][0]["report"]
    text = render_docs(doc)
    tag = {"runtime_tag": "15439"}
    in_use = report["neuroncore_counters"]["neuroncores_in_use"]
    for core, counter in in_use.items():
        assert value(text, "neuroncore_utilization_ratio", neuroncore=core, **tag) == (
            counter["neuroncore_utilization"] / 100
        )
    assert len(series(text, "neuroncore_utilization_ratio")) == 4  # idle cores included, as AWS does
    for percentile, seconds in report["execution_stats"]["latency_stats"]["total_latency"].items():
        assert value(text, "execution_latency_seconds", percentile=percentile, **tag) == seconds
    assert value(text, "execution_status_total", status_type="completed", **tag) == 14
    assert value(text, "execution_errors_total", error_type="generic", **tag) == 0
    used = report["memory_used"]["neuron_runtime_used_bytes"]
    for location in ("host", "neuron_device"):
        assert (
            value(text, "neuron_runtime_memory_used_bytes", memory_location=location, **tag) == used[location]
        )
    per_core = used["usage_breakdown"]["neuroncore_memory_usage"]
    for category in MEMORY_CATEGORIES:
        family = f"neuroncore_memory_usage_{category}"
        assert {s["memory_location"] for s in series(text, family)} == {"None"}
        for core, categories in per_core.items():
            assert value(text, family, neuroncore=core, **tag) == categories[category]
    vcpu = report["neuron_runtime_vcpu_usage"]["vcpu_usage"]
    assert value(text, "neuron_runtime_vcpu_usage_ratio", usage_type="user", **tag) == vcpu["user"] / 100
    assert value(text, "neuron_runtime_vcpu_usage_ratio", usage_type="system", **tag) == vcpu["system"] / 100


def test_execution_status_accumulates_over_reports() -> None:
    lines = fixture_lines(WITH_RUNTIME)
    counts = [json.loads(line)["neuron_runtime_data"][0]["report"]["execution_stats"] for line in lines]
    completed = [c["execution_summary"]["completed"] for c in counts]
    for n in range(1, len(lines) + 1):
        text = render_aws(lines[:n])
        assert value(text, "execution_status_total", status_type="completed") == sum(completed[:n])
    assert sum(completed) == 2977


def test_usage_over_100_percent_is_capped() -> None:
    doc = copy.deepcopy(real(NO_RUNTIME))
    doc["system_data"]["vcpu_usage"]["average_usage"] = {
        "user": 70, "nice": 40, "system": 60, "idle": 0, "io_wait": 30, "irq": 20, "soft_irq": 10
    }  # fmt: skip
    text = render_docs(doc)
    assert value(text, "system_vcpu_usage_ratio", usage_type="user") == 1.0
    assert value(text, "system_vcpu_usage_ratio", usage_type="system") == 1.0


# --- where we depart from the script on purpose --------------------------------------------------


def test_counters_continue_when_the_runtime_list_empties() -> None:
    with_runtime, no_runtime = real(WITH_RUNTIME), real(NO_RUNTIME)
    ecc = copy.deepcopy(with_runtime)
    ecc["system_data"]["neuron_hw_counters"]["neuron_devices"][0]["mem_ecc_corrected"] = 3
    # The script clears every gauge and counter child on an empty runtime list: 0 ECC events, and
    # 14 completed executions after the runtime returns. Here both counters carry on.
    idle = render_docs(ecc, no_runtime)
    assert series(idle, "execution_status_total") == []  # the runtime is away, so are its series
    assert value(idle, "hardware_ecc_events_total", event_type="mem_ecc_corrected") == 3
    back = render_docs(ecc, no_runtime, with_runtime)
    assert value(back, "execution_status_total", status_type="completed") == 14 + 14
    assert value(back, "hardware_ecc_events_total", event_type="mem_ecc_corrected") == 3


def test_null_latency_leaves_the_series_out() -> None:
    lines = fixture_lines(WITH_RUNTIME)
    assert json.loads(lines[1])["neuron_runtime_data"][0]["report"]["execution_stats"]["latency_stats"] == {
        "total_latency": None,
        "device_latency": None,
    }
    assert len(series(render_aws(lines[:1]), "execution_latency_seconds")) == 7
    assert series(render_aws(lines[:2]), "execution_latency_seconds") == []  # the script kept the old values
    assert len(series(render_aws(lines[:3]), "execution_latency_seconds")) == 7


def test_runtimes_without_latency_have_no_latency_series() -> None:
    text = render_aws(fixture_lines("datadog_inf1.xlarge_2024-07.jsonl"))
    assert {s["runtime_tag"] for s in series(text, "execution_latency_seconds")} == {"32276", "32786"}
    assert {s["runtime_tag"] for s in series(text, "execution_status_total")} == {
        "31961",
        "32265",
        "32276",
        "32786",
    }


# --- labels --------------------------------------------------------------------------------------


def test_instance_labels_are_on_every_series() -> None:
    text = render_aws(fixture_lines("datadog_inf1.xlarge_2024-07.jsonl"))
    for (name, labels), _ in samples(text).items():
        assert {k for k, _ in labels} >= INSTANCE, name
        assert ("instance_id", "i-022af70542e30e040") in labels, name
    assert value(text, "neuron_hardware_info", neuron_device_memory_size="8589934592") == 1


def test_ultraserver_id_is_a_label_only_when_reported() -> None:
    doc = copy.deepcopy(real(WITH_RUNTIME))
    assert all("ultraserver_id" not in s for s in series(render_docs(doc), "instance_info"))
    doc["instance_info"]["ultraserver_id"] = "us-0123"
    text = render_docs(doc)
    for (name, labels), _ in samples(text).items():
        assert ("ultraserver_id", "us-0123") in labels, name


def test_unknown_ecc_events_and_memory_categories_stay_in_the_default_mode() -> None:
    doc = copy.deepcopy(real(WITH_RUNTIME))
    doc["system_data"]["neuron_hw_counters"]["neuron_devices"][0]["mem_ecc_repairable_uncorrected"] = 1
    doc["neuron_runtime_data"][0]["report"]["memory_used"]["neuron_runtime_used_bytes"]["usage_breakdown"][
        "neuroncore_memory_usage"
    ]["0"]["dma_rings"] = 4096
    text = render_docs(doc)
    assert len(series(text, "hardware_ecc_events_total")) == 4
    assert not any("dma_rings" in name for name in shapes(text))


# --- wiring: the same switches, the dashboard's queries ------------------------------------------


def test_collectors_are_switched_by_the_default_names() -> None:
    names = [c.name for c in AWS_COLLECTORS]
    assert len(set(names)) == len(names)
    # AWS's script has no pod attribution of its own, no price and no look at the runtimes' processes:
    # those exist in our names only.
    assert set(names) == {c.name for c in COLLECTORS} - {"neuron_k8s_info", "cost", "served_models"}
    specs = [spec.name for c in AWS_COLLECTORS for spec in c.specs]
    assert len(set(specs)) == len(specs)


def test_compat_flag_and_collector_switches_select_the_aws_collectors() -> None:
    args = build_parser().parse_args(
        ["--replay", str(FIXTURES / WITH_RUNTIME), "--compat", "aws", "--no-collector.execution_stats"]
    )
    collectors = make_collectors(settings_from_args(args))
    assert {type(c) for c in collectors} == set(AWS_COLLECTORS) - {
        c for c in AWS_COLLECTORS if c.name == "execution_stats"
    }


def query_parts(query: str) -> tuple[set[str], set[str]]:
    """The metric names and label names a PromQL query of the dashboard uses."""
    labels = {label.strip() for group in re.findall(r"by \(([^)]*)\)", query) for label in group.split(",")}
    labels.update(re.findall(r"\{(\w+)!?=", query))
    bare = re.sub(r"by \([^)]*\)|\{[^}]*\}|\[[^]]*\]", " ", query)
    # A name followed by "(" is a function or aggregation; every other name is a metric.
    metrics = {m.group(1) for m in re.finditer(r"([a-zA-Z_]\w*)(\s*\()?", bare) if not m.group(2)}
    return metrics, labels


def test_every_grafana_query_finds_its_metrics_and_labels() -> None:
    text = render_aws(fixture_lines("datadog_inf1.xlarge_2024-07.jsonl"))
    labels_by_metric: dict[str, set[str]] = {}
    for (name, labels), _ in samples(text).items():
        labels_by_metric.setdefault(name, set()).update(k for k, _ in labels)
    for query in GRAFANA_QUERIES:
        metrics, used_labels = query_parts(query)
        assert metrics, query
        for metric in metrics:
            assert metric in labels_by_metric, f"{query}: {metric} not rendered"
            assert used_labels <= labels_by_metric[metric], f"{query}: {metric} lacks {used_labels}"


def test_the_grafana_query_list_is_the_dashboards() -> None:
    dashboard = SHARED / "upstream" / "aws-neuron-sdk" / "neuron-monitor-grafana.json"
    if not dashboard.is_file():
        pytest.skip("../shared/neuron-monitor is not checked out next to the repository")
    exprs: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.add(node["expr"].strip())
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(json.loads(dashboard.read_text()))
    assert exprs == set(GRAFANA_QUERIES)
