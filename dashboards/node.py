"""Node and workload: one node's NeuronCores, runtimes, memory, CPU, models, hardware and exporter."""

from __future__ import annotations

from grafanalib import core as g

from dashboards.common import (
    CLUSTER,
    DATASOURCE,
    GREEN,
    POD_INFO,
    RATE,
    RED,
    UIDS,
    YELLOW,
    Grid,
    dashboard,
    drill_down,
    node_variables,
    stat,
    steps,
    table,
    target,
    timeseries,
)
from exporter.catalog import metric

UTILIZATION = metric("neuron_neuroncore_utilization_ratio", "neuroncore", "runtime_tag", "namespace", "pod")
FLOPS = metric("neuron_neuroncore_flops", "neuroncore", "runtime_tag", "namespace", "pod")
EFFECTIVE_FLOPS = metric("neuron_neuroncore_effective_flops", "neuroncore", "runtime_tag", "namespace", "pod")
PHYSICAL = metric(
    "neuron_neuroncore_physical_utilization_ratio", "physical_neuroncore", "runtime_tag", "namespace", "pod"
)
UNMEASURED = metric("neuron_exporter_unmeasured_neuroncores")
STATUS = metric("neuron_execution_status_total", "runtime_tag", "status", "namespace", "pod")
ERRORS = metric("neuron_execution_errors_total", "error_type", "runtime_tag", "namespace", "pod")
LATENCY = metric("neuron_execution_latency_seconds", "percentile", "runtime_tag", "namespace", "pod")
DEVICE_LATENCY = metric(
    "neuron_execution_device_latency_seconds", "percentile", "runtime_tag", "namespace", "pod"
)
CORE_MEMORY = metric(
    "neuron_neuroncore_memory_used_bytes", "category", "neuroncore", "runtime_tag", "namespace", "pod"
)
RUNTIME_MEMORY = metric("neuron_runtime_memory_used_bytes", "location", "runtime_tag", "namespace", "pod")
HOST_USED = metric("neuron_system_memory_used_bytes")
HOST_TOTAL = metric("neuron_system_memory_total_bytes")
RUNTIME_VCPU = metric("neuron_runtime_vcpu_usage_ratio", "mode", "runtime_tag", "namespace", "pod")
SYSTEM_VCPU = metric("neuron_system_vcpu_average_usage_ratio", "mode")
LOADED = metric("neuron_runtime_loaded_models", "runtime_tag", "namespace", "pod")
RUNNING = metric("neuron_runtime_running_models", "runtime_tag", "namespace", "pod")
ECC = metric("neuron_device_ecc_events_total", "event_type", "neuron_device")
MONITOR_UP = metric("neuron_monitor_up")
LAST_REPORT = metric("neuron_exporter_last_report_timestamp_seconds")
RESTARTS = metric("neuron_exporter_monitor_restarts_total")
BAD_LINES = metric("neuron_exporter_bad_lines_total", "reason")
INVALID = metric("neuron_exporter_invalid_groups_total", "group")
MONITOR_ERRORS = metric("neuron_exporter_monitor_errors_total", "group")
P50_P99 = 'percentile=~"p50|p99"'
NODE = f'{CLUSTER}=~"$cluster",job="$job",instance="$instance"'
"""One node as one job scrapes it: the variables are single-valued, so equality, never a regex."""
RUNTIME = f'{NODE},runtime_tag=~"$runtime_tag"'
WORKLOAD = f'{RUNTIME},namespace=~"$namespace",pod=~"$pod"'
"""Per-core and per-runtime selector: their series carry namespace and pod under pod attribution
(the kubelet's, else neuron_k8s_info's); without it the labels are absent, which "All" (.*) still matches."""
ONE_POD_CORES = (
    f'max by (neuroncore, namespace, pod) ({POD_INFO}{{{NODE},namespace=~"$namespace",pod=~"$pod"}})'
    f"\n  and on(neuroncore) (count by (neuroncore) (max by (neuroncore, namespace, pod) ({POD_INFO}{{{NODE}}})) == 1)"
)
"""The selected pods' cores, leaving out any core two pods claim (a conflict the exporter counts)."""
POD_UTILIZATION = (
    f"avg by (namespace, pod) (\n  clamp_max(sum by (neuroncore) ({UTILIZATION}{{{NODE}}}), 1)"
    f"\n  * on(neuroncore) group_left(namespace, pod) {ONE_POD_CORES}\n)"
)
UP_DOWN = [
    {
        "type": "value",
        "options": {"0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"}},
    }
]


def build() -> g.Dashboard:
    grid = Grid()
    grid.row("NeuronCores")
    grid.add(
        g.StateTimeline(
            title="Utilization per NeuronCore",
            description="Each core's utilization over time, with the runtime that holds it; cores nobody holds show 0.",
            dataSource=DATASOURCE,
            targets=[target(f"{UTILIZATION}{{{WORKLOAD}}}", "nc{{neuroncore}} {{runtime_tag}}")],
            thresholds=steps(("transparent", None), (GREEN, 0.01), (YELLOW, 0.5), (RED, 0.9)),
            extraJson={"fieldConfig": {"defaults": {"unit": "percentunit", "min": 0, "max": 1}}},
            showValue="never",
        ),
        24,
        10,
    )
    grid.add(
        timeseries(
            "Floating point operations per second",
            "FLOP/s per NeuronCore over neuron-monitor's last period: effective_flops, which current "
            "neuron-monitor prints, or flops where an older one prints only that.",
            (
                (
                    f"{EFFECTIVE_FLOPS}{{{WORKLOAD}}} or {FLOPS}{{{WORKLOAD}}}",
                    "nc{{neuroncore}} {{runtime_tag}}",
                ),
            ),
            "flops",
        ),
        8,
    )
    grid.add(
        timeseries(
            "Physical core utilization (trn2)",
            "On trn2 with LNC=2 each logical NeuronCore is two physical cores; an imbalance shows here.",
            ((f"{PHYSICAL}{{{WORKLOAD}}}", "nc{{neuroncore}}/{{physical_neuroncore}} {{runtime_tag}}"),),
            "percentunit",
        ),
        8,
    )
    grid.add(
        stat(
            "Cores without a measurement",
            "Cores a runtime holds whose utilization is unknown in the last report (missing or erroring counters).",
            f"sum({UNMEASURED}{{{NODE}}})",
            "none",
            steps((GREEN, None), (YELLOW, 1)),
        ),
        8,
    )
    grid.row("Throughput and errors")
    grid.add(
        timeseries(
            "Completed executions per second by runtime",
            "Executions that completed cleanly, per second.",
            (
                (
                    f'sum by (instance, runtime_tag) (rate({STATUS}{{{WORKLOAD},status="completed"}}[{RATE}]))',
                    "{{runtime_tag}}",
                ),
            ),
            "ops",
        ),
        8,
    )
    grid.add(
        timeseries(
            "Other outcomes per second",
            "Executions that did not complete cleanly, by outcome: with errors, timed out, bad input, rejected.",
            (
                (
                    f'sum by (runtime_tag, status) (rate({STATUS}{{{WORKLOAD},status!="completed"}}[{RATE}]))',
                    "{{runtime_tag}} {{status}}",
                ),
            ),
            "ops",
        ),
        8,
    )
    grid.add(
        timeseries(
            "Errors per second by type",
            "neuron-monitor's error counts by type (generic, numerical, transient, model, runtime, hardware).",
            (
                (
                    f"sum by (runtime_tag, error_type) (rate({ERRORS}{{{WORKLOAD}}}[{RATE}]))",
                    "{{runtime_tag}} {{error_type}}",
                ),
            ),
            "ops",
        ),
        8,
    )
    grid.row("Latency")
    grid.add(
        timeseries(
            "Latency p50 / p99: total vs device",
            "Total latency as the Neuron runtime measures it against time on the device; the gap is host-side.",
            (
                (f"{LATENCY}{{{WORKLOAD},{P50_P99}}}", "total {{runtime_tag}} {{percentile}}"),
                (f"{DEVICE_LATENCY}{{{WORKLOAD},{P50_P99}}}", "device {{runtime_tag}} {{percentile}}"),
            ),
            "s",
        ),
        24,
    )
    grid.row("Memory")
    grid.add(
        timeseries(
            "Device memory by NeuronCore and category",
            "Device memory the runtimes use on each core, by category (constants, model code, tensors, …).",
            (
                (
                    f"sum by (neuroncore, category) ({CORE_MEMORY}{{{WORKLOAD}}})",
                    "nc{{neuroncore}} {{category}}",
                ),
            ),
            "bytes",
            stacking={"mode": "normal"},
        ),
        12,
    )
    grid.add(
        timeseries(
            "Runtime memory: host and device",
            "Memory each runtime uses on the host and on the Neuron devices.",
            ((f"{RUNTIME_MEMORY}{{{WORKLOAD}}}", "{{runtime_tag}} {{location}}"),),
            "bytes",
        ),
        6,
    )
    grid.add(
        timeseries(
            "Host memory",
            "The host's RAM in use against its total.",
            ((f"{HOST_USED}{{{NODE}}}", "used"), (f"{HOST_TOTAL}{{{NODE}}}", "total")),
            "bytes",
        ),
        6,
    )
    grid.row("CPU and models")
    grid.add(
        timeseries(
            "Runtime vCPU usage",
            "Time each Neuron application spends in user and kernel code.",
            ((f"{RUNTIME_VCPU}{{{WORKLOAD}}}", "{{runtime_tag}} {{mode}}"),),
            "percentunit",
        ),
        8,
    )
    grid.add(
        timeseries(
            "Host vCPU usage by mode",
            "The host's average vCPU time by mode.",
            ((f"{SYSTEM_VCPU}{{{NODE}}}", "{{mode}}"),),
            "percentunit",
            stacking={"mode": "normal"},
        ),
        8,
    )
    grid.add(
        timeseries(
            "Loaded and running models",
            "Models each runtime has loaded, and those executing.",
            (
                (f"{LOADED}{{{WORKLOAD}}}", "{{runtime_tag}} loaded"),
                (f"{RUNNING}{{{WORKLOAD}}}", "{{runtime_tag}} running"),
            ),
            "none",
        ),
        8,
    )
    grid.row("Hardware and pods")
    grid.add(
        timeseries(
            "ECC events by device",
            "Device ECC events per second by device and type; any *_uncorrected event is an alert.",
            (
                (
                    f"sum by (neuron_device, event_type) (rate({ECC}{{{NODE}}}[{RATE}]))",
                    "dev{{neuron_device}} {{event_type}}",
                ),
            ),
            "cps",
        ),
        12,
    )
    grid.add(
        table(
            "Pods on NeuronCores",
            "Which pod and container each NeuronCore is allocated to (pod attribution; empty outside Kubernetes).",
            ((f'{POD_INFO}{{{NODE},namespace=~"$namespace",pod=~"$pod"}}', ""),),
        ),
        12,
    )
    grid.add(
        timeseries(
            "NeuronCore utilization by pod",
            "Mean utilization of the NeuronCores each pod holds, each core once however many runtimes share "
            "it; pods from neuron_neuroncore_pod_info (the kubelet, else neuron-monitor's neuron_k8s_info), "
            "so cores nobody was granted draw no line. Empty outside Kubernetes.",
            ((POD_UTILIZATION, "{{namespace}}/{{pod}}"),),
            "percentunit",
        ),
        24,
    )
    grid.row("Exporter health")
    grid.add(
        stat(
            "Exporter and neuron-monitor up",
            "Up while Prometheus scrapes the exporter and neuron-monitor sends fresh reports; down when "
            "either is not (a down exporter cannot say how neuron-monitor is).",
            f"min(up{{{NODE}}}) * (min({MONITOR_UP}{{{NODE}}}) or vector(0))",
            "none",
            steps((RED, None), (GREEN, 1)),
            mappings=UP_DOWN,
        ),
        6,
        6,
    )
    grid.add(
        stat(
            "Data age",
            "Seconds since the last report from neuron-monitor.",
            f"max(time() - {LAST_REPORT}{{{NODE}}})",
            "s",
            steps((GREEN, None), (YELLOW, 30), (RED, 120)),
        ),
        6,
        6,
    )
    grid.add(
        stat(
            "neuron-monitor restarts",
            "Restarts of neuron-monitor in the dashboard's time range (a whole number: increase() "
            "extrapolates to the range's edges, so it is rounded).",
            f"round(sum(increase({RESTARTS}{{{NODE}}}[$__range])))",
            "none",
            steps((GREEN, None), (YELLOW, 1), (RED, 5)),
            decimals=0,
        ),
        6,
        6,
    )
    grid.add(
        timeseries(
            "Bad input",
            "Lines dropped by reason, groups skipped as invalid, and groups neuron-monitor itself reported an error for.",
            (
                (f"sum by (reason) (rate({BAD_LINES}{{{NODE}}}[{RATE}]))", "bad line: {{reason}}"),
                (f"sum by (group) (rate({INVALID}{{{NODE}}}[{RATE}]))", "invalid: {{group}}"),
                (
                    f"sum by (group) (rate({MONITOR_ERRORS}{{{NODE}}}[{RATE}]))",
                    "monitor error: {{group}}",
                ),
            ),
            "cps",
        ),
        6,
        6,
    )
    return dashboard(
        "neuron-node",
        "Neuron / Node and workload",
        "One node's NeuronCores, runtimes, latency, memory, CPU, models, ECC, pods and the exporter itself.",
        grid,
        node_variables(),
        links=(drill_down(UIDS["fleet"], "Fleet overview"), drill_down(UIDS["cost"], "Cost and efficiency")),
    )
