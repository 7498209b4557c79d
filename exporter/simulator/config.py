"""The simulator's own small reader of neuron-monitor's config file (SCHEMA.md §2).

Apart from exporter.sources.monconfig because the simulator keeps per-entry periods and tag filters, which the
exporter never needs; the duration syntax is shared (monconfig.parse_duration), so both read "1s" alike.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.sources import monconfig

DEFAULT_PERIOD = monconfig.DEFAULT_PERIOD
"""neuron-monitor's period when the config names none (every released version)."""

RUNTIME_GROUPS = ("execution_stats", "memory_used", "neuron_runtime_vcpu_usage", "neuroncore_counters")
SYSTEM_GROUPS = ("memory_info", "neuron_hw_counters", "vcpu_usage")
K8S_GROUP = "neuron_k8s_info"
"""Not a documented config type, but accepted in `system_metrics` (as the exporter's validator does) and
then treated like `--k8s`, since the real switch for it is undocumented (SCHEMA.md §2)."""


class ConfigError(ValueError):
    """The config cannot be used; the message is one line."""


@dataclass(frozen=True, slots=True)
class RuntimeRule:
    """One `neuron_runtimes[]` entry: which tags it selects and the groups (with periods) they get."""

    tag_filter: re.Pattern[str] | None
    """None with `address_only` False = match every tag (no `tag_filter` given)."""
    address_only: bool
    """A legacy neuron-rtd entry (`address`, no `tag_filter`): there is no such daemon to talk to."""
    groups: tuple[tuple[str, float], ...]

    def matches(self, tag: str) -> bool:
        """Whether an application with this tag is monitored by this entry."""
        if self.address_only:
            return False
        # Whole-tag match (re.fullmatch), an assumption: the dialect is not documented and neuron-monitor
        # appears to be a Go program (RE2, SCHEMA.md §14). Whole-tag keeps "app_1" from selecting "app_12";
        # ".*" (the documented example) selects everything either way.
        return self.tag_filter is None or self.tag_filter.fullmatch(tag) is not None


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """A parsed config: runtime rules in file order, system groups, and the k8s group if requested."""

    period: float
    rules: tuple[RuntimeRule, ...]
    system_groups: tuple[tuple[str, float], ...]
    k8s_period: float | None = None

    @property
    def periods(self) -> tuple[float, ...]:
        """Every configured group period (used to find the emission period)."""
        found = [p for rule in self.rules for _, p in rule.groups]
        found += [p for _, p in self.system_groups]
        if self.k8s_period is not None:
            found.append(self.k8s_period)
        return tuple(found)


ALL_GROUPS = SimulatorConfig(
    period=DEFAULT_PERIOD,
    rules=(RuntimeRule(None, False, tuple((g, DEFAULT_PERIOD) for g in RUNTIME_GROUPS)),),
    system_groups=tuple((g, DEFAULT_PERIOD) for g in SYSTEM_GROUPS),
)
"""What neuron-monitor does without `-c`: every group, every application, 5 s."""


def parse_period(text: Any) -> float:
    """`"1s"` -> 1.0, `"0.5s"` -> 0.5, `"2m"` -> 120.0; ConfigError otherwise or if not positive."""
    try:
        return monconfig.parse_duration(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _period_of(obj: Mapping[str, Any], inherited: float) -> float:
    return parse_period(obj["period"]) if "period" in obj else inherited


def _groups(entries: Any, known: tuple[str, ...], where: str, inherited: float) -> dict[str, float]:
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise ConfigError(f"{where} must be a list")
    groups: dict[str, float] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise ConfigError(f'{where}[{index}] must be an object with a "type"')
        kind = entry["type"]
        if kind not in known:
            raise ConfigError(f"{where}[{index}]: unknown metric group {kind!r} (known: {', '.join(known)})")
        # A repeated type: the later entry wins, as a later key would in a merged object.
        groups[kind] = _period_of(entry, inherited)
    return groups


def parse_config(data: Any) -> SimulatorConfig:
    """Validate a decoded config object; ConfigError names the first problem."""
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a JSON object")
    root = _period_of(data, DEFAULT_PERIOD)
    runtimes = data.get("neuron_runtimes", [])
    if not isinstance(runtimes, list):
        raise ConfigError("neuron_runtimes must be a list")
    rules: list[RuntimeRule] = []
    for index, entry in enumerate(runtimes):
        where = f"neuron_runtimes[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be an object")
        pattern: re.Pattern[str] | None = None
        if "tag_filter" in entry:
            if not isinstance(entry["tag_filter"], str):
                raise ConfigError(f"{where}.tag_filter must be a string")
            try:
                pattern = re.compile(entry["tag_filter"])
            except re.error as exc:
                raise ConfigError(f"{where}.tag_filter {entry['tag_filter']!r}: {exc}") from None
        address_only = pattern is None and "address" in entry
        groups = _groups(entry.get("metrics"), RUNTIME_GROUPS, f"{where}.metrics", _period_of(entry, root))
        rules.append(RuntimeRule(pattern, address_only, tuple(sorted(groups.items()))))
    system = _groups(data.get("system_metrics"), (*SYSTEM_GROUPS, K8S_GROUP), "system_metrics", root)
    k8s_period = system.pop(K8S_GROUP, None)
    return SimulatorConfig(root, tuple(rules), tuple(sorted(system.items())), k8s_period)


def load_config(path: str | os.PathLike[str]) -> SimulatorConfig:
    """Read and parse a config file; ConfigError (one line, naming the file) on any problem."""
    try:
        data = monconfig.read_json(Path(path))
    except monconfig.ConfigError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError(f"config file {os.fspath(path)}: {exc}") from None
