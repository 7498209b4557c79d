"""What real captures showed: models on the right NeuronCores, gaps instead of false zeros, every
process of a shared tag exported, k8s errors handled like any group, and Neuron 1.x ECC read."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from exporter.collectors import Options
from tests.daemon import Daemon, sample_value, wait_for
from tests.fakes import FRACTIONAL, simulator_monitor, write_config
from tests.reports import core_counters, execution, memory, report, runtime
from tests.test_state import Pipeline, labels

FIXTURES = Path(__file__).parent / "fixtures" / "reports"


def docs_memory_used() -> dict[str, Any]:
    """The current docs' memory_used example as a report: a model at device 12, neuroncore_index 0."""
    doc: dict[str, Any] = orjson.loads((FIXTURES / "docs-current__09-memory_used.jsonl").read_bytes())
    return doc


def test_docs_model_on_device_12_sits_on_global_core_24_of_a_trn1_32xlarge() -> None:
    """SCHEMA.md §5.6: `neuroncore_index` counts within its device; with two cores per device
    (trn1.32xlarge), device 12's core 0 is node-wide core 24, not core 0."""
    doc = docs_memory_used()
    doc["neuron_hardware_info"] = {"neuron_device_count": 16, "neuroncore_per_device_count": 2, "error": ""}
    p = Pipeline(Options(per_model=True))
    p.feed(doc)
    models = p.samples("neuron_model_memory_used_bytes")
    assert {dict(key)["neuroncore"] for key in models} == {"24"}
    assert {dict(key)["neuron_device"] for key in models} == {"12"}
    runtime_state = p.store.current.runtimes["my_app_1"]
    assert runtime_state.cores == {0, 1, 24}  # memory on 0 and 1 (the elided example), the model on 24


def test_model_placement_makes_no_ownership_until_cores_per_device_are_known() -> None:
    placed = memory({})
    del placed["neuron_runtime_used_bytes"]["usage_breakdown"]["neuroncore_memory_usage"]
    placed["loaded_models"] = [{"subgraphs": {"sg_00": {"neuron_device_index": 3, "neuroncore_index": 1}}}]
    p = Pipeline(Options(per_model=True))
    doc = report(runtime("5", memory_used=placed))
    del doc["neuron_hardware_info"]
    p.feed(doc)
    assert p.store.current.runtimes["5"].cores == frozenset()
    p.feed(report(runtime("5", memory_used=placed), devices=4, cores_per_device=2))
    assert p.store.current.runtimes["5"].cores == {7}
    # Later reports without hardware info keep using what the node said before.
    later = report(runtime("5", memory_used=placed))
    del later["neuron_hardware_info"]
    p.feed(later)
    assert p.store.current.runtimes["5"].cores == {7}


def test_every_runtime_of_a_multi_device_node_claims_only_its_own_cores() -> None:
    """The real trn1n.32xlarge shape: 32 single-core runtimes, every one listing all 32 cores (zeros
    where it is idle) and its models at (device d, index i). One utilization series per core."""
    runtimes = []
    for core in range(32):
        counters = core_counters({c: (40.0 if c == core else 0) for c in range(32)})
        mem = memory({c: (5 if c == core else 0) for c in range(32)})
        mem["loaded_models"] = [
            {
                "is_running": True,
                "subgraphs": {"sg_00": {"neuron_device_index": core // 2, "neuroncore_index": core % 2}},
            }
        ]
        runtimes.append(runtime(str(1000 + core), neuroncore_counters=counters, memory_used=mem))
    p = Pipeline()
    p.feed(report(*runtimes, devices=16, cores_per_device=2))
    utilization = p.samples("neuron_neuroncore_utilization_ratio")
    assert len(utilization) == 32
    assert set(utilization) == {labels(neuroncore=str(c), runtime_tag=str(1000 + c)) for c in range(32)}
    assert p.samples("neuron_runtime_running_models") == {
        labels(runtime_tag=str(1000 + c)): 1 for c in range(32)
    }


# --- missing data is a gap, and counted ------------------------------------------------------------


def owner_with_memory(**groups: Any) -> dict[str, Any]:
    return runtime("my_app_1", memory_used=memory({0: 21_000_000, 1: 0}), **groups)


def assert_gap_on_core_0(p: Pipeline) -> None:
    utilization = p.samples("neuron_neuroncore_utilization_ratio")
    assert labels(neuroncore="0", runtime_tag="my_app_1") not in utilization
    assert labels(neuroncore="0") not in utilization  # not shown as an unowned idle core either
    assert utilization[labels(neuroncore="1")] == 0  # the core nobody uses is still a flat 0
    assert p.samples("neuron_exporter_unmeasured_neuroncores") == {(): 1}
    memory_series = p.samples("neuron_neuroncore_memory_used_bytes")
    assert memory_series[labels(category="tensors", neuroncore="0", runtime_tag="my_app_1")] == 21_000_000


def test_runtime_without_counters_keeps_its_cores_with_a_gap() -> None:
    p = Pipeline()
    p.feed(report(owner_with_memory(), cores_per_device=2))
    assert_gap_on_core_0(p)


def test_erroring_counters_leave_a_gap_not_a_zero() -> None:
    counters = core_counters({0: 80.0, 1: 0})
    p = Pipeline()
    p.feed(report(owner_with_memory(neuroncore_counters=counters), cores_per_device=2))
    assert (
        p.samples("neuron_neuroncore_utilization_ratio")[labels(neuroncore="0", runtime_tag="my_app_1")]
        == 0.8
    )
    assert p.samples("neuron_exporter_unmeasured_neuroncores") == {(): 0}
    failing = {**counters, "error": "nrt: failed to read counters"}
    p.feed(report(owner_with_memory(neuroncore_counters=failing), cores_per_device=2))
    assert_gap_on_core_0(p)
    assert p.samples("neuron_exporter_monitor_errors_total")[labels(group="neuroncore_counters")] == 1


def test_invalid_counters_leave_a_gap_not_a_zero() -> None:
    counters = core_counters({0: 80.0, 1: 0})
    counters["neuroncores_in_use"]["0"]["neuroncore_utilization"] = "busy"
    p = Pipeline()
    p.feed(report(owner_with_memory(neuroncore_counters=counters), cores_per_device=2))
    assert_gap_on_core_0(p)
    assert p.samples("neuron_exporter_invalid_groups_total")[labels(group="neuroncore_counters")] == 1


def test_a_whole_runtime_entry_in_error_keeps_its_cores_with_a_gap() -> None:
    p = Pipeline()
    good = owner_with_memory(neuroncore_counters=core_counters({0: 80.0, 1: 0}))
    p.feed(report(good, cores_per_device=2))
    broken = {**copy.deepcopy(good), "error": "lost connection to the runtime"}
    p.feed(report(broken, cores_per_device=2))
    utilization = p.samples("neuron_neuroncore_utilization_ratio")
    assert labels(neuroncore="0", runtime_tag="my_app_1") not in utilization
    assert labels(neuroncore="0") not in utilization
    assert p.samples("neuron_exporter_unmeasured_neuroncores") == {(): 1}
    assert p.samples("neuron_exporter_monitor_errors_total")[labels(group="neuron_runtime_data")] == 1


# --- processes that share a tag ---------------------------------------------------------------------


def worker(pid: int, core: int, completed: int, period: float = 1.0, latency: float = 0.01) -> dict[str, Any]:
    entry = runtime(
        "trainer",
        neuroncore_counters=core_counters({core: 50.0}),
        execution_stats=execution(completed, period=period, latency=latency),
        memory_used=memory({core: 100}),
    )
    entry["pid"] = pid
    return entry


def test_workers_sharing_a_tag_are_all_exported_under_the_tag() -> None:
    p = Pipeline()
    p.feed(report(worker(11, 0, 5, latency=0.01), worker(12, 1, 7, latency=0.03), worker(13, 2, 1)))
    assert p.samples("neuron_runtime_info") == {
        labels(pid="11", runtime_tag="trainer"): 1,
        labels(pid="12", runtime_tag="trainer"): 1,
        labels(pid="13", runtime_tag="trainer"): 1,
    }
    utilization = p.samples("neuron_neuroncore_utilization_ratio")
    for core in (0, 1, 2):
        assert utilization[labels(neuroncore=str(core), runtime_tag="trainer")] == 0.5
    completed = labels(runtime_tag="trainer", status="completed")
    assert p.samples("neuron_execution_status_total")[completed] == 13
    assert (
        p.samples("neuron_runtime_memory_used_bytes")[labels(location="host", runtime_tag="trainer")] == 3000
    )
    # The slowest worker's percentile: an upper bound of the tag's.
    assert (
        p.samples("neuron_execution_latency_seconds")[labels(percentile="p99", runtime_tag="trainer")] == 0.03
    )
    assert p.samples("neuron_exporter_invalid_groups_total").get(labels(group="neuron_runtime_data"), 0) == 0

    # Next period: worker 12 repeats its sample (not counted again), 13 has left, 11 reports anew.
    p.feed(report(worker(11, 0, 2, period=1.01), worker(12, 1, 7, latency=0.03)))
    assert p.samples("neuron_execution_status_total")[completed] == 15
    assert labels(neuroncore="2", runtime_tag="trainer") not in p.samples(
        "neuron_neuroncore_utilization_ratio"
    )
    assert labels(pid="13", runtime_tag="trainer") not in p.samples("neuron_runtime_info")


def test_the_same_process_listed_twice_is_still_a_duplicate() -> None:
    p = Pipeline()
    p.feed(report(worker(11, 0, 5), worker(11, 0, 5)))
    assert p.samples("neuron_execution_status_total")[labels(runtime_tag="trainer", status="completed")] == 5
    assert p.samples("neuron_exporter_invalid_groups_total")[labels(group="neuron_runtime_data")] == 1


# --- neuron_k8s_info and Neuron 1.x ECC --------------------------------------------------------------


def k8s(error: str = "") -> dict[str, Any]:
    pod = {"pod_name": "p0", "namespace": "ml", "container_name": ["c0"]}
    return {"period": 15.0, "neuroncores_k8s_info": {"0": pod}, "neurondevices_k8s_info": {}, "error": error}


def test_an_erroring_k8s_section_forgets_the_pod_mapping() -> None:
    p = Pipeline()
    p.feed({**report(), "neuron_k8s_info": k8s()})
    assert p.samples("neuron_neuroncore_pod_info")
    p.feed({**report(), "neuron_k8s_info": k8s(error="kubelet: connection refused")})
    assert p.samples("neuron_neuroncore_pod_info") == {}
    assert p.samples("neuron_exporter_monitor_errors_total")[labels(group="neuron_k8s_info")] == 1
    p.feed({**report(), "neuron_k8s_info": k8s()})
    p.feed({**report(), "neuron_k8s_info": {"neuroncores_k8s_info": ["not", "a", "map"]}})
    assert p.samples("neuron_neuroncore_pod_info") == {}
    # Absent (not due in this line) keeps the last good mapping, as for every other group.
    p.feed({**report(), "neuron_k8s_info": k8s()})
    p.feed(report())
    assert p.samples("neuron_neuroncore_pod_info")


def test_neuron_1x_runtime_level_hw_counters_become_ecc_counters() -> None:
    """SCHEMA.md §5.8: before 1.16 ECC came per runtime as `hw_counters` (2020-09: `device_index`)."""
    hw = {
        "period": 1.03,
        "neuron_devices": [{"device_index": 0, "mem_ecc_corrected": 2, "sram_ecc_uncorrected": 0}],
        "error": "",
    }
    doc = {"neuron_runtime_data": [runtime("1", hw_counters=hw)]}
    p = Pipeline()
    p.feed(doc)
    p.feed(doc)  # a repeated sample is not counted twice
    hw2 = copy.deepcopy(hw)
    hw2["period"] = 1.01
    p.feed({"neuron_runtime_data": [runtime("1", hw_counters=hw2)]})
    ecc = p.samples("neuron_device_ecc_events_total")
    assert ecc[labels(event_type="mem_ecc_corrected", neuron_device="0")] == 4
    assert ecc[labels(event_type="sram_ecc_uncorrected", neuron_device="0")] == 0


def test_effective_flops_is_exported_beside_flops() -> None:
    counters = core_counters({0: 40.0})
    counters["neuroncores_in_use"]["0"].update({"flops": 3.0e13, "effective_flops": 2.5e13})
    p = Pipeline()
    p.feed(report(runtime("9", neuroncore_counters=counters)))
    assert p.samples("neuron_neuroncore_effective_flops") == {labels(neuroncore="0", runtime_tag="9"): 2.5e13}
    assert p.samples("neuron_neuroncore_flops") == {labels(neuroncore="0", runtime_tag="9"): 3.0e13}


# --- the real daemon, with the simulator's switches --------------------------------------------------


def test_daemon_with_erroring_counters_and_shared_tags(tmp_path: Path) -> None:
    """The simulator reproduces the real capture's errors and shared tags; the daemon keeps every
    process, leaves the utilization out, and counts what it could not read."""
    monitor = simulator_monitor(
        tmp_path,
        "--shape",
        "trn1.32xlarge",
        "--runtimes",
        "4",
        "--shared-tag",
        "job",
        "--group-error",
        "neuroncore_counters",
        "--group-error",
        "neuron_runtime_vcpu_usage",
    )
    config = write_config(tmp_path, period="0.2s")
    with Daemon(tmp_path, "--config", str(config), FRACTIONAL, "--neuron-monitor-path", str(monitor)) as d:

        def two_reports() -> str | None:
            text = d.metrics()
            return text if (sample_value(text, "neuron_exporter_reports_total") or 0) >= 2 else None

        text = wait_for(two_reports, 30, "two reports")
        info = [line for line in text.splitlines() if line.startswith("neuron_runtime_info{")]
        assert len(info) == 4 and all('runtime_tag="job"' in line for line in info)
        assert not any(line.startswith("neuron_neuroncore_utilization_ratio{") for line in text.splitlines())
        assert sample_value(text, "neuron_exporter_unmeasured_neuroncores") == 32
        assert (
            sample_value(text, "neuron_exporter_monitor_errors_total", group="neuroncore_counters") or 0
        ) >= 8
        assert (
            sample_value(text, "neuron_exporter_monitor_errors_total", group="neuron_runtime_vcpu_usage") or 0
        ) >= 8
        assert sample_value(text, "neuron_runtime_memory_used_bytes", location="host", runtime_tag="job")
        assert (
            sample_value(text, "neuron_execution_status_total", runtime_tag="job", status="completed")
            is not None
        )
