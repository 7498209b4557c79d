"""`neuron_hw_counters`: device ECC events as counters.

    neuron_device_ecc_events_total{event_type="mem_ecc_corrected",neuron_device="0"} 3

neuron-monitor reports events per period (SCHEMA.md §5.8, as AWS's script reads them); the exporter
sums them. Unknown numeric members (a new ECC event type) are exported under their JSON key.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import Collector, Family, MetricSpec
from exporter.model.state import State


class HwCountersCollector(Collector):
    """ECC events per device and event type."""

    name = "neuron_hw_counters"
    description = "device ECC events (counters)"
    specs = (
        MetricSpec(
            "neuron_device_ecc_events_total",
            "counter",
            "Device ECC events by type, summed over neuron-monitor periods (neuron_hw_counters.neuron_devices[]).",
            ("event_type", "neuron_device"),
            "neuron_hw_counters.neuron_devices[].<event_type>",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """One counter per device and event type seen."""
        family = families["neuron_device_ecc_events_total"]
        for device, event in sorted(state.ecc_totals):
            family.add({"event_type": event, "neuron_device": str(device)}, state.ecc_totals[(device, event)])
