"""`vcpu_usage`: host vCPU usage by mode (average; per vCPU opt-in) and context switches.

neuron_system_vcpu_average_usage_ratio{mode="idle"} 0.3936
neuron_system_vcpus 192
neuron_system_context_switches_total 1.2e+06
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import Collector, Family, MetricSpec
from exporter.model.schema import CpuModes, VcpuUsage
from exporter.model.state import State

MODES = tuple(CpuModes.model_fields)


def add_modes(family: Family, modes: CpuModes, labels: Mapping[str, str]) -> None:
    """One sample per CPU mode present, as a 0-1 ratio."""
    for mode in MODES:
        value = getattr(modes, mode)
        if value is not None:
            family.add({**labels, "mode": mode}, value / 100)


class VcpuUsageCollector(Collector):
    """Host CPU usage and context switches."""

    name = "vcpu_usage"
    description = "host vCPU usage by mode (average, per vCPU opt-in), vCPU count, context switches"
    specs = (
        MetricSpec(
            "neuron_system_vcpu_average_usage_ratio",
            "gauge",
            "Host vCPU time over the last period by mode, averaged over all vCPUs, 0-1 (vcpu_usage.average_usage).",
            ("mode",),
            "vcpu_usage.average_usage.<mode>",
        ),
        MetricSpec(
            "neuron_system_vcpu_usage_ratio",
            "gauge",
            "Host vCPU time over the last period by vCPU and mode, 0-1 (opt-in: per-vCPU; vcpu_usage.usage_data).",
            ("mode", "vcpu"),
            "vcpu_usage.usage_data.<vcpu>.<mode>",
        ),
        MetricSpec(
            "neuron_system_vcpus",
            "gauge",
            "Number of host vCPUs (len(vcpu_usage.usage_data)).",
            (),
            "vcpu_usage.usage_data",
        ),
        MetricSpec(
            "neuron_system_context_switches_total",
            "counter",
            "Host context switches, summed over neuron-monitor periods (vcpu_usage.context_switch_count).",
            (),
            "vcpu_usage.context_switch_count",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """Average usage always, per-vCPU usage when opted in."""
        if state.context_switches_total is not None:
            families["neuron_system_context_switches_total"].add({}, state.context_switches_total)
        group = state.system.get("vcpu_usage")
        if not isinstance(group, VcpuUsage):
            return
        if group.average_usage is not None:
            add_modes(families["neuron_system_vcpu_average_usage_ratio"], group.average_usage, {})
        if group.vcpu_count is not None:
            families["neuron_system_vcpus"].add({}, group.vcpu_count)
        if group.usage_data is not None and self.options.per_vcpu:
            per_vcpu = families["neuron_system_vcpu_usage_ratio"]
            for vcpu in sorted(group.usage_data):
                add_modes(per_vcpu, group.usage_data[vcpu], {"vcpu": str(vcpu)})
