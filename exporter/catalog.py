"""Every metric the exporter declares, by name: where dashboards and rules take their names from.

A panel or a rule that names a metric goes through metric(), which fails at generation time (and so
in CI) if no collector declares it or if it asks for a label the metric does not have: a renamed
metric cannot silently leave an empty panel or an alert that never fires.
"""

from __future__ import annotations

from exporter.collectors import COLLECTORS
from exporter.collectors.base import OWNER_LABELS, MetricSpec
from exporter.collectors.self import SPECS as SELF_SPECS

SPECS: dict[str, MetricSpec] = {
    spec.name: spec for spec in (*(s for c in COLLECTORS for s in c.specs), *SELF_SPECS)
}
"""Every default-mode metric (the AWS-compatible names are for AWS's own dashboard)."""
OWNER_LABELLED = frozenset(spec.name for c in COLLECTORS for spec in c.specs if c.owner_labelled(spec))
"""Metrics whose series carry namespace, pod and container where the kubelet names the owner."""


class UnknownMetric(KeyError):
    """A dashboard or rule names a metric or label that no collector declares."""


def metric(name: str, *labels: str) -> str:
    """`name`, checked against the declarations; `labels` are the labels the caller relies on."""
    spec = SPECS.get(name)
    if spec is None:
        raise UnknownMetric(f"no collector declares the metric {name!r}")
    known = (*spec.labels, *OWNER_LABELS) if name in OWNER_LABELLED else spec.labels
    missing = [label for label in labels if label not in known]
    if missing:
        raise UnknownMetric(f"{name} has no label {', '.join(missing)} (it has {', '.join(known)})")
    return name
