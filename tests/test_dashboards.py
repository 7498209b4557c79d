"""The committed dashboards and rules are what the code generates, well-formed, and promtool-clean."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from alerts import rules
from dashboards import generate

REPO = Path(__file__).resolve().parents[1]
PANEL_TYPES = {"timeseries", "stat", "heatmap", "state-timeline", "table", "bargauge", "row"}
"""Current Grafana panel types only: no `graph`, `singlestat` or `table-old`."""


def test_committed_dashboards_are_generated() -> None:
    assert generate.main(["--check"]) == 0, "dashboards/*.json are stale: run `make dashboards`"


@pytest.mark.parametrize("name", sorted(generate.DASHBOARDS))
def test_dashboard_is_well_formed(name: str) -> None:
    dashboard = json.loads((REPO / "dashboards" / name).read_text())
    ids, cells = set(), set()
    for panel in dashboard["panels"]:
        assert panel["type"] in PANEL_TYPES, (panel["title"], panel["type"])
        assert panel["id"] not in ids
        ids.add(panel["id"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))
        if panel["type"] == "row":
            continue
        assert panel["description"], panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit") or panel.get("format")
        if panel["type"] != "heatmap":
            assert unit, f"{panel['title']} has no unit"
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names[:5] == ["datasource", "job", "instance_type", "instance", "runtime_tag"]


def test_committed_rules_are_generated() -> None:
    assert rules.main(["--check"]) == 0, "alerts/neuron-exporter.rules.yml is stale: run `make alerts`"


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool not found: `make tools` installs Debian's prometheus package"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(rules.RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules.RECORDS) + len(rules.ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_fire_and_silence_every_alert() -> None:
    tests = REPO / "alerts" / "tests" / "neuron-exporter.test.yml"
    text = tests.read_text()
    for alert in rules.ALERTS:
        assert text.count(f"alertname: {alert.name}\n") >= 2, f"{alert.name} needs a firing and a quiet case"
    for record in rules.RECORDS:
        assert f"expr: {record.record}\n" in text, f"{record.record} has no value test"
    result = promtool("test", "rules", tests.name, cwd=tests.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_runbook_section() -> None:
    runbooks = (REPO / "alerts" / "README.md").read_text().lower()
    for alert in rules.ALERTS:
        assert f"### {alert.name.lower()}" in runbooks, f"alerts/README.md has no section for {alert.name}"
