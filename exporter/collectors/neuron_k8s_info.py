"""`neuron_k8s_info`: which pod and container hold each NeuronCore and device (EKS, Neuron 2.23+).

    neuron_neuroncore_pod_info{container="c0",namespace="n0",neuroncore="0",pod="p0"} 1

Join onto any per-core series with `* on(neuroncore) group_left(pod, namespace)`.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import Collector, Family, MetricSpec
from exporter.model.schema import K8sInfo, PodRef
from exporter.model.state import State


def add_pods(family: Family, key: str, refs: Mapping[int, PodRef]) -> None:
    """One series per (index, container); a pod with no container name still gets one.

    Container names are deduplicated: a name listed twice must not make two identical series.
    """
    for index in sorted(refs):
        ref = refs[index]
        for container in sorted(set(ref.container_name)) or [""]:
            family.add(
                {"container": container, "namespace": ref.namespace, key: str(index), "pod": ref.pod_name}, 1
            )


class K8sInfoCollector(Collector):
    """Pod attribution of NeuronCores and devices."""

    name = "neuron_k8s_info"
    description = "pod/container attribution of NeuronCores and devices"
    specs = (
        MetricSpec(
            "neuron_neuroncore_pod_info",
            "info",
            "The pod and container a NeuronCore is allocated to; always 1.",
            ("container", "namespace", "neuroncore", "pod"),
            "neuron_k8s_info.neuroncores_k8s_info.<nc>",
        ),
        MetricSpec(
            "neuron_device_pod_info",
            "info",
            "The pod and container a Neuron device is allocated to; always 1.",
            ("container", "namespace", "neuron_device", "pod"),
            "neuron_k8s_info.neurondevices_k8s_info.<dev>",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """Pod info from the last k8s section seen."""
        if isinstance(state.k8s, K8sInfo):
            add_pods(families["neuron_neuroncore_pod_info"], "neuroncore", state.k8s.neuroncores_k8s_info)
            add_pods(families["neuron_device_pod_info"], "neuron_device", state.k8s.neurondevices_k8s_info)
