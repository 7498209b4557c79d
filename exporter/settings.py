"""The frozen Settings the whole daemon runs from; built once from argv by cli.py, no I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exporter.prices import Price, PriceBook
from exporter.sources.monconfig import MonitorConfig

DEFAULT_POD_RESOURCES_SOCKET = Path("/var/lib/kubelet/pod-resources/kubelet.sock")
DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024
"""A trn2.48xlarge report with 64 runtimes and their models is a few MB; 64 MiB bounds memory per line."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, resolved and validated."""

    monitor_config: MonitorConfig
    monitor_argv: tuple[str, ...]
    replay: Path | None = None
    input: str | None = None
    """Sidecar mode: `-` or the path of a FIFO or file that neuron-monitor writes."""
    once: bool = False
    listen_host: str | None = None
    listen_port: int = 8000
    web_config_file: Path | None = None
    aws_compat: bool = False
    collectors: frozenset[str] = frozenset()
    per_model: bool = False
    per_vcpu: bool = False
    fixed_price: Price | None = None
    prices: PriceBook | None = None
    pricing: str = "on-demand"
    """--instance-pricing: the capacity type the node is paid as."""
    procfs: Path = Path("/proc")
    """--path.procfs: where runtime processes' command lines are read."""
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_connections: int = 1024
    config_strict: bool = False
    """--config.strict: unknown groups and keys in the neuron-monitor config are refused, not warned."""
    config_fractional: bool = False
    """--config.allow-fractional-periods: periods like "0.5s" are accepted (stand-ins honour them)."""
    stale_periods: float = 3.0
    hang_periods: float = 10.0
    log_level: str = "info"
    kubernetes: bool = False
    """Pod attribution from the kubelet's PodResources API at `pod_resources_socket`."""
    pod_resources_socket: Path = DEFAULT_POD_RESOURCES_SOCKET
    kubernetes_refresh: float = 10.0
    kubernetes_timeout: float = 2.0
    kubernetes_keep: float = 60.0
    """Seconds the last good pod mapping is used while the kubelet gives no good answer."""
    node_name: str | None = None
    """The Kubernetes node (NODE_NAME from the downward API), for neuron_kubernetes_node_info."""

    @property
    def stale_after(self) -> float | None:
        """Seconds without a report after which data is stale; replayed data never is."""
        return None if self.replay else self.stale_after_for(self.monitor_config.period)

    @property
    def hang_timeout(self) -> float:
        """Seconds a running child may stay silent before it is killed and restarted."""
        return self.hang_timeout_for(self.monitor_config.period)

    def stale_after_for(self, period: float) -> float:
        """Staleness for a given report period (also after a SIGHUP changed it)."""
        return self.stale_periods * period

    def hang_timeout_for(self, period: float) -> float:
        """Hang timeout for a given report period; never under 5 s, so start-up is not a hang."""
        return max(self.hang_periods * period, 5.0)
