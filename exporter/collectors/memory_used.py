"""`memory_used`: runtime host and device memory, its breakdown by category, and loaded models.

    neuron_runtime_memory_used_bytes{location="neuron_device",runtime_tag="4242"} 1.25e+10
    neuron_runtime_memory_breakdown_bytes{category="dma_buffers",location="host",runtime_tag="4242"} 1048576
    neuron_neuroncore_memory_used_bytes{category="tensors",neuroncore="0",runtime_tag="4242"} 20971520
    neuron_runtime_loaded_models{runtime_tag="4242"} 2

Per-model series carry the model's name, usually a temp path, so they are opt-in (--collector.memory_used.per-model).
Their identity is (runtime_tag, pid, model_id): neuron-monitor numbers models per process from 10001, so
when several processes report under one NEURON_PROCESS_TAG their models share ids (SCHEMA.md §14). With
one process per tag the pid adds no series, only the label.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import Collector, Family, MetricSpec
from exporter.model.schema import LoadedModel, MemoryUsed
from exporter.model.state import RuntimeState, State, global_core

LOCATIONS = ("host", "neuron_device")


class MemoryUsedCollector(Collector):
    """Runtime memory totals and breakdowns; model counts, or per-model detail when opted in."""

    name = "memory_used"
    description = "runtime host/device memory, host and per-NeuronCore breakdown, loaded models"
    specs = (
        MetricSpec(
            "neuron_runtime_memory_used_bytes",
            "gauge",
            "Memory used by the runtime, by location host or neuron_device (memory_used.neuron_runtime_used_bytes).",
            ("location", "runtime_tag"),
            "memory_used.neuron_runtime_used_bytes.{host,neuron_device}",
        ),
        MetricSpec(
            "neuron_runtime_memory_breakdown_bytes",
            "gauge",
            "Host memory used by the runtime, by category (neuron_runtime_used_bytes.usage_breakdown.host).",
            ("category", "location", "runtime_tag"),
            "memory_used.neuron_runtime_used_bytes.usage_breakdown.host.<category>",
        ),
        MetricSpec(
            "neuron_neuroncore_memory_used_bytes",
            "gauge",
            "Device memory used by the runtime on a NeuronCore, by category "
            "(usage_breakdown.neuroncore_memory_usage).",
            ("category", "neuroncore", "runtime_tag"),
            "memory_used.neuron_runtime_used_bytes.usage_breakdown.neuroncore_memory_usage.<nc>.<category>",
        ),
        MetricSpec(
            "neuron_device_memory_used_bytes",
            "gauge",
            "Device memory the runtimes use on one Neuron device: the per-NeuronCore breakdown of every "
            "runtime summed over the device's cores (a model load fails when one device is full, "
            "whatever the others have free).",
            ("neuron_device",),
            "memory_used.neuron_runtime_used_bytes.usage_breakdown.neuroncore_memory_usage, by device",
        ),
        MetricSpec(
            "neuron_runtime_loaded_models",
            "gauge",
            "Models loaded by the runtime (len(memory_used.loaded_models)).",
            ("runtime_tag",),
            "memory_used.loaded_models",
        ),
        MetricSpec(
            "neuron_runtime_running_models",
            "gauge",
            "Loaded models that are executing (memory_used.loaded_models[].is_running).",
            ("runtime_tag",),
            "memory_used.loaded_models[].is_running",
        ),
        MetricSpec(
            "neuron_model_info",
            "info",
            "A loaded model of process pid (opt-in: per-model); always 1. model_id is numbered per process.",
            ("model_id", "model_name", "pid", "runtime_tag", "uuid"),
            "memory_used.loaded_models[].{model_id,name,uuid}",
        ),
        MetricSpec(
            "neuron_model_running",
            "gauge",
            "1 if the loaded model is executing (opt-in: per-model).",
            ("model_id", "pid", "runtime_tag"),
            "memory_used.loaded_models[].is_running",
        ),
        MetricSpec(
            "neuron_model_memory_used_bytes",
            "gauge",
            "Memory allocated for a model subgraph at load time, by location; neuroncore is the node-wide "
            "index, neuron_device * cores per device + the subgraph's neuroncore_index (opt-in: per-model).",
            ("location", "model_id", "neuron_device", "neuroncore", "pid", "runtime_tag", "subgraph"),
            "memory_used.loaded_models[].subgraphs.<sg>.memory_used_bytes.{host,neuron_device}",
        ),
        MetricSpec(
            "neuron_model_memory_breakdown_bytes",
            "gauge",
            "Memory allocated for a model subgraph, by location and category; placed as "
            "neuron_model_memory_used_bytes (opt-in: per-model).",
            (
                "category",
                "location",
                "model_id",
                "neuron_device",
                "neuroncore",
                "pid",
                "runtime_tag",
                "subgraph",
            ),
            "memory_used.loaded_models[].subgraphs.<sg>.memory_used_bytes.usage_breakdown.<location>.<category>",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """Memory series for every runtime that has a valid memory_used group."""
        by_device: dict[int, float] = {}
        cores_per_device = state.cores_per_device()
        for runtime in state.sorted_runtimes():
            memory = runtime.group("memory_used")
            if isinstance(memory, MemoryUsed):
                self._runtime(runtime, memory, families, cores_per_device)
                if cores_per_device:
                    for core, used in _core_totals(runtime, memory).items():
                        device = core // cores_per_device
                        by_device[device] = by_device.get(device, 0) + used
        for device in sorted(by_device):
            families["neuron_device_memory_used_bytes"].add({"neuron_device": str(device)}, by_device[device])

    def _runtime(
        self,
        runtime: RuntimeState,
        memory: MemoryUsed,
        families: Mapping[str, Family],
        cores_per_device: int | None,
    ) -> None:
        tag = runtime.tag
        used = memory.neuron_runtime_used_bytes
        if used is not None:
            for location in LOCATIONS:
                value = getattr(used, location)
                if value is not None:
                    families["neuron_runtime_memory_used_bytes"].add(
                        {"location": location, "runtime_tag": tag}, value
                    )
            breakdown = used.usage_breakdown
            if breakdown is not None and breakdown.host:
                for category in sorted(breakdown.host):
                    families["neuron_runtime_memory_breakdown_bytes"].add(
                        {"category": category, "location": "host", "runtime_tag": tag},
                        breakdown.host[category],
                    )
            if breakdown is not None and breakdown.neuroncore_memory_usage:
                per_core = breakdown.neuroncore_memory_usage
                for core in sorted(runtime.cores):
                    categories = per_core.get(core) or {}
                    for category in sorted(categories):
                        families["neuron_neuroncore_memory_used_bytes"].add(
                            {"category": category, "neuroncore": str(core), "runtime_tag": tag},
                            categories[category],
                        )
        loaded, running = memory.model_count(), memory.running_count()
        if loaded is not None and running is not None:
            families["neuron_runtime_loaded_models"].add({"runtime_tag": tag}, loaded)
            families["neuron_runtime_running_models"].add({"runtime_tag": tag}, running)
        if self.options.per_model:
            # Each process's own models: ids repeat across the processes of one tag. Within a process,
            # models that share an id (Neuron 1.x reports have none, a corrupt report may repeat an
            # entry) are rendered once, the first, since duplicate series make Prometheus drop samples.
            for pid in sorted(runtime.processes, key=lambda p: (p is None, p or 0)):
                own = runtime.processes[pid].groups.get("memory_used")
                if not isinstance(own, MemoryUsed):
                    continue
                seen: set[int | None] = set()
                for model in sorted(
                    own.loaded_models, key=lambda m: (m.model_id is None, m.model_id or 0, m.uuid)
                ):
                    if model.model_id not in seen:
                        seen.add(model.model_id)
                        self._model(tag, _index(pid), model, families, cores_per_device)

    @staticmethod
    def _model(
        tag: str, pid: str, model: LoadedModel, families: Mapping[str, Family], cores_per_device: int | None
    ) -> None:
        model_id = _index(model.model_id)
        families["neuron_model_info"].add(
            {
                "model_id": model_id,
                "model_name": model.name,
                "pid": pid,
                "runtime_tag": tag,
                "uuid": model.uuid,
            },
            1,
        )
        families["neuron_model_running"].add(
            {"model_id": model_id, "pid": pid, "runtime_tag": tag}, 1 if model.is_running else 0
        )
        for name in sorted(model.subgraphs):
            subgraph = model.subgraphs[name]
            used = subgraph.memory_used_bytes
            if used is None:
                continue
            placement = {
                "neuron_device": _index(subgraph.neuron_device_index),
                "neuroncore": _index(
                    global_core(subgraph.neuron_device_index, subgraph.neuroncore_index, cores_per_device)
                ),
            }
            for location in LOCATIONS:
                value = getattr(used, location)
                if value is not None:
                    families["neuron_model_memory_used_bytes"].add(
                        {
                            "location": location,
                            "model_id": model_id,
                            **placement,
                            "pid": pid,
                            "runtime_tag": tag,
                            "subgraph": name,
                        },
                        value,
                    )
            breakdown = used.usage_breakdown
            for location in LOCATIONS:
                categories: dict[str, float] = (getattr(breakdown, location) if breakdown else None) or {}
                for category in sorted(categories):
                    families["neuron_model_memory_breakdown_bytes"].add(
                        {
                            "category": category,
                            "location": location,
                            "model_id": model_id,
                            **placement,
                            "pid": pid,
                            "runtime_tag": tag,
                            "subgraph": name,
                        },
                        categories[category],
                    )


def _index(value: int | None) -> str:
    """An index label value; empty when neuron-monitor did not say."""
    return "" if value is None else str(value)


def _core_totals(runtime: RuntimeState, memory: MemoryUsed) -> dict[int, float]:
    """Bytes the runtime uses on each of its NeuronCores, every category added up."""
    used = memory.neuron_runtime_used_bytes
    breakdown = used.usage_breakdown if used is not None else None
    if breakdown is None or not breakdown.neuroncore_memory_usage:
        return {}
    per_core = breakdown.neuroncore_memory_usage
    return {core: sum(per_core[core].values()) for core in runtime.cores if per_core.get(core)}
