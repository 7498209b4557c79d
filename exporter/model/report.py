"""One decoded neuron-monitor document -> a validated Report, group by group.

Each metric group is validated on its own, so a malformed or erroring group costs only that group for
this report; the problems are returned beside the data for the caller to count and log. Shapes from
Neuron 1.x (`instance_data`, `runtime_data`, `neuron_runtime_index`, `inference_stats`) are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ValidationError

from exporter.model.prune import without_idle_cores
from exporter.model.schema import (
    MODEL_DETAIL,
    RUNTIME_GROUP_ALIASES,
    RUNTIME_GROUPS,
    SYSTEM_GROUPS,
    VCPU_DETAIL,
    Group,
    HardwareInfo,
    InstanceInfo,
    K8sInfo,
    NeuronDeviceCounters,
    NeuronHwCounters,
)
from exporter.validation import first_error

RUNTIMES_SECTION = "neuron_runtime_data"
LEGACY_HW_COUNTERS = "hw_counters"
"""Neuron 1.x reported ECC per runtime under this key; it is read as the system `neuron_hw_counters`."""
HW_COUNTERS = "neuron_hw_counters"
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
    """One monitored process's entry: its identity, valid groups, and groups to forget.

    Several processes may share a tag (`NEURON_PROCESS_TAG` is inherited by workers); each has its
    own entry here, told apart by pid.
    """

    tag: str
    pid: int | None
    groups: Mapping[str, Group]
    dropped: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Report:
    """A validated report. `runtimes is None` means the section was absent (keep the previous ones);
    `k8s is None` with `k8s_dropped` means the k8s section failed (forget the previous mapping)."""

    runtimes: tuple[RuntimeReport, ...] | None
    system: Mapping[str, Group]
    system_dropped: frozenset[str]
    instance: InstanceInfo | None
    hardware: HardwareInfo | None
    k8s: K8sInfo | None
    problems: tuple[Problem, ...] = field(default=())
    k8s_dropped: bool = False


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """How much of a report to validate: the enabled collectors decide (ingest.Ingestor builds it)."""

    prune_idle_cores: bool = False
    """Drop core entries a runtime does not use before validation (see prune.py)."""
    model_detail: bool = True
    """Validate every loaded model in full; without it only what the default metrics read."""
    vcpu_detail: bool = True
    """Validate every vCPU's usage; without it only their number."""


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
    model: type[BaseModel],
    raw: Any,
    group: str,
    problems: list[Problem],
    context: str,
    detail: Mapping[str, bool] | None = None,
) -> Any | None:
    """Validate one section; on failure record why and return None."""
    try:
        # The validator itself, without model_validate's wrapper: this runs ~130 times per report.
        return model.__pydantic_validator__.validate_python(raw, context=detail)
    except ValidationError as exc:
        problems.append(Problem("invalid", group, f"{group}{context}: {first_error(exc)}"))
        return None


def _groups(
    raw: Any,
    known: Mapping[str, type[Group]],
    aliases: Mapping[str, str],
    problems: list[Problem],
    context: str,
    detail: Mapping[str, bool] | None = None,
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
        parsed = _validate(model, value, name, problems, context, detail)
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


def _runtime(
    entry: Any,
    problems: list[Problem],
    seen: set[tuple[str, int | None]],
    options: ParseOptions,
    legacy_hw: list[NeuronHwCounters],
    detail: Mapping[str, bool],
) -> RuntimeReport | None:
    """Validate one `neuron_runtime_data[]` entry; a Neuron 1.x `hw_counters` group goes to legacy_hw."""
    if not isinstance(entry, dict):
        problems.append(Problem("invalid", RUNTIMES_SECTION, f"{RUNTIMES_SECTION}: entry is not an object"))
        return None
    tag = _runtime_tag(entry)
    if tag is None:
        problems.append(Problem("invalid", RUNTIMES_SECTION, f"{RUNTIMES_SECTION}: entry has no tag or pid"))
        return None
    pid = entry.get("pid")
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None
    if (tag, pid) in seen:
        problems.append(
            Problem("invalid", RUNTIMES_SECTION, f"{RUNTIMES_SECTION}: duplicate runtime {_quote(tag)!r}")
        )
        return None
    seen.add((tag, pid))
    if entry.get("error"):
        problems.append(
            Problem("monitor_error", RUNTIMES_SECTION, f"runtime {_quote(tag)}: {_quote(entry['error'])}")
        )
        return RuntimeReport(tag, pid, {}, frozenset(RUNTIME_GROUPS))
    context = f" (runtime {_quote(tag)})"
    raw = entry.get("report")
    if type(raw) is dict:
        if options.prune_idle_cores:
            raw = without_idle_cores(raw)
        if LEGACY_HW_COUNTERS in raw:
            hw, _ = _groups({HW_COUNTERS: raw[LEGACY_HW_COUNTERS]}, SYSTEM_GROUPS, {}, problems, context)
            legacy = hw.get(HW_COUNTERS)
            if isinstance(legacy, NeuronHwCounters):
                legacy_hw.append(legacy)
    groups, dropped = _groups(raw, RUNTIME_GROUPS, RUNTIME_GROUP_ALIASES, problems, context, detail)
    return RuntimeReport(tag, pid, groups, dropped)


def _legacy_hw_counters(parts: list[NeuronHwCounters]) -> NeuronHwCounters:
    """The runtime-level ECC groups of a Neuron 1.x report as one system group (a device listed by
    two runtimes is taken once, from the first)."""
    devices: dict[int, NeuronDeviceCounters] = {}
    for part in parts:
        for device in part.neuron_devices:
            devices.setdefault(device.neuron_device_index, device)
    return NeuronHwCounters.model_construct(
        period=parts[0].period, error="", neuron_devices=[devices[i] for i in sorted(devices)]
    )


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


TOP_LEVEL_KEYS = frozenset(
    {"neuron_runtime_data", "system_data", "instance_info", "neuron_hardware_info", "neuron_k8s_info"}
    | {"runtime_data", "instance_data"}
)
"""The sections a report has (SCHEMA.md §4), with their names before 2.3.0."""


def looks_like_report(line: bytes) -> bool:
    """Whether a line is a JSON object with at least one of a report's sections (cheap pre-flight
    check of a capture; the ingest path validates everything)."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and not TOP_LEVEL_KEYS.isdisjoint(doc)


def parse_report(doc: Any, options: ParseOptions = ParseOptions()) -> Report:
    """Validate a decoded document; raise NotAReport if it is not an object."""
    if not isinstance(doc, dict):
        raise NotAReport(f"report is a JSON {type(doc).__name__}, not an object")
    problems: list[Problem] = []

    instance = _identity(
        InstanceInfo, _section(doc, "instance_info", "instance_data"), "instance_info", problems
    )
    hardware = _identity(HardwareInfo, doc.get("neuron_hardware_info"), "neuron_hardware_info", problems)
    detail = {MODEL_DETAIL: options.model_detail, VCPU_DETAIL: options.vcpu_detail}
    raw_runtimes = _section(doc, RUNTIMES_SECTION, "runtime_data")
    runtimes: tuple[RuntimeReport, ...] | None = None
    legacy_hw: list[NeuronHwCounters] = []
    if isinstance(raw_runtimes, list):
        seen: set[tuple[str, int | None]] = set()
        parsed = (_runtime(entry, problems, seen, options, legacy_hw, detail) for entry in raw_runtimes)
        runtimes = tuple(r for r in parsed if r is not None)
    elif raw_runtimes is not None:
        problems.append(Problem("invalid", RUNTIMES_SECTION, f"{RUNTIMES_SECTION}: not a list"))

    system, system_dropped = _groups(doc.get("system_data"), SYSTEM_GROUPS, {}, problems, "", detail)
    if legacy_hw and HW_COUNTERS not in system and HW_COUNTERS not in system_dropped:
        system[HW_COUNTERS] = _legacy_hw_counters(legacy_hw)

    k8s: K8sInfo | None = None
    k8s_dropped = False
    raw_k8s = doc.get("neuron_k8s_info")
    if isinstance(raw_k8s, dict) and raw_k8s.get("error"):
        problems.append(
            Problem("monitor_error", "neuron_k8s_info", f"neuron_k8s_info: {_quote(raw_k8s['error'])}")
        )
        k8s_dropped = True
    elif raw_k8s is not None:
        k8s = _validate(K8sInfo, raw_k8s, "neuron_k8s_info", problems, "")
        k8s_dropped = k8s is None

    return Report(runtimes, system, system_dropped, instance, hardware, k8s, tuple(problems), k8s_dropped)
