"""The exporter's own health series (`neuron_exporter_*`, `neuron_monitor_up`).

neuron_monitor_up 1
neuron_exporter_bad_lines_total{reason="not_json"} 0
neuron_exporter_collector_success{collector="memory_used"} 1
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from exporter import __version__
from exporter.collectors.base import Family, MetricSpec
from exporter.health import BAD_LINE_REASONS, KUBELET_RESULTS, Health, KubeletHealth

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
        "neuron_exporter_monitor_start_failures_total",
        "counter",
        "Attempts to start neuron-monitor that failed (executable missing or not executable); "
        "each is retried with backoff.",
        (),
        "-",
    ),
    MetricSpec(
        "neuron_exporter_http_connections_cut_total",
        "counter",
        "HTTP connections the server cut so that slow or idle clients cannot keep scrapers out, by "
        "reason: a TLS handshake, request head or keep-alive idle past its deadline (handshake_timeout, "
        "head_timeout, idle_timeout), shed for a new connection at the limit (evicted_handshake, "
        "evicted_head, evicted_idle), or refused when every open one was busy (over_limit).",
        ("reason",),
        "-",
    ),
    MetricSpec(
        "neuron_exporter_http_rejections_total",
        "counter",
        "Connections or requests refused by the web config, by reason (plain_http, tls_handshake, "
        "client_cert_missing, client_cert_invalid, client_cert_san, no_credentials, bad_credentials, "
        "rate_limited). Only with --web.config.file.",
        ("reason",),
        "-",
    ),
    MetricSpec(
        "neuron_exporter_web_config_last_reload_successful",
        "gauge",
        "1 if the web config in force is the file as it is now, 0 if the last re-read failed and the "
        "previous one is kept. Only with --web.config.file.",
        (),
        "-",
    ),
    MetricSpec(
        "neuron_exporter_web_config_reloads_total",
        "counter",
        "Re-reads of the web config after a change of it or of its certificate files, by result. "
        "Only with --web.config.file.",
        ("result",),
        "-",
    ),
    MetricSpec(
        "neuron_exporter_kubelet_refreshes_total",
        "counter",
        "Requests to the kubelet's PodResources List, by result (success, timeout, unavailable, "
        "invalid, error). Only with pod attribution on.",
        ("result",),
        "-",
    ),
    MetricSpec(
        "neuron_exporter_kubelet_mapping_age_seconds",
        "gauge",
        "Age of the kubelet's pod mapping in use; absent while none is (never fetched, or expired "
        "after --kubernetes.keep-mapping without a good answer).",
        (),
        "-",
    ),
    MetricSpec(
        "neuron_exporter_kubelet_unparsed_device_ids",
        "gauge",
        "Neuron device IDs in the kubelet's last good answer that are not core or device indices (ignored).",
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
    families["neuron_exporter_monitor_start_failures_total"].add({}, health.start_failures)
    _add_counts(families["neuron_exporter_http_connections_cut_total"], health.http_cut.items(), "reason")
    if health.web_config_loaded is not None:
        _fill_web(health, families)
    if health.kubelet is not None:
        _fill_kubelet(health.kubelet, health.clock(), families)
    for name in sorted(success):
        families["neuron_exporter_collector_success"].add({"collector": name}, 1 if success[name] else 0)


def _fill_web(health: Health, families: Mapping[str, Family]) -> None:
    rejections = families["neuron_exporter_http_rejections_total"]
    for reason in sorted(set(health.rejection_reasons) | set(health.http_rejections)):
        rejections.add({"reason": reason}, health.http_rejections[reason])
    families["neuron_exporter_web_config_last_reload_successful"].add({}, int(health.web_config_loaded or 0))
    for result in ("failure", "success"):
        families["neuron_exporter_web_config_reloads_total"].add(
            {"result": result}, health.web_config_reloads[result]
        )


def _fill_kubelet(kubelet: KubeletHealth, now: float, families: Mapping[str, Family]) -> None:
    for result in KUBELET_RESULTS:
        families["neuron_exporter_kubelet_refreshes_total"].add({"result": result}, kubelet.refreshes[result])
    if kubelet.mapping_time is not None:
        families["neuron_exporter_kubelet_mapping_age_seconds"].add({}, max(0.0, now - kubelet.mapping_time))
        families["neuron_exporter_kubelet_unparsed_device_ids"].add({}, kubelet.unparsed_ids)


def _add_counts(family: Family, counts: Iterable[tuple[str, int]], label: str = "group") -> None:
    for key, count in sorted(counts):
        family.add({label: key}, count)
