"""The neuron-monitor wire contract: one pydantic model per metric group, field names = JSON keys.

Read side by side with ../shared/neuron-monitor/SCHEMA.md (section numbers below refer to it).
Every field is optional and unknown keys are ignored, because the report has grown over six years of
releases and older or newer tools omit or add members (§11). Numbers are floats unless they are
indices or ids; counts must be non-negative and finite, so a corrupt count fails its group instead of
turning a counter backwards.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Index = Annotated[int, Field(ge=0, lt=1_000_000)]


def without_nulls(value: Any) -> Any:
    """A JSON object or array with its null members left out; anything else as it is.

    Third parties report explicit nulls for sections with nothing to report (SCHEMA.md §14): a null
    member reads as an absent one, so it costs itself and never its whole group.
    """
    if type(value) is dict and None in value.values():
        return {key: member for key, member in value.items() if member is not None}
    if type(value) is list and None in value:
        return [member for member in value if member is not None]
    return value


NullsAbsent = BeforeValidator(without_nulls)
"""On a map or list field: null entries are left out instead of failing the group."""


class Model(BaseModel):
    """Base for every wire model: ignore unknown keys, immutable once parsed."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class NullTolerant(Model):
    """A wire object whose null members read as absent (groups, loaded models, pod references)."""

    @model_validator(mode="before")
    @classmethod
    def _null_members_absent(cls, data: Any) -> Any:
        return without_nulls(data)


class Group(NullTolerant):
    """Members every metric group has (§4.2): the period it covers and its own error string."""

    period: NonNegative | None = None
    error: str | None = ""


# --- runtime-level groups -------------------------------------------------------------------------


class PhysicalCore(Model):
    """One physical core of a logical NeuronCore (trn2 `v3d`, §5.4)."""

    neuroncore_utilization: NonNegative | None = None


class NeuronCoreCounter(Model):
    """One NeuronCore's counters in `neuroncores_in_use` (§5.4).

    `physical` collects every object-valued member (`v3d` today, a later core version's key tomorrow)
    keyed by the physical core name (`nc_v3.2`), as SCHEMA.md advises not to hard-code `v3d`.
    """

    neuroncore_utilization: NonNegative | None = None
    flops: NonNegative | None = None
    effective_flops: NonNegative | None = None
    """Undocumented, FLOP/s; current tools (inf2, trn1, 2025-2026) print it instead of `flops` (§14)."""
    physical: dict[str, PhysicalCore] = {}

    @model_validator(mode="before")
    @classmethod
    def _gather_physical(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        physical: dict[str, Any] = {}
        for value in data.values():
            if isinstance(value, dict):
                physical.update(value)
        if not physical:
            return data
        return {**data, "physical": physical}


class NeuronCoreCounters(Group):
    """`neuroncore_counters`: utilization (percent) and flops per NeuronCore index (§5.4)."""

    neuroncores_in_use: Annotated[dict[Index, NeuronCoreCounter], NullsAbsent] = {}


class LatencyStats(Model):
    """`latency_stats`: percentile name (`p50`) -> seconds; each side is null when nothing ran (§5.5)."""

    total_latency: Annotated[dict[str, NonNegative] | None, NullsAbsent] = None
    device_latency: Annotated[dict[str, NonNegative] | None, NullsAbsent] = None


class ExecutionStats(Group):
    """`execution_stats` (`inference_stats` before 2.4): per-period counts and latency percentiles (§5.5)."""

    error_summary: Annotated[dict[str, NonNegative], NullsAbsent] = {}
    # Neuron 1.16-2.3 named the outcome counts `inference_summary`.
    execution_summary: Annotated[dict[str, NonNegative], NullsAbsent] = Field(
        default={}, validation_alias=AliasChoices("execution_summary", "inference_summary")
    )
    latency_stats: LatencyStats | None = None


class UsageBreakdown(Model):
    """`usage_breakdown` of a runtime: host categories and per-NeuronCore device categories (§5.6)."""

    host: Annotated[dict[str, NonNegative] | None, NullsAbsent] = None
    neuroncore_memory_usage: Annotated[
        dict[Index, Annotated[dict[str, NonNegative], NullsAbsent]] | None, NullsAbsent
    ] = None


class RuntimeUsedBytes(Model):
    """`neuron_runtime_used_bytes`: totals and their breakdown (§5.6)."""

    host: NonNegative | None = None
    neuron_device: NonNegative | None = None
    usage_breakdown: UsageBreakdown | None = None


class SubgraphBreakdown(Model):
    """A subgraph's memory by location and category."""

    host: Annotated[dict[str, NonNegative] | None, NullsAbsent] = None
    neuron_device: Annotated[dict[str, NonNegative] | None, NullsAbsent] = None


class SubgraphMemory(Model):
    """`memory_used_bytes` of one subgraph of a loaded model."""

    host: NonNegative | None = None
    neuron_device: NonNegative | None = None
    usage_breakdown: SubgraphBreakdown | None = None


class Subgraph(Model):
    """One subgraph of a loaded model and where it sits."""

    memory_used_bytes: SubgraphMemory | None = None
    neuroncore_index: Index | None = None
    neuron_device_index: Index | None = None


class LoadedModel(NullTolerant):
    """One entry of `loaded_models` (§5.6); `name` is usually a temp path, hence opt-in export."""

    name: str = ""
    uuid: str = ""
    model_id: int | None = None
    is_running: bool = False
    subgraphs: Annotated[dict[str, Subgraph], NullsAbsent] = {}


MODEL_DETAIL = "model_detail"
"""Validation context key: True validates every loaded model in full (per-model series are on)."""
VCPU_DETAIL = "vcpu_detail"
"""Validation context key: True validates every vCPU's usage (per-vCPU series are on)."""


def _wants(info: ValidationInfo, key: str) -> bool:
    """Whether the validation context asks for this detail; without a context, everything is validated."""
    return True if info.context is None else bool(info.context.get(key, True))


class ModelPlacements(Model):
    """What the default metric set reads of `loaded_models`: each model's `is_running`, and where
    each subgraph sits, `neuron_device_index` and `neuroncore_index` side by side, in report order.

    A trn1 node can list 640 models with full memory breakdowns per report, which cost several
    times the JSON decode to validate as models, while by default only these few members are read.
    They are gathered from the same `loaded_models` wire field and validated here by type; a model
    or subgraph that is not an object lands in these lists as it is and fails its group.
    """

    listed: bool = False
    """Whether the group had a `loaded_models` list at all: an absent one is no count, not zero."""
    running: tuple[bool, ...] = ()
    devices: tuple[Index | None, ...] = ()
    cores: tuple[Index | None, ...] = ()
    """The subgraph's core within its device (SCHEMA.md §5.6), as neuron-monitor prints it."""

    @classmethod
    def gather(cls, models: list[Any]) -> dict[str, Any]:
        """The raw members this model validates, picked out of a raw `loaded_models` list."""
        try:
            # Well-formed input, in comprehensions: 640 models per report on a busy trn1.
            running = [model.get("is_running", False) for model in models]
            graphs = [graph for model in models for graph in model["subgraphs"].values()]
            devices = [graph.get("neuron_device_index") for graph in graphs]
            cores = [graph.get("neuroncore_index") for graph in graphs]
        except (KeyError, TypeError, AttributeError):
            return cls._gather_odd(models)
        return {"listed": True, "running": running, "devices": devices, "cores": cores}

    @staticmethod
    def _gather_odd(models: list[Any]) -> dict[str, Any]:
        """gather() for input with a model or subgraph that is not an object, or no `subgraphs`:
        whatever is not an object lands in the lists as it is, so validation names it."""
        running = [m.get("is_running", False) if type(m) is dict else m for m in models]
        devices: list[Any] = []
        cores: list[Any] = []
        for model in models:
            graphs = model.get("subgraphs") if type(model) is dict else None
            if type(graphs) is dict:
                for graph in graphs.values():
                    if type(graph) is dict:
                        devices.append(graph.get("neuron_device_index"))
                        cores.append(graph.get("neuroncore_index"))
                    else:
                        devices.append(graph)
            elif graphs is not None:
                devices.append(graphs)
        return {"listed": True, "running": running, "devices": devices, "cores": cores}


class MemoryUsed(Group):
    """`memory_used`: runtime host/device memory, its breakdown and loaded models (§5.6).

    `placements` is always filled from `loaded_models`; the models themselves are validated into
    `loaded_models` only when the validation context asks for model detail (or gives no context).
    """

    neuron_runtime_used_bytes: RuntimeUsedBytes | None = None
    placements: ModelPlacements = ModelPlacements()
    loaded_models: Annotated[list[LoadedModel], NullsAbsent] = []

    @model_validator(mode="before")
    @classmethod
    def _placements_from_models(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        models = without_nulls(data.get("loaded_models"))
        if not isinstance(models, list):
            return data  # absent, or not a list: the field's own validation says so
        out = {**data, "placements": ModelPlacements.gather(models)}
        if not _wants(info, MODEL_DETAIL):
            out["loaded_models"] = []
        return out

    def model_count(self) -> int | None:
        """How many models are loaded (whether or not they were validated in full); None when the
        group did not list them, which says nothing about how many there are."""
        return len(self.placements.running) if self.placements.listed else None

    def running_count(self) -> int | None:
        """How many loaded models are executing; None when they were not listed."""
        return sum(self.placements.running) if self.placements.listed else None


class RuntimeVcpuUsage(Model):
    """`vcpu_usage` inside `neuron_runtime_vcpu_usage`: percent in user and kernel code."""

    user: NonNegative | None = None
    system: NonNegative | None = None


class NeuronRuntimeVcpuUsage(Group):
    """`neuron_runtime_vcpu_usage` (§5.7)."""

    vcpu_usage: RuntimeVcpuUsage | None = None


# --- system-level groups --------------------------------------------------------------------------


class NeuronDeviceCounters(Model):
    """One device of `neuron_hw_counters`: ECC event counts for the period, unknown events kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    neuron_device_index: Index

    @model_validator(mode="before")
    @classmethod
    def _numbers_only(cls, data: Any) -> Any:
        """Drop members that cannot be event counts before they are stored: kept whole, one line's
        junk (a list nested 1000 deep, megabytes of text) would live in the state and in comparisons."""
        if not isinstance(data, dict):
            return data
        if "neuron_device_index" not in data and "device_index" in data:
            # The first release (2020-09) named the index `device_index`.
            data = {("neuron_device_index" if k == "device_index" else k): v for k, v in data.items()}
        return {
            key: value
            for key, value in data.items()
            if key == "neuron_device_index"
            or (isinstance(value, (int, float)) and not isinstance(value, bool))
        }

    def events(self) -> dict[str, float]:
        """Every numeric member but the index, so new ECC event types are exported without a release."""
        out: dict[str, float] = {}
        for key, value in (self.model_extra or {}).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if value < 0 or value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"ECC count {key}={value!r} is not a non-negative number")
            out[key] = float(value)
        return out

    @model_validator(mode="after")
    def _check_events(self) -> NeuronDeviceCounters:
        self.events()
        return self


class NeuronHwCounters(Group):
    """`neuron_hw_counters` (§5.8)."""

    neuron_devices: Annotated[list[NeuronDeviceCounters], NullsAbsent] = []


class CpuModes(Model):
    """Percent of time per CPU mode; keys as neuron-monitor prints them."""

    user: NonNegative | None = None
    nice: NonNegative | None = None
    system: NonNegative | None = None
    idle: NonNegative | None = None
    io_wait: NonNegative | None = None
    irq: NonNegative | None = None
    soft_irq: NonNegative | None = None


class VcpuUsage(Group):
    """`vcpu_usage` (§5.9): average and per-vCPU mode percentages, context switches in the period.

    `vcpu_count` is the number of entries in `usage_data`; the entries themselves (192 on a trn2,
    each with 7 modes) are validated only when the context asks for per-vCPU detail.
    """

    average_usage: CpuModes | None = None
    usage_data: Annotated[dict[Index, CpuModes] | None, NullsAbsent] = None
    vcpu_count: int | None = None
    context_switch_count: NonNegative | None = None

    @model_validator(mode="before")
    @classmethod
    def _count_vcpus(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("usage_data"), dict):
            return data
        out = {**data, "vcpu_count": len(data["usage_data"])}
        if not _wants(info, VCPU_DETAIL):
            out["usage_data"] = None
        return out


class MemoryInfo(Group):
    """`memory_info` (§5.10): host RAM and swap in bytes."""

    memory_total_bytes: NonNegative | None = None
    memory_used_bytes: NonNegative | None = None
    swap_total_bytes: NonNegative | None = None
    swap_used_bytes: NonNegative | None = None


# --- identity sections ----------------------------------------------------------------------------


class InstanceInfo(Model):
    """`instance_info` (`instance_data` before 2.3, §5.1)."""

    instance_name: str | None = None
    instance_id: str | None = None
    instance_type: str | None = None
    instance_availability_zone: str | None = None
    instance_availability_zone_id: str | None = None
    instance_region: str | None = None
    ami_id: str | None = None
    subnet_id: str | None = None
    ultraserver_id: str | None = None
    error: str | None = ""


class HardwareInfo(Model):
    """`neuron_hardware_info` (§5.2)."""

    neuron_device_type: str | None = None
    neuron_device_version: str | None = None
    neuroncore_version: str | None = None
    neuron_device_count: Index | None = None
    neuron_device_memory_size: NonNegative | None = None
    neuroncore_per_device_count: Index | None = None
    logical_neuroncore_config: Index | None = None
    error: str | None = ""

    @model_validator(mode="before")
    @classmethod
    def _accept_beta_name(cls, data: Any) -> Any:
        # The 2.21.0-beta docs called it `logical_neuroncore_size`.
        if (
            isinstance(data, dict)
            and "logical_neuroncore_config" not in data
            and "logical_neuroncore_size" in data
        ):
            return {**data, "logical_neuroncore_config": data["logical_neuroncore_size"]}
        return data


class PodRef(NullTolerant):
    """Which pod/containers hold a core or device (`neuron_k8s_info`, §5.3)."""

    pod_name: str = ""
    namespace: str = ""
    container_name: list[str] = []

    @model_validator(mode="before")
    @classmethod
    def _container_as_list(cls, data: Any) -> Any:
        # Documented as an array; tolerate a bare string rather than lose the pod.
        if isinstance(data, dict) and isinstance(data.get("container_name"), str):
            return {**data, "container_name": [data["container_name"]]}
        return data


class K8sInfo(Group):
    """`neuron_k8s_info` (§5.3): pod attribution of NeuronCores and devices."""

    neuroncores_k8s_info: Annotated[dict[Index, PodRef], NullsAbsent] = {}
    neurondevices_k8s_info: Annotated[dict[Index, PodRef], NullsAbsent] = {}


RUNTIME_GROUPS: dict[str, type[Group]] = {
    "neuroncore_counters": NeuronCoreCounters,
    "execution_stats": ExecutionStats,
    "memory_used": MemoryUsed,
    "neuron_runtime_vcpu_usage": NeuronRuntimeVcpuUsage,
}
"""Runtime-level groups by their report key (== config `type`)."""

SYSTEM_GROUPS: dict[str, type[Group]] = {
    "neuron_hw_counters": NeuronHwCounters,
    "vcpu_usage": VcpuUsage,
    "memory_info": MemoryInfo,
}
"""System-level groups by their report key (== config `type`)."""

RUNTIME_GROUP_ALIASES = {"inference_stats": "execution_stats"}
"""Older report keys that carry a current group's data (§2 group-name history)."""
