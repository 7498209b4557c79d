"""Every dashboard query, run against real Prometheus servers holding a fleet that looks like production.

The fleet (tests/fleet.py): two clusters with an unpriced node, a node whose neuron-monitor exits at
start, a paid idle node, three runtimes on two cores, a dead target, a second job scraping one target,
prometheus-operator's target labels, pods from the kubelet and from neuron_k8s_info, OpenCost's price
metric, and a central store fed by remote_write with the README's keep-list. Variables are resolved
and written into the queries as Grafana does (tests/grafana.py). The checks are on values: cost figures
cover the same nodes on both sides, the parts of each node's spend add up to its price, ratios stay in
0-1 and costs at or above 0 with no NaN or Inf, one node's dashboard never shows another node, and the
central store answers every fleet query as the edge servers do.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts import records, rules
from tests import grafana
from tests.fleet import JOB, NODES, OPENCOST, PRICES, RATE_WINDOW_S, SECOND_JOB, Fleet, production_fleet
from tests.prometheus import Prometheus

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = {
    path.stem: json.loads(path.read_text()) for path in sorted((REPO / "dashboards").glob("*.json"))
}
FLEET, NODE, COST = DASHBOARDS["neuron-fleet"], DASHBOARDS["neuron-node"], DASHBOARDS["neuron-cost"]
INTERVAL_S = 5
BUILTINS = {
    "__rate_interval": f"{RATE_WINDOW_S}s",
    "__interval": f"{INTERVAL_S}s",
    "__interval_ms": str(INTERVAL_S * 1000),
    "__range": "1h",
    "__range_s": "3600",
}
"""A one-hour range: longer than the fleet has lived, so range figures show what a node that lived
part of the range pays."""
SEED_PRICE, SEED_RATE, SEED_BASELINE = 0.435, 191.0, 3.465


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with production_fleet(tmp_path_factory) as running:
        yield running


def pick(**wanted: str) -> grafana.Choose:
    """Choose variable options by text (node names) or value; others All/default."""

    def choose(name: str, options: list[tuple[str, str]]) -> str | None:
        if name not in wanted:
            return None
        for text, value in options:
            if wanted[name] in (text, value):
                return value
        if name in ("price_source", "baseline_cost_per_million"):
            return wanted[name]
        raise AssertionError(f"{wanted[name]!r} is not an option of ${name}: {options}")

    return choose


def run(
    dashboard: dict[str, Any],
    prometheus: Prometheus,
    choose: grafana.Choose | None = None,
    at: float | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Every query of the dashboard, by "title/refId", with its result."""
    values = grafana.resolve(dashboard, prometheus, BUILTINS, choose or pick(), at)
    return {
        f"{title}/{ref}": prometheus.query(grafana.substitute(expr, values), at)
        for title, ref, expr in grafana.queries(dashboard)
    }


def values(results: dict[str, list[dict[str, Any]]], key: str, label: str | None = None) -> dict[str, float]:
    """A query's values by one label's value (or "" for a single sample)."""
    return {(r["metric"].get(label, "") if label else ""): float(r["value"][1]) for r in results[key]}


def one(results: dict[str, list[dict[str, Any]]], key: str) -> float:
    result = results[key]
    assert len(result) == 1, f"{key}: {result}"
    return float(result[0]["value"][1])


def instant_rate(prometheus: Prometheus, instance: str, at: float) -> float:
    """Completed executions per second of one node, taken once whatever number of jobs scrape it (the
    largest job's figure: each job's scrapes fall at their own moments, so their rates differ a little)."""
    expr = (
        f'max(sum by (job) (rate(neuron_execution_status_total{{instance="{instance}",status="completed"}}'
        f"[{RATE_WINDOW_S}s])))"
    )
    result = prometheus.query(expr, at)
    return float(result[0]["value"][1]) if result else 0.0


def test_every_query_runs_everywhere_and_each_has_data_somewhere(fleet: Fleet) -> None:
    """No query may fail anywhere; each must have data in at least one of the places it is meant for
    (the fleet dashboard on the central store too)."""
    contexts: list[tuple[dict[str, Any], Prometheus, grafana.Choose | None]] = []
    for edge in fleet.edges.values():
        contexts += [(FLEET, edge, None), (COST, edge, None), (COST, edge, pick(price_source="opencost"))]
    contexts.append((FLEET, fleet.central, None))
    for name in ("cost", "pods", "k8s-info", "shared", "monitor-dead", "idle"):
        contexts.append((NODE, fleet.edge_of(name), pick(job=JOB, instance=fleet.node_names[name])))
    with_data: set[tuple[str, str]] = set()
    for dashboard, prometheus, choose in contexts:
        for key, result in run(dashboard, prometheus, choose).items():
            if result:
                with_data.add((dashboard["uid"], key))
    every = {(d["uid"], f"{t}/{ref}") for d in DASHBOARDS.values() for t, ref, _ in grafana.queries(d)}
    legitimately_empty: dict[tuple[str, str], str] = {
        ("neuron-node", "Bad input/B"): "no group was invalid on this fleet",
        ("neuron-node", "Bad input/C"): "neuron-monitor reported no group error",
        ("neuron-node", "neuron-monitor restarts/-"): "annotation: fires when one restarts",
        (
            "neuron-node",
            "annotation neuron-monitor restarts/-",
        ): "the monitor-dead node only retries its start",
        ("neuron-fleet", "annotation neuron-monitor restarts/-"): "as above",
        ("neuron-cost", "annotation neuron-monitor restarts/-"): "as above",
        ("neuron-node", "annotation Neuron alerts firing/-"): "no alert fires on this fleet",
        ("neuron-fleet", "annotation Neuron alerts firing/-"): "as above",
        ("neuron-cost", "annotation Neuron alerts firing/-"): "as above",
    }
    per_model = {"Cost per model", "Cost per million requests by model", "Reduction vs GPU baseline by model"}
    legitimately_empty |= {
        ("neuron-cost", f"{title}/{ref}"): "no Triton in this fleet: tests/test_model_cost_e2e.py has them"
        for title, ref, _ in grafana.queries(COST)
        if title in per_model
    }
    missing = sorted(every - with_data - set(legitimately_empty))
    assert len(every) >= 75
    assert not missing, "no data anywhere for:\n" + "\n".join(f"{uid}: {key}" for uid, key in missing)


def _finite_in_range(dashboard: dict[str, Any], results: dict[str, list[dict[str, Any]]]) -> list[str]:
    units = {}
    for panel in grafana.panels(dashboard):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit") or panel.get("format")
        units[panel["title"]] = unit
    wrong = []
    for key, result in results.items():
        title = key.rsplit("/", 1)[0]
        unit = units.get(title)
        for sample in result:
            value = float(sample["value"][1])
            if not math.isfinite(value):
                wrong.append(f"{key}: {value} {sample['metric']}")
            elif unit == "percentunit" and not (value <= 1 and (value >= 0 or title.startswith("Reduction"))):
                wrong.append(f"{key}: ratio {value}")
            elif unit in ("currencyUSD", "ops", "none", "bytes", "s", "cps", "flops") and value < 0:
                wrong.append(f"{key}: {value} < 0 in {unit}")
    return wrong


def test_no_panel_shows_nan_inf_or_values_outside_its_unit(fleet: Fleet) -> None:
    wrong = []
    for edge in fleet.edges.values():
        for dashboard in (FLEET, COST):
            wrong += _finite_in_range(dashboard, run(dashboard, edge))
        # An idle selection: no executions at all, so every per-execution figure must be absent.
        idle = run(COST, fleet.edges["west"], pick(instance=fleet.node_names["idle"]))
        wrong += _finite_in_range(COST, idle)
        for key in (
            "Cost per million completed executions/A",
            "Reduction vs baseline/A",
            "Executions per dollar/A",
        ):
            assert idle[key] == [], f"{key} on an idle node: {idle[key]}"
    for name in NODES:
        choose = pick(job=JOB, instance=fleet.node_names[name])
        wrong += _finite_in_range(NODE, run(NODE, fleet.edge_of(name), choose))
    assert not wrong, "\n".join(wrong)


def test_cost_per_million_and_reduction_cover_the_priced_nodes_only(fleet: Fleet) -> None:
    east = fleet.edges["east"]
    at = time.time() - 2
    results = run(COST, east, at=at)
    # Priced in the east: the seed node and the node whose neuron-monitor never started (it pays, and
    # completes nothing); the unpriced node's executions are on neither side.
    spend = PRICES["cost"] + PRICES["monitor-dead"]
    completed = instant_rate(east, fleet.instances["cost"], at)
    assert completed == pytest.approx(SEED_RATE, rel=0.01)
    assert one(results, "Spend per hour/A") == pytest.approx(spend)
    assert one(results, "Cost per million completed executions/A") == pytest.approx(
        spend / 3600 / completed * 1e6, rel=1e-6
    )
    assert one(results, "Reduction vs baseline/A") == pytest.approx(
        1 - spend / 3600 / completed * 1e6 / SEED_BASELINE, rel=1e-6
    )
    assert one(results, "Executions per dollar/A") == pytest.approx(completed * 3600 / spend, rel=1e-6)
    assert one(results, "Unpriced nodes/A") == 1
    assert [r["metric"]["node"] for r in results["Unpriced nodes by name/A"]] == [
        fleet.node_names["unpriced"]
    ]
    assert values(results, "Cost per hour by node/A", "node") == {
        fleet.node_names["cost"]: PRICES["cost"],
        fleet.node_names["monitor-dead"]: PRICES["monitor-dead"],
    }


def test_the_seed_case_reads_81_7_percent_on_its_node(fleet: Fleet) -> None:
    """$0.435/h at 191 completed executions/s is $0.633 per million; against a g4dn.12xlarge pod at
    $1.2725/h and 102 executions/s ($3.465 per million) that is an 81.7 % reduction."""
    results = run(COST, fleet.edges["east"], pick(instance=fleet.node_names["cost"]))
    assert one(results, "Cost per million completed executions/A") == pytest.approx(0.633, rel=0.01)
    assert one(results, "Reduction vs baseline/A") == pytest.approx(0.817, abs=0.002)


def test_range_figures_charge_each_node_only_for_the_time_it_existed(fleet: Fleet) -> None:
    east = fleet.edges["east"]
    at = time.time() - 2
    results = run(COST, east, pick(instance=fleet.node_names["cost"]), at=at)
    # The range is an hour; the node's price has existed since the edge servers' first scrape and rule
    # evaluation, a few seconds after they were ready. The spend is what it cost while it existed
    # (within those seconds and a subquery step), not an hour's price.
    lived_h = (at - fleet.started) / 3600
    slack_h = (15 + INTERVAL_S) / 3600
    spend = one(results, "Spend over the range/A")
    assert SEED_PRICE * (lived_h - slack_h) <= spend <= SEED_PRICE * (lived_h + INTERVAL_S / 3600)
    assert spend < SEED_PRICE / 10
    executions = one(results, "Executions over the range/A")
    assert executions == round(executions)
    # "Executions over the range" is rounded to a whole number; the ratio uses the unrounded increase.
    assert one(results, "Cost per million over the range/A") == pytest.approx(
        spend / executions * 1e6, rel=1e-4
    )


def _parts(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """node -> price and its parts, from the "Spend by use per node" table's queries."""
    table: dict[str, dict[str, float]] = {}
    for ref, part in zip("ABCD", ("price", "used", "held_idle", "unheld"), strict=True):
        for node, value in values(results, f"Spend by use per node/{ref}", "node").items():
            table.setdefault(node, {})[part] = value
    return table


def test_each_nodes_spend_splits_exactly_into_used_held_idle_and_unheld(fleet: Fleet) -> None:
    checked = set()
    for edge in fleet.edges.values():
        at = time.time() - 2
        results = run(COST, edge, at=at)
        workloads: dict[str, float] = {}
        for sample in results["Cost per hour by workload/A"]:
            node = sample["metric"]["node"]
            workloads[node] = workloads.get(node, 0.0) + float(sample["value"][1])
        for node, parts in _parts(results).items():
            used, idle, unheld = (parts.get(p, 0.0) for p in ("used", "held_idle", "unheld"))
            assert used + idle + unheld == pytest.approx(parts["price"], rel=1e-9), (node, parts)
            assert workloads.get(node, 0.0) + unheld == pytest.approx(parts["price"], rel=1e-9), (node, parts)
            checked.add(node)
        idle_rate = values(results, "Idle spend rate by node/A", "node")
        if edge is fleet.edges["west"]:
            assert idle_rate[fleet.node_names["idle"]] == PRICES["idle"]
            assert _parts(results)[fleet.node_names["idle"]] == {
                "price": PRICES["idle"],
                "unheld": PRICES["idle"],
            }
            # Three runtimes on two cores: each core's price once, split among its runtimes.
            shared = [
                s
                for s in results["Cost per hour by workload/A"]
                if s["metric"]["node"] == fleet.node_names["shared"]
            ]
            assert sorted(float(s["value"][1]) for s in shared) == pytest.approx([0.335, 0.335, 0.67])
        else:
            assert _parts(results)[fleet.node_names["monitor-dead"]] == {
                "price": PRICES["monitor-dead"],
                "unheld": PRICES["monitor-dead"],
            }
    priced = {fleet.node_names[name] for name, price in PRICES.items() if price is not None}
    assert checked == priced


def test_opencost_prices_through_the_node_name(fleet: Fleet) -> None:
    results = run(COST, fleet.edges["east"], pick(price_source="opencost"))
    assert values(results, "Cost per hour by node/A", "node") == OPENCOST
    assert one(results, "Unpriced nodes/A") == 1  # the node OpenCost does not price
    assert [r["metric"]["node"] for r in results["Unpriced nodes by name/A"]] == [
        fleet.node_names["monitor-dead"]
    ]


def test_a_dead_monitor_is_listed_counted_and_priced_and_a_dead_target_is_down(fleet: Fleet) -> None:
    east = fleet.edges["east"]
    results = run(FLEET, east)
    assert one(results, "neuron-monitor down or stale/A") == 1
    assert one(results, "Nodes reporting/A") == 2
    assert one(results, "Exporters down/A") == 1
    options = grafana.resolve(FLEET, east, BUILTINS, _record_options := _Recorder())
    del options
    assert fleet.node_names["monitor-dead"] in _record_options.texts["instance"]
    assert values(results, "By instance type/A", "instance_type") == {
        "inf2.48xlarge": 1,
        "trn1.32xlarge": 1,
        "unknown": 1,
    }
    one_node = run(FLEET, east, pick(instance=fleet.node_names["cost"]))
    assert one(one_node, "Exporters down/A") == 0
    assert one(run(FLEET, fleet.edges["west"]), "Exporters down/A") == 0
    # Both jobs scrape the seed node: counted once, with either job or both selected.
    for job in (JOB, SECOND_JOB, None):
        choose = pick(instance=fleet.node_names["cost"], **({"job": job} if job else {}))
        assert one(run(FLEET, east, choose), "NeuronCores held vs present/A") == 24  # inf2.48xlarge


class _Recorder:
    """A Choose that picks All everywhere and remembers the options offered."""

    def __init__(self) -> None:
        self.texts: dict[str, list[str]] = {}

    def __call__(self, name: str, options: list[tuple[str, str]]) -> str | None:
        self.texts[name] = [text for text, _ in options]
        return None


def test_the_node_dashboard_shows_one_node_and_never_adds_nodes_up(fleet: Fleet) -> None:
    for name in NODES:
        edge = fleet.edge_of(name)
        instance = fleet.instances[name]
        results = run(NODE, edge, pick(job=JOB, instance=fleet.node_names[name]))
        for key, result in results.items():
            for sample in result:
                assert sample["metric"].get("instance", instance) == instance, (name, key, sample["metric"])
        if name == "cost":
            # Summed panels equal the node's own series, although a second job scrapes it too.
            total = edge.value(
                f'sum(neuron_neuroncore_memory_used_bytes{{job="{JOB}",instance="{instance}"}})'
            )
            by_core = sum(float(s["value"][1]) for s in results["Device memory by NeuronCore and category/A"])
            assert by_core == total


def test_pod_filters_work_on_both_attribution_paths(fleet: Fleet) -> None:
    for name, pods in (("pods", {"llm-0", "llm-1"}), ("k8s-info", None)):
        edge = fleet.edge_of(name)
        recorder = _Recorder()
        grafana.resolve(NODE, edge, BUILTINS, _and(pick(job=JOB, instance=fleet.node_names[name]), recorder))
        offered = set(recorder.texts["pod"])
        assert offered and "neuron-exporter" not in " ".join(offered), offered
        if pods is not None:
            assert offered == pods
        chosen = sorted(offered)[0]
        results = run(NODE, edge, pick(job=JOB, instance=fleet.node_names[name], pod=chosen))
        utilization = results["Utilization per NeuronCore/A"]
        assert utilization and all(s["metric"]["pod"] == chosen for s in utilization)
        by_pod = results["NeuronCore utilization by pod/A"]
        assert [s["metric"]["pod"] for s in by_pod] == [chosen]
        everyone = run(NODE, edge, pick(job=JOB, instance=fleet.node_names[name]))
        assert {s["metric"]["pod"] for s in everyone["NeuronCore utilization by pod/A"]} == offered


def _and(first: grafana.Choose, second: grafana.Choose) -> grafana.Choose:
    def both(name: str, options: list[tuple[str, str]]) -> str | None:
        second(name, options)
        return first(name, options)

    return both


def test_the_central_store_answers_every_fleet_query_as_the_edges_do(fleet: Fleet) -> None:
    """Two clusters remote-write the keep-list to a central Prometheus: every fleet query, with one
    cluster selected there, equals the same query on that cluster's own Prometheus at the same time."""
    at = time.time() - 15
    compared = 0
    for cluster, edge in fleet.edges.items():
        central = run(FLEET, fleet.central, pick(cluster=cluster), at=at)
        local = run(FLEET, edge, at=at)
        for key in local:
            if key.startswith("annotation"):
                continue
            strip = lambda result: sorted(  # noqa: E731
                (
                    tuple(sorted((k, v) for k, v in r["metric"].items() if k != "cluster")),
                    float(r["value"][1]),
                )
                for r in result
            )
            assert strip(central[key]) == strip(local[key]), (cluster, key, central[key], local[key])
            compared += bool(local[key])
    assert compared >= 30


NOT_IN_THIS_FLEET = ("kube_node_labels", "karpenter", "nv_inference", "served_model", "pod_model:", "model:")
"""Sources this fleet lacks (kube-state-metrics, Karpenter, Triton, stub processes): the records that
read them are valued by promtool cases and tests/test_model_cost_e2e.py instead."""


def test_every_rule_expression_runs_and_every_record_has_data_where_its_sources_are(fleet: Fleet) -> None:
    east, west = fleet.edges["east"], fleet.edges["west"]
    for alert in rules.ALERTS:
        east.query(alert.expr)
    for record in rules.ALL_RECORDS:
        found = east.query(record.expr) + west.query(record.expr)
        needs_absent_source = any(
            name in record.expr or record.record.startswith(name) for name in NOT_IN_THIS_FLEET
        )
        # OpenCost prices the east's nodes, pods run in the west: pod costs from OpenCost meet nowhere.
        needs_absent_source |= record.record.endswith(":opencost") and record.record.split(":")[0] in (
            "pod",
            "container",
        )
        assert found or needs_absent_source, record.record
        assert bool(east.query(record.record) + west.query(record.record)) == bool(found), record.record
    assert west.query(records.PRICE_OPENCOST.record) == []


EXPECTED_ALERTS = {
    "monitor-dead": {"NeuronMonitorDown"},
    "idle": {"NeuronNodeUnused"},
}
"""What may fire in the fleet, by node: the node whose neuron-monitor never started, and the paid node
with no runtime. The dead target's NeuronExporterDown is checked apart (it has no node handle)."""


def test_no_alert_fires_on_the_healthy_nodes(fleet: Fleet) -> None:
    """Every alert's expression, evaluated now (stricter than waiting out `for`: a pending alert shows
    here too), names only the nodes that are broken on purpose, each for the reason it is broken."""
    handles = {instance: name for name, instance in fleet.instances.items()}
    firing: dict[str, set[str]] = {}
    for edge in fleet.edges.values():
        for alert in rules.ALERTS:
            for sample in edge.query(alert.expr):
                instance = sample["metric"].get("instance", "")
                where = (
                    "dead target"
                    if instance == fleet.dead_target
                    else handles.get(instance, instance or "fleet")
                )
                firing.setdefault(where, set()).add(alert.name)
    assert firing.pop("dead target") == {"NeuronExporterDown"}
    assert firing == EXPECTED_ALERTS
