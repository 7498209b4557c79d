"""The exporter's own health series (`neuron_exporter_*`, `neuron_monitor_up`).

neuron_monitor_up 1
neuron_exporter_bad_lines_total{reason="not_json"} 0
neuron_exporter_collector_success{collector="memory_used"} 1
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from exporter import __version__
from exporter.collectors.base import Family, MetricSpec
from exporter.health import BAD_LINE_REASONS, Health

SPECS = (
    MetricSpec("neuron_exporter_build_info", "info", "neuron-exporter build; always 1.", ("version",), "-"),
    MetricSpec(
        "neuron_monitor_up",
        "gauge",
        "1 if neuron-monitor is running and its last report is fresh (within 3 periods), else 0.",
        (),
        "-",
    ),
    MetricSpec(
        "neuron_exporter_last_report_timestamp_seconds",
        "gauge",
        "Unix time at which the last neuron-monitor report was ingested.",
        (),
        "-",
    ),
    MetricSpec("neuron_exporter_reports_total", "counter", "neuron-monitor reports ingested.", (), "-"),
    MetricSpec(
        "neuron_exporter_bad_lines_total",
        "counter",
        "Lines from neuron-monitor dropped whole, by reason (too_long, not_json, schema).",
        ("reason",),
        "-",
    ),
    MetricSpec(
        "neuron_exporter_invalid_groups_total",
        "counter",
        "Metric groups that failed validation and were skipped for their report, by group.",
        ("group",),
        "-",
    ),
    MetricSpec(
        "neuron_exporter_monitor_errors_total",
        "counter",
        "Groups or runtimes for which neuron-monitor itself reported an error, by group.",
        ("group",),
        "-",
    ),
    MetricSpec(
        "neuron_exporter_monitor_restarts_total",
        "counter",
        "Times the neuron-monitor child was restarted.",
        (),
        "-",
    ),
    MetricSpec(
        "neuron_exporter_collector_success",
        "gauge",
        "1 if the collector rendered without error on this scrape.",
        ("collector",),
        "-",
    ),
)


def fill_self(health: Health, success: Mapping[str, bool], families: Mapping[str, Family]) -> None:
    """Health series from the ingest statistics and this scrape's collector outcomes."""
    families["neuron_exporter_build_info"].add({"version": __version__}, 1)
    families["neuron_monitor_up"].add({}, 1 if health.up() else 0)
    if health.last_report_time is not None:
        families["neuron_exporter_last_report_timestamp_seconds"].add({}, health.last_report_time)
    families["neuron_exporter_reports_total"].add({}, health.reports)
    for reason in sorted(set(BAD_LINE_REASONS) | set(health.bad_lines)):
        families["neuron_exporter_bad_lines_total"].add({"reason": reason}, health.bad_lines[reason])
    _add_counts(families["neuron_exporter_invalid_groups_total"], health.invalid_groups.items())
    _add_counts(families["neuron_exporter_monitor_errors_total"], health.monitor_errors.items())
    families["neuron_exporter_monitor_restarts_total"].add({}, health.restarts)
    for name in sorted(success):
        families["neuron_exporter_collector_success"].add({"collector": name}, 1 if success[name] else 0)


def _add_counts(family: Family, counts: Iterable[tuple[str, int]]) -> None:
    for group, count in sorted(counts):
        family.add({"group": group}, count)
