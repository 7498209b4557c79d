"""Cost and efficiency: what the nodes cost, per execution, idle, and against a GPU baseline.

The price per node is a recording rule per source (`price_source` variable): the exporter's own
neuron_instance_hourly_cost_usd (--instance-hourly-cost or --instance-prices), or OpenCost's
node_total_hourly_cost joined through the Kubernetes node name (alerts/records.py). Nodes without a
price are listed as such and left out of both sides of every ratio: a cost per million divides the
priced nodes' spend by the priced nodes' executions, never by everybody's. Figures over the dashboard's
range come from increases and from the price at every step of the range (a node pays only for the time
it existed), beside the instant rates; a ratio whose denominator is 0 shows no value, never ±Inf.

Where the money goes, per node, in three parts that add up to its price:

    used       each NeuronCore's price (price / cores) x its utilization, a shared core counted once
    held idle  each held core's price x (1 - utilization)
    unheld     the cores no runtime holds (all of them on a paid idle node, and the whole price while
               neuron-monitor has never said how many cores there are)

A runtime's own cost splits each core it holds among the runtimes that share it, so the runtimes and
the unheld part add up to the price as well.
"""

from __future__ import annotations

from grafanalib import core as g

from alerts import records as r
from dashboards.common import (
    GREEN,
    JOINED,
    KEY,
    NODE,
    RATE,
    RED,
    UIDS,
    YELLOW,
    Grid,
    bargauge,
    count_or_zero,
    dashboard,
    drill_down,
    fleet_variables,
    identity,
    stat,
    steps,
    table,
    timeseries,
    typed,
)
from exporter.catalog import metric

STATUS = metric("neuron_execution_status_total", "status")
UTILIZATION = metric("neuron_neuroncore_utilization_ratio", "neuroncore", "runtime_tag")
BASELINE = 3.465
"""Default baseline, $ per million executions: a g4dn.12xlarge pod ($1.2725/h) at 102 executions/s."""
PRICE_RECORD = r.PRICE_EXPORTER.record.rsplit(":", 1)[0] + ":$price_source"
HOURS_PER_STEP = "$__interval_ms / 3600000"
"""A subquery step in hours: a sum of $/h samples taken every $__interval, times this, is dollars."""

PRICE = typed(f"{PRICE_RECORD}{{{NODE}}}")
"""$ per hour of each selected, priced node (labels: cluster, instance, node, instance_type)."""
UNPRICED = f"max by ({KEY}, node, instance_type) ({identity()}) unless on({KEY}) {PRICE}"
"""Selected nodes that have no price from the selected source."""
PRICED_EVER = f"max by ({KEY}) (max_over_time({PRICE_RECORD}{{{NODE}}}[$__range]))"
"""Nodes priced at any time in the range."""
COMPLETED = typed(f'sum by ({JOINED}) (rate({STATUS}{{{NODE},status="completed"}}[{RATE}]))')
"""Completed executions per second of each selected node."""
PRICED_COMPLETED = f"{COMPLETED} and on({KEY}) {PRICE}"
COMPLETED_RANGE = (
    f'max by ({KEY}) (sum by ({JOINED}) (increase({STATUS}{{{NODE},status="completed"}}[$__range])))'
    f"\n  and on({KEY}) {PRICED_EVER}"
)
"""Completed executions over the range of the nodes priced in it (instance-type filter as of now)."""
PER_MILLION = f"sum({PRICE}) / 3600 / (sum({PRICED_COMPLETED}) > 0) * 1e6"
"""$ per million completed executions now: the priced nodes' spend over the priced nodes' work."""
SPEND_RANGE = f"sum_over_time(sum({PRICE})[$__range:$__interval]) * {HOURS_PER_STEP}"
"""Dollars spent over the range: the price at every step, so a node pays only while it exists."""
PER_MILLION_RANGE = f"({SPEND_RANGE}) / (sum({COMPLETED_RANGE}) > 0) * 1e6"

CORES = f"max by ({KEY}) ({r.CORES_PRESENT.record}{{{NODE}}})"
HELD_CORES = f'group by ({KEY}, neuroncore, runtime_tag) ({UTILIZATION}{{{NODE},runtime_tag!=""}})'
"""Which runtime holds which core, once per node whatever number of jobs scrape it."""
CORE_USED = f'clamp_max(sum by ({KEY}, neuroncore) (max by ({KEY}, neuroncore, runtime_tag) ({UTILIZATION}{{{NODE},runtime_tag!=""}})), 1)'
"""Utilization of each held core, the runtimes sharing it added up (capped at 1)."""
USED_SHARE = f"sum by ({KEY}) ({CORE_USED}) / on({KEY}) {CORES}"
HELD_SHARE = f"count by ({KEY}) ({CORE_USED}) / on({KEY}) {CORES}"
USED = f"{PRICE} * on({KEY}) group_left() ({USED_SHARE})"
HELD_IDLE = f"{PRICE} * on({KEY}) group_left() ({HELD_SHARE} - on({KEY}) {USED_SHARE})"
UNHELD = f"{PRICE} * on({KEY}) group_left() (1 - {HELD_SHARE})\n  or on({KEY}) {PRICE}"
"""The price of the cores no runtime holds: all of it on a node where none is held, or where
neuron-monitor never said how many cores there are."""
IDLE = f"{PRICE} * on({KEY}) group_left() (1 - {USED_SHARE})\n  or on({KEY}) {PRICE}"
"""Held-but-idle plus unheld: what nobody's work used, $/h."""
WORKLOAD = (
    f"sum by ({KEY}, runtime_tag) (\n  {HELD_CORES}\n  / on({KEY}, neuroncore) group_left()"
    f" count by ({KEY}, neuroncore) ({HELD_CORES})\n)"
    f"\n/ on({KEY}) group_left() {CORES}\n* on({KEY}) group_left(node) {PRICE}"
)
"""Each runtime's share of its node's price: every core it holds, split among the runtimes sharing it."""


def variables_for_cost() -> tuple[g.Template, ...]:
    return (
        g.Template(
            name="price_source",
            label="Price source",
            query=",".join(r.PRICE_SOURCES),
            type="custom",
            default="exporter",
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
        stat(
            "Spend per hour",
            "What the selected, priced nodes cost per hour now.",
            f"sum({PRICE})",
            "currencyUSD",
            steps((GREEN, None)),
            decimals=2,
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Spend over the range",
            "What the selected, priced nodes cost over the dashboard's time range, each for the time it existed.",
            SPEND_RANGE,
            "currencyUSD",
            steps((GREEN, None)),
            decimals=2,
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Unpriced nodes",
            "Selected nodes with no price from the selected source: left out of every cost figure. The "
            "exporter prices a node from --instance-hourly-cost, or from --instance-prices once neuron-monitor "
            "reports its instance type and region.",
            count_or_zero(UNPRICED),
            "none",
            steps((GREEN, None), (YELLOW, 1)),
            decimals=0,
        ),
        6,
        4,
    )
    unpriced = table(
        "Unpriced nodes by name",
        "Which nodes have no price: their spend is unknown, not zero.",
        ((UNPRICED, ""),),
    )
    grid.add(unpriced, 6, 4)
    grid.add(
        timeseries(
            "Cost per hour by node",
            "What each selected, priced node costs per hour.",
            ((PRICE, "{{node}}"),),
            "currencyUSD",
        ),
        12,
    )
    grid.add(
        bargauge(
            "Cost per hour by instance type",
            "Hourly spend of the selected, priced nodes, summed by instance type.",
            f"sum by (instance_type) ({PRICE})",
            "{{instance_type}}",
            "currencyUSD",
            steps((GREEN, None)),
        ),
        12,
    )
    grid.row("Per execution")
    for title, description, expr, unit, thresholds, decimals in (
        (
            "Cost per million completed executions",
            "The priced nodes' spend per hour over the executions they complete now; idle priced nodes count "
            "against it, unpriced nodes are on neither side. No value while nothing completes.",
            PER_MILLION,
            "currencyUSD",
            steps((GREEN, None)),
            3,
        ),
        (
            "Reduction vs baseline",
            "How much cheaper a million executions are here than on the baseline (the baseline variable, $ per "
            "million on the fleet being replaced); negative when dearer.",
            f"1 - ({PER_MILLION}) / $baseline_cost_per_million",
            "percentunit",
            steps((RED, None), (YELLOW, 0.25), (GREEN, 0.5)),
            1,
        ),
        (
            "Executions per dollar",
            "Completed executions per dollar spent on the priced nodes.",
            f"sum({PRICED_COMPLETED}) * 3600 / (sum({PRICE}) > 0)",
            "short",
            steps((GREEN, None)),
            0,
        ),
        (
            "Baseline",
            "The baseline cost per million executions the reduction is measured against.",
            "vector($baseline_cost_per_million)",
            "currencyUSD",
            steps((GREEN, None)),
            3,
        ),
        (
            "Cost per million over the range",
            "Spend over the range over the executions completed in it, on the nodes priced in it.",
            PER_MILLION_RANGE,
            "currencyUSD",
            steps((GREEN, None)),
            3,
        ),
        (
            "Reduction over the range",
            "The reduction against the baseline, from the range's spend and executions.",
            f"1 - ({PER_MILLION_RANGE}) / $baseline_cost_per_million",
            "percentunit",
            steps((RED, None), (YELLOW, 0.25), (GREEN, 0.5)),
            1,
        ),
        (
            "Executions over the range",
            "Executions the priced nodes completed in the dashboard's time range.",
            f"round(sum({COMPLETED_RANGE}))",
            "none",
            steps((GREEN, None)),
            0,
        ),
    ):
        grid.add(stat(title, description, expr, unit, thresholds, decimals=decimals), 6, 5)
    grid.add(
        stat(
            "Idle spend over the range",
            "What held-but-idle and unheld NeuronCores cost over the range, each node for the time it existed.",
            f"sum_over_time(sum({IDLE})[$__range:$__interval]) * {HOURS_PER_STEP}",
            "currencyUSD",
            steps((GREEN, None), (YELLOW, 10), (RED, 100)),
            decimals=2,
        ),
        6,
        5,
    )
    grid.add(
        timeseries(
            "Cost per million completed executions by node",
            "Each priced node's price over its completed executions; no value while a node completes none.",
            ((f"{PRICE} / 3600 / on({KEY}) group_left() ({COMPLETED} > 0) * 1e6", "{{node}}"),),
            "currencyUSD",
        ),
        24,
    )
    grid.row("Where the money goes")
    grid.add(
        timeseries(
            "Spend by use",
            "The selected nodes' price per hour in three parts that add up to it: NeuronCore time used, "
            "held by a runtime but idle, and not held by any runtime (or not measured).",
            (
                (f"sum({USED})", "used"),
                (f"sum({HELD_IDLE})", "held, idle"),
                (f"sum({UNHELD})", "unheld or unmeasured"),
            ),
            "currencyUSD",
            stacking={"mode": "normal"},
        ),
        12,
    )
    grid.add(
        timeseries(
            "Idle spend rate by node",
            "Dollars per hour each node pays for NeuronCore time nobody used: held but idle, plus unheld.",
            ((IDLE, "{{node}}"),),
            "currencyUSD",
        ),
        12,
    )
    split = table(
        "Spend by use per node",
        "Each node's price per hour and its three parts, which add up to it.",
        ((PRICE, ""), (USED, ""), (HELD_IDLE, ""), (UNHELD, "")),
    )
    split.overrides = [
        _column(f"Value #{ref}", title)
        for ref, title in zip(
            "ABCD", ("Price $/h", "Used", "Held, idle", "Unheld or unmeasured"), strict=True
        )
    ]
    grid.add(split, 12)
    grid.add(
        timeseries(
            "Cost per hour by workload",
            "Each runtime's share of its node's price: every NeuronCore it holds, split among the runtimes "
            "that share it. With the unheld part, the runtimes of a node add up to its price.",
            ((WORKLOAD, "{{runtime_tag}} on {{node}}"),),
            "currencyUSD",
        ),
        12,
    )
    return dashboard(
        UIDS["cost"],
        "Neuron / Cost and efficiency",
        "What the Neuron nodes cost per hour, per million executions and idle, and the reduction against a baseline.",
        grid,
        fleet_variables(*variables_for_cost()),
        links=(drill_down(UIDS["fleet"], "Fleet overview"), drill_down(UIDS["node"], "Node and workload")),
    )


def _column(field: str, title: str) -> dict[str, object]:
    """A table column of dollars per hour."""
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [
            {"id": "displayName", "value": title},
            {"id": "unit", "value": "currencyUSD"},
            {"id": "decimals", "value": 3},
        ],
    }
