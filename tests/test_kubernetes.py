"""The Kubernetes manifests build with kustomize, validate offline, and agree with the exporter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts import rules
from deploy.kubernetes import generate
from exporter.cli import SHAPES, build_parser
from exporter.prices import load_prices
from exporter.web.http import parse_listen_address
from tests.daemon import Daemon

REPO = Path(__file__).resolve().parents[1]
OVERLAYS = ("standalone", "sidecar")
NEURON_FAMILIES = {"inf1", "inf2", "trn1", "trn1n", "trn2", "trn2u"}
"""Every Inferentia and Trainium instance family on EC2 as of 2026."""
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


def build(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl not found (it builds the kustomize overlays; no cluster is needed)"
    result = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy" / "kubernetes" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def test_generated_manifests_are_current() -> None:
    assert generate.main(["--check"]) == 0, "run `make manifests`"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schemas(overlay: str, tmp_path: Path) -> None:
    docs = build(overlay)
    assert {d["kind"] for d in docs} >= {
        "Namespace",
        "ServiceAccount",
        "DaemonSet",
        "Service",
        "ConfigMap",
        "ServiceMonitor",
        "PrometheusRule",
    }
    core = tmp_path / "core.yaml"
    core.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] not in CRD_KINDS]))
    validate = Path(sys.executable).with_name("kubernetes-validate")
    assert validate.exists(), "kubernetes-validate comes with the test extras"
    result = subprocess.run(
        [str(validate), "--strict", str(core)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout and "FAIL" not in result.stdout.upper().replace("FAILURES", "")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_service_monitor_and_prometheus_rule_have_their_crd_structure(
    overlay: str, tmp_path: Path
) -> None:
    """No CRD schema is available offline, so the structure prometheus-operator requires is checked
    here, and the rules themselves by promtool."""
    docs = build(overlay)
    service, monitor = one(docs, "Service"), one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {port["name"] for port in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert set(endpoint) <= {
            "port",
            "interval",
            "scrapeTimeout",
            "relabelings",
            "path",
            "scheme",
            "honorLabels",
        }
        # Our namespace/pod/container labels name the workload; the operator's would overwrite them.
        assert endpoint["honorLabels"] is True
    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and set(rule["spec"]) == {"groups"}
    for group in rule["spec"]["groups"]:
        assert set(group) == {"name", "rules"}
        for item in group["rules"]:
            assert ("record" in item) != ("alert" in item) and isinstance(item["expr"], str)
    assert rule["spec"] == rules.document()
    extracted = tmp_path / "rules.yml"
    extracted.write_text(yaml.safe_dump(rule["spec"]))
    promtool = shutil.which("promtool")
    assert promtool
    checked = subprocess.run(
        [promtool, "check", "rules", str(extracted)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_cost_dashboard_has_prices_after_kubectl_apply(overlay: str, tmp_path: Path) -> None:
    """The default price file is mounted where the exporter's flag points, loads, and prices every
    instance type the DaemonSet is scheduled on in the regions it lists (trn2 and trn2u excepted:
    their nodes show as unpriced on the cost dashboard until a figure is added)."""
    docs = build(overlay)
    pod = one(docs, "DaemonSet")["spec"]["template"]["spec"]
    container = exporter_container(docs)
    args = build_parser().parse_args(container["args"])
    [mount] = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == args.instance_prices.parent]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    [config_map] = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == volume["configMap"]["name"]
    ]
    path = tmp_path / "prices.json"
    path.write_text(config_map["data"][args.instance_prices.name])
    book = load_prices(path)
    types = {t for t, _, _ in book.figures}
    scheduled = {
        value
        for term in pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        for expression in term["matchExpressions"]
        if expression["key"] == "node.kubernetes.io/instance-type"
        for value in expression["values"]
    }
    assert scheduled - types == {"trn2.3xlarge", "trn2.48xlarge", "trn2u.48xlarge"}
    for region in ("us-east-1", "us-east-2", "us-west-2"):
        price = book.lookup("inf2.xlarge", region)
        assert price is not None and price.region == region and price.source and price.date


def exporter_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = [
        c
        for c in one(docs, "DaemonSet")["spec"]["template"]["spec"]["containers"]
        if c["name"] == "neuron-exporter"
    ]
    return container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_daemonset_agrees_with_the_exporter(overlay: str) -> None:
    docs = build(overlay)
    pod = one(docs, "DaemonSet")["spec"]["template"]["spec"]
    container = exporter_container(docs)
    args = build_parser().parse_args(container["args"])  # the exporter's own parser accepts them
    _, port = parse_listen_address(args.listen_address)
    assert [p["containerPort"] for p in container["ports"] if p["name"] == "metrics"] == [port]
    assert container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "metrics"}
    # Readiness is serving, not fresh data: neuron-monitor trouble on many nodes must not stall rollouts.
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "metrics"}
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in container[
        "env"
    ]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    [types] = [
        e["values"]
        for t in terms
        for e in t["matchExpressions"]
        if e["key"] == "node.kubernetes.io/instance-type"
    ]
    assert {t.split(".")[0] for t in types} == NEURON_FAMILIES
    assert set(SHAPES) <= set(types), "every shape the simulator knows is scheduled on"
    # A priority ahead of ordinary pods that never preempts one of them.
    [priority] = [d for d in docs if d["kind"] == "PriorityClass"]
    assert pod["priorityClassName"] == priority["metadata"]["name"]
    assert priority["preemptionPolicy"] == "Never" and priority["value"] < 1_000_000_000
    assert {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["hostPID"] is True and pod["automountServiceAccountToken"] is False
    # Pod attribution: on, from the kubelet's socket, mounted read-only from the host.
    assert args.kubernetes is True and args.pod_resources_socket.parent == Path(
        "/var/lib/kubelet/pod-resources"
    )
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "pod-resources"]
    assert mount == {
        "name": "pod-resources",
        "mountPath": str(args.pod_resources_socket.parent),
        "readOnly": True,
    }
    [volume] = [v for v in pod["volumes"] if v["name"] == "pod-resources"]
    assert volume["hostPath"] == {"path": mount["mountPath"], "type": "Directory"}
    if overlay == "sidecar":
        assert args.input == "/run/neuron-monitor/reports.fifo"
        security = container["securityContext"]
        # Root only to connect to root's socket: no capability, no escalation, no privilege.
        assert security["privileged"] is False and security["runAsUser"] == 0
        assert security["capabilities"] == {"drop": ["ALL"]} and security["allowPrivilegeEscalation"] is False
        monitor = [c for c in pod["containers"] if c["name"] == "neuron-monitor"]
        assert monitor and "reports.fifo" in monitor[0]["args"][0]
    else:
        assert args.neuron_monitor_path == "/opt/aws/neuron/bin/neuron-monitor"
        # neuron-monitor's devices and the kubelet's root-only socket in one container: root, privileged.
        security = container["securityContext"]
        assert security["privileged"] is True and security["runAsUser"] == 0
    config = next(v for v in pod["volumes"] if v["name"] == "neuron-monitor-config")["configMap"]["name"]
    assert config in {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kube_prometheus_stack_selects_the_service_monitor_and_rules(overlay: str) -> None:
    """Its default serviceMonitorSelector and ruleSelector match `release: <release name>`."""
    docs = build(overlay)
    labelled = {
        d["kind"] for d in docs if d["metadata"].get("labels", {}).get("release") == "kube-prometheus-stack"
    }
    assert labelled == {"ServiceMonitor", "PrometheusRule"}


def test_the_probe_paths_are_served(tmp_path: Path) -> None:
    container = exporter_container(build("standalone"))
    capture = REPO / "tests" / "fixtures" / "reports" / "sim-inf1.xlarge.jsonl"
    with Daemon(tmp_path, "--replay", str(capture)) as daemon:
        for probe in ("livenessProbe", "readinessProbe"):
            assert daemon.get(container[probe]["httpGet"]["path"])[0] == 200


def test_the_dashboards_config_map_carries_the_dashboards() -> None:
    config_map = next(d for d in build("standalone") if d["metadata"]["name"] == "neuron-exporter-dashboards")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    expected = {path.name: path.read_text() for path in (REPO / "dashboards").glob("*.json")}
    assert config_map["data"] == expected
