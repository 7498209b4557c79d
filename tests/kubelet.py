"""A real gRPC server speaking the kubelet's v1.PodResourcesLister on a unix socket, with its faults.

It is what the exporter's client talks to in tests: the same method path, the same messages, over a
real socket. `mode` switches its behaviour between answers: "normal", "slow" (holds the call until the
server stops, past any client timeout), "garbage" (answers bytes that are not a message) and "error"
(fails the call with INTERNAL). Stopping it is the kubelet being down.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc

from exporter.sources.kubelet import podresources_pb2 as api

GARBAGE = b"\xff\xff\xff not a ListPodResourcesResponse"

Grants = dict[str, list[str]]
"""resource name -> device IDs, for one container."""


def pod(namespace: str, name: str, **containers: Grants) -> api.PodResources:
    """A PodResources entry; each keyword is a container and its device grants (maybe none)."""
    return api.PodResources(
        name=name,
        namespace=namespace,
        containers=[
            api.ContainerResources(
                name=container,
                devices=[api.ContainerDevices(resource_name=r, device_ids=ids) for r, ids in grants.items()],
                cpu_ids=[2, 3],
            )
            for container, grants in containers.items()
        ],
    )


class FakeKubelet:
    """The PodResources server; `pods` and `mode` may be changed while it runs."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.pods: list[api.PodResources] = []
        self.mode = "normal"
        self.calls = 0
        self._held = threading.Event()
        self._server: grpc.Server | None = None

    def start(self) -> FakeKubelet:
        """Listen on the socket (again, after stop())."""
        self._held.clear()
        server = grpc.server(ThreadPoolExecutor(max_workers=4))
        handler = grpc.method_handlers_generic_handler(
            "v1.PodResourcesLister",
            {
                "List": grpc.unary_unary_rpc_method_handler(
                    self._list,
                    request_deserializer=api.ListPodResourcesRequest.FromString,
                    response_serializer=self._serialize,
                )
            },
        )
        server.add_generic_rpc_handlers((handler,))
        if server.add_insecure_port(f"unix://{self.socket}") == 0:
            raise RuntimeError(f"cannot listen on {self.socket}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """The kubelet goes away: calls in progress are cut, the socket is removed."""
        self._held.set()
        if self._server is not None:
            self._server.stop(grace=None).wait(10)
            self._server = None
        self.socket.unlink(missing_ok=True)

    def _list(
        self, request: api.ListPodResourcesRequest, context: grpc.ServicerContext
    ) -> api.ListPodResourcesResponse:
        self.calls += 1
        mode = self.mode
        if mode == "slow":
            self._held.wait(60)  # the fault itself: held until stop(), far past the client's timeout
        elif mode == "error":
            context.abort(grpc.StatusCode.INTERNAL, "the kubelet failed")
        return api.ListPodResourcesResponse(pod_resources=list(self.pods))

    def _serialize(self, answer: api.ListPodResourcesResponse) -> bytes:
        return GARBAGE if self.mode == "garbage" else answer.SerializeToString()


@contextmanager
def kubelet() -> Iterator[FakeKubelet]:
    """A running FakeKubelet on a socket with a short path (unix socket paths are limited to 107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="kubelet-", dir="/tmp"))
    server = FakeKubelet(folder / "kubelet.sock").start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
