"""Writes (or checks) dashboards/*.json from the grafanalib code beside it.

.venv/bin/python -m dashboards.generate                          # make dashboards
.venv/bin/python -m dashboards.generate --check                  # exit 1 if a committed JSON differs
.venv/bin/python -m dashboards.generate --cluster-label k8s_cluster --out DIR
                                                                 # your cluster label, written elsewhere

The JSON is what Grafana 11 and 12 read as they are (schemaVersion 39): grafanalib's leftovers of
older Grafana that change what a panel shows are removed here. `intervalFactor: 2` made every query's
step twice its interval, longer than $__rate_interval, so rate panels skipped increases; a panel's
`maxDataPoints: 100` made the interval minutes long at a 6 h range. Without them Grafana sizes the
step by the panel's width in pixels.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from alerts.config import load as load_alert_config
from dashboards import cost, fleet, node
from dashboards.common import CLUSTER
from exporter.docs import write_or_check

HERE = Path(__file__).resolve().parent
DASHBOARDS: dict[str, Callable[[], g.Dashboard]] = {
    "neuron-fleet.json": fleet.build,
    "neuron-node.json": node.build,
    "neuron-cost.json": cost.build,
}
CLUSTER_LABEL = load_alert_config().cluster_label
"""The label that names a cluster where one store holds several (an external label of each cluster's
Prometheus, usually); absent labels are harmless. From alerts/config.yml, which the alerts share."""
STALE_TARGET_KEYS = ("intervalFactor", "step")
STALE_PANEL_KEYS = ("maxDataPoints",)


def _clean(node: Any) -> Any:
    """The dashboard without grafanalib's defaults that starve rate panels (see the module docstring)."""
    if isinstance(node, dict):
        if "expr" in node and "refId" in node:
            node = {k: v for k, v in node.items() if k not in STALE_TARGET_KEYS}
        if "gridPos" in node:
            node = {k: v for k, v in node.items() if k not in STALE_PANEL_KEYS}
        return {k: _clean(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def render(build: Callable[[], g.Dashboard], cluster_label: str = CLUSTER_LABEL) -> str:
    """One dashboard as stable, importable JSON."""
    data = json.loads(json.dumps(build().to_json_data(), cls=DashboardEncoder))
    text = json.dumps(_clean(data), indent=2, sort_keys=True) + "\n"
    return text.replace(CLUSTER, cluster_label)


def outputs(cluster_label: str = CLUSTER_LABEL, where: Path = HERE) -> dict[Path, str]:
    """Every dashboard's JSON by the file it belongs in."""
    return {where / name: render(build, cluster_label) for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards' JSON, or (--check) exit 1 if a committed file is stale."""
    parser = argparse.ArgumentParser(prog="python -m dashboards.generate")
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file is stale")
    parser.add_argument(
        "--cluster-label", default=CLUSTER_LABEL, help=f"the label naming a cluster (default {CLUSTER_LABEL})"
    )
    parser.add_argument(
        "--out", type=Path, default=HERE, help="where to write the JSON (default dashboards/)"
    )
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", args.cluster_label):
        parser.error(f"--cluster-label {args.cluster_label!r} is not a Prometheus label name")
    return write_or_check(outputs(args.cluster_label, args.out), check=args.check, remedy="make dashboards")


if __name__ == "__main__":
    sys.exit(main())
