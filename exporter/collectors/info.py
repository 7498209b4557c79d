"""Identity: instance and hardware `_info` metrics, device geometry, and the runtimes present.

neuron_instance_info{instance_id="i-0…",instance_type="trn2.48xlarge",…} 1
neuron_hardware_info{device_type="trainium2",neuroncore_version="v3d",…} 1
neuron_devices 16
neuron_runtime_info{pid="4242",runtime_tag="4242"} 1
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import Collector, Family, MetricSpec
from exporter.model.state import State

INSTANCE_LABELS = (
    ("instance_id", "instance_id"),
    ("instance_name", "instance_name"),
    ("instance_type", "instance_type"),
    ("availability_zone", "instance_availability_zone"),
    ("availability_zone_id", "instance_availability_zone_id"),
    ("region", "instance_region"),
    ("ami_id", "ami_id"),
    ("subnet_id", "subnet_id"),
    ("ultraserver_id", "ultraserver_id"),
)
"""Label name -> `instance_info` field."""

HARDWARE_LABELS = (
    ("device_type", "neuron_device_type"),
    ("device_version", "neuron_device_version"),
    ("neuroncore_version", "neuroncore_version"),
    ("logical_neuroncore_config", "logical_neuroncore_config"),
)
"""Label name -> `neuron_hardware_info` field."""


class InfoCollector(Collector):
    """Instance and hardware identity, device geometry, and one info series per runtime."""

    name = "info"
    description = "instance_info, neuron_hardware_info and the runtime list"
    specs = (
        MetricSpec(
            "neuron_instance_info",
            "info",
            "EC2 instance identity from neuron-monitor instance_info; always 1.",
            tuple(label for label, _ in INSTANCE_LABELS),
            "instance_info.*",
        ),
        MetricSpec(
            "neuron_hardware_info",
            "info",
            "Neuron hardware identity from neuron_hardware_info; always 1.",
            tuple(label for label, _ in HARDWARE_LABELS),
            "neuron_hardware_info.*",
        ),
        MetricSpec(
            "neuron_devices",
            "gauge",
            "Number of Neuron devices (neuron_hardware_info.neuron_device_count).",
            (),
            "neuron_hardware_info.neuron_device_count",
        ),
        MetricSpec(
            "neuron_device_neuroncores",
            "gauge",
            "NeuronCores per device, logical cores under LNC (neuron_hardware_info.neuroncore_per_device_count).",
            (),
            "neuron_hardware_info.neuroncore_per_device_count",
        ),
        MetricSpec(
            "neuron_device_memory_bytes",
            "gauge",
            "Memory of one Neuron device (neuron_hardware_info.neuron_device_memory_size).",
            (),
            "neuron_hardware_info.neuron_device_memory_size",
        ),
        MetricSpec(
            "neuron_runtime_info",
            "info",
            "A Neuron runtime process in the report; always 1. Processes sharing a tag have one series each.",
            ("runtime_tag", "pid"),
            "neuron_runtime_data[].neuron_runtime_tag, .pid",
        ),
        MetricSpec(
            "neuron_kubernetes_node_info",
            "info",
            "The Kubernetes node this exporter runs on (--kubernetes.node-name, default $NODE_NAME); always 1.",
            ("node",),
            "-",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """Identity series from the last report that carried each section."""
        if state.instance is not None:
            instance = state.instance
            families["neuron_instance_info"].add(
                {label: getattr(instance, field) or "" for label, field in INSTANCE_LABELS}, 1
            )
        hw = state.hardware
        if hw is not None:
            families["neuron_hardware_info"].add(
                {
                    label: "" if getattr(hw, field) is None else str(getattr(hw, field))
                    for label, field in HARDWARE_LABELS
                },
                1,
            )
            for name, value in (
                ("neuron_devices", hw.neuron_device_count),
                ("neuron_device_neuroncores", hw.neuroncore_per_device_count),
                ("neuron_device_memory_bytes", hw.neuron_device_memory_size),
            ):
                if value is not None:
                    families[name].add({}, value)
        if self.options.node_name:
            families["neuron_kubernetes_node_info"].add({"node": self.options.node_name}, 1)
        runtime_info = families["neuron_runtime_info"]
        for runtime in state.sorted_runtimes():
            # One series per process: workers that share a tag are told apart here, and only here.
            for pid in sorted(runtime.processes, key=lambda p: (p is not None, p or 0)):
                runtime_info.add({"runtime_tag": runtime.tag, "pid": "" if pid is None else str(pid)}, 1)
