"""Cost and efficiency: what the nodes cost, per execution, idle, and against a GPU baseline.

The price is neuron_instance_hourly_cost_usd (from --instance-hourly-cost or --instance-prices), or
OpenCost's node_total_hourly_cost through the `cost_metric` variable where a cluster runs OpenCost (its
series must carry the `instance` label of the exporter's target; relabel if they do not). The baseline
is a cost per million executions on the fleet being replaced (a GPU pod's price over its throughput).
"""

from __future__ import annotations

from grafanalib import core as g

from dashboards.common import (
    GREEN,
    INFO,
    NODE,
    RATE,
    RED,
    RUNTIME,
    YELLOW,
    Grid,
    bargauge,
    dashboard,
    stat,
    steps,
    timeseries,
    variables,
)
from exporter.catalog import metric

COST = metric("neuron_instance_hourly_cost_usd")
STATUS = metric("neuron_execution_status_total", "status")
UTILIZATION = metric("neuron_neuroncore_utilization_ratio", "runtime_tag")
DEVICES = metric("neuron_devices")
CORES_PER_DEVICE = metric("neuron_device_neuroncores")
BASELINE = 3.465
"""Default baseline, $ per million executions: a g4dn.12xlarge pod ($1.2725/h) at 102 executions/s."""

SELECTED = f'{INFO}{{{NODE},instance_type=~"$instance_type"}}'
NODE_COST = f"sum by (instance) ($cost_metric * on(instance) group_left() {SELECTED})"
"""Dollars per hour of each selected node."""
TYPE_COST = f"sum by (instance_type) ($cost_metric * on(instance) group_left(instance_type) {SELECTED})"
COMPLETED = f'sum by (instance) (rate({STATUS}{{{NODE},status="completed"}}[{RATE}]))'
"""Completed executions per second of each selected node."""
CORES = f"sum by (instance) ({DEVICES}{{{NODE}}} * on(job, instance) {CORES_PER_DEVICE}{{{NODE}}})"
HELD = f'{UTILIZATION}{{{RUNTIME},runtime_tag!=""}}'
PER_MILLION = f"sum({NODE_COST}) / 3600 / sum({COMPLETED}) * 1e6"
"""Dollars per million completed executions over the selected nodes: their whole spend over their work."""
IDLE_RATE = f"sum by (instance) (1 - {HELD}) / on(instance) group_left() {CORES} * on(instance) group_left() {NODE_COST}"
"""Dollars per hour of NeuronCores that a runtime holds but does not use (each core's price times its idle share)."""


def variables_for_cost() -> tuple[g.Template, ...]:
    return (
        g.Template(
            name="cost_metric",
            label="Price metric",
            query=f"{COST},node_total_hourly_cost",
            type="custom",
            default=COST,
            includeAll=False,
        ),
        g.Template(
            name="baseline_cost_per_million",
            label="Baseline $ per million executions",
            query=str(BASELINE),
            type="textbox",
            default=str(BASELINE),
        ),
    )


def build() -> g.Dashboard:
    grid = Grid()
    grid.row("Spend")
    grid.add(
        timeseries(
            "Cost per hour by node",
            "What each selected node costs per hour.",
            ((NODE_COST, "{{instance}}"),),
            "currencyUSD",
        ),
        8,
    )
    grid.add(
        bargauge(
            "Cost per hour by instance type",
            "Hourly spend of the selected nodes, summed by instance type.",
            TYPE_COST,
            "{{instance_type}}",
            "currencyUSD",
            steps((GREEN, None)),
        ),
        8,
    )
    grid.add(
        timeseries(
            "Cost per hour by workload",
            "Each runtime's share of its node's price: the NeuronCores it holds over the node's NeuronCores.",
            (
                (
                    f"count by (instance, runtime_tag) ({HELD}) / on(instance) group_left() {CORES}"
                    f" * on(instance) group_left() {NODE_COST}",
                    "{{runtime_tag}} on {{instance}}",
                ),
            ),
            "currencyUSD",
        ),
        8,
    )
    grid.row("Per execution")
    grid.add(
        stat(
            "Cost per million completed executions",
            "The selected nodes' spend over the executions they completed: idle nodes count against it.",
            PER_MILLION,
            "currencyUSD",
            steps((GREEN, None)),
            decimals=3,
        ),
        6,
        6,
    )
    grid.add(
        stat(
            "Executions per dollar",
            "Completed executions per dollar spent on the selected nodes.",
            f"sum({COMPLETED}) * 3600 / sum({NODE_COST})",
            "short",
            steps((GREEN, None)),
        ),
        6,
        6,
    )
    grid.add(
        stat(
            "Reduction vs baseline",
            "How much cheaper a million executions are here than on the baseline (the `baseline` variable, "
            "$ per million on the fleet being replaced).",
            f"1 - ({PER_MILLION}) / $baseline_cost_per_million",
            "percentunit",
            steps((RED, None), (YELLOW, 0.25), (GREEN, 0.5)),
            decimals=1,
        ),
        6,
        6,
    )
    grid.add(
        stat(
            "Baseline",
            "The baseline cost per million executions the reduction is measured against.",
            "vector($baseline_cost_per_million)",
            "currencyUSD",
            steps((GREEN, None)),
            decimals=3,
        ),
        6,
        6,
    )
    grid.add(
        timeseries(
            "Cost per million completed executions by node",
            "Each node's price over its completed executions.",
            ((f"{NODE_COST} / 3600 / {COMPLETED} * 1e6", "{{instance}}"),),
            "currencyUSD",
        ),
        24,
    )
    grid.row("Idle spend")
    grid.add(
        timeseries(
            "Idle spend rate by node",
            "Dollars per hour paid for NeuronCores that a runtime holds but does not use.",
            ((IDLE_RATE, "{{instance}}"),),
            "currencyUSD",
        ),
        16,
    )
    grid.add(
        stat(
            "Idle spend over the range",
            "What the held but unused NeuronCores cost over the dashboard's time range.",
            f"sum(avg_over_time(({IDLE_RATE})[$__range:])) * $__range_s / 3600",
            "currencyUSD",
            steps((GREEN, None), (YELLOW, 10), (RED, 100)),
            decimals=2,
        ),
        8,
    )
    return dashboard(
        "neuron-cost",
        "Neuron / Cost and efficiency",
        "What the Neuron nodes cost per hour, per million executions and idle, and the reduction against a baseline.",
        grid,
        variables(*variables_for_cost()),
    )
