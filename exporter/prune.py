"""Drops the per-core entries a runtime does not use, before validation, when nothing is lost by it.

Real neuron-monitor lists every NeuronCore of the node under every runtime, zeros for the cores the
runtime does not use: on a trn2.48xlarge with 64 runtimes that is 4,096 core entries per group, of
which 64 carry data. The default metric set never renders those zero entries (state.owned_cores), so
validating them into models only costs CPU and memory. An entry is dropped only when every leaf in it
is a numeric zero, in both the counters and the memory map, and no loaded model sits on that core;
anything else, malformed values included, is kept and validated as usual. The AWS-compatible mode
renders every listed core, so it does not prune.
"""

from __future__ import annotations

from typing import Any


def _zero(value: Any) -> bool:
    """True for a numeric 0, or an object whose every leaf is a numeric 0 (an empty object too).

    It runs on every core entry of every runtime, so the flat case (`{"neuroncore_utilization": 0,
    "flops": 0}`) is one loop without allocation; nested objects (trn2's `v3d`) go to _zero_deep.
    """
    kind = type(value)
    if kind is not dict:
        return (kind is int or kind is float) and value == 0
    for item in value.values():
        kind = type(item)
        if kind is int or kind is float:
            if item != 0:
                return False
        elif kind is not dict or not _zero_deep(item):
            return False
    return True


def _zero_deep(value: dict[str, Any]) -> bool:
    """_zero for a nested object. It keeps its own stack instead of recursing, because orjson
    accepts objects nested 1024 deep, past Python's recursion limit."""
    stack = [value]
    while stack:
        for item in stack.pop().values():
            kind = type(item)
            if kind is dict:
                stack.append(item)
            elif (kind is not int and kind is not float) or item != 0:
                return False
    return True


def _child(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]… if every step is an object, else None."""
    for key in keys:
        if type(obj) is not dict:
            return None
        obj = obj.get(key)
    return obj


def _model_cores(memory: Any, cores_per_device: int | None) -> set[str]:
    """Global core keys (as strings) on which a loaded model's subgraph is placed.

    A subgraph names its device and its core within that device (SCHEMA.md §5.6); without the
    cores per device the global core is unknown, and placement keeps nothing.
    """
    cores: set[str] = set()
    models = _child(memory, "loaded_models")
    if type(models) is not list or not cores_per_device:
        return cores
    for model in models:
        subgraphs = _child(model, "subgraphs")
        if type(subgraphs) is dict:
            for subgraph in subgraphs.values():
                if type(subgraph) is not dict:
                    continue
                device = subgraph.get("neuron_device_index")
                index = subgraph.get("neuroncore_index")
                if type(device) is int and type(index) is int:
                    cores.add(str(device * cores_per_device + index))
    return cores


def without_idle_cores(report: dict[str, Any], cores_per_device: int | None) -> dict[str, Any]:
    """A runtime's `report` object without its all-zero, model-free core entries (input left untouched)."""
    counters: Any = report.get("neuroncore_counters")
    memory: Any = report.get("memory_used")
    in_use = _child(counters, "neuroncores_in_use")
    per_core = _child(memory, "neuron_runtime_used_bytes", "usage_breakdown", "neuroncore_memory_usage")
    maps = [m for m in (in_use, per_core) if type(m) is dict]
    if not maps:
        return report
    busy = _model_cores(memory, cores_per_device)
    idle: set[str] = set()
    for entries in maps:
        for key, entry in entries.items():
            if key in busy:
                continue
            if _zero(entry):
                idle.add(key)
            else:
                busy.add(key)
    idle -= busy
    if not idle:
        return report
    pruned = dict(report)
    if type(in_use) is dict:
        kept = {key: entry for key, entry in in_use.items() if key not in idle}
        pruned["neuroncore_counters"] = {**counters, "neuroncores_in_use": kept}
    if type(per_core) is dict:
        kept = {key: entry for key, entry in per_core.items() if key not in idle}
        used = memory["neuron_runtime_used_bytes"]
        breakdown = {**used["usage_breakdown"], "neuroncore_memory_usage": kept}
        pruned["memory_used"] = {
            **memory,
            "neuron_runtime_used_bytes": {**used, "usage_breakdown": breakdown},
        }
    return pruned
