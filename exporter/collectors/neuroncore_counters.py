"""`neuroncore_counters`: NeuronCore utilization, flops and trn2 per-physical-core utilization.

    neuron_neuroncore_utilization_ratio{neuroncore="0",runtime_tag="4242"} 0.4201
    neuron_neuroncore_utilization_ratio{neuroncore="5"} 0
    neuron_neuroncore_effective_flops{neuroncore="0",runtime_tag="4242"} 8.7559e+11
    neuron_neuroncore_physical_utilization_ratio{neuroncore="0",physical_neuroncore="1",runtime_tag="4242"} 0.6301

Per-core series belong to the runtime that uses the core (see state.owned_cores). A core that exists
but no runtime uses reports 0 without a runtime_tag, so idle nodes draw flat lines instead of gaps.
A core whose runtime sent no valid counters this time has no utilization series at all (a gap), and
is counted in neuron_exporter_unmeasured_neuroncores: a missing sample is not an idle core.

FLOP/s: current neuron-monitor (2025-2026, inf2 and trn1) prints `effective_flops` and no `flops`; the
guide documents only `flops` (SDK 2.7+). Both are rates in FLOP/s over the period (SCHEMA.md §14), so each
is exported under its own name as printed, and dashboards read effective_flops, else flops.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import Collector, Family, MetricSpec
from exporter.model.schema import NeuronCoreCounters
from exporter.model.state import State

PERCENT = 100.0


def physical_index(key: str) -> str:
    """`nc_v3.7` -> `7`: the global physical core index after the last dot."""
    return key.rsplit(".", 1)[-1]


class NeuronCoreCountersCollector(Collector):
    """Per-NeuronCore utilization and flops, attributed to the owning runtime."""

    name = "neuroncore_counters"
    description = "NeuronCore utilization, flops, per-physical-core utilization (trn2 v3d)"
    specs = (
        MetricSpec(
            "neuron_neuroncore_utilization_ratio",
            "gauge",
            "NeuronCore utilization over the last period, 0-1 (neuroncores_in_use.*.neuroncore_utilization / 100).",
            ("neuroncore", "runtime_tag"),
            "neuroncore_counters.neuroncores_in_use.<nc>.neuroncore_utilization",
        ),
        MetricSpec(
            "neuron_neuroncore_flops",
            "gauge",
            "Floating point operations per second (FLOP/s) on the NeuronCore over the last period, as the "
            "guide documents it (neuroncores_in_use.*.flops, SDK 2.7+); current neuron-monitor prints "
            "neuron_neuroncore_effective_flops instead.",
            ("neuroncore", "runtime_tag"),
            "neuroncore_counters.neuroncores_in_use.<nc>.flops",
        ),
        MetricSpec(
            "neuron_neuroncore_effective_flops",
            "gauge",
            "Floating point operations per second (FLOP/s) the NeuronCore achieved over the last period "
            "(neuroncores_in_use.*.effective_flops: undocumented, printed by current neuron-monitor instead "
            "of flops; 72.3e12 on a trn1 core running a 71.9 TFLOP/s matmul).",
            ("neuroncore", "runtime_tag"),
            "neuroncore_counters.neuroncores_in_use.<nc>.effective_flops",
        ),
        MetricSpec(
            "neuron_exporter_unmeasured_neuroncores",
            "gauge",
            "NeuronCores held by a runtime whose utilization is unknown in the last report (its "
            "neuroncore_counters missing, invalid or erroring); their utilization series are left out, not 0.",
            (),
            "neuroncore_counters (absent or dropped) of a runtime that owns cores",
        ),
        MetricSpec(
            "neuron_neuroncore_physical_utilization_ratio",
            "gauge",
            "Utilization of one physical core of a logical NeuronCore, 0-1 (neuroncores_in_use.*.v3d.*).",
            ("neuroncore", "physical_neuroncore", "runtime_tag"),
            "neuroncore_counters.neuroncores_in_use.<nc>.v3d.<nc_v3.N>.neuroncore_utilization",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """Owned cores with their runtime's values, then zeros for cores nobody uses."""
        utilization = families["neuron_neuroncore_utilization_ratio"]
        flops = families["neuron_neuroncore_flops"]
        effective = families["neuron_neuroncore_effective_flops"]
        physical = families["neuron_neuroncore_physical_utilization_ratio"]
        owned: set[int] = set()
        unmeasured = 0
        for runtime in state.sorted_runtimes():
            counters = runtime.group("neuroncore_counters")
            in_use = counters.neuroncores_in_use if isinstance(counters, NeuronCoreCounters) else {}
            for core in sorted(runtime.cores):
                owned.add(core)
                if core in runtime.unmeasured:
                    unmeasured += 1
                    continue
                nc = str(core)
                counter = in_use.get(core)
                if counter is None:
                    utilization.add({"neuroncore": nc, "runtime_tag": runtime.tag}, 0)
                    continue
                utilization.add(
                    {"neuroncore": nc, "runtime_tag": runtime.tag},
                    (counter.neuroncore_utilization or 0) / PERCENT,
                )
                if counter.flops is not None:
                    flops.add({"neuroncore": nc, "runtime_tag": runtime.tag}, counter.flops)
                if counter.effective_flops is not None:
                    effective.add({"neuroncore": nc, "runtime_tag": runtime.tag}, counter.effective_flops)
                for key in sorted(counter.physical, key=lambda k: (len(k), k)):
                    value = counter.physical[key].neuroncore_utilization
                    if value is not None:
                        physical.add(
                            {
                                "neuroncore": nc,
                                "physical_neuroncore": physical_index(key),
                                "runtime_tag": runtime.tag,
                            },
                            value / PERCENT,
                        )
        for core in state.known_cores():
            if core not in owned:
                utilization.add({"neuroncore": str(core)}, 0)
        if state.runtimes:
            families["neuron_exporter_unmeasured_neuroncores"].add({}, unmeasured)
