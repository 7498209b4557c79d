"""One function per neuron-monitor metric group, each building a group's JSON body (SCHEMA.md §5.3-5.10).

Runtime-level builders take (host, runtime, sample), system-level ones (host, sample); `RUNTIME_GROUPS`
and `SYSTEM_GROUPS` map config types to them. Each returns a fresh dict; the caller decides when a
group is refreshed and hands in that refresh's Sample.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from exporter.simulator.load import round64, tidy
from exporter.simulator.runtimes import ROTATION_S, Runtime, Subgraph
from exporter.simulator.shapes import Shape

ERROR_FIELDS = ("generic", "numerical", "transient", "model", "runtime", "hardware")
"""The error types of the guide; current tools (runtime 2.30.51) print all but `generic` (SCHEMA.md §14)."""
CURRENT_ERROR_FIELDS = ("hardware", "model", "numerical", "runtime", "transient")
OUTCOME_FIELDS = (
    "completed",
    "completed_with_err",
    "completed_with_num_err",
    "timed_out",
    "incorrect_input",
    "failed_to_queue",
)
PERCENTILES = ("p0", "p1", "p25", "p50", "p75", "p99", "p100")
CPU_FIELDS = ("user", "nice", "system", "idle", "io_wait", "irq", "soft_irq")

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sample:
    """One refresh of a group: its own generator, when it happened, what it prints as `period`."""

    gen: random.Random
    t: float
    """Simulated seconds since start; the load pattern is read at this time."""
    period: float
    """The `period` value to print (nominal seconds covered plus collection jitter)."""
    covered: float
    """Nominal seconds since the previous refresh: per-period counts scale with it."""


@dataclass(frozen=True, slots=True)
class Host:
    """The machine every group describes: its shape, all its applications, fixed per-vCPU habits."""

    shape: Shape
    runtimes: tuple[Runtime, ...]
    cpu_bias: tuple[float, ...]
    guide: bool = False
    """Print the user guide's shape (`flops`, a `generic` error type) instead of what current tools
    print (`effective_flops` in FLOP/s and no `flops`, no `generic`, each subgraph's physical core)."""

    def load(self, t: float) -> float:
        """Average activity of all applications at time t: what the host CPUs feel."""
        if not self.runtimes:
            return 0.0
        return sum(r.activity(t) for r in self.runtimes) / len(self.runtimes)


@functools.cache
def _core_names(shape: Shape) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Per logical core: its key and the names of its physical cores (`nc_v3.<global index>`)."""
    return tuple(
        (str(core), tuple(f"{shape.physical_prefix}.{core * shape.lnc + k}" for k in range(shape.lnc)))
        for core in range(shape.cores)
    )


def neuroncore_counters(host: Host, runtime: Runtime, sample: Sample) -> Json:
    """Utilization (percent) and FLOP/s of every core of the instance; 0 on cores the runtime does not use.

    Current tools print the rate as `effective_flops` and no `flops`; the guide shows `flops` (SCHEMA.md §14).
    """
    shape, gen = host.shape, sample.gen
    flops_key = "flops" if host.guide else "effective_flops"
    activity = runtime.activity(sample.t)
    owned = dict(zip(runtime.cores, zip(runtime.core_skew, runtime.share, strict=True), strict=True))
    physical_key = shape.physical_key
    peak = shape.peak_flops_per_core
    cores: Json = {}
    for core, (key, physical) in enumerate(_core_names(shape)):
        entry: Json
        if activity > 0 and core in owned:
            skew, share = owned[core]
            raw = runtime.peak_utilization * activity * skew * share * gen.uniform(0.92, 1.08)
            utilization = min(100.0, max(0.01, raw))
            if physical_key is not None:
                entry = _logical_core(physical_key, physical, utilization, gen)
                utilization = entry["neuroncore_utilization"]
            else:
                entry = {"neuroncore_utilization": tidy(utilization)}
            if peak is not None:
                entry[flops_key] = int(
                    peak * utilization / 100.0 * runtime.flops_efficiency * gen.uniform(0.9, 1.1)
                )
        else:
            # Listed anyway, as real captures list every core of the node under every runtime.
            entry = {"neuroncore_utilization": 0}
            if physical_key is not None and len(physical) == 2:
                # Spelled out for LNC=2 (trn2): this runs for every idle core of every runtime.
                entry[physical_key] = {
                    physical[0]: {"neuroncore_utilization": 0},
                    physical[1]: {"neuroncore_utilization": 0},
                }
            elif physical_key is not None:
                entry[physical_key] = {name: {"neuroncore_utilization": 0} for name in physical}
            if peak is not None:
                entry[flops_key] = 0
        cores[key] = entry
    return {"period": sample.period, "neuroncores_in_use": cores, "error": ""}


def _logical_core(
    physical_key: str, physical: tuple[str, ...], utilization: float, gen: random.Random
) -> Json:
    """A logical core whose value is the mean of its physical cores (`v3d` on trn2, SCHEMA.md §5.4)."""
    # Physical cores of one logical core rarely run evenly; spread them symmetrically so the mean is
    # exactly the logical value and none leaves 0-100.
    spread = min(abs(gen.uniform(-0.35, 0.35)) * utilization, 100.0 - utilization, utilization)
    offsets = [spread * (1 if k % 2 == 0 else -1) for k in range(len(physical))]
    if len(physical) % 2:
        offsets[-1] = 0.0
    if gen.random() < 0.5:
        offsets.reverse()
    values = [round(utilization + offset, 2) for offset in offsets]
    return {
        "neuroncore_utilization": tidy(math.fsum(values) / len(values)),
        physical_key: {
            name: {"neuroncore_utilization": tidy(value)}
            for name, value in zip(physical, values, strict=True)
        },
    }


def execution_stats(host: Host, runtime: Runtime, sample: Sample) -> Json:
    """Per-period outcome and error counts and latency percentiles (null when nothing completed)."""
    gen, covered = sample.gen, sample.covered
    activity = runtime.activity(sample.t)
    outcomes = dict.fromkeys(OUTCOME_FIELDS, 0)
    errors = dict.fromkeys(ERROR_FIELDS if host.guide else CURRENT_ERROR_FIELDS, 0)
    latency: Json = {"total_latency": None, "device_latency": None}
    if runtime.fixed_rate is not None and activity > 0:
        # Counted against the running total so that the long-run rate is exact whatever the period.
        rate = runtime.fixed_rate
        outcomes["completed"] = round(rate * sample.t) - round(rate * max(0.0, sample.t - covered))
        latency = _latency(runtime.latency_s, max(1, outcomes["completed"]), gen)
    elif activity > 0:
        cores = sum(runtime.share)
        rate = cores * activity / runtime.latency_s
        outcomes["completed"] = max(1, round(rate * covered * gen.uniform(0.95, 1.05)))
        # Failures are rare and scale with the work done, so busy runtimes show a few more.
        chance = min(1.0, covered / 60.0) * (0.5 + activity)
        if gen.random() < chance:
            outcomes["completed_with_err"] = gen.randint(1, 3)
        if gen.random() < chance * 0.3:
            outcomes["completed_with_num_err"] = 1
        if gen.random() < chance * 0.2:
            outcomes["timed_out"] = 1
        if gen.random() < chance * 0.1:
            outcomes["incorrect_input"] = gen.randint(1, 2)
        if activity > 0.9 and gen.random() < chance * 2:
            outcomes["failed_to_queue"] = gen.randint(1, 12)
        errors["generic" if host.guide else "model"] = (
            outcomes["completed_with_err"] + outcomes["incorrect_input"]
        )
        errors["numerical"] = outcomes["completed_with_num_err"]
        errors["runtime"] = outcomes["timed_out"]
        if gen.random() < chance * 0.2:
            errors["transient"] = 1
        if gen.random() < chance * 0.02:
            errors["hardware"] = 1
        latency = _latency(runtime.latency_s * (0.9 + 0.4 * activity), outcomes["completed"], gen)
    return {
        "period": sample.period,
        "error_summary": errors,
        "execution_summary": outcomes,
        "latency_stats": latency,
        "error": "",
    }


def _latency(median: float, completed: int, gen: random.Random) -> Json:
    """Non-decreasing percentiles in seconds; device latency is a fixed fraction of the total."""
    median *= gen.uniform(0.97, 1.03)
    if completed == 1:
        total = [median] * len(PERCENTILES)
    else:
        p25 = median * (1 - gen.uniform(0.01, 0.05))
        p1 = p25 * (1 - gen.uniform(0.02, 0.08))
        p0 = p1 * (1 - gen.uniform(0.0, 0.05))
        p75 = median * (1 + gen.uniform(0.01, 0.06))
        p99 = p75 * (1 + gen.uniform(0.05, 0.5))
        p100 = p99 * (1 + gen.uniform(0.0, 0.4))
        total = [p0, p1, p25, median, p75, p99, p100]
    ratio = gen.uniform(0.8, 0.97)
    # Rounding is monotonic, so rounded values stay ordered and device stays <= total.
    return {
        "total_latency": {k: round(v, 9) for k, v in zip(PERCENTILES, total, strict=True)},
        "device_latency": {k: round(v * ratio, 9) for k, v in zip(PERCENTILES, total, strict=True)},
    }


def _host_breakdown(runtime: Runtime, t: float, activity: float, gen: random.Random) -> dict[str, int]:
    drift = 1 + 0.03 * math.sin(t / 97.0 + runtime.index)
    return {
        "application_memory": int(runtime.host_application * drift) // 4096 * 4096,
        "constants": 0,
        "dma_buffers": runtime.host_dma_buffers,
        "tensors": round64(runtime.host_application * 0.02 * activity * gen.uniform(0.8, 1.2)),
    }


def host_used(runtime: Runtime, t: float) -> int:
    """Approximate host bytes of a runtime at time t, without drawing (for memory_info)."""
    drift = 1 + 0.03 * math.sin(t / 97.0 + runtime.index)
    return int(runtime.host_application * (drift + 0.02 * runtime.activity(t))) + runtime.host_dma_buffers


def memory_used(host: Host, runtime: Runtime, sample: Sample) -> Json:
    """Host and device bytes with their breakdowns (totals = sums) and the loaded models."""
    gen, t = sample.gen, sample.t
    activity = runtime.activity(t)
    host_bytes = _host_breakdown(runtime, t, activity, gen)
    per_core: Json = {}
    device_total = 0
    for core in range(host.shape.cores):
        memory = runtime.core_memory.get(core)
        if memory is None:
            per_core[str(core)] = {
                "constants": 0,
                "model_code": 0,
                "model_shared_scratchpad": 0,
                "runtime_memory": 0,
                "tensors": 0,
            }
            continue
        # Activations come and go with the load; everything else is fixed at load time.
        dynamic = round64(memory.budget * 0.08 * activity * gen.uniform(0.8, 1.2)) if memory.constants else 0
        fields = {
            "constants": memory.constants,
            "model_code": memory.model_code,
            "model_shared_scratchpad": memory.scratchpad,
            "runtime_memory": memory.runtime_memory,
            "tensors": memory.tensors + dynamic,
        }
        device_total += sum(fields.values())
        per_core[str(core)] = fields
    busy = runtime.pattern.busy(t)
    turn = int(t // ROTATION_S)
    models = [
        {
            "name": model.name,
            "uuid": model.uuid,
            "model_id": model.model_id,
            "is_running": busy and (model.sharing == 1 or turn % model.sharing == model.slot),
            "subgraphs": {f"sg_{k:02d}": _subgraph(host, sg) for k, sg in enumerate(model.subgraphs)},
        }
        for model in runtime.models
    ]
    return {
        "period": sample.period,
        "neuron_runtime_used_bytes": {
            "host": sum(host_bytes.values()),
            "neuron_device": device_total,
            "usage_breakdown": {"host": host_bytes, "neuroncore_memory_usage": per_core},
        },
        "loaded_models": models,
        "error": "",
    }


def _subgraph(host: Host, sg: Subgraph) -> Json:
    device = {
        "constants": sg.constants,
        "model_code": sg.model_code,
        "runtime_memory": sg.runtime_memory,
        "tensors": sg.tensors,
    }
    host_bytes = {"application_memory": sg.host_application, "constants": 0, "dma_buffers": 0, "tensors": 0}
    out: Json = {
        "memory_used_bytes": {
            "host": sum(host_bytes.values()),
            "neuron_device": sum(device.values()),
            "usage_breakdown": {"host": host_bytes, "neuron_device": device},
        },
        "neuroncore_index": sg.index_in_device,
        "neuron_device_index": sg.device,
    }
    if not host.guide:
        # Undocumented, printed by current tools: the physical core's name (`"v2": "nc_v2.0"` on inf2).
        shape = host.shape
        prefix = shape.physical_prefix or f"nc_{shape.neuroncore_version}"
        out[shape.neuroncore_version] = f"{prefix}.{sg.core * shape.lnc}"
    return out


def neuron_runtime_vcpu_usage(host: Host, runtime: Runtime, sample: Sample) -> Json:
    """Percent of time the application spent in user and kernel code."""
    gen = sample.gen
    activity = runtime.activity(sample.t)
    if activity > 0:
        user = runtime.vcpu_percent * (0.15 + activity) * gen.uniform(0.9, 1.1)
        system = user * gen.uniform(0.08, 0.25)
    else:
        user, system = gen.uniform(0.0, 0.6), gen.uniform(0.0, 0.2)
    return {"period": sample.period, "vcpu_usage": {"user": _pct(user), "system": _pct(system)}, "error": ""}


def _pct(value: float) -> float | int:
    return tidy(round(value, 2))


def _cpu_modes(user: float, gen: random.Random) -> dict[str, float]:
    modes = {
        "user": round(user, 2),
        "nice": round(gen.uniform(0.0, 2.0), 2) if gen.random() < 0.02 else 0.0,
        "system": round(user * gen.uniform(0.1, 0.3) + gen.uniform(0.0, 2.0), 2),
        "idle": 0.0,
        "io_wait": round(gen.uniform(0.0, 2.0), 2) if gen.random() < 0.05 else 0.0,
        "irq": 0.0,
        "soft_irq": round(gen.uniform(0.0, 0.5), 2) if gen.random() < 0.1 else 0.0,
    }
    busy = math.fsum(modes.values())
    if busy > 100.0:
        modes["user"] = round(modes["user"] - (busy - 100.0), 2)
        busy = math.fsum(modes.values())
    modes["idle"] = max(0.0, round(100.0 - busy, 2))
    return modes


def vcpu_usage(host: Host, sample: Sample) -> Json:
    """Per-vCPU and average time split (7 fields summing to ~100) and context switches in the period."""
    gen, load = sample.gen, host.load(sample.t)
    per_cpu = []
    for bias in host.cpu_bias:
        user = min(95.0, max(0.0, load * 40.0 * bias + gen.uniform(0.0, 5.0)))
        per_cpu.append(_cpu_modes(user, gen))
    average = {
        f: round(math.fsum(m[f] for m in per_cpu) / len(per_cpu), 2) for f in CPU_FIELDS if f != "idle"
    }
    average["idle"] = max(0.0, round(100.0 - math.fsum(average.values()), 2))
    switches = len(per_cpu) * sample.covered * (400 + 3000 * load) * gen.uniform(0.9, 1.1)
    return {
        "period": sample.period,
        "average_usage": {f: tidy(average[f]) for f in CPU_FIELDS},
        "usage_data": {str(i): {f: tidy(m[f]) for f in CPU_FIELDS} for i, m in enumerate(per_cpu)},
        "context_switch_count": int(switches),
        "error": "",
    }


def memory_info(host: Host, sample: Sample) -> Json:
    """Host RAM and swap in bytes (no swap, as on every real capture)."""
    total = host.shape.memtotal_bytes
    runtime_bytes = sum(host_used(r, sample.t) for r in host.runtimes)
    used = 1.5 * 1024**3 + total * 0.03 + runtime_bytes + sample.gen.uniform(0.0, 0.02) * total
    used = min(used, total * 0.97)
    return {
        "period": sample.period,
        "memory_total_bytes": total,
        "memory_used_bytes": int(used) // 4096 * 4096,
        "swap_total_bytes": 0,
        "swap_used_bytes": 0,
        "error": "",
    }


def neuron_hw_counters(host: Host, sample: Sample) -> Json:
    """ECC events per device in the period: almost always 0, now and then one corrected event."""
    gen, covered = sample.gen, sample.covered
    devices = []
    for device in range(host.shape.device_count):
        counts = {
            "mem_ecc_corrected": 0,
            "mem_ecc_uncorrected": 0,
            "sram_ecc_corrected": 0,
            "sram_ecc_uncorrected": 0,
        }
        draw = gen.random()
        # About one corrected event per device per ~20 minutes; uncorrected ones practically never.
        if draw < covered * 0.0005:
            counts["mem_ecc_corrected"] = 1
        elif draw < covered * 0.0008:
            counts["sram_ecc_corrected"] = 1
        elif draw > 1.0 - covered * 1e-7:
            counts["mem_ecc_uncorrected"] = 1
        devices.append({"neuron_device_index": device, **counts})
    return {"period": sample.period, "neuron_devices": devices, "error": ""}


def neuron_k8s_info(host: Host, sample: Sample) -> Json:
    """The pod owning each core and device (the first runtime on it, when several share one)."""
    cores: Json = {}
    devices: Json = {}
    for runtime in host.runtimes:
        pod_name, namespace, container = runtime.pod
        for core in runtime.cores:
            for found, key in ((cores, str(core)), (devices, str(core // host.shape.cores_per_device))):
                if key not in found:
                    found[key] = {"pod_name": pod_name, "namespace": namespace, "container_name": [container]}
    return {
        "period": sample.period,
        "neuroncores_k8s_info": cores,
        "neurondevices_k8s_info": devices,
        "error": "",
    }


RUNTIME_GROUPS: dict[str, Callable[[Host, Runtime, Sample], Json]] = {
    "execution_stats": execution_stats,
    "memory_used": memory_used,
    "neuron_runtime_vcpu_usage": neuron_runtime_vcpu_usage,
    "neuroncore_counters": neuroncore_counters,
}
SYSTEM_GROUPS: dict[str, Callable[[Host, Sample], Json]] = {
    "memory_info": memory_info,
    "neuron_hw_counters": neuron_hw_counters,
    "vcpu_usage": vcpu_usage,
    "neuron_k8s_info": neuron_k8s_info,
}
