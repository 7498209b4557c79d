"""The simulator proper: report(index) builds line `index` of a neuron-monitor stream, independent of time."""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import os
from collections.abc import Mapping
from typing import Any, Union

import orjson

from exporter.simulator import groups
from exporter.simulator.config import (
    ALL_GROUPS,
    K8S_GROUP,
    RuntimeRule,
    SimulatorConfig,
    load_config,
    parse_config,
)
from exporter.simulator.groups import Host, Sample
from exporter.simulator.load import Schedule, rng, split_cores
from exporter.simulator.runtimes import Runtime, build_runtimes
from exporter.simulator.shapes import DEFAULT_SHAPE, SHAPES, Shape

MonitorConfigLike = Union[SimulatorConfig, Mapping[str, Any], str, "os.PathLike[str]"]
"""A parsed config, a decoded config object, or the path of a config file."""

Json = dict[str, Any]

_GROUP_STREAM = {
    "neuroncore_counters": 1,
    "execution_stats": 2,
    "memory_used": 3,
    "neuron_runtime_vcpu_usage": 4,
    "vcpu_usage": 5,
    "memory_info": 6,
    "neuron_hw_counters": 7,
    "neuron_k8s_info": 8,
}
_STREAM_START = 9
_STREAM_CPU_BIAS = 10
_SYSTEM = -1
"""The `who` of system-level groups in the generator seed (runtimes are 0, 1, ...)."""


def _resolve(config: MonitorConfigLike | None) -> SimulatorConfig:
    if config is None:
        return ALL_GROUPS
    if isinstance(config, SimulatorConfig):
        return config
    if isinstance(config, Mapping):
        return parse_config(dict(config))
    return load_config(config)


class Simulator:
    """A deterministic neuron-monitor: the same arguments always give the same report for an index."""

    def __init__(
        self,
        shape: str = DEFAULT_SHAPE,
        config: MonitorConfigLike | None = None,
        runtimes: int = 1,
        models_per_runtime: int = 2,
        seed: int = 0,
        k8s: bool = False,
        tagged: bool = False,
        shared_tag: str | None = None,
        group_errors: tuple[str, ...] = (),
        executions_per_second: float | None = None,
        guide: bool = False,
        pids: tuple[int, ...] = (),
    ) -> None:
        """`group_errors` names groups (or `neuron_runtime_data`, for whole entries) that carry
        neuron-monitor's own `error` in every report, their data still printed beside it, as in the
        real trn1 capture where every runtime's `neuron_runtime_vcpu_usage` could not read /proc."""
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r} (known: {', '.join(SHAPES)})")
        if runtimes < 0 or models_per_runtime < 0:
            raise ValueError("runtimes and models_per_runtime must not be negative")
        self.shape: Shape = SHAPES[shape]
        self.config = _resolve(config)
        self.seed = seed
        self.k8s_period: float | None = self.config.k8s_period
        if k8s and self.k8s_period is None:
            self.k8s_period = self.config.period
        periods = self.config.periods + ((self.k8s_period,) if self.k8s_period is not None else ())
        start = rng(seed, _STREAM_START)
        # The first report comes out after a short start-up collection (0.062 s in the real inf1 capture).
        self.schedule = Schedule(
            step=min(periods, default=self.config.period), first=start.uniform(0.05, 0.07)
        )
        self.runtimes: tuple[Runtime, ...] = build_runtimes(
            self.shape,
            self.config.rules,
            split_cores(self.shape.cores, runtimes),
            models_per_runtime,
            seed,
            tagged,
            shared_tag,
            executions_per_second,
        )
        if pids:
            # Real processes' pids (tests start them, so the exporter can read their command lines).
            self.runtimes = tuple(
                dataclasses.replace(r, pid=pid, tag=str(pid) if r.tag == str(r.pid) else r.tag)
                for r, pid in zip(
                    self.runtimes, (*pids, *(r.pid for r in self.runtimes[len(pids) :])), strict=True
                )
            )
        self.group_errors = frozenset(group_errors)
        bias = rng(seed, _STREAM_CPU_BIAS)
        self.host = Host(
            self.shape, self.runtimes, tuple(bias.uniform(0.5, 1.5) for _ in range(self.shape.vcpus)), guide
        )
        self._instance_info = _instance_info(self.shape)
        self._hardware_info = _hardware_info(self.shape)

    @property
    def period(self) -> float:
        """Seconds between two lines (the smallest configured period)."""
        return self.schedule.step

    def line_time(self, index: int) -> float:
        """Seconds after start at which line `index` is printed."""
        return self.schedule.line_time(index)

    def _sample(self, name: str, who: int, period: float, index: int) -> Sample:
        """The latest refresh, at line `index`, of group `name` (of runtime `who`) with this period."""
        refresh = self.schedule.refresh_of(period, index)
        # Seeded by the refresh, not the line: a group that is not due repeats its previous values
        # to the letter, `period` included, as the exporter expects of a repeated sample.
        gen = rng(self.seed, _GROUP_STREAM[name], who, refresh)
        covered = self.schedule.covered(period, refresh)
        if refresh == 0:
            value = covered + gen.uniform(-0.015, 0.0005)
        elif gen.random() < 0.05:
            # Now and then a collection runs late, as in the 1.03 s samples of the docs.
            value = covered + gen.uniform(0.01, 0.035)
        else:
            value = covered + gen.uniform(-0.0009, 0.0012)
        t = self.schedule.line_time(self.schedule.refresh_line(period, refresh))
        return Sample(gen=gen, t=t, period=round(max(value, 0.001), 9), covered=covered)

    def _runtime_entry(self, runtime: Runtime, rule: RuntimeRule, index: int) -> Json:
        report = {
            name: groups.RUNTIME_GROUPS[name](
                self.host, runtime, self._sample(name, runtime.index, period, index)
            )
            for name, period in rule.groups
        }
        for name, group in report.items():
            if name in self.group_errors:
                group["error"] = group_error(name, runtime.pid)
        error = group_error(RUNTIMES_SECTION, runtime.pid) if RUNTIMES_SECTION in self.group_errors else ""
        return {"pid": runtime.pid, "neuron_runtime_tag": runtime.tag, "error": error, "report": report}

    def report(self, index: int) -> Json:
        """The report printed as line `index` (0-based) of the stream, as a fresh dict."""
        if index < 0:
            raise ValueError("report index must not be negative")
        # A big report is an acyclic tree of tens of thousands of small dicts; letting the cyclic GC
        # rescan it while it grows costs as much as building it.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._report(index)
        finally:
            if enabled:
                gc.enable()

    def _report(self, index: int) -> Json:
        report: Json = {
            "neuron_runtime_data": [
                self._runtime_entry(r, r.rule, index) for r in self.runtimes if r.rule is not None
            ],
        }
        if self.config.system_groups:
            report["system_data"] = {
                name: groups.SYSTEM_GROUPS[name](self.host, self._sample(name, _SYSTEM, period, index))
                for name, period in self.config.system_groups
            }
            for name, group in report["system_data"].items():
                if name in self.group_errors:
                    group["error"] = group_error(name, None)
        report["instance_info"] = dict(self._instance_info)
        report["neuron_hardware_info"] = dict(self._hardware_info)
        if self.k8s_period is not None:
            sample = self._sample(K8S_GROUP, _SYSTEM, self.k8s_period, index)
            report[K8S_GROUP] = groups.neuron_k8s_info(self.host, sample)
            if K8S_GROUP in self.group_errors:
                report[K8S_GROUP]["error"] = group_error(K8S_GROUP, None)
        return report

    def line(self, index: int) -> bytes:
        """Line `index` as neuron-monitor prints it: compact JSON, keys sorted, newline-terminated."""
        return orjson.dumps(self.report(index), option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)


RUNTIMES_SECTION = "neuron_runtime_data"
"""In group_errors: the error of a whole runtime entry."""


def group_error(group: str, pid: int | None) -> str:
    """neuron-monitor's error text for a group that could not be collected (the real one for vCPU)."""
    if group == "neuron_runtime_vcpu_usage":
        return f"open /proc/{pid}/stat: no such file or directory"
    if group == RUNTIMES_SECTION:
        return f"failed to connect to runtime of pid {pid}: connection refused (simulated)"
    where = f" for pid {pid}" if pid is not None else ""
    return f"failed to collect {group}{where} (simulated)"


def _hex(shape: Shape, what: str, digits: int) -> str:
    """A fixed fake identifier for this instance type (same on every run and every seed)."""
    return hashlib.sha256(f"{shape.name}/{what}".encode()).hexdigest()[:digits]


def _instance_info(shape: Shape) -> Json:
    return {
        "instance_name": "",
        "instance_id": f"i-0{_hex(shape, 'instance', 16)}",
        "instance_type": shape.name,
        "instance_availability_zone": "us-east-2c",
        "instance_availability_zone_id": "use2-az3",
        "instance_region": "us-east-2",
        "ami_id": f"ami-0{_hex(shape, 'ami', 16)}",
        "subnet_id": f"subnet-0{_hex(shape, 'subnet', 16)}",
        "error": "",
    }


def _hardware_info(shape: Shape) -> Json:
    return {
        "neuron_device_type": shape.device_type,
        "neuron_device_version": shape.device_version,
        "neuroncore_version": shape.neuroncore_version,
        "neuron_device_count": shape.device_count,
        "neuron_device_memory_size": shape.device_memory_bytes,
        "neuroncore_per_device_count": shape.cores_per_device,
        "logical_neuroncore_config": shape.lnc,
        "error": "",
    }
