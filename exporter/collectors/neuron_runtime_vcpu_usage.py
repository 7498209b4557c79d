"""`neuron_runtime_vcpu_usage`: the share of time each runtime spends in user and kernel code.

neuron_runtime_vcpu_usage_ratio{mode="user",runtime_tag="4242"} 0.4201
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import Collector, Family, MetricSpec
from exporter.model.schema import NeuronRuntimeVcpuUsage
from exporter.model.state import State

MODES = ("user", "system")


class RuntimeVcpuUsageCollector(Collector):
    """Runtime vCPU usage by mode."""

    name = "neuron_runtime_vcpu_usage"
    description = "runtime vCPU usage (user, system)"
    specs = (
        MetricSpec(
            "neuron_runtime_vcpu_usage_ratio",
            "gauge",
            "vCPU time of the runtime over the last period by mode, 0-1 "
            "(neuron_runtime_vcpu_usage.vcpu_usage.{user,system} / 100).",
            ("mode", "runtime_tag"),
            "neuron_runtime_vcpu_usage.vcpu_usage.{user,system}",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """One sample per runtime and mode."""
        family = families["neuron_runtime_vcpu_usage_ratio"]
        for runtime in state.sorted_runtimes():
            group = runtime.group("neuron_runtime_vcpu_usage")
            if not isinstance(group, NeuronRuntimeVcpuUsage) or group.vcpu_usage is None:
                continue
            for mode in MODES:
                value = getattr(group.vcpu_usage, mode)
                if value is not None:
                    family.add({"mode": mode, "runtime_tag": runtime.tag}, value / 100)
