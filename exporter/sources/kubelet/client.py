"""A gRPC client of the kubelet's `v1.PodResourcesLister/List`, over its unix socket.

Synchronous on purpose: the refresher calls it in a worker thread with a deadline, so a kubelet that
is down, slow or answering garbage costs one thread for at most the timeout, never the event loop or
a scrape. The answer is parsed here rather than by grpc, so an answer that is not a
ListPodResourcesResponse is told apart from a gRPC failure, and every failure carries one of
health.KUBELET_RESULTS.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from google.protobuf.message import DecodeError

from exporter.model.attribution import DeviceGrant, Owner
from exporter.sources.kubelet import podresources_pb2 as api

DEFAULT_SOCKET = Path("/var/lib/kubelet/pod-resources/kubelet.sock")
LIST_METHOD = "/v1.PodResourcesLister/List"
MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""The kubelet's own limit for this API's messages."""


class KubeletError(Exception):
    """A refresh without a usable answer; `result` is one of health.KUBELET_RESULTS."""

    def __init__(self, result: str, message: str) -> None:
        super().__init__(message)
        self.result = result


class PodResourcesClient:
    """One channel to the kubelet, reused; grpc reconnects it (within `reconnect_backoff`) when it drops."""

    def __init__(self, socket: Path, *, timeout: float, reconnect_backoff: float) -> None:
        self.socket = socket
        self.timeout = timeout
        backoff_ms = max(100, int(reconnect_backoff * 1000))
        # grpc's default reconnect backoff grows to 120 s: a kubelet restarted for a minute would
        # then be noticed minutes late. Capped, a refresh finds it again within one interval.
        self._channel = grpc.insecure_channel(
            f"unix://{socket}",
            options=[
                ("grpc.max_receive_message_length", MAX_ANSWER_BYTES),
                ("grpc.initial_reconnect_backoff_ms", min(1000, backoff_ms)),
                ("grpc.min_reconnect_backoff_ms", min(1000, backoff_ms)),
                ("grpc.max_reconnect_backoff_ms", backoff_ms),
            ],
        )
        # No response deserializer: the raw answer comes back, and is parsed below.
        self._list: grpc.UnaryUnaryMultiCallable[api.ListPodResourcesRequest, object] = (
            self._channel.unary_unary(
                LIST_METHOD, request_serializer=api.ListPodResourcesRequest.SerializeToString
            )
        )

    def grants(self) -> list[DeviceGrant]:
        """Every device grant the kubelet lists now; KubeletError if there is no usable answer."""
        try:
            raw = self._list(api.ListPodResourcesRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise _failure(exc) from None
        if not isinstance(raw, bytes):
            raise KubeletError("invalid", f"the kubelet's answer is {type(raw).__name__}, not bytes")
        try:
            answer = api.ListPodResourcesResponse.FromString(raw)
        except DecodeError as exc:
            raise KubeletError(
                "invalid", f"the kubelet's answer is not a ListPodResourcesResponse: {exc}"
            ) from None
        return [
            DeviceGrant(
                Owner(pod.namespace, pod.name, container.name),
                devices.resource_name,
                tuple(devices.device_ids),
            )
            for pod in answer.pod_resources
            for container in pod.containers
            for devices in container.devices
        ]

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()


def _failure(exc: grpc.RpcError) -> KubeletError:
    code = exc.code() if isinstance(exc, grpc.Call) else None
    details = (exc.details() if isinstance(exc, grpc.Call) else None) or str(exc)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return KubeletError("timeout", "no answer from the kubelet within the timeout")
    if code == grpc.StatusCode.UNAVAILABLE:
        return KubeletError("unavailable", f"kubelet PodResources unavailable: {details}")
    name = code.name if code is not None else "unknown"
    return KubeletError("error", f"kubelet PodResources List failed: {name}: {details}")
