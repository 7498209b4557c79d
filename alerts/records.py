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
    labels: tuple[tuple[str, str], ...] = ()
    """Static labels the rule adds (several rules of one name must differ by them)."""

    def to_yaml(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "expr": self.expr,
            **({"labels": dict(self.labels)} if self.labels else {}),
        }


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
OFFERING = metric("neuron_instance_offering_hourly_cost_usd", "pricing")
KSM_NODE_LABELS = "kube_node_labels"
"""kube-state-metrics' node labels (the capacity-type labels must be in its --metric-labels-allowlist)."""
CAPACITY_TYPE = Record(
    "node:neuron_capacity_type:info",
    "max by (node, pricing) (\n  "
    + "\n  or ".join(
        (
            f'label_replace({KSM_NODE_LABELS}{{label_karpenter_sh_capacity_type!=""}}, "pricing", "$1", '
            '"label_karpenter_sh_capacity_type", "(.+)")',
            f'label_replace({KSM_NODE_LABELS}{{label_eks_amazonaws_com_capacity_type="SPOT"}}, "pricing", "spot", "", "")',
            f'label_replace({KSM_NODE_LABELS}{{label_eks_amazonaws_com_capacity_type="ON_DEMAND"}}, "pricing", "on-demand", "", "")',
        )
    )
    + "\n)",
    "the capacity type a Kubernetes node is paid as, from its Karpenter or EKS node-group label",
)
PRICE_EXPORTER = Record(
    "instance:neuron_hourly_cost_usd:exporter",
    f"max by ({NODE}) (\n  {OFFERING}\n  * on({NODE}, pricing) group_left()\n"
    f"  max by ({NODE}, pricing) ({NODE_INFO.record} * on(node) group_left(pricing) {CAPACITY_TYPE.record})\n)\n"
    f"or on({NODE}) max by ({NODE}) ({PRICE})",
    "the node's price per hour from the exporter: the price file's figure for the capacity type the "
    "node's label names where kube-state-metrics gives one, else the one the exporter picked",
)
KARPENTER_PRICE = "karpenter_cloudprovider_instance_type_offering_price_estimate"
PRICE_KARPENTER = Record(
    "instance:neuron_hourly_cost_usd:karpenter",
    f"max by ({NODE}) (\n  {NODE_INFO.record}\n  * on(instance_type) group_left()\n"
    f'  min by (instance_type) ({KARPENTER_PRICE}{{capacity_type="on-demand"}})\n)',
    "the node's on-demand price per hour as Karpenter estimates its offering, by instance type",
)
PRICE_OPENCOST = Record(
    "instance:neuron_hourly_cost_usd:opencost",
    f"max by ({NODE}) (\n  max by (node) ({OPENCOST_PRICE})\n  * on(node) group_right() {NODE_INFO.record}\n)",
    "the node's price per hour as OpenCost computes it, joined through the Kubernetes node name",
)
PRICE_SOURCES = {"exporter": PRICE_EXPORTER, "opencost": PRICE_OPENCOST, "karpenter": PRICE_KARPENTER}
"""The cost dashboard's price_source variable: its value is the suffix of these records' names."""

# --- what each pod, container and model costs ------------------------------------------------------

POD_INFO = metric("neuron_neuroncore_pod_info", "namespace", "pod", "container", "neuroncore")
SERVED_MODEL = metric("neuron_runtime_served_model_info", "model", "runtime_tag")
TRITON_COMPUTE = "nv_inference_compute_infer_duration_us"
"""Triton's cumulative compute time per model: route 3 splits a pod's cost among its models by it."""
EXTERNAL_COUNTERS = frozenset(
    {TRITON_COMPUTE, "nv_inference_request_success", "nv_inference_count", "nv_inference_exec_count"}
)
"""Counters other servers export that the rules and dashboards read (Triton's, per model and version:
docs/user_guide/metrics.md of triton-inference-server/server)."""


def _owned_cores(by: str) -> str:
    """NeuronCores each owner (`by`) is granted, a core granted to several owners split among them."""
    grants = f"group by ({NODE}, neuroncore, {by}) ({POD_INFO})"
    return (
        f"sum by ({NODE}, {by}) (\n  {grants}\n  / on({NODE}, neuroncore) group_left()"
        f" count by ({NODE}, neuroncore) ({grants})\n)"
    )


POD_CORES = Record(
    "pod:neuron_neuroncores:share",
    _owned_cores("namespace, pod"),
    "NeuronCores each pod is granted (from the kubelet, else neuron_k8s_info), shared cores split",
)
CONTAINER_CORES = Record(
    "container:neuron_neuroncores:share",
    _owned_cores("namespace, pod, container"),
    "NeuronCores each container is granted, shared cores split",
)
RUNTIME_MODEL_CORES = (
    f'group by ({NODE}, neuroncore, runtime_tag, namespace, pod) ({UTILIZATION}{{runtime_tag!="",pod!=""}})'
)
"""Which runtime of which pod holds which core."""
TAGGED_RUNTIME_CORES = (
    f"group by ({NODE}, neuroncore, runtime_tag, namespace, pod) "
    f'({UTILIZATION}{{runtime_tag=~".*[^0-9].*",pod!=""}})'
)
"""The same, for runtimes whose tag is not a pid (NEURON_PROCESS_TAG set, route 2: the tag names the model)."""
MODEL_SHARE_BY_RUNTIME = Record(
    "pod_model:neuron_neuroncores:share",
    "(\n  sum by (namespace, pod, model) (\n"
    f"    count by ({NODE}, runtime_tag, namespace, pod) ({RUNTIME_MODEL_CORES})\n"
    f"    * on({NODE}, runtime_tag) group_left(model) max by ({NODE}, runtime_tag, model) ({SERVED_MODEL})\n"
    f"    or on({NODE}, runtime_tag) label_replace(\n"
    f"      count by ({NODE}, runtime_tag, namespace, pod) ({TAGGED_RUNTIME_CORES}),\n"
    '      "model", "$1", "runtime_tag", "(.*)"\n    )\n  )\n)\n'
    "/ on(namespace, pod) group_left() sum by (namespace, pod) (\n"
    f"  count by ({NODE}, runtime_tag, namespace, pod) ({RUNTIME_MODEL_CORES})\n)",
    "each model's share of its pod's NeuronCores, from the model each runtime serves (a Triton stub's "
    "command line, else a NEURON_PROCESS_TAG that is not a pid)",
)
MODEL_SHARE_BY_COMPUTE = Record(
    "pod_model:triton_compute:share",
    f"sum by (namespace, pod, model) (rate({TRITON_COMPUTE}[5m]))\n"
    f"/ on(namespace, pod) group_left() (sum by (namespace, pod) (rate({TRITON_COMPUTE}[5m])) > 0)",
    "each model's share of its Triton pod's compute time (batching skews it: a batch counts once)",
)
MODEL_SHARE = Record(
    "pod_model:neuron_cost:share",
    f"{MODEL_SHARE_BY_RUNTIME.record}\nor on(namespace, pod) {MODEL_SHARE_BY_COMPUTE.record}",
    "each model's share of its pod's cost: by the runtimes' models where known, else by Triton's compute time",
)


def cost_records(source: str, price: Record) -> tuple[Record, ...]:
    """Pod, container, model and unattributed cost per hour from one price source."""
    node_core_price = (
        f"on({NODE}) group_left() {CORES_PRESENT.record} * on({NODE}) group_left() {price.record}"
    )
    pod = Record(
        f"pod:neuron_hourly_cost_usd:{source}",
        f"max by (instance, namespace, pod) (\n  {POD_CORES.record} / {node_core_price}\n)",
        f"each pod's share of its node's price ({source}): its NeuronCores over the node's",
    )
    container = Record(
        f"container:neuron_hourly_cost_usd:{source}",
        f"max by (instance, namespace, pod, container) (\n  {CONTAINER_CORES.record} / {node_core_price}\n)",
        f"each container's share of its node's price ({source})",
    )
    model = Record(
        f"model:neuron_hourly_cost_usd:{source}",
        f"sum by (namespace, model) (\n  {pod.record}\n  * on(namespace, pod) group_right() {MODEL_SHARE.record}\n)",
        f"what each model costs per hour ({source}): its pods' cost split among the models they serve",
    )
    unattributed = Record(
        f"instance:neuron_unattributed_hourly_cost_usd:{source}",
        f"max by (instance) ({price.record})\n- on(instance) (\n"
        f"  sum by (instance) ({pod.record})\n  or max by (instance) ({price.record}) * 0\n)",
        f"the part of a node's price ({source}) no pod is granted: pods plus this add up to the price",
    )
    return pod, container, model, unattributed


COST_RECORDS = (
    POD_CORES,
    CONTAINER_CORES,
    MODEL_SHARE_BY_RUNTIME,
    MODEL_SHARE_BY_COMPUTE,
    MODEL_SHARE,
    *(record for source, price in PRICE_SOURCES.items() for record in cost_records(source, price)),
)

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
    CAPACITY_TYPE,
    PRICE_EXPORTER,
    PRICE_OPENCOST,
    PRICE_KARPENTER,
    *COST_RECORDS,
)
