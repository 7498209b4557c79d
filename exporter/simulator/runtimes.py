"""The simulated Neuron applications: identity, cores, load pattern and the models they keep loaded."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.simulator.config import RuntimeRule
from exporter.simulator.load import LoadPattern, rng, round64
from exporter.simulator.shapes import Shape

PID_BASE = 15439
"""The first simulated PID (the real inf1 capture's); runtime i gets PID_BASE + 37 * i."""
MODEL_ID_BASE = 10001
"""The runtime numbers its models from here (10001, 10002, ... in every real capture)."""
ROTATION_S = 30.0
"""Models sharing a core take turns running for this long."""

_STREAM_PROFILE = 100
_STREAM_MODEL = 101
_APPS = ("llama-serve", "bert-infer", "trainer", "sdxl-worker", "whisper-asr", "embedder")


@dataclass(frozen=True, slots=True)
class Subgraph:
    """One subgraph of a loaded model, pinned to one NeuronCore; sizes fixed at load time."""

    core: int
    """The node-wide (logical) NeuronCore index."""
    device: int
    index_in_device: int
    """What neuron-monitor prints as `neuroncore_index`: the core's index within its device."""
    host_application: int
    constants: int
    model_code: int
    runtime_memory: int
    tensors: int


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model loaded by a runtime (`memory_used.loaded_models[]`)."""

    name: str
    uuid: str
    model_id: int
    subgraphs: tuple[Subgraph, ...]
    slot: int
    """Position among the models sharing its first core; with `sharing` > 1 they take turns."""
    sharing: int


@dataclass(frozen=True, slots=True)
class CoreMemory:
    """Per-core device memory of one runtime that does not change while it runs."""

    constants: int
    model_code: int
    scratchpad: int
    runtime_memory: int
    tensors: int
    budget: int
    """This runtime's share of the core's memory; dynamic tensors scale with it."""


@dataclass(frozen=True, slots=True)
class Runtime:
    """One simulated application as neuron-monitor sees it."""

    index: int
    pid: int
    tag: str
    cores: tuple[int, ...]
    rule: RuntimeRule | None
    """The first config entry whose tag_filter matches, None if it is not monitored."""
    pattern: LoadPattern
    peak_utilization: float
    core_skew: tuple[float, ...]
    """Per owned core: how much busier than the runtime average this core runs."""
    share: tuple[float, ...]
    """Per owned core: 1 / number of runtimes on that core (they split its time and memory)."""
    latency_s: float
    flops_efficiency: float
    vcpu_percent: float
    host_application: int
    host_dma_buffers: int
    core_memory: dict[int, CoreMemory]
    models: tuple[LoadedModel, ...]
    pod: tuple[str, str, str]
    """(pod_name, namespace, container_name) for neuron_k8s_info."""
    fixed_rate: float | None = None
    """Completed executions per second held exactly, always busy and error-free (--executions-per-second)."""

    def activity(self, t: float) -> float:
        """Load at time t, 0 while idle or when nothing is loaded; 1 at a fixed execution rate."""
        if not self.models:
            return 0.0
        return 1.0 if self.fixed_rate is not None else self.pattern.activity(t)


def _model_name(shape: Shape, gen_hex: str, digits: str, index: int) -> str:
    # Real names are compiler cache paths (SCHEMA.md §5.6); inf1 (neuron-cc) prints "<version>-<tmpdir>".
    if shape.neuroncore_version == "v1":
        return f"1.13.5.0+7dcf000a6-/tmp/tmp{gen_hex[:8]}"
    return (
        f"/var/tmp/neuron-compile-cache/neuronxcc-2.15.128.0+56dc5a86/MODULE_{digits}+{gen_hex[:8]}"
        f"/model_{index}.neff"
    )


def build_runtimes(
    shape: Shape,
    rules: tuple[RuntimeRule, ...],
    core_sets: list[tuple[int, ...]],
    models_per_runtime: int,
    seed: int,
    tagged: bool,
    shared_tag: str | None = None,
    executions_per_second: float | None = None,
) -> tuple[Runtime, ...]:
    """Every simulated application with its static profile and loaded models.

    With `shared_tag` every application reports under that one tag, as worker processes do that
    inherit one `NEURON_PROCESS_TAG`; their pids still differ. `executions_per_second` is the node's
    total, split evenly among the applications.
    """
    sharers = [0] * shape.cores
    for cores in core_sets:
        for core in cores:
            sharers[core] += 1
    per_core_memory = shape.device_memory_bytes // shape.cores_per_device
    runtimes: list[Runtime] = []
    count = len(core_sets)
    for i, cores in enumerate(core_sets):
        gen = rng(seed, _STREAM_PROFILE, i)
        pid = PID_BASE + 37 * i
        tag = shared_tag if shared_tag is not None else (f"app_{i}" if tagged else str(pid))
        share = tuple(1.0 / sharers[c] for c in cores)
        fill = gen.uniform(0.35, 0.7)
        # The runtime's slice of each core's memory: runtimes sharing a core split it.
        budgets = {c: round64(per_core_memory * part * fill) for c, part in zip(cores, share, strict=True)}
        host_app = int(min(8 * 1024**3, shape.memtotal_bytes * 0.5 / count) * gen.uniform(0.3, 1.0))
        app = _APPS[i % len(_APPS)]
        pod = (f"{app}-{gen.getrandbits(40):010x}-{gen.getrandbits(20):05x}", "ml", app)
        pattern = LoadPattern.draw(gen, first=i == 0)
        peak = gen.uniform(55.0, 98.0)
        skew = tuple(gen.uniform(0.85, 1.1) for _ in cores)
        latency = shape.latency_s * gen.uniform(0.5, 2.5)
        flops_efficiency = gen.uniform(0.35, 0.65)
        vcpu_percent = gen.uniform(5.0, 60.0)
        models = _load_models(shape, cores, budgets, models_per_runtime, seed, i)
        core_memory: dict[int, CoreMemory] = {}
        for core in cores:
            on_core = [sg for m in models for sg in m.subgraphs if sg.core == core]
            core_memory[core] = CoreMemory(
                constants=sum(sg.constants for sg in on_core),
                model_code=sum(sg.model_code for sg in on_core),
                scratchpad=round64(budgets[core] * gen.uniform(0.05, 0.12)) if on_core else 0,
                runtime_memory=sum(sg.runtime_memory for sg in on_core) + (65536 if on_core else 0),
                tensors=sum(sg.tensors for sg in on_core),
                budget=budgets[core],
            )
        runtimes.append(
            Runtime(
                index=i,
                pid=pid,
                tag=tag,
                cores=cores,
                rule=next((r for r in rules if r.matches(tag)), None),
                pattern=pattern,
                peak_utilization=peak,
                core_skew=skew,
                share=share,
                latency_s=latency,
                flops_efficiency=flops_efficiency,
                vcpu_percent=vcpu_percent,
                host_application=host_app // 4096 * 4096,
                host_dma_buffers=1048576 * max(1, len(models)),
                core_memory=core_memory,
                models=models,
                pod=pod,
                fixed_rate=None if executions_per_second is None else executions_per_second / count,
            )
        )
    return tuple(runtimes)


def _load_models(
    shape: Shape, cores: tuple[int, ...], budgets: dict[int, int], count: int, seed: int, runtime: int
) -> tuple[LoadedModel, ...]:
    """Models of one runtime: spread over its cores (one subgraph per core), or stacked if too many."""
    if not cores or count <= 0:
        return ()
    placements: list[tuple[int, ...]]
    if count <= len(cores):
        placements = [cores[j * len(cores) // count : (j + 1) * len(cores) // count] for j in range(count)]
    else:
        placements = [(cores[j % len(cores)],) for j in range(count)]
    stacked: dict[int, int] = {}
    for placement in placements:
        stacked[placement[0]] = stacked.get(placement[0], 0) + 1
    seen: dict[int, int] = {}
    models: list[LoadedModel] = []
    for j, placement in enumerate(placements):
        gen = rng(seed, _STREAM_MODEL, runtime, j)
        sharing = stacked[placement[0]]
        slot = seen.get(placement[0], 0)
        seen[placement[0]] = slot + 1
        weight = gen.uniform(0.5, 0.75) / sharing
        subgraphs = []
        for core in placement:
            # Weights take most of the runtime's slice of the core; models stacked on a core split it.
            size = budgets[core] * weight
            subgraphs.append(
                Subgraph(
                    core=core,
                    device=core // shape.cores_per_device,
                    index_in_device=core % shape.cores_per_device,
                    host_application=round64(gen.uniform(12_000, 32_000)),
                    constants=round64(size * gen.uniform(0.9, 1.0)),
                    model_code=round64(size * gen.uniform(0.01, 0.05)),
                    runtime_memory=round64(size * gen.uniform(0.0, 0.002)),
                    tensors=round64(size * gen.uniform(0.02, 0.06)),
                )
            )
        uuid = f"{gen.getrandbits(128):032x}"
        name = _model_name(shape, f"{gen.getrandbits(64):016x}", str(gen.getrandbits(63)), j)
        models.append(LoadedModel(name, uuid, MODEL_ID_BASE + j, tuple(subgraphs), slot, sharing))
    return tuple(models)
