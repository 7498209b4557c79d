"""AWS-named collectors of the identity sections and the system-level groups."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.aws_compat.labels import INSTANCE, instance_labels
from exporter.collectors.base import Collector, Family, MetricSpec
from exporter.model.schema import CpuModes, MemoryInfo, VcpuUsage
from exporter.model.state import State

ECC_EVENTS = ("mem_ecc_corrected", "mem_ecc_uncorrected", "sram_ecc_corrected", "sram_ecc_uncorrected")
"""The script's fixed list of ECC event types; newer members are only in the default mode."""

USER_MODES = ("user", "nice")
SYSTEM_MODES = ("system", "io_wait", "irq", "soft_irq")
"""How the script folds the seven CPU modes into `usage_type` user and system."""

SYSTEM_MEMORY = (
    ("system_memory_total_bytes", "memory_total_bytes", "System memory total_bytes bytes"),
    ("system_memory_used_bytes", "memory_used_bytes", "System memory used_bytes bytes"),
    ("system_swap_total_bytes", "swap_total_bytes", "System swap total_bytes bytes"),
    ("system_swap_used_bytes", "swap_used_bytes", "System swap used_bytes bytes"),
)
"""Metric name, `memory_info` field, and the script's HELP text (its format string, verbatim)."""


def _integer(value: float | None) -> str:
    """A count or size as the script prints a JSON integer (`8589934592`, not `8589934592.0`); "" if unknown."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _mode_sum(modes: CpuModes, fields: tuple[str, ...]) -> float:
    """The script's user or system share: the modes added up, capped at 100, as a ratio."""
    total = sum(getattr(modes, field) or 0.0 for field in fields)
    return min(total, 100.0) / 100.0


class AwsInfoCollector(Collector):
    """`instance_info` and `neuron_hardware_info`, gauges fixed at 1."""

    name = "info"
    attributed = False  # AWS's names keep AWS's label sets
    description = "instance_info and neuron_hardware_info"
    specs = (
        MetricSpec("instance_info", "info", "EC2 instance information", INSTANCE, "instance_info.*"),
        MetricSpec(
            "neuron_hardware_info",
            "info",
            "Neuron Hardware Information",
            ("neuron_device_count", "neuron_device_memory_size", "neuroncore_per_device_count", *INSTANCE),
            "neuron_hardware_info.{neuron_device_count,neuroncore_per_device_count,neuron_device_memory_size}",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """Identity from the last report that carried each section."""
        labels = instance_labels(state)
        if state.instance is not None:
            families["instance_info"].add(labels, 1)
        hw = state.hardware
        if hw is not None:
            hw_labels = {
                **labels,
                "neuron_device_count": _integer(hw.neuron_device_count),
                "neuroncore_per_device_count": _integer(hw.neuroncore_per_device_count),
            }
            # Only the 2.19+ script has this label; without the field there is nothing to put in it.
            if hw.neuron_device_memory_size is not None:
                hw_labels["neuron_device_memory_size"] = _integer(hw.neuron_device_memory_size)
            families["neuron_hardware_info"].add(hw_labels, 1)


class AwsVcpuUsageCollector(Collector):
    """Host vCPU count and usage folded into user and system."""

    name = "vcpu_usage"
    attributed = False  # AWS's names keep AWS's label sets
    description = "host vCPU count and usage (AWS names)"
    specs = (
        MetricSpec("system_vcpu_count", "gauge", "System vCPU count", INSTANCE, "len(vcpu_usage.usage_data)"),
        MetricSpec(
            "system_vcpu_usage_ratio",
            "gauge",
            "System CPU utilization ratio",
            ("usage_type", *INSTANCE),
            "vcpu_usage.average_usage: user = user+nice, system = system+io_wait+irq+soft_irq, capped at 100, / 100",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """The vCPU count and the two folded usage ratios."""
        group = state.system.get("vcpu_usage")
        if not isinstance(group, VcpuUsage):
            return
        labels = instance_labels(state)
        if group.vcpu_count is not None:
            families["system_vcpu_count"].add(labels, group.vcpu_count)
        if group.average_usage is not None:
            family = families["system_vcpu_usage_ratio"]
            family.add({**labels, "usage_type": "user"}, _mode_sum(group.average_usage, USER_MODES))
            family.add({**labels, "usage_type": "system"}, _mode_sum(group.average_usage, SYSTEM_MODES))


class AwsMemoryInfoCollector(Collector):
    """Host memory and swap, total and used."""

    name = "memory_info"
    attributed = False  # AWS's names keep AWS's label sets
    description = "host memory and swap (AWS names)"
    specs = tuple(
        MetricSpec(name, "gauge", help_text, INSTANCE, f"memory_info.{field}")
        for name, field, help_text in SYSTEM_MEMORY
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """One gauge per field present."""
        group = state.system.get("memory_info")
        if not isinstance(group, MemoryInfo):
            return
        labels = instance_labels(state)
        for name, field, _ in SYSTEM_MEMORY:
            value = getattr(group, field)
            if value is not None:
                families[name].add(labels, value)


class AwsHwCountersCollector(Collector):
    """`hardware_ecc_events_total` per device for the script's four event types."""

    name = "neuron_hw_counters"
    attributed = False  # AWS's names keep AWS's label sets
    description = "device ECC events (counters, AWS names)"
    specs = (
        MetricSpec(
            "hardware_ecc_events_total",
            "counter",
            "Hardware ecc events total",
            ("event_type", "neuron_device_index", *INSTANCE),
            "neuron_hw_counters.neuron_devices[].<event_type>, summed over periods",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """One counter per device and known event type seen."""
        family = families["hardware_ecc_events_total"]
        labels = instance_labels(state)
        for device, event in sorted(state.ecc_totals):
            if event in ECC_EVENTS:
                family.add(
                    {**labels, "event_type": event, "neuron_device_index": str(device)},
                    state.ecc_totals[(device, event)],
                )
