"""What every collector shares: metric declarations, a family builder, and the collector interface.

A collector declares its metrics as MetricSpec (the README's metric table is generated from these)
and, on each scrape, turns the current State into fresh metric families. Nothing is kept between
scrapes, so a runtime that left the report is simply not rendered again.
"""

from __future__ import annotations

import functools
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, KeysView, Mapping
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import ClassVar, Literal

from prometheus_client.metrics_core import Metric

from exporter.model.attribution import from_k8s_info
from exporter.model.schema import K8sInfo
from exporter.model.state import State
from exporter.prices import Price, PriceBook

Kind = Literal["gauge", "counter", "info"]

OWNER_LABELS = ("container", "namespace", "pod")
"""Added to a per-core or per-runtime series when the kubelet names the container holding it."""


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

    @property
    def attributable(self) -> bool:
        """Whether its series may carry OWNER_LABELS: those of one NeuronCore or one runtime."""
        return "neuroncore" in self.labels or "runtime_tag" in self.labels


class Family:
    """A metric family being filled for one scrape: its samples, and both ways to render them.

    Both the text format (text_lines) and OpenMetrics (openmetrics_lines) are written here directly
    rather than through prometheus_client's encoders, which spend several times longer per sample on
    checks our fixed, valid names do not need; the output is byte-identical to theirs (tested).
    to_metric() gives the family to prometheus_client for what the fast writer does not cover.
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

    @classmethod
    def of_metric(cls, metric: Metric) -> Family | None:
        """A prometheus_client Metric (the process and Python metrics) as a Family for the fast
        writers, or None if it has what they do not write: a unit, other sample names (a counter's
        `_created`), timestamps or exemplars, or a type other than gauge and counter."""
        kind: Kind
        if metric.type == "gauge":
            kind, name = "gauge", metric.name
        elif metric.type == "counter":
            kind, name = "counter", f"{metric.name}_total"
        else:
            return None
        if metric.unit:
            return None
        if any(s.name != name or s.timestamp is not None or s.exemplar is not None for s in metric.samples):
            return None
        family = cls(MetricSpec(name, kind, metric.documentation, (), "prometheus_client"))
        family.samples = [(sample.labels, sample.value) for sample in metric.samples]
        return family

    def to_metric(self) -> Metric:
        """The family as a prometheus_client Metric (for OpenMetrics)."""
        metric = Metric(self._base_name(), self.help, self.type)
        for labels, value in self.samples:
            metric.add_sample(self.name, dict(labels), float(value))
        return metric

    def _base_name(self) -> str:
        """The family's name in OpenMetrics, where a counter's `_total` belongs to its samples only."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name

    def text_lines(self, out: list[str]) -> None:
        """Append the family in Prometheus text format 0.0.4 (as prometheus_client writes it)."""
        name = self.name
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {self.type}\n")
        self._sample_lines(out)

    def openmetrics_lines(self, out: list[str]) -> None:
        """Append the family in OpenMetrics 1.0 with legacy names, as prometheus_client writes it
        for the `underscores` and `allow-utf-8` escapings (our names need no escaping in either)."""
        base = self._base_name()
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        out.append(f"# HELP {base} {help_text}\n# TYPE {base} {self.type}\n")
        self._sample_lines(out)

    def _sample_lines(self, out: list[str]) -> None:
        """The sample lines, the same in both formats: `name{labels} value`, labels sorted by name.

        Consecutive samples with the same label names share one `%`-template with the names sorted,
        so a line costs one itemgetter call and one format; values needing escapes take the slow path.
        """
        name = self.name
        append = out.append
        needs_escape = _NEEDS_ESCAPE.search
        names: KeysView[str] | None = None
        template, values_of = _layout(name, ())
        for labels, value in self.samples:
            keys = labels.keys()
            if keys != names:  # set comparison: insertion order does not matter
                names = keys
                template, values_of = _layout(name, tuple(keys))
            values = values_of(labels)
            if needs_escape("".join(values)):
                values = tuple(_escape(v) for v in values)
            append(template % (*values, go_float(value)))


_NEEDS_ESCAPE = re.compile(r'[\\"\n]')
"""A label value with one of these is escaped (backslash, double quote, newline)."""

ValuesOf = Callable[[Mapping[str, str]], tuple[str, ...]]


def _layout(name: str, keys: tuple[str, ...]) -> tuple[str, ValuesOf]:
    """The line template and value getter for one set of label names (sorted, as Prometheus does)."""
    order = sorted(keys)
    if not order:
        return f"{name} %s\n", _no_values
    pairs = ",".join(f'{key}="%s"' for key in order)
    if len(order) == 1:
        (key,) = order
        return f"{name}{{{pairs}}} %s\n", lambda labels: (labels[key],)
    return f"{name}{{{pairs}}} %s\n", itemgetter(*order)


def _no_values(labels: Mapping[str, str]) -> tuple[str, ...]:
    return ()


def _escape(value: str) -> str:
    """A label value escaped for the text format (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


_FORMATTED: dict[float, str] = {}
"""go_float's memo: memory sizes, counts and 1 repeat from scrape to scrape."""

FORMATTED_KEPT = 8192
"""The memo is cleared when it reaches this size; small, since changing values never hit it."""


def go_float(value: float) -> str:
    """A sample value formatted as Go (and prometheus_client) do: `1.5e+09`, `+Inf`, `NaN`."""
    if value == 0:  # the commonest value; kept out of the memo, where -0.0 and 0.0 are one key
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    text = _FORMATTED.get(value)
    if text is not None:
        return text
    number = float(value)
    text = repr(number)
    if text[-1] in "fn":  # inf, -inf, nan (NaN is never a dict hit, so it is formatted each time)
        return "NaN" if number != number else ("+Inf" if number > 0 else "-Inf")
    dot = text.find(".")
    if number > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        text = f"{mantissa}e+{dot - 1:02d}"
    if len(_FORMATTED) >= FORMATTED_KEPT:
        _FORMATTED.clear()
    _FORMATTED[value] = text
    return text


@dataclass(frozen=True, slots=True)
class Options:
    """Opt-in detail switches, and the node's price, that change what some collectors emit."""

    per_model: bool = False
    per_vcpu: bool = False
    fixed_price: Price | None = None
    """--instance-hourly-cost, for whatever instance this is."""
    prices: PriceBook | None = None
    """--instance-prices, looked up by the reported instance type and region."""
    pricing: str = "on-demand"
    """--instance-pricing: the capacity type the node is paid as, for the price file's lookup."""
    procfs: Path = Path("/proc")
    """--path.procfs: where runtime processes' command lines are read (the host's, with hostPID)."""
    node_name: str | None = None
    """The Kubernetes node this runs on (--kubernetes.node-name, $NODE_NAME)."""


class Collector(ABC):
    """One neuron-monitor metric group (or identity section) rendered as metric families."""

    name: ClassVar[str]
    default_enabled: ClassVar[bool] = True
    description: ClassVar[str]
    specs: ClassVar[tuple[MetricSpec, ...]]
    attributed: ClassVar[bool] = True
    """Whether its per-core and per-runtime series get OWNER_LABELS at render time (not for series
    that already name a pod, nor for AWS's names)."""

    def __init__(self, options: Options) -> None:
        self.options = options

    @abstractmethod
    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """Add this scrape's samples to the families, keyed by metric name."""

    @classmethod
    def owner_labelled(cls, spec: MetricSpec) -> bool:
        """Whether `spec`'s series carry OWNER_LABELS where the kubelet names the owner."""
        return cls.attributed and spec.attributable

    def problem(self, state: State) -> str | None:
        """What makes this collector's output incomplete for `state` although it ran (its success is
        then 0 and the message is logged once); None when nothing does."""
        del state
        return None

    def collect(self, state: State) -> list[Family]:
        """Fresh families for this scrape; empty ones are left out."""
        families = {spec.name: spec.family() for spec in self.specs}
        self.fill(state, families)
        return [family for family in families.values() if family.samples]


OwnerLabels = tuple[Mapping[str, Mapping[str, str]], Mapping[str, Mapping[str, str]]]
"""OWNER_LABELS by NeuronCore index (as the label value) and by runtime tag."""


def owner_labels(state: State) -> OwnerLabels | None:
    """The labels each core's and runtime's owner adds, worked out once per render; None without any.

    A core's owner is the container the kubelet granted it to (or, without the kubelet, the one
    neuron-monitor's neuron_k8s_info names, so pod filters work the same on both paths); a runtime's is the one container
    holding all of its cores that anyone holds. Where there is none, or several, nothing is added,
    so a series never changes its labels by a guess.
    """
    attribution = state.attribution
    if attribution is None and isinstance(state.k8s, K8sInfo):
        attribution = from_k8s_info(state.k8s.neuroncores_k8s_info)
    if attribution is None:
        return None
    by_core = {
        str(core): owners[0].labels() for core, owners in attribution.cores.items() if len(owners) == 1
    }
    by_runtime: dict[str, dict[str, str]] = {}
    for runtime in state.runtimes.values():
        owner = attribution.owner_of(runtime.cores)
        if owner is not None:
            by_runtime[runtime.tag] = owner.labels()
    return (by_core, by_runtime) if by_core or by_runtime else None


def add_owner_labels(families: list[Family], owners: OwnerLabels) -> None:
    """Give each sample of one NeuronCore, else of one runtime, its owner's OWNER_LABELS."""
    by_core, by_runtime = owners
    for family in families:
        samples = family.samples
        for position, (labels, value) in enumerate(samples):
            core = labels.get("neuroncore")
            extra = by_core.get(core) if core is not None else by_runtime.get(labels.get("runtime_tag", ""))
            if extra is not None:
                samples[position] = ({**labels, **extra}, value)


def percentile_rank(key: str) -> float | None:
    """neuron-monitor's percentile key `p99` -> 99.0, for ordering; None for keys that are not percentiles."""
    if not key.startswith("p"):
        return None
    try:
        percent = float(key[1:])
    except ValueError:
        return None
    return percent if 0 <= percent <= 100 else None


@functools.lru_cache(maxsize=64)
def percentile_order(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The percentile keys among `keys` in ascending quantile order (every report has the same seven,
    so this is worked out once, not per runtime and scrape)."""
    ranked = sorted((rank, key) for key in keys if (rank := percentile_rank(key)) is not None)
    return tuple(key for _, key in ranked)
