"""Small builders of neuron-monitor reports for tests, in the documented current format."""

from __future__ import annotations

from typing import Any


def core_counters(utilization: dict[int, float]) -> dict[str, Any]:
    """A `neuroncore_counters` group with the given percent utilization per core."""
    return {
        "period": 1.0,
        "neuroncores_in_use": {str(c): {"neuroncore_utilization": u} for c, u in utilization.items()},
        "error": "",
    }


def execution(
    completed: int, generic: int = 0, period: float = 1.0, latency: float | None = 0.01
) -> dict[str, Any]:
    """An `execution_stats` group with per-period counts."""
    percentiles = (
        None if latency is None else {p: latency for p in ("p0", "p1", "p25", "p50", "p75", "p99", "p100")}
    )
    return {
        "period": period,
        "error_summary": {"generic": generic, "numerical": 0},
        "execution_summary": {"completed": completed, "timed_out": 0},
        "latency_stats": {"total_latency": percentiles, "device_latency": percentiles},
        "error": "",
    }


def memory(cores_bytes: dict[int, int]) -> dict[str, Any]:
    """A `memory_used` group with the given device bytes (as tensors) per core."""
    return {
        "period": 1.0,
        "neuron_runtime_used_bytes": {
            "host": 1000,
            "neuron_device": sum(cores_bytes.values()),
            "usage_breakdown": {
                "host": {"application_memory": 1000},
                "neuroncore_memory_usage": {
                    str(c): {"constants": 0, "tensors": b} for c, b in cores_bytes.items()
                },
            },
        },
        "loaded_models": [],
        "error": "",
    }


def runtime(tag: str, **groups: dict[str, Any]) -> dict[str, Any]:
    """A `neuron_runtime_data[]` entry."""
    return {
        "pid": int(tag) if tag.isdigit() else 77,
        "neuron_runtime_tag": tag,
        "error": "",
        "report": groups,
    }


def report(
    *runtimes: dict[str, Any], devices: int = 1, cores_per_device: int = 4, **system: Any
) -> dict[str, Any]:
    """A whole report."""
    return {
        "neuron_runtime_data": list(runtimes),
        "system_data": system,
        "instance_info": {"instance_id": "i-0abc", "instance_type": "inf2.xlarge", "error": ""},
        "neuron_hardware_info": {
            "neuron_device_count": devices,
            "neuroncore_per_device_count": cores_per_device,
            "error": "",
        },
    }
