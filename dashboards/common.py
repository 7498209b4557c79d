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

from alerts import records as r
from exporter.catalog import metric

DATASOURCE = "${datasource}"
CLUSTER = "__cluster_label__"
"""Stands for the cluster label's name in every query; generate.py writes the configured name
(`--cluster-label`, default `cluster`) in its place. Where series carry no such label the variable
lists nothing, its All matches the absent label, and every query works unchanged."""
IDENTITY = r.NODE_INFO.record
RUNTIME_INFO = metric("neuron_runtime_info", "runtime_tag")
POD_INFO = metric("neuron_neuroncore_pod_info", "namespace", "pod")

SCOPE = f'{CLUSTER}=~"$cluster",job=~"$job"'
"""The selected clusters and scrape jobs."""
NODE = f'{SCOPE},instance=~"$instance"'
"""The selector every per-node query starts from: the selected clusters, jobs and nodes."""
RUNTIME = f'{NODE},runtime_tag=~"$runtime_tag"'
"""The selector of per-runtime queries."""
KEY = f"{CLUSTER}, instance"
"""One node: a target scraped by two jobs is still one node, so figures are taken per KEY (max over
jobs) before they are added up."""
JOINED = f"{CLUSTER}, job, instance"
"""What a per-target series and its identity share."""
RATE = "$__rate_interval"
"""Grafana's rate window: at least four scrape intervals, whatever the zoom."""

GREEN, YELLOW, RED, BLUE = "green", "yellow", "red", "blue"
NODE_VALUES = r'/instance="(?<value>[^"]+)".*node="(?<text>[^"]+)"/'
"""The node variable shows node names and stands for the scrape target's `instance`."""


def identity(extra: str = "") -> str:
    """The selected nodes' identity series (node name, instance type), one per node and job."""
    return f'{IDENTITY}{{{NODE},instance_type=~"$instance_type"{extra}}}'


def typed(expr: str, by: str = "") -> str:
    """`expr` per node, joined with the node's name and instance type and filtered by the instance-type
    variable, once per node whatever number of jobs scrape it. The join goes through the identity
    record, which exists while the exporter is scraped: a node whose neuron-monitor never reported
    is kept (instance_type "unknown")."""
    return (
        f"max by ({KEY}, node, instance_type{by}) (\n  ({expr})\n"
        f"  * on({JOINED}) group_left(node, instance_type) {identity()}\n)"
    )


def count_or_zero(expr: str) -> str:
    """How many series `expr` has: 0 when none but the selected nodes are known, no data when
    nothing is (a central store missing the identity record must not read a confident 0)."""
    return f"count({expr}) or (0 * count(max by ({KEY}) ({identity()})))"


def _variable(
    name: str, label: str, query: str, *, multi: bool = True, all_value: str | None = ".*"
) -> g.Template:
    """A query variable refreshed on time-range change, so nodes that come and go are listed.

    `multi` variables offer All; with `all_value` None, All is the list of values (for `job`, whose
    `.*` would also match every other job's `up`)."""
    return g.Template(
        name=name,
        label=label,
        query=query,
        dataSource=DATASOURCE,
        includeAll=multi,
        multi=multi,
        allValue=all_value if multi else None,
        refresh=2,
        sort=1,
        default="All" if multi else None,
    )


def datasource() -> g.Template:
    return g.Template(name="datasource", label="Data source", query="prometheus", type="datasource")


def cluster() -> g.Template:
    return _variable("cluster", "Cluster", f"label_values({IDENTITY}, {CLUSTER})")


def job(multi: bool = True) -> g.Template:
    return _variable(
        "job", "Job", f'label_values({IDENTITY}{{{CLUSTER}=~"$cluster"}}, job)', multi=multi, all_value=None
    )


def instance_type() -> g.Template:
    return _variable("instance_type", "Instance type", f"label_values({IDENTITY}{{{SCOPE}}}, instance_type)")


def node(multi: bool = True) -> g.Template:
    """Node names to pick, each standing for its target's `instance`."""
    query = f'query_result(max by (instance, node) ({IDENTITY}{{{SCOPE},instance_type=~"$instance_type"}}))'
    template = _variable("instance", "Node", query, multi=multi)
    template.regex = NODE_VALUES
    return template


def fleet_variables(*extra: g.Template) -> g.Templating:
    """Data source, cluster, job, instance type and nodes (several at a time), then `extra`."""
    return g.Templating(list=[datasource(), cluster(), job(), instance_type(), node(), *extra])


def node_variables() -> g.Templating:
    """One node at a time (one job, so two jobs scraping it never add up), its runtimes and pods."""
    return g.Templating(
        list=[
            datasource(),
            cluster(),
            job(multi=False),
            g.Template(name="instance_type", label="Instance type", query=".*", type="constant", hide=2),
            node(multi=False),
            _variable("runtime_tag", "Runtime tag", f"label_values({RUNTIME_INFO}{{{NODE}}}, runtime_tag)"),
            _variable("namespace", "Namespace", f"label_values({POD_INFO}{{{NODE}}}, namespace)"),
            _variable("pod", "Pod", f'label_values({POD_INFO}{{{NODE},namespace=~"$namespace"}}, pod)'),
        ]
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


def column(field: str, title: str, unit: str, decimals: int) -> dict[str, object]:
    """A table column's display name, unit and decimals (a field override of the merged table)."""
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [
            {"id": "displayName", "value": title},
            {"id": "unit", "value": unit},
            {"id": "decimals", "value": decimals},
        ],
    }


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


SCHEMA_VERSION = 39
"""Grafana 10.4's dashboard schema: what Grafana 11 and 12 read without migrating old panel shapes."""
UIDS = {"fleet": "neuron-fleet", "node": "neuron-node", "cost": "neuron-cost"}


def drill_down(uid: str, title: str) -> g.DashboardLink:
    """A link to another Neuron dashboard that keeps the time range and the variables' values."""
    return g.DashboardLink(
        title=title,
        type="link",
        uri=f"/d/{uid}",
        keepTime=True,
        includeVars=True,
        asDropdown=False,
        icon="dashboard",
    )


def node_link(title: str = "Node and workload: ${__field.labels.node}") -> dict[str, Any]:
    """A data link from a series of one node to the node dashboard for it, same time range and scope."""
    return {
        "title": title,
        "url": f"/d/{UIDS['node']}?var-cluster=${{cluster}}&var-job=${{__field.labels.job}}"
        "&var-instance=${__field.labels.instance}&${__url_time_range}",
    }


def annotation_list(selector: str, restarts: bool = True) -> g.Annotations:
    """Firing alerts of the selected nodes, and (`restarts`, which reads a raw counter the fleet view
    does not get on a central store) neuron-monitor restarts, marked on every time series."""
    counter = metric("neuron_exporter_monitor_restarts_total")
    return g.Annotations(
        list=[
            *(
                []
                if not restarts
                else [
                    {
                        "name": "neuron-monitor restarts",
                        "datasource": DATASOURCE,
                        "enable": True,
                        "iconColor": "orange",
                        "expr": f"changes({counter}{{{selector}}}[$__rate_interval]) > 0",
                        "step": "1m",
                        "titleFormat": "neuron-monitor restarted",
                        "textFormat": "{{instance}}",
                    }
                ]
            ),
            {
                "name": "Neuron alerts firing",
                "datasource": DATASOURCE,
                "enable": True,
                "iconColor": "red",
                "expr": f'ALERTS{{alertstate="firing",alertname=~"Neuron.*",{selector}}}',
                "step": "1m",
                "titleFormat": "{{alertname}}",
                "textFormat": "{{instance}} {{severity}}",
            },
        ]
    )


def dashboard(
    uid: str,
    title: str,
    description: str,
    grid: Grid,
    templating: g.Templating,
    links: Sequence[g.DashboardLink] = (),
    selector: str = NODE,
    restarts: bool = True,
) -> g.Dashboard:
    return g.Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=["neuron", "aws-neuron", "neuron-exporter"],
        panels=grid.panels,
        templating=templating,
        annotations=annotation_list(selector, restarts),
        links=list(links),
        time=g.Time("now-6h", "now"),
        refresh="30s",
        timezone="browser",
        editable=True,
        schemaVersion=SCHEMA_VERSION,
    )
