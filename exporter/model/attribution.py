"""Which pod, namespace and container holds each NeuronCore: the kubelet's allocations, reduced.

The kubelet's PodResources API lists, per container, the device-plugin IDs it was given. For Neuron
those are NeuronCore indices (`aws.amazon.com/neuroncore`) or device indices (`aws.amazon.com/neuron`,
and the older `aws.amazon.com/neurondevice`), which stand for every core of the device: device d holds
cores d*n .. d*n+n-1, n being `neuroncore_per_device_count` (logical cores under LNC). Pure data in,
data out: the gRPC client (sources/kubelet) hands plain tuples here, and State carries the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

CORE_RESOURCE = "aws.amazon.com/neuroncore"
DEVICE_RESOURCES = frozenset({"aws.amazon.com/neuron", "aws.amazon.com/neurondevice"})
"""Whole-device resources: the current name and the legacy one (older device plugins)."""
MAX_INDEX = 4096
"""IDs above this are not a Neuron index (the largest node has 128 logical cores); counted as unparsed."""


class PodRefLike(Protocol):
    """What neuron_k8s_info says of one core (model.schema.PodRef), as far as owners need it."""

    @property
    def pod_name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def container_name(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True, order=True)
class Owner:
    """A container that was allocated a core or device."""

    namespace: str
    pod: str
    container: str

    def labels(self) -> dict[str, str]:
        """The labels it adds to a series."""
        return {"container": self.container, "namespace": self.namespace, "pod": self.pod}


@dataclass(frozen=True, slots=True)
class DeviceGrant:
    """One ContainerDevices entry of the kubelet's answer, as plain data."""

    owner: Owner
    resource: str
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Allocations:
    """The kubelet's answer reduced to Neuron resources, by index; unparsed IDs are only counted.

    Owners per index are sorted and usually one: the device plugin grants an ID to one container.
    """

    cores: Mapping[int, tuple[Owner, ...]]
    devices: Mapping[int, tuple[Owner, ...]]
    unparsed_ids: int = 0


def allocations_from(grants: Iterable[DeviceGrant]) -> Allocations:
    """Keep the Neuron grants; other resources are ignored, IDs that are not indices are counted."""
    cores: dict[int, set[Owner]] = {}
    devices: dict[int, set[Owner]] = {}
    unparsed = 0
    for grant in grants:
        if grant.resource == CORE_RESOURCE:
            target = cores
        elif grant.resource in DEVICE_RESOURCES:
            target = devices
        else:
            continue
        for device_id in grant.ids:
            index = _index(device_id)
            if index is None:
                unparsed += 1
                continue
            target.setdefault(index, set()).add(grant.owner)
    return Allocations(_sorted(cores), _sorted(devices), unparsed)


def _index(device_id: str) -> int | None:
    """A plain decimal index ("7"), or None: no sign, spaces, or other forms."""
    if not device_id.isascii() or not device_id.isdigit():
        return None
    index = int(device_id)
    return index if index <= MAX_INDEX else None


def _sorted(by_index: Mapping[int, set[Owner]]) -> dict[int, tuple[Owner, ...]]:
    return {index: tuple(sorted(owners)) for index, owners in sorted(by_index.items())}


@dataclass(frozen=True, slots=True)
class Attribution:
    """Owners by NeuronCore (core grants plus the cores of granted devices) and by device."""

    cores: Mapping[int, tuple[Owner, ...]]
    devices: Mapping[int, tuple[Owner, ...]]

    def core_owner(self, core: int) -> Owner | None:
        """The one container holding `core`, or None if none does or (a conflict) several do."""
        owners = self.cores.get(core, ())
        return owners[0] if len(owners) == 1 else None

    def owner_of(self, cores: Iterable[int]) -> Owner | None:
        """The one container holding all of `cores` that any container holds (a runtime's owner)."""
        found: set[Owner] = set()
        for core in cores:
            found.update(self.cores.get(core, ()))
            if len(found) > 1:
                return None
        return next(iter(found)) if found else None


def from_k8s_info(cores: Mapping[int, PodRefLike]) -> Attribution:
    """neuron-monitor's own `neuron_k8s_info` core map as an Attribution, for when the kubelet is not asked.

    Each listed container of the pod holding a core is an owner of it (a pod with no container name has
    one owner with an empty container), so the same rule as for the kubelet's answer decides which
    series carry owner labels: exactly one owner, else none.
    """
    owners = {
        index: tuple(
            sorted({Owner(ref.namespace, ref.pod_name, name) for name in ref.container_name or [""]})
        )
        for index, ref in cores.items()
        if ref.pod_name
    }
    return Attribution(dict(sorted(owners.items())), {})


def attribute(allocations: Allocations, cores_per_device: int | None) -> Attribution:
    """Expand device grants to their cores; while cores per device are unknown, devices place no core."""
    cores: dict[int, set[Owner]] = {index: set(owners) for index, owners in allocations.cores.items()}
    if cores_per_device:
        for device, owners in allocations.devices.items():
            first = device * cores_per_device
            for core in range(first, first + cores_per_device):
                cores.setdefault(core, set()).update(owners)
    return Attribution(_sorted(cores), allocations.devices)
