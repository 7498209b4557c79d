"""One decoded neuron-monitor document -> a validated Report, group by group.

Each metric group is validated on its own, so a malformed or erroring group costs only that group for
this report; the problems are returned beside the data for the caller to count and log. Shapes from
Neuron 1.x (`instance_data`, `runtime_data`, `neuron_runtime_index`, `inference_stats`) are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from exporter.prune import without_idle_cores
from exporter.schema import (
    RUNTIME_GROUP_ALIASES,
    RUNTIME_GROUPS,
    SYSTEM_GROUPS,
    Group,
    HardwareInfo,
    InstanceInfo,
    K8sInfo,
)
from exporter.validation import first_error

RUNTIMES_SECTION = "neuron_runtime_data"
MESSAGE_VALUE_CHARS = 200
"""How much of a value taken from the report (an error text, a tag) a problem message quotes."""


class NotAReport(ValueError):
    """The document is valid JSON but not a report object."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in a report that was skipped: `invalid` (failed validation) or `monitor_error`."""

    kind: Literal["invalid", "monitor_error"]
    group: str
    message: str


@dataclass(frozen=True, slots=True)
class RuntimeReport:
    """One monitored application's entry: its identity, valid groups, and groups to forget."""

    tag: str
    pid: int | None
    groups: Mapping[str, Group]
    dropped: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Report:
    """A validated report. `runtimes is None` means the section was absent (keep the previous ones)."""

    runtimes: tuple[RuntimeReport, ...] | None
    system: Mapping[str, Group]
    system_dropped: frozenset[str]
    instance: InstanceInfo | None
    hardware: HardwareInfo | None
    k8s: K8sInfo | None
    problems: tuple[Problem, ...] = field(default=())


def _quote(value: Any) -> str:
    """A report value for a problem message: a string cut short, anything else named by its JSON type.

    Never repr() of arbitrary input: an `error` member can be a list nested hundreds deep (repr
    exhausts the recursion limit) or megabytes long (and messages are kept for log deduplication).
    """
    if isinstance(value, str):
        if len(value) <= MESSAGE_VALUE_CHARS:
            return value
        return f"{value[:MESSAGE_VALUE_CHARS]}... ({len(value)} characters)"
    if isinstance(value, (bool, int, float)):
        return str(value)
    return f"(a JSON {'object' if isinstance(value, dict) else 'array'})"


def _validate(
    model: type[BaseModel], raw: Any, group: str, problems: list[Problem], context: str
) -> Any | None:
    """Validate one section; on failure record why and return None."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems.append(Problem("invalid", group, f"{group}{context}: {first_error(exc)}"))
        return None


def _groups(
    raw: Any,
    known: Mapping[str, type[Group]],
    aliases: Mapping[str, str],
    problems: list[Problem],
    context: str,
) -> tuple[dict[str, Group], frozenset[str]]:
    """Validate the known groups of a `report`/`system_data` object; unknown groups are ignored."""
    if raw is None:
        return {}, frozenset()
    if not isinstance(raw, dict):
        problems.append(Problem("invalid", "report", f"report{context}: not an object"))
        return {}, frozenset()
    groups: dict[str, Group] = {}
    dropped: set[str] = set()
    for key, value in raw.items():
        name = aliases.get(key, key)
        model = known.get(name)
        if model is None or value is None:
            continue
        if isinstance(value, dict) and value.get("error"):
            problems.append(Problem("monitor_error", name, f"{name}{context}: {_quote(value['error'])}"))
            dropped.add(name)
            continue
        parsed = _validate(model, value, name, problems, context)
        if parsed is None:
            dropped.add(name)
        else:
            groups[name] = parsed
    return groups, frozenset(dropped)


def _runtime_tag(entry: Mapping[str, Any]) -> str | None:
    """The runtime's identity: its tag, else its PID, address or (Neuron 1.x) config index."""
    for key in ("neuron_runtime_tag", "pid", "address", "neuron_runtime_index", "runtime_index"):
        value = entry.get(key)
        if isinstance(value, bool) or value is None or value == "":
            continue
        if isinstance(value, (str, int)):
            return str(value)
    return None


def _runtime(entry: Any, problems: list[Problem], seen: set[str], prune: bool) -> RuntimeReport | None:
    """Validate one `neuron_runtime_data[]` entry."""
    if not isinstance(entry, dict):
        problems.append(Problem("invalid", RUNTIMES_SECTION, f"{RUNTIMES_SECTION}: entry is not an object"))
        return None
    tag = _runtime_tag(entry)
    if tag is None:
        problems.append(Problem("invalid", RUNTIMES_SECTION, f"{RUNTIMES_SECTION}: entry has no tag or pid"))
        return None
    if tag in seen:
        problems.append(
            Problem("invalid", RUNTIMES_SECTION, f"{RUNTIMES_SECTION}: duplicate runtime {_quote(tag)!r}")
        )
        return None
    seen.add(tag)
    pid = entry.get("pid")
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None
    if entry.get("error"):
        problems.append(
            Problem("monitor_error", RUNTIMES_SECTION, f"runtime {_quote(tag)}: {_quote(entry['error'])}")
        )
        return RuntimeReport(tag, pid, {}, frozenset(RUNTIME_GROUPS))
    context = f" (runtime {_quote(tag)})"
    raw = entry.get("report")
    if prune and type(raw) is dict:
        raw = without_idle_cores(raw)
    groups, dropped = _groups(raw, RUNTIME_GROUPS, RUNTIME_GROUP_ALIASES, problems, context)
    return RuntimeReport(tag, pid, groups, dropped)


def _section(doc: Mapping[str, Any], *names: str) -> Any:
    """The first present, non-null section among its current and historical names."""
    for name in names:
        value = doc.get(name)
        if value is not None:
            return value
    return None


def _identity(model: type[BaseModel], raw: Any, name: str, problems: list[Problem]) -> Any | None:
    """Validate an identity section; its `error` is counted but its fields are still used."""
    if raw is None:
        return None
    parsed = _validate(model, raw, name, problems, "")
    if parsed is not None and getattr(parsed, "error", None):
        problems.append(Problem("monitor_error", name, f"{name}: {_quote(parsed.error)}"))
    return parsed


def parse_report(doc: Any, *, prune_idle_cores: bool = False) -> Report:
    """Validate a decoded document; raise NotAReport if it is not an object.

    With `prune_idle_cores`, core entries a runtime does not use are dropped first (see prune.py).
    """
    if not isinstance(doc, dict):
        raise NotAReport(f"report is a JSON {type(doc).__name__}, not an object")
    problems: list[Problem] = []

    raw_runtimes = _section(doc, RUNTIMES_SECTION, "runtime_data")
    runtimes: tuple[RuntimeReport, ...] | None = None
    if isinstance(raw_runtimes, list):
        seen: set[str] = set()
        parsed = (_runtime(entry, problems, seen, prune_idle_cores) for entry in raw_runtimes)
        runtimes = tuple(r for r in parsed if r is not None)
    elif raw_runtimes is not None:
        problems.append(Problem("invalid", RUNTIMES_SECTION, f"{RUNTIMES_SECTION}: not a list"))

    system, system_dropped = _groups(doc.get("system_data"), SYSTEM_GROUPS, {}, problems, "")
    instance = _identity(
        InstanceInfo, _section(doc, "instance_info", "instance_data"), "instance_info", problems
    )
    hardware = _identity(HardwareInfo, doc.get("neuron_hardware_info"), "neuron_hardware_info", problems)

    k8s: K8sInfo | None = None
    raw_k8s = doc.get("neuron_k8s_info")
    if isinstance(raw_k8s, dict) and raw_k8s.get("error"):
        problems.append(
            Problem("monitor_error", "neuron_k8s_info", f"neuron_k8s_info: {_quote(raw_k8s['error'])}")
        )
    elif raw_k8s is not None:
        k8s = _validate(K8sInfo, raw_k8s, "neuron_k8s_info", problems, "")

    return Report(runtimes, system, system_dropped, instance, hardware, k8s, tuple(problems))
