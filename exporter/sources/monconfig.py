"""The neuron-monitor configuration file (mon.json): validated before it reaches neuron-monitor.

The exporter reads it for two reasons: to fail fast with one readable line on a typo instead of
watching neuron-monitor exit in a restart loop, and to learn the report period, from which freshness
and hang detection are derived (SCHEMA.md §2).

It refuses only what cannot work: a period neuron-monitor is known or likely to ignore (anything but a
whole number followed by `s` or `m`: "1.0s" was seen to fall back to 5 s, SCHEMA.md §14), group names
current neuron-monitor rejects, a `tag_filter` outside RE2 (neuron-monitor appears to be a Go program),
and wrong shapes. A group name it does not know may be one a newer neuron-monitor added: that, and an
unknown key, is a warning and the file is passed on as it is, unless `strict` asks for refusal.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from exporter.model.schema import RUNTIME_GROUPS, SYSTEM_GROUPS

DEFAULT_PERIOD = 5.0
"""neuron-monitor's period when the config names none (every released version)."""

K8S_GROUPS = frozenset({"neuron_k8s_info", "k8s_info"})
"""The guide says k8s info appears "if `k8s_info` is enabled" and prints it as `neuron_k8s_info`; which
spelling the config takes is not documented, so both are accepted (SCHEMA.md §14)."""
SYSTEM_TYPES = frozenset(SYSTEM_GROUPS) | K8S_GROUPS
RUNTIME_TYPES = frozenset(RUNTIME_GROUPS)
RETIRED_TYPES = {
    "nc_counters": "neuroncore_counters",
    "memory": "memory_used",
    "runtime_cpu_usage": "neuron_runtime_vcpu_usage",
    "cpu_usage": "vcpu_usage",
    "hw_counters": "neuron_hw_counters",
    "inference_stats": "execution_stats",
}
"""Old group names current neuron-monitor rejects (SCHEMA.md §2), with the name that replaced them."""
ROOT_KEYS = ("period", "neuron_runtimes", "system_metrics")
RUNTIME_KEYS = ("tag_filter", "metrics", "period", "address")
GROUP_KEYS = ("type", "period")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m)\s*$")
_PERIOD = re.compile(r"^(\d+)(s|m)$")
_RE2_UNSUPPORTED = (
    (re.compile(r"\(\?<?[=!]"), "look-around"),
    (re.compile(r"\(\?P=|\\k<|\\[1-9]"), "back-references"),
    (re.compile(r"\(\?>"), "atomic groups"),
    (re.compile(r"\(\?\("), "conditionals"),
    (re.compile(r"[*+?}]\+"), "possessive quantifiers"),
)
"""Python `re` features RE2 (Go's regexp) lacks; each passes Python's check and fails in neuron-monitor."""


class ConfigError(ValueError):
    """The config cannot be used; the message is one line naming the file and the problem."""


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """What the exporter needs to know of a neuron-monitor config, and what it should warn about."""

    path: Path | None
    period: float
    groups: frozenset[str]
    warnings: tuple[str, ...] = field(default=())


def parse_duration(text: Any) -> float:
    """`"1s"` -> 1.0, `"0.5s"` -> 0.5, `"2m"` -> 120.0: the exporter's own duration flags and the
    simulator's periods; ValueError for anything else or a non-positive duration."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f'period {text!r} is not like "1s" or "1m"')
    seconds = float(match.group(1)) * (60 if match.group(2) == "m" else 1)
    if seconds <= 0:
        raise ValueError(f"period {text!r} must be positive")
    return seconds


def parse_period(text: Any, *, fractional: bool = False) -> float:
    """A period as neuron-monitor honours it: a whole number of seconds or minutes ("1s", "2m").

    Anything else that reads as a duration ("1.0s", "0.5s", " 20s", "1 s") gets an error that says what
    to write instead; `fractional` accepts those (for stand-ins that honour them, like the simulator).
    """
    seconds = parse_duration(text)
    if fractional or _PERIOD.match(text):
        return seconds
    whole = max(1, math.ceil(seconds))
    instead = f"{whole // 60}m" if whole % 60 == 0 and whole >= 60 else f"{whole}s"
    raise ValueError(
        f"period {text!r}: neuron-monitor takes a whole number followed by s or m and has been seen to "
        f'ignore others (reporting every 5 s instead); write "{instead}"'
    )


def check_tag_filter(pattern: Any) -> None:
    """ValueError unless `pattern` is a regular expression neuron-monitor (RE2) can use."""
    if not isinstance(pattern, str):
        raise ValueError("tag_filter must be a string")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"tag_filter {pattern!r} is not a regular expression: {exc}") from None
    for feature, why in _RE2_UNSUPPORTED:
        if feature.search(_without_escapes_and_classes(pattern)):
            raise ValueError(
                f"tag_filter {pattern!r} uses {why}, which neuron-monitor's regular expressions (RE2) "
                "do not have; it would fail there"
            )


def _without_escapes_and_classes(pattern: str) -> str:
    """The pattern with escaped literals and character classes blanked, keeping back-references."""
    out: list[str] = []
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            pair = pattern[index : index + 2]
            keep = not in_class and (pair[1] in "123456789" or pair == "\\k")
            out.append(pair if keep else "__")
            index += 2
            continue
        if in_class:
            in_class = char != "]"
            out.append("_")
        elif char == "[":
            in_class = True
            out.append("_")
            if pattern[index + 1 : index + 2] == "]":  # a leading ] is a literal
                out.append("_")
                index += 1
        else:
            out.append(char)
        index += 1
    return "".join(out)


class _Reader:
    """One pass over a decoded config, collecting groups with their periods and the warnings."""

    def __init__(self, *, strict: bool, fractional: bool) -> None:
        self.strict = strict
        self.fractional = fractional
        self.warnings: list[str] = []

    def period(self, obj: dict[str, Any], inherited: float | None) -> float | None:
        return parse_period(obj["period"], fractional=self.fractional) if "period" in obj else inherited

    def keys(self, obj: dict[str, Any], known: tuple[str, ...], where: str) -> None:
        """Warn (or refuse, when strict) about keys neuron-monitor's documented format does not have."""
        for key in obj:
            if key in known:
                continue
            nearest = difflib.get_close_matches(key, known, n=1)
            hint = f'; did you mean "{nearest[0]}"?' if nearest else f" (known: {', '.join(known)})"
            self.unknown(f"{where}: unknown key {key!r}{hint}")

    def unknown(self, message: str) -> None:
        if self.strict:
            raise ConfigError(f"{message} (refused: --config.strict)")
        self.warnings.append(f"{message}; passed to neuron-monitor as it is")

    def groups(
        self, entries: Any, known: frozenset[str], where: str, inherited: float | None
    ) -> Iterator[tuple[str, float | None]]:
        """(type, effective period) for each metric object of a `metrics`/`system_metrics` list."""
        if entries is None:
            return
        if not isinstance(entries, list):
            raise ConfigError(f"{where} must be a list")
        for index, entry in enumerate(entries):
            here = f"{where}[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
                raise ConfigError(f'{here} must be an object with a "type"')
            self.keys(entry, GROUP_KEYS, here)
            kind = entry["type"]
            if kind in RETIRED_TYPES:
                raise ConfigError(
                    f"{here}: metric group {kind!r} was renamed {RETIRED_TYPES[kind]!r}; current "
                    "neuron-monitor rejects the old name"
                )
            if kind not in known:
                nearest = difflib.get_close_matches(kind, sorted(known), n=1)
                hint = f'; did you mean "{nearest[0]}"?' if nearest else ""
                self.unknown(
                    f"{here}: unknown metric group {kind!r}{hint} (known: {', '.join(sorted(known))}; "
                    "a newer neuron-monitor may know it)"
                )
            yield kind, self.period(entry, inherited)


def parse_monitor_config(
    data: Any, path: Path | None = None, *, strict: bool = False, fractional: bool = False
) -> MonitorConfig:
    """Validate a decoded config; ConfigError on what cannot work, warnings for what may."""
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a JSON object")
    reader = _Reader(strict=strict, fractional=fractional)
    try:
        reader.keys(data, ROOT_KEYS, "the configuration")
        root = reader.period(data, None)
        found: list[tuple[str, float | None]] = []
        runtimes = data.get("neuron_runtimes", [])
        if not isinstance(runtimes, list):
            raise ConfigError("neuron_runtimes must be a list")
        for index, entry in enumerate(runtimes):
            where = f"neuron_runtimes[{index}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where} must be an object")
            reader.keys(entry, RUNTIME_KEYS, where)
            if entry.get("tag_filter") is not None:
                try:
                    check_tag_filter(entry["tag_filter"])
                except ValueError as exc:
                    raise ConfigError(f"{where}.{exc}") from None
            period = reader.period(entry, root)
            found.extend(reader.groups(entry.get("metrics"), RUNTIME_TYPES, f"{where}.metrics", period))
        found.extend(reader.groups(data.get("system_metrics"), SYSTEM_TYPES, "system_metrics", root))
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from None
    periods = [p if p is not None else DEFAULT_PERIOD for _, p in found]
    period = min(periods) if periods else (root or DEFAULT_PERIOD)
    return MonitorConfig(path, period, frozenset(kind for kind, _ in found), tuple(reader.warnings))


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


def load_monitor_config(path: Path, *, strict: bool = False, fractional: bool = False) -> MonitorConfig:
    """Read and validate a config file; every failure is a ConfigError naming the file."""
    data = read_json(path)
    try:
        return parse_monitor_config(data, path, strict=strict, fractional=fractional)
    except ConfigError as exc:
        raise ConfigError(f"neuron-monitor config {path}: {exc}") from None
