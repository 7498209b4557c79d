"""Processes that share a runtime tag, combined into one view per tag.

`NEURON_PROCESS_TAG` is inherited by worker processes, so the 32 workers of one job can report under
one tag. The tag is the label users group by, so the exporter exports one set of series per tag
(see the README): counts and bytes are summed over the processes, cores are united (two processes
on one core split its time, so their utilizations add), and each latency percentile is the largest
among the processes (the slowest worker's, an upper bound of the combined percentile). Execution
counters are not merged here: state.advance adds each process's own fresh counts to the tag's totals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from exporter.model.schema import (
    ExecutionStats,
    Group,
    LatencyStats,
    MemoryUsed,
    ModelPlacements,
    NeuronCoreCounter,
    NeuronCoreCounters,
    NeuronRuntimeVcpuUsage,
    PhysicalCore,
    RuntimeUsedBytes,
    RuntimeVcpuUsage,
    UsageBreakdown,
)

K = TypeVar("K")


def _total(values: Iterable[float | None]) -> float | None:
    """The sum of the known values; None when none is known."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _sums(maps: Iterable[Mapping[K, float] | None]) -> dict[K, float] | None:
    """Key-wise sums of the maps that are present; None when none is."""
    present = [m for m in maps if m is not None]
    if not present:
        return None
    out: dict[K, float] = {}
    for mapping in present:
        for key, value in mapping.items():
            out[key] = out.get(key, 0.0) + value
    return out


def _maxima(maps: Iterable[Mapping[str, float] | None]) -> dict[str, float] | None:
    """Key-wise maxima of the maps that are present (latency percentiles)."""
    present = [m for m in maps if m]
    if not present:
        return None
    out: dict[str, float] = {}
    for mapping in present:
        for key, value in mapping.items():
            out[key] = max(out.get(key, value), value)
    return out


def _core(counters: Sequence[NeuronCoreCounter]) -> NeuronCoreCounter:
    if len(counters) == 1:
        return counters[0]
    names = {name for counter in counters for name in counter.physical}
    physical = {
        name: PhysicalCore.model_construct(
            neuroncore_utilization=_total(
                c.physical[name].neuroncore_utilization for c in counters if name in c.physical
            )
        )
        for name in sorted(names)
    }
    return NeuronCoreCounter.model_construct(
        neuroncore_utilization=_total(c.neuroncore_utilization for c in counters),
        flops=_total(c.flops for c in counters),
        effective_flops=_total(c.effective_flops for c in counters),
        physical=physical,
    )


def _neuroncore_counters(groups: Sequence[NeuronCoreCounters]) -> NeuronCoreCounters:
    by_core: dict[int, list[NeuronCoreCounter]] = {}
    for group in groups:
        for core, counter in group.neuroncores_in_use.items():
            by_core.setdefault(core, []).append(counter)
    return NeuronCoreCounters.model_construct(
        period=groups[0].period,
        error="",
        neuroncores_in_use={core: _core(by_core[core]) for core in sorted(by_core)},
    )


def _execution_stats(groups: Sequence[ExecutionStats]) -> ExecutionStats:
    latencies = [g.latency_stats for g in groups if g.latency_stats is not None]
    latency = (
        LatencyStats.model_construct(
            total_latency=_maxima(lat.total_latency for lat in latencies),
            device_latency=_maxima(lat.device_latency for lat in latencies),
        )
        if latencies
        else None
    )
    return ExecutionStats.model_construct(
        period=groups[0].period,
        error="",
        error_summary=_sums(g.error_summary for g in groups) or {},
        execution_summary=_sums(g.execution_summary for g in groups) or {},
        latency_stats=latency,
    )


def _memory_used(groups: Sequence[MemoryUsed]) -> MemoryUsed:
    used = [g.neuron_runtime_used_bytes for g in groups if g.neuron_runtime_used_bytes is not None]
    breakdowns = [u.usage_breakdown for u in used if u.usage_breakdown is not None]
    per_core: dict[int, list[Mapping[str, float]]] = {}
    for breakdown in breakdowns:
        for core, categories in (breakdown.neuroncore_memory_usage or {}).items():
            per_core.setdefault(core, []).append(categories)
    merged_breakdown = (
        UsageBreakdown.model_construct(
            host=_sums(b.host for b in breakdowns),
            neuroncore_memory_usage=(
                {core: _sums(per_core[core]) or {} for core in sorted(per_core)}
                if any(b.neuroncore_memory_usage is not None for b in breakdowns)
                else None
            ),
        )
        if breakdowns
        else None
    )
    total = (
        RuntimeUsedBytes.model_construct(
            host=_total(u.host for u in used),
            neuron_device=_total(u.neuron_device for u in used),
            usage_breakdown=merged_breakdown,
        )
        if used
        else None
    )
    return MemoryUsed.model_construct(
        period=groups[0].period,
        error="",
        neuron_runtime_used_bytes=total,
        placements=ModelPlacements.model_construct(
            listed=any(g.placements.listed for g in groups),
            running=tuple(r for g in groups for r in g.placements.running),
            devices=tuple(d for g in groups for d in g.placements.devices),
            cores=tuple(c for g in groups for c in g.placements.cores),
        ),
        loaded_models=[m for g in groups for m in g.loaded_models],
    )


def _vcpu(groups: Sequence[NeuronRuntimeVcpuUsage]) -> NeuronRuntimeVcpuUsage:
    usages = [g.vcpu_usage for g in groups if g.vcpu_usage is not None]
    usage = (
        RuntimeVcpuUsage.model_construct(
            user=_total(u.user for u in usages), system=_total(u.system for u in usages)
        )
        if usages
        else None
    )
    return NeuronRuntimeVcpuUsage.model_construct(period=groups[0].period, error="", vcpu_usage=usage)


_MERGERS: dict[type[Group], Callable[[Sequence[Group]], Group]] = {
    NeuronCoreCounters: _neuroncore_counters,  # type: ignore[dict-item]
    ExecutionStats: _execution_stats,  # type: ignore[dict-item]
    MemoryUsed: _memory_used,  # type: ignore[dict-item]
    NeuronRuntimeVcpuUsage: _vcpu,  # type: ignore[dict-item]
}


def merge_groups(processes: Sequence[Mapping[str, Group]]) -> Mapping[str, Group]:
    """One tag's groups from its processes' groups; a group only one process has is taken as it is."""
    if len(processes) == 1:
        return processes[0]
    names = sorted({name for groups in processes for name in groups})
    out: dict[str, Group] = {}
    for name in names:
        parts = [groups[name] for groups in processes if name in groups]
        merge = _MERGERS.get(type(parts[0]))
        if len(parts) == 1 or merge is None or any(type(p) is not type(parts[0]) for p in parts):
            out[name] = parts[0]
        else:
            out[name] = merge(parts)
    return out
