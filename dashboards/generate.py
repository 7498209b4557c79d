"""Writes (or checks) dashboards/*.json from the grafanalib code beside it.

.venv/bin/python -m dashboards.generate          # make dashboards
.venv/bin/python -m dashboards.generate --check  # exit 1 if a committed JSON differs
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from dashboards import cost, fleet, node
from exporter.docs import write_or_check

HERE = Path(__file__).resolve().parent
DASHBOARDS: dict[str, Callable[[], g.Dashboard]] = {
    "neuron-fleet.json": fleet.build,
    "neuron-node.json": node.build,
    "neuron-cost.json": cost.build,
}


def render(build: Callable[[], g.Dashboard]) -> str:
    """One dashboard as stable, importable JSON."""
    data = build().to_json_data()
    return json.dumps(data, cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.generate")
    parser.add_argument("--check", action="store_true", help="fail if a committed JSON file is stale")
    args = parser.parse_args(argv)
    outputs = {HERE / name: render(build) for name, build in DASHBOARDS.items()}
    return write_or_check(outputs, check=args.check, remedy="make dashboards")


if __name__ == "__main__":
    sys.exit(main())
