"""alerts/config.yml, validated: the job selector, cluster label, URLs and every threshold in one place.

The rules (alerts/rules.py), the PrometheusRule (deploy/kubernetes/generate.py) and the dashboards'
cluster label (dashboards/generate.py) are built from it, so a change here is a change everywhere
after `make alerts dashboards manifests`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

DEFAULT_FILE = Path(__file__).resolve().parent / "config.yml"
_DURATION = re.compile(r"(\d+(ms|s|m|h|d|w|y))+")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _duration(text: str) -> str:
    if not _DURATION.fullmatch(text):
        raise ValueError(f"{text!r} is not a Prometheus duration (e.g. 10m, 1h30m)")
    return text


def _label(text: str) -> str:
    if not _LABEL.fullmatch(text):
        raise ValueError(f"{text!r} is not a Prometheus label name")
    return text


Duration = Annotated[str, AfterValidator(_duration)]
Ratio = Annotated[float, Field(gt=0, le=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Exporters(_Section):
    down_for: Duration = "5m"
    fleet_down_ratio: Ratio = 0.1
    fleet_down_min_targets: int = Field(2, ge=1)


class Executions(_Section):
    window: Duration = "10m"
    min_executions_per_second: float = Field(1.0, ge=0)
    server_error_ratio: Ratio = 0.01
    client_error_ratio: Ratio = 0.05


class Override(_Section):
    match: dict[Annotated[str, AfterValidator(_label)], str] = Field(min_length=1)
    p99_seconds: float = Field(gt=0)


class Latency(_Section):
    window: Duration = "10m"
    for_: Duration = Field("15m", alias="for")
    p99_seconds: dict[str, float] = Field(default_factory=lambda: {"default": 2.0})
    overrides: tuple[Override, ...] = ()


class Memory(_Section):
    device_used_ratio: Ratio = 0.9
    for_: Duration = Field("10m", alias="for")


class Hardware(_Section):
    latch: Duration = "6h"


class Capacity(_Section):
    unused_for: Duration = "1h"
    idle_utilization: Ratio = 0.01
    saturated_utilization: Ratio = 0.95
    saturated_for: Duration = "15m"


class SelfHealth(_Section):
    for_: Duration = Field("15m", alias="for")


class AlertConfig(_Section):
    job_selector: str = "neuron-exporter"
    cluster_label: Annotated[str, AfterValidator(_label)] = "cluster"
    runbook_base: str = Field(pattern=r"^https?://")
    grafana_url: str = ""
    exporters: Exporters = Exporters()
    executions: Executions = Executions()
    latency: Latency = Latency()
    memory: Memory = Memory()
    hardware: Hardware = Hardware()
    capacity: Capacity = Capacity()
    self_health: SelfHealth = SelfHealth()

    def default_p99(self) -> float:
        return self.latency.p99_seconds.get("default", 2.0)


def load(path: Path = DEFAULT_FILE) -> AlertConfig:
    """The configuration in `path`; pydantic's error says what is wrong with it."""
    return AlertConfig.model_validate(yaml.safe_load(path.read_text()) or {})
