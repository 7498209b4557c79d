"""AWS-compatible mode: the metric names and labels of AWS's `neuron-monitor-prometheus.py` (SCHEMA.md §6).

    neuroncore_utilization_ratio{availability_zone="us-east-2a",instance_id="i-0…",…,neuroncore="0",runtime_tag="15439"} 0.89
    execution_status_total{…,runtime_tag="15439",status_type="completed"} 2977
    neuroncore_memory_usage_constants{…,memory_location="None",neuroncore="0",runtime_tag="15439"} 6.2e+07
    system_vcpu_usage_ratio{…,usage_type="system"} 0.0293
    instance_info{availability_zone="us-east-2a",instance_id="i-0…",instance_name="",…} 1

`--compat=aws` renders these collectors instead of the default set, so AWS's Grafana dashboard, the
CloudWatch agent and Datadog's `aws_neuron` check read this exporter unchanged. They split by
neuron-monitor group under the default collectors' names, so the same `--collector.<name>` switches
apply (neuron_k8s_info has no counterpart: the script's k8s labels are not reproduced). Names, types,
HELP texts and label sets are AWS's to the letter, quirks included: the six EC2 labels (plus
`ultraserver_id` when the report has one) on every series, and `memory_location="None"` on the
`neuroncore_memory_usage_*` gauges, which users' queries may match. Per-core series cover every core a
runtime lists, idle ones at 0, as the real expositions show (four runtimes x four cores on an inf1.xlarge),
because the dashboard's `avg(neuroncore_utilization_ratio)` counts them; the default mode's ownership
rule (state.owned_cores) is not applied here. Like the script, only its four ECC event types and five
per-core memory categories are exported; newer ones are in the default mode only. runtime.py holds the
runtime-level groups, system.py the identity sections and system-level groups, labels.py the EC2 labels.

Where this mode departs from the script, on purpose:
- Counters come from the state's totals (state.advance), which never go backwards: the script clears
  every gauge and counter child whenever the runtime list is empty, so each idle moment reset its counters;
  here they continue, and a runtime that returns under its tag resumes its totals. A group repeated
  verbatim in a later line is not counted twice.
- A runtime that leaves the report leaves the exposition at once (the script kept its series until the
  runtime list emptied; 2.25+ drops defunct processes too).
- Latency percentiles are left out when `total_latency` is null; the script kept the last value, which
  reads as a fresh latency for a runtime that executed nothing.
- instance_info and neuron_hardware_info follow the latest report that carries them, not only the first.
- A member the script would crash on (a missing key, a null utilization) costs only its own sample.
- No `_created` series; the two info metrics are gauges in OpenMetrics as well (the script's `Info`).
"""

from __future__ import annotations

from exporter.collectors.aws_compat.runtime import (
    AwsExecutionStatsCollector,
    AwsMemoryUsedCollector,
    AwsNeuronCoreCountersCollector,
    AwsRuntimeVcpuUsageCollector,
)
from exporter.collectors.aws_compat.system import (
    AwsHwCountersCollector,
    AwsInfoCollector,
    AwsMemoryInfoCollector,
    AwsVcpuUsageCollector,
)
from exporter.collectors.base import Collector

AWS_COLLECTORS: tuple[type[Collector], ...] = (
    AwsInfoCollector,
    AwsNeuronCoreCountersCollector,
    AwsExecutionStatsCollector,
    AwsMemoryUsedCollector,
    AwsRuntimeVcpuUsageCollector,
    AwsVcpuUsageCollector,
    AwsMemoryInfoCollector,
    AwsHwCountersCollector,
)
"""Render order of the AWS-compatible metric set; `name`s match the default collectors' switches."""

__all__ = ["AWS_COLLECTORS"]
