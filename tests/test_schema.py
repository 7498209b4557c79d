"""The wire models: an explicit null member reads as an absent one and costs nothing else."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from exporter.collectors import Options
from tests.reports import core_counters, execution, memory, report, runtime
from tests.test_state import Pipeline


def full_report() -> dict[str, Any]:
    """One runtime with every runtime group, every system group, and k8s info, all non-empty."""
    mem = memory({0: 100, 1: 50})
    mem["loaded_models"] = [
        {
            "name": "m",
            "uuid": "u",
            "model_id": 10001,
            "is_running": True,
            "subgraphs": {"sg_00": {"neuroncore_index": 0, "neuron_device_index": 0}},
        }
    ]
    doc = report(
        runtime(
            "7",
            neuroncore_counters=core_counters({0: 40, 1: 20}),
            execution_stats=execution(5, generic=1),
            memory_used=mem,
            neuron_runtime_vcpu_usage={"period": 1.0, "vcpu_usage": {"user": 5.0, "system": 1.0}},
        ),
        vcpu_usage={
            "period": 1.0,
            "average_usage": {"user": 10.0, "system": 2.0, "idle": 88.0},
            "usage_data": {"0": {"user": 10.0, "idle": 90.0}},
            "context_switch_count": 120,
        },
        memory_info={
            "period": 1.0,
            "memory_total_bytes": 1000,
            "memory_used_bytes": 500,
            "swap_total_bytes": 0,
        },
        neuron_hw_counters={
            "period": 1.0,
            "neuron_devices": [{"neuron_device_index": 0, "mem_ecc_corrected": 1}],
        },
    )
    ref = {"pod_name": "p", "namespace": "n", "container_name": ["c"]}
    doc["neuron_k8s_info"] = {
        "period": 1.0,
        "neuroncores_k8s_info": {"0": ref},
        "neurondevices_k8s_info": {"0": ref},
    }
    return doc


RUNTIME = ("neuron_runtime_data", 0, "report")
NULLED = [
    # (path to the member made null, a series of the same group that must still be there)
    ((*RUNTIME, "execution_stats", "error_summary"), "neuron_execution_status_total"),
    ((*RUNTIME, "execution_stats", "execution_summary"), "neuron_execution_errors_total"),
    ((*RUNTIME, "execution_stats", "latency_stats"), "neuron_execution_status_total"),
    (
        (*RUNTIME, "execution_stats", "latency_stats", "total_latency", "p50"),
        "neuron_execution_latency_seconds",
    ),
    ((*RUNTIME, "execution_stats", "error"), "neuron_execution_status_total"),
    ((*RUNTIME, "execution_stats", "period"), "neuron_execution_status_total"),
    ((*RUNTIME, "memory_used", "neuron_runtime_used_bytes"), "neuron_runtime_loaded_models"),
    (
        (*RUNTIME, "memory_used", "neuron_runtime_used_bytes", "usage_breakdown"),
        "neuron_runtime_memory_used_bytes",
    ),
    (
        (
            *RUNTIME,
            "memory_used",
            "neuron_runtime_used_bytes",
            "usage_breakdown",
            "neuroncore_memory_usage",
            "1",
        ),
        "neuron_neuroncore_memory_used_bytes",
    ),
    ((*RUNTIME, "memory_used", "loaded_models", 0, "subgraphs"), "neuron_model_info"),
    ((*RUNTIME, "memory_used", "loaded_models", 0, "name"), "neuron_model_info"),
    ((*RUNTIME, "neuroncore_counters", "neuroncores_in_use", "1"), "neuron_neuroncore_utilization_ratio"),
    ((*RUNTIME, "neuron_runtime_vcpu_usage", "vcpu_usage"), "neuron_execution_status_total"),
    (("system_data", "vcpu_usage", "average_usage"), "neuron_system_context_switches_total"),
    (("system_data", "vcpu_usage", "usage_data"), "neuron_system_vcpu_average_usage_ratio"),
    (("system_data", "memory_info", "swap_total_bytes"), "neuron_system_memory_total_bytes"),
    (("system_data", "neuron_hw_counters", "neuron_devices", 0), "neuron_devices"),
    (("neuron_k8s_info", "neurondevices_k8s_info"), "neuron_neuroncore_pod_info"),
    (("neuron_k8s_info", "neuroncores_k8s_info", "0", "container_name"), "neuron_neuroncore_pod_info"),
]


def set_null(doc: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    target: Any = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = None
    return out


@pytest.mark.parametrize(
    ("path", "kept"), NULLED, ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else v
)
def test_a_null_member_costs_only_itself(path: tuple[str | int, ...], kept: str) -> None:
    p = Pipeline(Options(per_model=True, per_vcpu=True))
    p.feed(set_null(full_report(), path))
    assert p.health.invalid_groups == {} and p.health.bad_lines == {}
    assert p.samples(kept), f"{kept} lost with {'.'.join(map(str, path))} null"


def test_every_series_of_the_full_report_is_there_to_lose() -> None:
    """The cases above would pass on nothing: the full report renders each series they keep."""
    p = Pipeline(Options(per_model=True, per_vcpu=True))
    p.feed(full_report())
    assert p.health.invalid_groups == {}
    for _, kept in NULLED:
        assert p.samples(kept), kept


def test_a_null_group_or_section_is_an_absent_one() -> None:
    p = Pipeline()
    doc = full_report()
    doc["neuron_runtime_data"][0]["report"]["memory_used"] = None
    doc["system_data"]["memory_info"] = None
    p.feed(doc)
    assert p.health.invalid_groups == {}
    assert p.samples("neuron_execution_status_total") and not p.samples("neuron_system_memory_total_bytes")


def test_no_loaded_models_list_means_no_model_count_not_zero() -> None:
    p = Pipeline()
    doc = full_report()
    del doc["neuron_runtime_data"][0]["report"]["memory_used"]["loaded_models"]
    p.feed(doc)
    assert p.samples("neuron_runtime_memory_used_bytes")
    assert p.samples("neuron_runtime_loaded_models") == {}
    assert p.samples("neuron_runtime_running_models") == {}
    p.feed(full_report())
    assert list(p.samples("neuron_runtime_loaded_models").values()) == [1]
    empty = full_report()
    empty["neuron_runtime_data"][0]["report"]["memory_used"]["loaded_models"] = []
    p.feed(empty)
    assert list(p.samples("neuron_runtime_loaded_models").values()) == [0], "an empty list is zero models"
