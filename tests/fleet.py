"""A fleet that looks like production, for the dashboard and alert end-to-end tests.

Two clusters, each scraped by its own Prometheus with the recording rules and a `cluster` external
label, both remote-writing the README's keep-list to a third Prometheus with the remote-write
receiver (the central store: Amazon Managed Prometheus, Mimir or Thanos in production).

east: a priced inf2 node held at exactly 191 completed executions/s and scraped by two jobs (the
      ServiceMonitor's and an annotation-based one); an unpriced trn1 node; a priced trn1 node whose
      neuron-monitor exits at start; a dead target; OpenCost's price metric for two of the nodes.
west: a paid idle trn1.2xlarge (no runtime at all); a trn1.2xlarge with three runtimes on its two
      cores; a trn2 node with two pods from a real PodResources server; an inf1 node whose pods come
      from neuron-monitor's own neuron_k8s_info and whose price comes from a price file.

Targets carry prometheus-operator's target labels (namespace, pod, container, service, endpoint,
node) where the ServiceMonitor would scrape them, with honor_labels as the shipped ServiceMonitor
sets it; the west's plain nodes have none (a static job on EC2).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from alerts import rules
from dashboards import fleet as fleet_dashboard
from tests.daemon import Daemon, wait_for
from tests.exposition_server import exposition_server
from tests.fakes import FRACTIONAL, simulator_monitor, write_config
from tests.kubelet import kubelet, pod
from tests.prometheus import Prometheus, free_port

JOB = rules.JOB
SECOND_JOB = "kubernetes-pods"
RATE_WINDOW_S = 30
"""What $__rate_interval becomes in these tests; the fleet is ready once this much data is in."""


@dataclass(frozen=True)
class Node:
    """One simulated node: its exporter's flags, and how Prometheus finds it."""

    cluster: str
    shape: str
    simulator: tuple[str, ...] = ()
    price: float | None = None
    """--instance-hourly-cost; None is unpriced unless `price_file`."""
    price_file: dict[str, Any] | None = None
    node_name: str | None = None
    """The Kubernetes node: the operator's `node` target label (and $NODE_NAME where `env_node_name`)."""
    env_node_name: bool = False
    kubelet_pods: tuple[Any, ...] = ()
    second_job: bool = False

    @property
    def operator_labels(self) -> dict[str, str]:
        """The target labels prometheus-operator gives a ServiceMonitor target on this node."""
        if self.node_name is None:
            return {}
        suffix = self.node_name.split(".")[0][-4:]
        return {
            "namespace": "neuron-monitoring",
            "pod": f"neuron-exporter-{suffix}",
            "container": "neuron-exporter",
            "service": "neuron-exporter",
            "endpoint": "metrics",
            "node": self.node_name,
        }


NODES = {
    "cost": Node(
        "east",
        "inf2.48xlarge",
        ("--runtimes", "3", "--executions-per-second", "191"),
        price=0.435,
        node_name="ip-10-0-1-1.ec2.internal",
        second_job=True,
    ),
    "unpriced": Node("east", "trn1.32xlarge", ("--runtimes", "4"), node_name="ip-10-0-1-2.ec2.internal"),
    "monitor-dead": Node(
        "east",
        "trn1.32xlarge",
        ("--exit-code-at-start", "1"),
        price=21.50,
        node_name="ip-10-0-1-3.ec2.internal",
    ),
    "idle": Node("west", "trn1.2xlarge", ("--runtimes", "0"), price=1.34),
    "shared": Node("west", "trn1.2xlarge", ("--runtimes", "3"), price=1.34),
    "pods": Node(
        "west",
        "trn2.48xlarge",
        ("--runtimes", "4"),
        price=45.0,
        node_name="ip-10-0-2-6.ec2.internal",
        env_node_name=True,
        kubelet_pods=(
            pod("ml", "llm-0", main={"aws.amazon.com/neuron": [str(d) for d in range(8)]}),
            pod("ml", "llm-1", main={"aws.amazon.com/neuron": [str(d) for d in range(8, 16)]}),
        ),
    ),
    "k8s-info": Node(
        "west",
        "inf1.xlarge",
        ("--runtimes", "2", "--k8s"),
        price_file={
            "prices": [
                {"instance_type": "inf1.xlarge", "usd_per_hour": 0.228, "source": "test", "date": "2026-12"}
            ]
        },
        node_name="ip-10-0-2-7.ec2.internal",
    ),
}
PRICES = {
    name: node.price or (node.price_file or {}).get("prices", [{}])[0].get("usd_per_hour")
    for name, node in NODES.items()
}
OPENCOST = {"ip-10-0-1-1.ec2.internal": 0.5, "ip-10-0-1-2.ec2.internal": 3.0}
"""OpenCost's node_total_hourly_cost by node name: it prices the node our exporter does not."""


@dataclass
class Fleet:
    edges: dict[str, Prometheus]
    central: Prometheus
    instances: dict[str, str]
    """node handle -> its `instance` label"""
    dead_target: str
    started: float
    """When the edge servers were ready: no node has a sample in them before."""
    node_names: dict[str, str] = field(default_factory=dict)
    """node handle -> the node name the dashboards show"""

    def edge_of(self, name: str) -> Prometheus:
        return self.edges[NODES[name].cluster]


def opencost_endpoint() -> AbstractContextManager[str]:
    """A real HTTP server answering /metrics with OpenCost's node price family (static figures)."""
    body = "# TYPE node_total_hourly_cost gauge\n" + "".join(
        f'node_total_hourly_cost{{node="{name}",instance_type="x",region="us-east-2"}} {price}\n'
        for name, price in OPENCOST.items()
    )
    return exposition_server(body.encode)


def _exporter(stack: ExitStack, tmp: Path, node: Node) -> Daemon:
    monitor = simulator_monitor(tmp, "--shape", node.shape, *node.simulator)
    flags = [
        "--config",
        str(write_config(tmp, period="0.2s")),
        FRACTIONAL,
        "--neuron-monitor-path",
        str(monitor),
    ]
    if node.price is not None:
        flags += ["--instance-hourly-cost", str(node.price)]
    if node.price_file is not None:
        prices = tmp / "prices.json"
        prices.write_text(json.dumps(node.price_file))
        flags += ["--instance-prices", str(prices)]
    if node.kubelet_pods:
        server = stack.enter_context(kubelet())
        server.pods = list(node.kubelet_pods)
        flags += ["--kubernetes.pod-resources-socket", str(server.socket)]
    if node.env_node_name and node.node_name:
        flags += ["--kubernetes.node-name", node.node_name]
    return stack.enter_context(Daemon(tmp, *flags))


def _scrape_configs(cluster: str, instances: dict[str, str], extra: dict[str, str]) -> list[dict[str, Any]]:
    groups = [
        {"targets": [instances[name]], **({"labels": node.operator_labels} if node.operator_labels else {})}
        for name, node in NODES.items()
        if node.cluster == cluster
    ]
    groups += [{"targets": [target]} for target in extra.get("dead", "").split() if target]
    configs: list[dict[str, Any]] = [{"job_name": JOB, "honor_labels": True, "static_configs": groups}]
    second = [
        {
            "targets": [instances[name]],
            "labels": {"namespace": "neuron-monitoring", "pod": "annotated", "node": node.node_name or ""},
        }
        for name, node in NODES.items()
        if node.cluster == cluster and node.second_job
    ]
    if second:
        configs.append({"job_name": SECOND_JOB, "honor_labels": True, "static_configs": second})
    if "opencost" in extra:
        configs.append({"job_name": "opencost", "static_configs": [{"targets": [extra["opencost"]]}]})
    return configs


def remote_write_to(central: Prometheus) -> list[dict[str, Any]]:
    """The README's remote_write block: only what the fleet dashboard reads."""
    return [
        {
            "url": f"{central.url}/api/v1/write",
            "write_relabel_configs": [
                {"source_labels": ["__name__"], "regex": fleet_dashboard.REMOTE_WRITE_KEEP, "action": "keep"}
            ],
            "queue_config": {"batch_send_deadline": "1s", "min_backoff": "100ms", "max_backoff": "1s"},
        }
    ]


def count(prometheus: Prometheus, expr: str) -> int:
    result = prometheus.query(f"count({expr})")
    return int(float(result[0]["value"][1])) if result else 0


@contextmanager
def production_fleet(factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with ExitStack() as stack:
        instances = {}
        for name, node in NODES.items():
            daemon = _exporter(stack, factory.mktemp(name), node)
            instances[name] = f"127.0.0.1:{daemon.port}"
        opencost = stack.enter_context(opencost_endpoint())
        dead = f"127.0.0.1:{free_port()}"
        central = stack.enter_context(Prometheus(factory.mktemp("central"), scrape_configs=[], receiver=True))
        edges = {
            cluster: stack.enter_context(
                Prometheus(
                    factory.mktemp(f"edge-{cluster}"),
                    rule_files=[rules.RULES_FILE],
                    scrape_configs=_scrape_configs(cluster, instances, extra),
                    external_labels={"cluster": cluster},
                    remote_write=remote_write_to(central),
                )
            )
            for cluster, extra in (("east", {"dead": dead, "opencost": opencost}), ("west", {}))
        }
        fleet = Fleet(edges, central, instances, dead, started=time.time())
        for name, node in NODES.items():
            fleet.node_names[name] = node.node_name or instances[name]
        _wait_until_ready(fleet)
        yield fleet


def nodes(prometheus: Prometheus, expr: str) -> int:
    """How many nodes (targets, whatever number of jobs scrape them) `expr` has series of."""
    return count(prometheus, f"count by (cluster, instance) ({expr})")


def _cluster_ready(edge: Prometheus, known: int, dead_monitors: int) -> bool:
    return (
        nodes(edge, "instance:neuron_node:info") == known
        and nodes(edge, "instance:neuron_monitor_up:max == 1") == known - dead_monitors
        and nodes(edge, 'instance:neuron_node:info{instance_type="unknown"}') == dead_monitors
    )


def _wait_until_ready(fleet: Fleet) -> None:
    for cluster, edge in fleet.edges.items():
        known = sum(1 for n in NODES.values() if n.cluster == cluster)
        dead = sum(
            1 for n in NODES.values() if n.cluster == cluster and "--exit-code-at-start" in n.simulator
        )
        wait_for(
            functools.partial(_cluster_ready, edge, known, dead),
            120,
            f"the {cluster} nodes reporting and their recording rules",
        )
    wait_for(
        lambda: nodes(fleet.edges["west"], "neuron_neuroncore_pod_info") == 2,
        60,
        "pods on the kubelet node and on the neuron_k8s_info node",
    )
    # Every rate window must be full of scrapes (one a second) before values are compared.
    cost_node = f'neuron_exporter_reports_total{{instance="{fleet.instances["cost"]}",job="{JOB}"}}'
    wait_for(
        lambda: (
            count(
                fleet.edges["east"],
                f"count_over_time({cost_node}[{RATE_WINDOW_S + 5}s]) >= {RATE_WINDOW_S + 2}",
            )
            == 1
        ),
        RATE_WINDOW_S + 90,
        "a rate window of scrapes",
        interval=0.5,
    )
    wait_for(
        lambda: (
            nodes(fleet.central, "instance:neuron_node:info") == len(NODES)
            and nodes(fleet.central, "instance:neuron_executions_completed:rate5m") == len(NODES) - 2
        ),
        90,
        "the central store to receive both clusters",
    )
