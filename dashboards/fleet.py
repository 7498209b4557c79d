"""Fleet overview: every node at a glance, from the recording rules and `up` only.

So it stays cheap at 1,000 nodes and works unchanged on a central store that receives just the
recording rules through remote_write (REMOTE_WRITE_KEEP, the README's keep-list). Every per-node
figure is joined with the node's identity record (dashboards.common.typed), so a node whose
neuron-monitor never reported is still listed and counted, and a target scraped by two jobs counts once.
"""

from __future__ import annotations

from grafanalib import core as g

from alerts import records as r
from dashboards.common import (
    DATASOURCE,
    GREEN,
    KEY,
    NODE,
    RED,
    UIDS,
    YELLOW,
    Grid,
    bargauge,
    column,
    count_or_zero,
    dashboard,
    drill_down,
    fleet_variables,
    node_link,
    stat,
    steps,
    table,
    target,
    timeseries,
    typed,
)

P50_P99 = ',percentile=~"p50|p99"'
READS = (
    r.NODE_INFO,
    r.MONITOR_UP_MAX,
    r.REPORT_AGE,
    r.UTILIZATION_AVG,
    r.CORES_PRESENT,
    r.CORES_HELD,
    r.CORES_BUSY,
    r.COMPLETED_RATE,
    r.EXECUTIONS_RATE,
    r.FAILED_RATE,
    r.LATENCY_MAX,
    r.DEVICE_LATENCY_MAX,
    r.DEVICE_MEMORY_USED,
    r.DEVICE_MEMORY_TOTAL,
    r.ECC_RATE,
)
"""The recording rules this dashboard reads; with `up` and `ALERTS` (its annotations), all a central
store needs to hold for it."""
REMOTE_WRITE_KEEP = "|".join(("up", "ALERTS", *(rule.record for rule in READS)))
"""The `__name__` regex of the remote_write keep rule that sends a central store what this dashboard
reads, and nothing else (README: "A fleet view on a central store")."""


def rec(rule: r.Record, extra: str = "") -> str:
    """A recording rule's series for the selected nodes, each node once with its name and type."""
    return typed(f"{rule.record}{{{NODE}{extra}}}", by=", percentile" if extra else "")


def build() -> g.Dashboard:
    grid = Grid()
    grid.row("Nodes")
    grid.add(
        stat(
            "Nodes reporting",
            "Nodes whose exporter is scraped and whose neuron-monitor sends fresh reports (neuron_monitor_up 1).",
            count_or_zero(f"{rec(r.MONITOR_UP_MAX)} == 1"),
            "none",
            steps((RED, None), (GREEN, 1)),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Exporters down",
            "Nodes that a selected job cannot scrape (up 0): no data at all from them. A target that never "
            "answered has no node name, so it counts under All but cannot be picked.",
            f"count(min by ({KEY}) (up{{{NODE}}}) == 0) or (0 * count(min by ({KEY}) (up{{{NODE}}})))",
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
            count_or_zero(f"{rec(r.MONITOR_UP_MAX)} == 0"),
            "none",
            steps((GREEN, None), (RED, 1)),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Oldest data",
            "Age of the oldest last report among the selected nodes; nodes that never reported are counted "
            "under neuron-monitor down instead.",
            f"max({rec(r.REPORT_AGE)})",
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
            "NeuronCores the nodes have, those at least one runtime holds, and those busy now (utilization "
            "above 0); a core shared by several runtimes counts once.",
            (
                (f"sum({rec(r.CORES_PRESENT)})", "present"),
                (f"sum({rec(r.CORES_HELD)})", "held by a runtime"),
                (f"sum({rec(r.CORES_BUSY)})", "busy"),
            ),
            "none",
        ),
        12,
    )
    grid.add(
        g.Heatmap(
            title="Utilization across the fleet",
            description="How the nodes' mean NeuronCore utilization is distributed over time: one count per node.",
            dataSource=DATASOURCE,
            targets=[target(rec(r.UTILIZATION_AVG), "{{node}}")],
            dataFormat="timeseries",
            options={
                "calculate": True,
                "yAxis": {"unit": "percentunit", "min": 0, "max": 1},
                "color": {"scheme": "Oranges"},
            },
        ),
        12,
    )
    for title, description, function, ranking in (
        (
            "Busiest nodes",
            "The five nodes with the highest mean NeuronCore utilization.",
            "topk",
            (YELLOW, RED),
        ),
        (
            "Idlest nodes",
            "The five nodes with the lowest mean NeuronCore utilization: capacity paid for and not used.",
            "bottomk",
            (RED, GREEN),
        ),
    ):
        panel = bargauge(
            title,
            description + " A bar links to the node's dashboard.",
            f"{function}(5, {rec(r.UTILIZATION_AVG)})",
            "{{node}}",
            "percentunit",
            steps((GREEN, None), (ranking[0], 0.8), (ranking[1], 0.95))
            if function == "topk"
            else steps((RED, None), (YELLOW, 0.2), (GREEN, 0.5)),
        )
        panel.extraJson["fieldConfig"]["defaults"]["links"] = [node_link()]
        grid.add(panel, 12)
    grid.row("Executions")
    grid.add(
        timeseries(
            "Completed executions per second by instance type",
            "Executions that completed cleanly, per second, summed by instance type.",
            ((f"sum by (instance_type) ({rec(r.COMPLETED_RATE)})", "{{instance_type}}"),),
            "ops",
        ),
        8,
    )
    grid.add(
        timeseries(
            "Execution error ratio",
            "Share of executions that did not complete cleanly (timed out, errors, rejected); no value while "
            "nothing executes.",
            (
                (
                    f"sum({rec(r.FAILED_RATE)}) / (sum({rec(r.EXECUTIONS_RATE)}) > 0)",
                    "error ratio",
                ),
            ),
            "percentunit",
            thresholds=steps((GREEN, None), (RED, 0.05)),
            thresholdsStyleMode="line",
        ),
        8,
    )
    grid.add(
        timeseries(
            "Latency p50 / p99, total and device",
            "The slowest node's percentiles: total latency as the runtime measures it, and time on the device.",
            (
                (f"max by (percentile) ({rec(r.LATENCY_MAX, P50_P99)})", "total {{percentile}}"),
                (f"max by (percentile) ({rec(r.DEVICE_LATENCY_MAX, P50_P99)})", "device {{percentile}}"),
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
                (f"sum({rec(r.DEVICE_MEMORY_USED)})", "used"),
                (f"sum({rec(r.DEVICE_MEMORY_TOTAL)})", "capacity"),
            ),
            "bytes",
        ),
        12,
    )
    grid.add(
        timeseries(
            "ECC events per second",
            "Device ECC events by type across the fleet; any *_uncorrected event is an alert.",
            (
                (
                    f"sum by (event_type) ({typed(f'{r.ECC_RATE.record}{{{NODE}}}', by=', event_type')})",
                    "{{event_type}}",
                ),
            ),
            "cps",
        ),
        12,
    )
    by_type = table(
        "By instance type",
        "Nodes known (exporter scraped), mean NeuronCore utilization and completed executions per second, "
        "per instance type; `unknown` is nodes whose neuron-monitor has not reported.",
        (
            (f"count by (instance_type) ({rec(r.NODE_INFO)})", "nodes"),
            (f"avg by (instance_type) ({rec(r.UTILIZATION_AVG)})", "utilization"),
            (f"sum by (instance_type) ({rec(r.COMPLETED_RATE)})", "executions/s"),
        ),
    )
    by_type.overrides = [
        column("Value #A", "Nodes", "none", decimals=0),
        column("Value #B", "Mean utilization", "percentunit", decimals=1),
        column("Value #C", "Completed executions/s", "ops", decimals=1),
    ]
    grid.add(by_type, 24)
    return dashboard(
        UIDS["fleet"],
        "Neuron / Fleet overview",
        "Every Inferentia/Trainium node: health, NeuronCore use, executions, latency, memory, ECC.",
        grid,
        fleet_variables(),
        links=(
            drill_down(UIDS["node"], "Node and workload"),
            drill_down(UIDS["cost"], "Cost and efficiency"),
        ),
        restarts=False,
    )
