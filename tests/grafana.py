"""What Grafana does with a dashboard's JSON before Prometheus sees a query, for tests without Grafana.

Variables are resolved in their order, each query variable run against a real Prometheus as Grafana
runs it (label_values, query_result with the variable's regex and its named text/value groups); values
are written into expressions as Grafana's Prometheus data source writes them (regex-escaped, `(a|b)`
for several, the variable's allValue or every value for All). The step arithmetic follows Grafana's
query interval: range over max data points, at least the minimum interval, rounded to a nice value,
times intervalFactor; $__rate_interval is max(interval + scrape interval, 4 x scrape interval).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from tests.prometheus import Prometheus

SCRAPE_INTERVAL_MS = 15_000
"""Grafana's default scrape interval of a Prometheus data source."""
NICE_INTERVALS_MS = (
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
)
"""Grafana's roundInterval: below the first figure, the second."""


def round_interval(ms: float) -> int:
    for below, nice in NICE_INTERVALS_MS:
        if ms < below:
            return nice
    return 604_800_000


def interval_ms(range_ms: int, max_data_points: int, min_interval_ms: int = SCRAPE_INTERVAL_MS) -> int:
    """$__interval of a query: the range over the points the panel can draw, at least the minimum."""
    return max(round_interval(range_ms / max_data_points), min_interval_ms)


def rate_interval_ms(interval: int, scrape_ms: int = SCRAPE_INTERVAL_MS) -> int:
    return max(interval + scrape_ms, 4 * scrape_ms)


def regex_escape(value: str) -> str:
    """A value as Grafana's Prometheus data source writes it into a regex matcher."""
    return re.sub(r"[\\^$.|?*+()\[\]{}']", lambda m: "\\\\" + m.group(0), value)


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's variable interpolation for the variables our dashboards use."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name.startswith("__field") or name == "__url_time_range":
            return match.group(0)
        assert name in values, f"variable ${name} is not set: {expr}"
        return values[name]

    return re.sub(r"\$\{([\w.]+)\}|\$(\w+)", one, expr)


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, refId, expr) of every panel target and annotation."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["refId"], target["expr"]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            yield f"annotation {annotation['name']}", "-", annotation["expr"]


def _python_regex(grafana: str) -> re.Pattern[str]:
    body = grafana.strip("/")
    return re.compile(body.replace("(?<", "(?P<"))


Choose = Callable[[str, list[tuple[str, str]]], str | None]
"""(variable name, its options as (text, value)) -> the value to pick, or None for All / default."""


def resolve(
    dashboard: dict[str, Any],
    prometheus: Prometheus,
    builtins: dict[str, str],
    choose: Choose = lambda name, options: None,
    at: float | None = None,
) -> dict[str, str]:
    """Every variable's interpolated value, worked out in order against `prometheus`."""
    values = dict(builtins)
    for variable in dashboard["templating"]["list"]:
        name, kind = variable["name"], variable["type"]
        if kind == "datasource":
            continue
        if kind in ("custom", "textbox", "constant"):
            default = variable.get("current", {}).get("value") or variable["query"].split(",")[0]
            values[name] = choose(name, [(default, default)]) or default
            continue
        options = _options(variable, substitute(variable["query"], values), prometheus, at)
        picked = choose(name, options)
        multi = variable.get("multi") or variable.get("includeAll")
        if picked is not None:
            values[name] = regex_escape(picked) if multi else picked
        elif variable.get("includeAll"):
            all_value = variable.get("allValue")
            escaped = [regex_escape(value) for _, value in options]
            values[name] = all_value or (escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")")
        else:
            assert options, f"variable {name} has no options and no All"
            values[name] = options[0][1]
    return values


def variable_promql(query: str) -> tuple[str, Callable[[dict[str, str]], str] | None]:
    """A variable's query as PromQL, and how a result's labels give its option (None: the Grafana text)."""
    if match := re.fullmatch(r"label_values\((.*), (\w+)\)", query, re.S):
        label = match.group(2)
        return f"count by ({label}) ({match.group(1)})", lambda labels: labels.get(label, "")
    if match := re.fullmatch(r"query_result\((.*)\)", query, re.S):
        return match.group(1), None
    raise AssertionError(f"unknown variable query {query}")


def _options(
    variable: dict[str, Any], query: str, prometheus: Prometheus, at: float | None
) -> list[tuple[str, str]]:
    promql, label_of = variable_promql(query)
    options = []
    for result in prometheus.query(promql, at):
        if label_of is not None:
            text = label_of(result["metric"])
            if text:
                options.append((text, text))
            continue
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(result["metric"].items()))
        line = f"{{{labels}}} {result['value'][1]} {int(float(result['value'][0]) * 1000)}"
        match = _python_regex(variable["regex"]).search(line)
        if match:
            options.append((match.group("text"), match.group("value")))
    return sorted(set(options))
