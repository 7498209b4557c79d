"""The collector table: every neuron-monitor metric group's collector and whether it is on by default."""

from __future__ import annotations

from exporter.collectors.base import Collector, MetricSpec, Options
from exporter.collectors.cost import CostCollector
from exporter.collectors.execution_stats import ExecutionStatsCollector
from exporter.collectors.info import InfoCollector
from exporter.collectors.memory_info import MemoryInfoCollector
from exporter.collectors.memory_used import MemoryUsedCollector
from exporter.collectors.neuron_hw_counters import HwCountersCollector
from exporter.collectors.neuron_k8s_info import K8sInfoCollector
from exporter.collectors.neuron_runtime_vcpu_usage import RuntimeVcpuUsageCollector
from exporter.collectors.neuroncore_counters import NeuronCoreCountersCollector
from exporter.collectors.served_models import ServedModelsCollector
from exporter.collectors.vcpu_usage import VcpuUsageCollector

COLLECTORS: tuple[type[Collector], ...] = (
    InfoCollector,
    NeuronCoreCountersCollector,
    ExecutionStatsCollector,
    MemoryUsedCollector,
    RuntimeVcpuUsageCollector,
    VcpuUsageCollector,
    MemoryInfoCollector,
    HwCountersCollector,
    K8sInfoCollector,
    ServedModelsCollector,
    CostCollector,
)
"""Render order of the default (Prometheus-convention) metric set."""

__all__ = ["COLLECTORS", "Collector", "MetricSpec", "Options"]
