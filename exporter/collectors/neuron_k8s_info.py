"""Which pod and container hold each NeuronCore and device: from the kubelet, else `neuron_k8s_info`.

    neuron_neuroncore_pod_info{container="c0",namespace="n0",neuroncore="0",pod="p0"} 1

With the kubelet's PodResources answer (--kubernetes) that is the source, and per-core and per-runtime
series carry the same labels themselves; otherwise neuron-monitor's own `neuron_k8s_info` (Neuron
2.23+, AWS's beta helper) is, and per-core and per-runtime series carry its owners the same way, so a
dashboard's pod filter works on both paths.
Where both exist and name different owners, the kubelet's is exported and the cores are counted.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import Collector, Family, MetricSpec
from exporter.model.attribution import Attribution, Owner
from exporter.model.schema import K8sInfo, PodRef
from exporter.model.state import State

DISAGREEMENTS = "neuron_exporter_pod_attribution_disagreements"


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


def add_owners(family: Family, key: str, owners_by_index: Mapping[int, tuple[Owner, ...]]) -> None:
    """One series per (index, container) the kubelet granted it to."""
    for index, owners in owners_by_index.items():
        for owner in owners:
            family.add({**owner.labels(), key: str(index)}, 1)


def disagreements(k8s: K8sInfo, attribution: Attribution) -> int:
    """Cores neuron-monitor attributes to another pod or containers than the kubelet does, or to any
    pod where the kubelet names none (cores only the kubelet names are not counted: neuron-monitor
    may list only the cores in use)."""
    count = 0
    for core, ref in k8s.neuroncores_k8s_info.items():
        theirs = {Owner(ref.namespace, ref.pod_name, name) for name in ref.container_name or [""]}
        if theirs != set(attribution.cores.get(core, ())):
            count += 1
    return count


class K8sInfoCollector(Collector):
    """Pod attribution of NeuronCores and devices."""

    name = "neuron_k8s_info"
    attributed = False  # its series name their pod already
    description = "pod/container attribution of NeuronCores and devices (kubelet or neuron_k8s_info)"
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
        MetricSpec(
            DISAGREEMENTS,
            "gauge",
            "NeuronCores neuron-monitor's neuron_k8s_info attributes differently from the kubelet's "
            "PodResources answer, whose attribution is the one exported; present while both are.",
            (),
            "neuron_k8s_info.neuroncores_k8s_info and the kubelet's List",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """Pod info from the kubelet's last good answer, else from the last k8s section seen."""
        if state.attribution is not None:
            add_owners(families["neuron_neuroncore_pod_info"], "neuroncore", state.attribution.cores)
            add_owners(families["neuron_device_pod_info"], "neuron_device", state.attribution.devices)
            if isinstance(state.k8s, K8sInfo):
                families[DISAGREEMENTS].add({}, disagreements(state.k8s, state.attribution))
        elif isinstance(state.k8s, K8sInfo):
            add_pods(families["neuron_neuroncore_pod_info"], "neuroncore", state.k8s.neuroncores_k8s_info)
            add_pods(families["neuron_device_pod_info"], "neuron_device", state.k8s.neurondevices_k8s_info)
