"""What the three dashboards share: template variables, identity joins, panel builders and a grid.

Metric names come from the collectors' declarations (exporter.catalog.metric) and recording-rule names
from alerts/rules.py, so generation fails on a rename instead of leaving an empty panel. Panels get
ids in the order they are laid out, so ids stay stable while a dashboard's panel list does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grafanalib import core as g

from exporter.catalog import metric

DATASOURCE = "${datasource}"
INFO = metric("neuron_instance_info", "instance_type")
RUNTIME_INFO = metric("neuron_runtime_info", "runtime_tag")
POD_INFO = metric("neuron_neuroncore_pod_info", "namespace", "pod")

NODE = 'job=~"$job",instance=~"$instance"'
"""The selector every per-node query starts from."""
RUNTIME = f'{NODE},runtime_tag=~"$runtime_tag"'
"""The selector of per-runtime queries."""
RATE = "$__rate_interval"
"""Grafana's rate window: at least four scrape intervals, whatever the zoom."""

GREEN, YELLOW, RED, BLUE = "green", "yellow", "red", "blue"


def typed(expr: str, by: str = "") -> str:
    """`expr` per node joined with its instance type from neuron_instance_info, filtered by the
    instance-type variable; the join goes through the info metric, never through labels we do not emit."""
    info = f'{INFO}{{job=~"$job",instance=~"$instance",instance_type=~"$instance_type"}}'
    return f"({expr}) * on(job, instance) group_left(instance_type{by}) {info}"


def variables(*extra: g.Template) -> g.Templating:
    """Data source, job, instance type, node and runtime tag, then any dashboard-specific ones."""
    return g.Templating(
        list=[
            g.Template(name="datasource", label="Data source", query="prometheus", type="datasource"),
            _query("job", "Job", f"label_values({INFO}, job)"),
            _query("instance_type", "Instance type", f'label_values({INFO}{{job=~"$job"}}, instance_type)'),
            _query(
                "instance",
                "Node",
                f'label_values({INFO}{{job=~"$job",instance_type=~"$instance_type"}}, instance)',
            ),
            _query("runtime_tag", "Runtime tag", f"label_values({RUNTIME_INFO}{{{NODE}}}, runtime_tag)"),
            *extra,
        ]
    )


def pod_variables() -> tuple[g.Template, ...]:
    """Namespace and pod, from pod attribution; with none reported they are empty and match all."""
    return (
        _query("namespace", "Namespace", f"label_values({POD_INFO}{{{NODE}}}, namespace)"),
        _query("pod", "Pod", f'label_values({POD_INFO}{{{NODE},namespace=~"$namespace"}}, pod)'),
    )


def _query(name: str, label: str, query: str) -> g.Template:
    return g.Template(
        name=name,
        label=label,
        query=query,
        dataSource=DATASOURCE,
        includeAll=True,
        multi=True,
        allValue=".*",
        refresh=2,  # on time range change, so nodes that come and go are listed
        sort=1,
        default="All",
    )


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> g.Target:
    """A Prometheus query of a panel."""
    return g.Target(expr=expr, legendFormat=legend, refId=ref, instant=instant, datasource=DATASOURCE)


def targets(*queries: tuple[str, str]) -> list[g.Target]:
    """Several (expr, legend) queries with refIds A, B, …"""
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]


def steps(*levels: tuple[str, float | None]) -> list[g.Threshold]:
    """Threshold steps: (color, from value); the first has no lower bound."""
    return [g.Threshold(color, index, float(value or 0)) for index, (color, value) in enumerate(levels)]


NO_THRESHOLDS = [g.Threshold(GREEN, 0, 0.0)]


def timeseries(
    title: str, description: str, queries: Sequence[tuple[str, str]], unit: str, **kw: Any
) -> g.TimeSeries:
    return g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets(*queries),
        unit=unit,
        thresholds=kw.pop("thresholds", NO_THRESHOLDS),
        **kw,
    )


def stat(
    title: str, description: str, expr: str, unit: str, thresholds: list[g.Threshold], **kw: Any
) -> g.Stat:
    return g.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[target(expr, instant=True)],
        format=unit,
        thresholds=thresholds,
        reduceCalc="lastNotNull",
        **kw,
    )


def bargauge(
    title: str, description: str, expr: str, legend: str, unit: str, thresholds: list[g.Threshold]
) -> g.BarGauge:
    return g.BarGauge(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[target(expr, legend, instant=True)],
        format=unit,
        thresholds=thresholds,
        orientation="horizontal",
        displayMode="gradient",
        calc="lastNotNull",
        min=0,
        max=1 if unit == "percentunit" else 100,
        # grafanalib writes Grafana 6's options.fieldOptions; the field config is what Grafana reads now.
        extraJson={
            "fieldConfig": {
                "defaults": {"unit": unit, "min": 0, **({"max": 1} if unit == "percentunit" else {})}
            }
        },
    )


def table(title: str, description: str, queries: Sequence[tuple[str, str]], unit: str = "none") -> g.Table:
    return g.Table(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[
            target(expr, legend, chr(ord("A") + i), instant=True) for i, (expr, legend) in enumerate(queries)
        ],
        unit=unit,
        transformations=[{"id": "merge", "options": {}}],
    )


@dataclass
class Grid:
    """Lays panels out on Grafana's 24-column grid, left to right, rows by concern, ids in order."""

    panels: list[g.Panel] = field(default_factory=list)
    x: int = 0
    y: int = 0
    line_height: int = 0

    def row(self, title: str) -> None:
        """Start a new row of panels under a heading."""
        self._newline()
        self._place(g.RowPanel(title=title, collapsed=False), 24, 1)
        self._newline()

    def add(self, panel: g.Panel, w: int, h: int = 8) -> None:
        """Place the next panel, w columns wide."""
        if self.x + w > 24:
            self._newline()
        self._place(panel, w, h)

    def _place(self, panel: g.Panel, w: int, h: int) -> None:
        panel.gridPos = g.GridPos(h=h, w=w, x=self.x, y=self.y)
        panel.id = len(self.panels) + 1
        self.panels.append(panel)
        self.x += w
        self.line_height = max(self.line_height, h)

    def _newline(self) -> None:
        if self.x:
            self.y += self.line_height
        self.x, self.line_height = 0, 0


def dashboard(uid: str, title: str, description: str, grid: Grid, templating: g.Templating) -> g.Dashboard:
    return g.Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=["neuron", "aws-neuron", "neuron-exporter"],
        panels=grid.panels,
        templating=templating,
        time=g.Time("now-6h", "now"),
        refresh="30s",
        timezone="browser",
        editable=True,
    )
