"""Lifetimes, counters and cardinality: report dicts in, State and exposition samples out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors import COLLECTORS, Options
from exporter.exposition import Exposition, NeuronCollector, Store
from exporter.health import Health
from exporter.ingest import Ingestor
from exporter.model.state import State
from tests.reports import core_counters, execution, memory, report, runtime


class Pipeline:
    """The real ingest and render path, in process."""

    def __init__(self, options: Options | None = None) -> None:
        self.store = Store(State())
        self.health = Health(stale_after=None, replay=True)
        options = options or Options()
        self.ingestor = Ingestor(
            self.store, self.health, model_detail=options.per_model, vcpu_detail=options.per_vcpu
        )
        collectors = [cls(options) for cls in COLLECTORS]
        self.exposition = Exposition(
            NeuronCollector(self.store, self.health, collectors), process_metrics=False
        )

    def feed(self, doc: Any) -> None:
        self.ingestor.on_line(orjson.dumps(doc) if not isinstance(doc, bytes) else doc)

    def samples(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        text = self.exposition.render(None)[0].decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    out[tuple(sorted(sample.labels.items()))] = sample.value
        return out


def labels(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


def test_runtime_that_leaves_disappears_with_all_its_series() -> None:
    p = Pipeline()
    p.feed(
        report(
            runtime("1", neuroncore_counters=core_counters({0: 50}), execution_stats=execution(5)),
            runtime("2", neuroncore_counters=core_counters({1: 20})),
        )
    )
    assert labels(pid="2", runtime_tag="2") in p.samples("neuron_runtime_info")
    p.feed(report(runtime("1", neuroncore_counters=core_counters({0: 50}))))
    text = p.exposition.render(None)[0].decode()
    assert 'runtime_tag="2"' not in text
    assert p.samples("neuron_neuroncore_utilization_ratio")[labels(neuroncore="1")] == 0


def test_counters_accumulate_periods_and_never_go_backwards() -> None:
    p = Pipeline()
    for completed in (3, 4, 0):
        p.feed(report(runtime("7", execution_stats=execution(completed, generic=1))))
    key = labels(runtime_tag="7", status="completed")
    assert p.samples("neuron_execution_status_total")[key] == 7
    # The runtime leaves, then comes back under the same tag (a restart): totals resume.
    p.feed(report())
    assert key not in p.samples("neuron_execution_status_total")
    p.feed(report(runtime("7", execution_stats=execution(2))))
    assert p.samples("neuron_execution_status_total")[key] == 9
    assert p.samples("neuron_execution_errors_total")[labels(error_type="generic", runtime_tag="7")] == 3


def test_repeated_sample_is_not_counted_twice() -> None:
    p = Pipeline()
    same = report(runtime("7", execution_stats=execution(5, period=1.0123)))
    p.feed(same)
    p.feed(same)
    assert p.samples("neuron_execution_status_total")[labels(runtime_tag="7", status="completed")] == 5


def test_only_used_cores_are_attributed_to_a_runtime() -> None:
    """Every runtime lists every core (as on a real trn1.32xlarge); only used ones get its label."""
    p = Pipeline()
    all_cores_zero = {c: 0 for c in range(8)}
    p.feed(
        report(
            runtime(
                "1",
                neuroncore_counters=core_counters({**all_cores_zero, 0: 40}),
                memory_used=memory({**all_cores_zero, 0: 100, 1: 100}),
            ),
            runtime(
                "2",
                neuroncore_counters=core_counters(all_cores_zero),
                memory_used=memory({**all_cores_zero, 2: 5}),
            ),
            devices=4,
            cores_per_device=2,
        )
    )
    util = p.samples("neuron_neuroncore_utilization_ratio")
    assert util == {
        labels(neuroncore="0", runtime_tag="1"): 0.4,
        labels(neuroncore="1", runtime_tag="1"): 0,
        labels(neuroncore="2", runtime_tag="2"): 0,
        **{labels(neuroncore=str(c)): 0 for c in range(3, 8)},
    }
    per_core_memory = p.samples("neuron_neuroncore_memory_used_bytes")
    assert {dict(k)["neuroncore"] for k in per_core_memory} == {"0", "1", "2"}


def test_idle_node_reports_zero_for_every_core() -> None:
    p = Pipeline()
    p.feed(report(devices=2, cores_per_device=2))
    assert p.samples("neuron_neuroncore_utilization_ratio") == {
        labels(neuroncore=str(c)): 0 for c in range(4)
    }


def test_bad_group_costs_only_that_group() -> None:
    p = Pipeline()
    bad = execution(5)
    bad["execution_summary"]["completed"] = -3
    p.feed(
        report(
            runtime(
                "1",
                neuroncore_counters=core_counters({0: 10}),
                execution_stats=bad,
                memory_used={"error": "cannot read", "period": 1.0},
            )
        )
    )
    assert p.samples("neuron_neuroncore_utilization_ratio")[labels(neuroncore="0", runtime_tag="1")] == 0.1
    assert p.samples("neuron_execution_status_total") == {}
    assert p.health.invalid_groups == {"execution_stats": 1}
    assert p.health.monitor_errors == {"memory_used": 1}
    assert p.health.reports == 1


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "not_json"),
        (b"[1, 2]", "schema"),
        (b'{"a": NaN}', "not_json"),
        (b"[" * 5000, "not_json"),
    ],
)
def test_bad_lines_are_counted_by_reason(line: bytes, reason: str) -> None:
    p = Pipeline()
    p.feed(line)
    p.feed(report())
    assert p.health.bad_lines == {reason: 1}
    assert p.health.reports == 1


def test_null_latency_is_not_exported_as_stale() -> None:
    p = Pipeline()
    p.feed(report(runtime("1", execution_stats=execution(5, latency=0.02))))
    assert p.samples("neuron_execution_latency_seconds")
    p.feed(report(runtime("1", execution_stats=execution(0, latency=None))))
    assert p.samples("neuron_execution_latency_seconds") == {}


def test_group_absent_from_a_line_keeps_its_last_value() -> None:
    p = Pipeline()
    p.feed(report(runtime("1", neuroncore_counters=core_counters({0: 10}), memory_used=memory({0: 1}))))
    p.feed(report(runtime("1", neuroncore_counters=core_counters({0: 30}))))
    assert p.samples("neuron_runtime_memory_used_bytes")[labels(location="host", runtime_tag="1")] == 1000


def test_duplicate_runtime_is_counted_and_first_kept() -> None:
    p = Pipeline()
    p.feed(
        report(
            runtime("1", neuroncore_counters=core_counters({0: 10})),
            runtime("1", neuroncore_counters=core_counters({0: 90})),
        )
    )
    assert p.samples("neuron_neuroncore_utilization_ratio")[labels(neuroncore="0", runtime_tag="1")] == 0.1
    assert p.health.invalid_groups == {"neuron_runtime_data": 1}


def test_ecc_events_accumulate_per_device() -> None:
    p = Pipeline()
    for corrected in (1, 2):
        hw = {
            "period": 1.0 + corrected,
            "neuron_devices": [
                {
                    "neuron_device_index": 0,
                    "mem_ecc_corrected": corrected,
                    "mem_ecc_repairable_uncorrected": 0,
                }
            ],
        }
        p.feed(report(neuron_hw_counters=hw))
    ecc = p.samples("neuron_device_ecc_events_total")
    assert ecc[labels(event_type="mem_ecc_corrected", neuron_device="0")] == 3
    assert ecc[labels(event_type="mem_ecc_repairable_uncorrected", neuron_device="0")] == 0


def test_each_kind_of_problem_is_logged_once_and_counted_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = Pipeline()
    erroring = report(runtime("1", memory_used={"error": "driver busy", "period": 1.0}))
    for _ in range(3):
        p.feed(erroring)
        p.feed(b"garbage")
    assert p.health.monitor_errors == {"memory_used": 3}
    assert p.health.bad_lines == {"not_json": 3}
    messages = [r.getMessage() for r in caplog.records]
    assert sum("driver busy" in m for m in messages) == 1
    assert sum("not JSON" in m for m in messages) == 1


def test_runtime_entry_error_keeps_runtime_and_counters_but_drops_its_gauges() -> None:
    p = Pipeline()
    p.feed(report(runtime("1", execution_stats=execution(4), neuroncore_counters=core_counters({0: 10}))))
    failing = runtime("1")
    failing["error"] = "unreachable"
    p.feed(report(failing))
    assert p.samples("neuron_execution_status_total")[labels(runtime_tag="1", status="completed")] == 4
    assert labels(neuroncore="0", runtime_tag="1") not in p.samples("neuron_neuroncore_utilization_ratio")
    assert p.health.monitor_errors == {"neuron_runtime_data": 1}


def test_unknown_fields_and_groups_are_ignored() -> None:
    p = Pipeline()
    doc = report(runtime("1", neuroncore_counters=core_counters({0: 10}), future_group={"x": 1}))
    doc["future_section"] = {"a": [1, 2]}
    doc["neuron_runtime_data"][0]["report"]["neuroncore_counters"]["new_field"] = "x"
    p.feed(doc)
    assert p.health.invalid_groups == {} and p.health.reports == 1
    assert p.samples("neuron_neuroncore_utilization_ratio")[labels(neuroncore="0", runtime_tag="1")] == 0.1


def test_models_sharing_a_model_id_are_rendered_once() -> None:
    """Neuron 1.x lists models without a model_id (the 2020-09 docs sample: four, same name and uuid) and
    a corrupt report may repeat an entry; per-model series are told apart by model_id, and identical
    series would make Prometheus drop samples. The model count still counts every entry."""
    p = Pipeline(Options(per_model=True))
    mem = memory({0: 5})
    placed = {"sg_00": {"memory_used_bytes": {"host": 1}, "neuroncore_index": 0}}
    mem["loaded_models"] = [
        {"name": "a", "uuid": "u1"},
        {"name": "b", "uuid": "u2"},
        {"name": "c", "uuid": "u3", "model_id": 7, "subgraphs": placed},
        {"name": "c", "uuid": "u3", "model_id": 7, "subgraphs": placed},
    ]
    p.feed(report(runtime("1", memory_used=mem)))
    text = p.exposition.render(None)[0].decode()
    series = [line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("neuron_model_")]
    assert len(series) == len(set(series)) == 5  # info and running for "c" and "a", c's memory
    assert {dict(k)["model_name"] for k in p.samples("neuron_model_info")} == {"a", "c"}
    assert p.samples("neuron_runtime_loaded_models") == {labels(runtime_tag="1"): 4}


def test_a_container_listed_twice_is_one_series() -> None:
    p = Pipeline()
    doc = report()
    pod = {"pod_name": "p0", "namespace": "n0", "container_name": ["c0", "c1", "c0"]}
    doc["neuron_k8s_info"] = {"neuroncores_k8s_info": {"0": pod}, "neurondevices_k8s_info": {"0": pod}}
    p.feed(doc)
    text = p.exposition.render(None)[0].decode()
    assert text.count("neuron_neuroncore_pod_info{") == 2
    assert text.count("neuron_device_pod_info{") == 2


def test_repeated_vcpu_sample_is_not_counted_twice_in_context_switches() -> None:
    p = Pipeline()
    vcpu = {"period": 1.0071, "context_switch_count": 120, "error": ""}
    p.feed(report(vcpu_usage=vcpu))
    p.feed(report(vcpu_usage=vcpu))
    assert p.samples("neuron_system_context_switches_total") == {(): 120}
    p.feed(report(vcpu_usage={**vcpu, "period": 1.0002, "context_switch_count": 30}))
    assert p.samples("neuron_system_context_switches_total") == {(): 150}


def test_past_the_bound_the_oldest_departed_runtime_is_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runtimes a, b, c leave in that order with room for two: a is forgotten, c resumes its totals."""
    monkeypatch.setattr("exporter.model.state.RETIRED_RUNTIMES_KEPT", 2)
    p = Pipeline()
    for period, tag in enumerate("abc"):
        p.feed(report(runtime(tag, execution_stats=execution(10, period=1.0 + period))))
        p.feed(report())
    p.feed(report(runtime("a", execution_stats=execution(1, period=5.0))))
    p.feed(report(runtime("c", execution_stats=execution(1, period=6.0))))
    completed = p.samples("neuron_execution_status_total")
    assert completed[labels(runtime_tag="c", status="completed")] == 11
    p.feed(report(runtime("a", execution_stats=execution(1, period=7.0))))
    assert p.samples("neuron_execution_status_total")[labels(runtime_tag="a", status="completed")] == 2


def test_a_core_given_up_leaves_the_runtime_on_the_next_report() -> None:
    """Memory maps say which cores a runtime holds: core 1 moves from runtime 1 to runtime 2."""
    p = Pipeline()
    p.feed(
        report(
            runtime("1", neuroncore_counters=core_counters({0: 30, 1: 30}), memory_used=memory({0: 9, 1: 9}))
        )
    )
    p.feed(
        report(
            runtime("1", neuroncore_counters=core_counters({0: 30, 1: 0}), memory_used=memory({0: 9, 1: 0})),
            runtime("2", neuroncore_counters=core_counters({0: 0, 1: 70}), memory_used=memory({0: 0, 1: 9})),
        )
    )
    util = p.samples("neuron_neuroncore_utilization_ratio")
    assert {k: v for k, v in util.items() if dict(k)["neuroncore"] in ("0", "1")} == {
        labels(neuroncore="0", runtime_tag="1"): 0.3,
        labels(neuroncore="1", runtime_tag="2"): 0.7,
    }


def _process(pid: int, core: int) -> dict[str, Any]:
    """One worker of tag "job" with model 10001 (every process numbers its own from 10001) on `core`."""
    mem = memory({core: 9})
    subgraph = {
        "memory_used_bytes": {
            "host": 1,
            "neuron_device": 9,
            "usage_breakdown": {"neuron_device": {"tensors": 9}},
        }
    }
    mem["loaded_models"] = [
        {
            "name": f"/tmp/model-{pid}.neff",
            "uuid": f"u{pid}",
            "model_id": 10001,
            "is_running": True,
            "subgraphs": {"sg_00": {**subgraph, "neuroncore_index": core, "neuron_device_index": 0}},
        }
    ]
    entry = runtime("job", neuroncore_counters=core_counters({core: 50}), memory_used=mem)
    return {**entry, "pid": pid}


@pytest.mark.parametrize("per_model", [False, True])
def test_every_model_of_every_process_under_one_tag_shows_and_counts_agree(per_model: bool) -> None:
    """Four workers of one tag, each with its model 10001 on its own core (SCHEMA.md §14)."""
    p = Pipeline(Options(per_model=per_model))
    p.feed(report(*(_process(100 + core, core) for core in range(4)), cores_per_device=4))
    assert p.samples("neuron_runtime_loaded_models") == {labels(runtime_tag="job"): 4}
    info = p.samples("neuron_model_info")
    if not per_model:
        assert info == {} and p.samples("neuron_model_memory_used_bytes") == {}
        return
    assert sorted((dict(k)["pid"], dict(k)["model_id"]) for k in info) == [
        (str(pid), "10001") for pid in range(100, 104)
    ]
    assert len(info) == sum(p.samples("neuron_runtime_loaded_models").values())
    placed = p.samples("neuron_model_memory_used_bytes")
    assert {
        (dict(k)["pid"], dict(k)["neuroncore"]) for k in placed if dict(k)["location"] == "neuron_device"
    } == {(str(100 + core), str(core)) for core in range(4)}
    breakdown = p.samples("neuron_model_memory_breakdown_bytes")
    assert {(dict(k)["pid"], dict(k)["neuroncore"]) for k in breakdown} == {
        (str(100 + c), str(c)) for c in range(4)
    }
    text = p.exposition.render(None)[0].decode()
    series = [line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("neuron_model_")]
    assert len(series) == len(set(series))


def test_a_too_long_line_repeated_100_times_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Each has another length, yet it is one kind of problem: one log line, a hundred counts."""
    p = Pipeline()
    for length in range(100):
        p.ingestor.on_oversized_line(70_000_000 + length)
        p.feed(b"{not json at column %d" % length)
    assert p.health.bad_lines == {"too_long": 100, "not_json": 100}
    messages = [r.getMessage() for r in caplog.records]
    assert sum("longer than the bound" in m for m in messages) == 1
    assert sum("not JSON" in m for m in messages) == 1
