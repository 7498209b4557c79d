"""Fleet overview: every node at a glance, from the recording rules so it stays cheap at 1,000 nodes."""

from __future__ import annotations

from grafanalib import core as g

from alerts import rules as r
from dashboards.common import (
    GREEN,
    NODE,
    RED,
    YELLOW,
    Grid,
    bargauge,
    dashboard,
    stat,
    steps,
    table,
    timeseries,
    typed,
    variables,
)
from exporter.catalog import metric

UTILIZATION = metric("neuron_neuroncore_utilization_ratio", "runtime_tag")
MONITOR_UP = metric("neuron_monitor_up")
LAST_REPORT = metric("neuron_exporter_last_report_timestamp_seconds")
P50_P99 = ',percentile=~"p50|p99"'


def rec(rule: r.Record, extra: str = "") -> str:
    """A recording rule's series for the selected nodes."""
    return f"{rule.record}{{{NODE}{extra}}}"


def build() -> g.Dashboard:
    grid = Grid()
    grid.row("Nodes")
    grid.add(
        stat(
            "Nodes reporting",
            "Nodes whose exporter is scraped and whose neuron-monitor sends fresh reports (neuron_monitor_up 1).",
            f"count({typed(f'{MONITOR_UP}{{{NODE}}} == 1')}) or vector(0)",
            "none",
            steps((RED, None), (GREEN, 1)),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Exporters down",
            "Scrape targets of the selected jobs that Prometheus cannot scrape (up 0): no data at all from them.",
            'count(up{job=~"$job"} == 0) or vector(0)',
            "none",
            steps((GREEN, None), (RED, 1)),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "neuron-monitor down or stale",
            "Nodes whose exporter runs but whose neuron-monitor is down or has sent nothing for 3 periods.",
            f"count({typed(f'{MONITOR_UP}{{{NODE}}} == 0')}) or vector(0)",
            "none",
            steps((GREEN, None), (RED, 1)),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Oldest data",
            "Age of the oldest last report among the selected nodes (neuron_exporter_last_report_timestamp_seconds).",
            f"max({typed(f'time() - {LAST_REPORT}{{{NODE}}}')})",
            "s",
            steps((GREEN, None), (YELLOW, 30), (RED, 120)),
        ),
        6,
        4,
    )
    grid.row("NeuronCores")
    grid.add(
        timeseries(
            "NeuronCores held vs present",
            "NeuronCores the nodes have, those a runtime holds, and those busy now (utilization above 0).",
            (
                (f"sum({typed(rec(r.CORES_PRESENT))})", "present"),
                (f"sum({typed(rec(r.CORES_HELD))})", "held by a runtime"),
                (f"count({typed(f'{UTILIZATION}{{{NODE}}} > 0')}) or vector(0)", "busy"),
            ),
            "none",
        ),
        12,
    )
    grid.add(
        g.Heatmap(
            title="Utilization across the fleet",
            description="How the nodes' mean NeuronCore utilization is distributed over time: one count per node.",
            dataSource="${datasource}",
            targets=[g.Target(expr=typed(rec(r.UTILIZATION_AVG)), legendFormat="{{instance}}", refId="A")],
            dataFormat="timeseries",
            options={
                "calculate": True,
                "yAxis": {"unit": "percentunit", "min": 0, "max": 1},
                "color": {"scheme": "Oranges"},
            },
        ),
        12,
    )
    grid.add(
        bargauge(
            "Busiest nodes",
            "The five nodes with the highest mean NeuronCore utilization.",
            f"topk(5, {typed(rec(r.UTILIZATION_AVG))})",
            "{{instance}}",
            "percentunit",
            steps((GREEN, None), (YELLOW, 0.8), (RED, 0.95)),
        ),
        12,
    )
    grid.add(
        bargauge(
            "Idlest nodes",
            "The five nodes with the lowest mean NeuronCore utilization: capacity paid for and not used.",
            f"bottomk(5, {typed(rec(r.UTILIZATION_AVG))})",
            "{{instance}}",
            "percentunit",
            steps((RED, None), (YELLOW, 0.2), (GREEN, 0.5)),
        ),
        12,
    )
    grid.row("Executions")
    grid.add(
        timeseries(
            "Completed executions per second by instance type",
            "Executions that completed cleanly, per second, summed by instance type.",
            ((f"sum by (instance_type) ({typed(rec(r.COMPLETED_RATE))})", "{{instance_type}}"),),
            "ops",
        ),
        8,
    )
    grid.add(
        timeseries(
            "Execution error ratio",
            "Share of executions that did not complete cleanly (timed out, errors, rejected).",
            ((f"sum({typed(rec(r.FAILED_RATE))}) / sum({typed(rec(r.EXECUTIONS_RATE))})", "error ratio"),),
            "percentunit",
            thresholds=steps((GREEN, None), (RED, r.ERROR_RATIO)),
            thresholdsStyleMode="line",
        ),
        8,
    )
    grid.add(
        timeseries(
            "Latency p50 / p99, total and device",
            "The slowest node's percentiles: total latency as the runtime measures it, and time on the device.",
            (
                (f"max by (percentile) ({typed(rec(r.LATENCY_MAX, P50_P99))})", "total {{percentile}}"),
                (
                    f"max by (percentile) ({typed(rec(r.DEVICE_LATENCY_MAX, P50_P99))})",
                    "device {{percentile}}",
                ),
            ),
            "s",
        ),
        8,
    )
    grid.row("Memory and hardware")
    grid.add(
        timeseries(
            "Device memory used vs capacity",
            "Neuron device memory the runtimes use, against what the devices have.",
            (
                (f"sum({typed(rec(r.DEVICE_MEMORY_USED))})", "used"),
                (f"sum({typed(rec(r.DEVICE_MEMORY_TOTAL))})", "capacity"),
            ),
            "bytes",
        ),
        12,
    )
    grid.add(
        timeseries(
            "ECC events per second",
            "Device ECC events by type across the fleet; any *_uncorrected event is an alert.",
            ((f"sum by (event_type) ({typed(rec(r.ECC_RATE))})", "{{event_type}}"),),
            "cps",
        ),
        12,
    )
    grid.add(
        table(
            "By instance type",
            "Nodes, mean NeuronCore utilization and completed executions per second, per instance type.",
            (
                (f"count by (instance_type) ({typed(f'{MONITOR_UP}{{{NODE}}}')})", "nodes"),
                (f"avg by (instance_type) ({typed(rec(r.UTILIZATION_AVG))})", "utilization"),
                (f"sum by (instance_type) ({typed(rec(r.COMPLETED_RATE))})", "executions/s"),
            ),
        ),
        24,
    )
    return dashboard(
        "neuron-fleet",
        "Neuron / Fleet overview",
        "Every Inferentia/Trainium node: health, NeuronCore use, executions, latency, memory, ECC.",
        grid,
        variables(),
    )
