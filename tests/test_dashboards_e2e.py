"""Every dashboard query and every rule, run against a real Prometheus scraping three real exporters.

Three simulated nodes of different shapes (inf2.48xlarge, trn1.32xlarge, and trn2.48xlarge with pod
attribution from a real PodResources server), each its own exporter with its own instance identity,
scraped every second by Debian's Prometheus with our rules loaded. Every panel's queries run with the template variables set to "All"
and to one concrete node, as Grafana would substitute them; so do the variables' own queries and every
rule expression. The inf2 node is the cost proof: priced at $0.435/h and held at exactly 191 completed
executions/s, the cost panels must show $0.633 per million and an 81.7 % reduction against $3.465.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alerts import rules
from dashboards import cost
from tests.daemon import Daemon, wait_for
from tests.fakes import FRACTIONAL, simulator_monitor, write_config
from tests.kubelet import kubelet, pod
from tests.prometheus import Prometheus

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((REPO / "dashboards").glob("*.json"))
RATE_WINDOW_S = 30
"""What $__rate_interval becomes; the cost proof waits for this much data plus a margin."""
COST_NODE_PRICE, COST_NODE_RATE = 0.435, 191.0
NODES = {
    # shape: (simulator flags, exporter flags)
    "inf2.48xlarge": (
        ("--runtimes", "3", "--executions-per-second", str(COST_NODE_RATE)),
        ("--instance-hourly-cost", str(COST_NODE_PRICE)),
    ),
    "trn1.32xlarge": (("--runtimes", "4"), ("--instance-hourly-cost", "21.50")),
    "trn2.48xlarge": (("--runtimes", "4"), ("--instance-hourly-cost", "45.00")),
}
KUBELET_NODE = "trn2.48xlarge"
"""The node whose pods come from a real PodResources server: every device granted to one pod."""
POD = pod("ml", "llm-0", main={"aws.amazon.com/neuron": [str(device) for device in range(16)]})
LEGITIMATELY_EMPTY: dict[tuple[str, str, str], str] = {
    ("neuron-node", "Bad input", "B"): "no group was invalid: the series appears with the first one",
    ("neuron-node", "Bad input", "C"): "neuron-monitor reported no error: the series appears with the first",
}
"""(dashboard uid, panel title, query refId) -> why that query has no data on this healthy simulated
fleet. Everything else must have data: ECC counters are exported at 0, the trn2 node runs pods."""


@dataclass
class Fleet:
    prometheus: Prometheus
    instances: dict[str, str]
    """shape -> the `instance` label Prometheus gives that node."""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with ExitStack() as stack:
        instances = {}
        for shape, (sim_flags, exporter_flags) in NODES.items():
            tmp = tmp_path_factory.mktemp(shape.replace(".", "-"))
            monitor = simulator_monitor(tmp, "--shape", shape, *sim_flags)
            config = write_config(tmp, period="0.2s")
            if shape == KUBELET_NODE:
                server = stack.enter_context(kubelet())
                server.pods = [POD]
                exporter_flags = (*exporter_flags, "--kubernetes.pod-resources-socket", str(server.socket))
            daemon = stack.enter_context(
                Daemon(
                    tmp,
                    "--config",
                    str(config),
                    FRACTIONAL,
                    "--neuron-monitor-path",
                    str(monitor),
                    *exporter_flags,
                )
            )
            instances[shape] = f"127.0.0.1:{daemon.port}"
        prometheus = stack.enter_context(
            Prometheus(tmp_path_factory.mktemp("prometheus"), list(instances.values()), [rules.RULES_FILE])
        )
        wait_for(
            lambda: (
                _count(prometheus, f"{rules.COMPLETED_RATE.record}") == 3
                and _count(prometheus, "neuron_monitor_up == 1") == 3
                and _count(prometheus, 'neuron_neuroncore_utilization_ratio{pod="llm-0"}') > 0
            ),
            90,
            "three nodes reporting and their recording rules",
        )
        # The cost proof's rate window must be full of scrapes of the cost node (one a second).
        cost_node = f'neuron_exporter_reports_total{{instance="{instances["inf2.48xlarge"]}"}}'
        wait_for(
            lambda: (
                _count(
                    prometheus, f"count_over_time({cost_node}[{RATE_WINDOW_S + 5}s]) >= {RATE_WINDOW_S + 2}"
                )
                == 1
            ),
            RATE_WINDOW_S + 60,
            "a rate window of scrapes",
            interval=0.5,
        )
        yield Fleet(prometheus, instances)


def _count(prometheus: Prometheus, expr: str) -> int:
    result = prometheus.query(f"count({expr})")
    return int(float(result[0]["value"][1])) if result else 0


def grafana_escape(value: str) -> str:
    """A variable value as Grafana writes it into a regex matcher."""
    return re.sub(r"[\\^$.|?*+()\[\]{}]", lambda m: "\\\\" + m.group(0), value)


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's variable interpolation for the variables our dashboards use."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"variable ${name} is not set by the test: {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


BUILTINS = {
    "__rate_interval": f"{RATE_WINDOW_S}s",
    "__range": "60s",
    "__range_s": "60",
    "cost_metric": cost.COST,
    "baseline_cost_per_million": str(cost.BASELINE),
}
ALL = {
    **BUILTINS,
    **{name: ".*" for name in ("job", "instance_type", "instance", "runtime_tag", "namespace", "pod")},
}


def concrete(fleet: Fleet, shape: str) -> dict[str, str]:
    """Every variable set to one real value of the node of this shape."""
    prometheus, instance = fleet.prometheus, fleet.instances[shape]

    def first(expr: str, label: str) -> str:
        values = sorted(r["metric"][label] for r in prometheus.query(expr))
        assert values, f"no {label} in {expr}"
        return values[0]

    node = f'instance="{instance}"'
    namespace = first(f"count by (namespace) (neuron_neuroncore_pod_info{{{node}}})", "namespace")
    return {
        **BUILTINS,
        "job": grafana_escape(rules.JOB),
        "instance_type": grafana_escape(shape),
        "instance": grafana_escape(instance),
        "runtime_tag": grafana_escape(first(f"neuron_runtime_info{{{node}}}", "runtime_tag")),
        "namespace": grafana_escape(namespace),
        "pod": grafana_escape(first(f'neuron_neuroncore_pod_info{{{node},namespace="{namespace}"}}', "pod")),
    }


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def variable_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(name, query) of every query variable, as the equivalent PromQL (label_values -> count by)."""
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["query"])
            assert match, variable["query"]
            yield variable["name"], f"count by ({match.group(2)}) ({match.group(1)})"


@pytest.mark.parametrize("values_of", ["All", "one trn2 node"])
def test_every_dashboard_query_runs_and_has_data(fleet: Fleet, values_of: str) -> None:
    values = ALL if values_of == "All" else concrete(fleet, "trn2.48xlarge")
    problems, queries = [], 0
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        checks = [(f"variable {name}", "A", expr) for name, expr in variable_queries(dashboard)]
        for panel in panels(dashboard):
            checks += [(panel["title"], t["refId"], t["expr"]) for t in panel.get("targets", [])]
        for title, ref, expr in checks:
            queries += 1
            try:
                result = fleet.prometheus.query(substitute(expr, values))
            except AssertionError as error:
                problems.append(f"{dashboard['uid']} / {title}: {error}")
                continue
            if not result and (dashboard["uid"], title, ref) not in LEGITIMATELY_EMPTY:
                problems.append(f"{dashboard['uid']} / {title}: no data for {substitute(expr, values)}")
    assert queries >= 69  # every panel query and variable query of the three dashboards
    assert not problems, "\n".join(problems)


def panel_expr(uid: str, title: str) -> str:
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        if dashboard["uid"] == uid:
            for panel in panels(dashboard):
                if panel["title"] == title:
                    expr: str = panel["targets"][0]["expr"]
                    return expr
    raise AssertionError(f"no panel {title!r} in {uid}")


def test_fleet_panels_count_three_nodes(fleet: Fleet) -> None:
    prometheus = fleet.prometheus
    assert prometheus.value(substitute(panel_expr("neuron-fleet", "Nodes reporting"), ALL)) == 3
    by_type = prometheus.query(substitute(panel_expr("neuron-fleet", "By instance type"), ALL))
    assert {r["metric"]["instance_type"]: float(r["value"][1]) for r in by_type} == dict.fromkeys(NODES, 1.0)
    assert prometheus.value(substitute(panel_expr("neuron-fleet", "Exporters down"), ALL)) == 0


def test_every_rule_expression_runs(fleet: Fleet) -> None:
    """Alerts may be quiet on a healthy fleet, but none may fail to evaluate; every record has data."""
    for alert in rules.ALERTS:
        fleet.prometheus.query(alert.expr)
    for record in rules.RECORDS:
        assert fleet.prometheus.query(record.expr), record.record
        assert _count(fleet.prometheus, f"count by (instance) ({record.record})") == 3, record.record


def test_cost_per_million_executions_and_reduction_vs_baseline(fleet: Fleet) -> None:
    """The seed table: $0.435/h at 191 completed executions/s is $0.633 per million; against a g4dn.12xlarge
    pod at $1.2725/h and 102 executions/s ($3.465 per million) that is an 81.7 % reduction."""
    values = {**ALL, "instance": grafana_escape(fleet.instances["inf2.48xlarge"])}
    prometheus = fleet.prometheus
    per_million = prometheus.value(
        substitute(panel_expr("neuron-cost", "Cost per million completed executions"), values)
    )
    assert per_million == pytest.approx(COST_NODE_PRICE / (COST_NODE_RATE * 3600) * 1e6, rel=0.01)
    assert per_million == pytest.approx(0.633, rel=0.01)
    reduction = prometheus.value(substitute(panel_expr("neuron-cost", "Reduction vs baseline"), values))
    assert reduction == pytest.approx(0.817, abs=0.002)
    per_dollar = prometheus.value(substitute(panel_expr("neuron-cost", "Executions per dollar"), values))
    assert per_dollar == pytest.approx(COST_NODE_RATE * 3600 / COST_NODE_PRICE, rel=0.01)
    hourly = prometheus.query(substitute(panel_expr("neuron-cost", "Cost per hour by node"), values))
    assert [float(r["value"][1]) for r in hourly] == [COST_NODE_PRICE]
