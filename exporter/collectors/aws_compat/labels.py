"""The EC2 labels AWS's script stamps on every series, and the runtime label added to them."""

from __future__ import annotations

from exporter.model.state import State

INSTANCE_FIELDS = (
    ("instance_name", "instance_name"),
    ("instance_id", "instance_id"),
    ("instance_type", "instance_type"),
    ("availability_zone", "instance_availability_zone"),
    ("region", "instance_region"),
    ("subnet_id", "subnet_id"),
)
"""Label name -> `instance_info` field, the labels the script stamps on every series."""

INSTANCE = tuple(label for label, _ in INSTANCE_FIELDS)
RUNTIME = ("runtime_tag", *INSTANCE)
"""Declared labels of instance- and runtime-level series (specs list their own labels first, for the README)."""


def instance_labels(state: State) -> dict[str, str]:
    """The EC2 labels of every series: empty values until a report carries instance_info."""
    info = state.instance
    labels = {label: (getattr(info, field) or "") if info else "" for label, field in INSTANCE_FIELDS}
    if info is not None and info.ultraserver_id is not None:
        labels["ultraserver_id"] = info.ultraserver_id
    return labels
