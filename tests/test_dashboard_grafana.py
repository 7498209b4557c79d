"""The dashboards as Grafana 11/12 reads them: schema, step arithmetic, variables, legends, links.

What a static look at the JSON can prove; tests/test_dashboards_e2e.py runs every query for values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from dashboards import fleet, generate
from tests import grafana, promql

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = {name: json.loads((REPO / "dashboards" / name).read_text()) for name in generate.DASHBOARDS}
DEFAULT_RANGE_MS = 6 * 3600 * 1000
SCREEN_PX = 1280
"""A narrow screen: a panel w columns wide is w/24 of it, and Grafana's default max data points is
the panel's width in pixels."""


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_schema_is_current_and_nothing_overrides_grafanas_step(name: str) -> None:
    dashboard = DASHBOARDS[name]
    assert dashboard["schemaVersion"] >= 39
    for panel in grafana.panels(dashboard):
        assert "maxDataPoints" not in panel, panel["title"]
        for target in panel.get("targets", []):
            assert target.get("intervalFactor", 1) == 1 and "step" not in target, panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_rate_window_covers_its_step_at_the_default_range(name: str) -> None:
    """$__rate_interval must be at least the step, or increases between two steps never reach a rate:
    Grafana's interval for the panel's width at 6 h, times intervalFactor, against max(interval +
    scrape interval, 4 scrape intervals)."""
    dashboard = DASHBOARDS[name]
    assert dashboard["time"]["from"] == "now-6h"
    short = []
    for panel in grafana.panels(dashboard):
        if panel["type"] == "row":
            continue
        width_px = panel["gridPos"]["w"] * SCREEN_PX // 24
        max_points = panel.get("maxDataPoints") or width_px
        for target in panel.get("targets", []):
            min_interval = _ms(target.get("interval") or panel.get("interval") or "15s")
            interval = grafana.interval_ms(DEFAULT_RANGE_MS, max_points, min_interval)
            step = interval * target.get("intervalFactor", 1)
            if "$__rate_interval" in target["expr"] and grafana.rate_interval_ms(interval) < step:
                short.append(
                    f"{panel['title']}: step {step} ms, rate window {grafana.rate_interval_ms(interval)} ms"
                )
    assert not short, "\n".join(short)


def _ms(duration: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", duration)
    assert match, duration
    return int(match.group(1)) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[match.group(2)]


def _variable(dashboard: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in dashboard["templating"]["list"] if v["name"] == name)


def test_the_node_dashboard_is_one_node_of_one_job_at_a_time() -> None:
    dashboard = DASHBOARDS["neuron-node.json"]
    for name in ("job", "instance"):
        variable = _variable(dashboard, name)
        assert not variable["multi"] and not variable["includeAll"], name
    for panel in grafana.panels(dashboard):
        for target in panel.get("targets", []):
            # Every per-node selector names the one node exactly, never by a regex.
            for selector in re.findall(r"\{([^{}]*)\}", target["expr"]):
                if "instance" in selector:
                    assert 'instance="$instance"' in selector and 'job="$job"' in selector, (
                        panel["title"],
                        selector,
                    )


def test_the_node_variable_shows_node_names_and_stands_for_the_instance() -> None:
    for name, dashboard in DASHBOARDS.items():
        variable = _variable(dashboard, "instance")
        assert variable["label"] == "Node"
        assert "(?<value>" in variable["regex"] and "(?<text>" in variable["regex"], name
        line = '{instance="10.0.0.5:9400", node="ip-10-0-0-5.ec2.internal"} 1 1700000000000'
        match = re.search(variable["regex"].strip("/").replace("(?<", "(?P<"), line)
        assert match and match.group("value") == "10.0.0.5:9400"
        assert match.group("text") == "ip-10-0-0-5.ec2.internal"


def test_the_job_variable_all_is_the_jobs_listed_and_cluster_all_matches_an_absent_label() -> None:
    """`.*` for job would count every other job's `up`; the cluster's All must match series without it."""
    for name, dashboard in DASHBOARDS.items():
        assert _variable(dashboard, "job").get("allValue") in (None, ""), name
        cluster = _variable(dashboard, "cluster")
        assert cluster["includeAll"] and cluster["allValue"] == ".*", name


@pytest.mark.parametrize("name", ["neuron-fleet.json", "neuron-cost.json"])
def test_legends_name_the_node_where_several_nodes_can_appear(name: str) -> None:
    for panel in grafana.panels(DASHBOARDS[name]):
        for target in panel.get("targets", []):
            assert "{{instance}}" not in target.get("legendFormat", ""), panel["title"]


def test_the_fleet_dashboard_reads_only_recording_rules_up_and_alerts_and_the_keep_list_is_exactly_that() -> (
    None
):
    dashboard = DASHBOARDS["neuron-fleet.json"]
    read = set()
    for _, _, expr in grafana.queries(dashboard):
        read |= set(promql.metric_names(expr))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            read |= set(promql.metric_names(grafana.variable_promql(variable["query"])[0]))
    assert all(name in ("up", "ALERTS") or name.startswith("instance:") for name in read), read
    assert set(fleet.REMOTE_WRITE_KEEP.split("|")) == read


def test_drill_down_links_keep_the_time_range_and_variables() -> None:
    for name, dashboard in DASHBOARDS.items():
        links = dashboard["links"]
        assert len(links) == 2, name
        assert all(link["keepTime"] and link["includeVars"] for link in links), name
    bars = [p for p in grafana.panels(DASHBOARDS["neuron-fleet.json"]) if p["type"] == "bargauge"]
    for panel in bars:
        (link,) = panel["fieldConfig"]["defaults"]["links"]
        assert (
            "var-instance=${__field.labels.instance}" in link["url"] and "${__url_time_range}" in link["url"]
        )


def test_the_cluster_label_name_is_configurable(tmp_path: Path) -> None:
    assert generate.main(["--cluster-label", "k8s_cluster", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "neuron-fleet.json").read_text()
    assert 'k8s_cluster=~\\"$cluster\\"' in text and "cluster=~" not in text.replace("k8s_cluster=~", "")
    with pytest.raises(SystemExit):
        generate.main(["--cluster-label", "not a label", "--out", str(tmp_path)])
