"""The neuron-monitor configuration file (mon.json): validated before it reaches neuron-monitor.

The exporter reads it for two reasons: to fail fast with one readable line on a typo instead of
watching neuron-monitor exit in a restart loop, and to learn the report period, from which freshness
and hang detection are derived (SCHEMA.md §2).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from exporter.model.schema import RUNTIME_GROUPS, SYSTEM_GROUPS

DEFAULT_PERIOD = 5.0
"""neuron-monitor's period when the config names none (every released version)."""

SYSTEM_TYPES = frozenset(SYSTEM_GROUPS) | {"neuron_k8s_info"}
RUNTIME_TYPES = frozenset(RUNTIME_GROUPS)

_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m)\s*$")


class ConfigError(ValueError):
    """The config cannot be used; the message is one line naming the file and the problem."""


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """What the exporter needs to know of a neuron-monitor config."""

    path: Path | None
    period: float
    groups: frozenset[str]


def parse_period(text: Any) -> float:
    """`"1s"` -> 1.0, `"2m"` -> 120.0; ValueError for anything else or a non-positive period."""
    match = _PERIOD.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f'period {text!r} is not like "1s" or "1m"')
    seconds = float(match.group(1)) * (60 if match.group(2) == "m" else 1)
    if seconds <= 0:
        raise ValueError(f"period {text!r} must be positive")
    return seconds


def _group_periods(
    entries: Any, known: frozenset[str], where: str, inherited: float | None
) -> Iterator[tuple[str, float | None]]:
    """(type, effective period) for each metric object of a `metrics`/`system_metrics` list."""
    if entries is None:
        return
    if not isinstance(entries, list):
        raise ConfigError(f"{where} must be a list")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise ConfigError(f'{where}[{index}] must be an object with a "type"')
        kind = entry["type"]
        if kind not in known:
            raise ConfigError(
                f"{where}[{index}]: unknown metric group {kind!r} (known: {', '.join(sorted(known))})"
            )
        period = parse_period(entry["period"]) if "period" in entry else inherited
        yield kind, period


def parse_monitor_config(data: Any, path: Path | None = None) -> MonitorConfig:
    """Validate a decoded config; ConfigError on unknown groups, bad periods or wrong shapes."""
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a JSON object")
    try:
        root = parse_period(data["period"]) if "period" in data else None
        found: list[tuple[str, float | None]] = []
        runtimes = data.get("neuron_runtimes", [])
        if not isinstance(runtimes, list):
            raise ConfigError("neuron_runtimes must be a list")
        for index, entry in enumerate(runtimes):
            where = f"neuron_runtimes[{index}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where} must be an object")
            tag_filter = entry.get("tag_filter")
            if tag_filter is not None:
                try:
                    re.compile(tag_filter)
                except (re.error, TypeError) as exc:
                    raise ConfigError(f"{where}.tag_filter is not a regular expression: {exc}") from None
            period = parse_period(entry["period"]) if "period" in entry else root
            found.extend(_group_periods(entry.get("metrics"), RUNTIME_TYPES, f"{where}.metrics", period))
        found.extend(_group_periods(data.get("system_metrics"), SYSTEM_TYPES, "system_metrics", root))
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from None
    periods = [p if p is not None else DEFAULT_PERIOD for _, p in found]
    period = min(periods) if periods else (root or DEFAULT_PERIOD)
    return MonitorConfig(path, period, frozenset(kind for kind, _ in found))


def read_json(path: Path) -> Any:
    """A config file's decoded JSON; ConfigError (one line naming the file) if unreadable or not JSON."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read neuron-monitor config {path}: {exc.strerror}") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"neuron-monitor config {path} is not valid JSON: {exc}") from None


def load_monitor_config(path: Path) -> MonitorConfig:
    """Read and validate a config file; every failure is a ConfigError naming the file."""
    data = read_json(path)
    try:
        return parse_monitor_config(data, path)
    except ConfigError as exc:
        raise ConfigError(f"neuron-monitor config {path}: {exc}") from None
