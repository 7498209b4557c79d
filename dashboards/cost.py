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

from alerts import baselines
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
    column,
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


# --- per model: Triton's counters joined with the pods' cost ---------------------------------------

TRITON_INFERENCES, TRITON_EXECUTIONS = "nv_inference_count", "nv_inference_exec_count"
assert {TRITON_INFERENCES, TRITON_EXECUTIONS} <= r.EXTERNAL_COUNTERS
MODEL_COST = "max by (namespace, model) (model:neuron_hourly_cost_usd:$price_source)"
"""$ per hour of each model: its pods' cost split among the models they serve (alerts/records.py)."""
BASELINE_BY_MODEL = f"max by (model) ({baselines.RECORD})"
"""What a million requests cost on the GPU fleet, per model, from alerts/baselines.yml."""


def per_model_rate(counter: str) -> str:
    """Per second, by the pod's Kubernetes namespace and the model (Triton's own `namespace` label,
    with --model-namespacing, arrives as exported_namespace and is left alone)."""
    return f"sum by (namespace, model) (rate({counter}[{RATE}]))"


REQUESTS = per_model_rate("$request_metric")
INFERENCES = per_model_rate(TRITON_INFERENCES)
PER_MILLION_REQUESTS = f"{MODEL_COST} / 3600 / on(namespace, model) ({REQUESTS} > 0) * 1e6"
PER_MILLION_INFERENCES = f"{MODEL_COST} / 3600 / on(namespace, model) ({INFERENCES} > 0) * 1e6"
MODEL_REDUCTION = f"1 - ({PER_MILLION_REQUESTS}) / on(model) group_left() {BASELINE_BY_MODEL}"


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
            name="request_metric",
            label="Request counter",
            query="nv_inference_request_success",
            type="textbox",
            default="nv_inference_request_success",
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
        column(f"Value #{ref}", title, "currencyUSD", 3)
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
    per_model(grid)
    return dashboard(
        UIDS["cost"],
        "Neuron / Cost and efficiency",
        "What the Neuron nodes cost per hour, per million executions and idle, and the reduction against a baseline.",
        grid,
        fleet_variables(*variables_for_cost()),
        links=(drill_down(UIDS["fleet"], "Fleet overview"), drill_down(UIDS["node"], "Node and workload")),
    )


def per_model(grid: Grid) -> None:
    """What each model costs per request and against its GPU baseline, and what no model accounts for."""
    grid.row("Per model")
    models = table(
        "Cost per model",
        "Per model (and the Kubernetes namespace of its pods): requests and inferences per second from "
        "Triton (the request counter is the `request_metric` variable), the average batch, what the model "
        "costs per hour (its pods' NeuronCores over the node's, split among the models a pod serves), per "
        "million requests and inferences, the GPU baseline from alerts/baselines.yml and the reduction.",
        (
            (REQUESTS, ""),
            (f"{INFERENCES} / on(namespace, model) ({per_model_rate(TRITON_EXECUTIONS)} > 0)", ""),
            (MODEL_COST, ""),
            (PER_MILLION_REQUESTS, ""),
            (PER_MILLION_INFERENCES, ""),
            (f"0 * ({PER_MILLION_REQUESTS}) + on(model) group_left() {BASELINE_BY_MODEL}", ""),
            (MODEL_REDUCTION, ""),
        ),
    )
    models.overrides = [
        column("Value #A", "Requests/s", "reqps", 1),
        column("Value #B", "Average batch", "none", 2),
        column("Value #C", "$/h", "currencyUSD", 3),
        column("Value #D", "$ per million requests", "currencyUSD", 3),
        column("Value #E", "$ per million inferences", "currencyUSD", 3),
        column("Value #F", "GPU baseline $ per million requests", "currencyUSD", 3),
        column("Value #G", "Reduction vs GPU", "percentunit", 1),
    ]
    grid.add(models, 24, 8)
    grid.add(
        timeseries(
            "Cost per million requests by model",
            "Each model's cost per hour over the requests it serves; no value while it serves none.",
            ((PER_MILLION_REQUESTS, "{{namespace}}/{{model}}"),),
            "currencyUSD",
        ),
        12,
    )
    grid.add(
        timeseries(
            "Reduction vs GPU baseline by model",
            "How much cheaper a million requests are here than the model's GPU baseline (alerts/baselines.yml).",
            ((MODEL_REDUCTION, "{{namespace}}/{{model}}"),),
            "percentunit",
        ),
        12,
    )
    grid.add(
        timeseries(
            "Cost per hour by pod",
            "Each pod's share of its node's price: the NeuronCores it is granted over the node's, shared "
            "cores split; with the unattributed part, the pods of a node add up to its price.",
            (
                (
                    'max by (namespace, pod) (pod:neuron_hourly_cost_usd:$price_source{instance=~"$instance"})',
                    "{{namespace}}/{{pod}}",
                ),
            ),
            "currencyUSD",
        ),
        12,
    )
    grid.add(
        stat(
            "Cost no pod accounts for",
            "The selected nodes' price per hour that no pod is granted NeuronCores for: never hidden behind "
            "per-model figures.",
            'sum(instance:neuron_unattributed_hourly_cost_usd:$price_source{instance=~"$instance"})',
            "currencyUSD",
            steps((GREEN, None), (YELLOW, 1)),
            decimals=2,
        ),
        12,
    )
