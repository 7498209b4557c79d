"""Pod attribution as data: kubelet grants -> owners by core -> labels; and the client against a real server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from exporter.model.attribution import Allocations, DeviceGrant, Owner, allocations_from, attribute
from exporter.model.state import State, with_allocations
from exporter.sources.kubelet import generate
from exporter.sources.kubelet.client import KubeletError, PodResourcesClient
from tests.kubelet import kubelet, pod
from tests.reports import core_counters, report, runtime
from tests.test_state import Pipeline

A = Owner("ml", "a-0", "main")
B = Owner("ml", "b-0", "main")
C = Owner("ml", "b-0", "helper")
CORE = "aws.amazon.com/neuroncore"


def test_grants_become_indices_and_the_rest_is_ignored_or_counted() -> None:
    allocations = allocations_from(
        [
            DeviceGrant(A, CORE, ("0", "1", "1")),
            DeviceGrant(B, "aws.amazon.com/neuron", ("1",)),
            DeviceGrant(C, "aws.amazon.com/neurondevice", ("2",)),
            DeviceGrant(C, "nvidia.com/gpu", ("GPU-0", "3")),
            DeviceGrant(B, CORE, ("nc-3", "-1", " 2", "\u0663", "99999", "")),
        ]
    )
    assert allocations == Allocations(cores={0: (A,), 1: (A,)}, devices={1: (B,), 2: (C,)}, unparsed_ids=6)


def test_devices_stand_for_their_cores_once_cores_per_device_are_known() -> None:
    allocations = allocations_from(
        [DeviceGrant(A, CORE, ("0",)), DeviceGrant(B, "aws.amazon.com/neuron", ("1",))]
    )
    unknown = attribute(allocations, None)
    assert dict(unknown.cores) == {0: (A,)} and dict(unknown.devices) == {1: (B,)}
    known = attribute(allocations, 2)
    assert dict(known.cores) == {0: (A,), 2: (B,), 3: (B,)}
    assert known.owner_of([2, 3]) == B and known.owner_of([0, 2]) is None and known.owner_of([5]) is None


def test_a_core_two_containers_claim_has_no_single_owner() -> None:
    attribution = attribute(allocations_from([DeviceGrant(A, CORE, ("0",)), DeviceGrant(B, CORE, ("0",))]), 4)
    assert attribution.cores[0] == (A, B) and attribution.core_owner(0) is None


def test_a_core_two_containers_claim_gets_no_owner_labels_in_the_exposition() -> None:
    """Neither the first pod's nor the second's: a claim in conflict labels nothing, core nor runtime."""
    pipeline = Pipeline()
    pipeline.feed(report(runtime("7", neuroncore_counters=core_counters({0: 50, 1: 20})), cores_per_device=4))
    grants = [DeviceGrant(A, CORE, ("0",)), DeviceGrant(B, CORE, ("0",)), DeviceGrant(A, CORE, ("2",))]
    pipeline.store.current = with_allocations(pipeline.store.current, allocations_from(grants))
    util = pipeline.samples("neuron_neuroncore_utilization_ratio")
    assert set(util) == {
        (("neuroncore", "0"), ("runtime_tag", "7")),
        (("neuroncore", "1"), ("runtime_tag", "7")),
        tuple(sorted({"neuroncore": "2", **A.labels()}.items())),
        (("neuroncore", "3"),),
    }
    assert set(pipeline.samples("neuron_runtime_info")) == {(("pid", "7"), ("runtime_tag", "7"))}


def test_attribution_follows_the_cores_per_device_of_later_reports() -> None:
    """A kubelet answer before the first report places whole devices once the hardware is known."""
    pipeline = Pipeline()
    pipeline.store.current = with_allocations(
        State(), allocations_from([DeviceGrant(B, "aws.amazon.com/neuron", ("1",))])
    )
    assert pipeline.store.current.attribution is not None and not pipeline.store.current.attribution.cores
    pipeline.feed(
        report(runtime("7", neuroncore_counters=core_counters({5: 50})), devices=2, cores_per_device=4)
    )
    state = pipeline.store.current
    assert state.attribution is not None and state.attribution.core_owner(5) == B
    families, _ = pipeline.exposition.collector.device_families(state)
    [utilization] = [f for f in families if f.name == "neuron_neuroncore_utilization_ratio"]
    by_core = {labels["neuroncore"]: labels for labels, _ in utilization.samples}
    assert by_core["5"] == {"neuroncore": "5", "runtime_tag": "7", **B.labels()}
    assert by_core["4"] == {"neuroncore": "4", **B.labels()}  # an idle core of the device: still B's
    assert by_core["0"] == {"neuroncore": "0"}
    assert with_allocations(state, None).attribution is None


def test_the_generated_messages_match_the_proto() -> None:
    assert generate.main(["--check"]) == 0, "run `make protos`"


@pytest.mark.parametrize(
    ("mode", "result"), [("slow", "timeout"), ("garbage", "invalid"), ("error", "error")]
)
def test_the_client_names_each_failure(mode: str, result: str) -> None:
    with kubelet() as server:
        server.pods = [pod("ml", "a-0", main={CORE: ["0"]})]
        client = PodResourcesClient(server.socket, timeout=0.5, reconnect_backoff=1)
        try:
            assert client.grants() == [DeviceGrant(A, CORE, ("0",))]
            server.mode = mode
            with pytest.raises(KubeletError) as failure:
                client.grants()
            assert failure.value.result == result
            server.stop()
            with pytest.raises(KubeletError) as failure:
                client.grants()
            assert failure.value.result == "unavailable"
        finally:
            client.close()


def test_grpc_is_loaded_only_with_attribution_on() -> None:
    """grpcio and protobuf add ~16 MiB to the process: none of it for nodes outside Kubernetes."""
    probe = "import sys, exporter.app, exporter.cli; print(sorted({'grpc', 'google.protobuf'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
