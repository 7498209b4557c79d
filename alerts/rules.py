"""Alerting and recording rules for neuron-exporter, generated into alerts/neuron-exporter.rules.yml.

    .venv/bin/python -m alerts.rules --write      # regenerate (make alerts); --check fails if stale

Metric names come from the collectors' declarations (exporter.catalog.metric), so a renamed metric
fails generation instead of leaving an alert that can never fire. The recording rules are what the
fleet dashboard reads, so its queries stay cheap at 1,000 nodes; dashboards import their names from
here. Thresholds are defaults: change them here (or in your copy of the YAML) and say why.
Every rule is exercised by `promtool test rules alerts/tests/neuron-exporter.test.yml`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alerts.records import DEVICE_MEMORY_TOTAL, DEVICE_MEMORY_USED, RECORDS
from exporter.catalog import metric
from exporter.docs import write_or_check

HERE = Path(__file__).resolve().parent
RULES_FILE = HERE / "neuron-exporter.rules.yml"
JOB = "neuron-exporter"
"""The scrape job the alerts select; the README's Prometheus config names its job so."""
SEL = f'job="{JOB}"'
RUNBOOK_BASE = "alerts/README.md"
"""Where runbook_url points; --runbook-base rewrites it to the URL your copy of the repository has."""

# --- names the rules read ------------------------------------------------------------------------

UTILIZATION = metric("neuron_neuroncore_utilization_ratio", "neuroncore", "runtime_tag")
STATUS = metric("neuron_execution_status_total", "runtime_tag", "status")
LATENCY = metric("neuron_execution_latency_seconds", "percentile", "runtime_tag")
ECC = metric("neuron_device_ecc_events_total", "event_type", "neuron_device")
MONITOR_UP = metric("neuron_monitor_up")
RESTARTS = metric("neuron_exporter_monitor_restarts_total")
BAD_LINES = metric("neuron_exporter_bad_lines_total", "reason")
INVALID_GROUPS = metric("neuron_exporter_invalid_groups_total", "group")

# --- alerts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """An alerting rule with its documented default threshold."""

    name: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: str = "0m"
    threshold: str = ""
    """The default in words, for the README's table."""
    labels: dict[str, str] = field(default_factory=dict)

    def to_yaml(self, runbook_base: str) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, **self.labels},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{runbook_base}#{self.name.lower()}",
            },
        }


ERROR_RATIO = 0.05
LATENCY_P99_SECONDS = 0.5
MEMORY_RATIO = 0.9
IDLE_UTILIZATION = 0.01

ALERTS = (
    Alert(
        "NeuronExporterDown",
        f"up{{{SEL}}} == 0",
        "warning",
        "neuron-exporter on {{ $labels.instance }} cannot be scraped",
        "Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for 5 minutes: "
        "none of this node's NeuronCore metrics are being collected.",
        for_="5m",
        threshold="scrape failing for 5 min",
    ),
    Alert(
        "NeuronMonitorDown",
        f"{MONITOR_UP}{{{SEL}}} == 0",
        "warning",
        "neuron-monitor on {{ $labels.instance }} is down or its data is stale",
        "neuron_monitor_up has been 0 on {{ $labels.instance }} for 3 minutes: neuron-monitor is not "
        "running or has sent no report for 3 periods, so the NeuronCore data served is missing or old.",
        for_="3m",
        threshold="up=0 for 3 min",
    ),
    Alert(
        "NeuronMonitorRestarting",
        f"increase({RESTARTS}{{{SEL}}}[15m]) > 2",
        "warning",
        "neuron-monitor on {{ $labels.instance }} keeps restarting",
        "neuron-monitor was restarted {{ $value | humanize }} times in 15 minutes on {{ $labels.instance }}; "
        "see the exporter's log for its exit status and stderr.",
        threshold="more than 2 restarts in 15 min",
    ),
    Alert(
        "NeuronUncorrectableECC",
        f'increase({ECC}{{{SEL},event_type=~".*_uncorrected"}}[10m]) > 0',
        "critical",
        "Uncorrectable ECC errors on Neuron device {{ $labels.neuron_device }} of {{ $labels.instance }}",
        "{{ $value | humanize }} {{ $labels.event_type }} events in 10 minutes on device "
        "{{ $labels.neuron_device }} of {{ $labels.instance }}: results computed on it may be wrong.",
        threshold="any uncorrected event in 10 min",
    ),
    Alert(
        "NeuronExecutionErrorRatioHigh",
        f'sum by (job, instance, runtime_tag) (rate({STATUS}{{{SEL},status!="completed"}}[5m]))\n'
        f"  / sum by (job, instance, runtime_tag) (rate({STATUS}{{{SEL}}}[5m])) > {ERROR_RATIO}",
        "warning",
        "{{ $labels.runtime_tag }} on {{ $labels.instance }}: {{ $value | humanizePercentage }} of executions fail",
        "{{ $value | humanizePercentage }} of the executions of runtime {{ $labels.runtime_tag }} on "
        f"{{{{ $labels.instance }}}} did not complete cleanly over 5 minutes (threshold {ERROR_RATIO:.0%}).",
        for_="10m",
        threshold=f"over {ERROR_RATIO:.0%} for 10 min",
    ),
    Alert(
        "NeuronExecutionsTimingOutOrRejected",
        f'sum by (job, instance, runtime_tag, status) (rate({STATUS}{{{SEL},status=~"timed_out|failed_to_queue"}}[5m])) > 0',
        "warning",
        "{{ $labels.runtime_tag }} on {{ $labels.instance }}: executions {{ $labels.status }}",
        'Runtime {{ $labels.runtime_tag }} on {{ $labels.instance }} has had {{ $value | printf "%.2f" }} '
        "executions/s with status {{ $labels.status }} for 5 minutes: the runtime is overloaded or stuck.",
        for_="5m",
        threshold="any for 5 min",
    ),
    Alert(
        "NeuronLatencyP99High",
        f'max by (job, instance, runtime_tag) ({LATENCY}{{{SEL},percentile="p99"}}) > {LATENCY_P99_SECONDS}',
        "warning",
        "{{ $labels.runtime_tag }} on {{ $labels.instance }}: p99 latency {{ $value | humanizeDuration }}",
        "The p99 execution latency of runtime {{ $labels.runtime_tag }} on {{ $labels.instance }} has been "
        f"{{{{ $value | humanizeDuration }}}} for 10 minutes (threshold {LATENCY_P99_SECONDS} s).",
        for_="10m",
        threshold=f"p99 over {LATENCY_P99_SECONDS} s for 10 min",
    ),
    Alert(
        "NeuronDeviceMemoryNearCapacity",
        f"{DEVICE_MEMORY_USED.record}{{{SEL}}} / {DEVICE_MEMORY_TOTAL.record}{{{SEL}}} > {MEMORY_RATIO}",
        "warning",
        "Neuron device memory of {{ $labels.instance }} is {{ $value | humanizePercentage }} used",
        "The runtimes on {{ $labels.instance }} use {{ $value | humanizePercentage }} of its Neuron "
        f"device memory for 15 minutes (threshold {MEMORY_RATIO:.0%}): a model load may fail.",
        for_="15m",
        threshold=f"over {MEMORY_RATIO:.0%} for 15 min",
    ),
    Alert(
        "NeuronCoresHeldButIdle",
        f'count by (job, instance, runtime_tag) (avg_over_time({UTILIZATION}{{{SEL},runtime_tag!=""}}[1h]) < {IDLE_UTILIZATION})',
        "info",
        "{{ $labels.runtime_tag }} on {{ $labels.instance }} holds {{ $value }} idle NeuronCores",
        "Runtime {{ $labels.runtime_tag }} on {{ $labels.instance }} holds {{ $value }} NeuronCores whose "
        f"utilization averaged under {IDLE_UTILIZATION:.0%} for the last hour: paid for, not used.",
        for_="1h",
        threshold=f"average under {IDLE_UTILIZATION:.0%} over 1 h, for 1 h",
    ),
    Alert(
        "NeuronMonitorBadInput",
        f'sum by (job, instance) (increase({{{SEL},__name__=~"{BAD_LINES}|{INVALID_GROUPS}"}}[15m])) > 0',
        "info",
        "neuron-monitor on {{ $labels.instance }} sends input the exporter drops",
        "{{ $value | humanize }} lines or groups from neuron-monitor were dropped in 15 minutes on "
        "{{ $labels.instance }}; neuron_exporter_bad_lines_total and neuron_exporter_invalid_groups_total "
        "say which, the exporter's log says why.",
        threshold="any in 15 min",
    ),
)


def document(runbook_base: str = RUNBOOK_BASE) -> dict[str, Any]:
    """The rule file as a YAML-ready object."""
    return {
        "groups": [
            {"name": "neuron-exporter.records", "rules": [r.to_yaml() for r in RECORDS]},
            {"name": "neuron-exporter.alerts", "rules": [a.to_yaml(runbook_base) for a in ALERTS]},
        ]
    }


def render(runbook_base: str = RUNBOOK_BASE) -> str:
    """The rule file's text."""
    header = "# Generated by `python -m alerts.rules --write` from alerts/rules.py; do not edit by hand.\n"
    return header + yaml.dump(document(runbook_base), Dumper=_Dumper, sort_keys=False, width=120)


class _Dumper(yaml.SafeDumper):
    """Writes expressions of several lines as literal blocks, readable in the file and in diffs."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _str)


def main(argv: list[str] | None = None) -> int:
    """Write or check the rule file."""
    parser = argparse.ArgumentParser(prog="python -m alerts.rules")
    parser.add_argument("--write", action="store_true", help=f"rewrite {RULES_FILE.name}")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    parser.add_argument("--runbook-base", default=RUNBOOK_BASE, help="URL of alerts/README.md in your copy")
    args = parser.parse_args(argv)
    text = render(args.runbook_base)
    if args.write or args.check:
        return write_or_check({RULES_FILE: text}, check=args.check, remedy="make alerts")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
