"""The exporter's own health: what it has ingested, what it skipped and why, and whether data is fresh.

Plain counters mutated on the ingest path and by the web guard (the exporter's own instrumentation,
not device data), read by the self collector and by the readiness endpoint.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

BAD_LINE_REASONS = ("too_long", "not_json", "schema")
"""Why a whole line is dropped: over the length bound, undecodable, or not a report object."""
KUBELET_RESULTS = ("success", "timeout", "unavailable", "invalid", "error")
"""How a PodResources refresh ended: an answer; no answer within the timeout; no kubelet listening
(or not gRPC); an answer that is not a ListPodResourcesResponse; any other gRPC error."""


@dataclass
class KubeletHealth:
    """The PodResources refresher's record (only with pod attribution on)."""

    refreshes: Counter[str] = field(default_factory=Counter)
    mapping_time: float | None = None
    """When the mapping in use was fetched (Health.clock); None while none is in use."""
    unparsed_ids: int = 0
    """Neuron device IDs in that answer that are not indices."""


@dataclass
class Health:
    """Ingest statistics and freshness; `stale_after=None` means data never goes stale (replay)."""

    stale_after: float | None
    clock: Callable[[], float] = time.time
    reports: int = 0
    last_report_time: float | None = None
    restarts: int = 0
    start_failures: int = 0
    child_running: bool = False
    replay: bool = False
    bad_lines: Counter[str] = field(default_factory=Counter)
    invalid_groups: Counter[str] = field(default_factory=Counter)
    monitor_errors: Counter[str] = field(default_factory=Counter)
    web_config_loaded: bool | None = None
    """None without --web.config.file; else whether the last (re)load of it succeeded."""
    web_config_reloads: Counter[str] = field(default_factory=Counter)
    http_rejections: Counter[str] = field(default_factory=Counter)
    http_cut: Counter[str] = field(default_factory=Counter)
    """HTTP connections the server cut, by reason (http.SHED_REASONS)."""
    rejection_reasons: tuple[str, ...] = ()
    """The reasons the current web config can reject for, exported from 0."""
    kubelet: KubeletHealth | None = None
    """None without pod attribution from the kubelet."""

    def fresh(self) -> bool:
        """A report arrived, and recently enough (within `stale_after`)."""
        if self.last_report_time is None:
            return False
        return self.stale_after is None or self.clock() - self.last_report_time <= self.stale_after

    def up(self) -> bool:
        """neuron-monitor is running (or a replay finished) and its data is fresh."""
        return (self.child_running or self.replay) and self.fresh()
