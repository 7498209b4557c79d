"""alerts/config.yml is the one place to change selectors, URLs and thresholds, and what it says holds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from alerts import config, rules
from dashboards import node

REPO = Path(__file__).resolve().parents[1]


def test_the_committed_config_loads_and_is_what_the_rules_were_built_from() -> None:
    loaded = config.load()
    assert loaded == rules.CONFIG
    assert loaded.runbook_base.startswith("https://")
    assert rules.main(["--check"]) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"executions": {"window": "ten minutes"}}, "window"),
        ({"executions": {"server_error_ratio": 5}}, "server_error_ratio"),
        ({"cluster_label": "my cluster"}, "cluster_label"),
        ({"runbook_base": "alerts/README.md"}, "runbook_base"),
        ({"latency": {"overrides": [{"match": {}, "p99_seconds": 1}]}}, "match"),
        ({"latency": {"p99": 1}}, "p99"),
    ],
)
def test_a_bad_config_is_refused_naming_the_field(
    change: dict[str, object], field: str, tmp_path: Path
) -> None:
    data = {**yaml.safe_load(config.DEFAULT_FILE.read_text()), **change}
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValidationError, match=field):
        config.load(path)


def _rules_for(tmp_path: Path, **change: object) -> dict[str, dict[str, object]]:
    data = {**yaml.safe_load(config.DEFAULT_FILE.read_text()), **change}
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    result = subprocess.run(
        [sys.executable, "-m", "alerts.rules", "--config", str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=60,
    )
    (tmp_path / "rules.yml").write_text(result.stdout)
    document = yaml.safe_load(result.stdout)
    return {rule["alert"]: rule for group in document["groups"] for rule in group["rules"] if "alert" in rule}


def test_runbook_and_dashboard_urls_are_absolute_and_point_at_the_panel(tmp_path: Path) -> None:
    alerts = _rules_for(
        tmp_path, runbook_base="https://wiki.example/neuron", grafana_url="https://grafana.example/"
    )
    for name, rule in alerts.items():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook_url"] == f"https://wiki.example/neuron#{name.lower()}"
    memory = alerts["NeuronDeviceMemoryNearCapacity"]["annotations"]
    assert isinstance(memory, dict)
    panels = {panel.title: panel.id for panel in node.build().panels}
    assert memory["dashboard_url"] == (
        "https://grafana.example/d/neuron-node?var-job={{ $labels.job }}&var-instance={{ $labels.instance }}"
        f"&viewPanel={panels['Device memory by NeuronCore and category']}"
    )
    # Without a Grafana URL there is nothing to link.
    default = _rules_for(tmp_path)
    assert all("dashboard_url" not in rule["annotations"] for rule in default.values())  # type: ignore[operator]


def test_without_family_thresholds_every_node_gets_the_default(tmp_path: Path) -> None:
    _rules_for(tmp_path, latency={"p99_seconds": {"default": 3}})
    checked = subprocess.run(
        ["promtool", "check", "rules", str(tmp_path / "rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_job_selector_is_the_one_in_the_config(tmp_path: Path) -> None:
    alerts = _rules_for(tmp_path, job_selector="neuron|neuron-exporter")
    assert all('job=~"neuron|neuron-exporter"' in str(rule["expr"]) for rule in alerts.values())


def test_a_workloads_latency_override_replaces_its_family_threshold(tmp_path: Path) -> None:
    """On an inf2 node (2 s): an LLM namespace allowed 20 s is quiet at 10 s and loud at 30 s; the same
    10 s elsewhere on the node is loud. The first matching override wins."""
    overrides = [
        {"match": {"namespace": "llm"}, "p99_seconds": 20},
        {"match": {"namespace": "llm", "pod": "strict-.*"}, "p99_seconds": 1},
    ]
    latency_section = yaml.safe_load(config.DEFAULT_FILE.read_text())["latency"]
    alerts = _rules_for(tmp_path, latency={**latency_section, "overrides": overrides})
    expr = alerts["NeuronLatencyHigh"]["expr"]
    job = 'job="neuron-exporter",instance="n1:8000"'

    def latency(runtime: str, namespace: str, pod: str, value: float) -> dict[str, str]:
        labels = f'{job},percentile="p99",runtime_tag="{runtime}",namespace="{namespace}",pod="{pod}"'
        return {"series": f"neuron_execution_latency_seconds{{{labels}}}", "values": f"{value}x20"}

    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'neuron_exporter_build_info{{{job},version="1"}}', "values": "1x20"},
                    {
                        "series": f'neuron_instance_info{{{job},instance_type="inf2.xlarge"}}',
                        "values": "1x20",
                    },
                    latency("chat", "llm", "chat-0", 10),
                    latency("long", "llm", "long-0", 30),
                    latency("strict", "llm", "strict-0", 10),
                    latency("ranker", "ml", "ranker-0", 10),
                ],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": "15m",
                        "exp_samples": [
                            {
                                "labels": f'{{{job},runtime_tag="{runtime}",namespace="{ns}",pod="{pod}",node="n1:8000"}}',
                                "value": value,
                            }
                            for runtime, ns, pod, value in (
                                ("long", "llm", "long-0", 30),
                                ("ranker", "ml", "ranker-0", 10),
                            )
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(json.dumps(tests))
    promtool = shutil.which("promtool")
    assert promtool
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yml"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
