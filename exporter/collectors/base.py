"""What every collector shares: metric declarations, a family builder, and the collector interface.

A collector declares its metrics as MetricSpec (the README's metric table is generated from these)
and, on each scrape, turns the current State into fresh metric families. Nothing is kept between
scrapes, so a runtime that left the report is simply not rendered again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from prometheus_client.metrics_core import Metric

from exporter.state import State

Kind = Literal["gauge", "counter", "info"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One exported metric: the public API, so its name and labels never change lightly."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    source: str

    def family(self) -> Family:
        """A new, empty family for one scrape."""
        return Family(self)


class Family:
    """A metric family being filled for one scrape; thin over prometheus_client's Metric."""

    __slots__ = ("metric", "sample_name")

    def __init__(self, spec: MetricSpec) -> None:
        if spec.kind == "counter":
            base = spec.name.removesuffix("_total")
            self.metric = Metric(base, spec.help, "counter")
            self.sample_name = base + "_total"
        else:
            # An `_info` metric is a gauge fixed at 1 in the text format (the OpenMetrics `info` type
            # would rename it); keeping one type keeps both formats' names identical.
            self.metric = Metric(spec.name, spec.help, "gauge")
            self.sample_name = spec.name

    def add(self, labels: Mapping[str, str], value: float) -> None:
        """Append one sample; labels are passed as built (callers keep them in declaration order)."""
        self.metric.add_sample(self.sample_name, dict(labels), float(value))


@dataclass(frozen=True, slots=True)
class Options:
    """Opt-in detail switches that change what some collectors emit."""

    per_model: bool = False
    per_vcpu: bool = False


class Collector(ABC):
    """One neuron-monitor metric group (or identity section) rendered as metric families."""

    name: ClassVar[str]
    default_enabled: ClassVar[bool] = True
    description: ClassVar[str]
    specs: ClassVar[tuple[MetricSpec, ...]]

    def __init__(self, options: Options) -> None:
        self.options = options

    @abstractmethod
    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """Add this scrape's samples to the families, keyed by metric name."""

    def collect(self, state: State) -> Iterator[Metric]:
        """Fresh families for this scrape; empty ones are left out."""
        families = {spec.name: spec.family() for spec in self.specs}
        self.fill(state, families)
        for family in families.values():
            if family.metric.samples:
                yield family.metric


def percentile_rank(key: str) -> float | None:
    """neuron-monitor's percentile key `p99` -> 99.0, for ordering; None for keys that are not percentiles."""
    if not key.startswith("p"):
        return None
    try:
        percent = float(key[1:])
    except ValueError:
        return None
    return percent if 0 <= percent <= 100 else None
