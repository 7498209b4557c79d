"""The exporter's immutable view of the node and the pure reducer that advances it.

All accumulation lives here: neuron-monitor reports executions, errors, ECC events and context switches
as counts per period, and advance() sums them into totals that never decrease while the exporter lives
(a runtime that leaves and comes back under the same tag resumes its totals). Readers take
`store.current` once and see a complete state; the ingest path swaps in a new one per report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from exporter.model.attribution import Allocations, Attribution, attribute
from exporter.model.merge import merge_groups
from exporter.model.report import Report, RuntimeReport
from exporter.model.schema import (
    ExecutionStats,
    Group,
    HardwareInfo,
    InstanceInfo,
    K8sInfo,
    MemoryUsed,
    NeuronCoreCounters,
    NeuronHwCounters,
    VcpuUsage,
)

RETIRED_RUNTIMES_KEPT = 1024
"""How many departed runtimes' counter totals are remembered, so a returning tag never resets them."""


@dataclass(frozen=True, slots=True)
class Totals:
    """A runtime's accumulated execution counters, by status and by error type."""

    status: Mapping[str, float] = field(default_factory=dict)
    errors: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProcessState:
    """One process reporting under a runtime tag: its latest valid groups and the cores it uses."""

    pid: int | None
    groups: Mapping[str, Group]
    cores: frozenset[int]


@dataclass(frozen=True, slots=True)
class RuntimeState:
    """What is known about one runtime tag: its processes, their combined groups, cores and totals.

    `unmeasured` are owned cores whose utilization is unknown: the process holding them has no valid
    `neuroncore_counters` (missing, invalid, or erroring). They stay owned, and their utilization is
    left out rather than shown as 0, so a missing sample never reads as a busy core gone idle.
    """

    tag: str
    processes: Mapping[int | None, ProcessState]
    groups: Mapping[str, Group]
    cores: frozenset[int]
    unmeasured: frozenset[int]
    totals: Totals

    def group(self, name: str) -> Group | None:
        """The latest valid value of a group (combined over the tag's processes), or None."""
        return self.groups.get(name)


@dataclass(frozen=True, slots=True)
class State:
    """Everything /metrics renders from, as of the last report."""

    runtimes: Mapping[str, RuntimeState] = field(default_factory=dict)
    system: Mapping[str, Group] = field(default_factory=dict)
    instance: InstanceInfo | None = None
    hardware: HardwareInfo | None = None
    k8s: K8sInfo | None = None
    ecc_totals: Mapping[tuple[int, str], float] = field(default_factory=dict)
    context_switches_total: float | None = None
    retired: Mapping[str, Totals] = field(default_factory=dict)
    reports: int = 0
    allocations: Allocations | None = None
    """The kubelet's last good answer (None: no kubelet, or its mapping expired)."""
    attribution: Attribution | None = None
    """`allocations` expanded to cores with the current cores per device."""

    def cores_per_device(self) -> int | None:
        """`neuroncore_per_device_count` of the last hardware info, None while unknown (or 0)."""
        return cores_per_device(self.hardware)

    def known_cores(self) -> list[int]:
        """Every NeuronCore index that exists: from the hardware info, plus any a runtime listed."""
        cores: set[int] = set()
        hw = self.hardware
        if hw and hw.neuron_device_count is not None and hw.neuroncore_per_device_count is not None:
            cores.update(range(hw.neuron_device_count * hw.neuroncore_per_device_count))
        for runtime in self.runtimes.values():
            counters = runtime.group("neuroncore_counters")
            if isinstance(counters, NeuronCoreCounters):
                cores.update(counters.neuroncores_in_use)
        return sorted(cores)

    def sorted_runtimes(self) -> list[RuntimeState]:
        """Runtimes in tag order, so the exposition is deterministic."""
        return [self.runtimes[tag] for tag in sorted(self.runtimes)]


def _add(totals: Mapping[str, float], deltas: Mapping[str, float]) -> Mapping[str, float]:
    """Counter totals plus one period's counts."""
    if not deltas:
        return totals
    merged = dict(totals)
    for key, value in deltas.items():
        merged[key] = merged.get(key, 0.0) + value
    return merged


def _fresh(new: Group | None, old: Group | None) -> bool:
    """True when `new` is a new sample and not the previous one repeated.

    neuron-monitor may repeat a group that was not due in a line (SCHEMA.md §3, §12.1); a repeated
    sample is identical to the letter, its float `period` included, and must not be counted twice.
    A new sample nearly always has a new `period`, which is compared first and alone.
    """
    if new is None:
        return False
    if old is None or new.period != old.period:
        return True
    return new != old


def cores_per_device(hardware: HardwareInfo | None) -> int | None:
    """`neuroncore_per_device_count`, None while unknown (a 0 places nothing either)."""
    return (hardware.neuroncore_per_device_count or None) if hardware else None


def global_core(device: int | None, index: int | None, cores_per_device: int | None) -> int | None:
    """The node-wide NeuronCore index of a subgraph placed at (device, core within that device).

    `neuroncore_index` counts within its device (SCHEMA.md §5.6), in the logical numbering that
    `neuroncore_per_device_count` uses under LNC; without that count the core is unknown.
    """
    if device is None or index is None or not cores_per_device:
        return None
    return device * cores_per_device + index


def owned_cores(
    groups: Mapping[str, Group], previous: frozenset[int], cores_per_device: int | None
) -> frozenset[int]:
    """The NeuronCores a process uses: memory allocated on them, a model placed there, or busy now.

    Real captures list every core of the node under every runtime, zeros for the ones it does not
    use; exporting all of them would multiply series by the runtime count. Without memory data the
    ownership is sticky: a core once busy stays the process's. Model placement counts only once the
    cores per device are known.
    """
    cores: set[int] = set()
    counters = groups.get("neuroncore_counters")
    if isinstance(counters, NeuronCoreCounters):
        cores.update(i for i, c in counters.neuroncores_in_use.items() if c.neuroncore_utilization)
    memory = groups.get("memory_used")
    has_memory_map = False
    if isinstance(memory, MemoryUsed):
        used = memory.neuron_runtime_used_bytes
        per_core = used.usage_breakdown.neuroncore_memory_usage if used and used.usage_breakdown else None
        if per_core is not None:
            has_memory_map = True
            cores.update(i for i, categories in per_core.items() if any(categories.values()))
        placements = memory.placements
        if cores_per_device and placements.devices:
            # global_core() inlined: a trn1 node can place 640 subgraphs per report.
            placed = {
                d * cores_per_device + i
                for d, i in zip(placements.devices, placements.cores, strict=False)
                if d is not None and i is not None
            }
            has_memory_map = has_memory_map or bool(placed)
            cores |= placed
    if not has_memory_map:
        cores.update(previous)
    return frozenset(cores)


def _advance_process(
    old: ProcessState | None, report: RuntimeReport, cores_per_device: int | None
) -> tuple[ProcessState, ExecutionStats | None]:
    """One process's next state, and its execution sample if that is new (not a repeat)."""
    old_groups: Mapping[str, Group] = old.groups if old else {}
    groups = {k: v for k, v in old_groups.items() if k not in report.dropped}
    groups.update(report.groups)
    stats = report.groups.get("execution_stats")
    fresh = (
        stats
        if isinstance(stats, ExecutionStats) and _fresh(stats, old_groups.get("execution_stats"))
        else None
    )
    cores = owned_cores(groups, old.cores if old else frozenset(), cores_per_device)
    return ProcessState(report.pid, groups, cores), fresh


def _advance_runtime(
    old: RuntimeState | None,
    revived: Totals | None,
    reports: list[RuntimeReport],
    cores_per_device: int | None,
) -> RuntimeState:
    """One tag's next state from its previous state and its processes' entries in this report."""
    old_processes: Mapping[int | None, ProcessState] = old.processes if old else {}
    totals = old.totals if old else (revived or Totals())
    processes: dict[int | None, ProcessState] = {}
    for report in reports:
        process, stats = _advance_process(old_processes.get(report.pid), report, cores_per_device)
        processes[report.pid] = process
        if stats is not None:
            totals = Totals(
                _add(totals.status, stats.execution_summary), _add(totals.errors, stats.error_summary)
            )
    members = list(processes.values())
    groups = merge_groups([p.groups for p in members])
    cores = frozenset().union(*(p.cores for p in members))
    unmeasured = frozenset().union(
        *(p.cores for p in members if not isinstance(p.groups.get("neuroncore_counters"), NeuronCoreCounters))
    )
    return RuntimeState(reports[0].tag, processes, groups, cores, unmeasured, totals)


def _retire(retired: Mapping[str, Totals], leaving: Iterable[RuntimeState]) -> Mapping[str, Totals]:
    """Remember departed runtimes' totals, oldest forgotten first past the bound."""
    kept = dict(retired)
    for runtime in leaving:
        kept.pop(runtime.tag, None)
        kept[runtime.tag] = runtime.totals
    while len(kept) > RETIRED_RUNTIMES_KEPT:
        del kept[next(iter(kept))]
    return kept


def _ecc_totals(state: State, hw: Group | None) -> Mapping[tuple[int, str], float]:
    """ECC event totals per (device, event type), adding this period's counts."""
    if not isinstance(hw, NeuronHwCounters) or not _fresh(hw, state.system.get("neuron_hw_counters")):
        return state.ecc_totals
    totals = dict(state.ecc_totals)
    for device in hw.neuron_devices:
        for event, count in device.events().items():
            key = (device.neuron_device_index, event)
            totals[key] = totals.get(key, 0.0) + count
    return totals


def _context_switches(state: State, vcpu: Group | None) -> float | None:
    """Total context switches, adding this period's count."""
    if not isinstance(vcpu, VcpuUsage) or vcpu.context_switch_count is None:
        return state.context_switches_total
    if not _fresh(vcpu, state.system.get("vcpu_usage")):
        return state.context_switches_total
    return (state.context_switches_total or 0.0) + vcpu.context_switch_count


def with_allocations(state: State, allocations: Allocations | None) -> State:
    """The state with a new kubelet answer (or none): what the PodResources refresher swaps in."""
    attribution = None if allocations is None else attribute(allocations, state.cores_per_device())
    return replace(state, allocations=allocations, attribution=attribution)


def _attribution(state: State, per_device: int | None) -> Attribution | None:
    """The previous attribution, unless the cores per device it was expanded with changed."""
    if state.allocations is None or per_device == state.cores_per_device():
        return state.attribution
    return attribute(state.allocations, per_device)


def advance(state: State, report: Report) -> State:
    """The state after one report. Pure: no clock, no I/O, the previous state is not modified."""
    runtimes = state.runtimes
    retired = state.retired
    hardware = report.hardware or state.hardware
    per_device = cores_per_device(hardware)
    if report.runtimes is not None:
        by_tag: dict[str, list[RuntimeReport]] = {}
        for entry in report.runtimes:
            by_tag.setdefault(entry.tag, []).append(entry)
        runtimes = {}
        for tag, entries in by_tag.items():
            old = state.runtimes.get(tag)
            revived = None if old else state.retired.get(tag)
            runtimes[tag] = _advance_runtime(old, revived, entries, per_device)
        leaving = [r for tag, r in state.runtimes.items() if tag not in runtimes]
        if leaving:
            retired = _retire(retired, leaving)
        if any(tag in retired for tag in runtimes):
            retired = {tag: t for tag, t in retired.items() if tag not in runtimes}

    system = {k: v for k, v in state.system.items() if k not in report.system_dropped}
    system.update(report.system)
    return State(
        runtimes=runtimes,
        system=system,
        instance=report.instance or state.instance,
        hardware=hardware,
        k8s=None if report.k8s_dropped else (report.k8s or state.k8s),
        ecc_totals=_ecc_totals(state, report.system.get("neuron_hw_counters")),
        context_switches_total=_context_switches(state, report.system.get("vcpu_usage")),
        retired=retired,
        reports=state.reports + 1,
        allocations=state.allocations,
        attribution=_attribution(state, per_device),
    )
