"""What every collector shares: metric declarations, a family builder, and the collector interface.

A collector declares its metrics as MetricSpec (the README's metric table is generated from these)
and, on each scrape, turns the current State into fresh metric families. Nothing is kept between
scrapes, so a runtime that left the report is simply not rendered again.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
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
    """A metric family being filled for one scrape: its samples, and both ways to render them.

    The text format is written here directly (text_lines) rather than through prometheus_client's
    generate_latest, which spends several times longer per sample on checks our fixed, valid names
    do not need; the output is byte-identical. OpenMetrics goes through prometheus_client (to_metric).
    """

    __slots__ = ("help", "name", "samples", "type")

    def __init__(self, spec: MetricSpec) -> None:
        self.name = spec.name
        self.help = spec.help
        # An `_info` metric is a gauge fixed at 1 in the text format (the OpenMetrics `info` type
        # would rename it); keeping one type keeps both formats' names identical.
        self.type = "counter" if spec.kind == "counter" else "gauge"
        self.samples: list[tuple[Mapping[str, str], float]] = []

    def add(self, labels: Mapping[str, str], value: float) -> None:
        """Append one sample; `labels` must not be changed afterwards (it is kept, not copied)."""
        self.samples.append((labels, value))

    def to_metric(self) -> Metric:
        """The family as a prometheus_client Metric (for OpenMetrics)."""
        base = self.name.removesuffix("_total") if self.type == "counter" else self.name
        metric = Metric(base, self.help, self.type)
        for labels, value in self.samples:
            metric.add_sample(self.name, dict(labels), float(value))
        return metric

    def text_lines(self, out: list[str]) -> None:
        """Append the family in Prometheus text format 0.0.4 (as prometheus_client writes it)."""
        name = self.name
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {self.type}\n")
        orders: dict[tuple[str, ...], list[str]] = {}
        append = out.append
        for labels, value in self.samples:
            if not labels:
                append(f"{name} {go_float(value)}\n")
                continue
            keys = tuple(labels)
            order = orders.get(keys)
            if order is None:
                order = orders[keys] = sorted(keys)
            pairs = ",".join([f'{key}="{_escape(labels[key])}"' for key in order])
            append(f"{name}{{{pairs}}} {go_float(value)}\n")


def _escape(value: str) -> str:
    """A label value escaped for the text format (backslash, double quote, newline)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def go_float(value: float) -> str:
    """A sample value formatted as Go (and prometheus_client) do: `1.5e+09`, `+Inf`, `NaN`."""
    if value == 0 and math.copysign(1.0, value) > 0:
        return "0.0"  # the commonest value by far
    number = float(value)
    text = repr(number)
    if text[-1] in "fn":  # inf, -inf, nan
        return "NaN" if number != number else ("+Inf" if number > 0 else "-Inf")
    dot = text.find(".")
    if number > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


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

    def collect(self, state: State) -> list[Family]:
        """Fresh families for this scrape; empty ones are left out."""
        families = {spec.name: spec.family() for spec in self.specs}
        self.fill(state, families)
        return [family for family in families.values() if family.samples]


def percentile_rank(key: str) -> float | None:
    """neuron-monitor's percentile key `p99` -> 99.0, for ordering; None for keys that are not percentiles."""
    if not key.startswith("p"):
        return None
    try:
        percent = float(key[1:])
    except ValueError:
        return None
    return percent if 0 <= percent <= 100 else None
