"""`execution_stats`: execution outcomes and errors as counters, total and device latency percentiles.

    neuron_execution_status_total{runtime_tag="4242",status="completed"} 2977
    neuron_execution_errors_total{error_type="generic",runtime_tag="4242"} 0
    neuron_execution_latency_seconds{percentile="p99",runtime_tag="4242"} 0.0033

neuron-monitor reports counts per period; the exporter sums them (state.advance), so these are true
counters for rate(). Latencies are the percentiles of the last period, absent when nothing ran; the label keeps
neuron-monitor's key (`p99`) because `quantile` is reserved for summaries.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import Collector, Family, MetricSpec, percentile_order
from exporter.model.schema import ExecutionStats
from exporter.model.state import State


def add_percentiles(family: Family, runtime_tag: str, percentiles: Mapping[str, float] | None) -> None:
    """One sample per percentile, in ascending quantile order; nothing when the side is null."""
    if not percentiles:
        return
    append = family.samples.append
    for key in percentile_order(tuple(percentiles)):
        append(({"percentile": key, "runtime_tag": runtime_tag}, percentiles[key]))


class ExecutionStatsCollector(Collector):
    """Execution counters and latency percentiles per runtime."""

    name = "execution_stats"
    description = "execution outcomes and errors (counters), total and device latency percentiles"
    specs = (
        MetricSpec(
            "neuron_execution_status_total",
            "counter",
            "Executions by outcome, summed over neuron-monitor periods (execution_stats.execution_summary.*).",
            ("runtime_tag", "status"),
            "execution_stats.execution_summary.<status>",
        ),
        MetricSpec(
            "neuron_execution_errors_total",
            "counter",
            "Execution errors by type, summed over neuron-monitor periods (execution_stats.error_summary.*).",
            ("error_type", "runtime_tag"),
            "execution_stats.error_summary.<error_type>",
        ),
        MetricSpec(
            "neuron_execution_latency_seconds",
            "gauge",
            "Execution latency percentiles over the last period as measured by the Neuron runtime "
            "(execution_stats.latency_stats.total_latency).",
            ("percentile", "runtime_tag"),
            "execution_stats.latency_stats.total_latency.p<N>",
        ),
        MetricSpec(
            "neuron_execution_device_latency_seconds",
            "gauge",
            "Execution latency percentiles over the last period, time on the device only "
            "(execution_stats.latency_stats.device_latency).",
            ("percentile", "runtime_tag"),
            "execution_stats.latency_stats.device_latency.p<N>",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """Counters from the accumulated totals, latencies from the last sample."""
        status = families["neuron_execution_status_total"]
        errors = families["neuron_execution_errors_total"]
        for runtime in state.sorted_runtimes():
            for key in sorted(runtime.totals.status):
                status.add({"runtime_tag": runtime.tag, "status": key}, runtime.totals.status[key])
            for key in sorted(runtime.totals.errors):
                errors.add({"error_type": key, "runtime_tag": runtime.tag}, runtime.totals.errors[key])
            stats = runtime.group("execution_stats")
            if isinstance(stats, ExecutionStats) and stats.latency_stats is not None:
                latency = stats.latency_stats
                add_percentiles(
                    families["neuron_execution_latency_seconds"], runtime.tag, latency.total_latency
                )
                add_percentiles(
                    families["neuron_execution_device_latency_seconds"], runtime.tag, latency.device_latency
                )
