"""The committed dashboards and rules are what the code generates, well-formed, and promtool-clean."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts import rules
from alerts.records import EXTERNAL_COUNTERS
from dashboards import generate
from exporter.catalog import SPECS
from tests import promql

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
    assert names[:5] == ["datasource", "cluster", "job", "instance_type", "instance"]


def test_committed_rules_are_generated() -> None:
    assert rules.main(["--check"]) == 0, "alerts/neuron-exporter.rules.yml is stale: run `make alerts`"


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool not found: `make tools` installs Debian's prometheus package"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(rules.RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in rules.document()["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_unit_tests_fire_and_silence_every_alert() -> None:
    tests = REPO / "alerts" / "tests" / "neuron-exporter.test.yml"
    text = tests.read_text()
    for alert in rules.ALERTS:
        assert text.count(f"alertname: {alert.name}\n") >= 2, f"{alert.name} needs a firing and a quiet case"
    for record in rules.ALL_RECORDS:
        tested = f"expr: {record.record}\n" in text or f"expr: {record.record}{{" in text
        assert tested, f"{record.record} has no value test"
    result = promtool("test", "rules", tests.name, cwd=tests.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_runbook_section() -> None:
    runbooks = (REPO / "alerts" / "README.md").read_text().lower()
    for alert in rules.ALERTS:
        assert f"### {alert.name.lower()}" in runbooks, f"alerts/README.md has no section for {alert.name}"


def dashboard_exprs(name: str) -> Iterator[tuple[dict[str, Any], str]]:
    """(panel, expr) for every query of a committed dashboard; variables' queries with an empty panel."""
    dashboard = json.loads((REPO / "dashboards" / name).read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            yield panel, target["expr"]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            yield {}, query


def rule_exprs() -> Iterator[tuple[str, str]]:
    """(rule name, expr) for every recording and alerting rule."""
    for record in rules.ALL_RECORDS:
        yield record.record, record.expr
    for alert in rules.ALERTS:
        yield alert.name, alert.expr


def all_exprs() -> Iterator[tuple[str, str]]:
    for name in sorted(generate.DASHBOARDS):
        for panel, expr in dashboard_exprs(name):
            yield f"{name}: {panel.get('title', 'a variable')}", expr
    yield from rule_exprs()


def test_rate_and_increase_wrap_only_counters() -> None:
    """On a gauge, rate() and increase() read every fall as a counter reset and invent increases."""
    wrong = []
    for where, expr in all_exprs():
        for argument in promql.call_arguments(expr):
            for name in promql.metric_names(argument):
                spec = SPECS.get(name)
                if name in EXTERNAL_COUNTERS:
                    continue
                if spec is None or spec.kind != "counter":
                    wrong.append(f"{where}: {name} is {spec.kind if spec else 'not a declared metric'}")
    assert not wrong, "\n".join(wrong)


UNITS = {
    "bytes": {"bytes", "decbytes"},
    "ratio": {"percentunit"},
    "seconds": {"s"},
    "per_second": {"ops", "reqps", "cps", "iops"},
    "count": {"none", "short"},
    "flops": {"flops"},
    "currency": {"currencyUSD"},
}
"""Grafana units that show each base unit right: a ratio 0-1 as percent, seconds as a duration."""
RECORDED = {record.record: record.expr for record in rules.ALL_RECORDS}


def dimension(expr: str) -> str | None:
    """What an expression measures, from the base units in its metric names; None when it cannot be
    told this simply (a quotient, or metrics of different units)."""
    if "/" in re.sub(r'"[^"]*"|\[[^\]]*\]', "", expr):
        return None
    if re.match(r"\s*(count|round)\b", expr) or "increase(" in expr:
        return "count"
    if "cost" in expr:
        return "currency"
    if re.search(r"time\(\)\s*-", expr) and "_timestamp_seconds" in expr:
        return "seconds"
    kinds: set[str | None] = set()
    for name in promql.metric_names(expr):
        spec = SPECS.get(name)
        if name in RECORDED:
            kinds.add(dimension(RECORDED[name]))
        elif (spec is not None and spec.kind == "info") or name in ("up", "neuron_monitor_up"):
            continue
        elif spec is not None and spec.kind == "counter":
            kinds.add("ratio" if name.endswith("_seconds_total") else "per_second")
        elif "flops" in name:
            kinds.add("flops")
        else:
            suffix = name.rsplit("_", 1)[-1]
            kinds.add({"bytes": "bytes", "ratio": "ratio", "seconds": "seconds"}.get(suffix, "count"))
    return kinds.pop() if len(kinds) == 1 else None


@pytest.mark.parametrize("name", sorted(generate.DASHBOARDS))
def test_each_panels_unit_matches_the_base_unit_of_what_it_shows(name: str) -> None:
    wrong = []
    panels: dict[str, tuple[dict[str, Any], set[str | None]]] = {}
    for panel, expr in dashboard_exprs(name):
        if panel and panel["type"] not in ("heatmap", "table"):
            panels.setdefault(panel["title"], (panel, set()))[1].add(dimension(expr))
    for title, (panel, dimensions) in panels.items():
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit") or panel.get("format")
        if len(dimensions) == 1 and (kind := next(iter(dimensions))) is not None and unit not in UNITS[kind]:
            wrong.append(f"{title}: shows {kind} in {unit!r} (one of {sorted(UNITS[kind])})")
    assert not wrong, "\n".join(wrong)


def test_every_literal_alternative_of_a_regex_matcher_has_its_own_firing_case() -> None:
    """Dropping `failed_to_queue` from `status=~"timed_out|failed_to_queue"` must fail a promtool case:
    for each alternative, a test group whose series carry that alternative and no other expects the
    alert to fire."""
    tests = yaml.safe_load((REPO / "alerts" / "tests" / "neuron-exporter.test.yml").read_text())
    missing = []
    for alert in rules.ALERTS:
        for label, alternatives in promql.regex_matchers(alert.expr):
            for alternative in alternatives:
                others = set(alternatives) - {alternative}
                if not any(
                    _group_isolates(group, alert.name, label, alternative, others) for group in tests["tests"]
                ):
                    missing.append(f"{alert.name}: {label}={alternative!r}")
    assert not missing, "no firing case of only: " + ", ".join(missing)


def _group_isolates(group: dict[str, Any], alert: str, label: str, value: str, others: set[str]) -> bool:
    """Whether a promtool test group feeds `label=value` and none of `others`, and expects `alert`."""
    seen = set()
    for series in group.get("input_series", ()):
        text = series["series"]
        if label == "__name__":
            seen.add(text.split("{", 1)[0])
        elif match := re.search(rf'\b{label}="([^"]*)"', text):
            seen.add(match.group(1))
    fires = any(
        case["alertname"] == alert and case.get("exp_alerts") for case in group.get("alert_rule_test", ())
    )
    return fires and value in seen and not seen & others
