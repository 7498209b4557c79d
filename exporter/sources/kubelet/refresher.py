"""Keeps the kubelet's pod mapping in the State, on its own schedule, off the ingest and scrape paths.

Every `interval` it asks the kubelet (in a worker thread, bounded by the client's timeout) and swaps
the answer into the store, where collectors find it; an unchanged answer is not swapped in, so the
render cache survives it. A failed refresh keeps the last good mapping for up to `keep_for` seconds
after it was fetched, then drops it: attribution then falls back to neuron-monitor's own
`neuron_k8s_info`, or to none, rather than naming pods that may be long gone.
"""

from __future__ import annotations

import logging
from typing import Protocol

import anyio
import anyio.abc

from exporter.exposition import Store
from exporter.health import Health, KubeletHealth
from exporter.model.attribution import DeviceGrant, allocations_from
from exporter.model.state import with_allocations
from exporter.sources.kubelet.client import KubeletError

log = logging.getLogger(__name__)


class GrantSource(Protocol):
    """What the refresher asks: PodResourcesClient, or a stand-in in tests."""

    def grants(self) -> list[DeviceGrant]:
        """Every device grant now; KubeletError when there is no usable answer."""


class Refresher:
    """The PodResources refresh loop; `run()` until cancelled."""

    def __init__(
        self, source: GrantSource, store: Store, health: Health, *, interval: float, keep_for: float
    ) -> None:
        self.source = source
        self.store = store
        self.health = health
        self.kubelet = health.kubelet = health.kubelet or KubeletHealth()
        self.interval = interval
        self.keep_for = keep_for
        self._last_result: str | None = None

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Refresh now and then every interval; started() at once, so nothing waits on the kubelet."""
        task_status.started()
        while True:
            await self.refresh()
            await anyio.sleep(self.interval)

    async def refresh(self) -> str:
        """One refresh; its result (health.KUBELET_RESULTS)."""
        try:
            grants = await anyio.to_thread.run_sync(self.source.grants)
        except KubeletError as exc:
            self._failed(exc)
            return exc.result
        allocations = allocations_from(grants)
        kubelet = self.kubelet
        kubelet.refreshes["success"] += 1
        kubelet.mapping_time = self.health.clock()
        kubelet.unparsed_ids = allocations.unparsed_ids
        if self._last_result != "success":
            log.info(
                "kubelet PodResources: %d NeuronCore and %d device grants",
                len(allocations.cores),
                len(allocations.devices),
            )
        self._last_result = "success"
        state = self.store.current
        if allocations != state.allocations:
            self.store.current = with_allocations(state, allocations)
        return "success"

    def _failed(self, exc: KubeletError) -> None:
        kubelet = self.kubelet
        kubelet.refreshes[exc.result] += 1
        held = kubelet.mapping_time
        expired = held is not None and self.health.clock() - held > self.keep_for
        if exc.result != self._last_result:
            keeping = (
                f"; keeping the last mapping for up to {self.keep_for:g} s"
                if held is not None and not expired
                else ""
            )
            log.warning("%s%s", exc, keeping)
        self._last_result = exc.result
        if expired:
            log.warning("no good answer from the kubelet for %g s: pod attribution dropped", self.keep_for)
            kubelet.mapping_time = None
            kubelet.unparsed_ids = 0
            self.store.current = with_allocations(self.store.current, None)
