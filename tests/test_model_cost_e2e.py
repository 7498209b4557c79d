"""What each model costs per request, and what it saves against its GPU baseline, from live data.

Two inf1 nodes priced at $0.435/h, each its own exporter with pods from a real PodResources server:
node A runs two Triton pods on two NeuronCores each (a recommender and an embedder), node B one Triton
pod with a ViT on all four. Three fake Triton endpoints (tests/triton.py) serve the documented
counters at rates the test sets, with batch sizes above 1, and the ViT's carry Triton's own
`namespace` label (--model-namespacing). A real Prometheus scrapes them all with the rules, which
include the baselines of alerts/baselines.yml. The cost dashboard's per-model queries, resolved as
Grafana does, must give the hand-computed figures and the seed table's 81.7 % and 91.5 %.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alerts import rules
from tests import grafana
from tests.daemon import Daemon, wait_for
from tests.fakes import FRACTIONAL, simulator_monitor, write_config
from tests.kubelet import kubelet, pod
from tests.prometheus import Prometheus
from tests.triton import ModelLoad, triton_server

REPO = Path(__file__).resolve().parents[1]
COST = json.loads((REPO / "dashboards" / "neuron-cost.json").read_text())
PRICE = 0.435
RATE_S = 30
BUILTINS = {
    "__rate_interval": f"{RATE_S}s",
    "__interval": "5s",
    "__interval_ms": "5000",
    "__range": "5m",
    "__range_s": "300",
}
MODELS = {
    # (k8s namespace, pod) -> the model its Triton serves; half of node A's price for the recommender
    # at 95.5 requests/s is the seed's $0.435/h at 191 requests/s.
    ("shop", "recommender-0"): ModelLoad("recommender", 95.5, 382.0, 47.75, 95.5 * 4000),
    ("shop", "embedder-0"): ModelLoad("embedder", 40.0, 40.0, 20.0, 40.0 * 1000),
    ("vision", "vit-0"): ModelLoad("vit", 72.6, 145.2, 36.3, 72.6 * 12000, triton_namespace="team-a"),
}
NODE_PODS = {
    "a": (
        pod("shop", "recommender-0", triton={"aws.amazon.com/neuroncore": ["0", "1"]}),
        pod("shop", "embedder-0", triton={"aws.amazon.com/neuroncore": ["2", "3"]}),
    ),
    "b": (pod("vision", "vit-0", triton={"aws.amazon.com/neuron": ["0"]}),),
}


@dataclass
class Setup:
    prometheus: Prometheus
    instances: dict[str, str]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with ExitStack() as stack:
        instances = {}
        for name, pods in NODE_PODS.items():
            tmp = tmp_path_factory.mktemp(f"node-{name}")
            server = stack.enter_context(kubelet())
            server.pods = list(pods)
            monitor = simulator_monitor(tmp, "--shape", "inf1.xlarge", "--runtimes", str(len(pods)))
            daemon = stack.enter_context(
                Daemon(
                    tmp,
                    "--config",
                    str(write_config(tmp, period="0.2s")),
                    FRACTIONAL,
                    "--neuron-monitor-path",
                    str(monitor),
                    "--instance-hourly-cost",
                    str(PRICE),
                    "--kubernetes.pod-resources-socket",
                    str(server.socket),
                )
            )
            instances[name] = f"127.0.0.1:{daemon.port}"
        tritons = [
            {"targets": [stack.enter_context(triton_server(load))], "labels": {"namespace": ns, "pod": name}}
            for (ns, name), load in MODELS.items()
        ]
        prometheus = stack.enter_context(
            Prometheus(
                tmp_path_factory.mktemp("prometheus"),
                rule_files=[rules.RULES_FILE],
                scrape_configs=[
                    {
                        "job_name": rules.JOB,
                        "honor_labels": True,
                        "static_configs": [{"targets": list(instances.values())}],
                    },
                    # As kubernetes_sd_configs with pod relabeling gives them: no honor_labels, so
                    # Triton's own namespace label becomes exported_namespace.
                    {"job_name": "triton", "static_configs": tritons},
                ],
            )
        )
        wait_for(
            lambda: (
                len(prometheus.query("model:neuron_hourly_cost_usd:exporter")) == len(MODELS)
                and len(
                    prometheus.query(f"count_over_time(nv_inference_count[{RATE_S + 5}s]) >= {RATE_S + 2}")
                )
                == len(MODELS)
            ),
            120,
            "every model priced and a rate window of Triton scrapes",
            interval=0.5,
        )
        yield Setup(prometheus, instances)


def table(setup: Setup) -> dict[tuple[str, str], dict[str, float]]:
    """The "Cost per model" table, as Grafana would fill it: column -> value by (namespace, model)."""
    values = grafana.resolve(COST, setup.prometheus, BUILTINS)
    names = {"A": "rps", "B": "batch", "C": "usd_per_hour", "D": "per_m_requests", "E": "per_m_inferences",
             "F": "baseline", "G": "reduction"}  # fmt: skip
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for title, ref, expr in grafana.queries(COST):
        if title != "Cost per model":
            continue
        for sample in setup.prometheus.query(grafana.substitute(expr, values)):
            key = (sample["metric"]["namespace"], sample["metric"]["model"])
            rows.setdefault(key, {})[names[ref]] = float(sample["value"][1])
    return rows


def test_each_models_cost_per_request_and_inference_is_its_pods_share_over_its_traffic(setup: Setup) -> None:
    rows = table(setup)
    assert set(rows) == {("shop", "recommender"), ("shop", "embedder"), ("vision", "vit")}
    for (namespace, _), load in MODELS.items():
        row = rows[(namespace, load.model)]
        cores = 2 if namespace == "shop" else 4
        usd_per_hour = PRICE * cores / 4
        assert row["usd_per_hour"] == pytest.approx(usd_per_hour)
        assert row["rps"] == pytest.approx(load.requests, rel=1e-3)
        assert row["batch"] == pytest.approx(load.inferences / load.executions, rel=1e-3)
        assert row["per_m_requests"] == pytest.approx(usd_per_hour / 3600 / load.requests * 1e6, rel=1e-3)
        assert row["per_m_inferences"] == pytest.approx(usd_per_hour / 3600 / load.inferences * 1e6, rel=1e-3)


def test_the_seed_cases_read_81_7_and_91_5_percent_from_the_baseline_file(setup: Setup) -> None:
    rows = table(setup)
    recommender, vit = rows[("shop", "recommender")], rows[("vision", "vit")]
    assert recommender["baseline"] == pytest.approx(1.2725 / 3600 / 102 * 1e6, rel=1e-6)
    assert vit["baseline"] == pytest.approx(19.637, abs=0.001)
    assert recommender["reduction"] == pytest.approx(0.817, abs=0.002)
    assert vit["reduction"] == pytest.approx(0.915, abs=0.002)
    assert "reduction" not in rows[("shop", "embedder")]  # no baseline for it: no made-up figure


def test_pods_and_the_unattributed_part_add_up_to_each_nodes_price(setup: Setup) -> None:
    prometheus = setup.prometheus
    for instance in setup.instances.values():
        pods = sum(
            float(s["value"][1])
            for s in prometheus.query(f'pod:neuron_hourly_cost_usd:exporter{{instance="{instance}"}}')
        )
        unattributed = prometheus.query(
            f'instance:neuron_unattributed_hourly_cost_usd:exporter{{instance="{instance}"}}'
        )
        assert pods + float(unattributed[0]["value"][1]) == pytest.approx(PRICE)
    containers = prometheus.query('container:neuron_hourly_cost_usd:exporter{pod="recommender-0"}')
    assert [(s["metric"]["container"], float(s["value"][1])) for s in containers] == [("triton", PRICE / 2)]


def test_every_per_model_query_runs_and_tritons_namespace_does_not_clash(setup: Setup) -> None:
    values = grafana.resolve(COST, setup.prometheus, BUILTINS)
    for _, _, expr in grafana.queries(COST):
        setup.prometheus.query(grafana.substitute(expr, values))
    vit = setup.prometheus.query('nv_inference_count{pod="vit-0"}')
    assert [(s["metric"]["namespace"], s["metric"]["exported_namespace"]) for s in vit] == [
        ("vision", "team-a")
    ]
    by_pod: Any = setup.prometheus.query(grafana.substitute(_expr("Cost per hour by pod"), values))
    assert {s["metric"]["pod"] for s in by_pod} == {name for _, name in MODELS}


def _expr(title: str) -> str:
    return next(expr for t, _, expr in grafana.queries(COST) if t == title)
