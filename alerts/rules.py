"""Alerting and recording rules for neuron-exporter, generated into alerts/neuron-exporter.rules.yml.

    .venv/bin/python -m alerts.rules --write                 # regenerate (make alerts)
    .venv/bin/python -m alerts.rules --check                 # exit 1 if the committed file is stale
    .venv/bin/python -m alerts.rules --config mine.yml       # print the rules of your own config

Every selector and threshold comes from alerts/config.yml (alerts/config.py), the one place to change
them; metric names come from the collectors' declarations (exporter.catalog.metric), so a renamed
metric fails generation instead of leaving an alert that can never fire.

Each alert is a symptom a human must act on. Its labels route it: `node` (from the identity record,
which falls back to the target where there is no node name), and the workload's `namespace`, `pod`
and `container` where the series have them. Severity: critical pages (a fault that breaks inference
or blinds the whole fleet's monitoring), warning makes a ticket, info only shows on dashboards.
Every rule is exercised by `promtool test rules alerts/tests/neuron-exporter.test.yml`.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from alerts import baselines
from alerts import config as settings
from alerts.records import (
    DEVICE_LATENCY,
    DEVICE_MEMORY,
    DEVICES,
    ECC,
    LATENCY,
    MONITOR_UP,
    NODE_INFO,
    RECORDS,
    STATUS,
    UTILIZATION,
    Record,
)
from exporter.catalog import metric
from exporter.docs import write_or_check

HERE = Path(__file__).resolve().parent
RULES_FILE = HERE / "neuron-exporter.rules.yml"
CONFIG = settings.load()
"""alerts/config.yml: what `make alerts` builds from."""
JOB = CONFIG.job_selector
"""The scrape job the README's Prometheus config and the ServiceMonitor name."""

# --- names the rules read ------------------------------------------------------------------------

UP_METRIC = "up"
ERRORS = metric("neuron_execution_errors_total", "error_type", "runtime_tag")
DEVICE_MEMORY_USED = metric("neuron_device_memory_used_bytes", "neuron_device")
RUNTIME_INFO = metric("neuron_runtime_info", "runtime_tag")
RESTARTS = metric("neuron_exporter_monitor_restarts_total")
BAD_LINES = metric("neuron_exporter_bad_lines_total", "reason")
INVALID_GROUPS = metric("neuron_exporter_invalid_groups_total", "group")
COLLECTOR_SUCCESS = metric("neuron_exporter_collector_success", "collector")
UNMEASURED = metric("neuron_exporter_unmeasured_neuroncores")
KUBELET_REFRESHES = metric("neuron_exporter_kubelet_refreshes_total", "result")
WEB_CONFIG_LOADED = metric("neuron_exporter_web_config_last_reload_successful")

NODE = "job, instance"
WORKLOAD = "job, instance, runtime_tag, namespace, pod, container"
"""What a per-runtime alert keeps: the target, the runtime and the workload that owns it."""

DEVICES_BY_TYPE = {
    "inf1.xlarge": 1,
    "inf1.2xlarge": 1,
    "inf1.6xlarge": 4,
    "inf1.24xlarge": 16,
    "inf2.xlarge": 1,
    "inf2.8xlarge": 1,
    "inf2.24xlarge": 6,
    "inf2.48xlarge": 12,
    "trn1.2xlarge": 1,
    "trn1.32xlarge": 16,
    "trn1n.32xlarge": 16,
    "trn2.3xlarge": 1,
    "trn2.48xlarge": 16,
    "trn2u.48xlarge": 16,
}
"""Neuron devices of each instance type (AWS's instance type pages): fewer means one fell off."""


def constants(record: str, label: str, values: dict[str, float], help_text: str) -> Record:
    """A recording rule of one constant series per label value."""
    parts = [f'label_replace(vector({value}), "{label}", "{key}", "", "")' for key, value in values.items()]
    return Record(record, "\nor ".join(parts), help_text)


def threshold_records(config: settings.AlertConfig) -> tuple[Record, ...]:
    """Devices expected per instance type, the latency threshold of each node's family, and the node
    name each target's alerts route by: the records the alerts' configuration shapes."""
    families = {k: v for k, v in config.latency.p99_seconds.items() if k != "default"}
    by_family = constants(
        "family:neuron_execution_latency_p99_threshold_seconds:config",
        "family",
        families,
        "p99 latency threshold by instance family (alerts/config.yml latency.p99_seconds)",
    )
    family_of = f'label_replace({NODE_INFO.record}, "family", "$1", "instance_type", "([a-z0-9]+)\\\\..*")'
    default = f"max by ({NODE}) ({NODE_INFO.record}) * {config.default_p99()}"
    per_node = Record(
        "instance:neuron_execution_latency_p99_threshold_seconds:config",
        f"max by ({NODE}) ({family_of} * on(family) group_left() {by_family.record})\nor on({NODE}) {default}"
        if families
        else default,
        "each node's p99 latency threshold: its family's, else the default",
    )
    devices = constants(
        "instance_type:neuron_devices:expected",
        "instance_type",
        {k: float(v) for k, v in DEVICES_BY_TYPE.items()},
        "Neuron devices each instance type has",
    )
    route = route_record(config)
    return (by_family, per_node, devices, route) if families else (per_node, devices, route)


# --- alerts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """An alerting rule with its documented default threshold and where to look."""

    name: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: str = "0m"
    threshold: str = ""
    """The default in words, for the README's table."""
    panel: str = ""
    """The node dashboard's panel to open (its title), for dashboard_url and the runbook."""
    labels: dict[str, str] = field(default_factory=dict)

    def to_yaml(self, config: settings.AlertConfig) -> dict[str, Any]:
        annotations = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": f"{config.runbook_base}#{self.name.lower()}",
        }
        if config.grafana_url and self.panel:
            annotations["dashboard_url"] = (
                f"{config.grafana_url.rstrip('/')}/d/neuron-node?var-job={{{{ $labels.job }}}}"
                f"&var-instance={{{{ $labels.instance }}}}&viewPanel={panel_id(self.panel)}"
            )
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, **self.labels},
            "annotations": annotations,
        }


@cache
def _node_panels() -> dict[str, int]:
    from dashboards import node

    dashboard = node.build()
    return {panel.title: panel.id for panel in dashboard.panels}


def panel_id(title: str) -> int:
    """The id of the node dashboard's panel of this title (generation fails if it is renamed)."""
    return _node_panels()[title]


ROUTE = "instance:neuron_node:route"
"""Every exporter target with the node name an alert routes by (record of route_record)."""


def route_record(config: settings.AlertConfig) -> Record:
    """Each target of the exporter's jobs, with its node name where the identity record gave one in
    the last hour (so a target that went down keeps it), else the `node` target label its `up` has."""
    return Record(
        ROUTE,
        f"topk by ({NODE}) (1, max by ({NODE}, node) (last_over_time({NODE_INFO.record}[1h])))\n"
        f'or on({NODE}) group by ({NODE}, node) ({UP_METRIC}{{job=~"{config.job_selector}"}})',
        "the node name each exporter target's alerts carry",
    )


def routed(expr: str) -> str:
    """`expr` with the node's name as the `node` label, looked up once per target (ROUTE): the
    expression is evaluated once, and keeps its series whether or not a node name is known."""
    return f"(\n  {expr}\n) * on({NODE}) group_left(node) {ROUTE}"


def labelled(label: str, value: str, expr: str) -> str:
    return f'label_replace({expr}, "{label}", "{value}", "", "")'


def new_events(counter: str, by: str, window: str) -> str:
    """Events in the last `window`, so the alert stays firing that long after the last one: the
    counter's increase, plus a series born non-zero inside the window (its first sample already
    counted an event, which increase() cannot see)."""
    return (
        f"sum by ({by}) (increase({counter}[{window}])) > 0\n"
        f"or sum by ({by}) (min_over_time({counter}[{window}]) > 0 unless {counter} offset {window})"
    )


def alerts(config: settings.AlertConfig) -> tuple[Alert, ...]:
    sel = f'job=~"{config.job_selector}"'
    cluster = config.cluster_label
    ex, lat, cap = config.executions, config.latency, config.capacity
    w = ex.window
    status = f"{STATUS}{{{sel}"
    executions = f"sum by ({WORKLOAD}) (rate({status}}}[{w}]))"
    server_failed = f'sum by ({WORKLOAD}) (rate({status},status!~"completed|incorrect_input"}}[{w}]))'
    client_failed = f'sum by ({WORKLOAD}) (rate({status},status="incorrect_input"}}[{w}]))'
    busy = f"{executions} >= {ex.min_executions_per_second}"
    latency_alert = _latency_expr(config, sel)
    held = f'{UTILIZATION}{{{sel},runtime_tag!=""}}'
    return (
        Alert(
            "NeuronExporterDown",
            routed(f"max by ({NODE}) ({UP_METRIC}{{{sel}}} == 0)"),
            "warning",
            "neuron-exporter on {{ or $labels.node $labels.instance }} cannot be scraped",
            "Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}, node "
            f'{{{{ or $labels.node "unknown" }}}}) for {config.exporters.down_for}: none of this node\'s NeuronCore '
            "metrics are collected.",
            for_=config.exporters.down_for,
            threshold=f"scrape failing for {config.exporters.down_for}",
            panel="Exporter and neuron-monitor up",
        ),
        Alert(
            "NeuronExportersDownAcrossFleet",
            f"(\n  count by ({cluster}, job) ({UP_METRIC}{{{sel}}} == 0)\n"
            f"  / count by ({cluster}, job) ({UP_METRIC}{{{sel}}})\n) > {config.exporters.fleet_down_ratio}\n"
            f"and count by ({cluster}, job) ({UP_METRIC}{{{sel}}} == 0) >= {config.exporters.fleet_down_min_targets}",
            "critical",
            "{{ $value | humanizePercentage }} of the {{ $labels.job }} targets are down",
            "{{ $value | humanizePercentage }} of the exporters of job {{ $labels.job }} cannot be scraped: "
            "one cause (a bad rollout, a network policy, Prometheus itself) blinds that share of the fleet.",
            for_=config.exporters.down_for,
            threshold=f"over {config.exporters.fleet_down_ratio:.0%} and at least "
            f"{config.exporters.fleet_down_min_targets} targets down for {config.exporters.down_for}",
        ),
        Alert(
            "NeuronExporterAbsent",
            f"absent({UP_METRIC}{{{sel}}})",
            "warning",
            "No neuron-exporter target is discovered",
            f"Prometheus has no target of job {config.job_selector} at all: service discovery lost them "
            "(ServiceMonitor selector, namespace, RBAC) or there are no Neuron nodes.",
            for_="15m",
            threshold="no target for 15 min",
        ),
        Alert(
            "NeuronMonitorDown",
            routed(
                f"max by ({NODE}) ({MONITOR_UP}{{{sel}}} == 0)\n"
                f"  or max by ({NODE}) (increase({RESTARTS}{{{sel}}}[15m]) >= 3)"
            ),
            "warning",
            "neuron-monitor on {{ or $labels.node $labels.instance }} is down, stale or restarting",
            "On {{ or $labels.node $labels.instance }} neuron-monitor is not running, has sent no report for 3 periods, or "
            "was restarted 3 times or more in 15 minutes: the NeuronCore data served is missing or old.",
            for_="5m",
            threshold="down, stale or 3 restarts in 15 min, for 5 min",
            panel="Exporter and neuron-monitor up",
        ),
        Alert(
            "NeuronExporterDegraded",
            routed(
                "\n  or ".join(
                    (
                        labelled(
                            "problem",
                            "collector_failing",
                            f"max by ({NODE}, collector) ({COLLECTOR_SUCCESS}{{{sel}}} == 0)",
                        ),
                        labelled(
                            "problem", "unmeasured_cores", f"max by ({NODE}) ({UNMEASURED}{{{sel}}} > 0)"
                        ),
                        labelled(
                            "problem",
                            "pod_attribution_failing",
                            f'sum by ({NODE}) (increase({KUBELET_REFRESHES}{{{sel},result!="success"}}[15m])) > 0 '
                            f'unless on({NODE}) sum by ({NODE}) (increase({KUBELET_REFRESHES}{{{sel},result="success"}}[15m])) > 0',
                        ),
                        labelled(
                            "problem",
                            "web_config_not_loading",
                            f"max by ({NODE}) ({WEB_CONFIG_LOADED}{{{sel}}} == 0)",
                        ),
                        labelled(
                            "problem",
                            "bad_input",
                            f'sum by ({NODE}) (increase({{{sel},__name__=~"{BAD_LINES}|{INVALID_GROUPS}"}}[15m])) >= 3',
                        ),
                    )
                )
            ),
            "warning",
            "neuron-exporter on {{ or $labels.node $labels.instance }}: {{ $labels.problem }}",
            "neuron-exporter on {{ or $labels.node $labels.instance }} serves incomplete data: {{ $labels.problem }} "
            "{{ with $labels.collector }}(collector {{ . }}){{ end }}; the runbook says what each means.",
            for_=config.self_health.for_,
            threshold=f"for {config.self_health.for_} (bad input: 3 or more lines or groups in 15 min)",
            panel="Bad input",
        ),
        Alert(
            "NeuronDevicesMissing",
            routed(
                f"max by ({NODE}) ({DEVICES}{{{sel}}})\n"
                f"< on({NODE}) max by ({NODE}) ({NODE_INFO.record} * on(instance_type) group_left() instance_type:neuron_devices:expected)"
            ),
            "critical",
            "{{ or $labels.node $labels.instance }} shows only {{ $value }} Neuron devices",
            "neuron-monitor on {{ or $labels.node $labels.instance }} sees {{ $value }} Neuron devices, fewer than its instance "
            "type has: a device failed or the driver lost it, and workloads placed on it fail.",
            for_="10m",
            threshold="fewer devices than the instance type has, for 10 min",
            panel="ECC events by device",
        ),
        Alert(
            "NeuronHardwareFault",
            routed(
                labelled(
                    "fault",
                    "uncorrectable_ecc",
                    "(\n"
                    + new_events(
                        f'{ECC}{{{sel},event_type=~".*_uncorrected"}}',
                        f"{NODE}, neuron_device, event_type",
                        config.hardware.latch,
                    )
                    + "\n)",
                )
                + "\nor "
                + labelled(
                    "fault",
                    "hardware_execution_errors",
                    "(\n"
                    + new_events(f'{ERRORS}{{{sel},error_type="hardware"}}', WORKLOAD, config.hardware.latch)
                    + "\n)",
                )
            ),
            "critical",
            "Neuron hardware fault on {{ or $labels.node $labels.instance }}: {{ $labels.fault }}",
            "{{ or $labels.node $labels.instance }} had {{ $labels.fault }} "
            "{{ with $labels.neuron_device }}on device {{ . }} {{ end }}{{ with $labels.pod }}(pod {{ . }}) {{ end }}"
            f"in the last {config.hardware.latch}: results computed on it may be wrong. Drain the node; "
            f"the alert stays until no new event for {config.hardware.latch}.",
            threshold=f"any new event; latched for {config.hardware.latch}",
            panel="ECC events by device",
        ),
        Alert(
            "NeuronExecutionErrorRatioHigh",
            routed(
                f"(\n  {server_failed}\n  / {executions}\n) > {ex.server_error_ratio}\nand on({WORKLOAD}) {busy}"
            ),
            "warning",
            "{{ or $labels.pod $labels.runtime_tag }} on {{ or $labels.node $labels.instance }}: {{ $value | humanizePercentage }} of executions fail",
            "{{ $value | humanizePercentage }} of the executions of runtime {{ $labels.runtime_tag }} "
            "{{ with $labels.pod }}(pod {{ $labels.namespace }}/{{ . }}) {{ end }}on {{ or $labels.node $labels.instance }} failed "
            f"over {w} (errors, timeouts, rejections; threshold {ex.server_error_ratio:.1%}, at "
            f"{ex.min_executions_per_second} executions/s or more).",
            for_="10m",
            threshold=f"over {ex.server_error_ratio:.1%} over {w} at {ex.min_executions_per_second}+ executions/s, for 10 min",
            panel="Other outcomes per second",
        ),
        Alert(
            "NeuronClientErrorRatioHigh",
            routed(
                f"(\n  {client_failed}\n  / {executions}\n) > {ex.client_error_ratio}\nand on({WORKLOAD}) {busy}"
            ),
            "info",
            "{{ or $labels.pod $labels.runtime_tag }} on {{ or $labels.node $labels.instance }}: {{ $value | humanizePercentage }} incorrect input",
            "{{ $value | humanizePercentage }} of the executions of runtime {{ $labels.runtime_tag }} "
            "{{ with $labels.pod }}(pod {{ $labels.namespace }}/{{ . }}) {{ end }}on "
            "{{ or $labels.node $labels.instance }} were refused as incorrect input: its callers send "
            "tensors the model was not compiled for. The callers' owners act on it, not the node's.",
            for_="15m",
            threshold=f"over {ex.client_error_ratio:.0%} at {ex.min_executions_per_second}+ executions/s, for 15 min",
            panel="Other outcomes per second",
        ),
        Alert(
            "NeuronLatencyHigh",
            routed(latency_alert),
            "warning",
            "{{ or $labels.pod $labels.runtime_tag }} on {{ or $labels.node $labels.instance }}: p99 latency {{ $value | humanizeDuration }}",
            "The p99 execution latency of runtime {{ $labels.runtime_tag }} "
            "{{ with $labels.pod }}(pod {{ $labels.namespace }}/{{ . }}) {{ end }}on {{ or $labels.node $labels.instance }} had a "
            f"median of {{{{ $value | humanizeDuration }}}} over {lat.window}, above its threshold "
            "(alerts/config.yml latency: by instance family, or the workload's override).",
            for_=lat.for_,
            threshold=f"median p99 over {lat.window} above the family's or workload's threshold, for {lat.for_}",
            panel="Latency p50 / p99: total vs device",
        ),
        Alert(
            "NeuronDeviceMemoryNearCapacity",
            routed(
                f"max by ({NODE}, neuron_device) ({DEVICE_MEMORY_USED}{{{sel}}})\n"
                f"/ on({NODE}) group_left() max by ({NODE}) ({DEVICE_MEMORY}{{{sel}}})\n"
                f"> {config.memory.device_used_ratio}"
            ),
            "warning",
            "Neuron device {{ $labels.neuron_device }} of {{ or $labels.node $labels.instance }} is {{ $value | humanizePercentage }} full",
            "The runtimes on {{ or $labels.node $labels.instance }} use {{ $value | humanizePercentage }} of Neuron device "
            f"{{{{ $labels.neuron_device }}}}'s memory (threshold {config.memory.device_used_ratio:.0%}): "
            "the next model load on it fails, whatever the other devices have free.",
            for_=config.memory.for_,
            threshold=f"one device over {config.memory.device_used_ratio:.0%} for {config.memory.for_}",
            panel="Device memory by NeuronCore and category",
        ),
        Alert(
            "NeuronNodeUnused",
            routed(
                f"max by ({NODE}) ({MONITOR_UP}{{{sel}}} == 1)\nunless on({NODE}) {RUNTIME_INFO}{{{sel}}}"
            ),
            "warning",
            "{{ or $labels.node $labels.instance }} runs no Neuron application",
            f"neuron-monitor on {{{{ or $labels.node $labels.instance }}}} has reported no Neuron runtime for {cap.unused_for}: "
            "the node is paid for and unused. Scale it in, or check why its workloads are not scheduled.",
            for_=cap.unused_for,
            threshold=f"no runtime for {cap.unused_for}",
            panel="Utilization per NeuronCore",
        ),
        Alert(
            "NeuronCoresHeldButIdle",
            routed(
                f"count by ({WORKLOAD}) (\n  avg_over_time({held}[1h]) < {cap.idle_utilization}\n"
                f"  and on({NODE}, neuroncore, runtime_tag) ({held} offset 1h)\n)"
            ),
            "info",
            "{{ or $labels.pod $labels.runtime_tag }} on {{ or $labels.node $labels.instance }} holds {{ $value }} idle NeuronCores",
            "Runtime {{ $labels.runtime_tag }} {{ with $labels.pod }}(pod {{ $labels.namespace }}/{{ . }}) "
            "{{ end }}on {{ or $labels.node $labels.instance }} holds {{ $value }} NeuronCores whose utilization averaged under "
            f"{cap.idle_utilization:.0%} for an hour, for an hour: paid for, not used.",
            for_="1h",
            threshold=f"average under {cap.idle_utilization:.0%} over 1 h, for 1 h, on cores held over an hour",
            panel="Utilization per NeuronCore",
        ),
        Alert(
            "NeuronCoresSaturated",
            routed(
                f"avg by ({WORKLOAD}) (avg_over_time({held}[{cap.saturated_for}])) >= {cap.saturated_utilization}\n"
                f"and on({NODE}, runtime_tag) (\n"
                f'  sum by ({NODE}, runtime_tag) (rate({status},status="failed_to_queue"}}[{cap.saturated_for}])) > 0\n'
                f'  or max by ({NODE}, runtime_tag) (quantile_over_time(0.5, {LATENCY}{{{sel},percentile="p50"}}[{cap.saturated_for}]))\n'
                f'  > 2 * max by ({NODE}, runtime_tag) (quantile_over_time(0.5, {DEVICE_LATENCY}{{{sel},percentile="p50"}}[{cap.saturated_for}]))\n'
                ")"
            ),
            "warning",
            "{{ or $labels.pod $labels.runtime_tag }} on {{ or $labels.node $labels.instance }} is saturated",
            "The NeuronCores of runtime {{ $labels.runtime_tag }} {{ with $labels.pod }}(pod "
            "{{ $labels.namespace }}/{{ . }}) {{ end }}on {{ or $labels.node $labels.instance }} are {{ $value | humanizePercentage }} "
            "busy while executions fail to queue or wait as long as they run: add replicas or cores.",
            for_=cap.saturated_for,
            threshold=f"cores {cap.saturated_utilization:.0%}+ busy with rejected or queued executions, "
            f"for {cap.saturated_for}",
            panel="Completed executions per second by runtime",
        ),
    )


def _latency_expr(config: settings.AlertConfig, sel: str) -> str:
    """Median p99 over the window above the workload's threshold: the first override whose matchers
    the runtime's series match, else its node's family default."""
    lat = config.latency

    def median(extra: str = "") -> str:
        return (
            f"max by ({WORKLOAD}) (quantile_over_time(0.5, "
            f'{LATENCY}{{{sel},percentile="p99"{extra}}}[{lat.window}]))'
        )

    parts: list[str] = []
    earlier: list[str] = []
    for override in lat.overrides:
        matchers = "".join(f',{label}=~"{value}"' for label, value in sorted(override.match.items()))
        mine = median(matchers)
        exclude = "".join(f"\n  unless on({WORKLOAD}) {other}" for other in earlier)
        parts.append(f"({mine}{exclude}) > {override.p99_seconds}")
        earlier.append(mine)
    exclude = "".join(f"\n  unless on({WORKLOAD}) {other}" for other in earlier)
    parts.append(
        f"({median()}{exclude})\n  > on({NODE}) group_left() "
        "instance:neuron_execution_latency_p99_threshold_seconds:config"
    )
    return "\nor ".join(parts)


def records(config: settings.AlertConfig) -> tuple[Record, ...]:
    return (*RECORDS, *threshold_records(config))


ALERTS = alerts(CONFIG)
ALL_RECORDS = records(CONFIG)


def document(
    config: settings.AlertConfig = CONFIG, models: baselines.Baselines | None = None
) -> dict[str, Any]:
    """The rule file as a YAML-ready object: records, each model's GPU baseline, alerts."""
    models = baselines.load() if models is None else models
    return {
        "groups": [
            {"name": "neuron-exporter.records", "rules": [r.to_yaml() for r in records(config)]},
            {"name": "neuron-exporter.baselines", "rules": [r.to_yaml() for r in baselines.records(models)]},
            {"name": "neuron-exporter.alerts", "rules": [a.to_yaml(config) for a in alerts(config)]},
        ]
    }


def render(config: settings.AlertConfig = CONFIG, models: baselines.Baselines | None = None) -> str:
    """The rule file's text."""
    header = (
        "# Generated by `python -m alerts.rules --write` from alerts/config.yml, baselines.yml and rules.py; "
        "do not edit by hand.\n"
    )
    return header + yaml.dump(document(config, models), Dumper=_Dumper, sort_keys=False, width=120)


class _Dumper(yaml.SafeDumper):
    """Writes expressions of several lines as literal blocks, readable in the file and in diffs."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _str)


RUNBOOKS = HERE / "README.md"
_TABLE = re.compile(r"(<!-- BEGIN GENERATED: alerts -->\n).*?(<!-- END GENERATED: alerts -->)", re.DOTALL)


def alert_table(config: settings.AlertConfig = CONFIG) -> str:
    """The alerts README's table: each alert, its severity, what fires it and the panel to open."""
    rows = ["| alert | severity | fires when (defaults from config.yml) | panel |", "|---|---|---|---|"]
    rows += [f"| {a.name} | {a.severity} | {a.threshold} | {a.panel or '-'} |" for a in alerts(config)]
    return "\n".join(rows)


def runbooks_text(config: settings.AlertConfig = CONFIG) -> str:
    """alerts/README.md with its generated table current."""
    text = RUNBOOKS.read_text()
    return _TABLE.sub(lambda m: f"{m.group(1)}{alert_table(config)}\n{m.group(2)}", text)


def main(argv: list[str] | None = None) -> int:
    """Write or check the rule file and the alerts README's table."""
    parser = argparse.ArgumentParser(prog="python -m alerts.rules")
    parser.add_argument("--write", action="store_true", help=f"rewrite {RULES_FILE.name}")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    parser.add_argument(
        "--config", type=Path, default=settings.DEFAULT_FILE, help="alerts/config.yml or your copy"
    )
    parser.add_argument(
        "--baselines", type=Path, default=baselines.DEFAULT_FILE, help="alerts/baselines.yml or your copy"
    )
    args = parser.parse_args(argv)
    text = render(settings.load(args.config), baselines.load(args.baselines))
    if args.write or args.check:
        outputs = {RULES_FILE: text, RUNBOOKS: runbooks_text(settings.load(args.config))}
        return write_or_check(outputs, check=args.check, remedy="make alerts")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
