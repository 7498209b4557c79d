"""AWS-named collectors of the runtime-level groups: utilization, execution stats, memory, runtime vCPU."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.aws_compat.labels import RUNTIME, instance_labels
from exporter.collectors.base import Collector, Family, MetricSpec, percentile_order
from exporter.model.schema import ExecutionStats, MemoryUsed, NeuronCoreCounters, NeuronRuntimeVcpuUsage
from exporter.model.state import RuntimeState, State

NEURONCORE_MEMORY_CATEGORIES = (
    "constants",
    "model_code",
    "model_shared_scratchpad",
    "runtime_memory",
    "tensors",
)
"""The script's fixed list of per-NeuronCore memory categories; others are not exported."""

MEMORY_LOCATION_NONE = "None"
"""The script sets `memory_location` to None before the per-core gauges; the label value is its repr."""


class AwsNeuronCoreCountersCollector(Collector):
    """`neuroncore_utilization_ratio` for every core each runtime lists."""

    name = "neuroncore_counters"
    attributed = False  # AWS's names keep AWS's label sets
    description = "NeuronCore utilization (AWS names)"
    specs = (
        MetricSpec(
            "neuroncore_utilization_ratio",
            "gauge",
            "NeuronCore utilization ratio",
            ("neuroncore", *RUNTIME),
            "neuroncore_counters.neuroncores_in_use.<nc>.neuroncore_utilization / 100",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """One sample per runtime and listed core, idle cores included."""
        family = families["neuroncore_utilization_ratio"]
        base = instance_labels(state)
        for runtime in state.sorted_runtimes():
            counters = runtime.group("neuroncore_counters")
            if not isinstance(counters, NeuronCoreCounters):
                continue
            for core in sorted(counters.neuroncores_in_use):
                value = counters.neuroncores_in_use[core].neuroncore_utilization
                if value is not None:
                    family.add({**base, "runtime_tag": runtime.tag, "neuroncore": str(core)}, value / 100.0)


class AwsExecutionStatsCollector(Collector):
    """Execution outcome and error counters, total latency percentiles."""

    name = "execution_stats"
    attributed = False  # AWS's names keep AWS's label sets
    description = "execution outcomes and errors (counters), latency percentiles (AWS names)"
    specs = (
        MetricSpec(
            "execution_errors_total",
            "counter",
            "Execution errors total",
            ("error_type", *RUNTIME),
            "execution_stats.error_summary.<error_type>, summed over periods",
        ),
        MetricSpec(
            "execution_status_total",
            "counter",
            "Execution status total",
            ("status_type", *RUNTIME),
            "execution_stats.execution_summary.<status_type>, summed over periods",
        ),
        MetricSpec(
            "execution_latency_seconds",
            "gauge",
            "Execution latency in seconds",
            ("percentile", *RUNTIME),
            "execution_stats.latency_stats.total_latency.p<N>",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """Counters from the accumulated totals, latencies from the last sample when it has any."""
        base = instance_labels(state)
        for runtime in state.sorted_runtimes():
            labels = {**base, "runtime_tag": runtime.tag}
            for key in sorted(runtime.totals.errors):
                families["execution_errors_total"].add(
                    {**labels, "error_type": key}, runtime.totals.errors[key]
                )
            for key in sorted(runtime.totals.status):
                families["execution_status_total"].add(
                    {**labels, "status_type": key}, runtime.totals.status[key]
                )
            stats = runtime.group("execution_stats")
            latency = stats.latency_stats if isinstance(stats, ExecutionStats) else None
            total = latency.total_latency if latency is not None else None
            if not total:
                # Null when nothing ran in the period: no series, where the script kept the stale value.
                continue
            for key in percentile_order(tuple(total)):
                families["execution_latency_seconds"].add({**labels, "percentile": key}, total[key])


class AwsMemoryUsedCollector(Collector):
    """Runtime host/device memory and the per-NeuronCore breakdown, one gauge per category."""

    name = "memory_used"
    attributed = False  # AWS's names keep AWS's label sets
    description = "runtime memory and per-NeuronCore memory by category (AWS names)"
    specs = (
        MetricSpec(
            "neuron_runtime_memory_used_bytes",
            "gauge",
            "Runtime memory used bytes",
            ("memory_location", *RUNTIME),
            "memory_used.neuron_runtime_used_bytes.{host,neuron_device}",
        ),
        *(
            MetricSpec(
                f"neuroncore_memory_usage_{category}",
                "gauge",
                f"NeuronCore memory utilization for {category}",
                ("memory_location", "neuroncore", *RUNTIME),
                f"memory_used.neuron_runtime_used_bytes.usage_breakdown.neuroncore_memory_usage.<nc>.{category}",
            )
            for category in NEURONCORE_MEMORY_CATEGORIES
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """Memory series for every runtime with a valid memory_used group."""
        base = instance_labels(state)
        for runtime in state.sorted_runtimes():
            self._runtime(runtime, {**base, "runtime_tag": runtime.tag}, families)

    @staticmethod
    def _runtime(runtime: RuntimeState, labels: Mapping[str, str], families: Mapping[str, Family]) -> None:
        memory = runtime.group("memory_used")
        used = memory.neuron_runtime_used_bytes if isinstance(memory, MemoryUsed) else None
        if used is None:
            return
        for location in ("host", "neuron_device"):
            value = getattr(used, location)
            if value is not None:
                families["neuron_runtime_memory_used_bytes"].add(
                    {**labels, "memory_location": location}, value
                )
        per_core = (used.usage_breakdown.neuroncore_memory_usage if used.usage_breakdown else None) or {}
        for category in NEURONCORE_MEMORY_CATEGORIES:
            family = families[f"neuroncore_memory_usage_{category}"]
            for core in sorted(per_core):
                value = per_core[core].get(category)
                if value is not None:
                    family.add(
                        {**labels, "memory_location": MEMORY_LOCATION_NONE, "neuroncore": str(core)}, value
                    )


class AwsRuntimeVcpuUsageCollector(Collector):
    """`neuron_runtime_vcpu_usage_ratio` by usage_type user and system."""

    name = "neuron_runtime_vcpu_usage"
    attributed = False  # AWS's names keep AWS's label sets
    description = "runtime vCPU usage (AWS names)"
    specs = (
        MetricSpec(
            "neuron_runtime_vcpu_usage_ratio",
            "gauge",
            "Runtime vCPU utilization ratio",
            ("usage_type", *RUNTIME),
            "neuron_runtime_vcpu_usage.vcpu_usage.{user,system} / 100",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """One sample per runtime and usage type."""
        family = families["neuron_runtime_vcpu_usage_ratio"]
        base = instance_labels(state)
        for runtime in state.sorted_runtimes():
            group = runtime.group("neuron_runtime_vcpu_usage")
            if not isinstance(group, NeuronRuntimeVcpuUsage) or group.vcpu_usage is None:
                continue
            for usage_type in ("user", "system"):
                value = getattr(group.vcpu_usage, usage_type)
                if value is not None:
                    family.add({**base, "runtime_tag": runtime.tag, "usage_type": usage_type}, value / 100.0)
