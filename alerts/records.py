"""Recording rules: one series set per node, evaluated where the exporters are scraped.

They are what the fleet dashboard reads and what a central store receives through remote_write
(REMOTE_WRITE_KEEP), so the fleet view costs a few dozen series per node instead of thousands. Each
keeps `job` and `instance` (the scrape target): a target scraped by two jobs gives two series, and
the dashboards take the max over jobs per node so it is counted once.

NODE_INFO is the node's identity and exists as soon as its exporter is scraped, whatever
neuron-monitor does: the node name (the exporter's $NODE_NAME, else the `node` target label that
prometheus-operator adds, else the target address) and the instance type (`unknown` until a report
says). Dashboards join everything through it, so a node whose neuron-monitor never reported is still
listed, counted and priced.

Per-core figures count each NeuronCore once: where several runtimes share a core, their utilizations
add up (capped at 1) and the core is held once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.catalog import metric

UTILIZATION = metric("neuron_neuroncore_utilization_ratio", "neuroncore", "runtime_tag")
STATUS = metric("neuron_execution_status_total", "runtime_tag", "status")
LATENCY = metric("neuron_execution_latency_seconds", "percentile", "runtime_tag")
DEVICE_LATENCY = metric("neuron_execution_device_latency_seconds", "percentile", "runtime_tag")
RUNTIME_MEMORY = metric("neuron_runtime_memory_used_bytes", "location", "runtime_tag")
DEVICES = metric("neuron_devices")
CORES_PER_DEVICE = metric("neuron_device_neuroncores")
DEVICE_MEMORY = metric("neuron_device_memory_bytes")
ECC = metric("neuron_device_ecc_events_total", "event_type", "neuron_device")
MONITOR_UP = metric("neuron_monitor_up")
LAST_REPORT = metric("neuron_exporter_last_report_timestamp_seconds")
BUILD_INFO = metric("neuron_exporter_build_info")
NODE_NAME_INFO = metric("neuron_kubernetes_node_info", "node")
INSTANCE_INFO = metric("neuron_instance_info", "instance_type")
PRICE = metric("neuron_instance_hourly_cost_usd")
OPENCOST_PRICE = "node_total_hourly_cost"
"""OpenCost's price of a node per hour, labelled with the Kubernetes node name (not our metric)."""

NODE = "job, instance"
"""What the per-node recording rules keep: the scrape target."""
UNKNOWN_TYPE = "unknown"
"""The instance_type of a node whose neuron-monitor has not reported yet."""


@dataclass(frozen=True)
class Record:
    """A recording rule."""

    record: str
    expr: str
    help: str

    def to_yaml(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr}


def _first_of(*exprs: str) -> str:
    """The first of `exprs` that has a series for a target (PromQL `or` on the target)."""
    return f"\n  or on({NODE})\n  ".join(exprs)


NODE_INFO = Record(
    "instance:neuron_node:info",
    f"max by ({NODE}, node, instance_type) (\n  (\n  "
    + _first_of(
        f"max by ({NODE}, node) ({NODE_NAME_INFO})",
        f'max by ({NODE}, node) ({BUILD_INFO}{{node!=""}})',
        f'max by ({NODE}, node) (label_replace({BUILD_INFO}, "node", "$1", "instance", "(.+)"))',
    )
    + f"\n  )\n  * on({NODE}) group_left(instance_type) (\n  "
    + _first_of(
        f'max by ({NODE}, instance_type) ({INSTANCE_INFO}{{instance_type!=""}})',
        f'max by ({NODE}, instance_type) (label_replace({BUILD_INFO}, "instance_type", "{UNKNOWN_TYPE}", "", ""))',
    )
    + "\n  )\n)",
    "a node's identity while its exporter is scraped: node name and instance type (unknown before a report)",
)
MONITOR_UP_MAX = Record(
    "instance:neuron_monitor_up:max",
    f"max by ({NODE}) ({MONITOR_UP})",
    "1 while neuron-monitor sends fresh reports, 0 while it is down or stale",
)
REPORT_AGE = Record(
    "instance:neuron_report_age_seconds:max",
    f"max by ({NODE}) (time() - {LAST_REPORT})",
    "seconds since neuron-monitor's last report; absent before the first",
)
CORE_UTILIZATION = f"clamp_max(sum by ({NODE}, neuroncore) ({UTILIZATION}), 1)"
"""Each NeuronCore's utilization once, whatever number of runtimes share it."""
UTILIZATION_AVG = Record(
    "instance:neuron_neuroncore_utilization:avg",
    f"avg by ({NODE}) ({CORE_UTILIZATION})",
    "mean NeuronCore utilization of a node, 0-1, each core counted once",
)
CORES_HELD = Record(
    "instance:neuron_neuroncores_held:count",
    f'count by ({NODE}) (group by ({NODE}, neuroncore) ({UTILIZATION}{{runtime_tag!=""}}))',
    "NeuronCores at least one runtime holds on a node",
)
CORES_BUSY = Record(
    "instance:neuron_neuroncores_busy:count",
    f"count by ({NODE}) ({CORE_UTILIZATION} > 0)\n  or on({NODE}) (0 * count by ({NODE}) ({UTILIZATION}))",
    "NeuronCores busy now (utilization above 0); 0 on a node that reports its cores and none is busy",
)
CORES_PRESENT = Record(
    "instance:neuron_neuroncores:count",
    f"max by ({NODE}) ({DEVICES} * on({NODE}) {CORES_PER_DEVICE})",
    "NeuronCores a node has (devices x cores per device)",
)
COMPLETED_RATE = Record(
    "instance:neuron_executions_completed:rate5m",
    f'sum by ({NODE}) (rate({STATUS}{{status="completed"}}[5m]))',
    "completed executions per second",
)
EXECUTIONS_RATE = Record(
    "instance:neuron_executions:rate5m",
    f"sum by ({NODE}) (rate({STATUS}[5m]))",
    "executions per second, every outcome",
)
FAILED_RATE = Record(
    "instance:neuron_executions_failed:rate5m",
    f'sum by ({NODE}) (rate({STATUS}{{status!="completed"}}[5m]))',
    "executions per second that did not complete cleanly",
)
LATENCY_MAX = Record(
    "instance:neuron_execution_latency_seconds:max",
    f"max by ({NODE}, percentile) ({LATENCY})",
    "the slowest runtime's latency percentile on a node",
)
DEVICE_LATENCY_MAX = Record(
    "instance:neuron_execution_device_latency_seconds:max",
    f"max by ({NODE}, percentile) ({DEVICE_LATENCY})",
    "the slowest runtime's device-latency percentile on a node",
)
DEVICE_MEMORY_USED = Record(
    "instance:neuron_device_memory_used_bytes:sum",
    f'sum by ({NODE}) ({RUNTIME_MEMORY}{{location="neuron_device"}})',
    "device memory the runtimes of a node use",
)
DEVICE_MEMORY_TOTAL = Record(
    "instance:neuron_device_memory_bytes:sum",
    f"max by ({NODE}) ({DEVICES} * on({NODE}) {DEVICE_MEMORY})",
    "device memory a node has",
)
ECC_RATE = Record(
    "instance:neuron_device_ecc_events:rate5m",
    f"sum by ({NODE}, event_type) (rate({ECC}[5m]))",
    "ECC events per second by type",
)
PRICE_EXPORTER = Record(
    "instance:neuron_hourly_cost_usd:exporter",
    f"max by ({NODE}) ({PRICE})",
    "the node's price per hour as the exporter was given it (--instance-hourly-cost or --instance-prices)",
)
PRICE_OPENCOST = Record(
    "instance:neuron_hourly_cost_usd:opencost",
    f"max by ({NODE}) (\n  max by (node) ({OPENCOST_PRICE})\n  * on(node) group_right() {NODE_INFO.record}\n)",
    "the node's price per hour as OpenCost computes it, joined through the Kubernetes node name",
)
PRICE_SOURCES = {"exporter": PRICE_EXPORTER, "opencost": PRICE_OPENCOST}
"""The cost dashboard's price_source variable: its value is the suffix of these records' names."""

RECORDS = (
    NODE_INFO,
    MONITOR_UP_MAX,
    REPORT_AGE,
    UTILIZATION_AVG,
    CORES_HELD,
    CORES_BUSY,
    CORES_PRESENT,
    COMPLETED_RATE,
    EXECUTIONS_RATE,
    FAILED_RATE,
    LATENCY_MAX,
    DEVICE_LATENCY_MAX,
    DEVICE_MEMORY_USED,
    DEVICE_MEMORY_TOTAL,
    ECC_RATE,
    PRICE_EXPORTER,
    PRICE_OPENCOST,
)
