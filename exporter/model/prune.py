"""Drops the per-core entries a runtime does not use, before validation, when nothing is lost by it.

Real neuron-monitor lists every NeuronCore of the node under every runtime, zeros for the cores the
runtime does not use: on a trn2.48xlarge with 64 runtimes that is 4,096 core entries per group, of
which 64 carry data. The default metric set never renders those zero entries (state.owned_cores), so
validating them into models only costs CPU and memory. An entry is dropped only when every leaf in it
is numerically zero, in both the counters and the memory map; anything else, malformed values
included, is kept and validated as usual. (A `false` leaf counts as zero, as validation reads it.)
A loaded model's placement is not consulted: a model has memory on its core, so the memory map
keeps that core, and placement alone still makes ownership after validation. The AWS-compatible
mode renders every listed core, so it does not prune.
"""

from __future__ import annotations

from typing import Any


def _zero(value: Any) -> bool:
    """True for a numeric 0, or an object whose every leaf is a numeric 0 (an empty object too).

    Nested objects (trn2's `v3d`) are walked with an explicit stack rather than by recursion, because
    orjson accepts objects nested 1024 deep, past Python's recursion limit.
    """
    kind = type(value)
    if kind is not dict:
        return (kind is int or kind is float or kind is bool) and value == 0
    stack = [value]
    while stack:
        for item in stack.pop().values():
            kind = type(item)
            if kind is dict:
                stack.append(item)
            elif (kind is not int and kind is not float and kind is not bool) or item != 0:
                return False
    return True


def _child(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]… if every step is an object, else None."""
    for key in keys:
        if type(obj) is not dict:
            return None
        obj = obj.get(key)
    return obj


def _busy_keys(entries: dict[str, Any]) -> set[str]:
    """The keys whose entry is not all zeros.

    Idle entries of one runtime look alike to the letter (`{"neuroncore_utilization": 0, "flops": 0}`),
    so each is first compared with one flat all-zero entry: a dict comparison in C, exact for this
    purpose (it compares leaf by leaf with ==); only entries that differ from it are walked. The
    template is flat, so the comparison never recurses into nesting (trn2's `v3d` entries are walked).
    """
    template = next(
        (e for e in entries.values() if type(e) is dict and dict not in map(type, e.values()) and _zero(e)),
        None,
    )
    if template is None:
        return {key for key, entry in entries.items() if not _zero(entry)}
    return {key for key, entry in entries.items() if entry != template and not _zero(entry)}


def without_idle_cores(report: dict[str, Any]) -> dict[str, Any]:
    """A runtime's `report` object without its all-zero core entries (input left untouched)."""
    counters: Any = report.get("neuroncore_counters")
    memory: Any = report.get("memory_used")
    in_use = _child(counters, "neuroncores_in_use")
    per_core = _child(memory, "neuron_runtime_used_bytes", "usage_breakdown", "neuroncore_memory_usage")
    maps = [entries for entries in (in_use, per_core) if type(entries) is dict]
    if not maps:
        return report
    busy = set().union(*(_busy_keys(entries) for entries in maps))
    if all(len(entries) == len(busy) and busy.issuperset(entries) for entries in maps):
        return report
    pruned = dict(report)
    if type(in_use) is dict:
        kept = {key: entry for key, entry in in_use.items() if key in busy}
        pruned["neuroncore_counters"] = {**counters, "neuroncores_in_use": kept}
    if type(per_core) is dict:
        kept = {key: entry for key, entry in per_core.items() if key in busy}
        used = memory["neuron_runtime_used_bytes"]
        breakdown = {**used["usage_breakdown"], "neuroncore_memory_usage": kept}
        pruned["memory_used"] = {
            **memory,
            "neuron_runtime_used_bytes": {**used, "usage_breakdown": breakdown},
        }
    return pruned
