"""`memory_info`: host RAM and swap.

neuron_system_memory_total_bytes 4.9e+10
neuron_system_swap_used_bytes 0
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import Collector, Family, MetricSpec
from exporter.model.schema import MemoryInfo
from exporter.model.state import State

FIELDS = ("memory_total_bytes", "memory_used_bytes", "swap_total_bytes", "swap_used_bytes")


class MemoryInfoCollector(Collector):
    """Host memory and swap totals and use."""

    name = "memory_info"
    description = "host memory and swap"
    specs = tuple(
        MetricSpec(
            f"neuron_system_{field}",
            "gauge",
            f"Host {field.replace('_', ' ').removesuffix(' bytes')}, bytes (memory_info.{field}).",
            (),
            f"memory_info.{field}",
        )
        for field in FIELDS
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """One gauge per field present."""
        group = state.system.get("memory_info")
        if not isinstance(group, MemoryInfo):
            return
        for field in FIELDS:
            value = getattr(group, field)
            if value is not None:
                families[f"neuron_system_{field}"].add({}, value)
